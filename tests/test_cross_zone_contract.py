"""Cross-zone settlement on real chains against the two-level reference (`zone_clearing.clear_zoned`).

Two or three zones, each its own py-evm chain and market (its own accounts):
each clears its book on chain; the residuals, computed with
`residual_orders` from the book read back from the chain (`market.book`) and
the zone positions, are cleared by the coordinator's reference step
(`clear_residuals`), and each chain records its zone's fills with
``DoubleAuction.settle_across`` one second after its gate. Every account's
terms must be its zone fill at the zone price plus its cross fill at the
coordinator's price, exactly as `clear_zoned` computes them from the same
books; each zone's operator holds minus its zone's net export, so the
operators' positions and values sum to zero over the chains. After readings
equal to the positions and the operators' settlement, each chain's token
supply is unchanged, its Settlement holds every credit and its pools, its
pool is empty, and over all chains the credit changes sum to zero: the
operators' changes are the grid fees (and imbalance) they collect, their
cross-zone payments cancelling between the chains.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import settle
from gridledger.contracts.zone_clearing import (
    CoordinatorClearing,
    ZoneBook,
    clear_residuals,
    clear_zoned,
    residual_orders,
)
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import (
    ENDOWMENT_WEI,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    Market,
    new_market,
)

N_PROSUMERS = 6
FEE = GRID_FEE_WEI_PER_WH
# Up to three orders a side in a zone: 10 Wh to 2 kWh at 5 to 60 c/kWh, often tied (a coarse grid).
ORDERS = st.lists(
    st.tuples(st.integers(10, 2000), st.one_of(st.sampled_from([10, 20, 25, 30, 40]), st.integers(5, 60))),
    max_size=3,
)


@dataclass
class Zone:
    """A zone's market and its cleared interval ``k``; ``book`` is the book as stored on its chain."""

    m: Market
    k: int
    book: ZoneBook


def _zone(seed: int, bids, asks) -> Zone:
    """A zone's market (its own chain and accounts, from ``seed``) with ``bids`` and ``asks`` ((Wh, c/kWh)
    each) placed for its next interval and cleared at its gate."""
    m = new_market(N_PROSUMERS, seed=seed)
    k = m.next_interval()
    submitted = m.submit_book(k, [(q, p * CENT) for q, p in bids], [(q, p * CENT) for q, p in asks])
    receipt = m.clear(k, submitted)
    assert receipt.ok, receipt.revert_reason
    on_chain = mk.book(m.chain, m.addresses, k)
    assert (on_chain.bids, on_chain.asks) == (submitted.bids, submitted.asks)
    return Zone(m, k, ZoneBook(on_chain.bids, on_chain.asks))


def _terms(z: Zone, account: str) -> tuple[int, int]:
    """(position_wh, value_wei) of ``account``'s settlement terms on ``z``'s chain."""
    cleared, position, value, end = z.m.read("DoubleAuction", "settlement_terms", z.k, account)
    assert cleared and end == z.m.end(z.k)
    return position, value


def _coordinate(zones: dict[str, Zone]) -> CoordinatorClearing:
    """The coordinator's step over the residuals read from the chains; each chain then records its
    zone's fills (none where the zone did not trade across) at its gate + 1 s (or a second after its head)."""
    residuals = {}
    for name, z in zones.items():
        positions = {o.account: z.m.read("DoubleAuction", "position_wh", z.k, o.account)
                     for o in (*z.book.bids, *z.book.asks)}
        residuals[name] = ZoneBook(tuple(residual_orders(z.book.bids, positions)),
                                   tuple(residual_orders(z.book.asks, positions)))
    coordinator = clear_residuals(residuals)
    if coordinator.price_wei_per_wh == 0:
        return coordinator  # Nothing traded across: settle_across refuses a zero price.
    for name, z in zones.items():
        fills = list(coordinator.fills_wh[name].items())
        (receipt,) = z.m.mine([mk.settle_across(z.m.operator, z.m.addresses, z.k, fills,
                                                coordinator.price_wei_per_wh)],
                             max(z.m.gate(z.k), z.m.chain.timestamp) + 1)
        assert receipt.ok, receipt.revert_reason
        rejected = [e for e in map(z.m.chain.decode, receipt.logs) if e is not None and e.event == "CrossFillRejected"]
        assert rejected == []
        sold = sum(w for a, w in fills if any(o.account == a for o in z.book.asks))
        assert tuple(z.m.read("DoubleAuction", "cross_clearing", z.k)) == (
            True, coordinator.price_wei_per_wh, sold, sum(w for _, w in fills) - sold)
    return coordinator


