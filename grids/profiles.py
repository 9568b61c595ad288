"""Deterministic daily load and PV profiles for prosumers.

Times are seconds since study start plus the start datetime. Every value is a
function of (start, time, seed, column) only, so processes that sample
different time grids (the grid federate every power-flow step, DER agents at
market intervals) see the same profile. Column ``j`` draws its parameters
from its own random stream, so adding prosumers leaves the first ones'
profiles unchanged.

The clock of ``start`` is read as local standard time and taken as local
solar time: the longitude offset within the time zone (up to +/-30 min in a
15-degree zone) and the equation of time (up to +/-16 min) are neglected. If
``start`` is time-zone aware, its daylight-saving offset is removed first.
"""

from datetime import datetime, timedelta

import numpy as np

from gridledger.grids.solar import (
    clearsky_ghi_haurwitz,
    declination_deg,
    hour_angle_deg,
    solar_elevation_deg,
)
from gridledger.units import SECONDS_PER_DAY, SECONDS_PER_HOUR

__all__ = [
    "DEFAULT_LATITUDE_DEG",
    "LOAD_NOISE_AMPLITUDE",
    "PERFORMANCE_RATIO",
    "load_profile_pu",
    "pv_profile_pu",
]

DEFAULT_LATITUDE_DEG = 40.0
PERFORMANCE_RATIO = 0.85
"""AC output of a PV system per kWp at 1000 W/m^2 on the array (typical
0.75-0.85 for systems built after 2010; Reich et al. 2012)."""
LOAD_NOISE_AMPLITUDE = 0.2
"""Bound of the relative load variation around the clean shape."""

_MAX_DAILY_CLOUDINESS = 0.8
_COMMON_CLOUD_WEIGHT = 0.7
_NOISE_TERMS = 8
_LOAD_NOISE_PERIOD_S = (900.0, 4 * SECONDS_PER_HOUR)
_CLOUD_NOISE_PERIOD_S = (600.0, 3 * SECONDS_PER_HOUR)

# Independent random streams under one study seed.
_LOAD_STREAM = 1
_PV_STREAM = 2
_CLOUD_DAY_STREAM = 3
_CLOUD_COMMON_STREAM = 4


def load_profile_pu(start: datetime, times_s, n: int, seed: int, noise: bool = True) -> np.ndarray:
    """Daily residential/commercial load in per unit of the bus peak load.

    Column ``j`` mixes a residential shape (morning peak near 07:30,
    evening peak near 19:30) with a commercial daytime shape (08:00-18:00)
    in a seeded proportion (50-100 % residential), shifted by a seeded
    offset within +/-1 h, and scaled so that the maximum of its clean shape
    over the day is exactly 1.0. The shape repeats every day.

    With ``noise=True`` the clean shape is multiplied by
    ``1 + LOAD_NOISE_AMPLITUDE * xi(t)``, where ``xi`` in [-1, 1] is a
    seeded sum of sinusoids with periods from 15 min to 4 h (spectral
    representation of a stationary process, [2]): autocorrelated, bounded,
    and defined at every instant.

    Parameters
    ----------
    start : datetime.datetime
        Study start, local time.
    times_s : array_like, shape (time,)
        Seconds since ``start``. [s]
    n : int
        Number of columns (prosumers).
    seed : int
        Study seed, non-negative.
    noise : bool, default True
        False gives the clean expected shape (the agents' forecast).

    Returns
    -------
    load_pu : ndarray, shape (time, n)
        Active load in per unit of the peak load; non-negative, at most
        1 + LOAD_NOISE_AMPLITUDE. [pu]

    References
    ----------
    .. [1] C. Fuenfgeld and R. Tiedemann, "Anwendung der Repraesentativen
       VDEW-Lastprofile step-by-step," VDEW Materialien M-05/2000, 2000
       (standard household H0 and commercial G0 daily load shapes, which
       the stylized shapes here follow qualitatively).
    .. [2] M. Shinozuka and G. Deodatis, "Simulation of stochastic processes
       by spectral representation," Applied Mechanics Reviews, vol. 44,
       no. 4, pp. 191-204, 1991.
    """
    times = _check_times(times_s)
    _check_count(n)
    hour, _, _ = _local_clock(start, times)
    out = np.empty((times.size, n))
    for j in range(n):
        rng = np.random.default_rng([seed, _LOAD_STREAM, j])
        residential_share = rng.uniform(0.5, 1.0)
        shift_h = rng.uniform(-1.0, 1.0)
        periods_s, phases = _noise_parameters(rng, _LOAD_NOISE_PERIOD_S)
        clean = _mixed_shape(hour - shift_h, residential_share) / _peak_of_mixed_shape(residential_share)
        if noise:
            clean = clean * (1.0 + LOAD_NOISE_AMPLITUDE * _smooth_noise(times, periods_s, phases))
        out[:, j] = clean
    return out


