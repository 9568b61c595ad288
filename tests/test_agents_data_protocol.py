"""The data-access protocol's actors without processes: who consents and approves, request ids, the worker reading
the approving owners' stores only, the requestor accepting only an answer that matches its hash."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from gridledger.agents.data_requests import request_id, request_index
from gridledger.agents.data_owners import approvals_due, consenting
from gridledger.agents.data_store import COLUMNS, store_path, write_store
from gridledger.agents.data_worker import result_hash
from gridledger.agents.requestor import Requestor
from gridledger.agents.worker_desk import WorkerDesk
from gridledger.contracts.client import encode_call
from gridledger.contracts.keys import derive_account
from gridledger.messages import encode
from gridledger.results import answer_entries
from gridledger.scenario import build_scenario
from gridledger.schedule import data_access_phase
from gridledger.study import parse_study
from tests.agents_der_helpers import CHAIN_ID, SECRET, decoded, notice

DATA_ACCESS = "0x" + "d" * 40


def _scenario(approve_share: float = 0.5):
    return build_scenario(parse_study({
        "name": "data", "start": "2024-06-21T10:00:00", "duration_s": 1800, "seed": 42,
        "grid": {"feeder": "case33bw"}, "prosumers": {"count": 4, "pv": {"share": 0.5}},
        "data_access": {"approve_share": approve_share, "queries": [
            {"query": "group-peak-kw", "epsilon": None, "price_per_owner": 1.0},
            {"query": "aggregate-load-profile", "epsilon": 2.0}]}}))


def _addresses(sc) -> list[str]:
    return [derive_account(SECRET, f"prosumer/{p.name}").address for p in sc.prosumers]


@given(st.integers(1, 64), st.floats(0.0, 1.0), st.integers(0, 2**32))
def test_consent_is_the_share_rounded_drawn_with_the_seed(n, share, seed):
    consent = consenting(n, share, seed)
    assert consent.sum() == round(share * n)
    assert (consent == consenting(n, share, seed)).all()


def test_different_seeds_draw_different_owners():
    assert len({tuple(consenting(32, 0.5, seed)) for seed in range(5)}) > 1


def test_only_consenting_listed_owners_approve_in_request_then_owner_order():
    a = [f"0x{i:040x}" for i in range(4)]
    requests = [{"request_id": "r1", "owners": [a[3], a[0], a[1]]}, {"request_id": "r2", "owners": [a[2]]},
                {"request_id": "r3", "owners": ["0x" + "9" * 40]}]
    consent = np.array([True, False, True, True])
    assert approvals_due(requests, a, consent) == [(3, "r1"), (0, "r1"), (2, "r2")]


@given(st.integers(0, 7))
def test_a_request_id_names_its_query_and_a_foreign_id_names_none(index):
    rid = request_id(index)
    assert len(rid) == 32 and request_index("0x" + rid.hex()) == index
    assert request_index("0x" + b"somebody/else/1".ljust(32, b"\0").hex()) is None


def _events(requests=(), approvals=(), results=(), payments=(), refunds=()) -> bytes:
    return encode("data_events", requests=list(requests), approvals=list(approvals), results=list(results),
                  payments=list(payments), refunds=list(refunds))


def _request(sc, index: int, epsilon_milli: int) -> dict:
    return {"request_id": "0x" + request_id(index).hex(), "requestor": derive_account(SECRET, "requestor").address,
            "code": 1,
            "epsilon_milli": epsilon_milli, "price_per_owner_wei": 10**18, "owners": _addresses(sc),
            "approval_deadline_timestamp": 1, "result_deadline_timestamp": 2}


def test_the_worker_reads_only_the_approving_owners_stores(tmp_path):
    sc = _scenario()
    addresses = _addresses(sc)
    for i, p in enumerate(sc.prosumers[:2]):                  # the decliners (2 and 3) have no store at all
        write_store(store_path(tmp_path, p.name), np.arange(6) * 300.0,
                    {c: np.full(6, 2.0 + i) if c == "load_kw" else np.zeros(6) for c in COLUMNS})
    desk = WorkerDesk(sc, SECRET, tmp_path)
    desk.join({**notice("uniform-double-auction"), "data_access": DATA_ACCESS})
    rid = "0x" + request_id(0).hex()
    desk.receive([("ledger/tx", _events([_request(sc, 0, 0)],
                                        [{"request_id": rid, "owner": a} for a in addresses[:2]]))])
    txs, answers = desk.compute()
    assert len(txs) == len(answers) == 1
    tx = decoded(txs[0])
    assert tx.to.lower() == DATA_ACCESS and tx.sender == derive_account(SECRET, "worker").address
    assert tx.data[:4] == encode_call("DataAccess", "post_result", b"\0" * 32, b"\0" * 32, b"\0" * 32, 2)[:4]
    assert int.from_bytes(tx.data[-32:], "big") == 2                   # owners used: the two approvals
    assert b'"answer": [5.0]' in answers[0]                           # the exact peak: 2 kW + 3 kW
    assert desk.compute() == ([], [])                                  # answered once


def test_the_worker_drops_events_that_do_not_come_from_the_ledger(tmp_path):
    sc = _scenario()
    desk = WorkerDesk(sc, SECRET, tmp_path)
    desk.join({**notice("uniform-double-auction"), "data_access": DATA_ACCESS})
    rid = "0x" + request_id(0).hex()
    desk.receive([("der/agents", _events([_request(sc, 0, 0)], [{"request_id": rid, "owner": _addresses(sc)[0]}]))])
    assert desk.compute() == ([], [])


def test_answer_entries_are_the_hourly_profile_s_bins_started_and_at_least_one():
    """24 steps of 5 min: 2 hours; 3 of 40 min: 3 bins of one step; 2 of 2 h: 2 bins; 1 step: the scalar answers' 1."""
    assert [answer_entries(24, 300), answer_entries(3, 2400), answer_entries(2, 7200), answer_entries(1, 300)] == [
        2, 3, 2, 1]


