"""Tap changer and capacitor controllers inside PowerFlow steps."""

import copy

import numpy as np
import pandapower
import pytest

from gridledger.grids.controls import DelayedTapControl, SwitchedCapacitor, add_oltc, add_switched_capacitor
from gridledger.grids.feeders import load_feeder
from gridledger.grids.powerflow import Injections, PowerFlow

MARGIN_PU = 1e-4


@pytest.fixture(scope="module")
def pristine():
    """20/0.4 kV substation (taps -2..2 of 2.5 % on the HV side) feeding one cable and load."""
    net = pandapower.create_empty_network()
    mv, lv, end = (pandapower.create_bus(net, vn_kv=kv) for kv in (20.0, 0.4, 0.4))
    pandapower.create_ext_grid(net, mv)
    pandapower.create_transformer(net, mv, lv, std_type="0.4 MVA 20/0.4 kV")
    pandapower.create_line(net, lv, end, length_km=0.3, std_type="NAYY 4x150 SE")
    pandapower.create_load(net, end, p_mw=0.2, q_mvar=0.05)
    return net


@pytest.fixture
def net(pristine):
    return copy.deepcopy(pristine)


@pytest.fixture(scope="module")
def vm_untapped(pristine):
    """Voltages at tap 0 without control: LV busbar and feeder end. [pu]"""
    net = copy.deepcopy(pristine)
    result = PowerFlow(net).step(Injections.from_net(net))
    return result.vm_pu[1], result.vm_pu[2]


def run(net, steps, injections=None):
    flow = PowerFlow(net)
    base = Injections.from_net(net)
    taps, results = [], []
    for k in range(steps):
        results.append(flow.step(base if injections is None else injections[k]))
        taps.append(int(net.trafo.at[0, "tap_pos"]))
    return taps, results


def scaled(net, factors):
    base = Injections.from_net(net)
    return [Injections(base.load_p_mw * f, base.load_q_mvar * f, base.sgen_p_mw, base.storage_p_mw)
            for f in factors]


def test_tap_moves_only_after_the_delay(net, vm_untapped):
    busbar, _ = vm_untapped
    controller = add_oltc(net, 0, vm_set_pu=busbar + 0.015 + MARGIN_PU, deadband_pu=0.015, delay_steps=2)
    taps, results = run(net, 6)
    # Three steps below the band: count 1, 2, then 3 > 2 moves the HV tap down (raises LV
    # by 2.5 %, inside the 3 % wide band).
    assert taps == [0, 0, -1, -1, -1, -1]
    assert results[2].vm_pu[1] > results[1].vm_pu[1] + 0.02
    assert controller.steps_outside == 0


def test_result_of_the_moving_step_is_solved_after_the_move(net, vm_untapped):
    add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=0)
    _, results = run(net, 1)
    reference = copy.deepcopy(net)
    pandapower.runpp(reference)
    assert results[0].vm_pu == pytest.approx(reference.res_bus["vm_pu"].to_numpy(), abs=1e-9)


def test_no_move_inside_the_deadband_however_long(net, vm_untapped):
    busbar, _ = vm_untapped
    add_oltc(net, 0, vm_set_pu=busbar + 0.01 - MARGIN_PU, deadband_pu=0.01, delay_steps=0)
    taps, _ = run(net, 5)
    assert taps == [0] * 5


@pytest.mark.parametrize("vm_pu, outside", [
    (0.99, False), (1.01, False), (np.nextafter(0.99, 0.0), True), (np.nextafter(1.01, 2.0), True),
])
def test_band_edges_are_inside(net, vm_pu, outside):
    controller = add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=0)
    pandapower.runpp(net, run_control=False)
    net.res_bus.at[1, "vm_pu"] = vm_pu
    controller.initialize_control(net)
    assert controller.is_converged(net) is not outside
    assert controller.is_converged(net)  # decided once per step


def test_zero_delay_moves_every_step_until_inside(net, vm_untapped):
    busbar, _ = vm_untapped
    add_oltc(net, 0, vm_set_pu=busbar + 0.08, deadband_pu=0.005, delay_steps=0)
    taps, results = run(net, 4)
    assert taps == [-1, -2, -2, -2]  # -2 is tap_min: the band is out of reach
    assert results[-1].vm_pu[1] < busbar + 0.08 - 0.005


def test_count_restarts_when_the_voltage_returns_inside(net, vm_untapped):
    busbar, _ = vm_untapped
    controller = add_oltc(net, 0, vm_set_pu=busbar + 0.015 + MARGIN_PU, deadband_pu=0.015, delay_steps=2)
    # Light load lifts the busbar into the band at the third step.
    taps, _ = run(net, 6, scaled(net, [1.0, 1.0, 0.2, 1.0, 1.0, 1.0]))
    assert taps == [0, 0, 0, 0, 0, -1]
    assert controller.steps_outside == 0


def test_controllers_false_keeps_the_fast_path(net, vm_untapped, monkeypatch):
    busbar, _ = vm_untapped
    add_oltc(net, 0, vm_set_pu=busbar + 0.05, deadband_pu=0.005, delay_steps=0)
    calls = []
    real = pandapower.runpp
    monkeypatch.setattr(pandapower, "runpp", lambda n, **kw: calls.append(kw) or real(n, **kw))
    flow = PowerFlow(net, controllers=False)
    for _ in range(3):
        flow.step(Injections.from_net(net))
    assert net.trafo.at[0, "tap_pos"] == 0
    assert not any(call.get("run_control") for call in calls)
    assert "recycle" in calls[-1]


