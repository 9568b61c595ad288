"""results.nc explains itself (`gridledger.results`): coordinates with CF attributes, each prosumer's bus and devices,
bus labels as the papers number them, time with its zone, fill values, interval bounds and cell methods.

The end-to-end checks read the session's one run of baran-wu-short (case33bw, 32 prosumers, 2 h from 10:00
feeder local time, 15-minute intervals); the time-zone and fill-value checks write small parts of their own.
"""

from __future__ import annotations

import importlib.util
import json
from types import SimpleNamespace

import numpy as np
import pytest
import xarray as xr
import yaml

from gridledger.grids.names import bus_labels
from gridledger.grids.prosumer_spec import Prosumer
from gridledger.results import COORDINATES, KPIS_FILE, RESULTS_FILE, Part, describe, time_origin
from gridledger.roster import load_roster
from gridledger.study import StudyError, load_study, parse_study
from gridledger.study_privacy import Emergency
from tests.e2e_helpers import ROOT

NON_UDUNITS = {"Wh", "kWh", "Mvar", "token", "gas", "token/kWh"}
"""The project's unit labels (pandapower's spelling, `gridledger.units`) that UDUNITS does not parse."""


@pytest.fixture(scope="module")
def run(short_run):
    return short_run.run_dir, short_run.ds


def bounds_variables(ds: xr.Dataset) -> set[str]:
    return {ds[name].attrs["bounds"] for name in ds.coords if "bounds" in ds[name].attrs}


def test_every_coordinate_has_a_long_name_and_the_time_axes_the_standard_name_time(run):
    _, ds = run
    assert {"time", "interval", "bus", "bus_name", "bus_label", "line", "prosumer", "prosumer_bus",
            "prosumer_bus_name", "prosumer_bus_label"} <= set(ds.coords)
    for name in ds.coords:
        assert ds[name].attrs.get("long_name"), name
    assert ds.time.attrs["standard_name"] == ds.interval.attrs["standard_name"] == "time"
    assert ds.attrs["Conventions"] == "CF-1.11"


def test_every_data_variable_keeps_units_and_a_long_name(run):
    _, ds = run
    for name in set(ds.data_vars) - bounds_variables(ds):
        assert ds[name].attrs.get("units"), name
        assert ds[name].attrs.get("long_name"), name


def test_each_prosumer_has_its_bus_by_index_name_and_paper_number_and_its_devices(run):
    run_dir, ds = run
    prosumers = load_roster(run_dir).prosumers
    assert ds.prosumer_bus.values.tolist() == [p.bus for p in prosumers]
    assert ds.prosumer_bus_name.values.tolist() == [str(p.bus) for p in prosumers]          # case33bw's own names
    assert ds.prosumer_bus_label.values.tolist() == [str(p.bus + 1) for p in prosumers]     # Baran and Wu's numbers
    np.testing.assert_array_equal(ds.pv_kwp.values, [p.pv_kwp for p in prosumers])
    np.testing.assert_array_equal(ds.battery_energy_kwh.values, [p.battery_energy_kwh for p in prosumers])
    np.testing.assert_array_equal(ds.battery_power_kw.values, [p.battery_power_kw for p in prosumers])
    assert (ds.pv_kwp.attrs["units"], ds.battery_energy_kwh.attrs["units"], ds.battery_power_kw.attrs["units"]) == (
        "kW", "kWh", "kW")
    assert int((ds.pv_kwp > 0).sum()) == 16 and int((ds.battery_energy_kwh > 0).sum()) == 8   # shares 0.5, 0.25


def test_case33bw_bus_index_17_is_baran_and_wus_bus_18(run):
    run_dir, ds = run
    assert str(ds.bus_label.sel(bus=17).values) == "18" and str(ds.bus_name.sel(bus=17).values) == "17"
    assert ds.bus_label.values.tolist() == [str(i) for i in range(1, 34)]
    kpis = json.loads((run_dir / KPIS_FILE).read_text())
    assert kpis["worst_vm_bus_label"] == str(kpis["worst_vm_bus"] + 1)


