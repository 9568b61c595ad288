"""The DSO (`gridledger.agents.dso`): request sizing and zone, charging headroom, what it measures and signs.

No HELICS and no chain. Flexibility on pv-overvoltage (case33bw, every
prosumer with 2.5 kWp per kW of load, from 09:00, 15-min intervals):
interval 12 (12:00) is forecast above 1.05 pu. Charging headroom on
ev-evening-peak (SimBench LV, 0.4 MVA substation transformer, 22 %
loading for EVs plus base load, 30-min windows).
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from eth_utils import to_checksum_address

from gridledger.agents.dso import Dso
from gridledger.agents.feeder import injections
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.keys import derive_account
from gridledger.grids.powerflow import PowerFlow
from gridledger.grids.voltage_planning import forecast_peak, plan_request, sensitivities_upu_per_kw
from gridledger.scenario import build_scenario
from gridledger.study import load_study, parse_study
from tests.secret_helpers import fixed_secret
from tests.signed_tx import SignedTx, taken_apart

NOON = 12
SECRET = fixed_secret(7)
CHAIN_ID = 1337
TOKEN = to_checksum_address("0x" + "33" * 20)
FLEXIBILITY = to_checksum_address("0x" + "55" * 20)
CHARGING = to_checksum_address("0x" + "66" * 20)


def notice(flexibility=None, charging=None) -> dict:
    return {"type": "deployed", "chain_id": CHAIN_ID, "flexibility": flexibility, "charging": charging,
            "addresses": {"token": TOKEN}}


def scenario(path: str, **changes):
    data = load_study(path).model_dump(mode="json")
    for dotted, value in changes.items():
        *parents, leaf = dotted.split(".")
        node = data
        for key in parents:
            node = node[key]
        node[leaf] = value
    return build_scenario(parse_study(data), with_devices=True)


@pytest.fixture(scope="module")
def pv_sc():
    return scenario("studies/pv-overvoltage.yaml")


@pytest.fixture(scope="module")
def ev_sc():
    return scenario("studies/ev-evening-peak.yaml", duration_s=7200)


def test_noon_request_is_the_voltage_planning_of_the_expected_feeder(pv_sc):
    """Re-plan interval 12 with `voltage_planning` on a fresh power flow: expected loads and PV, batteries idle."""
    dso = Dso(pv_sc, SECRET)
    plan = dso.plan(NOON)
    sc = scenario("studies/pv-overvoltage.yaml")
    n = len(sc.prosumers)
    load_p, load_q = sc.prosumer_load_mw(expected=True)
    pv_mw = sc.pv_pu_expected * np.array([p.pv_kwp for p in sc.prosumers]) / 1000.0  # kWp -> MW
    steps = range(36, 39)  # interval 12 = steps 36, 37, 38 of 5 min
    forecasts = [injections(sc, j, {"load_p_mw": load_p[j], "load_q_mvar": load_q[j], "pv_p_mw": pv_mw[j],
                                    "battery_p_mw": np.zeros(n)}, loads=sc.loads_expected) for j in steps]
    pf = PowerFlow(sc.net, backend=sc.study.grid.backend)
    vm_pu, bus_pos, worst = forecast_peak(pf, forecasts)
    # Every prosumer has PV and sits alone at its bus (buses 1..32), so sgen row i is bus i + 1.
    sens = sensitivities_upu_per_kw(pf, forecasts[worst], list(range(n)), bus_pos)
    expected = plan_request(vm_pu, int(sc.net.bus.index[bus_pos]), list(range(1, 33)), sens,
                            pv_mw[steps[worst]] * 1000.0, 1.05, 0.005, 1.2)
    assert plan.zone_buses == expected.zone_buses == (11, 12, 13, 14, 15, 16, 17)
    assert plan.sensitivities_upu_per_kw == expected.sensitivities_upu_per_kw
    assert plan.monitor_bus == expected.monitor_bus == 17
    assert plan.p_kw == pytest.approx(expected.p_kw, rel=1e-6)
    assert plan.vm_forecast_pu == pytest.approx(expected.vm_forecast_pu, abs=1e-9)
    assert plan.vm_forecast_pu > 1.05


def test_plan_records_forecast_request_and_zone(pv_sc):
    dso = Dso(pv_sc, SECRET)
    plan = dso.plan(NOON)
    assert dso.vm_forecast_pu[NOON] == plan.vm_forecast_pu
    assert dso.requested_kw[NOON] == plan.p_kw
    assert pv_sc.net.bus.index[dso.zone[NOON] == 1].tolist() == [11, 12, 13, 14, 15, 16, 17]
    assert dso.zone[NOON - 1].sum() == 0 and np.isnan(dso.vm_forecast_pu[NOON - 1])
    assert dso.intervals_done == NOON + 1


def test_no_request_while_the_forecast_stays_below_the_limit():
    """With the limit at 1.2 pu, noon's forecast (about 1.08 pu) needs no curtailment but is still recorded."""
    dso = Dso(scenario("studies/pv-overvoltage.yaml", **{"grid.limits.vm_max_pu": 1.2}), SECRET)
    assert dso.plan(NOON) is None
    assert 1.05 < dso.vm_forecast_pu[NOON] < 1.2
    assert dso.requested_kw[NOON] == 0.0 and dso.zone[NOON].sum() == 0


