"""Audit and the Settlement's hold hook on a real py-evm chain against the Python reference.

Hand-computed cases pin the amounts of a flag, each way it ends, the
isolation rule and an estimate's settlement; a hypothesis test runs
random action sequences on the chain and on
:class:`~gridledger.contracts.audit_reference.AuditModel` and compares
every revert reason, state, hold and credit.
"""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.contracts import audit as au
from gridledger.contracts import market as mk
from gridledger.contracts.audit_reference import (
    READING_TOLERANCE_WH,
    AuditModel,
    AuditTerms,
    Limits,
    Status,
    confirmation_split,
    constructor_problem,
    flag_amounts,
)
from gridledger.contracts.compiler import load_artifact
from tests.contract_helpers import (
    AUDIT_DISPUTE_WINDOW_S,
    AUDIT_FLAG_WINDOW_S,
    AUDIT_ISOLATE_K,
    AUDIT_ISOLATE_N,
    AUDIT_PENALTY_WEI_PER_WH,
    CENT_PER_KWH,
    ENDOWMENT_WEI,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    PV_PEAK_WH,
    RATING_WH,
    TEST_LIMITS,
    AuditMarket,
    new_audit_market,
    new_market,
    reverted,
)

EVIDENCE = bytes.fromhex("ab" * 32)
TERMS = AuditTerms(
    flag_window_s=AUDIT_FLAG_WINDOW_S,
    dispute_window_s=AUDIT_DISPUTE_WINDOW_S,
    isolate_k=AUDIT_ISOLATE_K,
    isolate_n=AUDIT_ISOLATE_N,
    penalty_wei_per_wh=AUDIT_PENALTY_WEI_PER_WH,
    grid_buy_price_wei_per_wh=GRID_BUY_PRICE_WEI_PER_WH,
    grid_sell_price_wei_per_wh=GRID_SELL_PRICE_WEI_PER_WH,
    grid_fee_wei_per_wh=GRID_FEE_WEI_PER_WH,
    non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
    interval_s=INTERVAL_S,
)


def _flag(am: AuditMarket, interval: int, prosumer: int, import_wh: int, export_wh: int,
          timestamp: int | None = None):
    return am.one(au.flag(am.auditor, am.audit, interval, am.market.prosumers[prosumer].address,
                          estimate_import_wh=import_wh, estimate_export_wh=export_wh, residual_milli=4200,
                          chi2_milli=31_000, evidence=EVIDENCE), timestamp)


def _events(am: AuditMarket, receipt) -> list[tuple[str, str, dict]]:
    return [(e.contract, e.event, e.args) for e in au.decode_events(am.market.chain, receipt)]


@pytest.fixture
def am() -> AuditMarket:
    scene = new_audit_market(3)
    scene.clear_empty(4)
    return scene


def test_a_flag_holds_what_the_reading_gained_over_the_estimate_plus_the_penalty(am):
    p0 = am.market.prosumers[0].address
    assert am.post(0, 0, 0, 4000).ok
    # No position. The reading claims 4 kWh exported (+0.2 token at the sell price); the estimate says 1 kWh
    # imported (-0.3 token at the buy price): overpaid 0.2 + 0.3 = 0.5 token; d = 4000 - (-1000) = 5000 Wh,
    # penalty 5000 * 0.1 token/kWh = 0.5 token.
    assert flag_amounts(TERMS, (0, 4000), (1000, 0)) == (5 * 10**17, 5 * 10**17)
    credit = am.settlement("credit_wei", p0)
    assert credit == ENDOWMENT_WEI + 4000 * GRID_SELL_PRICE_WEI_PER_WH
    receipt = _flag(am, 0, 0, 1000, 0)
    assert receipt.ok, receipt.revert_reason
    assert receipt.gas_used < au.GAS_FLAG
    held = 10**18
    assert _events(am, receipt) == [
        ("Settlement", "Held", {"account": p0, "amount_wei": held}),
        ("Audit", "Flagged", {"interval": 0, "prosumer": p0, "residual_milli": 4200, "chi2_milli": 31_000,
                              "evidence": EVIDENCE, "held_wei": held}),
    ]
    state = au.flag_of(am.market.chain, am.audit, 0, p0)
    assert state.as_tuple() == (Status.FLAGGED, am.market.chain.timestamp, 1000, 0, 4200, 31_000, EVIDENCE,
                                5 * 10**17, 5 * 10**17, held)
    assert am.settlement("held_wei", p0) == held
    assert am.settlement("credit_wei", p0) == credit
    assert am.settlement("free_credit_wei", p0) == credit - held
    assert am.tokens_conserved()


