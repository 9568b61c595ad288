"""A federate that dies or stalls stops the run cleanly: exit 1, culprit named, partial results kept.

These start the real CLI on the short study and then harm one federate
process from outside, as an out-of-memory kill or a hung solver would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml

from gridledger.launcher import read_progress
from gridledger.run_secret import RUN_SECRET_ENV
from tests.e2e_helpers import ROOT, SHORT_STUDY, TEST_SECRET, TEST_SECRET_FILE, gridledger, only_run_dir

pytestmark = pytest.mark.e2e


def _start(study: Path, runs: Path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(study), "--runs", str(runs)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _wait_for(runs: Path, study: str, federate: str, time_s: float, deadline_s: float = 120) -> dict:
    """Progress record of `federate` once it has reached `time_s` of simulated time."""
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        dirs = list((runs / study).glob("*")) if (runs / study).exists() else []
        if dirs:
            record = read_progress(dirs[0]).get(federate)
            if record and record["time_s"] >= time_s and record["state"] != "starting":
                return record
        time.sleep(0.1)
    raise AssertionError(f"{federate} never reached t={time_s}")


def _harm(runs: Path, federate: str, at_s: float, sig: int, study: Path = SHORT_STUDY) -> tuple[int, str, Path]:
    """Run a study, send `sig` to one federate once it reaches `at_s`; (exit code, output, run dir)."""
    proc = _start(study, runs)
    record = _wait_for(runs, "baran-wu-short", federate, at_s)
    os.kill(record["pid"], sig)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if sig == signal.SIGSTOP and _alive(record["pid"]):
            os.kill(record["pid"], signal.SIGCONT)
    return proc.returncode, out.replace("\n", " "), only_run_dir(runs, "baran-wu-short")


def test_killed_federate_stops_run_with_exit_1_and_partial_results(tmp_path):
    code, out, run_dir = _harm(tmp_path / "runs", "grid", 3600, signal.SIGKILL)
    assert code == 1, out
    assert "run failed: federate grid: exited with code -9" in out
    assert "partial results and logs kept in" in out
    for name in ("broker", "grid", "ledger", "der"):
        assert (run_dir / "logs" / f"{name}.log").exists()
    for name in ("ledger", "der"):
        assert (run_dir / "parts" / f"{name}.nc").exists(), f"{name} kept nothing"
        assert read_progress(run_dir)[name]["state"] == "stopped"
    with xr.open_dataset(run_dir / "results.nc") as ds:
        assert ds.attrs["complete"] == 0
        assert 0 < int(ds.settled.sum()) < 8 * 32
    assert json.loads((run_dir / "kpis.json").read_text()) == {"complete": False}
    assert (run_dir / "chain" / "blocks.jsonl").exists()


def test_terminated_federate_keeps_its_own_results_and_is_named(tmp_path):
    code, out, run_dir = _harm(tmp_path / "runs", "ledger", 1800, signal.SIGTERM)
    assert code == 1, out
    assert f"run failed: federate ledger: exited with code {128 + signal.SIGTERM}" in out
    assert read_progress(run_dir)["ledger"]["state"] == "failed"
    assert {read_progress(run_dir)[n]["state"] for n in ("grid", "der")} == {"stopped"}
    assert (run_dir / "parts" / "ledger.nc").exists() and (run_dir / "chain" / "receipts.jsonl").exists()


def test_stalled_federate_is_named_and_stopped(tmp_path):
    study = tmp_path / "stall.yaml"
    config = yaml.safe_load(SHORT_STUDY.read_text())
    config["helics"] = {"stall_timeout_s": 8}
    study.write_text(yaml.safe_dump(config))
    code, out, run_dir = _harm(tmp_path / "runs", "der", 1800, signal.SIGSTOP, study)
    assert code == 1, out
    assert "no time grant for 8 s; stalled while computing: der" in out, out
    assert (run_dir / "parts" / "grid.nc").exists() and (run_dir / "parts" / "ledger.nc").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runner_json_runs_under_helics_cli_with_identical_kpis(tmp_path):
    """`gridledger runner` + `helics run --path` gives the same KPIs and chain as `gridledger run`."""
    runs_a, runs_b = tmp_path / "a", tmp_path / "b"
    assert gridledger("run", str(SHORT_STUDY), "--runs", str(runs_a)).returncode == 0
    described = gridledger("runner", str(SHORT_STUDY), "--runs", str(runs_b), "--secret-file", str(TEST_SECRET_FILE))
    assert described.returncode == 0, described.stderr
    assert TEST_SECRET.hex() not in described.stdout.lower()
    runner = json.loads(described.stdout)
    assert [f["name"] for f in runner["federates"]] == ["broker", "grid", "ledger", "der"]
    (tmp_path / "runner.json").write_text(described.stdout)
    helics = Path(sys.executable).parent / "helics"
    # The federates find the secret through the file path in the runner JSON, not in helics' environment.
    env = {key: value for key, value in os.environ.items() if key != RUN_SECRET_ENV}
    done = subprocess.run([str(helics), "run", "--path", str(tmp_path / "runner.json")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    a, b = only_run_dir(runs_a, "baran-wu-short"), only_run_dir(runs_b, "baran-wu-short")
    assert (a / "kpis.json").read_bytes() == (b / "kpis.json").read_bytes()
    for name in ("blocks.jsonl", "receipts.jsonl", "events.jsonl"):
        assert (a / "chain" / name).read_bytes() == (b / "chain" / name).read_bytes()
