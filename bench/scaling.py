"""How a study scales with its prosumers: wall time, memory and gas against 32 / 128 / 512 / 1000 prosumers.

The sweep runs `studies/mvlv-1000.yaml` (SimBench's rural MV/LV grid, LV
prosumers, 15-minute power flow and market, batched signed submission) with
only ``prosumers.count`` and ``duration_s`` changed, each size once, small to
large, through `bench.study.run_study` (the launcher as ``gridledger run``
uses it). A variant is a set of study overrides on top (for instance the
ledger's sharding), so the sweep grows by one axis without changing shape.

Each curve is fitted with a power law ``y = a * n**b`` by least squares on
``log y`` against ``log n`` (`scipy.stats.linregress`); ``b`` is the scaling
exponent (1 = linear in prosumers) with its standard error. A 24 h day at a
size is estimated as the fitted start-up plus the fitted rest of the run
stretched from the sweep's horizon to 24 h, both linear in simulated time
beyond start-up, which the 2 h and 24 h runs of the README bear out within
the machine's noise.
"""

from __future__ import annotations

import copy
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from scipy.stats import linregress

from bench import verdict
from bench.study import run_study
from gridledger.results import KPIS_FILE
from gridledger.units import SECONDS_PER_DAY, SECONDS_PER_HOUR

SCALE_STUDY = Path(__file__).resolve().parent.parent / "studies" / "mvlv-1000.yaml"
COUNTS = (32, 128, 512, 1000)
EXTRAPOLATE_TO = 10_000
HORIZON_ENV = "GRIDLEDGER_SCALING_HOURS"
"""Environment variable: hours each sweep run simulates (default `DEFAULT_HORIZON_H`)."""
DEFAULT_HORIZON_H = 2.0
DAY_AIM_RATIO = 10.0
"""Issue 12: the 1000-prosumer day within this multiple of the 32-prosumer day's wall time. [-]"""
MEMORY_AIM_MIB = 4096.0
"""Issue 12: summed peak memory of the 1000-prosumer day. [MiB]"""
ZONE_LEDGERS = 4
VARIANTS = {
    "one ledger": {},
    f"{ZONE_LEDGERS} zone ledgers": {"grid": {"zones": {"by": "transformer", "count": ZONE_LEDGERS}},
                                     "market": {"sharding": "per-zone"}},
}
"""The sweep's variants: the study as written, and its ledger split over `ZONE_LEDGERS` zones of neighbouring
LV grids (``grid.zones: {by: transformer, count: 4}``, ``market.sharding: per-zone``) with the coordinator."""


@dataclass(frozen=True)
class ScalePoint:
    """One run of the sweep.

    Attributes
    ----------
    variant : str
        Name of the study overrides the run used.
    prosumers : int
        ``prosumers.count``.
    simulated_s : float
        Simulated duration. [s]
    wall_s : float
        Launch to results.nc and kpis.json (`bench.study.StudyResult.total_s`). [s]
    startup_s : float
        Launch until the last federate entered executing mode. [s]
    peak_rss_sum_mib : float
        Federates' peak resident memory, summed. [MiB]
    peak_rss_mib : dict of str to float
        Each federate's peak resident memory. [MiB]
    ledger_compute_s : float
        The ledger federate's compute time; with a ledger per zone, the busiest zone ledger's. [s]
    gas_per_interval : float
        Mean gas per market interval. [gas]
    transactions_per_interval : float
        Mean transactions per market interval.
    """

    variant: str
    prosumers: int
    simulated_s: float
    wall_s: float
    startup_s: float
    peak_rss_sum_mib: float
    peak_rss_mib: dict[str, float]
    ledger_compute_s: float
    gas_per_interval: float
    transactions_per_interval: float


