"""Block space cannot be bought: huge gas limits and floods of transactions against the ledger's lanes.

Each attack runs the market operator of a four-prosumer double auction
(`small_scenario`) through one interval: orders at 1 s, the gate at 840 s,
readings at 1801 s, with the attacker's transactions sent among the
honest ones. p01 sells to p02; p03 and p04 attack. The same honest
transactions are run without the attack as the baseline: every honest
outcome (positions, credits, the operator's and the Settlement's tokens)
must equal it, and the token supply must be conserved.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from gridledger.agents.blocks import AGENT_TX_GAS_CAP, METER_TX_GAS_CAP, SENDER_TXS_PER_BLOCK
from gridledger.agents.market_operator import MarketOperator
from gridledger.contracts import market as mk
from gridledger.contracts.client import Wallet, encode_call
from gridledger.federation import DER_ENDPOINT, GRID_ENDPOINT
from gridledger.messages import decode
from gridledger.schedule import LedgerAction
from tests.ledger_agents_helpers import CENT_PER_KWH, SECRET, meter_wallets, prosumer_wallets, small_scenario

BURNER = {"abi": [], "bytecode": "0x5b600056"}
"""Creation code that jumps back to its start until its gas runs out: a transaction that uses all its gas limit."""


def honest_orders(op: MarketOperator) -> list[bytes]:
    seller, buyer, *_ = prosumer_wallets(op)
    return [mk.submit_order(seller, op.addresses, 1, is_ask=True, energy_wh=500, price_wei_per_wh=10 * CENT_PER_KWH),
            mk.submit_order(buyer, op.addresses, 1, is_ask=False, energy_wh=300, price_wei_per_wh=20 * CENT_PER_KWH)]


def honest_readings(op: MarketOperator) -> list[bytes]:
    m_seller, m_buyer, *_ = meter_wallets(op)
    return [mk.post_reading(m_seller, op.addresses, 1, import_wh=0, export_wh=300, pv_wh=300, battery_wh=0),
            mk.post_reading(m_buyer, op.addresses, 1, import_wh=350, export_wh=0, pv_wh=0, battery_wh=0)]


def run_interval(op: MarketOperator, attack_orders: list[bytes], attack_readings: list[bytes],
                 attack_source: str = DER_ENDPOINT) -> dict[str, list]:
    """Orders, gate and readings of interval 1, the attacker's transactions arriving before the honest ones.

    The attacker sends from `attack_source`. Returns the receipts each
    endpoint got back, in block order; the gate's clearing raises if it is
    not mined or reverts.
    """
    received = {DER_ENDPOINT: [], GRID_ENDPOINT: []}
    for time_s, attack, honest in ((1.0, attack_orders, [(DER_ENDPOINT, tx) for tx in honest_orders(op)]),
                                   (1801.0, attack_readings, [(GRID_ENDPOINT, tx) for tx in honest_readings(op)])):
        outbox = op.act(LedgerAction(time_s, "mine"), [(attack_source, tx) for tx in attack] + honest)
        for destination, payload in outbox:
            body = decode(payload)
            if body["type"] == "receipts":
                received[destination] += body["receipts"]
        if time_s == 1.0:
            op.act(LedgerAction(840.0, "clear", 1), [])
    return received


def honest_state(op: MarketOperator) -> dict:
    """What the honest parties hold after the interval: positions, settlements, Settlement credits, tokens."""
    settlement, token = op.addresses.settlement, op.addresses.token
    accounts = [*op.prosumers, op.wallet.address]
    return {
        "positions_wh": op.record.position_wh[1].tolist(),
        "settled": op.record.settled[1].tolist(),
        "credit_wei": [mk.read(op.chain, settlement, "Settlement", "credit_wei", a) for a in accounts],
        "settlement_tokens_wei": mk.read(op.chain, token, "GridToken", "balanceOf", settlement),
        "supply_wei": mk.read(op.chain, token, "GridToken", "totalSupply"),
    }


@pytest.fixture(scope="module")
def baseline() -> dict:
    """The honest parties' state after the interval without any attack."""
    op = MarketOperator.deploy(small_scenario(), SECRET)
    receipts = run_interval(op, [], [])
    assert all(r["status"] for rs in receipts.values() for r in rs)
    return honest_state(op)


def attacker(op: MarketOperator, index: int = 2) -> Wallet:
    return prosumer_wallets(op)[index]


