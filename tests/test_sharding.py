"""`market.sharding: per-zone` without running a federation: validation, names, routing, configs, results join."""

from __future__ import annotations

import json

import numpy as np
import pytest
import xarray as xr
import yaml
from eth_account import Account

from gridledger.agents.relay import signed_orders_message, signed_readings_message
from gridledger.agents.routing import TxRouter, UnknownSigner, tx_signer
from gridledger.contracts.typed_data import sign_order, sign_reading
from gridledger.messages import decode
from gridledger.cli import EXIT_BAD_INPUT, main
from gridledger.contracts.keys import derive_account
from gridledger.federation import LEDGER_ENDPOINT, federate_names, ledger_endpoint
from gridledger.launcher import federate_command, prepare, runner_json
from gridledger.results import zone_ledgers
from gridledger.roster import load_roster, run_zones, zone_roster
from gridledger.study import StudyError, load_study, parse_study
from tests.e2e_helpers import TEST_SECRET

ZONES = {"buses": [list(range(0, 18)), list(range(18, 25)), list(range(25, 33))]}
ZONED = {"name": "z", "start": "2024-06-21T10:00:00", "duration_s": 900, "seed": 3,
         "prosumers": {"count": 6, "buses": [3, 5, 20, 22, 27, 30]},
         "grid": {"feeder": "case33bw", "zones": ZONES}, "market": {"sharding": "per-zone"}}


def _sign(account, nonce: int = 0) -> bytes:
    return account.sign_transaction({"to": account.address, "value": 0, "gas": 21000, "gasPrice": 1,
                                     "nonce": nonce, "chainId": 5}).raw_transaction


SHARDING_REFUSED = "market.sharding = 'per-zone' runs one ledger per zone with the 'uniform-double-auction' mechanism"
BAD = [
    ("name: x\nmarket: {sharding: per-zone}\n",
     "market.sharding = 'per-zone' needs grid.zones (by: transformer, or buses: a list of bus lists)"),
    ("name: x\nmarket: {sharding: per-feeder}\n", "market.sharding = 'per-feeder': Input should be 'none' or 'per-zone'"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, mechanism: pay-as-bid}\n",
     "market.mechanism = 'pay-as-bid' is not sharded: set market.sharding: none or drop it"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, mechanism: vickrey}\n",
     "market.mechanism = 'vickrey' is not sharded"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, mechanism: english}\n",
     "market.mechanism = 'english' is not sharded"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, mechanism: merit-order}\n",
     "market.mechanism = 'merit-order' is not sharded"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, voltage_regulation: true}\n",
     "market.voltage_regulation = true is not sharded"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, charging_coordination: true}\n",
     "market.charging_coordination = true is not sharded"),
    ("name: x\ngrid: {zones: {by: transformer}}\n"
     "market: {sharding: per-zone, submission: batched, clearing: verified-batch}\n",
     "market.clearing = 'verified-batch' is not sharded"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone}\nhelics: {hosts: {ledger-z0: 10.0.0.6}}\n",
     "helics.hosts names 'ledger-z0', which does not run in this study; allowed: grid, ledger, der"),
    ("name: x\ngrid: {zones: {by: transformer}}\nmarket: {sharding: per-zone, gate_closure_s: 1}\n",
     "market.gate_closure_s = 1 leaves no second between a zone's clearing at the gate and the interval start "
     "for the cross-zone settlement (market.sharding = 'per-zone'): use at least 2"),
]


