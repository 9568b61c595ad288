"""How an observer links a household over time, and how well: linking, tracks and the figures of the experiment.

In the world of fixed addresses an address *is* a track
(`link_by_address`); with per-interval pseudonyms the observer links
interval k to interval k+1 itself by a minimum-cost assignment on the
difference of the settled net energy and the ordered quantity
(`link_by_assignment`), which joins pseudonyms into tracks. The figures:
how well the observer infers each household's pattern
(`pattern_correlation`), how many of its links are right
(`tracking_accuracy`), and how often it re-identifies a household on a
later day, given day 1 labelled, either by following its links across
midnight (`reidentify_along_tracks`), by the tracks' daily profile
(`reidentify_by_profile`) or, without any link, each interval by the
day-1 values at the same time of day (`reidentify_by_slot`); the chance
level is 1/N for N households. Every function is pure, over numpy arrays
of per-household or per-track series (rows, intervals).

References
----------
Jawurek, Johns, Rieck, "Smart metering de-pseudonymization", ACSAC 2011:
pseudonymous load traces are linked by their values, the attack measured
here. Kuhn, "The Hungarian method for the assignment problem", Naval
Research Logistics Quarterly 2 (1955); scipy's ``linear_sum_assignment``
implements Crouse, "On implementing 2D rectangular assignment
algorithms", IEEE Trans. Aerospace and Electronic Systems 52 (2016).
Pearson, "Note on regression and inheritance in the case of two
parents", Proc. R. Soc. London 58 (1895), for the correlation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

from gridledger.agents.chain_observer import NO_HOUSEHOLD, Observations


# ---------------------------------------------------------------- linking


def link_by_address(obs: Observations) -> np.ndarray:
    """Links of the fixed-address world: each address's consecutive observations.

    Returns
    -------
    pairs : ndarray of int, shape (n_links, 2)
        (earlier, later) row numbers in `obs`.
    """
    last: dict[str, int] = {}
    pairs = []
    for row, address in enumerate(obs.address):
        if address in last:
            pairs.append((last[address], row))
        last[address] = row
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def link_by_assignment(obs: Observations, group: np.ndarray | None = None) -> np.ndarray:
    """Links of the pseudonymous world: each interval's pseudonyms joined to the next observed interval's.

    Between consecutive observed intervals a and b the observer solves
    the minimum-cost assignment (Kuhn 1955) with cost

        C[i, j] = |e_i - e_j| + |o_i - o_j|

    where e is the settled net import [Wh] and o the ordered net import
    [Wh] of pseudonym i in a and j in b. With unequal counts the surplus
    pseudonyms stay unlinked (their tracks end or start there). With
    `group` (each row's class of limits as its registration published it,
    -1 if unknown) a link across two known, different classes costs more
    than any link within one, so the observer crosses classes only when
    their sizes force it.

    Returns
    -------
    pairs : ndarray of int, shape (n_links, 2)
        (row in a, row in b) in `obs`.
    """
    pairs = []
    intervals = np.unique(obs.interval)
    for a, b in zip(intervals[:-1], intervals[1:]):
        rows_a, rows_b = np.flatnonzero(obs.interval == a), np.flatnonzero(obs.interval == b)
        cost = (np.abs(obs.net_import_wh[rows_a, None] - obs.net_import_wh[None, rows_b])
                + np.abs(obs.order_import_wh[rows_a, None] - obs.order_import_wh[None, rows_b]))
        if group is not None:
            g_a, g_b = group[rows_a, None], group[None, rows_b]
            cost = cost + ((g_a != g_b) & (g_a >= 0) & (g_b >= 0)) * (int(cost.max(initial=0)) + 1) * len(rows_a)
        i, j = linear_sum_assignment(cost)
        pairs.extend(zip(rows_a[i], rows_b[j]))
    return np.array(pairs, dtype=np.int64).reshape(-1, 2)


def tracks(n_rows: int, pairs: np.ndarray) -> np.ndarray:
    """Track number of each observation: chains of links, numbered in the order of their first row.

    Each row has at most one successor and one predecessor in `pairs`
    (both linkers guarantee it); a row without links is a track alone.
    """
    successor = dict(zip(pairs[:, 0].tolist(), pairs[:, 1].tolist()))
    has_predecessor = set(pairs[:, 1].tolist())
    track_of = np.full(n_rows, -1, dtype=np.int64)
    n_tracks = 0
    for head in range(n_rows):
        if head in has_predecessor:
            continue
        row = head
        while row is not None:
            track_of[row] = n_tracks
            row = successor.get(row)
        n_tracks += 1
    return track_of


def track_grid(values: np.ndarray, track_of: np.ndarray, column: np.ndarray, n_columns: int,
               fill: float | int) -> np.ndarray:
    """Observations' `values` laid out as (track, interval column), `fill` where a track has no observation."""
    dtype = np.float64 if isinstance(fill, float) else np.int64
    grid = np.full((int(track_of.max(initial=-1)) + 1, n_columns), fill, dtype=dtype)
    grid[track_of, column] = values
    return grid


