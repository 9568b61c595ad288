"""Two-level clearing of a zoned feeder: each zone's book, then the zones' residuals at a coordinator.

Each zone clears its own book with :func:`~gridledger.contracts.reference.clear_uniform`;
what is left of every order (its unmatched energy, at its own limit price)
goes to one coordinator book that clears the same way across zones. An
order's fill is its zone fill plus its coordinator fill; the coordinator
fills, summed per zone, are the energy each zone exports to (+) or imports
from (-) the others.

Why a zone-to-zone clearing step and not a root-chain contract. A root
chain that every zone chain reports to and that settles cross-zone trades
would need a bridge between chains (proofs of a zone's book on the root,
or trusted relays), and every zone would wait for the root before it
could settle. The step keeps each zone's chain independent: a zone clears
and settles its local trades alone, and the coordinator needs only the
residual orders, which each zone's clearing already publishes as
unmatched volume, not the whole book. What it costs: two prices per
interval (a zone price and a coordinator price, so the same energy can
trade at different prices in the same interval), a second round after the
zone gates, and trades (volume and surplus) that differ from one
feeder-wide book's: an order matched locally is no longer available to a
better counterpart in another zone.

Signs: flows are positive when a zone exports; fills are non-negative
energy on the order's own side.

References
----------
K. Honari, X. Zhou, S. Rouhani, S. Dick, H. Liang, Y. Li, J. Miller, "A
Scalable Blockchain-based Smart Contract Model for Decentralized Voltage
Stability Using Sharding Technique", arXiv:2206.13776, 2022 (the survey's
reference [61], on sharding grid-control smart contracts).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridledger.contracts.reference import Order, clear_uniform


@dataclass(frozen=True)
class ZoneBook:
    """The orders placed in one zone for one interval, each side in submission order."""

    bids: tuple[Order, ...]
    asks: tuple[Order, ...]


@dataclass(frozen=True)
class Fill:
    """What one order got, on its own side. [Wh]

    Attributes
    ----------
    zone : str
        The zone whose book holds the order.
    is_ask : bool
        True for an ask (sell), False for a bid (buy).
    zone_wh : int
        Energy filled in the zone's own clearing. [Wh]
    coordinator_wh : int
        Energy filled at the coordinator against other zones. [Wh]
    """

    zone: str
    is_ask: bool
    zone_wh: int
    coordinator_wh: int

    @property
    def total_wh(self) -> int:
        """Energy filled in both rounds. [Wh]"""
        return self.zone_wh + self.coordinator_wh


@dataclass(frozen=True)
class ZonedClearing:
    """Result of the two-level clearing.

    Attributes
    ----------
    fills : dict of str to Fill
        Every order's fills, by account (one order per account).
    zone_prices_wei_per_wh : dict of str to int
        Uniform price of each zone's own clearing, 0 where nothing traded. [wei/Wh]
    coordinator_price_wei_per_wh : int
        Uniform price of the coordinator's clearing, 0 if nothing traded. [wei/Wh]
    net_export_wh : dict of str to int
        Energy each zone sold to other zones minus what it bought from them. [Wh]
    """

    fills: dict[str, Fill]
    zone_prices_wei_per_wh: dict[str, int]
    coordinator_price_wei_per_wh: int
    net_export_wh: dict[str, int]


@dataclass(frozen=True)
class CoordinatorClearing:
    """The coordinator's clearing of the zones' residual orders.

    Attributes
    ----------
    price_wei_per_wh : int
        Uniform price, 0 if nothing traded. [wei/Wh]
    fills_wh : dict of str to dict of str to int
        Each zone's filled orders: account -> fill on the order's own side,
        in the zone's residual order (bids, then asks); zones without a fill map to {}. [Wh]
    net_export_wh : dict of str to int
        Energy each zone's asks sold minus what its bids bought. [Wh]
    """

    price_wei_per_wh: int
    fills_wh: dict[str, dict[str, int]]
    net_export_wh: dict[str, int]


def clear_residuals(residuals: Mapping[str, ZoneBook]) -> CoordinatorClearing:
    """Clear the zones' residual orders in one book (the coordinator's step).

    The book lists residuals zone by zone in sorted zone-name order, each
    zone's in its own order, so equal prices rank by zone name first
    (deterministic, independent of the mapping's order); it clears with
    :func:`~gridledger.contracts.reference.clear_uniform`.

    Parameters
    ----------
    residuals : mapping of str to ZoneBook
        Each zone's unmatched orders (:func:`residual_orders`).

    Returns
    -------
    CoordinatorClearing
        Price [wei/Wh], each zone's fills [Wh] and net export [Wh].
    """
    zones = sorted(residuals)
    cleared = clear_uniform([o for zone in zones for o in residuals[zone].bids],
                            [o for zone in zones for o in residuals[zone].asks])
    fills_wh: dict[str, dict[str, int]] = {}
    for zone in zones:
        orders = (*residuals[zone].bids, *residuals[zone].asks)
        fills_wh[zone] = {o.account: abs(cleared.positions_wh[o.account]) for o in orders
                          if cleared.positions_wh.get(o.account, 0)}
    net_export_wh = {zone: sum(cleared.positions_wh.get(o.account, 0)
                               for o in (*residuals[zone].bids, *residuals[zone].asks)) for zone in zones}
    return CoordinatorClearing(cleared.price_wei_per_wh, fills_wh, net_export_wh)


def residual_orders(orders: Sequence[Order], positions_wh: Mapping[str, int]) -> list[Order]:
    """Unmatched energy of each order at its limit price, in submission order; fully filled orders left out."""
    left = [Order(o.account, o.energy_wh - abs(positions_wh.get(o.account, 0)), o.price_wei_per_wh)
            for o in orders]
    return [order for order in left if order.energy_wh > 0]


def clear_zoned(books: Mapping[str, ZoneBook]) -> ZonedClearing:
    """Clear every zone's book, then the residuals of all zones at the coordinator.

    Both levels clear with :func:`~gridledger.contracts.reference.clear_uniform`.
    The coordinator book lists residuals zone by zone in sorted zone-name
    order, each zone's in submission order, so equal prices rank by zone
    name first (deterministic, independent of the mapping's order).

    Parameters
    ----------
    books : mapping of str to ZoneBook
        Each zone's book; an account places at most one order in all zones.

    Returns
    -------
    ZonedClearing
        Fills [Wh], zone and coordinator prices [wei/Wh], net exports [Wh].

    Raises
    ------
    ValueError
        If an account places orders in more than one zone or more than one
        order in a zone.
    """
    accounts = [o.account for book in books.values() for o in (*book.bids, *book.asks)]
    if len(set(accounts)) != len(accounts):
        raise ValueError("an account may place only one order per interval, in one zone")
    zones = sorted(books)
    zone_clearings = {zone: clear_uniform(books[zone].bids, books[zone].asks) for zone in zones}
    coordinator = clear_residuals({
        zone: ZoneBook(tuple(residual_orders(books[zone].bids, zone_clearings[zone].positions_wh)),
                       tuple(residual_orders(books[zone].asks, zone_clearings[zone].positions_wh)))
        for zone in zones})
    fills = {
        o.account: Fill(zone, is_ask, abs(zone_clearings[zone].positions_wh.get(o.account, 0)),
                        coordinator.fills_wh[zone].get(o.account, 0))
        for zone in zones
        for is_ask, side in ((False, books[zone].bids), (True, books[zone].asks))
        for o in side
    }
    return ZonedClearing(
        fills=fills,
        zone_prices_wei_per_wh={zone: zone_clearings[zone].price_wei_per_wh for zone in zones},
        coordinator_price_wei_per_wh=coordinator.price_wei_per_wh,
        net_export_wh=coordinator.net_export_wh,
    )
