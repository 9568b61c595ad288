"""A feeder islanded behind its open substation: the grid-forming battery as the power flow's slack, a dark island,
and what a battery can give over a step (`gridledger.grids.island`)."""

from __future__ import annotations

import math

import numpy as np
import pandapower.networks as pn
import pytest

from gridledger.grids.island import battery_limits_kw, dark_result, island_net
from gridledger.grids.powerflow import Injections, PowerFlow


@pytest.fixture(scope="module")
def net():
    return pn.case33bw()


def test_the_island_net_opens_the_substation_and_its_slack_supplies_load_and_losses(net):
    island = island_net(net, 17)
    assert net.ext_grid.in_service.all() and len(island.ext_grid) == len(net.ext_grid) + 1       # original kept
    assert not island.ext_grid.in_service.iloc[:-1].any() and island.ext_grid.bus.iloc[-1] == 17
    base = Injections.from_net(island)
    inj = Injections(load_p_mw=base.load_p_mw * 0.1, load_q_mvar=base.load_q_mvar * 0.1, sgen_p_mw=base.sgen_p_mw,
                     storage_p_mw=base.storage_p_mw)
    result = PowerFlow(island, controllers=False).step(inj)
    assert result.converged and result.vm_pu[17] == pytest.approx(1.0)
    assert result.p_mw == pytest.approx(inj.load_p_mw.sum() + result.pl_mw, abs=1e-9)     # energy balance
    assert result.vm_pu.min() < 1.0 and result.pl_mw > 0
    with pytest.raises(ValueError, match="not a bus"):
        island_net(net, 10**6)


def test_a_dark_island_has_no_voltage_no_flow_and_no_import(net):
    dark = dark_result(net)
    assert dark.converged and np.isnan(dark.vm_pu).all() and dark.vm_pu.shape == (len(net.bus),)
    assert dark.p_mw == dark.q_mvar == dark.pl_mw == 0 and not dark.loading_percent.any()


def test_a_battery_gives_its_rating_or_what_its_charge_allows_over_the_step():
    # 10 kWh, 5 kW, 90 % round trip (eta = sqrt 0.9 each way), 10-90 %, a quarter hour.
    assert battery_limits_kw(5.0, 900, 10.0, 5.0, 0.9, 0.1, 0.9) == pytest.approx((5.0, 5.0))
    discharge_kw, _ = battery_limits_kw(1.5, 900, 10.0, 5.0, 0.9, 0.1, 0.9)
    assert discharge_kw == pytest.approx(0.5 * math.sqrt(0.9) / 0.25)                   # 0.5 kWh above 1 kWh
    _, charge_kw = battery_limits_kw(8.9, 900, 10.0, 5.0, 0.9, 0.1, 0.9)
    assert charge_kw == pytest.approx(0.1 / math.sqrt(0.9) / 0.25)                      # 0.1 kWh below 9 kWh
