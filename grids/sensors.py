"""The operator's grid sensors: what they measure, how noisy, and their interval readings.

A sensor is one pandapower measurement (`pandapower.create_measurement`
conventions: ``p``/``q`` in MW/Mvar, ``v`` in pu; a bus injection is
positive for load; a line flow at its ``"from"`` side). The substation is
always measured: P and Q as the injection at the external grid's bus
(the net load there minus the import) and V at that bus. µPMU-like flow
sensors sit at the from side of chosen lines, voltage sensors at chosen
buses. A reading is the mean of the sensor's true value over the market
interval's power-flow steps plus Gaussian noise of the sensor's σ.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np
import pandapower

from gridledger.units import KW_PER_MW


@dataclass(frozen=True)
class Sensor:
    """One grid-side measurement channel.

    Attributes
    ----------
    name : str
        ``substation/p``, ``line<index>/q``, ``bus<index>/v`` ...
    meas_type : {"p", "q", "v"}
    element_type : {"bus", "line"}
    element : int
        pandapower index of the bus or line.
    side : str or None
        ``"from"`` for a line flow.
    sigma : float
        Noise standard deviation. [MW], [Mvar] or [pu]
    """

    name: str
    meas_type: str
    element_type: str
    element: int
    side: str | None
    sigma: float


def sensor_set(net: pandapower.pandapowerNet, spec) -> tuple[Sensor, ...]:
    """The sensors a study's ``audit.sensors`` (`gridledger.study_audit.Sensors`) places on `net`.

    Raises
    ------
    ValueError
        If a listed line or bus is not in `net`, naming the allowed range.
    """
    slack = int(net.ext_grid.bus.iloc[0])
    sensors = [
        Sensor("substation/p", "p", "bus", slack, None, spec.substation_sigma_p_kw / KW_PER_MW),
        Sensor("substation/q", "q", "bus", slack, None, spec.substation_sigma_q_kvar / KW_PER_MW),
        Sensor("substation/v", "v", "bus", slack, None, spec.substation_sigma_vm_pu),
    ]
    in_service = net.line.index[net.line.in_service.astype(bool)]
    for line in _chosen(spec.lines, net.line.index, "audit.sensors.lines", "line", in_service):
        sensors.append(Sensor(f"line{line}/p", "p", "line", line, "from", spec.line_sigma_p_kw / KW_PER_MW))
        sensors.append(Sensor(f"line{line}/q", "q", "line", line, "from", spec.line_sigma_q_kvar / KW_PER_MW))
    for bus in _chosen(spec.buses, net.bus.index, "audit.sensors.buses", "bus"):
        if bus != slack:
            sensors.append(Sensor(f"bus{bus}/v", "v", "bus", bus, None, spec.bus_sigma_vm_pu))
    return tuple(sensors)


def _chosen(listed: Sequence[int] | str, index, field: str, what: str, every=None) -> list[int]:
    """The listed elements, checked against `index`; ``"all"``: every element of `every` (default `index`)."""
    if listed == "all":
        return [int(i) for i in (index if every is None else every)]
    missing = sorted(set(listed) - set(int(i) for i in index))
    if missing:
        raise ValueError(f"{field} = {list(listed)}: no {what} {missing} in the feeder; "
                         f"its {what}s are {int(min(index))} to {int(max(index))}")
    return sorted(set(listed))


def true_values(sensors: Sequence[Sensor], net: pandapower.pandapowerNet, *, vm_pu: np.ndarray,
                bus_p_mw: np.ndarray, bus_q_mvar: np.ndarray, substation_p_mw: np.ndarray,
                substation_q_mvar: np.ndarray, line_p_from_mw: np.ndarray, line_q_from_mvar: np.ndarray) -> np.ndarray:
    """What each sensor would read without noise, averaged over the steps given. [MW], [Mvar], [pu]

    Arrays are per step (first axis) and positional in ``net.bus`` /
    ``net.line`` order; ``bus_p_mw``/``bus_q_mvar`` the net load per bus,
    ``substation_*`` the import from the external grid.
    """
    bus_at = {int(b): i for i, b in enumerate(net.bus.index)}
    line_at = {int(b): i for i, b in enumerate(net.line.index)}
    values = []
    for s in sensors:
        if s.element_type == "line":
            flows = line_p_from_mw if s.meas_type == "p" else line_q_from_mvar
            values.append(np.mean(flows[:, line_at[s.element]]))
        elif s.meas_type == "v":
            values.append(np.mean(vm_pu[:, bus_at[s.element]]))
        else:                                                                  # the substation bus's injection
            load, imported = (bus_p_mw, substation_p_mw) if s.meas_type == "p" else (bus_q_mvar, substation_q_mvar)
            values.append(np.mean(load[:, bus_at[s.element]] - imported))
    return np.array(values)


def read(sensors: Sequence[Sensor], true: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """The sensors' readings: `true` plus Gaussian noise of each sensor's σ."""
    return true + rng.standard_normal(len(sensors)) * np.array([s.sigma for s in sensors])
