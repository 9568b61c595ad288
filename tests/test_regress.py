"""`gridledger regress`: reference studies against their golden results in studies/golden/."""

from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import xarray as xr

from gridledger.cli import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK, main
from gridledger.kpis import NOT_RATED
from gridledger.regress import (
    EXACT,
    FLOAT,
    GAS,
    RATED_LINES_ATTR,
    SECRET_FILE,
    SERIES,
    SERIES_FILE,
    check,
    compare_kpis,
    compare_series,
    judge,
    studies_with_golden,
    tolerance_of,
    write_golden,
)
from tests.e2e_helpers import ROOT, SHORT_STUDY, gridledger

GOLDEN = ROOT / "studies" / "golden"


def _copy_short_study_with_golden(tmp_path):
    studies = tmp_path / "studies"
    shutil.copytree(GOLDEN / "baran-wu-short", studies / "golden" / "baran-wu-short")
    shutil.copyfile(SHORT_STUDY, studies / SHORT_STUDY.name)
    shutil.copyfile(GOLDEN / SECRET_FILE, studies / "golden" / SECRET_FILE)
    return studies


@pytest.mark.e2e
def test_short_study_matches_its_golden_results(tmp_path):
    proc = gridledger("regress", str(SHORT_STUDY), "--runs", str(tmp_path))
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    assert "no regression" in proc.stdout


@pytest.mark.e2e
@pytest.mark.slow
def test_perturbed_golden_fails_and_update_rewrites_it(tmp_path):
    studies = _copy_short_study_with_golden(tmp_path)
    golden = studies / "golden" / "baran-wu-short"
    kpis = json.loads((golden / "kpis.json").read_text())
    kpis["energy_traded_kwh"] *= 1.001
    (golden / "kpis.json").write_text(json.dumps(kpis))
    with xr.open_dataset(golden / SERIES_FILE) as series:
        perturbed = series.load()
    perturbed["vm_min_pu"][5] -= 1e-4
    perturbed.to_netcdf(golden / SERIES_FILE, engine="h5netcdf")

    proc = gridledger("regress", "--studies-dir", str(studies), "--runs", str(tmp_path / "runs"))
    assert proc.returncode == EXIT_FAILED, proc.stdout + proc.stderr
    out = proc.stdout.replace("\n", " ")
    assert "2 regressed" in out and "regression" in out
    assert "energy_traded_kwh" in out and "vm_min_pu" in out

    proc = gridledger("regress", "--update", str(studies / SHORT_STUDY.name), "--runs", str(tmp_path / "runs"))
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr
    (latest,) = sorted((tmp_path / "runs" / "baran-wu-short").iterdir())[-1:]
    assert (golden / "kpis.json").read_bytes() == (latest / "kpis.json").read_bytes()


@pytest.mark.slow
@pytest.mark.e2e
def test_every_study_with_golden_results_matches(tmp_path):
    """All reference studies, the three-day one included (make test-all)."""
    assert {p.name for p in studies_with_golden(ROOT / "studies")} >= {"baran-wu-short.yaml", "baran-wu-3day.yaml"}
    proc = gridledger("regress", "--runs", str(tmp_path), timeout=3600)
    assert proc.returncode == EXIT_OK, proc.stdout + proc.stderr


def test_study_without_golden_results_exits_2_before_running(tmp_path, capsys):
    study = tmp_path / "lonely.yaml"
    study.write_text("name: lonely\n")
    assert main(["regress", str(study), "--runs", str(tmp_path / "runs")]) == EXIT_BAD_INPUT
    assert "no golden results in" in capsys.readouterr().err
    assert not (tmp_path / "runs").exists()


