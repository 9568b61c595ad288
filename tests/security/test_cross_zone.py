"""Attacks on the cross-zone settlement of a sharded ledger (``DoubleAuction.settle_across``).

Threat model. Each zone's chain records the coordinator's cross-zone fills
with ``settle_across``, sent by the zone Settlement's operator, who relays the
coordinator's clearing; no chain can check the other zones' books. So:

- the coordinator, or the operator relaying it, may lie about the fills:
  invent fills for accounts without an order, fill an account twice, fill
  more than the zone's clearing left of an order (or an order the zone
  filled whole), fill at a price outside an order's limit, fill a bidder
  whose escrow no longer covers the fill, record twice, too early (before
  the zone clears), too late (after the interval starts), at a zero price
  or above the cap, or record fills that do not match the other zones';
- a prosumer, a meter, the DSO or an outsider may try to record fills at all;
- an exporting zone's operator may lack the credit to buy its zone's export.

What must hold: a wrong caller or a wrong call reverts with its exact
reason; a wrong fill is skipped with its exact ``CrossFillRejected``
reason and the others settle; honest accounts lose nothing (their terms
equal a run without the attack, or are bounded by the rules: a prosumer
never buys above its bid limit nor sells below its ask limit, nor trades
more than its order); a lie that the chain cannot see only moves money of
that chain's operator; tokens are never created (supply unchanged, the
Settlement holds every credit and its pools).
"""

from __future__ import annotations

import pytest

from gridledger.contracts import market as mk
from gridledger.contracts.zone_clearing import ZoneBook, clear_residuals, residual_orders
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import (
    ENDOWMENT_WEI,
    GRID_FEE_WEI_PER_WH,
    INTERVAL_S,
    OPERATOR_DEPOSIT_WEI,
    PRICE_CAP_WEI_PER_WH,
    Market,
    new_market,
    reverted,
)

N = 6
NOT_OPERATOR = "auction: caller is not the settlement's operator"
FEE = GRID_FEE_WEI_PER_WH
# The zone's book: p0 bids 1000 Wh at 40 c/kWh, p1 bids 300 Wh at 35 c, p2 bids 200 Wh at 25 c,
# p3 asks 400 Wh at 20 c, p4 asks 300 Wh at 45 c; p5 places no order.
# Zone clearing: p0 takes p3's 400 Wh; p0's next 600 Wh at 40 c is below p4's 45 c -> 400 Wh at
# floor((40 + 20) / 2) = 30 c. Left: p0 600 Wh @ 40, p1 300 @ 35, p2 200 @ 25, p4 300 @ 45.
# The honest coordinator (other zones ask at ~24 c) clears at 32 c: p0's 600 Wh and p1's 300 Wh;
# p2 (25 < 32) and p4 (45 > 32) stay out. The zone imports 900 Wh; its operator sells them.
PRICE = 32 * CENT
BIDS = [(1000, 40 * CENT), (300, 35 * CENT), (200, 25 * CENT)]
ASKS = [(400, 20 * CENT), (300, 45 * CENT)]
# (position_wh, value_wei) by prosumer index, and the operator's, after the zone clearing alone ...
ZONE_ONLY = {0: (-400, -400 * 30 * CENT), 1: (0, 0), 2: (0, 0), 3: (400, 400 * 30 * CENT), 4: (0, 0), 5: (0, 0),
             "operator": (0, 0)}
# ... and after the honest cross-zone fills.
HONEST = {0: (-1000, -(400 * 30 + 600 * 32) * CENT), 1: (-300, -300 * 32 * CENT), 2: (0, 0),
          3: (400, 400 * 30 * CENT), 4: (0, 0), 5: (0, 0), "operator": (900, 900 * 32 * CENT)}


@pytest.fixture()
def zone() -> Market:
    """The zone above, cleared at its gate; ``m.k`` is its interval."""
    m = new_market(N)
    m.k = m.next_interval()
    book = m.submit_book(m.k, bids=BIDS, asks=ASKS)
    assert m.clear(m.k, book).ok
    assert _terms(m) == ZONE_ONLY
    return m


