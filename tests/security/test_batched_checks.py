"""The batch-wide checks of relayed orders (issue 12): one registry and two settlement calls per batch.

`book._submit_signed_orders` asks the registry for every signer's role at
once (`Registry.roles_of`) and the settlement for every order's debt, size
and credit at once (`Settlement.order_problems`), then locks the accepted
bids in one call (`Settlement.lock_bids`, the mechanism only). Each attack
puts bad orders into one batch with honest ones and asserts the exact
reason of each, that the honest orders are placed and clear as if sent
directly, and that honest accounts lost nothing.
"""

from dataclasses import replace

from gridledger.contracts import market as mk
from gridledger.contracts.reference import clear_uniform
from gridledger.contracts.typed_data import sign_order
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import Market, new_market, reverted

EMPTY = "0x" + "00" * 20
ROLE_OPERATOR, ROLE_PROSUMER, ROLE_METER = 1, 2, 4


def _signed(m: Market, wallet, interval: int, is_ask: bool, energy_wh: int, price: int):
    return sign_order(wallet.account, m.chain.chain_id, m.addresses.auction, interval=interval, is_ask=is_ask,
                      energy_wh=energy_wh, price_wei_per_wh=price)


def _relay(m: Market, interval: int, signed):
    (receipt,) = m.mine([mk.submit_signed_orders(m.operator, m.addresses, interval, signed)])
    assert receipt.ok, receipt.revert_reason
    events = [m.chain.decode(log) for log in receipt.logs]
    return [(e.args["index"], e.args["signer"], e.args["reason"]) for e in events if e.event == "OrderRejected"]


def _free(m: Market) -> dict[str, int]:
    return {w.address: m.read("Settlement", "free_credit_wei", w.address) for w in m.prosumers}


def _exhaust_credit(m: Market, wallet) -> None:
    """Four direct bids at the cap in intervals 2..5 lock nearly all of `wallet`'s credit."""
    assert all(r.ok for r in m.mine([mk.submit_order(wallet, m.addresses, k, is_ask=False, energy_wh=24_000,
                                                     price_wei_per_wh=100 * CENT) for k in range(2, 6)]))


def test_one_batch_of_every_bad_order_skips_each_with_its_reason_and_the_honest_ones_clear_as_if_sent_directly():
    m, direct = new_market(6), new_market(6)
    for market in (m, direct):
        _exhaust_credit(market, market.prosumers[4])
    before = _free(m)
    p = m.prosumers
    honest = [_signed(m, p[0], 1, False, 1000, 20 * CENT), _signed(m, p[1], 1, True, 800, 10 * CENT),
              _signed(m, p[5], 1, True, 500, 15 * CENT)]
    batch = [
        honest[0],
        _signed(m, m.outsider, 1, True, 1000, CENT),                               # 1 forged: no role
        replace(_signed(m, p[2], 1, True, 100, 10 * CENT), energy_wh=5000),       # 2 altered amount
        honest[1],
        honest[0],                                                                # 4 replayed
        replace(_signed(m, p[3], 2, True, 300, 10 * CENT), interval=1),           # 5 signed for interval 2
        _signed(m, m.meters[2], 1, True, 300, 10 * CENT),                         # 6 a meter's key: no prosumer role
        _signed(m, p[4], 1, False, 24_000, 100 * CENT),                           # 7 no collateral left
        _signed(m, p[3], 1, False, 10**6, 20 * CENT),                             # 8 above its meter rating
        honest[2],
    ]
    rejected = _relay(m, 1, batch)
    # The book's own refusals come first (as it meets them), then the settlement's, each in batch order.
    assert [(i, reason) for i, _, reason in rejected] == [
        (1, "access: caller is not a prosumer"),
        (2, "access: caller is not a prosumer"),
        (4, "book: order exists"),
        (5, "access: caller is not a prosumer"),
        (6, "access: caller is not a prosumer"),
        (7, "settlement: credit below escrow"),
        (8, "escrow: bid above meter rating"),
    ]
    signers = {i: signer for i, signer, _ in rejected}
    assert signers[1] == m.outsider.address and signers[6] == m.meters[2].address
    assert signers[7] == p[4].address and signers[8] == p[3].address
    assert {signers[2], signers[5]}.isdisjoint({w.address for w in p})
    for o, w in zip(honest, (direct.prosumers[0], direct.prosumers[1], direct.prosumers[5])):
        (r,) = direct.mine([mk.submit_order(w, direct.addresses, 1, is_ask=o.is_ask, energy_wh=o.energy_wh,
                                            price_wei_per_wh=o.price_wei_per_wh)])
        assert r.ok, r.revert_reason
    book = mk.book(m.chain, m.addresses, 1)
    assert book == mk.book(direct.chain, direct.addresses, 1)
    assert [o.account for o in book.bids] == [p[0].address] and [o.account for o in book.asks] == [p[1].address,
                                                                                                    p[5].address]
    after = _free(m)
    assert after == _free(direct)
    escrow = m.read("Settlement", "escrow_wei", p[0].address, 1000, 20 * CENT)
    assert after[p[0].address] == before[p[0].address] - escrow
    assert all(after[w.address] == before[w.address] for w in p[1:])
    assert m.read("Settlement", "lock_wei", 1, p[4].address) == 0
    outcome = clear_uniform(list(book.bids), list(book.asks))
    for market in (m, direct):
        assert market.clear(1, book).ok
        assert market.read("DoubleAuction", "clearing_price_wei_per_wh", 1) == outcome.price_wei_per_wh
        assert [market.read("DoubleAuction", "position_wh", 1, w.address) for w in market.prosumers] == [
            outcome.positions_wh.get(w, 0) for w in (x.address for x in p)]