def _assert_as_the_reference(zones: dict[str, Zone], coordinator: CoordinatorClearing) -> None:
    """Every account's terms on its chain are the reference's; the operators' sum to zero over the chains."""
    reference = clear_zoned({name: z.book for name, z in zones.items()})
    price = coordinator.price_wei_per_wh
    assert reference.coordinator_price_wei_per_wh == price
    operator_positions, operator_values = 0, 0
    for name, z in zones.items():
        zone_price = reference.zone_prices_wei_per_wh[name]
        assert z.m.read("DoubleAuction", "clearing_price_wei_per_wh", z.k) == zone_price
        for w in z.m.prosumers:
            fill = reference.fills.get(w.address)
            if fill is None:
                expected = (0, 0)
            else:
                assert fill.zone == name
                sign = 1 if fill.is_ask else -1
                expected = (sign * fill.total_wh, sign * (fill.zone_wh * zone_price + fill.coordinator_wh * price))
                assert z.m.read("DoubleAuction", "cross_fill_wh", z.k, w.address) == fill.coordinator_wh
            assert _terms(z, w.address) == expected
        position, value = _terms(z, z.m.operator.address)
        assert position == -reference.net_export_wh[name]
        assert value == -reference.net_export_wh[name] * price
        operator_positions += position
        operator_values += value
    assert operator_positions == 0 and operator_values == 0


def _settle_everything(zones: dict[str, Zone]) -> dict[str, dict[str, int]]:
    """Readings equal to the positions at the interval end and the operator's settlement on every chain.

    Checks each prosumer's credit change against the reference `settle`, each operator's against its
    fees and imbalance plus its cross-zone value, and per chain: supply unchanged, pool empty, the
    Settlement holding every credit and its pools; over all chains: credit changes sum to zero and the
    operators' changes to the fees and imbalance they collected. Returns each chain's credit changes.
    """
    deltas: dict[str, dict[str, int]] = {}
    operators_fees_wei = 0
    for name, z in zones.items():
        m, k = z.m, z.k
        accounts = [m.operator.address, *(w.address for w in m.prosumers)]
        supply = m.read("GridToken", "totalSupply")
        assert supply == ENDOWMENT_WEI * N_PROSUMERS + OPERATOR_DEPOSIT_WEI
        held_before = m.read("GridToken", "balanceOf", m.addresses.settlement)
        before = {a: m.read("Settlement", "credit_wei", a) for a in accounts}
        terms = {a: _terms(z, a) for a in accounts}
        readings = [(max(0, -terms[w.address][0]), max(0, terms[w.address][0])) for w in m.prosumers]
        receipts = m.mine(
            [*(mk.post_reading(meter, m.addresses, k, import_wh=i, export_wh=e, pv_wh=e, battery_wh=0)
               for meter, (i, e) in zip(m.meters, readings, strict=True)),
             mk.settle_operator(m.operator, m.addresses, k)],
            m.end(k),
        )
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
        deltas[name] = {a: m.read("Settlement", "credit_wei", a) - before[a] for a in accounts}
        fees = 0
        for w, (i, e) in zip(m.prosumers, readings, strict=True):
            line = settle(*terms[w.address], i, e, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, FEE,
                          non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH)
            assert deltas[name][w.address] == line.credit_delta_wei
            fees += line.operator_delta_wei
        assert deltas[name][m.operator.address] == fees + terms[m.operator.address][1]
        operators_fees_wei += fees
        assert m.read("Settlement", "lock_wei", k, m.operator.address) == 0
        assert m.read("Settlement", "pool_wei") == 0
        assert m.read("GridToken", "totalSupply") == supply
        held = m.read("GridToken", "balanceOf", m.addresses.settlement)
        assert held == held_before
        owed = sum(m.read("Settlement", "credit_wei", a) for a in accounts)
        assert owed + m.read("Settlement", "pool_wei") + m.read("Settlement", "penalty_pool_wei") == held
        assert sum(deltas[name].values()) == 0
    assert sum(d for chain in deltas.values() for d in chain.values()) == 0
    assert sum(chain[z.m.operator.address] for chain, z in zip(deltas.values(), zones.values(), strict=True)) \
        == operators_fees_wei
    return deltas


