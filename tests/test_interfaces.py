"""The federation's interfaces as data: configs, wiring check, message codec and docs follow one declaration."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from gridledger import units
from gridledger.contracts.market import LotState, MarketAddresses
from gridledger.federation import (
    MESSAGE_BY_KIND,
    MESSAGES,
    SUBSTATION_P_KEY,
    VALUES,
    bus_vm_key,
    line_loading_key,
    message_table,
)
from gridledger.interfaces import (
    DER_SETPOINTS,
    Topology,
    WiringError,
    broker_port_of,
    check_wiring,
    core_init_string,
    federate_configs,
    federate_names,
    setpoint_key,
)
from gridledger.launcher import preflight
from gridledger.messages import MessageError, decode, deployment, encode
from gridledger.study import load_study, parse_study

ROOT = Path(__file__).resolve().parents[1]
TINY = Topology(prosumers=("p1", "p2"), buses=(0, 1, 2), lines=(0, 1))
VOLTAGE_REGULATION = parse_study({"name": "tiny", "market": {"voltage_regulation": True}})
CHARGING = parse_study({"name": "tiny", "market": {"charging_coordination": True}})
PLAIN = parse_study({"name": "tiny"})


def _configs(study):
    return federate_configs(study, TINY, broker_port=23500)


def _keys(config: dict, kind: str) -> list[str]:
    return [entry["key"] for entry in config.get(kind, [])]


def test_keys_follow_the_declared_patterns():
    assert setpoint_key("p7", "pv_p_mw") == "der/p7/pv_p_mw"
    assert bus_vm_key(18) == "grid/bus/18/vm_pu"
    assert line_loading_key(3) == "grid/line/3/loading_percent"
    assert SUBSTATION_P_KEY == "grid/substation/p_mw"
    with pytest.raises(KeyError):
        setpoint_key("p7", "ev_p_mw")


def test_der_setpoints_are_spelled_in_pandapower_units():
    assert DER_SETPOINTS == (("load_p_mw", "MW"), ("load_q_mvar", "Mvar"), ("pv_p_mw", "MW"),
                             ("battery_p_mw", "MW"), ("pv_curtailed_p_mw", "MW"))


def test_configs_expand_every_value_over_the_topology():
    configs = _configs(PLAIN)
    assert list(configs) == ["grid", "ledger", "der"]
    # 3 buses + 2 lines + 3 substation quantities
    assert _keys(configs["grid"], "publications") == [
        "grid/bus/0/vm_pu", "grid/bus/1/vm_pu", "grid/bus/2/vm_pu",
        "grid/line/0/loading_percent", "grid/line/1/loading_percent",
        "grid/substation/p_mw", "grid/substation/q_mvar", "grid/substation/pl_mw",
    ]
    # 2 prosumers x 5 setpoints, all of one prosumer together
    assert _keys(configs["der"], "publications")[:6] == [
        "der/p1/load_p_mw", "der/p1/load_q_mvar", "der/p1/pv_p_mw", "der/p1/battery_p_mw",
        "der/p1/pv_curtailed_p_mw", "der/p2/load_p_mw",
    ]
    assert _keys(configs["grid"], "subscriptions") == _keys(configs["der"], "publications")
    assert [ep["name"] for ep in configs["ledger"]["endpoints"]] == ["ledger/tx"]
    assert "publications" not in configs["ledger"] and "subscriptions" not in configs["der"]


def test_operator_subscribes_voltages_at_nominal_and_the_import():
    operator = _configs(VOLTAGE_REGULATION)["operator"]
    assert [(s["key"], s["unit"], s["default"]) for s in operator["subscriptions"]] == [
        ("grid/bus/0/vm_pu", "pu", 1.0), ("grid/bus/1/vm_pu", "pu", 1.0), ("grid/bus/2/vm_pu", "pu", 1.0),
        ("grid/substation/p_mw", "MW", 0.0),
    ]
    assert operator["endpoints"] == [{"name": "operator/dso", "global": True}]


@pytest.mark.parametrize(("study", "names"), [
    (PLAIN, ("grid", "ledger", "der")),
    (VOLTAGE_REGULATION, ("grid", "ledger", "der", "operator")),
    (CHARGING, ("grid", "ledger", "der", "operator")),
])
def test_operator_runs_only_for_voltage_regulation_or_charging(study, names):
    assert federate_names(study) == names
    assert tuple(_configs(study)) == names
    check_wiring(_configs(study), study)


@pytest.mark.parametrize("study", [VOLTAGE_REGULATION, CHARGING], ids=["voltage-regulation", "charging"])
def test_operator_study_without_operator_config_fails_naming_message_federate_and_endpoint(study):
    configs = _configs(study)
    del configs["operator"]
    with pytest.raises(WiringError) as err:
        check_wiring(configs, study)
    assert str(err.value) == ("message 'transaction' (operator/dso -> ledger/tx): federate 'operator' "
                              "has no endpoint 'operator/dso' to send it on")


def test_transactions_must_reach_ledger_tx():
    configs = _configs(PLAIN)
    configs["ledger"]["endpoints"] = [{"name": "ledger/txs", "global": True}]
    with pytest.raises(WiringError) as err:
        check_wiring(configs, PLAIN)
    assert str(err.value) == ("message 'transaction' (der/agents -> ledger/tx): federate 'ledger' "
                              "has no endpoint 'ledger/tx' to receive it on")


def test_grid_without_its_endpoint_cannot_send_readings():
    configs = _configs(PLAIN)
    del configs["grid"]["endpoints"]
    with pytest.raises(WiringError) as err:
        check_wiring(configs, PLAIN)
    assert str(err.value) == ("message 'transaction' (grid/meters -> ledger/tx): federate 'grid' "
                              "has no endpoint 'grid/meters' to send it on")


def test_subscription_in_another_unit_fails():
    configs = _configs(PLAIN)
    configs["grid"]["subscriptions"][1]["unit"] = "MVAr"
    with pytest.raises(WiringError) as err:
        check_wiring(configs, PLAIN)
    assert str(err.value) == "grid expects der/p1/load_q_mvar in MVAr, der publishes Mvar"


def test_subscription_without_publisher_fails():
    configs = _configs(VOLTAGE_REGULATION)
    configs["grid"]["publications"] = configs["grid"]["publications"][1:]
    with pytest.raises(WiringError) as err:
        check_wiring(configs, VOLTAGE_REGULATION)
    assert str(err.value) == "operator subscribes to grid/bus/0/vm_pu, which no federate publishes"


@pytest.mark.parametrize("name", ["baran-wu-short", "baran-wu-vickrey", "pv-overvoltage", "ev-evening-peak"])
def test_generated_configs_of_shipped_studies_are_wired(name):
    path = ROOT / "studies" / f"{name}.yaml"
    study = load_study(path)
    sc = preflight(study, path)
    topology = Topology(prosumers=tuple(p.name for p in sc.prosumers), buses=tuple(int(b) for b in sc.net.bus.index),
                        lines=tuple(int(line) for line in sc.net.line.index))
    configs = federate_configs(study, topology, broker_port=23500)
    check_wiring(configs, study)
    # every prosumer publishes each of the 5 setpoints once
    assert len(configs["der"]["publications"]) == 5 * len(sc.prosumers)


def test_messages_in_use_follow_the_study():
    def in_use(study):
        return [m.kind for m in MESSAGES if m.when.holds(study)]

    always = ["transaction", "deployed", "receipts", "cleared"]
    assert in_use(PLAIN) == always
    assert in_use(parse_study({"name": "tiny", "market": {"mechanism": "vickrey"}})) == [*always, "lots"]
    assert in_use(VOLTAGE_REGULATION) == [*always, "flex_requests", "flex_awards"]
    assert in_use(CHARGING) == [*always, "charging"]
    volt_var = parse_study({"name": "tiny", "prosumers": {"pv": {"inverter": {"volt_var": True}}}})
    assert in_use(volt_var) == [*always, "inverters"]


def test_encode_writes_sorted_json_with_the_type():
    payload = encode("cleared", positions_wh={"0xab": -120}, interval=3)
    assert payload == b'{"interval": 3, "positions_wh": {"0xab": -120}, "type": "cleared"}'
    assert decode(payload) == {"type": "cleared", "interval": 3, "positions_wh": {"0xab": -120}}


def test_encode_decode_round_trip_of_a_nested_message():
    receipt = {"tx_hash": "ab12", "sender": "0x01", "nonce": 4, "status": 0, "included": True,
               "revert_reason": "auction: gate closed", "gas_used": 21_000}
    assert decode(encode("receipts", receipts=[receipt])) == {"type": "receipts", "receipts": [receipt]}


def test_deployment_finds_the_notice_among_other_messages():
    notice = encode("deployed", addresses={"registry": "0x1", "token": "0x2", "auction": "0x3", "settlement": "0x4",
                                           "mechanism": "vickrey"}, chain_id=131277322940537,
                    flexibility=None, charging=None, audit=None, source_choice=None, data_access=None,
                    emergency_access=None, two_phase=None, reserve=None, load_shed=None, pseudonyms=None)
    messages = [("ledger/tx", encode("charging", window=2, admitted_w={})), ("ledger/tx", notice)]
    assert deployment(messages)["chain_id"] == 131277322940537


@pytest.mark.parametrize("kind", ["clear", "transaction"])
def test_encode_refuses_an_undeclared_kind(kind):
    with pytest.raises(MessageError) as err:
        encode(kind, interval=1)
    assert str(err.value) == (f"message {kind!r} is not a declared JSON message; declared: deployed, receipts, "
                              "cleared, lots, flex_requests, flex_awards, charging, charging_cut, emergency_reads, "
                              "emergency_data, two_phase_events, reserve_windows, shed_programme, reserve_awards, "
                              "reserve_activations, shed_calls, island, blind_requests, blind_signatures, "
                              "registration_halves, pseudonyms_registered, signed_orders, signed_readings, "
                              "rejected, residuals, "
                              "cross_fills, sensors, readings, data_events, data_result, inverters")


def test_encode_refuses_a_missing_field():
    with pytest.raises(MessageError) as err:
        encode("charging", window=3)
    assert str(err.value) == ("message 'charging': body has fields ['window'], declared ['admitted_w', 'window'] "
                              "(missing ['admitted_w'], extra [])")


def test_encode_refuses_an_extra_field():
    # the field the old docstring promised for "cleared" but the ledger never sent
    with pytest.raises(MessageError) as err:
        encode("cleared", interval=3, positions_wh={}, price_wei_per_wh=250_000_000_000_000)
    assert str(err.value) == ("message 'cleared': body has fields ['interval', 'positions_wh', 'price_wei_per_wh'], "
                              "declared ['interval', 'positions_wh'] (missing [], extra ['price_wei_per_wh'])")


def test_encode_refuses_a_nested_object_with_other_fields():
    award = {"request_id": 0, "interval": 5, "p_w": {"0x01": 1500}, "energy_wh": 375}
    with pytest.raises(MessageError) as err:
        encode("flex_awards", awards=[award])
    assert str(err.value) == ("message 'flex_awards': awards[0] has fields ['energy_wh', 'interval', 'p_w', "
                              "'request_id'], declared ['interval', 'p_w', 'request_id'] "
                              "(missing [], extra ['energy_wh'])")


def _nested(kind: str, name: str) -> list[str]:
    return [f.name for f in next(f for f in MESSAGE_BY_KIND[kind].fields if f.name == name).fields]


def test_declared_lots_and_addresses_are_the_contract_client_dataclasses():
    assert _nested("lots", "lots") == [f.name for f in dataclasses.fields(LotState)]
    assert _nested("deployed", "addresses") == [f.name for f in dataclasses.fields(MarketAddresses)]


def test_helics_units_are_gridledger_units_labels():
    assert {v.unit for v in VALUES} <= {units.MW, units.MVAR, units.PU, units.PERCENT}


def _nomenclature_units() -> set[str]:
    """Every unit of the names table of docs/nomenclature.md (third column of its first table)."""
    doc = (ROOT / "docs" / "nomenclature.md").read_text()
    names_table = doc.split("\n## ")[0]
    cells = [line.split(" | ")[1] for line in names_table.splitlines() if line.startswith("| `")]
    return {unit.strip() for cell in cells for unit in cell.split(",")}


def test_message_field_units_are_spelled_as_the_nomenclature_or_gridledger_units():
    allowed = _nomenclature_units() | {units.MW, units.MVAR, units.PU, units.PERCENT, ""}

    def all_fields(fields):
        for f in fields:
            yield f
            yield from all_fields(f.fields)

    spelled = {f.unit for m in MESSAGES for f in all_fields(m.fields)}
    assert spelled - allowed == set()
    assert {"Wh", "W", "wei/Wh", "kVA"} <= spelled


def test_nomenclature_lists_every_message_and_field_as_declared():
    doc = (ROOT / "docs" / "nomenclature.md").read_text()
    assert message_table() in doc
    section = doc.split("## Endpoint messages")[1]
    for message in MESSAGES:
        assert f"| `{message.kind}` |" in section
        for field in message.fields:
            assert re.search(rf"\| `(\w+\.)?{field.name}` \|", section), (message.kind, field.name)


def test_readme_what_runs_names_every_federate_endpoint_and_message():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## What runs")[1].split("\n### ")[0]
    for message in MESSAGES:
        assert message.kind in section, message.kind
    for name in ("der", "grid", "ledger", "operator", "der/agents", "grid/meters", "ledger/tx", "operator/dso"):
        assert name in section, name
    for quantity, _ in DER_SETPOINTS:
        assert quantity in section, quantity



@pytest.mark.parametrize("address", ["127.0.0.2", "broker.example", "10.1.2.3"])
@pytest.mark.parametrize("port", [1024, 23500, 65535])
def test_broker_port_is_read_back_from_the_init_string_it_was_written_into(address, port):
    assert broker_port_of(core_init_string("zmq", address, port, "127.0.0.9")) == port
