# pragma version ~=0.4.3
"""
@title Two-Phase Bilateral Trades of a GridLedger Market
@custom:contract-name two_phase_trade
@license BSD-3-Clause
@notice A bilateral trade that is paid only when both sides' meters
        confirm it, after Dorri et al.: phase one prepares it (the
        buyer `propose`s energy, price and a deadline and locks the
        payment; the seller `accept`s and locks a collateral of the
        same value), phase two commits it (each side's bound meter
        `confirm`s the energy it metered; the second confirmation pays
        the seller and returns its collateral in the same
        transaction). A trade not committed by its deadline rolls back
        (`roll_back`, anyone): every lock returns to who locked it, so
        a crash between the phases loses nothing and pays nothing.
        Functions:
        - `propose`, `cancel` (`external` functions, the buyer),
        - `accept` (`external` function, the named seller),
        - `confirm` (`external` function, a side's bound meter),
        - `roll_back` (`external` function, anyone after the deadline),
        - `trade_of`, `status` (`external` `view` functions).
        States: NONE -> PROPOSED -> PREPARED -> COMMITTED; PROPOSED or
        PREPARED -> ROLLED_BACK (the buyer's `cancel` of an unaccepted
        proposal, or `roll_back` after the deadline).
@custom:security Tokens move only into this contract on `propose` and
                 `accept` and only out of it on commit or roll-back,
                 each lock exactly once: the contract holds the sum of
                 the open trades' locks. Only registered prosumers
                 trade; only a side's own bound meter confirms for it,
                 and a confirmation below the traded energy does not
                 count.
"""

from ethereum.ercs import IERC20


# @dev The market's registry: prosumers and their bound meters.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view
    def prosumer_of_meter(meter: address) -> address: view


# @dev One trade: sides, terms, locks and confirmations.
struct Trade:
    status: uint256
    buyer: address
    seller: address
    energy_wh: uint256
    price_wei_per_wh: uint256
    deadline_timestamp: uint256
    buyer_confirmed: bool
    seller_confirmed: bool


# @dev Codes of `status`.
STATUS_NONE: public(constant(uint256)) = 0
STATUS_PROPOSED: public(constant(uint256)) = 1
STATUS_PREPARED: public(constant(uint256)) = 2
STATUS_COMMITTED: public(constant(uint256)) = 3
STATUS_ROLLED_BACK: public(constant(uint256)) = 4


# @dev Registry role bit of prosumers (`Registry.ROLE_PROSUMER`).
ROLE_PROSUMER: constant(uint256) = 2


# @dev Largest traded energy. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 2**40


# @dev Largest price. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Longest time from proposal to deadline: 7 days. [s]
MAX_DEADLINE_S: public(constant(uint256)) = 7 * 86400


# @dev The market's registry.
registry: public(immutable(Registry))


# @dev The token trades are paid in.
token: public(immutable(IERC20))


# @dev Trades by id.
_trades: HashMap[bytes32, Trade]


# @dev Emitted when a buyer proposes a trade (phase one begins).
event Proposed:
    trade_id: indexed(bytes32)
    buyer: indexed(address)
    seller: indexed(address)
    energy_wh: uint256
    price_wei_per_wh: uint256
    deadline_timestamp: uint256


# @dev Emitted when the seller accepts (the trade is prepared).
event Prepared:
    trade_id: indexed(bytes32)


# @dev Emitted when a side's meter confirms the traded energy.
event Confirmed:
    trade_id: indexed(bytes32)
    prosumer: indexed(address)
    metered_wh: uint256


# @dev Emitted when both meters have confirmed and the seller is paid.
event Committed:
    trade_id: indexed(bytes32)
    paid_wei: uint256


# @dev Emitted when a trade rolls back and its locks return.
event RolledBack:
    trade_id: indexed(bytes32)
    reason: String[64]


@deploy
def __init__(registry_: Registry, token_: IERC20):
    """
    @param registry_ The market's registry of prosumers and meters.
    @param token_ The market's token.
    """
    registry = registry_
    token = token_


@external
def propose(trade_id: bytes32, seller: address, energy_wh: uint256, price_wei_per_wh: uint256, deadline_timestamp: uint256):
    """
    @dev Proposes a trade to `seller` and locks its value, energy *
         price, of the caller's tokens (approved to this contract); a
         registered prosumer, with a fresh id.
    @param trade_id The trade's id, chosen by the buyer.
    @param seller A registered prosumer other than the caller.
    @param energy_wh Energy; 1 to `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Price; 1 to `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    @param deadline_timestamp Commit by then or roll back; in the future,
           at most `MAX_DEADLINE_S` ahead. [s since the Unix epoch]
    """
    assert staticcall registry.has_role(msg.sender, ROLE_PROSUMER), "trade: caller is not a prosumer"
    assert staticcall registry.has_role(seller, ROLE_PROSUMER) and seller != msg.sender, "trade: seller is not another prosumer"
    assert self._trades[trade_id].status == STATUS_NONE, "trade: id taken"
    assert energy_wh != 0 and energy_wh <= MAX_ENERGY_WH, "trade: energy out of range"
    assert price_wei_per_wh != 0 and price_wei_per_wh <= MAX_PRICE_WEI_PER_WH, "trade: price out of range"
    assert (
        deadline_timestamp > block.timestamp and deadline_timestamp <= block.timestamp + MAX_DEADLINE_S
    ), "trade: deadline out of range"
    self._trades[trade_id] = Trade(
        status=STATUS_PROPOSED,
        buyer=msg.sender,
        seller=seller,
        energy_wh=energy_wh,
        price_wei_per_wh=price_wei_per_wh,
        deadline_timestamp=deadline_timestamp,
        buyer_confirmed=False,
        seller_confirmed=False,
    )
    log Proposed(
        trade_id=trade_id,
        buyer=msg.sender,
        seller=seller,
        energy_wh=energy_wh,
        price_wei_per_wh=price_wei_per_wh,
        deadline_timestamp=deadline_timestamp,
    )
    assert extcall token.transferFrom(msg.sender, self, energy_wh * price_wei_per_wh), "trade: lock failed"


