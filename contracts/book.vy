# pragma version ~=0.4.3
"""
@title Order Book of an Interval, its Priority Check and On-Chain Sort
@custom:contract-name book
@license BSD-3-Clause
@notice Module of the book mechanisms (`DoubleAuction.vy`,
        `PayAsBid.vy`, `MeritOrder.vy`): one book per market interval
        with bids (False) and asks (True), each account placing at most
        one order per interval before the gate (`gate.vy`) closes, sized
        between the settlement's minimum and the account's registered
        limit (`escrow._check_order_size`), and
        the two ways to rank a side by priority for clearing, which give
        the same ranking:
        - `_ranked` checks a priority order sorted off-chain in O(n);
        - `_sorted` sorts the side itself by insertion sort in O(n^2).
        Priority: bids by price descending, asks (and merit-order
        offers) by price ascending, equal prices by submission index
        ascending. The mechanism matches the ranked sides, stores its
        outcome in `_outcome_word` (its own layout, zero until cleared)
        and each fill with `_record_fill`.
        Storage is packed to keep the slots an interval touches few: an
        order and its cleared fill share one word per account and
        interval (layout at the `_ORDER_*` constants).
        A contract `initializes: book[access := access, escrow := escrow,
        gate := gate]` and exports `book.__interface__` (the double
        auctions) or the functions below it offers (the merit order).
        Functions:
        - `order_count`, `order`, `orders`, `has_order`, `cleared`
          (`external` `view` functions),
        - `MAX_ORDERS`, `MAX_ENERGY_WH`, `MAX_PRICE_WEI_PER_WH`
          (`external` `view` functions),
        - `submit_order`, `submit_signed_orders` (`external` functions,
          for the double auctions),
        - `_submit_order`, `_submit_signed_orders` (the merit order's
          offers), `_order_problem`, `_book_problem`, `_batch_codes`,
          `_bounds_code`, `_code_reason`, `_order_word_of`,
          `_place_order`, `_check_clearable`, `_ranked`, `_words`,
          `_ranked_words`, `_sorted`, `_record_fill`, `_order`,
          `_position_wh` (`internal` functions).
        A verified batch (`DoubleAuction.clear_signed`) brings the
        interval's signed orders with its clearing after the gate:
        `_batch_codes` judges them as `submit_order` would, and only
        the filled ones are ever stored (`_record_fill`).
"""


from . import access
from . import eip712
from . import escrow
from . import gate

uses: access
uses: escrow
uses: gate


# @dev Most orders on one side of one interval's book.
MAX_ORDERS: public(constant(uint256)) = 256


# @dev Reason a book of asks alone (the merit order's offers) skips a signed bid.
ASKS_ONLY: constant(String[64]) = "book: offers only"


# @dev Verdicts of `_batch_codes` on the orders of a verified batch:
# 0 accepted, the settlement's checks `escrow.CODE_*` (1 to 6), the
# book's own below (`_code_reason` gives each its reason string).
CODE_BAD_SIGNATURE: constant(uint256) = 16
CODE_NOT_PROSUMER: constant(uint256) = 17
CODE_ZERO_ENERGY: constant(uint256) = 18
CODE_ENERGY_ABOVE_LIMIT: constant(uint256) = 19
CODE_ZERO_PRICE: constant(uint256) = 20
CODE_PRICE_ABOVE_CAP: constant(uint256) = 21
CODE_ORDER_EXISTS: constant(uint256) = 22
CODE_BOOK_FULL: constant(uint256) = 23


# @dev Slots of the in-memory set of a verified batch's signers
# (`_batch_codes`), twice the batch's size so probes stay short.
_SEEN_SLOTS: constant(uint256) = 2 * MAX_ORDERS


# @dev Largest energy of one order: 1 TWh keeps every payment product
# far inside int256 and fits the 40-bit energy fields below. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest price cap a mechanism accepts (`access.vy`); fits the
# 80-bit price fields below. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = access.MAX_PRICE_WEI_PER_WH


# @dev Packed order word of one account in one interval, zero while it
# has no order: bits [0, 40) energy [Wh], [40, 120) limit price
# [wei/Wh], [120, 160) energy filled at clearing [Wh], bit 160 set for
# an ask. Energy is at least 1 Wh, so an order's word is never zero.
ORDER_ENERGY_MASK: constant(uint256) = 2**40 - 1
ORDER_PRICE_SHIFT: constant(uint256) = 40
ORDER_PRICE_MASK: constant(uint256) = 2**80 - 1
ORDER_FILL_SHIFT: constant(uint256) = 120
ORDER_ASK_SHIFT: constant(uint256) = 160


