"""IEEE 1547-2018 volt-var and volt-watt inverters: curves, kVA priority, control inside the power flow."""

import copy
import dataclasses
import math

import numpy as np
import pandapower
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridledger.grids.feeders import load_feeder
from gridledger.grids.inverter import (
    VOLT_VAR_CAT_B, VOLT_WATT_CAT_B, Inverter, VoltVarCurve, VoltWattCurve, inverter_output, volt_var_q_pu,
    volt_watt_p_limit_pu,
)
from gridledger.grids.inverter_control import InverterController, add_inverter_control
from gridledger.grids.powerflow import Injections, PowerFlow

FAR_END_BUSES = (15, 16, 17, 31, 32)
"""Last buses of case33bw's two long laterals (0-based)."""

voltages = st.floats(0.5, 1.5)


@pytest.mark.parametrize("vm_pu, q_pu", [
    (0.92, 0.44), (0.98, 0.0), (1.00, 0.0), (1.02, 0.0), (1.08, -0.44),
])
def test_volt_var_at_the_category_b_points(vm_pu, q_pu):
    assert volt_var_q_pu(vm_pu) == q_pu


@pytest.mark.parametrize("vm_pu, q_pu", [
    (0.95, 0.22), (0.935, 0.33), (1.05, -0.22), (1.065, -0.33), (0.99, 0.0), (1.01, 0.0),
])
def test_volt_var_is_linear_between_the_points(vm_pu, q_pu):
    assert volt_var_q_pu(vm_pu) == pytest.approx(q_pu, abs=1e-12)


def test_volt_var_is_flat_beyond_the_end_points():
    assert volt_var_q_pu([0.0, 0.5, 0.9199]).tolist() == [0.44, 0.44, 0.44]
    assert volt_var_q_pu([1.0801, 1.2, 3.0]).tolist() == [-0.44, -0.44, -0.44]


@pytest.mark.parametrize("vm_pu, p_limit_pu", [
    (1.06, 1.0), (1.10, 0.2), (1.08, 0.6), (1.07, 0.8), (1.00, 1.0), (0.90, 1.0), (1.15, 0.2),
])
def test_volt_watt_at_the_category_b_points(vm_pu, p_limit_pu):
    assert volt_watt_p_limit_pu(vm_pu) == pytest.approx(p_limit_pu, abs=1e-12)


def test_defaults_are_ieee_1547_category_b():
    assert dataclasses.astuple(VOLT_VAR_CAT_B) == (0.92, 0.44, 0.98, 0.0, 1.02, 0.0, 1.08, -0.44)
    assert dataclasses.astuple(VOLT_WATT_CAT_B) == (1.06, 1.10, 0.2)
    inverter = Inverter(s_rated_kva=10.0, p_rated_kw=9.0)
    assert inverter.volt_var is VOLT_VAR_CAT_B and inverter.volt_watt is VOLT_WATT_CAT_B


def test_configured_curves_move_the_points():
    curve = VoltVarCurve(v1_pu=0.90, q1_pu=0.3, v2_pu=1.0, q2_pu=0.0, v3_pu=1.0, q3_pu=0.0, v4_pu=1.1, q4_pu=-0.3)
    assert volt_var_q_pu([0.90, 0.95, 1.0, 1.05, 1.1], curve) == pytest.approx([0.3, 0.15, 0.0, -0.15, -0.3])
    assert volt_watt_p_limit_pu([1.05, 1.075, 1.10], VoltWattCurve(v1_pu=1.05, v2_pu=1.10, p2_pu=0.0)) \
        == pytest.approx([1.0, 0.5, 0.0])


@st.composite
def volt_var_curves(draw):
    v = sorted(draw(st.lists(st.floats(0.8, 1.2), min_size=4, max_size=4, unique=True)))
    q = sorted(draw(st.lists(st.floats(-1.0, 1.0), min_size=4, max_size=4)), reverse=True)
    return VoltVarCurve(v[0], q[0], v[1], q[1], v[2], q[2], v[3], q[3])


@st.composite
def volt_watt_curves(draw):
    v1 = draw(st.floats(1.0, 1.1))
    return VoltWattCurve(v1_pu=v1, v2_pu=v1 + draw(st.floats(0.005, 0.1)), p2_pu=draw(st.floats(0.0, 1.0)))


@st.composite
def inverters(draw):
    s_rated_kva = draw(st.floats(1.0, 500.0))
    return Inverter(
        s_rated_kva=s_rated_kva,
        p_rated_kw=s_rated_kva * draw(st.floats(0.01, 1.0)),
        volt_var=draw(st.one_of(st.none(), st.just(VOLT_VAR_CAT_B), volt_var_curves())),
        volt_watt=draw(st.one_of(st.none(), st.just(VOLT_WATT_CAT_B), volt_watt_curves())),
    )


