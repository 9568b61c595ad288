"""Python reference of ``Pseudonyms.vy``: the registration window, one registration per pseudonym and interval,
the RSA-FDH signature check.

Same checks in the same order and with the same reasons as the contract;
tests run both on the same calls and compare every outcome.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from gridledger.contracts.pseudonyms import MODULUS_BYTES, full_domain_hash, verifies


@dataclass
class PseudonymsModel:
    """The contract's state: the registrar's modulus ``n``, the chain and contract the hash binds, the intervals,
    and ``roles``, every account's registry role bits."""

    n: int
    chain_id: int
    contract: str
    start_timestamp: int
    interval_s: int
    horizon_intervals: int
    roles: dict[str, int]
    pseudonyms: set[tuple[str, int]] = field(default_factory=set)
    registered_count: Counter[int] = field(default_factory=Counter)

    def first_open_interval(self, now: int) -> int:
        """The first interval that has not begun at ``now``. [s since the Unix epoch]"""
        return 0 if now < self.start_timestamp else (now - self.start_timestamp) // self.interval_s + 1

    def register(self, now: int, sender: str, interval: int, signature: bytes) -> str | None:
        if self.roles.get(sender, 0) != 0:
            return "pseudonyms: caller holds a role"
        if len(signature) != MODULUS_BYTES:
            return "pseudonyms: malformed signature"
        first = self.first_open_interval(now)
        if interval < first:
            return "pseudonyms: interval in the past"
        if interval - first >= self.horizon_intervals:
            return "pseudonyms: interval too far ahead"
        if (sender, interval) in self.pseudonyms:
            return "pseudonyms: already registered"
        h = full_domain_hash(self.chain_id, self.contract, sender, interval)
        if not verifies(self.n, h, int.from_bytes(signature, "big")):
            return "pseudonyms: bad signature"
        self.pseudonyms.add((sender, interval))
        self.registered_count[interval] += 1
        return None

    def is_pseudonym(self, account: str, interval: int) -> bool:
        return (account, interval) in self.pseudonyms
