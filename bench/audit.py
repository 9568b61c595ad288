"""What the auditor costs: its compute per interval and its share of a day's wall time, against the reference day.

`studies/meter-fraud.yaml` is the reference day (`bench.powerflow.REFERENCE_STUDY`'s
feeder, prosumers and market) with the auditor on, a flow sensor on every
line and seven attack kinds: the auditor estimates each interval, and again
for late readings, removing every meter its rᴺ test singles out (one
estimate per removal), so this is its busiest case. The auditor runs in its
own process beside the others; whether its work lengthens the run shows in
the day's wall time over the reference day's, both measured in this run.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from bench.study import StudyResult, run_study
from gridledger.study import load_study

AUDIT_STUDY = Path("studies/meter-fraud.yaml")


@dataclass(frozen=True)
class AuditCost:
    """The auditor's timing on the meter-fraud day.

    Attributes
    ----------
    intervals : int
        Market intervals audited.
    auditor_compute_s : float
        The auditor federate's own work (estimates, identification, messages). [s]
    wall_s : float
        The meter-fraud day's wall time, launch to results. [s]
    reference_wall_s : float
        The reference day's wall time in the same bench run. [s]
    """

    intervals: int
    auditor_compute_s: float
    wall_s: float
    reference_wall_s: float

    @property
    def per_interval_s(self) -> float:
        """Auditor compute per market interval. [s]"""
        return self.auditor_compute_s / self.intervals

    @property
    def share_of_wall(self) -> float:
        """Auditor compute over the day's wall time. [-]"""
        return self.auditor_compute_s / self.wall_s

    @property
    def over_reference(self) -> float:
        """The audited day's wall time over the reference day's. [-]"""
        return self.wall_s / self.reference_wall_s


def audit_cost(reference: StudyResult, runs_root: Path) -> AuditCost:
    """Run the meter-fraud day once and set the auditor's work against it and against `reference`."""
    run = run_study(AUDIT_STUDY, runs_root)
    intervals = int(run.simulated_s) // load_study(AUDIT_STUDY).market_interval_s
    return AuditCost(intervals, run.compute_s["auditor"], run.total_s, reference.total_s)


def audit_section(cost: AuditCost) -> list[str]:
    """Rows of the auditor section."""
    return [
        f"Auditor on the meter-fraud day ({AUDIT_STUDY}, {cost.intervals} intervals, 7 attack kinds)",
        f"  auditor compute          {cost.auditor_compute_s:8.1f} s   {cost.per_interval_s:6.3f} s per interval",
        f"  share of the day's wall  {cost.share_of_wall:8.1%}    (wall {cost.wall_s:.1f} s)",
        f"  day with audit / reference day  {cost.over_reference:5.2f}x  (reference wall {cost.reference_wall_s:.1f} s)",
    ]
