"""Placing prosumers on load buses and adding their devices to the net."""

import copy

import pandapower
import pytest

from gridledger.grids.feeders import load_feeder
from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.grids.prosumers import DeviceIndex, Prosumer, add_prosumer_devices, place_prosumers

SIZES = dict(pv_kwp_per_kw_load=2.0, battery_kwh_per_kw_load=3.0, battery_kw_per_kwh=0.5)


@pytest.fixture(scope="module")
def pristine_case33bw():
    return load_feeder("case33bw")


@pytest.fixture
def net(pristine_case33bw):
    return copy.deepcopy(pristine_case33bw)


def place(net, count=10, seed=1, pv_share=0.25, battery_share=0.5, **kwargs):
    return place_prosumers(net, count=count, seed=seed, pv_share=pv_share,
                           battery_share=battery_share, **SIZES, **kwargs)


def test_prosumer_i_takes_over_the_load_on_the_ith_load_bus(net):
    prosumers = place(net)
    assert [p.name for p in prosumers] == [f"p{i:02d}" for i in range(1, 11)]
    assert [p.bus for p in prosumers] == list(range(1, 11))
    for p in prosumers:
        assert net.load.at[p.load_index, "bus"] == p.bus
        assert p.peak_load_p_mw == net.load.at[p.load_index, "p_mw"]
        assert p.peak_load_q_mvar == net.load.at[p.load_index, "q_mvar"]


def test_listed_buses_are_used_in_order(net):
    prosumers = place(net, count=3, buses=[30, 4, 17])
    assert [p.bus for p in prosumers] == [30, 4, 17]


def test_shares_round_half_up_and_sizes_scale_with_peak_load(net):
    prosumers = place(net, count=10, pv_share=0.25, battery_share=0.45)
    with_pv = [p for p in prosumers if p.pv_kwp > 0]
    with_battery = [p for p in prosumers if p.battery_energy_kwh > 0]
    assert len(with_pv) == 3
    assert len(with_battery) == 5
    for p in with_pv:
        assert p.pv_kwp == pytest.approx(2.0 * p.peak_load_p_mw * 1e3)
    for p in with_battery:
        assert p.battery_energy_kwh == pytest.approx(3.0 * p.peak_load_p_mw * 1e3)
        assert p.battery_power_kw == pytest.approx(0.5 * p.battery_energy_kwh)
    for p in prosumers:
        if p not in with_battery:
            assert p.battery_energy_kwh == 0.0 and p.battery_power_kw == 0.0


def test_device_choice_is_seeded(net):
    assert place(net, seed=7) == place(net, seed=7)
    choices = {tuple(p.pv_kwp > 0 for p in place(net, seed=seed)) for seed in range(10)}
    assert len(choices) > 1


def test_all_or_none_share(net):
    assert all(p.pv_kwp > 0 for p in place(net, pv_share=1.0))
    assert all(p.battery_energy_kwh == 0 for p in place(net, battery_share=0.0))


def test_prosumer_is_frozen(net):
    prosumer = place(net)[0]
    assert isinstance(prosumer, Prosumer)
    with pytest.raises(AttributeError):
        prosumer.bus = 3


def test_names_are_padded_to_the_count():
    net = pandapower.create_empty_network()
    pandapower.create_ext_grid(net, pandapower.create_bus(net, vn_kv=0.4))
    for _ in range(120):
        pandapower.create_load(net, pandapower.create_bus(net, vn_kv=0.4), p_mw=0.001)
    names = [p.name for p in place(net, count=120)]
    assert names[0] == "p001" and names[-1] == "p120"


def test_first_in_service_load_of_a_bus_is_taken_over(net):
    extra = pandapower.create_load(net, bus=1, p_mw=0.5)
    net.load.at[0, "in_service"] = False
    assert place(net, count=1)[0].load_index == extra


def test_too_many_prosumers_are_rejected(net):
    with pytest.raises(ValueError, match="count=33 .* only 32 load buses"):
        place(net, count=33)
    with pytest.raises(ValueError, match="count=3 .* only 2 buses are listed"):
        place(net, count=3, buses=[1, 2])


def test_listed_bus_without_load_is_rejected(net):
    with pytest.raises(ValueError, match=r"listed buses \[0\] carry no in-service load"):
        place(net, count=2, buses=[0, 5])


def test_bus_listed_twice_is_rejected(net):
    with pytest.raises(ValueError, match="once each"):
        place(net, count=2, buses=[5, 5])


def with_lv_loads(net, count):
    """`net` (12.66 kV) with `count` 0.4 kV load buses behind a transformer at bus 5, listed last."""
    lv_buses = [int(pandapower.create_bus(net, vn_kv=0.4)) for _ in range(count)]
    pandapower.create_transformer(net, 5, lv_buses[0], "0.4 MVA 20/0.4 kV")
    for bus in lv_buses:
        pandapower.create_load(net, bus, p_mw=0.004, q_mvar=0.001)
    return lv_buses


def test_lv_level_places_prosumers_on_lv_load_buses_only(net):
    lv_buses = with_lv_loads(net, 3)
    prosumers = place(net, count=3, voltage_level="lv")
    assert [p.bus for p in prosumers] == lv_buses
    assert all(net.bus.at[p.bus, "vn_kv"] < 1.0 for p in prosumers)
    assert [p.bus for p in place(net, count=3, voltage_level="mv")] == [1, 2, 3]
    assert [p.bus for p in place(net, count=35, voltage_level="any")][-3:] == lv_buses


