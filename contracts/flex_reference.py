"""Reference implementation of the voltage-regulation flexibility market.

Pure functions in the integer arithmetic of ``VoltageRegulation.vy``:
:func:`award_offers` follows ``award`` and :func:`settle_awards` the
settlement by ``post_delivery`` and ``close``, to the wei; the contract
tests check the chain against them.

Units: power [W], window [s], energy [Wh] with
E(p) = floor(p * window_s / 3600), prices [wei/Wh], voltage sensitivity
|dV| per kW changed at a bus [upu/kW] (1 upu = 1e-6 pu), penalty factor
[1/1000]. Payments, penalties and refunds are >= 0 and named by who
receives them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridledger.units import SECONDS_PER_HOUR

PERMILLE = 1000


@dataclass(frozen=True)
class FlexRequest:
    """One flexibility request of the operator.

    Attributes
    ----------
    sensitivities_upu_per_kw : mapping of int to int
        Zone bus id to the voltage sensitivity the operator published
        for it, each > 0. [upu/kW]
    p_w : int
        Power wanted. [W]
    window_s : int
        Length of the delivery window. [s]
    price_cap_wei_per_wh : int
        Highest offer price. [wei/Wh]
    """

    sensitivities_upu_per_kw: Mapping[int, int]
    p_w: int
    window_s: int
    price_cap_wei_per_wh: int


@dataclass(frozen=True)
class FlexOffer:
    """One DER's offer, in offer order.

    Attributes
    ----------
    der : str
        Address of the DER (prosumer).
    p_w : int
        Power offered. [W]
    price_wei_per_wh : int
        Pay-as-bid price of delivered flexibility energy. [wei/Wh]
    bus : int
        Bus the DER is registered at (``register_der``), one of the
        request's zone; the DER does not choose it.
    """

    der: str
    p_w: int
    price_wei_per_wh: int
    bus: int


@dataclass(frozen=True)
class Award:
    """The award of one offer, as the contract's ``Awarded`` event gives it.

    Attributes
    ----------
    offer_index : int
        Index of the offer in offer order.
    rank : int
        Place in the ranking, 0 = most effective per token.
    der : str
        Address of the DER.
    price_wei_per_wh : int
        Offer price. [wei/Wh]
    offered_p_w : int
        Power offered. [W]
    p_w : int
        Power awarded, 0 if the offer is left out. [W]
    energy_wh : int
        Energy awarded, E(p_w). [Wh]
    """

    offer_index: int
    rank: int
    der: str
    price_wei_per_wh: int
    offered_p_w: int
    p_w: int
    energy_wh: int


@dataclass(frozen=True)
class FlexSettlement:
    """Token flows of a closed request; every amount >= 0. [wei]

    Attributes
    ----------
    payments_wei : dict of str to int
        Pay-as-bid payment of each awarded DER from the budget.
    penalties_wei : dict of str to int
        Shortfall penalty of each awarded DER, taken from its bond into
        the request's penalty pool.
    bond_refunds_wei : dict of str to int
        Bond returned to each offering DER, at award and at settlement.
    operator_refund_wei : int
        Paid to the operator at close: the unspent budget.
    penalty_shares_wei : dict of str to int
        Share of the penalty pool paid at close to each awarded DER
        with a non-zero share.
    reserve_wei : int
        Penalties left unshared, carried to the next request closed.
    """

    payments_wei: dict[str, int]
    penalties_wei: dict[str, int]
    bond_refunds_wei: dict[str, int]
    operator_refund_wei: int
    penalty_shares_wei: dict[str, int]
    reserve_wei: int


def energy_wh(p_w: int, window_s: int) -> int:
    """Energy of ``p_w`` held for ``window_s``, rounded down.

    Parameters
    ----------
    p_w : int
        Power. [W]
    window_s : int
        Duration. [s]

    Returns
    -------
    int
        floor(p_w * window_s / 3600). [Wh]
    """
    return p_w * window_s // SECONDS_PER_HOUR


def bond_wei(energy_wh_: int, price_wei_per_wh: int, penalty_permille: int) -> int:
    """Bond for, and penalty on a shortfall of, ``energy_wh_`` at ``price_wei_per_wh``.

    Parameters
    ----------
    energy_wh_ : int
        Energy. [Wh]
    price_wei_per_wh : int
        Offer price. [wei/Wh]
    penalty_permille : int
        Penalty factor. [1/1000]

    Returns
    -------
    int
        floor(energy_wh_ * price * penalty_permille / 1000). [wei]
    """
    return energy_wh_ * price_wei_per_wh * penalty_permille // PERMILLE


def budget_wei(request: FlexRequest) -> int:
    """Budget the operator escrows: E(p_w) times the price cap. [wei]"""
    return energy_wh(request.p_w, request.window_s) * request.price_cap_wei_per_wh


def offer_bond_wei(request: FlexRequest, offer: FlexOffer, penalty_permille: int) -> int:
    """Bond a DER escrows with ``offer``: the bond of its offered energy. [wei]"""
    return bond_wei(energy_wh(offer.p_w, request.window_s), offer.price_wei_per_wh, penalty_permille)


def offer_refusal(request: FlexRequest, offer: FlexOffer, rating_w: int, min_offer_w: int, min_bond_wei: int,
                  penalty_permille: int) -> str | None:
    """Reason ``offer`` asks ``VoltageRegulation.offer`` to revert with, or None if its terms pass.

    ``offer.bus`` is the DER's registered bus and ``rating_w`` its
    registered rating [W]; ``min_offer_w`` [W] and ``min_bond_wei`` [wei]
    are the contract's minima. The checks run in the contract's order; the
    caller's role and registration, the phase, a second offer, a full
    request and the token allowance are not modelled here.
    """
    energy = energy_wh(offer.p_w, request.window_s)
    checks = [
        (offer.p_w == 0, "zero power"),
        (offer.p_w < min_offer_w, "power below minimum"),
        (offer.p_w > request.p_w, "power above request"),
        (offer.p_w > rating_w, "power above rating"),
        (energy == 0, "zero energy"),
        (offer.price_wei_per_wh == 0, "zero price"),
        (offer.price_wei_per_wh > request.price_cap_wei_per_wh, "price above cap"),
        (offer.bus not in request.sensitivities_upu_per_kw, "bus not in zone"),
        (bond_wei(energy, offer.price_wei_per_wh, penalty_permille) < min_bond_wei, "bond below minimum"),
    ]
    return next((f"flexibility: {reason}" for refused, reason in checks if refused), None)


def rank_offers(request: FlexRequest, offers: Sequence[FlexOffer]) -> list[int]:
    """Indices of ``offers``, most effective per token first.

    An offer's cost of voltage change is its price divided by the
    sensitivity of its bus; a ranks before b if
    price_a * s_b < price_b * s_a (exact, no division); equal ratios
    keep offer order.
    """
    sensitivity = request.sensitivities_upu_per_kw

    def ahead(a: int, b: int) -> bool:
        return offers[a].price_wei_per_wh * sensitivity[offers[b].bus] < (
            offers[b].price_wei_per_wh * sensitivity[offers[a].bus]
        )

    ranking: list[int] = []
    for index in range(len(offers)):
        place = len(ranking)
        while place and ahead(index, ranking[place - 1]):
            place -= 1
        ranking.insert(place, index)
    return ranking


def award_offers(request: FlexRequest, offers: Sequence[FlexOffer]) -> list[Award]:
    """Award ``offers`` in the order of :func:`rank_offers`.

    Each offer in rank order gets the smaller of its power and the
    requested power not yet covered: the last awarded offer may be
    partial, the rest get 0, and a request offered less than it wants
    awards every offer in full.

    Parameters
    ----------
    request : FlexRequest
        The request; every offer's bus must be in its zone.
    offers : sequence of FlexOffer
        Offers in offer order, one per DER.

    Returns
    -------
    list of Award
        One per offer, in rank order.
    """
    if len({offer.der for offer in offers}) != len(offers):
        raise ValueError("a DER may offer only once per request")
    outside = [offer.bus for offer in offers if offer.bus not in request.sensitivities_upu_per_kw]
    if outside:
        raise ValueError(f"offers at buses {outside} outside the zone")
    left_w = request.p_w
    awards = []
    for rank, index in enumerate(rank_offers(request, offers)):
        offer = offers[index]
        p_w = min(offer.p_w, left_w)
        left_w -= p_w
        awards.append(
            Award(index, rank, offer.der, offer.price_wei_per_wh, offer.p_w, p_w, energy_wh(p_w, request.window_s))
        )
    return awards


def settle_awards(
    request: FlexRequest,
    awards: Sequence[Award],
    deliveries_wh: Mapping[str, int],
    penalty_permille: int,
    reserve_wei: int = 0,
) -> FlexSettlement:
    """Token flows of a request from its awards to its close.

    An awarded DER with delivered energy d is paid min(d, E) * price
    (pay-as-bid, E its awarded energy) and penalised
    floor((E - min(d, E)) * price * penalty_permille / 1000) from its
    bond; an awarded DER without a delivery counts d = 0. Each DER gets
    back its offered bond minus its penalty. The operator gets the
    budget minus the payments. The penalty pool P (the penalties plus
    the carried ``reserve_wei``) is shared among the awarded DERs pro
    rata to their paid energy w = min(d, E), floor(P * w / sum w); the
    rest is the new reserve.

    Parameters
    ----------
    request : FlexRequest
        The request.
    awards : sequence of Award
        Every offer's award, as :func:`award_offers` returns them.
    deliveries_wh : mapping of str to int
        Delivered energy posted for each DER with a non-zero award. [Wh]
    penalty_permille : int
        Penalty factor of the contract. [1/1000]
    reserve_wei : int
        The contract's penalty reserve before the close. [wei]

    Returns
    -------
    FlexSettlement
        Payments, penalties, bond refunds, the operator's refund, the
        penalty shares and the reserve after the close.
    """
    unawarded = sorted(set(deliveries_wh) - {award.der for award in awards if award.p_w})
    if unawarded:
        raise ValueError(f"deliveries of DERs without an award: {unawarded}")
    payments, penalties, refunds, paid = {}, {}, {}, {}
    for award in awards:
        offered_bond_wei = bond_wei(energy_wh(award.offered_p_w, request.window_s), award.price_wei_per_wh,
                                    penalty_permille)
        penalty_wei = 0
        if award.p_w:
            paid_wh = min(deliveries_wh.get(award.der, 0), award.energy_wh)
            paid[award.der] = paid_wh
            payments[award.der] = paid_wh * award.price_wei_per_wh
            penalty_wei = bond_wei(award.energy_wh - paid_wh, award.price_wei_per_wh, penalty_permille)
            penalties[award.der] = penalty_wei
        refunds[award.der] = offered_bond_wei - penalty_wei
    operator_refund_wei = budget_wei(request) - sum(payments.values())
    pool_wei, paid_total_wh = reserve_wei + sum(penalties.values()), sum(paid.values())
    shares = {der: pool_wei * w // paid_total_wh for der, w in paid.items()} if paid_total_wh else {}
    shares = {der: share for der, share in shares.items() if share}
    return FlexSettlement(payments, penalties, refunds, operator_refund_wei, shares, pool_wei - sum(shares.values()))
