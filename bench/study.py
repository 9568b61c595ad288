"""Wall time and memory of one run of a study, split by the federates' own timing records.

The study runs as ``gridledger run`` runs it: `gridledger.launcher.prepare`,
`launch` (broker plus one process per federate), then
`gridledger.results.collect`. Each federate's final progress record
(``progress/<name>.json``) carries a ``timing`` dict: ``startup_s`` (launch to
entering executing mode), ``waiting_s`` (in HELICS time requests),
``compute_s`` (the rest of its life after entering) and ``peak_rss_mib``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from gridledger.launcher import launch, prepare, read_progress
from gridledger.results import collect


@dataclass(frozen=True)
class StudyResult:
    """Where the wall time of one study run went.

    Attributes
    ----------
    study : str
        Study name.
    simulated_s : float
        Simulated duration. [s]
    run_dir : str
        The run directory.
    total_s : float
        ``launch_s + collect_s``. [s]
    launch_s : float
        Launch until every process has exited. [s]
    startup_s : float
        Largest federate ``startup_s``: the federation computes nothing
        before the last federate enters. [s]
    compute_s : dict of str to float
        Each federate's ``compute_s``. [s]
    rest_s : float
        ``launch_s - startup_s - sum(compute_s)``, at least 0: the part of
        the launch no federate computed (HELICS exchanges and waits, exit). [s]
    collect_s : float
        `collect` after the launch: results.nc and kpis.json. [s]
    peak_rss_mib : dict of str to float
        Peak resident memory of each federate process (broker excluded). [MiB]
    federate_startup_s : dict of str to float
        Each federate's ``startup_s``. [s]
    """

    study: str
    simulated_s: float
    run_dir: str
    total_s: float
    launch_s: float
    startup_s: float
    compute_s: dict[str, float]
    rest_s: float
    collect_s: float
    peak_rss_mib: dict[str, float]
    federate_startup_s: dict[str, float]

    @property
    def peak_rss_sum_mib(self) -> float:
        """Sum of the federates' peak resident memory. [MiB]"""
        return sum(self.peak_rss_mib.values())


def run_study(study_path: Path, runs_root: Path) -> StudyResult:
    """Run ``study_path`` once under ``runs_root`` and split its wall time.

    Raises
    ------
    RuntimeError
        If the run fails or a federate left no timing record.
    """
    prepared = prepare(study_path, runs_root)
    started = time.perf_counter()
    outcome = launch(prepared)
    launched = time.perf_counter()
    collect(prepared.run_dir, prepared.study, prepared.federates)
    collected = time.perf_counter()
    if outcome.exit_code:
        raise RuntimeError(f"{study_path}: federate {outcome.failed} failed: {outcome.reason}")
    records = read_progress(prepared.run_dir)
    missing = [name for name in prepared.federates if "timing" not in records.get(name, {})]
    if missing:
        raise RuntimeError(f"{prepared.run_dir}: no timing record from {', '.join(missing)}")
    timing = {name: records[name]["timing"] for name in prepared.federates}
    launch_s = launched - started
    startup_s = max(t["startup_s"] for t in timing.values())
    compute_s = {name: t["compute_s"] for name, t in timing.items()}
    return StudyResult(
        study=prepared.study.name,
        simulated_s=float(prepared.study.duration_s),
        run_dir=str(prepared.run_dir),
        total_s=collected - started,
        launch_s=launch_s,
        startup_s=startup_s,
        compute_s=compute_s,
        rest_s=max(0.0, launch_s - startup_s - sum(compute_s.values())),
        collect_s=collected - launched,
        peak_rss_mib={name: t["peak_rss_mib"] for name, t in timing.items()},
        federate_startup_s={name: t["startup_s"] for name, t in timing.items()},
    )