def test_an_hourly_profile_of_steps_that_do_not_divide_the_hour_fits_the_worker_and_requestor_parts(tmp_path):
    """2400-s steps over two hours: three bins of one step each (3600 // 2400 = 1), one more than the study's hours.
    p01 loads 2 kW and p02 3 kW throughout: the exact profile is 5 kW in each bin, and both parts hold all three."""
    sc = build_scenario(parse_study({
        "name": "data", "start": "2024-06-21T10:00:00", "duration_s": 7200, "power_flow_step_s": 2400,
        "market_interval_s": 2400, "seed": 42, "grid": {"feeder": "case33bw"}, "prosumers": {"count": 4},
        "data_access": {"queries": [{"query": "aggregate-load-profile", "epsilon": None, "price_per_owner": 1.0}]}}))
    for i, p in enumerate(sc.prosumers[:2]):
        write_store(store_path(tmp_path, p.name), np.arange(3) * 2400.0,
                    {c: np.full(3, 2.0 + i) if c == "load_kw" else np.zeros(3) for c in COLUMNS})
    rid = "0x" + request_id(0).hex()
    events = _events([{**_request(sc, 0, 0), "code": 0}], [{"request_id": rid, "owner": a} for a in _addresses(sc)[:2]])
    desk = WorkerDesk(sc, SECRET, tmp_path)
    desk.join({**notice("uniform-double-auction"), "data_access": DATA_ACCESS})
    desk.receive([("ledger/tx", events)])
    _, answers = desk.compute()
    requestor = Requestor(sc, SECRET, tmp_path, data_access_phase(sc.study))
    requestor.receive([("worker/compute", answers[0])])
    worker, received = desk.part().ds, requestor.part().ds
    assert worker.sizes["answer_entry"] == 3
    assert worker.data_exact_answer.values.tolist() == worker.data_released_answer.values.tolist() == [[5.0] * 3]
    assert received.data_answer.values.tolist() == [[5.0] * 3]


