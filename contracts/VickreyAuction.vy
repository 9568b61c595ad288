# pragma version ~=0.4.3
"""
@title Sealed-Bid Second-Price (Vickrey) Auction of Energy Lots
@custom:contract-name vickrey
@license BSD-3-Clause
@notice Each prosumer may offer one lot (an amount of energy with a
        reserve price) per market interval and commit one sealed bid
        per interval on another seller's lot. Phases of interval k,
        whose gate closes at `gate_timestamp(k)` = `start_timestamp +
        k * interval_s - gate_closure_s`:
        - before the gate: `post_lot`, `commit_bid`;
        - reveal window [gate, gate + reveal_s): `reveal_bid`;
        - from gate + reveal_s on: anyone calls `finalise` once.
        `reveal_s` is at most `gate_closure_s`, so every interval is
        final before it starts.
        Shared modules: `access.vy` (registry roles, price cap),
        `gate.vy` (interval timing), `escrow.vy` (settlement binding)
        and `lot_book.vy`; their reasons carry their own prefixes
        (`access:`, `gate:`, `escrow:`, `lot_book:`).
        Functions:
        - `bind_settlement`, `post_lot`, `commit_bid`, `reveal_bid`, `finalise`
          (`external` functions),
        - `lot`, `lots`, `lot_count`, `commitment_of`, `revealed`
          (`external` `view` functions),
        - `gate_timestamp`, `reveal_end_timestamp`,
          `interval_end_timestamp` (`external` `view` functions),
        - `cleared`, `position_wh`, `value_wei`, `settlement_terms`
          (`external` `view` functions).
        Commitment: keccak256(abi_encode(bidder, lot_id, price_wei_per_wh,
        salt)) with types (address, uint256, uint256, bytes32), four
        32-byte words; the Python helper is
        `gridledger.contracts.market.commitment`.
        Rule (Vickrey 1961): among the revealed bids, all at least the
        lot's reserve price, the highest wins; ties go to the earliest
        revealed. The winner pays the second-highest revealed price, or
        the reserve price if no other bid was revealed, per Wh of the
        lot: value = price * energy_wh.
        Positions: the seller +energy_wh and +value, the winner
        -energy_wh and -value, everyone else 0; an account that sells
        one lot and wins another has the sum of both.
        Escrow: `commit_bid` locks energy_wh * (price cap + grid fee)
        of the bidder's free credit in the bound `Settlement.vy`, or
        reverts, so the sealed price stays hidden; `reveal_bid` returns
        energy_wh * (price cap - revealed price) of it. An unrevealed
        bid stays locked at the cap until the interval is finalised and
        `Settlement.release` returns it; the second price a winner pays
        never exceeds its own. Bids revert until the deployer has bound
        the settlement (`bind_settlement`, once).
        References: W. Vickrey, "Counterspeculation, auctions, and
        competitive sealed tenders", Journal of Finance 16(1):8-37, 1961.
@custom:security A committed bidder may leave its bid unrevealed, for
                 instance after seeing earlier reveals; it then only
                 ties up its escrow at the cap until the interval is
                 finalised. A seller may raise its
                 price through a bid from another account it controls
                 (shill bidding); only bids from the seller's own
                 account are refused. An interval so far in the future
                 that its timestamps overflow uint256 reverts without a
                 reason string.
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


# @dev One lot with its running result (`lot`): `winner` and the two
# highest revealed prices so far, final once the interval is cleared.
struct Lot:
    seller: address
    interval: uint256
    energy_wh: uint256
    reserve_price_wei_per_wh: uint256
    winner: address
    highest_price_wei_per_wh: uint256
    second_price_wei_per_wh: uint256


# @dev Length of the reveal window that opens at the gate. [s]
reveal_s: public(immutable(uint256))


# @dev Running result of a lot: its leading bidder and the two highest
# revealed prices so far [wei/Wh]; zero until the first reveal.
struct Standing:
    winner: address
    highest_price_wei_per_wh: uint256
    second_price_wei_per_wh: uint256


# @dev Running result of every lot by id (ids and terms in `lot_book.vy`).
_standing: HashMap[uint256, Standing]


# @dev Whether each account has committed a bid in each interval.
_has_bid: HashMap[uint256, HashMap[address, bool]]


# @dev Sealed bid of each bidder on each lot; zero without one.
_commitment: HashMap[uint256, HashMap[address, bytes32]]


# @dev Whether each bidder's bid on each lot is revealed.
_revealed: HashMap[uint256, HashMap[address, bool]]


# @dev Whether each interval is finalised.
_cleared: HashMap[uint256, bool]


# @dev Emitted when `bidder` seals a bid on `lot_id`.
event BidCommitted:
    lot_id: indexed(uint256)
    bidder: indexed(address)
    commitment: bytes32


# @dev Emitted when `bidder` opens its bid on `lot_id`.
event BidRevealed:
    lot_id: indexed(uint256)
    bidder: indexed(address)
    price_wei_per_wh: uint256


# @dev Emitted per lot when its interval is finalised; `winner` is
# the zero address and `price_wei_per_wh` 0 for an unsold lot.
event LotSettled:
    interval: indexed(uint256)
    lot_id: indexed(uint256)
    winner: indexed(address)
    price_wei_per_wh: uint256
    value_wei: uint256


# @dev Emitted when an interval is finalised, after its `LotSettled` events.
event Finalised:
    interval: indexed(uint256)
    sold_lots: uint256


@deploy
def __init__(
    registry_: access.Registry,
    start_timestamp_: uint256,
    interval_s_: uint256,
    gate_closure_s_: uint256,
    price_cap_wei_per_wh_: uint256,
    reveal_s_: uint256,
):
    """
    @dev The registry and price cap are `access.__init__`'s, the times
         `gate.__init__`'s; each is documented and checked there.
    @param reveal_s_ Reveal window after the gate; positive and at most
           `gate_closure_s_`. [s]
    """
    gate.__init__(start_timestamp_, interval_s_, gate_closure_s_)
    access.__init__(registry_, price_cap_wei_per_wh_)
    assert reveal_s_ != 0 and reveal_s_ <= gate_closure_s_, "vickrey: reveal window out of range"
    escrow.__init__()
    reveal_s = reveal_s_


@external
def commit_bid(lot_id: uint256, commitment: bytes32):
    """
    @dev Seals the caller's single bid of the lot's interval and locks
         the lot's energy_wh * (price cap + fee) of its free credit.
    @param lot_id Id of another seller's lot whose gate is open.
    @param commitment keccak256(abi_encode(msg.sender, lot_id,
           price_wei_per_wh, salt)); not zero.
    """
    # checks
    access._check_prosumer(msg.sender)
    lot: lot_book.LotTerms = lot_book._terms(lot_id)
    gate._check_before_gate(lot.interval)
    assert msg.sender != lot.seller, "vickrey: seller bids on own lot"
    assert commitment != empty(bytes32), "vickrey: zero commitment"
    assert not self._has_bid[lot.interval][msg.sender], "vickrey: bid exists"
    escrow._check_bound()

    # effects
    self._has_bid[lot.interval][msg.sender] = True
    self._commitment[lot_id][msg.sender] = commitment
    log BidCommitted(lot_id=lot_id, bidder=msg.sender, commitment=commitment)

    # interactions
    extcall escrow.settlement.lock(msg.sender, lot.interval, lot.energy_wh, access.price_cap_wei_per_wh)


@external
def reveal_bid(lot_id: uint256, price_wei_per_wh: uint256, salt: bytes32):
    """
    @dev Opens the caller's sealed bid on `lot_id` during the reveal
         window; the bid leads if it beats every earlier reveal. Its
         escrow drops to energy_wh * (price_wei_per_wh + fee).
    @param lot_id Id of the lot bid on.
    @param price_wei_per_wh The committed price; from the lot's reserve
           to the price cap. [wei/Wh]
    @param salt The committed salt.
    """
    # checks
    lot: lot_book.LotTerms = lot_book._terms(lot_id)
    standing: Standing = self._standing[lot_id]
    gate_timestamp: uint256 = gate._gate_timestamp(lot.interval)
    assert block.timestamp >= gate_timestamp, "vickrey: reveal not open"
    assert block.timestamp < gate_timestamp + reveal_s, "vickrey: reveal closed"
    commitment: bytes32 = self._commitment[lot_id][msg.sender]
    assert commitment != empty(bytes32), "vickrey: no commitment"
    assert not self._revealed[lot_id][msg.sender], "vickrey: already revealed"
    assert keccak256(abi_encode(msg.sender, lot_id, price_wei_per_wh, salt)) == commitment, "vickrey: commitment mismatch"
    assert price_wei_per_wh <= access.price_cap_wei_per_wh, "vickrey: price above cap"
    assert price_wei_per_wh >= lot.reserve_price_wei_per_wh, "vickrey: price below reserve"

    # effects
    self._revealed[lot_id][msg.sender] = True
    if price_wei_per_wh > standing.highest_price_wei_per_wh:
        self._standing[lot_id] = Standing(
            winner=msg.sender,
            highest_price_wei_per_wh=price_wei_per_wh,
            second_price_wei_per_wh=standing.highest_price_wei_per_wh,
        )
    elif price_wei_per_wh > standing.second_price_wei_per_wh:
        self._standing[lot_id].second_price_wei_per_wh = price_wei_per_wh
    log BidRevealed(lot_id=lot_id, bidder=msg.sender, price_wei_per_wh=price_wei_per_wh)

    # interactions
    if price_wei_per_wh < access.price_cap_wei_per_wh:
        extcall escrow.settlement.unlock(
            msg.sender, lot.interval, lot.energy_wh * (access.price_cap_wei_per_wh - price_wei_per_wh)
        )


@external
def finalise(interval: uint256):
    """
    @dev Awards every lot of `interval` once its reveal window has
         closed; anyone may call it, once.
    @param interval Index of the market interval.
    """
    # checks
    assert block.timestamp >= gate._gate_timestamp(interval) + reveal_s, "vickrey: reveal open"
    assert not self._cleared[interval], "vickrey: already finalised"

    # effects
    self._cleared[interval] = True
    sold_lots: uint256 = 0
    for lot_id: uint256 in lot_book._interval_lots[interval]:
        standing: Standing = self._standing[lot_id]
        price_wei_per_wh: uint256 = 0
        value_wei: uint256 = 0
        if standing.winner != empty(address):
            lot: lot_book.LotTerms = lot_book._lot_terms[lot_id]
            price_wei_per_wh = max(standing.second_price_wei_per_wh, lot.reserve_price_wei_per_wh)
            # At most MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH < 2**127.
            value_wei = price_wei_per_wh * lot.energy_wh
            lot_book._add_trade(interval, lot.seller, standing.winner, lot.energy_wh, value_wei)
            sold_lots += 1
        log LotSettled(
            interval=interval, lot_id=lot_id, winner=standing.winner, price_wei_per_wh=price_wei_per_wh, value_wei=value_wei
        )
    log Finalised(interval=interval, sold_lots=sold_lots)


@external
@view
def lot(lot_id: uint256) -> Lot:
    """
    @dev One lot with its result so far.
    @param lot_id Id of a posted lot.
    @return Lot Seller, interval, energy [Wh], reserve [wei/Wh], the
            leading bidder and the two highest revealed prices [wei/Wh].
    """
    lot: lot_book.LotTerms = lot_book._terms(lot_id)
    standing: Standing = self._standing[lot_id]
    return Lot(
        seller=lot.seller,
        interval=lot.interval,
        energy_wh=lot.energy_wh,
        reserve_price_wei_per_wh=lot.reserve_price_wei_per_wh,
        winner=standing.winner,
        highest_price_wei_per_wh=standing.highest_price_wei_per_wh,
        second_price_wei_per_wh=standing.second_price_wei_per_wh,
    )


@external
@view
def commitment_of(lot_id: uint256, bidder: address) -> bytes32:
    """
    @dev Sealed bid of `bidder` on `lot_id`; zero without one.
    @param lot_id Id of the lot.
    @param bidder The account to look up.
    @return bytes32 The commitment.
    """
    return self._commitment[lot_id][bidder]


@external
@view
def revealed(lot_id: uint256, bidder: address) -> bool:
    """
    @dev Tells whether `bidder` has revealed its bid on `lot_id`.
    @param lot_id Id of the lot.
    @param bidder The account to look up.
    @return bool True once revealed.
    """
    return self._revealed[lot_id][bidder]


@external
@view
def cleared(interval: uint256) -> bool:
    """
    @dev Tells whether `interval` is finalised.
    @param interval Index of the market interval.
    @return bool True once finalised.
    """
    return self._cleared[interval]


@external
@view
def settlement_terms(interval: uint256, account: address) -> escrow.SettlementTerms:
    """
    @dev Everything the settlement of `account`'s reading for `interval`
         needs, in one call; all fields zero until it is finalised.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return SettlementTerms Whether the interval is finalised, the
            account's position [Wh], its value [wei] and the interval's
            end [s since the Unix epoch].
    """
    return lot_book._settlement_terms(interval, account, self._cleared[interval])


@external
@view
def reveal_end_timestamp(interval: uint256) -> uint256:
    """
    @dev First block timestamp at which `interval` takes no reveals and
         may be finalised.
    @param interval Index of the market interval.
    @return uint256 The end of the reveal window. [s since the Unix epoch]
    """
    return gate._gate_timestamp(interval) + reveal_s
