"""The ledger's record: per-interval gas and market outcome, per-prosumer settlement, from events built by hand."""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.agents.ledger_record import LedgerRecord
from tests.ledger_agents_helpers import CENT_PER_KWH, block, event, receipt, small_scenario

AUCTION = "DoubleAuction"
ACCOUNTS = ["A", "B", "C", "D"]


@pytest.fixture(scope="module")
def sc():
    return small_scenario()


@pytest.fixture
def record(sc):
    return LedgerRecord(sc, ACCOUNTS, AUCTION)


def settled(k: int, prosumer: str, *, position_wh: int, import_wh: int, p2p_wei: int = 0, fee_wei: int = 0,
            imbalance_wei: int = 0):
    return event("Settlement", "Settled", interval=k, prosumer=prosumer, position_wh=position_wh,
                 import_wh=import_wh, p2p_wei=p2p_wei, fee_wei=fee_wei, imbalance_wei=imbalance_wei)


def test_gas_transactions_and_reverts_count_to_the_interval_the_block_was_mined_in(record):
    record.block(0, block([receipt(21_000), receipt(50_000), receipt(30_000, ok=False)], []))
    record.block(0, block([receipt(1_000)], []))
    record.block(9, block([receipt(7)], []))                    # after the last interval (3): counts to 3
    assert record.gas_used.tolist() == [102_000, 0, 0, 7]       # 21_000 + 50_000 + 30_000 + 1_000
    assert record.transactions.tolist() == [4, 0, 0, 1]
    assert record.reverted.tolist() == [1, 0, 0, 0]


def test_cleared_event_gives_price_per_kwh_and_volume_of_the_interval_it_names(record):
    record.block(0, block([], [event(AUCTION, "Cleared", interval=2, price_wei_per_wh=15 * CENT_PER_KWH,
                                     volume_wh=300)]))
    assert record.price[2] == pytest.approx(0.15)               # 15 * 10**13 wei/Wh * 1000 Wh/kWh / 10**18
    assert np.isnan(record.price[[0, 1, 3]]).all()
    assert record.volume_wh.tolist() == [0, 0, 300, 0]


def test_trade_events_are_the_positions_kept_and_sent_and_only_traders_are_named(record):
    record.block(0, block([], [event(AUCTION, "Trade", interval=1, account="A", position_wh=300),
                               event(AUCTION, "Trade", interval=1, account="B", position_wh=-300)]))
    assert record.position_wh[1].tolist() == [300, -300, 0, 0]
    assert record.cleared_positions(1) == {"A": 300, "B": -300}
    assert record.cleared_positions(2) == {}


def test_events_of_other_contracts_are_not_the_market_s(record):
    # The voltage-regulation contract has its own Settled event, with other fields.
    record.block(0, block([], [event("VoltageRegulation", "Settled", request_id=0, delivered_wh=10),
                               event("PayAsBid", "Trade", interval=1, account="A", position_wh=5)]))
    assert not record.settled.any()
    assert record.cleared_positions(1) == {}


def test_settled_event_splits_payment_fee_and_imbalance_in_tokens(record):
    # B bought 300 Wh at 0.15 token/kWh (pays 0.045), fee 0.02 token/kWh (0.006),
    # imported 350 Wh: 50 Wh beyond its position at 0.30 token/kWh (pays 0.015).
    record.block(1, block([], [settled(1, "B", position_wh=-300, import_wh=350, p2p_wei=-45 * 10**15,
                                       fee_wei=6 * 10**15, imbalance_wei=-15 * 10**15)]))
    assert record.p2p[1, 1] == pytest.approx(-0.045)
    assert record.fee[1, 1] == pytest.approx(0.006)
    assert record.imbalance[1, 1] == pytest.approx(-0.015)
    assert record.settled[1].tolist() == [0, 1, 0, 0]
    assert (record.settled_import_wh[1, 1], record.settled_position_wh[1, 1]) == (350, -300)


