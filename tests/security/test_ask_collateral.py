"""Asks carry collateral: an undelivered ask loses money, orders are bounded by registration and a minimum size.

Issue 11 item 4: an ask needed no collateral and non-delivery cost only the
grid buy price, so an ask of energy the seller did not have displaced an
honest seller and earned tokens whenever it cleared above the buy tariff.
Item 5: 256 bids of 1 Wh filled a book. Every test checks, besides the
refusal or the bounded outcome: the token supply is unchanged, the
Settlement holds every credit, the pool and the penalty pool, and the
honest accounts got exactly what the reference settles for them. Item 2:
penalties went to the operator; now they fill a penalty pool that nobody
withdraws and that only covers imbalance payments left unpaid.
"""

from __future__ import annotations

from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import Order, clear_uniform, non_delivery_wei, settle
from tests.contract_helpers import (
    CENT_PER_KWH,
    ENDOWMENT_WEI,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    PRICE_CAP_WEI_PER_WH,
    Market,
    new_market,
    reverted,
)

# A 100 kW meter on a 4 kW PV system with a 2 kW battery: bids up to
# 25 kWh an interval, asks up to 1 + 0.5 kWh.
SMALL_PV = mk.ProsumerLimits(meter_rating_w=100_000, pv_w=4_000, battery_w=2_000)
BID_LIMIT_WH = SMALL_PV.meter_rating_w * INTERVAL_S // 3600
ASK_LIMIT_WH = (SMALL_PV.pv_w + SMALL_PV.battery_w) * INTERVAL_S // 3600
PV_PEAK_WH = SMALL_PV.pv_w * INTERVAL_S // 3600


def _accounts(market: Market) -> list[str]:
    return [market.operator.address, *(w.address for w in market.prosumers)]


def _credits(market: Market) -> dict[str, int]:
    return {a: market.read("Settlement", "credit_wei", a) for a in _accounts(market)}


def _assert_conserved_and_solvent(market: Market) -> None:
    """Supply unchanged; the Settlement's tokens are every credit plus both pools and cover what it owes."""
    assert market.read("GridToken", "totalSupply") == ENDOWMENT_WEI * len(market.prosumers) + OPERATOR_DEPOSIT_WEI
    credits = _credits(market)
    held = market.read("GridToken", "balanceOf", market.addresses.settlement)
    pool = market.read("Settlement", "pool_wei") + market.read("Settlement", "penalty_pool_wei")
    debt = market.read("Settlement", "debt_wei")
    assert sum(credits.values()) + pool == held
    operator = market.operator.address
    owed = sum(max(c, 0) for a, c in credits.items() if a != operator) + max(credits[operator] - debt, 0) + pool
    assert held >= owed


def _line(position_wh: int, value_wei: int, import_wh: int, export_wh: int):
    return settle(position_wh, value_wei, import_wh, export_wh, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH,
                  GRID_FEE_WEI_PER_WH, non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH)


def _trade_and_post(market: Market, q_wh: int, ask_price: int, bid_price: int, export_wh: int):
    """Prosumer 0 bids and prosumer 1 asks ``q_wh``; after clearing the seller's meter reads ``export_wh``
    (PV up to its peak, the rest from the battery), the buyer's an import of ``q_wh``.

    Returns (clearing price, credit changes, seller's receipt).
    """
    buyer, seller = market.prosumers[:2]
    interval = market.next_interval()
    before = _credits(market)
    book = market.submit_book(interval, [(q_wh, bid_price)], [(q_wh, ask_price)])
    assert market.clear(interval, book).ok
    clearing = clear_uniform([Order(buyer.address, q_wh, bid_price)], [Order(seller.address, q_wh, ask_price)])
    receipts = market.mine(
        [mk.post_reading(market.meters[1], market.addresses, interval, import_wh=0, export_wh=export_wh,
                         pv_wh=min(export_wh, PV_PEAK_WH), battery_wh=export_wh - min(export_wh, PV_PEAK_WH)),
         mk.post_reading(market.meters[0], market.addresses, interval, import_wh=q_wh, export_wh=0, pv_wh=0,
                         battery_wh=0)],
        max(market.end(interval), market.chain.timestamp + 1),
    )
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    after = _credits(market)
    return clearing.price_wei_per_wh, {a: after[a] - before[a] for a in after}, receipts[0]


