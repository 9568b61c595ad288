# pragma version ~=0.4.3
"""
@title Role Registry of a GridLedger Market
@custom:contract-name registry
@license BSD-3-Clause
@notice Keeps the role bitmask of every account and which prosumer
        each meter measures. The deployer is the operator; only
        accounts holding the operator role change anything.
        Separation of duties: no account holds two roles that check
        each other. The operator role excludes the meter and the
        prosumer roles, and the meter role excludes the prosumer role,
        so the operator can never post a reading or a delivery, and a
        meter never measures itself. A prosumer has at most one meter
        and a meter measures at most one prosumer.
        Freeze rule: from `start_timestamp` (the market's first
        interval) on, bindings are immutable: `bind_meter` reverts, and
        neither a bound meter's meter role nor its prosumer's prosumer
        role can be revoked, so whatever a prosumer still has to settle
        (readings, escrow, flexibility awards) is posted by the meter it
        had when the market started. Before the start a new binding of
        a meter or of a prosumer replaces its previous one, and
        revoking either role of a bound pair unbinds it.
        Every role change and binding is an event.
        Pseudonyms: before the start the operator may name, once, the
        contract that registers pseudonyms (`set_pseudonyms`); that
        contract alone may `enrol` a pair of fresh accounts (no role
        yet) as a prosumer and its meter, at any time: a new binding,
        frozen like every other from the start on.
        Functions:
        - `set_pseudonyms` (`external` function, the operator only),
        - `enrol` (`external` function, the pseudonym contract only),
        - `grant_role`, `grant_roles` (`external` functions),
        - `revoke_role` (`external` function),
        - `has_role`, `roles_of`, `prosumers_of_meters` (`external` `view`
          functions),
        - `bind_meter`, `bind_meters` (`external` functions),
        - `roles` (`external` `view` function),
        - `prosumer_of_meter`, `meter_of_prosumer` (`external` `view`
          functions),
        - `start_timestamp` (`external` `view` function).
@custom:security Revoking the last operator's operator role freezes the
                 registry for good; the contract does not prevent it.
                 The operator appoints the meters before the start and
                 is trusted to bind each prosumer's real meter.
"""


# @dev Role bit of accounts that manage roles and clear auctions.
ROLE_OPERATOR: public(constant(uint256)) = 1


# @dev Role bit of accounts that may submit orders.
ROLE_PROSUMER: public(constant(uint256)) = 2


# @dev Role bit of accounts that may post meter readings.
ROLE_METER: public(constant(uint256)) = 4


# @dev Union of all defined role bits.
_ALL_ROLES: constant(uint256) = 7


# @dev Most accounts one `roles_of` or `prosumers_of_meters` call looks
# up: a relayed batch of orders or readings (`book.MAX_ORDERS`,
# `Settlement.MAX_READINGS`).
MAX_BATCH: public(constant(uint256)) = 256


# @dev Role bitmask of each account.
roles: public(HashMap[address, uint256])


# @dev Prosumer whose energy a meter measures; the zero
# address while the meter is unbound.
prosumer_of_meter: public(HashMap[address, address])


# @dev The single meter of a prosumer; the zero address while the
# prosumer has none.
meter_of_prosumer: public(HashMap[address, address])


# @dev From this time on bindings are frozen. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev The contract that enrols pseudonyms; the zero address if none.
pseudonyms: public(address)


# @dev Emitted when `role` bits are added to `account`.
event RoleGranted:
    account: indexed(address)
    role: uint256
    sender: indexed(address)


# @dev Emitted when `role` bits are removed from `account`.
event RoleRevoked:
    account: indexed(address)
    role: uint256
    sender: indexed(address)


# @dev Emitted when `meter` starts measuring `prosumer`.
event MeterBound:
    meter: indexed(address)
    prosumer: indexed(address)


# @dev Emitted when the operator names the contract that enrols pseudonyms.
event PseudonymsSet:
    pseudonyms: indexed(address)


# @dev Emitted when `meter` stops measuring `prosumer` (a rebinding or a
# revoked role, before the start).
event MeterUnbound:
    meter: indexed(address)
    prosumer: indexed(address)


