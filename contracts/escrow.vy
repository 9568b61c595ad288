# pragma version ~=0.4.3
"""
@title Settlement Binding of a Market Mechanism
@custom:contract-name escrow
@license BSD-3-Clause
@notice Module of the market mechanisms (`DoubleAuction.vy`,
        `PayAsBid.vy`, `MeritOrder.vy`, `VickreyAuction.vy`,
        `EnglishAuction.vy`): the `Settlement.vy` that escrows their
        bids and settles their outcome. The settlement names its
        mechanism, so it is deployed after it and bound to it by the
        mechanism's deployer, once (`bind_settlement`); until then
        every call that escrows reverts (`_check_bound`).
        Every order must lie between the settlement's `min_order_wh`
        and the account's `order_limit_wh` (`_check_order_size`).
        A contract `initializes: escrow`, calls `escrow.__init__` from
        its constructor and exports `escrow.__interface__`.
        Functions:
        - `bind_settlement` (`external` function),
        - `deployer`, `settlement` (`external` `view` functions),
        - `_check_bound`, `_check_not_debtor`, `_check_order_size`,
          `_order_problem`, `_order_size_problem`, `_order_codes`,
          `_code_reason` (`internal` functions).
"""



# @dev Escrow calls into the market's settlement (see `Settlement.vy`).
interface Settlement:
    def auction() -> address: view
    def lock(account: address, interval: uint256, energy_wh: uint256, price_wei_per_wh: uint256): nonpayable
    def unlock(account: address, interval: uint256, amount_wei: uint256): nonpayable
    def escrow_wei(account: address, energy_wh: uint256, price_wei_per_wh: uint256) -> uint256: view
    def is_debtor(account: address) -> bool: view
    def min_order_wh() -> uint256: view
    def order_limit_wh(account: address, is_ask: bool) -> uint256: view
    def can_lock(account: address, energy_wh: uint256, price_wei_per_wh: uint256) -> bool: view
    def order_problems(interval: uint256, accounts: DynArray[address, MAX_ORDERS], words: DynArray[uint256, MAX_ORDERS]) -> DynArray[uint256, MAX_ORDERS]: view
    def trades_in(account: address, interval: uint256) -> bool: view
    def lock_bids(interval: uint256, accounts: DynArray[address, MAX_ORDERS], words: DynArray[uint256, MAX_ORDERS]): nonpayable


# @dev Most orders of a relayed batch (`book.MAX_ORDERS`,
# `Settlement.MAX_ORDERS`).
MAX_ORDERS: constant(uint256) = 256


# @dev Codes of `_order_codes`: 1 to 5 and 7 are `Settlement.vy`'s
# `ORDER_*` codes (0 for an order that passes), 6 an unbound settlement.
CODE_IN_DEBT: constant(uint256) = 1
CODE_BELOW_MINIMUM: constant(uint256) = 2
CODE_ASK_ABOVE_CAPACITY: constant(uint256) = 3
CODE_BID_ABOVE_RATING: constant(uint256) = 4
CODE_CREDIT_BELOW_ESCROW: constant(uint256) = 5
CODE_NOT_BOUND: constant(uint256) = 6
CODE_OUTSIDE_INTERVAL: constant(uint256) = 7


# @dev What settling one account's reading needs from one interval;
# the interface every market mechanism offers `Settlement.vy`.
struct SettlementTerms:
    cleared: bool
    position_wh: int256
    value_wei: int256
    end_timestamp: uint256


# @dev Reasons given both by a check that reverts and by `_order_problem`.
NOT_BOUND: constant(String[64]) = "escrow: settlement not bound"
IN_DEBT: constant(String[64]) = "escrow: account in debt"
CREDIT_BELOW_ESCROW: constant(String[64]) = "settlement: credit below escrow"
BELOW_MINIMUM: constant(String[64]) = "escrow: energy below minimum"
ASK_ABOVE_CAPACITY: constant(String[64]) = "escrow: ask above registered capacity"
BID_ABOVE_RATING: constant(String[64]) = "escrow: bid above meter rating"
OUTSIDE_INTERVAL: constant(String[64]) = "settlement: pseudonym outside its interval"


# @dev Account that deployed the mechanism and binds its settlement.
deployer: public(immutable(address))


# @dev Settlement that escrows bids; the zero address until bound.
settlement: public(Settlement)


# @dev Emitted once, when the deployer binds the settlement.
event SettlementBound:
    settlement: indexed(address)


@deploy
def __init__():
    deployer = msg.sender


@external
def bind_settlement(settlement_: Settlement):
    """
    @dev Binds the settlement that escrows bids, once; the settlement
         is deployed after this contract because it names it.
    @param settlement_ A settlement whose `auction` is this contract.
    """
    # checks
    assert msg.sender == deployer, "escrow: caller is not the deployer"
    assert self.settlement.address == empty(address), "escrow: settlement already bound"
    assert staticcall settlement_.auction() == self, "escrow: settlement of another mechanism"

    # effects
    self.settlement = settlement_
    log SettlementBound(settlement=settlement_.address)


@internal
@view
def _check_bound():
    """
    @dev Reverts until the settlement is bound.
    """
    assert self.settlement.address != empty(address), NOT_BOUND


