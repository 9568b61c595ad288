"""Prosumer bidding in the lot auctions: pure functions, hand-checked and property-tested."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridledger.contracts.market import LotState
from gridledger.agents.prosumer import english_bid, required_price_wei_per_wh, sealed_bid_salt, vickrey_lot
from gridledger.study import parse_study
from tests.secret_helpers import fixed_secret

NOBODY = "0x" + "00" * 20
ME = "0x" + "11" * 20
OTHER = "0x" + "22" * 20


def lot(lot_id, reserve, leader=NOBODY, price=0, seller=OTHER, energy_wh=500):
    return LotState(lot_id, seller, energy_wh, reserve, leader, price)


def test_vickrey_buyers_spread_round_robin_over_the_lots_they_can_afford():
    lots = [lot(0, 10), lot(1, 50), lot(2, 20)]
    assert [vickrey_lot(lots, rank, 30).lot_id for rank in range(4)] == [0, 2, 0, 2]
    assert vickrey_lot(lots, 0, 9) is None
    assert vickrey_lot([], 0, 100) is None


def test_required_price_is_the_reserve_until_someone_leads_then_leader_plus_increment():
    assert required_price_wei_per_wh(lot(0, 10), 3) == 10
    assert required_price_wei_per_wh(lot(0, 10, leader=OTHER, price=12), 3) == 15


def test_english_leader_does_not_bid_and_nobody_bids_on_own_or_unaffordable_lots():
    lots = [lot(0, 10, leader=ME, price=10), lot(1, 5)]
    assert english_bid(lots, ME, 100, 1, 0.0) is None
    own = [lot(0, 5, seller=ME), lot(1, 50)]
    assert english_bid(own, ME, 40, 1, 0.0) is None
    chosen, price = english_bid(own, ME, 60, 1, 0.99)
    assert (chosen.lot_id, price) == (1, 50)


def test_english_draw_picks_among_affordable_lots_by_required_price():
    lots = [lot(0, 30), lot(1, 10, leader=OTHER, price=18), lot(2, 20)]
    # required: lot0 30, lot1 18 + 2 = 20, lot2 20 -> sorted (20, 1), (20, 2), (30, 0)
    picks = [english_bid(lots, ME, 100, 2, d) for d in (0.0, 0.34, 0.67)]
    assert [(c.lot_id, p) for c, p in picks] == [(1, 20), (2, 20), (0, 30)]


@given(st.lists(st.tuples(st.integers(1, 100), st.integers(0, 1), st.integers(0, 100)), max_size=8),
       st.integers(1, 120), st.integers(1, 5), st.floats(0, 1, exclude_max=True))
def test_english_bid_is_always_the_least_allowed_price_within_the_limit(specs, limit, increment, draw):
    lots = [lot(i, reserve, leader=OTHER if led else NOBODY, price=reserve + extra if led else 0)
            for i, (reserve, led, extra) in enumerate(specs)]
    choice = english_bid(lots, ME, limit, increment, draw)
    allowed = [required_price_wei_per_wh(x, increment) for x in lots]
    if choice is None:
        assert all(a > limit for a in allowed)
    else:
        chosen, price = choice
        assert price == allowed[chosen.lot_id] <= limit


def test_sealed_bid_salt_is_32_bytes_and_differs_per_bidder_interval_and_secret():
    secret = fixed_secret(42)
    salts = {sealed_bid_salt(secret, agent, k) for agent in range(3) for k in range(3)}
    assert len(salts) == 9 and all(len(s) == 32 for s in salts)
    assert sealed_bid_salt(secret, 1, 1) == sealed_bid_salt(secret, 1, 1)
    assert sealed_bid_salt(fixed_secret(43), 1, 1) != sealed_bid_salt(secret, 1, 1)


def test_flexload_starts_in_the_expected_pv_surplus_and_keeps_its_energy():
    from gridledger.agents.prosumer import flexload_schedule_kw
    from gridledger.grids.flexload import ShiftableLoad

    times_s = np.arange(0, 12 * 3600, 900.0)
    net_kw = np.full(len(times_s), 1.0)
    net_kw[20:28] = -3.0                        # surplus from 05:00 to 07:00
    load = ShiftableLoad(energy_kwh=2.0, power_kw=2.0, earliest_s=0.0, latest_end_s=12 * 3600.0)
    p_kw = flexload_schedule_kw(load, net_kw, times_s, 900.0, 0.30, 0.08)
    assert p_kw.sum() * 0.25 == pytest.approx(2.0)
    assert np.flatnonzero(p_kw).tolist() == [20, 21, 22, 23]


def test_flexload_profiles_follow_the_study_share_and_window():
    from gridledger.agents.devices import flexload_profiles_kw
    from gridledger.scenario import build_scenario
    from gridledger.study import load_study

    study = load_study("studies/baran-wu-short.yaml")
    data = study.model_dump(mode="json")
    data["prosumers"]["flexload"] = {"share": 0.5, "energy_kwh": 1.5, "power_kw": 3.0,
                                     "earliest_h": 10.5, "latest_end_h": 11.5}
    sc = build_scenario(parse_study(data))
    p_kw = flexload_profiles_kw(sc)
    owners = np.flatnonzero(p_kw.sum(axis=0))
    assert 8 <= len(owners) <= 24
    np.testing.assert_allclose(p_kw[:, owners].sum(axis=0) * 300 / 3600, 1.5)
    active = np.flatnonzero(p_kw.sum(axis=1))
    assert active.min() >= 6 and active.max() < 18          # 10:30-11:30 of a study starting 10:00
