"""Shiftable loads: appliance cycles that may start anywhere in a window.

A shiftable load is a cycle that, once started, runs without interruption at
constant power until its energy is used: a washing machine, dishwasher or
tumble dryer whose owner only fixes the earliest start and the latest end.
Its start is the only choice; power is positive = consuming. Profiles are
mean power over steps ``[t, t + dt_s)`` of a time grid, in seconds since
study start.
"""

from dataclasses import dataclass

import numpy as np

from gridledger.units import SECONDS_PER_HOUR

__all__ = ["ShiftableLoad", "cheapest_start", "flexload_step", "run_at"]


@dataclass(frozen=True)
class ShiftableLoad:
    """An uninterruptible cycle of fixed power and energy within a window.

    Attributes
    ----------
    energy_kwh : float
        Energy of the cycle, positive. [kWh]
    power_kw : float
        Power while running, positive. [kW]
    earliest_s : float
        Earliest start, seconds since study start. [s]
    latest_end_s : float
        Latest end, at least ``duration_s`` after ``earliest_s``. [s]

    Raises
    ------
    ValueError
        Naming the field that is not finite or out of its range.

    References
    ----------
    R. Stamminger (ed.), "Synergy potential of smart appliances," Smart-A
    project report D2.3, University of Bonn, 2008.
    """

    energy_kwh: float
    power_kw: float
    earliest_s: float
    latest_end_s: float

    def __post_init__(self):
        for name in ("energy_kwh", "power_kw", "earliest_s", "latest_end_s"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.energy_kwh <= 0.0:
            raise ValueError(f"energy_kwh must be positive, got {self.energy_kwh!r}")
        if self.power_kw <= 0.0:
            raise ValueError(f"power_kw must be positive, got {self.power_kw!r}")
        if self.earliest_s + self.duration_s > self.latest_end_s:
            raise ValueError(
                f"latest_end_s must be at least duration_s = {self.duration_s!r} after earliest_s, "
                f"got earliest_s = {self.earliest_s!r} and latest_end_s = {self.latest_end_s!r}"
            )

    @property
    def duration_s(self) -> float:
        """Run time, ``energy_kwh / power_kw``. [s]"""
        return self.energy_kwh / self.power_kw * SECONDS_PER_HOUR

    @property
    def latest_start_s(self) -> float:
        """Latest start that still ends by ``latest_end_s``. [s]"""
        # A window exactly as long as the run may leave a rounding error below earliest_s.
        return max(self.latest_end_s - self.duration_s, self.earliest_s)


def run_at(load: ShiftableLoad, start_s: float, times_s, dt_s: float) -> np.ndarray:
    """Power profile of a load started at ``start_s``.

    Each step's mean power is ``power_kw`` times the fraction of the step
    the cycle runs in, so the profile's integral over steps covering the
    run is ``energy_kwh``.

    Parameters
    ----------
    load : ShiftableLoad
        The load.
    start_s : float
        Start, within ``[earliest_s, latest_start_s]``. [s]
    times_s : array_like, shape (time,)
        Step starts, seconds since study start. [s]
    dt_s : float
        Step length, positive. [s]

    Returns
    -------
    p_kw : ndarray, shape (time,)
        Mean power over each step, positive = consuming. [kW]

    Raises
    ------
    ValueError
        If ``start_s`` is outside the window or the grid is not finite.

    References
    ----------
    R. Stamminger (ed.), "Synergy potential of smart appliances," Smart-A
    project report D2.3, University of Bonn, 2008.
    """
    times = _check_times(times_s, dt_s)
    if not (np.isfinite(start_s) and load.earliest_s <= start_s <= load.latest_start_s):
        raise ValueError(
            f"start_s must be within [earliest_s, latest_start_s] = "
            f"[{load.earliest_s!r}, {load.latest_start_s!r}], got {start_s!r}"
        )
    return _profiles_kw(load, np.array([float(start_s)]), times, dt_s)[0]


def cheapest_start(load: ShiftableLoad, prices, times_s, dt_s: float) -> float:
    """Start within the window that minimises the cost on a price signal.

    The cost of a start is ``sum(prices * p_kw * dt_s / 3600)`` over the
    profile of :func:`run_at`. It is piecewise linear in the start, with
    kinks where the start or the end crosses a step boundary, so its
    minimum over the window is at a kink or a window bound; these
    candidates are all evaluated and the earliest cheapest one is
    returned.

    Parameters
    ----------
    load : ShiftableLoad
        The load.
    prices : array_like, shape (time,)
        Price or any cost signal per energy in each step, finite.
        [currency/kWh]
    times_s : array_like, shape (time,)
        Consecutive step starts ``times_s[0] + k * dt_s``, seconds since
        study start. [s]
    dt_s : float
        Step length, positive. [s]

    Returns
    -------
    start_s : float
        Cheapest start, in ``[earliest_s, latest_start_s]`` and such that
        the run lies within ``[times_s[0], times_s[-1] + dt_s]``. [s]

    Raises
    ------
    ValueError
        If the grid is not consecutive, ``prices`` does not match it, or no
        run within the window fits on the grid.

    References
    ----------
    R. Stamminger (ed.), "Synergy potential of smart appliances," Smart-A
    project report D2.3, University of Bonn, 2008.
    """
    times = _check_times(times_s, dt_s)
    price = np.asarray(prices, dtype=float)
    if price.shape != times.shape or not np.all(np.isfinite(price)):
        raise ValueError(f"prices must be finite, one per step of times_s, got shape {price.shape}")
    if times.size == 0 or not np.allclose(np.diff(times), dt_s):
        raise ValueError("times_s must be consecutive step starts dt_s apart, at least one")
    grid_end_s = times[-1] + dt_s
    low = max(load.earliest_s, times[0])
    high = min(load.latest_start_s, grid_end_s - load.duration_s)
    if low > high:
        raise ValueError(
            f"no start within [earliest_s, latest_start_s] = [{load.earliest_s!r}, {load.latest_start_s!r}] "
            f"keeps the run within the time grid [{times[0]!r}, {grid_end_s!r}]"
        )
    boundaries = np.append(times, grid_end_s)
    candidates = np.concatenate([[low, high], boundaries, boundaries - load.duration_s])
    candidates = np.unique(candidates[(candidates >= low) & (candidates <= high)])
    costs = _profiles_kw(load, candidates, times, dt_s) @ price * dt_s / SECONDS_PER_HOUR
    return float(candidates[np.argmin(costs)])


def flexload_step(start_s: float | None, request_start: bool, t_s: float, dt_s: float, load: ShiftableLoad):
    """Power of a shiftable load over one step of a federate loop.

    A load not yet started starts in this step at ``max(t_s, earliest_s)``
    if ``request_start`` is true and that is in the step and in the window,
    and otherwise at ``latest_start_s`` when that falls in the step, so it
    always ends by ``latest_end_s``. Once started it runs to the end.

    Parameters
    ----------
    start_s : float or None
        Start of the run, None if not started yet. [s]
    request_start : bool
        Whether the agent wants the load to start now.
    t_s : float
        Start of the step, seconds since study start. [s]
    dt_s : float
        Step length, positive. [s]
    load : ShiftableLoad
        The load.

    Returns
    -------
    p_kw : float
        Mean power over ``[t_s, t_s + dt_s)``, positive = consuming. [kW]
    start_s_new : float or None
        Start of the run, None if still not started. [s]

    Raises
    ------
    ValueError
        If the load has not started and ``t_s`` is after ``latest_start_s``:
        a step was skipped.

    References
    ----------
    R. Stamminger (ed.), "Synergy potential of smart appliances," Smart-A
    project report D2.3, University of Bonn, 2008.
    """
    times = _check_times([t_s], dt_s)
    if start_s is None:
        if t_s > load.latest_start_s:
            raise ValueError(
                f"t_s = {t_s!r} is after latest_start_s = {load.latest_start_s!r} of a load not started"
            )
        requested_s = max(t_s, load.earliest_s)
        if request_start and requested_s < t_s + dt_s:
            start_s = min(requested_s, load.latest_start_s)
        elif load.latest_start_s < t_s + dt_s:
            start_s = load.latest_start_s
    if start_s is None:
        return 0.0, None
    return float(run_at(load, start_s, times, dt_s)[0]), start_s


def _check_times(times_s, dt_s: float) -> np.ndarray:
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError("times_s must be a one-dimensional array of finite seconds")
    if not (np.isfinite(dt_s) and dt_s > 0.0):
        raise ValueError(f"dt_s must be a positive number of seconds, got {dt_s!r}")
    return times


def _profiles_kw(load: ShiftableLoad, starts_s: np.ndarray, times: np.ndarray, dt_s: float) -> np.ndarray:
    """Mean power per step for each start, shape (start, time). [kW]"""
    starts = starts_s[:, np.newaxis]
    running_s = np.minimum(starts + load.duration_s, times + dt_s) - np.maximum(starts, times)
    return load.power_kw * np.maximum(running_s, 0.0) / dt_s
