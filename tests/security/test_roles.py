"""Separation of duties: the operator tries to act as a meter (issue 11, item 2).

Each attack is tried against a market whose voltage-regulation request has been
awarded to prosumer 0 (the honest DER) and whose window is under way, after the
market's start, when the registry's bindings are frozen. Each test asserts the
exact revert reason, then that nothing was lost: the token supply is what was
minted, the Settlement holds every credit, the flexibility contract holds what
its requests and reserve account for, the honest prosumer's credit and bond are
untouched, and its real meter's reading and delivery are still accepted.
"""

from dataclasses import dataclass

import pytest

from gridledger.contracts import flexibility as fx
from gridledger.contracts import market as mk
from gridledger.contracts.chain import Receipt
from gridledger.contracts.client import Wallet
from gridledger.contracts.flex_reference import bond_wei
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import (
    FLEX_DELIVERY_PERIOD_S,
    FLEX_PENALTY_PERMILLE,
    START_TIMESTAMP,
    Market,
    new_flex_market,
    new_market,
    reverted,
)

ROLE_OPERATOR, ROLE_PROSUMER, ROLE_METER = 1, 2, 4
# The request: 1000 W for 15 min (250 Wh) at bus 5, offers until the deadline, all after the start.
POSTED_TIMESTAMP = START_TIMESTAMP + 10
DEADLINE_TIMESTAMP = START_TIMESTAMP + 100
WINDOW_START_TIMESTAMP = START_TIMESTAMP + 200
WINDOW_END_TIMESTAMP = WINDOW_START_TIMESTAMP + 900
MID_WINDOW_TIMESTAMP = WINDOW_START_TIMESTAMP + 300
CLOSE_TIMESTAMP = WINDOW_END_TIMESTAMP + FLEX_DELIVERY_PERIOD_S
OFFER_P_W = 1000
OFFER_PRICE_WEI_PER_WH = 5 * CENT
AWARDED_WH = 250
READING_INTERVAL = 0


@dataclass
class Scene:
    """A flexibility request awarded to prosumer 0 (and 1 if two offered), window under way."""

    market: Market
    flex: str
    request_id: int
    n_offers: int
    supply_wei: int

    @property
    def der(self) -> Wallet:
        return self.market.prosumers[0]

    @property
    def meter(self) -> Wallet:
        return self.market.meters[0]

    def registry_tx(self, wallet: Wallet, function: str, *args) -> Receipt:
        (receipt,) = self.market.mine([self.market.call_tx(wallet, "Registry", function, *args)])
        return receipt

    def honest_state(self) -> tuple:
        """The honest DER's Settlement credit, token balance and offer, and its meter's binding."""
        m = self.market
        return (
            m.read("Settlement", "credit_wei", self.der.address),
            m.read("GridToken", "balanceOf", self.der.address),
            fx.offers(m.chain, self.flex, self.request_id)[0],
            m.read("Registry", "prosumer_of_meter", self.meter.address),
            m.read("Registry", "meter_of_prosumer", self.der.address),
        )


def _scene(n_offers: int = 1) -> Scene:
    market, flex = new_flex_market(3)
    cleared = market.clear(READING_INTERVAL, mk.Book((), (), 0))
    assert cleared.ok, cleared.revert_reason
    zone = {5: 100}
    (posted,) = market.mine(
        [
            fx.post_request(
                market.operator,
                flex,
                sensitivities_upu_per_kw=zone,
                direction_raise=False,
                p_w=OFFER_P_W * n_offers,
                window_start_timestamp=WINDOW_START_TIMESTAMP,
                window_end_timestamp=WINDOW_END_TIMESTAMP,
                offer_deadline_timestamp=DEADLINE_TIMESTAMP,
                price_cap_wei_per_wh=10 * CENT,
            )
        ],
        POSTED_TIMESTAMP,
    )
    offers = market.mine(
        [
            fx.offer(w, flex, 0, p_w=OFFER_P_W, price_wei_per_wh=OFFER_PRICE_WEI_PER_WH)
            for w in market.prosumers[:n_offers]
        ]
    )
    (awarded,) = market.mine([fx.award(market.outsider, flex, 0, n_offers=n_offers)], DEADLINE_TIMESTAMP)
    assert posted.ok and all(r.ok for r in offers) and awarded.ok
    market.mine([], MID_WINDOW_TIMESTAMP)
    return Scene(market, flex, 0, n_offers, market.read("GridToken", "totalSupply"))


@pytest.fixture
def scene() -> Scene:
    return _scene()


def _assert_nothing_lost(scene: Scene) -> None:
    """Supply as minted, the Settlement holds every credit, the flexibility contract what it owes."""
    m = scene.market
    assert m.read("GridToken", "totalSupply") == scene.supply_wei
    accounts = [m.operator.address, *(w.address for w in m.prosumers)]
    credits = sum(m.read("Settlement", "credit_wei", a) for a in accounts) + m.read("Settlement", "pool_wei")
    credits += m.read("Settlement", "penalty_pool_wei")
    assert credits == m.read("GridToken", "balanceOf", m.addresses.settlement)
    held = fx.read(m.chain, scene.flex, "held_wei", scene.request_id)
    reserve = fx.read(m.chain, scene.flex, "penalty_reserve_wei")
    assert m.read("GridToken", "balanceOf", scene.flex) == held + reserve


