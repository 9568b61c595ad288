"""Settlement on a real py-evm chain against the Python reference settle()."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import clear_uniform, settle

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    ENDOWMENT_WEI,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    Market,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    new_market,
)

MAX_SIDE = 8


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(2 * MAX_SIDE + 2)


def _credits(market: Market) -> dict[str, int]:
    accounts = [market.operator.address, *(w.address for w in market.prosumers)]
    return {a: market.read("Settlement", "credit_wei", a) for a in accounts}


def _assert_tokens_conserved(market: Market) -> None:
    supply = market.read("GridToken", "totalSupply")
    assert supply == ENDOWMENT_WEI * len(market.prosumers) + OPERATOR_DEPOSIT_WEI
    held = market.read("GridToken", "balanceOf", market.addresses.settlement)
    pools = market.read("Settlement", "pool_wei") + market.read("Settlement", "penalty_pool_wei")
    assert sum(_credits(market).values()) + pools == held


def _reference_line(position_wh, price, import_wh, export_wh):
    return settle(
        position_wh,
        price * position_wh,
        import_wh,
        export_wh,
        GRID_BUY_PRICE_WEI_PER_WH,
        GRID_SELL_PRICE_WEI_PER_WH,
        GRID_FEE_WEI_PER_WH,
        non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
    )


def test_hand_computed_settlement_lines():
    price = 20 * CENT
    seller = _reference_line(100, price, import_wh=10, export_wh=130)
    # Sold 100 at 20: +2000 CENT*Wh; metered net export 120, so 20 extra at the sell price 5.
    assert (seller.p2p_wei, seller.fee_wei, seller.imbalance_wei) == (2000 * CENT, 0, 100 * CENT)
    assert (seller.credit_delta_wei, seller.operator_delta_wei, seller.pool_delta_wei) == (
        2100 * CENT,
        -100 * CENT,
        -2000 * CENT,
    )
    buyer = _reference_line(-100, price, import_wh=130, export_wh=0)
    # Bought 100 at 20 plus fee 2; drew 130, so 30 more at the buy price 30.
    assert (buyer.p2p_wei, buyer.fee_wei, buyer.imbalance_wei) == (-2000 * CENT, 200 * CENT, -900 * CENT)
    assert (buyer.credit_delta_wei, buyer.operator_delta_wei, buyer.pool_delta_wei) == (
        -3100 * CENT,
        1100 * CENT,
        2000 * CENT,
    )
    short = _reference_line(100, price, import_wh=0, export_wh=60)
    # Sold 100 at 20, exported 60: the 40 undelivered cost max(800 refunded, 1200 at the buy price 30) to the
    # operator, which replaced them, plus the penalty 5 * 40 = 200 to the penalty pool.
    assert (short.imbalance_wei, short.credit_delta_wei, short.operator_delta_wei) == (
        -1400 * CENT,
        600 * CENT,
        1200 * CENT,
    )
    assert (short.pool_delta_wei, short.penalty_pool_delta_wei, short.covered_wei) == (-2000 * CENT, 200 * CENT, 0)


ENERGY = st.integers(1, 2000)
PRICE = st.integers(1, 60).map(lambda cents: cents * CENT)
SIDE = st.lists(st.tuples(ENERGY, PRICE), min_size=1, max_size=MAX_SIDE)
READING = st.tuples(st.integers(0, 3000), st.integers(0, 3000))


@settings(max_examples=25, deadline=None)
@given(bids=SIDE, asks=SIDE, readings=st.lists(READING, min_size=2 * MAX_SIDE + 2, max_size=2 * MAX_SIDE + 2))
def test_onchain_credits_equal_reference_and_tokens_are_conserved(market, bids, asks, readings):
    interval = market.next_interval()
    book = market.submit_book(interval, bids, asks)
    assert market.clear(interval, book).ok
    clearing = clear_uniform(book.bids, book.asks)
    before = _credits(market)
    penalty_pool_before = market.read("Settlement", "penalty_pool_wei")
    assert market.read("Settlement", "pool_wei") == 0

    # Every prosumer posts, traders or not; half in one block, half in the next.
    posts = [
        mk.post_reading(meter, market.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=exp, battery_wh=0)
        for meter, (imp, exp) in zip(market.meters, readings, strict=True)
    ]
    half = len(posts) // 2
    receipts = market.mine(posts[:half], market.end(interval))
    _assert_tokens_conserved(market)
    receipts += market.mine(posts[half:])
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]

    after = _credits(market)
    operator_delta = penalty_pool_delta = 0
    for prosumer, receipt, (imp, exp) in zip(market.prosumers, receipts, readings, strict=True):
        position = clearing.positions_wh.get(prosumer.address, 0)
        line = _reference_line(position, clearing.price_wei_per_wh, imp, exp)
        assert after[prosumer.address] - before[prosumer.address] == line.credit_delta_wei
        operator_delta += line.operator_delta_wei
        penalty_pool_delta += line.penalty_pool_delta_wei
        (event,) = [e for e in map(market.chain.decode, receipt.logs) if e.event == "Settled"]
        assert event.args == {
            "interval": interval,
            "prosumer": prosumer.address,
            "import_wh": imp,
            "export_wh": exp,
            "pv_wh": exp,
            "battery_wh": 0,
            "position_wh": position,
            "p2p_wei": line.p2p_wei,
            "fee_wei": line.fee_wei,
            "imbalance_wei": line.imbalance_wei,
        }
        assert market.read("Settlement", "reading", interval, prosumer.address) == (imp, exp, exp, 0, True)
    assert after[market.operator.address] - before[market.operator.address] == operator_delta
    assert market.read("Settlement", "penalty_pool_wei") - penalty_pool_before == penalty_pool_delta
    assert market.read("Settlement", "pool_wei") == 0
    _assert_tokens_conserved(market)


def test_reading_reads_zero_until_posted_and_keeps_the_largest_registered_energies(market):
    tolerance_wh = market.read("Settlement", "READING_TOLERANCE_WH")
    # TEST_LIMITS over a 15-minute interval, plus the tolerance.
    rating_wh, pv_wh, battery_wh = (w * INTERVAL_S // 3600 + tolerance_wh for w in (100_000, 100_000, 50_000))
    interval = market.next_interval()
    assert market.clear(interval, mk.Book((), ())).ok
    prosumer = market.prosumers[0].address
    assert market.read("Settlement", "reading", interval, prosumer) == (0, 0, 0, 0, False)
    meter = market.meters[0]
    raw = mk.post_reading(
        meter, market.addresses, interval, import_wh=rating_wh, export_wh=rating_wh, pv_wh=pv_wh,
        battery_wh=battery_wh,
    )
    (receipt,) = market.mine([raw], market.end(interval))
    assert receipt.ok, receipt.revert_reason
    assert market.read("Settlement", "reading", interval, prosumer) == (rating_wh, rating_wh, pv_wh, battery_wh, True)


def test_withdraw_and_deposit_for_move_credit_through_tokens(market):
    payer, beneficiary = market.prosumers[-1], market.prosumers[-2]
    payer_credit = market.read("Settlement", "credit_wei", payer.address)
    beneficiary_credit = market.read("Settlement", "credit_wei", beneficiary.address)
    amount = payer_credit // 4
    (withdrawn,) = market.mine([market.call_tx(payer, "Settlement", "withdraw", amount)])
    assert withdrawn.ok, withdrawn.revert_reason
    assert market.read("Settlement", "credit_wei", payer.address) == payer_credit - amount
    assert market.read("GridToken", "balanceOf", payer.address) == amount
    _assert_tokens_conserved(market)

    receipts = market.mine(
        [
            market.call_tx(payer, "GridToken", "approve", market.addresses.settlement, amount),
            market.call_tx(payer, "Settlement", "deposit_for", beneficiary.address, amount),
        ]
    )
    assert all(r.ok for r in receipts)
    assert market.read("Settlement", "credit_wei", beneficiary.address) == beneficiary_credit + amount
    assert market.read("GridToken", "allowance", payer.address, market.addresses.settlement) == 0
    assert market.read("GridToken", "balanceOf", payer.address) == 0
    _assert_tokens_conserved(market)
