"""results.nc is merged from the parts variable by variable: a year of results is never held in memory at once."""

from __future__ import annotations

import tracemalloc

import numpy as np
import xarray as xr

from gridledger.results import PARTS_DIR, RESULTS_FILE, collect
from gridledger.study import load_study
from tests.e2e_helpers import SHORT_STUDY

STEPS, BUSES, VARIABLES = 4096, 128, 8
VARIABLE_BYTES = STEPS * BUSES * 8


def _write_part(run_dir, name: str, complete: int) -> xr.Dataset:
    """A part of `VARIABLES` float variables over (time, bus), each `VARIABLE_BYTES` large."""
    rng = np.random.default_rng(7)
    time = np.datetime64("2024-06-21T10:00:00", "s") + np.timedelta64(300, "s") * np.arange(STEPS)
    part = xr.Dataset({f"{name}_{k}_pu": (("time", "bus"), rng.random((STEPS, BUSES)), {"units": "1"})
                       for k in range(VARIABLES)},
                      coords={"time": time, "bus": np.arange(BUSES)}, attrs={"federate": name, "complete": complete})
    (run_dir / PARTS_DIR).mkdir(exist_ok=True)
    part.to_netcdf(run_dir / PARTS_DIR / f"{name}.nc", engine="h5netcdf")
    return part


def test_the_merge_holds_about_one_variable_at_a_time_and_loses_nothing(tmp_path):
    grid = _write_part(tmp_path, "grid", complete=0)
    tracemalloc.start()
    try:
        kpis = collect(tmp_path, load_study(SHORT_STUDY), ("grid",))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert kpis == {"complete": False}
    assert peak < 3 * VARIABLE_BYTES < VARIABLES * VARIABLE_BYTES / 2, peak
    with xr.open_dataset(tmp_path / RESULTS_FILE, engine="h5netcdf") as results:
        assert results.attrs["complete"] == 0 and results.attrs["parts"] == "grid"
        for name in grid.data_vars:
            np.testing.assert_array_equal(results[name].values, grid[name].values)