def _p(m: Market, i: int) -> str:
    return m.prosumers[i].address


def _honest_fills(m: Market) -> list[tuple[str, int]]:
    return [(_p(m, 0), 600), (_p(m, 1), 300)]


def _settle(m: Market, fills, price=PRICE, *, sender=None, at=None):
    """Receipt of ``settle_across(m.k, fills, price)`` sent by ``sender`` (the operator) at ``at``
    (the gate + 1 s, or a second after the head)."""
    raw = mk.settle_across(sender or m.operator, m.addresses, m.k, fills, price)
    (receipt,) = m.mine([raw], at if at is not None else max(m.gate(m.k), m.chain.timestamp) + 1)
    return receipt


def _rejected(m: Market, receipt) -> list[tuple[str, str]]:
    return [(e.args["account"], e.args["reason"]) for e in map(m.chain.decode, receipt.logs)
            if e is not None and e.event == "CrossFillRejected"]


def _terms(m: Market) -> dict:
    """(position_wh, value_wei) of every prosumer by index and of the operator."""
    terms = {i: tuple(m.read("DoubleAuction", "settlement_terms", m.k, w.address))[1:3]
             for i, w in enumerate(m.prosumers)}
    terms["operator"] = tuple(m.read("DoubleAuction", "settlement_terms", m.k, m.operator.address))[1:3]
    return terms


def _books_hold(m: Market) -> None:
    """No token created: supply unchanged, the Settlement holds every credit and its pools."""
    assert m.read("GridToken", "totalSupply") == ENDOWMENT_WEI * N + OPERATOR_DEPOSIT_WEI
    accounts = [m.operator.address, *(w.address for w in m.prosumers)]
    held = m.read("GridToken", "balanceOf", m.addresses.settlement)
    owed = sum(m.read("Settlement", "credit_wei", a) for a in accounts)
    assert owed + m.read("Settlement", "pool_wei") + m.read("Settlement", "penalty_pool_wei") == held


def _honest_run_still_settles(m: Market) -> None:
    """After a refused attack, the honest fills still record and give every account the honest terms."""
    receipt = _settle(m, _honest_fills(m))
    assert receipt.ok and _rejected(m, receipt) == []
    assert _terms(m) == HONEST
    assert tuple(m.read("DoubleAuction", "cross_clearing", m.k)) == (True, PRICE, 0, 900)
    _books_hold(m)


def _settle_all(m: Market) -> dict[str, int]:
    """Readings equal to the positions at the interval end and the operator's settlement; returns the
    credit changes by address and checks the pool empties and no token is created."""
    accounts = [m.operator.address, *(w.address for w in m.prosumers)]
    before = {a: m.read("Settlement", "credit_wei", a) for a in accounts}
    terms = _terms(m)
    raw = [mk.post_reading(meter, m.addresses, m.k, import_wh=max(0, -terms[i][0]), export_wh=max(0, terms[i][0]),
                           pv_wh=max(0, terms[i][0]), battery_wh=0) for i, meter in enumerate(m.meters)]
    receipts = m.mine([*raw, mk.settle_operator(m.operator, m.addresses, m.k)], m.end(m.k))
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    assert m.read("Settlement", "pool_wei") == 0
    _books_hold(m)
    deltas = {a: m.read("Settlement", "credit_wei", a) - before[a] for a in accounts}
    assert sum(deltas.values()) == 0
    return deltas


