"""Relayed batches of EIP-712 signed orders and readings (issue 12): a relay can neither forge, alter nor censor.

Each attack puts a bad item into a batch next to honest ones and asserts
the exact reason of its ``OrderRejected`` / ``ReadingRejected`` event, that
the honest items were placed or settled as if sent directly, and that
honest accounts lost nothing.
"""

from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import clear_uniform
from gridledger.contracts.typed_data import order_signer, reading_signer, sign_order, sign_reading
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import ENDOWMENT_WEI, Market, new_market

SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
EMPTY = "0x" + "00" * 20


def _signed(m: Market, i: int, interval: int, is_ask: bool, energy_wh: int, price: int, *, chain_id=None,
            contract=None):
    account = m.prosumers[i].account
    return sign_order(account, chain_id or m.chain.chain_id, contract or m.addresses.auction, interval=interval,
                      is_ask=is_ask, energy_wh=energy_wh, price_wei_per_wh=price)


def _relay(m: Market, interval: int, signed, timestamp=None):
    (receipt,) = m.mine([mk.submit_signed_orders(m.operator, m.addresses, interval, signed)], timestamp)
    assert receipt.ok, receipt.revert_reason
    events = [m.chain.decode(log) for log in receipt.logs]
    return [(e.args["index"], e.args["signer"], e.args["reason"]) for e in events if e.event == "OrderRejected"]


def _credits(m: Market) -> dict[str, int]:
    return {w.address: m.read("Settlement", "free_credit_wei", w.address) for w in m.prosumers}


def test_eth_account_recovers_the_signer_the_contract_recovers():
    m = new_market(2)
    signed = _signed(m, 0, 1, True, 500, 10 * CENT)
    assert order_signer(m.chain.chain_id, m.addresses.auction, signed) == m.prosumers[0].address
    assert _relay(m, 1, [signed]) == []
    assert m.read("DoubleAuction", "has_order", 1, m.prosumers[0].address)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(orders=st.lists(st.tuples(st.booleans(), st.integers(1, 2000), st.integers(1, 60)), min_size=1, max_size=6))
def test_a_relayed_batch_places_the_same_book_locks_and_clearing_as_one_transaction_each(orders):
    direct, relayed = new_market(6), new_market(6)
    raw = [mk.submit_order(direct.prosumers[i], direct.addresses, 1, is_ask=a, energy_wh=q, price_wei_per_wh=p * CENT)
           for i, (a, q, p) in enumerate(orders)]
    assert all(r.ok for r in direct.mine(raw))
    assert _relay(relayed, 1, [_signed(relayed, i, 1, a, q, p * CENT) for i, (a, q, p) in enumerate(orders)]) == []
    book = mk.book(direct.chain, direct.addresses, 1)
    assert mk.book(relayed.chain, relayed.addresses, 1) == book
    assert _credits(relayed) == _credits(direct)
    for m in (direct, relayed):
        assert m.clear(1, book).ok
    outcome = clear_uniform(list(book.bids), list(book.asks))
    for m in (direct, relayed):
        assert m.read("DoubleAuction", "clearing_price_wei_per_wh", 1) == outcome.price_wei_per_wh
        for w in m.prosumers:
            assert m.read("DoubleAuction", "position_wh", 1, w.address) == outcome.positions_wh.get(w.address, 0)


def test_forged_altered_foreign_and_replayed_orders_are_skipped_with_their_reasons_and_the_rest_placed():
    m = new_market(6)
    before = _credits(m)
    honest = _signed(m, 0, 1, False, 1000, 20 * CENT)
    forged = sign_order(m.outsider.account, m.chain.chain_id, m.addresses.auction, interval=1, is_ask=True,
                        energy_wh=1000, price_wei_per_wh=CENT)
    altered = replace(_signed(m, 1, 1, True, 100, 10 * CENT), energy_wh=5000)
    other_chain = _signed(m, 2, 1, True, 100, 10 * CENT, chain_id=m.chain.chain_id + 1)
    other_contract = _signed(m, 3, 1, True, 100, 10 * CENT, contract=m.addresses.settlement)
    last = _signed(m, 4, 1, True, 800, 10 * CENT)
    rejected = _relay(m, 1, [honest, forged, altered, other_chain, other_contract, honest, last])
    assert [(i, reason) for i, _, reason in rejected] == [
        (1, "access: caller is not a prosumer"),
        (2, "access: caller is not a prosumer"),
        (3, "access: caller is not a prosumer"),
        (4, "access: caller is not a prosumer"),
        (5, "book: order exists"),
    ]
    assert rejected[0][1] == m.outsider.address
    prosumers = {w.address for w in m.prosumers}
    assert all(signer not in prosumers for _, signer, _ in rejected[1:4])
    book = mk.book(m.chain, m.addresses, 1)
    assert [(o.account, o.energy_wh) for o in book.bids] == [(m.prosumers[0].address, 1000)]
    assert [(o.account, o.energy_wh) for o in book.asks] == [(m.prosumers[4].address, 800)]
    after = _credits(m)
    locked = mk.read(m.chain, m.addresses.settlement, "Settlement", "escrow_wei", m.prosumers[0].address, 1000,
                     20 * CENT)
    assert after[m.prosumers[0].address] == before[m.prosumers[0].address] - locked
    assert all(after[w.address] == before[w.address] for w in m.prosumers[1:])


