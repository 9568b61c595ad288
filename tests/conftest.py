"""Fixtures shared across test modules."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest
import xarray as xr

from tests.e2e_helpers import SHORT_STUDY, gridledger, only_run_dir


@dataclass(frozen=True)
class ShortRun:
    """One real run of studies/baran-wu-short.yaml through `gridledger run`."""

    run_dir: Path
    ds: xr.Dataset
    stdout: str


@pytest.fixture(scope="session")
def short_run(tmp_path_factory) -> ShortRun:
    """The short study run once per test session, for tests that only read its outputs."""
    runs = tmp_path_factory.mktemp("short-run")
    proc = gridledger("run", str(SHORT_STUDY), "--runs", str(runs))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(runs, "baran-wu-short")
    with xr.open_dataset(run_dir / "results.nc") as ds:
        return ShortRun(run_dir, ds.load(), proc.stdout.replace("\n", ""))
