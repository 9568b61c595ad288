"""Off-chain data access: each household's own store, and a worker that reads only the approving owners' stores and
hands back an aggregate, a commitment to its inputs and the answer's hash, never raw data."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gridledger.agents.data_store import COLUMNS, digest, read_columns_kw, store_path, write_store
from gridledger.agents.data_worker import (
    Owner,
    QueryResult,
    approving_owners,
    inputs_commitment,
    result_hash,
    run_query,
)

STEPS = 24
PROFILE, PEAK, EV_SHARE = 0, 1, 2


def _owners(tmp_path) -> dict[str, Owner]:
    """Three households over two hours of 5-minute steps: constant loads of 1, 2 and 4 kW; the third has an EV
    charging 3 kW in the second hour."""
    owners = {}
    for i, (name, load) in enumerate((("p01", 1.0), ("p02", 2.0), ("p03", 4.0))):
        values = {c: np.zeros(STEPS) for c in COLUMNS}
        values["load_kw"][:] = load
        if name == "p03":
            values["ev_kw"][12:] = 3.0
        path = store_path(tmp_path, name)
        write_store(path, np.arange(STEPS) * 300.0, values)
        owners[f"0x{i + 1:040x}"] = Owner(f"0x{i + 1:040x}", path, 10.0, name == "p03")
    return owners


def test_a_store_keeps_its_steps_and_its_digest_follows_every_row(tmp_path):
    owners = _owners(tmp_path)
    store = owners["0x" + "0" * 39 + "3"].store
    assert store == tmp_path / "data" / "p03.sqlite"
    assert read_columns_kw(store, "ev_kw")[:, 0].tolist() == [0.0] * 12 + [3.0] * 12
    before = digest(store)
    values = dict(zip(COLUMNS, read_columns_kw(store, *COLUMNS).T))
    values["load_kw"][5] += 1e-6
    write_store(store, np.arange(STEPS) * 300.0, values)
    assert digest(store) != before
    with pytest.raises(ValueError, match="unknown columns"):
        read_columns_kw(store, "name")


def test_only_the_approving_owners_data_is_read_and_committed_to(tmp_path):
    owners = _owners(tmp_path)
    approvals = {"0x" + "0" * 39 + "1": True, "0x" + "0" * 39 + "3": True, "0x" + "0" * 39 + "2": False}
    approving = approving_owners(owners, approvals)
    assert [o.store.stem for o in approving] == ["p01", "p03"]
    result = run_query(PROFILE, None, approving, np.random.default_rng(0))
    # Hourly means of 1 + 4 kW, then 1 + 4 + 3 kW (the EV); p02's 2 kW is not in it.
    assert result.answer == [5.0, 8.0] and result.scale == 0.0 and result.owners == 2
    assert run_query(EV_SHARE, None, approving, np.random.default_rng(0)).answer == [0.5]
    # Changing the refusing owner's store changes nothing; changing an approving owner's changes the commitment.
    refuser = owners["0x" + "0" * 39 + "2"].store
    write_store(refuser, np.arange(STEPS) * 300.0, {c: np.full(STEPS, 9.0) for c in COLUMNS})
    again = run_query(PROFILE, None, approving, np.random.default_rng(0))
    assert again == result
    write_store(approving[0].store, np.arange(STEPS) * 300.0, {c: np.full(STEPS, 1.5 if c == "load_kw" else 0.0)
                                                               for c in COLUMNS})
    changed = run_query(PROFILE, None, approving, np.random.default_rng(0))
    assert changed.answer == [5.5, 8.5] and changed.inputs_commitment != result.inputs_commitment


def test_the_result_carries_only_the_aggregate_and_hashes_that_match_its_inputs(tmp_path):
    owners = _owners(tmp_path)
    approving = approving_owners(owners, dict.fromkeys(owners, True))
    result = run_query(PEAK, 1.0, approving, np.random.default_rng(3))
    assert [f.name for f in dataclasses.fields(QueryResult)] == ["code", "answer", "scale", "owners",
                                                                  "inputs_commitment", "result_hash"]
    assert len(result.answer) == 1 and result.scale == 10.0                # sensitivity: the largest rating, 10 kW
    assert result.inputs_commitment == inputs_commitment(list(reversed(approving)))   # order does not matter
    assert result.result_hash == result_hash(result.answer)
    exact = run_query(PEAK, None, approving, np.random.default_rng(3))
    assert exact.answer == [10.0] and result.answer != exact.answer        # 1 + 2 + 4 + 3 kW in the second hour


def test_a_query_outside_the_catalogue_or_without_approvals_is_refused(tmp_path):
    owners = _owners(tmp_path)
    approving = approving_owners(owners, dict.fromkeys(owners, True))
    with pytest.raises(ValueError, match="not in the catalogue"):
        run_query(7, None, approving, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no owner approved"):
        run_query(PEAK, None, approving_owners(owners, {}), np.random.default_rng(0))
    short = approving[0].store
    write_store(short, np.arange(3) * 300.0, {c: np.zeros(3) for c in COLUMNS})
    with pytest.raises(ValueError, match="different numbers of steps"):
        run_query(PEAK, None, approving, np.random.default_rng(0))
