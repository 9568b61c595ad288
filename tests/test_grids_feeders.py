"""Feeder catalog, pandapower files and the checks at the boundary."""

import ast
import json
from pathlib import Path

import numpy as np
import pandapower
import pytest

import gridledger.grids
from gridledger.grids.feeders import (
    FEEDERS,
    SIMBENCH_EXAMPLES,
    FeederError,
    catalog,
    feeder_info,
    is_simbench_code,
    is_unbalanced,
    load_buses,
    load_feeder,
)


def test_catalog_feeder_is_baran_wu_33_bus():
    net = load_feeder("case33bw")
    assert len(net.bus) == 33
    assert len(net.load) == 32
    assert net.load["p_mw"].sum() == pytest.approx(3.715)
    assert net.load["q_mvar"].sum() == pytest.approx(2.300)


def test_each_load_returns_a_fresh_net():
    first = load_feeder("case33bw")
    first.load["p_mw"] *= 2.0
    assert load_feeder("case33bw").load["p_mw"].sum() == pytest.approx(3.715)


def test_catalog_lists_case33bw():
    assert "case33bw" in FEEDERS


@pytest.mark.parametrize("as_path", [False, True])
def test_pandapower_json_file_loads_like_the_original(tmp_path, as_path):
    path = tmp_path / "feeder.json"
    original = pandapower.networks.case33bw()
    original.load.loc[3, "p_mw"] = 0.5
    pandapower.to_json(original, str(path))
    net = load_feeder(path if as_path else str(path))
    assert len(net.bus) == 33
    assert net.load.loc[3, "p_mw"] == 0.5


def test_unknown_name_lists_the_catalog():
    with pytest.raises(FeederError) as info:
        load_feeder("case34")
    message = str(info.value)
    assert "'case34'" in message
    assert "'case33bw'" in message


def test_feeder_error_is_a_value_error():
    assert issubclass(FeederError, ValueError)


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nowhere.json"
    with pytest.raises(FeederError, match="does not exist") as info:
        load_feeder(str(path))
    assert str(path) in str(info.value)
    assert "'case33bw'" in str(info.value)


@pytest.mark.parametrize("content", [json.dumps({"a": 1}), "not json {", "[1, 2]"])
def test_file_that_is_not_a_net_is_rejected(tmp_path, content):
    path = tmp_path / "other.json"
    path.write_text(content)
    with pytest.raises(FeederError, match="is not a pandapower net") as info:
        load_feeder(str(path))
    assert str(path) in str(info.value)


def test_net_without_ext_grid_is_rejected(tmp_path):
    net = pandapower.networks.case33bw()
    net.ext_grid["in_service"] = False
    path = tmp_path / "island.json"
    pandapower.to_json(net, str(path))
    with pytest.raises(FeederError, match="no in-service ext_grid"):
        load_feeder(str(path))


def test_net_without_loads_is_rejected(tmp_path):
    net = pandapower.networks.case33bw()
    net.load.drop(net.load.index, inplace=True)
    path = tmp_path / "empty.json"
    pandapower.to_json(net, str(path))
    with pytest.raises(FeederError, match="no in-service load"):
        load_feeder(str(path))


def test_load_buses_of_case33bw_are_all_but_the_slack():
    assert load_buses(load_feeder("case33bw")) == list(range(1, 33))


def test_load_buses_are_unique_sorted_and_in_service():
    net = pandapower.networks.case33bw()
    pandapower.create_load(net, bus=5, p_mw=0.01)
    net.load.loc[net.load["bus"] == 7, "in_service"] = False
    buses = load_buses(net)
    assert buses == [b for b in range(1, 33) if b != 7]
    assert all(type(b) is int for b in buses)


