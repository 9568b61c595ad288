"""Device setpoints per step: load composition, PV curtailment, the battery following the position within its limits."""

import numpy as np
import pytest

from gridledger.agents.devices import Devices, ev_fleet, flexload_profiles_kw, inverter_settings
from tests.agents_der_helpers import small_scenario

BATTERY = {"share": 0.5, "efficiency": 1.0, "soc_min": 0.1, "soc_max": 0.9}


def hand_devices() -> Devices:
    """Devices whose step-0 profiles and batteries are set by hand (lossless batteries, SoC 10-90 %)."""
    devices = Devices(small_scenario(prosumers={"battery": BATTERY}))
    devices.load_kw[0] = [2.0, 1.0, 3.0, 0.5]
    devices.load_kvar[0] = [0.4, 0.2, 0.6, 0.1]
    devices.pv_kw[0] = [5.0, 0.0, 4.0, 0.0]
    devices.flexload_kw[0] = [0.0, 1.5, 0.0, 0.0]
    devices.capacity_kwh[:] = [10.0, 0.0, 0.0, 10.0]
    devices.battery_kw[:] = [2.0, 0.0, 0.0, 5.0]
    devices.soc_kwh[:] = [5.0, 0.0, 0.0, 1.2]
    return devices


def test_setpoints_compose_load_curtail_pv_and_run_batteries_within_their_limits():
    devices = hand_devices()
    position_wh = np.array([0, 0, 0, 1000])
    curtail_kw = np.array([0.0, 0.0, 10.0, 0.0])
    setpoints = devices.step(0, position_wh, curtail_kw, ev_coordinated=False)
    # load = base + EV (none at 10:00 in this study) + shiftable: agent 1 is 1.0 + 1.5 kW
    np.testing.assert_allclose(setpoints["load_p_mw"], np.array([2.0, 2.5, 3.0, 0.5]) / 1000)
    np.testing.assert_allclose(setpoints["load_q_mvar"], np.array([0.4, 0.2, 0.6, 0.1]) / 1000)
    # agent 2 is awarded 10 kW of curtailment but produces 4 kW: it curtails 4
    np.testing.assert_allclose(setpoints["pv_curtailed_p_mw"], np.array([0.0, 0.0, 4.0, 0.0]) / 1000)
    np.testing.assert_allclose(setpoints["pv_p_mw"], np.array([5.0, 0.0, 0.0, 0.0]) / 1000)
    # agent 0 wants 5 - 2 = 3 kW of charging, its rating allows 2 kW -> SoC 5 + 2 kW * 300 s / 3600 = 5.1667 kWh;
    # agent 3 sold 1000 Wh over 900 s (4 kW) with 0.5 kW of load: it asks -4.5 kW, but only 1.2 - 0.1 * 10
    # = 0.2 kWh lie above its minimum SoC -> -0.2 kWh * 3600 / 300 s = -2.4 kW, SoC 1.0 kWh
    np.testing.assert_allclose(setpoints["battery_p_mw"], np.array([2.0, 0.0, 0.0, -2.4]) / 1000)
    np.testing.assert_allclose(devices.soc_trace_kwh[0], [5.0 + 2.0 / 12, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(devices.battery_p_kw[0], [2.0, 0.0, 0.0, -2.4])
    assert devices.steps_done == 1 and np.isnan(devices.battery_p_kw[1]).all()


def test_battery_follows_a_cleared_position_it_can_meet():
    devices = hand_devices()
    devices.soc_kwh[3] = 8.0
    setpoints = devices.step(0, np.array([0, 0, 0, 1000]), np.zeros(4), ev_coordinated=False)
    # agent 3 discharges 4 kW to export what it sold and 0.5 kW for its load: 8 - 4.5 / 12 = 7.625 kWh
    assert setpoints["battery_p_mw"][3] == pytest.approx(-4.5 / 1000)
    assert devices.soc_kwh[3] == pytest.approx(7.625)


def test_ev_charging_is_part_of_the_load():
    sc = small_scenario(start="2024-01-17T18:00:00", prosumers={"ev": {"share": 1.0}})
    devices = Devices(sc)
    setpoints = devices.step(0, np.zeros(4, dtype=int), np.zeros(4), ev_coordinated=False)
    assert devices.ev_kw[0].sum() > 0          # uncoordinated EVs at home at 18:00 charge at once
    np.testing.assert_allclose(setpoints["load_p_mw"],
                               (devices.load_kw[0] + devices.ev_kw[0] + devices.flexload_kw[0]) / 1000)


def test_every_prosumer_owns_an_ev_at_full_share():
    fleet = ev_fleet(small_scenario(prosumers={"ev": {"share": 1.0, "capacity_kwh": 40}}))
    assert sorted(fleet.owners) == [0, 1, 2, 3]
    np.testing.assert_allclose(fleet.capacity_kwh, 40.0)


def test_shiftable_load_is_zero_when_its_window_misses_the_study():
    sc = small_scenario(prosumers={"flexload": {"share": 1.0, "energy_kwh": 1.0, "power_kw": 2.0,
                                                "earliest_h": 20.0, "latest_end_h": 22.0}})
    assert flexload_profiles_kw(sc).shape == (6, 4)
    assert not flexload_profiles_kw(sc).any()


def test_inverter_settings_rate_each_pv_at_kva_per_kwp():
    sc = small_scenario(prosumers={"pv": {"share": 0.5, "inverter": {"volt_watt": True, "kva_per_kwp": 1.2}}})
    settings = inverter_settings(sc)
    with_pv = [p for p in sc.prosumers if p.pv_kwp > 0]
    assert settings["prosumers"] == [p.name for p in with_pv] == ["p01", "p04"]
    assert settings["s_rated_kva"] == pytest.approx([1.2 * p.pv_kwp for p in with_pv])  # 1.2 kVA per kWp
    assert settings["volt_var"] is None and settings["volt_watt"] is not None
    assert inverter_settings(small_scenario()) is None
