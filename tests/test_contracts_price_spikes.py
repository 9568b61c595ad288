"""Upstream price spikes in the Settlement (issue 15, events.price_spikes): announced before the market starts,
charged on the spiked interval's imbalances and replacements (a spike posted after the start or by anyone else than
the operator: tests/security/test_price_spike_attacks.py).

A market whose interval 2 is spiked to three times the buy tariff: the same book and readings settle, to the wei,
as the reference does at the spike price in interval 2 and at the tariff in interval 1; tokens are conserved.
"""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from gridledger.agents.market_operator import MarketOperator
from gridledger.agents.orders import zic_orders
from gridledger.contracts import market as mk
from gridledger.contracts.reference import clear_uniform
from gridledger.roster import roster_of
from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from gridledger.units import price_wei_per_wh
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import (GRID_BUY_PRICE_WEI_PER_WH, START_TIMESTAMP, assert_settlement_conserves_tokens,
                                    new_market, reverted)
from tests.secret_helpers import fixed_secret

SPIKED, SPIKE_WEI_PER_WH = 2, 3 * GRID_BUY_PRICE_WEI_PER_WH
BIDS, ASKS = [(300, 40 * CENT), (200, 25 * CENT)], [(250, 12 * CENT), (200, 20 * CENT)]
# Buyers draw more than they bought and a seller delivers less than it sold: imbalances at the buy price and a
# replacement charge, both at the spike in interval 2.
READINGS = [(380, 0), (260, 0), (0, 180), (0, 200)]


@pytest.fixture(scope="module")
def market():
    return new_market(6, price_spikes={SPIKED: SPIKE_WEI_PER_WH})


def test_the_spiked_interval_settles_at_the_spike_and_the_others_at_the_tariff(market):
    assert market.read("Settlement", "buy_price_wei_per_wh", SPIKED) == SPIKE_WEI_PER_WH
    assert market.read("Settlement", "buy_price_wei_per_wh", SPIKED - 1) == GRID_BUY_PRICE_WEI_PER_WH
    clearings = {}
    for interval in (SPIKED - 1, SPIKED):                      # both books before interval 1's readings
        book = market.submit_book(interval, BIDS, ASKS)
        assert market.clear(interval, book).ok
        uniform = clear_uniform(book.bids, book.asks)
        clearings[interval] = SimpleNamespace(positions_wh=uniform.positions_wh, values_wei={
            a: q * uniform.price_wei_per_wh for a, q in uniform.positions_wh.items()})
    for interval, price in ((SPIKED - 1, GRID_BUY_PRICE_WEI_PER_WH), (SPIKED, SPIKE_WEI_PER_WH)):
        assert_settlement_conserves_tokens(market, interval, clearings[interval], READINGS, buy_price_wei_per_wh=price)


@pytest.mark.parametrize("interval,price,reason", [
    (SPIKED, 4 * GRID_BUY_PRICE_WEI_PER_WH, "settlement: spike posted"),
    (7, GRID_BUY_PRICE_WEI_PER_WH, "settlement: spike not above the tariff"),
    (7, None, "settlement: price out of range"),
])
def test_a_spike_out_of_bounds_reverts_with_its_reason_before_the_start(interval, price, reason):
    fresh = new_market(2, price_spikes={SPIKED: SPIKE_WEI_PER_WH})
    assert fresh.chain.timestamp + 1 < START_TIMESTAMP
    price = fresh.read("Settlement", "MAX_PRICE_WEI_PER_WH") + 1 if price is None else price
    (receipt,) = fresh.mine([fresh.call_tx(fresh.operator, "Settlement", "post_price_spike", interval, price)],
                            fresh.chain.timestamp + 1)
    assert reverted(receipt, reason)
    assert fresh.read("Settlement", "buy_price_wei_per_wh", SPIKED) == SPIKE_WEI_PER_WH


def test_a_study_s_spike_reaches_the_chain_and_the_households_orders():
    """``events.price_spikes`` of interval 2 (0.30 -> 0.90 token/kWh): the market operator announces it to the
    Settlement at deployment, and the households' ZI-C bids of interval 2 range up to it (the tariff elsewhere)."""
    study = parse_study({"name": "spike", "start": "2024-06-21T17:00:00", "duration_s": 3600, "seed": 3,
                         "prosumers": {"count": 8}, "market": {"gate_closure_s": 60},
                         "events": {"price_spikes": [{"start_s": 1800, "end_s": 2700, "grid_buy_price_per_kwh": 0.9}]}})
    sc = roster_of(build_scenario(study))
    op = MarketOperator.deploy(sc, fixed_secret(7))
    read = lambda k: mk.read(op.chain, op.addresses.settlement, "Settlement", "buy_price_wei_per_wh", k)  # noqa: E731
    assert [read(k) for k in range(4)] == [price_wei_per_wh(p) for p in (0.3, 0.3, 0.9, 0.3)]
    bids = {k: [o.price_wei_per_wh for o in zic_orders(sc, k) if o is not None and not o.is_ask] for k in (1, 2)}
    assert bids[1] and bids[2]
    assert max(bids[1]) <= price_wei_per_wh(0.3) < max(bids[2]) <= price_wei_per_wh(0.9)
