"""Everyday CLI: validate checks what run checks, durations with units, plain output off a terminal, JSON,
compare labels, regress without noise, and report for a run directory that has none."""

from __future__ import annotations

import json
import shutil
from importlib.metadata import version
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from rich.table import Table

from gridledger import cli, regress
from gridledger.cli import EXAMPLES, EXIT_BAD_INPUT, EXIT_OK, main, make_console
from gridledger.compare import Run, difference, horizon_warning, run_labels, shown
from gridledger.durations import parse_duration_s
from gridledger.execute import RUN_FILE, Executed, RunRecord
from gridledger.launcher import Outcome, Prepared
from gridledger.regress import FLOAT, compare_series, judge
from gridledger.study import STUDY_FILE, StudyError, dump_study, load_study, parse_study
from gridledger.sweep import SWEEP_FILE, scenario_of
from tests.e2e_helpers import SHORT_STUDY, TEST_SECRET_FILE


def _study_file(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "study.yaml"
    path.write_text(body)
    return path


def _error_line(err: str) -> str:
    return next(line for line in err.splitlines() if line.startswith("error: "))


# --- validate runs the checks run makes before it starts anything -----------------------------------------------

FALSE_ASSURANCE = [
    ("name: x\nprosumers: {count: 2, buses: [1, 999]}\n", "prosumers: listed buses [999] carry no in-service load"),
    ("name: x\ngrid: {feeder: cigre-lv}\nprosumers: {count: 40}\n",
     "prosumers: count=40 prosumers but the feeder has only 15 load buses"),
    ("name: x\ngrid: {oltc: {}}\n", "grid.oltc: the feeder has no transformer at its external grid"),
]


@pytest.mark.parametrize("body,expected", FALSE_ASSURANCE, ids=["nonexistent-bus", "count-above-loads", "oltc"])
def test_validate_fails_with_the_message_run_gives(tmp_path, capsys, body, expected):
    path = _study_file(tmp_path, body)
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    validated = _error_line(capsys.readouterr().err)
    assert expected in validated and str(path) in validated
    assert main(["run", str(path), "--runs", str(tmp_path / "runs")]) == EXIT_BAD_INPUT
    assert _error_line(capsys.readouterr().err) == validated
    assert not (tmp_path / "runs").exists()


def test_validate_summarises_a_good_study_in_one_line(capsys):
    assert main(["validate", str(SHORT_STUDY)]) == EXIT_OK
    out = capsys.readouterr().out.strip()
    study = load_study(SHORT_STUDY)
    assert out == (f"{SHORT_STUDY}: valid study 'baran-wu-short': feeder case33bw, {study.prosumers.count} prosumers, "
                   f"{study.n_intervals} market intervals of 15 min (2 h), {study.market.mechanism}")


def test_validate_notes_parts_that_run_would_refuse_here(tmp_path, capsys):
    path = _study_file(tmp_path, "name: x\nhelics: {hosts: {der: 10.9.9.9}}\n")
    assert main(["validate", str(path)]) == EXIT_OK
    out = capsys.readouterr().out
    assert "note: `gridledger run` would refuse this study on this machine" in out
    assert "helics.hosts.der = '10.9.9.9'" in out and "valid study 'x'" in out


# --- time zones, cross-field errors and unit hints -----------------------------------------------------------------

@pytest.mark.parametrize("start", ["2024-06-21T00:00:00+02:00", "2024-06-21T00:00:00Z", "'2024-06-21T10:00:00-05:00'"])
def test_a_start_with_a_zone_is_refused_naming_the_field(tmp_path, capsys, start):
    path = _study_file(tmp_path, f"name: x\nstart: {start}\n")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "start = '2024-06-21T" in err
    assert "give the feeder's local time without a UTC offset or time zone" in err


def test_a_start_without_a_zone_is_the_feeders_local_time_and_the_chains_clock():
    study = parse_study({"name": "x", "start": "2024-06-21T10:00:00"})
    assert study.start.tzinfo is None and study.start.hour == 10
    assert study.start_timestamp == 1718964000


def test_a_cross_field_error_names_the_fields_not_the_whole_study(tmp_path, capsys):
    path = _study_file(tmp_path, "name: x\nprosumers: {count: 4}\nmarket_interval_s: 700\n")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.splitlines()[1] == "  market_interval_s (700) must be a multiple of power_flow_step_s (300)"
    assert "{" not in err and "top level" not in err and "Value error" not in err


def test_a_nested_cross_field_error_names_its_group():
    with pytest.raises(StudyError) as err:
        parse_study({"name": "x", "grid": {"limits": {"vm_min_pu": 1.0, "vm_max_pu": 0.99}}})
    assert str(err.value).splitlines()[1] == "  grid.limits: vm_min_pu (1.0) must be below vm_max_pu (0.99)"


@pytest.mark.parametrize("body,hint", [
    ("grid: {limits: {vm_max_pu: 105}}",
     "grid.limits.vm_max_pu = 105: Input should be less than 2; looks like percent: give per unit, e.g. 1.05"),
    ("grid: {oltc: {vm_set_pu: 100}}", "looks like percent: give per unit, e.g. 1"),
    ("market_interval_s: 15", "market_interval_s = 15 s looks like minutes: write '15min', or seconds"),
    ("duration_s: 24", "duration_s = 24 s looks like hours or minutes: write '24h' or '24min', or seconds"),
])
def test_a_value_in_the_wrong_unit_gets_a_hint(body, hint):
    with pytest.raises(StudyError, match="invalid study") as err:
        parse_study(yaml.safe_load(f"name: x\n{body}\n"))
    assert hint in str(err.value)


def test_no_hint_for_a_value_in_the_right_unit():
    with pytest.raises(StudyError) as err:
        parse_study({"name": "x", "market_interval_s": 700})
    assert "looks like" not in str(err.value)


# --- durations with units ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("text,seconds", [("15min", 900), ("1d", 86_400), ("2h", 7200), ("30s", 30), ("900", 900),
                                          ("1h30min", 5400), ("1.5h", 5400), (" 2 h ", 7200)])
