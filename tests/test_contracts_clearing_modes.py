"""The two clearing modes of the book mechanisms give one outcome.

``clear_onchain`` sorts the book on chain; ``clear`` takes the order sorted
off-chain with the claimed outcome and verifies both. For random books the
two agree event for event and with the Python reference; hand-computed
books go through ``clear_onchain``; every clearing revert fires with its
exact reason.
"""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.contracts.reference import clear_merit_order, clear_pay_as_bid, clear_uniform

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import Market, named_accounts, new_market, order_lists, reverted

MAX_SIDE = 10
BOOK_MECHANISMS = tuple(name for name, m in MECHANISMS.items() if m.kind == "book")
# Views of the outcome of a cleared interval, per contract.
OUTCOME_VIEWS = {
    "DoubleAuction": ("clearing_price_wei_per_wh", "cleared_volume_wh"),
    "PayAsBid": ("cleared_volume_wh", "turnover_wei", "average_price_wei_per_wh"),
    "MeritOrder": ("clearing_price_wei_per_wh", "cleared_volume_wh"),
}


@pytest.fixture(scope="module")
def markets() -> dict[str, Market]:
    return {mechanism: new_market(2 * MAX_SIDE, mechanism=mechanism) for mechanism in BOOK_MECHANISMS}


@dataclass(frozen=True)
class Outcome:
    """What a cleared interval shows, with the interval itself left out so two intervals compare.

    ``events`` are the clearing's (event, args) in log order; ``terms``
    the settlement terms (cleared, position [Wh], value [wei]) of the
    operator and every order's account; ``views`` the contract's outcome
    views (:data:`OUTCOME_VIEWS`).
    """

    events: tuple
    terms: dict
    views: tuple


def _contract(market: Market) -> str:
    return market.addresses.auction_contract


def _submit(market: Market, interval: int, demand_wh: int, bids, asks) -> mk.Book:
    """Post the demand (merit order, if any) and submit the book of ``interval``."""
    if demand_wh:
        (posted,) = market.mine([mk.post_demand(market.operator, market.addresses, interval, demand_wh=demand_wh)])
        assert posted.ok, posted.revert_reason
    book = market.submit_book(interval, bids, asks)
    assert mk.book(market.chain, market.addresses, interval) == book
    return book


def _clear(market: Market, interval: int, book: mk.Book, mode: str, clearer) -> Outcome:
    """Clear ``interval`` at its gate in ``mode`` signed by ``clearer``; the outcome it shows."""
    (receipt,) = market.mine([mk.clear(clearer, market.addresses, interval, book, mode=mode)], market.gate(interval))
    assert receipt.ok, receipt.revert_reason
    contract = _contract(market)
    assert receipt.gas_used <= mk.clear_gas(len(book.bids), len(book.asks), contract, mode)
    events = []
    for log in receipt.logs:
        decoded = market.chain.decode(log)
        assert decoded.args["interval"] == interval
        events.append((decoded.event, {k: v for k, v in decoded.args.items() if k != "interval"}))
    terms = {}
    for account in (market.operator.address, *(o.account for o in (*book.bids, *book.asks))):
        cleared, position_wh, value_wei, end = market.read(contract, "settlement_terms", interval, account)
        assert cleared and end == market.end(interval)
        assert position_wh == market.read(contract, "position_wh", interval, account)
        terms[account] = (position_wh, value_wei)
    views = tuple(market.read(contract, view, interval) for view in OUTCOME_VIEWS[contract])
    return Outcome(tuple(events), terms, views)


def _reference(market: Market, book: mk.Book) -> tuple[tuple, dict]:
    """(views, non-zero (position, value) by account) of ``book`` by the Python reference."""
    contract = _contract(market)
    if contract == "PayAsBid":
        ref = clear_pay_as_bid(book.bids, book.asks)
        terms = {a: (q, ref.values_wei[a]) for a, q in ref.positions_wh.items()}
        return (ref.volume_wh, ref.turnover_wei, ref.average_price_wei_per_wh), terms
    if contract == "MeritOrder":
        ref = clear_merit_order(book.demand_wh, book.asks, market.operator.address)
    else:
        ref = clear_uniform(book.bids, book.asks)
    terms = {a: (q, ref.price_wei_per_wh * q) for a, q in ref.positions_wh.items()}
    return (ref.price_wei_per_wh, ref.volume_wh), terms


def _sides(market: Market, orders_a, orders_b) -> tuple[list, list]:
    """(bids, asks) of a double auction; a merit order takes ``orders_b`` as offers and no bids."""
    return ([], orders_b) if _contract(market) == "MeritOrder" else (orders_a, orders_b)


SIDE = order_lists(max_size=MAX_SIDE)


