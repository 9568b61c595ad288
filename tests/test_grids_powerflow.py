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


@pytest.fixture
def runpp_calls(monkeypatch):
    """Keyword arguments of every pandapower.runpp call, in order."""
    calls = []
    real = pandapower.runpp

    def spy(net, **kwargs):
        calls.append(kwargs)
        return real(net, **kwargs)

    monkeypatch.setattr(pandapower, "runpp", spy)
    return calls


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
