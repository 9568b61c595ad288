"""KPIs: each one recomputed here with plain numpy from results.nc, on a real run and on edited copies of it."""

from __future__ import annotations

import json

import numpy as np
import pandapower.networks
import pytest
import xarray as xr

from gridledger.grids.ratings import unrated_lines
from gridledger.kpis import (
    DESCRIPTIONS,
    FLEX_DELIVERED,
    FLEX_PAYMENT,
    NO_FLEXIBILITY_MARKET,
    NOT_RATED,
    RATED_KPIS,
    compute_kpis,
    iso_time,
    loading_kpis,
    share_gaining,
    source_choice_kpis,
)
from gridledger.study import load_study

pytestmark = pytest.mark.e2e

RANGE_A_PU = (114 / 120, 126 / 120)
RANGE_B_PU = (110 / 120, 127 / 120)


@pytest.fixture(scope="module")
def run(short_run):
    return short_run.run_dir, short_run.ds, load_study(short_run.run_dir / "study.yaml")


def independent_kpis(ds: xr.Dataset, study) -> dict:
    """The KPIs from raw arrays, written without gridledger.kpis."""
    step_h = study.power_flow_step_s / 3600
    buy, sell = study.market.grid_buy_price_per_kwh, study.market.grid_sell_price_per_kwh
    imp = np.maximum(ds.meter_import_wh.values, 0) / 1000
    exp = np.maximum(ds.meter_export_wh.values, 0) / 1000
    baseline = (buy * imp - sell * exp).sum(axis=0)
    cost = (ds.fee_token.values - ds.p2p_token.values - ds.imbalance_token.values).sum(axis=0)
    vm = ds.vm_pu.values
    sub = ds.substation_p_mw.values
    peak = int(np.nanargmax(sub))
    t, b = np.unravel_index(np.nanargmax(np.abs(vm - 1)), vm.shape)
    outside = {f"range_{name}": (vm < lo) | (vm > hi) for name, (lo, hi) in (("a", RANGE_A_PU), ("b", RANGE_B_PU))}
    outside["study_band"] = ds.voltage_violation.values.astype(bool)
    bands = {f"{band}_violation_{measure}": value for band, mask in outside.items() for measure, value in
             (("bus_steps", int(mask.sum())), ("share", mask.mean()), ("hours", mask.any(axis=1).sum() * step_h))}
    # Baran & Wu give no line ratings: pandapower's case33bw has max_i_ka = 99999 kA on every line.
    rated = pandapower.networks.case33bw().line.max_i_ka.values < 100
    community_import = np.maximum(-ds.export_mw.values.sum(axis=1), 0).sum()
    gas, tx = ds.gas_used.values, ds.transactions.values
    unpaid = ds.unpaid_token.values
    return {
        "energy_traded_kwh": ds.cleared_volume_wh.values.sum() / 1000,
        "cost_total_token": cost.sum(),
        "baseline_cost_total_token": baseline.sum(),
        "saving_total_token": (baseline - cost).sum(),
        "share_of_prosumers_gaining": np.mean(baseline - cost > 1e-6),
        "unpaid_total_token": np.maximum(unpaid, 0).sum(),
        "unpaid_to_prosumers_token": np.maximum(-unpaid, 0).sum(),
        "debtors": int((np.maximum(unpaid, 0).sum(axis=0) > 0).sum()),
        "peak_import_mw": sub[peak],
        "peak_import_time": str(ds.time.values[peak])[:19],
        "energy_import_mwh": np.clip(sub, 0, None).sum() * step_h,
        "losses_mwh": ds.pl_mw.values.sum() * step_h,
        "self_sufficiency": 1 - community_import / ds.load_p_mw.values.sum(),
        "min_vm_pu": np.nanmin(vm),
        "max_vm_pu": np.nanmax(vm),
        "worst_vm_pu": vm[t, b],
        "worst_vm_bus": int(ds.bus.values[b]),
        "worst_vm_time": str(ds.time.values[t])[:19],
        "lines_rated": bool(rated.all()),
        "max_loading_percent": np.nanmax(ds.loading_percent.values[:, rated]) if rated.any() else None,
        "overload_line_steps": int(ds.overload.values[:, rated].sum()) if rated.any() else None,
        **bands,
        "gas_used": int(gas.sum()),
        "gas_used_per_interval_mean": gas.mean(),
        "gas_used_per_interval_max": int(gas.max()),
        "transactions": int(tx.sum()),
        "transactions_per_interval_mean": tx.mean(),
        "transactions_per_interval_max": int(tx.max()),
        "flexibility_procured_kwh": 0.0,
        "flexibility_cost_token": 0.0,
    }