def test_a_malleable_signature_is_refused_as_a_bad_signature():
    m = new_market(2)
    signed = _signed(m, 0, 1, True, 500, 10 * CENT)
    high_s = (SECP256K1_N - int.from_bytes(signed.s, "big")).to_bytes(32, "big")
    twin = replace(signed, s=high_s, v=55 - signed.v)
    assert _relay(m, 1, [twin, replace(signed, v=29)]) == [(0, EMPTY, "book: bad signature"),
                                                          (1, EMPTY, "book: bad signature")]
    assert not m.read("DoubleAuction", "has_order", 1, m.prosumers[0].address)


def test_an_order_relayed_after_its_gate_or_beyond_its_credit_is_skipped_and_locks_nothing():
    m = new_market(3)
    before = _credits(m)
    late = _signed(m, 0, 0, True, 500, 10 * CENT)
    assert _relay(m, 0, [late], m.gate(0)) == [(0, m.prosumers[0].address, "gate: gate closed")]
    greedy = _signed(m, 1, 1, False, 10**6, 100 * CENT)
    assert mk.read(m.chain, m.addresses.settlement, "Settlement", "escrow_wei", m.prosumers[1].address, 10**6,
                   100 * CENT) > ENDOWMENT_WEI
    assert _relay(m, 1, [greedy]) == [(0, m.prosumers[1].address, "escrow: bid above meter rating")]
    assert _credits(m) == before
    # Four direct bids at the cap lock nearly all of prosumer 1's credit; a fifth, relayed, does not fit.
    direct = m.mine([mk.submit_order(m.prosumers[1], m.addresses, k, is_ask=False, energy_wh=24_000,
                                     price_wei_per_wh=100 * CENT) for k in range(2, 6)])
    assert all(r.ok for r in direct)
    locked = _credits(m)
    costly = _signed(m, 1, 6, False, 24_000, 100 * CENT)
    assert _relay(m, 6, [costly]) == [(0, m.prosumers[1].address, "settlement: credit below escrow")]
    assert _credits(m) == locked
    assert not m.read("DoubleAuction", "has_order", 6, m.prosumers[1].address)


def test_an_order_a_relay_leaves_out_is_sent_directly_and_clears():
    m = new_market(3)
    buyer, seller = _signed(m, 0, 1, False, 1000, 20 * CENT), _signed(m, 1, 1, True, 1000, 10 * CENT)
    assert _relay(m, 1, [buyer]) == []                                  # the relay censors the seller's ask
    (direct,) = m.mine([mk.submit_order(m.prosumers[1], m.addresses, 1, is_ask=seller.is_ask,
                                        energy_wh=seller.energy_wh, price_wei_per_wh=seller.price_wei_per_wh)])
    assert direct.ok
    assert m.clear(1, mk.book(m.chain, m.addresses, 1)).ok
    assert m.read("DoubleAuction", "position_wh", 1, m.prosumers[1].address) == 1000
    assert m.read("DoubleAuction", "position_wh", 1, m.prosumers[0].address) == -1000


def test_a_relay_cannot_place_an_order_its_signer_already_placed_directly():
    m = new_market(2)
    signed = _signed(m, 0, 1, True, 500, 10 * CENT)
    (direct,) = m.mine([mk.submit_order(m.prosumers[0], m.addresses, 1, is_ask=True, energy_wh=500,
                                        price_wei_per_wh=10 * CENT)])
    assert direct.ok
    assert _relay(m, 1, [signed]) == [(0, m.prosumers[0].address, "book: order exists")]