def test_the_honest_run_gives_the_hand_computed_terms_and_settles(zone):
    m = zone
    receipt = _settle(m, _honest_fills(m))
    events = [(e.event, dict(e.args)) for e in map(m.chain.decode, receipt.logs) if e is not None]
    trades = [(a["account"], a["position_wh"]) for name, a in events if name == "Trade"]
    assert trades == [(_p(m, 0), -1000), (_p(m, 1), -300)]  # each with its whole position
    crossed = [a for name, a in events if name == "CrossCleared"]
    assert [(a["price_wei_per_wh"], a["sold_wh"], a["bought_wh"]) for a in crossed] == [(PRICE, 0, 900)]
    assert _terms(m) == HONEST
    assert m.read("DoubleAuction", "cross_fill_wh", m.k, _p(m, 0)) == 600
    assert m.read("DoubleAuction", "cross_fill_wh", m.k, _p(m, 2)) == 0
    _books_hold(m)
    deltas = _settle_all(m)
    assert deltas[_p(m, 0)] == -(400 * 30 + 600 * 32 + 1000 * 2) * CENT
    assert deltas[_p(m, 1)] == -(300 * 32 + 300 * 2) * CENT
    assert deltas[_p(m, 3)] == 400 * 30 * CENT
    assert deltas[m.operator.address] == (900 * 32 + 1300 * 2) * CENT


@pytest.mark.parametrize("who", ["prosumer", "meter", "dso", "outsider"])
def test_only_the_settlements_operator_may_record_fills(zone, who):
    m = zone
    sender = {"prosumer": m.prosumers[0], "meter": m.meters[0], "dso": m.dso, "outsider": m.outsider}[who]
    # The attacker records a fill that would pay p4 (an ask) above the honest price.
    assert reverted(_settle(m, [(_p(m, 4), 300)], price=90 * CENT, sender=sender), NOT_OPERATOR)
    assert _terms(m) == ZONE_ONLY and not m.read("DoubleAuction", "cross_clearing", m.k)[0]
    _honest_run_still_settles(m)


def test_fills_before_the_zone_clears_are_refused():
    m = new_market(N)
    m.k = m.next_interval()
    book = m.submit_book(m.k, bids=BIDS, asks=ASKS)
    assert reverted(_settle(m, _honest_fills(m), at=m.gate(m.k) - 1), "auction: interval not cleared")
    assert not m.read("DoubleAuction", "cross_clearing", m.k)[0]
    assert m.read("DoubleAuction", "cross_fill_wh", m.k, _p(m, 0)) == 0
    assert m.clear(m.k, book).ok
    assert _terms(m) == ZONE_ONLY
    _honest_run_still_settles(m)


def test_fills_are_recorded_once(zone):
    m = zone
    _honest_run_still_settles(m)
    # A second round would fill p2 and p4 at 30 c, or refill p0 at a lower price.
    second = _settle(m, [(_p(m, 0), 600), (_p(m, 4), 300)], price=50 * CENT)
    assert reverted(second, "auction: already settled across zones")
    assert _terms(m) == HONEST
    assert tuple(m.read("DoubleAuction", "cross_clearing", m.k)) == (True, PRICE, 0, 900)
    _books_hold(m)


def test_fills_after_the_interval_starts_are_refused(zone):
    m = zone
    start = m.end(m.k) - INTERVAL_S
    assert reverted(_settle(m, _honest_fills(m), at=start), "auction: interval started")
    assert _terms(m) == ZONE_ONLY and not m.read("DoubleAuction", "cross_clearing", m.k)[0]
    # The zone settles on its own terms; the unfilled bids' escrow comes back at the readings.
    deltas = _settle_all(m)
    assert deltas[_p(m, 0)] == -(400 * 30 + 400 * 2) * CENT
    assert deltas[_p(m, 1)] == 0 and m.read("Settlement", "lock_wei", m.k, _p(m, 1)) == 0


def test_fills_one_second_before_the_interval_starts_still_record(zone):
    m = zone
    receipt = _settle(m, _honest_fills(m), at=m.end(m.k) - INTERVAL_S - 1)
    assert receipt.ok and _rejected(m, receipt) == []
    assert _terms(m) == HONEST


def test_a_zero_price_is_refused(zone):
    m = zone
    # At 0 c every bidder would get its residual for free, paid by nobody.
    assert reverted(_settle(m, _honest_fills(m), price=0), "auction: zero price")
    assert _terms(m) == ZONE_ONLY
    _honest_run_still_settles(m)