def assert_match(kpis: dict, expected: dict) -> None:
    for name, value in expected.items():
        if value is None or isinstance(value, (str, bool)):
            assert kpis[name] == value, name
        else:
            assert kpis[name] == pytest.approx(float(value), abs=1e-6), name


def test_kpis_json_matches_independent_recomputation(run):
    run_dir, ds, study = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert_match(kpis, independent_kpis(ds, study))
    assert kpis["flexibility_note"] == NO_FLEXIBILITY_MARKET


def test_per_prosumer_costs_match_and_add_up(run):
    run_dir, ds, _ = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    cost = (ds.fee_token - ds.p2p_token - ds.imbalance_token).sum("interval")
    for i, p in enumerate(ds.prosumer.values):
        assert kpis["cost_per_prosumer_token"][p] == pytest.approx(float(cost[i]), abs=1e-6)
        assert kpis["saving_per_prosumer_token"][p] == pytest.approx(
            kpis["baseline_cost_per_prosumer_token"][p] - kpis["cost_per_prosumer_token"][p], abs=2e-6)
    assert sum(kpis["saving_per_prosumer_token"].values()) == pytest.approx(kpis["saving_total_token"], abs=1e-4)


def test_voltage_kpis_count_violations_on_a_depressed_feeder(run):
    """Lower every voltage so Range A and Range B both break somewhere; counts and hours must follow."""
    _, ds, study = run
    sagged = ds.copy()
    sagged["vm_pu"] = ds.vm_pu - 0.08 * (ds.bus / ds.bus.max())
    sagged["voltage_violation"] = (sagged.vm_pu < 0.95).astype("int8")
    expected = independent_kpis(sagged, study)
    assert expected["range_a_violation_bus_steps"] > expected["range_b_violation_bus_steps"] > 0
    assert expected["range_b_violation_hours"] > 0
    assert_match(compute_kpis(sagged, study), expected)


def test_every_voltage_band_has_the_same_three_measures_and_says_which_limits(run):
    run_dir, _, _ = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    for band in ("study_band", "range_a", "range_b"):
        for measure in ("bus_steps", "share", "hours"):
            assert f"{band}_violation_{measure}" in kpis, (band, measure)
    assert not any(name.startswith("voltage_violation_") for name in kpis)
    assert "grid.limits" in DESCRIPTIONS["study_band_violation_bus_steps"]
    assert "range_a_violation_bus_steps under the default limits" in DESCRIPTIONS["study_band_violation_bus_steps"]
    assert "ANSI C84.1 Range A" in DESCRIPTIONS["range_a_violation_bus_steps"]


def test_study_band_follows_the_study_limits_and_ranges_follow_ansi(run):
    """Limits 0.97-1.03 pu: the study band (the grid's voltage_violation) counts more than Range A."""
    _, ds, study = run
    sagged = ds.copy()
    sagged["vm_pu"] = ds.vm_pu - 0.04 * (ds.bus / ds.bus.max())
    sagged["voltage_violation"] = ((sagged.vm_pu < 0.97) | (sagged.vm_pu > 1.03)).astype("int8")
    kpis = compute_kpis(sagged, study)
    assert kpis["study_band_violation_bus_steps"] > kpis["range_a_violation_bus_steps"] > 0
    assert_match(kpis, independent_kpis(sagged, study))


def test_ansi_ranges_count_a_bus_when_any_phase_is_outside(run):
    """An unbalanced feeder's results carry phase voltages: one phase at 0.94 pu breaks Range A though the bus's
    vm_pu is inside."""
    _, ds, study = run
    phases = np.repeat(ds.vm_pu.values[:, :, np.newaxis], 3, axis=2)
    phases[0, 5] = [0.94, 1.0, 1.0]
    unbalanced = ds.assign(vm_phase_pu=(("time", "bus", "phase"), phases))
    assert float(ds.vm_pu[0, 5]) > 0.95
    kpis = compute_kpis(unbalanced, study)
    assert kpis["range_a_violation_bus_steps"] == compute_kpis(ds, study)["range_a_violation_bus_steps"] + 1


def test_case33bw_lines_have_no_rating_and_their_loading_is_not_rated(run):
    run_dir, _, _ = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert unrated_lines(pandapower.networks.case33bw().line.max_i_ka).all()
    assert kpis["lines_rated"] is False
    assert kpis["max_loading_percent"] is None and kpis["overload_line_steps"] is None
    assert kpis["loading_note"].startswith("37 of 37 lines have no thermal rating")
    assert kpis["loading_note"].endswith(f"are {NOT_RATED}")


