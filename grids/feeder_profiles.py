"""Yearly load and generation profiles that come with a feeder (SimBench).

SimBench grids ship one year of 15-min profiles: relative time series per
profile type in ``net.profiles`` and, per element, which profile it follows.
:func:`feeder_profiles` turns them into absolute power per element with
``simbench.get_absolute_values``, keeps them on disk (seconds to build, a
memory-mapped read afterwards) and samples them at the study's times.

The profile year is 2016: 366 days, 35,136 quarter hours, a regular grid
in central European standard time (row 0 = 1 January 00:00-00:15). Its
``time`` labels are German civil time, so in summer they read one hour
later (13:00 standard time is labelled 14:00), and they skip 02:00-02:45
on 27 March and repeat them on 30 October. A study time is mapped to the
row of the same month, day and time of day in local standard time: 14 July
2027 13:10 (standard time) reads row 18,772, the quarter hour from 13:00
of 14 July 2016. So the season follows the calendar date but the weekday
does not (14 July 2016 was a Thursday), 29 February is only read in leap
years, and a study that runs past 31 December continues with 1 January of
the profile. Each value is held
over its quarter hour, because SimBench values are quarter-hour means.
As in :mod:`gridledger.grids.profiles`, a naive ``start`` is read as local
standard time, and a time-zone aware one has its daylight-saving offset
removed first (13:10 CEST is 12:10 standard time, the row labelled
13:00).
"""

import functools
from dataclasses import dataclass
from datetime import datetime, timedelta
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pandapower
import simbench

from gridledger.grids.disk_cache import cache_root, cached_arrays
from gridledger.grids.feeders import is_simbench_code, load_feeder

__all__ = ["PROFILE_YEAR", "PROFILE_STEP_S", "FeederProfiles", "absolute_year", "feeder_profiles", "year_entry"]

PROFILE_YEAR = 2016
"""Calendar year of the SimBench profiles."""
PROFILE_STEP_S = 900
"""Resolution of the SimBench profiles. [s]"""
SIMBENCH_VERSION = version("simbench")
"""Installed SimBench release, part of the cache key: a new release may ship new profiles."""
CACHE_LAYOUT = 1
"""Version of the cached arrays' names and shapes; raise it when :func:`absolute_year` changes."""


@dataclass(frozen=True)
class FeederProfiles:
    """Absolute element set points at the study's times.

    Columns belong to the element indices listed with them: the feeder's
    own elements as loaded, not devices added later.

    Attributes
    ----------
    profile_step : ndarray of int, shape (time,)
        Quarter hour of the profile year read at each study time, 0 =
        1 January 00:00-00:15.
    load_index : ndarray of int, shape (n_load,)
        ``net.load`` indices of the load columns.
    load_p_mw, load_q_mvar : ndarray, shape (time, n_load)
        Active [MW] and reactive [Mvar] load, positive = consumption.
    sgen_index : ndarray of int, shape (n_sgen,)
        ``net.sgen`` indices of the generation columns.
    sgen_p_mw : ndarray, shape (time, n_sgen)
        Generation, positive = injection. [MW]
    storage_index : ndarray of int, shape (n_storage,)
        ``net.storage`` indices of the storage columns.
    storage_p_mw : ndarray, shape (time, n_storage)
        Storage power, positive = charging. [MW]
    """

    profile_step: np.ndarray
    load_index: np.ndarray
    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    sgen_index: np.ndarray
    sgen_p_mw: np.ndarray
    storage_index: np.ndarray
    storage_p_mw: np.ndarray