# ---------------------------------------------------------------- the metrics


@dataclass(frozen=True)
class PatternFigures:
    """How well the observer's inferred series follow the true ones.

    Attributes
    ----------
    r : ndarray
        Pearson correlation per household (NaN where undefined: fewer than
        two common intervals or a constant series).
    mean_r : float
        Mean of the defined `r`.
    n_defined : int
        Households with a defined `r`.
    """

    r: np.ndarray
    mean_r: float
    n_defined: int


def pattern_correlation(inferred_wh: np.ndarray, true_wh: np.ndarray) -> PatternFigures:
    """Pearson correlation between each household's inferred and true per-interval series.

    For household h over the intervals t where both series are finite,

        r_h = sum_t (x_t - mean x)(y_t - mean y) / sqrt(sum_t (x_t - mean x)^2 * sum_t (y_t - mean y)^2)

    with x the inferred and y the true net import [Wh] (Pearson 1895);
    the figure is the mean of r_h over the households where it is defined.

    Parameters
    ----------
    inferred_wh, true_wh : ndarray, shape (households, intervals)
        Net import per interval, NaN where unknown. [Wh]
    """
    r = np.full(len(true_wh), np.nan)
    for h, (x, y) in enumerate(zip(np.asarray(inferred_wh, float), np.asarray(true_wh, float))):
        both = np.isfinite(x) & np.isfinite(y)
        if both.sum() < 2:
            continue
        dx, dy = x[both] - x[both].mean(), y[both] - y[both].mean()
        denominator = np.sqrt((dx**2).sum() * (dy**2).sum())
        if denominator > 0:
            r[h] = (dx * dy).sum() / denominator
    defined = np.isfinite(r)
    return PatternFigures(r, float(r[defined].mean()) if defined.any() else float("nan"), int(defined.sum()))


def pattern_chance_r(series_wh: np.ndarray, true_wh: np.ndarray) -> float:
    """The pattern figure of an observer that picks another household's series: mean Pearson r over pairs.

        r_chance = mean over h != g of r(x_g, y_h)

    with x_g household g's own settled series and y_h household h's true
    series [Wh] (`pattern_correlation`'s r), over the defined pairs. All
    households share the day's rhythm, so this is well above 0: it is what
    a track that lost its household entirely still scores.

    Parameters
    ----------
    series_wh, true_wh : ndarray, shape (households, intervals)
        Settled and true net import per household, NaN where unknown. [Wh]
    """
    n = len(true_wh)
    values = []
    for shift in range(1, n):
        others = np.roll(np.arange(n), shift)
        values.append(pattern_correlation(np.asarray(series_wh)[others], true_wh).r)
    pooled = np.concatenate(values) if values else np.array([])
    pooled = pooled[np.isfinite(pooled)]
    return float(pooled.mean()) if len(pooled) else float("nan")


def inferred_series_wh(series_wh: np.ndarray, truth: np.ndarray, n_households: int) -> np.ndarray:
    """Each household's series as the observer infers it: the track holding the household's first observation.

    Parameters
    ----------
    series_wh : ndarray, shape (tracks, intervals)
        Settled net import per track and interval, NaN where none. [Wh]
    truth : ndarray of int, shape (tracks, intervals)
        Household behind each cell (`NO_HOUSEHOLD` where none).
    n_households : int

    Returns
    -------
    ndarray, shape (households, intervals)
        The track's whole series (not only the household's cells); NaN for
        a household never observed. [Wh]
    """
    out = np.full((n_households, series_wh.shape[1]), np.nan)
    for h in range(n_households):
        tracks_h, columns_h = np.nonzero(truth == h)
        if len(columns_h):
            out[h] = series_wh[tracks_h[np.argmin(columns_h)]]
    return out


