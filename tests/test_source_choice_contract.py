"""Source choice: PV sold in an interval goes to the buyers who chose it first; hand-computed books, the Python
reference (`contracts.reference.chosen_mix`) on chain, and its invariants under hypothesis."""

from __future__ import annotations

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts import source_choice as sc
from gridledger.contracts.reference import SourceMix, chosen_mix, consumed_mix
from tests.contract_helpers import CENT_PER_KWH, Market, new_market, reverted


def _market() -> tuple[Market, str]:
    market = new_market(4)
    return market, sc.deploy_source_choice(market.chain, market.operator, market.addresses.settlement)


def _trade_and_meter(market: Market, interval: int) -> None:
    """p0 and p1 buy 1 kWh each from p2 (all PV) and p3 (exports 500 Wh from its battery; the 500 Wh it did not
    deliver is grid)."""
    book = market.submit_book(interval, bids=[(1000, 20 * CENT_PER_KWH)] * 2, asks=[(1000, 10 * CENT_PER_KWH)] * 2)
    assert market.clear(interval, book).ok
    registers = [(1000, 0, 0, 0), (1000, 0, 0, 0), (0, 1000, 1000, 0), (0, 500, 0, 500)]
    txs = [mk.post_reading(meter, market.addresses, interval, import_wh=i, export_wh=e, pv_wh=pv, battery_wh=b)
           for meter, (i, e, pv, b) in zip(market.meters, registers, strict=True)]
    assert all(r.ok for r in market.mine(txs, market.end(interval)))


def _mix(market: Market, address: str, interval: int, i: int) -> SourceMix:
    return sc.consumed_mix(market.chain, address, interval, market.prosumers[i].address)


def test_without_choosers_the_split_is_the_settlements_pro_rata_one():
    market, address = _market()
    _trade_and_meter(market, 0)
    assert market.read("Settlement", "sold_mix", 0) == (1000, 500, 500)
    for i in (0, 1):
        # 1 kWh of a 2 kWh mix of 1000 PV, 500 battery, 500 grid.
        assert _mix(market, address, 0, i) == SourceMix(500, 250, 250)
        assert _mix(market, address, 0, i) == SourceMix(*market.read("Settlement", "consumed_mix", 0,
                                                                     market.prosumers[i].address))


def test_a_buyer_that_chose_pv_gets_the_pv_first_the_other_the_rest():
    market, address = _market()
    (receipt,) = market.mine([sc.choose_pv(market.prosumers[0], address)])
    assert receipt.ok and receipt.gas_used < sc.GAS_CHOOSE_PV
    _trade_and_meter(market, 0)
    assert sc.read(market.chain, address, "pv_chosen_wh", 0) == 1000
    # p0 chose: all 1000 Wh PV. p1: no PV left; the battery's 500 Wh and 500 Wh grid of the 1000 Wh not taken.
    assert _mix(market, address, 0, 0) == SourceMix(1000, 0, 0)
    assert _mix(market, address, 0, 1) == SourceMix(0, 500, 500)
    assert list(sc.read(market.chain, address, "choosers")) == [market.prosumers[0].address]


def test_a_choice_holds_from_the_next_gate_and_is_stated_once_by_a_prosumer_only():
    market, address = _market()
    _trade_and_meter(market, 0)
    (late,) = market.mine([sc.choose_pv(market.prosumers[0], address)])
    assert late.ok
    assert not sc.read(market.chain, address, "chose_pv", 0, market.prosumers[0].address)
    assert _mix(market, address, 0, 0) == SourceMix(500, 250, 250)            # interval 0 was cleared before
    assert sc.read(market.chain, address, "chose_pv", 5, market.prosumers[0].address)
    assert reverted(market.mine([sc.choose_pv(market.prosumers[0], address)])[0], "source: already chosen")
    assert reverted(market.mine([sc.choose_pv(market.outsider, address)])[0], "source: caller is not a prosumer")
    assert reverted(market.mine([sc.choose_pv(market.operator, address)])[0], "source: caller is not a prosumer")


@pytest.mark.parametrize("choosers", [(0,), (1,), (0, 1)])
def test_the_contract_is_the_reference(choosers):
    market, address = _market()
    market.mine([sc.choose_pv(market.prosumers[i], address) for i in choosers])
    _trade_and_meter(market, 0)
    sold = SourceMix(*market.read("Settlement", "sold_mix", 0))
    chosen_wh = sc.read(market.chain, address, "pv_chosen_wh", 0)
    assert chosen_wh == 1000 * len(choosers)
    for i in range(4):
        position = market.read(market.addresses.auction_contract, "position_wh", 0, market.prosumers[i].address)
        import_wh = market.read("Settlement", "reading", 0, market.prosumers[i].address)[0]
        p2p_wh = min(max(-position, 0), import_wh)
        assert _mix(market, address, 0, i) == chosen_mix(p2p_wh, import_wh, i in choosers, sold, chosen_wh)


ENERGY = st.integers(0, 10_000)


@given(pv=ENERGY, battery=ENERGY, grid=ENERGY, buyers=st.lists(st.tuples(st.booleans(), st.integers(0, 100)),
                                                                  min_size=1, max_size=8))
@example(pv=295, battery=716, grid=1309, buyers=[(False, 72), (True, 84), (True, 84)])   # rounded chooser PV
def test_chosen_pv_is_never_more_than_sold_and_a_chooser_never_gets_a_smaller_pv_share(pv, battery, grid, buyers):
    """Buyers' bought energy splits the sold total by weight (a uniform clearing balances); each imports what it
    bought plus a little."""
    sold = SourceMix(pv, battery, grid)
    weights = [w for _, w in buyers]
    if sum(weights) == 0:
        return
    bought = [sold.total_wh * w // sum(weights) for w in weights]
    chosen_wh = sum(b for (chose, _), b in zip(buyers, bought) if chose)
    mixes = [chosen_mix(b, b + 7, chose, sold, chosen_wh) for (chose, _), b in zip(buyers, bought)]
    assert sum(m.pv_wh for m in mixes) <= pv and sum(m.battery_wh for m in mixes) <= battery
    assert all(m.total_wh == b + 7 and min(m.pv_wh, m.battery_wh, m.grid_wh) >= 0 for m, b in zip(mixes, bought))
    shares = [(chose, m.pv_wh / b) for (chose, _), m, b in zip(buyers, mixes, bought) if b > 100]
    chooser = [s for chose, s in shares if chose]
    others = [s for chose, s in shares if not chose]
    if chooser and others:
        assert min(chooser) >= max(others) - 0.01                          # rounding down by at most 1 Wh in 100
    if chosen_wh == 0:
        assert mixes == [consumed_mix(-b, b + 7, sold) for b in bought]
