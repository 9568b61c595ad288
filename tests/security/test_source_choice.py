"""Attacks on the source choice, each refused or bounded, with nobody's money or earlier sources moved.

Cast (`tests.test_source_choice_contract`): p0 and p1 buy 1 kWh each in
interval 0 from p2 (all PV) and p3 (battery, then grid); the operator, p2's
meter and an outsider try what they may not.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import source_choice as sc
from gridledger.contracts.reference import SourceMix
from tests.contract_helpers import reverted
from tests.test_source_choice_contract import _market, _mix, _trade_and_meter


def _credits(market) -> list[int]:
    return [market.read("Settlement", "credit_wei", p.address) for p in market.prosumers]


@pytest.mark.parametrize("who", ["operator", "outsider", "meter"])
def test_only_a_registered_prosumer_chooses(who):
    market, address = _market()
    sender = {"operator": market.operator, "outsider": market.outsider, "meter": market.meters[2]}[who]
    assert reverted(market.mine([sc.choose_pv(sender, address)])[0], "source: caller is not a prosumer")
    assert list(sc.read(market.chain, address, "choosers")) == []


def test_choosing_after_the_gate_takes_no_pv_from_the_interval_already_cleared():
    """p0 waits to see interval 0's mix, then chooses: interval 0 stays pro rata for both buyers."""
    market, address = _market()
    _trade_and_meter(market, 0)
    before = [_mix(market, address, 0, i) for i in range(4)]
    credits = _credits(market)
    assert market.mine([sc.choose_pv(market.prosumers[0], address)])[0].ok
    assert [_mix(market, address, 0, i) for i in range(4)] == before
    assert before[1] == SourceMix(500, 250, 250)
    assert _credits(market) == credits


def test_a_choice_cannot_be_restated_and_moves_no_money():
    market, address = _market()
    credits = _credits(market)
    assert market.mine([sc.choose_pv(market.prosumers[0], address)])[0].ok
    assert _credits(market) == credits
    assert reverted(market.mine([sc.choose_pv(market.prosumers[0], address)])[0], "source: already chosen")
    assert list(sc.read(market.chain, address, "choosers")) == [market.prosumers[0].address]
