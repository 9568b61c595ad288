"""PV owners in the voltage-regulation market: bonds, curtailment offers, awards turned into curtailment.

The operator posts a request (zone of buses, power, window, price cap) for
an interval (`contracts/VoltageRegulation.vy`). Every PV owner whose
registered bus is in the zone offers its expected mean PV power over the
interval, at most the requested power and its registered inverter rating,
at a price drawn between the feed-in tariff it forgoes by curtailing and
the request's cap; it sends no offer the contract would refuse (below the
minimum power, under 1 Wh over the window, or a bond below the minimum). What the
contract awards, an owner curtails from its PV during the interval
(`gridledger.agents.devices`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.contracts import flexibility as flex
from gridledger.contracts.client import Wallet
from gridledger.contracts.flex_reference import bond_wei
from gridledger.roster import Roster
from gridledger.units import PERMILLE, W_PER_KW, energy_wh, wei

MIN_OFFER_WH = 1
"""Least energy an offer covers over the request's window; smaller offers are not sent. [Wh]"""
_PRICE_STREAM = 1547


@dataclass(frozen=True)
class OfferRules:
    """What the contract accepts of an offer, from the study.

    Attributes
    ----------
    rating_w : ndarray (prosumer,)
        Each agent's registered inverter rating, its PV kWp. [W]
    min_offer_w : int
        Least power of an offer. [W]
    min_bond_wei : int
        Least bond of an offer. [wei]
    penalty_permille : int
        Bond per Wh offered as a multiple of the price. [1/1000]
    """

    rating_w: np.ndarray
    min_offer_w: int
    min_bond_wei: int
    penalty_permille: int

    @classmethod
    def of(cls, sc: Roster) -> OfferRules:
        """The rules of the study's voltage-regulation market (`gridledger.study.Flexibility`)."""
        settings = sc.study.market.flexibility
        return cls(pv_rating_w(sc), round(settings.min_offer_kw * W_PER_KW), wei(settings.min_bond),
                   round(settings.penalty_factor * PERMILLE))


def pv_rating_w(sc: Roster) -> np.ndarray:
    """Every prosumer's PV inverter rating as registered on the contract: its kWp, to the nearest W. [W]"""
    return np.array([round(p.pv_kwp * W_PER_KW) for p in sc.prosumers], dtype=np.int64)


@dataclass(frozen=True)
class FlexRequest:
    """An operator's request as the ledger announces it.

    Attributes
    ----------
    request_id, interval : int
        The contract's request id; the market interval of its window.
    zone : dict of int to float
        Buses whose PV may answer, with their voltage sensitivity. [upu/kW]
    p_w : int
        Injection reduction requested. [W]
    price_cap_wei_per_wh : int
        Highest price the operator pays. [wei/Wh]
    window_s : int
        Length of the delivery window. [s]
    """

    request_id: int
    interval: int
    zone: dict[int, float]
    p_w: int
    price_cap_wei_per_wh: int
    window_s: int

    @classmethod
    def from_message(cls, body: dict) -> FlexRequest:
        """From one entry of a ``flex_requests`` message (JSON makes the zone's bus keys strings)."""
        return cls(body["request_id"], body["interval"], {int(b): s for b, s in body["zone"].items()},
                   body["p_w"], body["price_cap_wei_per_wh"], body["window_s"])


@dataclass(frozen=True)
class CurtailmentOffer:
    """One PV owner's offer to a request: power [W] at a price [wei/Wh], from its registered bus."""

    agent: int
    request_id: int
    p_w: int
    price_wei_per_wh: int
    bus: int


def pv_owners(pv_kw: np.ndarray) -> np.ndarray:
    """Agents whose PV produces at some step, the ones that post a bond. pv_kw: (step, prosumer) [kW]"""
    return np.flatnonzero(pv_kw.max(axis=0) > 0)


def bond_approvals(wallets: list[Wallet], owners: np.ndarray, token: str, spender: str,
                   bond_token: float) -> list[bytes]:
    """Each PV owner's approval of `bond_token` tokens of bond to the voltage-regulation contract `spender`."""
    return [flex.approve(wallets[i], token, spender, wei(bond_token)) for i in owners]


