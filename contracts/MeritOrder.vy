# pragma version ~=0.4.3
"""
@title Merit-Order Dispatch Auction for Energy
@custom:contract-name merit_order
@license BSD-3-Clause
@notice One-sided auction per market interval: the operator posts the
        energy it needs, prosumers offer energy at a limit price until
        the interval's gate closes, and any prosumer or the operator
        then clears the interval once, dispatching the cheapest offers
        first until the demand is met. Two clearing modes share the
        dispatch code and so give the same outcome: `clear` takes the
        offers sorted off-chain and the marginal price and volume it
        claims, checks the order in O(n) and reverts unless the claim
        is the outcome (cheaper for large books); `clear_onchain` sorts
        the offers itself by insertion sort in O(n^2) (cheaper for
        small books: no order in the calldata). Every dispatched offer is paid the marginal price, the
        limit price of the last (most expensive) dispatched offer, as
        in the uniform-price merit-order dispatch of wholesale
        electricity markets (Kirschen and Strbac, 2019, ch. 2).
        Who pays: the operator that posted the demand buys all
        dispatched energy on behalf of the feeder's load, at the
        marginal price; its position is settled without a meter
        through `Settlement.settle_operator`. Sellers' values sum to
        exactly minus the operator's.
        Interval k starts at `start_timestamp + k * interval_s`; its gate
        closes `gate_closure_s` seconds earlier.
        Functions:
        - `bind_settlement`, `post_demand` (`external` functions),
        - `submit_offer` (`external` function),
        - `clear`, `clear_onchain` (`external` functions),
        - `demand_wh`, `buyer`, `order_count`, `order`, `orders`
          (`external` `view` functions),
        - `gate_timestamp`, `interval_end_timestamp` (`external` `view` functions),
        - `cleared`, `clearing_price_wei_per_wh`, `cleared_volume_wh`,
          `position_wh` (`external` `view` functions),
        - `settlement_terms` (`external` `view` function).
        Dispatch rule: offers by price ascending, equal prices by
        submission index ascending; each takes the smaller of its energy
        and the demand left. An interval without demand or offers clears
        at price 0 and volume 0.
        Reference: D. Kirschen, G. Strbac, "Fundamentals of Power System
        Economics", 2nd ed., Wiley, 2019.
        Escrow: posting a demand locks demand_wh * price cap of the
        operator's free credit in the bound `Settlement.vy` (`lock`; the
        operator pays no fee), or the demand reverts: the marginal price
        never exceeds the cap nor the volume the demand. Once the
        interval is cleared anyone may `Settlement.release` the lock
        down to the dispatched value; `Settlement.settle_operator`
        releases the rest. Demand and offers revert until the deployer
        has bound the settlement (`bind_settlement`, once).
@custom:security An interval so far in the future that its timestamps
                 overflow uint256 reverts without a reason string. The
                 buyer's position is minus the volume even if it also
                 holds the prosumer role and offered: keep operator and
                 prosumer accounts apart.
"""


# @dev Role queries against the market's registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view


# @dev Escrow calls into the market's settlement (see `Settlement.vy`).
interface Settlement:
    def auction() -> address: view
    def lock(account: address, interval: uint256, energy_wh: uint256, price_wei_per_wh: uint256): nonpayable


# @dev Registry role bit of the operator (see `Registry.vy`).
_ROLE_OPERATOR: constant(uint256) = 1


# @dev Registry role bit of prosumers (see `Registry.vy`).
_ROLE_PROSUMER: constant(uint256) = 2


# @dev Most offers in one interval.
MAX_ORDERS: public(constant(uint256)) = 256


# @dev Largest energy of one offer and of one interval's demand. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest price cap the constructor accepts. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Packed offer word of one account in one interval, zero while it
# has no offer: bits [0, 40) energy [Wh], [40, 120) limit price
# [wei/Wh], [120, 160) energy dispatched [Wh].
_ORDER_ENERGY_MASK: constant(uint256) = 2**40 - 1
_ORDER_PRICE_SHIFT: constant(uint256) = 40
_ORDER_PRICE_MASK: constant(uint256) = 2**80 - 1
_ORDER_FILL_SHIFT: constant(uint256) = 120