@given(volt_var_curves(), voltages, voltages)
def test_volt_var_never_rises_with_voltage(curve, a_pu, b_pu):
    low, high = sorted((a_pu, b_pu))
    assert volt_var_q_pu(high, curve) <= volt_var_q_pu(low, curve)
    assert -1.0 <= volt_var_q_pu(low, curve) <= 1.0


@given(volt_watt_curves(), voltages, voltages)
def test_volt_watt_limit_never_rises_with_voltage(curve, a_pu, b_pu):
    low, high = sorted((a_pu, b_pu))
    assert volt_watt_p_limit_pu(high, curve) <= volt_watt_p_limit_pu(low, curve)
    assert curve.p2_pu <= volt_watt_p_limit_pu(low, curve) <= 1.0


@given(inverters(), st.floats(0.0, 2.0), voltages)
def test_output_stays_in_the_kva_circle_and_below_the_available_power(inverter, share, vm_pu):
    p_available_kw = share * inverter.p_rated_kw
    p_kw, q_kvar = inverter_output(p_available_kw, vm_pu, inverter)
    assert 0.0 <= p_kw <= min(p_available_kw, inverter.p_rated_kw)
    assert math.hypot(p_kw, q_kvar) <= inverter.s_rated_kva * (1 + 1e-12)
    if inverter.volt_watt is not None:
        assert p_kw <= volt_watt_p_limit_pu(vm_pu, inverter.volt_watt) * inverter.p_rated_kw * (1 + 1e-12)
    # Reactive power priority: the volt-var value is delivered whatever the active power.
    q_pu = 0.0 if inverter.volt_var is None else volt_var_q_pu(vm_pu, inverter.volt_var)
    assert q_kvar == q_pu * inverter.s_rated_kva


@pytest.mark.parametrize("vm_pu, p_kw, q_kvar", [
    (1.00, 100.0, 0.0),                      # inside the deadband: all available power
    (0.92, math.sqrt(100**2 - 44**2), 44.0),  # kVA limit: active power yields to reactive power
    (1.05, math.sqrt(100**2 - 22**2), -22.0),
    (1.08, 60.0, -44.0),                     # volt-watt (0.6) binds before the kVA limit (89.8 kW)
])
def test_reactive_power_has_priority_at_the_kva_limit(vm_pu, p_kw, q_kvar):
    inverter = Inverter(s_rated_kva=100.0, p_rated_kw=100.0)
    p, q = inverter_output(100.0, vm_pu, inverter)
    assert (p, q) == pytest.approx((p_kw, q_kvar), abs=1e-9)


def test_inverter_sized_for_full_reactive_power_never_curtails_for_it():
    # p_rated = sqrt(1 - 0.44**2) * s_rated leaves room for 0.44 pu at rated active power.
    inverter = Inverter(s_rated_kva=100.0, p_rated_kw=math.sqrt(100**2 - 44**2))
    p, q = inverter_output(200.0, [0.92, 1.0], inverter)
    assert p == pytest.approx([inverter.p_rated_kw] * 2)
    assert q == pytest.approx([44.0, 0.0])


def test_disabled_curves():
    neither = Inverter(s_rated_kva=100.0, p_rated_kw=90.0, volt_var=None, volt_watt=None)
    assert inverter_output([50.0, 120.0], 1.2, neither) == (pytest.approx([50.0, 90.0]), pytest.approx([0.0, 0.0]))
    volt_watt_only = dataclasses.replace(neither, volt_watt=VOLT_WATT_CAT_B)
    assert inverter_output(90.0, 1.08, volt_watt_only) == (pytest.approx(54.0), pytest.approx(0.0))


@pytest.mark.parametrize("p_available_kw", [-1.0, math.nan, math.inf])
def test_available_power_must_be_finite_and_non_negative(p_available_kw):
    with pytest.raises(ValueError, match="p_available_kw"):
        inverter_output(p_available_kw, 1.0, Inverter(10.0, 10.0))


