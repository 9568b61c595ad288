"""Cross-zone settlement on real chains against the two-level reference (`zone_clearing.clear_zoned`).

Two zones, each its own py-evm chain and market: each clears its book on
chain, the residuals read back from the chain are cleared by the
coordinator's reference step, and each chain records its zone's fills with
``DoubleAuction.settle_across``. Every account's terms must be its zone fill
at the zone price plus its cross fill at the coordinator's price, exactly as
`clear_zoned` computes them from the same books; each zone's operator holds
minus its zone's net export, so the operators' positions and values sum to
zero over the chains; after the readings and the operators' settlement each
chain's tokens are where they were and its pool is empty.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.zone_clearing import ZoneBook, clear_residuals, clear_zoned, residual_orders
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import ENDOWMENT_WEI, OPERATOR_DEPOSIT_WEI, Market, new_market

ORDERS = st.lists(st.tuples(st.integers(10, 2000), st.integers(5, 60)), max_size=3)


def _zone(seed: int, bids, asks) -> tuple[Market, int, ZoneBook]:
    """A zone's market with `bids` and `asks` ((Wh, c/kWh) each) placed for its next interval and cleared."""
    m = new_market(6, seed=seed)
    k = m.next_interval()
    book = m.submit_book(k, [(q, p * CENT) for q, p in bids], [(q, p * CENT) for q, p in asks])
    assert m.clear(k, book).ok
    return m, k, ZoneBook(book.bids, book.asks)


def _settle_across_zones(zones: dict[str, tuple[Market, int, ZoneBook]]) -> int:
    """The coordinator's step over the chains' residuals; each chain records its fills. Returns the price."""
    residuals = {}
    for name, (m, k, book) in zones.items():
        positions = {w.address: m.read("DoubleAuction", "position_wh", k, w.address) for w in m.prosumers}
        residuals[name] = ZoneBook(tuple(residual_orders(book.bids, positions)),
                                   tuple(residual_orders(book.asks, positions)))
    coordinator = clear_residuals(residuals)
    for name, (m, k, _) in zones.items():
        fills = list(coordinator.fills_wh[name].items())
        if fills:
            (receipt,) = m.mine([mk.settle_across(m.operator, m.addresses, k, fills, coordinator.price_wei_per_wh)],
                                m.gate(k) + 1)
            assert receipt.ok, receipt.revert_reason
    return coordinator.price_wei_per_wh


def _assert_as_the_reference(zones: dict[str, tuple[Market, int, ZoneBook]]) -> None:
    price = _settle_across_zones(zones)
    reference = clear_zoned({name: book for name, (_, _, book) in zones.items()})
    operator_positions, operator_values = 0, 0
    for name, (m, k, _) in zones.items():
        zone_price = reference.zone_prices_wei_per_wh[name]
        for w in m.prosumers:
            fill = reference.fills.get(w.address)
            if fill is None:
                expected = (0, 0)
            else:
                sign = 1 if fill.is_ask else -1
                expected = (sign * fill.total_wh, sign * (fill.zone_wh * zone_price + fill.coordinator_wh * price))
            assert tuple(m.read("DoubleAuction", "settlement_terms", k, w.address))[1:3] == expected
        _, position, value, _ = m.read("DoubleAuction", "settlement_terms", k, m.operator.address)
        assert position == -reference.net_export_wh[name]
        operator_positions += position
        operator_values += value
    assert operator_positions == 0 and operator_values == 0
    assert reference.coordinator_price_wei_per_wh == price


def _settle_everything(zones: dict[str, tuple[Market, int, ZoneBook]]) -> None:
    """Readings equal to positions at the interval end, then the operator's settlement; each chain's books hold."""
    for m, k, _ in zones.values():
        positions = [m.read("DoubleAuction", "position_wh", k, w.address) for w in m.prosumers]
        readings = [mk.post_reading(meter, m.addresses, k, import_wh=max(0, -q), export_wh=max(0, q), pv_wh=max(0, q),
                                    battery_wh=0) for meter, q in zip(m.meters, positions, strict=True)]
        receipts = m.mine([*readings, mk.settle_operator(m.operator, m.addresses, k)], m.end(k))
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
        assert m.read("Settlement", "pool_wei") == 0
        assert m.read("GridToken", "totalSupply") == ENDOWMENT_WEI * 6 + OPERATOR_DEPOSIT_WEI
        accounts = [m.operator.address, *(w.address for w in m.prosumers)]
        held = m.read("GridToken", "balanceOf", m.addresses.settlement)
        owed = sum(m.read("Settlement", "credit_wei", a) for a in accounts) + m.read("Settlement", "penalty_pool_wei")
        assert owed == held


def test_a_hand_computed_pair_of_zones():
    # Zone a: a bid of 1000 Wh at 40 c/kWh and an ask of 400 Wh at 20 c -> 400 Wh at 30 c; 600 Wh of the bid left.
    # Zone b: an ask of 800 Wh at 24 c and a bid of 200 Wh at 26 c -> 200 Wh at 25 c; 600 Wh of the ask left.
    # Coordinator: bid 600 @ 40 c meets ask 600 @ 24 c -> 600 Wh at floor((40 + 24) / 2) = 32 c.
    zones = {"a": _zone(11, [(1000, 40)], [(400, 20)]), "b": _zone(12, [(200, 26)], [(800, 24)])}
    assert _settle_across_zones(zones) == 32 * CENT
    (ma, ka, _), (mb, kb, _) = zones["a"], zones["b"]
    buyer, seller = ma.prosumers[0].address, mb.prosumers[1].address
    assert tuple(ma.read("DoubleAuction", "settlement_terms", ka, buyer))[1:3] == (-1000, -(400 * 30 + 600 * 32) * CENT)
    assert tuple(mb.read("DoubleAuction", "settlement_terms", kb, seller))[1:3] == (800, (200 * 25 + 600 * 32) * CENT)
    assert tuple(ma.read("DoubleAuction", "settlement_terms", ka, ma.operator.address))[1:3] == (600, 600 * 32 * CENT)
    assert tuple(mb.read("DoubleAuction", "settlement_terms", kb, mb.operator.address))[1:3] == (-600,
                                                                                                 -600 * 32 * CENT)
    assert tuple(ma.read("DoubleAuction", "cross_clearing", ka)) == (True, 32 * CENT, 0, 600)
    assert tuple(mb.read("DoubleAuction", "cross_clearing", kb)) == (True, 32 * CENT, 600, 0)
    _settle_everything(zones)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ORDERS, ORDERS, ORDERS, ORDERS)
def test_random_zones_settle_as_the_two_level_reference(bids_a, asks_a, bids_b, asks_b):
    zones = {"a": _zone(21, bids_a, asks_a), "b": _zone(22, bids_b, asks_b)}
    _assert_as_the_reference(zones)
    _settle_everything(zones)
