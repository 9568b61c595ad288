"""Verified batches (issue 12): signed orders in calldata with their clearing, only the fills stored.

``DoubleAuction.clear_signed`` judges every signed order as ``submit_order``
would (but for the gate), skips a refused one with ``OrderRejected`` and its
reason, and reverts unless the claimed clearing is that of the stored orders
and the accepted signed ones. Each attack asserts the exact reason or the
bounded outcome, that honest accounts lost nothing and that tokens are
conserved; the hypothesis property checks that the contract accepts the
reference clearing of random books and refuses any single perturbation.
"""

from dataclasses import replace

import pytest
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import Order, batch_book, clear_uniform, priority
from gridledger.contracts.typed_data import order_signer, sign_order
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import Market, new_market, reverted

def _signed(m: Market, i: int, interval: int, is_ask: bool, energy_wh: int, price: int, *, account=None):
    return sign_order(account or m.prosumers[i].account, m.chain.chain_id, m.addresses.auction, interval=interval,
                      is_ask=is_ask, energy_wh=energy_wh, price_wei_per_wh=price)


def _accepted(m: Market, interval: int, signed) -> list[tuple[str, object]]:
    """(signer, order) of the orders the contract would accept, as the relay finds them."""
    problems = mk.signed_order_problems(m.chain, m.addresses, interval, signed)
    return [(order_signer(m.chain.chain_id, m.addresses.auction, s), s) for s, p in zip(signed, problems) if not p]


def _clear(m: Market, interval: int, signed, *, accepted=None, claim=None, sender=None):
    """Mine the verified batch at the gate; the claim defaults to the reference's over the accepted orders."""
    wallet = sender or m.operator
    if claim is None:
        accepted = _accepted(m, interval, signed) if accepted is None else accepted
        raw = mk.clear_signed(wallet, m.addresses, interval, mk.book(m.chain, m.addresses, interval), signed, accepted)
    else:
        raw = wallet.transact(m.addresses.auction, mk.encode_call(
            "DoubleAuction", "clear_signed", interval, [s.as_struct() for s in signed], *claim), gas=5_000_000)
    (receipt,) = m.mine([raw], max(m.gate(interval), m.chain.timestamp + 1))
    return receipt


def _events(m: Market, receipt, name: str) -> list[dict]:
    return [e.args for e in map(m.chain.decode, receipt.logs) if e is not None and e.event == name]


def _credits(m: Market) -> dict[str, int]:
    return {w.address: m.read("Settlement", "free_credit_wei", w.address) for w in m.prosumers}


def _positions(m: Market, interval: int) -> dict[str, int]:
    return {w.address: m.read("DoubleAuction", "position_wh", interval, w.address) for w in m.prosumers}


def _claim(bids, asks) -> tuple:
    outcome = clear_uniform(bids, asks)
    return priority(bids, is_ask=False), priority(asks, is_ask=True), outcome.price_wei_per_wh, outcome.volume_wh


def _supply_conserved(m: Market) -> bool:
    held = m.read("GridToken", "balanceOf", m.addresses.settlement)
    owed = sum(m.read("Settlement", "credit_wei", a) for a in [w.address for w in m.prosumers] + [m.operator.address])
    return owed + m.read("Settlement", "pool_wei") + m.read("Settlement", "penalty_pool_wei") == held


# Each example deploys a market: shrinking a failure would take minutes.
NO_SHRINK = (Phase.explicit, Phase.reuse, Phase.generate)
ORDERS = st.lists(st.tuples(st.booleans(), st.integers(1, 2000), st.integers(1, 40)), min_size=1, max_size=6)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK)
@given(orders=ORDERS)
def test_a_verified_batch_clears_like_one_transaction_each_and_locks_only_the_obligation(orders):
    direct, batched = new_market(6), new_market(6)
    raw = [mk.submit_order(direct.prosumers[i], direct.addresses, 1, is_ask=a, energy_wh=q, price_wei_per_wh=p * CENT)
           for i, (a, q, p) in enumerate(orders)]
    assert all(r.ok for r in direct.mine(raw))
    book = mk.book(direct.chain, direct.addresses, 1)
    assert direct.clear(1, book).ok
    for w in direct.prosumers:
        assert direct.mine([mk.release(direct.operator, direct.addresses, 1, w.address)])[0].ok
    receipt = _clear(batched, 1, [_signed(batched, i, 1, a, q, p * CENT) for i, (a, q, p) in enumerate(orders)])
    assert receipt.ok, receipt.revert_reason
    assert _events(batched, receipt, "OrderRejected") == []
    for name in ("clearing_price_wei_per_wh", "cleared_volume_wh"):
        assert batched.read("DoubleAuction", name, 1) == direct.read("DoubleAuction", name, 1)
    assert _positions(batched, 1) == _positions(direct, 1)
    assert _credits(batched) == _credits(direct)        # the lock is the obligation, as after release
    assert batched.read("DoubleAuction", "order_count", 1, False) == 0     # the orders live in calldata only
    assert _supply_conserved(batched)