def test_a_price_above_the_cap_is_refused(zone):
    m = zone
    # p4's ask (45 c) would accept any price; above the cap the operator would overpay.
    assert reverted(_settle(m, [(_p(m, 4), 300)], price=PRICE_CAP_WEI_PER_WH + 1), "auction: price above cap")
    assert _terms(m) == ZONE_ONLY
    _honest_run_still_settles(m)


def test_a_fill_for_an_account_without_an_order_is_skipped(zone):
    m = zone
    p5, outsider, operator = _p(m, 5), m.outsider.address, m.operator.address
    receipt = _settle(m, [(p5, 100), (outsider, 100), (operator, 100), *_honest_fills(m)])
    assert receipt.ok
    assert _rejected(m, receipt) == [(p5, "auction: no order"), (outsider, "auction: no order"),
                                     (operator, "auction: no order")]
    assert _terms(m) == HONEST  # the invented fills moved neither the operator's flow nor anyone's terms
    assert tuple(m.read("DoubleAuction", "cross_clearing", m.k)) == (True, PRICE, 0, 900)
    _books_hold(m)


def test_a_duplicate_account_is_filled_once(zone):
    m = zone
    p0, p1 = _p(m, 0), _p(m, 1)
    # Two halves of p0's residual: only the first counts, so p0 gets 300 Wh, not 600.
    receipt = _settle(m, [(p0, 300), (p1, 300), (p0, 300), (p1, 300)])
    assert receipt.ok
    assert _rejected(m, receipt) == [(p0, "auction: already filled across zones"),
                                     (p1, "auction: already filled across zones")]
    terms = _terms(m)
    assert terms[0] == (-700, -(400 * 30 + 300 * 32) * CENT)
    assert terms[1] == HONEST[1]
    assert terms["operator"] == (600, 600 * 32 * CENT)
    assert m.read("DoubleAuction", "cross_fill_wh", m.k, p0) == 300
    assert {i: terms[i] for i in (2, 3, 4, 5)} == {i: HONEST[i] for i in (2, 3, 4, 5)}
    _books_hold(m)


def test_a_fill_above_the_unmatched_energy_is_skipped(zone):
    m = zone
    p0, p3 = _p(m, 0), _p(m, 3)
    # p3's ask of 400 Wh was filled whole in the zone; p0 has 600 Wh left, not 601.
    receipt = _settle(m, [(p3, 1), (p0, 601), *_honest_fills(m)])
    assert receipt.ok
    assert _rejected(m, receipt) == [(p3, "auction: fill above unmatched energy"),
                                     (p0, "auction: fill above unmatched energy")]
    assert _terms(m) == HONEST
    _books_hold(m)


def test_a_zero_fill_is_skipped(zone):
    m = zone
    receipt = _settle(m, [(_p(m, 2), 0), *_honest_fills(m)])
    assert _rejected(m, receipt) == [(_p(m, 2), "auction: zero fill")]
    assert _terms(m) == HONEST


def test_an_ask_is_never_filled_below_its_limit(zone):
    m = zone
    p4 = _p(m, 4)
    receipt = _settle(m, [(p4, 300), *_honest_fills(m)])  # p4 asks 45 c; the price is 32 c
    assert _rejected(m, receipt) == [(p4, "auction: price below ask limit")]
    assert _terms(m) == HONEST
    assert m.read("DoubleAuction", "cross_fill_wh", m.k, p4) == 0


def test_an_ask_is_filled_at_exactly_its_limit(zone):
    m = zone
    p0, p4 = _p(m, 0), _p(m, 4)
    # At p4's 45 c p4 sells; p0 (40 c) may not buy at 45 c. The zone exports 300 Wh: its operator buys them.
    receipt = _settle(m, [(p4, 300), (p0, 600)], price=45 * CENT)
    assert receipt.ok and _rejected(m, receipt) == [(p0, "auction: price above bid limit")]
    terms = _terms(m)
    assert terms[4] == (300, 300 * 45 * CENT)
    assert terms[0] == ZONE_ONLY[0]
    assert terms["operator"] == (-300, -300 * 45 * CENT)
    assert m.read("Settlement", "lock_wei", m.k, m.operator.address) == 300 * 45 * CENT
    _books_hold(m)