@external
def cancel(trade_id: bytes32):
    """
    @dev Withdraws a proposal the seller has not accepted; the buyer
         only. Its lock returns.
    @param trade_id The trade.
    """
    t: Trade = self._trades[trade_id]
    assert t.status == STATUS_PROPOSED, "trade: not proposed"
    assert msg.sender == t.buyer, "trade: caller is not the buyer"
    self._roll_back(trade_id, t, "trade: cancelled by buyer")


@external
def accept(trade_id: bytes32):
    """
    @dev Accepts a proposal and locks a collateral of its value of the
         caller's tokens; the named seller, before the deadline. The
         trade is prepared.
    @param trade_id The trade.
    """
    t: Trade = self._trades[trade_id]
    assert t.status == STATUS_PROPOSED, "trade: not proposed"
    assert msg.sender == t.seller, "trade: caller is not the seller"
    assert block.timestamp < t.deadline_timestamp, "trade: deadline passed"
    self._trades[trade_id].status = STATUS_PREPARED
    log Prepared(trade_id=trade_id)
    assert extcall token.transferFrom(msg.sender, self, t.energy_wh * t.price_wei_per_wh), "trade: lock failed"


@external
def confirm(trade_id: bytes32, metered_wh: uint256):
    """
    @dev Confirms, as the bound meter of the buyer or the seller, that
         its prosumer imported or exported at least the traded energy;
         before the deadline. A confirmation below it does not count.
         The second side's confirmation commits: the seller gets the
         payment and its collateral back.
    @param trade_id The trade.
    @param metered_wh The energy the meter measured for the trade. [Wh]
    """
    t: Trade = self._trades[trade_id]
    assert t.status == STATUS_PREPARED, "trade: not prepared"
    assert block.timestamp < t.deadline_timestamp, "trade: deadline passed"
    prosumer: address = staticcall registry.prosumer_of_meter(msg.sender)
    assert prosumer != empty(address) and (prosumer == t.buyer or prosumer == t.seller), "trade: caller is not a side's meter"
    assert metered_wh >= t.energy_wh, "trade: metered below traded"
    if prosumer == t.buyer:
        assert not t.buyer_confirmed, "trade: already confirmed"
        t.buyer_confirmed = True
        self._trades[trade_id].buyer_confirmed = True
    else:
        assert not t.seller_confirmed, "trade: already confirmed"
        t.seller_confirmed = True
        self._trades[trade_id].seller_confirmed = True
    log Confirmed(trade_id=trade_id, prosumer=prosumer, metered_wh=metered_wh)
    if t.buyer_confirmed and t.seller_confirmed:
        value_wei: uint256 = t.energy_wh * t.price_wei_per_wh
        self._trades[trade_id].status = STATUS_COMMITTED
        log Committed(trade_id=trade_id, paid_wei=value_wei)
        assert extcall token.transfer(t.seller, 2 * value_wei), "trade: payment failed"


@external
def roll_back(trade_id: bytes32):
    """
    @dev Rolls back a trade not committed by its deadline; anyone. Every
         lock returns to who locked it.
    @param trade_id The trade.
    """
    t: Trade = self._trades[trade_id]
    assert t.status == STATUS_PROPOSED or t.status == STATUS_PREPARED, "trade: not open"
    assert block.timestamp >= t.deadline_timestamp, "trade: deadline not passed"
    self._roll_back(trade_id, t, "trade: deadline passed")


@external
@view
def trade_of(trade_id: bytes32) -> Trade:
    """
    @dev The trade as stored.
    @param trade_id The trade.
    @return Trade Status, sides, terms and confirmations.
    """
    return self._trades[trade_id]


@external
@view
def status(trade_id: bytes32) -> uint256:
    """
    @dev The trade's state, a `STATUS_*` code.
    @param trade_id The trade.
    @return uint256 The code.
    """
    return self._trades[trade_id].status


@internal
def _roll_back(trade_id: bytes32, t: Trade, reason: String[64]):
    """
    @dev Marks the trade rolled back and returns its locks: the buyer's
         payment, and the seller's collateral if it accepted.
    @param trade_id The trade.
    @param t The trade as stored.
    @param reason Why, for `RolledBack`.
    """
    value_wei: uint256 = t.energy_wh * t.price_wei_per_wh
    self._trades[trade_id].status = STATUS_ROLLED_BACK
    log RolledBack(trade_id=trade_id, reason=reason)
    assert extcall token.transfer(t.buyer, value_wei), "trade: refund failed"
    if t.status == STATUS_PREPARED:
        assert extcall token.transfer(t.seller, value_wei), "trade: refund failed"