def test_a_sellers_flag_is_priced_against_its_position_non_delivery_charge_included():
    """p1 sold 1 kWh; its meter claims the 1 kWh exported, the estimate says 400 Wh. As read it owes nothing; as
    estimated 600 Wh went undelivered, charged at the buy price (above the clearing price) plus the non-delivery
    penalty: 600 Wh x (0.30 + 0.05) token/kWh = 0.21 token gained by the lie."""
    am = new_audit_market(3)
    m = am.market
    book = m.submit_book(0, bids=[(1000, 20 * CENT_PER_KWH)], asks=[(1000, 10 * CENT_PER_KWH)])
    assert m.clear(0, book).ok
    p1 = m.prosumers[1].address
    assert am.post(0, 1, 0, 1000).ok
    overpaid = 600 * (GRID_BUY_PRICE_WEI_PER_WH + NON_DELIVERY_PENALTY_WEI_PER_WH)
    assert overpaid == 21 * 10**16
    assert am.settlement("imbalance_owed_wei", 0, p1, 0, 1000) == 0
    assert am.settlement("imbalance_owed_wei", 0, p1, 0, 400) == -overpaid
    assert _flag(am, 0, 1, 0, 400).ok
    flag = au.flag_of(m.chain, am.audit, 0, p1)
    assert (flag.overpaid_wei, flag.penalty_wei) == (overpaid, 600 * AUDIT_PENALTY_WEI_PER_WH)
    terms = m.read(m.addresses.auction_contract, "settlement_terms", 0, p1)
    assert flag_amounts(TERMS, (0, 1000), (0, 400), terms[1], terms[2]) == (flag.overpaid_wei, flag.penalty_wei)
    assert reverted(am.one(m.call_tx(m.outsider, "Settlement", "imbalance_owed_wei", 0, p1, 2**40 + 1, 0)),
                    "settlement: energy above limit")


def test_an_undisputed_flag_is_confirmed_restitution_to_the_operator_penalty_to_the_pool(am):
    m = am.market
    p0 = m.prosumers[0].address
    assert am.post(0, 0, 0, 4000).ok
    before = am.credits()
    assert _flag(am, 0, 0, 1000, 0).ok
    assert reverted(am.one(au.finalize(m.outsider, am.audit, 0, p0)), "audit: dispute window open")
    receipt = am.one(au.finalize(m.outsider, am.audit, 0, p0), flagged_at(am, 0, 0) + AUDIT_DISPUTE_WINDOW_S)
    assert receipt.ok, receipt.revert_reason
    assert _events(am, receipt) == [
        ("Settlement", "HeldReleased", {"account": p0, "payee": m.operator.address, "amount_wei": 5 * 10**17}),
        ("Settlement", "HeldReleased", {"account": p0, "payee": "0x" + "00" * 20, "amount_wei": 5 * 10**17}),
        ("Audit", "Resolved", {"interval": 0, "prosumer": p0, "confirmed": True,
                               "reason": "audit: not disputed in time"}),
    ]
    after = am.credits()
    assert after[p0] == before[p0] - 10**18
    assert after[m.operator.address] == before[m.operator.address] + 5 * 10**17
    assert am.settlement("penalty_pool_wei") == 5 * 10**17
    assert am.settlement("held_wei", p0) == 0
    assert au.status(m.chain, am.audit, 0, p0) == Status.CONFIRMED
    assert {a: after[a] for a in after if a not in (p0, m.operator.address)} == \
        {a: before[a] for a in before if a not in (p0, m.operator.address)}
    assert am.tokens_conserved()


def flagged_at(am: AuditMarket, interval: int, prosumer: int) -> int:
    return au.flag_of(am.market.chain, am.audit, interval, am.market.prosumers[prosumer].address).flagged_timestamp


