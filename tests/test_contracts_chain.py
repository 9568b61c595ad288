"""The embedded chain: block building, rejected transactions, calls, determinism."""

import json

import pytest

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain, ChainExport
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import GENESIS_TIMESTAMP, SEED, START_TIMESTAMP, new_market
from tests.secret_helpers import fixed_secret


@pytest.fixture
def chain_and_wallets():
    funded = [derive_account(fixed_secret(SEED), f"user/{i}") for i in range(2)]
    chain = Chain([a.address for a in funded], genesis_timestamp=GENESIS_TIMESTAMP)
    return chain, [chain.wallet(a) for a in funded]


def test_invalid_transactions_get_receipts_and_the_rest_of_the_block_goes_through(chain_and_wallets):
    chain, (alice, bob) = chain_and_wallets
    deploy, registry = alice.deploy(load_artifact("Registry"), START_TIMESTAMP)
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
    unfunded = chain.wallet(derive_account(fixed_secret(SEED), "nobody")).transact(registry, b"", gas=50_000)
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
    newcomer = chain.wallet(derive_account(fixed_secret(SEED), "newcomer"))
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


def test_the_block_is_charged_the_gas_used_not_the_gas_limit():
    # Transfers of 21,000 gas each under a limit of 50,000, in a block of 100,000 gas: charging the
    # limits would fit two; charging what was used fits three, leaving 37,000 for a fourth.
    payer = derive_account(fixed_secret(SEED), "user/0")
    chain = Chain([payer.address], genesis_timestamp=GENESIS_TIMESTAMP, block_gas_limit=100_000)
    wallet = chain.wallet(payer)
    transfers = [wallet.transact(payer.address, b"", gas=50_000) for _ in range(4)]
    wallet.nonce -= 1
    fitting = wallet.transact(payer.address, b"", gas=37_000)   # the fourth, re-signed with the remaining gas
    receipts = chain.mine([*transfers, fitting], GENESIS_TIMESTAMP + 1)
    assert [r.status for r in receipts] == [1, 1, 1, 0, 1]
    assert receipts[3].block_number is None
    assert receipts[3].revert_reason == "invalid transaction: gas 50000 exceeds the block's remaining 37000"
    assert chain.nonce(payer.address) == 4                       # the excluded one's nonce went to the next
    assert sum(r.gas_used for r in receipts) == 4 * 21_000


def test_a_gas_limit_above_the_block_s_remaining_gas_is_excluded_whatever_the_block_used():
    payer = derive_account(fixed_secret(SEED), "user/0")
    chain = Chain([payer.address], genesis_timestamp=GENESIS_TIMESTAMP, block_gas_limit=100_000)
    wallet = chain.wallet(payer)
    too_big = wallet.transact(payer.address, b"", gas=100_001)
    (receipt,) = chain.mine([too_big], GENESIS_TIMESTAMP + 1)
    assert receipt.revert_reason == "invalid transaction: gas 100001 exceeds the block's remaining 100000"
    assert chain.nonce(payer.address) == 0


class RefuseSecond:
    """A block-space rule that refuses the second transaction and records what the others used."""

    def __init__(self):
        self.charged: list[tuple[int, str, int]] = []

    def refusal(self, index: int, sender: str, gas_limit: int) -> str | None:
        return f"ledger: not {index} of {gas_limit}" if index == 1 else None

    def charge(self, index: int, sender: str, gas_used: int) -> None:
        self.charged.append((index, sender, gas_used))


def test_the_builder_s_block_space_rule_refuses_before_the_chain_with_its_own_reason(chain_and_wallets):
    chain, (alice, _) = chain_and_wallets
    first, second = (alice.transact(alice.address, b"", gas=30_000) for _ in range(2))
    alice.nonce -= 1
    again = alice.transact(alice.address, b"", gas=21_000)
    space = RefuseSecond()
    receipts = chain.mine([first, second, again], GENESIS_TIMESTAMP + 1, space)
    assert [r.status for r in receipts] == [1, 0, 1]
    assert receipts[1].revert_reason == "ledger: not 1 of 30000" and receipts[1].block_number is None
    assert space.charged == [(0, alice.address, 21_000), (2, alice.address, 21_000)]
    assert chain.nonce(alice.address) == 2


