"""`gridledger compare`: two real runs that differ in the grid fee, side by side."""

from __future__ import annotations

import json
import re
from pathlib import Path
from concurrent.futures import ThreadPoolExecutor

import pytest
import yaml

from gridledger.cli import EXIT_BAD_INPUT, main
from gridledger.compare import AVOIDED_COST, OVERLAYS, Run, comparable_kpis, difference, kpi_rows, load_run
from gridledger.kpis import NOT_RATED
from tests.e2e_helpers import gridledger, only_run_dir

pytestmark = pytest.mark.e2e

MICRO = {"name": "micro", "start": "2024-06-21T11:00:00", "duration_s": 1800, "seed": 7,
         "prosumers": {"count": 8, "pv": {"share": 0.5}, "battery": {"share": 0.25}}}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Two runs of the micro study, grid fee 0.02 and 0.05 token/kWh, run at the same time."""
    root = tmp_path_factory.mktemp("compare")
    studies = []
    for fee in (0.02, 0.05):
        path = root / f"fee-{fee}.yaml"
        path.write_text(yaml.safe_dump({**MICRO, "name": f"micro-fee-{fee}", "market": {"grid_fee_per_kwh": fee}}))
        studies.append(path)
    with ThreadPoolExecutor(2) as pool:
        procs = list(pool.map(lambda p: gridledger("run", str(p), "--runs", str(root / "runs")), studies))
    for proc in procs:
        assert proc.returncode == 0, proc.stdout + proc.stderr
    return root, [only_run_dir(root / "runs", f"micro-fee-{fee}") for fee in (0.02, 0.05)]


def test_compare_prints_both_runs_and_writes_compare_html(runs):
    root, (a, b) = runs
    out = root / "out" / "compare.html"
    proc = gridledger("compare", str(a), str(b), "--out", str(out))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "KPIs compared with micro-fee-0.02" in proc.stdout
    assert "cost_total_token" in proc.stdout and "energy_traded_kwh" in proc.stdout
    assert f"comparison: {out}" in proc.stdout.replace("\n", "")
    text = out.read_text()
    assert len(re.findall(r'<img alt="[a-z_]+" src="data:image/png;base64,', text)) == len(OVERLAYS)
    assert '<tr data-kpi="saving_total_token"' in text


def test_differences_are_second_run_minus_first(runs):
    _, (a, b) = runs
    first, second = load_run(a), load_run(b)
    rows = dict(kpi_rows([first, second]))
    ka, kb = json.loads((a / "kpis.json").read_text()), json.loads((b / "kpis.json").read_text())
    assert kb["cost_total_token"] > ka["cost_total_token"], "a higher grid fee must cost the buyers more"
    for name in ("cost_total_token", "saving_total_token", "energy_traded_kwh", "gas_used"):
        shown = rows[name][2]
        expected = kb[name] - ka[name]
        if expected == 0:
            assert shown == ""
        else:
            number = float(shown.split(" ")[0].replace(",", ""))
            assert number == pytest.approx(expected, abs=1e-6), name
    assert rows["study"][2] == "changed" and rows["seed"][2] == ""


def test_difference_formats_sign_and_relative_change():
    assert difference(1.5, 1.0) == "+0.5 (+50.0%)"
    assert difference(900, 1000) == "-100 (-10.0%)"
    assert difference(2.0, 0.0) == "+2"
    assert difference(3, 3) == ""
    assert difference("b", "a") == "changed"


def test_missing_run_directory_exits_2_naming_it(tmp_path, capsys):
    assert main(["compare", str(tmp_path / "nope"), str(tmp_path)]) == EXIT_BAD_INPUT
    assert f"{tmp_path / 'nope'}: no such run directory" in capsys.readouterr().err


def test_directory_without_results_exits_2(tmp_path, capsys):
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "b")]) == EXIT_BAD_INPUT
    assert "not a run directory with results" in capsys.readouterr().err


def test_failed_run_cannot_be_compared(runs, tmp_path, capsys):
    _, (a, _) = runs
    failed = tmp_path / "failed"
    failed.mkdir()
    (failed / "kpis.json").write_text('{"complete": false}')
    (failed / "results.nc").write_bytes((a / "results.nc").read_bytes())
    assert main(["compare", str(a), str(failed)]) == EXIT_BAD_INPUT
    assert "did not finish" in capsys.readouterr().err


def test_one_run_is_not_a_comparison(runs, capsys):
    _, (a, _) = runs
    assert main(["compare", str(a)]) == EXIT_BAD_INPUT
    assert "at least two run directories" in capsys.readouterr().err


def test_nested_kpis_compare_by_dotted_name_and_ancillary_runs_get_their_cost_per_avoided_kwh():
    def run(kpis: dict) -> Run:
        return Run("r", Path("."), None, kpis, None)

    none = run({"unserved_energy_kwh": 24.5, "cost_per_prosumer_token": {"p01": 1.0}})
    reserve = run({"unserved_energy_kwh": 2.5, "ancillary": {"reserve": {"paid_token": 22.0}, "note": None}})
    both = run({"unserved_energy_kwh": 0.0, "ancillary": {"reserve": {"paid_token": 24.0},
                                                           "load_shed": {"paid_token": 10.5}}})
    flat = comparable_kpis([none, reserve, both])
    assert flat[0] == {"unserved_energy_kwh": 24.5}                       # per-prosumer tables stay out
    assert flat[1]["ancillary.reserve.paid_token"] == 22.0
    # 22 token for 22 kWh avoided; 34.5 token for 24.5 kWh avoided
    assert flat[1][AVOIDED_COST] == 1.0 and flat[2][AVOIDED_COST] == round(34.5 / 24.5, 6)
    assert AVOIDED_COST not in comparable_kpis([both, none])[1]           # more unserved: nothing avoided


def test_loading_kpis_of_feeders_without_line_ratings_compare_as_not_rated():
    unrated = Run("case33bw", Path("."), None, {"max_loading_percent": None, "overload_line_steps": None,
                                                 "mean_clearing_price_per_kwh": None}, None)
    rated = Run("cigre-mv", Path("."), None, {"max_loading_percent": 42.5, "overload_line_steps": 0,
                                              "mean_clearing_price_per_kwh": 0.2}, None)
    rows = dict(kpi_rows([unrated, unrated]))
    assert rows["max_loading_percent"] == [NOT_RATED, NOT_RATED, ""]
    assert rows["overload_line_steps"] == [NOT_RATED, NOT_RATED, ""]
    assert rows["mean_clearing_price_per_kwh"] == ["null", "null", ""]
    assert dict(kpi_rows([unrated, rated]))["max_loading_percent"] == [NOT_RATED, "42.5", "changed"]