# @dev Packed outcome word of one interval, zero until it clears:
# bits [0, 80) marginal price [wei/Wh], [80, 144) volume [Wh], bit 144
# set once cleared.
_OUTCOME_PRICE_MASK: constant(uint256) = 2**80 - 1
_OUTCOME_VOLUME_SHIFT: constant(uint256) = 80
_OUTCOME_VOLUME_MASK: constant(uint256) = 2**64 - 1
_OUTCOME_CLEARED: constant(uint256) = 2**144


# @dev Entry of one offer in the offers ranked by priority, as `clear`
# and `clear_onchain` hand it to the dispatch: bits [0, 161) its offer
# word (not yet dispatched), [161, 169) its index (MAX_ORDERS = 2**8)
# and, in the sort keys of `clear_onchain` only, [169, 249) its price
# [wei/Wh], so that ascending keys are priority order.
_RANKED_WORD_MASK: constant(uint256) = 2**161 - 1
_RANKED_INDEX_SHIFT: constant(uint256) = 161
_RANKED_INDEX_MASK: constant(uint256) = MAX_ORDERS - 1
_RANKED_PRICE_SHIFT: constant(uint256) = 169


# @dev One offer of a book.
struct Order:
    account: address
    energy_wh: uint256
    price_wei_per_wh: uint256


# @dev What settling one account needs from one interval (see
# `Settlement.vy`).
struct SettlementTerms:
    cleared: bool
    position_wh: int256
    value_wei: int256
    end_timestamp: uint256


# @dev Outcome of dispatching offers ranked by priority: marginal price
# [wei/Wh], volume [Wh] and each offer's dispatched energy [Wh] by
# priority rank.
struct Matching:
    price_wei_per_wh: uint256
    volume_wh: uint256
    fill_wh: uint256[MAX_ORDERS]


# @dev Registry that grants the prosumer and operator roles.
registry: public(immutable(Registry))


# @dev Start of interval 0. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev Length of one market interval. [s]
interval_s: public(immutable(uint256))


# @dev How long before its start an interval's gate closes. [s]
gate_closure_s: public(immutable(uint256))


# @dev Highest price an offer may carry. [wei/Wh]
price_cap_wei_per_wh: public(immutable(uint256))


# @dev Account that deployed this contract and binds its settlement.
deployer: public(immutable(address))


# @dev Settlement that escrows bids; the zero address until bound.
settlement: public(Settlement)


# @dev Energy the operator buys in each interval. [Wh]
demand_wh: public(HashMap[uint256, uint256])


# @dev Operator that posted each interval's demand and pays for it.
buyer: public(HashMap[uint256, address])


# @dev Accounts with an offer in each interval, in submission order.
_accounts: HashMap[uint256, DynArray[address, MAX_ORDERS]]


# @dev Packed offer word of each account per interval (`_ORDER_*`).
_order_word: HashMap[uint256, HashMap[address, uint256]]


# @dev Packed outcome word of each interval (`_OUTCOME_*`).
_outcome_word: HashMap[uint256, uint256]


# @dev Emitted when the operator posts an interval's demand.
event DemandPosted:
    interval: indexed(uint256)
    buyer: indexed(address)
    demand_wh: uint256


# @dev Emitted for every accepted offer; `index` is its place in the book.
event OrderSubmitted:
    interval: indexed(uint256)
    account: indexed(address)
    is_ask: bool
    energy_wh: uint256
    price_wei_per_wh: uint256
    index: uint256


# @dev Emitted once per dispatched offer when an interval clears.
event Trade:
    interval: indexed(uint256)
    account: indexed(address)
    position_wh: int256


# @dev Emitted when an interval clears, after its `Trade` events.
event Cleared:
    interval: indexed(uint256)
    price_wei_per_wh: uint256
    volume_wh: uint256
    demand_wh: uint256