def _cleared_market() -> tuple[Market, Market]:
    """Two identical markets with a matched bid (prosumer 0) and ask (prosumer 1) cleared in interval 1."""
    markets = []
    for _ in range(2):
        m = new_market(4)
        assert all(r.ok for r in m.mine([
            mk.submit_order(m.prosumers[0], m.addresses, 1, is_ask=False, energy_wh=1000, price_wei_per_wh=20 * CENT),
            mk.submit_order(m.prosumers[1], m.addresses, 1, is_ask=True, energy_wh=1000, price_wei_per_wh=10 * CENT),
        ]))
        assert m.clear(1, mk.book(m.chain, m.addresses, 1)).ok
        markets.append(m)
    return markets[0], markets[1]


READINGS = [(1200, 0, 0, 0), (0, 900, 1000, 0), (300, 0, 0, 0), (0, 200, 200, 0)]


def _reading(m: Market, signer, interval: int, registers):
    imp, exp, pv, bat = registers
    return sign_reading(signer.account, m.chain.chain_id, m.addresses.settlement, interval=interval, import_wh=imp,
                        export_wh=exp, pv_wh=pv, battery_wh=bat)


def _relay_readings(m: Market, interval: int, signed):
    (receipt,) = m.mine([mk.post_signed_readings(m.operator, m.addresses, interval, signed)], m.end(interval))
    assert receipt.ok, receipt.revert_reason
    events = [m.chain.decode(log) for log in receipt.logs]
    return [(e.args["index"], e.args["signer"], e.args["reason"]) for e in events if e.event == "ReadingRejected"]


def _all_credits(m: Market) -> dict[str, int]:
    return {a: m.read("Settlement", "credit_wei", a) for a in [m.operator.address, *(w.address for w in m.prosumers)]}


def _conserved(m: Market) -> bool:
    held = m.read("GridToken", "balanceOf", m.addresses.settlement)
    return sum(_all_credits(m).values()) + m.read("Settlement", "pool_wei") + m.read(
        "Settlement", "penalty_pool_wei") == held


def test_relayed_readings_settle_every_account_as_one_transaction_each():
    direct, relayed = _cleared_market()
    raw = [mk.post_reading(meter, direct.addresses, 1, import_wh=i, export_wh=e, pv_wh=p, battery_wh=b)
           for meter, (i, e, p, b) in zip(direct.meters, READINGS)]
    assert all(r.ok for r in direct.mine(raw, direct.end(1)))
    signed = [_reading(relayed, meter, 1, r) for meter, r in zip(relayed.meters, READINGS)]
    assert reading_signer(relayed.chain.chain_id, relayed.addresses.settlement, signed[0]) == relayed.meters[0].address
    assert _relay_readings(relayed, 1, signed) == []
    assert _all_credits(relayed) == _all_credits(direct)
    assert _conserved(relayed)


def test_forged_altered_duplicate_and_impossible_readings_are_skipped_with_reasons_and_the_rest_settle():
    reference, m = _cleared_market()
    honest = [_reading(m, m.meters[i], 1, READINGS[i]) for i in (0, 1)]
    by_prosumer = _reading(m, m.prosumers[2], 1, READINGS[2])           # the prosumer's key, not its meter's
    altered = replace(_reading(m, m.meters[3], 1, READINGS[3]), import_wh=0, export_wh=0)
    impossible = _reading(m, m.meters[3], 1, (0, 5000, 0, 0))           # export without PV or battery
    rejected = _relay_readings(m, 1, [*honest, by_prosumer, altered, honest[0], impossible])
    assert [(i, reason) for i, _, reason in rejected] == [
        (2, "settlement: caller is not a bound meter"),
        (3, "settlement: caller is not a bound meter"),
        (4, "settlement: reading exists"),
        (5, "settlement: export above PV and battery"),
    ]
    assert rejected[0][1] == m.prosumers[2].address and rejected[3][1] == m.meters[3].address
    raw = [mk.post_reading(meter, reference.addresses, 1, import_wh=i, export_wh=e, pv_wh=p, battery_wh=b)
           for meter, (i, e, p, b) in zip(reference.meters[:2], READINGS[:2])]
    assert all(r.ok for r in reference.mine(raw, reference.end(1)))
    assert _all_credits(m) == _all_credits(reference)
    assert _conserved(m)


