"""The zones' coordinator: residual books from the zone ledgers' messages, one clearing, one message per zone."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from gridledger.agents.coordinator import Coordinator, zone_books
from gridledger.contracts.reference import Order
from gridledger.contracts.zone_clearing import ZoneBook, clear_residuals
from gridledger.messages import decode
from gridledger.study import parse_study

CENT_PER_KWH = 10**13  # wei/Wh
A, B, C, D = (f"0x{i:040x}" for i in (0xA, 0xB, 0xC, 0xD))


def _residuals(interval: int, zone: str, bids=(), asks=(), source: str | None = None) -> tuple[str, dict]:
    """A zone ledger's message as the coordinator receives it: (source endpoint, body)."""
    return (source or f"ledger-{zone}/tx", {"type": "residuals", "interval": interval, "zone": zone,
                                            "bids": [dataclasses.asdict(o) for o in bids],
                                            "asks": [dataclasses.asdict(o) for o in asks]})


@dataclasses.dataclass
class _Roster:
    """What the coordinator reads of a roster: the study and the zone names."""

    study: object
    zones: dict
    buses: np.ndarray = dataclasses.field(default_factory=lambda: np.arange(2))
    lines: np.ndarray = dataclasses.field(default_factory=lambda: np.arange(1))
    trafos: np.ndarray = dataclasses.field(default_factory=lambda: np.arange(0))
    prosumers: tuple = ()


@pytest.fixture()
def coordinator() -> Coordinator:
    study = parse_study({"name": "z", "duration_s": 3600, "grid": {"zones": {"buses": [[0], [1]]}},
                         "market": {"sharding": "per-zone"}})
    return Coordinator(_Roster(study, {"z0": (0,), "z1": (1,)}))


def test_a_hand_cleared_interval_is_sent_to_each_zone_and_recorded(coordinator):
    # z0 is left a bid of 1000 Wh at 40 c/kWh and an ask of 300 Wh at 45 c/kWh; z1 an ask of 600 Wh at
    # 20 c/kWh. One book: bid 40 >= ask 20 trade 600 Wh (the bid is left 400 Wh); then bid 40 < ask 45
    # stops. Price = floor((40 + 20) / 2) = 30 c/kWh; z0 imports 600 Wh, z1 exports 600 Wh.
    messages = [_residuals(2, "z1", asks=[Order(C, 600, 20 * CENT_PER_KWH)]),
                _residuals(2, "z0", bids=[Order(A, 1000, 40 * CENT_PER_KWH)], asks=[Order(B, 300, 45 * CENT_PER_KWH)])]
    sent = coordinator.clear(2, messages)
    assert [endpoint for endpoint, _ in sent] == ["ledger-z0/tx", "ledger-z1/tx"]
    bodies = [decode(payload) for _, payload in sent]
    assert bodies[0] == {"type": "cross_fills", "interval": 2, "price_wei_per_wh": 30 * CENT_PER_KWH,
                         "fills_wh": {A: 600}}
    assert bodies[1] == {"type": "cross_fills", "interval": 2, "price_wei_per_wh": 30 * CENT_PER_KWH,
                         "fills_wh": {C: 600}}
    part = coordinator.part().ds
    assert float(part.coordinator_price_per_kwh[2]) == pytest.approx(0.30)
    assert np.isnan(part.coordinator_price_per_kwh[1]) and np.isnan(part.coordinator_price_per_kwh[3])
    assert int(part.cross_zone_volume_wh[2]) == 600 and int(part.cross_zone_volume_wh.sum()) == 600
    assert part.net_export_wh.sel(interval=part.interval[2]).values.tolist() == [-600, 600]
    assert part.net_export_wh.attrs["units"] == "Wh" and part.coordinator_price_per_kwh.attrs["units"] == "token/kWh"


def test_nothing_to_match_sends_every_zone_an_empty_fill_at_price_zero(coordinator):
    sent = coordinator.clear(1, [_residuals(1, "z0", bids=[Order(A, 100, 10 * CENT_PER_KWH)]),
                                 _residuals(1, "z1", asks=[Order(C, 100, 20 * CENT_PER_KWH)])])
    assert [decode(p)["fills_wh"] for _, p in sent] == [{}, {}]
    assert [decode(p)["price_wei_per_wh"] for _, p in sent] == [0, 0]
    assert int(coordinator.part().ds.cross_zone_volume_wh.sum()) == 0


def test_a_zone_that_sent_nothing_is_an_empty_book():
    books = zone_books(["z0", "z1"], 3, [_residuals(3, "z1", asks=[Order(C, 600, 1)])])
    assert books == {"z0": ZoneBook((), ()), "z1": ZoneBook((), (Order(C, 600, 1),))}


@pytest.mark.parametrize("stray", [
    _residuals(2, "z0", bids=[Order(D, 999, 99)]),         # another interval's
    _residuals(3, "z9", bids=[Order(D, 999, 99)]),         # a zone the run does not have
    ("ledger-z0/tx", {**_residuals(3, "z0", bids=[Order(D, 999, 99)])[1], "type": "cross_fills"}),
    _residuals(3, "z0", bids=[Order(D, 999, 99)]),         # a second message of z0 (sorted after the first)
    _residuals(3, "z1", bids=[Order(D, 999, 99)], source="der/agents"),       # not from z1's ledger
    _residuals(3, "z1", bids=[Order(D, 999, 99)], source="ledger-z0/tx"),     # z0's ledger speaking for z1
], ids=["other interval", "unknown zone", "other type", "repeated zone", "forged by an agent", "another zone's"])
def test_stray_messages_are_dropped(stray):
    first = _residuals(3, "z0", bids=[Order(A, 500, 40)])
    assert zone_books(["z0", "z1"], 3, [first, stray]) == {"z0": ZoneBook((Order(A, 500, 40),), ()),
                                                           "z1": ZoneBook((), ())}


def test_a_forged_message_sent_first_does_not_displace_the_zones_own():
    forged = _residuals(3, "z0", asks=[Order(D, 999, 1)], source="der/agents")
    own = _residuals(3, "z0", bids=[Order(A, 500, 40)])
    assert zone_books(["z0"], 3, [forged, own]) == {"z0": ZoneBook((Order(A, 500, 40),), ())}


def test_an_account_a_second_zone_lists_is_dropped_there():
    """Each account orders in one zone; a zone ledger that lists another zone's account gets nothing for it."""
    books = zone_books(["z0", "z1"], 3, [_residuals(3, "z1", asks=[Order(A, 500, 10)]),
                                         _residuals(3, "z0", bids=[Order(A, 500, 40)])])
    assert books == {"z0": ZoneBook((Order(A, 500, 40),), ()), "z1": ZoneBook((), ())}
    assert clear_residuals(books).fills_wh == {"z0": {}, "z1": {}}