def test_forged_altered_replayed_and_roleless_orders_are_skipped_with_their_reasons():
    m = new_market(6)
    before = _credits(m)
    honest_bid, honest_ask = _signed(m, 0, 1, False, 1000, 20 * CENT), _signed(m, 1, 1, True, 800, 10 * CENT)
    forged = replace(_signed(m, 2, 1, True, 500, CENT), r=b"\x01" * 32)
    altered = replace(_signed(m, 3, 1, True, 100, 10 * CENT), energy_wh=5000)
    replayed = replace(_signed(m, 4, 0, True, 500, CENT), interval=1)    # signed for interval 0
    outsider = _signed(m, 0, 1, True, 500, CENT, account=m.outsider.account)
    malleable = replace(_signed(m, 5, 1, True, 500, CENT), v=29)
    signed = [honest_bid, forged, altered, replayed, outsider, honest_bid, malleable, honest_ask]
    assert mk.signed_order_problems(m.chain, m.addresses, 1, signed) == [
        "", "access: caller is not a prosumer", "access: caller is not a prosumer",
        "access: caller is not a prosumer", "access: caller is not a prosumer", "book: order exists",
        "book: bad signature", ""]
    receipt = _clear(m, 1, signed)
    assert receipt.ok, receipt.revert_reason
    rejected = [(e["index"], e["reason"]) for e in _events(m, receipt, "OrderRejected")]
    assert rejected == [(1, "access: caller is not a prosumer"), (2, "access: caller is not a prosumer"),
                        (3, "access: caller is not a prosumer"), (4, "access: caller is not a prosumer"),
                        (5, "book: order exists"), (6, "book: bad signature")]
    assert _positions(m, 1)[m.prosumers[0].address] == -800
    assert _positions(m, 1)[m.prosumers[1].address] == 800
    price = m.read("DoubleAuction", "clearing_price_wei_per_wh", 1)
    after = _credits(m)
    fee = mk.read(m.chain, m.addresses.settlement, "Settlement", "escrow_wei", m.prosumers[0].address, 800, price)
    assert after[m.prosumers[0].address] == before[m.prosumers[0].address] - fee
    assert all(after[w.address] == before[w.address] for w in m.prosumers[1:])
    assert _supply_conserved(m)


def test_a_buyer_without_collateral_is_skipped_and_locks_nothing():
    m = new_market(3)
    before = _credits(m)
    # Four direct bids at the cap lock nearly all of prosumer 1's credit; its batch bid does not fit.
    direct = m.mine([mk.submit_order(m.prosumers[1], m.addresses, k, is_ask=False, energy_wh=24_000,
                                     price_wei_per_wh=100 * CENT) for k in range(2, 6)])
    assert all(r.ok for r in direct)
    locked = _credits(m)
    assert locked[m.prosumers[1].address] < before[m.prosumers[1].address]
    costly, ask = _signed(m, 1, 1, False, 24_000, 100 * CENT), _signed(m, 0, 1, True, 1000, 10 * CENT)
    receipt = _clear(m, 1, [costly, ask])
    assert receipt.ok, receipt.revert_reason
    assert [(e["index"], e["reason"]) for e in _events(m, receipt, "OrderRejected")] == [
        (0, "settlement: credit below escrow")]
    assert m.read("DoubleAuction", "cleared_volume_wh", 1) == 0
    assert _credits(m) == locked
    assert _supply_conserved(m)


def test_the_book_includes_orders_sent_directly_and_a_relay_cannot_leave_one_out():
    m = new_market(4)
    (direct,) = m.mine([mk.submit_order(m.prosumers[2], m.addresses, 1, is_ask=True, energy_wh=600,
                                        price_wei_per_wh=5 * CENT)])
    assert direct.ok
    signed = [_signed(m, 0, 1, False, 1000, 20 * CENT), _signed(m, 1, 1, True, 1000, 10 * CENT)]
    accepted = _accepted(m, 1, signed)
    stored = mk.book(m.chain, m.addresses, 1)
    bids, asks = batch_book((), (), [(s.is_ask, Order(a, s.energy_wh, s.price_wei_per_wh)) for a, s in accepted])
    censoring = _clear(m, 1, signed, claim=_claim(bids, asks))           # the relay omits the direct ask
    assert reverted(censoring, "book: order length mismatch")
    bids, asks = batch_book(stored.bids, stored.asks,
                            [(s.is_ask, Order(a, s.energy_wh, s.price_wei_per_wh)) for a, s in accepted])
    assert bids and len(asks) == 2
    receipt = _clear(m, 1, signed)
    assert receipt.ok, receipt.revert_reason
    positions = _positions(m, 1)
    assert positions[m.prosumers[2].address] == 600                      # the cheapest ask, sent directly, sells
    assert positions[m.prosumers[1].address] == 400
    assert positions[m.prosumers[0].address] == -1000
    # The direct seller's own order from the batch would have been refused as a second order.
    again = _signed(m, 2, 2, True, 100, CENT)
    assert m.mine([mk.submit_order(m.prosumers[2], m.addresses, 2, is_ask=True, energy_wh=100,
                                   price_wei_per_wh=CENT)])[0].ok
    assert mk.signed_order_problems(m.chain, m.addresses, 2, [again]) == ["book: order exists"]


