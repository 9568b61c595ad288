# pragma version ~=0.4.3
"""
@title Pay-as-Bid (Discriminatory) Double Auction for Energy
@custom:contract-name pay_as_bid
@license BSD-3-Clause
@notice One book per market interval; each prosumer places at most one
        order (a bid to buy or an ask to sell) per interval until the
        interval's gate closes. After the gate any prosumer or the
        operator clears the book once, in one of two modes that share
        the matching code and so give the same outcome: `clear` takes
        the priority order of each side sorted off-chain and the volume
        it claims, checks the order in O(n) and reverts unless the
        claim is the outcome (cheaper for large books); `clear_onchain`
        sorts the book itself by insertion sort in O(n^2) (cheaper for
        small books: no order in the calldata). Either matches the
        sides pair by pair.
        Interval k starts at `start_timestamp + k * interval_s`; its gate
        closes `gate_closure_s` seconds earlier.
        Shared modules: `access.vy` (registry roles, price cap),
        `gate.vy` (interval timing), `escrow.vy` (settlement binding)
        and `book.vy`; their reasons carry their own prefixes
        (`access:`, `gate:`, `escrow:`, `book:`).
        Functions:
        - `bind_settlement`, `submit_order` (`external` functions),
        - `clear`, `clear_onchain` (`external` functions),
        - `order_count`, `order`, `orders` (`external` `view` functions),
        - `gate_timestamp`, `interval_end_timestamp` (`external` `view` functions),
        - `cleared`, `cleared_volume_wh`, `turnover_wei`,
          `average_price_wei_per_wh`, `position_wh`, `value_wei`,
          `has_order` (`external` `view` functions),
        - `settlement_terms` (`external` `view` function).
        Matching rule (as in `DoubleAuction.vy`): bids by price
        descending, asks by price ascending, equal prices by submission
        index ascending; while the best remaining bid price b is at
        least the best remaining ask price a the two trade the smaller
        remaining energy q.
        Pricing rule: every matched pair trades at its own midpoint,
        the buyer paying and the seller receiving floor((b + a) * q / 2)
        wei. This is the k-double auction of Chatterjee and Samuelson
        (1983) with k = 1/2 applied to each matched pair, the
        discriminatory pricing of peer-to-peer energy markets reviewed
        by Sousa et al. (2019).
        Budget balance: each pair's payment leaves the buyer and reaches
        the seller in full, so the values of an interval sum to exactly
        zero and nothing is left to the operator (besides the grid fee
        `Settlement.vy` charges). Individual rationality: with b >= a,
        a*q <= floor((b + a) * q / 2) <= b*q.
        References: K. Chatterjee, W. Samuelson, "Bargaining under
        incomplete information", Operations Research 31(5):835-851,
        1983. T. Sousa et al., "Peer-to-peer and community-based markets:
        A comprehensive review", Renewable and Sustainable Energy
        Reviews 104:367-378, 2019.
        Storage is packed as in `DoubleAuction.vy` (layouts at the
        `book.ORDER_*` and `_OUTCOME_*` constants); the money value of each
        filled order takes one more word.
        Escrow as in `DoubleAuction.vy`: a bid locks energy * (limit
        price + grid fee) of the bidder's free credit, and orders revert
        until the deployer has bound the settlement.
@custom:security An interval so far in the future that its timestamps
                 overflow uint256 reverts without a reason string.
"""


from . import access
from . import book
from . import escrow
from . import gate

initializes: access
initializes: gate
initializes: escrow
initializes: book[access := access, escrow := escrow, gate := gate]

exports: (
    access.__interface__,
    gate.__interface__,
    escrow.__interface__,
    book.__interface__,
)


# @dev Packed outcome word of one interval (`book._outcome_word`), zero
# until it clears: bits [0, 128) turnover, the sum of all pair payments
# [wei] (at most MAX_ORDERS * MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH <
# 2**128), [128, 192) volume [Wh], bit 192 set once cleared.
_OUTCOME_TURNOVER_MASK: constant(uint256) = 2**128 - 1
_OUTCOME_VOLUME_SHIFT: constant(uint256) = 128
_OUTCOME_VOLUME_MASK: constant(uint256) = 2**64 - 1
_OUTCOME_CLEARED: constant(uint256) = 2**192


# @dev Packed word of one matched pair: bits [0, 8) the bid's priority
# rank, [8, 16) the ask's, [16, 56) energy [Wh], [56, 184) value [wei]
# (at most MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH < 2**128).
_PAIR_RANK_MASK: constant(uint256) = book.MAX_ORDERS - 1
_PAIR_ASK_RANK_SHIFT: constant(uint256) = 8
_PAIR_ENERGY_SHIFT: constant(uint256) = 16
_PAIR_VALUE_SHIFT: constant(uint256) = 56


