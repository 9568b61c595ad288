"""Solar geometry, clear-sky irradiance and the daily load and PV profiles."""

import math
from datetime import datetime, timedelta, tzinfo

import numpy as np
import pytest

from gridledger.grids.profiles import (
    LOAD_NOISE_AMPLITUDE,
    PERFORMANCE_RATIO,
    load_profile_pu,
    pv_profile_pu,
)
from gridledger.grids.solar import (
    clearsky_ghi_haurwitz,
    declination_deg,
    hour_angle_deg,
    solar_elevation_deg,
)

START = datetime(2025, 6, 21, 0, 0)
DAY_S = 86400.0
SAME = dict(rtol=1e-12, atol=1e-15)


# --- solar geometry -------------------------------------------------------

def test_declination_at_equinox_and_solstices():
    assert declination_deg(81) == pytest.approx(0.0, abs=1e-12)
    assert declination_deg(172) == pytest.approx(23.45, abs=0.01)
    assert declination_deg(355) == pytest.approx(-23.45, abs=0.01)


@pytest.mark.parametrize("latitude, declination", [(40.0, 0.0), (40.0, 23.45), (-33.9, -23.45), (60.0, 10.0)])
def test_noon_elevation_is_90_minus_latitude_minus_declination(latitude, declination):
    noon = solar_elevation_deg(latitude, declination, hour_angle_deg(12.0))
    assert noon == pytest.approx(90.0 - abs(latitude - declination), abs=1e-9)


def test_sun_is_on_the_horizon_at_the_sunset_hour_angle():
    latitude, declination = 40.0, 23.45
    # Duffie & Beckman eq. 1.6.10: cos(omega_s) = -tan(phi) tan(delta).
    omega_s = math.degrees(math.acos(-math.tan(math.radians(latitude)) * math.tan(math.radians(declination))))
    assert solar_elevation_deg(latitude, declination, omega_s) == pytest.approx(0.0, abs=1e-9)
    assert solar_elevation_deg(latitude, declination, -omega_s) == pytest.approx(0.0, abs=1e-9)


def test_haurwitz_by_hand():
    assert clearsky_ghi_haurwitz(90.0) == pytest.approx(1098.0 * math.exp(-0.059))
    assert clearsky_ghi_haurwitz(30.0) == pytest.approx(487.89, abs=0.01)
    np.testing.assert_array_equal(clearsky_ghi_haurwitz([0.0, -10.0, -90.0]), 0.0)


# --- PV -------------------------------------------------------------------

def test_clear_sky_pv_at_equinox_noon_by_hand():
    equinox_noon = datetime(2025, 3, 22, 12, 0)  # day 81: Cooper declination 0
    pv = pv_profile_pu(equinox_noon, [0.0], 1, seed=0, noise=False, latitude_deg=40.0)
    cos_zenith = math.sin(math.radians(50.0))
    ghi = 1098.0 * cos_zenith * math.exp(-0.059 / cos_zenith)
    assert pv[0, 0] == pytest.approx(PERFORMANCE_RATIO * ghi / 1000.0, rel=1e-12)


@pytest.mark.parametrize("noise", [False, True])
def test_pv_is_zero_at_night_and_positive_by_day(noise):
    latitude = 40.0
    declination = declination_deg(172)
    sunset_h = 12.0 + math.degrees(math.acos(-math.tan(math.radians(latitude))
                                             * math.tan(math.radians(declination)))) / 15.0
    sunrise_h = 24.0 - sunset_h
    times = np.arange(0.0, DAY_S, 60.0)
    hour = times / 3600.0
    pv = pv_profile_pu(START, times, 4, seed=2, noise=noise, latitude_deg=latitude)
    night = (hour < sunrise_h - 0.1) | (hour > sunset_h + 0.1)
    day = (hour > sunrise_h + 0.1) & (hour < sunset_h - 0.1)
    assert np.all(pv[night] == 0.0)
    assert np.all(pv[day] > 0.0)


@pytest.mark.parametrize("latitude", [-60.0, 0.0, 23.45, 40.0, 70.0])
def test_pv_stays_within_zero_and_one_all_year(latitude):
    times = np.arange(0.0, 366 * DAY_S, 1800.0)
    pv = pv_profile_pu(datetime(2024, 1, 1), times, 3, seed=4, latitude_deg=latitude)
    assert pv.min() >= 0.0
    assert pv.max() <= 1.0
    assert pv.max() > 0.5


def test_clouds_only_reduce_pv_within_bounds():
    times = np.arange(0.0, 30 * DAY_S, 900.0)
    clear = pv_profile_pu(START, times, 5, seed=9, noise=False)
    cloudy = pv_profile_pu(START, times, 5, seed=9)
    assert np.all(cloudy <= clear)
    assert np.all(cloudy >= (1.0 - 0.8) * clear)
    assert np.any(cloudy < 0.9 * clear)


def test_nearby_pv_systems_see_mostly_the_same_clouds():
    times = np.arange(6 * 3600.0, 18 * 3600.0, 300.0) + 3 * DAY_S
    cloudy = pv_profile_pu(START, times, 2, seed=1)
    assert np.corrcoef(cloudy[:, 0], cloudy[:, 1])[0, 1] > 0.8
    assert not np.array_equal(cloudy[:, 0], cloudy[:, 1])


