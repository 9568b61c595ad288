"""The catalogue of queries a requestor may run over the households' meter data, and their noisy release.

Each query is an aggregate over the approving owners' per-step data
(`QUERIES`), with its global sensitivity: the most one owner's data can
move the answer, given that every reading is bounded by the owner's
registered meter rating (the Settlement refuses larger ones). A release
adds Laplace noise of scale sensitivity / ε to each entry of the answer
(the Laplace mechanism: Dwork and Roth, *The Algorithmic Foundations of
Differential Privacy*, 2014, Thm. 3.6; ε-differential privacy against the
replacement of one owner's data; for a vector answer the sensitivity is
its L1 norm, after Gai et al.'s deliberate noise). The textbook mechanism
is three lines; IBM's diffprivlib would add scikit-learn to the
dependencies for them.

Data: ``load_kw`` (steps x owners) is each owner's load per power-flow
step [kW], ``rating_kw`` its meter rating [kW], ``has_ev`` whether it
owns an EV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gridledger.contracts.catalogue import CATALOGUE


@dataclass(frozen=True)
class Query:
    """One catalogue entry.

    Attributes
    ----------
    name : str
        How a requestor names it (``DataAccess`` stores its code, the
        position in `QUERIES`).
    unit : str
        Unit of the answer.
    answer : callable
        (load_kw, rating_kw, has_ev, step_s) -> answer, a float or a
        vector; `step_s` is the stores' step [s], 300 unless given.
    sensitivity : callable
        (load_kw, rating_kw, has_ev, step_s) -> its L1 global
        sensitivity, from public facts only (the ratings, the number of
        owners and steps, the step).
    """

    name: str
    unit: str
    answer: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray | float]
    sensitivity: Callable[[np.ndarray, np.ndarray, np.ndarray], float]


def _mean_profile_kw(load_kw: np.ndarray, steps_per_bin: int) -> np.ndarray:
    """The owners' summed load, averaged over bins of `steps_per_bin` steps (the last bin may be shorter). [kW]"""
    total = load_kw.sum(axis=1)
    return np.array([total[i:i + steps_per_bin].mean() for i in range(0, len(total), steps_per_bin)])


DEFAULT_STEP_S = 300
"""The stores' step unless a caller says otherwise: the studies' default power-flow step. [s]"""


def steps_per_hour(step_s: int) -> int:
    """Steps per bin of the aggregate profile: an hour of `step_s` steps (at least one)."""
    return max(1, 3600 // step_s)


QUERIES = (
    Query(CATALOGUE[0], "kW",
          lambda load, rating, ev, step_s=DEFAULT_STEP_S: _mean_profile_kw(load, steps_per_hour(step_s)),
          # One owner moves each bin's mean by at most its rating: L1 over the bins.
          lambda load, rating, ev, step_s=DEFAULT_STEP_S: float(rating.max()) * -(-load.shape[0]
                                                                                 // steps_per_hour(step_s))),
    Query(CATALOGUE[1], "kW",
          lambda load, rating, ev, step_s=DEFAULT_STEP_S: float(load.sum(axis=1).max()),
          # A maximum of sums moves by at most what one summand moves.
          lambda load, rating, ev, step_s=DEFAULT_STEP_S: float(rating.max())),
    Query(CATALOGUE[2], "1",
          lambda load, rating, ev, step_s=DEFAULT_STEP_S: float(np.mean(ev)),
          lambda load, rating, ev, step_s=DEFAULT_STEP_S: 1.0 / len(ev)),
)
"""The catalogue, by code (position)."""


def release(query: Query, load_kw: np.ndarray, rating_kw: np.ndarray, has_ev: np.ndarray, epsilon: float,
            rng: np.random.Generator, step_s: int = DEFAULT_STEP_S) -> tuple[np.ndarray | float, float]:
    """The answer with Laplace noise of scale sensitivity / `epsilon` on each entry, and that scale.

    Raises
    ------
    ValueError
        If `epsilon` is not positive or there is no owner.
    """
    if not epsilon > 0.0:
        raise ValueError(f"epsilon must be positive, got {epsilon!r}")
    if load_kw.shape[1] == 0:
        raise ValueError("no owner's data to answer from")
    exact = query.answer(load_kw, rating_kw, has_ev, step_s)
    scale = query.sensitivity(load_kw, rating_kw, has_ev, step_s) / epsilon
    noisy = exact + rng.laplace(0.0, scale, size=np.shape(exact))
    return (float(noisy) if np.ndim(exact) == 0 else noisy), scale


def relative_error(query: Query, load_kw: np.ndarray, rating_kw: np.ndarray, has_ev: np.ndarray,
                   epsilons: np.ndarray, draws: int, rng: np.random.Generator) -> np.ndarray:
    """Mean absolute error of `draws` releases at each of `epsilons`, over the mean magnitude of the answer. [1]"""
    exact = np.asarray(query.answer(load_kw, rating_kw, has_ev), dtype=float)
    magnitude = max(float(np.abs(exact).mean()), 1e-12)
    out = []
    for epsilon in epsilons:
        errors = [np.abs(np.asarray(release(query, load_kw, rating_kw, has_ev, float(epsilon), rng)[0]) - exact).mean()
                  for _ in range(draws)]
        out.append(float(np.mean(errors)) / magnitude)
    return np.array(out)