@dataclass(frozen=True)
class PowerLaw:
    """``y = a * n**b`` fitted on log-log axes.

    Attributes
    ----------
    a : float
        Value at n = 1, in the unit of y.
    b : float
        Exponent. [-]
    b_stderr : float
        Standard error of ``b`` (0 for an exact fit or two points). [-]
    """

    a: float
    b: float
    b_stderr: float

    def at(self, n: float) -> float:
        """The fitted value at ``n``."""
        return self.a * n ** self.b


def fit_power_law(n: np.ndarray, y: np.ndarray) -> PowerLaw:
    """Least-squares fit of ``log y = log a + b log n``.

    Raises
    ------
    ValueError
        With fewer than two distinct sizes, or a value that is not positive.
    """
    n, y = np.asarray(n, dtype=float), np.asarray(y, dtype=float)
    if len(set(n)) < 2 or np.any(n <= 0) or np.any(y <= 0):
        raise ValueError(f"a power law needs at least two distinct sizes and positive values; got n={n}, y={y}")
    fit = linregress(np.log(n), np.log(y))
    return PowerLaw(a=math.exp(fit.intercept), b=float(fit.slope), b_stderr=float(np.nan_to_num(fit.stderr)))


@dataclass(frozen=True)
class Affine:
    """``y = fixed + per_prosumer * n`` fitted by least squares: a fixed cost and a cost per prosumer.

    Over 32-1000 prosumers the fixed part (the MV/LV grid, imports, start-up)
    still weighs on every figure, so the power law's exponent is below the
    marginal one; the affine fit extrapolates the marginal cost instead.
    """

    fixed: float
    per_prosumer: float

    def at(self, n: float) -> float:
        """The fitted value at ``n``."""
        return self.fixed + self.per_prosumer * n


def fit_affine(n: np.ndarray, y: np.ndarray) -> Affine:
    """Least-squares line through (n, y)."""
    fit = linregress(np.asarray(n, dtype=float), np.asarray(y, dtype=float))
    return Affine(fixed=float(fit.intercept), per_prosumer=float(fit.slope))


@dataclass(frozen=True)
class Curves:
    """The fitted curves of one variant of the sweep."""

    wall_s: PowerLaw
    startup_s: PowerLaw
    peak_rss_sum_mib: PowerLaw
    gas_per_interval: PowerLaw

    @classmethod
    def of(cls, points: list[ScalePoint]) -> Curves:
        n = np.array([p.prosumers for p in points])
        return cls(*(fit_power_law(n, np.array([getattr(p, name) for p in points]))
                     for name in ("wall_s", "startup_s", "peak_rss_sum_mib", "gas_per_interval")))

    def affine(self, points: list[ScalePoint], name: str) -> Affine:
        """The affine fit of one figure of ``points``."""
        return fit_affine(np.array([p.prosumers for p in points]), np.array([getattr(p, name) for p in points]))

    def day_wall_s(self, n: float, horizon_s: float) -> float:
        """Estimated wall time of a 24 h run of ``n`` prosumers: start-up, then the rest stretched to a day. [s]"""
        startup = min(self.startup_s.at(n), self.wall_s.at(n))
        return startup + (self.wall_s.at(n) - startup) * SECONDS_PER_DAY / horizon_s


def horizon_s() -> float:
    """Simulated duration of each sweep run, from `HORIZON_ENV`. [s]

    Raises
    ------
    ValueError
        If the variable is not a positive number of hours.
    """
    text = os.environ.get(HORIZON_ENV, str(DEFAULT_HORIZON_H))
    try:
        hours = float(text)
    except ValueError:
        hours = math.nan
    if not hours > 0:
        raise ValueError(f"{HORIZON_ENV}={text!r}: expected a positive number of hours, e.g. 2 or 24")
    return hours * SECONDS_PER_HOUR