def test_request_transaction_asks_for_the_plan_over_the_interval(pv_sc):
    """Window of interval 12: start + 12 * 900 s to + 900 s; offers until the offer round of interval 12
    ((12 - 1) * 900 + round_s 60 s) plus 2 s; p = int(1000 * p_kw) W; cap 0.30 token/kWh = 3e17 wei / 1000 Wh."""
    dso = Dso(pv_sc, SECRET)
    plan = dso.plan(NOON)
    wallet = Wallet(derive_account(SECRET, "dso"), CHAIN_ID)
    start = pv_sc.study.start_timestamp
    tx = taken_apart(dso.request_tx(wallet, FLEXIBILITY, NOON, plan))
    expected = encode_call("VoltageRegulation", "post_request", list(plan.zone_buses),
                           list(plan.sensitivities_upu_per_kw), False, int(plan.p_kw * 1000), start + 10_800,
                           start + 11_700, start + 9960 + 2, 3 * 10**14)
    assert tx == SignedTx(wallet.address, CHAIN_ID, 0, FLEXIBILITY, expected)


def test_headroom_is_the_transformer_share_minus_the_expected_net_load(ev_sc):
    """0.4 MVA * 22 % = 0.088 MW, minus the mean over window 1 (steps 2, 3 of 15 min) of every expected load
    (no PV here) less the feeder's own generator, in W."""
    dso = Dso(ev_sc, SECRET)
    steps = slice(2, 4)
    net_mw = ev_sc.loads_expected.p_mw[steps].sum(axis=1) - ev_sc.sgen_p_mw[steps].sum(axis=1)
    by_hand_w = (0.4 * 0.22 - net_mw.mean()) * 1e6
    assert by_hand_w > 0
    assert dso.headroom(1) == pytest.approx(by_hand_w, abs=0.5)
    assert dso.headroom_w[1] == dso.headroom(1)


def test_join_approves_the_operator_budget_only_with_the_voltage_regulation_market(pv_sc):
    """operator_budget 10 000 tokens = 1e22 wei, approved to the flexibility contract."""
    dso = Dso(pv_sc, SECRET)
    (approve,) = dso.join(notice(flexibility=FLEXIBILITY))
    signer = derive_account(SECRET, "dso").address
    assert taken_apart(approve) == SignedTx(signer, CHAIN_ID, 0, TOKEN,
                                            encode_call("GridToken", "approve", FLEXIBILITY, 10**22))
    assert Dso(pv_sc, SECRET).join(notice()) == []


def test_act_records_the_measurement_and_signs_the_next_intervals_request(pv_sc, caplog):
    dso = Dso(pv_sc, SECRET)
    dso.join(notice(flexibility=FLEXIBILITY))
    vm_pu = [1.0] * 33
    vm_pu[17] = 1.062
    with caplog.at_level(logging.WARNING, logger="gridledger.operator"):
        txs = dso.act(NOON - 1, 9900.75, vm_pu, 0.25)
    assert dso.vm_measured_pu[NOON - 1] == 1.062 and dso.import_measured_mw[NOON - 1] == 0.25
    assert [r.getMessage() for r in caplog.records] == ["t=9901 s: measured 1.0620 pu, above vm_max_pu"]
    # After the approve (nonce 0), the request of interval 12 (nonce 1) to the flexibility contract.
    (request,) = txs
    tx = taken_apart(request)
    assert (tx.nonce, tx.to) == (1, FLEXIBILITY)
    assert tx.data[:4] == encode_call("VoltageRegulation", "post_request", [1], [1], False, 0, 0, 0, 0, 0)[:4]
    assert dso.intervals_done == NOON + 1


def test_act_signs_the_headroom_of_the_next_window_with_charging_coordination(ev_sc):
    dso = Dso(ev_sc, SECRET)
    assert dso.join(notice(charging=CHARGING)) == []
    (headroom,) = dso.act(0, 0.75, [1.0] * len(ev_sc.net.bus), 0.05)
    assert taken_apart(headroom).data == encode_call("ChargingCoordination", "post_headroom", 1,
                                                     int(dso.headroom_w[1]))
    assert dso.headroom_w[1] > 0
    assert np.isnan(dso.vm_forecast_pu).all()


def test_part_adds_the_headroom_only_when_charging_is_coordinated(pv_sc, ev_sc):
    pv_part, ev_part = Dso(pv_sc, SECRET).part().ds, Dso(ev_sc, SECRET).part().ds
    assert "charging_headroom_w" not in pv_part and "charging_headroom_w" in ev_part
    assert pv_part["operator_vm_measured_pu"].attrs["units"] == "pu"
    assert pv_part["operator_import_measured_mw"].attrs["units"] == "MW"
    assert pv_part["flex_zone"].dims == ("interval", "bus")
    assert pv_part.attrs == {"federate": "operator", "intervals_completed": 0}


def test_no_request_without_pv_to_curtail():
    """Without PV nobody can give up injection: the forecast is recorded, no request is planned."""
    dso = Dso(scenario("studies/pv-overvoltage.yaml", **{"prosumers.pv.share": 0.0}), SECRET)
    assert dso.buses == []
    assert dso.plan(NOON) is None
    assert np.isfinite(dso.vm_forecast_pu[NOON]) and dso.requested_kw[NOON] == 0.0
