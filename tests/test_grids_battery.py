"""Battery step: limits and energy balance."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridledger.grids.battery import battery_step


def test_charging_stops_at_full():
    # 0.5 kWh of room at 90 % one-way efficiency takes 0.5 / 0.9 kWh in one hour.
    p_kw, soc_kwh = battery_step(9.5, 5.0, 3600.0, 10.0, 5.0, 0.81, 0.0, 1.0)
    assert p_kw == pytest.approx(0.5 / 0.9)
    assert soc_kwh == pytest.approx(10.0)


def test_discharging_stops_at_the_minimum():
    # 1 kWh above the 10 % floor delivers 0.9 kWh in one hour.
    p_kw, soc_kwh = battery_step(2.0, -5.0, 3600.0, 10.0, 5.0, 0.81, 0.1, 1.0)
    assert p_kw == pytest.approx(-0.9)
    assert soc_kwh == pytest.approx(1.0)


def test_power_rating_limits_the_request():
    p_kw, soc_kwh = battery_step(5.0, 10.0, 900.0, 10.0, 3.0, 1.0, 0.0, 1.0)
    assert p_kw == 3.0
    assert soc_kwh == pytest.approx(5.75)


def test_lossless_round_trip_returns_to_the_start():
    p_in, soc = battery_step(4.0, 2.0, 1800.0, 10.0, 5.0, 1.0, 0.0, 1.0)
    p_out, soc = battery_step(soc, -2.0, 1800.0, 10.0, 5.0, 1.0, 0.0, 1.0)
    assert soc == pytest.approx(4.0)


def test_round_trip_loses_the_stated_fraction():
    _, full = battery_step(0.0, 10.0, 3600.0, 100.0, 10.0, 0.9, 0.0, 1.0)
    p_out, empty = battery_step(full, -100.0, 3600.0, 100.0, 100.0, 0.9, 0.0, 1.0)
    assert empty == pytest.approx(0.0, abs=1e-12)
    assert -p_out / 10.0 == pytest.approx(0.9)


def test_arrays_broadcast_over_batteries():
    p_kw, soc_kwh = battery_step(np.array([0.0, 5.0, 10.0]), 4.0, 3600.0, 10.0, 2.0, 1.0, 0.0, 1.0)
    assert p_kw.tolist() == [2.0, 2.0, 0.0]
    assert soc_kwh.tolist() == [2.0, 7.0, 10.0]


@pytest.mark.parametrize("kwargs, message", [
    (dict(dt_s=0.0), "dt_s"),
    (dict(efficiency_roundtrip=0.0), "efficiency"),
    (dict(efficiency_roundtrip=1.1), "efficiency"),
    (dict(soc_min=0.8, soc_max=0.2), "soc_min"),
    (dict(power_kw=-1.0), "power_kw"),
    (dict(p_request_kw=np.nan), "finite"),
])
def test_bad_arguments_are_rejected(kwargs, message):
    arguments = dict(soc_kwh=5.0, p_request_kw=1.0, dt_s=300.0, energy_kwh=10.0, power_kw=5.0,
                     efficiency_roundtrip=0.9, soc_min=0.1, soc_max=0.9) | kwargs
    with pytest.raises(ValueError, match=message):
        battery_step(**arguments)


@st.composite
def battery_cases(draw):
    energy = draw(st.floats(0.1, 1000.0))
    soc_min = draw(st.floats(0.0, 1.0))
    soc_max = draw(st.floats(soc_min, 1.0))
    soc = draw(st.floats(soc_min, soc_max)) * energy
    soc = min(max(soc, soc_min * energy), soc_max * energy)
    power = draw(st.floats(0.0, 500.0))
    request = draw(st.floats(-1000.0, 1000.0))
    dt_s = draw(st.floats(1.0, 3600.0))
    efficiency = draw(st.floats(0.5, 1.0))
    return soc, request, dt_s, energy, power, efficiency, soc_min, soc_max


@given(battery_cases())
def test_state_of_charge_stays_within_its_limits(case):
    soc, request, dt_s, energy, power, efficiency, soc_min, soc_max = case
    _, soc_new = battery_step(*case)
    assert soc_min * energy <= soc_new <= soc_max * energy


@given(battery_cases())
def test_energy_balance_with_split_efficiency(case):
    soc, request, dt_s, energy, power, efficiency, soc_min, soc_max = case
    p_kw, soc_new = battery_step(*case)
    eta = np.sqrt(efficiency)
    energy_in = max(p_kw, 0.0) * dt_s / 3600.0
    energy_out = max(-p_kw, 0.0) * dt_s / 3600.0
    assert soc_new - soc == pytest.approx(eta * energy_in - energy_out / eta, rel=1e-9, abs=1e-9 * energy)


@given(battery_cases())
def test_delivered_power_follows_the_request_within_the_rating(case):
    soc, request, dt_s, energy, power, efficiency, soc_min, soc_max = case
    p_kw, _ = battery_step(*case)
    assert abs(p_kw) <= power
    assert abs(p_kw) <= abs(request)
    assert p_kw * request >= 0.0