def sized_study(base: Path, count: int, duration_s: float, overrides: dict, directory: Path) -> Path:
    """Write ``base`` with ``count`` prosumers, ``duration_s`` and ``overrides`` (merged key by key) to ``directory``."""
    study = yaml.safe_load(base.read_text())
    _merge(study, {"prosumers": {"count": count}, "duration_s": int(duration_s), **copy.deepcopy(overrides)})
    study["name"] = f"{study['name']}-n{count}"
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{study['name']}.yaml"
    path.write_text(yaml.safe_dump(study, sort_keys=False))
    return path


def _merge(into: dict, update: dict) -> None:
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def scaling_sweep(runs_root: Path, counts: tuple[int, ...] = COUNTS, duration_s: float | None = None,
                  variants: dict[str, dict] | None = None, base: Path = SCALE_STUDY,
                  progress=lambda text: None) -> list[ScalePoint]:
    """Run ``base`` at each count, per variant (default: the study as written), small to large; one point per run."""
    duration_s = horizon_s() if duration_s is None else duration_s
    points = []
    for variant, overrides in (variants or {"as written": {}}).items():
        for count in sorted(counts):
            progress(f"scaling sweep: {variant}, {count} prosumers, {duration_s / SECONDS_PER_HOUR:g} h")
            path = sized_study(base, count, duration_s, overrides, runs_root / "studies")
            run = run_study(path, runs_root)
            kpis = json.loads((Path(run.run_dir) / KPIS_FILE).read_text())
            points.append(ScalePoint(
                variant=variant, prosumers=count, simulated_s=run.simulated_s, wall_s=run.total_s,
                startup_s=run.startup_s, peak_rss_sum_mib=run.peak_rss_sum_mib, peak_rss_mib=run.peak_rss_mib,
                ledger_compute_s=ledger_compute_s(run.compute_s), gas_per_interval=kpis["gas_used_per_interval_mean"],
                transactions_per_interval=kpis["transactions_per_interval_mean"]))
    return points


def ledger_compute_s(compute_s: dict[str, float]) -> float:
    """The ledger's compute time, or the busiest zone ledger's (``ledger-<zone>``), the critical path. [s]"""
    return max(t for name, t in compute_s.items() if name == "ledger" or name.startswith("ledger-"))


@dataclass(frozen=True)
class Sweep:
    """A finished sweep: its points grouped by variant, with their fitted curves."""

    points: list[ScalePoint]
    curves: dict[str, Curves] = field(init=False)

    def __post_init__(self):
        object.__setattr__(self, "curves", {v: Curves.of(self.of(v)) for v in dict.fromkeys(p.variant for p in self.points)})

    def of(self, variant: str) -> list[ScalePoint]:
        return [p for p in self.points if p.variant == variant]


