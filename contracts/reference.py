"""Reference implementation of the market rules in plain Python.

Each function is pure: a book in, trades and prices out.
:func:`clear_uniform` follows ``DoubleAuction.clear``,
:func:`clear_pay_as_bid` ``PayAsBid.clear``,
:func:`clear_merit_order` ``MeritOrder.clear``, :func:`clear_vickrey`
``VickreyAuction.finalise``, :func:`clear_english` ``EnglishAuction.bid``
and :func:`settle`
``Settlement.post_reading`` to the wei, :func:`reading_limit_reason` its
checks of a reading against the registered limits, :func:`order_limit_wh`
and :func:`non_delivery_wei` its order bound and the charge for
undelivered energy; :func:`escrow_wei`,
:func:`obligation_wei` and :func:`released_wei` follow the escrow of
``Settlement.lock`` and ``Settlement.release``, :func:`sold_sources`,
:func:`sold_mix` and :func:`consumed_mix` its source tracking. The
contract tests check the chain against them. Signs: positions are positive when sold
(exported) and negative when bought (imported); payments are positive
when received.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from gridledger.units import SECONDS_PER_HOUR


@dataclass(frozen=True)
class Order:
    """One order of a book side, in submission order.

    Attributes
    ----------
    account : str
        Address of the prosumer.
    energy_wh : int
        Energy offered (ask) or wanted (bid). [Wh]
    price_wei_per_wh : int
        Limit price. [wei/Wh]
    """

    account: str
    energy_wh: int
    price_wei_per_wh: int


@dataclass(frozen=True)
class Clearing:
    """Result of a uniform-price clearing.

    Attributes
    ----------
    price_wei_per_wh : int
        Uniform price, 0 if nothing trades. [wei/Wh]
    volume_wh : int
        Energy traded. [Wh]
    positions_wh : dict of str to int
        Position of every filled account, + = sold, - = bought. [Wh]
    """

    price_wei_per_wh: int
    volume_wh: int
    positions_wh: dict[str, int]


@dataclass(frozen=True)
class Match:
    """One matched bid/ask pair of a double auction.

    Attributes
    ----------
    buyer, seller : str
        Addresses of the bid's and the ask's account.
    energy_wh : int
        Energy the pair trades. [Wh]
    bid_price_wei_per_wh, ask_price_wei_per_wh : int
        Limit prices of the bid and the ask. [wei/Wh]
    """

    buyer: str
    seller: str
    energy_wh: int
    bid_price_wei_per_wh: int
    ask_price_wei_per_wh: int


@dataclass(frozen=True)
class DiscriminatoryClearing:
    """Result of a pay-as-bid (pairwise midpoint) clearing.

    Attributes
    ----------
    volume_wh : int
        Energy traded. [Wh]
    positions_wh : dict of str to int
        Position of every filled account, + = sold, - = bought. [Wh]
    values_wei : dict of str to int
        Money value of every filled account's trades, + = received. [wei]
    matches : tuple of (Match, int)
        Every matched pair in matching order with its payment. [wei]
    """

    volume_wh: int
    positions_wh: dict[str, int]
    values_wei: dict[str, int]
    matches: tuple[tuple[Match, int], ...]

    @property
    def turnover_wei(self) -> int:
        """Sum of all pair payments. [wei]"""
        return sum(value for _, value in self.matches)

    @property
    def average_price_wei_per_wh(self) -> int:
        """Volume-weighted average price, rounded down; 0 without a trade. [wei/Wh]"""
        return self.turnover_wei // self.volume_wh if self.volume_wh else 0


@dataclass(frozen=True)
class SettlementLine:
    """Payments of one prosumer for one interval; + = received. [wei]

    Attributes
    ----------
    p2p_wei : int
        Market payment: the position's money value.
    fee_wei : int
        Grid fee paid on energy bought in the market (>= 0).
    imbalance_wei : int
        Payment for metered minus cleared energy at grid prices.
    credit_delta_wei : int
        Change of the prosumer's credit: p2p - fee + imbalance, plus what
        the penalty pool covers of an imbalance payment owed to it.
    operator_delta_wei : int
        Change of the operator's credit: fee - imbalance, less the
        non-delivery penalty the seller paid into the penalty pool, plus
        what the penalty pool covers of a payment owed to the operator.
    pool_delta_wei : int
        Change of the market pool: -p2p.
    unpaid_wei : int
        Imbalance payment its payer could not afford (>= 0).
    penalty_pool_delta_wei : int
        Change of the penalty pool: penalty paid in less covered.
    covered_wei : int
        What the penalty pool paid the imbalance payee of what its payer
        left unpaid (>= 0).
    """

    p2p_wei: int
    fee_wei: int
    imbalance_wei: int
    credit_delta_wei: int
    operator_delta_wei: int
    pool_delta_wei: int
    unpaid_wei: int = 0
    penalty_pool_delta_wei: int = 0
    covered_wei: int = 0


READING_TOLERANCE_WH = 2
"""Allowance of each reading bound, as ``Settlement.READING_TOLERANCE_WH``. [Wh]"""


def reading_limit_reason(
    import_wh: int,
    export_wh: int,
    pv_wh: int,
    battery_wh: int,
    *,
    meter_rating_w: int,
    pv_w: int,
    battery_w: int,
    interval_s: int,
) -> str | None:
    """Revert reason ``Settlement.post_reading`` gives a reading outside its prosumer's limits, None within.

    Each bound is power x interval, rounded down to the Wh, plus
    :data:`READING_TOLERANCE_WH`; the export is bounded by PV energy plus
    battery discharge too. An unregistered prosumer has all limits 0.

    Parameters
    ----------
    import_wh, export_wh, pv_wh, battery_wh : int
        The reading's registers. [Wh]
    meter_rating_w, pv_w, battery_w : int
        Registered meter rating, PV peak and battery power. [W]
    interval_s : int
        Length of the market interval. [s]
    """
    def bound_wh(power_w: int) -> int:
        return power_w * interval_s // SECONDS_PER_HOUR + READING_TOLERANCE_WH

    checks = [
        (import_wh <= bound_wh(meter_rating_w), "settlement: import above meter rating"),
        (export_wh <= bound_wh(meter_rating_w), "settlement: export above meter rating"),
        (pv_wh <= bound_wh(pv_w), "settlement: PV above peak power"),
        (battery_wh <= bound_wh(battery_w), "settlement: battery above power"),
        (export_wh <= pv_wh + battery_wh + READING_TOLERANCE_WH, "settlement: export above PV and battery"),
    ]
    return next((reason for ok, reason in checks if not ok), None)


def order_limit_wh(*, is_ask: bool, meter_rating_w: int, pv_w: int, battery_w: int, interval_s: int) -> int:
    """Largest order a prosumer may place in one interval, as ``Settlement.order_limit_wh``. [Wh]

    A bid is bounded by the meter rating x interval, an ask (offer, lot)
    also by (PV peak + battery power) x interval, each power x interval
    rounded down to the Wh. An unregistered account (all limits 0) may
    order nothing.

    Parameters
    ----------
    is_ask : bool
        True for an ask, False for a bid.
    meter_rating_w, pv_w, battery_w : int
        Registered meter rating, PV peak and battery power. [W]
    interval_s : int
        Length of the market interval. [s]
    """
    def energy_wh(power_w: int) -> int:
        return power_w * interval_s // SECONDS_PER_HOUR

    if not is_ask:
        return energy_wh(meter_rating_w)
    return min(energy_wh(meter_rating_w), energy_wh(pv_w) + energy_wh(battery_w))


def non_delivery_wei(position_wh: int, value_wei: int, undelivered_wh: int, grid_buy_price_wei_per_wh: int,
                     penalty_wei_per_wh: int) -> int:
    """Charge for energy a seller sold and did not export, as ``Settlement._non_delivery_wei``. [wei]

    max(ceil(value x u / position), buy x u) + penalty x u: the seller returns
    what it was paid for the undelivered share u of its position, at least
    the grid's price of replacing it, plus the penalty; so the undelivered
    share always costs at least the penalty more than it earned.

    Parameters
    ----------
    position_wh : int
        The seller's cleared position; positive. [Wh]
    value_wei : int
        Its money value, + = received. [wei]
    undelivered_wh : int
        Sold energy not exported, max(0, position - export). [Wh]
    grid_buy_price_wei_per_wh, penalty_wei_per_wh : int
        Grid import price and non-delivery penalty. [wei/Wh]
    """
    if undelivered_wh <= 0:
        return 0
    refund_wei = -(-value_wei * undelivered_wh // position_wh) if value_wei > 0 else 0
    return max(refund_wei, grid_buy_price_wei_per_wh * undelivered_wh) + penalty_wei_per_wh * undelivered_wh


def priority(orders: Sequence[Order], *, is_ask: bool) -> list[int]:
    """Indices of ``orders`` in matching priority.

    Bids by price descending, asks by price ascending; equal prices keep
    submission order. This is the permutation ``DoubleAuction.clear``
    expects.
    """
    sign = 1 if is_ask else -1
    return sorted(range(len(orders)), key=lambda index: (sign * orders[index].price_wei_per_wh, index))


def batch_book(bids: Sequence[Order], asks: Sequence[Order],
               batch: Sequence[tuple[bool, Order]]) -> tuple[list[Order], list[Order]]:
    """The book a verified batch is cleared on (``DoubleAuction.clear_signed``): each side's stored orders in
    submission order, then that side's accepted signed orders, given as (is_ask, order), in batch order.

    Returns
    -------
    bids, asks : list of Order
        Each side in the index order ``clear_signed``'s priority order refers to.
    """
    return ([*bids, *(o for is_ask, o in batch if not is_ask)], [*asks, *(o for is_ask, o in batch if is_ask)])


def match_orders(bids: Sequence[Order], asks: Sequence[Order]) -> list[Match]:
    """Pairs of a double auction book in matching order.

    The best remaining bid and ask trade the smaller of their remaining
    energies while the bid price is at least the ask price; bids rank by
    price descending, asks by price ascending, ties by submission index.

    Parameters
    ----------
    bids, asks : sequence of Order
        Each side in submission order; an account appears at most once
        across both sides.

    Returns
    -------
    list of Match
        The matched pairs, marginal pair last.
    """
    accounts = [order.account for order in (*bids, *asks)]
    if len(set(accounts)) != len(accounts):
        raise ValueError("an account may place only one order per interval")
    bid_rank = [bids[index] for index in priority(bids, is_ask=False)]
    ask_rank = [asks[index] for index in priority(asks, is_ask=True)]
    bid_left_wh = [order.energy_wh for order in bid_rank]
    ask_left_wh = [order.energy_wh for order in ask_rank]
    matches = []
    i = j = 0
    while i < len(bid_rank) and j < len(ask_rank):
        bid, ask = bid_rank[i], ask_rank[j]
        if bid.price_wei_per_wh < ask.price_wei_per_wh:
            break
        traded_wh = min(bid_left_wh[i], ask_left_wh[j])
        matches.append(Match(bid.account, ask.account, traded_wh, bid.price_wei_per_wh, ask.price_wei_per_wh))
        bid_left_wh[i] -= traded_wh
        ask_left_wh[j] -= traded_wh
        i += bid_left_wh[i] == 0
        j += ask_left_wh[j] == 0
    return matches


def _net(flows: Iterable[tuple[str, str, int]]) -> dict[str, int]:
    """Net amount of each account over (payer, payee, amount) flows, + = received."""
    net: dict[str, int] = {}
    for payer, payee, amount in flows:
        net[payer] = net.get(payer, 0) - amount
        net[payee] = net.get(payee, 0) + amount
    return net


def _positions_wh(matches: Sequence[Match]) -> dict[str, int]:
    return _net((m.buyer, m.seller, m.energy_wh) for m in matches)


def clear_uniform(bids: Sequence[Order], asks: Sequence[Order]) -> Clearing:
    """Clear a double auction at one price.

    Pairs are matched by :func:`match_orders`. The price is the floor of
    the midpoint of the last matched pair (the marginal pair); with no
    match it is 0.

    Parameters
    ----------
    bids, asks : sequence of Order
        Each side in submission order; an account appears at most once
        across both sides.

    Returns
    -------
    Clearing
        Price [wei/Wh], volume [Wh] and positions [Wh].
    """
    matches = match_orders(bids, asks)
    if not matches:
        return Clearing(0, 0, {})
    marginal = matches[-1]
    price_wei_per_wh = (marginal.bid_price_wei_per_wh + marginal.ask_price_wei_per_wh) // 2
    return Clearing(price_wei_per_wh, sum(m.energy_wh for m in matches), _positions_wh(matches))


def clear_pay_as_bid(bids: Sequence[Order], asks: Sequence[Order]) -> DiscriminatoryClearing:
    """Clear a double auction with discriminatory pairwise-midpoint prices.

    Pairs are matched by :func:`match_orders`; a pair with bid price b,
    ask price a and energy q trades for floor((b + a) * q / 2) wei, paid
    in full by the buyer to the seller (k-double auction with k = 1/2 per
    pair; Chatterjee and Samuelson 1983), so the clearing is budget
    balanced.

    Parameters
    ----------
    bids, asks : sequence of Order
        Each side in submission order; an account appears at most once
        across both sides.

    Returns
    -------
    DiscriminatoryClearing
        Volume [Wh], positions [Wh], values [wei] and priced pairs.

    References
    ----------
    K. Chatterjee, W. Samuelson, "Bargaining under incomplete
    information", Operations Research 31(5):835-851, 1983.
    """
    matches = match_orders(bids, asks)
    priced = tuple(
        (m, (m.bid_price_wei_per_wh + m.ask_price_wei_per_wh) * m.energy_wh // 2) for m in matches
    )
    values_wei = _net((match.buyer, match.seller, value_wei) for match, value_wei in priced)
    return DiscriminatoryClearing(sum(m.energy_wh for m in matches), _positions_wh(matches), values_wei, priced)


def clear_merit_order(demand_wh: int, offers: Sequence[Order], buyer: str) -> Clearing:
    """Dispatch supply offers cheapest first against a fixed demand.

    Offers rank by price ascending, ties by submission index; each takes
    the smaller of its energy and the demand left. Every dispatched offer
    is paid the marginal price, the limit price of the last dispatched
    offer; ``buyer`` buys the whole volume at that price.

    Parameters
    ----------
    demand_wh : int
        Energy the buyer needs (0 if none was posted). [Wh]
    offers : sequence of Order
        Supply offers in submission order, one per account.
    buyer : str
        Address of the operator that posted the demand.

    Returns
    -------
    Clearing
        Marginal price [wei/Wh], volume [Wh] and positions [Wh], the
        buyer's included (minus the volume); price and volume 0 if
        nothing is dispatched.

    References
    ----------
    D. Kirschen, G. Strbac, "Fundamentals of Power System Economics",
    2nd ed., Wiley, 2019, ch. 2.
    """
    if len({offer.account for offer in offers}) != len(offers):
        raise ValueError("an account may place only one offer per interval")
    positions_wh: dict[str, int] = {}
    price_wei_per_wh = 0
    demand_left_wh = demand_wh
    for index in priority(offers, is_ask=True):
        if demand_left_wh == 0:
            break
        offer = offers[index]
        fill_wh = min(offer.energy_wh, demand_left_wh)
        demand_left_wh -= fill_wh
        positions_wh[offer.account] = fill_wh
        price_wei_per_wh = offer.price_wei_per_wh
    volume_wh = demand_wh - demand_left_wh
    if volume_wh:
        positions_wh[buyer] = -volume_wh
    return Clearing(price_wei_per_wh, volume_wh, positions_wh)


@dataclass(frozen=True)
class Lot:
    """One seller's lot of a lot auction (Vickrey or English).

    Attributes
    ----------
    seller : str
        Address of the prosumer selling.
    energy_wh : int
        Energy of the lot. [Wh]
    reserve_price_wei_per_wh : int
        Lowest price the seller accepts. [wei/Wh]
    """

    seller: str
    energy_wh: int
    reserve_price_wei_per_wh: int


@dataclass(frozen=True)
class LotBid:
    """A bid on a lot: revealed (Vickrey) or placed (English).

    Attributes
    ----------
    bidder : str
        Address of the prosumer bidding.
    lot : int
        Index of the lot in the interval's lots.
    price_wei_per_wh : int
        Bid price. [wei/Wh]
    """

    bidder: str
    lot: int
    price_wei_per_wh: int


@dataclass(frozen=True)
class LotAuction:
    """Result of one interval of a lot auction.

    Attributes
    ----------
    winners : tuple of (str or None)
        Winner of each lot, None if unsold.
    prices_wei_per_wh : tuple of int
        Price each lot sells at, 0 if unsold. [wei/Wh]
    accepted : tuple of bool
        Whether the contract takes each bid (False: it reverts).
    positions_wh : dict of str to int
        Non-zero positions, + = sold, - = won. [Wh]
    values_wei : dict of str to int
        Non-zero money values, + = received. [wei]
    """

    winners: tuple[str | None, ...]
    prices_wei_per_wh: tuple[int, ...]
    accepted: tuple[bool, ...]
    positions_wh: dict[str, int]
    values_wei: dict[str, int]


def _lot_auction(
    lots: Sequence[Lot], winners: Sequence[str | None], prices: Sequence[int], accepted: Sequence[bool]
) -> LotAuction:
    sold = [
        (lot, winner, price) for lot, winner, price in zip(lots, winners, prices, strict=True) if winner is not None
    ]
    positions_wh = _net((winner, lot.seller, lot.energy_wh) for lot, winner, _ in sold)
    values_wei = _net((winner, lot.seller, price * lot.energy_wh) for lot, winner, price in sold)
    return LotAuction(
        tuple(winners),
        tuple(prices),
        tuple(accepted),
        {a: q for a, q in positions_wh.items() if q},
        {a: v for a, v in values_wei.items() if v},
    )


def clear_vickrey(lots: Sequence[Lot], reveals: Sequence[LotBid], price_cap_wei_per_wh: int) -> LotAuction:
    """Award each lot to its highest sealed bid at the second-highest price.

    A reveal is accepted if its price lies between the lot's reserve and
    the cap (the contract refuses the others). Per lot the highest
    accepted price wins, the earliest revealed among equals; the winner
    pays the second-highest accepted price, or the reserve if it was
    the only one (Vickrey 1961), per Wh of the lot.

    Parameters
    ----------
    lots : sequence of Lot
        The interval's lots in posting order, one per seller.
    reveals : sequence of LotBid
        Opened bids in reveal order, one per bidder per interval, none
        by a lot's own seller.
    price_cap_wei_per_wh : int
        The auction's price cap. [wei/Wh]

    Returns
    -------
    LotAuction
        Winners, prices, accepted reveals, positions and values.

    References
    ----------
    W. Vickrey, "Counterspeculation, auctions, and competitive sealed
    tenders", Journal of Finance 16(1):8-37, 1961.
    """
    accepted = [
        lots[r.lot].reserve_price_wei_per_wh <= r.price_wei_per_wh <= price_cap_wei_per_wh for r in reveals
    ]
    winners: list[str | None] = []
    prices = []
    for index, lot in enumerate(lots):
        # sorted() is stable: the earliest revealed of equal prices stays first.
        ranked = sorted(
            (r for r, ok in zip(reveals, accepted, strict=True) if ok and r.lot == index),
            key=lambda r: -r.price_wei_per_wh,
        )
        winners.append(ranked[0].bidder if ranked else None)
        second = ranked[1].price_wei_per_wh if len(ranked) > 1 else lot.reserve_price_wei_per_wh
        prices.append(second if ranked else 0)
    return _lot_auction(lots, winners, prices, accepted)


def clear_english(
    lots: Sequence[Lot], bids: Sequence[LotBid], bid_increment_wei_per_wh: int, price_cap_wei_per_wh: int
) -> LotAuction:
    """Run open ascending auctions of the lots over bids in arrival order.

    A bid is accepted if it is not the seller's own, is at most the cap,
    its bidder leads no other lot, and it reaches the reserve (first bid
    on the lot) or the leading price plus the increment; it then takes
    the lead. At the close each leader wins and pays its own price per
    Wh of the lot.

    Parameters
    ----------
    lots : sequence of Lot
        The interval's lots in posting order, one per seller.
    bids : sequence of LotBid
        Bids in the order they reach the chain.
    bid_increment_wei_per_wh : int
        Least raise over the leading price. [wei/Wh]
    price_cap_wei_per_wh : int
        The auction's price cap. [wei/Wh]

    Returns
    -------
    LotAuction
        Winners, prices, accepted bids, positions and values.
    """
    leaders: list[str | None] = [None] * len(lots)
    prices = [0] * len(lots)
    accepted = []
    for bid in bids:
        lot = lots[bid.lot]
        leads_other = any(leader == bid.bidder and i != bid.lot for i, leader in enumerate(leaders))
        floor = lot.reserve_price_wei_per_wh if leaders[bid.lot] is None else prices[bid.lot] + bid_increment_wei_per_wh
        ok = bid.bidder != lot.seller and not leads_other and floor <= bid.price_wei_per_wh <= price_cap_wei_per_wh
        if ok:
            leaders[bid.lot] = bid.bidder
            prices[bid.lot] = bid.price_wei_per_wh
        accepted.append(ok)
    return _lot_auction(lots, leaders, prices, accepted)


def settle(
    position_wh: int,
    value_wei: int,
    import_wh: int,
    export_wh: int,
    grid_buy_price_wei_per_wh: int,
    grid_sell_price_wei_per_wh: int,
    grid_fee_wei_per_wh: int,
    *,
    non_delivery_penalty_wei_per_wh: int,
    prosumer_payable_wei: int | None = None,
    operator_payable_wei: int | None = None,
    penalty_pool_wei: int = 0,
) -> SettlementLine:
    """Payments of one prosumer for one interval.

    A seller's undelivered energy u = max(0, position - export) is
    charged :func:`non_delivery_wei`, the rest of the imbalance
    (export - import - position + u) at the grid prices; the
    two are one imbalance payment, made only up to what its payer can
    afford (``Settlement._pay_imbalance``); the rest is ``unpaid_wei``.
    The penalty part (penalty x u) goes to the penalty pool, the rest to
    the payee; a seller short of the whole payment pays the operator's
    part first. The penalty pool then pays the payee its unpaid part, up
    to the pool's balance (``covered_wei``).

    Parameters
    ----------
    position_wh : int
        Cleared position, + = sold. [Wh]
    value_wei : int
        Money value of the position, + = received: price * position at
        a uniform price, the sum over the account's trades at
        discriminatory prices. [wei]
    import_wh, export_wh : int
        Metered energy drawn from and fed into the grid. [Wh]
    grid_buy_price_wei_per_wh : int
        Price of energy imported beyond the position. [wei/Wh]
    grid_sell_price_wei_per_wh : int
        Price paid for energy exported beyond the position. [wei/Wh]
    grid_fee_wei_per_wh : int
        Fee on energy bought in the market. [wei/Wh]
    non_delivery_penalty_wei_per_wh : int
        Penalty on sold energy not exported (:func:`non_delivery_wei`). [wei/Wh]
    prosumer_payable_wei : int, optional
        What the prosumer can pay an imbalance with once its escrow is
        released and its market payment and fee are booked: free credit
        plus the credit line. Unlimited if None. [wei]
    operator_payable_wei : int, optional
        The same for the operator once the fee is booked: free credit
        less the debt owed to it. Unlimited if None. [wei]
    penalty_pool_wei : int, optional
        The Settlement's penalty pool before this settlement. [wei]

    Returns
    -------
    SettlementLine
        All payments, + = received. [wei]
    """
    p2p_wei = value_wei
    fee_wei = grid_fee_wei_per_wh * -position_wh if position_wh < 0 else 0
    undelivered_wh = max(0, position_wh - export_wh)
    imbalance_wh = export_wh - import_wh - position_wh + undelivered_wh
    imbalance_price = grid_sell_price_wei_per_wh if imbalance_wh > 0 else grid_buy_price_wei_per_wh
    owed_wei = imbalance_price * imbalance_wh - non_delivery_wei(
        position_wh, value_wei, undelivered_wh, grid_buy_price_wei_per_wh, non_delivery_penalty_wei_per_wh)
    payable_wei = operator_payable_wei if owed_wei > 0 else prosumer_payable_wei
    paid_wei = abs(owed_wei) if payable_wei is None else min(abs(owed_wei), max(payable_wei, 0))
    imbalance_wei = paid_wei if owed_wei > 0 else -paid_wei
    penalty_wei = non_delivery_penalty_wei_per_wh * undelivered_wh if owed_wei < 0 else 0
    payee_owed_wei = abs(owed_wei) - penalty_wei
    payee_paid_wei = min(paid_wei, payee_owed_wei)
    penalty_paid_wei = paid_wei - payee_paid_wei
    covered_wei = min(payee_owed_wei - payee_paid_wei, penalty_pool_wei + penalty_paid_wei)
    prosumer_covered_wei, operator_covered_wei = (covered_wei, 0) if owed_wei > 0 else (0, covered_wei)
    return SettlementLine(
        p2p_wei=p2p_wei,
        fee_wei=fee_wei,
        imbalance_wei=imbalance_wei,
        credit_delta_wei=p2p_wei - fee_wei + imbalance_wei + prosumer_covered_wei,
        operator_delta_wei=fee_wei - imbalance_wei - penalty_paid_wei + operator_covered_wei,
        pool_delta_wei=-p2p_wei,
        unpaid_wei=abs(owed_wei) - paid_wei,
        penalty_pool_delta_wei=penalty_paid_wei - covered_wei,
        covered_wei=covered_wei,
    )


@dataclass(frozen=True)
class SourceMix:
    """Energy split by source. [Wh]

    Attributes
    ----------
    pv_wh : int
        From PV generation.
    battery_wh : int
        From battery discharge.
    grid_wh : int
        From the grid: a seller's shortfall and re-sold grid energy, a
        buyer's import beyond its peer-to-peer purchase.
    """

    pv_wh: int
    battery_wh: int
    grid_wh: int

    @property
    def total_wh(self) -> int:
        """pv + battery + grid. [Wh]"""
        return self.pv_wh + self.battery_wh + self.grid_wh


def escrow_wei(energy_wh: int, price_wei_per_wh: int, grid_fee_wei_per_wh: int) -> int:
    """Credit a bid locks in ``Settlement.lock``: energy * (price + fee). [wei]

    Parameters
    ----------
    energy_wh : int
        Energy the bid may buy. [Wh]
    price_wei_per_wh : int
        Most the bid pays: its limit price, the cap of a sealed Vickrey
        bid before its reveal. [wei/Wh]
    grid_fee_wei_per_wh : int
        Fee on market purchases; 0 for the operator's own bids. [wei/Wh]
    """
    return energy_wh * (price_wei_per_wh + grid_fee_wei_per_wh)


def obligation_wei(position_wh: int, value_wei: int, grid_fee_wei_per_wh: int) -> int:
    """What an account owes for its cleared position, the escrow ``Settlement.release`` keeps. [wei]

    max(0, -value) + fee * max(0, -position).

    Parameters
    ----------
    position_wh : int
        Cleared position, + = sold. [Wh]
    value_wei : int
        Its money value, + = received. [wei]
    grid_fee_wei_per_wh : int
        Fee on market purchases; 0 for the operator. [wei/Wh]
    """
    return max(0, -value_wei) + grid_fee_wei_per_wh * max(0, -position_wh)


def released_wei(lock_wei: int, position_wh: int, value_wei: int, grid_fee_wei_per_wh: int) -> int:
    """Escrow ``Settlement.release`` returns: the lock above the obligation, 0 if none. [wei]"""
    return max(0, lock_wei - obligation_wei(position_wh, value_wei, grid_fee_wei_per_wh))


def sold_sources(position_wh: int, export_wh: int, pv_wh: int, battery_wh: int) -> SourceMix:
    """Sources of a seller's sold energy, as ``Settlement.post_reading`` records them.

    With delivered = min(q, export): pv = min(delivered, pv_wh),
    battery = min(delivered - pv, battery_wh), grid = q - pv - battery.
    PV counts first because a battery discharging while PV exports adds
    to the export only after the PV.

    Parameters
    ----------
    position_wh : int
        Cleared position q; a seller's is positive (others sell nothing). [Wh]
    export_wh : int
        Metered export of the interval. [Wh]
    pv_wh : int
        PV energy generated in the interval. [Wh]
    battery_wh : int
        Battery energy discharged in the interval. [Wh]

    Returns
    -------
    SourceMix
        Sums to max(q, 0). [Wh]
    """
    sold_wh = max(position_wh, 0)
    delivered_wh = min(sold_wh, export_wh)
    pv = min(delivered_wh, pv_wh)
    battery = min(delivered_wh - pv, battery_wh)
    return SourceMix(pv, battery, sold_wh - pv - battery)


def sold_mix(sellers: Iterable[SourceMix]) -> SourceMix:
    """An interval's sold energy by source: the sum over its sellers (``Settlement.sold_mix``). [Wh]"""
    parts = list(sellers)
    return SourceMix(sum(m.pv_wh for m in parts), sum(m.battery_wh for m in parts), sum(m.grid_wh for m in parts))