@pytest.mark.parametrize("mechanism", BOOK_MECHANISMS)
@settings(max_examples=25, deadline=None)
@given(orders_a=SIDE, orders_b=SIDE, demand_wh=st.integers(0, 8000), clearer=st.integers(0, 2 * MAX_SIDE))
def test_onchain_clearing_equals_verified_clearing_and_the_reference(
    markets, mechanism, orders_a, orders_b, demand_wh, clearer
):
    market = markets[mechanism]
    # Two fresh intervals get the same book; the first is sorted on chain, the
    # second verified. Any prosumer (clearer < 2 * MAX_SIDE) or the operator clears.
    onchain = market.next_interval() + 1
    verified = onchain + 1
    bids, asks = _sides(market, orders_a, orders_b)
    demand_wh = demand_wh if _contract(market) == "MeritOrder" else 0
    books = [_submit(market, k, demand_wh, bids, asks) for k in (onchain, verified)]
    assert books[0] == books[1]
    wallet = market.prosumers[clearer] if clearer < len(market.prosumers) else market.operator
    by_chain = _clear(market, onchain, books[0], "on-chain", wallet)
    by_claim = _clear(market, verified, books[1], "verified-offchain", wallet)
    assert by_chain == by_claim
    views, terms = _reference(market, books[0])
    assert by_chain.views == views
    assert {a: t for a, t in by_chain.terms.items() if t != (0, 0)} == terms


