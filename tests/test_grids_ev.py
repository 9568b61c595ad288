"""EV sessions: generator, charging step, laxity and must-charge power."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.grids.ev import (
    ARRIVAL_RANGE_H,
    CHARGER_POWERS_KW,
    CONSUMPTION_RANGE_KWH_PER_KM,
    DEPARTURE_RANGE_H,
    DISTANCE_RANGE_KM,
    EVSession,
    ev_sessions,
    ev_step,
    laxity_s,
    must_charge_kw,
    uncoordinated_kw,
)

HOUR_S = 3600.0
EVENING = EVSession(
    arrival_s=18 * HOUR_S, departure_s=31 * HOUR_S, energy_needed_kwh=10.0, max_charge_kw=7.4, efficiency=0.95
)


def test_hand_computed_session_charges_at_full_power_then_tops_up():
    # Each full 5-min step puts 7.4 kW * 0.95 * 300 s / 3600 s/h = 0.5858333 kWh into the battery,
    # so 17 steps give 9.9591667 kWh; the 18th needs 0.0408333 kWh, drawn as 0.0429825 kWh
    # from the grid = 0.5157895 kW mean; then the charger stops.
    expected = [  # (step start, mean grid power [kW], delivered at step end [kWh])
        (18 * HOUR_S - 300, 0.0, 0.0),  # 17:55-18:00 is before plug-in
        (18 * HOUR_S, 7.4, 0.5858333333),
        (18 * HOUR_S + 300, 7.4, 1.1716666667),
        (18 * HOUR_S + 600, 7.4, 1.7575),
        *[(18 * HOUR_S + 300 * k, 7.4, 0.5858333333 * (k + 1)) for k in range(3, 17)],
        (18 * HOUR_S + 300 * 17, 0.5157894737, 10.0),
        (18 * HOUR_S + 300 * 18, 0.0, 10.0),
    ]
    delivered_kwh = 0.0
    for t_s, p_expected, delivered_expected in expected:
        p_kw, delivered_kwh = ev_step(delivered_kwh, 7.4, t_s, 300.0, EVENING)
        assert p_kw == pytest.approx(p_expected, abs=1e-9)
        assert delivered_kwh == pytest.approx(delivered_expected, abs=1e-9)
    assert delivered_kwh == 10.0


def test_arrival_within_a_step_charges_for_the_plugged_in_part_only():
    session = EVSession(18 * HOUR_S + 120, 31 * HOUR_S, 10.0, 7.4, 0.95)
    p_kw, delivered_kwh = ev_step(0.0, 7.4, 18 * HOUR_S, 300.0, session)
    assert p_kw == pytest.approx(7.4 * 180 / 300)
    assert delivered_kwh == pytest.approx(7.4 * 0.95 * 180 / HOUR_S)


def test_allowed_power_below_the_rating_limits_charging():
    p_kw, delivered_kwh = ev_step(0.0, 3.0, 18 * HOUR_S, 900.0, EVENING)
    assert p_kw == 3.0
    assert delivered_kwh == pytest.approx(3.0 * 0.95 * 0.25)


def test_no_charging_after_departure_even_if_energy_is_missing():
    p_kw, delivered_kwh = ev_step(4.0, np.inf, 31 * HOUR_S, 900.0, EVENING)
    assert (p_kw, delivered_kwh) == (0.0, 4.0)


def test_fleet_steps_return_one_value_per_session():
    late = EVSession(20 * HOUR_S, 30 * HOUR_S, 5.0, 11.0, 0.9)
    p_kw, delivered_kwh = ev_step(np.array([0.0, 0.0]), np.inf, 18 * HOUR_S, 3600.0, [EVENING, late])
    assert p_kw.tolist() == [7.4, 0.0]
    assert delivered_kwh.tolist() == pytest.approx([7.03, 0.0])


def test_laxity_is_the_slack_at_full_power():
    # 10 kWh at 7.4 kW * 0.95 takes 5120.6 s of the 13 h stay.
    assert laxity_s(0.0, 0.0, EVENING) == pytest.approx(13 * HOUR_S - 10.0 / (7.4 * 0.95) * HOUR_S)
    assert laxity_s(10.0, 40 * HOUR_S, EVENING) == 0.0
    assert laxity_s(9.0, 31 * HOUR_S, EVENING) == -np.inf


def test_must_charge_is_zero_with_slack_and_full_power_without():
    assert must_charge_kw(0.0, 18 * HOUR_S, 900.0, EVENING) == 0.0
    # At 05:30 with 10 kWh missing: full power after 05:45 delivers 7.4 * 1.25 h of grid energy,
    # so this step must draw 10 / 0.95 - 9.25 = 1.2763158 kWh, i.e. 5.1052632 kW over 15 min.
    assert must_charge_kw(0.0, 29.5 * HOUR_S, 900.0, EVENING) == pytest.approx(5.1052632, abs=1e-6)
    assert must_charge_kw(0.0, 30.5 * HOUR_S, 900.0, EVENING) == 7.4
    assert must_charge_kw(0.0, 32 * HOUR_S, 900.0, EVENING) == 0.0


def test_deferred_charging_completes_exactly_at_departure():
    delivered_kwh, profile = 0.0, []
    for t_s in np.arange(18 * HOUR_S, 31 * HOUR_S, 900.0):
        allowed_kw = must_charge_kw(delivered_kwh, t_s, 900.0, EVENING)
        p_kw, delivered_kwh = ev_step(delivered_kwh, allowed_kw, t_s, 900.0, EVENING)
        profile.append(p_kw)
    assert delivered_kwh == pytest.approx(10.0, abs=1e-9)
    assert max(profile[:-6]) == 0.0  # nothing before 05:30
    assert profile[-1] == 7.4


@pytest.mark.parametrize("kwargs, field", [
    (dict(arrival_s=np.nan), "arrival_s"),
    (dict(departure_s=18 * HOUR_S), "departure_s"),
    (dict(energy_needed_kwh=-1.0), "energy_needed_kwh"),
    (dict(max_charge_kw=0.0), "max_charge_kw"),
    (dict(efficiency=0.0), "efficiency"),
    (dict(efficiency=1.01), "efficiency"),
    (dict(max_charge_kw="7.4"), "max_charge_kw"),
])
def test_invalid_sessions_name_the_field(kwargs, field):
    arguments = dict(arrival_s=18 * HOUR_S, departure_s=31 * HOUR_S, energy_needed_kwh=10.0,
                     max_charge_kw=7.4, efficiency=0.95) | kwargs
    with pytest.raises(ValueError, match=field):
        EVSession(**arguments)


@pytest.mark.parametrize("kwargs, message", [
    (dict(allowed_kw=-1.0), "allowed_kw"),
    (dict(allowed_kw=np.nan), "allowed_kw"),
    (dict(delivered_kwh=10.5), "delivered_kwh"),
    (dict(dt_s=0.0), "dt_s"),
    (dict(t_s=np.inf), "t_s"),
    (dict(session=[EVENING, "ev"]), "session"),
])
def test_bad_step_arguments_are_rejected(kwargs, message):
    arguments = dict(delivered_kwh=0.0, allowed_kw=7.4, t_s=18 * HOUR_S, dt_s=300.0, session=EVENING) | kwargs
    with pytest.raises(ValueError, match=message):
        ev_step(**arguments)


@st.composite
def fleets(draw):
    """A few sessions and a step length, with steps covering every stay."""
    n = draw(st.integers(1, 4))
    sessions = []
    for _ in range(n):
        arrival_s = draw(st.floats(0.0, 24 * HOUR_S))
        sessions.append(EVSession(
            arrival_s=arrival_s,
            departure_s=arrival_s + draw(st.floats(60.0, 16 * HOUR_S)),
            energy_needed_kwh=draw(st.floats(0.0, 80.0)),
            max_charge_kw=draw(st.floats(1.0, 22.0)),
            efficiency=draw(st.floats(0.5, 1.0)),
        ))
    dt_s = draw(st.floats(300.0, 3600.0))
    first_s = min(s.arrival_s for s in sessions) - draw(st.floats(0.0, 2 * dt_s))
    times_s = np.arange(first_s, max(s.departure_s for s in sessions) + dt_s, dt_s)
    return sessions, dt_s, times_s


def _fields(sessions):
    return {name: np.array([getattr(s, name) for s in sessions])
            for name in ("arrival_s", "departure_s", "energy_needed_kwh", "max_charge_kw", "efficiency")}


@settings(deadline=None)  # hundreds of steps per example
@given(fleets(), st.lists(st.one_of(st.just(0.0), st.floats(0.0, 30.0), st.just(np.inf)), min_size=1, max_size=20))
def test_charging_respects_limits_and_never_overshoots(fleet, allowed_cycle_kw):
    sessions, dt_s, times_s = fleet
    f = _fields(sessions)
    delivered_kwh = np.zeros(len(sessions))
    for k, t_s in enumerate(times_s):
        allowed_kw = allowed_cycle_kw[k % len(allowed_cycle_kw)]
        p_kw, delivered_new = ev_step(delivered_kwh, allowed_kw, t_s, dt_s, sessions)
        plugged = (t_s < f["departure_s"]) & (t_s + dt_s > f["arrival_s"])
        assert np.all(p_kw >= 0.0)
        assert np.all(p_kw <= np.minimum(allowed_kw, f["max_charge_kw"]))
        assert np.all(p_kw[~plugged] == 0.0)
        assert np.all(delivered_new >= delivered_kwh)
        assert np.all(delivered_new <= f["energy_needed_kwh"])
        np.testing.assert_allclose(
            delivered_new - delivered_kwh, f["efficiency"] * p_kw * dt_s / HOUR_S, rtol=1e-9, atol=1e-9
        )
        delivered_kwh = delivered_new


@settings(deadline=None)  # hundreds of steps per example
@given(fleets(), st.lists(st.one_of(st.just(0.0), st.floats(0.0, 30.0), st.just(np.inf)), min_size=1, max_size=20))
def test_at_least_the_must_charge_power_completes_every_feasible_session(fleet, extra_cycle_kw):
    sessions, dt_s, times_s = fleet
    f = _fields(sessions)
    feasible = laxity_s(np.zeros(len(sessions)), times_s[0], sessions) >= 0.0
    delivered_kwh = np.zeros(len(sessions))
    for k, t_s in enumerate(times_s):
        must_kw = must_charge_kw(delivered_kwh, t_s, dt_s, sessions)
        assert np.all((must_kw >= 0.0) & (must_kw <= f["max_charge_kw"]))
        allowed_kw = must_kw + extra_cycle_kw[k % len(extra_cycle_kw)]
        _, delivered_kwh = ev_step(delivered_kwh, allowed_kw, t_s, dt_s, sessions)
    needed = f["energy_needed_kwh"]
    np.testing.assert_allclose(delivered_kwh[feasible], needed[feasible], rtol=1e-9, atol=1e-9)
    assert np.all(delivered_kwh <= needed)


@settings(deadline=None)  # hundreds of steps per example
@given(fleets())
def test_uncoordinated_profile_matches_stepping_at_unlimited_power(fleet):
    sessions, dt_s, times_s = fleet
    delivered_kwh, profile = np.zeros(len(sessions)), []
    for t_s in times_s:
        p_kw, delivered_kwh = ev_step(delivered_kwh, np.inf, t_s, dt_s, sessions)
        profile.append(p_kw)
    np.testing.assert_allclose(uncoordinated_kw(times_s, dt_s, sessions), np.array(profile), rtol=1e-9, atol=1e-9)


def test_generator_is_deterministic_for_a_seed():
    assert ev_sessions(20, 7) == ev_sessions(20, 7)
    assert ev_sessions(20, 7) != ev_sessions(20, 8)


def test_adding_sessions_leaves_the_first_ones_unchanged():
    assert ev_sessions(30, 7)[:10] == ev_sessions(10, 7)


def test_midnight_shifts_every_session():
    shifted = ev_sessions(5, 3, midnight_s=-12 * HOUR_S)
    for a, b in zip(ev_sessions(5, 3), shifted):
        assert b.arrival_s == pytest.approx(a.arrival_s - 12 * HOUR_S)
        assert b.departure_s == pytest.approx(a.departure_s - 12 * HOUR_S)
        assert b.energy_needed_kwh == a.energy_needed_kwh


def test_generated_sessions_are_within_the_documented_bounds_and_feasible():
    sessions = ev_sessions(2000, 11)
    f = _fields(sessions)
    arrival_h, departure_h = f["arrival_s"] / HOUR_S, f["departure_s"] / HOUR_S - 24.0
    assert np.all((arrival_h >= ARRIVAL_RANGE_H[0]) & (arrival_h <= ARRIVAL_RANGE_H[1]))
    assert np.all((departure_h >= DEPARTURE_RANGE_H[0]) & (departure_h <= DEPARTURE_RANGE_H[1]))
    energy_bounds = (DISTANCE_RANGE_KM[0] * CONSUMPTION_RANGE_KWH_PER_KM[0],
                     DISTANCE_RANGE_KM[1] * CONSUMPTION_RANGE_KWH_PER_KM[1])
    assert np.all((f["energy_needed_kwh"] >= energy_bounds[0]) & (f["energy_needed_kwh"] <= energy_bounds[1]))
    assert set(f["max_charge_kw"]) == set(CHARGER_POWERS_KW)
    assert arrival_h.mean() == pytest.approx(18.0, abs=0.15)
    assert departure_h.mean() == pytest.approx(7.0, abs=0.15)
    # Mean distance about 30 km at 0.175 kWh/km.
    assert f["energy_needed_kwh"].mean() == pytest.approx(30 * 0.175, rel=0.15)
    assert np.all(laxity_s(np.zeros(len(sessions)), 0.0, sessions) >= 0.0)


def test_uncoordinated_fleet_peaks_in_the_evening():
    times_s = np.arange(12 * HOUR_S, 36 * HOUR_S, 900.0)
    total_kw = uncoordinated_kw(times_s, 900.0, ev_sessions(100, 2)).sum(axis=1)
    peak_h = times_s[np.argmax(total_kw)] / HOUR_S
    assert 17.0 <= peak_h < 22.0
    assert total_kw.max() > 3 * total_kw[times_s >= 24 * HOUR_S].max()
