"""Reference implementation of the market rules in plain Python.

:func:`clear_uniform` follows ``DoubleAuction.clear`` and :func:`settle`
follows ``Settlement.post_reading`` to the wei; the contract tests check
the chain against them. Signs: positions are positive when sold
(exported) and negative when bought (imported); payments are positive
when received.
"""

from collections.abc import Sequence
from dataclasses import dataclass


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
        Change of the prosumer's credit: p2p - fee + imbalance.
    operator_delta_wei : int
        Change of the operator's credit: fee - imbalance.
    pool_delta_wei : int
        Change of the market pool: -p2p.
    """

    p2p_wei: int
    fee_wei: int
    imbalance_wei: int
    credit_delta_wei: int
    operator_delta_wei: int
    pool_delta_wei: int


def priority(orders: Sequence[Order], *, is_ask: bool) -> list[int]:
    """Indices of ``orders`` in matching priority.

    Bids by price descending, asks by price ascending; equal prices keep
    submission order. This is the permutation ``DoubleAuction.clear``
    expects.
    """
    sign = 1 if is_ask else -1
    return sorted(range(len(orders)), key=lambda index: (sign * orders[index].price_wei_per_wh, index))


def clear_uniform(bids: Sequence[Order], asks: Sequence[Order]) -> Clearing:
    """Clear a double auction at one price.

    The best remaining bid and ask trade the smaller of their remaining
    energies while the bid price is at least the ask price. The price is
    the floor of the midpoint of the last matched pair (the marginal
    pair); with no match it is 0.

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
    accounts = [order.account for order in (*bids, *asks)]
    if len(set(accounts)) != len(accounts):
        raise ValueError("an account may place only one order per interval")
    bid_rank = [bids[index] for index in priority(bids, is_ask=False)]
    ask_rank = [asks[index] for index in priority(asks, is_ask=True)]
    bid_fill_wh = [0] * len(bid_rank)
    ask_fill_wh = [0] * len(ask_rank)
    i = j = 0
    volume_wh = price_wei_per_wh = 0
    while i < len(bid_rank) and j < len(ask_rank):
        bid, ask = bid_rank[i], ask_rank[j]
        if bid.price_wei_per_wh < ask.price_wei_per_wh:
            break
        traded_wh = min(bid.energy_wh - bid_fill_wh[i], ask.energy_wh - ask_fill_wh[j])
        bid_fill_wh[i] += traded_wh
        ask_fill_wh[j] += traded_wh
        volume_wh += traded_wh
        price_wei_per_wh = (bid.price_wei_per_wh + ask.price_wei_per_wh) // 2
        i += bid_fill_wh[i] == bid.energy_wh
        j += ask_fill_wh[j] == ask.energy_wh
    positions_wh = {order.account: -fill for order, fill in zip(bid_rank, bid_fill_wh, strict=True) if fill}
    positions_wh.update({order.account: fill for order, fill in zip(ask_rank, ask_fill_wh, strict=True) if fill})
    return Clearing(price_wei_per_wh, volume_wh, positions_wh)


def settle(
    position_wh: int,
    value_wei: int,
    import_wh: int,
    export_wh: int,
    grid_buy_price_wei_per_wh: int,
    grid_sell_price_wei_per_wh: int,
    grid_fee_wei_per_wh: int,
) -> SettlementLine:
    """Payments of one prosumer for one interval.

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

    Returns
    -------
    SettlementLine
        All payments, + = received. [wei]
    """
    p2p_wei = value_wei
    fee_wei = grid_fee_wei_per_wh * -position_wh if position_wh < 0 else 0
    imbalance_wh = export_wh - import_wh - position_wh
    imbalance_price = grid_sell_price_wei_per_wh if imbalance_wh > 0 else grid_buy_price_wei_per_wh
    imbalance_wei = imbalance_price * imbalance_wh
    return SettlementLine(
        p2p_wei=p2p_wei,
        fee_wei=fee_wei,
        imbalance_wei=imbalance_wei,
        credit_delta_wei=p2p_wei - fee_wei + imbalance_wei,
        operator_delta_wei=fee_wei - imbalance_wei,
        pool_delta_wei=-p2p_wei,
    )
