"""Interval energy registers of bidirectional prosumer meters."""

import numpy as np

from gridledger.units import SECONDS_PER_HOUR, W_PER_MW

__all__ = ["interval_energy_wh", "source_energy_wh"]


def interval_energy_wh(p_export_mw, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """Import and export energy of each meter over one interval.

    Power is held constant over each step. A step with positive power adds
    to the export register, a step with negative power to the import
    register, so an interval that both imports and exports records both.
    Each register's interval total is rounded to the meter resolution of
    1 Wh with ``numpy.rint`` (half to even). Because the two registers are
    rounded separately, ``export_wh - import_wh`` differs from the net
    energy by at most 1 Wh (at most 0.5 Wh when only one register counts).

    Parameters
    ----------
    p_export_mw : array_like, shape (steps, n)
        Net active power of each meter per step, positive = export to the
        grid, negative = import. [MW]
    step_s : float
        Duration of each step. [s]

    Returns
    -------
    import_wh : ndarray of int64, shape (n,)
        Energy imported during the interval. [Wh]
    export_wh : ndarray of int64, shape (n,)
        Energy exported during the interval. [Wh]

    References
    ----------
    IEC 62056-6-1:2017, "Electricity metering data exchange - The
    DLMS/COSEM suite - Part 6-1: Object Identification System (OBIS)":
    separate registers for active energy import (+A, 1.8.0) and export
    (-A, 2.8.0).
    """
    p = _power_mw(p_export_mw, "p_export_mw")
    wh_per_mw_step = _wh_per_mw_step(step_s)
    export_wh = np.clip(p, 0.0, None).sum(axis=0) * wh_per_mw_step
    import_wh = np.clip(-p, 0.0, None).sum(axis=0) * wh_per_mw_step
    return np.rint(import_wh).astype(np.int64), np.rint(export_wh).astype(np.int64)


def source_energy_wh(pv_p_mw, battery_p_mw, step_s: float) -> tuple[np.ndarray, np.ndarray]:
    """PV energy and battery discharge of each prosumer over one interval.

    These registers go with the import and export of
    :func:`interval_energy_wh` into a meter reading, so that the
    settlement can attribute a seller's sold energy to its sources.
    Power is held constant over each step; only positive PV power and
    only discharge (negative battery power, pandapower's storage sign:
    positive = charging) count. Each total is rounded to 1 Wh with
    ``numpy.rint`` (half to even), as the import and export registers.

    Parameters
    ----------
    pv_p_mw : array_like, shape (steps, n)
        PV active power of each prosumer per step, positive =
        generation; 0 without PV. [MW]
    battery_p_mw : array_like, shape (steps, n)
        Battery active power of each prosumer per step, positive =
        charging, negative = discharging; 0 without a battery. [MW]
    step_s : float
        Duration of each step. [s]

    Returns
    -------
    pv_wh : ndarray of int64, shape (n,)
        PV energy generated during the interval. [Wh]
    battery_wh : ndarray of int64, shape (n,)
        Battery energy discharged during the interval. [Wh]
    """
    pv = _power_mw(pv_p_mw, "pv_p_mw")
    battery = _power_mw(battery_p_mw, "battery_p_mw")
    if pv.shape != battery.shape:
        raise ValueError(f"pv_p_mw and battery_p_mw must have one shape, got {pv.shape} and {battery.shape}")
    wh_per_mw_step = _wh_per_mw_step(step_s)
    pv_wh = np.clip(pv, 0.0, None).sum(axis=0) * wh_per_mw_step
    battery_wh = np.clip(-battery, 0.0, None).sum(axis=0) * wh_per_mw_step
    return np.rint(pv_wh).astype(np.int64), np.rint(battery_wh).astype(np.int64)


def _power_mw(p_mw, name: str) -> np.ndarray:
    """``p_mw`` as a finite float array of shape (steps, n); raises ValueError naming ``name`` otherwise."""
    p = np.asarray(p_mw, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"{name} must have shape (steps, n), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"{name} must be finite")
    return p


def _wh_per_mw_step(step_s: float) -> float:
    """Energy of 1 MW held for one step of ``step_s`` seconds. [Wh]"""
    if not (np.isfinite(step_s) and step_s > 0.0):
        raise ValueError(f"step_s must be a positive number of seconds, got {step_s!r}")
    return step_s / SECONDS_PER_HOUR * W_PER_MW
