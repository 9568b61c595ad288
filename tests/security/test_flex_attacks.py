"""Attacks on the voltage-regulation market by DERs lying about themselves, each refused or bounded with nothing lost.

A DER's bus and rating come from registration (issue 11, item 5), so an
offer can neither move the DER into the zone nor promise more than its
inverter; a flood of tiny offers is refused by the minimum offer power and
bond; and a DER that claims to have curtailed but did not is paid nothing,
because its meter posts what the power flow measured. Every test checks,
besides the refusal: the token supply is unchanged and the honest accounts'
token balances are unchanged by the attack.

Cast: p0 registered at bus 1 (5 kW), p1 at bus 2 outside the zone, p2 the
honest DER at bus 1 (2 kW), p3 a prosumer never registered, p4..p7 sybils
registered at bus 1. One request: 4 kW at bus 1 for a 1 h window.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from eth_utils import function_signature_to_4byte_selector

from gridledger.agents.meters import measured_curtailment_wh
from gridledger.contracts import flexibility as fx
from gridledger.contracts.chain import Receipt
from gridledger.contracts.compiler import load_artifact
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import START_TIMESTAMP, Market, new_market, reverted

MIN_OFFER_W = 100
MIN_BOND_WEI = 10 * CENT
PENALTY_PERMILLE = 1000
TOKENS_WEI = 10**24
FACTS = {0: (1, 5000), 1: (2, 5000), 2: (1, 2000), 4: (1, 5000), 5: (1, 5000), 6: (1, 5000), 7: (1, 5000)}
HONEST = 2
WINDOW_S = 3600


@dataclass
class Scene:
    market: Market
    address: str
    request_id: int
    window: tuple[int, int]

    def balances(self, *indices: int) -> dict[str, int]:
        return {self.market.prosumers[i].address: self.market.read("GridToken", "balanceOf",
                                                                   self.market.prosumers[i].address)
                for i in indices}

    def supply(self) -> int:
        return self.market.read("GridToken", "totalSupply")

    def offer(self, i: int, p_w: int, price_wei_per_wh: int) -> Receipt:
        (receipt,) = self.market.mine([fx.offer(self.market.prosumers[i], self.address, self.request_id, p_w=p_w,
                                                price_wei_per_wh=price_wei_per_wh)])
        return receipt


def _scene() -> Scene:
    """The cast registered at deployment, before the start; tokens and approvals; one open request."""
    m = new_market(8)
    op = m.operator
    ders = [fx.DerFacts(m.prosumers[i].address, bus, rating_w) for i, (bus, rating_w) in FACTS.items()]
    address = fx.deploy_voltage_regulation(m.chain, op, m.addresses.registry, m.addresses.token,
                                           penalty_permille=PENALTY_PERMILLE, delivery_period_s=900,
                                           min_offer_w=MIN_OFFER_W, min_bond_wei=MIN_BOND_WEI, ders=ders)
    raw = [m.call_tx(op, "GridToken", "mint", w.address, TOKENS_WEI) for w in (op, *m.prosumers)]
    raw += [fx.approve(w, m.addresses.token, address, TOKENS_WEI) for w in (op, *m.prosumers)]
    head = m.chain.timestamp
    window = (head + 200, head + 200 + WINDOW_S)
    raw.append(fx.post_request(op, address, sensitivities_upu_per_kw={1: 100}, direction_raise=False, p_w=4000,
                               window_start_timestamp=window[0], window_end_timestamp=window[1],
                               offer_deadline_timestamp=head + 100, price_cap_wei_per_wh=50 * CENT))
    receipts = m.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    return Scene(m, address, fx.read(m.chain, address, "request_count") - 1, window)


@pytest.fixture
def scene() -> Scene:
    return _scene()


def test_a_der_cannot_offer_at_a_bus_other_than_its_registered_one(scene):
    before, supply = scene.balances(HONEST), scene.supply()
    assert reverted(scene.offer(1, 1000, 10 * CENT), "flexibility: bus not in zone")
    # The old signature with a declared bus no longer exists: the call reverts without a reason.
    old_offer = function_signature_to_4byte_selector("offer(uint256,uint256,uint256,uint256)")
    arguments = b"".join(x.to_bytes(32, "big") for x in (scene.request_id, 1000, 10 * CENT, 1))
    raw = scene.market.prosumers[1].transact(scene.address, old_offer + arguments, gas=fx.GAS_OFFER)
    (receipt,) = scene.market.mine([raw])
    assert receipt.status == 0
    assert fx.request(scene.market.chain, scene.address, scene.request_id).offer_count == 0
    assert scene.balances(HONEST) == before and scene.supply() == supply


def test_an_offer_above_the_registered_rating_reverts(scene):
    before, supply = scene.balances(0, 1), scene.supply()
    assert reverted(scene.offer(HONEST, 2001, 10 * CENT), "flexibility: power above rating")
    assert scene.offer(HONEST, 2000, 10 * CENT).ok
    assert scene.balances(0, 1) == before and scene.supply() == supply


def test_an_unregistered_prosumer_is_refused(scene):
    before, supply = scene.balances(HONEST), scene.supply()
    assert reverted(scene.offer(3, 1000, 10 * CENT), "flexibility: DER not registered")
    assert scene.balances(HONEST) == before and scene.supply() == supply


def test_registration_is_the_registrars_only_and_closes_at_the_start(scene):
    m = scene.market
    p3 = m.prosumers[3].address

    def register(wallet, der: str, bus: int, rating_w: int) -> Receipt:
        (receipt,) = m.mine([fx.register_der(wallet, scene.address, fx.DerFacts(der, bus, rating_w))])
        return receipt

    assert reverted(register(m.prosumers[3], p3, 1, 10**6), "flexibility: caller is not registrar")
    assert reverted(register(m.dso, p3, 1, 10**6), "flexibility: caller is not registrar")
    assert reverted(register(m.operator, m.meters[3].address, 1, 1000), "flexibility: DER is not a prosumer")
    assert reverted(register(m.operator, p3, 1, 0), "flexibility: zero rating")
    assert reverted(register(m.operator, p3, 1, 10**9 + 1), "flexibility: rating above limit")
    assert reverted(register(m.operator, m.prosumers[0].address, 2, 10**6), "flexibility: DER registered")
    assert fx.read(m.chain, scene.address, "der_bus", m.prosumers[0].address) == 1
    m.mine([], START_TIMESTAMP)
    assert reverted(register(m.operator, p3, 1, 1000), "flexibility: registration closed")
    assert fx.read(m.chain, scene.address, "der_rating_w", p3) == 0


def test_a_flood_of_tiny_offers_is_refused_and_the_honest_offer_still_fits(scene):
    """4 W offers fall below the 100 W minimum; 100 W at 1 wei/Wh posts a bond of 100 wei, below the
    minimum of 10 CENT; neither takes an offer slot, and the honest offer is offer 0."""
    before, supply = scene.balances(HONEST), scene.supply()
    sybils = range(4, 8)
    assert all(reverted(scene.offer(i, 4, 10 * CENT), "flexibility: power below minimum") for i in sybils)
    assert all(reverted(scene.offer(i, 100, 1), "flexibility: bond below minimum") for i in sybils)
    assert fx.request(scene.market.chain, scene.address, scene.request_id).offer_count == 0
    assert scene.balances(HONEST) == before and scene.supply() == supply
    assert scene.offer(HONEST, 2000, 10 * CENT).ok
    (first,) = fx.offers(scene.market.chain, scene.address, scene.request_id)
    assert first.der == scene.market.prosumers[HONEST].address


def test_the_cheapest_offer_that_passes_locks_the_minimum_bond(scene):
    """A bond is floor(E * price * penalty / 1000): 100 W over 1 h is 100 Wh, so at penalty 1.0 the
    least price that passes is MIN_BOND_WEI / 100 wei/Wh; each sybil offer locks at least that."""
    sybil = scene.market.prosumers[4].address
    least_price = MIN_BOND_WEI // 100
    before, supply = scene.balances(HONEST, 4), scene.supply()
    assert reverted(scene.offer(4, MIN_OFFER_W, least_price - 1), "flexibility: bond below minimum")
    assert scene.offer(4, MIN_OFFER_W, least_price).ok
    after = scene.balances(HONEST, 4)
    assert before[sybil] - after[sybil] == MIN_BOND_WEI
    assert after[scene.market.prosumers[HONEST].address] == before[scene.market.prosumers[HONEST].address]
    assert scene.supply() == supply


def test_claimed_but_not_curtailed_is_measured_as_nothing():
    """The DER reports 2 kW curtailed each 5-min step but injects all of its available PV: 0 Wh."""
    available_kw = np.full(12, 3.0)
    injected_mw = available_kw / 1000
    assert measured_curtailment_wh(available_kw, injected_mw, 300.0, 2000) == 0
    # Curtailing 2 kW for real over the hour measures 2000 Wh.
    assert measured_curtailment_wh(available_kw, (available_kw - 2.0) / 1000, 300.0, 2000) == 2000


def test_a_der_that_did_not_curtail_is_paid_nothing_and_forfeits_its_bond(scene):
    """p0 (liar) and p2 (honest) win 2 kW each at 10 CENT; bonds 2000 Wh * 10 CENT each. The meters
    post the measured curtailment: p0 0 Wh, p2 2000 Wh. p0 loses its whole bond; p2 is paid
    2000 * 10 CENT and at close gets p0's penalty as the only DER that delivered."""
    m = scene.market
    liar, honest = m.prosumers[0].address, m.prosumers[HONEST].address
    supply = scene.supply()
    start = scene.balances(0, HONEST)
    assert scene.offer(0, 2000, 10 * CENT).ok and scene.offer(HONEST, 2000, 10 * CENT).ok
    m.mine([fx.award(m.outsider, scene.address, scene.request_id, n_offers=2)], scene.window[0] - 1)
    measured = {0: measured_curtailment_wh(np.full(12, 3.0), np.full(12, 0.003), 300.0, 2000),
                HONEST: measured_curtailment_wh(np.full(12, 3.0), np.full(12, 0.001), 300.0, 2000)}
    assert measured == {0: 0, HONEST: 2000}
    delivered = m.mine([fx.post_delivery(m.meters[i], scene.address, scene.request_id, delivered_wh=wh)
                        for i, wh in measured.items()], scene.window[1])
    assert all(r.ok for r in delivered)
    offers = {o.der: o for o in fx.offers(m.chain, scene.address, scene.request_id)}
    assert (offers[liar].delivered_wh, offers[honest].delivered_wh) == (0, 2000)
    (closed,) = m.mine([fx.close(m.outsider, scene.address, scene.request_id, n_offers=2)], scene.window[1] + 900)
    assert closed.ok
    end = scene.balances(0, HONEST)
    bond = 2000 * 10 * CENT
    assert end[liar] - start[liar] == -bond
    assert end[honest] - start[honest] == 2000 * 10 * CENT + bond
    assert scene.supply() == supply
    assert m.read("GridToken", "balanceOf", scene.address) == fx.read(m.chain, scene.address, "penalty_reserve_wei")


def test_the_deployed_artifact_has_no_offer_with_a_bus():
    abi = load_artifact("VoltageRegulation")["abi"]
    (offer,) = [f for f in abi if f.get("name") == "offer"]
    assert [i["name"] for i in offer["inputs"]] == ["request_id", "p_w", "price_wei_per_wh"]
