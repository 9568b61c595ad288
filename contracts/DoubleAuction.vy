# pragma version ~=0.4.3
"""
@title Uniform-Price Double Auction for Energy
@custom:contract-name auction
@license BSD-3-Clause
@notice One book per market interval; each prosumer places at most one
        order (a bid to buy or an ask to sell) per interval until the
        interval's gate closes. The operator then clears the book with
        the priority order of each side computed off-chain; the contract
        checks that order in O(n) and matches the sides at one price.
        Interval k starts at `start_timestamp + k * interval_s`; its gate
        closes `gate_closure_s` seconds earlier.
        Functions:
        - `submit_order` (`external` function),
        - `clear` (`external` function),
        - `order_count`, `order`, `orders` (`external` `view` functions),
        - `gate_timestamp`, `interval_end_timestamp` (`external` `view` functions),
        - `cleared`, `clearing_price_wei_per_wh`, `cleared_volume_wh`,
          `position_wh`, `has_order` (`external` `view` functions).
        Clearing rule: bids by price descending, asks by price ascending,
        equal prices by submission index ascending; while the best
        remaining bid price is at least the best remaining ask price the
        two trade the smaller remaining energy. The price is the floor of
        the midpoint of the last matched bid and ask (the marginal pair);
        an interval without a match clears at price 0 and volume 0.
@custom:security An interval so far in the future that its timestamps
                 overflow uint256 reverts without a reason string.
"""


# @dev Role queries against the market's registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view


# @dev Registry role bit of the operator (see `Registry.vy`).
_ROLE_OPERATOR: constant(uint256) = 1


# @dev Registry role bit of prosumers (see `Registry.vy`).
_ROLE_PROSUMER: constant(uint256) = 2


# @dev Most orders on one side of one interval's book.
MAX_ORDERS: public(constant(uint256)) = 256


# @dev Largest energy of one order: 1 TWh keeps every payment product
# far inside int256. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest price cap the constructor accepts. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev One order of a book.
struct Order:
    account: address
    energy_wh: uint256
    price_wei_per_wh: uint256


# @dev Registry that grants the prosumer and operator roles.
registry: public(immutable(Registry))


# @dev Start of interval 0. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev Length of one market interval. [s]
interval_s: public(immutable(uint256))


# @dev How long before its start an interval's gate closes. [s]
gate_closure_s: public(immutable(uint256))


# @dev Highest price an order may carry. [wei/Wh]
price_cap_wei_per_wh: public(immutable(uint256))


# @dev Orders of each interval, bids under False and asks under True,
# in submission order.
_book: HashMap[uint256, HashMap[bool, DynArray[Order, MAX_ORDERS]]]


# @dev True once an account has an order in an interval.
has_order: public(HashMap[uint256, HashMap[address, bool]])


# @dev True once an interval has been cleared.
cleared: public(HashMap[uint256, bool])


# @dev Uniform price of each cleared interval. [wei/Wh]
clearing_price_wei_per_wh: public(HashMap[uint256, uint256])


# @dev Energy traded in each cleared interval. [Wh]
cleared_volume_wh: public(HashMap[uint256, uint256])


# @dev Cleared position of each account per interval,
# positive = sold (export), negative = bought (import). [Wh]
position_wh: public(HashMap[uint256, HashMap[address, int256]])


# @dev Emitted for every accepted order; `index` is its place
# on its side of the book.
event OrderSubmitted:
    interval: indexed(uint256)
    account: indexed(address)
    is_ask: bool
    energy_wh: uint256
    price_wei_per_wh: uint256
    index: uint256


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
    registry_: Registry,
    start_timestamp_: uint256,
    interval_s_: uint256,
    gate_closure_s_: uint256,
    price_cap_wei_per_wh_: uint256,
):
    """
    @param registry_ The market's role registry.
    @param start_timestamp_ Start of interval 0. [s since the Unix epoch]
    @param interval_s_ Length of one interval; positive. [s]
    @param gate_closure_s_ Gate lead time; at most `start_timestamp_`. [s]
    @param price_cap_wei_per_wh_ Highest order price; positive and at
           most `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    """
    assert interval_s_ != 0, "auction: zero interval"
    assert gate_closure_s_ <= start_timestamp_, "auction: gate closure before epoch"
    assert price_cap_wei_per_wh_ != 0 and price_cap_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH, "auction: price cap out of range"
    registry = registry_
    start_timestamp = start_timestamp_
    interval_s = interval_s_
    gate_closure_s = gate_closure_s_
    price_cap_wei_per_wh = price_cap_wei_per_wh_


