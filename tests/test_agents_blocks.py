"""A mined block by batch name: receipts back in batch order, events decoded once and filtered by contract."""

from __future__ import annotations

from gridledger.agents.blocks import MinedBlock, contract_events, mine_batches, receipts_by_source
from gridledger.contracts.chain import Chain
from gridledger.contracts.keys import derive_account
from tests.ledger_agents_helpers import SECRET, event, receipt

GENESIS_TIMESTAMP = 1_767_225_600


def test_batches_are_mined_in_order_and_their_receipts_returned_by_name():
    payer, payee = derive_account(SECRET, "payer"), derive_account(SECRET, "payee")
    chain = Chain([payer.address], genesis_timestamp=GENESIS_TIMESTAMP)
    wallet = chain.wallet(payer)
    txs = [wallet.transact(payee.address, b"", gas=21_000) for _ in range(3)]
    block = mine_batches(chain, {"first": txs[:2], "empty": [], "last": txs[2:]}, GENESIS_TIMESTAMP + 1)
    assert {name: [r.nonce for r in rs] for name, rs in block.receipts.items()} == {"first": [0, 1], "empty": [],
                                                                                    "last": [2]}
    assert [r.nonce for r in block.all_receipts()] == [0, 1, 2]
    assert all(r.ok and r.block_number == 1 for r in block.all_receipts())
    assert block.all_events() == []                                 # plain transfers log nothing


def test_empty_batches_still_mine_a_block():
    chain = Chain([derive_account(SECRET, "payer").address], genesis_timestamp=GENESIS_TIMESTAMP)
    block = mine_batches(chain, {"closing": [], "flex": []}, GENESIS_TIMESTAMP + 5)
    assert block.receipts == {"closing": [], "flex": []}
    assert (chain.block_number, chain.timestamp) == (1, GENESIS_TIMESTAMP + 5)


def test_events_of_a_contract_in_the_block_or_in_one_batch():
    block = MinedBlock({"a": [], "b": []},
                       {"a": [event("X", "One", n=1), event("Y", "Two", n=2)], "b": [event("X", "Three", n=3)]})
    assert list(block.events_of("X")) == [("One", {"n": 1}), ("Three", {"n": 3})]
    assert list(block.events_of("X", "b")) == [("Three", {"n": 3})]
    assert list(contract_events(block.events["a"], "Y")) == [("Two", {"n": 2})]


def test_receipts_are_grouped_under_their_source_in_order_of_first_appearance():
    grouped = receipts_by_source(["der/agents", "grid/meters", "der/agents"],
                                 [receipt(1), receipt(2, ok=False), receipt(3)])
    assert list(grouped) == ["der/agents", "grid/meters"]
    assert [r["gas_used"] for r in grouped["der/agents"]] == [1, 3]
    assert grouped["grid/meters"] == [{"tx_hash": "00" * 32, "sender": "0xsender", "nonce": 0, "status": 0,
                                       "included": True, "revert_reason": "boom", "gas_used": 2}]
