"""The scaling sweep: power-law fits, the sized studies it writes, its section, and one tiny real sweep.

No wall-clock assertions: the figures are only checked for shape and for
what follows from the runs themselves (more prosumers, more transactions).
"""

import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from bench.scaling import (
    COUNTS,
    HORIZON_ENV,
    SCALE_STUDY,
    VARIANTS,
    ZONE_LEDGERS,
    Curves,
    PowerLaw,
    ScalePoint,
    Sweep,
    fit_affine,
    fit_power_law,
    horizon_s,
    ledger_compute_s,
    plot_scaling,
    scaling_section,
    scaling_sweep,
    sized_study,
)
from bench.study import run_study
from gridledger.study import load_study, parse_study

ROOT = Path(__file__).resolve().parent.parent
SHORT = ROOT / "studies" / "baran-wu-short.yaml"


@settings(max_examples=50, deadline=None)
@given(a=st.floats(1e-3, 1e6), b=st.floats(-1.0, 3.0),
       counts=st.lists(st.integers(1, 20_000), min_size=2, max_size=6, unique=True))
def test_an_exact_power_law_is_recovered(a, b, counts):
    n = np.array(counts, dtype=float)
    law = fit_power_law(n, a * n ** b)
    assert law.b == pytest.approx(b, abs=1e-9)
    assert law.a == pytest.approx(a, rel=1e-6)
    assert law.b_stderr == pytest.approx(0.0, abs=1e-6)
    assert law.at(10_000) == pytest.approx(a * 10_000 ** b, rel=1e-6)


def test_scattered_points_give_a_standard_error_and_a_slope_between_theirs():
    n = np.array([32, 128, 512, 1000])
    law = fit_power_law(n, n * np.array([1.0, 1.3, 0.8, 1.1]))
    assert 0.9 < law.b < 1.1 and law.b_stderr > 0


@pytest.mark.parametrize("n, y", [([32, 32], [1.0, 2.0]), ([32, 128], [1.0, 0.0]), ([0, 128], [1.0, 2.0])])
def test_a_power_law_needs_two_sizes_and_positive_values(n, y):
    with pytest.raises(ValueError, match="two distinct sizes and positive values"):
        fit_power_law(np.array(n), np.array(y))


def test_a_fixed_cost_plus_a_cost_per_prosumer_is_recovered_by_the_affine_fit():
    n = np.array([32, 128, 512, 1000])
    line = fit_affine(n, 800.0 + 0.125 * n)
    assert line.fixed == pytest.approx(800.0) and line.per_prosumer == pytest.approx(0.125)
    assert line.at(10_000) == pytest.approx(2050.0)
    # The same points seen as a power law bend below 1: the fixed part hides the marginal cost.
    assert fit_power_law(n, 800.0 + 0.125 * n).b < 0.2


def test_the_day_estimate_keeps_start_up_once_and_stretches_the_rest():
    curves = Curves(wall_s=PowerLaw(10.0, 1.0, 0.0), startup_s=PowerLaw(1.0, 1.0, 0.0),
                    peak_rss_sum_mib=PowerLaw(1.0, 0.0, 0.0), gas_per_interval=PowerLaw(1.0, 1.0, 0.0))
    # 2 h at n = 3: wall 30 s of which start-up 3 s; a day is 12 times the 27 s after start-up.
    assert curves.day_wall_s(3, 7200) == pytest.approx(3 + 27 * 12)


@pytest.mark.parametrize("text", ["0", "-2", "two", "nan"])
def test_a_bad_horizon_is_refused_naming_the_variable(monkeypatch, text):
    monkeypatch.setenv(HORIZON_ENV, text)
    with pytest.raises(ValueError, match=f"{HORIZON_ENV}=.*positive number of hours"):
        horizon_s()


def test_the_horizon_defaults_to_two_hours_and_follows_the_variable(monkeypatch):
    monkeypatch.delenv(HORIZON_ENV, raising=False)
    assert horizon_s() == 7200
    monkeypatch.setenv(HORIZON_ENV, "24")
    assert horizon_s() == 86_400


def test_a_sized_study_changes_only_count_duration_and_the_overrides(tmp_path):
    path = sized_study(SHORT, 8, 900, {"market": {"submission": "batched"}}, tmp_path)
    written, base = yaml.safe_load(path.read_text()), yaml.safe_load(SHORT.read_text())
    assert written["prosumers"] == {**base["prosumers"], "count": 8}
    assert written["market"] == {**base["market"], "submission": "batched"}
    assert written["duration_s"] == 900 and written["name"] == "baran-wu-short-n8"
    assert {k: v for k, v in written.items() if k not in ("prosumers", "market", "duration_s", "name")} == \
        {k: v for k, v in base.items() if k not in ("prosumers", "market", "duration_s", "name")}
    assert load_study(path).prosumers.count == 8


