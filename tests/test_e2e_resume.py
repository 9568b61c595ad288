"""A run killed in the middle resumes from its last checkpoint and ends exactly as an uninterrupted run.

The short study takes a checkpoint every 30 minutes of study time; the
ledger is killed (SIGKILL, as the kernel's out-of-memory killer would)
after its second checkpoint, `gridledger resume` goes on from there, and
``kpis.json``, ``results.nc`` and the chain export are compared byte for
byte with the session's uninterrupted run of the same study
(`tests.conftest.short_run`, no checkpoints).
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import pytest
import xarray as xr
import yaml

from gridledger.checkpoint import written
from gridledger.contracts.keys import derive_account
from gridledger.launcher import read_progress
from tests.e2e_helpers import SHORT_STUDY, TEST_SECRET, TEST_SECRET_FILE, gridledger, only_run_dir, start_run, wait_for_progress

pytestmark = pytest.mark.e2e

SAME = ("kpis.json", "results.nc", "chain/blocks.jsonl", "chain/receipts.jsonl", "chain/events.jsonl",
        "deployments.json")


def checkpointed_study(tmp_path: Path, every: str = "30min") -> Path:
    """The short study with a checkpoint every `every` (the same run otherwise: a checkpoint changes nothing)."""
    study = tmp_path / "short.yaml"
    study.write_text(yaml.safe_dump({**yaml.safe_load(SHORT_STUDY.read_text()), "checkpoint": {"every_s": every}}))
    return study


def kill_after(runs: Path, federate: str, at_s: float, study: Path) -> tuple[int, str, Path]:
    """Run `study`, SIGKILL `federate` once it has reached `at_s`; (exit code, output, run directory)."""
    proc = start_run(study, runs, "--secret-file", str(TEST_SECRET_FILE))
    record = wait_for_progress(runs, "baran-wu-short", federate, at_s)
    os.kill(record["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    return proc.returncode, out, only_run_dir(runs, "baran-wu-short")


@pytest.fixture(scope="module")
def resumed(tmp_path_factory):
    """The killed and resumed run: (kill's exit code and output, resume's result, run directory, checkpoints then,
    the killed run's results)."""
    tmp = tmp_path_factory.mktemp("resume")
    code, out, run_dir = kill_after(tmp / "runs", "ledger", 4500, checkpointed_study(tmp))
    kept = written(run_dir)
    with xr.open_dataset(run_dir / "results.nc", engine="h5netcdf") as killed:
        partial = killed.load()
    done = gridledger("resume", str(run_dir), "--secret-file", str(TEST_SECRET_FILE))
    return code, out, done, run_dir, kept, partial


def test_a_killed_ledger_stops_the_run_and_leaves_complete_checkpoints(resumed):
    code, out, _, _, kept, _ = resumed
    assert code == 1 and "run failed: federate ledger: exited with code -9" in out, out
    assert kept[2] == {"grid", "der", "ledger"} and max(kept) == 2, kept


def test_the_killed_ledger_left_its_results_up_to_its_last_checkpoint(resumed, short_run):
    """SIGKILLed, the ledger wrote nothing at its end: its part is the one written at checkpoint 2 (3600 s less
    1/16 s), which holds the intervals cleared by then (0-4: an interval clears before it starts) as the
    uninterrupted run has them, and none after."""
    partial = resumed[5]
    assert partial.attrs["complete"] == 0 and partial.attrs["parts"] == "der,grid,ledger"
    with xr.open_dataset(short_run.run_dir / "results.nc", engine="h5netcdf") as whole:
        expected = whole.clearing_price_per_kwh.load()
    recorded = partial.clearing_price_per_kwh.notnull()
    assert recorded[:5].all() and not recorded[5:].any() and expected.notnull().all()
    xr.testing.assert_identical(partial.clearing_price_per_kwh.where(recorded, drop=True),
                                expected.where(recorded, drop=True))


def test_resume_goes_on_from_the_last_complete_checkpoint(resumed):
    _, _, done, run_dir, kept, _ = resumed
    assert done.returncode == 0, done.stdout + done.stderr
    last = max(n for n, names in kept.items() if names == {"grid", "der", "ledger"})
    assert f"resuming {run_dir} from checkpoint {last}" in done.stdout
    record = json.loads((run_dir / "run.json").read_text())
    assert record["ended"] == "finished" and record["resumed_from"] == last
    assert {r["state"] for r in read_progress(run_dir).values()} == {"done"}


@pytest.mark.parametrize("name", SAME)
def test_resumed_run_is_byte_identical_to_an_uninterrupted_run(resumed, short_run, name):
    run_dir = resumed[3]
    assert (run_dir / name).read_bytes() == (short_run.run_dir / name).read_bytes(), name


def test_checkpoints_are_sealed(resumed):
    """Sealed under the run secret: no private key, address or class name of the run is in a checkpoint's bytes."""
    run_dir = resumed[3]
    keys = [derive_account(TEST_SECRET, label).key for label in ("operator", "prosumer/p0", "meter/p0")]
    token = json.loads((run_dir / "deployments.json").read_text())["contracts"]["GridToken"]["address"]
    files = list((run_dir / "checkpoints").rglob("*.ckpt"))
    assert len(files) >= 3
    for path in files:
        data = path.read_bytes()
        assert not any(bytes(key) in data for key in keys)
        assert bytes.fromhex(token[2:]) not in data and token.encode() not in data and b"gridledger" not in data


def test_resume_refuses_a_finished_run_and_a_wrong_secret(resumed, tmp_path):
    run_dir = resumed[3]
    finished = gridledger("resume", str(run_dir), "--secret-file", str(TEST_SECRET_FILE))
    assert finished.returncode == 2 and "the run finished; there is nothing to resume" in finished.stderr
    record = run_dir / "run.json"
    saved = record.read_text()
    try:
        record.write_text(json.dumps({**json.loads(saved), "ended": "failed"}))
        wrong = tmp_path / "wrong-secret"
        wrong.write_text("11" * 32)
        refused = gridledger("resume", str(run_dir), "--secret-file", str(wrong))
    finally:
        record.write_text(saved)
    assert refused.returncode == 2
    assert "does not open with this run secret" in refused.stderr, refused.stderr
