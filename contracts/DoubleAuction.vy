# pragma version ~=0.4.3
"""
@title Uniform-Price Double Auction for Energy
@custom:contract-name auction
@license BSD-3-Clause
@notice One book per market interval; each prosumer places at most one
        order (a bid to buy or an ask to sell) per interval until the
        interval's gate closes. After the gate any prosumer or the
        operator clears the book once, in one of two modes that share
        the matching code and so give the same outcome: `clear` takes
        the priority order of each side sorted off-chain and the price
        and volume it claims, checks the order in O(n) and reverts
        unless the claim is the outcome (cheaper for large books);
        `clear_onchain` sorts the book itself by insertion sort in
        O(n^2) (cheaper for small books: no order in the calldata).
        A third, `clear_signed` (verified batch, issue 12), brings the
        interval's orders signed as EIP-712 typed data in its calldata
        with the clearing: it judges each as `submit_order` would but
        for the gate (`book._batch_codes`; `signed_order_problems`
        gives the verdicts beforehand), skips a refused one with
        `OrderRejected` and its reason, checks the claimed clearing of
        the stored orders and the accepted signed ones in O(n) like
        `clear`, and stores only the fills; a filled signed bid locks
        fill * (clearing price + fee), its exact obligation. Orders
        placed directly before the gate are always part of the book it
        checks, so a relay cannot leave them out.
        Interval k starts at `start_timestamp + k * interval_s`; its gate
        closes `gate_closure_s` seconds earlier.
        Shared modules: `access.vy` (registry roles, price cap),
        `gate.vy` (interval timing), `escrow.vy` (settlement binding)
        and `book.vy`; their reasons carry their own prefixes
        (`access:`, `gate:`, `escrow:`, `book:`).
        Functions:
        - `bind_settlement`, `submit_order` (`external` functions),
        - `clear`, `clear_onchain`, `clear_signed` (`external` functions),
        - `signed_order_problems` (`external` `view` function),
        - `order_count`, `order`, `orders` (`external` `view` functions),
        - `gate_timestamp`, `interval_end_timestamp` (`external` `view` functions),
        - `cleared`, `clearing_price_wei_per_wh`, `cleared_volume_wh`,
          `position_wh`, `has_order` (`external` `view` functions),
        - `settlement_terms` (`external` `view` function).
        Clearing rule: bids by price descending, asks by price ascending,
        equal prices by submission index ascending; while the best
        remaining bid price is at least the best remaining ask price the
        two trade the smaller remaining energy. The price is the floor of
        the midpoint of the last matched bid and ask (the marginal pair);
        an interval without a match clears at price 0 and volume 0.
        Storage is packed to keep the slots an interval touches few:
        an order and its cleared fill share one word per account and
        interval, and an interval's outcome is one word (layouts at the
        `book.ORDER_*` and `_OUTCOME_*` constants).
        Escrow: a bid locks energy * (limit price + grid fee) of the
        bidder's free credit in the bound `Settlement.vy` (`lock`), or
        the bid reverts; the filled part never costs more, and anyone
        may `Settlement.release` the rest once the interval is cleared.
        Orders revert until the deployer has bound the settlement
        (`bind_settlement`, once).
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
# until it clears: bits [0, 80) clearing price [wei/Wh], [80, 144)
# volume [Wh] (at most MAX_ORDERS * MAX_ENERGY_WH < 2**48), bit 144 set
# once cleared.
_OUTCOME_PRICE_MASK: constant(uint256) = 2**80 - 1
_OUTCOME_VOLUME_SHIFT: constant(uint256) = 80
_OUTCOME_VOLUME_MASK: constant(uint256) = 2**64 - 1
_OUTCOME_CLEARED: constant(uint256) = 2**144


# @dev Outcome of matching a book ranked by priority: price [wei/Wh],
# volume [Wh] and each order's fill [Wh] by priority rank.
struct Matching:
    price_wei_per_wh: uint256
    volume_wh: uint256
    bid_fill_wh: uint256[book.MAX_ORDERS]
    ask_fill_wh: uint256[book.MAX_ORDERS]


# @dev Emitted once per filled order when an interval clears.
event Trade:
    interval: indexed(uint256)
    account: indexed(address)
    position_wh: int256


# @dev Emitted when an interval clears, after its `Trade` events.
event Cleared:
    interval: indexed(uint256)
    price_wei_per_wh: uint256
    volume_wh: uint256


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
    price_wei_per_wh: uint256,
    volume_wh: uint256,
):
    """
    @dev Clears `interval` once its gate has closed with the priority
         order sorted off-chain and the outcome computed off-chain; the
         first valid clearing wins. Reverts unless the order is sorted
         and the claimed price and volume are those of the matching.
    @param interval Index of the market interval.
    @param bid_order Book indices of all bids, highest price first,
           equal prices by index.
    @param ask_order Book indices of all asks, lowest price first,
           equal prices by index.
    @param price_wei_per_wh Claimed clearing price. [wei/Wh]
    @param volume_wh Claimed traded energy. [Wh]
    """
    # checks
    self._check_clearable(interval)
    bid_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][False]
    ask_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][True]
    bids: uint256[book.MAX_ORDERS] = book._ranked(interval, bid_accounts, bid_order, True)
    asks: uint256[book.MAX_ORDERS] = book._ranked(interval, ask_accounts, ask_order, False)
    matching: Matching = self._match(bids, len(bid_accounts), asks, len(ask_accounts))
    assert matching.price_wei_per_wh == price_wei_per_wh, "auction: wrong clearing price"
    assert matching.volume_wh == volume_wh, "auction: wrong cleared volume"

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
def clear_signed(
    interval: uint256,
    orders: DynArray[book.SignedOrder, book.MAX_ORDERS],
    bid_order: DynArray[uint256, book.MAX_ORDERS],
    ask_order: DynArray[uint256, book.MAX_ORDERS],
    price_wei_per_wh: uint256,
    volume_wh: uint256,
):
    """
    @dev Clears `interval` once its gate has closed with the signed
         orders of a verified batch and the outcome computed off-chain;
         the first valid clearing wins. Each signed order is judged as
         `submit_order` by its signer would be, but for the gate
         (`book._batch_codes`); a refused one is skipped with
         `OrderRejected` and its reason. The book is each side's stored
         orders in submission order, then that side's accepted signed
         ones in batch order (`OrderSubmitted` gives each its index).
         Reverts unless the priority order of that book is sorted and
         the claimed price and volume are those of its matching, as
         `clear`. Only the fills are stored; a filled signed bid locks
         fill * (clearing price + fee) (`Settlement.lock_bids`), within
         the free credit its whole order was checked against.
         The contract cannot tell when an order was signed: agents sign
         before the gate, and a prosumer who signs later may be let in.
    @param interval Index of the market interval of every order.
    @param orders The signed orders: side, energy [Wh], limit price
           [wei/Wh] and the signature (v, r, s).
    @param bid_order Indices of all bids of the book, highest price
           first, equal prices by index.
    @param ask_order Indices of all asks of the book, lowest price
           first, equal prices by index.
    @param price_wei_per_wh Claimed clearing price. [wei/Wh]
    @param volume_wh Claimed traded energy. [Wh]
    """
    # checks
    self._check_clearable(interval)
    signers: DynArray[address, book.MAX_ORDERS] = []
    codes: DynArray[uint256, book.MAX_ORDERS] = []
    signers, codes = book._batch_codes(interval, orders)
    bid_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][False]
    ask_accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][True]
    stored_bids: uint256 = len(bid_accounts)
    bid_words: DynArray[uint256, book.MAX_ORDERS] = book._words(interval, bid_accounts)
    ask_words: DynArray[uint256, book.MAX_ORDERS] = book._words(interval, ask_accounts)
    for i: uint256 in range(len(orders), bound=book.MAX_ORDERS):
        signer: address = signers[i]
        if codes[i] != 0:
            log book.OrderRejected(interval=interval, index=i, signer=signer, reason=book._code_reason(codes[i]))
            continue
        o: book.SignedOrder = orders[i]
        index: uint256 = len(bid_accounts)
        if o.is_ask:
            index = len(ask_accounts)
            ask_accounts.append(signer)
            ask_words.append(book._order_word_of(True, o.energy_wh, o.price_wei_per_wh))
        else:
            bid_accounts.append(signer)
            bid_words.append(book._order_word_of(False, o.energy_wh, o.price_wei_per_wh))
        log book.OrderSubmitted(
            interval=interval,
            account=signer,
            is_ask=o.is_ask,
            energy_wh=o.energy_wh,
            price_wei_per_wh=o.price_wei_per_wh,
            index=index,
        )
    bids: uint256[book.MAX_ORDERS] = book._ranked_words(bid_words, bid_order, True)
    asks: uint256[book.MAX_ORDERS] = book._ranked_words(ask_words, ask_order, False)
    matching: Matching = self._match(bids, len(bid_accounts), asks, len(ask_accounts))
    assert matching.price_wei_per_wh == price_wei_per_wh, "auction: wrong clearing price"
    assert matching.volume_wh == volume_wh, "auction: wrong cleared volume"

    # effects
    self._record_clearing(interval, bid_accounts, bids, ask_accounts, asks, matching)

    # interactions
    bidders: DynArray[address, book.MAX_ORDERS] = []
    locks: DynArray[uint256, book.MAX_ORDERS] = []
    for rank: uint256 in range(len(bid_accounts), bound=book.MAX_ORDERS):
        fill_wh: uint256 = matching.bid_fill_wh[rank]
        if fill_wh == 0:
            break
        index: uint256 = (bids[rank] >> book.RANKED_INDEX_SHIFT) & book.RANKED_INDEX_MASK
        if index >= stored_bids:
            bidders.append(bid_accounts[index])
            locks.append(book._order_word_of(False, fill_wh, matching.price_wei_per_wh))
    if len(bidders) != 0:
        extcall escrow.settlement.lock_bids(interval, bidders, locks)


@external
@view
def signed_order_problems(
    interval: uint256, orders: DynArray[book.SignedOrder, book.MAX_ORDERS]
) -> DynArray[String[64], book.MAX_ORDERS]:
    """
    @dev The verdict `clear_signed` would give each signed order of a
         verified batch in the current state: the empty string if it
         would be accepted, else the reason of its `OrderRejected`. A
         relay computes the clearing of the accepted ones.
    @param interval Index of the market interval of every order.
    @param orders The signed orders.
    @return DynArray One reason per order, in order.
    """
    signers: DynArray[address, book.MAX_ORDERS] = []
    codes: DynArray[uint256, book.MAX_ORDERS] = []
    signers, codes = book._batch_codes(interval, orders)
    reasons: DynArray[String[64], book.MAX_ORDERS] = []
    for code: uint256 in codes:
        reasons.append(book._code_reason(code))
    return reasons


@external
@view
def clearing_price_wei_per_wh(interval: uint256) -> uint256:
    """
    @dev Uniform price of a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The clearing price. [wei/Wh]
    """
    return book._outcome_word[interval] & _OUTCOME_PRICE_MASK


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
def settlement_terms(interval: uint256, account: address) -> escrow.SettlementTerms:
    """
    @dev Everything the settlement of `account`'s reading for `interval`
         needs, in one call. All fields but `cleared` are zero while
         the interval is not cleared.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return SettlementTerms Whether the interval is cleared, the
            account's position [Wh] (positive = sold), its money value
            at the clearing price [wei] (positive = received) and the
            interval's end [s since the Unix epoch].
    """
    outcome: uint256 = book._outcome_word[interval]
    if outcome == 0:
        return empty(escrow.SettlementTerms)
    position_wh: int256 = book._position_wh(book._order_word[interval][account])
    # |position| <= MAX_ENERGY_WH and price <= MAX_PRICE_WEI_PER_WH: the
    # product stays under 10**36.
    return escrow.SettlementTerms(
        cleared=True,
        position_wh=position_wh,
        value_wei=unsafe_mul(convert(outcome & _OUTCOME_PRICE_MASK, int256), position_wh),
        end_timestamp=gate._interval_end_timestamp(interval),
    )


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
         bid price is at least the best remaining ask price the two
         trade the smaller remaining energy; the price is the floor of
         the midpoint of the last matched pair. Fills are kept by
         priority rank, so the filled orders of each side are a prefix.
    @param bids Bid entries (`book.RANKED_*`) by priority rank.
    @param bid_count Number of bids.
    @param asks Ask entries (`book.RANKED_*`) by priority rank.
    @param ask_count Number of asks.
    @return Matching Price [wei/Wh], volume [Wh] and fills [Wh].
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
        matching.price_wei_per_wh = (bid_price_wei_per_wh + ask_price_wei_per_wh) // 2
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
    @dev Stores the outcome and every fill of a matched book and logs
         its `Trade` events, then `Cleared`.
    @param interval Index of the market interval.
    @param bid_accounts Bids' accounts, in submission order.
    @param bids Bid entries (`book.RANKED_*`) by priority rank.
    @param ask_accounts Asks' accounts, in submission order.
    @param asks Ask entries (`book.RANKED_*`) by priority rank.
    @param matching The outcome of `_match` on these sides.
    """
    book._outcome_word[interval] = (
        matching.price_wei_per_wh | matching.volume_wh << _OUTCOME_VOLUME_SHIFT | _OUTCOME_CLEARED
    )
    self._record_fills(interval, bid_accounts, bids, matching.bid_fill_wh)
    self._record_fills(interval, ask_accounts, asks, matching.ask_fill_wh)
    log Cleared(interval=interval, price_wei_per_wh=matching.price_wei_per_wh, volume_wh=matching.volume_wh)


@internal
def _record_fills(
    interval: uint256,
    accounts: DynArray[address, book.MAX_ORDERS],
    ranked: uint256[book.MAX_ORDERS],
    fill_wh: uint256[book.MAX_ORDERS],
):
    """
    @dev Stores the fill of every filled order of one side in its
         order word and logs a `Trade` for it.
    @param interval Index of the market interval.
    @param accounts That side's accounts, in submission order.
    @param ranked That side's entries (`book.RANKED_*`) by priority rank.
    @param fill_wh Filled energy by priority rank. [Wh]
    """
    for rank: uint256 in range(len(accounts), bound=book.MAX_ORDERS):
        if fill_wh[rank] == 0:
            break
        entry: uint256 = ranked[rank]
        account: address = accounts[(entry >> book.RANKED_INDEX_SHIFT) & book.RANKED_INDEX_MASK]
        word: uint256 = book._record_fill(interval, account, entry, fill_wh[rank])
        log Trade(interval=interval, account=account, position_wh=book._position_wh(word))
