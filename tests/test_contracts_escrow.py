"""Escrow: bids lock credit in Settlement, clearing releases it down to the obligation, readings pay out."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.mechanisms import LOT_AUCTION_CONTRACTS, MECHANISMS
from gridledger.contracts.reference import (
    clear_pay_as_bid,
    clear_uniform,
    escrow_wei,
    obligation_wei,
    released_wei,
    settle,
)
from gridledger.units import SECONDS_PER_HOUR

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    ENDOWMENT_WEI,
    GATE_CLOSURE_S,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    Market,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    PRICE_CAP_WEI_PER_WH,
    START_TIMESTAMP,
    TEST_LIMITS,
    new_market,
    reverted,
)

FEE = GRID_FEE_WEI_PER_WH
MAX_SIDE = 6


@pytest.fixture(scope="module")
def markets() -> dict[str, Market]:
    """One market per mechanism, built when first asked for."""
    return {}


def _market(markets: dict[str, Market], mechanism: str) -> Market:
    if mechanism not in markets:
        extra = {"bid_increment_wei_per_wh": CENT} if mechanism == "english" else {}
        markets[mechanism] = new_market(2 * MAX_SIDE, mechanism=mechanism, **extra)
    return markets[mechanism]


def _fresh_interval(market: Market) -> int:
    """An interval no test has used: the head moves to the gate of the last one handed out."""
    market.mine([], market.gate(market.next_interval()))
    return market.next_interval()


def _lock(market: Market, interval: int, account: str) -> int:
    return market.read("Settlement", "lock_wei", interval, account)


def _escrow_events(market: Market, receipt) -> list[tuple[str, str, int]]:
    """(event, account, amount_wei) of every Locked and Released event of ``receipt``."""
    decoded = [market.chain.decode(log) for log in receipt.logs]
    return [(e.event, e.args["account"], e.args["amount_wei"]) for e in decoded if e.event in ("Locked", "Released")]


def _assert_tokens_held(market: Market) -> None:
    """Token supply unchanged; the settlement holds exactly every credit plus the pool."""
    accounts = [market.operator.address, *(w.address for w in market.prosumers)]
    supply = market.read("GridToken", "totalSupply")
    assert supply == ENDOWMENT_WEI * len(market.prosumers) + OPERATOR_DEPOSIT_WEI
    held = market.read("GridToken", "balanceOf", market.addresses.settlement)
    credits = sum(market.read("Settlement", "credit_wei", a) for a in accounts)
    assert credits + market.read("Settlement", "pool_wei") + market.read("Settlement", "penalty_pool_wei") == held


# Hand-computed cases. CENT = 1e13 wei/Wh; the fee is 2 CENT/Wh, the cap 100 CENT/Wh.


def test_a_bid_locks_energy_times_price_plus_fee_and_an_ask_nothing(markets):
    market = _market(markets, "uniform-double-auction")
    interval = _fresh_interval(market)
    buyer, seller = market.prosumers[0], market.prosumers[1]
    free_before = market.read("Settlement", "free_credit_wei", buyer.address)
    receipts = market.mine(
        [
            mk.submit_order(buyer, market.addresses, interval, is_ask=False, energy_wh=100, price_wei_per_wh=20 * CENT),
            mk.submit_order(seller, market.addresses, interval, is_ask=True, energy_wh=100, price_wei_per_wh=10 * CENT),
        ]
    )
    assert all(r.ok for r in receipts)
    # 100 Wh * (20 + 2) CENT/Wh.
    assert _escrow_events(market, receipts[0]) == [("Locked", buyer.address, 2200 * CENT)]
    assert _escrow_events(market, receipts[1]) == []
    assert _lock(market, interval, buyer.address) == 2200 * CENT
    assert market.read("Settlement", "locked_wei", buyer.address) == 2200 * CENT
    assert market.read("Settlement", "free_credit_wei", buyer.address) == free_before - 2200 * CENT
    assert market.read("Settlement", "lock_wei", interval, seller.address) == 0
    assert market.read("Settlement", "escrow_wei", buyer.address, 100, 20 * CENT) == 2200 * CENT
    # The operator's escrow carries no fee.
    assert market.read("Settlement", "escrow_wei", market.operator.address, 100, 20 * CENT) == 2000 * CENT
    _assert_tokens_held(market)


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid"])
def test_release_returns_a_losers_lock_and_keeps_a_partial_fills_obligation(markets, mechanism):
    market = _market(markets, mechanism)
    interval = _fresh_interval(market)
    # b0 100 Wh at 30 and b1 100 Wh at 10 against a0 60 Wh at 20: b0 buys 60 at the
    # midpoint 25 (uniform and pay-as-bid alike, one pair), b1 buys nothing.
    book = market.submit_book(interval, [(100, 30 * CENT), (100, 10 * CENT)], [(60, 20 * CENT)])
    b0, b1, a0 = (order.account for order in (*book.bids, *book.asks))
    assert (_lock(market, interval, b0), _lock(market, interval, b1)) == (3200 * CENT, 1200 * CENT)
    (early,) = market.mine([mk.release(market.outsider, market.addresses, interval, b1)])
    assert reverted(early, "settlement: interval not cleared")
    assert market.clear(interval, book).ok

    receipts = market.mine([mk.release(market.outsider, market.addresses, interval, a) for a in (b0, b1, a0)])
    assert all(r.ok for r in receipts)
    # b0 owes 60 * 25 + 60 * 2 = 1620 CENT of its 3200; b1 owes nothing; a0 had no lock.
    assert [_escrow_events(market, r) for r in receipts] == [
        [("Released", b0, 1580 * CENT)],
        [("Released", b1, 1200 * CENT)],
        [],
    ]
    assert (_lock(market, interval, b0), _lock(market, interval, b1)) == (1620 * CENT, 0)
    (again,) = market.mine([mk.release(market.outsider, market.addresses, interval, b0)])
    assert again.ok and _escrow_events(market, again) == []

    # The reading releases the rest before the buyer pays.
    b0_meter = market.meters[0]
    (posted,) = market.mine(
        [mk.post_reading(b0_meter, market.addresses, interval, import_wh=60, export_wh=0, pv_wh=0, battery_wh=0)],
        market.end(interval),
    )
    assert posted.ok, posted.revert_reason
    assert _escrow_events(market, posted) == [("Released", b0, 1620 * CENT)]
    assert _lock(market, interval, b0) == 0
    _assert_tokens_held(market)


def test_withdraw_is_limited_to_free_credit(markets):
    market = _market(markets, "uniform-double-auction")
    interval = _fresh_interval(market)
    bidder = market.prosumers[2]
    (placed,) = market.mine(
        [mk.submit_order(bidder, market.addresses, interval, is_ask=False, energy_wh=1000, price_wei_per_wh=50 * CENT)]
    )
    assert placed.ok
    free = market.read("Settlement", "free_credit_wei", bidder.address)
    credit = market.read("Settlement", "credit_wei", bidder.address)
    assert free == credit - 52_000 * CENT
    (above,) = market.mine([market.call_tx(bidder, "Settlement", "withdraw", free + 1)])
    assert reverted(above, "settlement: withdraw above free credit")
    (exact,) = market.mine([market.call_tx(bidder, "Settlement", "withdraw", free)])
    assert exact.ok
    assert market.read("Settlement", "free_credit_wei", bidder.address) == 0
    assert market.read("Settlement", "credit_wei", bidder.address) == 52_000 * CENT
    _assert_tokens_held(market)


def test_a_bid_above_free_credit_reverts_and_locks_nothing(markets):
    market = _market(markets, "uniform-double-auction")
    interval = _fresh_interval(market)
    bidder = market.prosumers[3]
    price = PRICE_CAP_WEI_PER_WH
    # The bidder keeps less than its meter rating's escrow, so credit, not the rating, bounds its bid.
    free = market.read("Settlement", "free_credit_wei", bidder.address)
    kept_wei = 10_000 * (price + FEE) + 123
    assert market.mine([market.call_tx(bidder, "Settlement", "withdraw", free - kept_wei)])[0].ok
    free = kept_wei
    # The most energy whose escrow fits, and one Wh more.
    fitting_wh = free // (price + FEE)
    receipts = market.mine(
        [
            mk.submit_order(bidder, market.addresses, interval, is_ask=False, energy_wh=fitting_wh + 1,
                            price_wei_per_wh=price),
            mk.submit_order(bidder, market.addresses, interval, is_ask=False, energy_wh=fitting_wh,
                            price_wei_per_wh=price),
        ]
    )
    assert reverted(receipts[0], "settlement: credit below escrow")
    assert receipts[1].ok
    assert market.read("Settlement", "free_credit_wei", bidder.address) == free - fitting_wh * (price + FEE)
    assert market.read("Settlement", "free_credit_wei", bidder.address) >= 0


def test_english_outbid_leader_is_unlocked_in_the_same_call(markets):
    market = _market(markets, "english")
    interval = _fresh_interval(market)
    (lot,), _ = market.post_lots(interval, [(100, 10 * CENT)])
    b1, b2 = market.prosumers[1].address, market.prosumers[2].address
    first, outbid, raised = (
        market.mine([mk.bid(market.prosumers[who], market.addresses, lot, price_wei_per_wh=price)])[0]
        for who, price in ((1, 10 * CENT), (2, 12 * CENT), (2, 14 * CENT))
    )
    # 100 Wh * (10 + 2); then b2 locks 100 * (12 + 2) and b1 gets its 1200 back;
    # b2 raising its own lead swaps 1400 for 100 * (14 + 2).
    assert _escrow_events(market, first) == [("Locked", b1, 1200 * CENT)]
    assert _escrow_events(market, outbid) == [("Released", b1, 1200 * CENT), ("Locked", b2, 1400 * CENT)]
    assert _escrow_events(market, raised) == [("Released", b2, 1400 * CENT), ("Locked", b2, 1600 * CENT)]
    assert (_lock(market, interval, b1), _lock(market, interval, b2)) == (0, 1600 * CENT)
    (closed,) = market.mine([mk.release(market.outsider, market.addresses, interval, b2)], market.gate(interval))
    # The winner pays its own 14 plus the fee: its whole lock is its obligation.
    assert closed.ok and _escrow_events(market, closed) == []
    assert _lock(market, interval, b2) == 1600 * CENT


def test_vickrey_commit_locks_at_the_cap_and_reveal_lowers_it_to_the_price(markets):
    market = _market(markets, "vickrey")
    interval = _fresh_interval(market)
    (lot,), _ = market.post_lots(interval, [(100, 10 * CENT)])
    salt = bytes(range(32))
    bidders = market.prosumers[1:3]
    commits = market.mine(
        [
            mk.commit_bid(w, market.addresses, lot, sealed=mk.commitment(w.address, lot, price, salt))
            for w, price in zip(bidders, (20 * CENT, 15 * CENT), strict=True)
        ]
    )
    b1, b2 = (w.address for w in bidders)
    # 100 Wh * (100 + 2) CENT/Wh: the sealed price stays hidden.
    assert [_escrow_events(market, r) for r in commits] == [
        [("Locked", b1, 10_200 * CENT)],
        [("Locked", b2, 10_200 * CENT)],
    ]
    (revealed,) = market.mine(
        [mk.reveal_bid(bidders[0], market.addresses, lot, price_wei_per_wh=20 * CENT, salt=salt)], market.gate(interval)
    )
    # Down to 100 * (20 + 2); b2 never reveals.
    assert _escrow_events(market, revealed) == [("Released", b1, 8000 * CENT)]
    assert _lock(market, interval, b1) == 2200 * CENT
    reveal_end = market.read("VickreyAuction", "reveal_end_timestamp", interval)
    finalised, *released = market.mine(
        [
            mk.finalise(market.outsider, market.addresses, interval, n_lots=1),
            mk.release(market.outsider, market.addresses, interval, b1),
            mk.release(market.outsider, market.addresses, interval, b2),
        ],
        reveal_end,
    )
    assert finalised.ok
    # b1 wins alone and pays the reserve 10: it keeps 100 * (10 + 2); b2 gets all back.
    assert [_escrow_events(market, r) for r in released] == [
        [("Released", b1, 1000 * CENT)],
        [("Released", b2, 10_200 * CENT)],
    ]
    assert (_lock(market, interval, b1), _lock(market, interval, b2)) == (1200 * CENT, 0)


def test_merit_order_demand_locks_at_the_cap_without_fee_until_released(markets):
    market = _market(markets, "merit-order")
    interval = _fresh_interval(market)
    operator = market.operator.address
    (posted,) = market.mine([mk.post_demand(market.operator, market.addresses, interval, demand_wh=400)])
    assert _escrow_events(market, posted) == [("Locked", operator, 400 * PRICE_CAP_WEI_PER_WH)]
    book = market.submit_book(interval, [], [(300, 12 * CENT), (50, 8 * CENT)])
    assert market.clear(interval, book).ok
    (released,) = market.mine([mk.release(market.outsider, market.addresses, interval, operator)])
    # 350 Wh dispatched at the marginal 12: the operator owes 4200 CENT of 40_000.
    assert _escrow_events(market, released) == [("Released", operator, 35_800 * CENT)]
    assert _lock(market, interval, operator) == 4200 * CENT
    (settled,) = market.mine([mk.settle_operator(market.outsider, market.addresses, interval)], market.end(interval))
    assert _escrow_events(market, settled) == [("Released", operator, 4200 * CENT)]
    _assert_tokens_held(market)


# Revert matrix.


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_binding_is_once_by_the_deployer_to_its_own_settlement(markets, mechanism):
    market = _market(markets, mechanism)
    contract = market.addresses.auction_contract
    assert market.read(contract, "settlement") == market.addresses.settlement
    assert market.read(contract, "deployer") == market.operator.address
    by_outsider, twice = market.mine(
        [
            market.call_tx(market.outsider, contract, "bind_settlement", market.addresses.settlement),
            market.call_tx(market.operator, contract, "bind_settlement", market.addresses.settlement),
        ]
    )
    assert reverted(by_outsider, "escrow: caller is not the deployer")
    assert reverted(twice, "escrow: settlement already bound")


def _unbound(market: Market, contract: str) -> str:
    """Address of a fresh, unbound ``contract`` on the market's registry."""
    args = [market.addresses.registry, START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, PRICE_CAP_WEI_PER_WH]
    if contract == "VickreyAuction":
        args.append(GATE_CLOSURE_S // 2)
    elif contract == "EnglishAuction":
        args.append(CENT)
    raw, address = market.operator.deploy(load_artifact(contract), *args)
    (receipt,) = market.mine([raw])
    assert receipt.ok
    return address


@pytest.mark.parametrize("mechanism", list(MECHANISMS))
def test_bids_revert_until_bound_and_only_the_own_settlement_binds(markets, mechanism):
    market = _market(markets, mechanism)
    contract = market.addresses.auction_contract
    auction = _unbound(market, contract)
    unbound = mk.MarketAddresses(market.addresses.registry, market.addresses.token, auction,
                                 market.addresses.settlement, mechanism)
    interval = _fresh_interval(market)
    bidder = market.prosumers[1]
    if contract in LOT_AUCTION_CONTRACTS:
        # Posting a lot asks the Settlement whether the seller is in debt, so it needs the binding too.
        bid = mk.post_lot(market.prosumers[0], unbound, interval, energy_wh=10, reserve_price_wei_per_wh=CENT)
    elif contract == "MeritOrder":
        bid = mk.post_demand(market.operator, unbound, interval, demand_wh=10)
    else:
        bid = mk.submit_order(bidder, unbound, interval, is_ask=False, energy_wh=10, price_wei_per_wh=CENT)
    before, other = market.mine(
        [bid, market.operator.transact(auction, encode_call(contract, "bind_settlement", market.addresses.settlement),
                                       gas=200_000)]
    )
    assert reverted(before, "escrow: settlement not bound")
    # The market's settlement names the market's own mechanism, not this one.
    assert reverted(other, "escrow: settlement of another mechanism")


def test_lock_and_unlock_are_for_the_mechanism_only(markets):
    market = _market(markets, "uniform-double-auction")
    account = market.prosumers[0].address
    lock, unlock = market.mine(
        [
            market.call_tx(market.outsider, "Settlement", "lock", account, 0, 1, 1),
            market.call_tx(market.prosumers[0], "Settlement", "unlock", account, 0, 0),
        ]
    )
    assert reverted(lock, "settlement: caller is not the mechanism")
    assert reverted(unlock, "settlement: caller is not the mechanism")


def test_unlock_above_the_lock_reverts():
    # A settlement whose mechanism is an outsider's account, which may then lock and unlock directly.
    market = new_market(1)
    outsider, account = market.outsider, market.prosumers[0].address
    raw, settlement = market.operator.deploy(
        load_artifact("Settlement"), market.addresses.registry, outsider.address, market.addresses.token,
        market.operator.address, 0, 0, FEE, 0, START_TIMESTAMP, INTERVAL_S, 0, 1,
    )
    assert market.mine([raw])[0].ok

    def call(function, *args):
        return outsider.transact(settlement, encode_call("Settlement", function, *args), gas=200_000)

    locked, above, exact, broke = market.mine(
        [call("lock", account, 7, 0, 5), call("unlock", account, 7, 1), call("unlock", account, 7, 0),
         call("lock", account, 7, 1, 0)]
    )
    assert locked.ok and exact.ok
    assert reverted(above, "settlement: unlock above lock")
    # The account holds no credit in this settlement: 1 Wh at 0 still escrows the fee.
    assert reverted(broke, "settlement: credit below escrow")


# Properties against the reference.

# What one order can deliver through a test meter in one interval (its reading must pass the meter limits). [Wh]
ENERGY = st.integers(1, TEST_LIMITS.meter_rating_w * INTERVAL_S // SECONDS_PER_HOUR)
PRICE = st.integers(1, 100).map(lambda cents: cents * CENT)
SIDE = st.lists(st.tuples(ENERGY, PRICE), min_size=1, max_size=MAX_SIDE)


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid"])
@settings(max_examples=12, deadline=None)
@given(bids=SIDE, asks=SIDE)
def test_locks_releases_and_payments_equal_the_reference(markets, mechanism, bids, asks):
    market = _market(markets, mechanism)
    interval = _fresh_interval(market)
    bidders, sellers = market.prosumers[: len(bids)], market.prosumers[MAX_SIDE : MAX_SIDE + len(asks)]
    free_before = {w.address: market.read("Settlement", "free_credit_wei", w.address) for w in bidders}
    orders = [(w, False, q, p) for w, (q, p) in zip(bidders, bids, strict=True)]
    orders += [(w, True, q, p) for w, (q, p) in zip(sellers, asks, strict=True)]
    receipts = market.mine(
        [mk.submit_order(w, market.addresses, interval, is_ask=a, energy_wh=q, price_wei_per_wh=p) for w, a, q, p in orders]
    )
    _assert_tokens_held(market)
    # A bid is taken exactly when its escrow fits the free credit, and leaves it non-negative.
    for (wallet, is_ask, q, p), receipt in zip(orders, receipts, strict=True):
        if is_ask:
            assert receipt.ok
            continue
        fits = escrow_wei(q, p, FEE) <= free_before[wallet.address]
        assert receipt.ok == fits and (fits or reverted(receipt, "settlement: credit below escrow"))
        assert _lock(market, interval, wallet.address) == (escrow_wei(q, p, FEE) if fits else 0)
        assert market.read("Settlement", "free_credit_wei", wallet.address) >= 0

    book = mk.book(market.chain, market.addresses, interval)
    assert market.clear(interval, book).ok
    clearing = (clear_uniform if mechanism == "uniform-double-auction" else clear_pay_as_bid)(book.bids, book.asks)
    values = (
        {a: clearing.price_wei_per_wh * q for a, q in clearing.positions_wh.items()}
        if mechanism == "uniform-double-auction"
        else clearing.values_wei
    )
    traders = [o.account for o in (*book.bids, *book.asks)]
    locks = {a: _lock(market, interval, a) for a in traders}
    released = market.mine([mk.release(market.outsider, market.addresses, interval, a) for a in traders])
    assert all(r.ok for r in released)
    for account, receipt in zip(traders, released, strict=True):
        position, value = clearing.positions_wh.get(account, 0), values.get(account, 0)
        amount = released_wei(locks[account], position, value, FEE)
        assert _escrow_events(market, receipt) == ([("Released", account, amount)] if amount else [])
        assert _lock(market, interval, account) == min(locks[account], obligation_wei(position, value, FEE))
        # The escrow always covers what the account owes.
        assert locks[account] >= obligation_wei(position, value, FEE)
    _assert_tokens_held(market)

    # Every trader delivers exactly its position: no imbalance.
    credits = {a: market.read("Settlement", "credit_wei", a) for a in traders}
    pool_before = market.read("Settlement", "pool_wei")
    meters = {w.address: m for w, m in zip(market.prosumers, market.meters, strict=True)}
    posted = market.mine(
        [
            mk.post_reading(meters[a], market.addresses, interval, import_wh=max(-q, 0), export_wh=max(q, 0),
                            pv_wh=max(q, 0), battery_wh=0)
            for a in traders
            for q in [clearing.positions_wh.get(a, 0)]
        ],
        market.end(interval),
    )
    assert all(r.ok for r in posted)
    for account in traders:
        position = clearing.positions_wh.get(account, 0)
        line = settle(position, values.get(account, 0), max(-position, 0), max(position, 0),
                      GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, FEE,
                      non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH)
        assert market.read("Settlement", "credit_wei", account) - credits[account] == line.credit_delta_wei
        assert _lock(market, interval, account) == 0
        assert market.read("Settlement", "free_credit_wei", account) >= 0
    # The interval's share of the pool is paid out in full.
    assert market.read("Settlement", "pool_wei") == pool_before
    _assert_tokens_held(market)
