"""PayAsBid on a real py-evm chain against the Python reference clearing."""

import pytest
from hypothesis import given, settings

from gridledger.contracts import market as mk
from gridledger.contracts.reference import DiscriminatoryClearing, Order, clear_pay_as_bid, match_orders

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    Market,
    assert_settlement_conserves_tokens,
    named_accounts,
    named_book,
    new_market,
    order_lists,
)

MAX_SIDE = 12


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(2 * MAX_SIDE, mechanism="pay-as-bid")


def _run(market: Market, bids, asks) -> tuple[mk.Book, DiscriminatoryClearing, list]:
    """Submit, read back and clear one book; returns (book, on-chain clearing, clear events)."""
    interval = market.next_interval()
    book = market.submit_book(interval, bids, asks)
    assert mk.book(market.chain, market.addresses, interval) == book
    receipt = market.clear(interval, book)
    assert receipt.ok, receipt.revert_reason
    assert receipt.gas_used <= mk.clear_gas(len(bids), len(asks), "PayAsBid")
    events = [market.chain.decode(log) for log in receipt.logs]
    positions, values = {}, {}
    for order in (*book.bids, *book.asks):
        cleared, position_wh, value_wei, _ = market.read("PayAsBid", "settlement_terms", interval, order.account)
        assert cleared
        assert (position_wh, value_wei) == (
            market.read("PayAsBid", "position_wh", interval, order.account),
            market.read("PayAsBid", "value_wei", interval, order.account),
        )
        if position_wh:
            positions[order.account], values[order.account] = position_wh, value_wei
    pairs = match_orders(book.bids, book.asks)
    match_events = [e.args for e in events if e.event == "Match"]
    assert [(e["buyer"], e["seller"], e["energy_wh"]) for e in match_events] == [
        (m.buyer, m.seller, m.energy_wh) for m in pairs
    ]
    matches = tuple(zip(pairs, (e["value_wei"] for e in match_events), strict=True))
    clearing = DiscriminatoryClearing(market.read("PayAsBid", "cleared_volume_wh", interval), positions, values, matches)
    assert market.read("PayAsBid", "turnover_wei", interval) == clearing.turnover_wei
    assert market.read("PayAsBid", "average_price_wei_per_wh", interval) == clearing.average_price_wei_per_wh
    return book, clearing, events


def _assert_events_match(clearing: DiscriminatoryClearing, events) -> None:
    trades = [e for e in events if e.event == "Trade"]
    assert {e.args["account"]: (e.args["position_wh"], e.args["value_wei"]) for e in trades} == {
        a: (q, clearing.values_wei[a]) for a, q in clearing.positions_wh.items()
    }
    assert len(trades) == len(clearing.positions_wh)
    assert events[-1].event == "Cleared"
    assert events[-1].args == {
        "interval": events[-1].args["interval"],
        "price_wei_per_wh": clearing.average_price_wei_per_wh,
        "volume_wh": clearing.volume_wh,
        "turnover_wei": clearing.turnover_wei,
    }


def _assert_discriminatory_properties(book: mk.Book, clearing: DiscriminatoryClearing) -> None:
    """Budget balance, individual rationality per pair and per account, no self-trade."""
    assert sum(clearing.values_wei.values()) == 0
    assert sum(clearing.positions_wh.values()) == 0
    for match, value_wei in clearing.matches:
        assert match.buyer != match.seller
        assert match.ask_price_wei_per_wh * match.energy_wh <= value_wei
        assert value_wei <= match.bid_price_wei_per_wh * match.energy_wh
    limit = {order.account: order for order in (*book.bids, *book.asks)}
    for account, position_wh in clearing.positions_wh.items():
        order = limit[account]
        assert abs(position_wh) <= order.energy_wh
        # Buyers pay at most their limit, sellers receive at least theirs.
        assert clearing.values_wei[account] >= order.price_wei_per_wh * position_wh


