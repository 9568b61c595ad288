"""Zones of a feeder: by MV/LV transformer or by lists of buses, and the zone of every prosumer."""

import copy

import pandapower
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridledger.cli import EXIT_BAD_INPUT, main
from gridledger.grids.feeders import load_feeder
from gridledger.grids.zones import MV_ZONE, group_zones, zone_of_prosumers, zones_by_transformer, zones_from_buses
from gridledger.scenario import SINGLE_ZONE, ScenarioError, build_scenario
from gridledger.study import StudyError, load_study, parse_study


def two_transformer_net():
    """A 20 kV feeder 0-1-2 with an MV/LV transformer at bus 1 (LV buses 3-5) and one at bus 2 (LV 6-7)."""
    net = pandapower.create_empty_network()
    for _ in range(3):
        pandapower.create_bus(net, vn_kv=20.0)
    for _ in range(5):
        pandapower.create_bus(net, vn_kv=0.4)
    pandapower.create_ext_grid(net, 0)
    for a, b in ((0, 1), (1, 2)):
        pandapower.create_line(net, a, b, 1.0, "NA2XS2Y 1x95 RM/25 12/20 kV")
    for a, b in ((3, 4), (4, 5), (6, 7)):
        pandapower.create_line(net, a, b, 0.1, "NAYY 4x50 SE")
    pandapower.create_transformer(net, 1, 3, "0.25 MVA 20/0.4 kV")
    pandapower.create_transformer(net, 2, 6, "0.25 MVA 20/0.4 kV")
    for bus in (4, 5, 7):
        pandapower.create_load(net, bus, p_mw=0.01)
    return net


def test_each_transformer_zone_holds_the_lv_buses_it_feeds():
    assert zones_by_transformer(two_transformer_net()) == {"trafo0": (3, 4, 5), "trafo1": (6, 7), MV_ZONE: (0, 1, 2)}


def test_parallel_transformers_share_one_zone_named_after_the_lower_index():
    net = two_transformer_net()
    pandapower.create_transformer(net, 2, 7, "0.25 MVA 20/0.4 kV")
    pandapower.create_transformer(net, 1, 5, "0.25 MVA 20/0.4 kV")
    assert zones_by_transformer(net) == {"trafo0": (3, 4, 5), "trafo1": (6, 7), MV_ZONE: (0, 1, 2)}


def test_an_open_switch_separates_lv_networks():
    net = two_transformer_net()
    tie = pandapower.create_line(net, 5, 7, 0.1, "NAYY 4x50 SE")
    assert list(zones_by_transformer(net)) == ["trafo0", MV_ZONE]
    pandapower.create_switch(net, 5, tie, et="l", closed=False)
    assert zones_by_transformer(net) == {"trafo0": (3, 4, 5), "trafo1": (6, 7), MV_ZONE: (0, 1, 2)}


def test_a_feeder_without_mv_lv_transformers_cannot_be_zoned_by_transformer():
    with pytest.raises(ValueError, match="no in-service MV/LV transformer"):
        zones_by_transformer(load_feeder("case33bw"))


def assert_partition(net, zones):
    buses = [bus for zone in zones.values() for bus in zone]
    assert len(buses) == len(set(buses))
    assert set(buses) == set(net.bus.index)


def assert_transformer_zones(net, zones):
    """Each LV bus is in a transformer's zone, each zone holds its transformer's LV bus, and no
    closed line joins two zones."""
    lv_buses = set(net.bus.index[net.bus.vn_kv <= 1.0])
    trafo_zones = {name: buses for name, buses in zones.items() if name != MV_ZONE}
    assert set().union(*trafo_zones.values()) == lv_buses
    for name, buses in trafo_zones.items():
        assert net.trafo.at[int(name.removeprefix("trafo")), "lv_bus"] in buses
    zone_of_bus = {bus: name for name, buses in zones.items() for bus in buses}
    open_lines = set(net.switch.element[(net.switch.et == "l") & ~net.switch.closed.astype(bool)])
    for index, line in net.line[net.line.in_service.astype(bool)].iterrows():
        if index not in open_lines:
            assert zone_of_bus[line.from_bus] == zone_of_bus[line.to_bus], index


