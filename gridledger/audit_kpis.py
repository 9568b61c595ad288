"""Detection scores of the auditor against the attacks' ground truth, by attack kind.

A meter-interval counts as **detected** when the auditor flagged it or
the chain refused its reading (a reading outside the registered physical
bounds, or signed by a key that is not the bound meter). An attack is
**visible** when it changes the interval's energy by at least
`VISIBLE_SHARE` of the meter's rating x interval, the size the issue's
target is stated for. A **false positive** is a flagged meter-interval
without an attack. Energy settled on false readings is the absolute
reported-minus-true net export of the attacked meter-intervals the chain
paid as read; of it, what the auditor flagged (and an audit contract would
hold) and what it missed. Time to detection is the mean time from an
interval's end to the check that flagged it [s]; ``late_rechecked`` counts
attacked meter-intervals whose reading was late at the first check and
that were checked again.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridledger.study_audit import ATTACK_KINDS
from gridledger.units import SECONDS_PER_HOUR, WH_PER_KWH

VISIBLE_SHARE = 0.10


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 6) if total else None


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 6) if values.size else None


def audit_kpis(ds: xr.Dataset, interval_s: int) -> dict:
    """``audit``: per attack kind and overall; empty without an auditor or without attacks."""
    if "audit_flagged" not in ds or "attack_kind" not in ds:
        return {}
    kind = ds.attack_kind.values
    flagged = ds.audit_flagged.values.astype(bool)
    settled = ds.settled.values.astype(bool)
    error_wh = np.abs(ds.attack_energy_error_wh.values)
    visible = error_wh >= VISIBLE_SHARE * ds.meter_rating_w.values[np.newaxis, :] * interval_s / SECONDS_PER_HOUR
    detected = flagged | ~settled
    ends_s = (np.arange(kind.shape[0])[:, np.newaxis] + 1) * interval_s
    delay_s = ds.audit_flagged_at_s.values - ends_s if "audit_flagged_at_s" in ds else np.full(kind.shape, np.nan)
    late = ds.audit_late.values.astype(bool) if "audit_late" in ds else np.zeros(kind.shape, dtype=bool)
    checks = ds.audit_checks.values[:, np.newaxis] if "audit_checks" in ds else np.zeros((kind.shape[0], 1))
    by_kind = {}
    for code, name in enumerate(ATTACK_KINDS):
        hit = kind == code
        if not hit.any():
            continue
        paid = hit & settled
        by_kind[name] = {
            "meter_intervals": int(hit.sum()),
            "detected": int((hit & detected).sum()),
            "detection_rate": _rate(int((hit & detected).sum()), int(hit.sum())),
            "visible": int((hit & visible).sum()),
            "visible_detection_rate": _rate(int((hit & visible & detected).sum()), int((hit & visible).sum())),
            "refused_by_chain": int((hit & ~settled).sum()),
            "false_energy_settled_kwh": round(float(error_wh[paid].sum()) / WH_PER_KWH, 6),
            "false_energy_flagged_kwh": round(float(error_wh[paid & flagged].sum()) / WH_PER_KWH, 6),
            "time_to_detection_s": _mean(delay_s[hit & flagged]),
            "late_rechecked": int((hit & late & (checks > 1)).sum()),
        }
    attacked = kind >= 0
    honest = ~attacked & settled
    energy = attacked & (error_wh > 0)
    return {
        "audit": {
            "by_kind": by_kind,
            "attacked_meter_intervals": int(attacked.sum()),
            "visible_energy_attacks": int((energy & visible).sum()),
            "visible_detection_rate": _rate(int((energy & visible & detected).sum()), int((energy & visible).sum())),
            "false_positives": int((honest & flagged).sum()),
            "false_positive_rate": _rate(int((honest & flagged).sum()), int(honest.sum())),
        },
    }