# @dev Emitted once, when the deployer binds the settlement.
event SettlementBound:
    settlement: indexed(address)


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
    @param price_cap_wei_per_wh_ Highest offer price; positive and at
           most `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    """
    assert interval_s_ != 0, "merit_order: zero interval"
    assert gate_closure_s_ <= start_timestamp_, "merit_order: gate closure before epoch"
    assert price_cap_wei_per_wh_ != 0 and price_cap_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH, "merit_order: price cap out of range"
    registry = registry_
    start_timestamp = start_timestamp_
    interval_s = interval_s_
    gate_closure_s = gate_closure_s_
    price_cap_wei_per_wh = price_cap_wei_per_wh_
    deployer = msg.sender


@external
def bind_settlement(settlement_: Settlement):
    """
    @dev Binds the settlement that escrows bids, once; the settlement
         is deployed after this contract because it names it.
    @param settlement_ A settlement whose `auction` is this contract.
    """
    # checks
    assert msg.sender == deployer, "merit_order: caller is not the deployer"
    assert self.settlement.address == empty(address), "merit_order: settlement already bound"
    assert staticcall settlement_.auction() == self, "merit_order: settlement of another mechanism"

    # effects
    self.settlement = settlement_
    log SettlementBound(settlement=settlement_.address)


@external
def post_demand(interval: uint256, demand_wh: uint256):
    """
    @dev Posts the energy the caller buys in `interval`, once, and
         locks demand_wh * price cap of its free credit.
    @param interval Index of the market interval.
    @param demand_wh Energy to buy; 1 to `MAX_ENERGY_WH`. [Wh]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "merit_order: caller is not operator"
    assert demand_wh != 0, "merit_order: zero demand"
    assert demand_wh <= MAX_ENERGY_WH, "merit_order: demand above limit"
    assert block.timestamp < self._gate_timestamp(interval), "merit_order: gate closed"
    assert self.demand_wh[interval] == 0, "merit_order: demand exists"
    assert self.settlement.address != empty(address), "merit_order: settlement not bound"

    # effects
    self.demand_wh[interval] = demand_wh
    self.buyer[interval] = msg.sender
    log DemandPosted(interval=interval, buyer=msg.sender, demand_wh=demand_wh)

    # interactions
    extcall self.settlement.lock(msg.sender, interval, demand_wh, price_cap_wei_per_wh)


@external
def submit_offer(interval: uint256, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Places the caller's single offer for `interval`.
    @param interval Index of the market interval.
    @param energy_wh Energy offered; 1 to `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Limit price; 1 to the price cap. [wei/Wh]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "merit_order: caller is not a prosumer"
    assert energy_wh != 0, "merit_order: zero energy"
    assert energy_wh <= MAX_ENERGY_WH, "merit_order: energy above limit"
    assert price_wei_per_wh != 0, "merit_order: zero price"
    assert price_wei_per_wh <= price_cap_wei_per_wh, "merit_order: price above cap"
    assert block.timestamp < self._gate_timestamp(interval), "merit_order: gate closed"
    assert self._order_word[interval][msg.sender] == 0, "merit_order: offer exists"
    index: uint256 = len(self._accounts[interval])
    assert index < MAX_ORDERS, "merit_order: book full"
    assert self.settlement.address != empty(address), "merit_order: settlement not bound"

    # effects
    self._order_word[interval][msg.sender] = energy_wh | price_wei_per_wh << _ORDER_PRICE_SHIFT
    self._accounts[interval].append(msg.sender)
    log OrderSubmitted(
        interval=interval,
        account=msg.sender,
        is_ask=True,
        energy_wh=energy_wh,
        price_wei_per_wh=price_wei_per_wh,
        index=index,
    )


