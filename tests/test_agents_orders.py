"""Orders at the interval start: who orders under which mechanism, what is signed, what is recorded."""

import numpy as np
import pytest

from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.agents.orders import (
    OrderRecord,
    buyers,
    opening_orders,
    order_tx,
    signed_energy_wh,
    within_limits,
    zic_orders,
)
from gridledger.agents.prosumer import Order, limit_price_draw
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import MarketAddresses, ProsumerLimits
from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.contracts.reference import order_limit_wh
from tests.agents_der_helpers import AUCTION, CHAIN_ID, REGISTRY, SECRET, SETTLEMENT, TOKEN, decoded, small_scenario

CENT_WEI_PER_WH = 10**13  # 0.01 token/kWh
ASK = Order(3, True, 1200, 15 * CENT_WEI_PER_WH)
BID = Order(3, False, 50, 20 * CENT_WEI_PER_WH)
SMALL_ASK = Order(3, True, 20, 9 * CENT_WEI_PER_WH)
ORDERS = [ASK, None, BID, SMALL_ASK]


@pytest.mark.parametrize("mechanism, agents", [
    ("uniform-double-auction", [0, 2, 3]),
    ("pay-as-bid", [0, 2, 3]),
    ("merit-order", [0, 3]),       # the operator posts the demand
    ("vickrey", [0, 3]),           # buyers bid on the lots later
    ("english", [0, 3]),
])
def test_sellers_always_order_and_buyers_only_where_buyers_order(mechanism, agents):
    placed = opening_orders(ORDERS, MECHANISMS[mechanism])
    assert [i for i, _ in placed] == agents
    assert all(order is ORDERS[i] for i, order in placed)


def test_buyers_are_the_agents_short_of_energy_in_prosumer_order():
    assert buyers(ORDERS + [Order(3, False, 7, 1)]) == [(2, BID), (4, Order(3, False, 7, 1))]


def test_record_signs_the_quantity_and_converts_the_price_and_a_later_order_replaces_it():
    record = OrderRecord(n_intervals=5, n_agents=3)
    record.record(1, ASK)
    record.record(2, BID)
    assert record.energy_wh[3].tolist() == [0, 1200, -50]
    # 15e13 wei/Wh * 1000 Wh/kWh / 1e18 wei/token = 0.15 token/kWh
    assert record.price_per_kwh[3, 1] == pytest.approx(0.15)
    assert np.isnan(record.price_per_kwh[3, 0]) and np.isnan(record.price_per_kwh[2]).all()
    record.record(2, Order(3, False, 80, 25 * CENT_WEI_PER_WH))
    assert (record.energy_wh[3, 2], record.price_per_kwh[3, 2]) == (-80, pytest.approx(0.25))
    assert signed_energy_wh(ASK) == 1200 and signed_energy_wh(BID) == -50


def test_zic_orders_price_the_forecast_between_the_tariffs():
    sc = small_scenario()
    orders = zic_orders(sc, 1)
    # p03 (bus 3) has neither PV nor battery: it buys its forecast load of interval 1 (steps 3-5)
    load_kw = sc.prosumer_load_mw(expected=True)[0][3:6, 2] * 1000
    bid = orders[2]
    assert bid is not None and not bid.is_ask and bid.interval == 1
    assert bid.energy_wh == round(load_kw.sum() * 300 / 3.6)  # kW * s / 3.6 = Wh
    # ZI-C: 0.08 + draw * (0.30 - 0.08) token/kWh, as wei/Wh (x 1e15)
    assert bid.price_wei_per_wh == round((0.08 + limit_price_draw(42, 2, 1) * 0.22) * 10**15)
    # p01 (150 kWp at 10:15 in June) sells
    assert orders[0].is_ask


def test_within_limits_cuts_an_ask_to_pv_and_battery_and_drops_one_below_the_minimum():
    # 4 kW PV + 0.8 kW battery over 15 min: asks up to 1000 + 200 Wh; the 10 kW meter carries bids up to 2500 Wh.
    limits = ProsumerLimits(meter_rating_w=10_000, pv_w=4_000, battery_w=800)
    assert within_limits(Order(3, True, 5000, 1), limits, 900, 10) == Order(3, True, 1200, 1)
    assert within_limits(Order(3, False, 5000, 1), limits, 900, 10) == Order(3, False, 2500, 1)
    assert within_limits(BID, limits, 900, 10) == BID
    assert within_limits(Order(3, False, 9, 1), limits, 900, 10) is None
    assert within_limits(Order(3, True, 50, 1), ProsumerLimits(meter_rating_w=10_000), 900, 10) is None


def test_no_agent_order_of_a_study_is_refused_for_its_size():
    sc = small_scenario()
    interval_s, min_order_wh = sc.study.market_interval_s, sc.study.market.min_order_wh
    limits = prosumer_limits(sc)
    n_intervals = sc.study.duration_s // interval_s
    orders = [(order, limits[i]) for k in range(n_intervals) for i, order in enumerate(zic_orders(sc, k))
              if order is not None]
    assert orders
    for order, lim in orders:
        bound_wh = order_limit_wh(is_ask=order.is_ask, meter_rating_w=lim.meter_rating_w, pv_w=lim.pv_w,
                                  battery_w=lim.battery_w, interval_s=interval_s)
        assert min_order_wh <= order.energy_wh <= bound_wh


def wallet() -> Wallet:
    return Wallet(derive_account(SECRET, "prosumer/p01"), CHAIN_ID)


def addresses(mechanism: str) -> MarketAddresses:
    return MarketAddresses(REGISTRY, TOKEN, AUCTION, SETTLEMENT, mechanism)


def test_book_orders_are_submitted_and_merit_order_asks_are_offers():
    tx = decoded(order_tx(wallet(), addresses("uniform-double-auction"), ASK))
    assert tx.to == AUCTION and tx.nonce == 0
    assert tx.data == encode_call("DoubleAuction", "submit_order", 3, True, 1200, ASK.price_wei_per_wh)
    tx = decoded(order_tx(wallet(), addresses("merit-order"), ASK))
    assert tx.data == encode_call("MeritOrder", "submit_offer", 3, 1200, ASK.price_wei_per_wh)


@pytest.mark.parametrize("mechanism, contract", [("vickrey", "VickreyAuction"), ("english", "EnglishAuction")])
def test_a_lot_auction_takes_the_ask_as_a_lot_with_its_price_as_reserve(mechanism, contract):
    tx = decoded(order_tx(wallet(), addresses(mechanism), ASK))
    assert tx.data == encode_call(contract, "post_lot", 3, 1200, ASK.price_wei_per_wh)
