"""When a household's pseudonym of each interval is bought, signed and registered, and which class it falls in.

With ``pseudonyms`` each household trades interval j under a pseudonym
registered in the block that also takes its orders for j. At the
DER federate's orders action for interval j (at s_{j-1}) the household:

* buys its tickets up to interval j + 2 (`ticket_intervals`), mined in
  the ledger's next block;
* asks the registrar to blind-sign its pseudonym of j + 1, whose ticket
  was mined an interval before (the ledger serves right after mining);
* sends its half of the registration of j, signed by the registrar an
  interval before, and its orders for j signed by the pseudonym of j.

Its meter does the same half a second later: its request of j + 1 and
its half of j. The ledger relays each registration whose two halves it
holds before the block's orders. The first interval traded is
`FIRST_INTERVAL`: the pipeline fills during intervals 0 and 1, which
nobody trades in.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.contracts.market import ProsumerLimits
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.pseudonyms import MAX_CLASSES, ClassLimits
from gridledger.study_pseudonyms import FIRST_INTERVAL
from gridledger.roster import Roster
from gridledger.units import SECONDS_PER_HOUR, W_PER_KW, price_wei_per_wh, tokens, wei

TICKET_LEAD_INTERVALS = 2
"""A household's tickets run this many intervals ahead of the interval it orders for."""


def ticket_intervals(order_interval: int, n_intervals: int, bought_until: int) -> range:
    """The intervals whose tickets go out with the orders of `order_interval`: from `bought_until` (the first not yet
    bought) up to `order_interval` + `TICKET_LEAD_INTERVALS`, none before `FIRST_INTERVAL` or past the study."""
    return range(max(bought_until, FIRST_INTERVAL), min(order_interval + TICKET_LEAD_INTERVALS, n_intervals - 1) + 1)


def traded(interval: int, n_intervals: int) -> bool:
    """Whether households trade `interval` under pseudonyms (a request, a registration, orders, a reading)."""
    return FIRST_INTERVAL <= interval < n_intervals


def _rounded_up(value_w: int, step_w: int) -> int:
    return math.ceil(value_w / step_w) * step_w


def _order(c: ClassLimits) -> tuple[int, int, int]:
    return c.meter_rating_w, c.pv_w, c.battery_w


def _cover(a: ClassLimits, b: ClassLimits) -> ClassLimits:
    """The smallest class that covers both."""
    return ClassLimits(max(a.meter_rating_w, b.meter_rating_w), max(a.pv_w, b.pv_w), max(a.battery_w, b.battery_w))


def _added_w(a: ClassLimits, b: ClassLimits, groups: dict[ClassLimits, list[int]]) -> int:
    """Power the merger of classes `a` and `b` grants their households beyond their own class's limits, summed over
    households and limits. [W]"""
    cover = sum(_order(_cover(a, b)))
    return (cover - sum(_order(a))) * len(groups[a]) + (cover - sum(_order(b))) * len(groups[b])