def test_a_duration_reads_seconds_from_text_with_a_unit(text, seconds):
    assert parse_duration_s(text) == seconds


def test_numbers_pass_to_the_fields_own_checks():
    assert parse_duration_s(900) == 900 and parse_duration_s(2.5) == 2.5


def test_durations_with_units_make_the_same_study_as_seconds():
    written = parse_study(yaml.safe_load("""
        name: x
        duration_s: 1d
        power_flow_step_s: 5min
        market_interval_s: 15min
        market: {gate_closure_s: 1min, round_s: 30s}
        helics: {stall_timeout_s: 2min}
        audit: {dispute_window_s: 30min}
        events: {import_caps: [{start_s: 6h, end_s: 8h, cap_mw: 1}]}
        """))
    seconds = parse_study({"name": "x", "duration_s": 86_400, "power_flow_step_s": 300, "market_interval_s": 900,
                           "market": {"gate_closure_s": 60, "round_s": 30}, "helics": {"stall_timeout_s": 120},
                           "audit": {"dispute_window_s": 1800},
                           "events": {"import_caps": [{"start_s": 21_600, "end_s": 28_800, "cap_mw": 1}]}})
    assert written == seconds
    assert "duration_s: 86400" in dump_study(written)


@pytest.mark.parametrize("value,expected", [
    ("15 minutes", "duration_s = '15 minutes': Value error, not a duration: give whole seconds (900) or numbers with "
                   "a unit d, h, min or s ('15min', '2h', '1d', '1h30min')"),
    ("0.5s", "duration_s = '0.5s': Value error, '0.5s' is 0.5 s, not a whole number of seconds"),
    ("true", "duration_s = True: Value error, a duration is required, not true/false"),
    ("-1h", "duration_s = '-1h': Value error, not a duration"),
])
def test_a_bad_duration_exits_2_naming_the_field_and_what_is_allowed(tmp_path, capsys, value, expected):
    path = _study_file(tmp_path, f"name: x\nduration_s: {value}\n")
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err


# --- version, help, examples ---------------------------------------------------------------------------------------

def test_version_prints_the_version_and_exits_0(capsys):
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.strip() == f"gridledger {version('gridledger')}"


def test_no_arguments_prints_help_and_exits_0(capsys):
    assert main([]) == EXIT_OK
    out = capsys.readouterr().out
    assert out.startswith("usage: gridledger") and "validate" in out and "gridledger COMMAND --help" in out


@pytest.mark.parametrize("command", sorted(EXAMPLES))
def test_each_command_shows_its_own_examples(capsys, command):
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    examples = out.split("examples:")[1]
    assert all(line in examples for line in EXAMPLES[command])
    others = {f"gridledger {name} " for name in EXAMPLES if name != command} - {
        f"gridledger {word} " for line in EXAMPLES[command] for word in line.split()}
    assert not any(other in examples for other in others), examples


# --- plain output off a terminal -----------------------------------------------------------------------------------

def test_tables_never_wrap_when_stdout_is_not_a_terminal(capsys):
    table = Table()
    for column in ("KPI", "a", "b"):
        table.add_column(column)
    table.add_row("energy_traded_kwh_" + "x" * 80, "46,531.25", "1,329,000,000.5")
    make_console().print(table)
    rows = [line for line in capsys.readouterr().out.splitlines() if "energy_traded_kwh_" in line]
    assert len(rows) == 1 and "46,531.25" in rows[0] and "1,329,000,000.5" in rows[0]


