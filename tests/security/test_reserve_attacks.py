"""Attacks on the operating-reserve market, each refused or bounded with nothing lost by the honest.

Providers may lie about themselves (rating, delivery), bid so as to dodge
their bond, or flood a window; outsiders and meters may call what is not
theirs; the operator, who decides the activations, may activate late or
after losing its role, and must never receive a penalty. Every test checks,
besides the refusal or the bound: the token supply is unchanged and the
honest accounts' token balances are unchanged by the attack, or changed by
exactly what they earned.

Cast: the DSO is the contract's operator (the market's operator is only
the registrar); p0 and p1 honest providers (5 kW and 2 kW), p2 a provider
whose meter measures nothing, p3 a prosumer never registered, p4.. sybils.
One spinning-reserve window: 4 kW for 1 h, capacity cap 10 CENT, activation
cap 50 CENT; penalty factor 1.0, so every bond is 50 CENT per Wh offered.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridledger.contracts.operated import ROLE_OPERATOR
from gridledger.contracts import flexibility as fx
from gridledger.contracts import reserve as rx
from gridledger.contracts.chain import Receipt
from gridledger.contracts.reserve_reference import (
    PRODUCT_SPINNING,
    ReserveOffer,
    ReserveWindow,
    activate_awards,
    award_offers,
    close_window,
)
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import Market, new_market, reverted

MIN_OFFER_W = 100
MIN_BOND_WEI = 10 * CENT
PENALTY_PERMILLE = 1000
DELIVERY_PERIOD_S = 900
TOKENS_WEI = 10**24
WINDOW_S = 3600
CAPACITY_W = 4000
CAPACITY_CAP = 10 * CENT
ACTIVATION_CAP = 50 * CENT
# What the DSO escrows with each window: 4000 Wh at 10 + 50 CENT. [wei]
BUDGET_WEI = 4000 * 60 * CENT
FACTS = {0: (1, 5000), 1: (1, 2000), 2: (2, 5000)}
UNREGISTERED = 3
FIRST_SYBIL = 4


@dataclass
class Scene:
    market: Market
    address: str
    window_id: int
    deadline: int
    window: tuple[int, int]

    @property
    def dso(self):
        return self.market.dso

    def balances(self, *indices: int) -> dict[str, int]:
        """Token balances of prosumers ``indices`` and of the DSO (the contract's operator)."""
        accounts = [self.market.prosumers[i].address for i in indices] + [self.dso.address]
        return {a: self.market.read("GridToken", "balanceOf", a) for a in accounts}

    def supply(self) -> int:
        return self.market.read("GridToken", "totalSupply")

    def one(self, raw: bytes, timestamp: int | None = None) -> Receipt:
        (receipt,) = self.market.mine([raw], timestamp)
        return receipt

    def offer(self, i: int, p_w: int, capacity_price: int, activation_price: int, response_s: int = 60,
              window_id: int | None = None) -> Receipt:
        return self.one(rx.offer(self.market.prosumers[i], self.address,
                                 self.window_id if window_id is None else window_id, p_w=p_w,
                                 capacity_price_wei_per_wh=capacity_price, activation_price_wei_per_wh=activation_price,
                                 response_s=response_s))

    def n_offers(self) -> int:
        return rx.window(self.market.chain, self.address, self.window_id).offer_count

    def award(self) -> Receipt:
        """``award`` by an outsider at the offer deadline, or one second after the head if later."""
        return self.one(rx.award(self.market.outsider, self.address, self.window_id, n_offers=self.n_offers()),
                        max(self.deadline, self.market.chain.timestamp + 1))

    def activate(self, p_w: int, timestamp: int | None = None, sender=None) -> Receipt:
        return self.one(rx.activate(sender or self.dso, self.address, self.window_id, p_w=p_w,
                                    n_offers=self.n_offers()), timestamp)

    def deliver(self, i: int, delivered_wh: int, timestamp: int | None = None) -> Receipt:
        return self.one(rx.post_delivery(self.market.meters[i], self.address, self.window_id,
                                         delivered_wh=delivered_wh), timestamp)

    def close(self, timestamp: int | None = None) -> Receipt:
        """``close`` by an outsider at ``timestamp``, by default at the delivery deadline or one second
        after the head if later."""
        if timestamp is None:
            timestamp = max(self.window[1] + DELIVERY_PERIOD_S, self.market.chain.timestamp + 1)
        return self.one(rx.close(self.market.outsider, self.address, self.window_id, n_offers=self.n_offers()),
                        timestamp)

    def post_window(self, sender, head: int) -> Receipt:
        return self.one(rx.post_window(sender, self.address, product=PRODUCT_SPINNING, capacity_w=CAPACITY_W,
                                       window_start_timestamp=head + 200, window_end_timestamp=head + 200 + WINDOW_S,
                                       offer_deadline_timestamp=head + 100, capacity_price_cap_wei_per_wh=CAPACITY_CAP,
                                       activation_price_cap_wei_per_wh=ACTIVATION_CAP), head)

    def reference_window(self) -> ReserveWindow:
        return ReserveWindow(PRODUCT_SPINNING, CAPACITY_W, *self.window, CAPACITY_CAP, ACTIVATION_CAP)


def _scene(n_sybils: int = 4) -> Scene:
    """The cast registered at deployment, before the start; tokens and approvals; one open window."""
    m = new_market(FIRST_SYBIL + n_sybils)
    facts = FACTS | {i: (1, 5000) for i in range(FIRST_SYBIL, FIRST_SYBIL + n_sybils)}
    providers = [rx.ProviderFacts(m.prosumers[i].address, bus, rating_w) for i, (bus, rating_w) in facts.items()]
    address = rx.deploy_operating_reserve(m.chain, m.operator, m.addresses.registry, m.addresses.token,
                                          penalty_permille=PENALTY_PERMILLE, delivery_period_s=DELIVERY_PERIOD_S,
                                          min_offer_w=MIN_OFFER_W, min_bond_wei=MIN_BOND_WEI, providers=providers,
                                          operator_address=m.dso.address)
    payers = (m.dso, *m.prosumers)
    raw = [m.call_tx(m.operator, "GridToken", "mint", w.address, TOKENS_WEI) for w in payers]
    raw += [fx.approve(w, m.addresses.token, address, TOKENS_WEI) for w in payers]
    receipts = m.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    head = m.chain.timestamp + 1
    scene = Scene(m, address, 0, head + 100, (head + 200, head + 200 + WINDOW_S))
    assert scene.post_window(m.dso, head).ok
    return scene


@pytest.fixture
def scene() -> Scene:
    return _scene()


def test_an_unregistered_prosumer_is_refused(scene):
    before, supply = scene.balances(0), scene.supply()
    assert reverted(scene.offer(UNREGISTERED, 1000, CENT, CENT), "reserve: provider not registered")
    assert rx.window(scene.market.chain, scene.address, scene.window_id).offer_count == 0
    assert scene.balances(0) == before and scene.supply() == supply


def test_an_offer_above_the_registered_rating_reverts(scene):
    before, supply = scene.balances(0), scene.supply()
    assert reverted(scene.offer(1, 2001, CENT, CENT), "reserve: power above rating")
    assert scene.offer(1, 2000, CENT, CENT).ok
    assert scene.balances(0) == before and scene.supply() == supply


def test_an_activation_price_of_zero_still_posts_and_forfeits_the_bond_at_the_cap(scene):
    """p2 bids 2000 W at activation price 0: its bond is 2000 Wh * 50 CENT all the same. Activated
    at the window start with a 60 s response it owes E_act = floor(2000 * 3540 / 3600) = 1966 Wh;
    its meter posts 0, so it loses 1966 * 50 CENT of the bond and is paid nothing."""
    p2 = scene.market.prosumers[2].address
    start, supply = scene.balances(2), scene.supply()
    offered = scene.offer(2, 2000, 5 * CENT, 0)
    assert offered.ok
    assert scene.balances(2)[p2] == start[p2] - 2000 * 50 * CENT
    assert scene.award().ok
    assert scene.activate(2000, scene.window[0]).ok
    assert scene.deliver(2, 0, scene.window[1]).ok
    assert scene.close().ok
    end = scene.balances(2)
    assert end[p2] - start[p2] == -1966 * 50 * CENT
    # The DSO gets its whole budget back, and no penalty: that went to the reserve.
    assert end[scene.dso.address] - start[scene.dso.address] == BUDGET_WEI
    assert rx.read(scene.market.chain, scene.address, "penalty_reserve_wei") == 1966 * 50 * CENT
    assert scene.supply() == supply


def test_late_repeated_and_post_award_offers_are_refused(scene):
    before, supply = scene.balances(1), scene.supply()
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok
    assert reverted(scene.offer(0, 1000, 1, 1), "reserve: offer exists")
    late = scene.one(rx.offer(scene.market.prosumers[1], scene.address, scene.window_id, p_w=1000,
                              capacity_price_wei_per_wh=CENT, activation_price_wei_per_wh=CENT, response_s=0),
                     scene.deadline)
    assert reverted(late, "reserve: offers closed")
    assert scene.award().ok
    assert reverted(scene.offer(1, 1000, CENT, CENT), "reserve: offers closed")
    assert [o.provider for o in rx.offers(scene.market.chain, scene.address, scene.window_id)] == [
        scene.market.prosumers[0].address]
    assert scene.balances(1) == before and scene.supply() == supply


@pytest.mark.parametrize("who", ["outsider", "p0", "meter0", "registrar"])
def test_only_the_contract_operator_posts_and_activates(scene, who):
    """The registrar holds the registry's operator role but is not the contract's operator."""
    m = scene.market
    signer = m.operator if who == "registrar" else m.signer(who)
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok
    before, supply = scene.balances(0), scene.supply()
    assert reverted(scene.post_window(signer, m.chain.timestamp + 1), "reserve: caller is not operator")
    assert scene.award().ok
    assert reverted(scene.activate(2000, scene.window[0], sender=signer), "reserve: caller is not operator")
    assert not rx.window(m.chain, scene.address, scene.window_id).activated
    assert scene.balances(0) == before and scene.supply() == supply


def test_an_operator_that_lost_its_role_can_neither_post_nor_activate_and_the_awards_are_paid(scene):
    """p0 is awarded 2000 W at 5 CENT; the DSO loses its operator role. Its activation is refused, so
    p0 is paid its capacity 2000 * 5 CENT at close with its whole bond; the DSO gets the rest."""
    m = scene.market
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok
    assert scene.award().ok
    start, supply = scene.balances(0), scene.supply()
    revoked = scene.one(m.call_tx(m.operator, "Registry", "revoke_role", scene.dso.address, ROLE_OPERATOR))
    assert revoked.ok
    assert reverted(scene.activate(2000, scene.window[0]), "reserve: caller is not operator")
    assert reverted(scene.post_window(scene.dso, m.chain.timestamp + 1), "reserve: caller is not operator")
    assert scene.close().ok
    end = scene.balances(0)
    p0 = m.prosumers[0].address
    assert end[p0] - start[p0] == 2000 * 5 * CENT + 2000 * 50 * CENT
    assert end[scene.dso.address] - start[scene.dso.address] == BUDGET_WEI - 2000 * 5 * CENT
    assert scene.supply() == supply


def test_an_activation_ahead_of_the_window_delivers_from_its_start_and_only_once(scene):
    """Activated right after the award, ahead of the window, p0 delivers from the window start at the earliest: the
    operator cannot make a provider's delivery start before the capacity it bought."""
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok
    assert scene.award().ok
    before, supply = scene.balances(0), scene.supply()
    early = scene.market.chain.timestamp + 1
    assert early < scene.window[0]
    receipt = scene.activate(1000, early)
    assert receipt.ok
    (activation,) = rx.decode_activations(scene.market.chain, receipt)
    assert activation.from_timestamp == max(early + 60, scene.window[0])
    assert activation.energy_wh == 1000 * (scene.window[1] - scene.window[0]) // 3600
    assert reverted(scene.activate(1000), "reserve: already activated")
    assert reverted(scene.activate(1000, scene.window[1]), "reserve: window ended")
    assert rx.window(scene.market.chain, scene.address, scene.window_id).activated_p_w == 1000
    assert scene.balances(0) == before and scene.supply() == supply


def test_only_the_meter_of_an_activated_provider_posts_once_within_the_period(scene):
    """p0 (activation price 20) and p1 (30) are awarded 2000 W each; the DSO activates 2000 W, so
    only p0. Neither p1's meter, nor p0 itself, nor an outsider may post p0's delivery; p0's meter
    posts once; and the honest p0 gets exactly what the reference says."""
    m = scene.market
    before, supply = scene.balances(0, 1), scene.supply()
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok and scene.offer(1, 2000, 5 * CENT, 30 * CENT).ok
    assert scene.award().ok
    assert scene.activate(2000, scene.window[0]).ok
    assert reverted(scene.deliver(1, 2000), "reserve: provider not activated")
    assert reverted(scene.deliver(FIRST_SYBIL, 2000), "reserve: provider not activated")
    assert reverted(scene.deliver(0, 1966), "reserve: window not ended")
    for wallet in (m.prosumers[0], m.outsider, scene.dso):
        raw = rx.post_delivery(wallet, scene.address, scene.window_id, delivered_wh=1966)
        assert reverted(scene.one(raw, m.chain.timestamp + 1), "reserve: caller is not a bound meter")
    assert scene.deliver(0, 1966, scene.window[1]).ok
    assert reverted(scene.deliver(0, 1966), "reserve: delivery posted")
    assert reverted(scene.close(scene.window[1] + DELIVERY_PERIOD_S - 1), "reserve: delivery open")
    assert reverted(scene.deliver(1, 0, scene.window[1] + DELIVERY_PERIOD_S), "reserve: provider not activated")
    assert reverted(scene.deliver(0, 1966), "reserve: delivery closed")
    assert scene.close().ok
    assert reverted(scene.close(), "reserve: already closed")
    window = scene.reference_window()
    offers = [ReserveOffer(m.prosumers[0].address, 2000, 5 * CENT, 20 * CENT, 60),
              ReserveOffer(m.prosumers[1].address, 2000, 5 * CENT, 30 * CENT, 60)]
    awards = award_offers(window, offers)
    activations = activate_awards(window, offers, awards, 2000, scene.window[0])
    ref = close_window(window, offers, awards, activations, {offers[0].provider: 1966}, PENALTY_PERMILLE)
    after = scene.balances(0, 1)
    for o in offers:
        assert after[o.provider] - before[o.provider] == (ref.capacity_payments_wei[o.provider]
                                                          + ref.energy_payments_wei[o.provider])
    assert after[scene.dso.address] - before[scene.dso.address] == ref.operator_refund_wei
    assert scene.supply() == supply


def test_a_provider_whose_meter_measures_nothing_loses_capacity_pay_and_bond_pro_rata(scene):
    """p2 (capacity 4 CENT) and p0 (5 CENT) win 2000 W each; both activated at the start with a 60 s
    response: E_act = 1966 Wh each. p2 claims it delivered, but its meter posts the measured 0 Wh:
    no capacity pay (withheld in proportion to the shortfall), no energy pay, penalty 1966 * 50 CENT
    from its 100000 CENT bond. p0's meter posts 1966: capacity 2000 * 5, energy 1966 * 20 CENT,
    and p2's penalty as the only award paid for availability. The DSO pays the honest payments only."""
    m = scene.market
    liar, honest = m.prosumers[2].address, m.prosumers[0].address
    start, supply = scene.balances(0, 2), scene.supply()
    assert scene.offer(2, 2000, 4 * CENT, 10 * CENT).ok and scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok
    assert scene.award().ok
    assert scene.activate(4000, scene.window[0]).ok
    assert reverted(scene.one(rx.post_delivery(m.prosumers[2], scene.address, scene.window_id, delivered_wh=1966),
                              scene.window[1]), "reserve: caller is not a bound meter")
    assert all(scene.deliver(i, wh).ok for i, wh in ((2, 0), (0, 1966)))
    assert scene.close().ok
    end = scene.balances(0, 2)
    assert end[liar] - start[liar] == -1966 * 50 * CENT
    assert end[honest] - start[honest] == 2000 * 5 * CENT + 1966 * 20 * CENT + 1966 * 50 * CENT
    assert end[scene.dso.address] - start[scene.dso.address] == BUDGET_WEI - (2000 * 5 * CENT + 1966 * 20 * CENT)
    assert rx.read(m.chain, scene.address, "penalty_reserve_wei") == 0
    assert scene.supply() == supply


def test_activating_at_the_last_second_skips_slow_awards_which_keep_their_capacity_pay(scene):
    """p0 (response 300 s, activation price 20) and p1 (0 s, 30) are awarded 2000 W each. The DSO
    activates 4000 W 100 s before the end: p0 could deliver only after the end and is skipped;
    p1 owes floor(2000 * 100 / 3600) = 55 Wh. Both keep their full capacity pay and bonds."""
    m = scene.market
    start, supply = scene.balances(0, 1), scene.supply()
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT, response_s=300).ok
    assert scene.offer(1, 2000, 5 * CENT, 30 * CENT, response_s=0).ok
    assert scene.award().ok
    activated = scene.activate(4000, scene.window[1] - 100)
    assert activated.ok
    assert [(a.provider, a.p_w, a.energy_wh) for a in rx.decode_activations(m.chain, activated)] == [
        (m.prosumers[0].address, 0, 0), (m.prosumers[1].address, 2000, 55)]
    assert reverted(scene.deliver(0, 100, scene.window[1]), "reserve: provider not activated")
    assert scene.deliver(1, 55).ok
    assert scene.close().ok
    end = scene.balances(0, 1)
    p0, p1 = m.prosumers[0].address, m.prosumers[1].address
    assert end[p0] - start[p0] == 2000 * 5 * CENT
    assert end[p1] - start[p1] == 2000 * 5 * CENT + 55 * 30 * CENT
    assert end[scene.dso.address] - start[scene.dso.address] == BUDGET_WEI - (2 * 2000 * 5 * CENT + 55 * 30 * CENT)
    assert scene.supply() == supply