def _point(n: int, variant: str = "unsharded") -> ScalePoint:
    return ScalePoint(variant=variant, prosumers=n, simulated_s=7200.0, wall_s=2.0 * n, startup_s=1.0 + n / 100,
                      peak_rss_sum_mib=500.0 + n, peak_rss_mib={"ledger": 200.0 + n}, ledger_compute_s=n,
                      gas_per_interval=1e5 * n, transactions_per_interval=n / 10)


def test_the_section_lists_every_run_and_judges_the_aims_per_variant(tmp_path):
    sweep = Sweep([_point(n) for n in COUNTS] + [_point(n, "sharded") for n in COUNTS])
    lines = scaling_section(sweep)
    assert sum(line.startswith("   variant:") for line in lines) == 2
    assert sum(line.split()[:1] == ["1000"] for line in lines) == 2
    # Wall exactly linear: the 1000/32 ratio is 31.25 at 2 h and close to it for the day, missing the 10x aim.
    assert any("1000/32 wall at 2 h: 31.25x" in line and "MISSES aim" in line and "1500 MiB (meets aim)" in line
               for line in lines)
    assert any("b (y = a n^b): wall 1.00 +- 0.00" in line for line in lines)
    assert any("extrapolated to 10,000 prosumers: 20,000 s for 2 h" in line for line in lines)
    assert any("wall 0.0 s + 2000.0 ms x n, peak RSS 500 MiB + 1024 KiB x n; at 10,000: 20,000 s for 2 h, 10.3 GiB"
               in line for line in lines)
    plot = plot_scaling(sweep, tmp_path / "scaling.png")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.e2e
def test_a_tiny_real_sweep_runs_each_size_once_with_more_transactions_for_more_prosumers(tmp_path):
    points = scaling_sweep(tmp_path, counts=(8, 4), duration_s=900, base=SHORT)
    assert [p.prosumers for p in points] == [4, 8]
    for p in points:
        assert p.simulated_s == 900 and math.isfinite(p.wall_s) and p.wall_s > p.startup_s > 0
        assert set(p.peak_rss_mib) >= {"grid", "ledger", "der"} and p.peak_rss_sum_mib > 0
    assert points[1].transactions_per_interval > points[0].transactions_per_interval
    assert points[1].gas_per_interval > points[0].gas_per_interval
    rows = [line.split()[0] for line in scaling_section(Sweep(points)) if line.split()[:1] in (["4"], ["8"])]
    assert rows == ["4", "8"]


def test_the_ledger_time_of_a_sharded_run_is_its_busiest_zone_ledgers():
    assert ledger_compute_s({"grid": 9.0, "ledger": 4.0, "der": 1.0}) == 4.0
    assert ledger_compute_s({"grid": 9.0, "ledger-g0": 4.0, "ledger-g1": 6.5, "coordinator": 0.1}) == 6.5


def test_the_sweep_compares_one_ledger_with_zone_ledgers_and_the_coordinator(tmp_path):
    sharded = VARIANTS[f"{ZONE_LEDGERS} zone ledgers"]
    study = yaml.safe_load(sized_study(SCALE_STUDY, 128, 7200, sharded, tmp_path).read_text())
    assert study["grid"]["zones"] == {"by": "transformer", "count": ZONE_LEDGERS}
    assert study["market"] == {**yaml.safe_load(SCALE_STUDY.read_text())["market"], "sharding": "per-zone"}
    assert VARIANTS["one ledger"] == {}
    parse_study(study)


@pytest.mark.e2e
def test_a_sharded_run_is_timed_per_zone_ledger_and_coordinator(tmp_path):
    """`bench.study.run_study` times every federate a sharded run starts; the ledger time is the busiest zone's."""
    zoned = {"grid": {"zones": {"buses": [list(range(18)), list(range(18, 33))]}}, "market": {"sharding": "per-zone"},
             "prosumers": {"count": 4, "buses": [3, 5, 20, 22]}}
    run = run_study(sized_study(SHORT, 4, 900, zoned, tmp_path), tmp_path)
    assert set(run.compute_s) == {"grid", "der", "ledger-z0", "ledger-z1", "coordinator"}
    assert ledger_compute_s(run.compute_s) == max(run.compute_s["ledger-z0"], run.compute_s["ledger-z1"]) > 0
    assert set(run.peak_rss_mib) == set(run.compute_s) and run.peak_rss_sum_mib > 0
