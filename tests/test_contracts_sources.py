"""Source tracking: readings carry PV and battery energy; sold energy and buyers' consumption split by source."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import SourceMix, clear_uniform, consumed_mix, sold_mix, sold_sources

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import Market, new_market, reverted

MAX_SIDE = 5
MAX_ENERGY_WH = 10**12


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(2 * MAX_SIDE)


def _fresh_interval(market: Market) -> int:
    """An interval no test has used: the head moves to the gate of the last one handed out."""
    market.mine([], market.gate(market.next_interval()))
    return market.next_interval()


def _post(market: Market, interval: int, readings: dict[int, tuple[int, int, int, int]]):
    """Post (import, export, pv, battery) readings [Wh] of prosumers by index at the interval's end."""
    receipts = market.mine(
        [
            mk.post_reading(market.meters[i], market.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=pv,
                            battery_wh=bat)
            for i, (imp, exp, pv, bat) in readings.items()
        ],
        max(market.end(interval), market.chain.timestamp + 1),
    )
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    return receipts


def _sourced(market: Market, receipt) -> list[tuple[str, SourceMix]]:
    events = [market.chain.decode(log) for log in receipt.logs]
    return [
        (e.args["seller"], SourceMix(e.args["pv_wh"], e.args["battery_wh"], e.args["grid_wh"]))
        for e in events
        if e.event == "Sourced"
    ]


@pytest.mark.parametrize(
    "position_wh, export_wh, pv_wh, battery_wh, expected",
    [
        # Delivered 100 of 100: PV 80 first, the battery the other 20 of its 30.
        (100, 120, 80, 30, SourceMix(80, 20, 0)),
        # Exported only 60 of 100 sold: PV covers the 60, the 40 shortfall is grid.
        (100, 60, 100, 0, SourceMix(60, 0, 40)),
        # Delivered 100 with 30 PV and 20 battery: the other 50 was re-sold grid energy.
        (100, 100, 30, 20, SourceMix(30, 20, 50)),
        # A buyer or an idle prosumer sells nothing.
        (-50, 0, 40, 10, SourceMix(0, 0, 0)),
    ],
)
def test_hand_computed_seller_splits(position_wh, export_wh, pv_wh, battery_wh, expected):
    assert sold_sources(position_wh, export_wh, pv_wh, battery_wh) == expected


def test_hand_computed_interval_on_chain(market):
    interval = _fresh_interval(market)
    # Sellers s0, s1, s2 ask 100 Wh at 10; buyers b0, b1 bid 150 Wh at 30: all 300 Wh trade.
    book = market.submit_book(interval, [(150, 30 * CENT), (150, 30 * CENT)], [(100, 10 * CENT)] * 3)
    assert market.clear(interval, book).ok
    b0, b1, s0, s1, s2 = (o.account for o in (*book.bids, *book.asks))
    assert market.read("Settlement", "consumed_mix", interval, b0) == (0, 0, 0)

    # The three sellers of the examples above, then the buyers: b0 draws 150, b1 200.
    # s2 exports all its PV and battery, 50 of the 100 it sold: the 50 shortfall is grid.
    sellers = _post(market, interval, {2: (0, 110, 80, 30), 3: (0, 60, 100, 0), 4: (0, 50, 30, 20)})
    assert [_sourced(market, r) for r in sellers] == [
        [(s0, SourceMix(80, 20, 0))],
        [(s1, SourceMix(60, 0, 40))],
        [(s2, SourceMix(30, 20, 50))],
    ]
    assert market.read("Settlement", "sold_mix", interval) == (170, 40, 90)
    assert market.read("Settlement", "reading", interval, s0) == (0, 110, 80, 30, True)
    buyers = _post(market, interval, {0: (150, 0, 0, 0), 1: (200, 0, 0, 0)})
    assert [_sourced(market, r) for r in buyers] == [[], []]
    # b0's 150 Wh are all peer to peer: PV 150 * 170 // 300 = 85, battery 150 * 40 // 300 = 20, grid 45.
    assert market.read("Settlement", "consumed_mix", interval, b0) == (85, 20, 45)
    # b1 bought 150 of its 200: the same 85 and 20, plus 50 more from the grid.
    assert market.read("Settlement", "consumed_mix", interval, b1) == (85, 20, 95)
    # A seller's own import, were it any, would come from the grid.
    assert market.read("Settlement", "consumed_mix", interval, s0) == (0, 0, 0)