# @dev Entry of one order in a side ranked by priority, as `_ranked`
# and `_sorted` hand it to the matching: bits [0, 161) its order word
# (not yet filled), [161, 169) its index on its side (MAX_ORDERS = 2**8)
# and, in the sort keys of `_sorted` only, [169, 249) its price
# [wei/Wh], complemented for bids, so that ascending keys are priority
# order.
RANKED_WORD_MASK: constant(uint256) = 2**161 - 1
RANKED_INDEX_SHIFT: constant(uint256) = 161
RANKED_INDEX_MASK: constant(uint256) = MAX_ORDERS - 1
_RANKED_PRICE_SHIFT: constant(uint256) = 169


# @dev One order of a book.
struct Order:
    account: address
    energy_wh: uint256
    price_wei_per_wh: uint256


# @dev An order signed as EIP-712 typed data (`eip712.ORDER_TYPEHASH`)
# for a relay to submit; the interval is the batch's.
struct SignedOrder:
    is_ask: bool
    energy_wh: uint256
    price_wei_per_wh: uint256
    v: uint8
    r: bytes32
    s: bytes32


# @dev Accounts with an order in each interval, bids under False and
# asks under True, in submission order.
_accounts: HashMap[uint256, HashMap[bool, DynArray[address, MAX_ORDERS]]]


# @dev Packed order word of each account per interval (`ORDER_*`).
_order_word: HashMap[uint256, HashMap[address, uint256]]


# @dev Packed outcome word of each interval in the mechanism's layout;
# zero until the interval clears, never zero after.
_outcome_word: HashMap[uint256, uint256]


# @dev Emitted for every relayed order skipped: `index` is its place in
# the batch, `signer` the recovered account (empty if none), `reason`
# the reason `submit_order` by the signer would have reverted with.
event OrderRejected:
    interval: indexed(uint256)
    index: uint256
    signer: indexed(address)
    reason: String[64]


# @dev Emitted for every accepted order; `index` is its place
# on its side of the book.
event OrderSubmitted:
    interval: indexed(uint256)
    account: indexed(address)
    is_ask: bool
    energy_wh: uint256
    price_wei_per_wh: uint256
    index: uint256


@external
@view
def order_count(interval: uint256, is_ask: bool) -> uint256:
    """
    @dev Number of orders on one side of an interval's book.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @return uint256 The number of orders.
    """
    return len(self._accounts[interval][is_ask])


@external
@view
def order(interval: uint256, is_ask: bool, index: uint256) -> Order:
    """
    @dev One order of an interval's book.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @param index Place of the order on its side, in submission order.
    @return Order The account, energy [Wh] and price [wei/Wh].
    """
    return self._order_at(interval, is_ask, index)


@external
@view
def orders(interval: uint256, is_ask: bool) -> DynArray[Order, MAX_ORDERS]:
    """
    @dev All orders on one side of an interval's book.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @return DynArray The orders in submission order.
    """
    return self._orders(interval, is_ask)


@external
@view
def has_order(interval: uint256, account: address) -> bool:
    """
    @dev Tells whether `account` has an order in `interval`.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return bool True once the account's order is accepted.
    """
    return self._order_word[interval][account] != 0


@external
@view
def cleared(interval: uint256) -> bool:
    """
    @dev Tells whether `interval` has been cleared.
    @param interval Index of the market interval.
    @return bool True once the interval is cleared.
    """
    return self._outcome_word[interval] != 0


