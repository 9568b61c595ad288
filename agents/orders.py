"""The orders agents place at the start of a market interval, and what is recorded about each.

Every agent forecasts its net export of the interval and draws a ZI-C limit
price (`gridledger.agents.prosumer`). Which of those orders go to the market
at the interval start is the mechanism's (`gridledger.contracts.mechanisms`):
every seller offers its surplus (as a book ask, or as a lot in a lot
auction); buyers bid into the book only where buyers order, and in a lot
auction they bid on the lots later (`gridledger.agents.lot_bidding`).
An honest agent sends no order the settlement refuses: its energy is cut to
what its registered limits allow (`Settlement.order_limit_wh`) and an order
below the study's ``market.min_order_kwh`` is not placed.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.agents.prosumer import Order, expected_exports_wh, limit_price_draw, zic_order
from gridledger.contracts.client import Wallet
from gridledger.contracts.market import MarketAddresses, ProsumerLimits, post_lot, submit_order
from gridledger.contracts.reference import order_limit_wh
from gridledger.contracts.mechanisms import MECHANISMS, Mechanism
from gridledger.roster import Roster
from gridledger.units import price_per_kwh


def zic_orders(sc: Roster, interval: int) -> list[Order | None]:
    """Every agent's ZI-C order for `interval` from its forecast, in prosumer order (None: nothing to trade).

    Each order is cut to its agent's registered limits and dropped below the
    minimum order (:func:`within_limits`).
    """
    study = sc.study
    market = study.market
    exports = expected_exports_wh(sc, interval)
    orders = [zic_order(interval, int(exports[i]), limit_price_draw(study.seed, i, interval),
                        market.grid_sell_price_per_kwh, study.grid_buy_price_per_kwh(interval))
              for i in range(len(sc.prosumers))]
    return [None if order is None else within_limits(order, limits, study.market_interval_s, market.min_order_wh)
            for order, limits in zip(orders, prosumer_limits(sc), strict=True)]


def within_limits(order: Order, limits: ProsumerLimits, interval_s: int, min_order_wh: int) -> Order | None:
    """`order` cut to the most its account may order in an interval, or None if that is below `min_order_wh`.

    The bound is ``Settlement.order_limit_wh``
    (:func:`~gridledger.contracts.reference.order_limit_wh`): a bid within the
    meter rating, an ask within what PV and battery can export. [Wh]
    """
    energy_wh = min(order.energy_wh, order_limit_wh(is_ask=order.is_ask, meter_rating_w=limits.meter_rating_w,
                                                    pv_w=limits.pv_w, battery_w=limits.battery_w,
                                                    interval_s=interval_s))
    if energy_wh < min_order_wh:
        return None
    return dataclasses.replace(order, energy_wh=energy_wh)


def opening_orders(orders: list[Order | None], mechanism: Mechanism) -> list[tuple[int, Order]]:
    """(agent, order) placed at the interval start: every ask, and the bids only where buyers order."""
    return [(i, order) for i, order in enumerate(orders)
            if order is not None and (order.is_ask or mechanism.buyers_order)]


def buyers(orders: list[Order | None]) -> list[tuple[int, Order]]:
    """(agent, bid) of every agent short of energy, in prosumer order: the bidders of a lot auction."""
    return [(i, order) for i, order in enumerate(orders) if order is not None and not order.is_ask]


def order_tx(wallet: Wallet, addresses: MarketAddresses, order: Order) -> bytes:
    """Signed order: a lot with the order's price as reserve in a lot auction, else a book order."""
    if MECHANISMS[addresses.mechanism].is_lot_auction:
        return post_lot(wallet, addresses, order.interval, energy_wh=order.energy_wh,
                        reserve_price_wei_per_wh=order.price_wei_per_wh)
    return submit_order(wallet, addresses, order.interval, is_ask=order.is_ask, energy_wh=order.energy_wh,
                        price_wei_per_wh=order.price_wei_per_wh)


def signed_energy_wh(order: Order) -> int:
    """An order's quantity, positive = ask (sell), negative = bid (buy). [Wh]"""
    return order.energy_wh if order.is_ask else -order.energy_wh


class OrderRecord:
    """Each agent's last order per interval: signed quantity [Wh] and limit price [token/kWh] (NaN: none)."""

    def __init__(self, n_intervals: int, n_agents: int):
        self.energy_wh = np.zeros((n_intervals, n_agents), dtype=np.int64)
        self.price_per_kwh = np.full((n_intervals, n_agents), np.nan)

    def record(self, agent: int, order: Order) -> None:
        """Note `order` of `agent`; a later order of the same interval (a raised English bid) replaces it."""
        self.energy_wh[order.interval, agent] = signed_energy_wh(order)
        self.price_per_kwh[order.interval, agent] = price_per_kwh(order.price_wei_per_wh)
