"""The pure parts of the ancillary services: the DSO's plan, the meters' baseline, the households' duties and offers,
and the batteries' charging scheduled through the coordination contract.

Each figure is worked out by hand in the test; the properties are checked with hypothesis.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.agents.ancillary_agents import AncillaryAgents
from gridledger.agents.ancillary_duties import AncillaryDuties, Response
from gridledger.agents.ancillary_terms import providers, storage_registrations
from gridledger.agents.reserve_metering import ResponseMeters, baseline_step, delivered_wh, response_steps
from gridledger.agents.reserve_offers import ReserveWindow, enrolments, interruptible, reserve_offers
from gridledger.agents.shortage import Bias, activation_w, cap_windows, capped_intervals, shed_call_w, shortfall_w
from gridledger.roster import roster_of
from gridledger.scenario import build_scenario
from gridledger.study import Study

STEP_S = 300


def _study(caps: list[dict]) -> Study:
    return Study(name="t", duration_s=4 * 3600, events={"import_caps": caps})


def test_capped_intervals_take_the_lowest_cap_of_their_steps_and_windows_join_consecutive_intervals():
    study = _study([{"start_s": 1800, "end_s": 3000, "cap_mw": 0.05}, {"start_s": 3000, "end_s": 3600, "cap_mw": 0.04},
                    {"start_s": 7200, "end_s": 8100, "cap_mw": 0.03}])
    # Steps of 300 s: 1800-2999 is interval 2 (1800-2700) and interval 3's first step (2700-3000); 3000-3599 is
    # interval 3's last two steps at 0.04; 7200-8099 is interval 8.
    assert capped_intervals(study) == {2: 0.05, 3: 0.04, 8: 0.03}
    assert cap_windows(study) == [(2, 4), (8, 9)]


def test_shortfall_is_the_highest_excess_over_the_cap_with_the_margin_rounded_up():
    # max 0.0523 MW over 0.042 MW = 10.3 kW; times 1.2 = 12.36 kW = 12360 W
    assert shortfall_w(np.array([0.048, 0.0523, 0.05]), 0.042, 0.2) == 12360
    assert shortfall_w(np.array([0.03, 0.04]), 0.042, 0.2) == 0


def test_activation_and_call_cover_what_the_reserve_leaves():
    assert activation_w(12000, 9000) == 9000 and activation_w(5000, 9000) == 5000 and activation_w(-1, 9000) == 0
    # needs 12, 15, 9 kW with 9, 9, 9 awarded: the call covers the largest gap, 6 kW
    assert shed_call_w([12000, 15000, 9000], [9000, 9000, 9000]) == 6000
    assert shed_call_w([8000], [9000]) == 0 and shed_call_w([], []) == 0


def test_the_bias_is_kept_over_capped_starts():
    bias = Bias()
    assert bias.measured(0.05, 0.045, capped=False) == pytest.approx(0.005)
    assert bias.measured(0.042, 0.06, capped=True) == pytest.approx(0.005)
    assert bias.measured(float("nan"), 0.06, capped=False) == pytest.approx(0.005)


def test_a_response_covers_the_steps_that_start_inside_it():
    assert response_steps(900, 1800, STEP_S) == range(3, 6)
    assert response_steps(901, 1800, STEP_S) == range(4, 6)


def test_delivered_energy_is_the_meter_before_baseline_minus_the_metered_import():
    # Net export per step [MW]: baseline step 2 imports 2 kW (-0.002); steps 3-5 export 1 kW, import 1 kW, NaN.
    export_mw = np.array([0.0, 0.0, -0.002, 0.001, -0.001, np.nan])
    # reductions 3 kW and 1 kW over 300 s each: (3 + 1) kW * 1/12 h = 333.3 Wh -> 333
    assert delivered_wh(export_mw, range(3, 6), STEP_S, 2) == 333
    # importing more than the baseline delivers nothing, never a negative amount
    assert delivered_wh(np.array([0.0, 0.001, -0.003]), range(1, 3), STEP_S, 0) == 0
    assert delivered_wh(export_mw, range(0, 2), STEP_S, -1) == 0


def test_a_continued_response_keeps_the_first_ones_baseline():
    assert baseline_step(range(6, 9), [range(3, 6)]) == 2
    assert baseline_step(range(6, 9), [range(0, 6), range(3, 5)]) == -1
    assert baseline_step(range(7, 9), [range(3, 6)]) == 6


def test_the_meters_know_who_stands_in_reserve_who_is_activated_and_who_is_called_at_each_time():
    meters = ResponseMeters("0xreserve", "0xshed", {"0xa": 0, "0xb": 1, "0xc": 2}, 300)
    meters.handle({"type": "reserve_awards", "awards": [
        {"window_id": 0, "interval": 4, "provider": "0xa", "p_w": 5000, "start_s": 3600, "end_s": 4500},
        {"window_id": 0, "interval": 4, "provider": "0xb", "p_w": 3000, "start_s": 3600, "end_s": 4500}]})
    meters.handle({"type": "reserve_activations", "activations": [
        {"window_id": 0, "interval": 4, "provider": "0xa", "p_w": 4000, "from_s": 3900, "to_s": 4500}]})
    meters.handle({"type": "shed_calls", "calls": [
        {"event_id": 0, "load": "0xc", "shed_w": 1000, "energy_wh": 250, "interval": 4, "from_s": 3600,
         "to_s": 4500}]})
    assert meters.reserve_mw(3599) == {} and meters.reserve_mw(4500) == {}
    assert meters.reserve_mw(3600) == {0: 0.0, 1: 0.0}                    # awarded, the activation not yet in force
    assert meters.reserve_mw(3900) == {0: 0.004, 1: 0.0}
    assert meters.responding(3900) == {0: 4000, 2: 1000} and meters.responding(3900, ("shed",)) == {2: 1000}


def test_duties_hold_energy_for_awards_and_target_the_baseline_plus_the_activation():
    duties = AncillaryDuties(2, STEP_S, discharge_efficiency=0.95)
    duties.awards += [Response(0, 4000, 1800, 2700), Response(0, 4000, 2700, 3600)]
    # after step 5 (ends 1800 s): both windows whole, 4 kW * 0.5 h = 2 kWh, over the efficiency
    assert duties.held_kwh(5) == pytest.approx([2.0 / 0.95, 0.0])
    # after step 7 (ends 2400 s): 300 s of the first and all of the second, 4 kW * 1200 s = 1.333 kWh
    assert duties.held_kwh(7)[0] == pytest.approx(4 * 1200 / 3600 / 0.95)
    duties.activations += [Response(0, 3000, 1800, 2700), Response(0, 2000, 2700, 3600)]
    net_export_kw = np.full((12, 2), np.nan)
    net_export_kw[5] = [-1.5, 0.2]
    assert duties.export_target_kw(6, net_export_kw)[0] == pytest.approx(1.5)
    assert np.isnan(duties.export_target_kw(6, net_export_kw)[1])
    # the second activation continues the first: same baseline (step 5), its own power
    assert duties.export_target_kw(9, net_export_kw)[0] == pytest.approx(0.5)
    duties.calls.append(Response(1, 500, 1800, 3600))
    assert list(duties.shed_kw(8)) == [0.0, 0.5] and list(duties.shed_kw(12)) == [0.0, 0.0]


def test_offers_spread_the_stored_energy_over_every_window_and_stay_within_the_caps():
    windows = [ReserveWindow(w, 24 + w, 10_000, 21600 + 900 * w, 22500 + 900 * w, 100, 1000) for w in range(6)]
    rating_kw = np.array([5.0, 0.0, 3.0, 4.0])
    # 6 windows of 15 min = 1.5 h: 6 kWh -> 4 kW (below the 5 kW rating); 9 kWh -> 6 kW, held at the 3 kW rating;
    # 0.6 kWh -> 0.4 kW, below the 500 W minimum offer: no offer
    offers = reserve_offers(windows, rating_kw, np.array([6.0, 0.0, 9.0, 0.6]), min_offer_w=500, response_s=300,
                            recharge_wei_per_wh=300, seed=1)
    assert {(o.agent, o.p_w) for o in offers} == {(0, 4000), (2, 3000)}
    assert len(offers) == 12
    assert all(20 <= o.capacity_price_wei_per_wh <= 100 and 300 <= o.activation_price_wei_per_wh <= 1000
               for o in offers)
    assert len({o.capacity_price_wei_per_wh for o in offers if o.agent == 0}) == 1


@settings(max_examples=50, deadline=None)
@given(n=st.integers(1, 40), share=st.floats(0.01, 1.0), seed=st.integers(0, 2**32 - 1), data=st.data())
def test_interruptible_loads_are_households_without_a_battery(n, share, seed, data):
    has_battery = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    chosen = interruptible(n, has_battery, share, seed)
    assert not has_battery[chosen].any() and len(set(chosen)) == len(chosen)
    assert len(chosen) == (max(1, round(share * (~has_battery).sum())) if (~has_battery).any() else 0)


def test_enrolments_promise_what_the_expected_load_keeps_up_at_most_the_shed_power():
    expected_kw = np.array([[0.8, 0.3, 2.0], [0.6, 0.2, 2.5]])
    chosen = enrolments(np.array([0, 1, 2]), expected_kw, shed_kw=1.0, min_shed_w=250, notice_s=600,
                        max_events_per_day=2, price_per_event_cap_wei=10**18, price_per_wh_cap_wei=2000, seed=3)
    # lowest expected loads 0.6, 0.2 (below 250 W: not enrolled) and 2.0 kW (held at 1 kW)
    assert [(e.agent, e.shed_w) for e in chosen] == [(0, 600), (2, 1000)]
    assert all(5 * 10**17 <= e.price_per_event_wei <= 10**18 and 1000 <= e.price_per_wh_wei <= 2000 for e in chosen)


def test_a_scheduled_battery_holds_until_its_first_window_and_charges_at_its_admission():
    duties = AncillaryDuties(2, STEP_S, discharge_efficiency=0.9)
    duties.scheduled.add(0)
    duties.awards += [Response(0, 3000, 1800, 2700), Response(0, 3000, 2700, 3600)]
    # 3 kW over 1800 s = 1.5 kWh at the meter, 1.5 / 0.9 stored, from the step before the first window (step 5)
    assert duties.first_award_s(0) == 1800 and duties.first_award_s(1) is None
    assert duties.needed_kwh(0) == pytest.approx(1.5 / 0.9) and duties.needed_kwh(1) == 0.0
    assert list(duties.holding(5)) == [True, False] and list(duties.holding(6)) == [False, False]
    duties.admitted_w[1] = {0: 2500}
    # window (market interval) 1 of 900 s covers steps 3-5
    assert list(duties.charge_kw(3, 900)) == [2.5, 0.0] and list(duties.charge_kw(6, 900)) == [0.0, 0.0]


def test_charge_requests_ask_for_what_the_awards_need_over_the_charge_until_the_first_window():
    study = Study(name="t", duration_s=4 * 3600, grid={"feeder": "1-LV-rural1--0-sw"},
                  prosumers={"count": 6, "battery": {"share": 0.5}},
                  market={"charging_coordination": True},
                  events={"import_caps": [{"start_s": 7200, "end_s": 9000, "cap_mw": 0.01}]},
                  ancillary={"reserve": {"schedule_charging": True}})
    sc = roster_of(build_scenario(study, with_devices=True))
    owners = providers(sc)
    duties = AncillaryDuties(6, STEP_S, discharge_efficiency=0.95)
    agents = AncillaryAgents(sc, duties, {})
    assert duties.scheduled == set(int(i) for i in owners) and len(owners)
    i = int(owners[0])
    capacity = sc.prosumers[i].battery_energy_kwh
    duties.awards.append(Response(i, 2000, 7200, 8100))              # 2 kW over 15 min: 0.5 kWh, 0.5/0.95 stored
    soc = np.zeros(6)
    soc[i] = 0.1 * capacity                                          # at the minimum state of charge (0.1 default)
    ((agent, request),) = agents.charge_requests(4, soc)
    assert agent == i and request.departure_s == 7200
    charging_efficiency = math.sqrt(study.prosumers.battery.efficiency)
    assert request.energy_needed_wh == math.ceil(0.5 / 0.95 / charging_efficiency * 1000)
    assert request.soc_permille == 100
    assert request.power_w == math.floor(sc.prosumers[i].battery_power_kw * 1000)
    assert agents.charge_requests(8, soc) == []                       # window 8 (7200-8100) is the first award's
    soc[i] = capacity
    assert agents.charge_requests(4, soc) == []                       # full: nothing to ask
    (unit, *_) = storage_registrations(sc, [f"0x{k:040x}" for k in range(6)])
    assert unit.capacity_wh == math.ceil(sc.prosumers[int(owners[0])].battery_energy_kwh / charging_efficiency * 1000)
    other = next(k for k in range(6) if k not in duties.scheduled)
    assert agents.admit(4, {i: 1500, other: 800}) == {other: 800} and duties.admitted_w[4] == {i: 1500}
