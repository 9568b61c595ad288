"""The market operator's two-phase desk: deploys ``TwoPhaseTrade``, follows every trade, rolls back expired ones.

With ``two_phase`` in the study the desk deploys the contract on the
market's registry and token. After each block it turns the contract's
events into the ``two_phase_events`` message: new proposals (for the
sellers' agents) and newly prepared trades (for the meters, which confirm
them after their interval). In every block the operator rolls back each
trade whose deadline has passed uncommitted (anyone may), so a crash
between the phases returns every lock. It keeps, per delivery interval,
how many trades were proposed, prepared, committed and rolled back and
what they paid, and checks the contract holds exactly the open locks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.agents.bilateral import trade_interval
from gridledger.agents.blocks import MinedBlock
from gridledger.contracts import two_phase
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet
from gridledger.contracts.market import MarketAddresses, read
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster
from gridledger.units import tokens

OPEN, COMMITTED, ROLLED_BACK = "open", "committed", "rolled back"


@dataclass
class Trade:
    """One trade as the desk follows it."""

    trade_id: bytes
    buyer: str
    seller: str
    energy_wh: int
    value_wei: int
    deadline_timestamp: int
    prepared: bool = False
    state: str = OPEN


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class TwoPhaseDesk:
    """The ledger's side of the two-phase trades."""

    def __init__(self, sc: Roster, chain: Chain, address: str, token: str):
        self.sc, self.chain, self.address, self.token = sc, chain, address, token
        self.trades: dict[bytes, Trade] = {}
        n = sc.study.n_intervals
        self.counts = {kind: np.zeros(n, dtype=np.int64) for kind in ("proposed", "prepared", "committed", "rolled_back")}
        self.paid_wei = np.zeros(n, dtype=object)

    @classmethod
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses) -> TwoPhaseDesk:
        """Deploy ``TwoPhaseTrade`` on the market's registry and token."""
        address = two_phase.deploy_two_phase(chain, operator, addresses.registry, addresses.token)
        return cls(sc, chain, address, addresses.token)

    def _count(self, kind: str, trade_id: bytes) -> None:
        k = trade_interval(_hex(trade_id))
        if k is not None and k < len(self.paid_wei):
            self.counts[kind][k] += 1

    def feed(self, block: MinedBlock) -> dict | None:
        """Follow the block's ``TwoPhaseTrade`` events; the ``two_phase_events`` body, or None if nothing is new."""
        proposed, prepared = [], []
        for name, args in block.events_of(two_phase.CONTRACT):
            tid = bytes(args["trade_id"])
            if name == "Proposed":
                self.trades[tid] = Trade(tid, args["buyer"], args["seller"], args["energy_wh"],
                                         args["energy_wh"] * args["price_wei_per_wh"], args["deadline_timestamp"])
                proposed.append({"trade_id": _hex(tid), "buyer": args["buyer"], "seller": args["seller"],
                                 "energy_wh": args["energy_wh"]})
            elif name == "Prepared":
                trade = self.trades[tid]
                trade.prepared = True
                prepared.append({"trade_id": _hex(tid), "buyer": trade.buyer, "seller": trade.seller,
                                 "energy_wh": trade.energy_wh})
            elif name == "Committed":
                self.trades[tid].state = COMMITTED
                k = trade_interval(_hex(tid))
                if k is not None and k < len(self.paid_wei):
                    self.paid_wei[k] += args["paid_wei"]
            elif name == "RolledBack":
                self.trades[tid].state = ROLLED_BACK
            else:
                continue
            self._count({"Proposed": "proposed", "Prepared": "prepared", "Committed": "committed",
                         "RolledBack": "rolled_back"}[name], tid)
        return {"proposed": proposed, "prepared": prepared} if proposed or prepared else None

    def duties(self, operator: Wallet, timestamp: int) -> list[bytes]:
        """Roll back every open trade whose deadline has passed by `timestamp` (once: the desk marks it)."""
        due = [t for t in self.trades.values() if t.state == OPEN and t.deadline_timestamp <= timestamp]
        for trade in due:
            trade.state = ROLLED_BACK
        return [two_phase.roll_back(operator, self.address, t.trade_id) for t in due]

    def tokens_held_match(self) -> bool:
        """The contract holds exactly the open trades' locks: the payment, and the collateral once prepared."""
        open_locks = sum(t.value_wei * (2 if t.prepared else 1) for t in self.trades.values()
                         if two_phase.read(self.chain, self.address, "status", t.trade_id) in (1, 2))
        return read(self.chain, self.token, "GridToken", "balanceOf", self.address) == open_locks

    def write(self, part: Part) -> None:
        """Per delivery interval: trades proposed, prepared, committed and rolled back, and what they paid."""
        for kind, counts in self.counts.items():
            part.add(f"two_phase_{kind}", ("interval",), counts, "1", f"two-phase trades {kind.replace('_', ' ')} "
                     "that deliver in the interval", cell_methods=INTERVAL_SUM)
        part.add("two_phase_paid_token", ("interval",), [tokens(int(w)) for w in self.paid_wei], "token",
                 "what the committed trades of the interval paid their sellers")
