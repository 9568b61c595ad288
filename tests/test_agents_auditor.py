"""The auditor on case33bw: honest meters pass and reproduce the power flow's voltages; tampered ones are flagged.

The power flow runs with the prosumers' loads and PV from the study's
profiles (no market); sensors read the interval means plus seeded noise.
"""

from __future__ import annotations

import numpy as np
import pytest

from gridledger.agents.auditor import Auditor
from gridledger.agents.feeder import Feeder
from gridledger.agents.meters import interval_registers
from gridledger.grids import sensors as gs
from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from gridledger.units import W_PER_MW

STUDY = {"name": "audit", "start": "2024-06-21T10:00:00", "duration_s": 3600, "seed": 42,
         "prosumers": {"count": 32, "pv": {"share": 0.5, "kwp_per_kw_load": 1.5}},
         "audit": {"sensors": {"lines": "all"}}}
BYPASSED = 9                                          # p10 draws 10 % of its meter rating around its meter


def _run(bypass_share: float = 0.0, noise: bool = True, audit: dict = STUDY["audit"]):
    study = parse_study({**STUDY, "audit": audit})
    sc = build_scenario(study, with_devices=True)
    feeder, n = Feeder(sc), len(sc.prosumers)
    auditor = Auditor(sc, study.audit)
    extra = np.zeros(n)
    extra[BYPASSED] = bypass_share * auditor.rating_mw[BYPASSED]
    for step in range(study.n_steps):
        loads = [sc.loads.of(p, sc.net) for p in sc.prosumers]
        metered = {"load_p_mw": np.array([p[step] for p, _ in loads]), "load_q_mvar": np.array([q[step] for _, q in loads]),
                   "pv_p_mw": np.array([p.pv_kwp / 1e3 * sc.pv_pu[step, i] for i, p in enumerate(sc.prosumers)]),
                   "battery_p_mw": np.zeros(n), "pv_curtailed_p_mw": np.zeros(n)}
        physical = {**metered, "load_p_mw": metered["load_p_mw"] + extra}
        feeder.step(step, physical)
        feeder.record.export_mw[step] += extra                      # the meter does not see the bypass
    rng = np.random.default_rng(3)
    rec, intervals = feeder.record, []
    for k in range(study.n_intervals):
        rows = slice(k * study.steps_per_interval, (k + 1) * study.steps_per_interval)
        registers = interval_registers(rec, rows, study.power_flow_step_s)
        true = gs.true_values(auditor.sensors, sc.net, vm_pu=rec.vm_pu[rows], bus_p_mw=rec.bus_p_mw[rows],
                              bus_q_mvar=rec.bus_q_mvar[rows], substation_p_mw=rec.substation["p_mw"][rows],
                              substation_q_mvar=rec.substation["q_mvar"][rows], line_p_from_mw=rec.line_p_from_mw[rows],
                              line_q_from_mvar=rec.line_q_from_mvar[rows])
        readings = {i: (int(registers["import_wh"][i]), int(registers["export_wh"][i])) for i in range(n)}
        sensors = gs.read(auditor.sensors, true, rng) if noise else true
        intervals.append((sensors, readings, rec.vm_pu[rows].mean(axis=0)))
    return study, auditor, intervals


@pytest.fixture(scope="module")
def honest():
    return _run()


def test_honest_meters_pass_and_the_estimate_is_the_power_flow_within_the_sensors_noise(honest):
    study, auditor, intervals = honest
    sigma_v = study.audit.sensors.substation_sigma_vm_pu
    for k, (sensors, readings, vm_pu) in enumerate(intervals):
        result = auditor.check(k, sensors, readings)
        assert result.failed is None and not result.bad_data and result.flagged == {}
        assert np.abs(result.vm_pu - vm_pu).max() <= 3 * sigma_v + 0.001


