"""The feeder (`gridledger.agents.feeder`): setpoints onto element rows, bus net load, inverter output, one step.

No HELICS: the functions are called on the baran-wu-short scenario (32
prosumers on case33bw, 16 with PV, 8 with a battery) and on a three-bus
net built here.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandapower as pp
import pytest

from gridledger.agents.feeder import Feeder, actual_output, bus_net_load, injections, install_inverters
from gridledger.grids.inverter import VOLT_VAR_CAT_B, Inverter
from gridledger.grids.inverter_control import InverterController
from gridledger.grids.powerflow import Injections
from gridledger.scenario import build_scenario
from gridledger.study import load_study, parse_study

STEP = 4


@pytest.fixture
def sc():
    return build_scenario(load_study("studies/baran-wu-short.yaml"), with_devices=True)


def setpoints_of(n: int) -> dict[str, np.ndarray]:
    """Distinct values per prosumer i: load (i+1) kW, 0.1 (i+1) kvar, PV 2 (i+1) kW, battery 0.5 (i+1) kW."""
    i = np.arange(1, n + 1, dtype=float)
    return {"load_p_mw": i * 1e-3, "load_q_mvar": i * 1e-4, "pv_p_mw": 2 * i * 1e-3, "battery_p_mw": 0.5 * i * 1e-3,
            "pv_curtailed_p_mw": np.zeros(n)}


def test_prosumer_setpoints_land_on_their_own_rows(sc):
    inj = injections(sc, STEP, setpoints_of(len(sc.prosumers)))
    net = sc.net
    # p02 (position 1) owns load row 1, sgen row 0 and storage row 0: 2 kW load, 4 kW PV, 1 kW battery.
    assert inj.load_p_mw[net.load.index.get_loc(1)] == pytest.approx(2e-3)
    assert inj.load_q_mvar[net.load.index.get_loc(1)] == pytest.approx(2e-4)
    assert inj.sgen_p_mw[net.sgen.index.get_loc(sc.devices.sgen["p02"])] == pytest.approx(4e-3)
    assert inj.storage_p_mw[net.storage.index.get_loc(sc.devices.storage["p02"])] == pytest.approx(1e-3)
    # p31 (position 30) has PV and a battery: PV 62 kW, battery 15.5 kW.
    assert inj.sgen_p_mw[sc.devices.sgen["p31"]] == pytest.approx(62e-3)
    assert inj.storage_p_mw[sc.devices.storage["p31"]] == pytest.approx(15.5e-3)


def test_loads_without_a_prosumer_follow_the_actual_or_the_expected_profile(sc):
    """Prosumers hold load rows 0..31 of case33bw's 32; make row 5 nobody's and it follows the profile."""
    free = sc.prosumers[5]
    sc.prosumers.remove(free)
    n = len(sc.prosumers)
    row = sc.net.load.index.get_loc(free.load_index)
    actual = injections(sc, STEP, setpoints_of(n))
    expected = injections(sc, STEP, setpoints_of(n), loads=sc.loads_expected)
    assert actual.load_p_mw[row] == sc.loads.p_mw[STEP, row]
    assert actual.load_q_mvar[row] == sc.loads.q_mvar[STEP, row]
    assert expected.load_p_mw[row] == sc.loads_expected.p_mw[STEP, row]
    assert sc.loads.p_mw[STEP, row] != sc.loads_expected.p_mw[STEP, row]


def test_injections_leave_the_profiles_untouched(sc):
    before = sc.loads.p_mw[STEP].copy()
    injections(sc, STEP, setpoints_of(len(sc.prosumers)))
    np.testing.assert_array_equal(sc.loads.p_mw[STEP], before)


def three_bus_net():
    """bus 0 (slack) - bus 1 - bus 2; loads on 1 and 2, PV on 1, a battery on 2, an asymmetric load on 1."""
    net = pp.create_empty_network()
    buses = [pp.create_bus(net, vn_kv=0.4) for _ in range(3)]
    pp.create_ext_grid(net, buses[0])
    for a, b in ((0, 1), (1, 2)):
        pp.create_line(net, buses[a], buses[b], length_km=0.1, std_type="NAYY 4x50 SE")
    pp.create_load(net, buses[1], p_mw=0.0)
    pp.create_load(net, buses[2], p_mw=0.0)
    pp.create_sgen(net, buses[1], p_mw=0.0)
    pp.create_storage(net, buses[2], p_mw=0.0, max_e_mwh=0.01)
    pp.create_asymmetric_load(net, buses[1])
    return net


THREE_BUS_INJECTIONS = Injections(
    load_p_mw=np.array([0.010, 0.004]), load_q_mvar=np.array([0.002, 0.001]), sgen_p_mw=np.array([0.006]),
    storage_p_mw=np.array([0.003]), asymmetric_load_p_mw=np.array([0.0015]),
    asymmetric_load_q_mvar=np.array([0.0005]))


def test_bus_net_load_is_load_minus_generation_plus_charging():
    """bus 1: 10 kW load + 1.5 kW asymmetric - 6 kW PV = 5.5 kW; 2 + 0.5 = 2.5 kvar.
    bus 2: 4 kW load + 3 kW charging = 7 kW; 1 kvar. The slack bus carries nothing."""
    p_mw, q_mvar = bus_net_load(three_bus_net(), THREE_BUS_INJECTIONS)
    np.testing.assert_allclose(p_mw, [0.0, 0.0055, 0.007], atol=1e-12)
    np.testing.assert_allclose(q_mvar, [0.0, 0.0025, 0.001], atol=1e-12)


def test_bus_net_load_takes_the_inverters_reactive_power_from_the_last_power_flow():
    """With a controller on the sgen, its solved q (here 2 kvar injected) lowers bus 1's net load: 2.5 - 2 = 0.5 kvar."""
    net = three_bus_net()
    InverterController(net, [0], [Inverter(10.0, 8.0, volt_var=VOLT_VAR_CAT_B)])
    pp.runpp(net, numba=False)
    net.res_sgen.loc[0, "q_mvar"] = 0.002
    _, q_mvar = bus_net_load(net, THREE_BUS_INJECTIONS)
    np.testing.assert_allclose(q_mvar, [0.0, 0.0005, 0.001], atol=1e-12)