def feeder_profiles(net: pandapower.pandapowerNet, start: datetime, times_s) -> FeederProfiles | None:
    """A SimBench feeder's yearly profiles sampled at the study's times.

    The net is recognized by the SimBench code in ``net.name``, which
    :func:`~gridledger.grids.feeders.load_feeder` sets. The profiles are
    computed from the grid as published (:func:`absolute_year`), so set
    points the net holds now (e.g. written by a power flow) do not matter,
    once per machine, SimBench code and release: later runs read them from
    the disk cache (:mod:`gridledger.grids.disk_cache`).

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    start : datetime.datetime
        Study start, local time.
    times_s : array_like, shape (time,)
        Seconds since ``start``; finite and non-negative. [s]

    Returns
    -------
    profiles : FeederProfiles or None
        None if the net is not a SimBench grid.

    Raises
    ------
    ValueError
        If ``times_s`` is not a 1-D array of finite, non-negative seconds.

    References
    ----------
    S. Meinecke et al., "SimBench - A Benchmark Dataset of Electric Power
    Systems to Compare Innovative Solutions Based on Power Flow Analysis,"
    Energies, vol. 13, no. 12, 3290, 2020, sec. 2.2 (time series).
    """
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or not np.all(np.isfinite(times)) or np.any(times < 0.0):
        raise ValueError("times_s must be a 1-D array of finite, non-negative seconds")
    code = str(net.get("name", ""))
    if not is_simbench_code(code):
        return None
    year = _absolute_year(code)
    step = _profile_step(start, times)
    return FeederProfiles(
        profile_step=step,
        load_index=year["load_index"],
        load_p_mw=year["load_p_mw"][step],
        load_q_mvar=year["load_q_mvar"][step],
        sgen_index=year["sgen_index"],
        sgen_p_mw=year["sgen_p_mw"][step],
        storage_index=year["storage_index"],
        storage_p_mw=year["storage_p_mw"][step],
    )


@functools.cache
def _absolute_year(code: str) -> dict[str, np.ndarray]:
    """Absolute yearly profiles of a SimBench grid, from the disk cache (:func:`year_entry`) or built."""
    return cached_arrays(year_entry(code, SIMBENCH_VERSION, cache_root()), lambda: absolute_year(code))


def year_entry(code: str, simbench_version: str, root: Path) -> Path:
    """Cache entry of a grid's yearly profiles, keyed by the SimBench code and release and our layout."""
    return root / "simbench-profiles" / f"v{CACHE_LAYOUT}" / f"simbench-{simbench_version}" / code


def absolute_year(code: str) -> dict[str, np.ndarray]:
    """Absolute yearly profiles of a SimBench grid, built from the published grid; seconds to minutes.

    Returns
    -------
    year : dict of str to ndarray
        ``<element>_index`` (the ``net.<element>`` indices, int) and
        ``<element>_<quantity>`` of shape (35,136 or 35,040, n_element) for
        load ``p_mw``/``q_mvar``, sgen ``p_mw`` and storage ``p_mw``;
        read-only. [MW], [Mvar]
    """
    net = load_feeder(code)
    absolute = simbench.get_absolute_values(net, profiles_instead_of_study_cases=True)
    n_steps = len(absolute[("load", "p_mw")])
    year = {}
    for element, quantities in (("load", ("p_mw", "q_mvar")), ("sgen", ("p_mw",)), ("storage", ("p_mw",))):
        index = net[element].index.to_numpy(copy=True)
        index.setflags(write=False)
        year[f"{element}_index"] = index
        for quantity in quantities:
            if len(index):
                values = absolute[(element, quantity)].reindex(columns=index).to_numpy(dtype=float)
            else:
                values = np.zeros((n_steps, 0))
            values.setflags(write=False)
            year[f"{element}_{quantity}"] = values
    return year


def _profile_step(start: datetime, times: np.ndarray) -> np.ndarray:
    """Quarter hour of the profile year at the same local standard date and time."""
    standard = start.replace(tzinfo=None) - (start.dst() or timedelta(0))
    midnight = standard.replace(hour=0, minute=0, second=0, microsecond=0)
    seconds = (standard - midnight).total_seconds() + times
    day_offset = np.floor(seconds / 86400.0)
    second_of_day = seconds - day_offset * 86400.0
    days = np.datetime64(midnight.date(), "D") + day_offset.astype(np.int64)
    month = days.astype("datetime64[M]")
    day_of_month = (days - month).astype(np.int64)
    month_of_year = (month - days.astype("datetime64[Y]")).astype(np.int64)
    profile_month = np.datetime64(f"{PROFILE_YEAR}-01", "M") + month_of_year
    profile_day = profile_month.astype("datetime64[D]") + day_of_month
    day_of_profile_year = (profile_day - np.datetime64(f"{PROFILE_YEAR}-01-01", "D")).astype(np.int64)
    quarter = np.floor(second_of_day / PROFILE_STEP_S).astype(np.int64)
    return day_of_profile_year * (86400 // PROFILE_STEP_S) + quarter
