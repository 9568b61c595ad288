"""What the data-access protocol asked, approved, computed and paid, per request, with the accuracy of each answer.

Per request (``data_access.queries``): the owners listed (every
prosumer), those who approved and those whose stores the worker used
(they must be the same), whether the requestor accepted, what it paid the
owners and got back [token], and the released answer's **relative
error**: the mean absolute difference between the released and the
exact answer over the mean magnitude of the exact answer [1]. Its
**expected** value for the Laplace mechanism is the noise scale over that
magnitude (E|Lap(b)| = b; Dwork and Roth 2014, §3.3), which
`expected_relative_error` gives for any ε, as the report's plot does.

Tokens: every request's lock (price x owners listed) ends as payments
plus a refund (``tokens_balanced``).
"""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridledger.study import Study

DATA_VARIABLES = ("data_query", "data_approved", "data_used", "data_exact_answer", "data_released_answer")


def _round(value: float) -> float:
    return float(f"{value:.6g}")


def exact_magnitude(ds: xr.Dataset) -> np.ndarray:
    """Mean magnitude of each request's exact answer (NaN past its length ignored). [the query's unit]"""
    return np.nanmean(np.abs(ds.data_exact_answer.values), axis=1)


def expected_relative_error(sensitivity: np.ndarray, magnitude: np.ndarray, epsilon: np.ndarray) -> np.ndarray:
    """The Laplace mechanism's expected relative error, sensitivity / (ε x magnitude), broadcast. [1]"""
    return sensitivity / (np.asarray(epsilon) * magnitude)


def data_kpis(ds: xr.Dataset, study: Study) -> dict:
    """``{"data_access": {...}}`` for a run with ``data_access``, else ``{}``."""
    if study.data_access is None or not all(v in ds for v in DATA_VARIABLES):
        return {}
    magnitude = exact_magnitude(ds)
    requests = []
    for i, query in enumerate(study.data_access.queries):
        released, exact = ds.data_released_answer.values[i], ds.data_exact_answer.values[i]
        error = np.nanmean(np.abs(released - exact)) / magnitude[i] if np.isfinite(magnitude[i]) else np.nan
        expected = (expected_relative_error(ds.data_sensitivity.values[i], magnitude[i], query.epsilon)
                    if query.epsilon is not None else 0.0)
        paid = float(ds.data_paid_token.values[i].sum())
        refunded = float(ds.data_refunded_token.values[i])
        lock = query.price_per_owner * ds.sizes["prosumer"]
        requests.append({
            "query": query.query, "epsilon": query.epsilon, "clip_kw": query.clip_kw,
            "owners_listed": int(ds.sizes["prosumer"]), "approved": int(ds.data_approved.values[i].sum()),
            "used": int(ds.data_used.values[i].sum()),
            "used_only_approved": bool((ds.data_used.values[i] <= ds.data_approved.values[i]).all()),
            "accepted": bool(ds.data_accepted.values[i]), "cancelled": bool(ds.data_cancelled.values[i]),
            "paid_token": _round(paid), "refunded_token": _round(refunded),
            "tokens_balanced": bool(np.isclose(paid + refunded, lock, rtol=0, atol=1e-9)),
            "relative_error": _round(error) if np.isfinite(error) else None,
            "expected_relative_error": _round(expected) if np.isfinite(expected) else None,
        })
    gas = {str(a): (int(g) if np.isfinite(g) else None)
           for a, g in zip(ds.data_action.values, ds.data_action_gas.values)} if "data_action_gas" in ds else {}
    return {"data_access": {
        "requests": requests,
        "paid_token": _round(sum(r["paid_token"] for r in requests)),
        "tokens_balanced": all(r["tokens_balanced"] for r in requests),
        "gas_per_action": gas,
    }}