@deploy
def __init__(start_timestamp_: uint256):
    """
    @dev Grants the operator role to the deployer.
    @param start_timestamp_ Start of the market's first interval; from
           then on bindings are frozen. [s since the Unix epoch]
    """
    start_timestamp = start_timestamp_
    self.roles[msg.sender] = ROLE_OPERATOR
    log RoleGranted(account=msg.sender, role=ROLE_OPERATOR, sender=msg.sender)


@external
def grant_role(account: address, role: uint256):
    """
    @dev Adds the bits of `role` to the roles of `account`.
    @param account The account that gains the role.
    @param role A non-empty combination of the `ROLE_*` bits; the
           account's roles after the grant must not conflict.
    """
    self._check_operator()
    self._check_role(role)
    self._grant(account, role)


@external
def grant_roles(accounts: DynArray[address, MAX_BATCH], role: uint256):
    """
    @dev `grant_role` of the same `role` to each of `accounts`, in one
         call (the setup of a large market); reverts as a whole if one
         grant would.
    @param accounts The accounts that gain the role.
    @param role As for `grant_role`.
    """
    self._check_operator()
    self._check_role(role)
    for account: address in accounts:
        self._grant(account, role)


@external
def revoke_role(account: address, role: uint256):
    """
    @dev Removes the bits of `role` from the roles of `account`.
         Before the start, removing the meter role of a bound meter or
         the prosumer role of a bound prosumer unbinds the pair, so a
         binding always joins a meter to a prosumer; from the start on
         it reverts.
    @param account The account that loses the role.
    @param role A non-empty combination of the `ROLE_*` bits.
    """
    self._check_operator()
    self._check_role(role)
    if role & ROLE_METER != 0:
        self._unbind(account, self.prosumer_of_meter[account])
    if role & ROLE_PROSUMER != 0:
        self._unbind(self.meter_of_prosumer[account], account)
    self.roles[account] = self.roles[account] & ~role
    log RoleRevoked(account=account, role=role, sender=msg.sender)


@external
@view
def has_role(account: address, role: uint256) -> bool:
    """
    @dev Tells whether `account` holds every bit of `role`.
    @param account The account to look up.
    @param role A combination of the `ROLE_*` bits.
    @return bool True if all bits of `role` are set and `role` is
            not empty.
    """
    return role != 0 and self.roles[account] & role == role


