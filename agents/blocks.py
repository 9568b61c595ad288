"""One mined block: its transactions in named batches, its receipts by batch, its events decoded once.

The ledger's market operator puts several batches into one block (its own
duties, the transactions it received, the closing of an auction, the
flexibility awards, the charging allocation). Each batch gets its receipts
back by name, and every log of the block is decoded once, so the record,
the desks and the messages to the agents read the same events.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass

from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.client import DecodedLog


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


def mine_batches(chain: Chain, batches: Mapping[str, list[bytes]], timestamp: int) -> MinedBlock:
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
    """
    names = list(batches)
    receipts = iter(chain.mine([tx for name in names for tx in batches[name]], timestamp))
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
