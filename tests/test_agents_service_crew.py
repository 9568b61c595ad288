"""The service crew without processes: each override signed for the window of the block that mines it, by the crew's
own key, and each receipt recorded as the override's outcome."""

from __future__ import annotations

from gridledger.agents.service_crew import OVERRIDDEN, ServiceCrew
from gridledger.contracts.client import encode_call
from gridledger.contracts.keys import derive_account
from gridledger.messages import encode
from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from tests.agents_der_helpers import CHARGING, SECRET, decoded, notice
from tests.ledger_agents_helpers import LV_FEEDER


def _crew() -> ServiceCrew:
    sc = build_scenario(parse_study({
        "name": "crew", "start": "2024-01-17T14:00:00", "duration_s": 14400, "power_flow_step_s": 900,
        "market_interval_s": 1800, "seed": 11, "grid": {"feeder": LV_FEEDER},
        "prosumers": {"count": 4, "ev": {"share": 1.0}}, "market": {"charging_coordination": True},
        "emergency": {"declare_s": 1800, "household": "p02", "overrides": [
            {"at_s": 2000, "household": "p02", "admitted_kw": 3.7}, {"at_s": 2000, "household": "p03"},
            {"at_s": 9000, "household": "p02"}]}}))
    crew = ServiceCrew(sc, SECRET)
    crew.join(notice("uniform-double-auction", charging=True))
    return crew


def test_each_override_is_signed_by_the_crew_for_the_window_of_the_block_that_mines_it():
    crew = _crew()
    assert crew.act(100.3) == []
    txs = [decoded(tx) for tx in crew.act(2000.3)]
    p02, p03 = (derive_account(SECRET, f"prosumer/{n}").address for n in ("p02", "p03"))
    # The charging requests' block of window 2 was at 1800 + round_s (60) + 1; the next is 3601: window 2.
    assert [tx.data for tx in txs] == [
        encode_call("ChargingCoordination", "override", 2, p02, 3700, "transformer overload"),
        encode_call("ChargingCoordination", "override", 2, p03, 0, "transformer overload")]
    assert {tx.sender for tx in txs} == {derive_account(SECRET, "service").address}
    assert {tx.to.lower() for tx in txs} == {CHARGING}
    (late,) = [decoded(tx) for tx in crew.act(9000.3)]
    assert late.data[4:36] == (5).to_bytes(32, "big")                   # mined at 9001 (9000 + 1): window 5


def test_each_receipt_becomes_its_overrides_outcome_and_other_messages_are_ignored():
    crew = _crew()
    crew.act(2000.3)
    receipt = {"tx_hash": "ab", "sender": crew.account.address, "included": True, "gas_used": 50_000}
    crew.receive([
        ("ledger/tx", encode("receipts", receipts=[{**receipt, "nonce": 0, "status": 1, "revert_reason": None},
                                                   {**receipt, "nonce": 1, "status": 0,
                                                    "revert_reason": "emergency: out of scope"}])),
        ("der/agents", encode("receipts", receipts=[{**receipt, "nonce": 0, "status": 0, "revert_reason": "x"}])),
    ])
    assert crew.outcome == [OVERRIDDEN, "emergency: out of scope", ""]
