"""The market mechanisms, declared once: study name, contract, book or lots, clearing, schedule needs.

The study schema (``market.mechanism``, ``market.clearing``), the contract
client (`gridledger.contracts.market`), the ledger's market operator, the
agents and the schedule all read this registry; none spells a mechanism's
properties again.

Two kinds of mechanism:

- ``"book"``: agents submit limit orders to an order book that is cleared
  at the gate, either sorted off-chain and verified on chain in O(N)
  (``"verified-offchain"``) or sorted by the contract (``"on-chain"``);
- ``"lot"``: sellers post their surplus as lots and buyers bid on them in
  rounds between the posted lots and the gate.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

VERIFIED_OFFCHAIN = "verified-offchain"
ON_CHAIN = "on-chain"
CLEARING_MODES = (VERIFIED_OFFCHAIN, ON_CHAIN)
"""How a book is cleared (``market.clearing``); both give the same outcome."""
DEFAULT_CLEARING_MODE = VERIFIED_OFFCHAIN
VERIFIED_BATCH = "verified-batch"
"""A third clearing mode of a study (``market.clearing``, with ``market.submission: batched``; issue 12): the
relay holds the interval's signed orders and sends them after the gate with the clearing it computed off
chain, in one transaction (``DoubleAuction.clear_signed``); orders live in calldata, only the fills in
storage. Same outcome as the other two."""
VERIFIED_BATCH_CONTRACTS = ("DoubleAuction",)
"""The mechanisms' contracts that take a verified batch (``clear_signed``)."""
VERIFIED_BATCH_MAX_ORDERS = 256
"""Most signed orders of one verified batch (``book.MAX_ORDERS``): an interval's orders travel in one transaction."""
STUDY_CLEARING_MODES = (*CLEARING_MODES, VERIFIED_BATCH)
"""Every ``market.clearing`` a study may name."""

PER_TRANSACTION = "per-transaction"
BATCHED = "batched"
SUBMISSION_MODES = (PER_TRANSACTION, BATCHED)
"""How orders and meter readings reach the chain (``market.submission``): one transaction each, or signed
as EIP-712 typed data and relayed in one transaction per interval (the market operator relays a book's
orders, the meters' head-end their readings); both give the same book and settlement."""
DEFAULT_SUBMISSION_MODE = PER_TRANSACTION


@dataclass(frozen=True)
class Mechanism:
    """One market mechanism.

    Attributes
    ----------
    name : str
        Its name in a study (``market.mechanism``).
    contract : str
        The Vyper contract that runs it (``contracts/<contract>.vy``).
    kind : {"book", "lot"}
        Order book cleared at the gate, or lots bid on in rounds.
    buyers_order : bool
        Buyers submit orders to the book at the interval start. False where
        the operator posts the demand (merit order) or buyers bid on lots.
    operator_demand : bool
        The market operator posts the interval's demand and settles its
        own position (merit order).
    bidding_rounds : int | None
        Lot auctions: how many bidding rounds buyers get before the gate
        (None: every round that fits).
    reveal_after_gate : bool
        Sealed bids are revealed after the gate and the operator finalises
        the interval at the end of the reveal window (Vickrey).
    closes_at_gate : bool
        The auction ends by itself at the gate; nobody clears it (English).
    """

    name: str
    contract: str
    kind: Literal["book", "lot"]
    buyers_order: bool = True
    operator_demand: bool = False
    bidding_rounds: int | None = None
    reveal_after_gate: bool = False
    closes_at_gate: bool = False

    @property
    def is_lot_auction(self) -> bool:
        """Sellers post lots and buyers bid on them."""
        return self.kind == "lot"

    @property
    def clearing_modes(self) -> tuple[str, ...]:
        """The clearing modes it accepts (a lot auction has no book to clear)."""
        return CLEARING_MODES if self.kind == "book" else ()


MECHANISMS: dict[str, Mechanism] = {
    m.name: m
    for m in (
        Mechanism("uniform-double-auction", "DoubleAuction", "book"),
        Mechanism("pay-as-bid", "PayAsBid", "book"),
        Mechanism("merit-order", "MeritOrder", "book", buyers_order=False, operator_demand=True),
        Mechanism("vickrey", "VickreyAuction", "lot", buyers_order=False, bidding_rounds=1, reveal_after_gate=True),
        Mechanism("english", "EnglishAuction", "lot", buyers_order=False, closes_at_gate=True),
    )
}
"""Every mechanism by its study name."""
DEFAULT_MECHANISM = "uniform-double-auction"
LOT_AUCTION_CONTRACTS = tuple(m.contract for m in MECHANISMS.values() if m.is_lot_auction)
SIGNED_ORDER_CONTRACTS = tuple(m.contract for m in MECHANISMS.values() if not m.is_lot_auction)
"""Book mechanisms: they take orders (the merit order: offers) signed as EIP-712 typed data in batches
(``submit_signed_orders``); a lot auction's commits, reveals and raises stay transactions of their own."""


def mechanism(name: str) -> Mechanism:
    """The mechanism called `name` in a study; ValueError naming the allowed ones otherwise."""
    try:
        return MECHANISMS[name]
    except KeyError:
        raise ValueError(f"unknown market mechanism {name!r}; expected one of {sorted(MECHANISMS)}") from None
