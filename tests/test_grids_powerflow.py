"""PowerFlow against the published Baran-Wu case and against cold runpp."""

import copy

import numpy as np
import pandapower
import pytest

from gridledger.grids.feeders import load_feeder
from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.grids.prosumers import add_prosumer_devices, place_prosumers

RESULT_ARRAYS = ("vm_pu", "va_degree", "loading_percent", "trafo_loading_percent")


@pytest.fixture(scope="module")
def pristine_case33bw():
    return load_feeder("case33bw")


@pytest.fixture
def case33bw(pristine_case33bw):
    return copy.deepcopy(pristine_case33bw)


@pytest.fixture
def feeder_with_devices(case33bw):
    net = case33bw
    prosumers = place_prosumers(
        net, count=32, seed=3, pv_share=0.5, pv_kwp_per_kw_load=2.0,
        battery_share=0.3, battery_kwh_per_kw_load=2.0, battery_kw_per_kwh=0.5,
    )
    add_prosumer_devices(net, prosumers)
    return net


def varied_injections(net, steps, seed):
    """Loads at 20-120 %, PV at 0-100 % of kWp, batteries anywhere in their range."""
    rng = np.random.default_rng(seed)
    peak = Injections.from_net(net)
    pv_mw = net.sgen["sn_mva"].to_numpy()
    battery_mw = net.storage["sn_mva"].to_numpy()
    for _ in range(steps):
        load = rng.uniform(0.2, 1.2, len(net.load))
        yield Injections(
            load_p_mw=peak.load_p_mw * load,
            load_q_mvar=peak.load_q_mvar * load,
            sgen_p_mw=pv_mw * rng.uniform(0.0, 1.0, len(pv_mw)),
            storage_p_mw=battery_mw * rng.uniform(-1.0, 1.0, len(battery_mw)),
        )


def cold_runpp(net, injections):
    """pandapower's own Newton-Raphson from a DC start on a copy of the net."""
    reference = copy.deepcopy(net)
    reference.load["p_mw"] = injections.load_p_mw
    reference.load["q_mvar"] = injections.load_q_mvar
    reference.sgen["p_mw"] = injections.sgen_p_mw
    reference.storage["p_mw"] = injections.storage_p_mw
    pandapower.runpp(reference, init="dc", numba=False, lightsim2grid=False)
    return reference


def _spy_on(monkeypatch, function: str) -> list[dict]:
    """Record the keyword arguments of every call of ``pandapower.<function>``, in order."""
    calls = []
    real = getattr(pandapower, function)

    def spy(net, **kwargs):
        calls.append(kwargs)
        return real(net, **kwargs)

    monkeypatch.setattr(pandapower, function, spy)
    return calls


@pytest.fixture
def runpp_calls(monkeypatch):
    """Keyword arguments of every pandapower.runpp call, in order."""
    return _spy_on(monkeypatch, "runpp")


def test_base_case_matches_baran_wu_1989(case33bw):
    net = case33bw
    result = PowerFlow(net).step(Injections.from_net(net))
    assert result.converged
    assert result.pl_mw * 1e3 == pytest.approx(202.68, abs=0.5)
    assert result.vm_pu.min() == pytest.approx(0.9131, abs=0.0005)
    assert net.bus.index[np.argmin(result.vm_pu)] == 17


