"""Interval energy registers of bidirectional prosumer meters."""

import numpy as np

__all__ = ["interval_energy_wh"]


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
    p = np.asarray(p_export_mw, dtype=float)
    if p.ndim != 2:
        raise ValueError(f"p_export_mw must have shape (steps, n), got {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("p_export_mw must be finite")
    if not (np.isfinite(step_s) and step_s > 0.0):
        raise ValueError(f"step_s must be a positive number of seconds, got {step_s!r}")
    wh_per_mw_step = step_s / 3600.0 * 1e6
    export_wh = np.clip(p, 0.0, None).sum(axis=0) * wh_per_mw_step
    import_wh = np.clip(-p, 0.0, None).sum(axis=0) * wh_per_mw_step
    return np.rint(import_wh).astype(np.int64), np.rint(export_wh).astype(np.int64)