def test_an_empty_ask_that_clears_above_the_buy_tariff_loses_money():
    """10 kWh asked at 0.50 and bid at 0.70 token/kWh clear at 0.60; the seller exports nothing.

    Before: it received 6.00 tokens and paid the shortfall at the 0.30 buy
    price, 3.00: +3.00 tokens for energy it never had. Now it returns what
    it was paid for the undelivered 10 kWh, max(6.00, 3.00 at the buy
    price), plus the 0.05 token/kWh penalty, 6.50: the empty ask loses 0.50
    tokens. The honest buyer pays its contract (6.00 + 0.20 fee) and
    nothing more; the grid delivered its energy.
    """
    market = new_market(2)
    q_wh = 10_000
    price, delta, receipt = _trade_and_post(market, q_wh, 50 * CENT_PER_KWH, 70 * CENT_PER_KWH, export_wh=0)
    buyer, seller = (w.address for w in market.prosumers[:2])
    operator = market.operator.address
    assert price == 60 * CENT_PER_KWH
    old_net_wei = price * q_wh - GRID_BUY_PRICE_WEI_PER_WH * q_wh
    assert old_net_wei == 3 * 10**18
    assert delta[seller] == -NON_DELIVERY_PENALTY_WEI_PER_WH * q_wh == -5 * 10**17
    assert delta[seller] == _line(q_wh, price * q_wh, 0, 0).credit_delta_wei
    events = [market.chain.decode(log) for log in receipt.logs]
    (undelivered,) = [e.args for e in events if e.event == "Undelivered"]
    assert undelivered == {"interval": undelivered["interval"], "seller": seller, "energy_wh": q_wh,
                           "charge_wei": (price + NON_DELIVERY_PENALTY_WEI_PER_WH) * q_wh}
    assert delta[buyer] == _line(-q_wh, -price * q_wh, q_wh, 0).credit_delta_wei == -(price + GRID_FEE_WEI_PER_WH) * q_wh
    # The operator gets the fee and the replacement part, 6.00; the 0.50 penalty lands in the penalty pool.
    assert delta[operator] == (GRID_FEE_WEI_PER_WH + price) * q_wh
    assert delta[operator] == (_line(q_wh, price * q_wh, 0, 0).operator_delta_wei
                               + _line(-q_wh, -price * q_wh, q_wh, 0).operator_delta_wei)
    assert market.read("Settlement", "penalty_pool_wei") == NON_DELIVERY_PENALTY_WEI_PER_WH * q_wh
    assert _line(q_wh, price * q_wh, 0, 0).penalty_pool_delta_wei == NON_DELIVERY_PENALTY_WEI_PER_WH * q_wh
    assert market.read("Settlement", "pool_wei") == 0
    _assert_conserved_and_solvent(market)