def test_a_gas_limit_of_1e9_is_refused_and_the_honest_orders_readings_and_clearing_go_through(baseline):
    op = MarketOperator.deploy(small_scenario(), SECRET)
    mallory = attacker(op)
    greedy = [mallory.transact(op.addresses.auction, encode_call("DoubleAuction", "submit_order", 1, True, 100,
                                                                 CENT_PER_KWH), gas=10**9)]
    mallory.nonce -= 1                             # refused and not included: the same nonce is tried again
    greedy_again = [mallory.transact(op.addresses.settlement, b"", gas=10**9)]
    ether_before = op.chain.balance(mallory.address)
    receipts = run_interval(op, greedy, greedy_again)

    refused = [r for r in receipts[DER_ENDPOINT] if r["sender"] == mallory.address]
    assert [(r["revert_reason"], r["included"], r["nonce"]) for r in refused] == [
        (f"ledger: gas limit 1000000000 above cap {AGENT_TX_GAS_CAP} of the agents lane", False, 0)] * 2
    assert op.chain.nonce(mallory.address) == 0 and op.chain.balance(mallory.address) == ether_before
    assert all(r["status"] for r in receipts[DER_ENDPOINT] if r["sender"] != mallory.address)
    assert [r["status"] for r in receipts[GRID_ENDPOINT]] == [1, 1]
    assert op.record.volume_wh[1] == 300                                 # the gate's clearing was mined
    assert honest_state(op) == baseline
    assert op.audit()


def test_a_flood_of_max_cap_transactions_from_one_account_cannot_crowd_out_the_others(baseline):
    op = MarketOperator.deploy(small_scenario(), SECRET)
    mallory = attacker(op)
    flood = [mallory.deploy(BURNER, gas=AGENT_TX_GAS_CAP)[0] for _ in range(SENDER_TXS_PER_BLOCK + 2)]
    receipts = run_interval(op, flood, [])

    mallorys = [r for r in receipts[DER_ENDPOINT] if r["sender"] == mallory.address]
    burnt = mallorys[:SENDER_TXS_PER_BLOCK]
    assert all(r["included"] and not r["status"] and r["gas_used"] == AGENT_TX_GAS_CAP for r in burnt)
    assert [(r["revert_reason"], r["included"]) for r in mallorys[SENDER_TXS_PER_BLOCK:]] == [
        (f"ledger: gas limit {AGENT_TX_GAS_CAP} exceeds {mallory.address}'s remaining 0 in the agents lane", False)] * 2
    assert all(r["status"] for r in receipts[DER_ENDPOINT] if r["sender"] != mallory.address)
    assert [r["status"] for r in receipts[GRID_ENDPOINT]] == [1, 1]
    assert honest_state(op) == baseline
    assert op.audit()


def test_a_flood_that_fills_the_agents_lane_cannot_crowd_out_the_meter_readings_or_the_clearing(baseline):
    # The agents' lane scaled down to 4 transactions at the cap, so that two accounts can fill it in a short test.
    op = MarketOperator.deploy(small_scenario(), SECRET)
    op.lanes["agents"] = replace(op.lanes["agents"], gas=4 * AGENT_TX_GAS_CAP)
    mallory, trudy = attacker(op, 2), attacker(op, 3)
    flood = [wallet.deploy(BURNER, gas=AGENT_TX_GAS_CAP)[0] for wallet in (mallory, trudy) for _ in range(3)]
    # The flood arrives with the readings, after the orders: the interval's trades stand, its settlement is at stake.
    receipts = run_interval(op, [], flood)

    flooded = [r for r in receipts[DER_ENDPOINT] if r["sender"] in (mallory.address, trudy.address)]
    assert [r["included"] for r in flooded] == [True] * 4 + [False] * 2
    assert [r["revert_reason"] for r in flooded[4:]] == [
        f"ledger: gas limit {AGENT_TX_GAS_CAP} exceeds the agents lane's remaining 0"] * 2
    assert [r["status"] for r in receipts[GRID_ENDPOINT]] == [1, 1]   # mined after the full lane, in the same block
    assert honest_state(op) == baseline
    assert op.audit()


def test_a_flood_from_one_meter_s_key_cannot_crowd_out_the_other_meters_readings(baseline):
    op = MarketOperator.deploy(small_scenario(), SECRET)
    stolen = meter_wallets(op)[2]
    flood = [stolen.deploy(BURNER, gas=METER_TX_GAS_CAP)[0] for _ in range(SENDER_TXS_PER_BLOCK + 2)]
    receipts = run_interval(op, [], flood, attack_source=GRID_ENDPOINT)

    flooded = [r for r in receipts[GRID_ENDPOINT] if r["sender"] == stolen.address]
    assert all(r["included"] and r["gas_used"] == METER_TX_GAS_CAP for r in flooded[:SENDER_TXS_PER_BLOCK])
    assert [(r["revert_reason"], r["included"]) for r in flooded[SENDER_TXS_PER_BLOCK:]] == [
        (f"ledger: gas limit {METER_TX_GAS_CAP} exceeds {stolen.address}'s remaining 0 in the meters lane", False)] * 2
    assert [r["status"] for r in receipts[GRID_ENDPOINT] if r["sender"] != stolen.address] == [1, 1]
    assert honest_state(op) == baseline
    assert op.audit()
