"""Golden regression: reference studies rerun and compared with their golden results.

A study ``studies/<name>.yaml`` has golden results when
``studies/golden/<name>/`` holds its ``kpis.json`` and ``series.nc`` (the
time series in `SERIES`, compressed). `compare_kpis` and `compare_series`
check a new run against them within `tolerance_of` and return one
`Finding` per value; a value fails when it moves beyond its tolerance, or
disappears. `write_golden` replaces golden results deliberately
(``gridledger regress --update``).

Golden runs use the test-only run secret in ``studies/golden/run-secret``
(`golden_secret`): committed, hence public, it serves reproducibility
only; never take it for a run whose keys or sealed bids must stay secret.

Tolerances: runs are deterministic for a seed and a run secret, so counts, times and
strings must match exactly and floats within 1e-6 relative and absolute
(summation order, BLAS); a float within `NOISE` of golden is unchanged, not
"moved", so an identical rerun reports every value unchanged. Gas is a cost
that contract work changes on purpose: it may fall freely, but rising more
than 2 % is a regression.

Line loading means something only on lines with a thermal rating
(`gridledger.kpis.rated_lines`): the loading series covers the rated lines,
and a feeder without any has none; its loading KPIs and series are shown as
`NOT_RATED`.
"""

from __future__ import annotations

import json
import math
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from gridledger.kpis import NOT_RATED, is_not_rated, rated_lines
from gridledger.results import KPIS_FILE, RESULTS_FILE
from gridledger.run_secret import read_secret_file
from gridledger.study import Study, load_study

GOLDEN_DIR = "golden"
SERIES_FILE = "series.nc"
SECRET_FILE = "run-secret"


class GoldenError(ValueError):
    """Golden results that are missing or unreadable; the message names the directory."""


@dataclass(frozen=True)
class Tolerance:
    """How far a value may move from golden: ``|current - golden| <= atol + rtol * |golden|``.

    With `lower_is_better`, moving down by any amount is an improvement and
    only moving up beyond the tolerance fails. `label` says it for people.
    """

    rtol: float
    atol: float
    label: str
    lower_is_better: bool = False

    def __str__(self) -> str:
        return self.label


EXACT = Tolerance(0.0, 0.0, "exact")
FLOAT = Tolerance(rtol=1e-6, atol=1e-6, label="±1e-6 abs+rel")
GAS = Tolerance(rtol=0.02, atol=0.0, label="rise ≤ 2 %", lower_is_better=True)
NOISE = Tolerance(rtol=1e-9, atol=1e-9, label="floating-point noise (1e-9 abs+rel)")
"""Differences this small come from the order of floating-point operations, not from a change: unchanged.

Relative 1e-9 is about 1e7 double-precision epsilons (2.2e-16), more than
summing a year of 5-min steps (1e5 terms) in another order can change.
Absolute 1e-9 in the value's unit (MW, pu, %, token/kWh) covers values
near zero, where relative noise means nothing; it is a tenth of the
power-mismatch tolerance to which Newton-Raphson solves the power flow
(pandapower ``runpp``: ``tolerance_mva=1e-8``), so a solver that converges
elsewhere within its tolerance reports "moved", not "unchanged". A KPI
whose last rounded digit (1e-6) flips is "moved" within `FLOAT`.
"""


def tolerance_of(name: str, golden) -> Tolerance:
    """The tolerance of a KPI or series: gas as `GAS`, other floats as `FLOAT`, everything else exact."""
    if name.startswith("gas_used"):
        return GAS
    return FLOAT if isinstance(golden, float) else EXACT


