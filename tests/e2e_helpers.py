"""Running real studies from tests: the `gridledger` CLI in a subprocess, results read back."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def events(run_dir: Path, name: str) -> list[dict]:
    """Decoded events named `name` from the chain export."""
    rows = [json.loads(line) for line in (run_dir / "chain" / "events.jsonl").read_text().splitlines()]
    return [row for row in rows if row["event"] == name]