# @dev Outcome of matching a book ranked by priority: volume [Wh],
# turnover [wei], each order's fill [Wh] and money value [wei] by
# priority rank, and the matched pairs in matching order (`_PAIR_*`);
# every pair exhausts a bid or an ask, so there are fewer than
# 2 * MAX_ORDERS.
struct Matching:
    volume_wh: uint256
    turnover_wei: uint256
    bid_fill_wh: uint256[book.MAX_ORDERS]
    ask_fill_wh: uint256[book.MAX_ORDERS]
    bid_value_wei: uint256[book.MAX_ORDERS]
    ask_value_wei: uint256[book.MAX_ORDERS]
    pairs: DynArray[uint256, 2 * book.MAX_ORDERS]


# @dev Money value of each filled order per interval, paid by a
# buyer or received by a seller; zero without a fill. [wei]
_value_wei: HashMap[uint256, HashMap[address, uint256]]


# @dev Emitted once per matched bid/ask pair when an interval clears.
event Match:
    interval: indexed(uint256)
    buyer: indexed(address)
    seller: indexed(address)
    energy_wh: uint256
    value_wei: uint256


# @dev Emitted once per filled order when an interval clears, after
# the `Match` events; `value_wei` is positive = received.
event Trade:
    interval: indexed(uint256)
    account: indexed(address)
    position_wh: int256
    value_wei: int256


# @dev Emitted when an interval clears, after its `Trade` events;
# `price_wei_per_wh` is the volume-weighted average (floor), 0
# without a trade.
event Cleared:
    interval: indexed(uint256)
    price_wei_per_wh: uint256
    volume_wh: uint256
    turnover_wei: uint256


@deploy
def __init__(
    registry_: access.Registry,
    start_timestamp_: uint256,
    interval_s_: uint256,
    gate_closure_s_: uint256,
    price_cap_wei_per_wh_: uint256,
):
    """
    @dev The registry and price cap are `access.__init__`'s, the times
         `gate.__init__`'s; each is documented and checked there.
    """
    gate.__init__(start_timestamp_, interval_s_, gate_closure_s_)
    access.__init__(registry_, price_cap_wei_per_wh_)
    escrow.__init__()


@external
def clear(
    interval: uint256,
    bid_order: DynArray[uint256, book.MAX_ORDERS],
    ask_order: DynArray[uint256, book.MAX_ORDERS],
    volume_wh: uint256,
):
    """
    @dev Clears `interval` once its gate has closed with the priority
         order sorted off-chain and the volume computed off-chain; the
         first valid clearing wins. Reverts unless the order is sorted
         and the claimed volume is that of the matching.
    @param interval Index of the market interval.
    @param bid_order Book indices of all bids, highest price first,
           equal prices by index.
    @param ask_order Book indices of all asks, lowest price first,
           equal prices by index.
    @param volume_wh Claimed traded energy. [Wh]
    """
    # checks
    self._check_clearable(interval)
    bid_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][False]
    ask_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][True]
    bids: uint256[book.MAX_ORDERS] = book._ranked(interval, bid_accounts, bid_order, True)
    asks: uint256[book.MAX_ORDERS] = book._ranked(interval, ask_accounts, ask_order, False)
    matching: Matching = self._match(bids, len(bid_accounts), asks, len(ask_accounts))
    assert matching.volume_wh == volume_wh, "pay_as_bid: wrong cleared volume"

    # effects
    self._record_clearing(interval, bid_accounts, bids, ask_accounts, asks, matching)


@external
def clear_onchain(interval: uint256):
    """
    @dev Clears `interval` once its gate has closed, sorting each side
         of the book on-chain; the same matching and outcome as `clear`
         with the sorted order. The first clearing wins.
    @param interval Index of the market interval.
    """
    # checks
    self._check_clearable(interval)
    bid_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][False]
    ask_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][True]
    bids: uint256[book.MAX_ORDERS] = book._sorted(interval, bid_accounts, True)
    asks: uint256[book.MAX_ORDERS] = book._sorted(interval, ask_accounts, False)
    matching: Matching = self._match(bids, len(bid_accounts), asks, len(ask_accounts))

    # effects
    self._record_clearing(interval, bid_accounts, bids, ask_accounts, asks, matching)


@external
@view
def turnover_wei(interval: uint256) -> uint256:
    """
    @dev Sum of the pair payments of a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The money paid by all buyers to all sellers. [wei]
    """
    return book._outcome_word[interval] & _OUTCOME_TURNOVER_MASK


