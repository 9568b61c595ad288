"""Service-voltage bands of ANSI C84.1: a pure function of voltages, importable without pandapower.

The KPIs (`gridledger.kpis`), which every federate may compute when it
collects a run, classify voltages with it; the other stability checks are
in :mod:`gridledger.grids.stability`.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

__all__ = ["ANSI_C84_1_SERVICE_VOLTAGE_PU", "VoltageBand", "ansi_c84_1_band"]

ANSI_C84_1_SERVICE_VOLTAGE_PU = MappingProxyType({
    "A": (114.0 / 120.0, 126.0 / 120.0),
    "B": (110.0 / 120.0, 127.0 / 120.0),
})
"""Service-voltage limits (min, max) of ANSI C84.1-2020 Table 1 ranges, as
fractions of the 120 V nominal: Range A 114-126 V = 0.95-1.05 pu, Range B
110-127 V = 0.9167-1.0583 pu. [pu]"""


@dataclass(frozen=True)
class VoltageBand:
    """Classification of voltages against a band.

    Attributes
    ----------
    vm_min_pu, vm_max_pu : float
        The band; voltages equal to a limit are inside. [pu]
    under : ndarray of bool
        Below ``vm_min_pu``; same shape as the voltages.
    over : ndarray of bool
        Above ``vm_max_pu``.
    """

    vm_min_pu: float
    vm_max_pu: float
    under: np.ndarray
    over: np.ndarray

    @property
    def violation(self) -> np.ndarray:
        """Outside the band, either side."""
        return self.under | self.over


def ansi_c84_1_band(vm_pu, range: str = "A", kind: str = "service") -> VoltageBand:
    """Classify voltages against an ANSI C84.1 service-voltage range.

    Range A is the band of normal operation; Range B allows limited
    excursions that must be corrected. A voltage exactly at a limit is
    inside (0.95 is not a Range A violation); NaN is neither under nor over.
    The limits are the volts of Table 1 divided by the 120 V nominal, not
    rounded: Range B starts at 110/120 = 0.91667 pu, so 0.9169 is inside
    and 0.9166 is outside.

    Parameters
    ----------
    vm_pu : array_like
        Voltage magnitudes, any shape: ``(n_bus,)`` or, per phase of an
        unbalanced feeder, ``(n_bus, 3)``. [pu]
    range : {"A", "B"}, default "A"
        ANSI C84.1 range.
    kind : {"service"}, default "service"
        Voltage at the point of delivery. Utilization-voltage limits (at
        the equipment terminals) depend on whether lighting is served and
        are not provided.

    Returns
    -------
    band : VoltageBand
        Limits used and the ``under``/``over`` masks, shaped like ``vm_pu``.

    Raises
    ------
    ValueError
        For an unknown ``range`` or ``kind``.

    References
    ----------
    ANSI C84.1-2020, "American National Standard for Electric Power Systems
    and Equipment - Voltage Ratings (60 Hz)", Table 1: 120 V nominal, Range A
    service voltage 114-126 V, Range B 110-127 V.
    """
    if kind != "service":
        raise ValueError(f"kind must be 'service', got {kind!r}")
    if range not in ANSI_C84_1_SERVICE_VOLTAGE_PU:
        raise ValueError(f"range must be one of {sorted(ANSI_C84_1_SERVICE_VOLTAGE_PU)}, got {range!r}")
    vm_min_pu, vm_max_pu = ANSI_C84_1_SERVICE_VOLTAGE_PU[range]
    vm = np.asarray(vm_pu, dtype=float)
    return VoltageBand(vm_min_pu, vm_max_pu, under=vm < vm_min_pu, over=vm > vm_max_pu)
