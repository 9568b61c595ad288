"""Detection scores of the auditor against the attacks' ground truth, by attack kind.

A meter-interval counts as **detected** when the auditor flagged it, the
chain refused its reading (a reading outside the registered physical
bounds, signed by a key that is not the bound meter, or of an isolated
meter) or the interval was settled from the auditor's estimate. An attack is
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

Tokens paid on false readings (`false_reading_tokens`): what an attacked
meter-interval gains is the settlement of its registers less the
settlement of the true ones (`gridledger.contracts.reference.settle` with
the interval's cleared position and value, no credit limits). **Audit
off**: the gain of the readings as reported. **Audit on**: the gain of
the registers as settled (the reading, or the estimate of an isolated
meter; nothing if refused) less what confirmed flags paid back to the
operator; the penalties are not counted against it. Both sum the positive
gains only, so an attack that cost its attacker does not offset one that
paid.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridledger.contracts.reference import settle
from gridledger.study import Study
from gridledger.study_audit import ATTACK_KINDS
from gridledger.units import SECONDS_PER_HOUR, WH_PER_KWH, price_wei_per_wh, tokens, wei

VISIBLE_SHARE = 0.10


def _rate(hits: int, total: int) -> float | None:
    return round(hits / total, 6) if total else None


def _mean(values: np.ndarray) -> float | None:
    return round(float(values.mean()), 6) if values.size else None


def _credit_wei(study: Study, position_wh: int, value_wei: int, import_wh: int, export_wh: int) -> int:
    """A prosumer's credit change from settling one interval's registers, without credit limits. [wei]"""
    market = study.market
    return settle(position_wh, value_wei, import_wh, export_wh, price_wei_per_wh(market.grid_buy_price_per_kwh),
                  price_wei_per_wh(market.grid_sell_price_per_kwh), price_wei_per_wh(market.grid_fee_per_kwh),
                  non_delivery_penalty_wei_per_wh=price_wei_per_wh(market.non_delivery_penalty_per_kwh)
                  ).credit_delta_wei


def false_reading_gains_wei(ds: xr.Dataset, study: Study) -> tuple[np.ndarray, np.ndarray]:
    """What each attacked meter-interval gained with the audit off and kept with it on, positive parts only
    (module docstring); zero elsewhere. [wei]"""
    off_wei = np.zeros(ds.attack_kind.shape, dtype=object)
    on_wei = np.zeros(ds.attack_kind.shape, dtype=object)
    for k, i in zip(*np.nonzero(ds.attack_kind.values >= 0)):
        position_wh, value_wei = int(ds.position_wh.values[k, i]), wei(float(ds.p2p_token.values[k, i]))
        true_wei = _credit_wei(study, position_wh, value_wei, int(ds.true_import_wh.values[k, i]),
                               int(ds.true_export_wh.values[k, i]))
        reported = (max(0, int(ds[f"meter_{r}_wh"].values[k, i])) for r in ("import", "export"))
        off_wei[k, i] = max(0, _credit_wei(study, position_wh, value_wei, *reported) - true_wei)
        if ds.settled.values[k, i]:
            settled_wei = _credit_wei(study, position_wh, value_wei, int(ds.settled_import_wh.values[k, i]),
                                      int(ds.settled_export_wh.values[k, i]))
            on_wei[k, i] = max(0, settled_wei - true_wei - wei(float(ds.audit_restituted_token.values[k, i])))
    return off_wei, on_wei


def _tokens(off_wei: np.ndarray, on_wei: np.ndarray, where: np.ndarray) -> dict:
    off, on = int(off_wei[where].sum()), int(on_wei[where].sum())
    return {"audit_off_token": round(tokens(off), 6), "audit_on_token": round(tokens(on), 6), "share_paid": _rate(on, off)}


def audit_kpis(ds: xr.Dataset, study: Study) -> dict:
    """``audit``: per attack kind and overall; empty without an auditor or without attacks."""
    if "audit_flagged" not in ds or "attack_kind" not in ds:
        return {}
    interval_s = study.market_interval_s
    kind = ds.attack_kind.values
    on_chain = "audit_status" in ds
    flagged = ds.audit_flagged.values.astype(bool) | (ds.audit_status.values > 0 if on_chain else False)
    estimated = ds.settled_from_estimate.values.astype(bool) if on_chain else np.zeros(kind.shape, dtype=bool)
    settled = ds.settled.values.astype(bool) & ~estimated
    error_wh = np.abs(ds.attack_energy_error_wh.values)
    visible = error_wh >= VISIBLE_SHARE * ds.meter_rating_w.values[np.newaxis, :] * interval_s / SECONDS_PER_HOUR
    detected = flagged | ~settled
    ends_s = (np.arange(kind.shape[0])[:, np.newaxis] + 1) * interval_s
    delay_s = ds.audit_flagged_at_s.values - ends_s if "audit_flagged_at_s" in ds else np.full(kind.shape, np.nan)
    late = ds.audit_late.values.astype(bool) if "audit_late" in ds else np.zeros(kind.shape, dtype=bool)
    checks = ds.audit_checks.values[:, np.newaxis] if "audit_checks" in ds else np.zeros((kind.shape[0], 1))
    gains = false_reading_gains_wei(ds, study) if on_chain else None
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
            **({"false_reading_tokens": _tokens(*gains, hit)} if gains else {}),
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
            "held_from_honest_token": round(float(ds.audit_held_token.values[honest].sum()), 6) if on_chain else 0.0,
            "isolated_meters": int((ds.audit_isolated_interval.values >= 0).sum()) if on_chain else 0,
            "settled_from_estimate": int(estimated.sum()),
            **({"false_reading_tokens": _tokens(*gains, attacked)} if gains else {}),
        },
    }
