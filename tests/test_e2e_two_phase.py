"""Two-phase settlement in a real federation: prepared trades commit on both meters' confirmations, and a crash
between the phases loses nothing and pays nothing twice.

``studies/two-phase.yaml`` runs through the CLI: half the prosumers trade
bilaterally; from 10:30 to 11:00 the meters of p01-p10 lose their
confirmations (a crash of their link between the phases) and their trades
roll back at the deadline. A second run is killed outright: the grid
federate (every meter) dies after the first trades were prepared and
before any was confirmed. Money is checked from the chain export's
``Transfer`` events alone.
"""

from __future__ import annotations

import json
import os
import signal
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from gridledger.agents.bilateral import trade_interval
from gridledger.contracts.keys import derive_account
from gridledger.units import price_wei_per_wh
from tests.e2e_helpers import ROOT, TEST_SECRET, events, only_run_dir, run_variants, start_run, wait_for_progress

pytestmark = pytest.mark.e2e

STUDY = ROOT / "studies" / "two-phase.yaml"
SILENT = {derive_account(TEST_SECRET, f"prosumer/p{i:02d}").address for i in range(1, 11)}
SILENT_INTERVALS = {2, 3}
PRICE_WEI_PER_WH = price_wei_per_wh(0.02)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("two-phase")
    return run_variants(STUDY, {root: {}})[root]


def _contract(run_dir: Path) -> str:
    """The TwoPhaseTrade's address: where its first proposal was logged."""
    return events(run_dir, "Proposed")[0]["address"]


def _flows(run_dir: Path, contract: str) -> tuple[int, dict[str, int]]:
    """Tokens the contract holds by its Transfer events, and what it paid out to each account. [wei]"""
    held, paid = 0, defaultdict(int)
    for t in events(run_dir, "Transfer"):
        args = t["args"]
        if args["receiver"] == contract:
            held += args["value"]
        elif args["sender"] == contract:
            held -= args["value"]
            paid[args["receiver"]] += args["value"]
    return held, paid


def _open_locks(run_dir: Path) -> int:
    """What the open trades should hold: the payment of a proposed one, the payment and collateral of a prepared."""
    proposed = {e["args"]["trade_id"]: e["args"]["energy_wh"] * e["args"]["price_wei_per_wh"]
                for e in events(run_dir, "Proposed")}
    prepared = {e["args"]["trade_id"] for e in events(run_dir, "Prepared")}
    closed = {e["args"]["trade_id"] for e in events(run_dir, "Committed") + events(run_dir, "RolledBack")}
    return sum(value * (2 if tid in prepared else 1) for tid, value in proposed.items() if tid not in closed)


def test_trades_with_both_meters_commit_and_those_a_silent_meter_left_roll_back(run):
    run_dir, ds = run
    proposed = {e["args"]["trade_id"]: e["args"] for e in events(run_dir, "Proposed")}
    committed = {e["args"]["trade_id"] for e in events(run_dir, "Committed")}
    rolled_back = {e["args"]["trade_id"] for e in events(run_dir, "RolledBack")}
    assert proposed and committed and rolled_back and not committed & rolled_back
    for tid, args in proposed.items():
        k = trade_interval(tid)
        silent_side = k in SILENT_INTERVALS and {args["buyer"], args["seller"]} & SILENT
        assert (tid in rolled_back) == bool(silent_side), (k, args)
    assert all(args["price_wei_per_wh"] == PRICE_WEI_PER_WH for args in proposed.values())
    assert ds.two_phase_committed.sum() == len(committed) and ds.two_phase_rolled_back.sum() == len(rolled_back)


def test_a_committed_trade_pays_its_seller_once_and_a_rolled_back_one_returns_every_lock(run):
    run_dir, _ = run
    contract = _contract(run_dir)
    held, paid = _flows(run_dir, contract)
    proposed = {e["args"]["trade_id"]: e["args"] for e in events(run_dir, "Proposed")}
    terminal = Counter(e["args"]["trade_id"] for e in events(run_dir, "Committed") + events(run_dir, "RolledBack"))
    assert set(terminal.values()) == {1}                                 # each trade ends once
    expected = defaultdict(int)
    for e in events(run_dir, "Committed"):
        args = proposed[e["args"]["trade_id"]]
        assert e["args"]["paid_wei"] == args["energy_wh"] * args["price_wei_per_wh"]
        expected[args["seller"]] += 2 * e["args"]["paid_wei"]             # the payment and its own collateral back
    for e in events(run_dir, "RolledBack"):
        args = proposed[e["args"]["trade_id"]]
        value = args["energy_wh"] * args["price_wei_per_wh"]
        expected[args["buyer"]] += value
        expected[args["seller"]] += value
    assert dict(paid) == dict(expected)
    assert held == _open_locks(run_dir)
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["token_supply_conserved"]
    assert kpis["two_phase"]["rolled_back"] == len(events(run_dir, "RolledBack"))


@pytest.mark.slow                     # a second federation of its own: `make test-all` (make test's budget)
def test_a_federate_killed_between_the_phases_leaves_every_lock_held_and_nothing_paid(tmp_path):
    proc = start_run(STUDY, tmp_path)
    record = wait_for_progress(tmp_path, "two-phase", "grid", 1200)     # trades of 10:15 prepared, none confirmed
    os.kill(record["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1, out
    run_dir = only_run_dir(tmp_path, "two-phase")
    prepared = {e["args"]["trade_id"] for e in events(run_dir, "Prepared")}
    assert prepared and not events(run_dir, "Confirmed") and not events(run_dir, "Committed")
    held, paid = _flows(run_dir, _contract(run_dir))
    assert not paid and held == _open_locks(run_dir) > 0
