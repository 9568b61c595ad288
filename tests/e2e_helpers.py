"""Running real studies from tests: the `gridledger` CLI in a subprocess, results read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import xarray as xr
import yaml

ROOT = Path(__file__).resolve().parents[1]
SHORT_STUDY = ROOT / "studies" / "baran-wu-short.yaml"


def gridledger(*args: str, cwd: Path = ROOT, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the gridledger CLI of this interpreter's environment."""
    return subprocess.run([sys.executable, "-m", "gridledger.cli", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=timeout)


def only_run_dir(runs: Path, study: str) -> Path:
    """The single run directory a test produced."""
    dirs = sorted((runs / study).iterdir())
    assert len(dirs) == 1, dirs
    return dirs[0]


def run_with(study: Path, runs: Path, **market: object) -> tuple[Path, xr.Dataset]:
    """Run `study` with the given ``market`` fields changed; return its run directory and loaded results."""
    config = yaml.safe_load(study.read_text())
    config["market"].update(market)
    copy = runs / "study.yaml"
    copy.write_text(yaml.safe_dump(config))
    proc = gridledger("run", str(copy), "--runs", str(runs))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(runs, config["name"])
    with xr.open_dataset(run_dir / "results.nc") as ds:
        return run_dir, ds.load()


def events(run_dir: Path, name: str) -> list[dict]:
    """Decoded events named `name` from the chain export."""
    rows = [json.loads(line) for line in (run_dir / "chain" / "events.jsonl").read_text().splitlines()]
    return [row for row in rows if row["event"] == name]
