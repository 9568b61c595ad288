# pragma version ~=0.4.3
"""
@title Clearing House of a GridLedger Market
@custom:contract-name settlement
@license BSD-3-Clause
@notice Holds the market's tokens and keeps a signed credit per account
        (negative = debt, billed after delivery) plus the pool of
        peer-to-peer payments in flight. A bound meter posts each
        interval's reading once the interval has ended; the prosumer's
        cleared position is then settled at the money value the market
        mechanism gives it, buyers pay the grid fee to the operator, and
        the difference between metered and cleared energy is settled
        with the operator at the grid prices. Tokens leave only through
        `withdraw`. Any mechanism that offers `settlement_terms` (uniform
        or discriminatory prices alike) can be settled.
        Functions:
        - `deposit_for` (`external` function),
        - `withdraw` (`external` function),
        - `post_reading` (`external` function),
        - `settle_operator` (`external` function),
        - `credit_wei`, `pool_wei`, `reading` (`external` `view` functions).
        With q the position [Wh], v its money value [wei] (positive =
        received; p*q at a uniform price p), m = export - import:
        prosumer += v, pool -= v;
        q < 0: prosumer -= fee*|q|, operator += fee*|q|;
        d = m - q > 0: prosumer += sell*d, operator -= sell*d;
        d < 0: prosumer -= buy*|d|, operator += buy*|d|.
        The operator's own market position (the buyer of a merit-order
        dispatch) has no meter: `settle_operator` settles it with
        operator += v, pool -= v, without fee or imbalance.
        Invariant: the sum of all credits plus the pool equals this
        contract's token balance; an interval's pool share returns to
        zero once every participant has posted. A reading is stored as
        one packed word (layout at the `_READING_*` constants).
@custom:security Credits may go negative without limit: collecting debt
                 is off-chain business of the operator. Settlement trusts
                 its mechanism to keep positions within `MAX_ENERGY_WH`
                 and |value| within `MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH`,
                 and the values of an interval to sum to zero over all
                 accounts it settles.
"""


# @dev We import the built-in `IERC20` interface to move tokens.
from ethereum.ercs import IERC20


# @dev Meter bindings of the market's registry.
interface Registry:
    def prosumer_of_meter(meter: address) -> address: view


# @dev Cleared results of the market mechanism (any of the auctions).
interface Mechanism:
    def settlement_terms(interval: uint256, account: address) -> SettlementTerms: view


# @dev Largest import or export of one reading; equal to the
# mechanisms' `MAX_ENERGY_WH`. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest grid price or fee the constructor accepts. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Packed reading word of one prosumer in one interval, zero until
# posted: bits [0, 40) import [Wh], [40, 80) export [Wh] (each at most
# MAX_ENERGY_WH < 2**40), bit 80 set once posted.
_READING_ENERGY_MASK: constant(uint256) = 2**40 - 1
_READING_EXPORT_SHIFT: constant(uint256) = 40
_READING_POSTED: constant(uint256) = 2**80


# @dev One posted meter reading.
struct Reading:
    import_wh: uint256
    export_wh: uint256
    posted: bool


# @dev A cleared interval's terms for one account, as the mechanism's
# `settlement_terms` returns them: position [Wh] positive = sold, its
# money value [wei] positive = received.
struct SettlementTerms:
    cleared: bool
    position_wh: int256
    value_wei: int256
    end_timestamp: uint256


# @dev Registry that binds meters to prosumers.
registry: public(immutable(Registry))


# @dev Market mechanism whose positions are settled.
auction: public(immutable(Mechanism))


# @dev Token the market settles in.
token: public(immutable(IERC20))


# @dev Account credited with fees and grid imbalance payments.
operator: public(immutable(address))


# @dev Price the grid charges for energy imported beyond the
# cleared position. [wei/Wh]
grid_buy_price_wei_per_wh: public(immutable(uint256))


# @dev Price the grid pays for energy exported beyond the
# cleared position. [wei/Wh]
grid_sell_price_wei_per_wh: public(immutable(uint256))


# @dev Network fee per Wh bought in the market. [wei/Wh]
grid_fee_wei_per_wh: public(immutable(uint256))