def test_a_second_order_of_one_signer_in_a_batch_is_refused_even_when_the_settlement_refuses_the_first():
    """The book marks a signer's order before the settlement's batch-wide check, so its second order in the
    batch is refused as existing; the first, refused by the settlement, leaves no order and no lock, and the
    prosumer can still place its order directly."""
    m = new_market(2)
    before = _free(m)
    greedy = _signed(m, m.prosumers[0], 1, False, 10**6, 20 * CENT)
    modest = _signed(m, m.prosumers[0], 1, False, 1000, 20 * CENT)
    assert _relay(m, 1, [greedy, modest]) == [(1, m.prosumers[0].address, "book: order exists"),
                                              (0, m.prosumers[0].address, "escrow: bid above meter rating")]
    assert not m.read("DoubleAuction", "has_order", 1, m.prosumers[0].address)
    assert _free(m) == before
    (direct,) = m.mine([mk.submit_order(m.prosumers[0], m.addresses, 1, is_ask=False, energy_wh=1000,
                                        price_wei_per_wh=20 * CENT)])
    assert direct.ok, direct.revert_reason


def test_only_the_mechanism_locks_a_batch_of_bids():
    m = new_market(2)
    before = _free(m)
    word = 1000 | (20 * CENT) << 40
    for caller in (m.prosumers[0], m.operator, m.outsider, m.prosumers[1]):
        (r,) = m.mine([m.call_tx(caller, "Settlement", "lock_bids", 1, [m.prosumers[1].address], [word])])
        assert reverted(r, "settlement: caller is not the mechanism")
    assert _free(m) == before
    assert m.read("Settlement", "lock_wei", 1, m.prosumers[1].address) == 0


def test_order_problems_judges_each_order_as_the_one_by_one_checks_do():
    m = new_market(3, min_order_wh=10)
    _exhaust_credit(m, m.prosumers[2])
    p = [w.address for w in m.prosumers]
    orders = [(p[0], False, 1000, 20 * CENT), (p[0], True, 5, 10 * CENT), (p[1], True, 10**6, 10 * CENT),
              (p[1], False, 10**6, 10 * CENT), (p[2], False, 24_000, 100 * CENT), (p[2], True, 24_000, 100 * CENT)]
    words = [q | price << 40 | int(is_ask) << 160 for _, is_ask, q, price in orders]
    codes = m.read("Settlement", "order_problems", 1, [a for a, *_ in orders], words)
    expected = []
    for account, is_ask, q, price in orders:
        if m.read("Settlement", "is_debtor", account):
            expected.append(1)
        elif q < m.read("Settlement", "min_order_wh"):
            expected.append(2)
        elif q > m.read("Settlement", "order_limit_wh", account, is_ask):
            expected.append(3 if is_ask else 4)
        elif not is_ask and not m.read("Settlement", "can_lock", account, q, price):
            expected.append(5)
        else:
            expected.append(0)
    assert list(codes) == expected == [0, 2, 3, 4, 5, 0]


def test_the_batch_lookups_equal_the_one_by_one_lookups():
    m = new_market(3)
    accounts = [m.operator.address, *(w.address for w in m.prosumers), *(w.address for w in m.meters),
                m.outsider.address, EMPTY]
    roles = m.read("Registry", "roles_of", accounts)
    assert list(roles) == [m.read("Registry", "roles", a) for a in accounts]
    assert [r & ROLE_PROSUMER != 0 for r in roles] == [m.read("Registry", "has_role", a, ROLE_PROSUMER)
                                                       for a in accounts]
    assert roles[0] == ROLE_OPERATOR and set(roles[4:7]) == {ROLE_METER}
    prosumers = m.read("Registry", "prosumers_of_meters", accounts)
    assert list(prosumers) == [m.read("Registry", "prosumer_of_meter", a) for a in accounts]
    assert list(prosumers[4:7]) == [w.address for w in m.prosumers]