@external
def submit_order(interval: uint256, is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Places the caller's single order for `interval`; a bid locks
         energy_wh * (price_wei_per_wh + fee) of the caller's free credit.
    @param interval Index of the market interval.
    @param is_ask True to sell, False to buy.
    @param energy_wh Energy offered or wanted; 1 to `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Limit price; 1 to the price cap. [wei/Wh]
    """
    access._check_prosumer(msg.sender)
    self._submit_order(interval, msg.sender, is_ask, energy_wh, price_wei_per_wh)


@external
def submit_signed_orders(interval: uint256, orders: DynArray[SignedOrder, MAX_ORDERS]):
    """
    @dev Places orders for `interval` that their prosumers signed as
         EIP-712 typed data (`eip712.vy`), relayed by the caller (the
         operator or anyone: the relay pays the gas and can neither
         forge nor alter an order). Each order is placed as if its
         signer had sent `submit_order` itself, in the given order; one
         that would revert there is skipped with `OrderRejected` and the
         same reason ("book: bad signature" if no account signed it),
         and the rest are placed; one exception: a second order of the
         same signer in the batch is skipped as "book: order exists"
         even if the settlement refuses its first. A prosumer whose
         order a relay leaves out can still send it with `submit_order`.
    @param interval Index of the market interval of every order.
    @param orders The signed orders: side, energy [Wh], limit price
           [wei/Wh] and the signature (v, r, s).
    """
    self._submit_signed_orders(interval, orders, False)


@internal
def _submit_signed_orders(interval: uint256, orders: DynArray[SignedOrder, MAX_ORDERS], asks_only: bool):
    """
    @dev Places the signed `orders` as `submit_signed_orders` describes;
         with `asks_only` (the merit order's offers) a signed bid is
         skipped with `ASKS_ONLY`. The batch costs one call of the
         registry (`access._roles_of`: the signers' roles), one of the
         settlement (`escrow._order_codes`: debt, size and credit of
         every order the book's own checks passed) and one to lock the
         accepted bids (`Settlement.lock_bids`), whatever its size. An
         order passing the book's own checks (`_book_problem`) has its
         word stored at once, so a second order of its signer in the
         batch is refused as "book: order exists"; the word is cleared
         again if the side is full or the settlement refuses it.
         `OrderRejected` of orders the book's own checks refuse come
         first, then the others' events in batch order.
    @param interval Index of the market interval of every order.
    @param orders The signed orders.
    @param asks_only True if the book takes asks alone.
    """
    domain_separator: bytes32 = eip712._domain_separator()
    signers: DynArray[address, MAX_ORDERS] = []
    for o: SignedOrder in orders:
        signers.append(eip712._signer(
            domain_separator,
            keccak256(abi_encode(eip712.ORDER_TYPEHASH, interval, o.is_ask, o.energy_wh, o.price_wei_per_wh)),
            o.v, o.r, o.s,
        ))
    roles: DynArray[uint256, MAX_ORDERS] = access._roles_of(signers)

    accounts: DynArray[address, MAX_ORDERS] = []
    words: DynArray[uint256, MAX_ORDERS] = []
    places: DynArray[uint256, MAX_ORDERS] = []
    for i: uint256 in range(len(orders), bound=MAX_ORDERS):
        o: SignedOrder = orders[i]
        signer: address = signers[i]
        reason: String[64] = "book: bad signature"
        if signer != empty(address):
            reason = access.NOT_PROSUMER
            if roles[i] & access.ROLE_PROSUMER != 0:
                reason = ASKS_ONLY if asks_only and not o.is_ask else self._book_problem(
                    interval, signer, o.is_ask, o.energy_wh, o.price_wei_per_wh)
        if len(reason) != 0:
            log OrderRejected(interval=interval, index=i, signer=signer, reason=reason)
            continue
        word: uint256 = self._order_word_of(o.is_ask, o.energy_wh, o.price_wei_per_wh)
        self._order_word[interval][signer] = word
        accounts.append(signer)
        words.append(word)
        places.append(i)

    codes: DynArray[uint256, MAX_ORDERS] = escrow._order_codes(interval, accounts, words)
    bidders: DynArray[address, MAX_ORDERS] = []
    bids: DynArray[uint256, MAX_ORDERS] = []
    for j: uint256 in range(len(accounts), bound=MAX_ORDERS):
        account: address = accounts[j]
        word: uint256 = words[j]
        is_ask: bool = word >> ORDER_ASK_SHIFT != 0
        index: uint256 = len(self._accounts[interval][is_ask])
        reason: String[64] = ""
        if index >= MAX_ORDERS:
            reason = "book: book full"
        elif codes[j] != 0:
            reason = escrow._code_reason(codes[j])
        if len(reason) != 0:
            self._order_word[interval][account] = 0
            log OrderRejected(interval=interval, index=places[j], signer=account, reason=reason)
            continue
        self._accounts[interval][is_ask].append(account)
        log OrderSubmitted(
            interval=interval,
            account=account,
            is_ask=is_ask,
            energy_wh=word & ORDER_ENERGY_MASK,
            price_wei_per_wh=(word >> ORDER_PRICE_SHIFT) & ORDER_PRICE_MASK,
            index=index,
        )
        if not is_ask:
            bidders.append(account)
            bids.append(word)

    # interactions
    if len(bids) != 0:
        extcall escrow.settlement.lock_bids(interval, bidders, bids)


@internal
def _submit_order(interval: uint256, account: address, is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Places `account`'s single order for `interval` once the
         mechanism has checked its role, or reverts with the reason of
         `_order_problem`.
    @param interval Index of the market interval.
    @param account The account placing the order.
    @param is_ask True to sell, False to buy.
    @param energy_wh Energy offered or wanted; 1 to `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Limit price; 1 to the price cap. [wei/Wh]
    """
    reason: String[64] = self._order_problem(interval, account, is_ask, energy_wh, price_wei_per_wh)
    assert len(reason) == 0, reason
    self._place_order(interval, account, is_ask, energy_wh, price_wei_per_wh)


@internal
@view
def _order_problem(
    interval: uint256, account: address, is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256
) -> String[64]:
    """
    @dev Why an order of `account` (whose role the caller has checked)
         may not be placed, or the empty string: energy zero or above
         `MAX_ENERGY_WH`, price zero or above the cap, the gate closed,
         an order of the account in the interval already, the side
         full, then the settlement's checks (`escrow._order_problem`:
         bound, debtor, size between the minimum and the registered
         limit, a bid's escrow within the free credit).
    @param interval Index of the market interval.
    @param account The account placing the order.
    @param is_ask True to sell, False to buy.
    @param energy_wh Energy offered or wanted. [Wh]
    @param price_wei_per_wh Limit price. [wei/Wh]
    @return String[64] The reason, empty if the order may be placed.
    """
    reason: String[64] = self._book_problem(interval, account, is_ask, energy_wh, price_wei_per_wh)
    if len(reason) != 0:
        return reason
    if len(self._accounts[interval][is_ask]) >= MAX_ORDERS:
        return "book: book full"
    return escrow._order_problem(account, interval, is_ask, energy_wh, price_wei_per_wh)


@internal
@view
def _book_problem(
    interval: uint256, account: address, is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256
) -> String[64]:
    """
    @dev The book's own checks of `_order_problem` that come before the
         side's room: energy zero or above `MAX_ENERGY_WH`, price zero
         or above the cap, the gate closed, an order of the account in
         the interval already; the empty string if it passes them.
    @param interval Index of the market interval.
    @param account The account placing the order.
    @param is_ask True to sell, False to buy.
    @param energy_wh Energy offered or wanted. [Wh]
    @param price_wei_per_wh Limit price. [wei/Wh]
    @return String[64] The reason, empty if the order passes.
    """
    code: uint256 = self._bounds_code(energy_wh, price_wei_per_wh)
    if code != 0:
        return self._code_reason(code)
    if not gate._is_open(interval):
        return gate.GATE_CLOSED
    if self._order_word[interval][account] != 0:
        return "book: order exists"
    return ""


@internal
@view
def _batch_codes(
    interval: uint256, orders: DynArray[SignedOrder, MAX_ORDERS]
) -> (DynArray[address, MAX_ORDERS], DynArray[uint256, MAX_ORDERS]):
    """
    @dev The signer of each order of a verified batch (the empty
         address if none) and the verdict on it (`CODE_*`, 0 accepted):
         the checks `submit_order` by the signer would make, but the
         gate's (a verified batch comes after it), in its order: a
         signature, the prosumer role, bounds, one order per account
         and interval (an order stored or an earlier one of the batch
         whose signer passed the bounds), the side's room (stored
         orders and the batch's accepted ones before it), then the
         settlement's checks (`escrow._order_codes`: debt, size,
         collateral for the whole order). Costs one call of the
         registry and one of the settlement, whatever the batch's size.
    @param interval Index of the market interval of every order.
    @param orders The signed orders.
    @return DynArray The signers, in order.
    @return DynArray The verdicts, in order.
    """
    domain_separator: bytes32 = eip712._domain_separator()
    signers: DynArray[address, MAX_ORDERS] = []
    for o: SignedOrder in orders:
        signers.append(eip712._signer(
            domain_separator,
            keccak256(abi_encode(eip712.ORDER_TYPEHASH, interval, o.is_ask, o.energy_wh, o.price_wei_per_wh)),
            o.v, o.r, o.s,
        ))
    roles: DynArray[uint256, MAX_ORDERS] = access._roles_of(signers)

    # Open-addressing set of the signers that passed the bounds.
    seen: address[_SEEN_SLOTS] = empty(address[_SEEN_SLOTS])
    codes: DynArray[uint256, MAX_ORDERS] = []
    accounts: DynArray[address, MAX_ORDERS] = []
    words: DynArray[uint256, MAX_ORDERS] = []
    places: DynArray[uint256, MAX_ORDERS] = []
    for i: uint256 in range(len(orders), bound=MAX_ORDERS):
        o: SignedOrder = orders[i]
        signer: address = signers[i]
        code: uint256 = CODE_BAD_SIGNATURE
        if signer != empty(address):
            code = CODE_NOT_PROSUMER
            if roles[i] & access.ROLE_PROSUMER != 0:
                code = self._bounds_code(o.energy_wh, o.price_wei_per_wh)
        if code == 0:
            if self._order_word[interval][signer] != 0:
                code = CODE_ORDER_EXISTS
            slot: uint256 = convert(signer, uint256) % _SEEN_SLOTS
            for _: uint256 in range(_SEEN_SLOTS):
                if seen[slot] == empty(address):
                    seen[slot] = signer
                    break
                if seen[slot] == signer:
                    code = CODE_ORDER_EXISTS
                    break
                slot = (slot + 1) % _SEEN_SLOTS
        codes.append(code)
        if code == 0:
            accounts.append(signer)
            words.append(self._order_word_of(o.is_ask, o.energy_wh, o.price_wei_per_wh))
            places.append(i)

    settlement_codes: DynArray[uint256, MAX_ORDERS] = escrow._order_codes(interval, accounts, words)
    bid_count: uint256 = len(self._accounts[interval][False])
    ask_count: uint256 = len(self._accounts[interval][True])
    for j: uint256 in range(len(accounts), bound=MAX_ORDERS):
        is_ask: bool = words[j] >> ORDER_ASK_SHIFT != 0
        count: uint256 = ask_count if is_ask else bid_count
        code: uint256 = settlement_codes[j]
        if count >= MAX_ORDERS:
            code = CODE_BOOK_FULL
        elif code == 0 and is_ask:
            ask_count += 1
        elif code == 0:
            bid_count += 1
        codes[places[j]] = code
    return signers, codes


@internal
@view
def _bounds_code(energy_wh: uint256, price_wei_per_wh: uint256) -> uint256:
    """
    @dev The first bound an order breaks (`CODE_*`), 0 if none: energy
         zero or above `MAX_ENERGY_WH`, price zero or above the cap.
    @param energy_wh Energy of the order. [Wh]
    @param price_wei_per_wh Limit price. [wei/Wh]
    @return uint256 The code.
    """
    if energy_wh == 0:
        return CODE_ZERO_ENERGY
    if energy_wh > MAX_ENERGY_WH:
        return CODE_ENERGY_ABOVE_LIMIT
    if price_wei_per_wh == 0:
        return CODE_ZERO_PRICE
    if price_wei_per_wh > access.price_cap_wei_per_wh:
        return CODE_PRICE_ABOVE_CAP
    return 0


@internal
@pure
def _code_reason(code: uint256) -> String[64]:
    """
    @dev Reason of a verdict of `_batch_codes`, the string
         `submit_order` reverts with for the same check.
    @param code A verdict (`CODE_*` or `escrow.CODE_*`).
    @return String[64] The reason, empty for 0.
    """
    if code == CODE_BAD_SIGNATURE:
        return "book: bad signature"
    if code == CODE_NOT_PROSUMER:
        return access.NOT_PROSUMER
    if code == CODE_ZERO_ENERGY:
        return "book: zero energy"
    if code == CODE_ENERGY_ABOVE_LIMIT:
        return "book: energy above limit"
    if code == CODE_ZERO_PRICE:
        return "book: zero price"
    if code == CODE_PRICE_ABOVE_CAP:
        return "book: price above cap"
    if code == CODE_ORDER_EXISTS:
        return "book: order exists"
    if code == CODE_BOOK_FULL:
        return "book: book full"
    return escrow._code_reason(code)


@internal
@pure
def _order_word_of(is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256) -> uint256:
    """
    @dev Packed word of a new, unfilled order (`ORDER_*`).
    @param is_ask True for an ask.
    @param energy_wh Energy of the order. [Wh]
    @param price_wei_per_wh Limit price. [wei/Wh]
    @return uint256 The order word.
    """
    return energy_wh | price_wei_per_wh << ORDER_PRICE_SHIFT | convert(is_ask, uint256) << ORDER_ASK_SHIFT


@internal
def _place_order(interval: uint256, account: address, is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Stores an order `_order_problem` passed; a bid locks
         energy_wh * (price_wei_per_wh + fee) of the account's free credit.
    @param interval Index of the market interval.
    @param account The account placing the order.
    @param is_ask True to sell, False to buy.
    @param energy_wh Energy offered or wanted. [Wh]
    @param price_wei_per_wh Limit price. [wei/Wh]
    """
    index: uint256 = len(self._accounts[interval][is_ask])

    # effects
    self._order_word[interval][account] = self._order_word_of(is_ask, energy_wh, price_wei_per_wh)
    self._accounts[interval][is_ask].append(account)
    log OrderSubmitted(
        interval=interval,
        account=account,
        is_ask=is_ask,
        energy_wh=energy_wh,
        price_wei_per_wh=price_wei_per_wh,
        index=index,
    )

    # interactions
    if not is_ask:
        extcall escrow.settlement.lock(account, interval, energy_wh, price_wei_per_wh)


