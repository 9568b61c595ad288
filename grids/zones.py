"""Zones of a feeder: which buses each market zone (and later each ledger shard) holds.

A zone is a set of ``net.bus`` indices. A feeder is split either by its
MV/LV transformers, one zone per low-voltage network (the buses one
transformer's LV side feeds, as in SimBench's combined MV/LV grids where
each MV bus with a transformer feeds one LV grid), or by explicit lists of
buses. Every prosumer belongs to exactly one zone. Physics is not split:
the power flow still runs over the whole feeder.
"""

from collections.abc import Mapping, Sequence

import pandapower
import pandapower.topology

__all__ = ["LV_MAX_KV", "MV_ZONE", "group_zones", "zone_of_prosumers", "zones_by_transformer", "zones_from_buses"]

LV_MAX_KV = 1.0
"""Highest nominal voltage of a low-voltage bus (IEC 60038: LV up to 1000 V AC). [kV]"""
MV_ZONE = "mv"
"""Name of the zone of the buses no MV/LV transformer feeds."""


def zones_by_transformer(net: pandapower.pandapowerNet) -> dict[str, tuple[int, ...]]:
    """One zone per MV/LV transformer's low-voltage network, plus the upstream buses.

    A transformer is MV/LV when its LV bus has a nominal voltage of at most
    :data:`LV_MAX_KV`, whether or not its HV bus is the external grid's
    (on a SimBench LV grid or CIGRE LV the substation itself is MV/LV);
    HV/MV transformers never bound a zone. Its zone is the connected
    component of its LV bus in the feeder without its two- and
    three-winding transformers (lines, closed switches and other branches
    connect; open switches separate), named ``"trafo<index>"``
    after the lowest ``net.trafo`` index that feeds the component, so
    parallel transformers share one zone. Every other bus (the MV feeder,
    the HV/MV substation) forms the zone :data:`MV_ZONE` if there is one.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; not modified.

    Returns
    -------
    zones : dict of str to tuple of int
        Zone name to its ``net.bus`` indices, ascending; zones ordered by
        transformer index, :data:`MV_ZONE` last. The zones are disjoint and
        cover ``net.bus``.

    Raises
    ------
    ValueError
        If the feeder has no in-service MV/LV transformer.

    References
    ----------
    S. Meinecke et al., "SimBench - A Benchmark Dataset of Electric Power
    Systems to Compare Innovative Solutions Based on Power Flow Analysis",
    Energies 13(12), 3290, 2020 (grid structure: MV feeders with MV/LV
    substations feeding LV grids). IEC 60038:2009, standard voltages.
    """
    trafos = net.trafo[net.trafo.in_service.astype(bool)].sort_index()
    lv_kv = net.bus.vn_kv.reindex(trafos.lv_bus).to_numpy()
    mvlv = trafos[lv_kv <= LV_MAX_KV]
    if not len(mvlv):
        raise ValueError(f"the feeder has no in-service MV/LV transformer (LV side at most {LV_MAX_KV:g} kV)")
    graph = pandapower.topology.create_nxgraph(net, include_trafos=False, include_trafo3ws=False)
    zones: dict[str, tuple[int, ...]] = {}
    zoned: set[int] = set()
    for index, lv_bus in zip(mvlv.index, mvlv.lv_bus):
        if int(lv_bus) in zoned:
            continue
        buses = pandapower.topology.connected_component(graph, int(lv_bus)) if int(lv_bus) in graph else [lv_bus]
        zones[f"trafo{index}"] = tuple(sorted(int(bus) for bus in buses))
        zoned.update(zones[f"trafo{index}"])
    upstream = tuple(sorted(int(bus) for bus in net.bus.index if int(bus) not in zoned))
    if upstream:
        zones[MV_ZONE] = upstream
    return zones