def pv_profile_pu(
    start: datetime,
    times_s,
    n: int,
    seed: int,
    noise: bool = True,
    latitude_deg: float = DEFAULT_LATITUDE_DEG,
) -> np.ndarray:
    """PV output per kWp: clear-sky irradiance times a seeded cloud factor.

    Clear-sky output is ``PERFORMANCE_RATIO * ghi / 1000`` with ``ghi`` from
    the Haurwitz model [3] at the solar elevation given by Cooper's
    declination [1] and the hour angle [2]; it is zero while the sun is
    below the horizon and at most 0.88 (sun at zenith).

    With ``noise=True`` it is multiplied by the cloud factor
    ``1 - c_day * g(t)``: ``c_day`` in [0, 0.8] is the cloudiness of the
    calendar day (seeded per date, skewed towards clear days, shared by
    all columns); ``g(t)`` in [0, 1] mixes a feeder-wide (70 %) and a
    per-column (30 %) sum of sinusoids with periods from 10 min to 3 h,
    so nearby systems see mostly the same clouds.

    Parameters
    ----------
    start : datetime.datetime
        Study start, local time.
    times_s : array_like, shape (time,)
        Seconds since ``start``. [s]
    n : int
        Number of columns (PV systems).
    seed : int
        Study seed, non-negative.
    noise : bool, default True
        False gives the clear-sky output (the agents' forecast).
    latitude_deg : float, default DEFAULT_LATITUDE_DEG
        Latitude of the feeder, north positive. [deg]

    Returns
    -------
    pv_pu : ndarray, shape (time, n)
        AC output of a horizontal array per kWp installed, in [0, 1].
        [kW/kWp]

    References
    ----------
    .. [1] P. I. Cooper, "The absorption of radiation in solar stills,"
       Solar Energy, vol. 12, no. 3, pp. 333-346, 1969.
    .. [2] J. A. Duffie and W. A. Beckman, "Solar Engineering of Thermal
       Processes," 3rd ed., Wiley, 2006, eqs. 1.6.1a and 1.6.5.
    .. [3] B. Haurwitz, "Insolation in relation to cloudiness and cloud
       density," Journal of Meteorology, vol. 2, pp. 154-166, 1945.
    .. [4] N. H. Reich et al., "Performance ratio revisited: is PR > 90%
       realistic?," Progress in Photovoltaics, vol. 20, no. 6,
       pp. 717-726, 2012.
    """
    times = _check_times(times_s)
    _check_count(n)
    if not -90.0 <= latitude_deg <= 90.0:
        raise ValueError(f"latitude_deg must be within [-90, 90], got {latitude_deg!r}")
    hour, day_of_year, ordinal = _local_clock(start, times)
    elevation = solar_elevation_deg(latitude_deg, declination_deg(day_of_year), hour_angle_deg(hour))
    clear = PERFORMANCE_RATIO * clearsky_ghi_haurwitz(elevation) / 1000.0
    out = np.repeat(clear[:, np.newaxis], n, axis=1)
    if not noise:
        return out
    cloudiness = _daily_cloudiness(seed, ordinal)
    common = _smooth_noise(
        times, *_noise_parameters(np.random.default_rng([seed, _CLOUD_COMMON_STREAM]), _CLOUD_NOISE_PERIOD_S)
    )
    for j in range(n):
        rng = np.random.default_rng([seed, _PV_STREAM, j])
        local = _smooth_noise(times, *_noise_parameters(rng, _CLOUD_NOISE_PERIOD_S))
        mixed = _COMMON_CLOUD_WEIGHT * common + (1.0 - _COMMON_CLOUD_WEIGHT) * local
        out[:, j] *= 1.0 - cloudiness * 0.5 * (1.0 + mixed)
    return out


