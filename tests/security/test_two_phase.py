"""Attacks on two-phase trades, each refused with its exact reason and no token moved.

Cast (`tests.test_two_phase_contract`): p0 buys 500 Wh from p1, the trade
prepared (both locks in); p2 is a third prosumer, its meter and the
outsider try to confirm, accept, cancel or roll back what is not theirs.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import two_phase as tp
from tests.contract_helpers import reverted
from tests.test_two_phase_contract import HOUR_S, PRICE, _balances, _one, _scene

TRADE = b"t".ljust(32, b"\0")


def _prepared():
    market, address = _scene()
    deadline = market.chain.timestamp + HOUR_S
    assert _one(market, tp.propose(market.prosumers[0], address, TRADE, seller=market.prosumers[1].address,
                                   energy_wh=500, price_wei_per_wh=PRICE, deadline_timestamp=deadline)).ok
    assert _one(market, tp.accept(market.prosumers[1], address, TRADE)).ok
    return market, address, deadline


@pytest.mark.parametrize("attack,reason", [
    ("a third prosumer's meter confirms", "trade: caller is not a side's meter"),
    ("the seller itself (not its meter) confirms", "trade: caller is not a side's meter"),
    ("a meter claims less than traded", "trade: metered below traded"),
    ("the seller's meter confirms twice", "trade: already confirmed"),
    ("a meter confirms after the deadline", "trade: deadline passed"),
    ("the buyer cancels a prepared trade", "trade: not proposed"),
    ("the seller accepts again", "trade: not proposed"),
    ("anyone rolls back before the deadline", "trade: deadline not passed"),
])
def test_a_lie_about_a_prepared_trade_is_refused_and_moves_nothing(attack, reason):
    market, address, deadline = _prepared()
    if attack == "the seller's meter confirms twice":
        assert _one(market, tp.confirm(market.meters[1], address, TRADE, 500)).ok
    before = _balances(market, address)
    raw, at = {
        "a third prosumer's meter confirms": lambda: (tp.confirm(market.meters[2], address, TRADE, 500), None),
        "the seller itself (not its meter) confirms": lambda: (tp.confirm(market.prosumers[1], address, TRADE, 500),
                                                               None),
        "a meter claims less than traded": lambda: (tp.confirm(market.meters[0], address, TRADE, 499), None),
        "the seller's meter confirms twice": lambda: (tp.confirm(market.meters[1], address, TRADE, 500), None),
        "a meter confirms after the deadline": lambda: (tp.confirm(market.meters[0], address, TRADE, 500), deadline),
        "the buyer cancels a prepared trade": lambda: (tp.cancel(market.prosumers[0], address, TRADE), None),
        "the seller accepts again": lambda: (tp.accept(market.prosumers[1], address, TRADE), None),
        "anyone rolls back before the deadline": lambda: (tp.roll_back(market.outsider, address, TRADE), None),
    }[attack]()
    assert reverted(_one(market, raw, at), reason)
    assert _balances(market, address) == before


@pytest.mark.parametrize("attack,reason", [
    ("an outsider proposes", "trade: caller is not a prosumer"),
    ("a prosumer proposes to itself", "trade: seller is not another prosumer"),
    ("a prosumer proposes to an outsider", "trade: seller is not another prosumer"),
    ("a deadline beyond a week", "trade: deadline out of range"),
    ("a proposal without approved tokens", "token: insufficient allowance"),
])
def test_a_malformed_proposal_is_refused(attack, reason):
    market, address = _scene()
    p0, p1 = market.prosumers[0], market.prosumers[1]
    sender, seller, deadline, energy = p0, p1.address, market.chain.timestamp + HOUR_S, 500
    if attack == "an outsider proposes":
        sender = market.outsider
    elif attack == "a prosumer proposes to itself":
        seller = p0.address
    elif attack == "a prosumer proposes to an outsider":
        seller = market.outsider.address
    elif attack == "a deadline beyond a week":
        deadline = market.chain.timestamp + 8 * 86400
    else:
        energy = 10**9                                               # worth far more than the approved tokens
    before = _balances(market, address)
    raw = tp.propose(sender, address, TRADE, seller=seller, energy_wh=energy, price_wei_per_wh=PRICE,
                     deadline_timestamp=deadline)
    assert reverted(_one(market, raw), reason)
    assert _balances(market, address) == before


def test_only_the_named_seller_accepts_and_only_the_buyer_cancels():
    market, address = _scene()
    deadline = market.chain.timestamp + HOUR_S
    assert _one(market, tp.propose(market.prosumers[0], address, TRADE, seller=market.prosumers[1].address,
                                   energy_wh=500, price_wei_per_wh=PRICE, deadline_timestamp=deadline)).ok
    before = _balances(market, address)
    assert reverted(_one(market, tp.accept(market.prosumers[2], address, TRADE)), "trade: caller is not the seller")
    assert reverted(_one(market, tp.cancel(market.prosumers[1], address, TRADE)), "trade: caller is not the buyer")
    assert _balances(market, address) == before
    assert _one(market, tp.cancel(market.prosumers[0], address, TRADE)).ok
    assert _balances(market, address)[0] == before[0] + 500 * PRICE and _balances(market, address)[-1] == 0