@pytest.mark.parametrize("confirm", [True, False])
def test_a_disputed_flag_is_judged_by_the_operator(am, confirm):
    m = am.market
    p0 = m.prosumers[0].address
    assert am.post(0, 0, 0, 4000).ok
    before = am.credits()
    assert _flag(am, 0, 0, 1000, 0).ok
    disputed = am.one(au.dispute(m.prosumers[0], am.audit, 0))
    assert _events(am, disputed) == [("Audit", "Disputed", {"interval": 0, "prosumer": p0})]
    # A disputed flag is no longer finalized by time: only the operator's judgement ends it.
    late = flagged_at(am, 0, 0) + AUDIT_DISPUTE_WINDOW_S + 1
    assert reverted(am.one(au.finalize(m.outsider, am.audit, 0, p0), late), "audit: not flagged")
    receipt = am.one(au.resolve(m.operator, am.audit, 0, p0, confirm=confirm))
    assert receipt.ok, receipt.revert_reason
    reason = "audit: confirmed by operator" if confirm else "audit: rejected by operator"
    assert _events(am, receipt)[-1] == ("Audit", "Resolved", {"interval": 0, "prosumer": p0, "confirmed": confirm,
                                                              "reason": reason})
    after = am.credits()
    assert after[p0] == before[p0] - (10**18 if confirm else 0)
    assert am.settlement("held_wei", p0) == 0
    assert au.status(m.chain, am.audit, 0, p0) == (Status.CONFIRMED if confirm else Status.REJECTED)
    assert am.tokens_conserved()


def test_an_honest_reading_flagged_by_mistake_holds_only_the_penalty_and_a_lower_reading_holds_no_restitution(am):
    # The estimate shows more export than read: d < 0, so nothing was overpaid, only the penalty |d| holds.
    assert confirmation_split(7, 5, 1) == (5, 1, 1)
    p1 = am.market.prosumers[1].address
    assert am.post(0, 1, 1000, 0).ok
    assert _flag(am, 0, 1, 0, 500).ok
    state = au.flag_of(am.market.chain, am.audit, 0, p1)
    assert (state.overpaid_wei, state.penalty_wei, state.held_wei) == (0, 1500 * AUDIT_PENALTY_WEI_PER_WH,
                                                                       1500 * AUDIT_PENALTY_WEI_PER_WH)


def test_k_of_n_counting_flags_isolate_and_recertification_clears_the_history(am):
    m = am.market
    p0 = m.prosumers[0].address
    for interval in range(4):
        assert am.post(interval, 0, 0, 100).ok
    assert _flag(am, 0, 0, 0, 0).ok
    assert not au.read(m.chain, am.audit, "is_isolated", p0)
    # Interval 2 looks back over 0..2 with n = 3: two flags, k = 2.
    receipt = _flag(am, 2, 0, 0, 0)
    assert _events(am, receipt)[-1] == ("Audit", "Isolated", {"prosumer": p0, "interval": 2,
                                                              "reason": "audit: flags reached isolate_k of isolate_n"})
    assert au.read(m.chain, am.audit, "is_isolated", p0)
    assert reverted(am.one(au.recertify(m.outsider, am.audit, p0)), "audit: caller is not operator")
    recertified = am.one(au.recertify(m.operator, am.audit, p0))
    assert _events(am, recertified) == [("Audit", "Recertified", {"prosumer": p0})]
    # Interval 3 looks back over 1..3: the flag of 2 is history, so one counting flag.
    assert _flag(am, 3, 0, 0, 0).ok
    assert not au.read(m.chain, am.audit, "is_isolated", p0)
    assert reverted(am.one(au.recertify(m.operator, am.audit, p0)), "audit: not isolated")


def test_a_rejected_flag_no_longer_counts_towards_isolation(am):
    m = am.market
    p0 = m.prosumers[0].address
    for interval in range(3):
        assert am.post(interval, 0, 0, 100).ok
    assert _flag(am, 0, 0, 0, 0).ok
    assert am.one(au.dispute(m.prosumers[0], am.audit, 0)).ok
    assert am.one(au.resolve(m.operator, am.audit, 0, p0, confirm=False)).ok
    assert _flag(am, 1, 0, 0, 0).ok
    assert not au.read(m.chain, am.audit, "is_isolated", p0)
    assert _flag(am, 2, 0, 0, 0).ok
    assert au.read(m.chain, am.audit, "is_isolated", p0)