def test_the_penalty_pool_covers_an_unpaid_imbalance_and_the_operator_cannot_withdraw_it():
    """An empty ask of 1.5 kWh fills the penalty pool with its 0.075 token penalty; the operator's credit rises
    only by the fee and the replacement part. The operator withdraws all its free credit and cannot take one wei
    more: the pool stays in the Settlement. The buyer then withdraws everything and imports 1 kWh it cannot pay
    (no credit line): its 0.30 token imbalance is `Unpaid` and the pool covers the operator up to its balance.
    """
    market = new_market(2, limits=SMALL_PV)
    buyer_wallet = market.prosumers[0]
    buyer, seller, operator = buyer_wallet.address, market.prosumers[1].address, market.operator.address
    q_wh = ASK_LIMIT_WH
    price, delta, receipt = _trade_and_post(market, q_wh, 50 * CENT_PER_KWH, 70 * CENT_PER_KWH, export_wh=0)
    penalty_wei = NON_DELIVERY_PENALTY_WEI_PER_WH * q_wh
    assert market.read("Settlement", "penalty_pool_wei") == penalty_wei == 75 * 10**15
    assert delta[seller] == -(price + NON_DELIVERY_PENALTY_WEI_PER_WH) * q_wh + price * q_wh
    assert delta[operator] == (GRID_FEE_WEI_PER_WH + price) * q_wh
    assert not [e for e in map(market.chain.decode, receipt.logs) if e.event in ("Unpaid", "Covered")]
    assert receipt.gas_used <= mk.GAS_POST_READING

    free_wei = market.read("Settlement", "free_credit_wei", operator)
    greedy, fair = market.mine([market.call_tx(market.operator, "Settlement", "withdraw", free_wei + 1),
                                market.call_tx(market.operator, "Settlement", "withdraw", free_wei)])
    assert reverted(greedy, "settlement: withdraw above free credit")
    assert fair.ok, fair.revert_reason
    assert market.read("Settlement", "credit_wei", operator) == 0
    (more,) = market.mine([market.call_tx(market.operator, "Settlement", "withdraw", 1)])
    assert reverted(more, "settlement: withdraw above free credit")
    assert market.read("Settlement", "penalty_pool_wei") == penalty_wei
    _assert_conserved_and_solvent(market)

    (out,) = market.mine([market.call_tx(buyer_wallet, "Settlement", "withdraw",
                                         market.read("Settlement", "free_credit_wei", buyer))])
    assert out.ok, out.revert_reason
    interval = market.next_interval()
    assert market.clear(interval, mk.Book((), ())).ok
    import_wh = 1000
    owed_wei = GRID_BUY_PRICE_WEI_PER_WH * import_wh
    assert owed_wei > penalty_wei
    (posted,) = market.mine(
        [mk.post_reading(market.meters[0], market.addresses, interval, import_wh=import_wh, export_wh=0, pv_wh=0,
                         battery_wh=0)],
        max(market.end(interval), market.chain.timestamp + 1))
    assert posted.ok, posted.revert_reason
    assert posted.gas_used <= mk.GAS_POST_READING
    line = settle(0, 0, import_wh, 0, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                  non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH, prosumer_payable_wei=0,
                  penalty_pool_wei=penalty_wei)
    assert (line.unpaid_wei, line.covered_wei, line.penalty_pool_delta_wei) == (owed_wei, penalty_wei, -penalty_wei)
    events = [e for e in map(market.chain.decode, posted.logs) if e.event in ("Unpaid", "Covered")]
    assert [(e.event, e.args) for e in events] == [
        ("Unpaid", {"interval": interval, "payer": buyer, "payee": operator, "unpaid_wei": owed_wei}),
        ("Covered", {"interval": interval, "payee": operator, "amount_wei": penalty_wei}),
    ]
    assert market.read("Settlement", "credit_wei", buyer) == line.credit_delta_wei == 0
    assert market.read("Settlement", "credit_wei", operator) == line.operator_delta_wei == penalty_wei
    assert market.read("Settlement", "penalty_pool_wei") == 0
    _assert_conserved_and_solvent(market)


@settings(max_examples=12, deadline=None)
@given(
    q_wh=st.integers(1, ASK_LIMIT_WH),
    ask_price=st.integers(1, PRICE_CAP_WEI_PER_WH),
    bid_above_ask=st.integers(0, PRICE_CAP_WEI_PER_WH),
    delivered=st.floats(0.0, 1.0, exclude_max=True),
)
def test_on_chain_the_undelivered_part_of_an_ask_loses_money(chain_market, q_wh, ask_price, bid_above_ask, delivered):
    market = chain_market
    bid_price = min(ask_price + bid_above_ask, PRICE_CAP_WEI_PER_WH)
    export_wh = int(delivered * q_wh)
    price, delta, _ = _trade_and_post(market, q_wh, ask_price, bid_price, export_wh)
    buyer, seller = (w.address for w in market.prosumers[:2])
    assert delta[seller] == _line(q_wh, price * q_wh, 0, export_wh).credit_delta_wei
    # Against having asked only what it delivered, the undelivered part loses the penalty and, below the
    # buy price, the grid's replacement cost beyond its price.
    undelivered_wh = q_wh - export_wh
    undelivered_net_wei = delta[seller] - _line(export_wh, price * export_wh, 0, export_wh).credit_delta_wei
    assert undelivered_net_wei == (
        -(max(price, GRID_BUY_PRICE_WEI_PER_WH) - price + NON_DELIVERY_PENALTY_WEI_PER_WH) * undelivered_wh)
    assert undelivered_net_wei <= -NON_DELIVERY_PENALTY_WEI_PER_WH * undelivered_wh < 0
    assert delta[buyer] == _line(-q_wh, -price * q_wh, q_wh, 0).credit_delta_wei
    operator = market.operator.address
    assert delta[operator] == (_line(q_wh, price * q_wh, 0, export_wh).operator_delta_wei
                               + _line(-q_wh, -price * q_wh, q_wh, 0).operator_delta_wei)
    assert market.read("Settlement", "pool_wei") == 0
    _assert_conserved_and_solvent(market)


