"""Import/export registers of prosumer meters."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridledger.grids.metering import interval_energy_wh, source_energy_wh


def test_interval_with_export_and_import_records_both():
    p_export_mw = np.array([[0.001], [-0.0005], [0.002]])
    import_wh, export_wh = interval_energy_wh(p_export_mw, step_s=300.0)
    # export: (1 + 2) kW * 5 min = 250 Wh; import: 0.5 kW * 5 min = 41.67 Wh
    assert export_wh.tolist() == [250]
    assert import_wh.tolist() == [42]


def test_meters_are_independent_columns():
    p_export_mw = np.array([[-0.003, 0.0, 0.0012], [-0.001, 0.0, -0.0012]])
    import_wh, export_wh = interval_energy_wh(p_export_mw, step_s=900.0)
    assert import_wh.tolist() == [1000, 0, 300]
    assert export_wh.tolist() == [0, 0, 300]
    assert import_wh.dtype == np.int64 and export_wh.dtype == np.int64


def test_registers_round_separately():
    # 0.6 Wh exported, then 0.4 Wh imported: the registers read 1 and 0
    # although the net energy, 0.2 Wh, rounds to 0.
    import_wh, export_wh = interval_energy_wh(np.array([[1.2e-6], [-0.8e-6]]), step_s=1800.0)
    assert (import_wh.tolist(), export_wh.tolist()) == ([0], [1])


@pytest.mark.parametrize("p, step_s, message", [
    (np.zeros(3), 300.0, "shape"),
    (np.zeros((2, 2)), 0.0, "step_s"),
    (np.array([[np.nan]]), 300.0, "finite"),
])
def test_bad_arguments_are_rejected(p, step_s, message):
    with pytest.raises(ValueError, match=message):
        interval_energy_wh(p, step_s)


powers = arrays(
    np.float64,
    st.tuples(st.integers(1, 12), st.integers(1, 4)),
    elements=st.floats(-2.0, 2.0, allow_nan=False),
)
step_lengths = st.sampled_from([1.0, 60.0, 300.0, 900.0, 3600.0])


@given(powers, step_lengths)
def test_export_minus_import_is_the_net_energy_to_meter_resolution(p_export_mw, step_s):
    import_wh, export_wh = interval_energy_wh(p_export_mw, step_s)
    for column in range(p_export_mw.shape[1]):
        net_wh = math.fsum(p_export_mw[:, column]) * step_s / 3600.0 * 1e6
        one_way = np.all(p_export_mw[:, column] >= 0) or np.all(p_export_mw[:, column] <= 0)
        tolerance = (0.5 if one_way else 1.0) + 1e-6 * max(1.0, abs(net_wh))
        assert abs(int(export_wh[column]) - int(import_wh[column]) - net_wh) <= tolerance
    assert np.all(import_wh >= 0) and np.all(export_wh >= 0)


@given(powers, step_lengths)
def test_a_one_way_interval_fills_one_register(p_export_mw, step_s):
    import_wh, export_wh = interval_energy_wh(np.abs(p_export_mw), step_s)
    assert np.all(import_wh == 0)
    import_wh, export_wh = interval_energy_wh(-np.abs(p_export_mw), step_s)
    assert np.all(export_wh == 0)


def test_source_registers_count_pv_generation_and_battery_discharge_only():
    pv_p_mw = np.array([[0.004, 0.0], [0.002, 0.0], [0.0, 0.0]])
    # pandapower storage sign: +1 kW charges, -3 kW and -0.6 kW discharge.
    battery_p_mw = np.array([[0.001, 0.0], [-0.003, 0.0], [-0.0006, 0.0]])
    pv_wh, battery_wh = source_energy_wh(pv_p_mw, battery_p_mw, step_s=300.0)
    # PV: (4 + 2) kW * 5 min = 500 Wh; discharge: (3 + 0.6) kW * 5 min = 300 Wh.
    assert (pv_wh.tolist(), battery_wh.tolist()) == ([500, 0], [300, 0])
    assert pv_wh.dtype == np.int64 and battery_wh.dtype == np.int64


@pytest.mark.parametrize("pv, battery, step_s, message", [
    (np.zeros(3), np.zeros(3), 300.0, "pv_p_mw must have shape"),
    (np.zeros((2, 2)), np.array([[np.inf, 0.0], [0.0, 0.0]]), 300.0, "battery_p_mw must be finite"),
    (np.zeros((2, 2)), np.zeros((2, 3)), 300.0, "one shape"),
    (np.zeros((2, 2)), np.zeros((2, 2)), -1.0, "step_s"),
])
def test_bad_source_arguments_are_rejected(pv, battery, step_s, message):
    with pytest.raises(ValueError, match=message):
        source_energy_wh(pv, battery, step_s)


@given(powers, step_lengths)
def test_source_registers_are_the_positive_pv_and_negative_battery_energy(p_mw, step_s):
    pv_wh, battery_wh = source_energy_wh(p_mw, p_mw, step_s)
    import_wh, export_wh = interval_energy_wh(p_mw, step_s)
    # PV counts what an export register counts, discharge what an import register counts.
    assert pv_wh.tolist() == export_wh.tolist() and battery_wh.tolist() == import_wh.tolist()
