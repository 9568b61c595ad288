"""What the chain reveals, measured on a run: fixed addresses against per-interval pseudonyms, side by side.

`measure` reads a run's chain export (`gridledger.agents.chain_observer`)
and its ``results.nc`` (the truth: each prosumer's net import per market
interval), links households in both worlds and scores the observer
(`gridledger.agents.linkage`). Deterministic given the seed of the
pseudonyms. Method and figures: ``docs/linkage.md``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np


from gridledger.agents.chain_observer import (NO_HOUSEHOLD, Observations, checksum, household_addresses,
                                              household_index, load_events, observations, pseudonymise,
                                              registered_classes)
from gridledger.agents.linkage import (PatternFigures, ReidFigures, TrackingFigures, day_profiles_wh,
                                       inferred_series_wh, link_by_address, link_by_assignment, pattern_chance_r,
                                       pattern_correlation, reidentify_along_tracks, reidentify_by_profile,
                                       reidentify_by_slot, track_grid, tracking_accuracy, tracks)
from gridledger.units import SECONDS_PER_HOUR, W_PER_MW


def interval_net_import_wh(export_mw: np.ndarray, step_start_s: np.ndarray, step_s: float,
                           interval_start_s: np.ndarray) -> np.ndarray:
    """True net import per market interval from the power-flow steps' net export at the meter.

        E[h, k] = - sum over steps t in interval k of export_mw[t, h] * 10^6 * step_s / 3600

    Parameters
    ----------
    export_mw : ndarray, shape (steps, households)
        Net export at the meter per power-flow step (``results.nc``
        ``export_mw``, positive = export); NaN steps count 0. [MW]
    step_start_s : ndarray, shape (steps,)
        Start of each step. [s]
    step_s : float
        Power-flow step. [s]
    interval_start_s : ndarray, shape (intervals,)
        Start of each market interval. [s]

    Returns
    -------
    ndarray, shape (households, intervals)
        Net import, positive = import. [Wh]
    """
    interval = np.searchsorted(interval_start_s, step_start_s, side="right") - 1
    energy_wh = -np.nan_to_num(export_mw) * W_PER_MW * step_s / SECONDS_PER_HOUR
    out = np.zeros((len(interval_start_s), export_mw.shape[1]))
    inside = interval >= 0
    np.add.at(out, interval[inside], energy_wh[inside])
    return out.T


def interval_days(interval_start: np.ndarray) -> np.ndarray:
    """Day of each market interval, 0 for the calendar day of the first one (datetime64 starts)."""
    days = np.asarray(interval_start).astype("datetime64[D]")
    return (days - days[0]).astype(np.int64)


@dataclass(frozen=True)
class Truth:
    """What the run's ``results.nc`` says really happened.

    Attributes
    ----------
    study : str
    households : tuple of str
        Each prosumer's account, in the results' prosumer order.
    net_import_wh : ndarray, shape (households, intervals)
        True net import per market interval. [Wh]
    day_of_interval : ndarray of int, shape (intervals,)
    source : str
        Which variables the truth came from.
    owner_of : dict of str to str
        A run under ``pseudonyms``: each pseudonym (checksummed) to its
        household's account (``pseudonym_address``); empty otherwise.
    """

    study: str
    households: tuple[str, ...]
    net_import_wh: np.ndarray
    day_of_interval: np.ndarray
    source: str
    owner_of: dict[str, str]


def read_truth(results_nc: Path) -> Truth:
    """The true per-interval net import of each household from a run's ``results.nc``.

    ``true_import_wh - true_export_wh`` (what an honest meter reads; only
    studies with attacks or audits write it), else ``export_mw`` integrated
    over each interval's power-flow steps (`interval_net_import_wh`).
    """
    import xarray as xr

    with xr.open_dataset(results_nc) as ds:
        households = tuple(str(a) for a in ds["address"].values)
        owner_of = ({checksum(str(a)): households[i]
                     for row in ds["pseudonym_address"].transpose("interval", "prosumer").values
                     for i, a in enumerate(row) if str(a)}
                    if "pseudonym_address" in ds else {})
        days = interval_days(ds["interval"].values)
        if "true_import_wh" in ds and "true_export_wh" in ds:
            net = (ds["true_import_wh"] - ds["true_export_wh"]).transpose("prosumer", "interval").values
            source = "true_import_wh - true_export_wh"
        else:
            start = ds["time"].values[0]
            step_start_s = (ds["time"].values - start) / np.timedelta64(1, "s")
            interval_start_s = (ds["interval"].values - start) / np.timedelta64(1, "s")
            step_s = float(np.median(np.diff(step_start_s))) if len(step_start_s) > 1 else 0.0
            net = interval_net_import_wh(ds["export_mw"].transpose("time", "prosumer").values, step_start_s,
                                         step_s, interval_start_s)
            source = "-export_mw integrated per interval"
        return Truth(str(ds.attrs.get("study", "")), households, np.asarray(net, float), days, source, owner_of)


def owned(obs: Observations, owner_of: dict[str, str]) -> Observations:
    """The observations with each pseudonym named by its household's account: what the same run publishes under
    fixed addresses (a household has one pseudonym per interval, so rows stay one per address and interval)."""
    return Observations(obs.interval, tuple(owner_of.get(a, a) for a in obs.address), obs.net_import_wh,
                        obs.order_import_wh)


# ---------------------------------------------------------------- one world, and the comparison


@dataclass(frozen=True)
class WorldFigures:
    """The observer's figures in one world.

    Attributes
    ----------
    world : str
        ``"fixed addresses"`` or ``"per-interval pseudonyms"``.
    n_tracks : int
        Tracks the observer formed (addresses in the fixed world).
    pattern : PatternFigures
    tracking : TrackingFigures
    along_tracks, by_profile, by_slot : ReidFigures or None
        Re-identification on later days (`reidentify_along_tracks`,
        `reidentify_by_profile`, `reidentify_by_slot`; None for a one-day
        run).
    """

    world: str
    n_tracks: int
    pattern: PatternFigures
    tracking: TrackingFigures
    along_tracks: ReidFigures | None
    by_profile: ReidFigures | None
    by_slot: ReidFigures | None


def world_figures(world: str, obs: Observations, household: np.ndarray, pairs: np.ndarray, true_wh: np.ndarray,
                  days: np.ndarray, profiles_wh: np.ndarray) -> WorldFigures:
    """Every figure of one world from its observations, their true households, the observer's links and the truth.

    Parameters
    ----------
    world : str
    obs : Observations
        Rows' interval is the column in `true_wh` (market interval number).
    household : ndarray of int
        Household behind each observation.
    pairs : ndarray of int, shape (n_links, 2)
        The observer's links.
    true_wh : ndarray, shape (households, intervals)
        True net import. [Wh]
    days : ndarray of int, shape (intervals,)
        Day of each interval, 0 for day 1.
    profiles_wh : ndarray, shape (households, slots)
        The households' labelled day-1 series. [Wh]
    """
    n_households, n_intervals = true_wh.shape
    track_of = tracks(len(obs), pairs)
    series_wh = track_grid(obs.net_import_wh.astype(float), track_of, obs.interval, n_intervals, np.nan)
    truth = track_grid(household, track_of, obs.interval, n_intervals, NO_HOUSEHOLD)
    multi_day = bool((days > 0).any())
    return WorldFigures(
        world=world,
        n_tracks=len(series_wh),
        pattern=pattern_correlation(inferred_series_wh(series_wh, truth, n_households), true_wh),
        tracking=tracking_accuracy(pairs, household),
        along_tracks=reidentify_along_tracks(truth, days, n_households) if multi_day else None,
        by_profile=reidentify_by_profile(series_wh, truth, days, profiles_wh) if multi_day else None,
        by_slot=(reidentify_by_slot(obs.net_import_wh, household, obs.interval, days, profiles_wh)
                 if multi_day else None),
    )


@dataclass(frozen=True)
class LinkageFigures:
    """The linkage experiment on one run: fixed addresses and per-interval pseudonyms side by side.

    Attributes
    ----------
    study, run_dir : str
    seed : int
        Seed of the pseudonyms (a relabelled export).
    pseudonyms_source : str
        Where the pseudonymous world comes from: the run's own pseudonyms
        (a run under ``pseudonyms``) or the export relabelled.
    n_households, n_intervals, n_days : int
    chance : float
        1 / n_households.
    pattern_chance_r : float
        `pattern_chance_r`: the pattern figure of another household's series.
    truth_source : str
        Which results variables gave the true series.
    fixed, pseudonyms : WorldFigures
    """

    study: str
    run_dir: str
    seed: int
    pseudonyms_source: str
    n_households: int
    n_intervals: int
    n_days: int
    chance: float
    pattern_chance_r: float
    truth_source: str
    fixed: WorldFigures
    pseudonyms: WorldFigures

    def caption(self) -> str:
        """What was measured: the run, its households, intervals and days, the seed of the pseudonyms."""
        return (f"{self.study}: {self.n_households} households, {self.n_intervals} intervals, {self.n_days} day(s);"
                f" pseudonyms: {self.pseudonyms_source}")

    def table(self) -> str:
        """The figures as a Markdown table, fixed vs pseudonyms."""
        lines = [self.caption(), "", "| metric | fixed addresses | per-interval pseudonyms |", "|---|---|---|"]
        return "\n".join(lines + [f"| {a} | {b} | {c} |" for a, b, c in self.rows()])

    def rows(self) -> list[tuple[str, str, str]]:
        """(metric, fixed addresses, per-interval pseudonyms), each figure as text."""
        def f(x: float | None) -> str:
            return "n/a" if x is None or not np.isfinite(x) else f"{x:.3f}"

        def reid(w: WorldFigures, kind: str) -> str:
            figures = getattr(w, kind)
            if figures is None:
                return "n/a (one day)"
            days = ", ".join(f(x) for x in figures.fraction_by_day)
            return f"{f(figures.fraction)} (days 2+: {days})"

        rows = [("pattern: mean Pearson r (households defined)",
                 *(f"{f(w.pattern.mean_r)} ({w.pattern.n_defined})" for w in (self.fixed, self.pseudonyms))),
                ("tracking accuracy (links)",
                 *(f"{f(w.tracking.accuracy)} ({w.tracking.n_links})" for w in (self.fixed, self.pseudonyms))),
                ("tracks formed", str(self.fixed.n_tracks), str(self.pseudonyms.n_tracks)),
                ("re-identified on later days, following links",
                 reid(self.fixed, "along_tracks"), reid(self.pseudonyms, "along_tracks")),
                ("re-identified on later days, by the tracks' daily profile",
                 reid(self.fixed, "by_profile"), reid(self.pseudonyms, "by_profile")),
                ("re-identified on later days, each interval by the profile's same slot (no links)",
                 reid(self.fixed, "by_slot"), reid(self.pseudonyms, "by_slot")),
                ("pattern: mean r of another household's series", f(self.pattern_chance_r),
                 f(self.pattern_chance_r)),
                ("chance level of re-identification 1/N", f(self.chance), f(self.chance))]
        return rows


def measure(run_dir: Path, seed: int) -> LinkageFigures:
    """Run the linkage experiment on a finished run (``chain/events.jsonl`` and ``results.nc``).

    A run under fixed addresses: the fixed world reads the export as it
    is and links each address to itself; the pseudonymous world relabels
    it (`pseudonymise`, `seed`). A run under ``pseudonyms``: the
    pseudonymous world is the export as it is, and the fixed world the
    same observations with each pseudonym named by its household's
    account (`owned`). The observer links the pseudonymous world by
    assignment. Both are scored against the true net import of
    ``results.nc``; the labelled day-1 profiles are each household's
    settled series on day 1.
    """
    run_dir = Path(run_dir)
    events = load_events(run_dir / "chain")
    truth = read_truth(run_dir / "results.nc")
    n_households, n_intervals = truth.net_import_wh.shape

    if truth.owner_of:
        pseudo_obs = observations(events)
        pseudo_household = household_index(pseudo_obs.address, truth.households, truth.owner_of)
        classes = registered_classes(events)
        pseudo_pairs = link_by_assignment(pseudo_obs, np.array([classes.get(a, -1) for a in pseudo_obs.address]))
        fixed_obs = owned(pseudo_obs, truth.owner_of)
        source = "the run's own (real export; links within the registered classes)"
    else:
        fixed_obs = observations(events)
        relabelled = pseudonymise(events, household_addresses(events), seed)
        pseudo_obs = observations(relabelled.events)
        pseudo_household = household_index(pseudo_obs.address, truth.households, relabelled.owner_of)
        pseudo_pairs = link_by_assignment(pseudo_obs)
        source = f"export relabelled, seed {seed}"
    fixed_household = household_index(fixed_obs.address, truth.households)
    if (fixed_household == NO_HOUSEHOLD).any() or (fixed_obs.interval >= n_intervals).any():
        raise ValueError(f"{run_dir}: settled addresses or intervals not among results.nc's prosumers and intervals")
    fixed_pairs = link_by_address(fixed_obs)
    fixed_series = track_grid(fixed_obs.net_import_wh.astype(float), fixed_household, fixed_obs.interval,
                              n_intervals, np.nan)
    profiles = np.full((n_households, int((truth.day_of_interval == 0).sum())), np.nan)
    day1 = day_profiles_wh(fixed_series, truth.day_of_interval, 0)
    profiles[:len(day1)] = day1

    return LinkageFigures(
        study=truth.study, run_dir=str(run_dir), seed=seed, pseudonyms_source=source, n_households=n_households, n_intervals=n_intervals,
        n_days=int(truth.day_of_interval.max(initial=0)) + 1, chance=1 / n_households,
        pattern_chance_r=pattern_chance_r(fixed_series, truth.net_import_wh[:len(fixed_series)]),
        truth_source=truth.source,
        fixed=world_figures("fixed addresses", fixed_obs, fixed_household, fixed_pairs, truth.net_import_wh,
                            truth.day_of_interval, profiles),
        pseudonyms=world_figures("per-interval pseudonyms", pseudo_obs, pseudo_household,
                                 pseudo_pairs, truth.net_import_wh, truth.day_of_interval,
                                 profiles),
    )
