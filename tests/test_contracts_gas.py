"""Gas of the market transactions stays inside the limits the builders sign."""

import pytest

from gridledger.contracts import market as mk
from gridledger.contracts.gas_report import crossover, gas_table
from gridledger.contracts.mechanisms import MECHANISMS

from contract_helpers import PRICE_CAP_WEI_PER_WH, Market, new_market


@pytest.fixture(scope="module", params=["uniform-double-auction", "pay-as-bid"])
def market(request) -> Market:
    return new_market(128, mechanism=request.param)


@pytest.mark.parametrize("n_orders", [8, 32, 128])
def test_fully_matched_book_clears_within_the_clear_gas_limit(market, n_orders):
    n_side = n_orders // 2
    interval = market.next_interval()
    # Every bid outbids every ask: all orders fill, the costliest case.
    bids = [(100 + i, PRICE_CAP_WEI_PER_WH - i) for i in range(n_side)]
    asks = [(100 + i, 1 + i) for i in range(n_side)]
    book = market.submit_book(interval, bids, asks)
    receipt = market.clear(interval, book)
    assert receipt.ok, receipt.revert_reason
    contract = market.addresses.auction_contract
    assert receipt.gas_used <= mk.clear_gas(n_side, n_side, contract)
    assert len([log for log in receipt.logs if market.chain.decode(log).event == "Trade"]) == n_orders
    readings = [
        mk.post_reading(meter, market.addresses, interval, import_wh=5, export_wh=7, pv_wh=7, battery_wh=0)
        for meter in market.meters[:n_orders]
    ]
    receipts = market.mine(readings, market.end(interval))
    assert all(r.ok and r.gas_used <= mk.GAS_POST_READING for r in receipts)


def test_order_submission_stays_within_its_gas_limit(market):
    interval = market.next_interval()
    raw_txs = [
        mk.submit_order(wallet, market.addresses, interval, is_ask=True, energy_wh=1, price_wei_per_wh=1)
        for wallet in market.prosumers[:4]
    ]
    receipts = market.mine(raw_txs)
    assert all(r.ok and r.gas_used <= mk.GAS_SUBMIT_ORDER for r in receipts)


def test_gas_table_gives_a_row_per_mechanism_and_size_within_the_signed_limits():
    rows = gas_table(book_sizes=(8, 32))
    assert [(r.mechanism, r.n_orders) for r in rows] == [(m, n) for m in MECHANISMS for n in (8, 32)]
    for row in rows:
        contract = MECHANISMS[row.mechanism].contract
        assert not row.capped
        if contract == "VickreyAuction":
            assert 0 < row.submit_gas <= mk.GAS_POST_LOT
            assert 0 < row.clear_gas <= mk.finalise_gas(row.n_orders // 2)
        elif contract == "EnglishAuction":
            assert 0 < row.submit_gas <= mk.GAS_POST_LOT
            assert row.clear_gas == 0
        else:
            n_bids = 0 if contract == "MeritOrder" else row.n_orders // 2
            n_asks = row.n_orders - n_bids
            assert 0 < row.submit_gas <= mk.GAS_SUBMIT_ORDER
            assert 0 < row.clear_gas <= mk.clear_gas(n_bids, n_asks, contract, "verified-offchain")
            assert 0 < row.clear_onchain_gas <= mk.clear_gas(n_bids, n_asks, contract, "on-chain")
        assert row.clear_gas_per_order == row.clear_gas // row.n_orders


def test_gas_table_measures_a_larger_book_than_an_interval_holds_at_its_limit():
    (row,) = gas_table(book_sizes=(300,), mechanisms=("merit-order",))
    assert (row.n_orders, row.capped) == (256, True)
    assert 0 < row.clear_gas < row.clear_onchain_gas <= mk.clear_gas(0, 256, "MeritOrder", "on-chain")


def test_crossover_is_where_the_table_turns_from_on_chain_to_verified():
    found = crossover("merit-order")
    assert (found.step, found.at.n_orders - found.below.n_orders) == (1, 1)
    # At the crossover on-chain sorting costs more than verified clearing; one order less, it does not.
    assert found.at.clear_onchain_gas > found.at.clear_gas
    assert found.below.clear_onchain_gas <= found.below.clear_gas
    # The table measures the same figures at those sizes.
    assert gas_table(book_sizes=(found.below.n_orders, found.n_orders), mechanisms=("merit-order",)) == [
        found.below,
        found.at,
    ]


def test_crossover_refuses_a_lot_auction():
    with pytest.raises(ValueError, match="no order book"):
        crossover("vickrey")