@external
@view
def average_price_wei_per_wh(interval: uint256) -> uint256:
    """
    @dev Volume-weighted average price of a cleared interval, rounded
         down; 0 before it clears or without a trade.
    @param interval Index of the market interval.
    @return uint256 Turnover divided by volume. [wei/Wh]
    """
    outcome: uint256 = book._outcome_word[interval]
    return self._average_price_wei_per_wh(
        outcome & _OUTCOME_TURNOVER_MASK, (outcome >> _OUTCOME_VOLUME_SHIFT) & _OUTCOME_VOLUME_MASK
    )


@external
@view
def cleared_volume_wh(interval: uint256) -> uint256:
    """
    @dev Energy traded in a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The traded energy. [Wh]
    """
    return (book._outcome_word[interval] >> _OUTCOME_VOLUME_SHIFT) & _OUTCOME_VOLUME_MASK


@external
@view
def position_wh(interval: uint256, account: address) -> int256:
    """
    @dev Cleared position of `account` in `interval`; 0 without a fill.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 Positive = sold (export), negative = bought (import). [Wh]
    """
    return book._position_wh(book._order_word[interval][account])


@external
@view
def value_wei(interval: uint256, account: address) -> int256:
    """
    @dev Money value of `account`'s cleared position in `interval`; 0
         without a fill.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 Positive = received (seller), negative = paid
            (buyer). [wei]
    """
    return self._value_of(interval, account)


@external
@view
def settlement_terms(interval: uint256, account: address) -> escrow.SettlementTerms:
    """
    @dev Everything the settlement of `account`'s reading for `interval`
         needs, in one call. All fields but `cleared` are zero while
         the interval is not cleared.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return SettlementTerms Whether the interval is cleared, the
            account's position [Wh] (positive = sold), the sum of its
            pair payments [wei] (positive = received) and the
            interval's end [s since the Unix epoch].
    """
    if book._outcome_word[interval] == 0:
        return empty(escrow.SettlementTerms)
    return escrow.SettlementTerms(
        cleared=True,
        position_wh=book._position_wh(book._order_word[interval][account]),
        value_wei=self._value_of(interval, account),
        end_timestamp=gate._interval_end_timestamp(interval),
    )


@internal
@pure
def _average_price_wei_per_wh(turnover_wei: uint256, volume_wh: uint256) -> uint256:
    """
    @dev Volume-weighted average price, rounded down; 0 at zero volume.
    @param turnover_wei Sum of the pair payments. [wei]
    @param volume_wh Energy traded. [Wh]
    @return uint256 The average price. [wei/Wh]
    """
    if volume_wh == 0:
        return 0
    return turnover_wei // volume_wh


@internal
@view
def _value_of(interval: uint256, account: address) -> int256:
    """
    @dev Signed money value of `account`'s fill in `interval`.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 Positive for an ask (received), negative for a
            bid (paid). [wei]
    """
    # At most MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH < 2**127.
    value_wei: int256 = convert(self._value_wei[interval][account], int256)
    if book._order_word[interval][account] >> book.ORDER_ASK_SHIFT == 0:
        return -value_wei
    return value_wei


@internal
@view
def _check_clearable(interval: uint256):
    """
    @dev Reverts unless the caller is a prosumer or the operator, the
         gate of `interval` has closed and `interval` is not cleared.
    @param interval Index of the market interval.
    """
    access._check_participant(msg.sender)
    book._check_clearable(interval)


@internal
@pure
def _match(
    bids: uint256[book.MAX_ORDERS], bid_count: uint256, asks: uint256[book.MAX_ORDERS], ask_count: uint256
) -> Matching:
    """
    @dev Matches two sides ranked by priority: while the best remaining
         bid price b is at least the best remaining ask price a the two
         trade the smaller remaining energy q for floor((b + a) * q / 2)
         wei. Fills and values are kept by priority rank, so the filled
         orders of each side are a prefix.
    @param bids Bid entries (`book.RANKED_*`) by priority rank.
    @param bid_count Number of bids.
    @param asks Ask entries (`book.RANKED_*`) by priority rank.
    @param ask_count Number of asks.
    @return Matching Volume [Wh], turnover [wei], fills [Wh], values
            [wei] and pairs.
    """
    matching: Matching = empty(Matching)
    i: uint256 = 0
    j: uint256 = 0
    # Every round exhausts a bid or an ask, so 2 * MAX_ORDERS rounds suffice.
    for _: uint256 in range(2 * book.MAX_ORDERS):
        if i == bid_count or j == ask_count:
            break
        bid: uint256 = bids[i]
        ask: uint256 = asks[j]
        bid_price_wei_per_wh: uint256 = (bid >> book.ORDER_PRICE_SHIFT) & book.ORDER_PRICE_MASK
        ask_price_wei_per_wh: uint256 = (ask >> book.ORDER_PRICE_SHIFT) & book.ORDER_PRICE_MASK
        if bid_price_wei_per_wh < ask_price_wei_per_wh:
            break
        bid_energy_wh: uint256 = bid & book.ORDER_ENERGY_MASK
        ask_energy_wh: uint256 = ask & book.ORDER_ENERGY_MASK
        traded_wh: uint256 = min(bid_energy_wh - matching.bid_fill_wh[i], ask_energy_wh - matching.ask_fill_wh[j])
        matching.bid_fill_wh[i] += traded_wh
        matching.ask_fill_wh[j] += traded_wh
        matching.volume_wh += traded_wh
        pair_value_wei: uint256 = (bid_price_wei_per_wh + ask_price_wei_per_wh) * traded_wh // 2
        matching.bid_value_wei[i] += pair_value_wei
        matching.ask_value_wei[j] += pair_value_wei
        matching.turnover_wei += pair_value_wei
        matching.pairs.append(
            i | j << _PAIR_ASK_RANK_SHIFT | traded_wh << _PAIR_ENERGY_SHIFT | pair_value_wei << _PAIR_VALUE_SHIFT
        )
        if matching.bid_fill_wh[i] == bid_energy_wh:
            i += 1
        if matching.ask_fill_wh[j] == ask_energy_wh:
            j += 1
    return matching