def test_grids_imports_no_cosimulation_or_ledger_code():
    forbidden = ("helics", "web3", "eth", "eth_account", "eth_abi", "vyper", "boa",
                 "gridledger.federates", "gridledger.contracts", "federates", "contracts")
    for source in Path(gridledger.grids.__file__).parent.glob("*.py"):
        tree = ast.parse(source.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert not any(name == f or name.startswith(f + ".") for f in forbidden), (source.name, name)


# Catalog ---------------------------------------------------------------------------------

BUILT_IN = {
    # name: (unbalanced, n_bus, n_line, n_load, n_trafo)
    "case33bw": (False, 33, 37, 32, 0),
    "cigre-mv": (False, 15, 15, 18, 2),
    "cigre-lv": (False, 44, 37, 15, 3),
    "ieee-eu-lv": (True, 907, 905, 55, 1),
}


def test_catalog_lists_the_reference_feeders():
    assert list(FEEDERS) == list(BUILT_IN)


@pytest.mark.parametrize("name", BUILT_IN)
def test_feeder_info_of_built_in_feeders(name):
    info = feeder_info(name)
    assert info.name == name
    assert (info.unbalanced, info.n_bus, info.n_line, info.n_load, info.n_trafo) == BUILT_IN[name]
    assert not info.has_profiles
    assert info.description


@pytest.mark.parametrize("name", BUILT_IN)
def test_each_catalog_feeder_loads_and_is_usable(name):
    net = load_feeder(name)
    assert is_unbalanced(net) is BUILT_IN[name][0]
    assert load_buses(net)


@pytest.mark.slow
def test_catalog_includes_example_simbench_codes():
    infos = catalog()
    assert [info.name for info in infos] == [*BUILT_IN, *SIMBENCH_EXAMPLES]
    for info in infos[len(BUILT_IN):]:
        assert info.has_profiles and not info.unbalanced
        assert info.description.startswith("SimBench")


def test_feeder_info_rejects_files(tmp_path):
    with pytest.raises(FeederError, match="not a catalog feeder"):
        feeder_info(str(tmp_path / "feeder.json"))


# SimBench ----------------------------------------------------------------------------------

def test_simbench_code_loads_with_its_profiles_and_code():
    net = load_feeder("1-LV-rural1--0-sw")
    assert net.name == "1-LV-rural1--0-sw"
    assert (len(net.bus), len(net.load), len(net.sgen)) == (15, 13, 4)
    assert len(net.profiles["load"]) == 35136
    assert feeder_info("1-LV-rural1--0-sw").has_profiles


def test_simbench_nets_are_fresh_copies():
    first = load_feeder("1-LV-rural1--0-sw")
    first.load["p_mw"] *= 2.0
    assert load_feeder("1-LV-rural1--0-sw").load["p_mw"].sum() == pytest.approx(first.load["p_mw"].sum() / 2)


def test_simbench_taps_are_effective():
    # simbench 1.6 leaves tap_changer_type empty; pandapower 3 would then ignore
    # the grid's tap position -1 (+1.5 % on the MV busbars).
    net = load_feeder("1-MV-urban--0-sw")
    assert net.trafo["tap_changer_type"].tolist() == ["Ratio", "Ratio"]
    pandapower.runpp(net)
    at_tap = net.res_bus.loc[[2, 3], "vm_pu"].to_numpy()
    net.trafo["tap_pos"] = 0
    pandapower.runpp(net)
    assert np.all(at_tap - net.res_bus.loc[[2, 3], "vm_pu"].to_numpy() > 0.014)


@pytest.mark.parametrize("code", ["1-LV-rural9--0-sw", "1-HV-urban--0-sw", "1-EHV-mixed--0-sw", "9-LV-x"])
def test_invalid_simbench_code_lists_examples(code):
    with pytest.raises(FeederError) as info:
        load_feeder(code)
    message = str(info.value)
    assert repr(code) in message
    assert all(repr(example) in message for example in SIMBENCH_EXAMPLES)


def test_is_simbench_code_takes_distribution_grids_only():
    assert is_simbench_code("1-LV-rural1--0-sw")
    assert is_simbench_code("1-MV-urban--2-no_sw")
    assert is_simbench_code("1-MVLV-rural-all-0-sw")
    assert not is_simbench_code("1-HV-urban--0-sw")
    assert not is_simbench_code("case33bw")


def test_unknown_name_mentions_simbench_codes():
    with pytest.raises(FeederError, match="SimBench code such as '1-LV-rural1--0-sw'"):
        load_feeder("ieee13")


# Unbalanced feeders --------------------------------------------------------------------------

def test_is_unbalanced_needs_an_in_service_asymmetric_element():
    net = pandapower.networks.case33bw()
    assert not is_unbalanced(net)
    index = pandapower.create_asymmetric_load(net, 3, p_a_mw=0.01, in_service=False)
    assert not is_unbalanced(net)
    net.asymmetric_load.at[index, "in_service"] = True
    assert is_unbalanced(net)
    other = pandapower.networks.case33bw()
    pandapower.create_asymmetric_sgen(other, 3, p_b_mw=0.01)
    assert is_unbalanced(other)


def test_asymmetric_loads_count_as_load_buses():
    net = pandapower.networks.case33bw()
    net.load["in_service"] = False
    pandapower.create_asymmetric_load(net, 7, p_c_mw=0.01)
    assert load_buses(net) == [7]


def test_unbalanced_file_without_zero_sequence_data_is_rejected(tmp_path):
    net = pandapower.networks.case33bw()
    pandapower.create_asymmetric_load(net, 3, p_a_mw=0.01)
    path = tmp_path / "unbalanced.json"
    pandapower.to_json(net, str(path))
    with pytest.raises(FeederError, match="zero-sequence") as info:
        load_feeder(str(path))
    message = str(info.value)
    assert "line.r0_ohm_per_km" in message and "ext_grid.s_sc_max_mva" in message
    assert "add_zero_impedance_parameters" in message


def test_unbalanced_file_with_zero_sequence_data_loads(tmp_path):
    net = pandapower.networks.ieee_european_lv_asymmetric("on_peak_566")
    path = tmp_path / "eu.json"
    pandapower.to_json(net, str(path))
    assert is_unbalanced(load_feeder(path))


def test_voltage_levels_follow_iec_60038_bounds():
    net = load_feeder("case33bw")
    extra = {vn_kv: int(pandapower.create_bus(net, vn_kv=vn_kv)) for vn_kv in (0.4, 1.0, 1.1, 35.0, 36.0)}
    for bus in extra.values():
        pandapower.create_load(net, bus, p_mw=0.01)
    assert load_buses(net, "lv") == [extra[0.4], extra[1.0]]
    assert load_buses(net, "mv") == list(range(1, 33)) + [extra[1.1], extra[35.0]]
    assert load_buses(net, "any") == list(range(1, 33)) + list(extra.values())
    with pytest.raises(ValueError, match="voltage_level must be one of any, lv, mv, got 'LV'"):
        load_buses(net, "LV")
