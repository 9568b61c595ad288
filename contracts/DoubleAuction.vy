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
        A zone's book of a sharded ledger (issue 12) trades a second time
        with the other zones: after its own clearing, the operator, acting
        for the zones' coordinator, records the cross-zone fills of the
        interval once with `settle_across` before the interval starts. Each
        fill is bounded by what its order left unmatched and by its limit
        price; the operator's account takes the other side of the zone's
        net flow (it buys the zone's net export, sells its net import at
        the coordinator's price) and settles it with `Settlement.settle_operator`.
        Interval k starts at `start_timestamp + k * interval_s`; its gate
        closes `gate_closure_s` seconds earlier.
        Shared modules: `access.vy` (registry roles, price cap),
        `gate.vy` (interval timing), `escrow.vy` (settlement binding)
        and `book.vy`; their reasons carry their own prefixes
        (`access:`, `gate:`, `escrow:`, `book:`).
        Functions:
        - `bind_settlement`, `submit_order` (`external` functions),
        - `clear`, `clear_onchain`, `clear_signed` (`external` functions),
        - `settle_across`, `cross_fill_wh`, `cross_clearing` (`external` functions),
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


# @dev What `settle_across` reads of the bound settlement beyond
# `escrow.Settlement`: the account `settle_operator` settles, and locks.
interface SettlementBooks:
    def operator() -> address: view
    def lock_wei(interval: uint256, account: address) -> uint256: view


# @dev Packed outcome word of one interval (`book._outcome_word`), zero
# until it clears: bits [0, 80) clearing price [wei/Wh], [80, 144)
# volume [Wh] (at most MAX_ORDERS * MAX_ENERGY_WH < 2**48), bit 144 set
# once cleared, bit 145 once settled across zones (`_cross_word` holds
# that outcome; the flag spares unsharded books its look-up).
_OUTCOME_PRICE_MASK: constant(uint256) = 2**80 - 1
_OUTCOME_VOLUME_SHIFT: constant(uint256) = 80
_OUTCOME_VOLUME_MASK: constant(uint256) = 2**64 - 1
_OUTCOME_CLEARED: constant(uint256) = 2**144
_OUTCOME_CROSSED: constant(uint256) = 2**145


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


# @dev Most cross-zone fills of one interval: every order of both sides.
MAX_CROSS_FILLS: constant(uint256) = 2 * book.MAX_ORDERS


# @dev One order's fill against other zones, on the order's own side. [Wh]
struct CrossFill:
    account: address
    energy_wh: uint256


# @dev What a zone traded with the other zones in one interval.
struct CrossClearing:
    settled: bool
    price_wei_per_wh: uint256
    sold_wh: uint256
    bought_wh: uint256


# @dev Packed cross-zone outcome of one interval, zero until
# `settle_across`: bits [0, 80) the coordinator's price [wei/Wh],
# [80, 144) energy the zone's asks sold to other zones [Wh], [144, 208)
# energy its bids bought from them [Wh].
_cross_word: HashMap[uint256, uint256]
_CROSS_SOLD_SHIFT: constant(uint256) = 80
_CROSS_BOUGHT_SHIFT: constant(uint256) = 144


# @dev Each account's cross-zone fill per interval, on its order's side. [Wh]
_cross_fill_wh: HashMap[uint256, HashMap[address, uint256]]


# @dev Emitted for a cross-zone fill `settle_across` skips.
event CrossFillRejected:
    interval: indexed(uint256)
    account: indexed(address)
    reason: String[64]


# @dev Emitted once per interval by `settle_across`, after the `Trade`
# events of the fills it recorded (each with the account's whole position).
event CrossCleared:
    interval: indexed(uint256)
    price_wei_per_wh: uint256
    sold_wh: uint256
    bought_wh: uint256


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
def settle_across(interval: uint256, fills: DynArray[CrossFill, MAX_CROSS_FILLS], price_wei_per_wh: uint256):
    """
    @dev Records the fills of `interval` against other zones at the
         coordinator's uniform price, once, after the zone's own
         clearing and before the interval starts; only the operator, who
         relays the coordinator's clearing, may call it. Each fill is
         judged alone (`_cross_problem`) and a refused one is skipped
         with `CrossFillRejected` and its reason: the account has no
         order, is filled across zones already, the fill is zero or
         above what the zone's clearing left of the order, the price is
         above a bid's or below an ask's limit, or a bid's escrow cannot
         cover it. The operator takes the other side of the net flow:
         it buys what the zone exports (locking that at the price from
         its free credit, or the call reverts) and sells what it
         imports. A bid whose escrow was released down to its zone
         obligation locks fill * (price + fee) more.
    @param interval Index of a cleared market interval.
    @param fills The cross-zone fills: account and energy [Wh] on its
           order's side, one per account.
    @param price_wei_per_wh The coordinator's clearing price; positive,
           at most the price cap. [wei/Wh]
    """
    # checks
    assert msg.sender == self._exchange(), "auction: caller is not the settlement's operator"
    outcome: uint256 = book._outcome_word[interval]
    assert outcome != 0, "auction: interval not cleared"
    assert outcome & _OUTCOME_CROSSED == 0, "auction: already settled across zones"
    assert block.timestamp < gate._interval_end_timestamp(interval) - gate.interval_s, "auction: interval started"
    assert price_wei_per_wh != 0, "auction: zero price"
    assert price_wei_per_wh <= access.price_cap_wei_per_wh, "auction: price above cap"

    # effects
    sold_wh: uint256 = 0
    bought_wh: uint256 = 0
    top_ups: DynArray[CrossFill, MAX_CROSS_FILLS] = []
    for fill: CrossFill in fills:
        reason: String[64] = ""
        top_up: bool = False
        reason, top_up = self._cross_problem(interval, fill, price_wei_per_wh)
        if len(reason) != 0:
            log CrossFillRejected(interval=interval, account=fill.account, reason=reason)
            continue
        word: uint256 = book._order_word[interval][fill.account]
        self._cross_fill_wh[interval][fill.account] = fill.energy_wh
        position_wh: int256 = book._position_wh(word)
        if word >> book.ORDER_ASK_SHIFT == 0:
            bought_wh += fill.energy_wh
            position_wh -= convert(fill.energy_wh, int256)
            if top_up:
                top_ups.append(fill)
        else:
            sold_wh += fill.energy_wh
            position_wh += convert(fill.energy_wh, int256)
        log Trade(interval=interval, account=fill.account, position_wh=position_wh)
    book._outcome_word[interval] = outcome | _OUTCOME_CROSSED
    self._cross_word[interval] = price_wei_per_wh | sold_wh << _CROSS_SOLD_SHIFT | bought_wh << _CROSS_BOUGHT_SHIFT
    log CrossCleared(interval=interval, price_wei_per_wh=price_wei_per_wh, sold_wh=sold_wh, bought_wh=bought_wh)

    # interactions
    for fill: CrossFill in top_ups:
        extcall escrow.settlement.lock(fill.account, interval, fill.energy_wh, price_wei_per_wh)
    if sold_wh > bought_wh:
        assert staticcall escrow.settlement.can_lock(msg.sender, sold_wh - bought_wh, price_wei_per_wh), (
            "auction: exchange credit below escrow"
        )
        extcall escrow.settlement.lock(msg.sender, interval, sold_wh - bought_wh, price_wei_per_wh)


@external
@view
def cross_fill_wh(interval: uint256, account: address) -> uint256:
    """
    @dev Energy `account`'s order of `interval` traded with other zones,
         on its own side; 0 without a cross-zone fill.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return uint256 The cross-zone fill. [Wh]
    """
    return self._cross_fill_wh[interval][account]


@external
@view
def cross_clearing(interval: uint256) -> CrossClearing:
    """
    @dev What the zone traded with the other zones in `interval`.
    @param interval Index of the market interval.
    @return CrossClearing Whether `settle_across` ran, the coordinator's
            price [wei/Wh], the energy sold and bought across zones [Wh].
    """
    word: uint256 = self._cross_word[interval]
    return CrossClearing(
        settled=book._outcome_word[interval] & _OUTCOME_CROSSED != 0,
        price_wei_per_wh=word & _OUTCOME_PRICE_MASK,
        sold_wh=(word >> _CROSS_SOLD_SHIFT) & _OUTCOME_VOLUME_MASK,
        bought_wh=(word >> _CROSS_BOUGHT_SHIFT) & _OUTCOME_VOLUME_MASK,
    )


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
    return self._terms(interval, account).position_wh


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
    return self._terms(interval, account)


@internal
@view
def _terms(interval: uint256, account: address) -> escrow.SettlementTerms:
    """
    @dev `settlement_terms`: the zone fill at the clearing price plus the
         cross-zone fill at the coordinator's price, and for the operator
         the other side of the zone's net cross-zone flow.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return SettlementTerms See `settlement_terms`.
    """
    outcome: uint256 = book._outcome_word[interval]
    if outcome == 0:
        return empty(escrow.SettlementTerms)
    word: uint256 = book._order_word[interval][account]
    position_wh: int256 = book._position_wh(word)
    # |position| <= MAX_ENERGY_WH and price <= MAX_PRICE_WEI_PER_WH: the
    # product stays under 10**36.
    value_wei: int256 = unsafe_mul(convert(outcome & _OUTCOME_PRICE_MASK, int256), position_wh)
    if outcome & _OUTCOME_CROSSED != 0:
        cross: uint256 = self._cross_word[interval]
        # Cross fills are bounded by the orders and the flows by the
        # book (MAX_ORDERS * MAX_ENERGY_WH): every product stays under 10**40.
        price: int256 = convert(cross & _OUTCOME_PRICE_MASK, int256)
        cross_wh: int256 = convert(self._cross_fill_wh[interval][account], int256)
        if word >> book.ORDER_ASK_SHIFT == 0:
            cross_wh = -cross_wh
        if account == self._exchange():
            cross_wh += convert((cross >> _CROSS_BOUGHT_SHIFT) & _OUTCOME_VOLUME_MASK, int256)
            cross_wh -= convert((cross >> _CROSS_SOLD_SHIFT) & _OUTCOME_VOLUME_MASK, int256)
        position_wh += cross_wh
        value_wei += unsafe_mul(price, cross_wh)
    return escrow.SettlementTerms(
        cleared=True,
        position_wh=position_wh,
        value_wei=value_wei,
        end_timestamp=gate._interval_end_timestamp(interval),
    )


@internal
@view
def _cross_problem(interval: uint256, fill: CrossFill, price_wei_per_wh: uint256) -> (String[64], bool):
    """
    @dev Why `settle_across` skips one cross-zone fill, or the empty
         string; and whether an accepted bid must lock more escrow (its
         lock no longer covers its zone fill and this one).
    @param interval Index of the cleared market interval.
    @param fill The account and its cross-zone fill. [Wh]
    @param price_wei_per_wh The coordinator's price. [wei/Wh]
    @return String[64] The reason, empty if the fill is accepted.
    @return bool True if an accepted bid must lock fill * (price + fee).
    """
    word: uint256 = book._order_word[interval][fill.account]
    if word == 0:
        return "auction: no order", False
    if self._cross_fill_wh[interval][fill.account] != 0:
        return "auction: already filled across zones", False
    energy_wh: uint256 = word & book.ORDER_ENERGY_MASK
    zone_fill_wh: uint256 = (word >> book.ORDER_FILL_SHIFT) & book.ORDER_ENERGY_MASK
    if fill.energy_wh == 0:
        return "auction: zero fill", False
    if fill.energy_wh > energy_wh - zone_fill_wh:
        return "auction: fill above unmatched energy", False
    limit_wei_per_wh: uint256 = (word >> book.ORDER_PRICE_SHIFT) & book.ORDER_PRICE_MASK
    if word >> book.ORDER_ASK_SHIFT != 0:
        if price_wei_per_wh < limit_wei_per_wh:
            return "auction: price below ask limit", False
        return "", False
    if price_wei_per_wh > limit_wei_per_wh:
        return "auction: price above bid limit", False
    zone_price_wei_per_wh: uint256 = book._outcome_word[interval] & _OUTCOME_PRICE_MASK
    owed_wei: uint256 = (
        staticcall escrow.settlement.escrow_wei(fill.account, zone_fill_wh, zone_price_wei_per_wh)
        + staticcall escrow.settlement.escrow_wei(fill.account, fill.energy_wh, price_wei_per_wh)
    )
    if staticcall SettlementBooks(escrow.settlement.address).lock_wei(interval, fill.account) >= owed_wei:
        return "", False
    if not staticcall escrow.settlement.can_lock(fill.account, fill.energy_wh, price_wei_per_wh):
        return escrow.CREDIT_BELOW_ESCROW, False
    return "", True


@internal
@view
def _exchange() -> address:
    """
    @dev The account that takes the other side of a zone's cross-zone
         flow: the operator of the bound settlement, who alone may
         record the cross-zone fills and whose position
         `Settlement.settle_operator` settles.
    @return address The settlement's operator; empty while unbound.
    """
    if escrow.settlement.address == empty(address):
        return empty(address)
    return staticcall SettlementBooks(escrow.settlement.address).operator()


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