SERIES: dict[str, tuple[Callable[[xr.Dataset], xr.DataArray], str]] = {
    "substation_p_mw": (lambda ds: ds.substation_p_mw, "MW"),
    "pl_mw": (lambda ds: ds.pl_mw, "MW"),
    "vm_min_pu": (lambda ds: ds.vm_pu.min("bus"), "pu"),
    "vm_max_pu": (lambda ds: ds.vm_pu.max("bus"), "pu"),
    "loading_max_percent": (lambda ds: ds.loading_percent.max("line"), "%"),
    "clearing_price_per_kwh": (lambda ds: ds.clearing_price_per_kwh, "token/kWh"),
    "cleared_volume_wh": (lambda ds: ds.cleared_volume_wh.astype(float), "Wh"),
    "gas_used": (lambda ds: ds.gas_used.astype(float), "gas"),
}
"""Time series kept in golden ``series.nc``: name -> (selection from results.nc, unit)."""
RATED_SERIES = ("loading_max_percent",)
"""Series of line loading: over the lines with a thermal rating, and left out when no line has one."""
RATED_LINES_ATTR = "rated_lines"
"""Attribute of ``series.nc``: how many lines have a thermal rating (0: `RATED_SERIES` are not rated)."""


def select_series(ds: xr.Dataset, rated: xr.DataArray) -> xr.Dataset:
    """The golden time series of a results dataset whose lines with a thermal rating are `rated` (line)."""
    rated_only = ds.assign(loading_percent=ds.loading_percent.where(rated))
    names = [name for name in SERIES if bool(rated.any()) or name not in RATED_SERIES]
    return xr.Dataset({name: SERIES[name][0](rated_only).assign_attrs(units=SERIES[name][1]) for name in names},
                      attrs={"study": ds.attrs["study"], "seed": ds.attrs["seed"],
                             RATED_LINES_ATTR: int(rated.sum())})


def run_series(run_dir: Path) -> xr.Dataset:
    """The golden time series of a finished run, its line ratings as the grid recorded them."""
    with xr.open_dataset(Path(run_dir) / RESULTS_FILE, engine="h5netcdf") as ds:
        results = ds.load()
    return select_series(results, rated_lines(results))


@dataclass(frozen=True)
class Finding:
    """One compared value: status ``ok``, ``moved`` (within tolerance), ``improved``, ``regressed``,
    ``missing`` (in golden, not in the run) or ``new`` (in the run, not in golden)."""

    name: str
    golden: object
    current: object
    tolerance: Tolerance
    status: str

    @property
    def fails(self) -> bool:
        """Whether this finding is a regression."""
        return self.status in ("regressed", "missing")


def as_dict(finding: Finding) -> dict:
    """A finding for JSON: name, golden and current value, tolerance in words, status."""
    return {"name": finding.name, "golden": finding.golden, "current": finding.current,
            "tolerance": str(finding.tolerance), "status": finding.status}


def judge(golden, current, tolerance: Tolerance) -> str:
    """Status of one scalar value against its golden value."""
    if golden == current:
        return "ok"
    numbers = all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in (golden, current))
    if not numbers:
        return "regressed"
    if math.isclose(current, golden, rel_tol=NOISE.rtol, abs_tol=NOISE.atol):
        return "ok"
    if tolerance.lower_is_better and current < golden:
        return "improved"
    close = math.isclose(current, golden, rel_tol=tolerance.rtol, abs_tol=tolerance.atol)
    return "moved" if close else "regressed"


def _flat(kpis: dict) -> dict[str, object]:
    flat = {}
    for key, value in kpis.items():
        if isinstance(value, dict):
            flat.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            flat[key] = value
    return flat


def _rating_shown(kpis: dict) -> dict:
    """`kpis` with the loading KPIs of a feeder without line ratings (null) as `NOT_RATED`."""
    return {k: NOT_RATED if is_not_rated(k, v) else v for k, v in kpis.items()}


def compare_kpis(golden: dict, current: dict) -> list[Finding]:
    """One finding per KPI (per-prosumer KPIs one per prosumer) of golden and current kpis.json."""
    golden, current = _rating_shown(_flat(golden)), _rating_shown(_flat(current))
    findings = []
    for name in sorted(golden.keys() | current.keys()):
        tolerance = tolerance_of(name, golden.get(name, current.get(name)))
        if name not in current:
            status = "missing"
        elif name not in golden:
            status = "new"
        else:
            status = judge(golden[name], current[name], tolerance)
        findings.append(Finding(name, golden.get(name), current.get(name), tolerance, status))
    return findings


