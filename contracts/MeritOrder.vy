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
        Shared modules: `access.vy` (registry roles, price cap),
        `gate.vy` (interval timing), `escrow.vy` (settlement binding)
        and `book.vy`; their reasons carry their own prefixes
        (`access:`, `gate:`, `escrow:`, `book:`).
        Functions:
        - `bind_settlement`, `post_demand` (`external` functions),
        - `submit_offer`, `submit_signed_orders` (`external` functions),
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
    book.MAX_ORDERS,
    book.MAX_ENERGY_WH,
    book.MAX_PRICE_WEI_PER_WH,
    book.cleared,
)


# @dev Offers are the asks of the interval's book (`book.vy`); it has
# no bids.
_OFFERS: constant(bool) = True


# @dev Packed outcome word of one interval (`book._outcome_word`), zero
# until it clears: bits [0, 80) marginal price [wei/Wh], [80, 144)
# volume [Wh], bit 144 set once cleared.
_OUTCOME_PRICE_MASK: constant(uint256) = 2**80 - 1
_OUTCOME_VOLUME_SHIFT: constant(uint256) = 80
_OUTCOME_VOLUME_MASK: constant(uint256) = 2**64 - 1
_OUTCOME_CLEARED: constant(uint256) = 2**144


# @dev Outcome of dispatching offers ranked by priority: marginal price
# [wei/Wh], volume [Wh] and each offer's dispatched energy [Wh] by
# priority rank.
struct Matching:
    price_wei_per_wh: uint256
    volume_wh: uint256
    fill_wh: uint256[book.MAX_ORDERS]


# @dev Energy the operator buys in each interval. [Wh]
demand_wh: public(HashMap[uint256, uint256])


# @dev Operator that posted each interval's demand and pays for it.
buyer: public(HashMap[uint256, address])


# @dev Emitted when the operator posts an interval's demand.
event DemandPosted:
    interval: indexed(uint256)
    buyer: indexed(address)
    demand_wh: uint256


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
def post_demand(interval: uint256, demand_wh: uint256):
    """
    @dev Posts the energy the caller buys in `interval`, once, and
         locks demand_wh * price cap of its free credit.
    @param interval Index of the market interval.
    @param demand_wh Energy to buy; 1 to `MAX_ENERGY_WH`. [Wh]
    """
    # checks
    access._check_operator(msg.sender)
    assert demand_wh != 0, "merit_order: zero demand"
    assert demand_wh <= book.MAX_ENERGY_WH, "merit_order: demand above limit"
    gate._check_before_gate(interval)
    assert self.demand_wh[interval] == 0, "merit_order: demand exists"
    escrow._check_bound()

    # effects
    self.demand_wh[interval] = demand_wh
    self.buyer[interval] = msg.sender
    log DemandPosted(interval=interval, buyer=msg.sender, demand_wh=demand_wh)

    # interactions
    extcall escrow.settlement.lock(msg.sender, interval, demand_wh, access.price_cap_wei_per_wh)


