"""Running real studies from tests: the `gridledger` CLI in a subprocess, results read back.

Runs get the golden runs' test-only secret (``studies/golden/run-secret``)
in ``GRIDLEDGER_RUN_SECRET``, so they repeat and match the golden results.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import xarray as xr
import yaml

from gridledger.launcher import read_progress
from gridledger.run_secret import RUN_SECRET_ENV, read_secret_file

ROOT = Path(__file__).resolve().parents[1]
SHORT_STUDY = ROOT / "studies" / "baran-wu-short.yaml"
TEST_SECRET_FILE = ROOT / "studies" / "golden" / "run-secret"
TEST_SECRET = read_secret_file(TEST_SECRET_FILE)


def with_secret(secret: bytes = TEST_SECRET) -> dict[str, str]:
    """This process's environment with `secret` as the run secret."""
    return {**os.environ, RUN_SECRET_ENV: secret.hex()}


def gridledger(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the gridledger CLI of this interpreter's environment."""
    return subprocess.run([sys.executable, "-m", "gridledger.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout, env=with_secret())


def only_run_dir(runs: Path, study: str) -> Path:
    """The single run directory a test produced."""
    dirs = sorted((runs / study).iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def run_with(study: Path, runs: Path, **market: object) -> tuple[Path, xr.Dataset]:
    """Run `study` with the given ``market`` fields changed; return its run directory and loaded results."""
    return run_variants(study, {runs: market})[runs]


def run_variants(study: Path, variants: dict[Path, dict]) -> dict[Path, tuple[Path, xr.Dataset]]:
    """Run `study` once per runs directory with its ``market`` changes, all at once (each on its own broker port).

    A run is mostly one federate waiting on another, so two at a time
    share two cores well.
    """
    config = yaml.safe_load(study.read_text())
    procs = {}
    for runs, market in variants.items():
        copy = runs / "study.yaml"
        copy.write_text(yaml.safe_dump({**config, "market": {**config["market"], **market}}))
        procs[runs] = subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(copy), "--runs", str(runs)],
                                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       env=with_secret())
    out = {}
    for runs, proc in procs.items():
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output
        run_dir = only_run_dir(runs, config["name"])
        with xr.open_dataset(run_dir / "results.nc") as ds:
            out[runs] = run_dir, ds.load()
    return out


def events(run_dir: Path, name: str) -> list[dict]:
    """Decoded events named `name` from the chain export."""
    rows = [json.loads(line) for line in (run_dir / "chain" / "events.jsonl").read_text().splitlines()]
    return [row for row in rows if row["event"] == name]


def start_run(study: Path, runs: Path, *options: str) -> subprocess.Popen:
    """`gridledger run` (with `options`) in a process group of its own, as a shell starts a foreground job."""
    return subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(study), "--runs", str(runs), *options],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            start_new_session=True)


def wait_for_progress(runs: Path, study: str, federate: str, time_s: float, deadline_s: float = 120) -> dict:
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
