"""One mined block: its transactions in named batches and lanes, its receipts by batch, its events decoded once.

The ledger's market operator puts several batches into one block (its own
duties, the transactions it received, the closing of an auction, the
flexibility awards, the charging allocation). Each batch gets its receipts
back by name, and every log of the block is decoded once, so the record,
the desks and the messages to the agents read the same events.

Block space cannot be bought. The chain charges the gas a transaction
used (`gridledger.contracts.chain`); on top of that a received
transaction is mined in the lane of the endpoint it came from, which caps
its gas limit at the largest one its honest builders sign and bounds what
the lane's transactions may use together, and each sender gets a slice of
its lane. The agents' lane gets half the block, so however the agents fill
it, the meters' readings, the DSO's requests and the operator's own
duties, clearing and awards (in no lane) still find room; one agent's or
one meter's key cannot fill its lane alone.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from gridledger.contracts import audit as audit_contract
from gridledger.contracts import data_access as data_contract
from gridledger.contracts import two_phase as two_phase_contract
from gridledger.contracts import charging as charging_contract
from gridledger.contracts import flexibility as flex_contract
from gridledger.contracts import load_shed as load_shed_contract
from gridledger.contracts import market as market_contract
from gridledger.contracts import pseudonyms as pseudonyms_contract
from gridledger.contracts import reserve as reserve_contract
from gridledger.contracts.chain import BLOCK_GAS_LIMIT, Chain, Receipt
from gridledger.contracts.client import DecodedLog

AGENT_TX_GAS_CAP = max(market_contract.GAS_SUBMIT_ORDER, market_contract.GAS_POST_LOT, market_contract.GAS_BID,
                       market_contract.GAS_COMMIT_BID, market_contract.GAS_REVEAL_BID, flex_contract.GAS_APPROVE,
                       flex_contract.GAS_OFFER, charging_contract.GAS_REQUEST_CHARGE, market_contract.GAS_WITHDRAW,
                       two_phase_contract.GAS_PROPOSE, two_phase_contract.GAS_ACCEPT, pseudonyms_contract.GAS_TICKET,
                       reserve_contract.GAS_OFFER, load_shed_contract.GAS_ENROL)
"""Largest gas limit a prosumer agent signs: orders, lots, bids, bond approval, offers, charging requests,
withdrawals, two-phase proposals and acceptances, pseudonym tickets, reserve offers, load shed enrolments. [gas]"""

METER_TX_GAS_CAP = max(market_contract.GAS_POST_READING, flex_contract.GAS_POST_DELIVERY,
                       two_phase_contract.GAS_CONFIRM, reserve_contract.GAS_POST_DELIVERY,
                       load_shed_contract.GAS_POST_DELIVERY)
"""Largest gas limit a meter signs: readings, flexibility, reserve and load shed deliveries and two-phase
confirmations. [gas]"""

AUDITOR_TX_GAS_CAP = max(audit_contract.GAS_FLAG, audit_contract.GAS_FINALIZE, audit_contract.GAS_SETTLE_ESTIMATE)
"""Largest gas limit the auditor signs: flags, finalizations, estimates of isolated meters. [gas]"""
DATA_TX_GAS_CAP = max(data_contract.GAS_PROPOSE, data_contract.GAS_POST_RESULT, data_contract.GAS_PAY)
"""Largest gas limit the data requestor and worker sign: a proposal to 64 owners, a result, a payment. [gas]"""

AGENTS_LANE_GAS = BLOCK_GAS_LIMIT // 2
"""Most gas the agents' transactions may use together in one block; the rest is kept for the others. [gas]"""

SENDER_TXS_PER_BLOCK = 32
"""Each sender's slice of its lane, in transactions at the lane's cap: far above an honest sender's few per block."""


def dso_tx_gas_cap(n_buses: int) -> int:
    """Largest gas limit the DSO signs on a feeder of `n_buses` buses: budget approval, headroom, requests, reserve
    windows and activations, the load shed programme and calls. [gas]"""
    return max(flex_contract.GAS_APPROVE, charging_contract.GAS_POST_HEADROOM, flex_contract.post_request_gas(n_buses),
               reserve_contract.GAS_POST_WINDOW, reserve_contract.activate_gas(reserve_contract.MAX_OFFERS),
               load_shed_contract.GAS_POST_PROGRAMME, load_shed_contract.call_gas(load_shed_contract.MAX_ENROLMENTS))


@dataclass(frozen=True)
class Lane:
    """Block space for the transactions of one kind of sender.

    Attributes
    ----------
    name : str
        Named in the reasons of the transactions it refuses.
    gas : int
        Most gas the lane's transactions may use together in one block. [gas]
    tx_gas_cap : int
        Largest gas limit one of its transactions may carry. [gas]
    sender_gas : int
        Most gas one sender's transactions may use in one block. [gas]
    """

    name: str
    gas: int
    tx_gas_cap: int
    sender_gas: int