def test_a_bid_is_never_filled_above_its_limit(zone):
    m = zone
    p2 = _p(m, 2)
    # p2 bids 25 c: the honest 32 c is above it.
    receipt = _settle(m, [(p2, 200), *_honest_fills(m)])
    assert _rejected(m, receipt) == [(p2, "auction: price above bid limit")]
    assert _terms(m) == HONEST
    assert m.read("Settlement", "lock_wei", m.k, p2) == 200 * (25 * CENT + FEE)  # its lock untouched


def test_a_bid_one_wei_above_its_limit_is_skipped_and_at_its_limit_fills(zone):
    m = zone
    p0, p1 = _p(m, 0), _p(m, 1)
    # At 35 c + 1 wei/Wh p1 (35 c) refuses while p0 (40 c) buys.
    receipt = _settle(m, [(p1, 300), (p0, 600)], price=35 * CENT + 1)
    assert _rejected(m, receipt) == [(p1, "auction: price above bid limit")]
    terms = _terms(m)
    assert terms[1] == (0, 0)
    assert terms[0] == (-1000, -(400 * 30 * CENT + 600 * (35 * CENT + 1)))
    m2 = new_market(N)
    m2.k = m2.next_interval()
    assert m2.clear(m2.k, m2.submit_book(m2.k, bids=BIDS, asks=ASKS)).ok
    receipt = _settle(m2, [(_p(m2, 1), 300)], price=35 * CENT)
    assert receipt.ok and _rejected(m2, receipt) == []
    assert _terms(m2)[1] == (-300, -300 * 35 * CENT)


def test_a_bid_whose_escrow_was_released_and_withdrawn_is_skipped(zone):
    m = zone
    p0 = m.prosumers[0]
    # Anyone may release p0's escrow down to its zone obligation; p0 then withdraws all its free credit.
    assert m.mine([mk.release(m.outsider, m.addresses, m.k, p0.address)])[0].ok
    assert m.read("Settlement", "lock_wei", m.k, p0.address) == 400 * (30 * CENT + FEE)
    free = m.read("Settlement", "free_credit_wei", p0.address)
    assert m.mine([m.call_tx(p0, "Settlement", "withdraw", free)])[0].ok
    assert m.read("Settlement", "free_credit_wei", p0.address) == 0
    receipt = _settle(m, _honest_fills(m))
    assert receipt.ok
    assert _rejected(m, receipt) == [(p0.address, "settlement: credit below escrow")]
    terms = _terms(m)
    assert terms[0] == ZONE_ONLY[0]  # no fill it cannot pay for
    assert terms[1] == HONEST[1] and terms[3] == HONEST[3]  # the others are untouched
    assert terms["operator"] == (300, 300 * 32 * CENT)  # the operator sells only what p1 bought
    assert m.read("Settlement", "lock_wei", m.k, p0.address) == 400 * (30 * CENT + FEE)
    deltas = _settle_all(m)
    assert deltas[p0.address] == -(400 * 30 + 400 * 2) * CENT
    assert deltas[_p(m, 1)] == -(300 * 32 + 300 * 2) * CENT


def test_a_bid_with_just_enough_free_credit_after_release_fills():
    m = new_market(N)
    m.k = m.next_interval()
    assert m.clear(m.k, m.submit_book(m.k, bids=BIDS, asks=ASKS)).ok
    p0 = m.prosumers[0]
    assert m.mine([mk.release(m.outsider, m.addresses, m.k, p0.address)])[0].ok
    need = 600 * (PRICE + FEE)
    free = m.read("Settlement", "free_credit_wei", p0.address)
    assert m.mine([m.call_tx(p0, "Settlement", "withdraw", free - need)])[0].ok
    receipt = _settle(m, _honest_fills(m))
    assert receipt.ok and _rejected(m, receipt) == []
    assert _terms(m) == HONEST
    assert m.read("Settlement", "free_credit_wei", p0.address) == 0
    deltas = _settle_all(m)
    assert deltas[p0.address] == -(400 * 30 + 600 * 32 + 1000 * 2) * CENT