@external
def clear(
    interval: uint256, offer_order: DynArray[uint256, MAX_ORDERS], price_wei_per_wh: uint256, volume_wh: uint256
):
    """
    @dev Dispatches `interval`'s offers once its gate has closed with
         the priority order sorted off-chain and the outcome computed
         off-chain; the first valid clearing wins. Reverts unless the
         order is sorted and the claimed marginal price and volume are
         those of the dispatch.
    @param interval Index of the market interval.
    @param offer_order Book indices of all offers, lowest price first,
           equal prices by index.
    @param price_wei_per_wh Claimed marginal price. [wei/Wh]
    @param volume_wh Claimed dispatched energy. [Wh]
    """
    # checks
    self._check_clearable(interval)
    accounts: DynArray[address, MAX_ORDERS] = self._accounts[interval]
    offers: uint256[MAX_ORDERS] = self._ranked(interval, accounts, offer_order)
    matching: Matching = self._dispatch(offers, len(accounts), self.demand_wh[interval])
    assert matching.price_wei_per_wh == price_wei_per_wh, "merit_order: wrong clearing price"
    assert matching.volume_wh == volume_wh, "merit_order: wrong cleared volume"

    # effects
    self._record_clearing(interval, accounts, offers, matching)


@external
def clear_onchain(interval: uint256):
    """
    @dev Dispatches `interval`'s offers once its gate has closed,
         sorting them on-chain; the same dispatch and outcome as
         `clear` with the sorted order. The first clearing wins.
    @param interval Index of the market interval.
    """
    # checks
    self._check_clearable(interval)
    accounts: DynArray[address, MAX_ORDERS] = self._accounts[interval]
    offers: uint256[MAX_ORDERS] = self._sorted(interval, accounts)
    matching: Matching = self._dispatch(offers, len(accounts), self.demand_wh[interval])

    # effects
    self._record_clearing(interval, accounts, offers, matching)


@external
@view
def order_count(interval: uint256) -> uint256:
    """
    @dev Number of offers in an interval's book.
    @param interval Index of the market interval.
    @return uint256 The number of offers.
    """
    return len(self._accounts[interval])


@external
@view
def order(interval: uint256, index: uint256) -> Order:
    """
    @dev One offer of an interval's book.
    @param interval Index of the market interval.
    @param index Place of the offer in submission order.
    @return Order The account, energy [Wh] and price [wei/Wh].
    """
    assert index < len(self._accounts[interval]), "merit_order: no such order"
    return self._order(interval, self._accounts[interval][index])


@external
@view
def orders(interval: uint256) -> DynArray[Order, MAX_ORDERS]:
    """
    @dev All offers of an interval's book.
    @param interval Index of the market interval.
    @return DynArray The offers in submission order.
    """
    book: DynArray[Order, MAX_ORDERS] = []
    for account: address in self._accounts[interval]:
        book.append(self._order(interval, account))
    return book


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
@view
def clearing_price_wei_per_wh(interval: uint256) -> uint256:
    """
    @dev Marginal price of a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The marginal price. [wei/Wh]
    """
    return self._outcome_word[interval] & _OUTCOME_PRICE_MASK


@external
@view
def cleared_volume_wh(interval: uint256) -> uint256:
    """
    @dev Energy dispatched in a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The dispatched energy. [Wh]
    """
    return (self._outcome_word[interval] >> _OUTCOME_VOLUME_SHIFT) & _OUTCOME_VOLUME_MASK


@external
@view
def position_wh(interval: uint256, account: address) -> int256:
    """
    @dev Cleared position of `account` in `interval`; 0 without one.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 Positive = sold (dispatched offer), negative =
            bought (the interval's buyer). [Wh]
    """
    return self._position_wh(interval, account)


@external
@view
def settlement_terms(interval: uint256, account: address) -> SettlementTerms:
    """
    @dev Everything the settlement of `account` for `interval` needs,
         in one call. All fields but `cleared` are zero while the
         interval is not cleared.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return SettlementTerms Whether the interval is cleared, the
            account's position [Wh] (positive = sold), its value at the
            marginal price [wei] (positive = received) and the
            interval's end [s since the Unix epoch].
    """
    outcome: uint256 = self._outcome_word[interval]
    if outcome == 0:
        return empty(SettlementTerms)
    position_wh: int256 = self._position_wh(interval, account)
    # |position| <= MAX_ENERGY_WH and price <= MAX_PRICE_WEI_PER_WH: the
    # product stays under 10**36.
    return SettlementTerms(
        cleared=True,
        position_wh=position_wh,
        value_wei=unsafe_mul(convert(outcome & _OUTCOME_PRICE_MASK, int256), position_wh),
        end_timestamp=self._interval_end_timestamp(interval),
    )