def test_a_hand_computed_trio_of_zones():
    # Zone a: bid 1200 Wh at 40 c/kWh, ask 400 Wh at 20 c -> 400 Wh at floor((40 + 20) / 2) = 30 c;
    #         left: the bid's 800 Wh at 40 c.
    # Zone b: bid 200 Wh at 26 c, ask 800 Wh at 24 c -> 200 Wh at 25 c; left: the ask's 600 Wh at 24 c.
    # Zone c: bid 100 Wh at 10 c, ask 300 Wh at 30 c -> no trade (price 0); both left whole.
    # Coordinator (bids 800 @ 40, 100 @ 10; asks 600 @ 24, 300 @ 30): 800 @ 40 takes 600 @ 24, then
    #   200 of 300 @ 30; 100 @ 10 is below 30. Marginal pair 40 / 30 -> 35 c; 800 Wh traded.
    # Net exports: a -800, b +600, c +200. Terms (Wh; c/kWh * Wh):
    #   a bidder -1200, -(400 * 30 + 800 * 35) = -40000; a asker +400, +12000; a operator +800, +28000
    #   b bidder -200, -5000; b asker +800, 200 * 25 + 600 * 35 = +26000; b operator -600, -21000
    #   c asker +200, +7000; c bidder 0, 0; c operator -200, -7000. Operators: 800 - 600 - 200 = 0 Wh,
    #   28000 - 21000 - 7000 = 0.
    zones = {"a": _zone(11, [(1200, 40)], [(400, 20)]), "b": _zone(12, [(200, 26)], [(800, 24)]),
             "c": _zone(13, [(100, 10)], [(300, 30)])}
    coordinator = _coordinate(zones)
    assert coordinator.price_wei_per_wh == 35 * CENT
    a, b, c = zones["a"], zones["b"], zones["c"]
    p = {name: [w.address for w in z.m.prosumers] for name, z in zones.items()}
    assert _terms(a, p["a"][0]) == (-1200, -40000 * CENT)
    assert _terms(a, p["a"][1]) == (400, 12000 * CENT)
    assert _terms(a, a.m.operator.address) == (800, 28000 * CENT)
    assert _terms(b, p["b"][0]) == (-200, -5000 * CENT)
    assert _terms(b, p["b"][1]) == (800, 26000 * CENT)
    assert _terms(b, b.m.operator.address) == (-600, -21000 * CENT)
    assert _terms(c, p["c"][0]) == (0, 0)
    assert _terms(c, p["c"][1]) == (200, 7000 * CENT)
    assert _terms(c, c.m.operator.address) == (-200, -7000 * CENT)
    assert tuple(a.m.read("DoubleAuction", "cross_clearing", a.k)) == (True, 35 * CENT, 0, 800)
    assert tuple(b.m.read("DoubleAuction", "cross_clearing", b.k)) == (True, 35 * CENT, 600, 0)
    assert tuple(c.m.read("DoubleAuction", "cross_clearing", c.k)) == (True, 35 * CENT, 200, 0)
    # Exporting zones' operators lock what they buy (no fee on the operator): 600 * 35 and 200 * 35.
    assert b.m.read("Settlement", "lock_wei", b.k, b.m.operator.address) == 21000 * CENT
    assert c.m.read("Settlement", "lock_wei", c.k, c.m.operator.address) == 7000 * CENT
    assert a.m.read("Settlement", "lock_wei", a.k, a.m.operator.address) == 0
    _assert_as_the_reference(zones, coordinator)
    deltas = _settle_everything(zones)
    # Fee 2 c/kWh on every Wh bought: a's bidder 1200 Wh, b's bidder 200 Wh, none in c.
    assert deltas["a"][p["a"][0]] == -(40000 + 1200 * 2) * CENT
    assert deltas["a"][a.m.operator.address] == (28000 + 1200 * 2) * CENT
    assert deltas["b"][p["b"][1]] == 26000 * CENT
    assert deltas["b"][b.m.operator.address] == (-21000 + 200 * 2) * CENT
    assert deltas["c"][p["c"][1]] == 7000 * CENT
    assert deltas["c"][c.m.operator.address] == -7000 * CENT