def ledger_lanes(n_buses: int) -> dict[str, Lane]:
    """The lanes of the transactions the ledger receives, by batch name: agents, meters, DSO, auditor, data (the
    data requestor and its worker).

    Meters, the DSO, the auditor and the data lane may use the whole block, the agents
    half of it; every sender may use `SENDER_TXS_PER_BLOCK` transactions
    at its lane's cap, so one key (an agent's or a meter's) cannot fill
    its lane alone.
    """
    caps = {"agents": AGENT_TX_GAS_CAP, "meters": METER_TX_GAS_CAP, "dso": dso_tx_gas_cap(n_buses),
            "auditor": AUDITOR_TX_GAS_CAP, "data": DATA_TX_GAS_CAP}
    gas = {"agents": AGENTS_LANE_GAS, "meters": BLOCK_GAS_LIMIT, "dso": BLOCK_GAS_LIMIT, "auditor": BLOCK_GAS_LIMIT,
           "data": BLOCK_GAS_LIMIT}
    return {name: Lane(name, gas[name], cap, SENDER_TXS_PER_BLOCK * cap) for name, cap in caps.items()}


class LaneSpace:
    """One block's space (`gridledger.contracts.chain.BlockSpace`): each transaction's lane and what was used.

    Parameters
    ----------
    lanes : list of Lane or None
        The lane of each transaction of the block, in input order; None
        for the operator's own, which only the chain's rule bounds.
    """

    def __init__(self, lanes: list[Lane | None]):
        self.lanes = lanes
        self.used: dict[str, int] = {}
        self.used_by: dict[tuple[str, str], int] = {}

    def refusal(self, index: int, sender: str, gas_limit: int) -> str | None:
        """Why the transaction at `index` may not run in its lane, or None if it may."""
        lane = self.lanes[index]
        if lane is None:
            return None
        if gas_limit > lane.tx_gas_cap:
            return f"ledger: gas limit {gas_limit} above cap {lane.tx_gas_cap} of the {lane.name} lane"
        left = lane.gas - self.used.get(lane.name, 0)
        if gas_limit > left:
            return f"ledger: gas limit {gas_limit} exceeds the {lane.name} lane's remaining {left}"
        sender_left = lane.sender_gas - self.used_by.get((lane.name, sender), 0)
        if gas_limit > sender_left:
            return f"ledger: gas limit {gas_limit} exceeds {sender}'s remaining {sender_left} in the {lane.name} lane"
        return None

    def charge(self, index: int, sender: str, gas_used: int) -> None:
        """Count the gas the transaction at `index` used against its lane and its sender there. [gas]"""
        lane = self.lanes[index]
        if lane is not None:
            self.used[lane.name] = self.used.get(lane.name, 0) + gas_used
            self.used_by[lane.name, sender] = self.used_by.get((lane.name, sender), 0) + gas_used


@dataclass(frozen=True)
class MinedBlock:
    """Receipts and decoded events of one block, by batch name, each in block order.

    ``events`` holds the logs of contracts labelled on the chain; a log of
    an unlabelled address is left out.
    """

    receipts: dict[str, list[Receipt]]
    events: dict[str, list[DecodedLog]]

    def all_receipts(self) -> list[Receipt]:
        """Every receipt of the block, in block order."""
        return [receipt for receipts in self.receipts.values() for receipt in receipts]

    def all_events(self) -> list[DecodedLog]:
        """Every decoded event of the block, in block order."""
        return [event for events in self.events.values() for event in events]

    def events_of(self, contract: str, batch: str | None = None) -> Iterator[tuple[str, dict]]:
        """(event name, args) of every event of `contract`, in the whole block or in one batch."""
        return contract_events(self.all_events() if batch is None else self.events[batch], contract)


def contract_events(events: Iterable[DecodedLog], contract: str) -> Iterator[tuple[str, dict]]:
    """(event name, args) of every event of `contract` among `events`, in order."""
    for event in events:
        if event.contract == contract:
            yield event.event, event.args


def mine_batches(chain: Chain, batches: Mapping[str, list[bytes]], timestamp: int,
                 lanes: Mapping[str, Lane] | None = None) -> MinedBlock:
    """Mine the batches' transactions in one block at `timestamp`, batch after batch, in the given order.

    Parameters
    ----------
    chain : Chain
        The chain that mines the block and decodes its logs.
    batches : mapping of str to list of bytes
        Signed raw transactions by batch name; an empty batch gets no
        receipts and the block is mined even if every batch is empty.
    timestamp : int
        Block timestamp. [s since the Unix epoch]
    lanes : mapping of str to Lane, optional
        The lane of each batch that has one, by batch name; a batch
        without one is the operator's own, bounded by the chain alone.
    """
    names = list(batches)
    lane_of = lanes or {}
    space = LaneSpace([lane_of.get(name) for name in names for _ in batches[name]])
    receipts = iter(chain.mine([tx for name in names for tx in batches[name]], timestamp, space))
    by_batch = {name: [next(receipts) for _ in batches[name]] for name in names}
    events = {name: [event for receipt in rs for event in map(chain.decode, receipt.logs) if event is not None]
              for name, rs in by_batch.items()}
    return MinedBlock(by_batch, events)


def receipt_json(receipt: Receipt) -> dict:
    """A receipt as its sender reads it in a ``receipts`` message."""
    return {"tx_hash": receipt.tx_hash.hex(), "sender": receipt.sender, "nonce": receipt.nonce,
            "status": receipt.status, "included": receipt.block_number is not None,
            "revert_reason": receipt.revert_reason, "gas_used": receipt.gas_used}


def receipts_by_source(sources: list[str], receipts: list[Receipt]) -> dict[str, list[dict]]:
    """Each receipt as JSON under the endpoint its transaction came from; endpoints in order of first appearance."""
    by_source: dict[str, list[dict]] = {}
    for source, receipt in zip(sources, receipts, strict=True):
        by_source.setdefault(source, []).append(receipt_json(receipt))
    return by_source