@pytest.mark.parametrize("cls, fields, field", [
    (VoltVarCurve, {"v1_pu": 0.0}, "v1_pu"),
    (VoltVarCurve, {"v1_pu": math.nan}, "v1_pu"),
    (VoltVarCurve, {"v2_pu": 0.92}, "v2_pu"),
    (VoltVarCurve, {"v3_pu": 0.97}, "v3_pu"),
    (VoltVarCurve, {"v4_pu": 1.02}, "v4_pu"),
    (VoltVarCurve, {"q1_pu": 1.2}, "q1_pu"),
    (VoltVarCurve, {"q4_pu": -1.01}, "q4_pu"),
    (VoltVarCurve, {"q3_pu": 0.1}, "q3_pu"),
    (VoltVarCurve, {"q2_pu": 0.5}, "q2_pu"),
    (VoltVarCurve, {"q4_pu": "-0.44"}, "q4_pu"),
    (VoltWattCurve, {"v1_pu": -1.06}, "v1_pu"),
    (VoltWattCurve, {"v2_pu": 1.06}, "v2_pu"),
    (VoltWattCurve, {"p2_pu": 1.5}, "p2_pu"),
    (VoltWattCurve, {"p2_pu": -0.1}, "p2_pu"),
    (VoltWattCurve, {"v2_pu": math.inf}, "v2_pu"),
])
def test_invalid_curve_settings_name_the_field(cls, fields, field):
    with pytest.raises(ValueError, match=field):
        cls(**fields)


def test_volt_var_deadband_may_close():
    # V2 = V3 = VRef is within the standard's ranges: the slopes meet at 1.0 pu.
    curve = VoltVarCurve(v2_pu=1.0, v3_pu=1.0)
    assert volt_var_q_pu([0.99, 1.0, 1.01], curve) == pytest.approx([0.055, 0.0, -0.055], abs=1e-12)


@pytest.mark.parametrize("s_rated_kva, p_rated_kw, field", [
    (0.0, 0.0, "s_rated_kva"), (math.nan, 1.0, "s_rated_kva"), (10.0, 0.0, "p_rated_kw"), (10.0, 10.5, "p_rated_kw"),
])
def test_invalid_ratings_name_the_field(s_rated_kva, p_rated_kw, field):
    with pytest.raises(ValueError, match=field):
        Inverter(s_rated_kva, p_rated_kw)


@pytest.fixture(scope="module")
def pristine_sunny_feeder():
    """case33bw at half load with 0.6 MW of PV on each far-end bus: 1.079 pu without control."""
    net = load_feeder("case33bw")
    net.load[["p_mw", "q_mvar"]] *= 0.5
    for bus in FAR_END_BUSES:
        pandapower.create_sgen(net, bus, p_mw=0.6, q_mvar=0.0, sn_mva=0.6, type="PV")
    return net


@pytest.fixture
def sunny_feeder(pristine_sunny_feeder):
    return copy.deepcopy(pristine_sunny_feeder)


@pytest.fixture(scope="module")
def vm_uncontrolled_pu(pristine_sunny_feeder):
    net = copy.deepcopy(pristine_sunny_feeder)
    pandapower.runpp(net, numba=False)
    return net.res_bus["vm_pu"].to_numpy()


def assert_on_curves(net, controller, atol=0.011):
    """Every controlled sgen's result is its inverter's output at its own solved bus voltage."""
    vm_pu = net.res_bus.loc[net.sgen.loc[controller.sgen_index, "bus"], "vm_pu"].to_numpy()
    p_kw = net.res_sgen.loc[controller.sgen_index, "p_mw"].to_numpy() * 1e3
    q_kvar = net.res_sgen.loc[controller.sgen_index, "q_mvar"].to_numpy() * 1e3
    for k, inverter in enumerate(controller.inverters):
        expected = inverter_output(controller.p_available_kw[k], vm_pu[k], inverter)
        assert (p_kw[k], q_kvar[k]) == pytest.approx(expected, abs=atol)


def test_inverters_converge_on_their_curves_inside_runpp(sunny_feeder, vm_uncontrolled_pu):
    net = sunny_feeder
    assert vm_uncontrolled_pu.max() == pytest.approx(1.0793, abs=1e-4)
    controller = add_inverter_control(net, net.sgen.index)
    pandapower.runpp(net, run_control=True, numba=False)
    assert 0 < controller.iterations < 30
    assert_on_curves(net, controller)
    vm = net.res_bus["vm_pu"].to_numpy()
    assert vm.max() < vm_uncontrolled_pu.max() - 0.02
    assert vm.max() == pytest.approx(1.0548, abs=1e-4)
    # Every far-end inverter absorbs reactive power; the farthest ones are curtailed too.
    assert np.all(net.res_sgen["q_mvar"] < 0.0)
    assert net.res_sgen.loc[[0, 1], "p_mw"].max() < 0.59