def inverter_settings(sc, names):
    """Settings as the DER federate sends them: 1.1 kVA per kWp, volt-var on, volt-watt off."""
    kwp = {p.name: p.pv_kwp for p in sc.prosumers}
    return {"prosumers": names, "s_rated_kva": [1.1 * kwp[n] for n in names], "p_rated_kw": [kwp[n] for n in names],
            "volt_var": dataclasses.asdict(VOLT_VAR_CAT_B), "volt_watt": None}


def test_install_inverters_puts_one_inverter_on_each_named_pv(sc):
    controller = install_inverters(sc, inverter_settings(sc, ["p02", "p06"]))
    assert len(sc.net.controller) == 1
    assert [inv.p_rated_kw for inv in controller.inverters] == [135.0, pytest.approx(300.0)]
    assert [inv.s_rated_kva for inv in controller.inverters] == [pytest.approx(148.5), pytest.approx(330.0)]
    assert {inv.volt_var for inv in controller.inverters} == {VOLT_VAR_CAT_B}
    assert {inv.volt_watt for inv in controller.inverters} == {None}


def test_actual_output_is_the_setpoint_without_controllers_or_convergence(sc):
    setpoints = setpoints_of(len(sc.prosumers))
    inj = injections(sc, STEP, setpoints)
    assert actual_output(sc, inj, setpoints, converged=True) == (inj, setpoints)
    install_inverters(sc, inverter_settings(sc, ["p02"]))
    assert actual_output(sc, inj, setpoints, converged=False) == (inj, setpoints)


def test_actual_output_reads_the_pv_the_inverters_delivered(sc):
    """Where the controller moved a PV (res_sgen), meters see that; prosumers without PV keep their setpoint."""
    setpoints = setpoints_of(len(sc.prosumers))
    inj = injections(sc, STEP, setpoints)
    install_inverters(sc, inverter_settings(sc, ["p02"]))
    sc.net.res_sgen = sc.net.sgen[["p_mw"]].assign(p_mw=inj.sgen_p_mw * 0.5)
    actual_inj, actual = actual_output(sc, inj, setpoints, converged=True)
    # p02 (position 1) set 4 kW, delivered half: 2 kW; p01 (position 0) has no PV and keeps its 2 kW setpoint.
    assert actual["pv_p_mw"][1] == pytest.approx(2e-3)
    assert actual["pv_p_mw"][0] == setpoints["pv_p_mw"][0]
    np.testing.assert_allclose(actual_inj.sgen_p_mw, inj.sgen_p_mw * 0.5)
    assert actual["load_p_mw"] is setpoints["load_p_mw"]


def test_a_feeder_step_solves_and_records_the_prosumers_export(sc):
    feeder = Feeder(sc)
    setpoints = setpoints_of(len(sc.prosumers))
    result = feeder.step(STEP, setpoints)
    record = feeder.record
    assert result.converged and record.converged[STEP] == 1
    assert record.steps_done == STEP + 1
    # prosumer i: export = PV 2(i+1) - load (i+1) - battery 0.5(i+1) = 0.5 (i+1) kW
    np.testing.assert_allclose(record.export_mw[STEP], 0.5e-3 * np.arange(1, 33))
    np.testing.assert_allclose(record.vm_pu[STEP], result.vm_pu)
    assert record.substation["p_mw"][STEP] == result.p_mw
    # The bus net load balances the substation import less the losses.
    assert np.nansum(record.bus_p_mw[STEP]) == pytest.approx(result.p_mw - result.pl_mw, abs=1e-9)
    assert np.isnan(record.vm_pu[STEP + 1]).all()


def test_prosumers_on_an_unbalanced_feeder_set_their_asymmetric_loads_three_phase_total():
    """ieee-eu-lv: every prosumer owns an asymmetric load; p01 (position 0) sets 1 kW, 0.1 kvar on row 0."""
    data = load_study("studies/ieee-eu-lv-p2p.yaml").model_dump(mode="json")
    data["duration_s"] = 3600
    sc = build_scenario(parse_study(data), with_devices=True)
    inj = injections(sc, 0, setpoints_of(len(sc.prosumers)))
    row = sc.net.asymmetric_load.index.get_loc(sc.prosumers[0].load_index)
    assert sc.prosumers[0].load_element == "asymmetric_load"
    assert (inj.asymmetric_load_p_mw[row], inj.asymmetric_load_q_mvar[row]) == (pytest.approx(1e-3),
                                                                                pytest.approx(1e-4))
    assert len(inj.load_p_mw) == 0