def test_unrated_lines_are_placeholders_not_positive_or_missing():
    max_i_ka = [0.145, 1.0, 99.9, 100.0, 99999.0, 0.0, -0.2, np.nan, np.inf]
    assert unrated_lines(max_i_ka).tolist() == [False, False, False, True, True, True, True, True, True]
    assert not unrated_lines(pandapower.networks.create_cigre_network_mv(with_der=False).line.max_i_ka).any()


def test_loading_kpis_cover_the_rated_lines_only(run):
    """Lines 0 and 1 rated: line 2's 500 % (unrated) counts nowhere; line 1's 120 % is the maximum and one
    overloaded line-step."""
    _, ds, _ = run
    loaded = ds.isel(line=[0, 1, 2]).copy()
    loading = np.full(loaded.loading_percent.shape, 10.0)
    loading[3] = [50.0, 120.0, 500.0]
    loaded["loading_percent"] = (loaded.loading_percent.dims, loading)
    loaded["overload"] = loaded.loading_percent > 100
    rated = xr.DataArray([True, True, False], coords={"line": loaded.line.values}, dims="line")
    kpis = loading_kpis(loaded, rated)
    assert (kpis["lines_rated"], kpis["max_loading_percent"], kpis["overload_line_steps"]) == (False, 120.0, 1)
    assert kpis["loading_note"].startswith("1 of 3 lines have no thermal rating")
    assert kpis["loading_note"].endswith("cover the 2 rated lines only")
    everywhere = loading_kpis(loaded, rated | True)
    assert everywhere == {"lines_rated": True, "max_loading_percent": 500.0, "overload_line_steps": 2}
    nowhere = loading_kpis(loaded, rated & False)
    assert {k: nowhere[k] for k in RATED_KPIS} == dict.fromkeys(RATED_KPIS)


def test_self_sufficiency_is_one_when_the_community_never_imports(run):
    _, ds, study = run
    sunny = ds.copy()
    sunny["export_mw"] = abs(ds.export_mw)
    assert compute_kpis(sunny, study)["self_sufficiency"] == 1.0
    dark = ds.copy()
    dark["export_mw"] = -ds.load_p_mw
    assert compute_kpis(dark, study)["self_sufficiency"] == pytest.approx(0.0, abs=1e-9)


def test_flexibility_kpis_read_flexibility_variables_when_present(run):
    _, ds, study = run
    flex = ds.copy()
    flex[FLEX_DELIVERED] = ("interval", np.full(ds.sizes["interval"], 500))
    flex[FLEX_PAYMENT] = ("interval", np.full(ds.sizes["interval"], 0.25))
    kpis = compute_kpis(flex, study)
    assert kpis["flexibility_procured_kwh"] == pytest.approx(0.5 * ds.sizes["interval"])
    assert kpis["flexibility_cost_token"] == pytest.approx(0.25 * ds.sizes["interval"])
    assert "flexibility_note" not in kpis


def test_unpaid_kpis_exist_with_units_and_follow_the_unpaid_variable(run):
    """The short study leaves nothing unpaid; an edited copy where two prosumers did not pay and one was not paid."""
    run_dir, ds, study = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert (kpis["unpaid_total_token"], kpis["unpaid_to_prosumers_token"], kpis["debtors"]) == (0.0, 0.0, 0)
    assert ds.unpaid_token.attrs["units"] == "token"
    assert DESCRIPTIONS["unpaid_total_token"].endswith("[token]")
    assert DESCRIPTIONS["unpaid_to_prosumers_token"].endswith("[token]")
    edited = ds.copy()
    unpaid = np.zeros(ds.unpaid_token.shape)
    unpaid[0, 0], unpaid[1, 0], unpaid[1, 1], unpaid[2, 2] = 0.5, 0.25, 1.0, -2.0
    edited["unpaid_token"] = (ds.unpaid_token.dims, unpaid)
    expected = independent_kpis(edited, study)
    assert expected["unpaid_total_token"] == 1.75 and expected["unpaid_to_prosumers_token"] == 2.0
    assert expected["debtors"] == 2
    assert_match(compute_kpis(edited, study), expected)


def test_wall_time_is_in_run_json_not_in_kpis_json(run):
    run_dir, _, _ = run
    assert not any("wall" in key for key in json.loads((run_dir / "kpis.json").read_text()))
    record = json.loads((run_dir / "run.json").read_text())
    assert record["wall_time_s"] > 0 and record["exit_code"] == 0 and record["failed"] is None


