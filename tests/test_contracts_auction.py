"""DoubleAuction on a real py-evm chain against the Python reference clearing."""

import pytest
from hypothesis import given, settings

from gridledger.contracts import market as mk
from gridledger.contracts.reference import Clearing, Order, clear_uniform

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    GATE_CLOSURE_S,
    INTERVAL_S,
    START_TIMESTAMP,
    Market,
    escrowed_mechanism,
    named_accounts,
    named_book,
    new_market,
    order_lists,
)

MAX_SIDE = 20


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(2 * MAX_SIDE)


def _run(market: Market, bids, asks) -> tuple[mk.Book, Clearing, list]:
    """Submit, read back and clear one book; returns (book, on-chain clearing, clear events)."""
    interval = market.next_interval()
    book = market.submit_book(interval, bids, asks)
    assert mk.book(market.chain, market.addresses, interval) == book
    receipt = market.clear(interval, book)
    assert receipt.ok, receipt.revert_reason
    positions = {}
    for order in (*book.bids, *book.asks):
        position_wh = market.read("DoubleAuction", "position_wh", interval, order.account)
        if position_wh:
            positions[order.account] = position_wh
    clearing = Clearing(
        market.read("DoubleAuction", "clearing_price_wei_per_wh", interval),
        market.read("DoubleAuction", "cleared_volume_wh", interval),
        positions,
    )
    assert market.read("DoubleAuction", "cleared", interval)
    return book, clearing, [market.chain.decode(log) for log in receipt.logs]


def _assert_events_match(clearing: Clearing, events) -> None:
    *trades, cleared = events
    assert cleared.event == "Cleared"
    assert (cleared.args["price_wei_per_wh"], cleared.args["volume_wh"]) == (
        clearing.price_wei_per_wh,
        clearing.volume_wh,
    )
    assert {e.args["account"]: e.args["position_wh"] for e in trades} == clearing.positions_wh
    assert len(trades) == len(clearing.positions_wh)


def _assert_clearing_properties(book: mk.Book, clearing: Clearing) -> None:
    """Budget balance, individual rationality and no remaining crossing orders."""
    positions = clearing.positions_wh
    assert sum(positions.values()) == 0
    assert sum(q for q in positions.values() if q > 0) == clearing.volume_wh
    for bid in book.bids:
        assert -bid.energy_wh <= positions.get(bid.account, 0) <= 0
        if positions.get(bid.account):
            assert bid.price_wei_per_wh >= clearing.price_wei_per_wh
    for ask in book.asks:
        assert 0 <= positions.get(ask.account, 0) <= ask.energy_wh
        if positions.get(ask.account):
            assert ask.price_wei_per_wh <= clearing.price_wei_per_wh
    open_bids = [b.price_wei_per_wh for b in book.bids if -positions.get(b.account, 0) < b.energy_wh]
    open_asks = [a.price_wei_per_wh for a in book.asks if positions.get(a.account, 0) < a.energy_wh]
    if open_bids and open_asks:
        assert max(open_bids) < min(open_asks)
    if clearing.volume_wh == 0:
        assert clearing.price_wei_per_wh == 0


# Hand-computed books. Bids come from prosumers b0, b1, ..., asks from a0, a1, ...
# in submission order; prices in CENT = 0.01 token/kWh = 1e13 wei/Wh.
HAND_BOOKS = [
    pytest.param(
        # Sorted bids b0 30, b1 25, b2 10; asks a0 12, a1 20 (+1 wei), a2 28.
        # b0-a0 trade 250, b0-a1 50, b1-a1 150 (b1 filled 150 of 200); b1 25 < a2 28 stops.
        # Marginal pair b1/a1: floor((25 + 20) * CENT + 1) / 2) = 22.5 * CENT.
        [(300, 30 * CENT), (200, 25 * CENT), (100, 10 * CENT)],
        [(250, 12 * CENT), (200, 20 * CENT + 1), (100, 28 * CENT)],
        225 * CENT // 10,
        450,
        {"b0": -300, "b1": -150, "a0": 250, "a1": 200},
        id="partial-marginal-fill",
    ),
    pytest.param(
        # Bids tie at 20: b0 (submitted first) fills 60 from a0 and 40 from a1,
        # b1 gets the remaining 20 of a1. Asks tie at 15. Price (20 + 15) / 2 = 17.5.
        [(100, 20 * CENT), (100, 20 * CENT)],
        [(60, 15 * CENT), (60, 15 * CENT)],
        175 * CENT // 10,
        120,
        {"b0": -100, "b1": -20, "a0": 60, "a1": 60},
        id="tie-on-price",
    ),
    pytest.param(
        # Lower-index ask first among equal prices even when submitted with a larger
        # quantity; the bid equal to the ask price trades at exactly that price.
        [(50, 15 * CENT)],
        [(80, 15 * CENT), (30, 15 * CENT)],
        15 * CENT,
        50,
        {"b0": -50, "a0": 50},
        id="tie-bid-equals-ask",
    ),
    pytest.param(
        # Best bid 10 below best ask 12: nothing trades.
        [(100, 10 * CENT), (100, 9 * CENT)],
        [(100, 12 * CENT)],
        0,
        0,
        {},
        id="no-trade",
    ),
    pytest.param([], [], 0, 0, {}, id="empty-book"),
]