def test_an_isolated_prosumer_is_settled_from_the_auditors_estimate(am):
    m = am.market
    p0 = m.prosumers[0].address
    for interval in (0, 1):
        assert am.post(interval, 0, 0, 100).ok
        assert _flag(am, interval, 0, 0, 0).ok
    assert reverted(am.post(2, 0, 0, 100), "settlement: meter isolated")
    credit = am.settlement("credit_wei", p0)
    assert reverted(am.one(au.settle_estimate(m.outsider, am.audit, 2, p0, import_wh=2000, export_wh=0)),
                    "audit: caller is not auditor")
    # An estimate is bounded as a flag's is: export up to the smaller of the rating and PV + battery.
    assert reverted(am.one(au.settle_estimate(am.auditor, am.audit, 2, p0, import_wh=0,
                                              export_wh=RATING_WH + READING_TOLERANCE_WH + 1)),
                    "audit: estimate above limits")
    receipt = am.one(au.settle_estimate(am.auditor, am.audit, 2, p0, import_wh=2000, export_wh=0))
    assert receipt.ok, receipt.revert_reason
    assert _events(am, receipt) == [("Settlement", "Estimated", {"interval": 2, "prosumer": p0})]
    assert am.settlement("credit_wei", p0) == credit - 2000 * GRID_BUY_PRICE_WEI_PER_WH
    assert am.settlement("reading", 2, p0) == (2000, 0, 0, 0, True)
    # An exporting estimate is booked as PV (up to the PV peak): it passes the reading's source checks.
    assert am.one(au.settle_estimate(am.auditor, am.audit, 3, p0, import_wh=0, export_wh=PV_PEAK_WH),
                  m.end(3)).ok
    assert am.settlement("reading", 3, p0) == (0, PV_PEAK_WH, PV_PEAK_WH, 0, True)
    assert reverted(am.one(au.settle_estimate(am.auditor, am.audit, 2, p0, import_wh=2000, export_wh=0)),
                    "settlement: reading exists")
    p1 = m.prosumers[1].address
    assert reverted(am.one(au.settle_estimate(am.auditor, am.audit, 2, p1, import_wh=0, export_wh=0)),
                    "audit: not isolated")
    assert am.tokens_conserved()


def test_fresh_credit_is_withdrawable_once_its_flag_window_has_closed(am):
    m = am.market
    p0 = m.prosumers[0].address
    assert am.post(0, 0, 0, 4000).ok
    fresh = 4000 * GRID_SELL_PRICE_WEI_PER_WH
    assert am.settlement("fresh_wei", p0) == fresh
    deadline = am.settlement("fresh_until_timestamp", p0)
    assert deadline == au.read(m.chain, am.audit, "flag_deadline_timestamp", 0, p0)
    assert deadline == am.settlement("posted_timestamp", 0, p0) + AUDIT_FLAG_WINDOW_S
    withdraw = m.call_tx(m.prosumers[0], "Settlement", "withdraw", ENDOWMENT_WEI)
    assert am.one(withdraw).ok
    early = m.call_tx(m.prosumers[0], "Settlement", "withdraw", 1)
    assert reverted(am.one(early, deadline - 1), "settlement: credit under audit")
    assert am.one(m.call_tx(m.prosumers[0], "Settlement", "withdraw", 1), deadline).ok
    assert am.settlement("credit_wei", p0) == fresh - 1


