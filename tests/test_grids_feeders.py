"""Feeder catalog, pandapower files and the checks at the boundary."""

import ast
import json
from pathlib import Path

import pandapower
import pytest

import gridledger.grids
from gridledger.grids.feeders import FEEDERS, FeederError, load_buses, load_feeder


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
