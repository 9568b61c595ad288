# pragma version ~=0.4.3
"""
@title Lots of an Interval and the Positions they Trade
@custom:contract-name lot_book
@license BSD-3-Clause
@notice Module of the lot auctions (`VickreyAuction.vy`,
        `EnglishAuction.vy`): each prosumer may offer one lot (an amount
        of energy with a reserve price) per market interval before its
        gate (`gate.vy`) closes; lots get ids in posting order across
        intervals. A lot's terms (`LotTerms`) are kept here, its bids by
        the auction, which books every sale here as positions and values: the
        seller +energy_wh and +value, the buyer -energy_wh and -value,
        everyone else 0; an account that sells one lot and buys another
        has the sum.
        A contract `initializes: lot_book[access := access, escrow := escrow,
        gate := gate]` and exports `lot_book.__interface__`; a debtor in
        the bound settlement posts no lot (`escrow._check_not_debtor`),
        and a lot lies between the settlement's minimum order and what
        the seller's registered PV and battery export in one interval
        (`escrow._check_order_size`).
        Functions:
        - `post_lot` (`external` function),
        - `lot_count`, `lots`, `position_wh`, `value_wei`
          (`external` `view` functions),
        - `MAX_LOTS`, `MAX_ENERGY_WH`, `MAX_PRICE_WEI_PER_WH`
          (`external` `view` functions),
        - `_terms`, `_add_trade`, `_settlement_terms` (`internal`
          functions).
"""


from . import access
from . import escrow
from . import gate

uses: access
uses: escrow
uses: gate


# @dev Most lots one interval holds.
MAX_LOTS: public(constant(uint256)) = 128


# @dev Largest energy of one lot; as `book.vy`. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest price cap an auction accepts (`access.vy`). [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = access.MAX_PRICE_WEI_PER_WH


# @dev What a seller posts: the lot's seller, interval, energy [Wh] and
# reserve price [wei/Wh].
struct LotTerms:
    seller: address
    interval: uint256
    energy_wh: uint256
    reserve_price_wei_per_wh: uint256


# @dev Number of lots ever posted; the next lot's id.
lot_count: public(uint256)


# @dev Terms of every lot by id.
_lot_terms: HashMap[uint256, LotTerms]


# @dev Ids of each interval's lots, in posting order.
_interval_lots: HashMap[uint256, DynArray[uint256, MAX_LOTS]]


# @dev Whether each account has posted a lot in each interval.
_has_lot: HashMap[uint256, HashMap[address, bool]]


# @dev Position of each account per interval, positive = sold. [Wh]
_position_wh: HashMap[uint256, HashMap[address, int256]]


# @dev Money value of each account's position per interval,
# positive = received. [wei]
_value_wei: HashMap[uint256, HashMap[address, int256]]


# @dev Emitted when `seller` posts lot `lot_id` for `interval`.
event LotPosted:
    interval: indexed(uint256)
    lot_id: indexed(uint256)
    seller: indexed(address)
    energy_wh: uint256
    reserve_price_wei_per_wh: uint256