@pytest.mark.parametrize("body,expected", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_sharding_exits_2_naming_file_field_and_value(tmp_path, capsys, body, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert str(path) in str(err.value) and expected in str(err.value)
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err


def test_every_refusal_names_what_sharding_runs():
    for body, _ in BAD[2:-2]:
        with pytest.raises(StudyError, match=SHARDING_REFUSED.replace("(", r"\(").replace(")", r"\)")):
            parse_study(yaml.safe_load(body))


def test_sharding_defaults_to_none_and_a_zoned_unsharded_study_runs_one_ledger():
    study = parse_study({**ZONED, "market": {}})
    assert study.market.sharding == "none"
    assert federate_names(study, ("z0", "z1")) == ("grid", "ledger", "der")


def test_a_sharded_study_runs_a_ledger_per_zone_in_zone_order():
    study = parse_study(ZONED)
    assert federate_names(study, ("z0", "z1", "z2")) == ("grid", "ledger-z0", "ledger-z1", "ledger-z2", "der",
                                                         "coordinator")
    assert federate_names(study) == ("grid", "ledger", "der", "coordinator")


def test_ledger_endpoint_routes_a_prosumer_to_its_zone_ledger():
    zone_of = {"p01": "z0", "p02": "trafo3"}
    assert ledger_endpoint(zone_of, "p01") == "ledger-z0/tx"
    assert ledger_endpoint(zone_of, "p02") == "ledger-trafo3/tx"
    assert ledger_endpoint(None, "p01") == LEDGER_ENDPOINT
    with pytest.raises(KeyError):
        ledger_endpoint(zone_of, "p03")


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    root = tmp_path_factory.mktemp("sharded")
    path = root / "z.yaml"
    path.write_text(yaml.safe_dump(ZONED))
    return prepare(path, root / "runs", TEST_SECRET)


def test_prepare_writes_a_ledger_config_per_zone_and_the_zone_names(prepared):
    assert prepared.zones == ("z0", "z1", "z2") == run_zones(prepared.run_dir)
    assert prepared.federates == ("grid", "ledger-z0", "ledger-z1", "ledger-z2", "der", "coordinator")
    configs = sorted(p.stem for p in (prepared.run_dir / "helics").glob("*.json"))
    assert configs == ["coordinator", "der", "grid", "ledger-z0", "ledger-z1", "ledger-z2"]
    config = json.loads((prepared.run_dir / "helics" / "ledger-z1.json").read_text())
    assert config["name"] == "ledger-z1" and config["endpoints"] == [{"name": "ledger-z1/tx", "global": True}]
    config = json.loads((prepared.run_dir / "helics" / "coordinator.json").read_text())
    assert config["endpoints"] == [{"name": "coordinator/zones", "global": True}]


def test_a_zone_ledger_process_is_the_ledger_module_given_its_zone(prepared):
    command = federate_command("ledger-z2", prepared.run_dir)
    assert command[1:] == ["-m", "gridledger.federates.ledger", str(prepared.run_dir), "z2"]
    assert federate_command("ledger", prepared.run_dir)[1:] == ["-m", "gridledger.federates.ledger",
                                                                str(prepared.run_dir)]
    runner = runner_json(prepared)
    assert [f["name"] for f in runner["federates"]] == ["broker", *prepared.federates]
    assert "-f6" in runner["federates"][0]["exec"]
    assert federate_command("coordinator", prepared.run_dir)[1:] == ["-m", "gridledger.federates.coordinator",
                                                                     str(prepared.run_dir)]


def test_the_federate_command_refuses_a_zone_the_run_lacks(prepared, capsys):
    assert main(["federate", "ledger-z9", str(prepared.run_dir)]) == EXIT_BAD_INPUT
    assert "allowed: grid, ledger-z0, ledger-z1, ledger-z2, der" in capsys.readouterr().err


def test_a_zone_roster_holds_its_prosumers_and_their_profile_columns(prepared):
    roster = load_roster(prepared.run_dir)
    z1 = zone_roster(roster, "z1")
    assert [p.name for p in z1.prosumers] == ["p03", "p04"]
    np.testing.assert_array_equal(z1.load_p_mw, roster.load_p_mw[:, [2, 3]])
    np.testing.assert_array_equal(z1.pv_pu_expected, roster.pv_pu_expected[:, [2, 3]])
    assert z1.zone_of == {"p03": "z1", "p04": "z1"} and list(z1.zones) == ["z1"]
    assert sum(len(zone_roster(roster, z).prosumers) for z in roster.zones) == len(roster.prosumers)
    with pytest.raises(KeyError, match="zone 'z7' holds no prosumer"):
        zone_roster(roster, "z7")


def test_each_prosumers_and_meters_transactions_go_to_their_zone_ledger(prepared):
    roster = load_roster(prepared.run_dir)
    router = TxRouter.of(roster, TEST_SECRET)
    for p in roster.prosumers:
        for role in ("prosumer", "meter"):
            account = derive_account(TEST_SECRET, f"{role}/{p.name}")
            assert router.endpoint(_sign(account)) == f"ledger-{roster.zone_of[p.name]}/tx"


def test_a_transaction_of_an_outsider_is_routed_nowhere(prepared):
    router = TxRouter.of(load_roster(prepared.run_dir), TEST_SECRET)
    outsider = Account.create()
    with pytest.raises(UnknownSigner, match=outsider.address):
        router.endpoint(_sign(outsider))
    # Another run's keys are outsiders too.
    with pytest.raises(UnknownSigner):
        router.endpoint(_sign(derive_account(b"\x01" * len(TEST_SECRET), "prosumer/p01")))


def test_an_unsharded_run_sends_everything_to_the_one_ledger():
    study = parse_study({**ZONED, "market": {}})
    router = TxRouter.of(type("R", (), {"study": study})(), TEST_SECRET)
    assert router.endpoint(b"not even a transaction") == LEDGER_ENDPOINT


def test_tx_signer_recovers_the_signer():
    account = Account.create()
    assert tx_signer(_sign(account, nonce=7)) == account.address


def _part(federate: str, prosumers: list[str], gas: list[int], token_supply_conserved: int = 1,
          complete: int = 1) -> xr.Dataset:
    n = len(gas)
    return xr.Dataset(
        {"gas_used": (("interval",), np.array(gas, dtype=np.int64), {"units": "gas"}),
         "position_wh": (("interval", "prosumer"), np.arange(n * len(prosumers), dtype=np.int64).reshape(n, -1),
                         {"units": "Wh"})},
        coords={"interval": np.arange(n), "prosumer": np.array(prosumers, dtype=object)},
        attrs={"federate": federate, "complete": complete, "token_supply_conserved": token_supply_conserved,
               "settlement": "0xS"})


def test_zone_parts_join_along_prosumer_in_roster_order_and_along_zone():
    der = xr.Dataset(coords={"prosumer": np.array(["p1", "p2", "p3"], dtype=object)}, attrs={"complete": 1})
    parts = {"der": der, "ledger-b": _part("ledger-b", ["p2"], [5, 6]), "ledger-a": _part("ledger-a", ["p3", "p1"], [1, 2])}
    joined = zone_ledgers(parts)
    assert set(joined) == {"der", "ledger"}
    ledger = joined["ledger"]
    assert list(ledger.prosumer.values) == ["p1", "p2", "p3"]
    assert list(ledger.zone.values) == ["b", "a"]
    np.testing.assert_array_equal(ledger.gas_used.values, [[5, 6], [1, 2]])
    assert ledger.gas_used.dtype == np.int64 and ledger.gas_used.attrs["units"] == "gas"
    np.testing.assert_array_equal(ledger.position_wh.sel(prosumer="p2").values, [0, 1])
    np.testing.assert_array_equal(ledger.position_wh.sel(prosumer="p1").values, [1, 3])
    assert ledger.attrs["token_supply_conserved"] == 1 and ledger.attrs["complete"] == 1
    assert ledger.attrs["a_settlement"] == ledger.attrs["b_settlement"] == "0xS"


@pytest.mark.parametrize("attr", ["token_supply_conserved", "complete"])
def test_one_zone_failing_fails_the_joined_part(attr):
    parts = {"ledger-a": _part("ledger-a", ["p1"], [1], **{attr: 0}), "ledger-b": _part("ledger-b", ["p2"], [1])}
    assert zone_ledgers(parts)["ledger"].attrs[attr] == 0


def test_unsharded_parts_are_left_alone():
    parts = {"ledger": _part("ledger", ["p1"], [1])}
    assert zone_ledgers(parts) is parts


NOTICE = {"type": "deployed", "chain_id": 77, "addresses": {"auction": "0x" + "aa" * 20, "settlement": "0x" + "bb" * 20}}


def _orders(names: list[str], secret: bytes = TEST_SECRET) -> bytes:
    return signed_orders_message(3, [
        sign_order(derive_account(secret, f"prosumer/{name}"), NOTICE["chain_id"], NOTICE["addresses"]["auction"],
                   interval=3, is_ask=i % 2 == 0, energy_wh=100 + i, price_wei_per_wh=10**13) for i, name in enumerate(names)])


def test_a_batch_of_signed_orders_is_split_by_zone_keeping_each_items_order(prepared):
    router = TxRouter.of(load_roster(prepared.run_dir), TEST_SECRET, NOTICE)
    # p01, p02 in z0; p03, p04 in z1; p05, p06 in z2.
    routed = router.route(_orders(["p03", "p01", "p04", "p06", "p02"]))
    assert [endpoint for endpoint, _ in routed] == ["ledger-z1/tx", "ledger-z0/tx", "ledger-z2/tx"]
    bodies = {endpoint: decode(payload) for endpoint, payload in routed}
    assert [o["energy_wh"] for o in bodies["ledger-z1/tx"]["orders"]] == [100, 102]
    assert [o["energy_wh"] for o in bodies["ledger-z0/tx"]["orders"]] == [101, 104]
    assert [o["energy_wh"] for o in bodies["ledger-z2/tx"]["orders"]] == [103]
    assert {body["interval"] for body in bodies.values()} == {3}
    original = decode(_orders(["p03", "p01", "p04", "p06", "p02"]))["orders"]
    assert sorted(map(str, original)) == sorted(str(o) for b in bodies.values() for o in b["orders"])


def test_a_batch_of_signed_readings_is_split_by_the_meters_zones(prepared):
    router = TxRouter.of(load_roster(prepared.run_dir), TEST_SECRET, NOTICE)
    batch = signed_readings_message(2, [
        sign_reading(derive_account(TEST_SECRET, f"meter/{name}"), NOTICE["chain_id"], NOTICE["addresses"]["settlement"],
                     interval=2, import_wh=i, export_wh=0, pv_wh=0, battery_wh=0) for i, name in enumerate(["p05", "p01"])])
    routed = router.route(batch)
    assert [(endpoint, [r["import_wh"] for r in decode(payload)["readings"]]) for endpoint, payload in routed] == \
        [("ledger-z2/tx", [0]), ("ledger-z0/tx", [1])]


def test_a_batch_item_signed_by_an_outsider_or_for_another_contract_is_refused(prepared):
    router = TxRouter.of(load_roster(prepared.run_dir), TEST_SECRET, NOTICE)
    with pytest.raises(UnknownSigner, match="item signed by"):
        router.route(_orders(["p01"], secret=b"\x01" * len(TEST_SECRET)))
    # Signed for another contract: the recovered address is nobody's.
    other = TxRouter.of(load_roster(prepared.run_dir), TEST_SECRET,
                        {**NOTICE, "addresses": {**NOTICE["addresses"], "auction": "0x" + "cc" * 20}})
    with pytest.raises(UnknownSigner):
        other.route(_orders(["p01"]))


def test_an_unsharded_router_sends_batches_whole():
    study = parse_study({**ZONED, "market": {}})
    router = TxRouter.of(type("R", (), {"study": study})(), TEST_SECRET)
    batch = _orders(["p01", "p03"])
    assert router.route(batch) == [(LEDGER_ENDPOINT, batch)]