def _assert_honest_meter_still_settles(scene: Scene) -> None:
    """The real meter's reading and delivery are accepted; the DER is paid in full and gets its bond back."""
    m = scene.market
    balance = m.read("GridToken", "balanceOf", scene.der.address)
    credit = m.read("Settlement", "credit_wei", scene.der.address)
    reading, delivery = m.mine(
        [
            mk.post_reading(scene.meter, m.addresses, READING_INTERVAL, import_wh=0, export_wh=0, pv_wh=0,
                            battery_wh=0),
            fx.post_delivery(scene.meter, scene.flex, scene.request_id, delivered_wh=AWARDED_WH),
        ],
        max(m.chain.timestamp + 1, WINDOW_END_TIMESTAMP),
    )
    assert reading.ok and delivery.ok, (reading.revert_reason, delivery.revert_reason)
    assert m.read("Settlement", "reading", READING_INTERVAL, scene.der.address)[4]
    assert m.read("Settlement", "credit_wei", scene.der.address) == credit
    bond = bond_wei(AWARDED_WH, OFFER_PRICE_WEI_PER_WH, FLEX_PENALTY_PERMILLE)
    assert m.read("GridToken", "balanceOf", scene.der.address) == balance + AWARDED_WH * OFFER_PRICE_WEI_PER_WH + bond
    _assert_nothing_lost(scene)


def test_operator_cannot_grant_itself_the_meter_or_prosumer_role(scene):
    m = scene.market
    before = scene.honest_state()
    for role in (ROLE_METER, ROLE_PROSUMER, ROLE_METER | ROLE_PROSUMER):
        receipt = scene.registry_tx(m.operator, "grant_role", m.operator.address, role)
        assert reverted(receipt, "registry: operator cannot be meter or prosumer"), receipt.revert_reason
    assert m.read("Registry", "roles", m.operator.address) == ROLE_OPERATOR
    # Nor can it make a meter an operator, who could then bind it.
    receipt = scene.registry_tx(m.operator, "grant_role", scene.meter.address, ROLE_OPERATOR)
    assert reverted(receipt, "registry: operator cannot be meter or prosumer")
    assert scene.honest_state() == before
    _assert_nothing_lost(scene)
    _assert_honest_meter_still_settles(scene)


def test_operator_cannot_bind_a_second_meter_to_a_prosumer(scene):
    m = scene.market
    before = scene.honest_state()
    # A fresh account may be given the meter role, but never bound once the market has started.
    assert scene.registry_tx(m.operator, "grant_role", m.outsider.address, ROLE_METER).ok
    receipt = scene.registry_tx(m.operator, "bind_meter", m.outsider.address, scene.der.address)
    assert reverted(receipt, "registry: bindings frozen"), receipt.revert_reason
    # Rebinding another prosumer's meter is refused the same way.
    receipt = scene.registry_tx(m.operator, "bind_meter", m.meters[1].address, scene.der.address)
    assert reverted(receipt, "registry: bindings frozen"), receipt.revert_reason
    # The unbound meter can neither read nor deliver for the DER.
    reading, delivery = m.mine(
        [
            mk.post_reading(m.outsider, m.addresses, READING_INTERVAL, import_wh=10**6, export_wh=0, pv_wh=0,
                            battery_wh=0),
            fx.post_delivery(m.outsider, scene.flex, scene.request_id, delivered_wh=0),
        ],
        WINDOW_END_TIMESTAMP,
    )
    assert reverted(reading, "settlement: caller is not a bound meter")
    assert reverted(delivery, "flexibility: caller is not a bound meter")
    assert scene.honest_state() == before
    _assert_nothing_lost(scene)
    _assert_honest_meter_still_settles(scene)


def test_operator_cannot_revoke_an_awarded_ders_meter_mid_window(scene):
    m = scene.market
    before = scene.honest_state()
    receipt = scene.registry_tx(m.operator, "revoke_role", scene.meter.address, ROLE_METER)
    assert reverted(receipt, "registry: bindings frozen"), receipt.revert_reason
    # Revoking the DER's prosumer role would unbind the pair too: also frozen.
    receipt = scene.registry_tx(m.operator, "revoke_role", scene.der.address, ROLE_PROSUMER)
    assert reverted(receipt, "registry: bindings frozen"), receipt.revert_reason
    assert m.read("Registry", "has_role", scene.meter.address, ROLE_METER)
    assert scene.honest_state() == before
    _assert_nothing_lost(scene)
    _assert_honest_meter_still_settles(scene)