def test_buyer_importing_less_than_bought_and_before_any_seller_posts(market):
    interval = _fresh_interval(market)
    book = market.submit_book(interval, [(90, 30 * CENT)], [(90, 10 * CENT)])
    assert market.clear(interval, book).ok
    buyer, seller = (o.account for o in (*book.bids, *book.asks))
    # The buyer posts first: with no seller posted the mix is all grid.
    _post(market, interval, {0: (30, 0, 0, 0)})
    assert market.read("Settlement", "consumed_mix", interval, buyer) == (0, 0, 30)
    # The seller delivers 90 of PV 50 and battery 40 (of 70): the buyer's 30 split 50:40.
    _post(market, interval, {1: (0, 90, 50, 70)})
    # 30 * 50 // 90 = 16 PV, 30 * 40 // 90 = 13 battery, 1 Wh grid from rounding.
    assert market.read("Settlement", "consumed_mix", interval, buyer) == (16, 13, 1)


@pytest.mark.parametrize("pv_wh, battery_wh", [(MAX_ENERGY_WH + 1, 0), (0, MAX_ENERGY_WH + 1)])
def test_source_energy_above_limit_reverts(market, pv_wh, battery_wh):
    interval = _fresh_interval(market)
    assert market.clear(interval, mk.Book((), ())).ok
    (receipt,) = market.mine(
        [mk.post_reading(market.meters[0], market.addresses, interval, import_wh=0, export_wh=0, pv_wh=pv_wh,
                         battery_wh=battery_wh)],
        market.end(interval),
    )
    assert reverted(receipt, "settlement: energy above limit")


ENERGY = st.integers(1, 500)
PRICE = st.integers(1, 40).map(lambda cents: cents * CENT)
SIDE = st.lists(st.tuples(ENERGY, PRICE), min_size=1, max_size=MAX_SIDE)
# (import, export, pv, battery) [Wh]; export at most PV plus battery, as physics allows.
READING = st.tuples(st.integers(0, 700), st.integers(0, 700), st.integers(0, 700), st.integers(0, 700)).map(
    lambda r: (r[0], min(r[1], r[2] + r[3]), r[2], r[3])
)


@settings(max_examples=20, deadline=None)
@given(bids=SIDE, asks=SIDE, readings=st.lists(READING, min_size=2 * MAX_SIDE, max_size=2 * MAX_SIDE))
def test_sources_and_mixes_equal_the_reference_and_sum_to_the_energies(market, bids, asks, readings):
    interval = _fresh_interval(market)
    bids_and_asks = market.submit_book(interval, bids, asks)
    assert market.clear(interval, bids_and_asks).ok
    clearing = clear_uniform(bids_and_asks.bids, bids_and_asks.asks)
    accounts = [w.address for w in market.prosumers]
    receipts = _post(market, interval, dict(enumerate(readings)))

    splits = {}
    for account, receipt, (_, exp, pv, bat) in zip(accounts, receipts, readings, strict=True):
        position = clearing.positions_wh.get(account, 0)
        expected = sold_sources(position, exp, pv, bat)
        assert _sourced(market, receipt) == ([(account, expected)] if position > 0 else [])
        assert expected.total_wh == max(position, 0)
        splits[account] = expected
    sold = sold_mix(splits.values())
    assert market.read("Settlement", "sold_mix", interval) == (sold.pv_wh, sold.battery_wh, sold.grid_wh)
    assert sold.total_wh == clearing.volume_wh
    for account, (imp, *_) in zip(accounts, readings, strict=True):
        mix = consumed_mix(clearing.positions_wh.get(account, 0), imp, sold)
        assert market.read("Settlement", "consumed_mix", interval, account) == (mix.pv_wh, mix.battery_wh, mix.grid_wh)
        assert mix.total_wh == imp