def test_zones_without_a_cross_trade_keep_their_zone_terms():
    # Both zones have residual bids only: the coordinator trades nothing (price 0), nothing is recorded,
    # and every account keeps its zone fill at its zone price.
    zones = {"a": _zone(31, [(1000, 40)], [(400, 20)]), "b": _zone(32, [(500, 50)], [])}
    coordinator = _coordinate(zones)
    assert coordinator.price_wei_per_wh == 0
    for z in zones.values():
        assert not z.m.read("DoubleAuction", "cross_clearing", z.k)[0]
    _assert_as_the_reference(zones, coordinator)
    _settle_everything(zones)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ORDERS, ORDERS, ORDERS, ORDERS)
def test_random_zones_settle_as_the_two_level_reference(bids_a, asks_a, bids_b, asks_b):
    zones = {"a": _zone(21, bids_a, asks_a), "b": _zone(22, bids_b, asks_b)}
    coordinator = _coordinate(zones)
    _assert_as_the_reference(zones, coordinator)
    _settle_everything(zones)


def _released_pair(release: bool, cross_wh: int = 600) -> tuple[dict[str, Zone], int]:
    # Zone a: bid 1000 Wh at 40 c, ask 400 Wh at 20 c -> 400 Wh at 30 c; bid lock 1000 * (40 + 2) = 42000.
    # Zone b: ask `cross_wh` (at most 600) Wh at 24 c alone. Coordinator: `cross_wh` at floor((40 + 24) / 2) = 32 c.
    zones = {"a": _zone(41, [(1000, 40)], [(400, 20)]), "b": _zone(42, [], [(cross_wh, 24)])}
    a = zones["a"]
    bidder = a.m.prosumers[0].address
    assert a.m.read("Settlement", "lock_wei", a.k, bidder) == 1000 * (40 * CENT + FEE)
    if release:
        (receipt,) = a.m.mine([mk.release(a.m.outsider, a.m.addresses, a.k, bidder)])
        assert receipt.ok, receipt.revert_reason
    return zones, bidder


@pytest.mark.parametrize("cross_wh", [600, 100])
def test_a_released_bid_gets_its_cross_fill_and_locks_exactly_that_fill(cross_wh):
    # With 100 Wh the lock left after the release (400 * 32 = 12800) would cover the cross fill alone
    # (100 * 34 = 3400) but not both obligations: it must still lock 3400 more.
    zones, bidder = _released_pair(release=True, cross_wh=cross_wh)
    a = zones["a"]
    lock = a.m.read("Settlement", "lock_wei", a.k, bidder)
    assert lock == 400 * (30 * CENT + FEE)  # released down to its zone obligation
    free = a.m.read("Settlement", "free_credit_wei", bidder)
    coordinator = _coordinate(zones)
    assert coordinator.price_wei_per_wh == 32 * CENT and coordinator.fills_wh["a"] == {bidder: cross_wh}
    assert a.m.read("Settlement", "lock_wei", a.k, bidder) == lock + cross_wh * (32 * CENT + FEE)
    assert a.m.read("Settlement", "free_credit_wei", bidder) == free - cross_wh * (32 * CENT + FEE)
    assert _terms(a, bidder) == (-400 - cross_wh, -(400 * 30 + cross_wh * 32) * CENT)
    _assert_as_the_reference(zones, coordinator)
    deltas = _settle_everything(zones)
    assert deltas["a"][bidder] == -(400 * 30 + cross_wh * 32 + (400 + cross_wh) * 2) * CENT


def test_a_bid_whose_lock_still_covers_its_cross_fill_locks_nothing_more():
    zones, bidder = _released_pair(release=False)
    a = zones["a"]
    lock = a.m.read("Settlement", "lock_wei", a.k, bidder)
    free = a.m.read("Settlement", "free_credit_wei", bidder)
    coordinator = _coordinate(zones)
    assert coordinator.fills_wh["a"] == {bidder: 600}
    assert a.m.read("Settlement", "lock_wei", a.k, bidder) == lock == 1000 * (40 * CENT + FEE)
    assert a.m.read("Settlement", "free_credit_wei", bidder) == free
    _assert_as_the_reference(zones, coordinator)
    deltas = _settle_everything(zones)
    # Same payment as the released bid's: the lock only bounds it.
    assert deltas["a"][bidder] == -(400 * 30 + 600 * 32 + 1000 * 2) * CENT