@external
def submit_offer(interval: uint256, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Places the caller's single offer for `interval`.
    @param interval Index of the market interval.
    @param energy_wh Energy offered; 1 to `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Limit price; 1 to the price cap. [wei/Wh]
    """
    access._check_prosumer(msg.sender)
    book._submit_order(interval, msg.sender, _OFFERS, energy_wh, price_wei_per_wh)


@external
def submit_signed_orders(interval: uint256, orders: DynArray[book.SignedOrder, book.MAX_ORDERS]):
    """
    @dev Places offers for `interval` that their prosumers signed as
         EIP-712 typed data, relayed by the caller, as
         `book.submit_signed_orders` does for the double auctions; a
         signed bid is skipped with "book: offers only" (the operator's
         demand is the only buyer).
    @param interval Index of the market interval of every offer.
    @param orders The signed offers: side (ask), energy [Wh], limit
           price [wei/Wh] and the signature (v, r, s).
    """
    book._submit_signed_orders(interval, orders, True)


@external
def clear(
    interval: uint256, offer_order: DynArray[uint256, book.MAX_ORDERS], price_wei_per_wh: uint256, volume_wh: uint256
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
    accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][_OFFERS]
    offers: uint256[book.MAX_ORDERS] = book._ranked(interval, accounts, offer_order, False)
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
    accounts: DynArray[address, book.MAX_ORDERS] = book._accounts[interval][_OFFERS]
    offers: uint256[book.MAX_ORDERS] = book._sorted(interval, accounts, False)
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
    return len(book._accounts[interval][_OFFERS])


@external
@view
def order(interval: uint256, index: uint256) -> book.Order:
    """
    @dev One offer of an interval's book.
    @param interval Index of the market interval.
    @param index Place of the offer in submission order.
    @return Order The account, energy [Wh] and price [wei/Wh].
    """
    return book._order_at(interval, _OFFERS, index)


@external
@view
def orders(interval: uint256) -> DynArray[book.Order, book.MAX_ORDERS]:
    """
    @dev All offers of an interval's book.
    @param interval Index of the market interval.
    @return DynArray The offers in submission order.
    """
    return book._orders(interval, _OFFERS)


@external
@view
def clearing_price_wei_per_wh(interval: uint256) -> uint256:
    """
    @dev Marginal price of a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The marginal price. [wei/Wh]
    """
    return book._outcome_word[interval] & _OUTCOME_PRICE_MASK


@external
@view
def cleared_volume_wh(interval: uint256) -> uint256:
    """
    @dev Energy dispatched in a cleared interval; 0 before it clears.
    @param interval Index of the market interval.
    @return uint256 The dispatched energy. [Wh]
    """
    return (book._outcome_word[interval] >> _OUTCOME_VOLUME_SHIFT) & _OUTCOME_VOLUME_MASK


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
def settlement_terms(interval: uint256, account: address) -> escrow.SettlementTerms:
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
    outcome: uint256 = book._outcome_word[interval]
    if outcome == 0:
        return empty(escrow.SettlementTerms)
    position_wh: int256 = self._position_wh(interval, account)
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
def _position_wh(interval: uint256, account: address) -> int256:
    """
    @dev Signed position of `account` in a cleared `interval`.
    @param interval Index of the market interval.
    @param account The account to look up.
    @return int256 The dispatched energy of a seller, minus the volume
            for the buyer. [Wh]
    """
    if account == self.buyer[interval]:
        return -convert((book._outcome_word[interval] >> _OUTCOME_VOLUME_SHIFT) & _OUTCOME_VOLUME_MASK, int256)
    return convert((book._order_word[interval][account] >> book.ORDER_FILL_SHIFT) & book.ORDER_ENERGY_MASK, int256)


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
def _dispatch(offers: uint256[book.MAX_ORDERS], count: uint256, demand_wh: uint256) -> Matching:
    """
    @dev Dispatches offers ranked by priority: each takes the smaller
         of its energy and the demand left; the marginal price is the
         price of the last dispatched offer.
    @param offers Offer entries (`book.RANKED_*`) by priority rank.
    @param count Number of offers.
    @param demand_wh Energy to buy. [Wh]
    @return Matching Marginal price [wei/Wh], volume [Wh] and fills [Wh].
    """
    matching: Matching = empty(Matching)
    demand_left_wh: uint256 = demand_wh
    for rank: uint256 in range(count, bound=book.MAX_ORDERS):
        if demand_left_wh == 0:
            break
        fill_wh: uint256 = min(offers[rank] & book.ORDER_ENERGY_MASK, demand_left_wh)
        demand_left_wh -= fill_wh
        matching.volume_wh += fill_wh
        matching.price_wei_per_wh = (offers[rank] >> book.ORDER_PRICE_SHIFT) & book.ORDER_PRICE_MASK
        matching.fill_wh[rank] = fill_wh
    return matching


@internal
def _record_clearing(
    interval: uint256, accounts: DynArray[address, book.MAX_ORDERS], offers: uint256[book.MAX_ORDERS], matching: Matching
):
    """
    @dev Stores the outcome and every dispatched offer's fill and logs
         their `Trade` events, then `Cleared`.
    @param interval Index of the market interval.
    @param accounts The offers' accounts, in submission order.
    @param offers Offer entries (`book.RANKED_*`) by priority rank.
    @param matching The outcome of `_dispatch` on these offers.
    """
    book._outcome_word[interval] = (
        matching.price_wei_per_wh | matching.volume_wh << _OUTCOME_VOLUME_SHIFT | _OUTCOME_CLEARED
    )
    for rank: uint256 in range(len(accounts), bound=book.MAX_ORDERS):
        fill_wh: uint256 = matching.fill_wh[rank]
        if fill_wh == 0:
            break
        entry: uint256 = offers[rank]
        account: address = accounts[(entry >> book.RANKED_INDEX_SHIFT) & book.RANKED_INDEX_MASK]
        word: uint256 = book._record_fill(interval, account, entry, fill_wh)
        log Trade(interval=interval, account=account, position_wh=book._position_wh(word))
    log Cleared(
        interval=interval,
        price_wei_per_wh=matching.price_wei_per_wh,
        volume_wh=matching.volume_wh,
        demand_wh=self.demand_wh[interval],
    )