@pytest.mark.parametrize("bids, asks, price, volume, positions", HAND_BOOKS)
def test_hand_computed_books_clear_as_written(market, bids, asks, price, volume, positions):
    account = named_accounts(market, [("b", len(bids)), ("a", len(asks))])
    expected = Clearing(price, volume, {account[name]: q for name, q in positions.items()})
    book, on_chain, events = _run(market, bids, asks)
    assert clear_uniform(book.bids, book.asks) == expected
    assert on_chain == expected
    _assert_events_match(expected, events)


SIDE = order_lists(min_size=1, max_size=MAX_SIDE)


@settings(max_examples=30, deadline=None)
@given(bids=SIDE, asks=SIDE)
def test_onchain_clearing_equals_reference(market, bids, asks):
    book, on_chain, events = _run(market, bids, asks)
    expected = clear_uniform(book.bids, book.asks)
    assert on_chain == expected
    _assert_events_match(expected, events)
    _assert_clearing_properties(book, on_chain)


@settings(max_examples=300, deadline=None)
@given(bids=SIDE, asks=SIDE)
def test_uniform_clearing_is_budget_balanced_and_individually_rational(bids, asks):
    book = named_book(bids, asks)
    _assert_clearing_properties(book, clear_uniform(book.bids, book.asks))


def test_reference_rejects_two_orders_of_one_account():
    with pytest.raises(ValueError, match="one order per interval"):
        clear_uniform([Order("x", 1, 2)], [Order("x", 1, 1)])


def test_order_views_read_single_orders(market):
    interval = market.next_interval()
    book = market.submit_book(interval, [(10, 7 * CENT)], [(20, 5 * CENT), (30, 6 * CENT)])
    assert market.read("DoubleAuction", "order_count", interval, False) == 1
    assert market.read("DoubleAuction", "order_count", interval, True) == 2
    assert market.read("DoubleAuction", "order", interval, True, 1) == (book.asks[1].account, 30, 6 * CENT)
    assert market.read("DoubleAuction", "has_order", interval, book.bids[0].account)
    assert market.read("DoubleAuction", "gate_timestamp", interval) == market.gate(interval)
    assert market.read("DoubleAuction", "interval_end_timestamp", interval) == market.end(interval)


def test_settlement_terms_carry_position_value_and_end_once_cleared(market):
    market.mine([], market.gate(market.next_interval()))  # past any book another test left open
    interval = market.next_interval()
    book = market.submit_book(interval, [(300, 30 * CENT)], [(200, 10 * CENT)])
    buyer, seller, idle = book.bids[0].account, book.asks[0].account, market.prosumers[2].address
    assert market.read("DoubleAuction", "settlement_terms", interval, buyer) == (False, 0, 0, 0)
    assert market.clear(interval, book).ok
    end = market.end(interval)
    # Uniform price 20: the value is price * position.
    assert market.read("DoubleAuction", "settlement_terms", interval, buyer) == (True, -200, -4000 * CENT, end)
    assert market.read("DoubleAuction", "settlement_terms", interval, seller) == (True, 200, 4000 * CENT, end)
    assert market.read("DoubleAuction", "settlement_terms", interval, idle) == (True, 0, 0, end)


def test_largest_energy_and_price_survive_the_packed_storage(market):
    # The largest order is what the largest registrable meter, PV and battery carry in an interval.
    max_power_w = market.read("Settlement", "MAX_POWER_W")
    max_energy_wh = max_power_w * INTERVAL_S // 3600
    max_price = market.read("DoubleAuction", "MAX_PRICE_WEI_PER_WH")
    buyer, seller = market.prosumers[:2]
    # The bid's escrow is its energy times its price.
    addresses = escrowed_mechanism(
        market,
        "DoubleAuction",
        START_TIMESTAMP,
        INTERVAL_S,
        GATE_CLOSURE_S,
        max_price,
        buyer=buyer.address,
        credit_wei=max_energy_wh * max_price,
        limits=mk.ProsumerLimits(max_power_w, max_power_w, max_power_w),
    )
    auction = addresses.auction
    interval = market.next_interval()
    bid = Order(buyer.address, max_energy_wh, max_price)
    ask = Order(seller.address, max_energy_wh, max_price - 1)
    raw_txs = [
        mk.submit_order(w, addresses, interval, is_ask=a, energy_wh=o.energy_wh, price_wei_per_wh=o.price_wei_per_wh)
        for w, a, o in ((buyer, False, bid), (seller, True, ask))
    ]
    assert all(r.ok for r in market.mine(raw_txs))
    book = mk.book(market.chain, addresses, interval)
    assert book == mk.Book((bid,), (ask,))
    (receipt,) = market.mine([mk.clear(market.operator, addresses, interval, book)], market.gate(interval))
    assert receipt.ok

    def view(function, *args):
        return mk.read(market.chain, auction, "DoubleAuction", function, *args)

    assert view("clearing_price_wei_per_wh", interval) == max_price - 1
    assert view("cleared_volume_wh", interval) == max_energy_wh
    assert view("position_wh", interval, buyer.address) == -max_energy_wh
    assert view("position_wh", interval, seller.address) == max_energy_wh
    assert view("order", interval, True, 0) == (seller.address, max_energy_wh, max_price - 1)


def test_sorted_order_gives_priority_permutations():
    book = named_book([(1, 5), (1, 9), (1, 5)], [(1, 5), (1, 2), (1, 5)])
    assert mk.sorted_order(book) == ([1, 0, 2], [1, 0, 2])