@external
def submit_order(interval: uint256, is_ask: bool, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Places the caller's single order for `interval`.
    @param interval Index of the market interval.
    @param is_ask True to sell, False to buy.
    @param energy_wh Energy offered or wanted; 1 to `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Limit price; 1 to the price cap. [wei/Wh]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "auction: caller is not a prosumer"
    assert energy_wh != 0, "auction: zero energy"
    assert energy_wh <= MAX_ENERGY_WH, "auction: energy above limit"
    assert price_wei_per_wh != 0, "auction: zero price"
    assert price_wei_per_wh <= price_cap_wei_per_wh, "auction: price above cap"
    assert block.timestamp < self._gate_timestamp(interval), "auction: gate closed"
    assert not self.has_order[interval][msg.sender], "auction: order exists"
    index: uint256 = len(self._book[interval][is_ask])
    assert index < MAX_ORDERS, "auction: book full"

    # effects
    self.has_order[interval][msg.sender] = True
    self._book[interval][is_ask].append(
        Order(account=msg.sender, energy_wh=energy_wh, price_wei_per_wh=price_wei_per_wh)
    )
    log OrderSubmitted(
        interval=interval,
        account=msg.sender,
        is_ask=is_ask,
        energy_wh=energy_wh,
        price_wei_per_wh=price_wei_per_wh,
        index=index,
    )


@external
def clear(interval: uint256, bid_order: DynArray[uint256, MAX_ORDERS], ask_order: DynArray[uint256, MAX_ORDERS]):
    """
    @dev Clears `interval` once its gate has closed.
    @param interval Index of the market interval.
    @param bid_order Book indices of all bids, highest price first,
           equal prices by index.
    @param ask_order Book indices of all asks, lowest price first,
           equal prices by index.
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "auction: caller is not operator"
    assert block.timestamp >= self._gate_timestamp(interval), "auction: gate open"
    assert not self.cleared[interval], "auction: already cleared"
    bids: DynArray[Order, MAX_ORDERS] = self._book[interval][False]
    asks: DynArray[Order, MAX_ORDERS] = self._book[interval][True]
    self._check_priority(bids, bid_order, True)
    self._check_priority(asks, ask_order, False)

    # Fills are kept by priority rank, so the filled orders of each
    # side form a prefix of `bid_order` / `ask_order`.
    bid_fill_wh: uint256[MAX_ORDERS] = empty(uint256[MAX_ORDERS])
    ask_fill_wh: uint256[MAX_ORDERS] = empty(uint256[MAX_ORDERS])
    i: uint256 = 0
    j: uint256 = 0
    volume_wh: uint256 = 0
    price_wei_per_wh: uint256 = 0
    # Every round exhausts a bid or an ask, so 2 * MAX_ORDERS rounds suffice.
    for _: uint256 in range(2 * MAX_ORDERS):
        if i == len(bids) or j == len(asks):
            break
        bid: Order = bids[bid_order[i]]
        ask: Order = asks[ask_order[j]]
        if bid.price_wei_per_wh < ask.price_wei_per_wh:
            break
        traded_wh: uint256 = min(bid.energy_wh - bid_fill_wh[i], ask.energy_wh - ask_fill_wh[j])
        bid_fill_wh[i] += traded_wh
        ask_fill_wh[j] += traded_wh
        volume_wh += traded_wh
        price_wei_per_wh = (bid.price_wei_per_wh + ask.price_wei_per_wh) // 2
        if bid_fill_wh[i] == bid.energy_wh:
            i += 1
        if ask_fill_wh[j] == ask.energy_wh:
            j += 1

    # effects
    self.cleared[interval] = True
    self.clearing_price_wei_per_wh[interval] = price_wei_per_wh
    self.cleared_volume_wh[interval] = volume_wh
    self._record_fills(interval, bids, bid_order, bid_fill_wh, False)
    self._record_fills(interval, asks, ask_order, ask_fill_wh, True)
    log Cleared(interval=interval, price_wei_per_wh=price_wei_per_wh, volume_wh=volume_wh)


@external
@view
def order_count(interval: uint256, is_ask: bool) -> uint256:
    """
    @dev Number of orders on one side of an interval's book.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @return uint256 The number of orders.
    """
    return len(self._book[interval][is_ask])


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
    assert index < len(self._book[interval][is_ask]), "auction: no such order"
    return self._book[interval][is_ask][index]


@external
@view
def orders(interval: uint256, is_ask: bool) -> DynArray[Order, MAX_ORDERS]:
    """
    @dev All orders on one side of an interval's book.
    @param interval Index of the market interval.
    @param is_ask True for asks, False for bids.
    @return DynArray The orders in submission order.
    """
    return self._book[interval][is_ask]


@external
@view
def gate_timestamp(interval: uint256) -> uint256:
    """
    @dev First block timestamp at which `interval` takes no orders and
         may be cleared.
    @param interval Index of the market interval.
    @return uint256 The gate closure time. [s since the Unix epoch]
    """
    return self._gate_timestamp(interval)


@external
@view
def interval_end_timestamp(interval: uint256) -> uint256:
    """
    @dev End of `interval`, when its meter readings are complete.
    @param interval Index of the market interval.
    @return uint256 The end time. [s since the Unix epoch]
    """
    return start_timestamp + (interval + 1) * interval_s


@internal
@view
def _gate_timestamp(interval: uint256) -> uint256:
    """
    @dev Gate closure time of `interval`.
    @param interval Index of the market interval.
    @return uint256 The gate closure time. [s since the Unix epoch]
    """
    return start_timestamp + interval * interval_s - gate_closure_s


@internal
@pure
def _check_priority(book: DynArray[Order, MAX_ORDERS], priority: DynArray[uint256, MAX_ORDERS], descending: bool):
    """
    @dev Reverts unless `priority` lists every index of `book` once,
         sorted by price (descending for bids, ascending for asks)
         and by index among equal prices.
    @param book One side of a book, in submission order.
    @param priority The claimed priority order of `book`'s indices.
    @param descending True for bids, False for asks.
    """
    assert len(priority) == len(book), "auction: order length mismatch"
    seen: bool[MAX_ORDERS] = empty(bool[MAX_ORDERS])
    for rank: uint256 in range(len(priority), bound=MAX_ORDERS):
        index: uint256 = priority[rank]
        assert index < len(book), "auction: order index out of range"
        assert not seen[index], "auction: order index repeated"
        seen[index] = True
        if rank != 0:
            previous: uint256 = priority[rank - 1]
            previous_price: uint256 = book[previous].price_wei_per_wh
            price: uint256 = book[index].price_wei_per_wh
            in_priority: bool = previous < index
            if previous_price != price:
                in_priority = (previous_price > price) == descending
            assert in_priority, "auction: order not sorted"


@internal
def _record_fills(
    interval: uint256,
    book: DynArray[Order, MAX_ORDERS],
    priority: DynArray[uint256, MAX_ORDERS],
    fill_wh: uint256[MAX_ORDERS],
    is_ask: bool,
):
    """
    @dev Stores the position of every filled order of one side and
         logs a `Trade` for it.
    @param interval Index of the market interval.
    @param book One side of the book, in submission order.
    @param priority That side's verified priority order.
    @param fill_wh Filled energy by priority rank. [Wh]
    @param is_ask True for asks (positions > 0), False for bids (< 0).
    """
    for rank: uint256 in range(len(priority), bound=MAX_ORDERS):
        if fill_wh[rank] == 0:
            break
        account: address = book[priority[rank]].account
        position: int256 = convert(fill_wh[rank], int256)
        if not is_ask:
            position = -position
        self.position_wh[interval][account] = position
        log Trade(interval=interval, account=account, position_wh=position)
