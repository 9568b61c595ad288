"""The embedded chain: block building, rejected transactions, calls, determinism."""

import json

import pytest

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import GENESIS_TIMESTAMP, SEED, new_market


@pytest.fixture
def chain_and_wallets():
    funded = [derive_account(SEED, f"user/{i}") for i in range(2)]
    chain = Chain([a.address for a in funded], genesis_timestamp=GENESIS_TIMESTAMP)
    return chain, [chain.wallet(a) for a in funded]


def test_invalid_transactions_get_receipts_and_the_rest_of_the_block_goes_through(chain_and_wallets):
    chain, (alice, bob) = chain_and_wallets
    deploy, registry = alice.deploy(load_artifact("Registry"))
    grant = alice.transact(registry, encode_call("Registry", "grant_role", bob.address, 2), gas=100_000)
    alice.nonce += 5
    future_nonce = alice.transact(registry, encode_call("Registry", "grant_role", bob.address, 4), gas=100_000)
    wrong_chain = bob.account.sign_transaction(
        {
            "type": 2,
            "chainId": 1,
            "nonce": 0,
            "to": registry,
            "value": 0,
            "data": b"",
            "gas": 50_000,
            "maxFeePerGas": 10**9,
            "maxPriorityFeePerGas": 0,
        }
    ).raw_transaction
    unfunded = chain.wallet(derive_account(SEED, "nobody")).transact(registry, b"", gas=50_000)
    too_little_gas = bob.transact(registry, b"", gas=20_000)
    bob.nonce -= 1
    bob_ok = bob.transact(bob.address, b"", gas=21_000, value_wei=1)

    raw_txs = [
        deploy,
        b"\x02not a transaction",
        grant,
        future_nonce,
        wrong_chain,
        unfunded,
        too_little_gas,
        bob_ok,
        grant,
    ]
    receipts = chain.mine(raw_txs, GENESIS_TIMESTAMP + 10)

    assert [r.status for r in receipts] == [1, 0, 1, 0, 0, 0, 0, 1, 0]
    rejected = [r for r in receipts if r.block_number is None]
    assert len(rejected) == 6
    assert all(r.revert_reason.startswith("invalid transaction:") for r in rejected)
    assert "Expected 2, but got 7" in receipts[3].revert_reason
    assert "chain id 1" in receipts[4].revert_reason
    assert "below intrinsic gas" in receipts[6].revert_reason
    assert "Expected 2, but got 1" in receipts[8].revert_reason
    assert receipts[1].sender is None and receipts[3].sender == alice.address
    assert receipts[0].contract_address == registry
    assert chain.block_number == 1
    assert [r.block_number for r in receipts if r.ok] == [1, 1, 1]
    assert chain.nonce(alice.address) == 2
    assert chain.nonce(bob.address) == 1
    assert mk.read(chain, registry, "Registry", "has_role", bob.address, 2)


def test_each_transaction_is_validated_against_the_state_the_earlier_ones_left(chain_and_wallets):
    chain, (alice, _) = chain_and_wallets
    newcomer = chain.wallet(derive_account(SEED, "newcomer"))
    spend = newcomer.transact(alice.address, b"", gas=21_000, value_wei=1)
    fund = alice.transact(newcomer.address, b"", gas=21_000, value_wei=10**18)
    receipts = chain.mine([spend, fund, spend], GENESIS_TIMESTAMP + 10)
    assert [r.status for r in receipts] == [0, 1, 1]
    assert receipts[0].block_number is None and "cannot afford" in receipts[0].revert_reason
    assert receipts[0].tx_hash == receipts[2].tx_hash
    assert chain.nonce(newcomer.address) == 1


def test_block_timestamps_are_chosen_and_must_increase(chain_and_wallets):
    chain, _ = chain_and_wallets
    chain.mine([], GENESIS_TIMESTAMP + 900)
    assert chain.timestamp == GENESIS_TIMESTAMP + 900
    with pytest.raises(ValueError, match="must exceed"):
        chain.mine([], GENESIS_TIMESTAMP + 900)


def test_call_needs_a_contract(chain_and_wallets):
    chain, (alice, _) = chain_and_wallets
    with pytest.raises(ValueError, match="no contract"):
        chain.call(alice.address, b"")


def test_receipt_gas_adds_up_to_the_block_gas(chain_and_wallets, tmp_path):
    chain, (alice, bob) = chain_and_wallets
    deploy, registry = alice.deploy(load_artifact("Registry"))
    grants = [
        alice.transact(registry, encode_call("Registry", "grant_role", bob.address, 2), gas=100_000) for _ in range(3)
    ]
    receipts = chain.mine([deploy, *grants], GENESIS_TIMESTAMP + 1)
    assert all(r.ok for r in receipts)
    assert receipts[1].gas_used > receipts[2].gas_used  # the first write of a slot costs more
    chain.export(tmp_path)
    last_block = json.loads((tmp_path / "blocks.jsonl").read_text().splitlines()[-1])
    assert last_block["gas_used"] == sum(r.gas_used for r in receipts)
    assert last_block["transactions"] == ["0x" + r.tx_hash.hex() for r in receipts]


def _history(seed: int, tmp_path) -> tuple[list[bytes], dict[str, bytes]]:
    market = new_market(4, seed=seed)
    interval = market.next_interval()
    book = market.submit_book(interval, [(300, 30 * CENT), (200, 25 * CENT)], [(250, 12 * CENT), (400, 20 * CENT)])
    assert market.clear(interval, book).ok
    readings = [
        mk.post_reading(m, market.addresses, interval, import_wh=40 * i, export_wh=70 * i, pv_wh=70 * i, battery_wh=0)
        for i, m in enumerate(market.meters)
    ]
    assert all(r.ok for r in market.mine(readings, market.end(interval)))
    market.chain.export(tmp_path)
    hashes = [market.chain.block_hash(n) for n in range(market.chain.block_number + 1)]
    files = {name: (tmp_path / name).read_bytes() for name in ("blocks.jsonl", "receipts.jsonl", "events.jsonl")}
    return hashes, files


def test_same_seed_and_transactions_give_identical_blocks_and_exports(tmp_path):
    first = _history(SEED, tmp_path / "a")
    second = _history(SEED, tmp_path / "b")
    assert first == second
    other_seed = _history(SEED + 1, tmp_path / "c")
    assert other_seed[0][-1] != first[0][-1]


def test_export_names_contracts_and_events(tmp_path):
    _, files = _history(SEED, tmp_path)
    events = files["events.jsonl"].decode()
    for name in ("Registry", "GridToken", "DoubleAuction", "Settlement"):
        assert f'"contract":"{name}"' in events
    for event in ("OrderSubmitted", "Trade", "Cleared", "Settled", "Deposited", "MeterBound"):
        assert f'"event":"{event}"' in events


def test_derived_accounts_depend_only_on_seed_and_label():
    assert derive_account(1, "operator").address == derive_account(1, "operator").address
    assert derive_account(1, "operator").address != derive_account(2, "operator").address
    assert derive_account(1, "operator").address != derive_account(1, "prosumer/0").address
    with pytest.raises(ValueError, match="seed"):
        derive_account(-1, "operator")