def test_penalties_never_reach_the_operator_and_the_reserve_goes_to_later_providers(scene):
    """Window 0: only p2, activated, never delivers: its penalty 1966 * 50 CENT has nobody to go to
    and stays in the reserve; the DSO gets its whole budget back and nothing more. Window 1: p0 is
    awarded and not activated: it gets its capacity pay and the whole reserve; the DSO again only
    its unspent budget."""
    m = scene.market
    dso = scene.dso.address
    start, supply = scene.balances(0, 2), scene.supply()
    assert scene.offer(2, 2000, 4 * CENT, 10 * CENT).ok
    assert scene.award().ok
    assert scene.activate(2000, scene.window[0]).ok
    assert scene.close().ok
    penalty = 1966 * 50 * CENT
    assert rx.read(m.chain, scene.address, "penalty_reserve_wei") == penalty
    assert m.read("GridToken", "balanceOf", scene.address) == penalty
    assert scene.balances(0, 2)[dso] - start[dso] == BUDGET_WEI
    head = m.chain.timestamp + 1
    posted = scene.post_window(scene.dso, head)
    assert posted.ok
    scene.window_id, scene.deadline, scene.window = 1, head + 100, (head + 200, head + 200 + WINDOW_S)
    assert scene.offer(0, 2000, 5 * CENT, 20 * CENT).ok
    assert scene.award().ok
    assert scene.close().ok
    end = scene.balances(0, 2)
    assert end[m.prosumers[0].address] - start[m.prosumers[0].address] == 2000 * 5 * CENT + penalty
    assert end[m.prosumers[2].address] - start[m.prosumers[2].address] == -penalty
    assert end[dso] - start[dso] == BUDGET_WEI - 2000 * 5 * CENT
    assert rx.read(m.chain, scene.address, "penalty_reserve_wei") == 0
    assert m.read("GridToken", "balanceOf", scene.address) == 0
    assert scene.supply() == supply