def group_zones(zones: Mapping[str, Sequence[int]], prosumers_in: Mapping[str, int],
                count: int) -> dict[str, tuple[int, ...]]:
    """Merge neighbouring zones, in their order, into at most `count` zones of about equal prosumer numbers.

    Zones are taken in the given order (by transformer index for
    :func:`zones_by_transformer`, whose numbering follows the feeders in
    SimBench's grids). The i-th group aims at i * total / `count`
    prosumers counted so far: it is closed before the next zone when it
    has reached that, or when adding the zone would overshoot the aim by
    more than stopping falls short of it. A zone that alone holds more than
    a share makes fewer groups; zones without a prosumer join the group
    they fall in, those after the last prosumer the last group.

    Parameters
    ----------
    zones : mapping of str to sequence of int
        Disjoint zones in order, name to buses.
    prosumers_in : mapping of str to int
        Number of prosumers in each zone (missing: none).
    count : int
        Most groups; at least 1.

    Returns
    -------
    groups : dict of str to tuple of int
        ``"g0"``, ``"g1"``, ... to their buses, ascending.
    """
    total = sum(prosumers_in.get(name, 0) for name in zones)
    groups: list[list[int]] = [[]]
    running = held = 0
    for name, buses in zones.items():
        n = prosumers_in.get(name, 0)
        aim = len(groups) * total / count
        if held and len(groups) < count and running < total and (running >= aim or running + n - aim > aim - running):
            groups.append([])
            held = 0
        groups[-1] += [int(bus) for bus in buses]
        running += n
        held += n
    return {f"g{i}": tuple(sorted(buses)) for i, buses in enumerate(groups)}


def zones_from_buses(net: pandapower.pandapowerNet, lists: Sequence[Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """Zones given as lists of buses, named ``"z0"``, ``"z1"``, ... in list order.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; not modified.
    lists : sequence of sequence of int
        ``net.bus`` indices of each zone.

    Returns
    -------
    zones : dict of str to tuple of int
        Zone name to its buses, ascending.

    Raises
    ------
    ValueError
        If a list is empty, a bus is not in the feeder, or a bus is listed
        twice (in one zone or in two).
    """
    zones: dict[str, tuple[int, ...]] = {}
    owner: dict[int, str] = {}
    for i, buses in enumerate(lists):
        name = f"z{i}"
        if not buses:
            raise ValueError(f"zone {name} (list {i}) lists no bus")
        for bus in buses:
            if bus not in net.bus.index:
                raise ValueError(f"bus {bus} of zone {name} (list {i}) is not in the feeder")
            if bus in owner:
                where = (f"twice in zone {name}" if owner[bus] == name
                         else f"in zone {owner[bus]} and again in zone {name}")
                raise ValueError(f"bus {bus} is listed {where}; a bus belongs to one zone")
            owner[bus] = name
        zones[name] = tuple(sorted(int(bus) for bus in buses))
    return zones


def zone_of_prosumers(prosumer_buses: Mapping[str, int], zones: Mapping[str, Sequence[int]]) -> dict[str, str]:
    """The zone of every prosumer, from the bus it is connected to.

    Parameters
    ----------
    prosumer_buses : mapping of str to int
        Prosumer name to its ``net.bus`` index.
    zones : mapping of str to sequence of int
        Disjoint zones, name to buses.

    Returns
    -------
    zone_of : dict of str to str
        Prosumer name to zone name, in the order of ``prosumer_buses``.

    Raises
    ------
    ValueError
        If a prosumer's bus is in no zone, or in more than one.
    """
    owners: dict[int, list[str]] = {}
    for name, buses in zones.items():
        for bus in buses:
            owners.setdefault(int(bus), []).append(name)
    zone_of = {}
    for prosumer, bus in prosumer_buses.items():
        found = owners.get(int(bus), [])
        if len(found) != 1:
            where = "no zone" if not found else f"zones {', '.join(found)}"
            raise ValueError(f"prosumer {prosumer} on bus {bus} is in {where}; each prosumer bus must be in "
                             "exactly one zone")
        zone_of[prosumer] = found[0]
    return zone_of