def test_an_exporting_zone_whose_operator_cannot_pay_is_refused():
    m = new_market(N)
    m.k = m.next_interval()
    # Only an ask: p0 asks 500 Wh at 10 c; nobody bids in the zone. The coordinator sells it at 12 c,
    # so the zone's operator must buy 500 Wh at 12 c = 6000 c/kWh*Wh.
    assert m.clear(m.k, m.submit_book(m.k, bids=[], asks=[(500, 10 * CENT)])).ok
    op, p0 = m.operator, _p(m, 0)
    free = m.read("Settlement", "free_credit_wei", op.address)
    assert m.mine([m.call_tx(op, "Settlement", "withdraw", free)])[0].ok
    need = 500 * 12 * CENT  # the operator carries no fee
    assert m.mine([m.call_tx(op, "GridToken", "approve", m.addresses.settlement, need),
                   m.call_tx(op, "Settlement", "deposit_for", op.address, need - 1)])[1].ok
    assert reverted(_settle(m, [(p0, 500)], price=12 * CENT), "auction: exchange credit below escrow")
    assert tuple(m.read("DoubleAuction", "settlement_terms", m.k, p0))[1:3] == (0, 0)
    assert not m.read("DoubleAuction", "cross_clearing", m.k)[0]
    # With one more wei the operator can buy the export: it locks exactly 500 * 12 c.
    assert m.mine([m.call_tx(op, "GridToken", "approve", m.addresses.settlement, 1),
                   m.call_tx(op, "Settlement", "deposit_for", op.address, 1)])[1].ok
    receipt = _settle(m, [(p0, 500)], price=12 * CENT)
    assert receipt.ok and _rejected(m, receipt) == []
    assert m.read("Settlement", "lock_wei", m.k, op.address) == need
    assert m.read("Settlement", "free_credit_wei", op.address) == 0
    assert tuple(m.read("DoubleAuction", "settlement_terms", m.k, p0))[1:3] == (500, need)
    assert tuple(m.read("DoubleAuction", "settlement_terms", m.k, op.address))[1:3] == (-500, -need)
    deltas = _settle_all(m)
    assert deltas[p0] == need and deltas[op.address] == -need


def _two_zones() -> dict[str, Market]:
    """Zone a imports: bid 1000 Wh at 40 c, ask 400 Wh at 20 c (400 Wh at 30 c; 600 Wh @ 40 left).
    Zone b exports: ask 800 Wh at 24 c and ask 300 Wh at 50 c, bid 200 Wh at 26 c (200 Wh at 25 c;
    asks 600 @ 24 and 300 @ 50 left). Honest coordinator: 600 Wh at floor((40 + 24) / 2) = 32 c."""
    zones = {}
    for name, seed, bids, asks in (("a", 51, [(1000, 40)], [(400, 20)]),
                                   ("b", 52, [(200, 26)], [(800, 24), (300, 50)])):
        m = new_market(N, seed=seed)
        m.k = m.next_interval()
        assert m.clear(m.k, m.submit_book(m.k, [(q, p * CENT) for q, p in bids],
                                          [(q, p * CENT) for q, p in asks])).ok
        zones[name] = m
    return zones


def _honest_coordinator(zones: dict[str, Market]):
    residuals = {}
    for name, m in zones.items():
        book = mk.book(m.chain, m.addresses, m.k)
        positions = {o.account: m.read("DoubleAuction", "position_wh", m.k, o.account)
                     for o in (*book.bids, *book.asks)}
        residuals[name] = ZoneBook(tuple(residual_orders(book.bids, positions)),
                                   tuple(residual_orders(book.asks, positions)))
    return clear_residuals(residuals)