@pytest.fixture(scope="module")
def chain_market() -> Market:
    return new_market(2, limits=SMALL_PV)


@given(
    q_wh=st.integers(1, 10**9),
    delivered=st.floats(0.0, 1.0, exclude_max=True),
    import_wh=st.integers(0, 10**9),
    value_per_wh=st.fractions(0, PRICE_CAP_WEI_PER_WH),
    buy=st.integers(1, PRICE_CAP_WEI_PER_WH),
    sell_share=st.floats(0.0, 1.0),
    penalty=st.integers(1, PRICE_CAP_WEI_PER_WH),
)
def test_for_any_price_the_undelivered_share_of_an_ask_loses_at_least_the_penalty(
    q_wh, delivered, import_wh, value_per_wh, buy, sell_share, penalty
):
    """Any value v within the cap (uniform or discriminatory prices): the undelivered share u earns v * u / q
    and is charged at least that plus the penalty, rounded up."""
    export_wh = int(delivered * q_wh)
    undelivered_wh = q_wh - export_wh
    value_wei = int(value_per_wh * q_wh)
    sell = int(sell_share * (buy - 1))
    line = settle(q_wh, value_wei, import_wh, export_wh, buy, sell, 0, non_delivery_penalty_wei_per_wh=penalty)
    # The reading's imbalance beyond the shortfall: the import at the buy price.
    earned_by_undelivered = Fraction(value_wei * undelivered_wh, q_wh)
    charge = non_delivery_wei(q_wh, value_wei, undelivered_wh, buy, penalty)
    assert line.credit_delta_wei == value_wei - buy * import_wh - charge
    assert earned_by_undelivered - charge <= -penalty * undelivered_wh < 0


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid", "merit-order", "vickrey", "english"])
def test_an_ask_above_registered_capacity_reverts(mechanism):
    market = new_market(2, mechanism=mechanism, limits=SMALL_PV)
    seller = market.prosumers[1]
    interval = market.next_interval()
    before = _credits(market)
    if mechanism in ("vickrey", "english"):
        txs = [mk.post_lot(seller, market.addresses, interval, energy_wh=e, reserve_price_wei_per_wh=CENT_PER_KWH)
               for e in (ASK_LIMIT_WH + 1, ASK_LIMIT_WH)]
    else:
        txs = [mk.submit_order(seller, market.addresses, interval, is_ask=True, energy_wh=e,
                               price_wei_per_wh=CENT_PER_KWH) for e in (ASK_LIMIT_WH + 1, ASK_LIMIT_WH)]
    above, at = market.mine(txs)
    assert reverted(above, "escrow: ask above registered capacity")
    assert at.ok, at.revert_reason
    assert market.read("Settlement", "order_limit_wh", seller.address, True) == ASK_LIMIT_WH
    if mechanism == "merit-order":
        # The operator's own demand has no meter and no bound but the mechanism's.
        (demand,) = market.mine([mk.post_demand(market.operator, market.addresses, interval, demand_wh=BID_LIMIT_WH * 4)])
        assert demand.ok, demand.revert_reason
    assert _credits(market) == before
    _assert_conserved_and_solvent(market)


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid"])
def test_a_bid_above_the_meter_rating_reverts_and_locks_nothing(mechanism):
    market = new_market(2, mechanism=mechanism, limits=SMALL_PV)
    buyer = market.prosumers[1]
    interval = market.next_interval()
    above, at = market.mine([
        mk.submit_order(buyer, market.addresses, interval, is_ask=False, energy_wh=e, price_wei_per_wh=CENT_PER_KWH)
        for e in (BID_LIMIT_WH + 1, BID_LIMIT_WH)])
    assert reverted(above, "escrow: bid above meter rating")
    assert at.ok, at.revert_reason
    assert market.read("Settlement", "order_limit_wh", buyer.address, False) == BID_LIMIT_WH
    assert market.read("Settlement", "locked_wei", buyer.address) == BID_LIMIT_WH * (CENT_PER_KWH + GRID_FEE_WEI_PER_WH)
    _assert_conserved_and_solvent(market)