def test_an_over_reporting_meter_is_the_one_flagged_and_the_energy_balance_moves_by_its_lie(honest):
    study, auditor, intervals = honest
    sensors, readings, _ = intervals[1]
    lie_wh = round(0.1 * auditor.rating_mw[5] * W_PER_MW * study.market_interval_s / 3600)   # 10 % of rating x interval
    base = auditor.check(1, sensors, readings)
    tampered = auditor.check(1, sensors, {**readings, 5: (readings[5][0], readings[5][1] + lie_wh)})
    assert list(tampered.flagged) == [5] and tampered.flagged[5] > study.audit.rn_threshold
    true_import_wh = readings[5][0] - readings[5][1]
    assert abs(tampered.estimate_wh[5] - true_import_wh) < 0.1 * lie_wh      # the physics' figure, not the meter's
    assert len(tampered.evidence) == 32 and tampered.evidence != base.evidence
    assert tampered.energy_balance_wh - base.energy_balance_wh == pytest.approx(lie_wh, rel=0.02)


def test_with_exact_sensors_the_energy_balance_closes_and_a_lie_opens_it_by_its_size():
    """Every case33bw load is a prosumer's, so substation energy - losses = metered net load, up to the
    difference between losses of the interval's mean flows and the mean of its steps' losses (a few Wh)."""
    study, auditor, intervals = _run(noise=False)
    for k, (sensors, readings, _) in enumerate(intervals):
        assert abs(auditor.check(k, sensors, readings).energy_balance_wh) < 25.0
    sensors, readings, _ = intervals[0]
    lie_wh = 5000
    lied = auditor.check(0, sensors, {**readings, 3: (readings[3][0] - lie_wh, readings[3][1])})
    assert lied.energy_balance_wh == pytest.approx(lie_wh, abs=50.0)


def test_a_late_reading_is_forecast_first_and_the_interval_redone_when_it_comes(honest):
    """Asefi et al.: estimate with what has arrived, the last reading as forecast; redo with the late one."""
    study, auditor, intervals = honest
    sensors, readings, _ = intervals[2]
    early = auditor.check(2, sensors, {i: r for i, r in readings.items() if i != 7})
    assert early.missing == (7,) and early.flagged == {}
    lie_wh = round(0.2 * auditor.rating_mw[7] * W_PER_MW * study.market_interval_s / 3600)
    redone = auditor.check(2, sensors, {**readings, 7: (readings[7][0], readings[7][1] + lie_wh)})
    assert redone.missing == () and list(redone.flagged) == [7]


def test_a_bypass_flows_in_the_power_flow_and_the_meter_that_misses_it_is_flagged():
    _, auditor, intervals = _run(bypass_share=0.1)
    for k, (sensors, readings, _) in enumerate(intervals):
        assert list(auditor.check(k, sensors, readings).flagged) == [BYPASSED]


def test_a_sensor_on_a_line_the_feeder_lacks_is_refused():
    study = parse_study(STUDY)
    spec = study.audit.sensors.model_copy(update={"lines": [3, 99]})
    with pytest.raises(ValueError, match=r"audit.sensors.lines = \[3, 99\]: no line \[99\] in the feeder; its lines are 0 to 36"):
        gs.sensor_set(build_scenario(study).net, spec)


def test_with_the_substation_alone_a_lie_is_detected_but_nobody_is_blamed():
    """Every meter's injection shares the substation's one redundancy: their rᴺ tie, so flagging any would be a
    guess; the chi-squared test and the energy balance still see the lie."""
    study, auditor, intervals = _run(audit={})
    sensors, readings, _ = intervals[1]
    lie_wh = round(0.3 * auditor.rating_mw[5] * W_PER_MW * study.market_interval_s / 3600)
    base = auditor.check(1, sensors, readings)
    tampered = auditor.check(1, sensors, {**readings, 5: (readings[5][0], readings[5][1] + lie_wh)})
    assert not base.bad_data and tampered.bad_data and tampered.flagged == {}
    assert tampered.energy_balance_wh - base.energy_balance_wh == pytest.approx(lie_wh, rel=0.02)