@pytest.fixture
def requestor(tmp_path):
    sc = _scenario()
    requestor = Requestor(sc, SECRET, tmp_path, data_access_phase(sc.study))
    requestor.join({**notice("uniform-double-auction"), "data_access": DATA_ACCESS, "chain_id": CHAIN_ID})
    return requestor


def test_the_requestor_locks_its_budget_then_proposes_every_query(requestor):
    txs = [decoded(tx) for tx in requestor.proposals()]
    assert [tx.nonce for tx in txs] == [0, 1, 2]
    assert txs[0].data[:4] == encode_call("GridToken", "approve", DATA_ACCESS, 0)[:4]
    assert int.from_bytes(txs[0].data[-32:], "big") == (10**18 + 5 * 10**16) * 4    # both prices x four owners
    assert {tx.to.lower() for tx in txs[1:]} == {DATA_ACCESS}


def test_the_requestor_accepts_a_matching_answer_only_and_cancels_a_request_nobody_approved(requestor):
    addresses = _addresses(requestor.sc)
    rid0 = "0x" + request_id(0).hex()
    answer = [5.0]
    requestor.receive([
        ("ledger/tx", _events(approvals=[{"request_id": rid0, "owner": addresses[1]}],
                              results=[{"request_id": rid0, "result_hash": "0x" + result_hash(answer).hex(),
                                        "inputs_commitment": "0x00", "owners_used": 1}])),
        ("worker/compute", encode("data_result", request_id=rid0, answer=answer, scale=0.0, owners=1)),
    ])
    txs = [decoded(tx) for tx in requestor.decisions()]
    assert [tx.data[:4] for tx in txs] == [encode_call("DataAccess", "accept", b"\0" * 32)[:4],
                                           encode_call("DataAccess", "cancel", b"\0" * 32)[:4]]
    assert [tx.data[4:36] for tx in txs] == [request_id(0), request_id(1)]     # request 1 had no approval
    assert requestor.accepted.tolist() == [1, 0] and requestor.cancelled.tolist() == [0, 1]


def test_an_answer_that_does_not_match_its_hash_is_not_accepted(requestor):
    rid0 = "0x" + request_id(0).hex()
    requestor.receive([
        ("ledger/tx", _events(approvals=[{"request_id": rid0, "owner": _addresses(requestor.sc)[0]}],
                              results=[{"request_id": rid0, "result_hash": "0x" + result_hash([5.0]).hex(),
                                        "inputs_commitment": "0x00", "owners_used": 1}])),
        ("worker/compute", encode("data_result", request_id=rid0, answer=[6.0], scale=0.0, owners=1)),
    ])
    txs = [decoded(tx) for tx in requestor.decisions()]
    assert all(tx.data[:4] != encode_call("DataAccess", "accept", b"\0" * 32)[:4] for tx in txs)
    assert requestor.accepted.tolist() == [0, 0]


def test_an_answer_from_anyone_but_the_worker_is_ignored(requestor):
    rid0 = "0x" + request_id(0).hex()
    requestor.receive([("der/agents", encode("data_result", request_id=rid0, answer=[1.0], scale=0.0, owners=1))])
    assert requestor.answers == {}
    assert requestor.inbox.read_text().count("\n") == 1                # logged all the same


def test_the_worker_answers_no_request_but_the_study_requestors_with_the_studys_terms(tmp_path):
    """Anyone may propose on chain, even under the study's id: a request from another account, or with an exact
    answer where the study asks for none, is neither answered nor a crash (an id past the queries neither)."""
    sc = _scenario()
    desk = WorkerDesk(sc, SECRET, tmp_path)
    desk.join({**notice("uniform-double-auction"), "data_access": DATA_ACCESS})
    forged = [{**_request(sc, 0, 0), "requestor": "0x" + "e" * 40}, {**_request(sc, 1, 0), "code": 0},
              {**_request(sc, 9, 0), "request_id": "0x" + request_id(9).hex()}]
    approvals = [{"request_id": r["request_id"], "owner": _addresses(sc)[0]} for r in forged]
    desk.receive([("ledger/tx", _events(forged, approvals))])
    assert desk.requests == {} and desk.compute() == ([], [])
