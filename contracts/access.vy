# pragma version ~=0.4.3
"""
@title Market Access: Registry Roles and the Price Cap
@custom:contract-name access
@license BSD-3-Clause
@notice Module of the market mechanisms (`DoubleAuction.vy`,
        `PayAsBid.vy`, `MeritOrder.vy`, `VickreyAuction.vy`,
        `EnglishAuction.vy`): who may trade (the roles `Registry.vy`
        grants) and the highest price an order may carry, checked once
        at construction.
        A contract `initializes: access`, calls `access.__init__` from
        its constructor and exports `access.__interface__`.
        Functions:
        - `registry`, `price_cap_wei_per_wh` (`external` `view`
          functions),
        - `_check_prosumer`, `_check_operator`, `_check_participant`, `_is_prosumer`,
          `_roles_of` (`internal` functions).
"""


# @dev Role queries against the market's registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view
    def roles_of(accounts: DynArray[address, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]: view


# @dev Most accounts of one `Registry.roles_of` call (`book.MAX_ORDERS`).
MAX_BATCH: constant(uint256) = 256


# @dev Registry role bit of the operator (see `Registry.vy`).
ROLE_OPERATOR: constant(uint256) = 1


# @dev Registry role bit of prosumers (see `Registry.vy`).
ROLE_PROSUMER: constant(uint256) = 2


# @dev Largest price cap a mechanism accepts; fits the 80-bit price
# fields of `book.vy` and keeps MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH
# below 2**127. [wei/Wh]
MAX_PRICE_WEI_PER_WH: constant(uint256) = 10**24


# @dev Reason of a call by an account without the prosumer role.
NOT_PROSUMER: constant(String[64]) = "access: caller is not a prosumer"


# @dev Registry that grants the prosumer and operator roles.
registry: public(immutable(Registry))


# @dev Highest price an order, offer, reserve or bid may carry. [wei/Wh]
price_cap_wei_per_wh: public(immutable(uint256))


@deploy
def __init__(registry_: Registry, price_cap_wei_per_wh_: uint256):
    """
    @param registry_ The market's role registry.
    @param price_cap_wei_per_wh_ Highest price; positive and at most
           `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    """
    assert price_cap_wei_per_wh_ != 0 and price_cap_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH, "access: price cap out of range"
    registry = registry_
    price_cap_wei_per_wh = price_cap_wei_per_wh_


@internal
@view
def _check_prosumer(account: address):
    """
    @dev Reverts unless `account` holds the prosumer role.
    @param account The caller.
    """
    assert self._is_prosumer(account), NOT_PROSUMER


@internal
@view
def _is_prosumer(account: address) -> bool:
    """
    @dev Whether `account` holds the prosumer role.
    @param account The account.
    @return bool True for a prosumer.
    """
    return staticcall registry.has_role(account, ROLE_PROSUMER)


@internal
@view
def _roles_of(accounts: DynArray[address, MAX_BATCH]) -> DynArray[uint256, MAX_BATCH]:
    """
    @dev Role bitmasks of the signers of a relayed batch, in one call
         of the registry (`Registry.roles_of`).
    @param accounts The accounts.
    @return DynArray The role bitmask of each (`ROLE_*` bits), in order.
    """
    return staticcall registry.roles_of(accounts)


@internal
@view
def _check_operator(account: address):
    """
    @dev Reverts unless `account` holds the operator role.
    @param account The caller.
    """
    assert staticcall registry.has_role(account, ROLE_OPERATOR), "access: caller is not operator"


@internal
@view
def _check_participant(account: address):
    """
    @dev Reverts unless `account` holds the prosumer or the operator
         role, as clearing an interval needs.
    @param account The caller.
    """
    assert (
        staticcall registry.has_role(account, ROLE_PROSUMER) or staticcall registry.has_role(account, ROLE_OPERATOR)
    ), "access: caller is neither prosumer nor operator"