def test_base_case_is_identical_to_plain_runpp(case33bw):
    net = case33bw
    plain = copy.deepcopy(net)
    result = PowerFlow(net).step(Injections.from_net(net))
    pandapower.runpp(plain)
    np.testing.assert_allclose(result.vm_pu, plain.res_bus["vm_pu"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.va_degree, plain.res_bus["va_degree"], rtol=0, atol=1e-10)
    np.testing.assert_allclose(result.loading_percent, plain.res_line["loading_percent"], rtol=1e-10)
    assert result.p_mw == pytest.approx(plain.res_ext_grid["p_mw"].sum(), abs=1e-12)
    assert result.q_mvar == pytest.approx(plain.res_ext_grid["q_mvar"].sum(), abs=1e-12)
    assert result.pl_mw == pytest.approx(plain.res_line["pl_mw"].sum(), abs=1e-12)


def test_warm_steps_equal_cold_runpp(feeder_with_devices, runpp_calls):
    net = feeder_with_devices
    flow = PowerFlow(net)
    for injections in varied_injections(net, steps=25, seed=11):
        result = flow.step(injections)
        reference = cold_runpp(net, injections)
        assert result.converged
        np.testing.assert_allclose(result.vm_pu, reference.res_bus["vm_pu"], rtol=0, atol=1e-8)
        np.testing.assert_allclose(result.va_degree, reference.res_bus["va_degree"], rtol=0, atol=1e-6)
        np.testing.assert_allclose(result.loading_percent, reference.res_line["loading_percent"], rtol=1e-6)
        # Newton-Raphson stops at a mismatch of 1e-8 pu on sn_mva = 10 MVA.
        assert result.p_mw == pytest.approx(reference.res_ext_grid["p_mw"].sum(), abs=1e-6)
        assert result.pl_mw == pytest.approx(reference.res_line["pl_mw"].sum(), abs=1e-6)
    own_calls = [call for call in runpp_calls if "lightsim2grid" not in call]
    assert own_calls[0].get("init") == "dc" and "recycle" not in own_calls[0]
    assert all(call.get("init") == "results" and "recycle" in call for call in own_calls[1:])


def test_import_balances_loads_generation_storage_and_losses(feeder_with_devices):
    net = feeder_with_devices
    flow = PowerFlow(net)
    for injections in varied_injections(net, steps=25, seed=5):
        result = flow.step(injections)
        expected = (injections.load_p_mw.sum() - injections.sgen_p_mw.sum()
                    + injections.storage_p_mw.sum() + result.pl_mw)
        assert result.p_mw == pytest.approx(expected, abs=1e-6)
        assert result.pl_mw > 0.0


def test_storage_charging_adds_to_import(feeder_with_devices):
    net = feeder_with_devices
    flow = PowerFlow(net)
    idle = Injections.from_net(net)
    charging = Injections(idle.load_p_mw, idle.load_q_mvar, idle.sgen_p_mw,
                          net.storage["sn_mva"].to_numpy())
    import_idle = flow.step(idle).p_mw
    import_charging = flow.step(charging).p_mw
    assert import_charging - import_idle > 0.99 * charging.storage_p_mw.sum()


def overloaded(base, factor=20.0):
    return Injections(base.load_p_mw * factor, base.load_q_mvar * factor, base.sgen_p_mw, base.storage_p_mw)


def assert_all_nan(result, net):
    assert not result.converged
    for name, size in zip(RESULT_ARRAYS, (len(net.bus), len(net.bus), len(net.line), len(net.trafo))):
        values = getattr(result, name)
        assert values.shape == (size,)
        assert np.isnan(values).all()
    assert np.isnan(result.p_mw) and np.isnan(result.q_mvar) and np.isnan(result.pl_mw)


def test_non_convergence_gives_nan_and_the_next_step_starts_cold(case33bw, runpp_calls):
    net = case33bw
    base = Injections.from_net(net)
    flow = PowerFlow(net)
    first = flow.step(base)
    assert_all_nan(flow.step(overloaded(base)), net)
    again = flow.step(base)
    assert again.converged
    np.testing.assert_allclose(again.vm_pu, first.vm_pu, rtol=0, atol=1e-8)
    assert again.pl_mw == pytest.approx(first.pl_mw, abs=1e-9)
    assert [call.get("init") for call in runpp_calls] == ["dc", "results", "dc"]


def test_non_convergence_on_the_first_step(case33bw, runpp_calls):
    net = case33bw
    base = Injections.from_net(net)
    flow = PowerFlow(net)
    assert_all_nan(flow.step(overloaded(base)), net)
    assert_all_nan(flow.step(overloaded(base)), net)
    result = flow.step(base)
    assert result.converged
    assert result.pl_mw * 1e3 == pytest.approx(202.68, abs=0.5)
    assert [call.get("init") for call in runpp_calls] == ["dc", "dc", "dc"]


def test_feeder_with_transformer_reports_its_loading_and_losses():
    net = pandapower.create_empty_network()
    mv, lv, end = (pandapower.create_bus(net, vn_kv=kv) for kv in (20.0, 0.4, 0.4))
    pandapower.create_ext_grid(net, mv)
    pandapower.create_transformer(net, mv, lv, std_type="0.4 MVA 20/0.4 kV")
    pandapower.create_line(net, lv, end, length_km=0.3, std_type="NAYY 4x150 SE")
    pandapower.create_load(net, end, p_mw=0.2, q_mvar=0.05)
    pandapower.create_sgen(net, end, p_mw=0.05)
    pandapower.create_storage(net, end, p_mw=0.02, max_e_mwh=0.1)
    injections = Injections.from_net(net)
    result = PowerFlow(net).step(injections)
    reference = cold_runpp(net, injections)
    assert result.trafo_loading_percent == pytest.approx(reference.res_trafo["loading_percent"].to_numpy())
    assert result.trafo_loading_percent[0] > 40.0
    assert result.pl_mw == pytest.approx(reference.res_line["pl_mw"].sum() + reference.res_trafo["pl_mw"].sum())
    assert result.p_mw == pytest.approx(0.2 - 0.05 + 0.02 + result.pl_mw, abs=1e-6)


@pytest.mark.parametrize("field, bad", [
    ("load_p_mw", np.ones(31)),
    ("load_q_mvar", np.full(32, np.nan)),
    ("sgen_p_mw", np.ones(1)),
])
def test_bad_injections_are_rejected(case33bw, field, bad):
    net = case33bw
    fields = vars(Injections.from_net(net)) | {field: bad}
    with pytest.raises(ValueError, match=field.split("_")[0]):
        PowerFlow(net).step(Injections(**fields))


# Result fields for both kinds of feeder --------------------------------------------------

def test_balanced_result_repeats_vm_over_phases_without_unbalance(case33bw):
    result = PowerFlow(case33bw).step(Injections.from_net(case33bw))
    assert result.vm_phase_pu.shape == (33, 3)
    for phase in range(3):
        np.testing.assert_array_equal(result.vm_phase_pu[:, phase], result.vm_pu)
    assert not np.isnan(result.vm_phase_pu).any()
    np.testing.assert_array_equal(result.vuf_percent, np.zeros(33))


def test_non_converged_result_has_nan_phases(case33bw):
    base = Injections.from_net(case33bw)
    result = PowerFlow(case33bw).step(overloaded(base))
    assert result.vm_phase_pu.shape == (33, 3) and np.isnan(result.vm_phase_pu).all()
    assert np.isnan(result.vuf_percent).all()


# Solver backends -------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["case33bw", "cigre-mv"])
def test_lightsim2grid_and_pandapower_give_the_same_voltages(name):
    pristine = load_feeder(name)
    sequence = list(varied_injections(pristine, steps=10, seed=2))
    results = {}
    for backend in ("pandapower", "lightsim2grid"):
        flow = PowerFlow(copy.deepcopy(pristine), backend=backend)
        results[backend] = [flow.step(injections) for injections in sequence]
    for ours, theirs in zip(results["pandapower"], results["lightsim2grid"], strict=True):
        assert ours.converged and theirs.converged
        np.testing.assert_allclose(ours.vm_pu, theirs.vm_pu, rtol=0, atol=1e-6)
        np.testing.assert_allclose(ours.loading_percent, theirs.loading_percent, rtol=1e-6)
        assert ours.pl_mw == pytest.approx(theirs.pl_mw, abs=1e-6)


@pytest.mark.parametrize("backend, expected", [
    ("pandapower", False), ("lightsim2grid", True),
])
def test_backend_is_passed_to_runpp(case33bw, runpp_calls, backend, expected):
    flow = PowerFlow(case33bw, backend=backend)
    flow.step(Injections.from_net(case33bw))
    flow.step(Injections.from_net(case33bw))
    assert [call.get("lightsim2grid") for call in runpp_calls] == [expected, expected]
    assert case33bw._options["lightsim2grid"] is expected


def test_unknown_backend_is_rejected(case33bw):
    with pytest.raises(ValueError, match="backend must be one of"):
        PowerFlow(case33bw, backend="gridcal")


# Unbalanced feeders ----------------------------------------------------------------------

def four_bus_unbalanced():
    """pandapower's 4-bus 110 kV three-phase validation network.

    From pandapower/test/loadflow/test_runpp_3ph.py::test_4bus_network, whose
    reference phase voltages (bus_pf, compared there to 1e-8) are reproduced
    below.
    """
    net = pandapower.create_empty_network(sn_mva=100)
    busn, busk, busm, busp = (pandapower.create_bus(net, vn_kv=110, name=n) for n in "nkmp")
    pandapower.create_ext_grid(net, bus=busn, vm_pu=1.0, s_sc_max_mva=5000, rx_max=0.1,
                               r0x0_max=0.1, x0x_max=1.0)
    pandapower.create_std_type(net, {"r0_ohm_per_km": .154, "x0_ohm_per_km": 0.5277876,
                                     "c0_nf_per_km": 170.4, "g0_us_per_km": 0, "max_i_ka": 0.741,
                                     "r_ohm_per_km": .0385, "x_ohm_per_km": 0.1319469,
                                     "c_nf_per_km": 170}, "example_type3")
    pandapower.create_line(net, busn, busm, length_km=1.0, std_type="example_type3")
    pandapower.create_line(net, busn, busp, length_km=1.0, std_type="example_type3")
    for f, t, r0, x0, c0, i, r, x, c in [
        (busn, busk, .1005, 0.4900884, 200.5, 0.89, .0251, 0.1225221, 210),
        (busk, busm, 0.0848, 0.4649556, 230.6, 0.963, 0.0212, 0.1162389, 230),
        (busk, busp, .3048, 0.6031856, 140.3, 0.531, .0762, 0.1507964, 140),
    ]:
        pandapower.create_line_from_parameters(
            net, f, t, length_km=1.0, r0_ohm_per_km=r0, x0_ohm_per_km=x0, c0_nf_per_km=c0, max_i_ka=i,
            r_ohm_per_km=r, x_ohm_per_km=x, c_nf_per_km=c)
    pandapower.add_zero_impedance_parameters(net)
    for bus, (pa, qa, pb, qb, pc, qc) in [(busk, (50, 20, 80, 60, 20, 5)), (busm, (50, 50, 10, 15, 10, 5)),
                                          (busp, (50, 20, 60, 20, 10, 5))]:
        pandapower.create_asymmetric_load(net, bus, p_a_mw=pa, q_a_mvar=qa, p_b_mw=pb, q_b_mvar=qb,
                                          p_c_mw=pc, q_c_mvar=qc)
    return net


FOUR_BUS_VM_PHASE_PU = np.array([[0.98085729, 0.97711997, 1.04353786],
                                 [0.97828577, 0.97534651, 1.04470864],
                                 [0.97774307, 0.97648197, 1.04421233],
                                 [0.9780892, 0.97586805, 1.04471106]])


@pytest.fixture
def four_bus():
    return four_bus_unbalanced()


@pytest.fixture
def runpp_3ph_calls(monkeypatch):
    """Keyword arguments of every pandapower.runpp_3ph call, in order."""
    return _spy_on(monkeypatch, "runpp_3ph")


def test_unbalanced_net_reproduces_pandapower_validation_values(four_bus, runpp_3ph_calls, runpp_calls):
    flow = PowerFlow(four_bus)
    assert flow.unbalanced
    for _ in range(2):  # cold, then warm with recycled admittance matrices
        result = flow.step(Injections.from_net(four_bus))
        assert result.converged
        np.testing.assert_allclose(result.vm_phase_pu, FOUR_BUS_VM_PHASE_PU, rtol=0, atol=1e-8)
    assert [call.get("init") for call in runpp_3ph_calls] == [None, "results"]
    assert "recycle" in runpp_3ph_calls[1] and not runpp_calls


def test_unbalanced_result_summarizes_the_phases(four_bus):
    result = PowerFlow(four_bus).step(Injections.from_net(four_bus))
    res = four_bus.res_bus_3ph
    np.testing.assert_allclose(result.vm_pu, FOUR_BUS_VM_PHASE_PU.mean(axis=1), atol=1e-8)
    np.testing.assert_array_equal(result.va_degree, res["va_a_degree"].to_numpy())
    np.testing.assert_allclose(result.vuf_percent, res["unbalance_percent"].to_numpy(), rtol=1e-10)
    assert result.vuf_percent[1:].min() > 1.0
    np.testing.assert_array_equal(result.loading_percent, four_bus.res_line_3ph["loading_percent"].to_numpy())
    load_mw = sum(four_bus.asymmetric_load[f"p_{phase}_mw"].sum() for phase in "abc")
    assert result.p_mw == pytest.approx(load_mw + result.pl_mw, rel=1e-6)
    assert result.pl_mw > 0.0


def test_asymmetric_set_point_scales_its_phases_proportionally(four_bus):
    phases = four_bus.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy(copy=True)
    flow = PowerFlow(four_bus)
    base = Injections.from_net(four_bus)
    half = Injections(base.load_p_mw, base.load_q_mvar, base.sgen_p_mw, base.storage_p_mw,
                      base.asymmetric_load_p_mw * 0.5, base.asymmetric_load_q_mvar * 0.5)
    result = flow.step(half)
    assert result.converged
    np.testing.assert_allclose(four_bus.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]], phases * 0.5)
    assert result.vm_phase_pu.min() > FOUR_BUS_VM_PHASE_PU.min()