def household_classes(limits: Sequence[ProsumerLimits], step_kw: float,
                      min_size: int = 1) -> tuple[list[ClassLimits], list[int]]:
    """The classes of the households' limits and each household's class.

    Each limit is rounded up to a multiple of `step_kw` (a meter rating to
    at least one step); households with the same rounded limits share a
    class. While there are more than ``MAX_CLASSES`` the step doubles.
    Then, while a class holds fewer than `min_size` households, the
    smallest (the lowest limits first among equals) merges with the class
    whose merger grants its households the least power beyond their own
    class's limits (`_added_w`), so no class singles out
    fewer than `min_size` households (k-anonymity of the class; Sweeney
    2002) unless all of them are fewer.

    Parameters
    ----------
    limits : sequence of ProsumerLimits
        Each household's registered limits, in prosumer order. [W]
    step_kw : float
        The rounding step (``pseudonyms.class_step_kw``). [kW]
    min_size : int
        Fewest households of a class (``pseudonyms.min_class_size``).

    Returns
    -------
    classes : list of ClassLimits
        The classes, sorted by meter rating, PV peak, battery power; each
        covers its households' limits. [W]
    index : list of int
        Each household's class.
    """
    step_w = math.ceil(step_kw * W_PER_KW)
    while True:
        rounded = [ClassLimits(max(step_w, _rounded_up(lim.meter_rating_w, step_w)), _rounded_up(lim.pv_w, step_w),
                               _rounded_up(lim.battery_w, step_w)) for lim in limits]
        if len(set(rounded)) <= MAX_CLASSES:
            break
        step_w *= 2
    groups: dict[ClassLimits, list[int]] = {}
    for i, c in enumerate(rounded):
        groups.setdefault(c, []).append(i)
    while len(groups) > 1 and min(len(members) for members in groups.values()) < min_size:
        small = min(groups, key=lambda c: (len(groups[c]), _order(c)))
        other = min((c for c in groups if c != small), key=lambda c: (_added_w(small, c, groups), _order(c)))
        members = groups.pop(small) + groups.pop(other)
        groups.setdefault(_cover(small, other), []).extend(members)
    classes = sorted(groups, key=_order)
    index = [0] * len(limits)
    for position, c in enumerate(classes):
        for i in groups[c]:
            index[i] = position
    return classes, index


def study_classes(sc: Roster) -> tuple[list[ClassLimits], list[int]]:
    """The classes of the study's households and each household's class (`household_classes` with the study's
    ``pseudonyms.class_step_kw`` and ``min_class_size``)."""
    spec = sc.study.pseudonyms
    return household_classes(prosumer_limits(sc), spec.class_step_kw, spec.min_class_size)


def pseudonym_addresses(owner_keys: Sequence[bytes], n_intervals: int) -> list[list[str]]:
    """Each interval's pseudonym of each household, by interval and household ("" before `FIRST_INTERVAL`): the
    simulation's ground truth, derived from the owners' keys (nothing on chain holds it)."""
    return [["" if k < FIRST_INTERVAL else pn.pseudonym_account(key, k).address for key in owner_keys]
            for k in range(n_intervals)]


def household_of_pseudonyms(addresses: Sequence[Sequence[str]]) -> dict[str, int]:
    """Every pseudonym of `addresses` (`pseudonym_addresses`), by address, to its household's position (ground
    truth)."""
    return {address: i for row in addresses for i, address in enumerate(row) if address}


def bond_wei(sc: Roster) -> int:
    """What a ticket costs and its pseudonym holds: ``pseudonyms.bond``, or by default the largest class's grid bill
    for a whole interval at its meter rating, at the grid buy price plus fee. [wei]"""
    study = sc.study
    if study.pseudonyms.bond is not None:
        return wei(study.pseudonyms.bond)
    classes, _ = study_classes(sc)
    energy_wh = math.ceil(max(c.meter_rating_w for c in classes) * study.market_interval_s / SECONDS_PER_HOUR)
    market = study.market
    return energy_wh * (price_wei_per_wh(market.grid_buy_price_per_kwh) + price_wei_per_wh(market.grid_fee_per_kwh))


def funding_problem(sc: Roster) -> str | None:
    """Why a household's endowment cannot pay a bond for every interval, or None if it can: the tickets of the traded
    intervals and, at most a bond each, the bills its own account pays for the intervals before them."""
    study = sc.study
    needed = tokens(bond_wei(sc) * study.n_intervals)
    if study.market.endowment < needed:
        return (f"market.endowment: {study.market.endowment} token cannot pay a bond of {tokens(bond_wei(sc)):g} token "
                f"(pseudonyms.bond) for each of the {study.n_intervals} intervals (the tickets of the "
                f"{study.n_intervals - FIRST_INTERVAL} traded ones, the bills of the {FIRST_INTERVAL} before); "
                f"allowed: at least {needed:g}")
    return None