def test_a_flood_of_minimum_offers_fills_a_window_at_the_sybils_cost():
    """64 registered sybils offer the minimum 100 W at price 0, each posting 100 Wh * 50 CENT of bond;
    the honest p0 is refused "offers full". The 40 sybils awarded the 4000 W are activated at
    the start and deliver nothing: each loses its whole bond, which stays in the reserve; the DSO
    pays nothing and p0 lost nothing."""
    max_offers = 64
    scene = _scene(n_sybils=max_offers)
    m = scene.market
    sybils = range(FIRST_SYBIL, FIRST_SYBIL + max_offers)
    start, supply = scene.balances(0, *sybils), scene.supply()
    offered = m.mine([rx.offer(m.prosumers[i], scene.address, scene.window_id, p_w=MIN_OFFER_W,
                               capacity_price_wei_per_wh=0, activation_price_wei_per_wh=0, response_s=0)
                      for i in sybils])
    assert all(r.ok for r in offered)
    bond = 100 * 50 * CENT
    assert all(scene.balances(i)[m.prosumers[i].address] == start[m.prosumers[i].address] - bond for i in sybils)
    assert reverted(scene.offer(0, 2000, 5 * CENT, 20 * CENT), "reserve: offers full")
    assert scene.award().ok
    assert scene.activate(CAPACITY_W, scene.window[0]).ok
    assert scene.close().ok
    end = scene.balances(0, *sybils)
    lost = [start[m.prosumers[i].address] - end[m.prosumers[i].address] for i in sybils]
    assert lost == [bond] * (CAPACITY_W // MIN_OFFER_W) + [0] * (max_offers - CAPACITY_W // MIN_OFFER_W)
    assert end[m.prosumers[0].address] == start[m.prosumers[0].address]
    assert end[scene.dso.address] - start[scene.dso.address] == BUDGET_WEI
    assert rx.read(m.chain, scene.address, "penalty_reserve_wei") == sum(lost)
    assert scene.supply() == supply