@internal
@view
def _check_clearable(interval: uint256):
    """
    @dev Reverts unless the gate of `interval` has closed and
         `interval` is not cleared.
    @param interval Index of the market interval.
    """
    gate._check_after_gate(interval)
    assert self._outcome_word[interval] == 0, "book: already cleared"


@internal
@view
def _order(interval: uint256, account: address) -> Order:
    """
    @dev Unpacked order of `account` in `interval`.
    @param interval Index of the market interval.
    @param account An account with an order in `interval`.
    @return Order The account, energy [Wh] and price [wei/Wh].
    """
    word: uint256 = self._order_word[interval][account]
    return Order(
        account=account,
        energy_wh=word & ORDER_ENERGY_MASK,
        price_wei_per_wh=(word >> ORDER_PRICE_SHIFT) & ORDER_PRICE_MASK,
    )


@internal
@view
def _order_at(interval: uint256, is_ask: bool, index: uint256) -> Order:
    """
    @dev One order of an interval's book; reverts if there is none.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @param index Place of the order on its side, in submission order.
    @return Order The account, energy [Wh] and price [wei/Wh].
    """
    assert index < len(self._accounts[interval][is_ask]), "book: no such order"
    return self._order(interval, self._accounts[interval][is_ask][index])


@internal
@view
def _orders(interval: uint256, is_ask: bool) -> DynArray[Order, MAX_ORDERS]:
    """
    @dev All orders on one side of an interval's book.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @return DynArray The orders in submission order.
    """
    book: DynArray[Order, MAX_ORDERS] = []
    for account: address in self._accounts[interval][is_ask]:
        book.append(self._order(interval, account))
    return book


