"""Python reference of ``EmergencyAccess.vy``: declarations, scoped grants, revocation, expiry, uses.

Same checks in the same order and with the same reasons as the contract;
tests run both on the same calls and compare every outcome.
"""

from __future__ import annotations

from dataclasses import dataclass, field

SCOPE_READ_DATA = 1
SCOPE_OVERRIDE_CHARGING = 2
ALL_SCOPES = SCOPE_READ_DATA | SCOPE_OVERRIDE_CHARGING
MAX_EMERGENCY_S = 7 * 86400
NOBODY = "0x" + "00" * 20


@dataclass
class Grant:
    """One grant (``EmergencyAccess.Grant``)."""

    scope: int
    subject: str
    expires_timestamp: int
    revoked: bool
    emergency: int


@dataclass
class EmergencyModel:
    """The contract's state; ``operator`` holds the registry's operator role, ``roles`` every account's role bits."""

    operator: str
    roles: dict[str, int]
    emergency_id: int = 0
    emergency_end_timestamp: int = 0
    grants: dict[str, Grant] = field(default_factory=dict)
    uses: list[tuple[str, int, str]] = field(default_factory=list)

    def declare(self, now: int, sender: str, duration_s: int) -> str | None:
        if sender != self.operator:
            return "emergency: caller is not operator"
        if now < self.emergency_end_timestamp:
            return "emergency: already declared"
        if not 0 < duration_s <= MAX_EMERGENCY_S:
            return "emergency: duration out of range"
        self.emergency_id += 1
        self.emergency_end_timestamp = now + duration_s
        return None

    def end_emergency(self, now: int, sender: str) -> str | None:
        if sender != self.operator:
            return "emergency: caller is not operator"
        if now >= self.emergency_end_timestamp:
            return "emergency: none declared"
        self.emergency_end_timestamp = now
        return None

    def grant(self, now: int, sender: str, account: str, scope: int, subject: str, duration_s: int) -> str | None:
        if sender != self.operator:
            return "emergency: caller is not operator"
        if now >= self.emergency_end_timestamp:
            return "emergency: none declared"
        if account == NOBODY or self.roles.get(account, 0) != 0:
            return "emergency: grantee holds a role"
        if scope == 0 or scope & ~ALL_SCOPES:
            return "emergency: unknown scope"
        if duration_s == 0:
            return "emergency: duration out of range"
        expires = min(now + duration_s, self.emergency_end_timestamp)
        self.grants[account] = Grant(scope, subject, expires, False, self.emergency_id)
        return None

    def revoke(self, sender: str, account: str) -> str | None:
        if sender != self.operator:
            return "emergency: caller is not operator"
        g = self.grants.get(account)
        if g is None or g.emergency != self.emergency_id or self.emergency_id == 0:
            return "emergency: not granted"
        if g.revoked:
            return "emergency: revoked"
        g.revoked = True
        return None

    def refusal(self, now: int, account: str, scope: int, subject: str) -> str:
        g = self.grants.get(account)
        if self.emergency_id == 0 or g is None or g.emergency != self.emergency_id:
            return "emergency: not granted"
        if g.revoked:
            return "emergency: revoked"
        if now >= min(g.expires_timestamp, self.emergency_end_timestamp):
            return "emergency: expired"
        if scope == 0 or scope & ~g.scope or (g.subject != NOBODY and g.subject != subject):
            return "emergency: out of scope"
        return ""

    def use(self, now: int, sender: str, scope: int, subject: str) -> str | None:
        reason = self.refusal(now, sender, scope, subject)
        if reason:
            return reason
        self.uses.append((sender, scope, subject))
        return None