# @dev Credit of each account, negative = debt. [wei]
credit_wei: public(HashMap[address, int256])


# @dev Peer-to-peer payments received from buyers and not yet
# paid out to sellers. [wei]
pool_wei: public(int256)


# @dev Packed reading word of each prosumer per interval (`_READING_*`).
_reading_word: HashMap[uint256, HashMap[address, uint256]]


# @dev Whether the operator's own market position in each interval
# is settled.
operator_settled: public(HashMap[uint256, bool])


# @dev Emitted when `payer` deposits tokens for `beneficiary`.
event Deposited:
    beneficiary: indexed(address)
    payer: indexed(address)
    amount_wei: uint256


# @dev Emitted when `account` withdraws tokens.
event Withdrawn:
    account: indexed(address)
    amount_wei: uint256


# @dev Emitted when a prosumer's interval is settled; `p2p_wei` and
# `imbalance_wei` are signed, positive = received by the prosumer.
event Settled:
    interval: indexed(uint256)
    prosumer: indexed(address)
    import_wh: uint256
    export_wh: uint256
    position_wh: int256
    p2p_wei: int256
    fee_wei: uint256
    imbalance_wei: int256


# @dev Emitted when the operator's own market position is settled;
# `value_wei` is positive = received.
event OperatorSettled:
    interval: indexed(uint256)
    position_wh: int256
    value_wei: int256


@deploy
def __init__(
    registry_: Registry,
    auction_: Mechanism,
    token_: IERC20,
    operator_: address,
    grid_buy_price_wei_per_wh_: uint256,
    grid_sell_price_wei_per_wh_: uint256,
    grid_fee_wei_per_wh_: uint256,
):
    """
    @param registry_ The market's role registry.
    @param auction_ The market's mechanism, any contract offering
           `settlement_terms`.
    @param token_ The settlement token.
    @param operator_ Account that takes fees and settles imbalances.
    @param grid_buy_price_wei_per_wh_ Import price of the grid. [wei/Wh]
    @param grid_sell_price_wei_per_wh_ Export price of the grid. [wei/Wh]
    @param grid_fee_wei_per_wh_ Fee on market purchases. [wei/Wh]
    """
    assert operator_ != empty(address), "settlement: operator is the zero address"
    assert (
        grid_buy_price_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH
        and grid_sell_price_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH
        and grid_fee_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH
    ), "settlement: price out of range"
    registry = registry_
    auction = auction_
    token = token_
    operator = operator_
    grid_buy_price_wei_per_wh = grid_buy_price_wei_per_wh_
    grid_sell_price_wei_per_wh = grid_sell_price_wei_per_wh_
    grid_fee_wei_per_wh = grid_fee_wei_per_wh_


@external
def deposit_for(beneficiary: address, amount_wei: uint256):
    """
    @dev Pulls `amount_wei` tokens from the caller, who must have
         approved this contract, and credits them to `beneficiary`.
    @param beneficiary The account credited.
    @param amount_wei Tokens deposited; positive. [wei]
    """
    # checks
    assert amount_wei != 0, "settlement: zero amount"

    # effects
    self.credit_wei[beneficiary] += convert(amount_wei, int256)
    log Deposited(beneficiary=beneficiary, payer=msg.sender, amount_wei=amount_wei)

    # interactions
    assert extcall token.transferFrom(msg.sender, self, amount_wei), "settlement: token transfer failed"


@external
def withdraw(amount_wei: uint256):
    """
    @dev Pays `amount_wei` of the caller's credit out in tokens.
    @param amount_wei Tokens withdrawn; positive and at most the
           caller's credit. [wei]
    """
    # checks
    assert amount_wei != 0, "settlement: zero amount"
    credit: int256 = self.credit_wei[msg.sender]
    assert credit > 0 and convert(credit, uint256) >= amount_wei, "settlement: withdraw above credit"

    # effects
    self.credit_wei[msg.sender] = credit - convert(amount_wei, int256)
    log Withdrawn(account=msg.sender, amount_wei=amount_wei)

    # interactions
    assert extcall token.transfer(msg.sender, amount_wei), "settlement: token transfer failed"