def test_operator_cannot_post_a_zero_delivery_or_a_reading_for_a_der(scene):
    m = scene.market
    before = scene.honest_state()
    delivery, reading = m.mine(
        [
            fx.post_delivery(m.operator, scene.flex, scene.request_id, delivered_wh=0),
            mk.post_reading(m.operator, m.addresses, READING_INTERVAL, import_wh=10**6, export_wh=0, pv_wh=0,
                            battery_wh=0),
        ],
        WINDOW_END_TIMESTAMP,
    )
    assert reverted(delivery, "flexibility: caller is not a bound meter"), delivery.revert_reason
    assert reverted(reading, "settlement: caller is not a bound meter"), reading.revert_reason
    assert scene.honest_state() == before
    _assert_nothing_lost(scene)
    _assert_honest_meter_still_settles(scene)


def test_forfeited_bonds_are_shared_by_the_delivering_ders_not_paid_to_the_operator():
    scene = _scene(n_offers=2)
    m = scene.market
    accounts = [m.operator.address, *(w.address for w in m.prosumers[:2])]
    before = {a: m.read("GridToken", "balanceOf", a) for a in accounts}
    (delivery,) = m.mine(
        [fx.post_delivery(scene.meter, scene.flex, scene.request_id, delivered_wh=AWARDED_WH)], WINDOW_END_TIMESTAMP
    )
    (closed,) = m.mine([fx.close(m.outsider, scene.flex, scene.request_id, n_offers=2)], CLOSE_TIMESTAMP)
    assert delivery.ok and closed.ok
    bond = bond_wei(AWARDED_WH, OFFER_PRICE_WEI_PER_WH, FLEX_PENALTY_PERMILLE)
    payment = AWARDED_WH * OFFER_PRICE_WEI_PER_WH
    after = {a: m.read("GridToken", "balanceOf", a) for a in accounts}
    budget = 2 * AWARDED_WH * 10 * CENT
    # The operator gets back the unspent budget only; prosumer 1 forfeits its bond, prosumer 0
    # (the only one that delivered) gets its payment, its bond and the whole forfeited bond.
    assert after[m.operator.address] - before[m.operator.address] == budget - payment
    assert after[m.prosumers[1].address] == before[m.prosumers[1].address]
    assert after[scene.der.address] - before[scene.der.address] == payment + bond + bond
    assert fx.read(m.chain, scene.flex, "penalty_reserve_wei") == 0
    assert m.read("GridToken", "balanceOf", scene.flex) == 0
    _assert_nothing_lost(scene)


def test_forfeited_bonds_nobody_earned_stay_in_the_reserve_for_the_next_request():
    scene = _scene()
    m = scene.market
    operator_before = m.read("GridToken", "balanceOf", m.operator.address)
    (closed,) = m.mine([fx.close(m.outsider, scene.flex, scene.request_id, n_offers=1)], CLOSE_TIMESTAMP)
    assert closed.ok
    bond = bond_wei(AWARDED_WH, OFFER_PRICE_WEI_PER_WH, FLEX_PENALTY_PERMILLE)
    assert fx.read(m.chain, scene.flex, "penalty_reserve_wei") == bond
    assert m.read("GridToken", "balanceOf", scene.flex) == bond
    assert m.read("GridToken", "balanceOf", m.operator.address) - operator_before == AWARDED_WH * 10 * CENT
    _assert_nothing_lost(scene)


def test_a_rebinding_before_the_start_replaces_the_single_binding():
    m = new_market(2)
    meter0, meter1, p0, p1 = m.meters[0], m.meters[1], m.prosumers[0], m.prosumers[1]
    (receipt,) = m.mine([m.call_tx(m.operator, "Registry", "bind_meter", meter1.address, p0.address)])
    assert receipt.ok
    # meter1 now measures p0 only; meter0 and p1 are left unbound: still one meter per prosumer.
    assert m.read("Registry", "meter_of_prosumer", p0.address) == meter1.address
    assert m.read("Registry", "prosumer_of_meter", meter1.address) == p0.address
    zero = "0x" + "00" * 20
    assert m.read("Registry", "prosumer_of_meter", meter0.address) == zero
    assert m.read("Registry", "meter_of_prosumer", p1.address) == zero
    unbound = [e.args for e in map(m.chain.decode, receipt.logs) if e is not None and e.event == "MeterUnbound"]
    assert unbound == [
        {"meter": meter1.address, "prosumer": p1.address},
        {"meter": meter0.address, "prosumer": p0.address},
    ]
    # Revoking a bound meter's role before the start unbinds it.
    (receipt,) = m.mine([m.call_tx(m.operator, "Registry", "revoke_role", meter1.address, ROLE_METER)])
    assert receipt.ok and m.read("Registry", "meter_of_prosumer", p0.address) == zero
    # A meter is never a prosumer.
    (receipt,) = m.mine([m.call_tx(m.operator, "Registry", "grant_role", meter0.address, ROLE_PROSUMER)])
    assert reverted(receipt, "registry: meter cannot be prosumer")