def test_controller_runs_inside_runpp(net, monkeypatch):
    add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=1)
    calls = []
    real = pandapower.runpp
    monkeypatch.setattr(pandapower, "runpp", lambda n, **kw: calls.append(kw) or real(n, **kw))
    run(net, 2)
    assert [call.get("run_control") for call in calls] == [True, True]
    assert [call.get("init") for call in calls] == ["dc", "results"]


def test_oltc_needs_a_tap_changer_and_sane_settings(net):
    cigre = load_feeder("cigre-mv")
    with pytest.raises(ValueError, match="no tap changer"):
        add_oltc(cigre, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=1)
    with pytest.raises(ValueError, match="deadband_pu"):
        add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=-0.01, delay_steps=1)
    with pytest.raises(ValueError, match="delay_steps"):
        add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=1.5)
    with pytest.raises(ValueError, match="no row"):
        add_oltc(net, 7, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=1)


def test_oltc_is_a_pandapower_discrete_tap_control(net):
    controller = add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=1)
    assert isinstance(controller, pandapower.control.DiscreteTapControl)
    assert isinstance(controller, DelayedTapControl)
    assert net.controller.at[controller.index, "object"] is controller
    assert (controller.vm_lower_pu, controller.vm_upper_pu) == pytest.approx((0.99, 1.01))


def test_capacitor_switches_on_just_below_its_threshold(net, vm_untapped):
    _, end = vm_untapped
    controller = add_switched_capacitor(net, 2, q_mvar=0.05, v_on_pu=end + MARGIN_PU, v_off_pu=1.05)
    assert net.shunt.at[controller.shunt_index, "q_mvar"] == -0.05
    _, results = run(net, 3)
    assert controller.is_on(net)
    assert results[0].vm_pu[2] > end + 0.002
    # The bank supplies q_mvar times the voltage squared.
    assert net.res_shunt.at[controller.shunt_index, "q_mvar"] == pytest.approx(-0.05 * results[0].vm_pu[2] ** 2)


def test_capacitor_stays_off_just_above_its_threshold(net, vm_untapped):
    _, end = vm_untapped
    controller = add_switched_capacitor(net, 2, q_mvar=0.05, v_on_pu=end - MARGIN_PU, v_off_pu=1.05)
    run(net, 3)
    assert not controller.is_on(net)


def test_capacitor_switches_off_above_its_off_threshold_only(net, vm_untapped):
    _, end = vm_untapped
    controller = add_switched_capacitor(net, 2, q_mvar=0.05, v_on_pu=end + MARGIN_PU, v_off_pu=1.05)
    flow = PowerFlow(net)
    base = Injections.from_net(net)
    vm_on = flow.step(base).vm_pu[2]
    assert controller.is_on(net)
    controller.v_off_pu = vm_on + MARGIN_PU
    flow.step(base)
    assert controller.is_on(net)
    controller.v_off_pu = vm_on - MARGIN_PU
    off = flow.step(base)
    assert not controller.is_on(net)
    assert off.vm_pu[2] == pytest.approx(end, abs=1e-9)


def test_capacitor_switches_once_per_step(net, vm_untapped):
    _, end = vm_untapped
    # Thresholds closer than the bank's own voltage rise: it toggles every step, never twice in one.
    controller = add_switched_capacitor(net, 2, q_mvar=0.05, v_on_pu=end + MARGIN_PU, v_off_pu=end + 2 * MARGIN_PU)
    states = []
    flow = PowerFlow(net)
    for _ in range(4):
        flow.step(Injections.from_net(net))
        states.append(controller.is_on(net))
    assert states == [True, False, True, False]


def test_capacitor_settings_are_checked(net):
    with pytest.raises(ValueError, match="q_mvar"):
        add_switched_capacitor(net, 2, q_mvar=-0.05, v_on_pu=0.95, v_off_pu=1.05)
    with pytest.raises(ValueError, match="below v_off_pu"):
        add_switched_capacitor(net, 2, q_mvar=0.05, v_on_pu=1.05, v_off_pu=0.95)
    with pytest.raises(ValueError, match="no row"):
        add_switched_capacitor(net, 9, q_mvar=0.05, v_on_pu=0.95, v_off_pu=1.05)
    assert isinstance(add_switched_capacitor(net, 2, 0.05, 0.95, 1.05), SwitchedCapacitor)


def test_unbalanced_feeder_rejects_controllers(net):
    pandapower.create_asymmetric_load(net, 2, p_a_mw=0.01)
    add_oltc(net, 0, vm_set_pu=1.0, deadband_pu=0.01, delay_steps=1)
    with pytest.raises(ValueError, match="controllers"):
        PowerFlow(net)


def test_tap_controller_works_on_a_simbench_substation():
    net = load_feeder("1-MV-urban--0-sw")
    for trafo in net.trafo.index:
        add_oltc(net, trafo, vm_set_pu=1.0, deadband_pu=0.0075, delay_steps=1)
    flow = PowerFlow(net)
    base = Injections.from_net(net)
    start = net.trafo["tap_pos"].to_numpy(copy=True)
    results = [flow.step(base) for _ in range(6)]
    lv = net.bus.index.get_indexer(net.trafo["lv_bus"])
    # At the published taps (-1) busbar 2 is above the band (1.0189 pu), busbar 3 inside (1.0033 pu).
    assert results[0].vm_pu[lv] == pytest.approx([1.0189, 1.0033], abs=1e-4)
    assert (net.trafo["tap_pos"].to_numpy() - start).tolist() == [1, 0]
    assert np.all(np.abs(results[-1].vm_pu[lv] - 1.0) <= 0.0075)
