"""Attacks across zone ledgers (`market.sharding: per-zone`): a zone's chain serves its own prosumers and meters only.

Every zone ledger deploys the same contracts at the same addresses under
the run's one chain id (one deployment notice serves every agent), so a
transaction signed for one zone's chain is valid bytes on another's. What
stops it there: the other chain funds only its own zone's accounts at
genesis (no gas), and even with gas given by a colluding insider, the
registry grants roles only to that zone's prosumers and meters.
Two zones of case33bw, p01 and p02 in z0, p03 and p04 in z1; in-process
chains, no HELICS.
"""

from __future__ import annotations

import pytest

from gridledger.agents.market_operator import MarketOperator
from gridledger.contracts import market as mk
from gridledger.contracts.keys import derive_account
from gridledger.interfaces import DER_ENDPOINT, GRID_ENDPOINT
from gridledger.messages import decode
from gridledger.roster import roster_of, zone_roster
from gridledger.scenario import build_scenario
from gridledger.schedule import LedgerAction
from gridledger.study import parse_study
from tests.ledger_agents_helpers import CENT_PER_KWH, SECRET

NO_GAS = "cannot afford txn gas"


@pytest.fixture
def zones():
    sc = build_scenario(parse_study({
        "name": "shards", "start": "2024-06-21T10:00:00", "duration_s": 3600, "seed": 42,
        "grid": {"feeder": "case33bw", "zones": {"buses": [list(range(0, 18)), list(range(18, 33))]}},
        "prosumers": {"count": 4, "buses": [3, 5, 20, 25], "pv": {"share": 0.5, "kwp_per_kw_load": 1.5}},
        "market": {"sharding": "per-zone"}}))
    roster = roster_of(sc)
    assert roster.zone_of == {"p01": "z0", "p02": "z0", "p03": "z1", "p04": "z1"}
    return {zone: MarketOperator.deploy(zone_roster(roster, zone), SECRET) for zone in roster.zones}


def _wallet(op: MarketOperator, role: str, name: str):
    return op.chain.wallet(derive_account(SECRET, f"{role}/{name}"))


def _credits(op: MarketOperator) -> list[int]:
    return [mk.read(op.chain, op.addresses.settlement, "Settlement", "credit_wei", a) for a in op.prosumers]


def _receipts(outbox) -> list[dict]:
    return [r for _, payload in outbox for r in decode(payload).get("receipts", [])]


def _book_accounts(op: MarketOperator, interval: int) -> set[str]:
    book = mk.book(op.chain, op.addresses, interval)
    return {o.account for o in (*book.bids, *book.asks)}


def test_zone_chains_share_addresses_and_chain_id_but_not_accounts(zones):
    z0, z1 = zones["z0"], zones["z1"]
    assert z0.addresses == z1.addresses and z0.chain.chain_id == z1.chain.chain_id
    assert set(z0.prosumers).isdisjoint(z1.prosumers)
    assert z0.deployment() == z1.deployment()


def test_another_zones_prosumer_cannot_order_on_a_zone_chain_even_with_gas(zones):
    z0 = zones["z0"]
    before = _credits(z0)
    outsider = _wallet(z0, "prosumer", "p03")
    order = mk.submit_order(outsider, z0.addresses, 1, is_ask=False, energy_wh=300, price_wei_per_wh=20 * CENT_PER_KWH)
    (unfunded,) = _receipts(z0.act(LedgerAction(1.0, "mine"), [(DER_ENDPOINT, order)]))
    assert (unfunded["included"], unfunded["status"]) == (False, 0) and NO_GAS in unfunded["revert_reason"]
    # A colluding z0 prosumer pays its gas: the registry still refuses it the prosumer role.
    fund = _wallet(z0, "prosumer", "p01").transact(outsider.address, b"", gas=21000, value_wei=10**18)
    funded, refused = _receipts(z0.act(LedgerAction(2.0, "mine"), [(DER_ENDPOINT, fund), (DER_ENDPOINT, order)]))
    assert funded["status"] == 1
    assert (refused["included"], refused["status"], refused["revert_reason"]) == \
        (True, 0, "access: caller is not a prosumer")
    assert outsider.address not in _book_accounts(z0, 1)
    assert _credits(z0) == before and z0.audit()


def test_an_order_replayed_from_one_zone_chain_onto_another_is_refused(zones):
    z0, z1 = zones["z0"], zones["z1"]
    seller = _wallet(z0, "prosumer", "p01")
    order = mk.submit_order(seller, z0.addresses, 1, is_ask=True, energy_wh=500, price_wei_per_wh=10 * CENT_PER_KWH)
    (mined,) = _receipts(z0.act(LedgerAction(1.0, "mine"), [(DER_ENDPOINT, order)]))
    assert mined["status"] == 1 and seller.address in _book_accounts(z0, 1)
    before = _credits(z1)
    (replayed,) = _receipts(z1.act(LedgerAction(1.0, "mine"), [(DER_ENDPOINT, order)]))
    assert (replayed["included"], replayed["status"]) == (False, 0) and NO_GAS in replayed["revert_reason"]
    assert _book_accounts(z1, 1) == set()
    assert _credits(z1) == before and z1.audit()


def test_another_zones_meter_cannot_post_a_reading_on_a_zone_chain(zones):
    z0 = zones["z0"]
    before = _credits(z0)
    meter = _wallet(z0, "meter", "p03")
    reading = mk.post_reading(meter, z0.addresses, 0, import_wh=0, export_wh=5000, pv_wh=5000, battery_wh=0)
    (unfunded,) = _receipts(z0.act(LedgerAction(1.0, "mine"), [(GRID_ENDPOINT, reading)]))
    assert (unfunded["included"], unfunded["status"]) == (False, 0) and NO_GAS in unfunded["revert_reason"]
    fund = _wallet(z0, "meter", "p01").transact(meter.address, b"", gas=21000, value_wei=10**18)
    funded, refused = _receipts(z0.act(LedgerAction(2.0, "mine"), [(GRID_ENDPOINT, fund), (GRID_ENDPOINT, reading)]))
    assert funded["status"] == 1
    assert (refused["included"], refused["status"]) == (True, 0)
    assert refused["revert_reason"] == REFUSED_METER
    assert _credits(z0) == before and z0.audit()


REFUSED_METER = "settlement: caller is not a bound meter"
