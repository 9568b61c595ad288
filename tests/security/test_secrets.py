"""Secrets that stay secret: keys, sealed-bid salts and the chain id come from the run secret, never the seed.

The attacker of issue 11 (item 7) holds everything a run publishes: the
study file (its seed, hence every ZI-C price) and the chain export. Before,
keys and salts derived from the seed, so every sealed Vickrey commitment
opened before its reveal and a transaction signed in one run was valid in
any other. Here the same attacks are replayed against runs with a run
secret, end to end (real broker, real chain) and on one chain in process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml
from eth_account import Account
from eth_utils import keccak

from gridledger.agents.market_operator import MarketOperator
from gridledger.cli import EXIT_BAD_INPUT, EXIT_OK, main
from gridledger.contracts import market as mk
from gridledger.contracts.keys import CHAIN_ID_BASE, CHAIN_ID_SPAN, derive_account, derive_chain_id, derive_salt
from gridledger.contracts.market import commitment
from gridledger.messages import decode
from gridledger.run_secret import RUN_SECRET_ENV, RUN_SECRET_FILE_ENV, SecretError, choose_secret, federate_secret
from gridledger.study import load_study
from tests.e2e_helpers import ROOT, SHORT_STUDY, only_run_dir
from tests.ledger_agents_helpers import CENT_PER_KWH, small_scenario
from tests.secret_helpers import fixed_secret

SECRET_A, SECRET_B = keccak(b"tests/security: run secret A"), keccak(b"tests/security: run secret B")
ROLES = ("operator", "dso")


def seed_salt(seed: int, agent: int, interval: int) -> bytes:
    """The salt of the old, seed-derived scheme: what the attacker recomputes from the study file."""
    return keccak(f"gridledger/salt/{seed}/{agent}/{interval}".encode())


def seed_account(seed: int, label: str) -> str:
    """Address of the old, seed-derived key ``keccak256(seed || label)``."""
    return Account.from_key(keccak(seed.to_bytes(32, "big") + label.encode())).address


def opened_by_seed(seed: int, n_agents: int, n_intervals: int, committed: list[dict],
                   price_of: dict[tuple[str, int], int]) -> list[dict]:
    """Commitments the attacker opens with every seed-derived salt of every agent and interval.

    The attacker is granted each bid's true price (`price_of`, by bidder and
    lot; the seed gives every ZI-C limit price anyway), else tries them all.
    """
    salts = [seed_salt(seed, a, k) for a in range(n_agents) for k in range(n_intervals + 2)]
    every_price = set(price_of.values())
    opened = []
    for c in committed:
        key = (c["bidder"], c["lot_id"])
        prices = {price_of[key]} if key in price_of else every_price
        if any(commitment(*key, price, salt) == c["sealed"] for salt in salts for price in prices):
            opened.append(c)
    return opened


def test_the_attack_opens_what_the_old_seed_derived_salts_sealed():
    """Control: the brute force below opens a commitment sealed the old way, so its failing on a run means something."""
    bidder = seed_account(42, "prosumer/p03")
    sealed = {"bidder": bidder, "lot_id": 7, "sealed": commitment(bidder, 7, 123, seed_salt(42, 2, 5))}
    assert opened_by_seed(42, 4, 6, [sealed], {(bidder, 7): 123}) == [sealed]
    assert opened_by_seed(42, 4, 6, [sealed], {(bidder, 7): 124}) == []


# --- end to end: three real Vickrey runs of the short study -------------------------------------------


@pytest.fixture(scope="module")
def vickrey_runs(tmp_path_factory) -> dict[str, Path]:
    """The short study's first hour as a Vickrey auction: twice with secret A, once with B, side by side."""
    root = tmp_path_factory.mktemp("secret-runs")
    config = yaml.safe_load(SHORT_STUDY.read_text())
    variants = {"a1": SECRET_A, "a2": SECRET_A, "b": SECRET_B}
    procs = {}
    for name, secret in variants.items():
        runs = root / name
        runs.mkdir()
        study = runs / "study.yaml"
        study.write_text(yaml.safe_dump({**config, "duration_s": 3600,
                                                   "market": {**config["market"], "mechanism": "vickrey"}}))
        env = {key: value for key, value in os.environ.items() if key != RUN_SECRET_FILE_ENV}
        procs[name] = subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(study), "--runs", str(runs)],
                                       cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                       env={**env, RUN_SECRET_ENV: secret.hex()})
    for name, proc in procs.items():
        output, _ = proc.communicate(timeout=900)
        assert proc.returncode == 0, output
    return {name: only_run_dir(root / name, config["name"]) for name in variants}


