# pragma version ~=0.4.3
"""
@title Open Ascending (English) Auction of Energy Lots
@custom:contract-name english
@license BSD-3-Clause
@notice Each prosumer may offer one lot (an amount of energy with a
        reserve price) per market interval; other prosumers bid openly
        until the interval's gate closes at `gate_timestamp(k)` =
        `start_timestamp + k * interval_s - gate_closure_s`, the
        auction's closing time. The first bid must reach the reserve
        price, every later one the leading price plus
        `bid_increment_wei_per_wh`, and each accepted bid replaces the
        leader; a tie with the leader is below the increment, so the
        earliest placed of equal bids leads. At the gate the leader
        wins and pays its own bid per Wh of the lot: value = price *
        energy_wh. Nothing needs finalising: an interval counts as
        cleared from its gate on.
        A bidder leads at most one lot per interval (it may bid again
        once outbid), so it wins at most one.
        Shared modules: `access.vy` (registry roles, price cap),
        `gate.vy` (interval timing), `escrow.vy` (settlement binding)
        and `lot_book.vy`; their reasons carry their own prefixes
        (`access:`, `gate:`, `escrow:`, `lot_book:`).
        Functions:
        - `bind_settlement`, `post_lot`, `bid` (`external` functions),
        - `lot`, `lots`, `lot_count`, `leading_lot` (`external` `view`
          functions),
        - `gate_timestamp`, `interval_end_timestamp` (`external` `view`
          functions),
        - `cleared`, `position_wh`, `value_wei`, `settlement_terms`
          (`external` `view` functions).
        Positions follow the leaders as bids arrive: the seller +energy_wh
        and +value, the leader -energy_wh and -value, everyone else 0;
        an account that sells one lot and leads another has the sum.
        Escrow: each accepted bid locks energy_wh * (price + grid fee) of
        the bidder's free credit in the bound `Settlement.vy`, or
        reverts; the outbid leader's lock on the lot is returned in the
        same call (a leader raising its own bid needs only the raise
        free). The winner's lock is its obligation. Bids revert until
        the deployer has bound the settlement (`bind_settlement`, once).
@custom:security A seller may bid
                 up its own lot from another account it controls (shill
                 bidding); only bids from the seller's own account are
                 refused. An interval so far in the future that its
                 timestamps overflow uint256 reverts without a reason
                 string.
"""


from . import access
from . import escrow
from . import gate
from . import lot_book

initializes: access
initializes: gate
initializes: escrow
initializes: lot_book[access := access, escrow := escrow, gate := gate]

exports: (
    access.__interface__,
    gate.__interface__,
    escrow.__interface__,
    lot_book.__interface__,
)


# @dev One lot with its leading bid (`lot`).
struct Lot:
    seller: address
    interval: uint256
    energy_wh: uint256
    reserve_price_wei_per_wh: uint256
    leader: address
    price_wei_per_wh: uint256


# @dev Least raise of a bid over the leading price. [wei/Wh]
bid_increment_wei_per_wh: public(immutable(uint256))


# @dev Leading bid of a lot: `leader` is the zero address and
# `price_wei_per_wh` 0 until the first bid, final from the gate on.
struct Lead:
    leader: address
    price_wei_per_wh: uint256


# @dev Leading bid of every lot by id (ids and terms in `lot_book.vy`).
_lead: HashMap[uint256, Lead]


# @dev Lot id plus one of the lot each account leads per interval;
# zero while it leads none.
_leading: HashMap[uint256, HashMap[address, uint256]]


# @dev Emitted when `bidder` takes the lead on `lot_id` from
# `outbid` (the zero address for the first bid).
event BidPlaced:
    lot_id: indexed(uint256)
    bidder: indexed(address)
    outbid: indexed(address)
    price_wei_per_wh: uint256


@deploy
def __init__(
    registry_: access.Registry,
    start_timestamp_: uint256,
    interval_s_: uint256,
    gate_closure_s_: uint256,
    price_cap_wei_per_wh_: uint256,
    bid_increment_wei_per_wh_: uint256,
):
    """
    @dev The registry and price cap are `access.__init__`'s, the times
         `gate.__init__`'s; each is documented and checked there.
    @param bid_increment_wei_per_wh_ Least raise over the leading bid;
           positive and at most the price cap. [wei/Wh]
    """
    gate.__init__(start_timestamp_, interval_s_, gate_closure_s_)
    access.__init__(registry_, price_cap_wei_per_wh_)
    assert (
        bid_increment_wei_per_wh_ != 0 and bid_increment_wei_per_wh_ <= price_cap_wei_per_wh_
    ), "english: bid increment out of range"
    escrow.__init__()
    bid_increment_wei_per_wh = bid_increment_wei_per_wh_