@internal
@pure
def _position_wh(word: uint256) -> int256:
    """
    @dev Signed fill of a packed order word.
    @param word An order word, or zero for no order.
    @return int256 The filled energy, positive for an ask. [Wh]
    """
    fill_wh: int256 = convert((word >> ORDER_FILL_SHIFT) & ORDER_ENERGY_MASK, int256)
    if word >> ORDER_ASK_SHIFT == 0:
        return -fill_wh
    return fill_wh


@internal
@view
def _ranked(
    interval: uint256,
    accounts: DynArray[address, MAX_ORDERS],
    priority: DynArray[uint256, MAX_ORDERS],
    descending: bool,
) -> uint256[MAX_ORDERS]:
    """
    @dev `_ranked_words` of the stored order words of `accounts`.
    @param interval Index of the market interval.
    @param accounts One side's accounts, in submission order.
    @param priority The claimed priority order of `accounts`' indices.
    @param descending True for bids, False for asks.
    @return uint256[MAX_ORDERS] The side's entries (`RANKED_*`) by
            priority rank.
    """
    return self._ranked_words(self._words(interval, accounts), priority, descending)


@internal
@view
def _words(interval: uint256, accounts: DynArray[address, MAX_ORDERS]) -> DynArray[uint256, MAX_ORDERS]:
    """
    @dev The stored order words (`ORDER_*`) of `accounts` in `interval`.
    @param interval Index of the market interval.
    @param accounts Accounts with an order in `interval`.
    @return DynArray Their order words, in order.
    """
    words: DynArray[uint256, MAX_ORDERS] = []
    for account: address in accounts:
        words.append(self._order_word[interval][account])
    return words