def scaling_section(sweep: Sweep, number: int = 10) -> list[str]:
    """Rows of the scaling section: every run, the fitted exponents, and the extrapolation to 10,000 prosumers."""
    first = sweep.points[0]
    hours = first.simulated_s / SECONDS_PER_HOUR
    lines = [f"{number}. Scaling with prosumers: {SCALE_STUDY.name} with prosumers.count changed, {hours:g} h each,"
             f" one run per size (aims for the day: 1000/32 wall <= {DAY_AIM_RATIO:g}x,"
             f" 1000-prosumer summed peak <= {MEMORY_AIM_MIB / 1024:g} GiB)"]
    for variant, curves in sweep.curves.items():
        points = sweep.of(variant)
        lines += [f"   variant: {variant}",
                  f"   {'prosumers':>10}{'wall [s]':>10}{'x smallest':>12}{'start-up [s]':>14}{'ledger [s]':>12}"
                  f"{'peak RSS [MiB]':>16}{'gas/interval':>15}{'tx/interval':>13}"]
        lines += [f"   {p.prosumers:>10}{p.wall_s:>10.1f}{p.wall_s / points[0].wall_s:>11.2f}x{p.startup_s:>14.1f}"
                  f"{p.ledger_compute_s:>12.1f}{p.peak_rss_sum_mib:>16.0f}{p.gas_per_interval:>15,.0f}"
                  f"{p.transactions_per_interval:>13.1f}" for p in points]
        lines += [f"   fitted exponent b (y = a n^b): wall {_b(curves.wall_s)}, peak RSS {_b(curves.peak_rss_sum_mib)},"
                  f" gas/interval {_b(curves.gas_per_interval)}"]
        by_n = {p.prosumers: p for p in points}
        if {32, 1000} <= by_n.keys():
            day = [curves.day_wall_s(n, first.simulated_s) for n in (32, 1000)]
            memory = by_n[1000].peak_rss_sum_mib
            lines.append(f"   1000/32 wall at {hours:g} h: {by_n[1000].wall_s / by_n[32].wall_s:.2f}x; day estimated from"
                         f" the fit: {day[1] / day[0]:.2f}x ({verdict(day[1] / day[0] <= DAY_AIM_RATIO)});"
                         f" 1000-prosumer peak RSS {memory:.0f} MiB ({verdict(memory <= MEMORY_AIM_MIB)})")
        lines.append(f"   extrapolated to {EXTRAPOLATE_TO:,} prosumers: {curves.wall_s.at(EXTRAPOLATE_TO):,.0f} s for"
                     f" {hours:g} h, about {curves.day_wall_s(EXTRAPOLATE_TO, first.simulated_s) / SECONDS_PER_HOUR:.1f} h"
                     f" for the day, {curves.peak_rss_sum_mib.at(EXTRAPOLATE_TO) / 1024:.1f} GiB summed peak,"
                     f" {curves.gas_per_interval.at(EXTRAPOLATE_TO):,.0f} gas per interval")
        wall, memory = curves.affine(points, "wall_s"), curves.affine(points, "peak_rss_sum_mib")
        lines.append(f"   affine fit (fixed + per prosumer): wall {wall.fixed:.1f} s + {1e3 * wall.per_prosumer:.1f} ms"
                     f" x n, peak RSS {memory.fixed:.0f} MiB + {1024 * memory.per_prosumer:.0f} KiB x n;"
                     f" at {EXTRAPOLATE_TO:,}: {wall.at(EXTRAPOLATE_TO):,.0f} s for {hours:g} h,"
                     f" {memory.at(EXTRAPOLATE_TO) / 1024:.1f} GiB")
    lines.append("   (10,000 prosumers need SimBench's urban MV/LV grid, 11,542 loads; not run here: the day would take"
                 " the hours estimated above on this machine, and a book holds 256 orders per side and interval,"
                 " so one ledger would refuse most orders; zone ledgers of at most 256 prosumers each would not)")
    return lines


def _b(law: PowerLaw) -> str:
    return f"{law.b:.2f} +- {law.b_stderr:.2f}"



def plot_scaling(sweep: Sweep, path: Path) -> Path:
    """Log-log plot of wall time and summed peak memory against prosumers, points and fitted lines, per variant."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), constrained_layout=True)
    for variant, curves in sweep.curves.items():
        points = sweep.of(variant)
        n = np.array([p.prosumers for p in points])
        grid = np.geomspace(n.min(), EXTRAPOLATE_TO, 50)
        for ax, name, law, unit in ((axes[0], "wall_s", curves.wall_s, "wall time [s]"),
                                    (axes[1], "peak_rss_sum_mib", curves.peak_rss_sum_mib, "summed peak RSS [MiB]")):
            line, = ax.loglog(n, [getattr(p, name) for p in points], "o", label=f"{variant}")
            ax.loglog(grid, law.at(grid), "--", color=line.get_color(), label=f"fit, b = {law.b:.2f}")
            ax.set_xlabel("prosumers")
            ax.set_ylabel(unit)
            ax.grid(True, which="both", alpha=0.3)
            ax.legend()
    fig.suptitle(f"{SCALE_STUDY.name}, {sweep.points[0].simulated_s / SECONDS_PER_HOUR:g} h per run")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