# --- load -----------------------------------------------------------------

def test_clean_load_shape_peaks_at_exactly_one():
    times = np.arange(0.0, DAY_S, 1.0)
    clean = load_profile_pu(START, times, 6, seed=3, noise=False)
    assert clean.max() <= 1.0 + 1e-12
    np.testing.assert_allclose(clean.max(axis=0), 1.0, rtol=0, atol=1e-8)
    assert clean.min() > 0.2


def test_clean_load_repeats_every_day():
    times = np.arange(0.0, DAY_S, 600.0)
    today = load_profile_pu(START, times, 3, seed=3, noise=False)
    later = load_profile_pu(START, times + 5 * DAY_S, 3, seed=3, noise=False)
    np.testing.assert_allclose(today, later, rtol=1e-12)


def test_load_peaks_in_the_evening_and_dips_at_night():
    hours = np.arange(0.0, 24.0, 0.25)
    clean = load_profile_pu(START, hours * 3600.0, 20, seed=8, noise=False)
    peak_hours = hours[np.argmax(clean, axis=0)]
    assert np.all((peak_hours >= 17.0) & (peak_hours <= 21.0))
    assert np.all(clean[hours == 3.0] < 0.5)


def test_load_noise_is_bounded_and_autocorrelated():
    times = np.arange(0.0, 7 * DAY_S, 60.0)
    clean = load_profile_pu(START, times, 4, seed=6, noise=False)
    noisy = load_profile_pu(START, times, 4, seed=6)
    variation = noisy / clean - 1.0
    assert np.abs(variation).max() <= LOAD_NOISE_AMPLITUDE + 1e-12
    assert variation.std() > 0.02
    for column in variation.T:
        assert np.corrcoef(column[:-1], column[1:])[0, 1] > 0.95


# --- determinism and slicing ------------------------------------------------

@pytest.mark.parametrize("profile", [load_profile_pu, pv_profile_pu])
def test_same_inputs_give_the_same_values(profile):
    times = np.arange(0.0, 2 * DAY_S, 300.0)
    np.testing.assert_array_equal(profile(START, times, 5, seed=12), profile(START, times, 5, seed=12))


@pytest.mark.parametrize("profile", [load_profile_pu, pv_profile_pu])
def test_different_seeds_give_different_values(profile):
    times = np.arange(8 * 3600.0, 2 * DAY_S, 300.0)
    assert not np.allclose(profile(START, times, 5, seed=1), profile(START, times, 5, seed=2))


@pytest.mark.parametrize("profile", [load_profile_pu, pv_profile_pu])
def test_value_at_a_time_does_not_depend_on_the_other_times_requested(profile):
    grid_times = np.arange(0.0, 3 * DAY_S, 300.0)      # power-flow steps
    market_times = np.arange(0.0, 3 * DAY_S, 900.0)    # market intervals
    full = profile(START, grid_times, 4, seed=5)
    coarse = profile(START, market_times, 4, seed=5)
    np.testing.assert_allclose(coarse, full[::3], **SAME)
    picked = np.array([2 * DAY_S + 600.0, 45000.0, 300.0])
    single = profile(START, picked, 4, seed=5)
    np.testing.assert_allclose(single, full[np.searchsorted(grid_times, picked)], **SAME)
    for k in (0, 100, 500):
        np.testing.assert_allclose(profile(START, grid_times[k:k + 1], 4, seed=5), full[k:k + 1], **SAME)


@pytest.mark.parametrize("profile", [load_profile_pu, pv_profile_pu])
def test_adding_columns_keeps_the_first_ones(profile):
    times = np.arange(0.0, DAY_S, 900.0)
    np.testing.assert_array_equal(profile(START, times, 7, seed=3)[:, :4], profile(START, times, 4, seed=3))


class SummerTime(tzinfo):
    """UTC+2 with one hour of daylight saving, like central Europe in summer."""

    def utcoffset(self, dt):
        return timedelta(hours=2)

    def dst(self, dt):
        return timedelta(hours=1)


@pytest.mark.parametrize("profile", [load_profile_pu, pv_profile_pu])
def test_daylight_saving_time_is_removed(profile):
    times = np.arange(0.0, DAY_S, 900.0)
    aware = profile(datetime(2025, 7, 1, 8, 0, tzinfo=SummerTime()), times, 2, seed=3)
    standard = profile(datetime(2025, 7, 1, 7, 0), times, 2, seed=3)
    np.testing.assert_allclose(aware, standard, **SAME)


def test_empty_requests_have_the_right_shape():
    assert load_profile_pu(START, [], 3, seed=0).shape == (0, 3)
    assert pv_profile_pu(START, np.arange(4.0), 0, seed=0).shape == (4, 0)


@pytest.mark.parametrize("kwargs, message", [
    (dict(times_s=[[0.0]]), "one-dimensional"),
    (dict(times_s=[np.nan]), "finite"),
    (dict(n=-1), "non-negative integer"),
    (dict(latitude_deg=91.0), "latitude_deg"),
])
def test_bad_arguments_are_rejected(kwargs, message):
    arguments = dict(start=START, times_s=[0.0], n=1, seed=0) | kwargs
    with pytest.raises(ValueError, match=message):
        pv_profile_pu(**arguments)