@internal
@pure
def _ranked_words(
    words: DynArray[uint256, MAX_ORDERS], priority: DynArray[uint256, MAX_ORDERS], descending: bool
) -> uint256[MAX_ORDERS]:
    """
    @dev Reverts unless `priority` lists every index of `words` once,
         sorted by price (descending for bids, ascending for asks) and
         by index among equal prices. The sort is strict, so an index
         can only repeat where the order breaks: repeats are looked for
         there only.
    @param words One side's order words (`ORDER_*`), in submission order.
    @param priority The claimed priority order of `words`' indices.
    @param descending True for bids, False for asks.
    @return uint256[MAX_ORDERS] The side's entries (`RANKED_*`) by
            priority rank.
    """
    assert len(priority) == len(words), "book: order length mismatch"
    ranked: uint256[MAX_ORDERS] = empty(uint256[MAX_ORDERS])
    previous: uint256 = 0
    previous_price: uint256 = 0
    for rank: uint256 in range(len(priority), bound=MAX_ORDERS):
        index: uint256 = priority[rank]
        assert index < len(words), "book: order index out of range"
        word: uint256 = words[index]
        price: uint256 = (word >> ORDER_PRICE_SHIFT) & ORDER_PRICE_MASK
        if rank != 0:
            in_priority: bool = previous < index
            if previous_price != price:
                in_priority = (previous_price > price) == descending
            if not in_priority:
                for earlier: uint256 in range(rank, bound=MAX_ORDERS):
                    assert priority[earlier] != index, "book: order index repeated"
                raise "book: order not sorted"
        ranked[rank] = index << RANKED_INDEX_SHIFT | word
        previous = index
        previous_price = price
    return ranked


