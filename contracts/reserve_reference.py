"""Reference implementation of the operating-reserve market.

Pure functions in the integer arithmetic of ``OperatingReserve.vy``:
:func:`award_offers` follows ``award``, :func:`activate_awards`
``activate``, :func:`settle_awards` the settlement of each award by
``post_delivery`` or ``close``, and :func:`close_window` the whole close,
to the wei; the contract tests check the chain against them.

Units: power [W], durations [s], timestamps [s since the Unix epoch],
energy [Wh] with E(p, s) = floor(p * s / 3600), prices [wei/Wh] (the
capacity price per Wh of reserved capacity-time, the activation price per
Wh delivered when activated), penalty factor [1/1000]. Payments,
penalties and refunds are >= 0 and named by who receives them.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridledger.contracts.flex_reference import bond_wei, energy_wh

PRODUCT_REGULATING = 0
PRODUCT_SPINNING = 1
PRODUCT_SUPPLEMENTAL = 2
LONGEST_RESPONSE_S = {PRODUCT_REGULATING: 300, PRODUCT_SPINNING: 600, PRODUCT_SUPPLEMENTAL: 1800}
"""Longest response time an offer may promise, by product. [s]

Regulating: the 5-minute full activation time of the European aFRR
standard product (EU 2017/2195, PICASSO); spinning: CAISO's 10-minute
rule for spinning and non-spinning reserve; supplemental: the 30-minute
operating reserve of NYISO and ISO-NE. A feeder study honours them as
contract terms, in whole power-flow steps; it has no frequency dynamics.
"""


@dataclass(frozen=True)
class ReserveWindow:
    """One reserve window of the operator.

    Attributes
    ----------
    product : int
        ``PRODUCT_REGULATING``, ``PRODUCT_SPINNING`` or ``PRODUCT_SUPPLEMENTAL``.
    capacity_w : int
        Reserve capacity wanted. [W]
    window_start_timestamp, window_end_timestamp : int
        The window. [s since the Unix epoch]
    capacity_price_cap_wei_per_wh : int
        Highest capacity price. [wei/Wh]
    activation_price_cap_wei_per_wh : int
        Highest activation price; prices every bond and penalty. [wei/Wh]
    """

    product: int
    capacity_w: int
    window_start_timestamp: int
    window_end_timestamp: int
    capacity_price_cap_wei_per_wh: int
    activation_price_cap_wei_per_wh: int

    @property
    def window_s(self) -> int:
        """Length of the window. [s]"""
        return self.window_end_timestamp - self.window_start_timestamp


@dataclass(frozen=True)
class ReserveOffer:
    """One provider's offer, in offer order.

    Attributes
    ----------
    provider : str
        Address of the provider (a registered prosumer).
    p_w : int
        Reserve power offered. [W]
    capacity_price_wei_per_wh : int
        Pay-as-bid price of availability. [wei/Wh]
    activation_price_wei_per_wh : int
        Pay-as-bid price of energy delivered when activated. [wei/Wh]
    response_s : int
        Time the provider needs to deliver once activated. [s]
    """

    provider: str
    p_w: int
    capacity_price_wei_per_wh: int
    activation_price_wei_per_wh: int
    response_s: int


@dataclass(frozen=True)
class Award:
    """The award of one offer, as the contract's ``Awarded`` event gives it.

    Attributes
    ----------
    offer_index : int
        Index of the offer in offer order.
    rank : int
        Place in the merit order, 0 = cheapest capacity.
    provider : str
        Address of the provider.
    capacity_price_wei_per_wh : int
        Offer's capacity price. [wei/Wh]
    offered_p_w : int
        Power offered. [W]
    p_w : int
        Power awarded, 0 if the offer is left out. [W]
    energy_wh : int
        Energy awarded, E(p_w, window_s). [Wh]
    """

    offer_index: int
    rank: int
    provider: str
    capacity_price_wei_per_wh: int
    offered_p_w: int
    p_w: int
    energy_wh: int


@dataclass(frozen=True)
class Activation:
    """The activation of one award, as an ``Activated`` or ``ActivationSkipped`` event gives it.

    Attributes
    ----------
    offer_index : int
        Index of the offer in offer order.
    provider : str
        Address of the provider.
    p_w : int
        Power activated; 0 for a skipped award. [W]
    from_timestamp : int
        When the award must deliver from: the activation plus its
        response time, the window start at the earliest. [s since the
        Unix epoch]
    energy_wh : int
        Energy activated, E(p_w, window end - from); 0 for a skipped
        award. [Wh]
    """

    offer_index: int
    provider: str
    p_w: int
    from_timestamp: int
    energy_wh: int


@dataclass(frozen=True)
class AwardSettlement:
    """Token flows of one award at its settlement; every amount >= 0.

    Attributes
    ----------
    capacity_payment_wei : int
        Payment for availability, withheld pro rata to an activated
        shortfall. [wei]
    energy_payment_wei : int
        Payment for activated energy delivered. [wei]
    penalty_wei : int
        Taken from the bond into the window's penalty pool. [wei]
    bond_refund_wei : int
        Rest of the bond of the awarded power, back to the provider. [wei]
    availability_wh : int
        Availability paid for, the weight of the award's share of the
        penalty pool. [Wh]
    """

    capacity_payment_wei: int
    energy_payment_wei: int
    penalty_wei: int
    bond_refund_wei: int
    availability_wh: int


@dataclass(frozen=True)
class ReserveSettlement:
    """Token flows of a closed window; every amount >= 0. [wei]

    Attributes
    ----------
    capacity_payments_wei, energy_payments_wei, penalties_wei : dict of str to int
        Of each awarded provider (award > 0 W).
    bond_refunds_wei : dict of str to int
        Bond returned to each offering provider, at award and at
        settlement (all of it if the window lapsed).
    operator_refund_wei : int
        Paid to the operator at close: the unspent budget.
    penalty_shares_wei : dict of str to int
        Share of the penalty pool paid at close to each award with a
        non-zero share.
    reserve_wei : int
        Penalties left unshared, carried to the next window closed.
    """

    capacity_payments_wei: dict[str, int]
    energy_payments_wei: dict[str, int]
    penalties_wei: dict[str, int]
    bond_refunds_wei: dict[str, int]
    operator_refund_wei: int
    penalty_shares_wei: dict[str, int]
    reserve_wei: int


def budget_wei(capacity_w: int, window_s: int, capacity_price_cap_wei_per_wh: int,
               activation_price_cap_wei_per_wh: int) -> int:
    """Budget the operator escrows for a window.

    Parameters
    ----------
    capacity_w : int
        Reserve capacity wanted. [W]
    window_s : int
        Length of the window. [s]
    capacity_price_cap_wei_per_wh, activation_price_cap_wei_per_wh : int
        The window's price caps. [wei/Wh]

    Returns
    -------
    int
        E(capacity_w, window_s) * (capacity cap + activation cap). [wei]
    """
    return energy_wh(capacity_w, window_s) * (capacity_price_cap_wei_per_wh + activation_price_cap_wei_per_wh)


def window_budget_wei(window: ReserveWindow) -> int:
    """Budget the operator escrows for ``window`` (:func:`budget_wei`). [wei]"""
    return budget_wei(window.capacity_w, window.window_s, window.capacity_price_cap_wei_per_wh,
                      window.activation_price_cap_wei_per_wh)


def offer_bond_wei(window: ReserveWindow, offer: ReserveOffer, penalty_permille: int) -> int:
    """Bond a provider escrows with ``offer``: the bond of its offered energy at the activation cap. [wei]"""
    return bond_wei(energy_wh(offer.p_w, window.window_s), window.activation_price_cap_wei_per_wh, penalty_permille)


def offer_refusal(window: ReserveWindow, offer: ReserveOffer, rating_w: int, min_offer_w: int, min_bond_wei: int,
                  penalty_permille: int) -> str | None:
    """Reason ``offer`` asks ``OperatingReserve.offer`` to revert with, or None if its terms pass.

    ``rating_w`` is the provider's registered rating [W]; ``min_offer_w``
    [W] and ``min_bond_wei`` [wei] are the contract's minima. The checks
    run in the contract's order; the caller's role and registration, the
    phase, a second offer, a full window and the token allowance are not
    modelled here.
    """
    checks = [
        (offer.p_w < min_offer_w, "power below minimum"),
        (offer.p_w > window.capacity_w, "power above capacity"),
        (offer.p_w > rating_w, "power above rating"),
        (energy_wh(offer.p_w, window.window_s) == 0, "zero energy"),
        (offer.capacity_price_wei_per_wh > window.capacity_price_cap_wei_per_wh, "capacity price above cap"),
        (offer.activation_price_wei_per_wh > window.activation_price_cap_wei_per_wh, "activation price above cap"),
        (offer.response_s > LONGEST_RESPONSE_S[window.product], "response too slow"),
        (offer_bond_wei(window, offer, penalty_permille) < min_bond_wei, "bond below minimum"),
    ]
    return next((f"reserve: {reason}" for refused, reason in checks if refused), None)


def merit_order(prices_wei_per_wh: Sequence[int]) -> list[int]:
    """Indices of ``prices_wei_per_wh``, cheapest first; equal prices keep their order."""
    return sorted(range(len(prices_wei_per_wh)), key=prices_wei_per_wh.__getitem__)


def award_offers(window: ReserveWindow, offers: Sequence[ReserveOffer]) -> list[Award]:
    """Award ``offers`` by capacity price ascending (:func:`merit_order`).

    Each offer in rank order gets the smaller of its power and the
    capacity not yet covered: the last awarded offer may be partial, the
    rest get 0, and a window offered less than it wants awards every
    offer in full.

    Parameters
    ----------
    window : ReserveWindow
        The window.
    offers : sequence of ReserveOffer
        Offers in offer order, one per provider.

    Returns
    -------
    list of Award
        One per offer, in rank order.
    """
    if len({offer.provider for offer in offers}) != len(offers):
        raise ValueError("a provider may offer only once per window")
    left_w = window.capacity_w
    awards = []
    for rank, index in enumerate(merit_order([offer.capacity_price_wei_per_wh for offer in offers])):
        offer = offers[index]
        p_w = min(offer.p_w, left_w)
        left_w -= p_w
        awards.append(Award(index, rank, offer.provider, offer.capacity_price_wei_per_wh, offer.p_w, p_w,
                            energy_wh(p_w, window.window_s)))
    return awards


def activate_awards(window: ReserveWindow, offers: Sequence[ReserveOffer], awards: Sequence[Award], p_w: int,
                    timestamp: int) -> list[Activation]:
    """Activate ``p_w`` of the awarded reserve at ``timestamp`` by activation price ascending.

    Awards take their turn by their offer's activation price (equal
    prices keep offer order). Each is activated for the smaller of its
    awarded power and ``p_w`` still unactivated, delivering from
    ``from`` = max(timestamp + its response time, window start) to the
    window end, E_act = E(p_act, end - from). An award with E_act = 0 is
    skipped and takes none of ``p_w``; once ``p_w`` is covered the rest
    are not activated.

    Parameters
    ----------
    window : ReserveWindow
        The window, awarded; ``timestamp`` is before its end (ahead of its
        start, the awards deliver from the start at the earliest).
    offers : sequence of ReserveOffer
        Offers in offer order.
    awards : sequence of Award
        Every offer's award, as :func:`award_offers` returns them.
    p_w : int
        Power the operator activates, > 0. [W]
    timestamp : int
        Time of the activation. [s since the Unix epoch]

    Returns
    -------
    list of Activation
        Activated and skipped awards, in activation order.
    """
    if timestamp >= window.window_end_timestamp:
        raise ValueError(f"activation at {timestamp} after the window end {window.window_end_timestamp}")
    awarded_p_w = {award.offer_index: award.p_w for award in awards}
    left_w = p_w
    activations = []
    for index in merit_order([offer.activation_price_wei_per_wh for offer in offers]):
        if left_w == 0:
            break
        offer = offers[index]
        if awarded_p_w[index] == 0:
            continue
        from_timestamp = max(timestamp + offer.response_s, window.window_start_timestamp)
        activated_p_w = min(awarded_p_w[index], left_w)
        energy = energy_wh(activated_p_w, max(0, window.window_end_timestamp - from_timestamp))
        if energy == 0:
            activations.append(Activation(index, offer.provider, 0, from_timestamp, 0))
            continue
        left_w -= activated_p_w
        activations.append(Activation(index, offer.provider, activated_p_w, from_timestamp, energy))
    return activations


def settle_award(window: ReserveWindow, offer: ReserveOffer, award_p_w: int, activated_wh: int, delivered_wh: int,
                 penalty_permille: int) -> AwardSettlement:
    """Token flows of one award of ``award_p_w`` > 0 at its settlement.

    Not activated (``activated_wh`` = 0): capacity payment E_aw * c and
    the whole bond back. Activated with delivered d: w = min(d, E_act);
    capacity payment floor(E_aw * c * w / E_act), energy payment w * a,
    penalty B(E_act - w) from the bond, the rest of the bond back.

    Parameters
    ----------
    window : ReserveWindow
        The window.
    offer : ReserveOffer
        The awarded offer (its prices c and a).
    award_p_w : int
        Power awarded. [W]
    activated_wh : int
        Energy activated, E_act; 0 if not activated. [Wh]
    delivered_wh : int
        Energy delivered, d; ignored if not activated. [Wh]
    penalty_permille : int
        Penalty factor of the contract. [1/1000]
    """
    awarded_wh = energy_wh(award_p_w, window.window_s)
    held_wei = bond_wei(awarded_wh, window.activation_price_cap_wei_per_wh, penalty_permille)
    capacity_wei = awarded_wh * offer.capacity_price_wei_per_wh
    if not activated_wh:
        return AwardSettlement(capacity_wei, 0, 0, held_wei, awarded_wh)
    paid_wh = min(delivered_wh, activated_wh)
    penalty_wei = bond_wei(activated_wh - paid_wh, window.activation_price_cap_wei_per_wh, penalty_permille)
    return AwardSettlement(capacity_wei * paid_wh // activated_wh, paid_wh * offer.activation_price_wei_per_wh,
                           penalty_wei, held_wei - penalty_wei, awarded_wh * paid_wh // activated_wh)


def settle_awards(window: ReserveWindow, offers: Sequence[ReserveOffer], awards: Sequence[Award],
                  activations: Sequence[Activation], deliveries_wh: Mapping[str, int],
                  penalty_permille: int) -> dict[str, AwardSettlement]:
    """Settlement of every award > 0 W (:func:`settle_award`), by provider.

    ``deliveries_wh`` holds the delivery [Wh] posted for activated
    providers; an activated provider without one counts d = 0.
    """
    activated_wh = {a.provider: a.energy_wh for a in activations if a.energy_wh}
    stray = sorted(set(deliveries_wh) - set(activated_wh))
    if stray:
        raise ValueError(f"deliveries of providers not activated: {stray}")
    return {
        award.provider: settle_award(window, offers[award.offer_index], award.p_w,
                                     activated_wh.get(award.provider, 0), deliveries_wh.get(award.provider, 0),
                                     penalty_permille)
        for award in awards
        if award.p_w
    }


def close_window(window: ReserveWindow, offers: Sequence[ReserveOffer], awards: Sequence[Award] | None,
                 activations: Sequence[Activation], deliveries_wh: Mapping[str, int], penalty_permille: int,
                 reserve_wei: int = 0) -> ReserveSettlement:
    """Token flows of a window from its award to its close.

    Each award is settled (:func:`settle_awards`); each provider gets
    back its offered bond minus its penalty; the operator gets the budget
    minus the payments. The penalty pool P (the penalties plus the
    carried ``reserve_wei``) is shared among the awards pro rata to the
    availability A each was paid for, floor(P * A / sum A); the rest is
    the new reserve. A window never awarded (``awards`` None) lapses:
    every bond and the whole budget come back, the reserve is unchanged.

    Parameters
    ----------
    window : ReserveWindow
        The window.
    offers : sequence of ReserveOffer
        Offers in offer order.
    awards : sequence of Award or None
        Every offer's award (:func:`award_offers`), None if the window lapsed.
    activations : sequence of Activation
        The activation's result (:func:`activate_awards`), empty if none.
    deliveries_wh : mapping of str to int
        Delivery [Wh] posted for each activated provider that posted one.
    penalty_permille : int
        Penalty factor of the contract. [1/1000]
    reserve_wei : int
        The contract's penalty reserve before the close. [wei]
    """
    if awards is None:
        return ReserveSettlement({}, {}, {}, {o.provider: offer_bond_wei(window, o, penalty_permille) for o in offers},
                                 window_budget_wei(window), {}, reserve_wei)
    settled = settle_awards(window, offers, awards, activations, deliveries_wh, penalty_permille)
    penalties = {provider: s.penalty_wei for provider, s in settled.items()}
    refunds = {o.provider: offer_bond_wei(window, o, penalty_permille) - penalties.get(o.provider, 0) for o in offers}
    paid_wei = sum(s.capacity_payment_wei + s.energy_payment_wei for s in settled.values())
    pool_wei = reserve_wei + sum(penalties.values())
    total_wh = sum(s.availability_wh for s in settled.values())
    shares = {p: pool_wei * s.availability_wh // total_wh for p, s in settled.items()} if total_wh else {}
    shares = {provider: share for provider, share in shares.items() if share}
    return ReserveSettlement(
        {p: s.capacity_payment_wei for p, s in settled.items()},
        {p: s.energy_payment_wei for p, s in settled.items()},
        penalties,
        refunds,
        window_budget_wei(window) - paid_wei,
        shares,
        pool_wei - sum(shares.values()),
    )
