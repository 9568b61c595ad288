"""Voltage band and thermal limit checks at their edges."""

import numpy as np
import pytest

from gridledger.grids.limits import (
    ANSI_C84_1_RANGE_A_VM_MAX_PU,
    ANSI_C84_1_RANGE_A_VM_MIN_PU,
    overload,
    voltage_violation,
)


def test_range_a_is_plus_minus_five_percent():
    assert (ANSI_C84_1_RANGE_A_VM_MIN_PU, ANSI_C84_1_RANGE_A_VM_MAX_PU) == (0.95, 1.05)


def test_band_edges_are_not_violations():
    vm_pu = np.array([0.95, 1.05, np.nextafter(0.95, 0.0), np.nextafter(1.05, 2.0), 1.0, 0.9131])
    assert voltage_violation(vm_pu).tolist() == [False, False, True, True, False, True]


def test_nan_is_not_a_voltage_violation():
    assert voltage_violation(np.full(3, np.nan)).tolist() == [False, False, False]


def test_custom_band():
    vm_pu = np.array([[0.91, 0.92], [1.06, 1.04]])
    expected = [[True, False], [True, False]]
    assert voltage_violation(vm_pu, vm_min_pu=0.92, vm_max_pu=1.05).tolist() == expected


def test_inverted_band_is_rejected():
    with pytest.raises(ValueError, match="vm_min_pu"):
        voltage_violation([1.0], vm_min_pu=1.05, vm_max_pu=0.95)


def test_overload_is_strictly_above_the_limit():
    loading = np.array([100.0, np.nextafter(100.0, 200.0), 50.0, np.nan])
    assert overload(loading).tolist() == [False, True, False, False]


def test_overload_with_per_line_limits():
    assert overload([90.0, 90.0], max_loading_percent=[80.0, 100.0]).tolist() == [True, False]