def test_an_unregistered_account_may_order_nothing():
    market = new_market(1)
    outsider = market.outsider.address
    assert market.read("Settlement", "order_limit_wh", outsider, True) == 0
    assert market.read("Settlement", "order_limit_wh", outsider, False) == 0


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid", "vickrey"])
def test_a_flood_of_one_wh_orders_reverts_and_the_book_holds_one_order_per_account(mechanism):
    min_order_wh = 100
    market = new_market(8, mechanism=mechanism, min_order_wh=min_order_wh)
    interval = market.next_interval()
    before = _credits(market)

    def order(wallet, energy_wh):
        if mechanism == "vickrey":
            return mk.post_lot(wallet, market.addresses, interval, energy_wh=energy_wh,
                               reserve_price_wei_per_wh=CENT_PER_KWH)
        return mk.submit_order(wallet, market.addresses, interval, is_ask=False, energy_wh=energy_wh,
                               price_wei_per_wh=CENT_PER_KWH)

    flood = market.mine([order(w, 1) for w in market.prosumers])
    assert all(reverted(r, "escrow: energy below minimum") for r in flood)
    assert _credits(market) == before
    assert all(market.read("Settlement", "locked_wei", w.address) == 0 for w in market.prosumers)
    placed = market.mine([order(w, min_order_wh) for w in market.prosumers])
    assert all(r.ok for r in placed), [r.revert_reason for r in placed]
    again = market.mine([order(w, min_order_wh) for w in market.prosumers])
    repeat = "lot_book: lot exists" if mechanism == "vickrey" else "book: order exists"
    assert all(reverted(r, repeat) for r in again)
    if mechanism == "vickrey":
        assert len(market.read("VickreyAuction", "lots", interval)) == len(market.prosumers)
    else:
        assert market.read(market.addresses.auction_contract, "order_count", interval, False) == len(market.prosumers)
    _assert_conserved_and_solvent(market)


@given(
    position_wh=st.integers(-10**6, 10**6),
    value_per_wh=st.integers(0, PRICE_CAP_WEI_PER_WH),
    import_wh=st.integers(0, 10**6),
    export_wh=st.integers(0, 10**6),
    prosumer_payable_wei=st.integers(-10**24, 10**24),
    operator_payable_wei=st.integers(-10**24, 10**24),
    penalty_pool_wei=st.integers(0, 10**24),
)
def test_a_settlement_moves_money_only_between_its_parties_and_the_penalty_pool_stays_covered(
    position_wh, value_per_wh, import_wh, export_wh, prosumer_payable_wei, operator_payable_wei, penalty_pool_wei
):
    """Whatever the payer can afford: prosumer, operator, pool and penalty pool changes sum to zero; the penalty
    pool never goes below zero and covers at most the payee's unpaid part; the operator gets no penalty."""
    value_wei = value_per_wh * position_wh
    line = settle(position_wh, value_wei, import_wh, export_wh, GRID_BUY_PRICE_WEI_PER_WH,
                  GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                  non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
                  prosumer_payable_wei=prosumer_payable_wei, operator_payable_wei=operator_payable_wei,
                  penalty_pool_wei=penalty_pool_wei)
    assert line.credit_delta_wei + line.operator_delta_wei + line.pool_delta_wei + line.penalty_pool_delta_wei == 0
    assert penalty_pool_wei + line.penalty_pool_delta_wei >= 0
    assert 0 <= line.covered_wei <= line.unpaid_wei
    unlimited = settle(position_wh, value_wei, import_wh, export_wh, GRID_BUY_PRICE_WEI_PER_WH,
                       GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                       non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH)
    undelivered_wh = max(0, position_wh - export_wh)
    assert unlimited.penalty_pool_delta_wei == NON_DELIVERY_PENALTY_WEI_PER_WH * undelivered_wh
    # The payee, paid and covered, never gets more than it is owed when every payment is made.
    if unlimited.imbalance_wei < 0:
        assert line.operator_delta_wei <= unlimited.operator_delta_wei
    else:
        assert line.credit_delta_wei <= unlimited.credit_delta_wei
