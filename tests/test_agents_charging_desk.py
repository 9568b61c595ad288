"""The EV charging desk: requests and headroom from events, allocation only with headroom, admitted power."""

from __future__ import annotations

import pytest

from gridledger.agents.charging_desk import ROLE_OPERATOR, ChargingDesk
from gridledger.agents.devices import ev_fleet
from gridledger.agents.market_operator import MarketOperator
from gridledger.contracts import charging
from gridledger.contracts import market as mk
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.messages import decode
from gridledger.results import Part
from gridledger.scenario import build_scenario
from tests.ledger_agents_helpers import LV_FEEDER, SECRET, small_scenario


@pytest.fixture(scope="module")
def sc():
    return small_scenario()


@pytest.fixture
def desk(sc):
    desk = ChargingDesk(sc, "0xcharging")
    desk.requested([("HeadroomPosted", {"window": 1, "headroom_w": 20_000}),
                    ("ChargeRequested", {"window": 1, "account": "A", "power_w": 7400}),
                    ("ChargeRequested", {"window": 1, "account": "B", "power_w": 11_000}),
                    ("ChargeRequested", {"window": 2, "account": "C", "power_w": 3700}),
                    ("ChargeRequested", {"window": 4, "account": "D", "power_w": 7400}),     # past the last interval
                    ("HeadroomPosted", {"window": 9, "headroom_w": 5000})])
    return desk


def test_requests_and_requested_power_are_counted_per_window(desk):
    assert desk.requests.tolist() == [0, 2, 1, 0]
    assert desk.requested_w.tolist() == [0, 7400 + 11_000, 3700, 0]


def test_headroom_is_kept_per_window_and_windows_past_the_study_are_ignored(desk):
    assert desk.headroom_w.tolist() == [0, 20_000, 0, 0]


def test_admitted_power_is_recorded_per_account_and_summed_per_window(desk, sc):
    admitted = desk.allocated([("Allocated", {"window": 1, "account": "A", "power_w": 7400}),
                               ("WindowAllocated", {"window": 1}),
                               ("Allocated", {"window": 1, "account": "B", "power_w": 11_000})], 1)
    assert admitted == {"A": 7400, "B": 11_000}
    assert desk.admitted_w.tolist() == [0, 18_400, 0, 0]
    part = Part(sc, "ledger")
    desk.write(part)
    assert part.ds["charging_admitted_w"].values.tolist() == [0, 18_400, 0, 0]
    assert part.ds["charging_requested_w"].attrs["units"] == "W"


@pytest.fixture(scope="module")
def deployed():
    return MarketOperator.deploy(small_scenario(LV_FEEDER, charging_coordination=True), SECRET)


def test_deployment_gives_the_dso_the_operator_role_on_the_market_registry(deployed):
    op = deployed
    dso = derive_account(SECRET, "dso").address
    assert mk.read(op.chain, op.addresses.registry, "Registry", "has_role", dso, ROLE_OPERATOR)
    assert not mk.read(op.chain, op.addresses.registry, "Registry", "has_role", op.prosumers[0], ROLE_OPERATOR)
    assert decode(op.deployment()[0][1])["charging"] == op.charging.address


def test_allocation_is_sent_only_for_a_window_with_headroom(deployed, desk):
    caller = Wallet(derive_account(SECRET, "caller"), deployed.chain.chain_id)
    desk.address = deployed.charging.address
    assert desk.gate(caller, 2) == []                               # requests but no headroom
    assert len(desk.gate(caller, 1)) == 1
    assert caller.nonce == 1


def test_deployment_registers_every_ev_of_the_fleet_for_its_owner_and_no_one_else():
    """With EVs, the desk registers each EV the DER federate's fleet charges, with that fleet's
    capacity and charger rating, for its owner's account; other prosumers stay unregistered."""
    study = small_scenario(LV_FEEDER, charging_coordination=True).study
    study = study.model_copy(update={"prosumers": study.prosumers.model_copy(
        update={"ev": study.prosumers.ev.model_copy(update={"share": 0.5})})})
    sc = build_scenario(study)
    op = MarketOperator.deploy(sc, SECRET)
    expected = ev_fleet(sc).registrations(op.prosumers)
    assert len(expected) == 2
    registered = {a: charging.read(op.chain, op.charging.address, "ev", a) for a in op.prosumers}
    assert {a: ev for a, ev in registered.items() if ev != (0, 0)} == {
        r.account: (r.capacity_wh, r.max_charge_w) for r in expected}
    assert charging.read(op.chain, op.charging.address, "min_request_w") == sc.study.market.charging_min_request_w
