"""Electric-vehicle charging sessions: generation, charging step and deadlines.

A session is one stay of a car at its home charger, from plug-in
(``arrival_s``) to plug-out (``departure_s``), in seconds since study start.
Power is drawn from the grid, positive = charging (the pandapower load
convention); the battery receives ``efficiency`` times that energy.
``delivered_kwh`` counts the energy the battery has received since plug-in,
and a session is complete when it equals ``energy_needed_kwh``.

Every function taking ``session`` accepts one :class:`EVSession` (and returns
floats) or a sequence of them, a fleet (and returns arrays of shape (n,)).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from gridledger.units import SECONDS_PER_HOUR

__all__ = [
    "ARRIVAL_RANGE_H",
    "CHARGER_POWERS_KW",
    "CHARGER_SHARES",
    "CONSUMPTION_RANGE_KWH_PER_KM",
    "DEFAULT_CHARGER_EFFICIENCY",
    "DEPARTURE_RANGE_H",
    "DISTANCE_RANGE_KM",
    "EVSession",
    "ev_sessions",
    "ev_step",
    "laxity_s",
    "must_charge_kw",
    "uncoordinated_kw",
]

DEFAULT_CHARGER_EFFICIENCY = 0.9
"""Energy into the battery over energy from the grid while AC charging;
Sears et al. (2014) measured 0.857 at Level 1 (120 V) and 0.894 at
Level 2 (240 V). [-]"""
CHARGER_POWERS_KW = (3.7, 7.4, 11.0)
"""Home charger ratings: 16 A single-phase, 32 A single-phase and 16 A
three-phase at 230 V (IEC 61851-1 mode 3). [kW]"""
CHARGER_SHARES = (0.3, 0.5, 0.2)
"""Share of sessions on each of CHARGER_POWERS_KW (assumed). [-]"""
ARRIVAL_MEAN_H, ARRIVAL_STD_H = 18.0, 1.5
ARRIVAL_RANGE_H = (15.0, 22.0)
"""Plug-in clock time: normal, truncated to this range. [h]"""
DEPARTURE_MEAN_H, DEPARTURE_STD_H = 7.0, 1.0
DEPARTURE_RANGE_H = (5.0, 9.0)
"""Plug-out clock time on the next day: normal, truncated to this range. [h]"""
DISTANCE_MEDIAN_KM, DISTANCE_SIGMA = 25.0, 0.6
DISTANCE_RANGE_KM = (5.0, 100.0)
"""Distance driven since the last charge: log-normal, truncated. [km]"""
CONSUMPTION_RANGE_KWH_PER_KM = (0.15, 0.20)
"""Battery energy used per km driven: uniform over this range. [kWh/km]"""

_EV_STREAM = 5


@dataclass(frozen=True)
class EVSession:
    """One stay of an electric vehicle at its charger.

    Attributes
    ----------
    arrival_s : float
        Plug-in time, seconds since study start. [s]
    departure_s : float
        Plug-out time, after ``arrival_s``; may fall on the next day. [s]
    energy_needed_kwh : float
        Energy the battery must receive by ``departure_s``, non-negative.
        [kWh]
    max_charge_kw : float
        Charger rating, the most power drawn from the grid, positive. [kW]
    efficiency : float, default DEFAULT_CHARGER_EFFICIENCY
        Energy into the battery over energy from the grid, in (0, 1]. [-]

    Raises
    ------
    ValueError
        Naming the field that is not finite or out of its range.

    References
    ----------
    J. Sears, D. Roberts and K. Glitman, "A comparison of electric vehicle
    Level 1 and Level 2 charging efficiency," IEEE Conference on
    Technologies for Sustainability (SusTech), pp. 255-258, 2014.
    """

    arrival_s: float
    departure_s: float
    energy_needed_kwh: float
    max_charge_kw: float
    efficiency: float = DEFAULT_CHARGER_EFFICIENCY

    def __post_init__(self):
        for name in ("arrival_s", "departure_s", "energy_needed_kwh", "max_charge_kw", "efficiency"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
                raise ValueError(f"{name} must be a number, got {value!r}")
            if not np.isfinite(value):
                raise ValueError(f"{name} must be finite, got {value!r}")
        if self.departure_s <= self.arrival_s:
            raise ValueError(
                f"departure_s must be after arrival_s, got {self.departure_s!r} <= {self.arrival_s!r}"
            )
        if self.energy_needed_kwh < 0.0:
            raise ValueError(f"energy_needed_kwh must be non-negative, got {self.energy_needed_kwh!r}")
        if self.max_charge_kw <= 0.0:
            raise ValueError(f"max_charge_kw must be positive, got {self.max_charge_kw!r}")
        if not 0.0 < self.efficiency <= 1.0:
            raise ValueError(f"efficiency must be within (0, 1], got {self.efficiency!r}")


def ev_sessions(n: int, seed: int, midnight_s: float = 0.0) -> list[EVSession]:
    """Seeded overnight home-charging sessions of a residential fleet.

    Each session draws, from its own random stream (so adding sessions
    leaves the first ones unchanged):

    - plug-in clock time ~ Normal(18:00, 1.5 h) truncated to
      ``ARRIVAL_RANGE_H`` (15:00-22:00), after the evening peak of home
      plug-ins in the My Electric Avenue trial [1];
    - plug-out clock time on the next day ~ Normal(07:00, 1 h) truncated to
      ``DEPARTURE_RANGE_H`` (05:00-09:00);
    - distance since the last charge ~ LogNormal(median 25 km, sigma 0.6)
      truncated to ``DISTANCE_RANGE_KM`` (5-100 km), mean about 30 km, the
      daily mileage of a car in England [2];
    - consumption ~ Uniform(0.15, 0.20) kWh/km, the range of on-road
      consumption of current battery-electric cars [3];
      ``energy_needed_kwh`` = distance times consumption (1-20 kWh);
    - ``max_charge_kw`` from ``CHARGER_POWERS_KW`` (3.7, 7.4, 11 kW [4])
      with probabilities ``CHARGER_SHARES`` (0.3, 0.5, 0.2, assumed).

    Truncation redraws out-of-range values, so no value piles up at a
    bound. The efficiency is ``DEFAULT_CHARGER_EFFICIENCY`` [5]. Every
    session stays plugged in at least 7 h, in which even a 3.7 kW charger
    delivers 3.7 * 0.9 * 7 = 23.3 kWh > 20 kWh, so every session can
    complete by departure.

    Parameters
    ----------
    n : int
        Number of sessions, non-negative.
    seed : int
        Study seed, non-negative.
    midnight_s : float, default 0.0
        Midnight that begins the day of the plug-ins, in seconds since
        study start (-43200 for a study starting at noon). [s]

    Returns
    -------
    sessions : list of EVSession
        ``n`` sessions, deterministic for ``(n, seed, midnight_s)``.

    References
    ----------
    .. [1] J. Quiros-Tortos, L. F. Ochoa, S. W. Alnaser and T. Butler,
       "Control of EV charging points for thermal and voltage management of
       LV networks," IEEE Transactions on Power Systems, vol. 31, no. 4,
       pp. 3028-3039, 2016.
    .. [2] Department for Transport, "National Travel Survey: England
       2019," table NTS0901 (annual mileage of 4-wheeled cars, about
       7,000-7,500 miles, i.e. 30-33 km a day).
    .. [3] M. Weiss, K. C. Cloos and E. Helmers, "Energy efficiency
       trade-offs in small to large electric vehicles," Environmental
       Sciences Europe, vol. 32, art. 46, 2020.
    .. [4] IEC 61851-1:2017, "Electric vehicle conductive charging system -
       Part 1: General requirements" (mode 3 AC charging).
    .. [5] J. Sears, D. Roberts and K. Glitman, "A comparison of electric
       vehicle Level 1 and Level 2 charging efficiency," IEEE SusTech,
       pp. 255-258, 2014.
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative integer, got {n!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if not np.isfinite(midnight_s):
        raise ValueError(f"midnight_s must be finite, got {midnight_s!r}")
    sessions = []
    for j in range(n):
        rng = np.random.default_rng([seed, _EV_STREAM, j])
        arrival_h = _truncated(rng.normal, (ARRIVAL_MEAN_H, ARRIVAL_STD_H), ARRIVAL_RANGE_H)
        departure_h = _truncated(rng.normal, (DEPARTURE_MEAN_H, DEPARTURE_STD_H), DEPARTURE_RANGE_H)
        distance_km = _truncated(rng.lognormal, (np.log(DISTANCE_MEDIAN_KM), DISTANCE_SIGMA), DISTANCE_RANGE_KM)
        consumption = rng.uniform(*CONSUMPTION_RANGE_KWH_PER_KM)
        charger_kw = CHARGER_POWERS_KW[rng.choice(len(CHARGER_POWERS_KW), p=CHARGER_SHARES)]
        sessions.append(
            EVSession(
                arrival_s=midnight_s + arrival_h * SECONDS_PER_HOUR,
                departure_s=midnight_s + (24.0 + departure_h) * SECONDS_PER_HOUR,
                energy_needed_kwh=distance_km * consumption,
                max_charge_kw=charger_kw,
            )
        )
    return sessions


def ev_step(delivered_kwh, allowed_kw, t_s: float, dt_s: float, session):
    """Power an EV draws over one step, and the energy delivered after it.

    The charger draws ``min(allowed_kw, max_charge_kw)`` while the car is
    plugged in during ``[t_s, t_s + dt_s)``, and less in the step that
    completes the session, so that the battery receives exactly the energy
    still needed: ``delivered_kwh_new = delivered_kwh + efficiency *
    p_kw * dt_s / 3600``, never above ``energy_needed_kwh``.

    Parameters
    ----------
    delivered_kwh : array_like
        Energy the battery has received since plug-in, at ``t_s``. [kWh]
    allowed_kw : array_like
        Most power the charger may draw while plugged in this step, e.g.
        a coordinator's limit; non-negative, ``inf`` for no limit. [kW]
    t_s : float
        Start of the step, seconds since study start. [s]
    dt_s : float
        Step length, positive. [s]
    session : EVSession or sequence of EVSession
        The session(s) charging.

    Returns
    -------
    p_kw : float or ndarray
        Mean power drawn from the grid over the step, positive = charging;
        at most ``min(allowed_kw, max_charge_kw)`` times the plugged-in
        fraction of the step, zero while unplugged. [kW]
    delivered_kwh_new : float or ndarray
        Energy the battery has received at ``t_s + dt_s``. [kWh]

    References
    ----------
    J. Sears, D. Roberts and K. Glitman, "A comparison of electric vehicle
    Level 1 and Level 2 charging efficiency," IEEE SusTech, pp. 255-258,
    2014 (grid-to-battery efficiency as energy in over energy drawn).
    """
    arrival, departure, needed, max_kw, efficiency = _fleet(session)
    delivered = _check_delivered(delivered_kwh, needed)
    allowed = np.asarray(allowed_kw, dtype=float)
    if np.any(np.isnan(allowed)) or np.any(allowed < 0.0):
        raise ValueError(f"allowed_kw must be non-negative (inf for no limit), got {allowed_kw!r}")
    _check_step(t_s, dt_s)
    plugged_fraction = np.minimum(_plugged_s(arrival, departure, t_s, t_s + dt_s) / dt_s, 1.0)
    cap_kw = np.minimum(allowed, max_kw) * plugged_fraction
    step_h = dt_s / SECONDS_PER_HOUR
    remaining_grid_kwh = (needed - delivered) / efficiency
    completes = cap_kw * step_h >= remaining_grid_kwh
    p_kw = np.where(completes, np.minimum(remaining_grid_kwh / step_h, cap_kw), cap_kw)
    # The completing step lands exactly on the target instead of an ulp off.
    delivered_new = np.where(completes, needed, np.minimum(delivered + efficiency * cap_kw * step_h, needed))
    return p_kw[()], delivered_new[()]


def laxity_s(delivered_kwh, t_s: float, session):
    """Time charging can still wait and complete by departure at full power.

    ``laxity = departure_s - max(t_s, arrival_s) - remaining / (efficiency
    * max_charge_kw)``, the slack of least-laxity-first scheduling [1].
    Negative laxity means the session can no longer complete in time.

    Parameters
    ----------
    delivered_kwh : array_like
        Energy the battery has received since plug-in, at ``t_s``. [kWh]
    t_s : float
        Seconds since study start. [s]
    session : EVSession or sequence of EVSession
        The session(s).

    Returns
    -------
    laxity_s : float or ndarray
        Slack; ``-inf`` after departure with energy still needed, ``0``
        once the session is complete and the car has left. [s]

    References
    ----------
    .. [1] Y. Xu, F. Pan and L. Tong, "Dynamic scheduling for charging
       electric vehicles: a priority rule," IEEE Transactions on Automatic
       Control, vol. 61, no. 12, pp. 4094-4099, 2016 (laxity of a charging
       job).
    """
    arrival, departure, needed, max_kw, efficiency = _fleet(session)
    delivered = _check_delivered(delivered_kwh, needed)
    if not np.isfinite(t_s):
        raise ValueError(f"t_s must be finite, got {t_s!r}")
    remaining_kwh = needed - delivered
    available_s = np.maximum(departure - np.maximum(t_s, arrival), 0.0)
    laxity = np.where(
        (available_s == 0.0) & (remaining_kwh > 0.0),
        -np.inf,
        available_s - remaining_kwh * SECONDS_PER_HOUR / (efficiency * max_kw),
    )
    return laxity[()]


def must_charge_kw(delivered_kwh, t_s: float, dt_s: float, session):
    """Least power limit this step that still lets the session complete.

    The energy that must reach the battery in ``[t_s, t_s + dt_s)`` is what
    full power after the step could not deliver by departure; the limit
    is that energy drawn at constant power over the plugged-in part of the
    step. Passing at least this as ``allowed_kw`` to :func:`ev_step` in
    every step completes a feasible session by departure, which lets a
    coordinator defer charging as long as possible (least laxity first,
    [1]).

    Parameters
    ----------
    delivered_kwh : array_like
        Energy the battery has received since plug-in, at ``t_s``. [kWh]
    t_s : float
        Start of the step, seconds since study start. [s]
    dt_s : float
        Step length, positive. [s]
    session : EVSession or sequence of EVSession
        The session(s).

    Returns
    -------
    p_kw : float or ndarray
        Power limit, in ``[0, max_charge_kw]``; ``max_charge_kw`` when even
        full power can no longer complete the session, 0 while unplugged.
        [kW]

    References
    ----------
    .. [1] Y. Xu, F. Pan and L. Tong, "Dynamic scheduling for charging
       electric vehicles: a priority rule," IEEE Transactions on Automatic
       Control, vol. 61, no. 12, pp. 4094-4099, 2016.
    """
    arrival, departure, needed, max_kw, efficiency = _fleet(session)
    delivered = _check_delivered(delivered_kwh, needed)
    _check_step(t_s, dt_s)
    plugged_s = _plugged_s(arrival, departure, t_s, t_s + dt_s)
    later_s = _plugged_s(arrival, departure, t_s + dt_s, np.inf)
    remaining_grid_kwh = (needed - delivered) / efficiency
    now_kwh = np.maximum(remaining_grid_kwh - max_kw * later_s / SECONDS_PER_HOUR, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        p_kw = np.where(plugged_s > 0.0, np.minimum(now_kwh * SECONDS_PER_HOUR / plugged_s, max_kw), 0.0)
    return p_kw[()]


def uncoordinated_kw(times_s, dt_s: float, session) -> np.ndarray:
    """Charging at full power from plug-in until complete, per step.

    The battery has received ``min(efficiency * max_charge_kw * (tau -
    arrival_s), energy_needed_kwh)`` at time ``tau`` within the stay, so
    each step's mean power is the difference over the step ends. This is
    the uncontrolled "plug in and charge" demand behind the evening peak
    [1]; it equals stepping :func:`ev_step` with ``allowed_kw = inf``.

    Parameters
    ----------
    times_s : array_like, shape (time,)
        Step starts, seconds since study start. [s]
    dt_s : float
        Step length, positive. [s]
    session : EVSession or sequence of EVSession
        The session(s), each starting from ``delivered_kwh = 0``.

    Returns
    -------
    p_kw : ndarray, shape (time,) or (time, n)
        Mean power drawn from the grid in each step, positive = charging;
        one column per session of a sequence. [kW]

    References
    ----------
    .. [1] J. Quiros-Tortos, L. F. Ochoa, S. W. Alnaser and T. Butler,
       "Control of EV charging points for thermal and voltage management
       of LV networks," IEEE Transactions on Power Systems, vol. 31, no. 4,
       pp. 3028-3039, 2016.
    """
    arrival, departure, needed, max_kw, efficiency = _fleet(session)
    times = np.asarray(times_s, dtype=float)
    if times.ndim != 1 or not np.all(np.isfinite(times)):
        raise ValueError("times_s must be a one-dimensional array of finite seconds")
    _check_dt(dt_s)
    times = times[:, np.newaxis] if arrival.ndim else times

    def grid_kwh_by(tau_s):
        charged_s = np.clip(tau_s, arrival, departure) - arrival
        return np.minimum(max_kw * charged_s / SECONDS_PER_HOUR, needed / efficiency)

    return (grid_kwh_by(times + dt_s) - grid_kwh_by(times)) * SECONDS_PER_HOUR / dt_s


def _fleet(session):
    """Session fields as arrays: 0-d for one session, (n,) for a sequence."""
    if isinstance(session, EVSession):
        sessions, shape = [session], ()
    elif isinstance(session, Sequence) and all(isinstance(s, EVSession) for s in session):
        sessions, shape = list(session), (len(session),)
    else:
        raise ValueError(f"session must be an EVSession or a sequence of them, got {type(session).__name__}")
    return tuple(
        np.array([getattr(s, name) for s in sessions], dtype=float).reshape(shape)
        for name in ("arrival_s", "departure_s", "energy_needed_kwh", "max_charge_kw", "efficiency")
    )


def _check_delivered(delivered_kwh, needed: np.ndarray) -> np.ndarray:
    delivered = np.asarray(delivered_kwh, dtype=float)
    if not np.all(np.isfinite(delivered)) or np.any(delivered < 0.0) or np.any(delivered > needed):
        raise ValueError(f"delivered_kwh must be within [0, energy_needed_kwh], got {delivered_kwh!r}")
    return delivered


def _check_step(t_s: float, dt_s: float) -> None:
    if not np.isfinite(t_s):
        raise ValueError(f"t_s must be finite, got {t_s!r}")
    _check_dt(dt_s)


def _check_dt(dt_s: float) -> None:
    if not (np.isfinite(dt_s) and dt_s > 0.0):
        raise ValueError(f"dt_s must be a positive number of seconds, got {dt_s!r}")


def _plugged_s(arrival, departure, start_s, end_s):
    """Overlap of ``[start_s, end_s)`` with the stay. [s]"""
    return np.maximum(np.minimum(end_s, departure) - np.maximum(start_s, arrival), 0.0)


def _truncated(draw, parameters, bounds) -> float:
    """``draw(*parameters)`` again until the value is within ``bounds``."""
    while True:
        value = draw(*parameters)
        if bounds[0] <= value <= bounds[1]:
            return float(value)