def _events(run_dir: Path, name: str) -> list[dict]:
    rows = [json.loads(line) for line in (run_dir / "chain" / "events.jsonl").read_text().splitlines()]
    return [row["args"] for row in rows if row["event"] == name]


def _commitments(run_dir: Path) -> list[dict]:
    return [{"bidder": c["bidder"], "lot_id": c["lot_id"], "sealed": bytes.fromhex(c["commitment"][2:])}
            for c in _events(run_dir, "BidCommitted")]


@pytest.mark.e2e
def test_no_sealed_bid_of_a_run_opens_from_the_study_file_and_the_chain_export(vickrey_runs):
    """Attack: recompute the seed-derived salts and try them, with every price revealed in the run, on every
    commitment. None opens; the run's own secret opens every revealed one (the attack harness is sound)."""
    run_dir = vickrey_runs["a1"]
    study = load_study(run_dir / "study.yaml")
    with xr.open_dataset(run_dir / "results.nc") as ds:
        names = [str(name) for name in ds.prosumer.values]
    committed = _commitments(run_dir)
    price_of = {(r["bidder"], r["lot_id"]): r["price_wei_per_wh"] for r in _events(run_dir, "BidRevealed")}
    assert len(committed) >= 20 and len(price_of) == len(committed)
    assert opened_by_seed(study.seed, len(names), study.n_intervals, committed, price_of) == []
    labels = [f"{role}/{name}" for role in ("prosumer", "meter") for name in names] + list(ROLES)
    run_accounts = {a for row in _events(run_dir, "RoleGranted") for a in (row["account"], row["sender"])}
    assert not {seed_account(study.seed, label) for label in labels} & run_accounts, "no key derives from the seed"
    agent_of = {derive_account(SECRET_A, f"prosumer/{name}").address: i for i, name in enumerate(names)}
    opened = [c for c in committed
              if any(commitment(c["bidder"], c["lot_id"], price_of[c["bidder"], c["lot_id"]],
                                derive_salt(SECRET_A, agent_of[c["bidder"]], k)) == c["sealed"]
                     for k in range(study.n_intervals + 1))]
    assert len(opened) == len(committed), "the run's own secret opens every commitment: the attack was sound"


@pytest.mark.e2e
def test_the_run_secret_is_in_no_file_of_the_run_directory(vickrey_runs):
    """Neither its 32 bytes nor its hex (either case) appear in any file: study, results, logs, chain export, parts."""
    for name, secret in (("a1", SECRET_A), ("b", SECRET_B)):
        files = [p for p in vickrey_runs[name].rglob("*") if p.is_file()]
        assert len(files) > 10
        for path in files:
            content = path.read_bytes()
            assert secret not in content and secret.hex().encode() not in content.lower(), path


@pytest.mark.e2e
def test_same_secret_repeats_the_run_and_another_secret_changes_accounts_not_physics(vickrey_runs):
    a1, a2, b = (vickrey_runs[n] for n in ("a1", "a2", "b"))
    assert (a1 / "kpis.json").read_bytes() == (a2 / "kpis.json").read_bytes()
    for name in ("blocks.jsonl", "receipts.jsonl", "events.jsonl"):
        assert (a1 / "chain" / name).read_bytes() == (a2 / "chain" / name).read_bytes()
    bidders_a = {c["bidder"] for c in _commitments(a1)}
    bidders_b = {c["bidder"] for c in _commitments(b)}
    assert bidders_a and bidders_b and not bidders_a & bidders_b
    assert (a1 / "chain" / "blocks.jsonl").read_bytes() != (b / "chain" / "blocks.jsonl").read_bytes()
    with xr.open_dataset(a1 / "results.nc") as ds_a, xr.open_dataset(b / "results.nc") as ds_b:
        for physics in ("substation_p_mw", "pl_mw", "vm_pu", "loading_percent"):
            xr.testing.assert_identical(ds_a[physics], ds_b[physics])


# --- in process: the chain id, replay across runs ------------------------------------------------------


def test_chain_id_is_derived_from_the_secret_in_its_range():
    ids = {derive_chain_id(fixed_secret(n)) for n in range(64)}
    assert len(ids) == 64 and all(CHAIN_ID_BASE <= i < CHAIN_ID_BASE + CHAIN_ID_SPAN for i in ids)
    assert derive_chain_id(SECRET_A) == derive_chain_id(SECRET_A) != derive_chain_id(SECRET_B)


