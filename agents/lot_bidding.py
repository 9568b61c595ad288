"""Buyers' bids on the lots of a lot auction: sealed Vickrey bids and their reveals, English bids per round.

Which lot a buyer bids on and at what price is `gridledger.agents.prosumer`
(:func:`~gridledger.agents.prosumer.vickrey_lot`,
:func:`~gridledger.agents.prosumer.english_bid`); this module applies it to
an interval's buyers and keeps the sealed bids until their reveal. A sealed
bid whose commitment the chain rejected is never revealed: there is nothing
on chain to open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.agents.prosumer import Order, english_bid, sealed_bid_salt, vickrey_lot
from gridledger.contracts.client import Wallet
from gridledger.contracts.market import LotState, MarketAddresses, commit_bid, commitment, reveal_bid


@dataclass(frozen=True)
class LotBid:
    """One buyer's bid on one lot.

    Attributes
    ----------
    agent : int
        Index of the buyer, as in ``Scenario.prosumers``.
    lot_id : int
        The lot bid on.
    order : Order
        The bid as recorded: the lot's energy [Wh] at the bid price [wei/Wh].
    salt : bytes or None
        A sealed bid's 32-byte salt, kept secret until the reveal (None: an open bid).
    """

    agent: int
    lot_id: int
    order: Order
    salt: bytes | None = None


def sealed_bids(buyers: list[tuple[int, Order]], lots: list[LotState], secret: bytes, interval: int) -> list[LotBid]:
    """Vickrey bids: each buyer seals its limit price on the lot its rank among the buyers gives it.

    Parameters
    ----------
    buyers : list of (int, Order)
        The interval's buyers and their ZI-C bids, in prosumer order; a
        buyer's rank is its position here.
    lots : list of LotState
        The interval's lots in posting order.
    secret : bytes
        Run secret, from which each bid's salt derives (`sealed_bid_salt`).
    interval : int
        The interval the lots deliver in.
    """
    bids = []
    for rank, (i, order) in enumerate(buyers):
        lot = vickrey_lot(lots, rank, order.price_wei_per_wh)
        if lot is not None:
            bids.append(LotBid(i, lot.lot_id, Order(interval, False, lot.energy_wh, order.price_wei_per_wh),
                               sealed_bid_salt(secret, i, interval)))
    return bids


def english_round_draw(seed: int, agent: int, interval: int, round_s: float) -> float:
    """Seeded uniform draw in [0, 1) picking one buyer's lot in the bidding round at `round_s`."""
    return float(np.random.default_rng([seed, agent, interval, int(round_s)]).random())


def open_bids(buyers: list[tuple[int, Order]], lots: list[LotState], bidders: list[str], increment_wei_per_wh: int,
              seed: int, interval: int, round_s: float) -> list[LotBid]:
    """English bids of one round: each buyer leading no lot bids the least allowed price on an affordable lot.

    Parameters
    ----------
    buyers : list of (int, Order)
        The interval's buyers and their ZI-C bids (the limit price). [wei/Wh]
    lots : list of LotState
        The lots as the chain held them after the previous round.
    bidders : list of str
        Every agent's address, indexed like ``Scenario.prosumers``.
    increment_wei_per_wh : int
        Least raise over a leading bid. [wei/Wh]
    seed, interval, round_s
        Study seed, the lots' interval and the round's time [s], which seed each buyer's pick.
    """
    bids = []
    for i, order in buyers:
        draw = english_round_draw(seed, i, interval, round_s)
        choice = english_bid(lots, bidders[i], order.price_wei_per_wh, increment_wei_per_wh, draw)
        if choice is not None:
            lot, price = choice
            bids.append(LotBid(i, lot.lot_id, Order(interval, False, lot.energy_wh, price)))
    return bids


def commit_tx(wallet: Wallet, addresses: MarketAddresses, bid: LotBid) -> bytes:
    """Signed commitment of a sealed bid (before the gate)."""
    sealed = commitment(wallet.address, bid.lot_id, bid.order.price_wei_per_wh, bid.salt)
    return commit_bid(wallet, addresses, bid.lot_id, sealed=sealed)


def reveal_tx(wallet: Wallet, addresses: MarketAddresses, bid: LotBid) -> bytes:
    """Signed reveal of a sealed bid (in the reveal window after the gate)."""
    return reveal_bid(wallet, addresses, bid.lot_id, price_wei_per_wh=bid.order.price_wei_per_wh, salt=bid.salt)


class SealedBids:
    """The sealed bids the agents committed, kept until their reveal.

    Receipts name a transaction by its sender and nonce only, so each
    commitment is remembered by (agent, nonce) to drop its bid if the chain
    rejects it.
    """

    def __init__(self) -> None:
        self._bids: dict[tuple[int, int], LotBid] = {}
        self._interval_of_commit: dict[tuple[int, int], int] = {}

    def committed(self, bid: LotBid, nonce: int) -> None:
        """Keep `bid`, whose commitment its agent signs with `nonce`."""
        self._bids[(bid.order.interval, bid.agent)] = bid
        self._interval_of_commit[(bid.agent, nonce)] = bid.order.interval

    def rejected(self, agent: int, nonce: int) -> None:
        """The chain rejected `agent`'s transaction `nonce`: if it was a commitment, its bid is not revealed."""
        if (agent, nonce) in self._interval_of_commit:
            self._bids.pop((self._interval_of_commit[(agent, nonce)], agent), None)

    def to_reveal(self, interval: int) -> list[LotBid]:
        """The sealed bids on `interval`'s lots still standing, in agent order."""
        return [self._bids[key] for key in sorted(self._bids) if key[0] == interval]