@dataclass(frozen=True)
class TrackingFigures:
    """How many of the observer's links join the same household.

    Attributes
    ----------
    accuracy : float
        n_correct / n_links (NaN without links).
    n_links, n_correct : int
    """

    accuracy: float
    n_links: int
    n_correct: int


def tracking_accuracy(pairs: np.ndarray, household: np.ndarray) -> TrackingFigures:
    """Fraction of interval-to-interval links that join the same household.

        accuracy = #{(i, j) in links : household(i) = household(j) != none} / #links

    Parameters
    ----------
    pairs : ndarray of int, shape (n_links, 2)
        Links between observations (`link_by_assignment`, `link_by_address`).
    household : ndarray of int
        Household behind each observation (`household_index`).
    """
    a, b = household[pairs[:, 0]], household[pairs[:, 1]]
    n_correct = int(((a == b) & (a != NO_HOUSEHOLD)).sum())
    return TrackingFigures(n_correct / len(pairs) if len(pairs) else float("nan"), len(pairs), n_correct)


@dataclass(frozen=True)
class ReidFigures:
    """Re-identification of households on the days after the first, given day 1 labelled.

    Attributes
    ----------
    fraction : float
        Correctly attributed observations over all later days (see the
        functions' formulas).
    fraction_by_day : tuple of float
        The same per later day (day 2, day 3, ...).
    n_observations : int
        Observations on the later days.
    chance : float
        1 / N for N households: a random attribution's expected fraction.
    """

    fraction: float
    fraction_by_day: tuple[float, ...]
    n_observations: int
    chance: float


def _reid_figures(correct: np.ndarray, day: np.ndarray, n_households: int) -> ReidFigures:
    """Pool the correctness of the observations of known households over the later days (day > 0) and per day."""
    later = day > 0
    days = sorted(set(day[later].tolist()))
    by_day = tuple(float(correct[day == d].mean()) for d in days)
    n = int(later.sum())
    return ReidFigures(float(correct[later].mean()) if n else float("nan"), by_day, n, 1 / n_households)


def _grid_reid_figures(correct: np.ndarray, truth: np.ndarray, day_of_interval: np.ndarray,
                       n_households: int) -> ReidFigures:
    """`_reid_figures` of the known cells of a (track, interval) grid."""
    known = truth != NO_HOUSEHOLD
    day = np.broadcast_to(day_of_interval[None, :], truth.shape)
    return _reid_figures(correct[known], day[known], n_households)


def reidentify_along_tracks(truth: np.ndarray, day_of_interval: np.ndarray, n_households: int) -> ReidFigures:
    """Re-identification by following the links across midnight.

    The observer knows who is behind each track on day 1 (worst case:
    day 1 labelled), labels the track with its day-1 majority household
    (ties: the lowest index; no day-1 cell: no label) and attributes every
    later cell of the track to it:

        fraction = #{cells (k, t), day(t) > 1 : label(k) = household(k, t)} / #{cells, day(t) > 1}

    Parameters
    ----------
    truth : ndarray of int, shape (tracks, intervals)
        Household behind each cell (`NO_HOUSEHOLD` where none).
    day_of_interval : ndarray of int, shape (intervals,)
        Day of each interval, 0 for day 1.
    n_households : int
    """
    known = truth != NO_HOUSEHOLD
    label = np.full(len(truth), NO_HOUSEHOLD)
    for k, row in enumerate(truth):
        first_day = row[(day_of_interval == 0) & (row != NO_HOUSEHOLD)]
        if len(first_day):
            label[k] = np.bincount(first_day, minlength=n_households).argmax()
    return _grid_reid_figures((label[:, None] == truth) & known, truth, day_of_interval, n_households)


def day_profiles_wh(series_wh: np.ndarray, day_of_interval: np.ndarray, day: int) -> np.ndarray:
    """Rows' series on one day, by slot of the day (the interval's position within its day). [Wh]"""
    return series_wh[:, day_of_interval == day]