def test_a_transaction_signed_in_another_run_is_rejected_and_costs_nobody_anything():
    """Attack: replay run A's signed order (and one signed by run B's own key for A's chain id) on run B's chain."""
    run_a = MarketOperator.deploy(small_scenario(), SECRET_A)
    run_b = MarketOperator.deploy(small_scenario(), SECRET_B)
    (notice_b,) = {decode(body)["chain_id"] for _, body in run_b.deployment()}
    assert notice_b == run_b.chain.chain_id == derive_chain_id(SECRET_B) != run_a.chain.chain_id
    seller_a = run_a.chain.wallet(derive_account(SECRET_A, "prosumer/p01"))
    seller_b = run_b.chain.wallet(derive_account(SECRET_B, "prosumer/p01"))
    from_a = mk.submit_order(seller_a, run_a.addresses, 1, is_ask=True, energy_wh=500,
                             price_wei_per_wh=10 * CENT_PER_KWH)
    seller_b.chain_id = run_a.chain.chain_id
    b_key_a_chain = mk.submit_order(seller_b, run_b.addresses, 1, is_ask=True, energy_wh=500,
                                    price_wei_per_wh=10 * CENT_PER_KWH)
    accounts = [run_b.wallet.address, *run_b.prosumers]
    before = _holdings(run_b, accounts)
    receipts = run_b.chain.mine([from_a, b_key_a_chain], run_b.chain.timestamp + 1)
    expected = f"invalid transaction: chain id {run_a.chain.chain_id}, expected {run_b.chain.chain_id}"
    assert [(r.status, r.revert_reason, r.block_number) for r in receipts] == [(0, expected, None)] * 2
    assert _holdings(run_b, accounts) == before
    honest = run_b.chain.wallet(seller_b.account)
    (signed_for_b,) = run_b.chain.mine([mk.submit_order(honest, run_b.addresses, 1, is_ask=True, energy_wh=500,
                                                        price_wei_per_wh=10 * CENT_PER_KWH)], run_b.chain.timestamp + 1)
    assert signed_for_b.ok, "the same order signed for run B's chain id goes through"


def _holdings(op: MarketOperator, accounts: list[str]) -> dict:
    """Token supply, the Settlement's tokens and every account's tokens, ether and nonce on `op`'s chain."""
    token = op.addresses.token
    return {"supply": mk.read(op.chain, token, "GridToken", "totalSupply"),
            "settlement": mk.read(op.chain, token, "GridToken", "balanceOf", op.addresses.settlement),
            **{a: (mk.read(op.chain, token, "GridToken", "balanceOf", a), op.chain.balance(a), op.chain.nonce(a))
               for a in accounts}}


# --- where the secret comes from -----------------------------------------------------------------------


def test_secret_sources_and_their_errors(tmp_path, monkeypatch):
    monkeypatch.delenv(RUN_SECRET_ENV, raising=False)
    monkeypatch.delenv(RUN_SECRET_FILE_ENV, raising=False)
    assert choose_secret() != choose_secret(), "a fresh random secret per run"
    with pytest.raises(SecretError, match=f"no run secret: set {RUN_SECRET_ENV}"):
        federate_secret()
    kept = tmp_path / "run.secret"
    kept.write_text(SECRET_A.hex() + "\n")
    assert choose_secret(kept) == SECRET_A
    monkeypatch.setenv(RUN_SECRET_FILE_ENV, str(kept))
    assert federate_secret() == SECRET_A
    monkeypatch.setenv(RUN_SECRET_ENV, SECRET_B.hex())
    assert choose_secret() == federate_secret() == SECRET_B
    assert choose_secret(kept) == SECRET_A, "--secret-file wins over the environment"
    kept.write_text("c0ffee")
    with pytest.raises(SecretError, match="run.secret: a run secret is 64 hex digits, got 6 characters"):
        choose_secret(kept)
    monkeypatch.setenv(RUN_SECRET_ENV, "zz" * 32)
    with pytest.raises(SecretError, match=f"environment variable {RUN_SECRET_ENV}: a run secret is 64 hex digits"):
        federate_secret()


def test_runner_json_names_the_secret_file_never_the_secret(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv(RUN_SECRET_ENV, raising=False)
    args = ["runner", str(SHORT_STUDY), "--runs", str(tmp_path / "runs")]
    assert main(args) == EXIT_BAD_INPUT
    assert "runner: the federates need a run secret: give --secret-file PATH" in capsys.readouterr().err
    kept = tmp_path / "run.secret"
    kept.write_text(SECRET_A.hex())
    assert main([*args, "--secret-file", str(kept)]) == EXIT_OK
    runner = capsys.readouterr().out
    assert SECRET_A.hex() not in runner.lower()
    federates = json.loads(runner)["federates"][1:]
    assert federates and all(f["env"] == {RUN_SECRET_FILE_ENV: str(kept.resolve())} for f in federates)
