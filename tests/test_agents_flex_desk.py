"""The voltage-regulation desk: requests, offers, awards and settlements from events, gate duties, deployment.

Times are study start T0 plus seconds; market interval 900 s, gate closure 60 s.
"""

from __future__ import annotations

import pytest

from gridledger.agents.flex_desk import FlexDesk, der_facts
from gridledger.agents.market_operator import MarketOperator
from gridledger.contracts import flexibility as flex
from gridledger.contracts import market as mk
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.keys import derive_account
from gridledger.results import Part
from gridledger.units import WEI_PER_TOKEN
from tests.ledger_agents_helpers import SECRET, small_scenario


@pytest.fixture(scope="module")
def sc():
    return small_scenario()


def request_posted(request_id: int, start: int, end: int, p_w: int) -> tuple[str, dict]:
    return "RequestPosted", {"request_id": request_id, "window_start_timestamp": start, "window_end_timestamp": end,
                             "p_w": p_w, "price_cap_wei_per_wh": 3 * 10**14, "zone_buses": [17, 18],
                             "sensitivities_upu_per_kw": [40, 35]}


def post_two(desk: FlexDesk, t0: int) -> list[dict]:
    """Request 7 for interval 1 (6 kW, whole interval) with two offers, 8 for interval 2 (1 kW, 300 s) with one."""
    return desk.posted([request_posted(7, t0 + 900, t0 + 1800, 6000), request_posted(8, t0 + 1800, t0 + 2100, 1000),
                        ("Offered", {"request_id": 7}), ("Offered", {"request_id": 7}), ("Offered", {"request_id": 8})])


@pytest.fixture
def desk(sc):
    desk = FlexDesk(sc, "0xflex", "0xtoken")
    post_two(desk, sc.study.start_timestamp)
    return desk


def test_posted_requests_belong_to_the_interval_their_window_starts_and_are_returned(sc):
    t0 = sc.study.start_timestamp
    new = post_two(FlexDesk(sc, "0xflex", "0xtoken"), t0)
    assert [(r["request_id"], r["interval"], r["window_s"]) for r in new] == [(7, 1, 900), (8, 2, 300)]
    assert new[0]["zone"] == {17: 40, 18: 35}
    assert new[0]["close_after"] == t0 + 1800 + 900 - 60          # window end + delivery period (900 - 60 s)


def test_requested_energy_is_power_over_the_window_floored_to_wh(desk):
    # 6000 W * 900 s / 3600 = 1500 Wh; 1000 W * 300 s / 3600 = 83.3 -> 83 Wh.
    assert desk.requested_wh.tolist() == [0, 1500, 83, 0]


def test_offers_are_counted_per_request_and_per_interval(desk):
    assert desk.offers == {7: 2, 8: 1}
    assert desk.offers_per_interval.tolist() == [0, 2, 1, 0]


def test_gate_awards_its_interval_and_closes_requests_only_after_their_deadline(desk, sc):
    t0 = sc.study.start_timestamp
    assert desk.due(1, t0 + 840) == ([7], [])
    assert desk.due(2, t0 + 2639) == ([8], [])                     # one second before 7's deadline t0 + 2640
    assert desk.due(3, t0 + 2640) == ([], [7])
    assert desk.due(3, t0 + 3600) == ([], [8])                      # 7 is closed already
    assert desk.open == set()


def test_awards_are_grouped_by_request_and_zero_awards_left_out(desk):
    awards = desk.awarded([("Awarded", {"request_id": 7, "der": "A", "p_w": 4000, "energy_wh": 1000}),
                           ("Awarded", {"request_id": 7, "der": "B", "p_w": 0, "energy_wh": 0}),
                           ("Awarded", {"request_id": 7, "der": "C", "p_w": 2000, "energy_wh": 500}),
                           ("Awarded", {"request_id": 8, "der": "D", "p_w": 500, "energy_wh": 41})])
    assert awards == [{"request_id": 7, "interval": 1, "p_w": {"A": 4000, "C": 2000}},
                      {"request_id": 8, "interval": 2, "p_w": {"D": 500}}]
    assert desk.awarded_wh.tolist() == [0, 1000 + 500, 41, 0]