@internal
def _record_clearing(
    interval: uint256,
    bid_accounts: DynArray[address, book.MAX_ORDERS],
    bids: uint256[book.MAX_ORDERS],
    ask_accounts: DynArray[address, book.MAX_ORDERS],
    asks: uint256[book.MAX_ORDERS],
    matching: Matching,
):
    """
    @dev Stores the outcome, every fill and its value of a matched
         book and logs its `Match` events, then its `Trade` events,
         then `Cleared`.
    @param interval Index of the market interval.
    @param bid_accounts Bids' accounts, in submission order.
    @param bids Bid entries (`book.RANKED_*`) by priority rank.
    @param ask_accounts Asks' accounts, in submission order.
    @param asks Ask entries (`book.RANKED_*`) by priority rank.
    @param matching The outcome of `_match` on these sides.
    """
    book._outcome_word[interval] = (
        matching.turnover_wei | matching.volume_wh << _OUTCOME_VOLUME_SHIFT | _OUTCOME_CLEARED
    )
    for pair: uint256 in matching.pairs:
        bid: uint256 = bids[pair & _PAIR_RANK_MASK]
        ask: uint256 = asks[(pair >> _PAIR_ASK_RANK_SHIFT) & _PAIR_RANK_MASK]
        log Match(
            interval=interval,
            buyer=bid_accounts[(bid >> book.RANKED_INDEX_SHIFT) & book.RANKED_INDEX_MASK],
            seller=ask_accounts[(ask >> book.RANKED_INDEX_SHIFT) & book.RANKED_INDEX_MASK],
            energy_wh=(pair >> _PAIR_ENERGY_SHIFT) & book.ORDER_ENERGY_MASK,
            value_wei=pair >> _PAIR_VALUE_SHIFT,
        )
    self._record_fills(interval, bid_accounts, bids, matching.bid_fill_wh, matching.bid_value_wei)
    self._record_fills(interval, ask_accounts, asks, matching.ask_fill_wh, matching.ask_value_wei)
    log Cleared(
        interval=interval,
        price_wei_per_wh=self._average_price_wei_per_wh(matching.turnover_wei, matching.volume_wh),
        volume_wh=matching.volume_wh,
        turnover_wei=matching.turnover_wei,
    )


@internal
def _record_fills(
    interval: uint256,
    accounts: DynArray[address, book.MAX_ORDERS],
    ranked: uint256[book.MAX_ORDERS],
    fill_wh: uint256[book.MAX_ORDERS],
    value_wei: uint256[book.MAX_ORDERS],
):
    """
    @dev Stores the fill of every filled order of one side in its
         order word, its money value, and logs a `Trade` for it.
    @param interval Index of the market interval.
    @param accounts That side's accounts, in submission order.
    @param ranked That side's entries (`book.RANKED_*`) by priority rank.
    @param fill_wh Filled energy by priority rank. [Wh]
    @param value_wei Money value of the fills by priority rank. [wei]
    """
    for rank: uint256 in range(len(accounts), bound=book.MAX_ORDERS):
        if fill_wh[rank] == 0:
            break
        entry: uint256 = ranked[rank]
        account: address = accounts[(entry >> book.RANKED_INDEX_SHIFT) & book.RANKED_INDEX_MASK]
        word: uint256 = book._record_fill(interval, account, entry, fill_wh[rank])
        self._value_wei[interval][account] = value_wei[rank]
        log Trade(
            interval=interval,
            account=account,
            position_wh=book._position_wh(word),
            value_wei=self._value_of(interval, account),
        )
