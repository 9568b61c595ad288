"""Attacks on the Settlement by a meter key, a debtor and the operator, each refused or bounded with nothing lost.

Every test checks, besides the refusal: the token supply is unchanged,
the Settlement holds at least what it owes (every account's positive
credit, the operator's less the debt owed to it, the pool and the penalty
pool) and the
honest accounts' credits are unchanged by the attack.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import market as mk
from gridledger.contracts.reference import reading_limit_reason, settle
from tests.contract_helpers import (
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
    Market,
    new_market,
    reverted,
)

CREDIT_LINE_WEI = 10**18


def _credits(market: Market) -> dict[str, int]:
    return {a: market.read("Settlement", "credit_wei", a) for a in _accounts(market)}


def _accounts(market: Market) -> list[str]:
    return [market.operator.address, *(w.address for w in market.prosumers)]


def _assert_nothing_lost(market: Market, honest_before: dict[str, int]) -> None:
    """Supply conserved, the Settlement solvent, and every account of ``honest_before`` at its credit there."""
    supply = market.read("GridToken", "totalSupply")
    assert supply == ENDOWMENT_WEI * len(market.prosumers) + OPERATOR_DEPOSIT_WEI
    credits = _credits(market)
    held = market.read("GridToken", "balanceOf", market.addresses.settlement)
    pool = market.read("Settlement", "pool_wei") + market.read("Settlement", "penalty_pool_wei")
    debt = market.read("Settlement", "debt_wei")
    assert sum(credits.values()) + pool == held
    assert debt == sum(max(-c, 0) for c in credits.values())
    operator = market.operator.address
    owed = sum(max(c, 0) for a, c in credits.items() if a != operator) + max(credits[operator] - debt, 0) + pool
    assert held >= owed
    assert {a: credits[a] for a in honest_before} == honest_before


def _honest(market: Market, *indices: int) -> dict[str, int]:
    return {market.prosumers[i].address: market.read("Settlement", "credit_wei", market.prosumers[i].address)
            for i in indices}


def _post(market: Market, interval: int, meter: int, reading: tuple[int, int, int, int]):
    imp, exp, pv, bat = reading
    (receipt,) = market.mine(
        [mk.post_reading(market.meters[meter], market.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=pv,
                         battery_wh=bat)],
        max(market.end(interval), market.chain.timestamp + 1),
    )
    return receipt


def _cleared_empty_interval(market: Market) -> int:
    interval = market.next_interval()
    assert market.clear(interval, mk.Book((), ())).ok
    return interval


def _assert_reading_reverts(reading: tuple[int, int, int, int], reason: str) -> None:
    market = new_market(3)
    honest = _honest(market, 1, 2)
    interval = _cleared_empty_interval(market)
    limits = dict(meter_rating_w=TEST_LIMITS.meter_rating_w, pv_w=TEST_LIMITS.pv_w, battery_w=TEST_LIMITS.battery_w)
    assert reading_limit_reason(*reading, **limits, interval_s=INTERVAL_S) == reason
    receipt = _post(market, interval, 0, reading)
    assert reverted(receipt, reason), receipt.revert_reason
    assert market.read("Settlement", "reading", interval, market.prosumers[0].address)[-1] is False
    # The attacker's prosumer cannot take out more than its endowment.
    attacker = market.prosumers[0]
    (withdrawn,) = market.mine([market.call_tx(attacker, "Settlement", "withdraw", ENDOWMENT_WEI + 1)])
    assert reverted(withdrawn, "settlement: withdraw above free credit")
    _assert_nothing_lost(market, honest)


def test_an_export_of_1e12_wh_reverts_above_the_meter_rating():
    _assert_reading_reverts((0, 10**12, 0, 0), "settlement: export above meter rating")


def test_an_export_without_pv_or_battery_reverts():
    _assert_reading_reverts((0, 1000, 0, 0), "settlement: export above PV and battery")


def test_pv_energy_above_peak_power_times_interval_reverts():
    _assert_reading_reverts((0, 0, PV_PEAK_WH + 3, 0), "settlement: PV above peak power")


def test_limits_are_registered_once_and_not_after_the_start():
    market = new_market(2)
    honest = _honest(market, 0, 1)
    prosumer = market.prosumers[0].address
    again, outsider = market.mine([
        market.call_tx(market.operator, "Settlement", "register_prosumer", prosumer, 10**9, 10**9, 10**9),
        market.call_tx(market.outsider, "Settlement", "register_prosumer", market.outsider.address, 1, 0, 0),
    ])
    assert reverted(again, "settlement: prosumer registered")
    assert reverted(outsider, "settlement: caller is not the operator")
    interval = _cleared_empty_interval(market)
    (late,) = market.mine(
        [market.call_tx(market.operator, "Settlement", "register_prosumer", market.outsider.address, 1, 0, 0)],
        market.end(interval))
    assert reverted(late, "settlement: market started")
    assert tuple(market.read("Settlement", "limits", prosumer)) == (
        TEST_LIMITS.meter_rating_w, TEST_LIMITS.pv_w, TEST_LIMITS.battery_w, True)
    _assert_nothing_lost(market, honest)


def test_an_export_the_operator_cannot_pay_is_paid_only_up_to_its_free_credit():
    # The operator keeps 1 token; a meter then posts the largest export its limits allow.
    market = new_market(3)
    kept_wei = 10**18
    (out,) = market.mine([market.call_tx(market.operator, "Settlement", "withdraw", OPERATOR_DEPOSIT_WEI - kept_wei)])
    assert out.ok
    honest = _honest(market, 1, 2)
    interval = _cleared_empty_interval(market)
    seller = market.prosumers[0].address
    receipt = _post(market, interval, 0, (0, RATING_WH, PV_PEAK_WH, 0))
    assert receipt.ok, receipt.revert_reason
    line = settle(0, 0, 0, RATING_WH, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                  non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH, operator_payable_wei=kept_wei)
    assert line.imbalance_wei == kept_wei and line.unpaid_wei == RATING_WH * GRID_SELL_PRICE_WEI_PER_WH - kept_wei
    events = [market.chain.decode(log) for log in receipt.logs]
    (unpaid,) = [e.args for e in events if e.event == "Unpaid"]
    assert unpaid == {"interval": interval, "payer": market.operator.address, "payee": seller,
                      "unpaid_wei": line.unpaid_wei}
    assert market.read("Settlement", "credit_wei", seller) == ENDOWMENT_WEI + kept_wei
    assert market.read("Settlement", "credit_wei", market.operator.address) == 0
    # The seller takes all it was paid; every honest prosumer can still take all of its credit.
    txs = [market.call_tx(market.prosumers[0], "Settlement", "withdraw", ENDOWMENT_WEI + kept_wei)]
    _assert_nothing_lost(market, honest)
    txs += [market.call_tx(market.prosumers[i], "Settlement", "withdraw", ENDOWMENT_WEI) for i in (1, 2)]
    assert all(r.ok for r in market.mine(txs))
    assert market.read("GridToken", "balanceOf", market.addresses.settlement) == 0


def _market_with_a_debtor(mechanism: str = mk.DEFAULT_MECHANISM) -> tuple[Market, int]:
    """A ``mechanism`` market with a credit line where prosumer 0 withdrew all, then imported: it owes the whole line."""
    market = new_market(4, mechanism=mechanism, credit_line_wei=CREDIT_LINE_WEI)
    debtor = market.prosumers[0]
    assert market.mine([market.call_tx(debtor, "Settlement", "withdraw", ENDOWMENT_WEI)])[0].ok
    interval = market.next_interval()
    if mechanism == "vickrey":
        reveal_s = market.read(market.addresses.auction_contract, "reveal_s")
        (finalised,) = market.mine([mk.finalise(market.operator, market.addresses, interval, n_lots=0)],
                                   market.gate(interval) + reveal_s)
        assert finalised.ok, finalised.revert_reason
    elif mechanism != "english":
        assert market.clear(interval, mk.Book((), ())).ok
    receipt = _post(market, interval, 0, (RATING_WH, 0, 0, 0))
    assert receipt.ok, receipt.revert_reason
    line = settle(0, 0, RATING_WH, 0, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                  non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH, prosumer_payable_wei=CREDIT_LINE_WEI)
    assert line.credit_delta_wei == -CREDIT_LINE_WEI and line.unpaid_wei > 0
    assert market.read("Settlement", "credit_wei", debtor.address) == -CREDIT_LINE_WEI
    assert market.read("Settlement", "debt_wei") == CREDIT_LINE_WEI
    assert market.read("Settlement", "is_debtor", debtor.address) is True
    return market, interval


def test_a_withdrawal_that_would_leave_the_settlement_unable_to_pay_reverts():
    market, _ = _market_with_a_debtor()
    honest = _honest(market, 1, 2, 3)
    operator = market.operator.address
    free = market.read("Settlement", "free_credit_wei", operator)
    # The operator's credit includes the 1 token its debtor owes it, which the Settlement does not hold.
    (greedy,) = market.mine([market.call_tx(market.operator, "Settlement", "withdraw", free)])
    assert reverted(greedy, "settlement: withdraw above solvent credit")
    (fair,) = market.mine([market.call_tx(market.operator, "Settlement", "withdraw", free - CREDIT_LINE_WEI)])
    assert fair.ok
    _assert_nothing_lost(market, honest)
    # Every honest prosumer can still withdraw all of its credit.
    receipts = market.mine([market.call_tx(market.prosumers[i], "Settlement", "withdraw", c)
                            for i, c in zip((1, 2, 3), honest.values(), strict=True)])
    assert all(r.ok for r in receipts)
    # What is left is the debtor's IOU to the operator, which no token backs and nobody can withdraw.
    assert market.read("Settlement", "credit_wei", operator) == CREDIT_LINE_WEI
    assert market.read("GridToken", "balanceOf", market.addresses.settlement) == 0
    _assert_nothing_lost(market, {})


def test_a_debtor_can_neither_ask_nor_bid():
    market, _ = _market_with_a_debtor()
    honest = _honest(market, 1, 2, 3)
    interval = market.next_interval()
    debtor = market.prosumers[0]
    ask, bid = market.mine([
        mk.submit_order(debtor, market.addresses, interval, is_ask=True, energy_wh=1000, price_wei_per_wh=1),
        mk.submit_order(debtor, market.addresses, interval + 1, is_ask=False, energy_wh=1, price_wei_per_wh=1),
    ])
    assert reverted(ask, "escrow: account in debt")
    assert reverted(bid, "escrow: account in debt")
    # Paying the debt back, with tokens the operator takes out and hands over, restores it.
    receipts = market.mine([
        market.call_tx(market.operator, "Settlement", "withdraw", CREDIT_LINE_WEI),
        market.call_tx(market.operator, "GridToken", "transfer", debtor.address, CREDIT_LINE_WEI),
        market.call_tx(debtor, "GridToken", "approve", market.addresses.settlement, CREDIT_LINE_WEI),
    ])
    assert all(r.ok for r in receipts)
    (repaid,) = market.mine([market.call_tx(debtor, "Settlement", "deposit_for", debtor.address, CREDIT_LINE_WEI)])
    assert repaid.ok
    assert market.read("Settlement", "debt_wei") == 0
    (ask_again,) = market.mine([
        mk.submit_order(debtor, market.addresses, interval, is_ask=True, energy_wh=1000, price_wei_per_wh=1)])
    assert ask_again.ok
    _assert_nothing_lost(market, honest)


@pytest.mark.parametrize("mechanism", ["vickrey", "english"])
def test_a_debtor_cannot_offer_a_lot(mechanism):
    market, _ = _market_with_a_debtor(mechanism)
    honest = _honest(market, 1, 2, 3)
    interval = market.next_interval()
    posts = [mk.post_lot(market.prosumers[i], market.addresses, interval, energy_wh=1000, reserve_price_wei_per_wh=1)
             for i in (0, 1)]
    debtor_lot, honest_lot = market.mine(posts)
    assert reverted(debtor_lot, "escrow: account in debt")
    assert honest_lot.ok
    _assert_nothing_lost(market, honest)
