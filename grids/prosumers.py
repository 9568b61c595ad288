"""Prosumers: who takes over which feeder load and which devices they own.

Prosumer ``i`` takes over the feeder's load on the ``i``-th load bus (or the
``i``-th listed bus); the load's ``p_mw``/``q_mvar`` in the feeder file is
its peak. On an unbalanced feeder the load may be an ``asymmetric_load``,
whose peak is the sum of its phases. Which prosumers own PV and which a
battery are seeded choices, and device sizes scale with the peak load.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np
import pandapower

from gridledger.grids.feeders import is_unbalanced, load_buses
from gridledger.grids.prosumer_spec import Prosumer

__all__ = ["Prosumer", "DeviceIndex", "place_prosumers", "add_prosumer_devices"]


@dataclass(frozen=True)
class DeviceIndex:
    """pandapower element indices of prosumer devices, by prosumer name.

    Attributes
    ----------
    sgen : Mapping[str, int]
        ``net.sgen`` index of each PV prosumer's PV system.
    storage : Mapping[str, int]
        ``net.storage`` index of each battery prosumer's battery.
    """

    sgen: Mapping[str, int]
    storage: Mapping[str, int]


def place_prosumers(
    net: pandapower.pandapowerNet,
    count: int,
    seed: int,
    pv_share: float,
    pv_kwp_per_kw_load: float,
    battery_share: float,
    battery_kwh_per_kw_load: float,
    battery_kw_per_kwh: float,
    buses: Sequence[int] | None = None,
    voltage_level: str = "any",
) -> list[Prosumer]:
    """Put ``count`` prosumers on the feeder's load buses.

    Prosumer ``i`` takes over the first in-service load (lowest
    ``net.load`` index, or lowest ``net.asymmetric_load`` index on a bus
    without a ``load``) on the ``i``-th bus of ``buses``, or of
    :func:`~gridledger.grids.feeders.load_buses` at ``voltage_level`` when
    ``buses`` is None.
    ``round(pv_share * count)`` prosumers, chosen with
    ``numpy.random.default_rng(seed)``, get PV of
    ``pv_kwp_per_kw_load * peak load``; then ``round(battery_share * count)``
    prosumers, chosen independently, get a battery of
    ``battery_kwh_per_kw_load * peak load`` with power limit
    ``battery_kw_per_kwh * capacity``. Rounding is half up.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; not modified.
    count : int
        Number of prosumers.
    seed : int
        Seed of the PV and battery choices.
    pv_share : float
        Fraction of prosumers with PV, in [0, 1]. [-]
    pv_kwp_per_kw_load : float
        PV size per kW of peak load. [kWp/kW]
    battery_share : float
        Fraction of prosumers with a battery, in [0, 1]. [-]
    battery_kwh_per_kw_load : float
        Battery capacity per kW of peak load. [kWh/kW]
    battery_kw_per_kwh : float
        Battery power per kWh of capacity (C-rate). [1/h]
    buses : sequence of int, optional
        Buses to use, in prosumer order; each must carry an in-service load
        and lie in ``voltage_level``.
    voltage_level : {"any", "lv", "mv"}
        Nominal voltage range of the load buses, a key of
        :data:`~gridledger.grids.names.VOLTAGE_LEVELS`; "lv" keeps the
        prosumers off the medium-voltage loads of a combined MV/LV grid.

    Returns
    -------
    prosumers : list of Prosumer
        In placement order, named ``p01``, ``p02``, ...

    Raises
    ------
    ValueError
        If ``count`` exceeds the available buses, a listed bus has no
        in-service load at ``voltage_level`` or is listed twice, or a
        share, size or voltage level is out of range.
    """
    if isinstance(count, bool) or not isinstance(count, (int, np.integer)) or count < 0:
        raise ValueError(f"count must be a non-negative integer, got {count!r}")
    for label, share in (("pv_share", pv_share), ("battery_share", battery_share)):
        if not 0.0 <= share <= 1.0:
            raise ValueError(f"{label} must be within [0, 1], got {share!r}")
    for label, size in (
        ("pv_kwp_per_kw_load", pv_kwp_per_kw_load),
        ("battery_kwh_per_kw_load", battery_kwh_per_kw_load),
        ("battery_kw_per_kwh", battery_kw_per_kwh),
    ):
        if not size >= 0.0:
            raise ValueError(f"{label} must be non-negative, got {size!r}")

    available = load_buses(net, voltage_level)
    level = "" if voltage_level == "any" else f" at voltage level {voltage_level!r}"
    if buses is None:
        chosen = available
        if count > len(chosen):
            raise ValueError(
                f"count={count} prosumers but the feeder has only {len(chosen)} load buses{level}"
            )
    else:
        chosen = [int(bus) for bus in buses]
        if count > len(chosen):
            raise ValueError(f"count={count} prosumers but only {len(chosen)} buses are listed")
        missing = sorted(set(chosen) - set(available))
        if missing:
            raise ValueError(
                f"listed buses {missing} carry no in-service load{level}; buses with a load{level}: "
                f"{_shortened(available)}"
            )
        if len(set(chosen)) != len(chosen):
            raise ValueError(f"buses must be listed once each, got {chosen}")
    chosen = chosen[:count]

    rng = np.random.default_rng(seed)
    with_pv = set(rng.choice(count, _round_half_up(pv_share * count), replace=False).tolist())
    with_battery = set(rng.choice(count, _round_half_up(battery_share * count), replace=False).tolist())

    width = max(2, len(str(count)))
    prosumers = []
    for i, bus in enumerate(chosen):
        load_element, load_index, p_mw, q_mvar = _first_load(net, bus)
        battery_kwh = battery_kwh_per_kw_load * p_mw * 1e3 if i in with_battery else 0.0
        prosumers.append(Prosumer(
            name=f"p{i + 1:0{width}d}",
            bus=bus,
            load_index=load_index,
            peak_load_p_mw=p_mw,
            peak_load_q_mvar=q_mvar,
            pv_kwp=pv_kwp_per_kw_load * p_mw * 1e3 if i in with_pv else 0.0,
            battery_energy_kwh=battery_kwh,
            battery_power_kw=battery_kw_per_kwh * battery_kwh,
            load_element=load_element,
        ))
    return prosumers


def add_prosumer_devices(net: pandapower.pandapowerNet, prosumers: Sequence[Prosumer]) -> DeviceIndex:
    """Add one ``sgen`` per PV prosumer and one ``storage`` per battery prosumer.

    Devices start at zero output. pandapower's load convention applies to
    storage: ``p_mw`` positive = charging; ``sgen`` ``p_mw`` positive =
    generation. The sgen's ``sn_mva`` and ``max_p_mw`` are the PV's kWp;
    the storage's ``sn_mva`` and ``max_p_mw`` (``-min_p_mw``) its power
    limit and ``max_e_mwh`` its capacity. The sgen's ``type`` is "PV" on
    balanced feeders and "wye" (balanced over the three phases) on
    unbalanced ones, where ``runpp_3ph`` reads only "wye" and "delta" rows.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; modified in place.
    prosumers : sequence of Prosumer
        From :func:`place_prosumers`.

    Returns
    -------
    index : DeviceIndex
        Element indices by prosumer name.

    Raises
    ------
    ValueError
        If the net already has an sgen or storage of the same name (the
        devices were added before), or a prosumer has a battery on an
        unbalanced feeder (pandapower's ``runpp_3ph`` ignores storage).
    """
    unbalanced = is_unbalanced(net)
    if unbalanced and any(p.battery_energy_kwh > 0.0 for p in prosumers):
        raise ValueError(
            "batteries cannot be placed on an unbalanced feeder: pandapower's runpp_3ph "
            "ignores net.storage; set the battery share to 0"
        )
    taken = set(net.sgen["name"].dropna()) | set(net.storage["name"].dropna())
    sgen, storage = {}, {}
    for prosumer in prosumers:
        if prosumer.pv_kwp > 0.0:
            name = f"{prosumer.name} pv"
            _check_free(name, taken)
            sgen[prosumer.name] = int(pandapower.create_sgen(
                net, prosumer.bus, p_mw=0.0, q_mvar=0.0, sn_mva=prosumer.pv_kwp / 1e3,
                max_p_mw=prosumer.pv_kwp / 1e3, min_p_mw=0.0, name=name, type="wye" if unbalanced else "PV",
            ))
        if prosumer.battery_energy_kwh > 0.0:
            name = f"{prosumer.name} battery"
            _check_free(name, taken)
            storage[prosumer.name] = int(pandapower.create_storage(
                net, prosumer.bus, p_mw=0.0, max_e_mwh=prosumer.battery_energy_kwh / 1e3,
                q_mvar=0.0, sn_mva=prosumer.battery_power_kw / 1e3,
                max_p_mw=prosumer.battery_power_kw / 1e3, min_p_mw=-prosumer.battery_power_kw / 1e3,
                name=name, type="battery",
            ))
    return DeviceIndex(sgen=MappingProxyType(sgen), storage=MappingProxyType(storage))


def _check_free(name: str, taken: set) -> None:
    if name in taken:
        raise ValueError(f"the net already has a device named {name!r}; add prosumer devices once")


def _first_load(net: pandapower.pandapowerNet, bus: int) -> tuple[str, int, float, float]:
    """Table, index, peak p [MW] and q [Mvar] of the first in-service load on a bus."""
    loads = net.load[net.load["in_service"].astype(bool) & (net.load["bus"] == bus)]
    if len(loads):
        index = int(loads.index.min())
        return "load", index, float(net.load.at[index, "p_mw"]), float(net.load.at[index, "q_mvar"])
    asymmetric = net.asymmetric_load
    rows = asymmetric[asymmetric["in_service"].astype(bool) & (asymmetric["bus"] == bus)]
    index = int(rows.index.min())
    row = asymmetric.loc[index]
    return ("asymmetric_load", index, float(row[["p_a_mw", "p_b_mw", "p_c_mw"]].sum()),
            float(row[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].sum()))


def _shortened(buses: Sequence[int], shown: int = 20) -> str:
    """A bus list for an error message: the first `shown` and how many more."""
    head = ", ".join(str(bus) for bus in buses[:shown])
    more = f", ... ({len(buses) - shown} more)" if len(buses) > shown else ""
    return f"[{head}{more}]"


def _round_half_up(x: float) -> int:
    return int(np.floor(x + 0.5))