def test_too_few_load_buses_at_the_voltage_level_are_named(net):
    with_lv_loads(net, 2)
    with pytest.raises(ValueError, match="count=3 .* only 2 load buses at voltage level 'lv'"):
        place(net, count=3, voltage_level="lv")
    with pytest.raises(ValueError, match=r"listed buses \[4\] carry no in-service load at voltage level 'lv'"):
        place(net, count=1, buses=[4], voltage_level="lv")


def test_unknown_voltage_level_is_named(net):
    with pytest.raises(ValueError, match="voltage_level must be one of any, lv, mv, got 'hv'"):
        place(net, voltage_level="hv")


def test_a_long_bus_list_in_an_error_is_shortened(net):
    with pytest.raises(ValueError, match=r"buses with a load: \[1, 2, .*, 20, \.\.\. \(12 more\)\]$"):
        place(net, count=1, buses=[0])


@pytest.mark.parametrize("kwargs, name", [
    (dict(pv_share=1.5), "pv_share"),
    (dict(battery_share=-0.1), "battery_share"),
    (dict(count=-1), "count"),
])
def test_bad_arguments_are_named(net, kwargs, name):
    with pytest.raises(ValueError, match=name):
        place(net, **kwargs)


def test_devices_are_added_per_prosumer(net):
    prosumers = place(net, count=10)
    index = add_prosumer_devices(net, prosumers)
    assert isinstance(index, DeviceIndex)
    with_pv = {p.name: p for p in prosumers if p.pv_kwp > 0}
    with_battery = {p.name: p for p in prosumers if p.battery_energy_kwh > 0}
    assert set(index.sgen) == set(with_pv)
    assert set(index.storage) == set(with_battery)
    assert len(net.sgen) == len(with_pv) and len(net.storage) == len(with_battery)
    for name, element in index.sgen.items():
        assert net.sgen.at[element, "bus"] == with_pv[name].bus
        assert net.sgen.at[element, "sn_mva"] == pytest.approx(with_pv[name].pv_kwp / 1e3)
        assert net.sgen.at[element, "p_mw"] == 0.0
    for name, element in index.storage.items():
        battery = with_battery[name]
        assert net.storage.at[element, "bus"] == battery.bus
        assert net.storage.at[element, "max_e_mwh"] == pytest.approx(battery.battery_energy_kwh / 1e3)
        assert net.storage.at[element, "max_p_mw"] == pytest.approx(battery.battery_power_kw / 1e3)
        assert net.storage.at[element, "min_p_mw"] == pytest.approx(-battery.battery_power_kw / 1e3)


def test_devices_are_added_once(net):
    prosumers = place(net, count=5, pv_share=1.0)
    add_prosumer_devices(net, prosumers)
    with pytest.raises(ValueError, match="'p01 pv'"):
        add_prosumer_devices(net, prosumers)


# Unbalanced feeders ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def pristine_ieee_eu_lv():
    return load_feeder("ieee-eu-lv")


@pytest.fixture
def eu(pristine_ieee_eu_lv):
    return copy.deepcopy(pristine_ieee_eu_lv)


def test_prosumers_take_over_asymmetric_loads(eu):
    prosumers = place(eu, count=55, battery_share=0.0)
    assert all(p.load_element == "asymmetric_load" for p in prosumers)
    assert sorted(p.load_index for p in prosumers) == list(eu.asymmetric_load.index)
    for p in prosumers:
        row = eu.asymmetric_load.loc[p.load_index]
        assert row["bus"] == p.bus
        assert p.peak_load_p_mw == pytest.approx(row[["p_a_mw", "p_b_mw", "p_c_mw"]].sum())
        assert p.peak_load_q_mvar == pytest.approx(row[["q_a_mvar", "q_b_mvar", "q_c_mvar"]].sum())


def test_a_balanced_load_on_the_bus_comes_first(net):
    bus = 5
    asymmetric = pandapower.create_asymmetric_load(net, bus, p_b_mw=0.02)
    net.load.loc[net.load["bus"] == bus, "in_service"] = False
    prosumer = place(net, count=1, buses=[bus])[0]
    assert (prosumer.load_element, prosumer.load_index) == ("asymmetric_load", asymmetric)
    net.load.loc[net.load["bus"] == bus, "in_service"] = True
    assert place(net, count=1, buses=[bus])[0].load_element == "load"


def test_pv_on_an_unbalanced_feeder_is_a_balanced_wye_sgen(eu):
    prosumers = place(eu, count=10, pv_share=1.0, battery_share=0.0)
    index = add_prosumer_devices(eu, prosumers)
    assert set(eu.sgen.loc[list(index.sgen.values()), "type"]) == {"wye"}
    pv = Injections.from_net(eu)
    pv = Injections(pv.load_p_mw, pv.load_q_mvar, eu.sgen["sn_mva"].to_numpy(), pv.storage_p_mw)
    result = PowerFlow(eu).step(pv)
    assert result.converged
    load_mw = eu.asymmetric_load[["p_a_mw", "p_b_mw", "p_c_mw"]].to_numpy().sum()
    assert pv.sgen_p_mw.sum() > 0.01
    # runpp_3ph counts the PV (2e-5 MW: its branch losses miss the earth return).
    assert result.p_mw == pytest.approx(load_mw - pv.sgen_p_mw.sum() + result.pl_mw, abs=2e-5)


def test_batteries_are_refused_on_an_unbalanced_feeder(eu):
    prosumers = place(eu, count=10, battery_share=0.5)
    with pytest.raises(ValueError, match="runpp_3ph ignores net.storage"):
        add_prosumer_devices(eu, prosumers)
    assert eu.storage.empty and eu.sgen.empty


def test_prosumer_load_element_defaults_to_load():
    prosumer = Prosumer("p01", 1, 0, 0.1, 0.05, 0.0, 0.0, 0.0)
    assert prosumer.load_element == "load"
