"""PV owners in the voltage-regulation market: who offers what at which price, awards as curtailment."""

import numpy as np
import pytest

from gridledger.agents.flex_offers import (MIN_OFFER_WH, CurtailmentOffer, Flexibility, FlexRequest, OfferRules,
                                           bond_approvals, curtailment_offers, expected_pv_w, offer_price_draw,
                                           offer_price_wei_per_wh, offer_tx, pv_owners, pv_rating_w)
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.keys import derive_account
from tests.agents_der_helpers import CHAIN_ID, FLEX, SECRET, TOKEN, decoded, small_scenario

SEED, K = 42, 2
FEED_IN, CAP = 80, 300  # [wei/Wh]
# Ratings far above every offer, 1 W minimum, no minimum bond, bond = price x energy.
OPEN = OfferRules(np.full(5, 10**6), 1, 0, 1000)


def request(request_id=7, zone=(5, 7), p_w=1000, window_s=900, cap=CAP):
    return FlexRequest(request_id, K, {bus: 0.01 for bus in zone}, p_w, cap, window_s)


def test_request_from_a_json_message_has_integer_zone_buses():
    body = {"request_id": 3, "interval": 4, "zone": {"12": 0.5, "13": 0.25}, "p_w": 900,
            "price_cap_wei_per_wh": 5, "window_s": 900, "close_after": 99}
    assert FlexRequest.from_message(body) == FlexRequest(3, 4, {12: 0.5, 13: 0.25}, 900, 5, 900)


def test_offer_price_lies_between_feed_in_and_cap():
    assert offer_price_wei_per_wh(0.0, FEED_IN, CAP) == 80
    assert offer_price_wei_per_wh(0.5, FEED_IN, CAP) == 190     # 80 + floor(0.5 * 220)
    assert offer_price_wei_per_wh(0.999, FEED_IN, CAP) == 299   # 80 + floor(219.78)
    assert offer_price_wei_per_wh(0.7, FEED_IN, 50) == 50       # cap below the feed-in tariff: the cap


def test_only_zone_members_offer_their_expected_pv_capped_at_the_request_and_at_least_one_wh():
    buses = [3, 5, 7, 5, 7]
    expected_w = np.array([2000.0, 500.7, 3000.0, 4.9, 3.9])
    offers = curtailment_offers([request()], buses, expected_w, OPEN, FEED_IN, SEED, K)
    # agent 0: bus 3 outside the zone; agent 1: floor(500.7) = 500 W; agent 2: capped at the request's 1000 W;
    # agent 3: 4 W * 900 s / 3600 = 1 Wh, just enough; agent 4: 3 W * 900 s / 3600 = 0.75 Wh < 1 Wh
    assert [(o.agent, o.p_w, o.bus, o.request_id) for o in offers] == [(1, 500, 5, 7), (2, 1000, 7, 7), (3, 4, 5, 7)]
    assert MIN_OFFER_WH == 1
    for o in offers:
        assert o.price_wei_per_wh == offer_price_wei_per_wh(offer_price_draw(SEED, o.agent, K), FEED_IN, CAP)
        assert FEED_IN <= o.price_wei_per_wh <= CAP


def test_no_offer_the_contract_would_refuse_is_sent():
    buses = [5, 7, 5, 7]
    expected_w = np.array([500.7, 3000.0, 4.9, 600.0])
    # Drawn prices: agent 0 245, agent 3 80 wei/Wh (the feed-in tariff).
    assert [offer_price_wei_per_wh(offer_price_draw(SEED, i, K), FEED_IN, CAP) for i in (0, 3)] == [245, 80]
    # Bonds at penalty 1.5: agent 0 125 Wh * 245 * 1.5 = 45937; agent 3 150 Wh * 80 * 1.5 = 18000,
    # one wei below the minimum bond.
    rules = OfferRules(np.array([10**6, 800, 10**6, 10**6]), 100, 18_001, 1500)
    offers = curtailment_offers([request()], buses, expected_w, rules, FEED_IN, SEED, K)
    # agent 1 capped at its 800 W rating; agent 2's 4 W is below the 100 W minimum; agent 3's bond too small.
    assert [(o.agent, o.p_w) for o in offers] == [(0, 500), (1, 800)]