def reidentify_by_profile(series_wh: np.ndarray, truth: np.ndarray, day_of_interval: np.ndarray,
                          profiles_wh: np.ndarray) -> ReidFigures:
    """Re-identification by the daily profile alone.

    For each later day d, the tracks present on d are assigned one to one
    to the households' labelled day-1 profiles P (Kuhn 1955) with cost the
    root mean square difference over the slots s where both are known:

        C[k, h] = sqrt(mean_s (x_k(d, s) - P_h(s))^2)

    and every cell of track k on day d is attributed to its household;

        fraction = #{cells (k, t), day(t) > 1 : assigned(k, day(t)) = household(k, t)} / #{cells, day(t) > 1}

    Parameters
    ----------
    series_wh : ndarray, shape (tracks, intervals)
        Settled net import per track and interval, NaN where none. [Wh]
    truth : ndarray of int, shape (tracks, intervals)
        Household behind each cell (`NO_HOUSEHOLD` where none).
    day_of_interval : ndarray of int, shape (intervals,)
        Day of each interval, 0 for day 1; slot s of a day is the s-th
        interval of that day.
    profiles_wh : ndarray, shape (households, slots)
        Each household's day-1 series (`day_profiles_wh`). [Wh]
    """
    known = truth != NO_HOUSEHOLD
    correct = np.zeros_like(known)
    for d in sorted(set(day_of_interval[day_of_interval > 0].tolist())):
        columns = np.flatnonzero(day_of_interval == d)
        slots = min(len(columns), profiles_wh.shape[1])
        day = series_wh[:, columns[:slots]]
        present = np.flatnonzero(np.isfinite(day).any(axis=1))
        diff = day[present, None, :] - profiles_wh[None, :, :slots]
        both = np.isfinite(diff)
        squares = np.where(both, diff, 0.0) ** 2
        cost = np.sqrt(squares.sum(axis=2) / np.maximum(both.sum(axis=2), 1))
        cost[both.sum(axis=2) == 0] = np.nanmax(cost, initial=0.0) * 10 + 1
        rows, households = linear_sum_assignment(cost)
        for row, h in zip(present[rows], households):
            correct[row, columns] = truth[row, columns] == h
    return _grid_reid_figures(correct & known, truth, day_of_interval, profiles_wh.shape[0])


def reidentify_by_slot(net_import_wh: np.ndarray, household: np.ndarray, interval: np.ndarray,
                       day_of_interval: np.ndarray, profiles_wh: np.ndarray) -> ReidFigures:
    """Re-identification without any linking: each interval's addresses matched to the day-1 profiles' same slot.

    For each interval t of a later day, the observations of t are
    assigned one to one to the households (Kuhn 1955) with cost the
    distance to the household's day-1 value at the same slot s(t) (the
    interval's position within its day):

        C[i, h] = |x_i - P_h(s(t))|

    (a household without a day-1 value at that slot costs more than any
    other), and

        fraction = #{observations i, day > 1 : assigned(i) = household(i)} / #{observations, day > 1}

    Parameters
    ----------
    net_import_wh : ndarray, shape (observations,)
        Settled net import (`Observations.net_import_wh`). [Wh]
    household : ndarray of int, shape (observations,)
        Household behind each observation (`NO_HOUSEHOLD`: not scored).
    interval : ndarray of int, shape (observations,)
        Market interval of each observation, its column in `day_of_interval`.
    day_of_interval : ndarray of int, shape (intervals,)
        Day of each interval, 0 for day 1.
    profiles_wh : ndarray, shape (households, slots)
        Each household's day-1 series (`day_profiles_wh`). [Wh]
    """
    first_of_day = {d: int(np.flatnonzero(day_of_interval == d)[0]) for d in set(day_of_interval.tolist())}
    assigned = np.full(len(household), NO_HOUSEHOLD)
    for t in np.unique(interval[day_of_interval[interval] > 0]):
        rows = np.flatnonzero(interval == t)
        slot = t - first_of_day[int(day_of_interval[t])]
        if slot >= profiles_wh.shape[1]:
            continue
        cost = np.abs(net_import_wh[rows, None].astype(float) - profiles_wh[None, :, slot])
        cost[~np.isfinite(cost)] = np.nanmax(cost, initial=0.0) * 10 + 1
        i, h = linear_sum_assignment(cost)
        assigned[rows[i]] = h
    known = household != NO_HOUSEHOLD
    return _reid_figures((assigned == household)[known], day_of_interval[interval][known], profiles_wh.shape[0])