def test_call_needs_a_contract(chain_and_wallets):
    chain, (alice, _) = chain_and_wallets
    with pytest.raises(ValueError, match="no contract"):
        chain.call(alice.address, b"")


def test_receipt_gas_adds_up_to_the_block_gas(chain_and_wallets, tmp_path):
    chain, (alice, bob) = chain_and_wallets
    deploy, registry = alice.deploy(load_artifact("Registry"), START_TIMESTAMP)
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


def test_same_secret_and_transactions_give_identical_blocks_and_exports(tmp_path):
    first = _history(SEED, tmp_path / "a")
    second = _history(SEED, tmp_path / "b")
    assert first == second
    other_secret = _history(SEED + 1, tmp_path / "c")
    assert other_secret[0][-1] != first[0][-1]


def test_export_names_contracts_and_events(tmp_path):
    _, files = _history(SEED, tmp_path)
    events = files["events.jsonl"].decode()
    for name in ("Registry", "GridToken", "DoubleAuction", "Settlement"):
        assert f'"contract":"{name}"' in events
    for event in ("OrderSubmitted", "Trade", "Cleared", "Settled", "Deposited", "MeterBound"):
        assert f'"event":"{event}"' in events


def test_derived_accounts_depend_only_on_secret_and_label():
    one, two = fixed_secret(1), fixed_secret(2)
    assert derive_account(one, "operator").address == derive_account(one, "operator").address
    assert derive_account(one, "operator").address != derive_account(two, "operator").address
    assert derive_account(one, "operator").address != derive_account(one, "prosumer/0").address
    for not_a_secret in (1, one[1:], one + b"\x00"):
        with pytest.raises(ValueError, match="keys: a run secret is 32 bytes"):
            derive_account(not_a_secret, "operator")


def test_export_appended_block_by_block_equals_one_export_at_the_end(tmp_path):
    """Each append writes the new block, its receipts (a rejected one included) and events; the bytes match `export`."""
    market = new_market(4, seed=SEED)
    appended = tmp_path / "appended"
    with ChainExport(market.chain, appended) as export:
        interval = market.next_interval()
        book = market.submit_book(interval, [(300, 30 * CENT), (200, 25 * CENT)], [(250, 12 * CENT), (400, 20 * CENT)])
        export.append()
        assert market.clear(interval, book).ok
        export.append()
        readings = [
            mk.post_reading(m, market.addresses, interval, import_wh=40 * i, export_wh=70 * i, pv_wh=70 * i, battery_wh=0)
            for i, m in enumerate(market.meters)
        ]
        receipts = market.mine([*readings[:2], readings[0], *readings[2:]], market.end(interval))
        assert [r.ok for r in receipts] == [True, True, False, True, True]
        export.append()
        on_disk = {name: (appended / name).read_text().splitlines() for name in ("blocks.jsonl", "receipts.jsonl")}
        assert json.loads(on_disk["blocks.jsonl"][-1])["number"] == market.chain.block_number
        assert json.loads(on_disk["receipts.jsonl"][-1])["tx_hash"] == "0x" + receipts[-1].tx_hash.hex()
    market.chain.export(tmp_path / "at_end")
    for name in ("blocks.jsonl", "receipts.jsonl", "events.jsonl"):
        assert (appended / name).read_bytes() == (tmp_path / "at_end" / name).read_bytes(), name


def test_bytes_of_an_unknown_transaction_type_get_a_rejected_receipt_and_the_block_goes_on(chain_and_wallets):
    chain, (alice, bob) = chain_and_wallets
    honest = alice.transact(bob.address, b"", gas=21_000)
    # EIP-2718: a first byte below 0x7f names a typed transaction; 0x7e is no type py-evm knows.
    unknown = b"\x7e" + b"\x00" * 40
    rejected, ok = chain.mine([unknown, honest], GENESIS_TIMESTAMP + 10)
    assert not rejected.ok and rejected.revert_reason.startswith("invalid transaction: undecodable or badly signed")
    assert rejected.block_number is None
    assert ok.ok
