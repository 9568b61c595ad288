"""Data access by contract in a real federation: the requestor gets answers, never data; decliners stay out.

One hour of ``studies/data-access.yaml`` (10:00-11:00 on case33bw, 32
prosumers, 75 % consenting, three queries), run through the CLI with the
real broker and one process per federate. Everything the requestor's
process received is in its inbox; the owners' stores are in ``data/``;
the chain export holds what was posted and paid.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest
import yaml

from gridledger.agents.data_catalogue import QUERIES
from gridledger.agents.data_owners import consenting
from gridledger.agents.data_store import COLUMNS, read_columns_kw, store_path
from gridledger.agents.data_worker import Owner, bounded_load_kw, inputs_commitment, result_hash
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.agents.requestor import INBOX
from gridledger.cli import main
from gridledger.contracts.keys import derive_account
from gridledger.process import EXIT_BAD_INPUT, EXIT_OK
from gridledger.report import LINKAGE_FILE
from gridledger.roster import load_roster
from gridledger.units import W_PER_KW, WEI_PER_TOKEN
from tests.e2e_helpers import ROOT, TEST_SECRET, events, run_variants

pytestmark = pytest.mark.e2e

STUDY = ROOT / "studies" / "data-access.yaml"
ALLOWED_TO_REQUESTOR = {"deployed", "receipts", "data_events", "data_result"}


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    study = root / "data.yaml"
    config = yaml.safe_load(STUDY.read_text())
    study.write_text(yaml.safe_dump({**config, "name": "data", "start": "2024-06-21T10:00:00", "duration_s": 3600}))
    (root / "runs").mkdir()
    return run_variants(study, {root / "runs": {}})[root / "runs"]


def _inbox(run_dir) -> list[tuple[str, dict]]:
    lines = (run_dir / INBOX).read_text().splitlines()
    return [(row["source"], json.loads(row["message"])) for row in map(json.loads, lines)]


def _owners(run_dir) -> tuple[list[Owner], np.ndarray]:
    """Every prosumer as an owner (its account from the test's run secret), in prosumer order, and who consented."""
    sc = load_roster(run_dir)
    ratings = [limits.meter_rating_w / W_PER_KW for limits in prosumer_limits(sc)]
    owners = [Owner(derive_account(TEST_SECRET, f"prosumer/{p.name}").address, store_path(run_dir, p.name), r, False)
              for p, r in zip(sc.prosumers, ratings)]
    return owners, consenting(len(owners), sc.study.data_access.approve_share, sc.study.seed)


def test_the_requestor_receives_answers_and_chain_events_only_never_an_owners_data(run):
    run_dir, _ = run
    received = _inbox(run_dir)
    assert {body["type"] for _, body in received} == ALLOWED_TO_REQUESTOR
    assert {source for source, _ in received} == {"ledger/tx", "worker/compute"}
    # No number the requestor received is a reading of any store: each store's steps hold 12 per column here.
    numbers = {round(float(x), 6) for _, body in received
               for x in re.findall(r"-?\d+\.\d+(?:e-?\d+)?", json.dumps(body))}
    raw = {round(float(v), 6) for owner in _owners(run_dir)[0]
           for v in read_columns_kw(owner.store, *COLUMNS).ravel() if v != 0.0}
    assert len(raw) > 500 and not numbers & raw
    answers = [body for _, body in received if body["type"] == "data_result"]
    assert [len(a["answer"]) for a in answers] == [1, 1, 1]        # one hour: one profile bin, a peak, a share


def test_the_worker_used_the_approving_owners_only_and_committed_to_their_stores(run):
    run_dir, ds = run
    owners, consent = _owners(run_dir)
    approving = [o for o, c in zip(owners, consent) if c]
    assert 0 < len(approving) < len(owners)
    assert (ds.data_approved.values == consent).all() and (ds.data_used.values == consent).all()
    posted = events(run_dir, "ResultPosted")
    assert len(posted) == 3
    commitment = "0x" + inputs_commitment(approving).hex()
    assert all(e["args"]["inputs_commitment"] == commitment for e in posted)
    assert commitment != "0x" + inputs_commitment(owners).hex()
    # The exact answers equal the catalogue over the approving owners' stores only, recomputed here.
    load_kw = np.column_stack([read_columns_kw(o.store, "load_kw", "ev_kw").sum(axis=1) for o in approving])
    ratings = np.array([o.rating_kw for o in approving])
    for i, query in enumerate(ds.data_query.values):
        if query == "ev-share":
            continue                                          # the EV facts are the roster's, not the stores'
        expected = QUERIES[["aggregate-load-profile", "group-peak-kw"].index(query)].answer(
            *bounded_load_kw(load_kw, ratings, None), np.zeros(len(approving), dtype=bool))
        assert np.allclose(np.atleast_1d(expected), ds.data_exact_answer.values[i, :np.size(expected)])


def test_each_answer_matches_the_hash_on_chain_and_was_accepted(run):
    run_dir, ds = run
    answers = {body["request_id"]: body["answer"] for _, body in _inbox(run_dir) if body["type"] == "data_result"}
    posted = {e["args"]["request_id"]: e["args"]["result_hash"] for e in events(run_dir, "ResultPosted")}
    assert set(answers) == set(posted)
    assert all("0x" + result_hash(answers[rid]).hex() == posted[rid] for rid in posted)
    assert ds.data_accepted.values.tolist() == [1, 1, 1]
    assert np.allclose(ds.data_answer.values, ds.data_released_answer.values, equal_nan=True)


def test_payments_go_to_the_approving_owners_and_conserve_tokens(run):
    run_dir, ds = run
    _, consent = _owners(run_dir)
    prices = ds.data_price_per_owner_token.values
    assert np.allclose(ds.data_paid_token.values, prices[:, None] * consent[None, :])
    assert np.allclose(ds.data_refunded_token.values, prices * (~consent).sum())
    paid = sum(e["args"]["amount_wei"] for e in events(run_dir, "Paid"))
    refunded = sum(e["args"]["amount_wei"] for e in events(run_dir, "Refunded"))
    locked = sum(round(p * WEI_PER_TOKEN) for p in prices) * len(consent)
    assert paid + refunded == locked
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["token_supply_conserved"] and kpis["data_access"]["tokens_balanced"]
    assert set(kpis["data_access"]["gas_per_action"]) == {"propose", "approve", "post_result", "accept", "cancel"}


def test_the_stores_hold_each_prosumers_metered_consumption_step_by_step(run):
    run_dir, ds = run
    owners, _ = _owners(run_dir)
    for i, owner in enumerate(owners):
        columns = read_columns_kw(owner.store, "load_kw", "ev_kw")
        assert np.allclose(columns.sum(axis=1), ds.load_p_mw.values[:, i] * 1000)


def test_the_report_shows_the_data_access_table_and_the_accuracy_plot(run):
    run_dir, _ = run
    html = (run_dir / "report.html").read_text()
    assert "<h2>Data access</h2>" in html and 'data-request="2"' in html
    assert (run_dir / "plots" / "data_accuracy.png").exists()


def test_the_linkage_command_measures_the_run_and_adds_its_table_to_the_report(run, tmp_path):
    run_dir, _ = run
    assert main(["linkage", str(run_dir)]) == EXIT_OK
    linkage = json.loads((run_dir / LINKAGE_FILE).read_text())
    rows = {metric: (fixed, pseudonyms) for metric, fixed, pseudonyms in linkage["rows"]}
    fixed, pseudonyms = rows["tracking accuracy (links)"]
    assert fixed.startswith("1.000") and float(pseudonyms.split()[0]) < 1.0   # pseudonyms break some links
    assert "What the chain reveals" in (run_dir / "report.html").read_text()
    assert main(["linkage", str(tmp_path)]) == EXIT_BAD_INPUT
