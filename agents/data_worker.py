"""The off-chain compute worker of data access: runs one catalogue query over the approving owners' stores only.

Given an approved query (its catalogue code, ε, and the owners who
approved it), the worker reads those owners' stores and no other
(`gridledger.agents.data_store`), answers with the catalogue's release
(`gridledger.agents.data_catalogue`) and returns a `QueryResult`: the
answer, the noise scale, a commitment to its inputs and the hash of the
answer. The result is all a requestor ever gets; the commitment and the
hash are what goes on chain.

Inputs commitment: Keccak-256 over the approving owners' addresses
(lower case, sorted) each followed by its store's digest; anyone holding
the same stores recomputes it. Result hash: Keccak-256 of the answer's
canonical JSON (values to 1e-9).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from eth_utils import keccak

from gridledger.agents.data_catalogue import DEFAULT_STEP_S, QUERIES, release
from gridledger.agents.data_store import digest, read_columns_kw


@dataclass(frozen=True)
class Owner:
    """One approving owner, as the worker knows it: its account, store, registered meter rating [kW] and EV fact."""

    address: str
    store: Path
    rating_kw: float
    has_ev: bool


@dataclass(frozen=True)
class QueryResult:
    """What the worker hands back: the only thing a requestor receives.

    Attributes
    ----------
    code : int
        The catalogue code.
    answer : list of float
        The (noisy) answer; one entry for a scalar query.
    scale : float
        Laplace scale of the noise added to each entry (0: exact). [the query's unit]
    owners : int
        How many owners' data it used.
    inputs_commitment : bytes
        Keccak-256 commitment to the owners and their stores (module docstring).
    result_hash : bytes
        Keccak-256 of the answer.
    """

    code: int
    answer: list[float]
    scale: float
    owners: int
    inputs_commitment: bytes
    result_hash: bytes


def inputs_commitment(owners: list[Owner]) -> bytes:
    """Keccak-256 over each owner's address (lower case, sorted) and its store's digest. [32 bytes]"""
    parts = [owner.address.lower().encode() + digest(owner.store)
             for owner in sorted(owners, key=lambda o: o.address.lower())]
    return keccak(b"".join(parts))


def result_hash(answer: list[float]) -> bytes:
    """Keccak-256 of the answer's canonical JSON, values to 1e-9. [32 bytes]"""
    return keccak(json.dumps([round(v, 9) for v in answer]).encode())


def run_query(code: int, epsilon: float | None, approving: list[Owner], rng: np.random.Generator,
              clip_kw: float | None = None, step_s: int = DEFAULT_STEP_S) -> QueryResult:
    """Answer catalogue query `code` over the `approving` owners' stores only, with noise for `epsilon` (None: exact).

    Each owner's per-step load is clipped to its bound, its meter rating or
    `clip_kw` [kW] if smaller (`bounded_load_kw`), so the noise's
    sensitivity holds whatever a store holds; `step_s` is the stores' step. [s]

    Raises
    ------
    ValueError
        If the code is not in the catalogue, no owner approved, or the stores' step counts differ.
    """
    if not 0 <= code < len(QUERIES):
        raise ValueError(f"query code {code} is not in the catalogue (0 to {len(QUERIES) - 1})")
    if not approving:
        raise ValueError("no owner approved the query")
    columns = [read_columns_kw(owner.store, "load_kw", "ev_kw").sum(axis=1) for owner in approving]
    if len({len(c) for c in columns}) != 1:
        raise ValueError("the approving owners' stores hold different numbers of steps")
    load_kw, rating_kw = bounded_load_kw(np.column_stack(columns), np.array([o.rating_kw for o in approving]), clip_kw)
    has_ev = np.array([owner.has_ev for owner in approving])
    query = QUERIES[code]
    if epsilon is None:
        answer, scale = query.answer(load_kw, rating_kw, has_ev, step_s), 0.0
    else:
        answer, scale = release(query, load_kw, rating_kw, has_ev, epsilon, rng, step_s)
    values = [float(v) for v in np.atleast_1d(answer)]
    return QueryResult(code, values, float(scale), len(approving), inputs_commitment(approving), result_hash(values))


def bounded_load_kw(load_kw: np.ndarray, rating_kw: np.ndarray, clip_kw: float | None) -> tuple[np.ndarray, np.ndarray]:
    """Each owner's load (steps x owners) clipped to [0, bound] and the bounds: the rating, or `clip_kw` if smaller. [kW]"""
    bound_kw = rating_kw if clip_kw is None else np.minimum(rating_kw, clip_kw)
    return np.clip(load_kw, 0.0, bound_kw), bound_kw


def approving_owners(owners: Mapping[str, Owner], approvals: Mapping[str, bool]) -> list[Owner]:
    """The owners whose approval is True, in address order; an owner without one is left out."""
    return [owners[a] for a in sorted(owners, key=str.lower) if approvals.get(a, False)]
