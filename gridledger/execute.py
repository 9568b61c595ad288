"""Run a prepared study to its end and leave everything a planner reads in its run directory.

`execute` launches the federation, collects ``results.nc`` and
``kpis.json``, writes ``run.json`` (how the run went: wall time, exit code,
how it ended, failing federate; facts that differ between identical runs,
so they stay out of ``kpis.json``) and ``report.html``, for a failed or
interrupted (SIGINT, SIGTERM) run too. `gridledger run`, the sweep tasks
and `gridledger regress` all go through here.
"""

from __future__ import annotations

import datetime as dt
import json
import time
from dataclasses import asdict, dataclass
from importlib.metadata import version
from pathlib import Path

from gridledger.launcher import Outcome, Prepared, launch
from gridledger.process import RUN_FILE
from gridledger.report import write_report
from gridledger.results import collect



@dataclass(frozen=True)
class RunRecord:
    """How one run went, as written to ``run.json``.

    Attributes
    ----------
    started : str
        Local wall-clock time the federation was launched (ISO 8601).
    wall_time_s : float
        Wall-clock time from launch to collected results. [s]
    exit_code : int
        0 finished, 1 a federate failed or stalled, or the run was interrupted.
    ended : str
        ``"finished"``, ``"failed"`` or ``"interrupted by SIGINT"`` / ``"interrupted by SIGTERM"``.
    failed, reason : str or None
        The failing federate(s) and why (an interrupted run: None and what was done).
    software : str
        gridledger version.
    resumed_from : int or None
        The checkpoint this launch resumed from (`gridledger resume`); None for a run started from the beginning.
    """

    started: str
    wall_time_s: float
    exit_code: int
    ended: str
    failed: str | None
    reason: str | None
    software: str
    resumed_from: int | None = None


def record_run(run_dir: Path, outcome: Outcome, started: dt.datetime, wall_time_s: float,
               resumed_from: int | None = None) -> RunRecord:
    """Write ``run.json`` for a finished, failed or interrupted run (a resumed one: of its last launch)."""
    record = RunRecord(started.isoformat(timespec="seconds"), round(wall_time_s, 3), outcome.exit_code,
                       outcome.ended, outcome.failed, outcome.reason, f"gridledger {version('gridledger')}",
                       resumed_from)
    (Path(run_dir) / RUN_FILE).write_text(json.dumps(asdict(record), indent=2) + "\n")
    return record


@dataclass(frozen=True)
class Executed:
    """A run that has ended: its outcome, KPIs, record and report."""

    run_dir: Path
    outcome: Outcome
    kpis: dict
    record: RunRecord
    report: Path


def execute(prepared: Prepared, on_progress=None, resume: int | None = None) -> Executed:
    """Launch (from checkpoint `resume`, if given), collect, write ``run.json`` and ``report.html``; `on_progress`
    as in `launch`."""
    started, t0 = dt.datetime.now(), time.monotonic()
    outcome = launch(prepared, on_progress=on_progress, resume=resume)
    kpis = collect(prepared.run_dir, prepared.study, prepared.federates)
    record = record_run(prepared.run_dir, outcome, started, time.monotonic() - t0, resume)
    return Executed(prepared.run_dir, outcome, kpis, record, write_report(prepared.run_dir, asdict(record)))
