"""Households in the reserve and load shed markets: who takes part, what each offers or enrols, at what price.

* **Reserve providers** are the battery owners. At the notice each offers
  every reserve window the same power: its battery rating, at most what
  its stored energy above the minimum state of charge delivers over all
  the windows together (it keeps that energy from the award on,
  `gridledger.agents.ancillary_duties`; with ``reserve.schedule_charging``
  the energy of a full charge, which it charges for before the windows). Its capacity price is drawn
  between a fifth of the cap and the cap; its activation price between the
  grid buy price, at which it recharges what it delivered, and the cap.
* **Interruptible loads** are a seeded ``load_shed.share`` of the
  households without a battery (a household does not answer both: one
  meter cannot tell the two responses apart). Each enrols what its
  expected load keeps up over every capped step, at most
  ``load_shed.shed_kw``, so it does not promise what it will not have on
  to switch off; its prices are drawn between half the caps and the caps.

Draws are seeded by the study seed, the household and a stream of their
own, so the same study offers the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gridledger.units import SECONDS_PER_HOUR, W_PER_KW

_RESERVE_STREAM = 1_547_015
_SHED_STREAM = 1_547_016
_LEAST_CAPACITY_SHARE = 0.2
_LEAST_SHED_SHARE = 0.5


@dataclass(frozen=True)
class ReserveWindow:
    """A reserve window as posted: its id, market interval, span (study time) and price caps. [s], [wei/Wh]"""

    window_id: int
    interval: int
    capacity_w: int
    start_s: int
    end_s: int
    capacity_price_cap_wei_per_wh: int
    activation_price_cap_wei_per_wh: int


@dataclass(frozen=True)
class ReserveOffer:
    """One household's offer to one reserve window. [W], [wei/Wh], [s]"""

    agent: int
    window_id: int
    p_w: int
    capacity_price_wei_per_wh: int
    activation_price_wei_per_wh: int
    response_s: int


@dataclass(frozen=True)
class Enrolment:
    """One interruptible load's enrolment in the load shed programme. [W], [s], [wei], [wei/Wh]"""

    agent: int
    shed_w: int
    notice_s: int
    max_events_per_day: int
    price_per_event_wei: int
    price_per_wh_wei: int


def _draws(seed: int, agent: int, stream: int) -> np.ndarray:
    """Two seeded uniform draws in [0, 1) of one household's prices."""
    return np.random.default_rng([seed, agent, stream]).random(2)


def _between(draw: float, low: int, cap: int) -> int:
    """``low + floor(draw * (cap - low))``, the cap if `low` is above it."""
    return min(cap, low + int(draw * max(0, cap - low)))


def reserve_offers(windows: list[ReserveWindow], rating_kw: np.ndarray, deliverable_kwh: np.ndarray, *,
                   min_offer_w: int, response_s: int, recharge_wei_per_wh: int, seed: int) -> list[ReserveOffer]:
    """Every battery owner's offers to `windows`, the same power in each.

    Parameters
    ----------
    windows : list of ReserveWindow
        The windows posted.
    rating_kw : ndarray, shape (agent,)
        Battery power rating, 0 without a battery. [kW]
    deliverable_kwh : ndarray, shape (agent,)
        Energy the battery can deliver at the meter from its present charge
        above the minimum state of charge. [kWh]
    min_offer_w : int
        The contract's least offer; smaller ones are not sent. [W]
    response_s : int
        The response time offered. [s]
    recharge_wei_per_wh : int
        Grid buy price, the least activation price. [wei/Wh]
    seed : int
        The study seed.
    """
    hours = sum(w.end_s - w.start_s for w in windows) / SECONDS_PER_HOUR
    if not windows or hours <= 0:
        return []
    offers = []
    for i in np.flatnonzero(rating_kw > 0):
        p_w = math.floor(min(rating_kw[i], max(0.0, deliverable_kwh[i]) / hours) * W_PER_KW)
        if p_w < min_offer_w:
            continue
        capacity_draw, activation_draw = _draws(seed, int(i), _RESERVE_STREAM)
        for w in windows:
            cap = w.capacity_price_cap_wei_per_wh
            offers.append(ReserveOffer(
                int(i), w.window_id, p_w,
                _between(capacity_draw, math.ceil(_LEAST_CAPACITY_SHARE * cap), cap),
                _between(activation_draw, recharge_wei_per_wh, w.activation_price_cap_wei_per_wh), response_s))
    return offers


def interruptible(n_agents: int, has_battery: np.ndarray, share: float, seed: int) -> np.ndarray:
    """The households with an interruptible load: a seeded `share` of those without a battery, at least one if any."""
    candidates = np.flatnonzero(~has_battery)
    if not len(candidates):
        return candidates
    count = max(1, round(share * len(candidates)))
    chosen = np.random.default_rng([seed, _SHED_STREAM]).choice(candidates, size=count, replace=False)
    return np.sort(chosen)


def enrolments(agents: np.ndarray, expected_load_kw: np.ndarray, *, shed_kw: float, min_shed_w: int, notice_s: int,
               max_events_per_day: int, price_per_event_cap_wei: int, price_per_wh_cap_wei: int,
               seed: int) -> list[Enrolment]:
    """The enrolments of the interruptible `agents`.

    `expected_load_kw` is every household's expected load in each capped
    step (step, agent) [kW]; each enrols its lowest, at most `shed_kw`, and
    none below `min_shed_w`.
    """
    out = []
    for i in agents:
        shed_w = math.floor(min(shed_kw, float(expected_load_kw[:, i].min(initial=shed_kw))) * W_PER_KW)
        if shed_w < min_shed_w:
            continue
        event_draw, energy_draw = _draws(seed, int(i), _SHED_STREAM)
        out.append(Enrolment(
            int(i), shed_w, notice_s, max_events_per_day,
            _between(event_draw, math.ceil(_LEAST_SHED_SHARE * price_per_event_cap_wei), price_per_event_cap_wei),
            _between(energy_draw, math.ceil(_LEAST_SHED_SHARE * price_per_wh_cap_wei), price_per_wh_cap_wei)))
    return out
