"""Shiftable loads: profiles, window, cheapest start and the federate step."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.grids.flexload import ShiftableLoad, cheapest_start, flexload_step, run_at

HOUR_S = 3600.0
# 1.5 kWh at 2 kW runs 45 min, anywhere between 01:00 and 06:00.
WASHER = ShiftableLoad(energy_kwh=1.5, power_kw=2.0, earliest_s=1 * HOUR_S, latest_end_s=6 * HOUR_S)
GRID_S = np.arange(0.0, 8 * HOUR_S, 900.0)


def test_run_spreads_its_energy_over_the_steps_it_touches():
    # Start 01:10 runs to 01:55: 5 of 15 min at 2 kW, then two full steps, then 10 of 15 min.
    p_kw = run_at(WASHER, 1 * HOUR_S + 600, GRID_S, 900.0)
    assert p_kw[4:8] == pytest.approx([2.0 / 3, 2.0, 2.0, 4.0 / 3])
    assert np.all(p_kw[:4] == 0.0) and np.all(p_kw[8:] == 0.0)


def test_cheapest_start_lands_in_the_cheap_hour():
    prices = np.ones(GRID_S.size)
    prices[12:16] = 0.1  # 03:00-04:00
    assert cheapest_start(WASHER, prices, GRID_S, 900.0) == 3 * HOUR_S


def test_cheapest_start_may_straddle_steps():
    # One cheap step 03:00-03:15: a 45-min run covering it fully costs the same from 02:30 to 03:00;
    # the earliest such start is returned.
    prices = np.ones(GRID_S.size)
    prices[12] = 0.0
    assert cheapest_start(WASHER, prices, GRID_S, 900.0) == 2.5 * HOUR_S


@pytest.mark.parametrize("kwargs, field", [
    (dict(latest_end_s=1.5 * HOUR_S), "latest_end_s"),
    (dict(latest_end_s=0.0), "latest_end_s"),
    (dict(energy_kwh=0.0), "energy_kwh"),
    (dict(power_kw=-2.0), "power_kw"),
    (dict(earliest_s=np.nan), "earliest_s"),
    (dict(latest_end_s=np.inf), "latest_end_s"),
])
def test_invalid_loads_name_the_field(kwargs, field):
    arguments = dict(energy_kwh=1.5, power_kw=2.0, earliest_s=1 * HOUR_S, latest_end_s=6 * HOUR_S) | kwargs
    with pytest.raises(ValueError, match=field):
        ShiftableLoad(**arguments)


def test_window_exactly_as_long_as_the_run_is_valid():
    load = ShiftableLoad(1.5, 2.0, 1 * HOUR_S, 1.75 * HOUR_S)
    assert load.latest_start_s == load.earliest_s


@pytest.mark.parametrize("start_s", [0.5 * HOUR_S, 5.5 * HOUR_S, np.nan])
def test_start_outside_the_window_is_rejected(start_s):
    with pytest.raises(ValueError, match="start_s"):
        run_at(WASHER, start_s, GRID_S, 900.0)


@pytest.mark.parametrize("prices, times_s, message", [
    (np.ones(3), GRID_S, "prices"),
    (np.ones(6), GRID_S[:6], "time grid"),
    (np.ones(4), np.array([0.0, 900.0, 2700.0, 3600.0]), "consecutive"),
])
def test_cheapest_start_rejects_grids_that_do_not_fit(prices, times_s, message):
    with pytest.raises(ValueError, match=message):
        cheapest_start(WASHER, prices, times_s, 900.0)


def test_step_without_request_starts_at_the_latest_start():
    start_s, profile = None, []
    for t_s in GRID_S:
        p_kw, start_s = flexload_step(start_s, False, t_s, 900.0, WASHER)
        profile.append(p_kw)
    assert start_s == WASHER.latest_start_s
    np.testing.assert_allclose(profile, run_at(WASHER, WASHER.latest_start_s, GRID_S, 900.0))


def test_step_request_before_the_window_waits_for_earliest():
    p_kw, start_s = flexload_step(None, True, 0.0, 900.0, WASHER)
    assert (p_kw, start_s) == (0.0, None)
    p_kw, start_s = flexload_step(None, True, 0.9 * HOUR_S, 900.0, WASHER)
    assert start_s == 1 * HOUR_S
    assert p_kw == pytest.approx(2.0 * 540 / 900)


def test_step_past_the_latest_start_without_a_run_is_rejected():
    with pytest.raises(ValueError, match="latest_start_s"):
        flexload_step(None, False, 5.5 * HOUR_S, 900.0, WASHER)


@st.composite
def loads_on_grids(draw, max_s=6 * 3600):
    """A load with whole-second window and run time, a step length and a grid covering the window."""
    dt_s = draw(st.sampled_from([60.0, 300.0, 900.0]))
    power_kw = draw(st.floats(0.1, 5.0))
    energy_kwh = power_kw * draw(st.integers(1, max_s)) / HOUR_S
    earliest_s = float(draw(st.integers(0, max_s)))
    duration_s = energy_kwh / power_kw * HOUR_S
    load = ShiftableLoad(energy_kwh, power_kw, earliest_s, earliest_s + duration_s + draw(st.integers(0, max_s)))
    times_s = np.arange(0.0, load.latest_end_s + draw(st.integers(0, 3)) * dt_s, dt_s)
    return load, dt_s, times_s


@given(loads_on_grids(), st.floats(0.0, 1.0))
def test_profile_integral_is_the_energy_and_stays_in_the_window(case, where):
    load, dt_s, times_s = case
    start_s = load.earliest_s + where * (load.latest_start_s - load.earliest_s)
    p_kw = run_at(load, start_s, times_s, dt_s)
    assert np.sum(p_kw) * dt_s / HOUR_S == pytest.approx(load.energy_kwh, rel=1e-9)
    assert np.all(p_kw <= load.power_kw * (1 + 1e-12))
    running = p_kw > 0.0
    assert np.all(times_s[running] + dt_s > start_s)
    assert np.all(times_s[running] < start_s + load.duration_s)
    assert np.all(times_s[running] + dt_s > load.earliest_s)
    assert np.all(times_s[running] < load.latest_end_s)


@settings(deadline=None)  # brute force over thousands of starts
@given(loads_on_grids(max_s=2 * 3600), st.data())
def test_cheapest_start_matches_brute_force_over_every_second(case, data):
    # Steps, window and run time are whole seconds (up to rounding of the run time), so every
    # kink of the cost is within rounding of a whole second and brute force over whole-second
    # starts finds the optimum.
    load, dt_s, times_s = case
    prices = np.array(data.draw(st.lists(st.integers(-5, 20), min_size=times_s.size, max_size=times_s.size)),
                      dtype=float)
    start_s = cheapest_start(load, prices, times_s, dt_s)
    assert load.earliest_s <= start_s <= load.latest_start_s
    starts_s = np.append(np.arange(load.earliest_s, load.latest_start_s), load.latest_start_s)[:, np.newaxis]
    running_s = np.minimum(starts_s + load.duration_s, times_s + dt_s) - np.maximum(starts_s, times_s)
    brute_costs = load.power_kw * np.maximum(running_s, 0.0) / HOUR_S @ prices
    cost = run_at(load, start_s, times_s, dt_s) * dt_s / HOUR_S @ prices
    assert cost == pytest.approx(brute_costs.min(), abs=1e-9)


@given(loads_on_grids(), st.data())
def test_no_start_in_the_window_is_cheaper(case, data):
    load, dt_s, times_s = case
    prices = np.array(data.draw(st.lists(st.floats(-1.0, 1.0), min_size=times_s.size, max_size=times_s.size)))
    other_s = data.draw(st.floats(load.earliest_s, load.latest_start_s))
    start_s = cheapest_start(load, prices, times_s, dt_s)
    cost = run_at(load, start_s, times_s, dt_s) @ prices
    assert cost <= run_at(load, other_s, times_s, dt_s) @ prices + 1e-9


@settings(deadline=None)  # hundreds of steps per example
@given(loads_on_grids(), st.lists(st.booleans(), min_size=1, max_size=50))
def test_federate_steps_run_once_within_the_window_for_any_requests(case, requests):
    load, dt_s, times_s = case
    start_s, profile = None, []
    for k, t_s in enumerate(times_s):
        p_kw, start_s = flexload_step(start_s, requests[k % len(requests)], t_s, dt_s, load)
        profile.append(p_kw)
    assert start_s is not None and load.earliest_s <= start_s <= load.latest_start_s
    np.testing.assert_allclose(profile, run_at(load, start_s, times_s, dt_s))
    assert np.sum(profile) * dt_s / HOUR_S == pytest.approx(load.energy_kwh, rel=1e-9)
