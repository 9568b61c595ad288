"""A feeder islanded behind its open substation and run from a grid-forming battery.

When the upstream supply is lost the substation breaker opens; a battery
inverter in grid-forming mode can then hold the island's voltage and
frequency and supply whatever the energised loads draw net of their PV,
within its power rating and stored energy (an intentional island, IEEE Std
1547.4-2011). In the steady-state power flow the grid-forming inverter is
the island's slack: :func:`island_net` copies the feeder with every
``ext_grid`` out of service and a new one at the battery's bus, so the
slack's power is what the battery delivers. With no grid-forming unit the
island is dark (:func:`dark_result`).

What this cannot show: the seconds of a restart (inrush, cold-load pickup,
protection coordination with fault currents a battery inverter limits to
1-2 times its rating, frequency), which need dynamic simulation.

References
----------
IEEE Std 1547.4-2011, "Guide for Design, Operation, and Integration of
Distributed Resource Island Systems with Electric Power Systems".

J. Rocabert, A. Luna, F. Blaabjerg and P. Rodriguez, "Control of power
converters in AC microgrids," IEEE Trans. Power Electronics, vol. 27,
no. 11, pp. 4734-4749, 2012 (a grid-forming converter as an ideal voltage
source: the power-flow slack).
"""

import copy

import numpy as np
import pandapower

from gridledger.grids.battery import battery_step
from gridledger.grids.powerflow import StepResult

__all__ = ["island_net", "dark_result", "battery_limits_kw"]


def island_net(net: pandapower.pandapowerNet, bus: int, vm_pu: float = 1.0) -> pandapower.pandapowerNet:
    """A copy of `net` with the substation open and a grid-forming source at `bus`.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; it is not changed.
    bus : int
        The grid-forming battery's bus (a ``net.bus`` index).
    vm_pu : float, default 1.0
        Voltage the grid-forming inverter holds at its terminals. [pu]

    Returns
    -------
    pandapowerNet
        Every original ``ext_grid`` out of service, one new ``ext_grid`` at
        `bus` (the island's slack), no controllers (the copy's would act on
        the original's tables). Buses the battery cannot reach are out of
        the power flow (pandapower sets their results to NaN).
    """
    if bus not in net.bus.index:
        raise ValueError(f"bus {bus} is not a bus of the feeder")
    island = copy.deepcopy(net)
    island.ext_grid["in_service"] = False
    island.controller = island.controller.iloc[0:0]
    pandapower.create_ext_grid(island, bus, vm_pu=vm_pu, va_degree=0.0, name="grid-forming battery")
    return island


def dark_result(net: pandapower.pandapowerNet) -> StepResult:
    """The step of an island without a grid-forming source: no voltage anywhere (NaN), no flow, no import.

    ``converged`` is True: nothing failed to solve, there was nothing to solve.
    """
    n_bus, n_line = len(net.bus), len(net.line)
    return StepResult(
        converged=True,
        vm_pu=np.full(n_bus, np.nan),
        va_degree=np.full(n_bus, np.nan),
        loading_percent=np.zeros(n_line),
        trafo_loading_percent=np.zeros(len(net.trafo)),
        p_mw=0.0,
        q_mvar=0.0,
        pl_mw=0.0,
        vm_phase_pu=np.full((n_bus, 3), np.nan),
        vuf_percent=np.full(n_bus, np.nan),
        line_p_from_mw=np.zeros(n_line),
        line_q_from_mvar=np.zeros(n_line),
    )


def battery_limits_kw(soc_kwh: float, dt_s: float, energy_kwh: float, power_kw: float, efficiency_roundtrip: float,
                      soc_min: float, soc_max: float) -> tuple[float, float]:
    """The most a battery can discharge and charge over one step, as power at its terminals. [kW]

    Same energy balance as `gridledger.grids.battery.battery_step` (round-trip
    efficiency split evenly between charge and discharge).

    Returns
    -------
    discharge_kw, charge_kw : float
        Both at least 0. [kW]
    """
    limits = battery_step(soc_kwh, np.array([-power_kw, power_kw]), dt_s, energy_kwh, power_kw,
                          efficiency_roundtrip, soc_min, soc_max)[0]
    return float(-limits[0]), float(limits[1])