@internal
@view
def _check_not_debtor(account: address):
    """
    @dev Reverts if `account` is in debt in the settlement
         (`Settlement.is_debtor`): a debtor places no order.
    @param account The account placing an order.
    """
    assert not staticcall self.settlement.is_debtor(account), IN_DEBT


@internal
@view
def _check_trades_in(account: address, interval: uint256):
    """
    @dev Reverts if `account` is a pseudonym of another interval than
         `interval` (`Settlement.trades_in`).
    @param account The account placing an order.
    @param interval Index of the market interval of the order.
    """
    assert staticcall self.settlement.trades_in(account, interval), OUTSIDE_INTERVAL


@internal
@view
def _check_order_size(account: address, is_ask: bool, energy_wh: uint256):
    """
    @dev Reverts with `_order_size_problem`'s reason unless an order of
         `energy_wh` by `account` lies within its bounds.
    @param account The account placing the order.
    @param is_ask True for an ask (offer, lot), False for a bid.
    @param energy_wh Energy of the order. [Wh]
    """
    reason: String[64] = self._order_size_problem(account, is_ask, energy_wh)
    assert len(reason) == 0, reason


@internal
@view
def _order_problem(account: address, interval: uint256, is_ask: bool, energy_wh: uint256,
                   price_wei_per_wh: uint256) -> String[64]:
    """
    @dev Why the settlement refuses an order of `account`, or the empty
         string: not bound, a pseudonym outside its interval, the account in debt, the size out of bounds
         (`_order_size_problem`), or a bid whose escrow exceeds the
         account's free credit (`Settlement.can_lock`). The checks of
         `_check_bound`, `_check_trades_in`, `_check_not_debtor`,
         `_check_order_size` and `Settlement.lock`, in that order, with
         their reasons, for a relayed order that must be skipped rather
         than revert.
    @param account The account placing the order.
    @param interval Index of the market interval of the order.
    @param is_ask True for an ask (offer, lot), False for a bid.
    @param energy_wh Energy of the order. [Wh]
    @param price_wei_per_wh Limit price of the order. [wei/Wh]
    @return String[64] The reason, empty if the order passes.
    """
    if self.settlement.address == empty(address):
        return NOT_BOUND
    if not staticcall self.settlement.trades_in(account, interval):
        return OUTSIDE_INTERVAL
    if staticcall self.settlement.is_debtor(account):
        return IN_DEBT
    reason: String[64] = self._order_size_problem(account, is_ask, energy_wh)
    if len(reason) != 0:
        return reason
    if not is_ask and not staticcall self.settlement.can_lock(account, energy_wh, price_wei_per_wh):
        return CREDIT_BELOW_ESCROW
    return ""


@internal
@view
def _order_size_problem(account: address, is_ask: bool, energy_wh: uint256) -> String[64]:
    """
    @dev Why an order of `energy_wh` by `account` is out of bounds, or
         the empty string: below the settlement's `min_order_wh`, or
         above the account's `order_limit_wh` (a bid its meter rating,
         an ask what its PV and battery can export in one interval).
    @param account The account placing the order.
    @param is_ask True for an ask (offer, lot), False for a bid.
    @param energy_wh Energy of the order. [Wh]
    @return String[64] The reason, empty if the size is within bounds.
    """
    if energy_wh < staticcall self.settlement.min_order_wh():
        return BELOW_MINIMUM
    if energy_wh > staticcall self.settlement.order_limit_wh(account, is_ask):
        return ASK_ABOVE_CAPACITY if is_ask else BID_ABOVE_RATING
    return ""


@internal
@view
def _order_codes(interval: uint256, accounts: DynArray[address, MAX_ORDERS], words: DynArray[uint256, MAX_ORDERS]) -> DynArray[uint256, MAX_ORDERS]:
    """
    @dev The checks of `_order_problem` for every order of a relayed
         batch in one call of the settlement (`Settlement.order_problems`),
         as codes: `CODE_NOT_BOUND` for each while no settlement is bound.
    @param interval Index of the market interval of the batch.
    @param accounts The account of each order.
    @param words Each order's packed word (`book.vy`'s `ORDER_*` layout).
    @return DynArray One code per order (`_code_reason`), 0 if it passes.
    """
    if self.settlement.address == empty(address):
        codes: DynArray[uint256, MAX_ORDERS] = []
        for _: address in accounts:
            codes.append(CODE_NOT_BOUND)
        return codes
    return staticcall self.settlement.order_problems(interval, accounts, words)


@internal
@pure
def _code_reason(code: uint256) -> String[64]:
    """
    @dev Reason of a code of `_order_codes`, the string `_order_problem`
         gives for the same check.
    @param code A code of `_order_codes`.
    @return String[64] The reason, empty for 0.
    """
    if code == CODE_IN_DEBT:
        return IN_DEBT
    if code == CODE_BELOW_MINIMUM:
        return BELOW_MINIMUM
    if code == CODE_ASK_ABOVE_CAPACITY:
        return ASK_ABOVE_CAPACITY
    if code == CODE_BID_ABOVE_RATING:
        return BID_ABOVE_RATING
    if code == CODE_CREDIT_BELOW_ESCROW:
        return CREDIT_BELOW_ESCROW
    if code == CODE_NOT_BOUND:
        return NOT_BOUND
    if code == CODE_OUTSIDE_INTERVAL:
        return OUTSIDE_INTERVAL
    return ""
