"""Fault injection (``make test-all``): any federate, or the broker, killed at any time hypothesis picks.

Each example runs the short study with a checkpoint every 30 minutes,
SIGKILLs one process once the run has reached the chosen simulated time,
and checks what a planner relies on: exit 1 with the culprit named, the
partial results and the checkpoints kept, no process of the run left, and
`gridledger resume` finishing the run byte-identical to an uninterrupted
one (or, killed before the first checkpoint was complete, refusing with
exit 2 and saying so).
"""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path

import pytest
import xarray as xr
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gridledger.checkpoint import resume_point
from gridledger.interfaces import broker_port_of
from gridledger.launcher import read_progress
from tests.e2e_helpers import TEST_SECRET_FILE, gridledger, only_run_dir, start_run, wait_for_progress
from tests.test_e2e_resume import SAME, checkpointed_study

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

FEDERATES = ("grid", "der", "ledger")


def _commands() -> dict[int, str]:
    """Every process's command line, by pid."""
    commands = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                commands[int(proc.name)] = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
    return commands


def _broker_name(run_dir: Path) -> str:
    return f"--name=gridledger-{broker_port_of((run_dir / 'helics' / 'ledger.json').read_text())}"


def _processes_of(run_dir: Path) -> list[int]:
    """Processes still running for `run_dir`: its federates (the run directory on their command line) and its
    broker (named after the run's port)."""
    return [pid for pid, command in _commands().items() if str(run_dir) in command or _broker_name(run_dir) in command]


def _broker_pid(run_dir: Path) -> int:
    return next(pid for pid, command in _commands().items()
                if "helics_broker" in command and _broker_name(run_dir) in command)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(victim=st.sampled_from((*FEDERATES, "broker")), at_s=st.floats(min_value=0.0, max_value=7000.0))
def test_any_process_killed_at_any_time_stops_cleanly_and_resumes_identically(short_run, victim, at_s):
    with tempfile.TemporaryDirectory() as tmp:
        runs = Path(tmp) / "runs"
        runs.mkdir()
        proc = start_run(checkpointed_study(Path(tmp)), runs, "--secret-file", str(TEST_SECRET_FILE))
        record = wait_for_progress(runs, "baran-wu-short", "ledger" if victim == "broker" else victim, at_s)
        run_dir = only_run_dir(runs, "baran-wu-short")
        os.kill(_broker_pid(run_dir) if victim == "broker" else record["pid"], signal.SIGKILL)
        out, _ = proc.communicate(timeout=180)

        assert proc.returncode == 1, out
        said = out.replace("\n", " ")
        assert f"run failed: federate {victim}: " in said and "exited with code -9" in said, out
        assert _processes_of(run_dir) == []
        with xr.open_dataset(run_dir / "results.nc") as ds:
            assert ds.attrs["complete"] == 0
        if victim != "broker":        # without a broker the others may be held in a time request until killed
            survivors = {n: r["state"] for n, r in read_progress(run_dir).items() if n != victim}
            assert set(survivors.values()) <= {"stopped", "done"}, survivors

        number = resume_point(run_dir, FEDERATES)
        done = gridledger("resume", str(run_dir), "--secret-file", str(TEST_SECRET_FILE))
        if number is None:
            assert done.returncode == 2 and "no complete checkpoint to resume from" in done.stderr, done.stderr
            return
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"from checkpoint {number}" in done.stdout
        for name in SAME:
            assert (run_dir / name).read_bytes() == (short_run.run_dir / name).read_bytes(), name
        assert _processes_of(run_dir) == []
