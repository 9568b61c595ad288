# pragma version ~=0.4.3
"""
@title Emergency Access of a GridLedger Market
@custom:contract-name emergency_access
@license BSD-3-Clause
@notice Elevated access for service personnel during an emergency,
        after Aung et al.: the operator declares an emergency (a reason,
        at most `MAX_EMERGENCY_S`), grants a service account a scope
        (reading one household's recent data, overriding a charging
        admission, or both) over one household or all, for a time; the
        grant ends at its own expiry, at the emergency's end or when
        the operator revokes it, whichever comes first. Every use is
        logged on chain (`use`); off-chain data stores and the charging
        desk ask `refusal` before they serve.
        Functions:
        - `declare`, `end_emergency`, `grant`, `revoke` (`external`
          functions, the operator only),
        - `use` (`external` function, a grantee),
        - `refusal`, `grant_of`, `emergency_end_timestamp`,
          `emergency_id` (`external` `view` functions).
        Reasons of a refused use, in the order they are checked:
        "emergency: not granted" (no grant of this emergency),
        "emergency: revoked", "emergency: expired" (the grant's end or
        the emergency's has passed), "emergency: out of scope" (a scope
        bit or a household the grant does not cover).
@custom:security Separation of duties: a grantee holds no registry role
                 (no prosumer, meter or operator grants itself access to
                 data it produces or judges). The operator cannot grant
                 outside a declared emergency nor past its end, and an
                 emergency ends on its own.
"""


# @dev The market's role registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view
    def roles(account: address) -> uint256: view


# @dev One grant: its scope bits, household (empty: all), end, revocation
# and the emergency it belongs to.
struct Grant:
    scope: uint256
    subject: address
    expires_timestamp: uint256
    revoked: bool
    emergency: uint256


# @dev Scope bit: read a household's recent meter data (off chain).
SCOPE_READ_DATA: public(constant(uint256)) = 1


# @dev Scope bit: override a charging admission.
SCOPE_OVERRIDE_CHARGING: public(constant(uint256)) = 2


# @dev Every scope bit.
_ALL_SCOPES: constant(uint256) = 3


# @dev Registry role bit of the operator (`Registry.ROLE_OPERATOR`).
ROLE_OPERATOR: constant(uint256) = 1


# @dev Longest emergency. [s]
MAX_EMERGENCY_S: public(constant(uint256)) = 7 * 86400


# @dev The market's registry.
registry: public(immutable(Registry))


# @dev Number of the current (or last) emergency; 0 before the first.
emergency_id: public(uint256)


# @dev End of the current emergency; in the past when none is on. [s since the Unix epoch]
emergency_end_timestamp: public(uint256)


# @dev Each account's latest grant.
_grants: HashMap[address, Grant]


# @dev Emitted when the operator declares an emergency.
event EmergencyDeclared:
    emergency: indexed(uint256)
    end_timestamp: uint256
    reason: String[64]


# @dev Emitted when the operator ends an emergency before its time.
event EmergencyEnded:
    emergency: indexed(uint256)


# @dev Emitted for every grant.
event Granted:
    account: indexed(address)
    emergency: indexed(uint256)
    scope: uint256
    subject: address
    expires_timestamp: uint256


# @dev Emitted when the operator revokes a grant.
event Revoked:
    account: indexed(address)
    emergency: indexed(uint256)


# @dev Emitted for every use of a grant: who did what to which household.
event Used:
    account: indexed(address)
    subject: indexed(address)
    scope: uint256
    note: String[64]


@deploy
def __init__(registry_: Registry):
    """
    @param registry_ The market's role registry; its operator declares and grants.
    """
    registry = registry_


@external
def declare(reason: String[64], duration_s: uint256):
    """
    @dev Declares an emergency for `duration_s`; the operator only, one
         at a time.
    @param reason Why, logged.
    @param duration_s Length; 1 to `MAX_EMERGENCY_S`. [s]
    """
    self._check_operator()
    assert block.timestamp >= self.emergency_end_timestamp, "emergency: already declared"
    assert duration_s != 0 and duration_s <= MAX_EMERGENCY_S, "emergency: duration out of range"
    self.emergency_id += 1
    self.emergency_end_timestamp = block.timestamp + duration_s
    log EmergencyDeclared(emergency=self.emergency_id, end_timestamp=block.timestamp + duration_s, reason=reason)