def test_cigre_lv_has_one_zone_per_transformer_and_is_deterministic():
    net = load_feeder("cigre-lv")
    zones = zones_by_transformer(net)
    assert list(zones) == ["trafo0", "trafo1", "trafo2", MV_ZONE]
    assert_partition(net, zones)
    assert_transformer_zones(net, zones)
    assert zones_by_transformer(copy.deepcopy(net)) == zones


@pytest.mark.slow
def test_simbench_mvlv_rural_has_one_zone_per_lv_grid():
    # 92 transformers: two HV/MV (110/20 kV) and 90 MV/LV, each feeding its own LV grid.
    net = load_feeder("1-MVLV-rural-all-0-sw")
    zones = zones_by_transformer(net)
    assert len(zones) == 90 + 1
    assert all(len(buses) > 1 for buses in zones.values())
    assert_partition(net, zones)
    assert_transformer_zones(net, zones)
    assert zones_by_transformer(copy.deepcopy(net)) == zones


def test_zones_are_grouped_in_order_by_prosumer_share():
    zones = {"a": (0,), "b": (1, 2), "c": (3,), "d": (4,), "mv": (5,)}
    # 4 prosumers, 2 groups: a and b hold the first 2 (half), c and d the rest; the empty mv joins the last.
    assert group_zones(zones, {"a": 1, "b": 1, "c": 1, "d": 1}, 2) == {"g0": (0, 1, 2), "g1": (3, 4, 5)}
    # b alone overshoots the first aim (8/3) by more than stopping after a falls short: a closes g0.
    assert group_zones(zones, {"a": 1, "b": 6, "c": 1}, 3) == {"g0": (0,), "g1": (1, 2), "g2": (3, 4, 5)}
    # A zone that alone holds more than a share makes fewer groups.
    assert group_zones(zones, {"b": 6, "c": 1}, 3) == {"g0": (0, 1, 2), "g1": (3, 4, 5)}
    # Zones after the last prosumer join the last group rather than make empty ones.
    assert group_zones(zones, {"a": 2, "b": 2}, 4) == {"g0": (0,), "g1": (1, 2, 3, 4, 5)}
    assert group_zones(zones, {"a": 1}, 1) == {"g0": (0, 1, 2, 3, 4, 5)}


