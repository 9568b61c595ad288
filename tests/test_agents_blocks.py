"""A mined block by batch name: receipts back in batch order, events decoded once and filtered by contract; lanes."""

from __future__ import annotations

from gridledger.agents.blocks import (
    Lane,
    LaneSpace,
    MinedBlock,
    contract_events,
    ledger_lanes,
    mine_batches,
    receipts_by_source,
)
from gridledger.contracts import audit as au
from gridledger.contracts import flexibility as flex
from gridledger.contracts import load_shed as ls
from gridledger.contracts import reserve as rx
from gridledger.contracts import market as mk
from gridledger.contracts.chain import BLOCK_GAS_LIMIT, Chain
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


def test_lanes_cap_each_gas_limit_and_charge_the_gas_used_to_the_lane_and_its_sender():
    lane = Lane("agents", gas=100_000, tx_gas_cap=50_000, sender_gas=60_000)
    space = LaneSpace([None, lane, lane, lane, lane])
    assert space.refusal(0, "0xop", 10**9) is None                      # the operator's own: the chain decides
    assert space.refusal(1, "0xa", 50_001) == "ledger: gas limit 50001 above cap 50000 of the agents lane"
    space.charge(1, "0xa", 21_000)
    space.charge(2, "0xa", 21_000)
    assert space.refusal(3, "0xa", 50_000) == "ledger: gas limit 50000 exceeds 0xa's remaining 18000 in the agents lane"
    assert space.refusal(3, "0xb", 50_000) is None
    space.charge(3, "0xb", 50_000)
    assert space.refusal(4, "0xc", 50_000) == "ledger: gas limit 50000 exceeds the agents lane's remaining 8000"


def test_a_refused_transaction_is_left_out_with_its_nonce_unused_and_the_operator_s_batch_is_unbounded():
    payer = derive_account(SECRET, "payer")
    chain = Chain([payer.address], genesis_timestamp=GENESIS_TIMESTAMP)
    wallet = chain.wallet(payer)
    own = wallet.transact(payer.address, b"", gas=10**6)
    greedy = wallet.transact(payer.address, b"", gas=30_000)
    wallet.nonce -= 1
    fits = wallet.transact(payer.address, b"", gas=21_000)
    lanes = {"received": Lane("received", gas=10**6, tx_gas_cap=21_000, sender_gas=10**6)}
    block = mine_batches(chain, {"own": [own], "received": [greedy, fits]}, GENESIS_TIMESTAMP + 1, lanes)
    assert [r.ok for r in block.all_receipts()] == [True, False, True]
    refused = block.receipts["received"][0]
    assert (refused.block_number, refused.nonce) == (None, 1)
    assert refused.revert_reason == "ledger: gas limit 30000 above cap 21000 of the received lane"
    assert chain.nonce(payer.address) == 2


def test_honest_builders_fit_their_lanes_and_the_agents_get_half_the_block():
    lanes = ledger_lanes(n_buses=33)
    assert lanes["agents"].tx_gas_cap == ls.GAS_ENROL == 360_000          # a load shed enrolment is the largest
    assert lanes["agents"].tx_gas_cap > max(mk.GAS_BID, rx.GAS_OFFER)
    assert lanes["meters"].tx_gas_cap == ls.GAS_POST_DELIVERY > mk.GAS_POST_READING   # a delivery settles at once
    assert lanes["dso"].tx_gas_cap == ls.call_gas(ls.MAX_ENROLMENTS) > flex.post_request_gas(33)   # a call of all
    assert lanes["agents"].gas == BLOCK_GAS_LIMIT // 2
    assert lanes["auditor"].tx_gas_cap == au.GAS_FLAG                      # a flag looks back 32 intervals
    assert lanes["meters"].gas == lanes["dso"].gas == lanes["auditor"].gas == BLOCK_GAS_LIMIT
    assert all(lane.sender_gas == 32 * lane.tx_gas_cap for lane in lanes.values())