@external
@view
def gate_timestamp(interval: uint256) -> uint256:
    """
    @dev First block timestamp at which `interval` takes no demand or
         offers and may be cleared.
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
    return self._interval_end_timestamp(interval)


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
@view
def _interval_end_timestamp(interval: uint256) -> uint256:
    """
    @dev End time of `interval`.
    @param interval Index of the market interval.
    @return uint256 The end time. [s since the Unix epoch]
    """
    return start_timestamp + (interval + 1) * interval_s


@internal
@view
def _order(interval: uint256, account: address) -> Order:
    """
    @dev Unpacked offer of `account` in `interval`.
    @param interval Index of the market interval.
    @param account An account with an offer in `interval`.
    @return Order The account, energy [Wh] and price [wei/Wh].
    """
    word: uint256 = self._order_word[interval][account]
    return Order(
        account=account,
        energy_wh=word & _ORDER_ENERGY_MASK,
        price_wei_per_wh=(word >> _ORDER_PRICE_SHIFT) & _ORDER_PRICE_MASK,
    )


@internal
@view
def _position_wh(interval: uint256, account: address) -> int256:
    """
    @dev Signed position of `account` in a cleared `interval`.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 The dispatched energy of a seller, minus the volume
            for the buyer. [Wh]
    """
    if account == self.buyer[interval]:
        return -convert((self._outcome_word[interval] >> _OUTCOME_VOLUME_SHIFT) & _OUTCOME_VOLUME_MASK, int256)
    return convert((self._order_word[interval][account] >> _ORDER_FILL_SHIFT) & _ORDER_ENERGY_MASK, int256)


@internal
@view
def _check_clearable(interval: uint256):
    """
    @dev Reverts unless the caller is a prosumer or the operator, the
         gate of `interval` has closed and `interval` is not cleared.
    @param interval Index of the market interval.
    """
    assert (
        staticcall registry.has_role(msg.sender, _ROLE_PROSUMER)
        or staticcall registry.has_role(msg.sender, _ROLE_OPERATOR)
    ), "merit_order: caller is neither prosumer nor operator"
    assert block.timestamp >= self._gate_timestamp(interval), "merit_order: gate open"
    assert self._outcome_word[interval] == 0, "merit_order: already cleared"


@internal
@view
def _ranked(
    interval: uint256, accounts: DynArray[address, MAX_ORDERS], priority: DynArray[uint256, MAX_ORDERS]
) -> uint256[MAX_ORDERS]:
    """
    @dev Reverts unless `priority` lists every index of `accounts`
         once, sorted by price ascending and by index among equal
         prices. The sort is strict, so an index can only repeat where
         the order breaks: repeats are looked for there only.
    @param interval Index of the market interval.
    @param accounts The offers' accounts, in submission order.
    @param priority The claimed priority order of `accounts`' indices.
    @return uint256[MAX_ORDERS] The offers' entries (`_RANKED_*`) by
            priority rank.
    """
    assert len(priority) == len(accounts), "merit_order: order length mismatch"
    ranked: uint256[MAX_ORDERS] = empty(uint256[MAX_ORDERS])
    previous: uint256 = 0
    previous_price: uint256 = 0
    for rank: uint256 in range(len(priority), bound=MAX_ORDERS):
        index: uint256 = priority[rank]
        assert index < len(accounts), "merit_order: order index out of range"
        word: uint256 = self._order_word[interval][accounts[index]]
        price: uint256 = (word >> _ORDER_PRICE_SHIFT) & _ORDER_PRICE_MASK
        if rank != 0 and (previous_price > price or (previous_price == price and previous >= index)):
            for earlier: uint256 in range(rank, bound=MAX_ORDERS):
                assert priority[earlier] != index, "merit_order: order index repeated"
            raise "merit_order: order not sorted"
        ranked[rank] = index << _RANKED_INDEX_SHIFT | word
        previous = index
        previous_price = price
    return ranked


@internal
@view
def _sorted(interval: uint256, accounts: DynArray[address, MAX_ORDERS]) -> uint256[MAX_ORDERS]:
    """
    @dev Sorts the offers on-chain by insertion sort of keys
         (`_RANKED_*`): by price ascending and by index among equal
         prices, the order `_ranked` checks. Keys are distinct, so the
         sort is strict.
    @param interval Index of the market interval.
    @param accounts The offers' accounts, in submission order.
    @return uint256[MAX_ORDERS] The offers' entries (`_RANKED_*`) by
            priority rank.
    """
    keys: uint256[MAX_ORDERS] = empty(uint256[MAX_ORDERS])
    for index: uint256 in range(len(accounts), bound=MAX_ORDERS):
        word: uint256 = self._order_word[interval][accounts[index]]
        price: uint256 = (word >> _ORDER_PRICE_SHIFT) & _ORDER_PRICE_MASK
        key: uint256 = price << _RANKED_PRICE_SHIFT | index << _RANKED_INDEX_SHIFT | word
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
@pure
def _dispatch(offers: uint256[MAX_ORDERS], count: uint256, demand_wh: uint256) -> Matching:
    """
    @dev Dispatches offers ranked by priority: each takes the smaller
         of its energy and the demand left; the marginal price is the
         price of the last dispatched offer.
    @param offers Offer entries (`_RANKED_*`) by priority rank.
    @param count Number of offers.
    @param demand_wh Energy to buy. [Wh]
    @return Matching Marginal price [wei/Wh], volume [Wh] and fills [Wh].
    """
    matching: Matching = empty(Matching)
    demand_left_wh: uint256 = demand_wh
    for rank: uint256 in range(count, bound=MAX_ORDERS):
        if demand_left_wh == 0:
            break
        fill_wh: uint256 = min(offers[rank] & _ORDER_ENERGY_MASK, demand_left_wh)
        demand_left_wh -= fill_wh
        matching.volume_wh += fill_wh
        matching.price_wei_per_wh = (offers[rank] >> _ORDER_PRICE_SHIFT) & _ORDER_PRICE_MASK
        matching.fill_wh[rank] = fill_wh
    return matching


@internal
def _record_clearing(
    interval: uint256, accounts: DynArray[address, MAX_ORDERS], offers: uint256[MAX_ORDERS], matching: Matching
):
    """
    @dev Stores the outcome and every dispatched offer's fill and logs
         their `Trade` events, then `Cleared`.
    @param interval Index of the market interval.
    @param accounts The offers' accounts, in submission order.
    @param offers Offer entries (`_RANKED_*`) by priority rank.
    @param matching The outcome of `_dispatch` on these offers.
    """
    self._outcome_word[interval] = (
        matching.price_wei_per_wh | matching.volume_wh << _OUTCOME_VOLUME_SHIFT | _OUTCOME_CLEARED
    )
    for rank: uint256 in range(len(accounts), bound=MAX_ORDERS):
        fill_wh: uint256 = matching.fill_wh[rank]
        if fill_wh == 0:
            break
        entry: uint256 = offers[rank]
        account: address = accounts[(entry >> _RANKED_INDEX_SHIFT) & _RANKED_INDEX_MASK]
        self._order_word[interval][account] = entry & _RANKED_WORD_MASK | fill_wh << _ORDER_FILL_SHIFT
        log Trade(interval=interval, account=account, position_wh=convert(fill_wh, int256))
    log Cleared(
        interval=interval,
        price_wei_per_wh=matching.price_wei_per_wh,
        volume_wh=matching.volume_wh,
        demand_wh=self.demand_wh[interval],
    )