@given(st.lists(st.integers(0, 9), min_size=1, max_size=30), st.integers(1, 8))
def test_groups_are_contiguous_cover_every_bus_and_are_at_most_count(counts, count):
    zones = {f"t{i}": (2 * i, 2 * i + 1) for i in range(len(counts))}
    prosumers = {f"t{i}": n for i, n in enumerate(counts)}
    groups = group_zones(zones, prosumers, count)
    assert 1 <= len(groups) <= count and list(groups) == [f"g{i}" for i in range(len(groups))]
    assert [bus for buses in groups.values() for bus in buses] == list(range(2 * len(counts)))
    total, share = sum(counts), sum(counts) / count
    for i, buses in enumerate(groups.values()):   # every group but the last closes as soon as it reaches its share
        held = sum(counts[b // 2] for b in buses[::2])
        largest = max(counts[b // 2] for b in buses[::2])
        if i < len(groups) - 1:
            assert held <= share + largest or total == 0


def test_a_study_zoned_by_transformer_in_two_groups_splits_the_lv_grids():
    # CIGRE LV: residential LV grid trafo0 (buses 2-19), industrial trafo1 (21-22), commercial trafo2 (24-43).
    built = scenario("cigre-lv", 6, {"by": "transformer", "count": 2}, buses=[12, 16, 22, 35, 40, 43])
    assert built.zones == {"g0": tuple(range(2, 20)) + (21, 22), "g1": (0, 1, 20, 23, *range(24, 44))}
    assert built.zone_of == {"p01": "g0", "p02": "g0", "p03": "g0", "p04": "g1", "p05": "g1", "p06": "g1"}


def test_listed_zones_are_named_in_order_with_sorted_buses():
    assert zones_from_buses(two_transformer_net(), [[5, 3], [7]]) == {"z0": (3, 5), "z1": (7,)}


@pytest.mark.parametrize("lists,message", [
    ([[3, 99]], "bus 99 of zone z0 (list 0) is not in the feeder"),
    ([[3], [4, 3]], "bus 3 is listed in zone z0 and again in zone z1; a bus belongs to one zone"),
    ([[3, 3]], "bus 3 is listed twice in zone z0"),
    ([[3], []], "zone z1 (list 1) lists no bus"),
])
def test_bad_bus_lists_are_refused(lists, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        zones_from_buses(two_transformer_net(), lists)


def test_every_prosumer_gets_the_zone_of_its_bus():
    zones = {"z0": (3, 4, 5), "z1": (6, 7)}
    assert zone_of_prosumers({"p01": 4, "p02": 7, "p03": 5}, zones) == {"p01": "z0", "p02": "z1", "p03": "z0"}


@pytest.mark.parametrize("zones,message", [
    ({"z0": (3, 4)}, "prosumer p02 on bus 7 is in no zone"),
    ({"z0": (4,), "z1": (4, 7)}, "prosumer p01 on bus 4 is in zones z0, z1"),
])
def test_a_prosumer_outside_exactly_one_zone_is_refused(zones, message):
    with pytest.raises(ValueError, match=message):
        zone_of_prosumers({"p01": 4, "p02": 7}, zones)


def scenario(feeder, count, zones=None, **prosumers):
    grid = {"feeder": feeder} if zones is None else {"feeder": feeder, "zones": zones}
    return build_scenario(parse_study({"name": "z", "duration_s": 900, "grid": grid,
                                       "prosumers": {"count": count, **prosumers}}))


def test_a_study_without_zones_has_one_zone_of_every_prosumer():
    built = scenario("case33bw", 4)
    assert built.zones == {SINGLE_ZONE: tuple(built.net.bus.index)}
    assert built.zone_of == {p.name: SINGLE_ZONE for p in built.prosumers}


def test_a_study_zoned_by_transformer_routes_each_prosumer_to_its_lv_grid():
    built = scenario("cigre-lv", 6, {"by": "transformer"})
    assert set(built.zone_of) == {p.name for p in built.prosumers}
    for p in built.prosumers:
        assert p.bus in built.zones[built.zone_of[p.name]]
    assert set(built.zones) == set(built.zone_of.values())


def test_listed_zones_that_hold_no_prosumer_are_left_out():
    built = scenario("case33bw", 2, {"buses": [[1, 2], [30, 31]]}, buses=[1, 2])
    assert built.zones == {"z0": (1, 2)}
    assert built.zone_of == {"p01": "z0", "p02": "z0"}


@pytest.mark.parametrize("feeder,zones,prosumers,message", [
    ("case33bw", {"by": "transformer"}, {}, "grid.zones: the feeder has no in-service MV/LV transformer"),
    ("case33bw", {"buses": [[1, 2], [999]]}, {"buses": [1, 2]}, "grid.zones: bus 999 of zone z1 (list 1) is not"),
    ("case33bw", {"buses": [[1, 2, 3]]}, {}, "grid.zones: prosumer p04 on bus 4 is in no zone"),
])
def test_zones_that_do_not_fit_the_feeder_name_the_field(feeder, zones, prosumers, message):
    with pytest.raises(ScenarioError) as err:
        scenario(feeder, len(prosumers.get("buses", [])) or 4, zones, **prosumers)
    assert err.value.field == "grid.zones"
    assert message in str(err.value)


def test_a_count_without_by_transformer_exits_2_naming_the_field(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\ngrid: {zones: {buses: [[1, 2]], count: 2}}\n")
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert str(path) in str(err.value) and "grid.zones" in str(err.value)
    assert "count = 2 groups transformer zones; it needs by: transformer" in str(err.value)
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    assert "count = 2 groups transformer zones" in capsys.readouterr().err