# --- compare: labels, horizons -------------------------------------------------------------------------------------

def _run(tmp_path: Path, where: str, **fields) -> Run:
    run_dir = tmp_path / where
    run_dir.mkdir(parents=True)
    return Run("", run_dir, parse_study({"name": "micro", **fields}), {}, xr.Dataset())


def test_runs_of_a_sweep_are_labelled_by_the_swept_values_that_differ(tmp_path):
    sweep = tmp_path / "micro-sweep" / "20240621T100000"
    runs = [_run(sweep, f"s00{i}/micro/2024062{i}T10000{i}", market={"grid_fee_per_kwh": fee},
                 prosumers={"pv": {"share": 0.5}}, helics={"port": 20000 + i})
            for i, fee in enumerate((0.01, 0.02))]
    (sweep / SWEEP_FILE).write_text(json.dumps({"scenarios": [
        {"id": f"s00{i}", "values": {"market.grid_fee_per_kwh": fee, "prosumers.pv.share": 0.5},
         "run_dir": str(run.run_dir)} for i, (fee, run) in enumerate(zip((0.01, 0.02), runs))]}))
    swept = [scenario_of(run.run_dir) for run in runs]
    assert swept[1] == {"id": "s001", "values": {"market.grid_fee_per_kwh": 0.02, "prosumers.pv.share": 0.5}}
    assert run_labels(runs, swept) == ["market.grid_fee_per_kwh=0.01", "market.grid_fee_per_kwh=0.02"]
    assert run_labels(runs) == ["market.grid_fee_per_kwh=0.01", "market.grid_fee_per_kwh=0.02"], \
        "the fields that differ, helics.port aside, say the same without sweep.json"


def test_runs_are_labelled_by_study_name_then_differing_fields_then_timestamps(tmp_path):
    a, b = _run(tmp_path, "a/20240621T100000"), _run(tmp_path, "b/20240622T100000", name="micro-b")
    assert run_labels([a, b]) == ["micro", "micro-b"]
    c = _run(tmp_path, "c/20240623T100000", duration_s=7200, seed=3)
    assert run_labels([a, c]) == ["duration_s=86400, seed=0", "duration_s=7200, seed=3"]
    d = _run(tmp_path, "d/20240624T100000")
    assert run_labels([a, d]) == ["20240621T100000", "20240624T100000"]
    assert scenario_of(a.run_dir) is None


def test_runs_over_different_horizons_are_flagged():
    runs = [Run(label, Path(label), parse_study({"name": "m", "duration_s": d}), {}, xr.Dataset())
            for label, d in (("day", 86_400), ("short", 7200))]
    warning = horizon_warning(runs)
    assert warning.startswith("the runs cover different horizons (day 24 h, short 2 h): totals")
    assert horizon_warning(runs[:1] * 2) is None


# --- regress: floating-point noise is no change --------------------------------------------------------------------

def test_floating_point_noise_is_unchanged_not_moved():
    assert judge(0.3, 0.1 + 0.2, FLOAT) == "ok"
    assert judge(1.0, 1.0 + 5e-7, FLOAT) == "moved"
    golden = xr.Dataset({"pl_mw": ("time", np.array([0.1, 0.2, 0.3]))})
    noisy = golden.copy(deep=True)
    noisy["pl_mw"][:] = golden.pl_mw.values * (1 + 1e-15) - 1e-17
    assert {f.name: f.status for f in compare_series(golden, noisy)} == {"series pl_mw": "ok"}


def test_a_difference_below_the_kpi_resolution_never_shows_as_minus_zero():
    shown = difference(0.1 + 0.2, 0.3)
    assert shown.startswith("+5.55e-17") and "-0" not in shown and "+0.0%" not in shown


# --- real runs: compare --format json, regress --format json, report for a runner-style directory ----------------

def _copy_run(short_run, to: Path, **changes) -> Path:
    shutil.copytree(short_run.run_dir, to)
    if changes:
        data = yaml.safe_load((to / STUDY_FILE).read_text())
        for path, value in changes.items():
            node = data
            *parents, leaf = path.split(".")
            for part in parents:
                node = node[part]
            node[leaf] = value
        (to / STUDY_FILE).write_text(yaml.safe_dump(data, sort_keys=False))
    return to


