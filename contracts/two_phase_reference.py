"""Python reference of ``TwoPhaseTrade.vy``: proposals, preparation, meter confirmations, commit and roll-back.

Same checks in the same order and with the same reasons as the contract,
and the token balances it moves; tests run both on the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from gridledger.contracts.reference import TokenEscrow

MAX_ENERGY_WH = 2**40
MAX_PRICE_WEI_PER_WH = 10**24
MAX_DEADLINE_S = 7 * 86400


class Status(IntEnum):
    """``TwoPhaseTrade.STATUS_*``."""

    NONE = 0
    PROPOSED = 1
    PREPARED = 2
    COMMITTED = 3
    ROLLED_BACK = 4


@dataclass
class Trade:
    """One trade (``TwoPhaseTrade.Trade``)."""

    status: Status
    buyer: str
    seller: str
    energy_wh: int
    price_wei_per_wh: int
    deadline_timestamp: int
    buyer_confirmed: bool = False
    seller_confirmed: bool = False

    @property
    def value_wei(self) -> int:
        return self.energy_wh * self.price_wei_per_wh


@dataclass
class TwoPhaseModel:
    """The contract's trades and the token balances it moves (``tokens``).

    ``prosumers`` are the registered prosumers, ``meter_of`` maps each bound
    meter to its prosumer.
    """

    prosumers: set[str]
    meter_of: dict[str, str]
    tokens: TokenEscrow
    trades: dict[bytes, Trade] = field(default_factory=dict)

    def propose(self, now: int, sender: str, trade_id: bytes, seller: str, energy_wh: int, price_wei_per_wh: int,
                deadline_timestamp: int) -> str | None:
        if sender not in self.prosumers:
            return "trade: caller is not a prosumer"
        if seller not in self.prosumers or seller == sender:
            return "trade: seller is not another prosumer"
        if trade_id in self.trades:
            return "trade: id taken"
        if not 0 < energy_wh <= MAX_ENERGY_WH:
            return "trade: energy out of range"
        if not 0 < price_wei_per_wh <= MAX_PRICE_WEI_PER_WH:
            return "trade: price out of range"
        if not now < deadline_timestamp <= now + MAX_DEADLINE_S:
            return "trade: deadline out of range"
        trade = Trade(Status.PROPOSED, sender, seller, energy_wh, price_wei_per_wh, deadline_timestamp)
        if (reason := self.tokens.pull(sender, trade.value_wei)) is not None:
            return reason
        self.trades[trade_id] = trade
        return None

    def cancel(self, sender: str, trade_id: bytes) -> str | None:
        t = self.trades.get(trade_id)
        if t is None or t.status != Status.PROPOSED:
            return "trade: not proposed"
        if sender != t.buyer:
            return "trade: caller is not the buyer"
        self._roll_back(t)
        return None

    def accept(self, now: int, sender: str, trade_id: bytes) -> str | None:
        t = self.trades.get(trade_id)
        if t is None or t.status != Status.PROPOSED:
            return "trade: not proposed"
        if sender != t.seller:
            return "trade: caller is not the seller"
        if now >= t.deadline_timestamp:
            return "trade: deadline passed"
        if (reason := self.tokens.pull(sender, t.value_wei)) is not None:
            return reason
        t.status = Status.PREPARED
        return None

    def confirm(self, now: int, sender: str, trade_id: bytes, metered_wh: int) -> str | None:
        t = self.trades.get(trade_id)
        if t is None or t.status != Status.PREPARED:
            return "trade: not prepared"
        if now >= t.deadline_timestamp:
            return "trade: deadline passed"
        prosumer = self.meter_of.get(sender)
        if prosumer not in (t.buyer, t.seller):
            return "trade: caller is not a side's meter"
        if metered_wh < t.energy_wh:
            return "trade: metered below traded"
        side = "buyer_confirmed" if prosumer == t.buyer else "seller_confirmed"
        if getattr(t, side):
            return "trade: already confirmed"
        setattr(t, side, True)
        if t.buyer_confirmed and t.seller_confirmed:
            t.status = Status.COMMITTED
            self.tokens.pay(t.seller, 2 * t.value_wei)
        return None

    def roll_back(self, now: int, trade_id: bytes) -> str | None:
        t = self.trades.get(trade_id)
        if t is None or t.status not in (Status.PROPOSED, Status.PREPARED):
            return "trade: not open"
        if now < t.deadline_timestamp:
            return "trade: deadline not passed"
        self._roll_back(t)
        return None

    def _roll_back(self, t: Trade) -> None:
        if t.status == Status.PREPARED:
            self.tokens.pay(t.seller, t.value_wei)
        self.tokens.pay(t.buyer, t.value_wei)
        t.status = Status.ROLLED_BACK

    def locked_wei(self) -> int:
        """What the open trades lock: the buyer's payment, and the seller's collateral once prepared. [wei]"""
        return sum(t.value_wei * (2 if t.status == Status.PREPARED else 1)
                   for t in self.trades.values() if t.status in (Status.PROPOSED, Status.PREPARED))
