"""The zones' coordinator: clears what the zones' books left, across zones, and tells each zone its fills.

A sharded run (``market.sharding: per-zone``) clears each zone's uniform
double auction on its own chain at the gate. Each zone ledger then sends
what its clearing left of every order (``residuals``: the unmatched energy
at the order's limit price); half a second later the coordinator clears
all zones' residuals in one book (`gridledger.contracts.zone_clearing.clear_residuals`)
and sends each zone ledger its fills and the coordinator's price
(``cross_fills``), which the zone's operator records on its chain with
``DoubleAuction.settle_across`` a second after the gate. Why a
zone-to-zone clearing step and not a root chain is said in
`gridledger.contracts.zone_clearing`.

The coordinator holds no key and no chain: every fill it sends is
checked on the zone's chain against the order it fills (at most the
unmatched energy, at a price within the order's limit), so a lying
coordinator, or a zone ledger that misreports its residuals, can only
misplace energy between the zones' operators, who take the other side
of each zone's net flow; no prosumer trades beyond its own order. What
it can break is the balance across chains: the operators' cross-zone
values sum to zero only if every zone recorded what the coordinator
cleared, which the results let anyone check (`net_export_wh` summed over
zones is zero).
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.contracts.reference import Order
from gridledger.contracts.zone_clearing import ZoneBook, clear_residuals
from gridledger.federation import zone_ledger_endpoint
from gridledger.messages import encode
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.units import price_per_kwh

log = logging.getLogger("gridledger.coordinator")

Message = tuple[str, bytes]
"""A message to send: (destination endpoint, payload)."""


def zone_books(zones: list[str], interval: int, messages: list[tuple[str, dict]]) -> dict[str, ZoneBook]:
    """Each zone's residual book of `interval` from the (source endpoint, ``residuals``) messages; a zone that sent
    none is empty.

    Only a zone's own ledger (``ledger-<zone>/tx``) speaks for the zone: a
    message from any other endpoint, for another interval or an unknown
    zone, a second message of a zone, and an account already listed by
    another zone are dropped and logged (each account orders in one zone only).
    """
    books = {zone: ZoneBook((), ()) for zone in zones}
    seen: set[str] = set()
    sent: set[str] = set()
    for source, message in sorted(messages, key=lambda m: str(m[1].get("zone"))):
        zone = message.get("zone")
        if (message.get("type") != "residuals" or message.get("interval") != interval or zone not in books
                or source != zone_ledger_endpoint(zone) or zone in sent):
            log.warning("residuals of zone %r for interval %r from %s dropped at interval %d",
                        zone, message.get("interval"), source, interval)
            continue
        sent.add(zone)
        sides = []
        for side in ("bids", "asks"):
            orders = []
            for row in message[side]:
                if row["account"] in seen:
                    log.warning("zone %s lists %s, which another zone listed, at interval %d",
                                zone, row["account"], interval)
                    continue
                seen.add(row["account"])
                orders.append(Order(row["account"], int(row["energy_wh"]), int(row["price_wei_per_wh"])))
            sides.append(tuple(orders))
        books[zone] = ZoneBook(*sides)
    return books


class Coordinator:
    """Clears the zones' residual orders interval by interval and records what crossed.

    Parameters
    ----------
    roster : Roster
        The run's roster; its zones are the zone ledgers'.
    """

    def __init__(self, roster: Roster):
        self.roster = roster
        self.zones = list(roster.zones)
        n = roster.study.n_intervals
        self.price_per_kwh = np.full(n, np.nan)
        self.net_export_wh = np.zeros((n, len(self.zones)), dtype=np.int64)
        self.volume_wh = np.zeros(n, dtype=np.int64)

    def clear(self, interval: int, messages: list[tuple[str, dict]]) -> list[Message]:
        """Clear `interval`'s residuals, (source endpoint, message) pairs, across zones; one ``cross_fills`` message
        per zone ledger."""
        result = clear_residuals(zone_books(self.zones, interval, messages))
        traded = any(result.fills_wh.values())
        if traded:
            self.price_per_kwh[interval] = price_per_kwh(result.price_wei_per_wh)
        self.net_export_wh[interval] = [result.net_export_wh[zone] for zone in self.zones]
        self.volume_wh[interval] = sum(max(0, flow) for flow in result.net_export_wh.values())
        if traded:
            log.info("interval %d: %d Wh across zones at %d wei/Wh", interval,
                     self.volume_wh[interval], result.price_wei_per_wh)
        return [(zone_ledger_endpoint(zone), encode("cross_fills", interval=interval,
                                                    price_wei_per_wh=result.price_wei_per_wh,
                                                    fills_wh=result.fills_wh[zone]))
                for zone in self.zones]

    def part(self) -> Part:
        """The coordinator's results part: its price and the zones' flows per interval."""
        part = Part(self.roster, "coordinator")
        part.coords["zone"] = np.array(self.zones, dtype=object)
        part.add("coordinator_price_per_kwh", ("interval",), self.price_per_kwh, "token/kWh",
                 "uniform price of the cross-zone clearing (NaN: nothing traded across zones)")
        part.add("cross_zone_volume_wh", ("interval",), self.volume_wh, "Wh",
                 "energy traded between zones (sum of the exporting zones' net exports)")
        part.add("net_export_wh", ("interval", "zone"), self.net_export_wh, "Wh",
                 "energy a zone's orders sold to other zones minus what they bought from them")
        return part