def test_constructor_and_set_audit_revert_with_exact_reasons():
    m = new_market(2)
    settlement = m.addresses.settlement
    good = (m.dso.address, AUDIT_FLAG_WINDOW_S, AUDIT_DISPUTE_WINDOW_S, 2, 3, AUDIT_PENALTY_WEI_PER_WH)
    cases = [
        ((m.operator.address, *good[1:]), "audit: auditor holds a role"),
        ((m.prosumers[0].address, *good[1:]), "audit: auditor holds a role"),
        (("0x" + "00" * 20, *good[1:]), "audit: auditor is the zero address"),
        ((good[0], 0, *good[2:]), "audit: window out of range"),
        ((good[0], good[1], 30 * 86400 + 1, *good[3:]), "audit: window out of range"),
        ((*good[:3], 0, 3, good[5]), "audit: isolation out of range"),
        ((*good[:3], 4, 3, good[5]), "audit: isolation out of range"),
        ((*good[:3], 33, 33, good[5]), "audit: isolation out of range"),
        ((*good[:5], 10**24 + 1), "audit: price out of range"),
    ]
    for args, reason in cases:
        terms = AuditTerms(args[1], args[2], args[3], args[4], args[5], *[1] * 5)
        assert constructor_problem(terms, auditor_roles=0 if args[0] == m.dso.address else 1,
                                   auditor_is_operator=args[0] == m.operator.address,
                                   auditor_is_zero=int(args[0], 16) == 0) == reason
        assert reverted(m.deploy("Audit", settlement, *args), reason), reason
    raw, address = m.operator.deploy(load_artifact("Audit"), settlement, *good)
    assert m.mine([raw])[0].ok
    set_audit = m.call_tx(m.outsider, "Settlement", "set_audit", address)
    assert reverted(m.mine([set_audit])[0], "settlement: caller is not the operator")
    assert reverted(m.mine([m.call_tx(m.operator, "Settlement", "set_audit", "0x" + "00" * 20)])[0],
                    "settlement: audit is the zero address")
    receipt = m.mine([m.call_tx(m.operator, "Settlement", "set_audit", address)])[0]
    assert receipt.ok
    assert m.read("Settlement", "audit") == address
    assert reverted(m.mine([m.call_tx(m.operator, "Settlement", "set_audit", address)])[0],
                    "settlement: audit already set")


def test_set_audit_closes_at_the_market_start():
    m = new_market(1)
    raw, address = m.operator.deploy(load_artifact("Audit"), m.addresses.settlement, m.dso.address,
                                     AUDIT_FLAG_WINDOW_S, AUDIT_DISPUTE_WINDOW_S, 2, 3, 0)
    assert m.mine([raw])[0].ok
    late = m.call_tx(m.operator, "Settlement", "set_audit", address)
    assert reverted(m.mine([late], m.gate(0) + 300)[0], "settlement: market started")


def test_flag_gas_stays_within_the_signed_limit_at_the_largest_look_back():
    am = new_audit_market(1, isolate_k=32, isolate_n=32)
    am.clear_empty(32)
    p0 = am.market.prosumers[0].address
    for interval in range(32):
        assert am.post(interval, 0, 0, 100).ok
    receipts = [_flag(am, interval, 0, 0, 0) for interval in range(32)]
    assert all(r.ok for r in receipts)
    assert au.read(am.market.chain, am.audit, "is_isolated", p0)
    worst = max(r.gas_used for r in receipts)
    assert worst < au.GAS_FLAG * 0.8, worst
    assert am.one(au.dispute(am.market.prosumers[0], am.audit, 31)).gas_used < au.GAS_DISPUTE
    assert am.one(au.resolve(am.market.operator, am.audit, 31, p0, confirm=True)).gas_used < au.GAS_RESOLVE
    finalize = am.one(au.finalize(am.market.outsider, am.audit, 30, p0), am.market.chain.timestamp + 3600)
    assert finalize.gas_used < au.GAS_FINALIZE
    assert am.one(au.recertify(am.market.operator, am.audit, p0)).gas_used < au.GAS_RECERTIFY


# Differential test -----------------------------------------------------------

N_PROSUMERS = 2
N_INTERVALS = 3
ENERGIES_WH = st.one_of(st.sampled_from([0, 1, 1000, RATING_WH]), st.integers(0, RATING_WH + 3))
# Time steps, mostly short, some at the windows' edges. [s]
# Windows of the differential test's audit: long beside most steps, so that many actions fall inside. [s]
DIFF_FLAG_WINDOW_S = 3600
DIFF_DISPUTE_WINDOW_S = 900
STEPS_S = st.sampled_from([1] * 20 + [2, 60, 60, DIFF_DISPUTE_WINDOW_S - 1, DIFF_DISPUTE_WINDOW_S,
                                      DIFF_FLAG_WINDOW_S - 1, DIFF_FLAG_WINDOW_S])
