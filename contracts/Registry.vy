# pragma version ~=0.4.3
"""
@title Role Registry of a GridLedger Market
@custom:contract-name registry
@license BSD-3-Clause
@notice Keeps the role bitmask of every account and which prosumer
        each meter measures. The deployer is the operator; only
        accounts holding the operator role change anything.
        Functions:
        - `grant_role` (`external` function),
        - `revoke_role` (`external` function),
        - `has_role` (`external` `view` function),
        - `bind_meter` (`external` function),
        - `roles` (`external` `view` function),
        - `prosumer_of_meter` (`external` `view` function).
@custom:security Revoking the last operator's operator role freezes the
                 registry for good; the contract does not prevent it.
"""


# @dev Role bit of accounts that manage roles and clear auctions.
ROLE_OPERATOR: public(constant(uint256)) = 1


# @dev Role bit of accounts that may submit orders.
ROLE_PROSUMER: public(constant(uint256)) = 2


# @dev Role bit of accounts that may post meter readings.
ROLE_METER: public(constant(uint256)) = 4


# @dev Union of all defined role bits.
_ALL_ROLES: constant(uint256) = 7


# @dev Role bitmask of each account.
roles: public(HashMap[address, uint256])


# @dev Prosumer whose energy a meter measures; the zero
# address while the meter is unbound.
prosumer_of_meter: public(HashMap[address, address])


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


@deploy
def __init__():
    """
    @dev Grants the operator role to the deployer.
    """
    self.roles[msg.sender] = ROLE_OPERATOR
    log RoleGranted(account=msg.sender, role=ROLE_OPERATOR, sender=msg.sender)


@external
def grant_role(account: address, role: uint256):
    """
    @dev Adds the bits of `role` to the roles of `account`.
    @param account The account that gains the role.
    @param role A non-empty combination of the `ROLE_*` bits.
    """
    self._check_operator()
    self._check_role(role)
    assert account != empty(address), "registry: account is the zero address"
    self.roles[account] = self.roles[account] | role
    log RoleGranted(account=account, role=role, sender=msg.sender)


@external
def revoke_role(account: address, role: uint256):
    """
    @dev Removes the bits of `role` from the roles of `account`.
         Removing the meter role also unbinds the meter, so a bound
         meter always holds the meter role.
    @param account The account that loses the role.
    @param role A non-empty combination of the `ROLE_*` bits.
    """
    self._check_operator()
    self._check_role(role)
    self.roles[account] = self.roles[account] & ~role
    if role & ROLE_METER != 0:
        self.prosumer_of_meter[account] = empty(address)
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
def bind_meter(meter: address, prosumer: address):
    """
    @dev Makes `meter` the meter of `prosumer`, replacing any
         previous binding of `meter`.
    @param meter An account holding the meter role.
    @param prosumer An account holding the prosumer role.
    """
    self._check_operator()
    assert self.roles[meter] & ROLE_METER != 0, "registry: meter lacks meter role"
    assert self.roles[prosumer] & ROLE_PROSUMER != 0, "registry: prosumer lacks prosumer role"
    self.prosumer_of_meter[meter] = prosumer
    log MeterBound(meter=meter, prosumer=prosumer)


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