def _lying_claims(bids, asks) -> dict[str, tuple[tuple, str]]:
    bid_order, ask_order, price, volume = _claim(bids, asks)
    return {
        "wrong price": ((bid_order, ask_order, price + 1, volume), "auction: wrong clearing price"),
        "over-filled": ((bid_order, ask_order, price, volume + 1), "auction: wrong cleared volume"),
        "out of sort order": ((bid_order[::-1], ask_order, price, volume), "book: order not sorted"),
        "omitted order": ((bid_order[:-1], ask_order, price, volume), "book: order length mismatch"),
        "repeated order": (([bid_order[0]] * len(bid_order), ask_order, price, volume), "book: order index repeated"),
    }


@pytest.mark.parametrize("lie", list(_lying_claims([Order("b0", 1, 2), Order("b1", 1, 1)], [Order("a", 1, 1)])))
def test_a_clearing_that_lies_reverts_with_its_reason_and_moves_nothing(lie):
    m = new_market(4)
    before = _credits(m)
    signed = [_signed(m, 0, 1, False, 1000, 30 * CENT), _signed(m, 1, 1, False, 700, 20 * CENT),
              _signed(m, 2, 1, True, 900, 10 * CENT)]
    accepted = _accepted(m, 1, signed)
    bids, asks = batch_book((), (), [(s.is_ask, Order(a, s.energy_wh, s.price_wei_per_wh)) for a, s in accepted])
    claim, reason = _lying_claims(bids, asks)[lie]
    assert reverted(_clear(m, 1, signed, claim=claim), reason)
    assert not m.read("DoubleAuction", "cleared", 1)
    assert _credits(m) == before
    assert _clear(m, 1, signed).ok                                       # the honest clearing still goes through


def test_only_participants_clear_and_a_cleared_interval_takes_no_batch():
    m = new_market(3)
    signed = [_signed(m, 0, 1, False, 1000, 20 * CENT), _signed(m, 1, 1, True, 1000, 10 * CENT)]
    (early,) = m.mine([mk.clear_signed(m.operator, m.addresses, 1, mk.book(m.chain, m.addresses, 1), signed,
                                       _accepted(m, 1, signed))], m.gate(1) - 1)
    assert reverted(early, "gate: gate open")
    assert reverted(_clear(m, 1, signed, sender=m.outsider), "access: caller is neither prosumer nor operator")
    # A participant who clears first without the relay's orders shuts them out: they trade nothing and lose nothing.
    before = _credits(m)
    assert m.mine([mk.clear(m.prosumers[2], m.addresses, 1, mk.book(m.chain, m.addresses, 1))])[0].ok
    assert reverted(_clear(m, 1, signed), "book: already cleared")
    assert _credits(m) == before
    assert _positions(m, 1) == {w.address: 0 for w in m.prosumers}


PERTURBATIONS = ("price", "volume", "swap", "drop")


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow], phases=NO_SHRINK)
@given(orders=st.lists(st.tuples(st.booleans(), st.integers(1, 2000), st.integers(1, 40)), min_size=2, max_size=6),
       perturbation=st.sampled_from(PERTURBATIONS), data=st.data())
def test_the_contract_accepts_the_reference_clearing_and_refuses_any_single_perturbation(orders, perturbation, data):
    m = new_market(6)
    signed = [_signed(m, i, 1, a, q, p * CENT) for i, (a, q, p) in enumerate(orders)]
    accepted = _accepted(m, 1, signed)
    bids, asks = batch_book((), (), [(s.is_ask, Order(a, s.energy_wh, s.price_wei_per_wh)) for a, s in accepted])
    bid_order, ask_order, price, volume = _claim(bids, asks)
    claim = [bid_order, ask_order, price, volume]
    if perturbation == "price":
        claim[2] = price + data.draw(st.sampled_from([-1, 1])) if price > 0 else 1
    elif perturbation == "volume":
        claim[3] = volume + 1
    else:
        sides = [s for s in (0, 1) if len(claim[s]) >= (2 if perturbation == "swap" else 1)]
        assume(sides)   # a swap needs two orders on a side (one bid and one ask have none to swap)
        side = data.draw(st.sampled_from(sides))
        ranked = list(claim[side])
        if perturbation == "swap":
            k = data.draw(st.integers(0, len(ranked) - 2))
            ranked[k], ranked[k + 1] = ranked[k + 1], ranked[k]
        else:
            del ranked[data.draw(st.integers(0, len(ranked) - 1))]
        claim[side] = ranked
    assert not _clear(m, 1, signed, claim=tuple(claim)).ok
    assert not m.read("DoubleAuction", "cleared", 1)
    assert _clear(m, 1, signed, claim=(bid_order, ask_order, price, volume)).ok