def test_settlements_sum_delivery_payment_and_penalty_per_interval(desk, sc):
    desk.awarded([("Settled", {"request_id": 7, "delivered_wh": 900, "payment_wei": 10**17, "penalty_wei": 0}),
                  ("Settled", {"request_id": 7, "delivered_wh": 300, "payment_wei": 3 * 10**16,
                               "penalty_wei": 2 * 10**16})])
    part = Part(sc, "ledger")
    desk.write(part)
    assert desk.delivered_wh.tolist() == [0, 1200, 0, 0]
    assert part.ds["flex_payment_token"].values[1] == pytest.approx(0.13)   # (10**17 + 3 * 10**16) / 10**18
    assert part.ds["flex_penalty_token"].values[1] == pytest.approx(0.02)
    assert part.ds["flex_awarded_wh"].attrs["units"] == "Wh"


@pytest.fixture(scope="module")
def deployed():
    return MarketOperator.deploy(small_scenario(voltage_regulation=True,
                                                flexibility={"operator_budget": 100.0, "bond_endowment": 5.0}), SECRET)


def test_deployment_mints_the_dso_budget_and_each_prosumer_s_bond(deployed):
    op = deployed
    dso = derive_account(SECRET, "dso").address
    balances = [mk.read(op.chain, op.addresses.token, "GridToken", "balanceOf", a) for a in [dso, *op.prosumers]]
    assert balances == [100 * WEI_PER_TOKEN] + [5 * WEI_PER_TOKEN] * 4
    assert op.dso == dso and [d for d, _ in op.deployment()] == ["der/agents", "grid/meters", "operator/dso"]


def test_deployment_registers_each_pv_owner_at_its_bus_with_its_kwp_before_the_start(deployed):
    op = deployed
    sc = op.sc
    facts = der_facts(sc, op.prosumers)
    assert [f.der for f in facts] == [a for a, p in zip(op.prosumers, sc.prosumers) if p.pv_kwp > 0]
    for address, p in zip(op.prosumers, sc.prosumers):
        rating_w = flex.read(op.chain, op.flex.address, "der_rating_w", address)
        assert rating_w == round(p.pv_kwp * 1000)
        assert flex.read(op.chain, op.flex.address, "der_bus", address) == (p.bus if rating_w else 0)
    registrar = flex.read(op.chain, op.flex.address, "registrar")
    assert registrar == op.wallet.address
    assert flex.read(op.chain, op.flex.address, "min_offer_w") == 100
    assert flex.read(op.chain, op.flex.address, "min_bond_wei") == 10**15
    assert op.chain.timestamp < sc.study.start_timestamp


def test_gate_signs_awards_then_closings(deployed, sc):
    op, t0 = deployed, sc.study.start_timestamp
    desk = FlexDesk(sc, op.flex.address, op.flex.token)
    desk.posted([request_posted(0, t0 + 900, t0 + 1800, 6000), request_posted(1, t0 + 1800, t0 + 2700, 1000)])
    caller = Wallet(derive_account(SECRET, "caller"), op.chain.chain_id)
    assert len(desk.gate(caller, 2, t0 + 2640)) == 2                 # award 1, close 0
    assert caller.nonce == 2
    assert desk.gate(caller, 3, t0 + 2640) == []


def test_tokens_held_match_until_someone_sends_the_contract_tokens(deployed):
    op = deployed
    assert op.flex.tokens_held_match(op.chain)                       # no request: holds 0
    # The operator's wallet has signed the (unmined) close of interval 0: sign at the chain's nonce.
    gift = op.chain.wallet(op.wallet.account).transact(
        op.addresses.token, encode_call("GridToken", "mint", op.flex.address, 1), gas=100_000)
    (receipt,) = op.chain.mine([gift], op.chain.timestamp + 1)
    assert receipt.ok and not op.flex.tokens_held_match(op.chain)
