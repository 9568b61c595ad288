"""The auditor's transactions: when a flag goes out and with what, finalization after the dispute window, estimates
of isolated meters."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.agents.audit_poster import AuditPoster, FlagTiming, bounded_estimate
from gridledger.agents.auditor import IntervalAudit
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.contracts.client import encode_call
from gridledger.contracts.keys import derive_account
from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from tests.signed_tx import taken_apart

SECRET = bytes(range(32))
AUDIT = "0x" + "ab" * 20
CHAIN_ID = 1337
EVIDENCE = bytes.fromhex("cd" * 32)


@pytest.fixture(scope="module")
def scenario():
    study = parse_study({"name": "poster", "duration_s": 3600, "prosumers": {"count": 4},
                         "audit": {"sensors": {"lines": "all"}, "flag_window_s": 3600, "dispute_window_s": 1800}})
    return build_scenario(study)


def _poster(sc) -> AuditPoster:
    poster = AuditPoster(sc, SECRET)
    poster.join({"chain_id": CHAIN_ID, "audit": AUDIT})
    return poster


def _result(interval: int, flagged: dict[int, float], estimate_wh: dict[int, int]) -> IntervalAudit:
    return IntervalAudit(interval, objective=12.3456, chi2_threshold=50.0, flagged=flagged, vm_pu=np.ones(2),
                         estimate_wh=estimate_wh, evidence=EVIDENCE)


def test_an_estimate_is_split_into_registers_and_bounded_by_the_registered_limits():
    # 4 kW meter, 3 kWp PV, no battery, 15 min: at most 1000 Wh through the meter, 750 Wh exported.
    assert bounded_estimate(400, 4000, 3000, 0, 900) == (400, 0)
    assert bounded_estimate(-400, 4000, 3000, 0, 900) == (0, 400)
    assert bounded_estimate(5000, 4000, 3000, 0, 900) == (1000, 0)
    assert bounded_estimate(-5000, 4000, 3000, 0, 900) == (0, 750)
    assert bounded_estimate(-5000, 4000, 0, 0, 900) == (0, 0)


def test_the_wait_for_late_readings_leaves_room_for_the_flag_to_be_mined_within_the_window():
    # Checked one interval after the reading, mined at most one later: a 1 h window lets 2 of 4 checks wait.
    assert FlagTiming.of(900, 3600, 86400).wait_checks == 2
    assert FlagTiming.of(900, 1800, 86400).wait_checks == 0
    timing = FlagTiming.of(900, 3600, 3600)
    assert not timing.last_chance(0, 1801.25) and timing.last_chance(0, 2701.25)
    assert timing.last_chance(3, 3601.25)                                  # the study's last check waits for nothing


def test_a_flag_carries_the_bounded_estimate_the_residual_and_the_evidence_and_goes_out_once(scenario):
    poster = _poster(scenario)
    i = next(i for i, lim in enumerate(prosumer_limits(scenario)) if lim.pv_w >= 2000)    # 300 Wh fits its PV
    p1 = derive_account(SECRET, f"prosumer/{scenario.prosumers[i].name}").address
    latest = {0: _result(0, {i: 5.2345}, {i: -300})}
    txs = poster.transactions(latest, {0: {0, 1, 2, 3}}, {0: False}, 901.25)
    assert len(txs) == 1
    tx = taken_apart(txs[0])
    assert (tx.signer, tx.chain_id, tx.nonce, tx.to.lower()) == (derive_account(SECRET, "auditor").address, CHAIN_ID,
                                                                 0, AUDIT)
    assert tx.data == encode_call("Audit", "flag", 0, p1, 0, 300, 5234, 12346, EVIDENCE)
    assert poster.transactions(latest, {0: {0, 1, 2, 3}}, {0: False}, 1801.25) == []


def test_a_flag_waits_for_missing_readings_until_its_last_chance_and_skips_a_meter_without_a_reading(scenario):
    poster = _poster(scenario)
    latest = {0: _result(0, {1: 6.0, 2: 5.0}, {1: 100, 2: 100})}
    on_chain = {0: {0, 1, 3}}                                                 # p03's reading has not come
    assert poster.transactions(latest, on_chain, {0: True}, 901.25) == []
    txs = poster.transactions(latest, on_chain, {0: True}, 2701.25)        # the last check that still fits
    assert len(txs) == 1 and taken_apart(txs[0]).data[4:36] == (0).to_bytes(32, "big")


def test_a_mined_flag_is_finalized_once_its_dispute_window_has_passed(scenario):
    poster = _poster(scenario)
    p2 = derive_account(SECRET, f"prosumer/{scenario.prosumers[2].name}").address
    poster.learn({"flags": [{"interval": 0, "prosumer": p2, "flagged_s": 1801}], "isolated": []})
    assert poster.transactions({}, {}, {}, 3600.0) == []
    (tx,) = poster.transactions({}, {}, {}, 3601.25)
    assert taken_apart(tx).data == encode_call("Audit", "finalize", 0, p2)
    assert poster.transactions({}, {}, {}, 4501.25) == []


def test_an_isolated_meter_s_missing_interval_is_settled_from_the_estimate_once(scenario):
    poster = _poster(scenario)
    p0 = derive_account(SECRET, f"prosumer/{scenario.prosumers[0].name}").address
    poster.learn({"flags": [], "isolated": [p0, "0x" + "11" * 20]})
    assert poster.isolated == {0}
    latest = {2: _result(2, {}, {0: 250}), 1: _result(1, {}, {})}
    (tx,) = poster.transactions(latest, {2: {1, 2, 3}, 1: {0, 1, 2, 3}}, {2: False, 1: False}, 2701.25)
    assert taken_apart(tx).data == encode_call("Audit", "settle_estimate", 2, p0, 250, 0)
    assert poster.transactions(latest, {2: {1, 2, 3}, 1: {0, 1, 2, 3}}, {2: False, 1: False}, 3601.25) == []


def test_nothing_is_signed_before_the_deployment_notice(scenario):
    poster = AuditPoster(scenario, SECRET)
    assert poster.transactions({0: _result(0, {1: 6.0}, {1: 0})}, {0: {0, 1, 2, 3}}, {0: False}, 901.25) == []
