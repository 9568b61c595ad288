"""Long studies (issue 16): memory over weeks of the year study, and what checkpoints cost.

* Memory: `studies/simbench-lv-year.yaml` cut to `LONG_DAYS` days (28 by
  default; ``GRIDLEDGER_LONG_DAYS=365`` runs the whole year, about an hour
  on two cores), checkpointing weekly as a long run does by default. Every
  federate samples its resident set 100 times over the run
  (``timing.rss_mib``, `gridledger.federates.shell.Shell`); the figure is
  each federate's last sample over its first at or after day 7, aim at
  most `MEMORY_AIM_RATIO` (issue 16: memory at the end within 10 % of
  memory after the first week), with the curve at every tenth of the run.
* Checkpoints: the reference day with a checkpoint every hour (23 of them)
  against the reference day of section 1 (none inside a day); wall-time
  ratio, aim at most `CHECKPOINT_AIM_RATIO`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

import yaml

from bench import verdict
from bench.powerflow import REFERENCE_STUDY
from bench.study import StudyResult, run_study
from gridledger.launcher import read_progress
from gridledger.units import SECONDS_PER_DAY

YEAR_STUDY = Path(__file__).resolve().parents[1] / "studies" / "simbench-lv-year.yaml"
LONG_DAYS = int(os.environ.get("GRIDLEDGER_LONG_DAYS", "28"))
WEEK_DAYS = 7
MEMORY_AIM_RATIO = 1.10
CHECKPOINT_AIM_RATIO = 1.10
CURVE_POINTS = 10


@dataclass(frozen=True)
class LongRun:
    """Memory over a long run and the cost of checkpoints.

    Attributes
    ----------
    days : int
        Simulated days of the long run.
    wall_s : float
        Its wall time, launch to collected results. [s]
    peak_rss_mib : dict of str to float
        Each federate's peak resident set. [MiB]
    rss_mib : dict of str to list of [float, float]
        Each federate's samples: (simulated time [s], resident set [MiB]).
    checkpointed_wall_s, reference_wall_s : float
        The reference day with a checkpoint every hour, and without (section 1). [s]
    """

    days: int
    wall_s: float
    peak_rss_mib: dict[str, float]
    rss_mib: dict[str, list[list[float]]]
    checkpointed_wall_s: float
    reference_wall_s: float

    def after_week_mib(self, federate: str) -> float:
        """The federate's first sample at or after day 7. [MiB]"""
        return next(mib for t, mib in self.rss_mib[federate] if t >= WEEK_DAYS * SECONDS_PER_DAY)

    def end_over_week(self, federate: str) -> float:
        """The federate's last sample over its first after a week. [-]"""
        return self.rss_mib[federate][-1][1] / self.after_week_mib(federate)

    @property
    def checkpoint_ratio(self) -> float:
        """The checkpointed day's wall time over the reference day's. [-]"""
        return self.checkpointed_wall_s / self.reference_wall_s


def _variant(source: Path, directory: Path, **fields: object) -> Path:
    path = directory / source.name
    path.write_text(yaml.safe_dump({**yaml.safe_load(source.read_text()), **fields}))
    return path


def long_run_cost(reference: StudyResult, runs_root: Path, days: int = LONG_DAYS) -> LongRun:
    """Run the year study cut to `days` days and the reference day checkpointed hourly."""
    with tempfile.TemporaryDirectory() as tmp:
        long = run_study(_variant(YEAR_STUDY, Path(tmp), duration_s=f"{days}d"), runs_root)
        checkpointed = run_study(_variant(REFERENCE_STUDY, Path(tmp), checkpoint={"every_s": "1h"}), runs_root)
    records = read_progress(Path(long.run_dir))
    return LongRun(days=days, wall_s=long.total_s, peak_rss_mib=long.peak_rss_mib,
                   rss_mib={name: records[name]["timing"]["rss_mib"] for name in long.peak_rss_mib},
                   checkpointed_wall_s=checkpointed.total_s, reference_wall_s=reference.total_s)


def long_run_section(cost: LongRun, number: int = 14) -> list[str]:
    """Rows of the long-study section."""
    lines = [f"{number}. Long studies: {YEAR_STUDY.name} for {cost.days} days (wall {cost.wall_s / 60:.1f} min), "
             f"memory at the end over memory after a week (aim <= {MEMORY_AIM_RATIO:.2f}x)"]
    for name in sorted(cost.rss_mib):
        ratio = cost.end_over_week(name)
        lines.append(f"   {name:10s} peak {cost.peak_rss_mib[name]:6.0f} MiB  week {cost.after_week_mib(name):6.0f} MiB  "
                     f"end {cost.rss_mib[name][-1][1]:6.0f} MiB  {ratio:5.2f}x  {verdict(ratio <= MEMORY_AIM_RATIO)}")
    for name in sorted(cost.rss_mib):
        samples = cost.rss_mib[name]
        picks = [samples[round(i * (len(samples) - 1) / CURVE_POINTS)] for i in range(CURVE_POINTS + 1)]
        curve = "  ".join(f"d{t / SECONDS_PER_DAY:.0f}:{mib:.0f}" for t, mib in picks)
        lines.append(f"   {name:10s} MiB by day  {curve}")
    lines.append(f"   reference day checkpointed hourly / reference day  {cost.checkpoint_ratio:5.2f}x  "
                 f"({cost.checkpointed_wall_s:.1f} s vs {cost.reference_wall_s:.1f} s)  "
                 f"{verdict(cost.checkpoint_ratio <= CHECKPOINT_AIM_RATIO)}")
    return lines