def test_a_reading_signed_for_another_interval_is_not_a_reading_of_this_one():
    _, m = _cleared_market()
    moved = replace(_reading(m, m.meters[0], 2, READINGS[0]), interval=1)
    (index, signer, reason), = _relay_readings(m, 1, [moved])
    assert (index, reason) == (0, "settlement: caller is not a bound meter")
    assert signer != m.meters[0].address


def test_the_merit_order_takes_relayed_offers_as_direct_ones_and_skips_a_signed_bid():
    """Offers relayed in a batch dispatch as offers sent one by one; a bid, which only the operator's demand is, is refused."""
    direct, relayed = new_market(4, mechanism="merit-order"), new_market(4, mechanism="merit-order")
    offers = [(700, 12), (300, 8), (900, 15)]
    for m in (direct, relayed):
        (posted,) = m.mine([mk.post_demand(m.operator, m.addresses, 1, demand_wh=1200)])
        assert posted.ok, posted.revert_reason
    raw = [mk.submit_order(direct.prosumers[i], direct.addresses, 1, is_ask=True, energy_wh=q, price_wei_per_wh=p * CENT)
           for i, (q, p) in enumerate(offers)]
    assert all(r.ok for r in direct.mine(raw))
    before = _credits(relayed)
    signed = [_signed(relayed, i, 1, True, q, p * CENT) for i, (q, p) in enumerate(offers)]
    bid = _signed(relayed, 3, 1, False, 500, 20 * CENT)
    assert _relay(relayed, 1, [*signed, bid]) == [(3, relayed.prosumers[3].address, "book: offers only")]
    assert _credits(relayed) == before
    book = mk.book(direct.chain, direct.addresses, 1)
    assert mk.book(relayed.chain, relayed.addresses, 1) == book and not book.bids
    for m in (direct, relayed):
        assert m.clear(1, book).ok
    positions = [[m.read("MeritOrder", "position_wh", 1, w.address) for w in m.prosumers] for m in (direct, relayed)]
    assert positions[0] == positions[1] == [700, 300, 200, 0]   # 300 at 8, 700 at 12, 200 of 900 at 15
    assert (relayed.read("MeritOrder", "clearing_price_wei_per_wh", 1)
            == direct.read("MeritOrder", "clearing_price_wei_per_wh", 1) == 15 * CENT)


def test_the_merit_order_skips_forged_altered_foreign_and_replayed_offers_with_their_reasons():
    """The attacks of the double-auction case, on the merit order's offers: each skipped, the honest ones placed."""
    m = new_market(6, mechanism="merit-order")
    (posted,) = m.mine([mk.post_demand(m.operator, m.addresses, 1, demand_wh=1500)])
    assert posted.ok, posted.revert_reason
    before = _credits(m)
    honest = _signed(m, 0, 1, True, 1000, 12 * CENT)
    forged = sign_order(m.outsider.account, m.chain.chain_id, m.addresses.auction, interval=1, is_ask=True,
                        energy_wh=1000, price_wei_per_wh=CENT)
    altered = replace(_signed(m, 1, 1, True, 100, 10 * CENT), price_wei_per_wh=CENT)
    other_chain = _signed(m, 2, 1, True, 100, 10 * CENT, chain_id=m.chain.chain_id + 1)
    other_contract = _signed(m, 3, 1, True, 100, 10 * CENT, contract=m.addresses.settlement)
    last = _signed(m, 4, 1, True, 800, 15 * CENT)
    rejected = _relay(m, 1, [honest, forged, altered, other_chain, other_contract, honest, last])
    assert [(i, reason) for i, _, reason in rejected] == [
        (1, "access: caller is not a prosumer"),
        (2, "access: caller is not a prosumer"),
        (3, "access: caller is not a prosumer"),
        (4, "access: caller is not a prosumer"),
        (5, "book: order exists"),
    ]
    assert rejected[0][1] == m.outsider.address
    book = mk.book(m.chain, m.addresses, 1)
    assert not book.bids
    assert [(o.account, o.energy_wh) for o in book.asks] == [(m.prosumers[0].address, 1000),
                                                             (m.prosumers[4].address, 800)]
    assert _credits(m) == before
    assert m.clear(1, book).ok
    positions = [m.read("MeritOrder", "position_wh", 1, w.address) for w in m.prosumers]
    assert positions == [1000, 0, 0, 0, 500, 0]   # 1000 at 12, then 500 of 800 at 15; the others placed nothing
