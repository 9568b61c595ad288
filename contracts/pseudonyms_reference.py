"""Python reference of ``Pseudonyms.vy``: tickets per buyer and interval, registrations of a pseudonym and its
one-time meter with two RSA-FDH signatures under the exponents of the interval and class, and what a registration
enrols in the Registry and registers and deposits in the Settlement.

Same checks in the same order and with the same reasons as the contract
(and as the Registry, Settlement and token it calls, where a reason of
theirs can surface); tests run both on the same calls and compare every
outcome. Each method mirrors one transaction and returns the reason it
reverts with, or None after applying it.

Units: amounts [wei], limits [W], times [s since the Unix epoch].
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gridledger.contracts.pseudonyms import (
    EXPONENT_BASE,
    EXPONENT_WINDOW,
    MAX_CLASSES,
    METER_CLASS,
    MODULUS_BYTES,
    ClassLimits,
    full_domain_hash,
    verifies,
)
from gridledger.contracts.reference import TokenEscrow

ROLE_PROSUMER = 2
"""``Registry.ROLE_PROSUMER``."""
ROLE_METER = 4
"""``Registry.ROLE_METER``."""
MAX_POWER_W = 10**9
"""``Pseudonyms.MAX_POWER_W`` = ``Settlement.MAX_POWER_W``: the largest limit of a class. [W]"""
MAX_INTERVAL = EXPONENT_BASE // EXPONENT_WINDOW // (MAX_CLASSES + 1)
"""``Pseudonyms._MAX_INTERVAL``: the first interval whose windows would leave [B, 2B)."""
ABI_REFUSAL = "reverted without reason"
"""What the ABI decoder of ``register`` reverts with for a signature above ``Bytes[256]``."""


def exponent_window(interval: int, class_index: int) -> tuple[int, int]:
    """``Pseudonyms.exponent_window``: the lowest exponent of ``interval`` and ``class_index`` (``METER_CLASS`` for
    meters) and the first above its window."""
    low = EXPONENT_BASE + (interval * (MAX_CLASSES + 1) + class_index) * EXPONENT_WINDOW
    return low, low + EXPONENT_WINDOW


@dataclass
class PseudonymsModel:
    """The contract's state and what it changes in the market.

    ``roles`` holds every account's registry role bits; ``tokens`` the
    token balances, the contract's under ``contract`` and the
    Settlement's under ``settlement``, and each buyer's allowance to the
    contract; ``limits_registered`` the accounts whose limits the
    Settlement holds (every registered prosumer's). A registration adds
    the pseudonym's prosumer role, its meter's role and binding
    (``meter_of``), its class's limits for its interval
    (``interval_of``, ``class_of``) and the bond to its Settlement
    credit (``credit_wei``). ``reserve_wei`` pays the bond of a pair
    beyond its interval's tickets (``over_issued`` lists them).
    """

    n: int
    chain_id: int
    contract: str
    settlement: str
    start_timestamp: int
    interval_s: int
    horizon_intervals: int
    bond_wei: int
    classes: list[ClassLimits]
    roles: dict[str, int]
    tokens: TokenEscrow
    limits_registered: set[str]
    tickets: Counter[int] = field(default_factory=Counter)
    ticket_holders: set[tuple[str, int]] = field(default_factory=set)
    registered_count: Counter[int] = field(default_factory=Counter)
    interval_of: dict[str, int] = field(default_factory=dict)
    class_of: dict[str, int] = field(default_factory=dict)
    meter_of: dict[str, str] = field(default_factory=dict)
    credit_wei: Counter[str] = field(default_factory=Counter)
    reserve_wei: int = 0
    over_issued: list[tuple[str, int]] = field(default_factory=list)

    def first_open_interval(self, now: int) -> int:
        """The first interval that has not begun at ``now``."""
        return 0 if now < self.start_timestamp else (now - self.start_timestamp) // self.interval_s + 1

    def _open_problem(self, now: int, interval: int) -> str | None:
        first = self.first_open_interval(now)
        if interval < first:
            return "pseudonyms: interval in the past"
        if interval - first >= self.horizon_intervals:
            return "pseudonyms: interval too far ahead"
        return None

    def buy_ticket(self, now: int, buyer: str, interval: int) -> str | None:
        """``buy_ticket(interval)`` sent by ``buyer`` at ``now``."""
        if self.roles.get(buyer, 0) & ROLE_PROSUMER == 0:
            return "pseudonyms: caller is not a prosumer"
        if buyer in self.interval_of:
            return "pseudonyms: caller is a pseudonym"
        if (reason := self._open_problem(now, interval)) is not None:
            return reason
        if (buyer, interval) in self.ticket_holders:
            return "pseudonyms: ticket bought"
        if (reason := self.tokens.pull(buyer, self.bond_wei)) is not None:
            return reason
        if self.registered_count[interval] > self.tickets[interval]:
            self.reserve_wei += self.bond_wei
        self.ticket_holders.add((buyer, interval))
        self.tickets[interval] += 1
        return None

    def register(self, now: int, pseudonym: str, meter: str, interval: int, class_index: int,
                 pseudonym_exponent: int, pseudonym_signature: bytes, meter_exponent: int,
                 meter_signature: bytes) -> str | None:
        """``register(...)`` sent by anyone at ``now``; addresses checksummed, the zero address as
        ``0x000...0``."""
        if len(pseudonym_signature) > MODULUS_BYTES or len(meter_signature) > MODULUS_BYTES:
            return ABI_REFUSAL
        if len(pseudonym_signature) != MODULUS_BYTES or len(meter_signature) != MODULUS_BYTES:
            return "pseudonyms: malformed signature"
        if (reason := self._open_problem(now, interval)) is not None:
            return reason
        if class_index >= len(self.classes):
            return "pseudonyms: unknown class"
        if interval >= MAX_INTERVAL:
            return "pseudonyms: no window"
        if not (_in(pseudonym_exponent, exponent_window(interval, class_index))
                and _in(meter_exponent, exponent_window(interval, METER_CLASS))):
            return "pseudonyms: exponent not of the interval"
        if int(pseudonym, 16) == 0 or int(meter, 16) == 0:
            return "pseudonyms: zero address"
        if pseudonym == meter:
            return "pseudonyms: pseudonym is its meter"
        if self.roles.get(pseudonym, 0) != 0 or self.roles.get(meter, 0) != 0:
            return "pseudonyms: account holds a role"
        owner_hash = full_domain_hash(self.chain_id, self.contract, pseudonym, meter, interval)
        if not verifies(self.n, owner_hash, int.from_bytes(pseudonym_signature, "big"), pseudonym_exponent):
            return "pseudonyms: bad signature"
        meter_hash = full_domain_hash(self.chain_id, self.contract, meter, pseudonym, interval)
        if not verifies(self.n, meter_hash, int.from_bytes(meter_signature, "big"), meter_exponent):
            return "pseudonyms: bad meter signature"
        over_issued = self.registered_count[interval] >= self.tickets[interval]
        if over_issued and self.reserve_wei < self.bond_wei:
            return "pseudonyms: no ticket left"
        # The Settlement's own check: an account whose limits it holds already.
        if pseudonym in self.limits_registered:
            return "settlement: prosumer registered"
        if over_issued:
            self.reserve_wei -= self.bond_wei
            self.over_issued.append((pseudonym, interval))
        self.registered_count[interval] += 1
        self.interval_of[pseudonym] = interval
        self.class_of[pseudonym] = class_index
        self.roles[pseudonym] = ROLE_PROSUMER
        self.roles[meter] = ROLE_METER
        self.meter_of[pseudonym] = meter
        self.limits_registered.add(pseudonym)
        self.tokens.pay(self.settlement, self.bond_wei)
        self.credit_wei[pseudonym] += self.bond_wei
        return None

    def fund_reserve(self, payer: str, amount_wei: int) -> str | None:
        """``fund_reserve(amount_wei)`` sent by ``payer``."""
        if amount_wei == 0:
            return "pseudonyms: zero amount"
        if (reason := self.tokens.pull(payer, amount_wei)) is not None:
            return reason
        self.reserve_wei += amount_wei
        return None

    def has_ticket(self, buyer: str, interval: int) -> bool:
        """Whether ``buyer`` bought its ticket for ``interval``."""
        return (buyer, interval) in self.ticket_holders

    def is_pseudonym(self, account: str, interval: int) -> bool:
        """Whether ``account`` is a registered pseudonym of ``interval``."""
        return self.interval_of.get(account) == interval

    def held_wei(self) -> int:
        """What the contract holds: its reserve and the bonds of the tickets no pseudonym used. [wei]"""
        return self.tokens.balance.get(self.contract, 0)


def _in(exponent: int, window: tuple[int, int]) -> bool:
    return window[0] <= exponent < window[1]