# Hand-computed books. Bids come from prosumers b0, b1, ..., asks from a0, a1, ...;
# each pair (bid b, ask a, energy q) pays floor((b + a) * q / 2). CENT = 1e13 wei/Wh.
HAND_BOOKS = [
    pytest.param(
        # b0 30 - a0 12: 250 Wh for 42 * 250 / 2 = 5250 CENT.
        # b0 30 - a1 20 CENT + 1: 50 Wh for (50 CENT + 1) * 25 = 1250 CENT + 25.
        # b1 25 - a1 20 CENT + 1: 150 Wh for (45 CENT + 1) * 75 = 3375 CENT + 75.
        # b1 25 < a2 28 stops; b2 10 never trades.
        [(300, 30 * CENT), (200, 25 * CENT), (100, 10 * CENT)],
        [(250, 12 * CENT), (200, 20 * CENT + 1), (100, 28 * CENT)],
        450,
        {"b0": (-300, -6500 * CENT - 25), "b1": (-150, -3375 * CENT - 75), "a0": (250, 5250 * CENT),
         "a1": (200, 4625 * CENT + 100)},
        id="partial-marginal-fill",
    ),
    pytest.param(
        # All at 20 vs 15, midpoint 17.5: b0 takes 60 from a0 (1050) and 40 from a1 (700),
        # b1 the last 20 of a1 (350); equal prices by submission index.
        [(100, 20 * CENT), (100, 20 * CENT)],
        [(60, 15 * CENT), (60, 15 * CENT)],
        120,
        {"b0": (-100, -1750 * CENT), "b1": (-20, -350 * CENT), "a0": (60, 1050 * CENT), "a1": (60, 1050 * CENT)},
        id="tie-on-price",
    ),
    pytest.param(
        # Wei prices show the rounding: b0 7 - a0 2: 1 Wh for floor(9 / 2) = 4;
        # b0 7 - a1 4: 2 Wh for (7 + 4) * 2 / 2 = 11.
        [(3, 7)],
        [(1, 2), (2, 4)],
        3,
        {"b0": (-3, -15), "a0": (1, 4), "a1": (2, 11)},
        id="rounding-down-per-pair",
    ),
    pytest.param(
        # Best bid 10 below best ask 12: nothing trades.
        [(100, 10 * CENT), (100, 9 * CENT)],
        [(100, 12 * CENT)],
        0,
        {},
        id="no-trade",
    ),
]


@pytest.mark.parametrize("bids, asks, volume, outcome", HAND_BOOKS)
def test_hand_computed_books_clear_as_written(market, bids, asks, volume, outcome):
    account = named_accounts(market, [("b", len(bids)), ("a", len(asks))])
    book, on_chain, events = _run(market, bids, asks)
    expected = clear_pay_as_bid(book.bids, book.asks)
    assert expected.volume_wh == volume
    assert expected.positions_wh == {account[name]: q for name, (q, _) in outcome.items()}
    assert expected.values_wei == {account[name]: v for name, (_, v) in outcome.items()}
    assert on_chain == expected
    _assert_events_match(expected, events)


SIDE = order_lists(min_size=1, max_size=MAX_SIDE)


@settings(max_examples=20, deadline=None)
@given(bids=SIDE, asks=SIDE)
def test_onchain_clearing_equals_reference(market, bids, asks):
    book, on_chain, events = _run(market, bids, asks)
    expected = clear_pay_as_bid(book.bids, book.asks)
    assert on_chain == expected
    _assert_events_match(expected, events)
    _assert_discriminatory_properties(book, on_chain)


@settings(max_examples=300, deadline=None)
@given(bids=SIDE, asks=SIDE)
def test_pay_as_bid_is_budget_balanced_and_individually_rational(bids, asks):
    book = named_book(bids, asks)
    _assert_discriminatory_properties(book, clear_pay_as_bid(book.bids, book.asks))


def test_reference_never_matches_an_account_with_itself():
    with pytest.raises(ValueError, match="one order per interval"):
        clear_pay_as_bid([Order("x", 1, 2)], [Order("x", 1, 1)])


def test_settlement_pays_discriminatory_values_and_conserves_tokens(market):
    interval = market.next_interval()
    bids, asks = [(300, 30 * CENT), (200, 25 * CENT)], [(250, 12 * CENT), (200, 20 * CENT + 1)]
    book = market.submit_book(interval, bids, asks)
    assert market.clear(interval, book).ok
    clearing = clear_pay_as_bid(book.bids, book.asks)
    # All four traders fill, so each reading below settles a traded position.
    assert set(clearing.positions_wh) == set(clearing.values_wei) == {w.address for w in market.prosumers[:4]}
    assert_settlement_conserves_tokens(market, interval, clearing, [(300, 0), (200, 0), (0, 250), (0, 200)])


def test_deploy_market_refuses_an_unknown_mechanism(market):
    with pytest.raises(ValueError, match="unknown market mechanism 'sealed'"):
        mk.deploy_market(
            market.chain, market.operator, prosumers=[], meters={}, start_timestamp=0, interval_s=1,
            gate_closure_s=0, price_cap_wei_per_wh=1, grid_buy_price_wei_per_wh=0, grid_sell_price_wei_per_wh=0,
            grid_fee_wei_per_wh=0, endowment_wei=0, operator_deposit_wei=0, mechanism="sealed",
        )