@external
def bid(lot_id: uint256, price_wei_per_wh: uint256):
    """
    @dev Takes the lead on `lot_id` at `price_wei_per_wh`; the previous
         leader's position and escrow return to it; locks
         energy_wh * (price_wei_per_wh + fee) of the caller's free credit.
    @param lot_id Id of another seller's lot whose gate is open.
    @param price_wei_per_wh At least the reserve for the first bid, the
           leading price plus the increment after it; at most the
           price cap. [wei/Wh]
    """
    # checks
    access._check_prosumer(msg.sender)
    lot: lot_book.LotTerms = lot_book._terms(lot_id)
    lead: Lead = self._lead[lot_id]
    gate._check_before_gate(lot.interval)
    assert msg.sender != lot.seller, "english: seller bids on own lot"
    assert price_wei_per_wh <= access.price_cap_wei_per_wh, "english: price above cap"
    leading: uint256 = self._leading[lot.interval][msg.sender]
    assert leading == 0 or leading == lot_id + 1, "english: leading another lot"
    escrow._check_bound()
    if lead.leader == empty(address):
        assert price_wei_per_wh >= lot.reserve_price_wei_per_wh, "english: bid below reserve"
    else:
        assert (
            price_wei_per_wh >= lead.price_wei_per_wh + bid_increment_wei_per_wh
        ), "english: bid below current plus increment"

    # effects
    # Values are at most MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH < 2**127.
    energy_wh: int256 = convert(lot.energy_wh, int256)
    value_wei: int256 = convert(price_wei_per_wh * lot.energy_wh, int256)
    seller_gain_wei: int256 = value_wei
    if lead.leader == empty(address):
        lot_book._position_wh[lot.interval][lot.seller] += energy_wh
    else:
        previous_value_wei: int256 = convert(lead.price_wei_per_wh * lot.energy_wh, int256)
        seller_gain_wei -= previous_value_wei
        lot_book._position_wh[lot.interval][lead.leader] += energy_wh
        lot_book._value_wei[lot.interval][lead.leader] += previous_value_wei
        self._leading[lot.interval][lead.leader] = 0
    lot_book._value_wei[lot.interval][lot.seller] += seller_gain_wei
    lot_book._position_wh[lot.interval][msg.sender] -= energy_wh
    lot_book._value_wei[lot.interval][msg.sender] -= value_wei
    self._leading[lot.interval][msg.sender] = lot_id + 1
    self._lead[lot_id] = Lead(leader=msg.sender, price_wei_per_wh=price_wei_per_wh)
    log BidPlaced(lot_id=lot_id, bidder=msg.sender, outbid=lead.leader, price_wei_per_wh=price_wei_per_wh)

    # interactions
    if lead.leader != empty(address):
        extcall escrow.settlement.unlock(
            lead.leader,
            lot.interval,
            staticcall escrow.settlement.escrow_wei(lead.leader, lot.energy_wh, lead.price_wei_per_wh),
        )
    extcall escrow.settlement.lock(msg.sender, lot.interval, lot.energy_wh, price_wei_per_wh)


@external
@view
def lot(lot_id: uint256) -> Lot:
    """
    @dev One lot with its leading bid.
    @param lot_id Id of a posted lot.
    @return Lot Seller, interval, energy [Wh], reserve [wei/Wh], the
            leader and its price [wei/Wh].
    """
    lot: lot_book.LotTerms = lot_book._terms(lot_id)
    lead: Lead = self._lead[lot_id]
    return Lot(
        seller=lot.seller,
        interval=lot.interval,
        energy_wh=lot.energy_wh,
        reserve_price_wei_per_wh=lot.reserve_price_wei_per_wh,
        leader=lead.leader,
        price_wei_per_wh=lead.price_wei_per_wh,
    )


@external
@view
def leading_lot(interval: uint256, bidder: address) -> uint256:
    """
    @dev The lot `bidder` leads in `interval`, plus one; 0 if none.
    @param interval Index of the market interval.
    @param bidder The account to look up.
    @return uint256 Lot id plus one, or 0.
    """
    return self._leading[interval][bidder]


@external
@view
def cleared(interval: uint256) -> bool:
    """
    @dev Tells whether `interval` is closed (its gate has passed).
    @param interval Index of the market interval.
    @return bool True from the gate on.
    """
    return block.timestamp >= gate._gate_timestamp(interval)


@external
@view
def settlement_terms(interval: uint256, account: address) -> escrow.SettlementTerms:
    """
    @dev Everything the settlement of `account`'s reading for `interval`
         needs, in one call; all fields zero before the gate.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return SettlementTerms Whether the interval is closed, the
            account's position [Wh], its value [wei] and the interval's
            end [s since the Unix epoch].
    """
    return lot_book._settlement_terms(interval, account, block.timestamp >= gate._gate_timestamp(interval))
