"""Cross-zone fills (issue 12, sharding): who may record them, what bounds them, what a lie costs.

Threat model. A zone's chain records the coordinator's fills with
``DoubleAuction.settle_across``, sent by the Settlement's operator, who relays
the coordinator's clearing. The coordinator (or the operator relaying it) may
lie: invent fills, fill more than an order left, fill at a price outside an
order's limit, fill twice, fill late; a prosumer, a meter, the DSO or an
outsider may try to call it at all. Each attack asserts the exact reason
(revert or ``CrossFillRejected``) and that the honest prosumers lost nothing:
their settlement terms are what the honest clearing gives, the token supply is
unchanged and the Settlement holds every credit and its pool.
"""

import pytest

from gridledger.contracts import market as mk
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import Market, new_market, reverted

NOT_OPERATOR = "auction: caller is not the settlement's operator"
# The zone's book: prosumer 0 bids 1000 Wh at 40 c, prosumer 1 asks 400 Wh at 20 c, prosumer 2 asks
# 300 Wh at 45 c. The zone clears 400 Wh at floor((40 + 20) / 2) = 30 c; left: p0's bid of 600 Wh at
# 40 c and p2's ask of 300 Wh at 45 c. The honest coordinator fills p0's 600 Wh at 35 c.
PRICE = 35 * CENT


@pytest.fixture()
def zone() -> Market:
    m = new_market(4)
    k = m.next_interval()
    book = m.submit_book(k, bids=[(1000, 40 * CENT)], asks=[(400, 20 * CENT), (300, 45 * CENT)])
    assert m.clear(k, book).ok
    m.k = k
    return m


def _settle(m: Market, fills, price=PRICE, *, sender=None, at=None):
    raw = mk.settle_across(sender or m.operator, m.addresses, m.k, fills, price)
    (receipt,) = m.mine([raw], at if at is not None else max(m.gate(m.k) + 1, m.chain.timestamp + 1))
    return receipt


def _rejected(m: Market, receipt) -> list[tuple[str, str]]:
    return [(e.args["account"], e.args["reason"]) for e in map(m.chain.decode, receipt.logs)
            if e is not None and e.event == "CrossFillRejected"]


def _terms(m: Market) -> dict[str, tuple]:
    return {w.address: tuple(m.read("DoubleAuction", "settlement_terms", m.k, w.address))[1:3] for w in m.prosumers}


def _books_hold(m: Market) -> None:
    accounts = [m.operator.address, *(w.address for w in m.prosumers)]
    held = m.read("GridToken", "balanceOf", m.addresses.settlement)
    owed = sum(m.read("Settlement", "credit_wei", a) for a in accounts)
    assert owed + m.read("Settlement", "pool_wei") + m.read("Settlement", "penalty_pool_wei") == held


def test_the_honest_fill_adds_to_the_zone_fill_and_the_operator_takes_the_other_side(zone):
    m, (p0, p1, p2, _) = zone, (w.address for w in zone.prosumers)
    receipt = _settle(m, [(p0, 600)])
    assert receipt.ok and _rejected(m, receipt) == []
    zone_value = -400 * 30 * CENT
    assert _terms(m)[p0] == (-1000, zone_value - 600 * PRICE)
    assert _terms(m)[p1] == (400, 400 * 30 * CENT) and _terms(m)[p2] == (0, 0)
    assert tuple(m.read("DoubleAuction", "settlement_terms", m.k, m.operator.address))[1:3] == (600, 600 * PRICE)
    assert tuple(m.read("DoubleAuction", "cross_clearing", m.k)) == (True, PRICE, 0, 600)
    _books_hold(m)


@pytest.mark.parametrize("who", ["prosumer", "meter", "DSO", "outsider"])
def test_only_the_settlements_operator_may_record_fills(zone, who):
    m = zone
    sender = {"prosumer": m.prosumers[0], "meter": m.meters[0], "DSO": m.dso, "outsider": m.outsider}[who]
    before = _terms(m)
    assert reverted(_settle(m, [(m.prosumers[0].address, 600)], sender=sender), NOT_OPERATOR)
    assert _terms(m) == before and not m.read("DoubleAuction", "cross_clearing", m.k)[0]


