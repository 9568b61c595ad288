"""Operating limits: service voltage band and thermal loading (whether a line has a rating at all:
:mod:`gridledger.grids.ratings`).

The study-configurable band check; the standard bands and the other
stability checks are in :mod:`gridledger.grids.stability`.
"""

import numpy as np

from gridledger.grids.stability import ANSI_C84_1_SERVICE_VOLTAGE_PU, thermal_overload

__all__ = [
    "ANSI_C84_1_RANGE_A_VM_MIN_PU",
    "ANSI_C84_1_RANGE_A_VM_MAX_PU",
    "MAX_LOADING_PERCENT",
    "voltage_violation",
    "overload",
]

ANSI_C84_1_RANGE_A_VM_MIN_PU, ANSI_C84_1_RANGE_A_VM_MAX_PU = ANSI_C84_1_SERVICE_VOLTAGE_PU["A"]
"""Limits of ANSI C84.1 Range A service voltage: 114 V and 126 V on 120 V. [pu]"""
MAX_LOADING_PERCENT = 100.0
"""Thermal rating of a branch (pandapower ``max_i_ka`` or ``sn_mva``). [%]"""


def voltage_violation(
    vm_pu,
    vm_min_pu: float = ANSI_C84_1_RANGE_A_VM_MIN_PU,
    vm_max_pu: float = ANSI_C84_1_RANGE_A_VM_MAX_PU,
) -> np.ndarray:
    """Whether each voltage lies outside the allowed band.

    Voltages exactly at a limit are within the band. NaN (a power flow
    that did not converge) is not a voltage violation; non-convergence is
    reported separately.

    Parameters
    ----------
    vm_pu : array_like
        Voltage magnitudes. [pu]
    vm_min_pu : float, default 0.95
        Lowest allowed voltage. [pu]
    vm_max_pu : float, default 1.05
        Highest allowed voltage. [pu]

    Returns
    -------
    violation : ndarray of bool
        Same shape as ``vm_pu``; True below ``vm_min_pu`` or above
        ``vm_max_pu``.

    References
    ----------
    ANSI C84.1-2020, "American National Standard for Electric Power
    Systems and Equipment - Voltage Ratings (60 Hz)", Table 1, Range A.
    """
    if not vm_min_pu <= vm_max_pu:
        raise ValueError(f"vm_min_pu ({vm_min_pu!r}) must not exceed vm_max_pu ({vm_max_pu!r})")
    vm = np.asarray(vm_pu, dtype=float)
    return (vm < vm_min_pu) | (vm > vm_max_pu)


def overload(loading_percent, max_loading_percent: float = MAX_LOADING_PERCENT) -> np.ndarray:
    """Whether each branch is loaded above its limit.

    The same check as :func:`gridledger.grids.stability.thermal_overload`,
    under the name and keyword the grid federate uses.

    Parameters
    ----------
    loading_percent : array_like
        Branch loading, as in pandapower's ``res_line.loading_percent``. [%]
    max_loading_percent : float or array_like, default 100
        Allowed loading, e.g. ``net.line.max_loading_percent``. [%]

    Returns
    -------
    overloaded : ndarray of bool
        True where ``loading_percent > max_loading_percent``; NaN is not an
        overload.

    References
    ----------
    See :func:`gridledger.grids.stability.thermal_overload`.
    """
    return thermal_overload(loading_percent, max_loading_percent)