def test_sourced_events_give_the_sold_mix_and_buyers_consume_it_pro_rata(record):
    record.block(2, block([], [
        event("Settlement", "Sourced", interval=1, seller="A", pv_wh=200, battery_wh=100, grid_wh=0),
        event("Settlement", "Sourced", interval=1, seller="C", pv_wh=100, battery_wh=0, grid_wh=0),
        settled(1, "B", position_wh=-400, import_wh=500),
        settled(1, "D", position_wh=-100, import_wh=60),
    ]))
    assert record.sold_wh["pv"][1].tolist() == [200, 0, 100, 0]
    assert record.sold_wh["battery"][1].tolist() == [100, 0, 0, 0]
    consumed = record.consumed_wh()
    # Sold mix 300 PV + 100 battery = 400 Wh.
    # B: p2p = min(400, 500) = 400 -> PV 400*300//400 = 300, battery 400*100//400 = 100, grid 500-400 = 100.
    # D: p2p = min(100, 60) = 60 -> PV 60*300//400 = 45, battery 60*100//400 = 15, grid 0.
    assert consumed["pv"][1].tolist() == [0, 300, 0, 45]
    assert consumed["battery"][1].tolist() == [0, 100, 0, 15]
    assert consumed["grid"][1].tolist() == [0, 100, 0, 0]
    # D chose PV: P = 60 <= 300 PV sold, so D's 60 Wh are all PV. B gets the 240 Wh PV left and the 100 Wh battery,
    # pro rata over the 400 - 60 = 340 Wh the choosers did not take: PV 400*240//340 = 282, battery 400*100//340 = 117.
    chose = np.zeros((4, 4), dtype=bool)
    chose[1, 3] = True
    chosen = record.consumed_wh(chose)
    assert chosen["pv"][1].tolist() == [0, 282, 0, 60]
    assert chosen["battery"][1].tolist() == [0, 117, 0, 0]
    assert chosen["grid"][1].tolist() == [0, 101, 0, 0]


def test_lot_auction_price_is_the_volume_weighted_mean_of_the_lots_sold(record):
    # A sold 500 Wh at 0.10 token/kWh and C 200 Wh at 0.13: they receive
    # 500 * 10 + 200 * 13 = 7600 * 10**13 wei for 700 Wh.
    record.lot_auction_cleared(1, {"A": 500, "B": -500, "C": 200, "D": -200}, 7600 * CENT_PER_KWH)
    assert record.volume_wh[1] == 700
    assert record.price[1] == pytest.approx(76 / 700)              # (500 * 0.10 + 200 * 0.13) / 700 token/kWh
    assert record.position_wh[1].tolist() == [500, -500, 200, -200]
    assert record.cleared_positions(1) == {"A": 500, "B": -500, "C": 200, "D": -200}


def test_lot_auction_without_sales_has_no_price(record):
    record.lot_auction_cleared(2, dict.fromkeys(ACCOUNTS, 0), 0)
    assert record.volume_wh[2] == 0 and np.isnan(record.price[2])
    assert record.cleared_positions(2) == dict.fromkeys(ACCOUNTS, 0)


def test_results_part_carries_units_and_the_conservation_flag(record):
    record.supply_conserved = True
    record.block(0, block([receipt(10)], []))
    part = record.part(mechanism="uniform-double-auction")
    assert part.ds.attrs["token_supply_conserved"] == 1 and part.ds.attrs["mechanism"] == "uniform-double-auction"
    assert part.ds["gas_used"].attrs["units"] == "gas" and part.ds["gas_used"].values.tolist() == [10, 0, 0, 0]
    assert part.ds["clearing_price_per_kwh"].attrs["units"] == "token/kWh"
    assert {f"consumed_{s}_wh" for s in LedgerRecord.SOURCES} <= set(part.ds.data_vars)
    assert part.ds["address"].values.tolist() == ACCOUNTS


def test_unpaid_events_count_to_the_prosumer_positive_if_it_did_not_pay(record):
    # B could not pay 0.25 token of its imbalance in interval 1, twice 0.5 in interval 2; the operator (no
    # prosumer) could not pay C 0.125 token for its export in interval 1.
    record.block(2, block([], [
        event("Settlement", "Unpaid", interval=1, payer="B", payee="operator", unpaid_wei=25 * 10**16),
        event("Settlement", "Unpaid", interval=1, payer="operator", payee="C", unpaid_wei=125 * 10**15),
        event("Settlement", "Unpaid", interval=2, payer="B", payee="operator", unpaid_wei=5 * 10**17),
        event("Settlement", "Unpaid", interval=2, payer="B", payee="operator", unpaid_wei=5 * 10**17),
        event("VoltageRegulation", "Unpaid", interval=3, payer="A", payee="operator", unpaid_wei=10**18),
    ]))
    assert record.unpaid.tolist() == [[0, 0, 0, 0], [0, 0.25, -0.125, 0], [0, 1.0, 0, 0], [0, 0, 0, 0]]
    unpaid = record.part().ds["unpaid_token"]
    assert unpaid.attrs["units"] == "token" and unpaid.dims == ("interval", "prosumer")