def test_rules_come_from_the_study_and_the_pv_ratings():
    sc = small_scenario()
    rules = OfferRules.of(sc)
    kwp = [p.pv_kwp for p in sc.prosumers]
    assert rules.rating_w.tolist() == [round(k * 1000) for k in kwp] == pv_rating_w(sc).tolist()
    # defaults: 0.1 kW, 0.001 token, penalty factor 1
    assert (rules.min_offer_w, rules.min_bond_wei, rules.penalty_permille) == (100, 10**15, 1000)


def test_offers_answer_each_request_in_turn():
    offers = curtailment_offers([request(1, zone=(7,)), request(2, zone=(3,))], [3, 7], np.array([100.0, 200.0]),
                                OPEN, FEED_IN, SEED, K)
    assert [(o.request_id, o.agent) for o in offers] == [(1, 1), (2, 0)]


def test_awards_accumulate_into_curtailment_per_interval_and_agent():
    flex = Flexibility(n_intervals=4, n_agents=3)
    index_of = {"0xa": 0, "0xb": 1, "0xc": 2}
    flex.award([{"request_id": 1, "interval": K, "p_w": {"0xb": 1500}},
                {"request_id": 2, "interval": K, "p_w": {"0xb": 500, "0xc": 250}}], index_of)
    flex.award([{"request_id": 3, "interval": K + 1, "p_w": {"0xa": 100}}], index_of)
    assert flex.awarded_w[K].tolist() == [0, 2000, 250]       # 1500 + 500 W
    assert flex.curtail_kw[K].tolist() == [0.0, 2.0, 0.25]
    assert flex.curtail_kw[K + 1].tolist() == [0.1, 0.0, 0.0]


def test_requests_are_kept_by_interval_and_offers_noted():
    flex = Flexibility(n_intervals=4, n_agents=2)
    flex.add_requests([{"request_id": 1, "interval": 3, "zone": {"5": 1.0}, "p_w": 10, "price_cap_wei_per_wh": 1,
                        "window_s": 900}])
    assert [r.request_id for r in flex.requests[3]] == [1] and 2 not in flex.requests
    flex.offered(3, CurtailmentOffer(1, 1, 640, 90, 5))
    assert flex.offer_w[3].tolist() == [0, 640]


def test_pv_owners_approve_their_bond_in_wei():
    pv_kw = np.array([[0.0, 1.0, 0.0], [0.0, 2.0, 3.0]])
    assert pv_owners(pv_kw).tolist() == [1, 2]
    wallets = [Wallet(derive_account(SECRET, f"prosumer/{i}"), CHAIN_ID) for i in range(3)]
    txs = [decoded(tx) for tx in bond_approvals(wallets, pv_owners(pv_kw), TOKEN, FLEX, 2.5)]
    assert [t.sender for t in txs] == [wallets[1].address, wallets[2].address]
    assert all(t.to == TOKEN for t in txs)
    assert txs[0].data == encode_call("GridToken", "approve", FLEX, 25 * 10**17)  # 2.5 token * 1e18 wei/token


def test_offer_tx_carries_request_power_and_price_but_no_bus():
    wallet = Wallet(derive_account(SECRET, "prosumer/p01"), CHAIN_ID)
    tx = decoded(offer_tx(wallet, FLEX, CurtailmentOffer(0, 7, 640, 90, 5)))
    assert tx.to == FLEX and tx.data == encode_call("VoltageRegulation", "offer", 7, 640, 90)


def test_expected_pv_is_the_mean_forecast_over_the_interval_in_watts():
    sc = small_scenario()
    kwp = np.array([p.pv_kwp for p in sc.prosumers])
    # interval 1 = steps 3, 4, 5; kW -> W x 1000
    np.testing.assert_allclose(expected_pv_w(sc, 1), sc.pv_pu_expected[3:6].mean(axis=0) * kwp * 1000)
    assert expected_pv_w(sc, 1)[2] == 0.0 and expected_pv_w(sc, 1)[0] > 0   # p03 has no PV, p01 has
    assert kwp[0] == pytest.approx(150.0)
