"""Two-level clearing of a zoned feeder: zone books first, residuals at the coordinator."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts.reference import Order, clear_uniform
from gridledger.contracts.zone_clearing import Fill, ZoneBook, clear_zoned, residual_orders

ORDER = st.tuples(st.booleans(), st.integers(1, 500), st.integers(1, 60))
"""(is_ask, energy [Wh], limit price [wei/Wh])."""


def book_of(rows, start=0):
    """A zone book from (is_ask, energy_wh, price) rows, accounts numbered from `start`."""
    orders = [(is_ask, Order(f"0x{start + i:04x}", energy_wh, price)) for i, (is_ask, energy_wh, price) in
              enumerate(rows)]
    return ZoneBook(tuple(o for is_ask, o in orders if not is_ask), tuple(o for is_ask, o in orders if is_ask))


@st.composite
def zoned_books(draw, max_zones=4):
    n_zones = draw(st.integers(1, max_zones))
    books, start = {}, 0
    for zone in range(n_zones):
        rows = draw(st.lists(ORDER, max_size=8))
        books[f"z{zone}"] = book_of(rows, start)
        start += len(rows)
    return books


def orders_of(books):
    return {o.account: o for book in books.values() for o in (*book.bids, *book.asks)}


@settings(max_examples=300, deadline=None)
@given(books=zoned_books())
def test_zone_and_coordinator_clearing_conserve_volume(books):
    result = clear_zoned(books)
    for zone in books:
        fills = [f for f in result.fills.values() if f.zone == zone]
        assert sum(f.zone_wh for f in fills if f.is_ask) == sum(f.zone_wh for f in fills if not f.is_ask)
    fills = result.fills.values()
    assert sum(f.coordinator_wh for f in fills if f.is_ask) == sum(f.coordinator_wh for f in fills if not f.is_ask)


@settings(max_examples=300, deadline=None)
@given(books=zoned_books())
def test_no_order_is_filled_beyond_its_energy_or_against_its_limit_price(books):
    result = clear_zoned(books)
    orders = orders_of(books)
    assert set(result.fills) == set(orders)
    for account, fill in result.fills.items():
        order = orders[account]
        assert 0 <= fill.total_wh <= order.energy_wh
        sign = -1 if fill.is_ask else 1
        if fill.zone_wh:
            assert sign * order.price_wei_per_wh >= sign * result.zone_prices_wei_per_wh[fill.zone]
        if fill.coordinator_wh:
            assert sign * order.price_wei_per_wh >= sign * result.coordinator_price_wei_per_wh


@settings(max_examples=200, deadline=None)
@given(books=zoned_books())
def test_each_zone_clears_its_own_book_as_the_reference(books):
    result = clear_zoned(books)
    for zone, book in books.items():
        reference = clear_uniform(book.bids, book.asks)
        assert result.zone_prices_wei_per_wh[zone] == reference.price_wei_per_wh
        assert {a: f.zone_wh for a, f in result.fills.items() if f.zone == zone and f.zone_wh} == {
            a: abs(p) for a, p in reference.positions_wh.items()}


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(ORDER, max_size=12))
def test_a_single_zone_equals_the_one_book_reference(rows):
    book = book_of(rows)
    reference = clear_uniform(book.bids, book.asks)
    result = clear_zoned({"z0": book})
    assert result.zone_prices_wei_per_wh == {"z0": reference.price_wei_per_wh}
    assert result.coordinator_price_wei_per_wh == 0
    assert result.net_export_wh == {"z0": 0}
    assert {a: f.zone_wh for a, f in result.fills.items() if f.zone_wh} == {
        a: abs(p) for a, p in reference.positions_wh.items()}
    assert all(f.coordinator_wh == 0 for f in result.fills.values())


@st.composite
def books_without_residual_demand(draw):
    """Zones whose bids all outprice their asks and whose asks cover their bids: no bid is left."""
    books, start = {}, 0
    for zone in range(draw(st.integers(1, 4))):
        bids = draw(st.lists(st.tuples(st.just(False), st.integers(1, 500), st.integers(31, 60)), max_size=5))
        surplus_wh = draw(st.integers(0, 500))
        ask = (True, sum(energy_wh for _, energy_wh, _ in bids) + surplus_wh, draw(st.integers(1, 30)))
        others = draw(st.lists(st.tuples(st.just(True), st.integers(1, 500), st.integers(1, 60)), max_size=3))
        rows = [*bids, ask, *others]
        books[f"z{zone}"] = book_of(rows, start)
        start += len(rows)
    return books


@settings(max_examples=200, deadline=None)
@given(books=books_without_residual_demand())
def test_zones_without_residual_demand_never_trade_at_the_coordinator(books):
    result = clear_zoned(books)
    assert result.coordinator_price_wei_per_wh == 0
    assert all(f.coordinator_wh == 0 for f in result.fills.values())
    assert set(result.net_export_wh.values()) == {0}


@settings(max_examples=300, deadline=None)
@given(books=zoned_books())
def test_net_flows_between_zones_sum_to_zero(books):
    result = clear_zoned(books)
    assert set(result.net_export_wh) == set(books)
    assert sum(result.net_export_wh.values()) == 0


@settings(max_examples=100, deadline=None)
@given(books=zoned_books())
def test_the_clearing_does_not_depend_on_the_order_zones_are_given_in(books):
    assert clear_zoned(dict(reversed(list(books.items())))) == clear_zoned(books)


def test_two_zones_by_hand():
    # Zone a: bid A1 100 Wh @ 30 meets ask A2 300 Wh @ 10; price (30 + 10) // 2 = 20; A2 keeps 200 Wh @ 10.
    # Zone b: bid B1 150 Wh @ 40 meets ask B3 50 Wh @ 35; price (40 + 35) // 2 = 37; B1 keeps 100 Wh @ 40,
    # B2 (100 Wh @ 12) finds no ask.
    # Coordinator: B1 100 @ 40 and B2 100 @ 12 both buy from A2 200 @ 10; the marginal pair is
    # B2/A2, price (12 + 10) // 2 = 11. Zone a exports 200 Wh to zone b.
    books = {
        "a": ZoneBook(bids=(Order("A1", 100, 30),), asks=(Order("A2", 300, 10),)),
        "b": ZoneBook(bids=(Order("B1", 150, 40), Order("B2", 100, 12)), asks=(Order("B3", 50, 35),)),
    }
    result = clear_zoned(books)
    assert result.zone_prices_wei_per_wh == {"a": 20, "b": 37}
    assert result.coordinator_price_wei_per_wh == 11
    assert result.fills == {
        "A1": Fill("a", is_ask=False, zone_wh=100, coordinator_wh=0),
        "A2": Fill("a", is_ask=True, zone_wh=100, coordinator_wh=200),
        "B1": Fill("b", is_ask=False, zone_wh=50, coordinator_wh=100),
        "B2": Fill("b", is_ask=False, zone_wh=0, coordinator_wh=100),
        "B3": Fill("b", is_ask=True, zone_wh=50, coordinator_wh=0),
    }
    assert result.net_export_wh == {"a": 200, "b": -200}


def test_residuals_keep_limit_prices_and_drop_filled_orders():
    orders = [Order("x", 100, 5), Order("y", 40, 7), Order("z", 10, 9)]
    assert residual_orders(orders, {"x": -30, "y": -40}) == [Order("x", 70, 5), Order("z", 10, 9)]


def test_an_account_in_two_zones_is_refused():
    books = {"a": ZoneBook((Order("A1", 1, 1),), ()), "b": ZoneBook((), (Order("A1", 1, 1),))}
    with pytest.raises(ValueError, match="one order per interval, in one zone"):
        clear_zoned(books)