# Target of an action on a flag or reading: None for the drawn (interval, prosumer), else the index of
# one the model already has (a posted reading to flag, a flag to dispute or end), so that most
# actions reach past the first checks.
PICKS = st.one_of(st.none(), st.integers(0, 20), st.integers(0, 20))
PROSUMERS = st.integers(0, N_PROSUMERS - 1)
INTERVALS = st.integers(0, N_INTERVALS - 1)
# Each kind of action with its arguments; `KINDS` repeats the common kinds to draw them more often.
ACTION_ARGUMENTS = {
    "read": st.tuples(INTERVALS, PROSUMERS, ENERGIES_WH, ENERGIES_WH),
    "flag": st.tuples(INTERVALS, PROSUMERS, ENERGIES_WH, ENERGIES_WH,
                      st.sampled_from(["auditor"] * 6 + ["p0", "operator"]), PICKS),
    "dispute": st.tuples(INTERVALS, PROSUMERS, PICKS),
    "resolve": st.tuples(INTERVALS, PROSUMERS, st.booleans(), st.sampled_from(["operator", "operator", "auditor"]),
                         PICKS),
    "finalize": st.tuples(INTERVALS, PROSUMERS, PICKS),
    "recertify": st.tuples(PROSUMERS, st.sampled_from(["operator", "operator", "p1"])),
    "estimate": st.tuples(INTERVALS, PROSUMERS, ENERGIES_WH, st.sampled_from([0, 2, 3])),
    "withdraw": st.tuples(PROSUMERS, st.sampled_from([1, 2, 3, 50, 99, 100, 101]), st.integers(-3, 3)),
}
KINDS = ["read"] * 3 + ["flag"] * 3 + ["dispute", "resolve", "finalize"] * 2 + ["recertify", "estimate"] + \
    ["withdraw"] * 2
ACTIONS = st.sampled_from(KINDS).flatmap(lambda kind: ACTION_ARGUMENTS[kind].map(lambda args: (kind, *args)))


def _model(am: AuditMarket, isolate_k: int, isolate_n: int) -> AuditModel:
    """The reference of the differential test's market: its windows and isolation rule, the shared terms
    otherwise."""
    m = am.market
    terms = dataclasses.replace(TERMS, flag_window_s=DIFF_FLAG_WINDOW_S, dispute_window_s=DIFF_DISPUTE_WINDOW_S,
                                isolate_k=isolate_k, isolate_n=isolate_n)
    limits = Limits(TEST_LIMITS.meter_rating_w, TEST_LIMITS.pv_w, TEST_LIMITS.battery_w)
    return AuditModel(terms, m.operator.address, am.auditor.address, {w.address: limits for w in m.prosumers},
                      credit_wei=am.credits())


def _index(am: AuditMarket, prosumer: str) -> int:
    return [w.address for w in am.market.prosumers].index(prosumer)


def _target(am: AuditMarket, known: dict, interval: int, prosumer: int, pick: int | None) -> tuple[int, str]:
    """(interval, prosumer address) of an action: the drawn one, or the ``pick``-th key of ``known``."""
    if pick is None or not known:
        return interval, am.market.prosumers[prosumer].address
    return sorted(known)[pick % len(known)]