def test_asymmetric_load_without_power_is_split_equally(four_bus):
    idle = pandapower.create_asymmetric_load(four_bus, 1, p_a_mw=0.0)
    flow = PowerFlow(four_bus)
    base = Injections.from_net(four_bus)
    total = base.asymmetric_load_p_mw.copy()
    total[idle] = 3.0
    flow.step(Injections(base.load_p_mw, base.load_q_mvar, base.sgen_p_mw, base.storage_p_mw, total, None))
    assert four_bus.asymmetric_load.loc[idle, ["p_a_mw", "p_b_mw", "p_c_mw"]].tolist() == [1.0, 1.0, 1.0]


def test_balanced_elements_on_an_unbalanced_net_take_a_third_per_phase(four_bus):
    pandapower.create_sgen(four_bus, 1, p_mw=30.0, type="wye")
    result = PowerFlow(four_bus).step(Injections.from_net(four_bus))
    load_mw = sum(four_bus.asymmetric_load[f"p_{phase}_mw"].sum() for phase in "abc")
    assert result.p_mw == pytest.approx(load_mw - 30.0 + result.pl_mw, rel=1e-6)
    assert four_bus.res_bus_3ph.at[1, "p_a_mw"] == pytest.approx(50.0 - 10.0, rel=1e-9)