def test_bus_labels_number_matpower_cases_from_one_and_name_other_feeders_buses_by_their_own_names():
    assert bus_labels("case33bw", [0, 17, 32], [0, 17, 32]) == ["1", "18", "33"]
    assert bus_labels("cigre-mv", [0, 1], ["Bus 0", "Bus 1"]) == ["Bus 0", "Bus 1"]
    assert bus_labels("net.json", [4, 7, 9], ["LV1.101 Bus 5", None, float("nan")]) == ["LV1.101 Bus 5", "7", "9"]


def test_time_without_a_zone_is_feeder_local_time_and_says_so(run):
    run_dir, ds = run
    assert str(ds.time.values[0])[:19] == "2024-06-21T10:00:00"
    assert "time_zone" not in ds.time.attrs and "feeder local time" in ds.time.attrs["comment"]
    assert ds.time.attrs["units_metadata"] == "leap_seconds: none"
    with xr.open_dataset(run_dir / RESULTS_FILE, engine="h5netcdf", decode_times=False) as raw:
        assert raw.time.attrs["units"] == raw.interval.attrs["units"] == "seconds since 2024-06-21T10:00:00"
        assert raw.time.values[:3].tolist() == [0, 300, 600]


def test_intervals_have_bounds_from_start_to_end(run):
    _, ds = run
    assert ds.interval.attrs["bounds"] == "interval_bounds"
    assert ds.interval_bounds.dims == ("interval", "nv")
    np.testing.assert_array_equal(ds.interval_bounds.values[:, 0], ds.interval.values)
    np.testing.assert_array_equal(ds.interval_bounds.values[:, 1], ds.interval.values + np.timedelta64(15, "m"))


def test_energies_money_gas_and_counts_are_interval_sums_and_step_quantities_points(run):
    _, ds = run
    for name in ("meter_import_wh", "cleared_volume_wh", "position_wh", "p2p_token", "gas_used", "transactions",
                 "orders_rejected", "order_energy_wh"):
        assert ds[name].attrs["cell_methods"] == "interval: sum", name
    for name in ("vm_pu", "loading_percent", "export_mw", "soc_kwh", "substation_p_mw", "converged"):
        assert ds[name].attrs["cell_methods"] == "time: point", name
    assert "cell_methods" not in ds.clearing_price_per_kwh.attrs and "cell_methods" not in ds.pv_kwp.attrs


def test_meter_registers_carry_their_fill_value_and_are_all_metered_in_a_finished_run(run):
    run_dir, ds = run
    with xr.open_dataset(run_dir / RESULTS_FILE, engine="h5netcdf", mask_and_scale=False) as raw:
        for name in ("meter_import_wh", "meter_export_wh", "meter_pv_wh", "meter_battery_wh"):
            assert raw[name].dtype == np.int64 and raw[name].attrs["_FillValue"] == -1, name
            assert raw[name].min() >= 0, name
    assert ds.meter_import_wh.notnull().all()


def test_every_coordinate_a_part_can_have_is_described():
    """Coordinates of a study with data access and emergency access, plus those recorders add (``ev``, ``zone``)."""
    study = load_study(ROOT / "studies" / "data-access.yaml")
    emergency = Emergency.model_validate(yaml.safe_load((ROOT / "studies" / "emergency.yaml").read_text())["emergency"])
    part = Part(_roster_like(study.model_copy(update={"emergency": emergency})), "x")
    names = set(part.coords) | {"ev", "zone", "bus_name", "bus_label"}
    names |= {name for described in part.described.values() for name in described}
    assert {"request", "answer_entry", "data_action", "override", "read", "prosumer_bus"} <= names
    assert names <= set(COORDINATES)


def _roster_like(study) -> SimpleNamespace:
    """What a Part needs of a scenario: three prosumers on buses 1 and 2 of a three-bus feeder, no feeder."""
    prosumers = [Prosumer(f"p0{i + 1}", bus, i, 0.004, 0.001, 5.0 * i, 0.0, 0.0) for i, bus in enumerate((1, 2, 2))]
    return SimpleNamespace(study=study, prosumers=prosumers, buses=np.arange(3), lines=np.arange(2),
                           trafos=np.arange(0))