def _run(am: AuditMarket, model: AuditModel, action: tuple, now: int) -> tuple[str | None, str | None]:
    """One action on the chain at ``now`` and on the model: (chain reason, model reason), None = success."""
    m = am.market
    kind, args = action[0], action[1:]
    who = {"auditor": am.auditor, "operator": m.operator, "p0": m.prosumers[0], "p1": m.prosumers[1]}
    if kind == "read":
        k, i, imp, exp = args
        raw = mk.post_reading(m.meters[i], m.addresses, k, import_wh=imp, export_wh=exp, pv_wh=exp, battery_wh=0)
        expected = model.post_reading(now, k, m.prosumers[i].address, imp, exp, exp)
    elif kind == "flag":
        k, i, imp, exp, sender, pick = args
        k, p = _target(am, model.readings, k, i, pick)
        raw = au.flag(who[sender], am.audit, k, p, estimate_import_wh=imp, estimate_export_wh=exp,
                      residual_milli=-7, chi2_milli=k, evidence=EVIDENCE)
        expected = model.flag(now, who[sender].address, k, p, imp, exp, -7, k, EVIDENCE)
    elif kind == "dispute":
        k, i, pick = args
        k, p = _target(am, model.flags, k, i, pick)
        raw = au.dispute(m.prosumers[_index(am, p)], am.audit, k)
        expected = model.dispute(now, p, k)
    elif kind == "resolve":
        k, i, confirm, sender, pick = args
        k, p = _target(am, model.flags, k, i, pick)
        raw = au.resolve(who[sender], am.audit, k, p, confirm=confirm)
        expected = model.resolve(who[sender].address, k, p, confirm)
    elif kind == "finalize":
        k, i, pick = args
        k, p = _target(am, model.flags, k, i, pick)
        raw = au.finalize(m.outsider, am.audit, k, p)
        expected = model.finalize(now, k, p)
    elif kind == "recertify":
        i, sender = args
        raw = au.recertify(who[sender], am.audit, m.prosumers[i].address)
        expected = model.recertify(who[sender].address, m.prosumers[i].address)
    elif kind == "estimate":
        k, i, imp, exp = args
        raw = au.settle_estimate(am.auditor, am.audit, k, m.prosumers[i].address, import_wh=imp, export_wh=exp)
        expected = model.settle_estimate(now, am.auditor.address, k, m.prosumers[i].address, imp, exp)
    else:
        i, percent, offset = args
        p = m.prosumers[i].address
        # Around the edges: a share of the credit, or just above or below the free credit less the fresh one.
        free = model.free_credit_wei(p)
        amount = max(0, free * percent // 100 if offset == 0 else free - model.fresh_wei.get(p, 0) + offset)
        raw = m.call_tx(m.prosumers[i], "Settlement", "withdraw", amount)
        expected = model.withdraw(now, p, amount)
    receipt = am.one(raw, now)
    return (None if receipt.ok else receipt.revert_reason), expected


def _assert_equal_states(am: AuditMarket, model: AuditModel) -> None:
    m = am.market
    assert am.credits() == {a: model.credit_wei.get(a, 0) for a in am.accounts()}
    assert am.settlement("penalty_pool_wei") == model.penalty_pool_wei
    for w in m.prosumers:
        p = w.address
        assert am.settlement("held_wei", p) == model.held_wei.get(p, 0)
        assert am.settlement("free_credit_wei", p) == model.free_credit_wei(p)
        assert am.settlement("fresh_wei", p) == model.fresh_wei.get(p, 0)
        assert am.settlement("fresh_until_timestamp", p) == model.fresh_until_timestamp.get(p, 0)
        assert au.read(m.chain, am.audit, "is_isolated", p) == model.isolated.get(p, False)
        for k in range(N_INTERVALS):
            record = model.flags.get((k, p))
            expected = record.as_tuple() if record else (0, 0, 0, 0, 0, 0, bytes(32), 0, 0, 0)
            assert au.flag_of(m.chain, am.audit, k, p).as_tuple() == expected
    assert am.tokens_conserved()


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    readings=st.lists(st.tuples(ENERGIES_WH, ENERGIES_WH), min_size=N_INTERVALS * N_PROSUMERS,
                      max_size=N_INTERVALS * N_PROSUMERS),
    steps=st.lists(st.tuples(STEPS_S, ACTIONS), min_size=10, max_size=40),
    isolation=st.sampled_from([(1, 1), (1, 3), (2, 2), (2, 3)]),
)
def test_random_action_sequences_on_chain_equal_the_reference(readings, steps, isolation):
    isolate_k, isolate_n = isolation
    am = new_audit_market(N_PROSUMERS, flag_window_s=DIFF_FLAG_WINDOW_S, dispute_window_s=DIFF_DISPUTE_WINDOW_S,
                          isolate_k=isolate_k, isolate_n=isolate_n)
    am.clear_empty(N_INTERVALS)
    model = _model(am, isolate_k, isolate_n)
    now = am.market.end(N_INTERVALS - 1)
    # Most (interval, prosumer) get a reading first, so that the actions find flaggable readings.
    prefix = [(1, ("read", k, i, imp, exp)) for (k, i), (imp, exp) in
              zip([(k, i) for k in range(N_INTERVALS) for i in range(N_PROSUMERS)], readings, strict=True)
              if (imp + exp + k + i) % 4 != 0]
    for step_s, action in prefix + steps:
        now += step_s
        chain_reason, model_reason = _run(am, model, action, now)
        assert chain_reason == model_reason, (action, chain_reason, model_reason)
        assert am.credits() == {a: model.credit_wei.get(a, 0) for a in am.accounts()}, action
    _assert_equal_states(am, model)


def test_token_conservation_holds_for_the_operator_deposit_and_endowments():
    am = new_audit_market(2)
    assert sum(am.credits().values()) == OPERATOR_DEPOSIT_WEI + 2 * ENDOWMENT_WEI
    assert am.tokens_conserved()
    assert CENT_PER_KWH == 10**13