def test_recomputing_kpis_gives_the_same_bytes(run):
    run_dir, ds, study = run
    again = json.dumps(compute_kpis(ds, study), indent=2, sort_keys=True) + "\n"
    assert again == (run_dir / "kpis.json").read_text()


def test_every_kpi_has_a_description(run):
    run_dir, _, _ = run
    assert set(json.loads((run_dir / "kpis.json").read_text())) <= set(DESCRIPTIONS)


def test_share_gaining_ignores_floating_point_noise():
    # Savings of +-1e-12 token are rounding noise of summed wei; only 0.5 token is a gain: 1 of 4.
    saving = xr.DataArray([1e-12, -1e-12, 0.5, 0.0], dims="prosumer")
    assert share_gaining(saving) == 0.25
    assert share_gaining(xr.DataArray(np.zeros(0), dims="prosumer")) == 0.0


def test_source_choice_kpis_say_what_choosers_asked_and_got_against_the_others():
    """Two intervals, three buyers; p1 chose PV from interval 1 on. Interval 1: p1 bought 400 Wh, all PV; p2 bought
    600 Wh, 200 PV; interval 0: p1 (no choice yet) and p3 bought 500 Wh each, 250 PV each."""
    dims = ("interval", "prosumer")
    ds = xr.Dataset({"chose_pv": (dims, [[0, 0, 0], [1, 0, 0]]),
                     "p2p_bought_wh": (dims, [[500, 0, 500], [400, 600, 0]]),
                     "consumed_pv_wh": (dims, [[250, 0, 250], [400, 200, 0]]),
                     "sold_pv_wh": (dims, [[0, 0, 600], [0, 0, 700]])},
                    coords={"prosumer": ["p1", "p2", "p3"]})
    got = source_choice_kpis(ds)["source_choice"]
    assert got["choosers"] == {"bought_kwh": 0.4, "pv_kwh": 0.4, "pv_share": 1.0}
    assert got["others"] == {"bought_kwh": 1.6, "pv_kwh": 0.7, "pv_share": 0.4375}
    assert got["by_buyer"] == {"p1": {"asked": "pv", "bought_kwh": 0.4, "pv_kwh": 0.4, "pv_share": 1.0}}
    assert got["pv_sold_kwh"] == 1.3
    assert source_choice_kpis(ds.drop_vars("chose_pv")) == {}


def test_kpi_times_stay_feeder_local_without_an_offset_when_the_study_names_no_time_zone(run):
    """The short run (no time_zone) peaks at its first step, 10:00 as its start is written."""
    _, ds, study = run
    kpis = compute_kpis(ds, study)
    assert study.time_zone is None
    assert kpis["peak_import_time"] == kpis["worst_vm_time"] == "2024-06-21T10:00:00"


@pytest.mark.parametrize(("day", "offset"), [("2024-06-21", "+02:00"), ("2024-01-15", "+01:00")])
def test_kpi_times_are_local_with_their_utc_offset_when_the_study_names_its_time_zone(run, day, offset):
    """The short run's peak at 10:00 local time, moved to `day` in Europe/Berlin: results.nc then holds UTC, 08:00 in
    summer (CEST) and 09:00 in winter (CET), and kpis.json gives the local time with its offset."""
    _, ds, study = run
    local = ds.time.values - ds.time.values[0] + np.datetime64(f"{day}T10:00", "ns")
    utc = local - np.timedelta64(int(offset[1:3]), "h")
    kpis = compute_kpis(ds.assign_coords(time=utc), study.model_copy(update={"time_zone": "Europe/Berlin"}))
    assert kpis["peak_import_time"] == kpis["worst_vm_time"] == f"{day}T10:00:00{offset}"


def test_kpi_time_crosses_the_spring_daylight_saving_change_in_the_study_zone():
    before, after = np.datetime64("2024-03-31T00:55", "ns"), np.datetime64("2024-03-31T01:00", "ns")   # UTC
    assert iso_time(before, "Europe/Berlin") == "2024-03-31T01:55:00+01:00"
    assert iso_time(after, "Europe/Berlin") == "2024-03-31T03:00:00+02:00"
    assert iso_time(after, None) == "2024-03-31T01:00:00"


def test_kpi_time_descriptions_say_local_time_and_when_it_has_an_offset():
    for name in ("peak_import_time", "worst_vm_time"):
        assert "ISO 8601" in DESCRIPTIONS[name] and "UTC offset when it names its time_zone" in DESCRIPTIONS[name]
