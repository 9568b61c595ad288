"""The grid's record (`gridledger.agents.feeder_record`): per-step flags, meter registers, the results part.

No HELICS: steps are handed to the record as power-flow results with
voltages and loadings chosen by hand, on the baran-wu-short scenario
(case33bw: 33 buses, 37 lines with the 5 open ties; limits 0.95-1.05 pu, 100 %).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gridledger.agents.attacks import NO_ATTACK
from gridledger.agents.feeder_record import ATTACK_KIND_FILL, METER_REGISTERS, NOT_METERED, FeederRecord
from gridledger.grids.powerflow import StepResult
from gridledger.scenario import build_scenario
from gridledger.study import load_study, parse_study
from gridledger.study_audit import Audit


@pytest.fixture(scope="module")
def sc():
    return build_scenario(load_study("studies/baran-wu-short.yaml"), with_devices=True)


def result_with(vm_pu: np.ndarray, loading_percent: np.ndarray, converged: bool = False) -> StepResult:
    """A power-flow result of a balanced feeder with these voltages and loadings (not converged: no SI computed)."""
    return StepResult(converged=converged, vm_pu=vm_pu, va_degree=np.zeros_like(vm_pu),
                      loading_percent=loading_percent, trafo_loading_percent=np.zeros(0), p_mw=0.5, q_mvar=0.2,
                      pl_mw=0.01, vm_phase_pu=np.repeat(vm_pu[:, None], 3, axis=1), vuf_percent=np.zeros_like(vm_pu),
                      line_p_from_mw=np.zeros_like(loading_percent), line_q_from_mvar=np.zeros_like(loading_percent))


def prosumer_setpoints(n: int, pv_mw: float, load_mw: float, battery_mw: float) -> dict[str, np.ndarray]:
    return {"pv_p_mw": np.full(n, pv_mw), "load_p_mw": np.full(n, load_mw), "battery_p_mw": np.full(n, battery_mw),
            "pv_curtailed_p_mw": np.full(n, 0.001)}


def test_step_flags_voltages_outside_the_limits_and_range_b_and_overloaded_lines(sc):
    """Bus 5 at 1.055 pu: above 1.05 but inside ANSI Range B (up to 127/120 = 1.0583 pu).
    Bus 9 at 1.06 pu: above both. Bus 20 at 0.94 pu: below 0.95 but inside Range B (from 110/120 = 0.9167 pu).
    Bus 25 at 0.91 pu: below both. Line 3 at 120 % > 100 %; line 4 at exactly 100 % is not overloaded."""
    record = FeederRecord(sc)
    vm_pu = np.full(33, 1.0)
    vm_pu[[5, 9, 20, 25]] = [1.055, 1.06, 0.94, 0.91]
    loading = np.full(37, 50.0)
    loading[[3, 4]] = [120.0, 100.0]
    n = len(sc.prosumers)
    record.step(2, result_with(vm_pu, loading), (np.zeros(33), np.zeros(33)), prosumer_setpoints(n, 0.0, 0.0, 0.0))
    assert np.flatnonzero(record.voltage_violation[2]).tolist() == [5, 9, 20, 25]
    assert np.flatnonzero(record.range_b_violation[2]).tolist() == [9, 25]
    assert np.flatnonzero(record.overload[2]).tolist() == [3]
    assert record.converged[2] == 0
    assert np.isnan(record.si_pu[2]).all()
    assert record.substation["p_mw"][2] == 0.5 and record.substation["pl_mw"][2] == 0.01
    assert record.steps_done == 3
    assert not record.voltage_violation[[0, 1, 3]].any()


def test_step_records_export_as_pv_minus_load_minus_charging(sc):
    """PV 6 kW, load 2 kW, battery charging 1.5 kW: export 6 - 2 - 1.5 = 2.5 kW at every meter."""
    record = FeederRecord(sc)
    n = len(sc.prosumers)
    bus_load = (np.arange(33) * 1e-3, np.arange(33) * 1e-4)
    record.step(0, result_with(np.ones(33), np.zeros(37)), bus_load, prosumer_setpoints(n, 0.006, 0.002, 0.0015))
    np.testing.assert_allclose(record.export_mw[0], np.full(n, 0.0025))
    np.testing.assert_allclose(record.pv_p_mw[0], 0.006)
    np.testing.assert_allclose(record.battery_p_mw[0], 0.0015)
    np.testing.assert_allclose(record.pv_curtailed_p_mw[0], 0.001)
    np.testing.assert_array_equal(record.bus_p_mw[0], bus_load[0])
    np.testing.assert_array_equal(record.bus_q_mvar[0], bus_load[1])


def test_converged_balanced_step_records_the_stability_index(sc):
    record = FeederRecord(sc)
    vm = np.linspace(1.0, 0.95, 33)
    record.step(0, result_with(vm, np.zeros(37), converged=True), (np.zeros(33), np.zeros(33)),
                prosumer_setpoints(len(sc.prosumers), 0.0, 0.0, 0.0))
    assert record.converged[0] == 1
    assert np.isfinite(record.si_pu[0, 1:]).all()


def test_meter_keeps_an_intervals_registers_and_leaves_the_others_unmetered(sc):
    record = FeederRecord(sc)
    n = len(sc.prosumers)
    registers = {name: np.full(n, 10 * (k + 1), dtype=np.int64) for k, name in enumerate(METER_REGISTERS)}
    record.meter(1, registers)
    assert [int(record.meter_wh[name][1, 0]) for name in METER_REGISTERS] == [10, 20, 30, 40]
    assert (record.meter_wh["import_wh"][[0, 2]] == NOT_METERED).all()


def test_part_carries_units_and_the_unmetered_marker(sc):
    record = FeederRecord(sc)
    record.meter(0, {name: np.full(len(sc.prosumers), 7, dtype=np.int64) for name in METER_REGISTERS})
    ds = record.part().ds
    assert ds.attrs == {"federate": "grid", "steps_completed": 0}
    assert ds["q_mvar"].attrs["units"] == "Mvar"
    assert ds["vm_pu"].attrs["units"] == "pu"
    assert ds["loading_percent"].attrs["units"] == "%"
    assert "si_pu" in ds and "vm_phase_pu" not in ds and "trafo_loading_percent" not in ds
    assert ds["meter_pv_wh"].attrs["long_name"] == "metered PV generation per interval"
    assert ds["meter_pv_wh"].encoding["_FillValue"] == NOT_METERED == -1
    assert ds["meter_export_wh"].values[0, 0] == 7 and ds["meter_export_wh"].values[1, 0] == NOT_METERED
    assert ds["meter_battery_wh"].dims == ("interval", "prosumer")


def test_attack_kind_is_none_once_metered_a_code_once_attacked_and_the_fill_value_before(sc):
    study = sc.study.model_copy(update={"audit": Audit()})
    record = FeederRecord(dataclasses.replace(sc, study=study))
    n = len(sc.prosumers)
    registers = {name: np.zeros(n, dtype=np.int64) for name in METER_REGISTERS}
    record.meter(0, registers)
    record.meter(1, registers)
    kind = np.full(n, NO_ATTACK, dtype=np.int16)
    kind[3] = 2                                                  # bypass
    zeros = np.zeros(n, dtype=np.int64)
    record.attacked(1, kind, zeros, zeros, zeros)
    ds = record.part().ds
    assert (ds.attack_kind.values[0] == NO_ATTACK).all() and ds.attack_kind.values[1, 3] == 2
    assert (ds.attack_kind.values[2:] == ATTACK_KIND_FILL).all()
    assert ds.attack_kind.encoding["_FillValue"] == ATTACK_KIND_FILL
    assert ATTACK_KIND_FILL not in ds.attack_kind.attrs["flag_values"]


def test_part_of_an_unbalanced_feeder_carries_phases_unbalance_and_the_transformer():
    """ieee-eu-lv is solved per phase and has a substation transformer; the stability index is for balanced feeders."""
    data = load_study("studies/ieee-eu-lv-p2p.yaml").model_dump(mode="json")
    data["duration_s"] = 3600
    ds = FeederRecord(build_scenario(parse_study(data))).part().ds
    assert ds["vm_phase_pu"].dims == ("time", "bus", "phase")
    assert ds["vuf_percent"].attrs["units"] == "%"
    assert ds["trafo_loading_percent"].dims == ("time", "trafo")
    assert "si_pu" not in ds