def consumed_mix(position_wh: int, import_wh: int, sold: SourceMix) -> SourceMix:
    """Sources of a buyer's consumed (imported) energy, as ``Settlement.consumed_mix`` gives them.

    The peer-to-peer part p = min(-q, import) of a buyer (q < 0) takes
    the interval's sold mix pro rata, PV and battery rounded down and the
    remainder grid; the rest of the import comes from the grid.

    Parameters
    ----------
    position_wh : int
        Cleared position q, + = sold. [Wh]
    import_wh : int
        Metered import of the interval. [Wh]
    sold : SourceMix
        The interval's sold mix (:func:`sold_mix` of all its sellers). [Wh]

    Returns
    -------
    SourceMix
        Sums to ``import_wh``. [Wh]
    """
    p2p_wh = min(max(-position_wh, 0), import_wh)
    total_wh = sold.total_wh
    pv = p2p_wh * sold.pv_wh // total_wh if total_wh else 0
    battery = p2p_wh * sold.battery_wh // total_wh if total_wh else 0
    return SourceMix(pv, battery, import_wh - pv - battery)


def chosen_mix(p2p_wh: int, import_wh: int, chose_pv: bool, sold: SourceMix, chosen_wh: int) -> SourceMix:
    """Sources of a buyer's imported energy with PV allocated to the buyers who chose it first
    (``SourceChoice.consumed_mix``).

    With A = min(sold PV, P) for P the peer-to-peer energy of all
    choosers: a chooser gets PV p * A // P and the rest of its p,
    p * (P - A) / P unrounded, from battery and grid pro rata to the sold
    non-PV part, so that the choosers' battery sums to at most the
    (P - A) * battery // (battery + grid) the others are told they took
    (a sum of floors is at most the floor of the sum); anyone else gets
    the PV and battery the choosers left, pro rata to p over T - P.
    PV and battery round down; the rest of the import is grid. With P = 0
    this is :func:`consumed_mix`.

    Parameters
    ----------
    p2p_wh : int
        The buyer's peer-to-peer energy, min(-position, import); 0 for a seller. [Wh]
    import_wh : int
        Its metered import. [Wh]
    chose_pv : bool
        Whether its choice of PV holds for the interval.
    sold : SourceMix
        The interval's sold mix (:func:`sold_mix`). [Wh]
    chosen_wh : int
        P, the choosers' peer-to-peer energy. [Wh]

    Returns
    -------
    SourceMix
        Sums to ``import_wh``. [Wh]
    """
    to_choosers_wh = min(sold.pv_wh, chosen_wh)
    rest_wh = sold.battery_wh + sold.grid_wh
    pv = battery = 0
    if chose_pv:
        pv = p2p_wh * to_choosers_wh // chosen_wh if chosen_wh else 0
        if chosen_wh and rest_wh:
            battery = p2p_wh * (chosen_wh - to_choosers_wh) * sold.battery_wh // (chosen_wh * rest_wh)
    else:
        taken_wh = (chosen_wh - to_choosers_wh) * sold.battery_wh // rest_wh if rest_wh else 0
        left_wh = sold.total_wh - chosen_wh
        if left_wh > 0:
            pv = p2p_wh * (sold.pv_wh - to_choosers_wh) // left_wh
            battery = p2p_wh * (sold.battery_wh - taken_wh) // left_wh
    return SourceMix(pv, battery, import_wh - pv - battery)


@dataclass
class TokenEscrow:
    """Token balances as ``GridToken`` moves them for a contract that locks approved tokens and pays them out.

    ``balance`` holds every account's tokens (the contract's under
    ``contract``), ``allowance`` what each account approved to the contract. [wei]
    """

    balance: dict[str, int]
    allowance: dict[str, int]
    contract: str = "contract"

    def pull(self, account: str, amount: int) -> str | None:
        """``GridToken.transferFrom(account, contract, amount)`` by the contract; its reason if it reverts."""
        if self.allowance.get(account, 0) < amount:
            return "token: insufficient allowance"
        if self.balance.get(account, 0) < amount:
            return "token: transfer amount exceeds balance"
        self.allowance[account] -= amount
        self.balance[account] -= amount
        self.balance[self.contract] = self.balance.get(self.contract, 0) + amount
        return None

    def pay(self, account: str, amount: int) -> None:
        """``GridToken.transfer(account, amount)`` by the contract."""
        self.balance[self.contract] -= amount
        self.balance[account] = self.balance.get(account, 0) + amount