def _check_times(times_s) -> np.ndarray:
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1:
        raise ValueError(f"times_s must be one-dimensional, got shape {times.shape}")
    if not np.all(np.isfinite(times)):
        raise ValueError("times_s must be finite seconds since study start")
    return times


def _check_count(n: int) -> None:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")


def _local_clock(start: datetime, times: np.ndarray):
    """Hour of day, day of year and date ordinal in local standard time."""
    standard = start.replace(tzinfo=None) - (start.dst() or timedelta(0))
    midnight = standard.replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = (standard - midnight).total_seconds() + times
    day_offset = np.floor(seconds / 86400.0)
    hour = (seconds - day_offset * SECONDS_PER_DAY) / SECONDS_PER_HOUR
    days = np.datetime64(midnight.date(), "D") + day_offset.astype(np.int64)
    day_of_year = (days - days.astype("datetime64[Y]")).astype(np.int64) + 1
    ordinal = midnight.toordinal() + day_offset.astype(np.int64)
    return hour, day_of_year, ordinal


def _bump(hour, peak_h: float, kappa: float):
    """Smooth 24-h periodic peak of height 1 (von Mises shape)."""
    return np.exp(kappa * (np.cos(2.0 * np.pi * (hour - peak_h) / 24.0) - 1.0))


def _mixed_shape(hour, residential_share):
    residential = 0.3 + 0.45 * _bump(hour, 7.5, 10.0) + 0.8 * _bump(hour, 19.5, 5.0)
    commercial = 0.3 + 0.5 * (_bump(hour, 10.0, 6.0) + _bump(hour, 15.5, 6.0))
    return residential_share * residential + (1.0 - residential_share) * commercial


def _peak_of_mixed_shape(residential_share: float) -> float:
    """Maximum over the day, refined from a 1-min grid by parabolic steps."""
    grid = np.arange(0.0, 24.0, 1.0 / 60.0)
    values = _mixed_shape(grid, residential_share)
    best = grid[np.argmax(values)]
    for step in (1.0 / 60.0, 1e-3, 1e-5):
        left, mid, right = _mixed_shape(np.array([best - step, best, best + step]), residential_share)
        curvature = left - 2.0 * mid + right
        if curvature < 0.0:
            best = best + 0.5 * step * (left - right) / curvature
    return max(float(_mixed_shape(best, residential_share)), float(values.max()))


def _noise_parameters(rng: np.random.Generator, period_range_s):
    low, high = np.log(period_range_s[0]), np.log(period_range_s[1])
    periods_s = np.exp(rng.uniform(low, high, _NOISE_TERMS))
    phases = rng.uniform(0.0, 2.0 * np.pi, _NOISE_TERMS)
    return periods_s, phases


def _smooth_noise(times: np.ndarray, periods_s: np.ndarray, phases: np.ndarray) -> np.ndarray:
    """Mean of sinusoids: autocorrelated, in [-1, 1], defined at any time."""
    return np.mean(np.sin(2.0 * np.pi * times[:, np.newaxis] / periods_s + phases), axis=1)


def _daily_cloudiness(seed: int, ordinal: np.ndarray) -> np.ndarray:
    days, where = np.unique(ordinal, return_inverse=True)
    per_day = np.array(
        [np.random.default_rng([seed, _CLOUD_DAY_STREAM, int(day)]).uniform() for day in days]
    )
    return (_MAX_DAILY_CLOUDINESS * per_day**2)[where.reshape(ordinal.shape)]