# Hand-computed books cleared on chain, per mechanism: (bids, asks, demand, views,
# positions, values). Bids come from prosumers b0, b1, ..., asks (offers) from
# a0, a1, ...; "op" is the merit-order buyer. Prices in CENT = 1e13 wei/Wh.
HAND_BOOKS = {
    "uniform-double-auction": [
        pytest.param(
            # Submitted against priority. Sorted bids b2 30, b1 20, b0 10; asks a2 5, a1 15, a0 25.
            # b2-a2 40, b2-a1 10, b1-a1 30; b1 20 < a0 25 stops. Marginal pair b1/a1: 17.5.
            [(50, 10 * CENT), (50, 20 * CENT), (50, 30 * CENT)],
            [(40, 25 * CENT), (40, 15 * CENT), (40, 5 * CENT)],
            0,
            (175 * CENT // 10, 80),
            {"b2": -50, "b1": -30, "a2": 40, "a1": 40},
            None,
            id="reverse-submitted",
        ),
        pytest.param(
            # Ties keep submission order: b0 takes 60 of a0 and 40 of a1, b1 the last 20 of a1.
            [(100, 20 * CENT), (100, 20 * CENT)],
            [(60, 15 * CENT), (60, 15 * CENT)],
            0,
            (175 * CENT // 10, 120),
            {"b0": -100, "b1": -20, "a0": 60, "a1": 60},
            None,
            id="tie",
        ),
        pytest.param(
            [(100, 10 * CENT), (100, 9 * CENT)], [(100, 12 * CENT)], 0, (0, 0), {}, None, id="no-trade"
        ),
    ],
    "pay-as-bid": [
        pytest.param(
            # The pairs of "reverse-submitted" above, each at its own midpoint:
            # b2-a2 40 at 17.5 = 700, b2-a1 10 at 22.5 = 225, b1-a1 30 at 17.5 = 525.
            [(50, 10 * CENT), (50, 20 * CENT), (50, 30 * CENT)],
            [(40, 25 * CENT), (40, 15 * CENT), (40, 5 * CENT)],
            0,
            (80, 1450 * CENT, 1450 * CENT // 80),
            {"b2": -50, "b1": -30, "a2": 40, "a1": 40},
            {"b2": -925 * CENT, "b1": -525 * CENT, "a2": 700 * CENT, "a1": 750 * CENT},
            id="reverse-submitted",
        ),
        pytest.param(
            # b0-a0 60, b0-a1 40, b1-a1 20, all at 17.5.
            [(100, 20 * CENT), (100, 20 * CENT)],
            [(60, 15 * CENT), (60, 15 * CENT)],
            0,
            (120, 2100 * CENT, 2100 * CENT // 120),
            {"b0": -100, "b1": -20, "a0": 60, "a1": 60},
            {"b0": -1750 * CENT, "b1": -350 * CENT, "a0": 1050 * CENT, "a1": 1050 * CENT},
            id="tie",
        ),
        pytest.param(
            [(100, 10 * CENT)], [(100, 12 * CENT), (50, 11 * CENT)], 0, (0, 0, 0), {}, {}, id="no-trade"
        ),
    ],
    "merit-order": [
        pytest.param(
            # Offers submitted dearest first: a2 100 at 10, a1 100 at 20, a0 50 of 100 at 30.
            [],
            [(100, 30 * CENT), (100, 20 * CENT), (100, 10 * CENT)],
            250,
            (30 * CENT, 250),
            {"a2": 100, "a1": 100, "a0": 50, "op": -250},
            None,
            id="reverse-submitted",
        ),
        pytest.param(
            # a2 is cheapest; a0 and a1 tie at 10 and a0, submitted first, takes the last 50.
            [],
            [(100, 10 * CENT), (100, 10 * CENT), (100, 5 * CENT)],
            150,
            (10 * CENT, 150),
            {"a2": 100, "a0": 50, "op": -150},
            None,
            id="tie",
        ),
        pytest.param([], [(100, 10 * CENT)], 0, (0, 0), {}, None, id="no-demand"),
    ],
}


@pytest.mark.parametrize(
    "mechanism, bids, asks, demand_wh, views, positions, values",
    [pytest.param(m, *p.values, id=f"{m}-{p.id}") for m, params in HAND_BOOKS.items() for p in params],
)
def test_hand_computed_books_clear_on_chain_as_written(markets, mechanism, bids, asks, demand_wh, views, positions,
                                                       values):
    market = markets[mechanism]
    account = named_accounts(market, [("b", len(bids)), ("a", len(asks))]) | {"op": market.operator.address}
    interval = market.next_interval() + 1
    book = _submit(market, interval, demand_wh, bids, asks)
    outcome = _clear(market, interval, book, "on-chain", market.operator)
    assert outcome.views == views
    price_wei_per_wh = views[0] if _contract(market) != "PayAsBid" else None
    expected = {
        account[name]: (q, values[name] if values is not None else price_wei_per_wh * q)
        for name, q in positions.items()
    }
    assert {a: t for a, t in outcome.terms.items() if t != (0, 0)} == expected
    trades = {e["account"]: e["position_wh"] for name, e in outcome.events if name == "Trade"}
    assert trades == {a: q for a, (q, _) in expected.items() if a != market.operator.address}
    assert outcome.events[-1][0] == "Cleared"


@dataclass
class Scene:
    """A market with the same book in several intervals past their gates: ``pending`` and two
    ``spares`` not cleared, one cleared in each mode (``cleared``); ``book`` is that book."""

    market: Market
    pending: int
    spares: tuple[int, int]
    cleared: dict
    book: mk.Book


@pytest.fixture(scope="module", params=BOOK_MECHANISMS)
def scene(request) -> Scene:
    # Bids priced 10, 30, 20, 20 (true order [1, 2, 3, 0]), asks or offers 5, 8
    # ([0, 1]); a merit order buys 15 Wh.
    market = new_market(8, mechanism=request.param)
    first = market.next_interval() + 1
    names = ("verified-offchain", "on-chain", "pending", "spare0", "spare1")
    intervals = {name: first + i for i, name in enumerate(names)}
    bids, asks = _sides(market, [(10, 10 * CENT), (10, 30 * CENT), (10, 20 * CENT), (10, 20 * CENT)],
                        [(10, 5 * CENT), (10, 8 * CENT)])
    demand_wh = 15 if _contract(market) == "MeritOrder" else 0
    books = {name: _submit(market, k, demand_wh, bids, asks) for name, k in intervals.items()}
    receipts = market.mine(
        [mk.clear(market.operator, market.addresses, intervals[m], books[m], mode=m) for m in mk.CLEARING_MODES],
        market.gate(intervals["spare1"]),
    )
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    cleared = {mode: intervals[mode] for mode in mk.CLEARING_MODES}
    return Scene(market, intervals["pending"], (intervals["spare0"], intervals["spare1"]), cleared, books["pending"])


PREFIX = {"DoubleAuction": "auction", "PayAsBid": "pay_as_bid", "MeritOrder": "merit_order"}
TRUE = None
# (reason, who signs, interval, bid order, ask order, offer order, claim change);
# "{contract}" in a reason is the contract's prefix (the shared modules access.vy,
# book.vy and gate.vy give their own), TRUE orders are the true ones, the claim is the
# reference's (mk.claimed_outcome) with (field, delta) added.
REVERTS = [
    ("{contract}: wrong clearing price", "operator", "@pending", TRUE, TRUE, TRUE, ("price", 1)),
    ("{contract}: wrong cleared volume", "prosumer", "@pending", TRUE, TRUE, TRUE, ("volume", -1)),
    ("{contract}: wrong cleared volume", "operator", "@pending", TRUE, TRUE, TRUE, ("volume", 1)),
    ("book: order not sorted", "operator", "@pending", [2, 1, 3, 0], TRUE, [1, 0], None),
    ("book: order not sorted", "prosumer", "@pending", TRUE, [1, 0], [1, 0], None),
    ("book: order index repeated", "operator", "@pending", [1, 2, 1, 0], TRUE, [0, 0], None),
    ("book: order index out of range", "operator", "@pending", [1, 2, 3, 4], TRUE, [0, 2], None),
    ("book: order length mismatch", "operator", "@pending", [1, 2, 3], TRUE, [0], None),
    ("book: already cleared", "operator", "@verified-offchain", TRUE, TRUE, TRUE, None),
    ("book: already cleared", "prosumer", "@on-chain", TRUE, TRUE, TRUE, None),
    ("gate: gate open", "operator", "@open", TRUE, TRUE, TRUE, None),
    ("access: caller is neither prosumer nor operator", "outsider", "@pending", TRUE, TRUE, TRUE, None),
    ("access: caller is neither prosumer nor operator", "meter", "@pending", TRUE, TRUE, TRUE, None),
]


def _signer(scene: Scene, who: str):
    m = scene.market
    return {"operator": m.operator, "prosumer": m.prosumers[0], "outsider": m.outsider, "meter": m.meters[0]}[who]


def _interval(scene: Scene, name: str) -> int:
    if name == "@open":
        return scene.market.next_interval()
    if name == "@pending":
        return scene.pending
    return scene.cleared[name[1:]]


@pytest.mark.parametrize(
    "reason, who, interval, bid_order, ask_order, offer_order, change",
    REVERTS,
    ids=[f"{i}-{c[0]}" for i, c in enumerate(REVERTS)],
)
def test_verified_clearing_reverts_with_exact_reason(scene, reason, who, interval, bid_order, ask_order, offer_order,
                                                     change):
    contract = _contract(scene.market)
    if contract == "PayAsBid" and change == ("price", 1):
        # discriminatory prices: the claim holds only the volume, so there is no price to get wrong
        assert len(mk.claimed_outcome(contract, scene.book)) == 1
        return
    true_bids, true_asks = mk.sorted_order(scene.book)
    # The claim is (price, volume), or (volume,) for pay-as-bid.
    claim = list(mk.claimed_outcome(contract, scene.book))
    if change is not None:
        field, delta = change
        claim[0 if field == "price" else -1] += delta
    if contract == "MeritOrder":
        orders = [true_asks if offer_order is TRUE else offer_order]
    else:
        orders = [true_bids if bid_order is TRUE else bid_order, true_asks if ask_order is TRUE else ask_order]
    raw = scene.market.call_tx(_signer(scene, who), contract, "clear", _interval(scene, interval), *orders, *claim)
    (receipt,) = scene.market.mine([raw])
    assert reverted(receipt, reason.format(contract=PREFIX[contract])), receipt.revert_reason


ONCHAIN_REVERTS = [
    ("book: already cleared", "operator", "@verified-offchain"),
    ("book: already cleared", "prosumer", "@on-chain"),
    ("gate: gate open", "prosumer", "@open"),
    ("access: caller is neither prosumer nor operator", "outsider", "@pending"),
    ("access: caller is neither prosumer nor operator", "meter", "@pending"),
]


@pytest.mark.parametrize(
    "reason, who, interval", ONCHAIN_REVERTS, ids=[f"{i}-{c[0]}" for i, c in enumerate(ONCHAIN_REVERTS)]
)
def test_onchain_clearing_reverts_with_exact_reason(scene, reason, who, interval):
    contract = _contract(scene.market)
    raw = scene.market.call_tx(_signer(scene, who), contract, "clear_onchain", _interval(scene, interval))
    (receipt,) = scene.market.mine([raw])
    assert reverted(receipt, reason.format(contract=PREFIX[contract])), receipt.revert_reason


@pytest.mark.parametrize("spare, first, second", [(0, *mk.CLEARING_MODES), (1, *mk.CLEARING_MODES[::-1])])
def test_first_valid_clearing_wins_and_a_second_in_either_mode_reverts(scene, spare, first, second):
    m = scene.market
    interval = scene.spares[spare]
    receipts = m.mine([mk.clear(m.prosumers[1], m.addresses, interval, scene.book, mode=mode) for mode in (first, second)])
    assert receipts[0].ok, receipts[0].revert_reason
    assert reverted(receipts[1], "book: already cleared")


def test_unknown_clearing_mode_is_refused_by_the_builder(markets):
    market = markets[mk.DEFAULT_MECHANISM]
    with pytest.raises(ValueError, match="unknown clearing mode 'sorted'"):
        mk.clear(market.operator, market.addresses, 0, mk.Book((), ()), mode="sorted")


def test_on_chain_gas_limit_grows_quadratically_and_verified_linearly():
    def extra(n, mode):
        return mk.clear_gas(n, n, "DoubleAuction", mode) - mk.clear_gas(0, 0, "DoubleAuction", mode)

    assert extra(128, "verified-offchain") == 2 * extra(64, "verified-offchain")
    assert extra(128, "on-chain") > 2 * extra(64, "on-chain")
