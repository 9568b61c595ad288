"""Smart inverters in the grid federate: settings from the DER federate, curves inside the power flow, metering.

No HELICS: the DER agents' settings message and the feeder's (`gridledger.agents.feeder`)
functions are called directly on the pv-overvoltage scenario at noon.
"""

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest

from gridledger.agents.der_agents import DerAgents
from gridledger.agents.feeder import actual_output, bus_net_load, injections, install_inverters
from gridledger.grids.inverter import VOLT_VAR_CAT_B, Inverter, VoltVarCurve, VoltWattCurve, inverter_output
from gridledger.grids.powerflow import PowerFlow
from gridledger.scenario import build_scenario
from gridledger.study import load_study, parse_study
from tests.secret_helpers import fixed_secret

SECRET = fixed_secret(42)
NOON_STEP = 36  # 12:00 in a study starting 09:00 with 5-min steps


def scenario(volt_var: bool, volt_watt: bool):
    data = load_study("studies/pv-overvoltage.yaml").model_dump(mode="json")
    data["prosumers"]["pv"]["inverter"] = {"volt_var": volt_var, "volt_watt": volt_watt, "kva_per_kwp": 1.1}
    return build_scenario(parse_study(data), with_devices=True)


def noon(sc, settings=None):
    agents = DerAgents(sc, SECRET)
    if settings is None:
        settings = agents.inverter_settings()
    if settings is not None:
        install_inverters(sc, settings)
    for step in range(NOON_STEP + 1):  # agents step in order (batteries, EVs)
        setpoints = agents.setpoints(step)
    inj = injections(sc, NOON_STEP, setpoints)
    result = PowerFlow(sc.net, backend="pandapower").step(inj)
    return agents, settings, setpoints, inj, result


def test_der_federate_sends_no_settings_when_the_curves_are_off():
    assert DerAgents(scenario(False, False), SECRET).inverter_settings() is None


def test_settings_carry_the_study_curves_category_b_by_default():
    settings = DerAgents(scenario(True, False), SECRET).inverter_settings()
    assert VoltVarCurve(**settings["volt_var"]) == VOLT_VAR_CAT_B
    assert settings["volt_watt"] is None


def test_custom_curve_points_reach_the_inverters():
    data = load_study("studies/pv-overvoltage.yaml").model_dump(mode="json")
    data["prosumers"]["pv"]["inverter"] = {"volt_var": True, "volt_var_curve": {"v3_pu": 1.01, "v4_pu": 1.05}}
    sc = build_scenario(parse_study(data), with_devices=True)
    controller = install_inverters(sc, DerAgents(sc, SECRET).inverter_settings())
    assert {inv.volt_var.v4_pu for inv in controller.inverters} == {1.05}


def test_settings_carry_every_pv_inverters_rating():
    sc = scenario(True, True)
    settings = DerAgents(sc, SECRET).inverter_settings()
    with_pv = [p for p in sc.prosumers if p.pv_kwp > 0]
    assert settings["prosumers"] == [p.name for p in with_pv]
    np.testing.assert_allclose(settings["s_rated_kva"], [1.1 * p.pv_kwp for p in with_pv])
    np.testing.assert_allclose(settings["p_rated_kw"], [p.pv_kwp for p in with_pv])


def test_every_pv_lands_on_its_curves_at_its_own_bus_voltage():
    sc = scenario(True, True)
    _, settings, setpoints, inj, result = noon(sc)
    assert result.converged
    net = sc.net
    _, actual = actual_output(sc, inj, setpoints, result.converged)
    for i, p in enumerate(sc.prosumers):
        if p.pv_kwp == 0:
            continue
        row = sc.devices.sgen[p.name]
        vm = float(net.res_bus.vm_pu.at[net.sgen.bus.at[row]])
        inverter_index = settings["prosumers"].index(p.name)
        inverter = Inverter(settings["s_rated_kva"][inverter_index], settings["p_rated_kw"][inverter_index],
                            volt_var=VoltVarCurve(**settings["volt_var"]),
                            volt_watt=VoltWattCurve(**settings["volt_watt"]))
        p_kw, q_kvar = inverter_output(setpoints["pv_p_mw"][i] * 1000.0, vm, inverter)
        assert float(net.res_sgen.p_mw.at[row]) * 1000.0 == pytest.approx(float(p_kw), abs=0.05)
        assert float(net.res_sgen.q_mvar.at[row]) * 1000.0 == pytest.approx(float(q_kvar), abs=0.05)
        assert actual["pv_p_mw"][i] == pytest.approx(float(net.res_sgen.p_mw.at[row]))


def test_inverters_lower_the_noon_peak_voltage():
    *_, without = noon(scenario(False, False))
    *_, with_curves = noon(scenario(True, True))
    assert float(np.max(without.vm_pu)) > 1.05
    assert float(np.max(with_curves.vm_pu)) < float(np.max(without.vm_pu)) - 0.01


def test_recorded_bus_loads_reproduce_the_voltages_in_an_independent_power_flow():
    """What the grid federate records (actual P and the inverters' Q per bus) solves to the same voltages."""
    sc = scenario(True, True)
    _, _, setpoints, inj, result = noon(sc)
    recorded, _ = actual_output(sc, inj, setpoints, result.converged)
    p_mw, q_mvar = bus_net_load(sc.net, recorded)
    net = pn.case33bw()
    net.load.drop(net.load.index, inplace=True)
    for bus in net.bus.index:
        pp.create_load(net, bus, p_mw=0.0, q_mvar=0.0)
    net.load["p_mw"], net.load["q_mvar"] = p_mw, q_mvar
    pp.runpp(net, numba=False)
    np.testing.assert_allclose(net.res_bus.vm_pu.values, result.vm_pu, atol=1e-5)
    assert np.any(np.abs(q_mvar) > 0.01)