def expected_pv_w(sc: Roster, interval: int) -> np.ndarray:
    """Every agent's expected mean PV power over `interval`, from the noise-free forecast. [W]"""
    spi = sc.study.steps_per_interval
    window = slice(interval * spi, (interval + 1) * spi)
    kwp = np.array([p.pv_kwp for p in sc.prosumers])
    return (sc.pv_pu_expected[window] * kwp).mean(axis=0) * W_PER_KW


def offer_price_draw(seed: int, agent: int, interval: int) -> float:
    """Seeded uniform draw in [0, 1) for one agent's offer price in one interval."""
    return float(np.random.default_rng([seed, agent, interval, _PRICE_STREAM]).random())


def offer_price_wei_per_wh(draw: float, feed_in_wei_per_wh: int, cap_wei_per_wh: int) -> int:
    """Offer price ``feed_in + floor(draw * (cap - feed_in))``, at most the cap. [wei/Wh]

    A cap below the feed-in tariff is offered at the cap.
    """
    return min(cap_wei_per_wh, feed_in_wei_per_wh + int(draw * max(0, cap_wei_per_wh - feed_in_wei_per_wh)))


def curtailment_offers(requests: list[FlexRequest], buses: list[int], expected_w: np.ndarray, rules: OfferRules,
                       feed_in_wei_per_wh: int, seed: int, interval: int) -> list[CurtailmentOffer]:
    """Offers of every agent to `interval`'s requests, request by request, agents in prosumer order.

    Parameters
    ----------
    requests : list of FlexRequest
        The requests whose window is `interval`.
    buses : list of int
        Every agent's bus, as registered on the contract.
    expected_w : ndarray (prosumer,)
        Every agent's expected mean PV power over the interval. [W]
    rules : OfferRules
        Ratings, minimum power and bond the contract holds offers to.
    feed_in_wei_per_wh : int
        Grid feed-in tariff, what curtailed energy would have earned. [wei/Wh]
    seed : int
        Study seed of the price draws.
    """
    offers = []
    for request in requests:
        for i, bus in enumerate(buses):
            p_w = int(min(expected_w[i], request.p_w, rules.rating_w[i]))
            energy = energy_wh(p_w, request.window_s)
            if bus not in request.zone or p_w < rules.min_offer_w or energy < MIN_OFFER_WH:
                continue
            price = offer_price_wei_per_wh(offer_price_draw(seed, i, interval), feed_in_wei_per_wh,
                                           request.price_cap_wei_per_wh)
            if bond_wei(energy, price, rules.penalty_permille) < rules.min_bond_wei:
                continue
            offers.append(CurtailmentOffer(i, request.request_id, p_w, price, bus))
    return offers


def offer_tx(wallet: Wallet, address: str, offer: CurtailmentOffer) -> bytes:
    """Signed offer to the voltage-regulation contract at `address`."""
    return flex.offer(wallet, address, offer.request_id, p_w=offer.p_w, price_wei_per_wh=offer.price_wei_per_wh)


class Flexibility:
    """Requests received, offers made and awards won, per interval and agent; awards as curtailment."""

    def __init__(self, n_intervals: int, n_agents: int):
        self.requests: dict[int, list[FlexRequest]] = {}
        self.offer_w = np.zeros((n_intervals, n_agents), dtype=np.int64)
        self.awarded_w = np.zeros((n_intervals, n_agents), dtype=np.int64)
        self.curtail_kw = np.zeros((n_intervals, n_agents))

    def add_requests(self, requests: list[dict]) -> None:
        """Keep the requests of a ``flex_requests`` message by the interval they deliver in."""
        for body in requests:
            request = FlexRequest.from_message(body)
            self.requests.setdefault(request.interval, []).append(request)

    def offered(self, interval: int, offer: CurtailmentOffer) -> None:
        """Note an offer sent for `interval`."""
        self.offer_w[interval, offer.agent] = offer.p_w

    def award(self, awards: list[dict], index_of: dict[str, int]) -> None:
        """Add a ``flex_awards`` message's awards ``{interval, p_w: {address: W}}`` to what each agent curtails."""
        for award in awards:
            for address, p_w in award["p_w"].items():
                i = index_of[address]
                self.awarded_w[award["interval"], i] += p_w
                self.curtail_kw[award["interval"], i] += p_w / W_PER_KW