@pytest.mark.e2e
def test_compare_json_labels_sweep_scenarios_and_warns_on_horizons(short_run, tmp_path, capsys):
    sweep = tmp_path / "baran-wu-short-sweep" / "20240621T100000"
    a = _copy_run(short_run, sweep / "s000" / "baran-wu-short" / "20240621T100000")
    b = _copy_run(short_run, sweep / "s001" / "baran-wu-short" / "20240621T100001", **{"market.grid_fee_per_kwh": 0.05})
    (sweep / SWEEP_FILE).write_text(json.dumps({"scenarios": [
        {"id": "s000", "values": {"market.grid_fee_per_kwh": 0.02}, "run_dir": str(a)},
        {"id": "s001", "values": {"market.grid_fee_per_kwh": 0.05}, "run_dir": str(b)}]}))
    out = tmp_path / "compare.html"
    assert main(["compare", str(a), str(b), "--format", "json", "--out", str(out)]) == EXIT_OK
    captured = capsys.readouterr()
    document = json.loads(captured.out)
    labels = ["market.grid_fee_per_kwh=0.02", "market.grid_fee_per_kwh=0.05"]
    assert [r["label"] for r in document["runs"]] == labels and document["reference"] == labels[0]
    traded = document["kpis"]["energy_traded_kwh"]
    assert traded["values"][labels[1]] == short_run_kpis(short_run)["energy_traded_kwh"]
    assert traded["differences"] == {labels[1]: 0.0}
    assert document["warnings"] == [] and "warning" not in captured.err
    assert labels[1] in out.read_text()

    longer = _copy_run(short_run, tmp_path / "longer" / "20240621T100002", duration_s=14_400)
    assert main(["compare", str(a), str(longer), "--out", str(out)]) == EXIT_OK
    captured = capsys.readouterr()
    assert "warning: the runs cover different horizons (duration_s=7200 2 h, duration_s=14400 4 h)" in captured.err
    row = next(line for line in captured.out.splitlines() if "energy_traded_kwh" in line)
    assert row.count(shown(short_run_kpis(short_run)["energy_traded_kwh"])) == 2, row
    assert "different horizons" in out.read_text()


def short_run_kpis(short_run) -> dict:
    return json.loads((short_run.run_dir / "kpis.json").read_text())


@pytest.mark.e2e
def test_regress_json_reports_an_identical_rerun_unchanged(short_run, tmp_path, monkeypatch, capsys):
    studies = tmp_path / "studies"
    golden = studies / "golden" / "baran-wu-short"
    golden.mkdir(parents=True)
    study_path = Path(shutil.copyfile(SHORT_STUDY, studies / SHORT_STUDY.name))
    shutil.copyfile(TEST_SECRET_FILE, studies / "golden" / regress.SECRET_FILE)
    regress.write_golden(short_run.run_dir, golden)
    with xr.open_dataset(golden / regress.SERIES_FILE) as series:
        noisy = series.load()
    noisy["substation_p_mw"] *= 1 + 1e-13
    noisy.to_netcdf(golden / regress.SERIES_FILE, engine="h5netcdf")
    study = load_study(study_path)
    monkeypatch.setattr(cli, "prepare", lambda path, runs, secret: Prepared(study, short_run.run_dir, 0, secret))
    record = RunRecord("2024-06-21T10:00:00", 1.0, 0, "finished", None, None, "gridledger")
    monkeypatch.setattr(cli, "execute", lambda prepared, on_progress: Executed(
        short_run.run_dir, Outcome(0), short_run_kpis(short_run), record, short_run.run_dir / "report.html"))
    assert main(["regress", str(study_path), "--format", "json"]) == EXIT_OK
    captured = capsys.readouterr()
    (entry,) = json.loads(captured.out)["studies"]
    assert entry["compared"] == entry["unchanged"] > 100 and entry["moved"] == entry["regressed"] == 0
    assert entry["findings"] == [] and "values compared" in captured.err and "moved -0" not in captured.err


@pytest.mark.e2e
def test_report_writes_report_and_plots_for_a_run_without_run_json(short_run, tmp_path, capsys):
    """What `gridledger runner` + `helics run` leaves: results, but no run.json, report.html or plots/."""
    run_dir = _copy_run(short_run, tmp_path / "run")
    shutil.rmtree(run_dir / "plots")
    for name in ("report.html", RUN_FILE):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == EXIT_OK
    assert f"report: {run_dir / 'report.html'}" in capsys.readouterr().out
    assert 'id="kpis"' in (run_dir / "report.html").read_text() and any((run_dir / "plots").glob("*.png"))
    assert not (run_dir / RUN_FILE).exists()


@pytest.mark.e2e
def test_report_collects_results_from_complete_parts(short_run, tmp_path, capsys):
    run_dir = _copy_run(short_run, tmp_path / "run")
    for name in ("results.nc", "kpis.json", RUN_FILE):
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == EXIT_OK
    assert (run_dir / "kpis.json").read_bytes() == (short_run.run_dir / "kpis.json").read_bytes()
    assert any((run_dir / "plots").glob("*.png")) and "note:" not in capsys.readouterr().out


def test_report_of_a_directory_that_is_no_run_exits_2(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == EXIT_BAD_INPUT
    assert f"{tmp_path}: not a run directory (study.yaml missing)" in capsys.readouterr().err
