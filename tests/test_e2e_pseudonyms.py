"""Trading under per-interval pseudonyms in a real federation: every traded interval's orders, positions and
readings name one-time accounts only, each used in one interval, registered through blind signatures and the relay;
money is conserved and the linkage experiment runs on the real export.

``studies/pseudonyms.yaml`` runs through the CLI, shortened to 90 minutes
(six intervals: 0 and 1 fill the registration pipeline, 2 to 5 are
traded). What the chain shows is read from the export alone; which
household is behind which pseudonym from the owners' keys (the test
secret).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest
import yaml

from gridledger.agents.linkage_study import measure
from gridledger.agents.pseudonym_plan import pseudonym_addresses
from gridledger.contracts.keys import derive_account
from gridledger.study_pseudonyms import FIRST_INTERVAL
from tests.e2e_helpers import ROOT, TEST_SECRET, events, run_variants

pytestmark = pytest.mark.e2e

STUDY = ROOT / "studies" / "pseudonyms.yaml"
N_INTERVALS, N_HOUSEHOLDS = 6, 32
TRADED = range(FIRST_INTERVAL, N_INTERVALS)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("pseudonyms")
    config = yaml.safe_load(STUDY.read_text())
    short = root / "pseudonyms.yaml"
    short.write_text(yaml.safe_dump({**config, "duration_s": N_INTERVALS * config["market_interval_s"]}))
    return run_variants(short, {root: {}})[root]


def _owners() -> list[str]:
    return [derive_account(TEST_SECRET, f"prosumer/p{i:02d}").address for i in range(1, N_HOUSEHOLDS + 1)]


def _pseudonyms() -> list[list[str]]:
    keys = [derive_account(TEST_SECRET, f"prosumer/p{i:02d}").key for i in range(1, N_HOUSEHOLDS + 1)]
    return pseudonym_addresses(keys, N_INTERVALS)


def test_every_traded_interval_registers_one_pseudonym_per_household_from_its_ticket(run):
    run_dir, ds = run
    tickets = Counter(e["args"]["interval"] for e in events(run_dir, "TicketBought"))
    registered = defaultdict(set)
    for e in events(run_dir, "PseudonymRegistered"):
        registered[e["args"]["interval"]].add(e["args"]["pseudonym"])
    assert dict(tickets) == {k: N_HOUSEHOLDS for k in TRADED}
    assert {k: len(v) for k, v in registered.items()} == {k: N_HOUSEHOLDS for k in TRADED}
    truth = _pseudonyms()
    assert all(registered[k] == set(truth[k]) for k in TRADED)
    buyers = {e["args"]["buyer"] for e in events(run_dir, "TicketBought")}
    assert buyers == set(_owners())                                 # tickets come from the households' own accounts
    assert list(ds.pseudonyms_registered.values) == [0, 0] + [N_HOUSEHOLDS] * len(TRADED)
    assert int(ds.pseudonym_registrations_refused.sum()) == 0
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["pseudonyms"] == {"tickets": 4 * N_HOUSEHOLDS, "registered": 4 * N_HOUSEHOLDS, "refused": 0,
                                  "intervals_traded": len(TRADED)}
    assert "<h2>Pseudonyms</h2>" in (run_dir / "report.html").read_text()


def test_orders_positions_and_readings_of_traded_intervals_name_one_time_accounts_only(run):
    run_dir, _ = run
    owners = set(_owners())
    used_in: dict[str, set[int]] = defaultdict(set)
    for name, field in (("OrderSubmitted", "account"), ("Trade", "account"), ("Settled", "prosumer")):
        rows = events(run_dir, name)
        assert rows, name
        for e in rows:
            k, account = e["args"]["interval"], e["args"][field]
            if k >= FIRST_INTERVAL:
                assert account not in owners, (name, k)
                used_in[account].add(k)
            else:
                assert name == "Settled" and account in owners     # intervals 0 and 1: the bound meters' readings
    assert all(len(ks) == 1 for ks in used_in.values())             # a pseudonym appears in one interval only
    truth = _pseudonyms()
    for account, (k,) in ((a, tuple(ks)) for a, ks in used_in.items()):
        assert account in truth[k]
    settled = {(e["args"]["interval"], e["args"]["prosumer"]) for e in events(run_dir, "Settled")}
    assert {(k, a) for k in TRADED for a in truth[k]} <= settled    # every pseudonym's meter posted its reading


def test_results_count_each_pseudonym_to_its_household_and_money_is_conserved(run):
    run_dir, ds = run
    truth = _pseudonyms()
    household = {a: i for row in truth for i, a in enumerate(row) if a}
    position = np.zeros((N_INTERVALS, N_HOUSEHOLDS), dtype=np.int64)
    for e in events(run_dir, "Trade"):
        position[e["args"]["interval"], household[e["args"]["account"]]] += e["args"]["position_wh"]
    assert np.array_equal(ds.position_wh.values, position)
    assert position[FIRST_INTERVAL:].any() and not position[:FIRST_INTERVAL].any()
    assert [list(row) for row in ds.pseudonym_address.values] == truth
    assert ds.attrs["ledger_token_supply_conserved"] == 1                # incl. the pseudonyms' credit and bonds
    assert float(ds.unpaid_token.sum()) == 0.0                      # each bond paid its pseudonym's whole bill


def test_the_linkage_experiment_reads_the_real_pseudonymous_export(run):
    run_dir, _ = run
    figures = measure(Path(run_dir), seed=0)
    assert figures.pseudonyms_source.startswith("the run's own (real export")
    assert figures.fixed.tracking.accuracy == 1.0
    assert figures.pseudonyms.tracking.accuracy < figures.fixed.tracking.accuracy
    assert figures.pseudonyms.n_tracks >= N_HOUSEHOLDS


def test_where_a_pseudonym_sits_in_its_block_says_nothing_of_its_household(run):
    """An observer who pairs the r-th registration, order or reading of an interval with the r-th ticket of that
    interval (tickets come from the households' fixed accounts, in the households' sending order) names the owner
    no better than chance: the relay orders what it carries as good as randomly."""
    run_dir, _ = run
    household = {a: i for row in _pseudonyms() for i, a in enumerate(row) if a}
    owner_rank = {a: i for i, a in enumerate(_owners())}
    tickets: dict[int, list[int]] = defaultdict(list)
    for e in events(run_dir, "TicketBought"):
        tickets[e["args"]["interval"]].append(owner_rank[e["args"]["buyer"]])
    for name, field in (("PseudonymRegistered", "pseudonym"), ("OrderSubmitted", "account"), ("Settled", "prosumer")):
        seen: dict[int, list[int]] = defaultdict(list)
        for e in events(run_dir, name):
            if e["args"]["interval"] in TRADED:
                seen[e["args"]["interval"]].append(household[e["args"][field]])
        hits = sum(h == t for k, order in seen.items() for h, t in zip(order, tickets[k]))
        total = sum(len(order) for order in seen.values())
        assert total and hits / total < 0.2, (name, hits, total)      # chance: 1/32; in sending order it is 1