def test_table_keeps_the_available_power_so_power_flows_repeat(sunny_feeder):
    net = sunny_feeder
    controller = add_inverter_control(net, net.sgen.index)
    pandapower.runpp(net, run_control=True, numba=False)
    first = net.res_sgen[["p_mw", "q_mvar"]].to_numpy(copy=True)
    assert net.sgen["p_mw"].tolist() == [0.6] * 5
    pandapower.runpp(net, run_control=True, numba=False)
    assert net.res_sgen[["p_mw", "q_mvar"]].to_numpy() == pytest.approx(first, abs=2e-5)
    assert controller.p_available_kw == pytest.approx([600.0] * 5)


def test_powerflow_runs_the_inverters_every_step(sunny_feeder, vm_uncontrolled_pu):
    net = sunny_feeder
    controller = add_inverter_control(net, net.sgen.index)
    flow = PowerFlow(net)
    base = Injections.from_net(net)
    for share in (1.0, 0.5, 0.8, 1.0):
        result = flow.step(dataclasses.replace(base, sgen_p_mw=base.sgen_p_mw * share))
        assert result.converged
        assert controller.p_available_kw == pytest.approx([600.0 * share] * 5)
        assert_on_curves(net, controller)
    assert result.vm_pu.max() < vm_uncontrolled_pu.max() - 0.02
    assert result.vm_pu.max() == pytest.approx(1.0548, abs=1e-4)


@pytest.mark.parametrize("backend", ["pandapower", "lightsim2grid"])
def test_powerflow_backends_agree_with_runpp(sunny_feeder, backend):
    reference = copy.deepcopy(sunny_feeder)
    add_inverter_control(reference, reference.sgen.index)
    pandapower.runpp(reference, run_control=True, numba=False, lightsim2grid=False)
    net = sunny_feeder
    add_inverter_control(net, net.sgen.index)
    result = PowerFlow(net, backend=backend).step(Injections.from_net(net))
    assert result.vm_pu == pytest.approx(reference.res_bus["vm_pu"].to_numpy(), abs=1e-5)


def test_new_settings_apply_from_the_next_power_flow(sunny_feeder):
    net = sunny_feeder
    controller = add_inverter_control(net, net.sgen.index)
    flow = PowerFlow(net)
    flow.step(Injections.from_net(net))
    controller.inverters = [dataclasses.replace(inverter, volt_var=None) for inverter in controller.inverters]
    flow.step(Injections.from_net(net))
    assert net.res_sgen["q_mvar"].abs().max() < 1e-5
    assert_on_curves(net, controller)


def test_steep_response_on_a_weak_feeder_converges_within_pandapowers_iterations():
    # Tenth load and 1.5 MW at each far-end bus: 1.24 pu uncontrolled. A plain fixed-point
    # iteration overshoots here; the secant step size brings it in.
    net = load_feeder("case33bw")
    net.load[["p_mw", "q_mvar"]] *= 0.1
    for bus in FAR_END_BUSES:
        pandapower.create_sgen(net, bus, p_mw=1.5, sn_mva=1.5, type="PV")
    controller = add_inverter_control(net, net.sgen.index)
    pandapower.runpp(net, run_control=True, numba=False)
    assert controller.iterations < 30
    assert_on_curves(net, controller)
    assert net.res_bus["vm_pu"].max() < 1.08


def test_controller_is_a_pandapower_controller(sunny_feeder):
    net = sunny_feeder
    controller = InverterController(net, [0, 2], [Inverter(600.0, 550.0)] * 2)
    assert isinstance(controller, pandapower.control.basic_controller.Controller)
    assert net.controller.at[controller.index, "object"] is controller
    assert controller.bus.tolist() == [15, 17]


def test_controller_settings_are_checked(sunny_feeder):
    net = sunny_feeder
    two = [Inverter(600.0, 600.0)] * 2
    with pytest.raises(ValueError, match="no rows"):
        InverterController(net, [0, 9], two)
    with pytest.raises(ValueError, match="repeats"):
        InverterController(net, [0, 0], two)
    with pytest.raises(ValueError, match="one entry per sgen"):
        InverterController(net, [0, 1, 2], two)
    with pytest.raises(ValueError, match="damping"):
        InverterController(net, [0, 1], two, damping=0.0)
    with pytest.raises(ValueError, match="tolerance_kvar"):
        InverterController(net, [0, 1], two, tolerance_kvar=0.0)
    net.sgen.at[1, "scaling"] = 0.5
    with pytest.raises(ValueError, match="scaling"):
        InverterController(net, [0, 1], two)
    net.sgen.at[2, "sn_mva"] = math.nan
    with pytest.raises(ValueError, match="sn_mva"):
        add_inverter_control(net, [2])
    assert net.controller.empty