@external
def post_lot(interval: uint256, energy_wh: uint256, reserve_price_wei_per_wh: uint256) -> uint256:
    """
    @dev Offers the caller's single lot of `interval`; a debtor offers
         none; its energy lies between the settlement's minimum and what
         the caller's PV and battery can export in one interval
         (`escrow._check_order_size`).
    @param interval Index of the market interval.
    @param energy_wh Energy sold; 1 to `MAX_ENERGY_WH`. [Wh]
    @param reserve_price_wei_per_wh Lowest price the seller accepts;
           1 to the price cap. [wei/Wh]
    @return uint256 The lot's id.
    """
    # checks
    access._check_prosumer(msg.sender)
    assert energy_wh != 0, "lot_book: zero energy"
    assert energy_wh <= MAX_ENERGY_WH, "lot_book: energy above limit"
    assert reserve_price_wei_per_wh != 0, "lot_book: zero reserve"
    assert reserve_price_wei_per_wh <= access.price_cap_wei_per_wh, "lot_book: reserve above cap"
    gate._check_before_gate(interval)
    assert not self._has_lot[interval][msg.sender], "lot_book: lot exists"
    assert len(self._interval_lots[interval]) < MAX_LOTS, "lot_book: interval full"
    escrow._check_bound()
    escrow._check_trades_in(msg.sender, interval)
    escrow._check_not_debtor(msg.sender)
    escrow._check_order_size(msg.sender, True, energy_wh)

    # effects
    lot_id: uint256 = self.lot_count
    self.lot_count = lot_id + 1
    self._interval_lots[interval].append(lot_id)
    self._has_lot[interval][msg.sender] = True
    self._lot_terms[lot_id] = LotTerms(
        seller=msg.sender, interval=interval, energy_wh=energy_wh, reserve_price_wei_per_wh=reserve_price_wei_per_wh
    )
    log LotPosted(
        interval=interval,
        lot_id=lot_id,
        seller=msg.sender,
        energy_wh=energy_wh,
        reserve_price_wei_per_wh=reserve_price_wei_per_wh,
    )
    return lot_id


@external
@view
def lots(interval: uint256) -> DynArray[uint256, MAX_LOTS]:
    """
    @dev Ids of the lots of `interval`.
    @param interval Index of the market interval.
    @return DynArray The lot ids in posting order.
    """
    return self._interval_lots[interval]


@external
@view
def position_wh(interval: uint256, account: address) -> int256:
    """
    @dev Position of `account` in `interval`; final once the interval
         is cleared, provisional before.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 Positive = sold, negative = won. [Wh]
    """
    return self._position_wh[interval][account]


@external
@view
def value_wei(interval: uint256, account: address) -> int256:
    """
    @dev Money value of `account`'s position in `interval`; final once
         the interval is cleared, provisional before.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 Positive = received (seller), negative = paid. [wei]
    """
    return self._value_wei[interval][account]


@internal
@view
def _terms(lot_id: uint256) -> LotTerms:
    """
    @dev Terms of lot `lot_id`; reverts unless it has been posted.
    @param lot_id Id of a lot.
    @return LotTerms Seller, interval, energy [Wh] and reserve [wei/Wh].
    """
    assert lot_id < self.lot_count, "lot_book: no such lot"
    return self._lot_terms[lot_id]


@internal
def _add_trade(interval: uint256, seller: address, buyer: address, energy_wh: uint256, value_wei: uint256):
    """
    @dev Books the sale of a lot: the seller +energy_wh and +value,
         the buyer -energy_wh and -value.
    @param interval Index of the market interval.
    @param seller The lot's seller.
    @param buyer The lot's buyer.
    @param energy_wh Energy of the lot; at most `MAX_ENERGY_WH`. [Wh]
    @param value_wei What the buyer pays; at most
           MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH < 2**127. [wei]
    """
    self._position_wh[interval][seller] += convert(energy_wh, int256)
    self._value_wei[interval][seller] += convert(value_wei, int256)
    self._position_wh[interval][buyer] -= convert(energy_wh, int256)
    self._value_wei[interval][buyer] -= convert(value_wei, int256)


@internal
@view
def _settlement_terms(interval: uint256, account: address, cleared: bool) -> escrow.SettlementTerms:
    """
    @dev Everything the settlement of `account`'s reading for `interval`
         needs; all fields zero while the interval is not cleared.
    @param interval Index of the market interval.
    @param account The account to look up.
    @param cleared Whether the auction counts `interval` as cleared.
    @return SettlementTerms Whether the interval is cleared, the
            account's position [Wh], its value [wei] and the interval's
            end [s since the Unix epoch].
    """
    if not cleared:
        return empty(escrow.SettlementTerms)
    return escrow.SettlementTerms(
        cleared=True,
        position_wh=self._position_wh[interval][account],
        value_wei=self._value_wei[interval][account],
        end_timestamp=gate._interval_end_timestamp(interval),
    )