def _not_rated(series: xr.Dataset) -> bool:
    return series.attrs.get(RATED_LINES_ATTR) == 0


def compare_series(golden: xr.Dataset, current: xr.Dataset) -> list[Finding]:
    """One finding per golden series; a series that moved reports its largest deviation (golden, current there).

    A loading series (`RATED_SERIES`) of a feeder without line ratings is
    `NOT_RATED`: unchanged when neither run's lines are rated, ``new`` when
    the current run's are, ``missing`` when only golden's were.
    """
    findings = []
    if _not_rated(golden):
        findings += [Finding(f"series {name}", NOT_RATED, "present" if name in current else NOT_RATED, EXACT,
                             "new" if name in current else "ok") for name in RATED_SERIES]
    for name in golden.data_vars:
        label, tolerance = f"series {name}", tolerance_of(name, 0.0)
        if name not in current:
            shown = NOT_RATED if name in RATED_SERIES and _not_rated(current) else None
            findings.append(Finding(label, "present", shown, tolerance, "missing"))
            continue
        g, c = golden[name].values, current[name].values
        if g.shape != c.shape:
            findings.append(Finding(label, f"shape {g.shape}", f"shape {c.shape}", tolerance, "regressed"))
            continue
        if np.allclose(c, g, rtol=NOISE.rtol, atol=NOISE.atol, equal_nan=True):
            findings.append(Finding(label, None, None, tolerance, "ok"))
            continue
        both_nan = np.isnan(g) & np.isnan(c)
        diff = np.where(both_nan, 0.0, c - g)
        allowed = tolerance.atol + tolerance.rtol * np.abs(g)
        within = (diff <= allowed) if tolerance.lower_is_better else (np.abs(diff) <= allowed)
        if not within.all():
            status = "regressed"
        elif tolerance.lower_is_better and (diff <= 0).all():
            status = "improved"
        else:
            status = "moved"
        worst = int(np.argmax(np.where(np.isnan(diff), np.inf, np.abs(diff))))
        findings.append(Finding(label, float(g.flat[worst]), float(c.flat[worst]), tolerance, status))
    return findings


def golden_dir(study_path: Path, study: Study) -> Path:
    """Where a study file's golden results live: ``<its folder>/golden/<study name>/``."""
    return Path(study_path).parent / GOLDEN_DIR / study.name


def golden_secret(study_path: Path) -> bytes:
    """The test-only run secret of golden runs: ``<study folder>/golden/run-secret`` (64 hex digits)."""
    return read_secret_file(Path(study_path).parent / GOLDEN_DIR / SECRET_FILE)


def studies_with_golden(studies: Path) -> list[Path]:
    """Study files in a folder that have golden results, by file name."""
    return [path for path in sorted(Path(studies).glob("*.yaml"))
            if (golden_dir(path, load_study(path)) / KPIS_FILE).exists()]


def check(run_dir: Path, golden: Path) -> list[Finding]:
    """Compare a finished run with golden results."""
    if not (golden / KPIS_FILE).exists() or not (golden / SERIES_FILE).exists():
        raise GoldenError(f"{golden}: no golden results ({KPIS_FILE} and {SERIES_FILE}); "
                          "create them with `gridledger regress --update STUDY`")
    current_kpis = json.loads((Path(run_dir) / KPIS_FILE).read_text())
    findings = compare_kpis(json.loads((golden / KPIS_FILE).read_text()), current_kpis)
    with xr.open_dataset(golden / SERIES_FILE, engine="h5netcdf") as g:
        findings += compare_series(g.load(), run_series(run_dir))
    return findings


def write_golden(run_dir: Path, golden: Path) -> None:
    """Make a finished run's KPIs and selected series the golden results."""
    golden.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(Path(run_dir) / KPIS_FILE, golden / KPIS_FILE)
    series = run_series(run_dir)
    encoding = {name: {"zlib": True, "complevel": 9} for name in series.data_vars}
    series.to_netcdf(golden / SERIES_FILE, engine="h5netcdf", encoding=encoding)