def test_folder_without_any_golden_results_exits_2(tmp_path, capsys):
    assert main(["regress", "--studies-dir", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "no study has golden results" in capsys.readouterr().err


def test_committed_golden_results_cover_the_reference_studies():
    names = {p.name for p in studies_with_golden(ROOT / "studies")}
    assert {"baran-wu-short.yaml", "baran-wu-3day.yaml"} <= names
    for name in ("baran-wu-short", "baran-wu-3day"):
        kpis = json.loads((GOLDEN / name / "kpis.json").read_text())
        assert kpis["study"] == name and "wall_time_s" not in kpis


def test_floats_move_within_1e_6_and_counts_must_be_exact():
    assert tolerance_of("losses_mwh", 0.1) == FLOAT and tolerance_of("transactions", 488) == EXACT
    assert judge(0.1, 0.1 + 5e-7, FLOAT) == "moved"
    assert judge(0.1, 0.1 + 5e-6, FLOAT) == "regressed"
    assert judge(488, 489, EXACT) == "regressed"
    assert judge("2024-06-21T10:00:00", "2024-06-21T10:05:00", EXACT) == "regressed"
    assert judge(True, False, EXACT) == "regressed"


def test_gas_may_fall_freely_but_not_rise_more_than_2_percent():
    assert tolerance_of("gas_used_per_interval_max", 5e6) == GAS
    assert judge(1_000_000, 600_000, GAS) == "improved"
    assert judge(1_000_000, 1_019_000, GAS) == "moved"
    assert judge(1_000_000, 1_021_000, GAS) == "regressed"


def test_kpis_that_disappear_fail_and_new_ones_do_not():
    findings = {f.name: f for f in compare_kpis({"a": 1, "gone": 2, "p": {"x": 1.0}}, {"a": 1, "new": 3, "p": {"x": 1.5}})}
    assert findings["gone"].status == "missing" and findings["gone"].fails
    assert findings["new"].status == "new" and not findings["new"].fails
    assert findings["p.x"].status == "regressed" and findings["a"].status == "ok"


def test_series_report_their_largest_deviation():
    golden = xr.Dataset({"pl_mw": ("time", np.array([1.0, 2.0, 3.0])), "gas_used": ("interval", np.array([10.0, 10.0]))})
    current = golden.copy(deep=True)
    current["pl_mw"][1] += 0.5
    current["gas_used"][:] = [9.0, 10.0]
    findings = {f.name: f for f in compare_series(golden, current)}
    assert findings["series pl_mw"].status == "regressed"
    assert (findings["series pl_mw"].golden, findings["series pl_mw"].current) == (2.0, 2.5)
    assert findings["series gas_used"].status == "improved"
    shorter = current.isel(time=slice(0, 2))
    assert {f.name: f.status for f in compare_series(golden, shorter)}["series pl_mw"] == "regressed"
    nan = golden.copy(deep=True)
    nan["pl_mw"][0] = math.nan
    assert {f.name: f.status for f in compare_series(golden, nan)}["series pl_mw"] == "regressed"
    assert {f.name: f.status for f in compare_series(nan, nan)}["series pl_mw"] == "ok"


def test_noise_near_zero_is_unchanged_and_a_change_beyond_it_moves():
    """1e-10 MW on a series near 0 is summation noise; 1e-8 MW (the power flow's tolerance) is a change."""
    golden = xr.Dataset({"substation_p_mw": ("time", np.array([0.0, 1e-12, -0.3]))})
    noisy, changed = golden.copy(deep=True), golden.copy(deep=True)
    noisy["substation_p_mw"] += 1e-10
    changed["substation_p_mw"][0] += 1e-8
    assert [f.status for f in compare_series(golden, noisy)] == ["ok"]
    assert [f.status for f in compare_series(golden, changed)] == ["moved"]


def test_loading_without_line_ratings_is_not_rated_in_kpis_and_series():
    findings = {f.name: f for f in compare_kpis({"max_loading_percent": None}, {"max_loading_percent": None})}
    assert (findings["max_loading_percent"].golden, findings["max_loading_percent"].status) == (NOT_RATED, "ok")
    assert compare_kpis({"max_loading_percent": 5.4e-05}, {"max_loading_percent": None})[0].status == "regressed"
    unrated = xr.Dataset({"pl_mw": ("time", np.array([0.1, 0.2]))}, attrs={RATED_LINES_ATTR: 0})
    rated = unrated.assign(loading_max_percent=("time", np.array([40.0, 60.0]))).assign_attrs({RATED_LINES_ATTR: 2})
    both = {f.name: (f.golden, f.current, f.status) for f in compare_series(unrated, unrated)}
    assert both == {"series pl_mw": (None, None, "ok"), "series loading_max_percent": (NOT_RATED, NOT_RATED, "ok")}
    assert {f.name: f.status for f in compare_series(unrated, rated)}["series loading_max_percent"] == "new"
    lost = {f.name: f for f in compare_series(rated, unrated)}["series loading_max_percent"]
    assert (lost.current, lost.status, lost.fails) == (NOT_RATED, "missing", True)


def _run_copy(short_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(short_run.run_dir, copy, ignore=shutil.ignore_patterns("plots", "report.html", "chain", "logs"))
    golden = tmp_path / "golden"
    write_golden(short_run.run_dir, golden)
    return copy, golden


@pytest.mark.e2e
def test_an_identical_copy_of_a_run_is_unchanged_in_every_kpi_and_series(short_run, tmp_path):
    copy, golden = _run_copy(short_run, tmp_path)
    findings = check(copy, golden)
    assert [(f.name, f.golden, f.current) for f in findings if f.status != "ok"] == []
    assert {f.name for f in findings if f.name.startswith("series ")} == {f"series {name}" for name in SERIES}
    assert {f.name: f.current for f in findings}["series loading_max_percent"] == NOT_RATED
    assert len(findings) > 100


@pytest.mark.e2e
def test_a_real_change_in_a_kpi_and_a_series_is_reported(short_run, tmp_path):
    """1 kWh more traded and 10 kW more import in one step regress; a 5e-7 relative change in losses moves."""
    copy, golden = _run_copy(short_run, tmp_path)
    kpis = json.loads((copy / "kpis.json").read_text())
    kpis["energy_traded_kwh"] += 1.0
    kpis["losses_mwh"] *= 1 + 5e-7
    (copy / "kpis.json").write_text(json.dumps(kpis))
    with xr.open_dataset(copy / "results.nc") as ds:
        edited = ds.load()
    edited["substation_p_mw"][3] += 0.01
    edited.to_netcdf(copy / "results.nc", engine="h5netcdf")
    status = {f.name: f.status for f in check(copy, golden) if f.status != "ok"}
    assert status == {"energy_traded_kwh": "regressed", "losses_mwh": "moved", "series substation_p_mw": "regressed"}