@external
@view
def roles_of(accounts: DynArray[address, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """
    @dev Role bitmasks of many accounts in one call, for a mechanism
         checking the signers of a relayed batch (`book.vy`).
    @param accounts The accounts to look up; the zero address reads 0.
    @return DynArray The role bitmask of each account, in order.
    """
    masks: DynArray[uint256, MAX_BATCH] = []
    for account: address in accounts:
        masks.append(self.roles[account])
    return masks


@external
@view
def prosumers_of_meters(meters: DynArray[address, MAX_BATCH]) -> DynArray[address, MAX_BATCH]:
    """
    @dev Prosumers of many meters in one call, for the settlement
         checking the signers of a relayed batch of readings.
    @param meters The meters to look up; the zero address reads empty.
    @return DynArray The prosumer each meter is bound to, the zero
            address for an unbound one, in order.
    """
    prosumers: DynArray[address, MAX_BATCH] = []
    for meter: address in meters:
        prosumers.append(self.prosumer_of_meter[meter])
    return prosumers


@external
def bind_meter(meter: address, prosumer: address):
    """
    @dev Makes `meter` the only meter of `prosumer`, replacing any
         previous binding of either; only before the start.
    @param meter An account holding the meter role.
    @param prosumer An account holding the prosumer role.
    """
    self._check_operator()
    self._bind(meter, prosumer)


@external
def bind_meters(meters: DynArray[address, MAX_BATCH], prosumers: DynArray[address, MAX_BATCH]):
    """
    @dev `bind_meter` of each meter to the prosumer at the same place, in
         one call (the setup of a large market); reverts as a whole if
         one binding would.
    @param meters Accounts holding the meter role.
    @param prosumers Accounts holding the prosumer role, one per meter.
    """
    self._check_operator()
    assert len(meters) == len(prosumers), "registry: length mismatch"
    for i: uint256 in range(len(meters), bound=MAX_BATCH):
        self._bind(meters[i], prosumers[i])


@external
def set_pseudonyms(contract: address):
    """
    @dev Names the contract that may `enrol` pseudonyms; once, before
         the start.
    @param contract The pseudonym contract; not the zero address.
    """
    self._check_operator()
    assert block.timestamp < start_timestamp, "registry: bindings frozen"
    assert self.pseudonyms == empty(address), "registry: pseudonyms already set"
    assert contract != empty(address), "registry: pseudonyms is the zero address"
    self.pseudonyms = contract
    log PseudonymsSet(pseudonyms=contract)


@external
def enrol(prosumer: address, meter: address):
    """
    @dev Grants `prosumer` the prosumer role and `meter` the meter role
         and binds them, at any time; both must hold no role yet, so an
         enrolment never changes an existing binding.
    @param prosumer The pseudonym.
    @param meter The pseudonym's one-time meter key; another account.
    """
    assert msg.sender == self.pseudonyms and msg.sender != empty(address), "registry: caller is not pseudonyms"
    assert prosumer != meter, "registry: prosumer is its meter"
    assert self.roles[prosumer] == 0 and self.roles[meter] == 0, "registry: account holds a role"
    self._grant(prosumer, ROLE_PROSUMER)
    self._grant(meter, ROLE_METER)
    self.prosumer_of_meter[meter] = prosumer
    self.meter_of_prosumer[prosumer] = meter
    log MeterBound(meter=meter, prosumer=prosumer)


@internal
def _grant(account: address, role: uint256):
    """
    @dev Adds the bits of a checked `role` to the roles of `account`.
    @param account The account that gains the role; not the zero address.
    @param role A valid role bitmask; the account's roles after the grant
           must not conflict.
    """
    assert account != empty(address), "registry: account is the zero address"
    roles_: uint256 = self.roles[account] | role
    assert roles_ & ROLE_OPERATOR == 0 or roles_ & (ROLE_METER | ROLE_PROSUMER) == 0, "registry: operator cannot be meter or prosumer"
    assert roles_ & (ROLE_METER | ROLE_PROSUMER) != ROLE_METER | ROLE_PROSUMER, "registry: meter cannot be prosumer"
    self.roles[account] = roles_
    log RoleGranted(account=account, role=role, sender=msg.sender)


@internal
def _bind(meter: address, prosumer: address):
    """
    @dev Makes `meter` the only meter of `prosumer`, replacing any
         previous binding of either; only before the start.
    @param meter An account holding the meter role.
    @param prosumer An account holding the prosumer role.
    """
    assert self.roles[meter] & ROLE_METER != 0, "registry: meter lacks meter role"
    assert self.roles[prosumer] & ROLE_PROSUMER != 0, "registry: prosumer lacks prosumer role"
    assert block.timestamp < start_timestamp, "registry: bindings frozen"
    self._unbind(meter, self.prosumer_of_meter[meter])
    self._unbind(self.meter_of_prosumer[prosumer], prosumer)
    self.prosumer_of_meter[meter] = prosumer
    self.meter_of_prosumer[prosumer] = meter
    log MeterBound(meter=meter, prosumer=prosumer)


@internal
def _unbind(meter: address, prosumer: address):
    """
    @dev Removes the binding of `meter` to `prosumer`, if there is one;
         reverts from the start on.
    @param meter The bound meter, or the zero address.
    @param prosumer The bound prosumer, or the zero address.
    """
    if meter == empty(address) or prosumer == empty(address):
        return
    assert block.timestamp < start_timestamp, "registry: bindings frozen"
    self.prosumer_of_meter[meter] = empty(address)
    self.meter_of_prosumer[prosumer] = empty(address)
    log MeterUnbound(meter=meter, prosumer=prosumer)


@internal
@view
def _check_operator():
    """
    @dev Reverts unless the caller holds the operator role.
    """
    assert self.roles[msg.sender] & ROLE_OPERATOR != 0, "registry: caller is not operator"


@internal
@pure
def _check_role(role: uint256):
    """
    @dev Reverts unless `role` is a non-empty set of defined bits.
    @param role The role bitmask to check.
    """
    assert role != 0 and role & ~_ALL_ROLES == 0, "registry: unknown role"