def test_fills_are_recorded_once_after_the_clearing_and_before_the_interval_starts():
    m = new_market(4)
    k = m.next_interval()
    m.submit_book(k, bids=[(1000, 40 * CENT)], asks=[(400, 20 * CENT)])
    m.k = k
    assert reverted(_settle(m, [], at=m.gate(k)), "auction: interval not cleared")
    (cleared,) = m.mine([mk.clear(m.operator, m.addresses, k, mk.book(m.chain, m.addresses, k))], m.gate(k) + 1)
    assert cleared.ok
    assert reverted(_settle(m, [], at=m.end(k) - 900), "auction: interval started")
    m2 = new_market(4)
    k2 = m2.next_interval()
    assert m2.clear(k2, m2.submit_book(k2, bids=[(1000, 40 * CENT)], asks=[(400, 20 * CENT)])).ok
    m2.k = k2
    assert _settle(m2, [(m2.prosumers[0].address, 600)]).ok
    assert reverted(_settle(m2, [(m2.prosumers[0].address, 600)], at=m2.gate(k2) + 2),
                    "auction: already settled across zones")
    assert _terms(m2)[m2.prosumers[0].address][0] == -1000


@pytest.mark.parametrize("price,reason", [(0, "auction: zero price"), (10**24, "auction: price above cap")])
def test_a_price_out_of_bounds_is_refused(zone, price, reason):
    before = _terms(zone)
    assert reverted(_settle(zone, [(zone.prosumers[0].address, 600)], price=price), reason)
    assert _terms(zone) == before


def test_lying_fills_are_skipped_with_their_reasons_and_the_honest_one_settles(zone):
    m, (p0, p1, p2, p3) = zone, (w.address for w in zone.prosumers)
    receipt = _settle(m, [
        (p3, 100),          # no order
        (p1, 1),            # fully filled in the zone
        (p2, 300),          # an ask at 45 c asked to sell at 35 c
        (p0, 601),          # more than the 600 Wh the bid has left
        (p0, 0),            # nothing
        (p0, 600),          # the honest fill
        (p0, 600),          # the same account again
    ])
    assert receipt.ok
    assert _rejected(m, receipt) == [
        (p3, "auction: no order"),
        (p1, "auction: fill above unmatched energy"),
        (p2, "auction: price below ask limit"),
        (p0, "auction: fill above unmatched energy"),
        (p0, "auction: zero fill"),
        (p0, "auction: already filled across zones"),
    ]
    assert _terms(m)[p0] == (-1000, -400 * 30 * CENT - 600 * PRICE)
    assert _terms(m)[p1] == (400, 400 * 30 * CENT) and _terms(m)[p2] == (0, 0)
    _books_hold(m)


def test_a_bid_is_never_filled_above_its_limit(zone):
    m, p0 = zone, zone.prosumers[0].address
    receipt = _settle(m, [(p0, 600)], price=41 * CENT)
    assert _rejected(m, receipt) == [(p0, "auction: price above bid limit")]
    assert _terms(m)[p0] == (-400, -400 * 30 * CENT)


def test_a_released_bid_locks_its_cross_fill_again_or_is_skipped(zone):
    m, p0 = zone, zone.prosumers[0].address
    assert m.mine([mk.release(m.prosumers[1], m.addresses, m.k, p0)])[0].ok
    fee = m.read("Settlement", "grid_fee_wei_per_wh")
    lock = m.read("Settlement", "lock_wei", m.k, p0)
    assert lock == 400 * (30 * CENT + fee)                             # released down to the zone fill
    assert _settle(m, [(p0, 600)]).ok
    assert m.read("Settlement", "lock_wei", m.k, p0) == lock + 600 * (PRICE + fee)


def test_a_bid_without_the_credit_for_its_cross_fill_is_skipped(zone):
    m, p0 = zone, zone.prosumers[0]
    assert m.mine([mk.release(m.prosumers[1], m.addresses, m.k, p0.address)])[0].ok
    free = m.read("Settlement", "free_credit_wei", p0.address)
    assert m.mine([m.call_tx(p0, "Settlement", "withdraw", free)])[0].ok
    receipt = _settle(m, [(p0.address, 600)])
    assert _rejected(m, receipt) == [(p0.address, "settlement: credit below escrow")]
    assert _terms(m)[p0.address] == (-400, -400 * 30 * CENT)
    _books_hold(m)


def test_an_exporting_zone_whose_operator_cannot_pay_is_refused():
    m = new_market(4)
    k = m.next_interval()
    # Only an ask is left: prosumer 0 asks 500 Wh at 10 c and nobody bids in the zone.
    assert m.clear(k, m.submit_book(k, bids=[], asks=[(500, 10 * CENT)])).ok
    m.k = k
    free = m.read("Settlement", "free_credit_wei", m.operator.address)
    assert m.mine([m.call_tx(m.operator, "Settlement", "withdraw", free)])[0].ok
    assert reverted(_settle(m, [(m.prosumers[0].address, 500)], price=12 * CENT),
                    "auction: exchange credit below escrow")
    assert _terms(m)[m.prosumers[0].address] == (0, 0)
