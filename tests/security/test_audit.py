"""Attacks on the meter-fraud audit and the Settlement's hold hook, each refused or bounded with nothing lost.

Every test checks, besides the exact refusal or the bounded outcome: the
token supply is unchanged, the credits plus both pools equal the
Settlement's token balance, and the honest accounts' credits are unchanged
by the attack.

Cast: p0 the flagged (or attacking) prosumer, p1 and p2 honest prosumers,
meter0 p0's meter, the market's ``dso`` account the auditor (no registry
role), the operator, an outsider. Intervals 0..3 are cleared empty.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import audit as au
from gridledger.contracts import market as mk
from gridledger.contracts.audit_reference import Status
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.typed_data import sign_reading
from tests.contract_helpers import (
    AUDIT_DISPUTE_WINDOW_S,
    AUDIT_FLAG_WINDOW_S,
    ENDOWMENT_WEI,
    GRID_SELL_PRICE_WEI_PER_WH,
    RATING_WH,
    AuditMarket,
    new_audit_market,
    new_market,
    reverted,
)

EVIDENCE = bytes.fromhex("5e" * 32)
HONEST = (1, 2)


@pytest.fixture
def am() -> AuditMarket:
    scene = new_audit_market(3)
    scene.clear_empty(4)
    return scene


def _honest(am: AuditMarket) -> dict[str, int]:
    return {am.market.prosumers[i].address: am.settlement("credit_wei", am.market.prosumers[i].address)
            for i in HONEST}


def _assert_nothing_lost(am: AuditMarket, honest_before: dict[str, int]) -> None:
    assert am.tokens_conserved()
    assert _honest(am) == honest_before


def _flag(am: AuditMarket, sender, interval: int = 0, prosumer: int = 0, import_wh: int = 1000, export_wh: int = 0,
          timestamp: int | None = None):
    return am.one(au.flag(sender, am.audit, interval, am.market.prosumers[prosumer].address,
                          estimate_import_wh=import_wh, estimate_export_wh=export_wh, residual_milli=9000,
                          chi2_milli=50_000, evidence=EVIDENCE), timestamp)


def _flagged(am: AuditMarket) -> dict[str, int]:
    """p0 reads 4 kWh export in interval 0, the auditor flags it (estimate 1 kWh import); the honest credits."""
    assert am.post(0, 0, 0, 4000).ok
    honest = _honest(am)
    assert _flag(am, am.auditor).ok
    return honest


def _p0(am: AuditMarket) -> str:
    return am.market.prosumers[0].address


@pytest.mark.parametrize("who", ["p0", "meter0", "operator", "outsider", "p1"])
def test_only_the_auditor_flags(am, who):
    m = am.market
    assert am.post(0, 0, 0, 4000).ok
    honest = _honest(am)
    sender = {"p0": m.prosumers[0], "meter0": m.meters[0], "operator": m.operator, "outsider": m.outsider,
              "p1": m.prosumers[1]}[who]
    assert reverted(_flag(am, sender), "audit: caller is not auditor")
    assert au.status(m.chain, am.audit, 0, _p0(am)) == Status.NONE
    assert am.settlement("held_wei", _p0(am)) == 0
    _assert_nothing_lost(am, honest)


def test_the_auditor_cannot_flag_twice(am):
    honest = _flagged(am)
    held = am.settlement("held_wei", _p0(am))
    assert reverted(_flag(am, am.auditor, import_wh=RATING_WH), "audit: already flagged")
    assert am.settlement("held_wei", _p0(am)) == held
    _assert_nothing_lost(am, honest)


def test_the_auditor_cannot_flag_after_the_window(am):
    assert am.post(0, 0, 0, 4000).ok
    honest = _honest(am)
    deadline = am.settlement("posted_timestamp", 0, _p0(am)) + AUDIT_FLAG_WINDOW_S
    assert reverted(_flag(am, am.auditor, timestamp=deadline), "audit: flag window closed")
    assert am.settlement("held_wei", _p0(am)) == 0
    _assert_nothing_lost(am, honest)


def test_the_auditor_cannot_flag_an_interval_without_a_reading(am):
    honest = _honest(am)
    assert reverted(_flag(am, am.auditor, interval=1), "audit: no reading")
    _assert_nothing_lost(am, honest)


@pytest.mark.parametrize("estimate", [(RATING_WH + 3, 0), (0, RATING_WH + 3)])
def test_the_auditor_cannot_flag_with_an_estimate_above_the_limits(am, estimate):
    assert am.post(0, 0, 0, 4000).ok
    honest = _honest(am)
    assert reverted(_flag(am, am.auditor, import_wh=estimate[0], export_wh=estimate[1]),
                    "audit: estimate above limits")
    assert _flag(am, am.auditor, import_wh=RATING_WH + 2).ok
    _assert_nothing_lost(am, honest)


@pytest.mark.parametrize("who", ["outsider", "p1"])
def test_only_the_flagged_prosumer_disputes(am, who):
    m = am.market
    honest = _flagged(am)
    sender = m.outsider if who == "outsider" else m.prosumers[1]
    assert reverted(am.one(au.dispute(sender, am.audit, 0)), "audit: not flagged")
    assert au.status(m.chain, am.audit, 0, _p0(am)) == Status.FLAGGED
    _assert_nothing_lost(am, honest)


def test_a_dispute_after_the_window_reverts(am):
    m = am.market
    honest = _flagged(am)
    flagged = au.flag_of(m.chain, am.audit, 0, _p0(am)).flagged_timestamp
    late = am.one(au.dispute(m.prosumers[0], am.audit, 0), flagged + AUDIT_DISPUTE_WINDOW_S)
    assert reverted(late, "audit: dispute window closed")
    assert au.status(m.chain, am.audit, 0, _p0(am)) == Status.FLAGGED
    _assert_nothing_lost(am, honest)


@pytest.mark.parametrize("who", ["auditor", "p0", "outsider"])
def test_only_the_operator_resolves(am, who):
    m = am.market
    honest = _flagged(am)
    assert am.one(au.dispute(m.prosumers[0], am.audit, 0)).ok
    held = am.settlement("held_wei", _p0(am))
    sender = {"auditor": am.auditor, "p0": m.prosumers[0], "outsider": m.outsider}[who]
    for confirm in (True, False):
        assert reverted(am.one(au.resolve(sender, am.audit, 0, _p0(am), confirm=confirm)),
                        "audit: caller is not operator")
    assert am.settlement("held_wei", _p0(am)) == held
    assert au.status(m.chain, am.audit, 0, _p0(am)) == Status.DISPUTED
    _assert_nothing_lost(am, honest)


def test_an_undisputed_flag_cannot_be_resolved(am):
    m = am.market
    honest = _flagged(am)
    assert reverted(am.one(au.resolve(m.operator, am.audit, 0, _p0(am), confirm=True)), "audit: not disputed")
    # Nor a reading nobody flagged.
    assert reverted(am.one(au.resolve(m.operator, am.audit, 1, _p0(am), confirm=True)), "audit: not disputed")
    _assert_nothing_lost(am, honest)


def test_finalizing_before_the_dispute_window_has_passed_reverts(am):
    m = am.market
    honest = _flagged(am)
    operator_credit = am.settlement("credit_wei", m.operator.address)
    flagged = au.flag_of(m.chain, am.audit, 0, _p0(am)).flagged_timestamp
    early = am.one(au.finalize(m.operator, am.audit, 0, _p0(am)), flagged + AUDIT_DISPUTE_WINDOW_S - 1)
    assert reverted(early, "audit: dispute window open")
    assert am.settlement("credit_wei", m.operator.address) == operator_credit
    _assert_nothing_lost(am, honest)


def test_fresh_credit_cannot_be_withdrawn_before_the_flag_window_closes(am):
    m = am.market
    p0 = m.prosumers[0]
    assert am.post(0, 0, 0, 4000).ok
    honest = _honest(am)
    fresh = 4000 * GRID_SELL_PRICE_WEI_PER_WH
    credit = am.settlement("credit_wei", p0.address)
    assert credit == ENDOWMENT_WEI + fresh
    run = am.one(m.call_tx(p0, "Settlement", "withdraw", credit))
    assert reverted(run, "settlement: credit under audit")
    assert am.one(m.call_tx(p0, "Settlement", "withdraw", ENDOWMENT_WEI + 1)).revert_reason == \
        "settlement: credit under audit"
    assert am.one(m.call_tx(p0, "Settlement", "withdraw", ENDOWMENT_WEI)).ok
    deadline = am.settlement("fresh_until_timestamp", p0.address)
    assert reverted(am.one(m.call_tx(p0, "Settlement", "withdraw", fresh), deadline - 1),
                    "settlement: credit under audit")
    # The window closed unflagged: the fresh credit is ordinary credit.
    assert am.one(m.call_tx(p0, "Settlement", "withdraw", fresh), deadline).ok
    assert am.settlement("credit_wei", p0.address) == 0
    _assert_nothing_lost(am, honest)


def test_a_flagged_prosumer_cannot_withdraw_held_credit(am):
    m = am.market
    p0 = m.prosumers[0]
    honest = _flagged(am)
    held = am.settlement("held_wei", p0.address)
    assert held == 10**18
    deadline = am.settlement("fresh_until_timestamp", p0.address)
    credit = am.settlement("credit_wei", p0.address)
    # Even once the fresh credit is free, the hold is not.
    assert reverted(am.one(m.call_tx(p0, "Settlement", "withdraw", credit), deadline),
                    "settlement: withdraw above free credit")
    assert reverted(am.one(m.call_tx(p0, "Settlement", "withdraw", credit - held + 1)),
                    "settlement: withdraw above free credit")
    assert am.one(m.call_tx(p0, "Settlement", "withdraw", credit - held)).ok
    assert am.settlement("held_wei", p0.address) == held
    assert am.settlement("credit_wei", p0.address) == held
    _assert_nothing_lost(am, honest)


def test_a_hold_larger_than_the_free_credit_holds_only_what_exists(am):
    m = am.market
    p0 = m.prosumers[0]
    assert am.post(0, 0, 0, 4000).ok
    honest = _honest(am)
    # p0 takes out all it may before the flag: its endowment; only the fresh 0.2 token is left.
    assert am.one(m.call_tx(p0, "Settlement", "withdraw", ENDOWMENT_WEI)).ok
    left = am.settlement("free_credit_wei", p0.address)
    operator_before = am.settlement("credit_wei", m.operator.address)
    receipt = _flag(am, am.auditor, import_wh=RATING_WH)
    assert receipt.ok
    state = au.flag_of(m.chain, am.audit, 0, p0.address)
    assert state.overpaid_wei + state.penalty_wei > left
    assert state.held_wei == left == am.settlement("held_wei", p0.address)
    assert am.settlement("free_credit_wei", p0.address) == 0
    assert am.settlement("debt_wei") == 0
    flagged = state.flagged_timestamp
    assert am.one(au.finalize(m.outsider, am.audit, 0, p0.address), flagged + AUDIT_DISPUTE_WINDOW_S).ok
    # Bounded: the operator gets what was held (all of it restitution), p0 ends at zero, never in debt.
    assert am.settlement("credit_wei", m.operator.address) == operator_before + left
    assert am.settlement("credit_wei", p0.address) == 0
    assert am.settlement("debt_wei") == 0
    _assert_nothing_lost(am, honest)


def _isolate_p0(am: AuditMarket) -> dict[str, int]:
    for interval in (0, 1):
        assert am.post(interval, 0, 0, 100).ok
        assert _flag(am, am.auditor, interval=interval, import_wh=0, export_wh=0).ok
    assert au.read(am.market.chain, am.audit, "is_isolated", _p0(am))
    return _honest(am)


def test_an_isolated_meter_cannot_post_a_reading(am):
    honest = _isolate_p0(am)
    credit = am.settlement("credit_wei", _p0(am))
    assert reverted(am.post(2, 0, 0, 4000), "settlement: meter isolated")
    assert am.settlement("reading", 2, _p0(am))[-1] is False
    assert am.settlement("credit_wei", _p0(am)) == credit
    _assert_nothing_lost(am, honest)


def test_an_isolated_meters_signed_reading_is_skipped_in_a_batch(am):
    m = am.market
    honest = _isolate_p0(am)
    credit = am.settlement("credit_wei", _p0(am))
    signed = [sign_reading(m.meters[i].account, m.chain.chain_id, m.addresses.settlement, interval=2, import_wh=0,
                           export_wh=1000, pv_wh=1000, battery_wh=0) for i in (0, 1)]
    receipt = am.one(mk.post_signed_readings(m.outsider, m.addresses, 2, signed), max(m.end(2), m.chain.timestamp + 1))
    assert receipt.ok, receipt.revert_reason
    rejected = [e.args for e in map(m.chain.decode, receipt.logs) if e is not None and e.event == "ReadingRejected"]
    assert rejected == [{"interval": 2, "index": 0, "signer": m.meters[0].address,
                         "reason": "settlement: meter isolated"}]
    assert am.settlement("credit_wei", _p0(am)) == credit
    # The honest meter's reading in the same batch settled.
    p1 = m.prosumers[1].address
    assert am.settlement("credit_wei", p1) == honest[p1] + 1000 * GRID_SELL_PRICE_WEI_PER_WH
    honest[p1] = am.settlement("credit_wei", p1)
    _assert_nothing_lost(am, honest)


@pytest.mark.parametrize("who", ["auditor", "p0", "outsider"])
def test_only_the_operator_recertifies(am, who):
    m = am.market
    honest = _isolate_p0(am)
    sender = {"auditor": am.auditor, "p0": m.prosumers[0], "outsider": m.outsider}[who]
    assert reverted(am.one(au.recertify(sender, am.audit, _p0(am))), "audit: caller is not operator")
    assert au.read(m.chain, am.audit, "is_isolated", _p0(am))
    _assert_nothing_lost(am, honest)


def test_an_auditor_holding_a_registry_role_is_refused():
    m = new_market(2)
    args = (AUDIT_FLAG_WINDOW_S, AUDIT_DISPUTE_WINDOW_S, 2, 3, 0)
    for auditor in (m.operator.address, m.prosumers[0].address, m.meters[0].address):
        assert reverted(m.deploy("Audit", m.addresses.settlement, auditor, *args), "audit: auditor holds a role")
    # An auditor granted a role after deployment can no longer flag.
    raw, address = m.operator.deploy(load_artifact("Audit"), m.addresses.settlement, m.dso.address, *args)
    assert m.mine([raw])[0].ok
    assert m.mine([m.call_tx(m.operator, "Settlement", "set_audit", address)])[0].ok
    assert m.mine([m.call_tx(m.operator, "Registry", "grant_role", m.dso.address, 2)])[0].ok
    assert m.clear(0, mk.Book((), ())).ok
    (posted,) = m.mine([mk.post_reading(m.meters[0], m.addresses, 0, import_wh=0, export_wh=10, pv_wh=10,
                                        battery_wh=0)], m.end(0))
    assert posted.ok
    (flagged,) = m.mine([au.flag(m.dso, address, 0, m.prosumers[0].address, estimate_import_wh=0,
                                 estimate_export_wh=0, residual_milli=0, chi2_milli=0, evidence=EVIDENCE)])
    assert reverted(flagged, "audit: auditor holds a role")
    assert m.read("Settlement", "held_wei", m.prosumers[0].address) == 0


@pytest.mark.parametrize("who", ["operator", "auditor", "p0", "outsider"])
def test_the_hold_hook_is_the_audits_only(am, who):
    m = am.market
    honest = _flagged(am)
    p0 = _p0(am)
    sender = {"operator": m.operator, "auditor": am.auditor, "p0": m.prosumers[0], "outsider": m.outsider}[who]
    held = am.settlement("held_wei", p0)
    calls = [
        ("hold", (m.prosumers[1].address, 10**18)),
        ("release_held", (p0, held, sender.address)),
        ("release_held", (p0, held, p0)),
        ("post_estimate", (1, p0, 0, 0, 0, 0)),
    ]
    for function, args in calls:
        assert reverted(am.one(m.call_tx(sender, "Settlement", function, *args)), "settlement: caller is not audit")
    assert am.settlement("held_wei", p0) == held
    assert am.settlement("held_wei", m.prosumers[1].address) == 0
    assert am.settlement("reading", 1, p0)[-1] is False
    _assert_nothing_lost(am, honest)


@pytest.mark.parametrize("attack,reason", [
    ("a prosumer settles its own estimate", "audit: caller is not auditor"),
    ("the auditor claims more export than PV and battery allow", "audit: estimate above limits"),
    ("the auditor claims more import than the meter rating", "audit: estimate above limits"),
    ("the auditor estimates a meter that is not isolated", "audit: not isolated"),
    ("the auditor estimates an interval that has a reading", "settlement: reading exists"),
])
def test_an_estimate_outside_the_rules_is_refused_and_settles_nothing(am, attack, reason):
    m = am.market
    honest = _isolate_p0(am)
    credit = am.settlement("credit_wei", _p0(am))
    end = max(m.end(2), m.chain.timestamp + 1)
    sender, prosumer, interval, import_wh, export_wh = am.auditor, _p0(am), 2, 0, 0
    if attack == "a prosumer settles its own estimate":
        sender = m.prosumers[0]
    elif attack == "the auditor claims more export than PV and battery allow":
        export_wh = RATING_WH + 3                                   # the rating binds first under TEST_LIMITS
    elif attack == "the auditor claims more import than the meter rating":
        import_wh = RATING_WH + 3
    elif attack == "the auditor estimates a meter that is not isolated":
        prosumer = m.prosumers[1].address
    else:
        interval = 0                                                # p0's reading of interval 0 was settled
    receipt = am.one(au.settle_estimate(sender, am.audit, interval, prosumer, import_wh=import_wh,
                                        export_wh=export_wh), end)
    assert reverted(receipt, reason)
    assert am.settlement("reading", 2, _p0(am))[-1] is False and am.settlement("credit_wei", _p0(am)) == credit
    _assert_nothing_lost(am, honest)