def _assert_within_limits(m: Market) -> None:
    """Every prosumer trades at most its order, buys at most at its limit and sells at least at it."""
    for o in (*mk.book(m.chain, m.addresses, m.k).bids, *mk.book(m.chain, m.addresses, m.k).asks):
        _, position, value, _ = m.read("DoubleAuction", "settlement_terms", m.k, o.account)
        assert abs(position) <= o.energy_wh
        if position > 0:
            assert value >= position * o.price_wei_per_wh  # sold at least at its ask limit
        elif position < 0:
            assert -value <= -position * o.price_wei_per_wh  # bought at most at its bid limit


def test_a_lying_coordinator_on_one_chain_moves_only_that_chains_operators_money():
    zones = _two_zones()
    honest = _honest_coordinator(zones)
    assert honest.price_wei_per_wh == 32 * CENT
    a, b = zones["a"], zones["b"]
    assert honest.fills_wh == {"a": {a.prosumers[0].address: 600}, "b": {b.prosumers[1].address: 600}}
    # Chain a records the honest fills; chain b's operator records a lie: both residual asks sold whole
    # at 60 c (b's 300 Wh @ 50 c never traded, and 60 c is not the coordinator's price), and b's bidder,
    # filled whole in its zone, buying 1 Wh more.
    assert _settle(a, list(honest.fills_wh["a"].items()), honest.price_wei_per_wh).ok
    lie = [(b.prosumers[1].address, 600), (b.prosumers[2].address, 300), (b.prosumers[0].address, 1)]
    receipt = _settle(b, lie, 60 * CENT)
    assert receipt.ok
    assert _rejected(b, receipt) == [(b.prosumers[0].address, "auction: fill above unmatched energy")]
    # Chain a is exactly the honest run: its prosumers and operator are untouched by b's lie.
    assert tuple(a.read("DoubleAuction", "settlement_terms", a.k, a.prosumers[0].address))[1:3] == (
        -1000, -(400 * 30 + 600 * 32) * CENT)
    assert tuple(a.read("DoubleAuction", "settlement_terms", a.k, a.operator.address))[1:3] == (600, 600 * 32 * CENT)
    # On b the sellers got more than the honest run, every prosumer within its limits; b's operator
    # pays for all of it: 900 Wh at 60 c, locked from its credit.
    _assert_within_limits(a)
    _assert_within_limits(b)
    assert tuple(b.read("DoubleAuction", "settlement_terms", b.k, b.prosumers[1].address))[1:3] == (
        800, (200 * 25 + 600 * 60) * CENT)
    assert tuple(b.read("DoubleAuction", "settlement_terms", b.k, b.prosumers[2].address))[1:3] == (
        300, 300 * 60 * CENT)
    assert tuple(b.read("DoubleAuction", "settlement_terms", b.k, b.prosumers[0].address))[1:3] == (
        -200, -200 * 25 * CENT)  # the bidder pays nothing more
    assert tuple(b.read("DoubleAuction", "settlement_terms", b.k, b.operator.address))[1:3] == (
        -900, -900 * 60 * CENT)
    assert b.read("Settlement", "lock_wei", b.k, b.operator.address) == 900 * 60 * CENT
    # The lie shows across chains: the operators' positions no longer sum to zero and the prices differ.
    assert a.read("DoubleAuction", "cross_clearing", a.k)[1] != b.read("DoubleAuction", "cross_clearing", b.k)[1]
    a_op = a.read("DoubleAuction", "settlement_terms", a.k, a.operator.address)[1]
    b_op = b.read("DoubleAuction", "settlement_terms", b.k, b.operator.address)[1]
    assert a_op + b_op == -300
    # Settled: each chain's tokens hold; b's operator bears the lie, b's prosumers gain it.
    deltas_a, deltas_b = _settle_all(a), _settle_all(b)
    assert deltas_a[a.prosumers[0].address] == -(400 * 30 + 600 * 32 + 1000 * 2) * CENT
    assert deltas_a[a.operator.address] == (600 * 32 + 1000 * 2) * CENT
    assert deltas_b[b.operator.address] == (-900 * 60 + 200 * 2) * CENT
    assert deltas_b[b.prosumers[0].address] == -(200 * 25 + 200 * 2) * CENT
