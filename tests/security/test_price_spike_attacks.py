"""An operator that tries to change an interval's grid buy price after the market started, and an outsider that tries
at any time (``Settlement.post_price_spike``): both refused with their reason, every price as announced, and nobody's
credit or the token supply moved.

Cast: a market of three prosumers whose interval 2 was spiked at setup to three times the tariff.
"""

from __future__ import annotations

from tests.contract_helpers import GRID_BUY_PRICE_WEI_PER_WH, new_market, reverted

SPIKED, SPIKE_WEI_PER_WH = 2, 3 * GRID_BUY_PRICE_WEI_PER_WH


def test_a_spike_after_the_start_or_by_an_outsider_is_refused_and_moves_nothing():
    market = new_market(3, price_spikes={SPIKED: SPIKE_WEI_PER_WH})
    accounts = [market.operator.address, *(w.address for w in market.prosumers)]
    before = {a: market.read("Settlement", "credit_wei", a) for a in accounts}
    supply = market.read("GridToken", "totalSupply")
    market.mine([], market.gate(1))                                    # the market has started
    attempts = [market.call_tx(market.operator, "Settlement", "post_price_spike", 5, SPIKE_WEI_PER_WH),
                market.call_tx(market.operator, "Settlement", "post_price_spike", SPIKED, 10 * SPIKE_WEI_PER_WH),
                market.call_tx(market.outsider, "Settlement", "post_price_spike", 6, SPIKE_WEI_PER_WH),
                market.call_tx(market.prosumers[0], "Settlement", "post_price_spike", 7, SPIKE_WEI_PER_WH)]
    late, raise_again, outsider, prosumer = market.mine(attempts)
    assert reverted(late, "settlement: market started")
    assert reverted(raise_again, "settlement: market started")
    assert reverted(outsider, "settlement: caller is not the operator")
    assert reverted(prosumer, "settlement: caller is not the operator")
    prices = [market.read("Settlement", "buy_price_wei_per_wh", k) for k in range(8)]
    assert prices == [SPIKE_WEI_PER_WH if k == SPIKED else GRID_BUY_PRICE_WEI_PER_WH for k in range(8)]
    assert {a: market.read("Settlement", "credit_wei", a) for a in accounts} == before
    assert market.read("GridToken", "totalSupply") == supply