def test_unbalanced_warm_steps_equal_cold_runpp_3ph(four_bus):
    flow = PowerFlow(four_bus)
    base = Injections.from_net(four_bus)
    rng = np.random.default_rng(4)
    for _ in range(4):
        f = rng.uniform(0.3, 1.0, len(four_bus.asymmetric_load))
        injections = Injections(base.load_p_mw, base.load_q_mvar, base.sgen_p_mw, base.storage_p_mw,
                                base.asymmetric_load_p_mw * f, base.asymmetric_load_q_mvar * f)
        result = flow.step(injections)
        reference = copy.deepcopy(four_bus)
        pandapower.runpp_3ph(reference, numba=False)
        np.testing.assert_allclose(result.vm_phase_pu, reference.res_bus_3ph[["vm_a_pu", "vm_b_pu", "vm_c_pu"]],
                                   rtol=0, atol=1e-6)


def test_unbalanced_non_convergence_gives_nan_and_a_cold_restart(four_bus, runpp_3ph_calls):
    flow = PowerFlow(four_bus)
    base = Injections.from_net(four_bus)
    heavy = Injections(base.load_p_mw, base.load_q_mvar, base.sgen_p_mw, base.storage_p_mw,
                       base.asymmetric_load_p_mw * 100, base.asymmetric_load_q_mvar * 100)
    flow.step(base)
    failed = flow.step(heavy)
    assert not failed.converged and np.isnan(failed.vm_phase_pu).all() and np.isnan(failed.vuf_percent).all()
    again = flow.step(base)
    np.testing.assert_allclose(again.vm_phase_pu, FOUR_BUS_VM_PHASE_PU, atol=1e-8)
    assert [call.get("init") for call in runpp_3ph_calls] == [None, "results", None]


@pytest.mark.parametrize("change, match", [
    (lambda net: pandapower.create_storage(net, 1, p_mw=1.0, max_e_mwh=2.0), "storage"),
    (lambda net: pandapower.create_sgen(net, 1, p_mw=1.0, type="PV"), "type"),
    (lambda net: None, "lightsim2grid"),
])
def test_unbalanced_net_rejects_what_runpp_3ph_would_ignore(four_bus, change, match):
    change(four_bus)
    backend = "lightsim2grid" if match == "lightsim2grid" else "auto"
    with pytest.raises(ValueError, match=match):
        PowerFlow(four_bus, backend=backend)


def test_bad_asymmetric_injections_are_rejected(four_bus):
    base = Injections.from_net(four_bus)
    with pytest.raises(ValueError, match="asymmetric_load_p_mw"):
        PowerFlow(four_bus).step(Injections(base.load_p_mw, base.load_q_mvar, base.sgen_p_mw,
                                            base.storage_p_mw, np.ones(2), None))