@external
def end_emergency():
    """
    @dev Ends the current emergency now, and with it every grant; the
         operator only.
    """
    self._check_operator()
    assert block.timestamp < self.emergency_end_timestamp, "emergency: none declared"
    self.emergency_end_timestamp = block.timestamp
    log EmergencyEnded(emergency=self.emergency_id)


@external
def grant(account: address, scope: uint256, subject: address, duration_s: uint256):
    """
    @dev Grants `account` the `scope` bits over `subject` (the empty
         address: every household) for `duration_s`, cut at the
         emergency's end; the operator only, during an emergency.
         Replaces the account's earlier grant.
    @param account The service account; holds no registry role.
    @param scope A non-empty combination of the `SCOPE_*` bits.
    @param subject The household, or the empty address for all.
    @param duration_s Length; at least 1. [s]
    """
    self._check_operator()
    assert block.timestamp < self.emergency_end_timestamp, "emergency: none declared"
    assert account != empty(address) and staticcall registry.roles(account) == 0, "emergency: grantee holds a role"
    assert scope != 0 and scope & ~_ALL_SCOPES == 0, "emergency: unknown scope"
    assert duration_s != 0, "emergency: duration out of range"
    expires: uint256 = min(block.timestamp + duration_s, self.emergency_end_timestamp)
    self._grants[account] = Grant(
        scope=scope, subject=subject, expires_timestamp=expires, revoked=False, emergency=self.emergency_id
    )
    log Granted(account=account, emergency=self.emergency_id, scope=scope, subject=subject, expires_timestamp=expires)


@external
def revoke(account: address):
    """
    @dev Revokes `account`'s grant of the current emergency; the
         operator only.
    @param account The grantee.
    """
    self._check_operator()
    assert self._grants[account].emergency == self.emergency_id and self.emergency_id != 0, "emergency: not granted"
    assert not self._grants[account].revoked, "emergency: revoked"
    self._grants[account].revoked = True
    log Revoked(account=account, emergency=self.emergency_id)


@external
def use(scope: uint256, subject: address, note: String[64]):
    """
    @dev Uses the caller's grant: `scope` on `subject`, logged with
         `note`; reverts with the reason `refusal` gives.
    @param scope The scope bits used.
    @param subject The household acted on.
    @param note What was done, logged.
    """
    reason: String[64] = self._refusal(msg.sender, scope, subject)
    assert len(reason) == 0, reason
    log Used(account=msg.sender, subject=subject, scope=scope, note=note)


@external
@view
def refusal(account: address, scope: uint256, subject: address) -> String[64]:
    """
    @dev Why `account` may not use `scope` on `subject` now (empty if
         it may); what an off-chain store asks before it serves.
    @param account The service account.
    @param scope The scope bits asked for.
    @param subject The household.
    @return String[64] The reason, or the empty string.
    """
    return self._refusal(account, scope, subject)


@external
@view
def grant_of(account: address) -> Grant:
    """
    @dev The account's latest grant, as stored.
    @param account The service account.
    @return Grant Scope, household, end, revocation and emergency.
    """
    return self._grants[account]


@internal
@view
def _refusal(account: address, scope: uint256, subject: address) -> String[64]:
    """
    @dev The reason a use is refused (header order), or the empty string.
    """
    g: Grant = self._grants[account]
    if self.emergency_id == 0 or g.emergency != self.emergency_id:
        return "emergency: not granted"
    if g.revoked:
        return "emergency: revoked"
    if block.timestamp >= min(g.expires_timestamp, self.emergency_end_timestamp):
        return "emergency: expired"
    if scope == 0 or scope & ~g.scope != 0 or (g.subject != empty(address) and g.subject != subject):
        return "emergency: out of scope"
    return ""


@internal
@view
def _check_operator():
    """
    @dev Reverts unless the registry's operator calls.
    """
    assert staticcall registry.has_role(msg.sender, ROLE_OPERATOR), "emergency: caller is not operator"