@internal
@view
def _sorted(interval: uint256, accounts: DynArray[address, MAX_ORDERS], descending: bool) -> uint256[MAX_ORDERS]:
    """
    @dev Sorts one side of a book on-chain by insertion sort of keys
         (`RANKED_*`): by price, descending for bids and ascending for
         asks, and by index among equal prices, the order `_ranked`
         checks. Keys are distinct, so the sort is strict.
    @param interval Index of the market interval.
    @param accounts One side's accounts, in submission order.
    @param descending True for bids, False for asks.
    @return uint256[MAX_ORDERS] The side's entries (`RANKED_*`) by
            priority rank.
    """
    keys: uint256[MAX_ORDERS] = empty(uint256[MAX_ORDERS])
    for index: uint256 in range(len(accounts), bound=MAX_ORDERS):
        word: uint256 = self._order_word[interval][accounts[index]]
        price: uint256 = (word >> ORDER_PRICE_SHIFT) & ORDER_PRICE_MASK
        if descending:
            price = ORDER_PRICE_MASK - price
        key: uint256 = price << _RANKED_PRICE_SHIFT | index << RANKED_INDEX_SHIFT | word
        # Insert `key` into the sorted keys[0:index] by shifting the
        # larger ones up. The loop runs at most `index` times, so
        # `rank` stays positive inside it.
        rank: uint256 = index
        for _: uint256 in range(index, bound=MAX_ORDERS):
            below: uint256 = keys[unsafe_sub(rank, 1)]
            if below < key:
                break
            keys[rank] = below
            rank = unsafe_sub(rank, 1)
        keys[rank] = key
    return keys


@internal
def _record_fill(interval: uint256, account: address, entry: uint256, fill_wh: uint256) -> uint256:
    """
    @dev Stores the fill of one ranked order in its order word.
    @param interval Index of the market interval.
    @param account The order's account, that of its side's index
           `(entry >> RANKED_INDEX_SHIFT) & RANKED_INDEX_MASK`.
    @param entry The order's entry (`RANKED_*`).
    @param fill_wh Its filled energy; positive. [Wh]
    @return uint256 The filled order word.
    """
    word: uint256 = entry & RANKED_WORD_MASK | fill_wh << ORDER_FILL_SHIFT
    self._order_word[interval][account] = word
    return word