@external
def post_reading(interval: uint256, import_wh: uint256, export_wh: uint256):
    """
    @dev Settles the calling meter's prosumer for `interval`.
    @param interval Index of a cleared and ended market interval.
    @param import_wh Energy drawn from the grid in the interval. [Wh]
    @param export_wh Energy fed into the grid in the interval. [Wh]
    """
    # checks
    prosumer: address = staticcall registry.prosumer_of_meter(msg.sender)
    assert prosumer != empty(address), "settlement: caller is not a bound meter"
    terms: SettlementTerms = staticcall auction.settlement_terms(interval, prosumer)
    assert terms.cleared, "settlement: interval not cleared"
    assert block.timestamp >= terms.end_timestamp, "settlement: interval not ended"
    assert self._reading_word[interval][prosumer] == 0, "settlement: reading exists"
    assert import_wh <= MAX_ENERGY_WH and export_wh <= MAX_ENERGY_WH, "settlement: energy above limit"

    # effects
    self._reading_word[interval][prosumer] = import_wh | export_wh << _READING_EXPORT_SHIFT | _READING_POSTED

    # The mechanism bounds |position_wh| by MAX_ENERGY_WH and |value_wei|
    # by MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH, the checks above bound
    # import and export and the constructor the grid prices: every
    # product and sum below stays under 10**37, so only the running
    # totals need checked arithmetic.
    position_wh: int256 = terms.position_wh
    p2p_wei: int256 = terms.value_wei
    fee_wei: uint256 = 0
    if position_wh < 0:
        fee_wei = unsafe_mul(grid_fee_wei_per_wh, convert(unsafe_sub(0, position_wh), uint256))
    imbalance_wh: int256 = unsafe_sub(unsafe_sub(convert(export_wh, int256), convert(import_wh, int256)), position_wh)
    imbalance_wei: int256 = unsafe_mul(convert(grid_sell_price_wei_per_wh, int256), imbalance_wh)
    if imbalance_wh < 0:
        imbalance_wei = unsafe_mul(convert(grid_buy_price_wei_per_wh, int256), imbalance_wh)
    self.pool_wei -= p2p_wei
    self.credit_wei[operator] += unsafe_sub(convert(fee_wei, int256), imbalance_wei)
    self.credit_wei[prosumer] += unsafe_add(unsafe_sub(p2p_wei, convert(fee_wei, int256)), imbalance_wei)
    log Settled(
        interval=interval,
        prosumer=prosumer,
        import_wh=import_wh,
        export_wh=export_wh,
        position_wh=position_wh,
        p2p_wei=p2p_wei,
        fee_wei=fee_wei,
        imbalance_wei=imbalance_wei,
    )


@external
def settle_operator(interval: uint256):
    """
    @dev Settles the operator's own market position in `interval`, which
         no meter measures; anyone may call it once the interval is
         cleared and has ended.
    @param interval Index of a cleared and ended market interval.
    """
    # checks
    terms: SettlementTerms = staticcall auction.settlement_terms(interval, operator)
    assert terms.cleared, "settlement: interval not cleared"
    assert block.timestamp >= terms.end_timestamp, "settlement: interval not ended"
    assert not self.operator_settled[interval], "settlement: operator settled"

    # effects
    self.operator_settled[interval] = True
    self.pool_wei -= terms.value_wei
    self.credit_wei[operator] += terms.value_wei
    log OperatorSettled(interval=interval, position_wh=terms.position_wh, value_wei=terms.value_wei)


@external
@view
def reading(interval: uint256, prosumer: address) -> Reading:
    """
    @dev Reading of `prosumer` for `interval`; all zero until posted.
    @param interval Index of the market interval.
    @param prosumer The prosumer whose meter posted.
    @return Reading Import [Wh], export [Wh] and whether it is posted.
    """
    word: uint256 = self._reading_word[interval][prosumer]
    return Reading(
        import_wh=word & _READING_ENERGY_MASK,
        export_wh=(word >> _READING_EXPORT_SHIFT) & _READING_ENERGY_MASK,
        posted=word != 0,
    )