def _written(part: Part, study, tmp_path) -> xr.Dataset:
    path = part.write(tmp_path, complete=False)
    with xr.open_dataset(path, engine="h5netcdf") as ds:
        describe(ds.load(), study).to_netcdf(tmp_path / RESULTS_FILE, engine="h5netcdf")
    with xr.open_dataset(tmp_path / RESULTS_FILE, engine="h5netcdf") as ds:
        return ds.load()


def test_an_unrecorded_integer_entry_round_trips_as_its_fill_value(tmp_path):
    study = parse_study({"name": "x", "start": "2024-06-21T10:00:00", "duration_s": 1800})
    part = Part(_roster_like(study), "grid")
    part.add("meter_import_wh", ("interval", "prosumer"), np.array([[5, 6, 7], [-1, -1, -1]]), "Wh", "metered import",
             fill_value=-1)
    ds = _written(part, study, tmp_path)
    assert np.isnan(ds.meter_import_wh.values[1]).all() and ds.meter_import_wh.values[0].tolist() == [5, 6, 7]
    assert ds.meter_import_wh.encoding["_FillValue"] == -1 and ds.meter_import_wh.encoding["dtype"] == np.int64
    assert ds.prosumer_bus.values.tolist() == [1, 2, 2] and "bus_label" not in ds.coords   # no feeder in a roster


@pytest.mark.parametrize("zone, start, utc", [("Europe/Berlin", "2024-06-21T10:00:00", "2024-06-21T08:00:00"),
                                              ("America/New_York", "2024-01-15T10:00:00", "2024-01-15T15:00:00"),
                                              ("UTC", "2024-06-21T10:00:00", "2024-06-21T10:00:00")])
def test_a_named_zone_puts_time_in_utc_and_names_the_zone(tmp_path, zone, start, utc):
    study = parse_study({"name": "x", "start": start, "duration_s": 1800, "time_zone": zone})
    assert str(time_origin(study)) == utc
    part = Part(_roster_like(study), "grid")
    part.add("export_mw", ("time", "prosumer"), np.zeros((6, 3)), "MW", "net export")
    part.add("gas_used", ("interval",), np.zeros(2, dtype=np.int64), "gas", "gas used")
    ds = _written(part, study, tmp_path)
    assert ds.time.values[0] == np.datetime64(utc)
    assert ds.interval_bounds.values[-1, 1] == np.datetime64(utc) + np.timedelta64(30, "m")
    assert ds.time.attrs["time_zone"] == ds.interval.attrs["time_zone"] == zone
    assert ds.time.encoding["units"] == f"seconds since {utc}"


@pytest.mark.parametrize("zone, start, says", [("Mars/Olympus", "2024-06-21T10:00:00", "not an IANA time zone"),
                                               ("Europe/Berlin", "2024-03-31T02:30:00", "skipped or repeated"),
                                               ("Europe/Berlin", "2024-10-27T02:30:00", "skipped or repeated")])
def test_an_unknown_zone_or_a_start_it_skips_or_repeats_is_refused_naming_time_zone(zone, start, says):
    with pytest.raises(StudyError, match=rf"time_zone = '{zone}'.*{says}"):
        parse_study({"name": "x", "start": start, "time_zone": zone})


@pytest.mark.skipif(importlib.util.find_spec("compliance_checker") is None,
                    reason="IOOS compliance-checker not installed (pip install compliance-checker)")
def test_a_cf_checker_finds_nothing_but_the_projects_non_udunits_unit_labels(run, tmp_path):
    """IOOS compliance-checker, where installed: it is no test dependency (`make test` runs without it)."""
    from compliance_checker import runner

    run_dir, _ = run
    report = tmp_path / "cf.json"
    runner.CheckSuite.load_all_available_checkers()
    runner.ComplianceChecker.run_checker(str(run_dir / RESULTS_FILE), ["cf:1.11"], 0, "normal",
                                         output_filename=str(report), output_format="json")
    failed = [item for item in json.loads(report.read_text())["cf:1.11"]["high_priorities"]
              if item["value"][0] < item["value"][1]]
    messages = [m for item in failed for m in item["msgs"]]
    assert all("not recognized by UDUNITS" in m for m in messages), messages
    assert {m.split(", ")[-1].split('"')[1] for m in messages} <= NON_UDUNITS
