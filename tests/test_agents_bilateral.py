"""Bilateral two-phase trades: who takes part, who pairs with whom by hand, trade ids that name their interval,
which meters fall silent."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from gridledger.agents.bilateral import pairs, participants, silent, trade_id, trade_interval
from gridledger.agents.der_agents import delivery_target_wh
from gridledger.study import parse_study

ADDRESS = "0x" + "ab" * 20


def test_deficits_pair_with_surpluses_largest_with_largest_for_a_firm_share_of_the_smaller():
    exports_wh = np.array([-3000, 5000, -1000, 2000, 400, -7000])
    taking_part = np.array([True, True, True, True, False, True])
    # Buyers by deficit: 5 (7000), 0 (3000), 2 (1000); sellers by surplus: 1 (5000), 3 (2000); 4 does not take part.
    assert pairs(exports_wh, taking_part) == [(5, 1, 5000), (0, 3, 2000)]
    assert pairs(exports_wh, taking_part, firm_share=0.5) == [(5, 1, 2500), (0, 3, 1000)]
    assert pairs(exports_wh, ~taking_part) == []                      # only prosumer 4: nobody to pair with


@given(st.lists(st.integers(-10_000, 10_000), min_size=1, max_size=40), st.floats(0.01, 1.0))
def test_every_pair_is_a_buyer_and_a_seller_once_each_within_both_forecasts(exports, firm_share):
    exports_wh = np.array(exports)
    found = pairs(exports_wh, np.ones(len(exports_wh), dtype=bool), firm_share)
    buyers, sellers = [b for b, _, _ in found], [s for _, s, _ in found]
    assert len(set(buyers)) == len(buyers) and len(set(sellers)) == len(sellers)
    for b, s, energy_wh in found:
        assert exports_wh[b] < 0 < exports_wh[s] and 0 < energy_wh <= min(-exports_wh[b], exports_wh[s])


@given(st.integers(0, 2**32 - 1))
def test_a_trade_id_names_its_interval(interval):
    tid = trade_id(interval, ADDRESS)
    assert len(tid) == 32 and trade_interval("0x" + tid.hex()) == interval
    assert trade_interval("0x" + b"somebody's id".ljust(32, b"\0").hex()) is None


def test_participants_are_the_share_drawn_with_the_seed():
    taking_part = participants(32, 0.5, 42)
    assert taking_part.sum() == 16 and (taking_part == participants(32, 0.5, 42)).all()
    assert participants(3, 0.01, 42).sum() == 1                       # at least one


def test_a_meter_is_silent_for_the_intervals_that_start_in_its_window():
    study = parse_study({"name": "x", "duration_s": 7200, "two_phase": {
        "silent_meters": {"prosumers": ["p02"], "start_s": 1800, "end_s": 3600}}})
    assert [silent(study, "p02", k) for k in range(5)] == [False, False, True, True, False]
    assert not silent(study, "p01", 2)
    assert not silent(parse_study({"name": "x"}), "p02", 2)


def test_a_battery_aims_at_its_position_or_at_least_its_traded_sale_and_at_most_its_traded_purchase():
    # The trades' energy is already in the orders: a seller who cleared 2000 Wh and sold 1000 bilaterally delivers
    # 2000, not 3000; one who cleared nothing delivers its 1000; a buyer likewise.
    position_wh = np.array([2000, 0, -3000, 0, 500])
    bilateral_wh = np.array([1000, 1000, -1000, -1000, 0])
    assert delivery_target_wh(position_wh, bilateral_wh).tolist() == [2000, 1000, -3000, -1000, 500]
