"""End to end: the EV evening-peak study with and without on-chain charging coordination.

Real broker, five processes (grid, ledger, der, operator with coordination),
real chain. Everything is recomputed from results.nc and the chain's events.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from gridledger.contracts.charging_reference import ChargeRequest, allocate
from tests.e2e_helpers import ROOT, run_variants

pytestmark = pytest.mark.e2e

STUDY = ROOT / "studies" / "ev-evening-peak.yaml"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The study with and without coordination, run side by side."""
    on, off = tmp_path_factory.mktemp("on"), tmp_path_factory.mktemp("off")
    runs = run_variants(STUDY, {on: {"charging_coordination": True}, off: {"charging_coordination": False}})
    return runs[on], runs[off]


@pytest.fixture(scope="module")
def coordinated(both):
    return both[0]


@pytest.fixture(scope="module")
def uncoordinated(both):
    return both[1]


def charging_events(run_dir, name):
    rows = map(json.loads, (run_dir / "chain" / "events.jsonl").read_text().splitlines())
    return [r for r in rows if r.get("contract") == "ChargingCoordination" and r.get("event") == name]


def test_coordination_lowers_the_peak_transformer_loading(coordinated, uncoordinated):
    _, on = coordinated
    _, off = uncoordinated
    assert float(on.trafo_loading_percent.max()) < float(off.trafo_loading_percent.max()) - 5.0
    assert float(on.substation_p_mw.max()) < float(off.substation_p_mw.max())
    # the uncoordinated peak is the EVs' evening peak
    ev_off = off.ev_p_mw.sum("prosumer")
    assert 17 <= int(ev_off.time[int(ev_off.argmax("time"))].dt.hour) <= 22


@pytest.mark.parametrize("which", ["coordinated", "uncoordinated"])
def test_every_ev_reaches_its_energy_by_departure(which, request):
    _, ds = request.getfixturevalue(which)
    np.testing.assert_allclose(ds.ev_energy_delivered_kwh, ds.ev_energy_needed_kwh, rtol=0, atol=1e-6)
    # and it got there before leaving: no charging at or after departure
    since_start_s = (ds.time.values - ds.time.values[0]) / np.timedelta64(1, "s")
    for e, owner in enumerate(ds.ev_owner.values):
        p = ds.ev_p_mw.sel(prosumer=owner).values
        assert not np.any(p[since_start_s >= ds.ev_departure_s.values[e]] > 0)


def test_contract_alone_sufficed_and_chargers_drew_only_what_was_admitted(coordinated):
    run_dir, ds = coordinated
    assert int(ds.ev_override_steps.sum()) == 0
    admitted = {}
    for e in charging_events(run_dir, "Allocated"):
        admitted[(e["args"]["window"], e["args"]["account"])] = e["args"]["power_w"]
    addresses = dict(zip(ds.prosumer.values, ds.address.values))
    spi = ds.sizes["time"] // ds.sizes["interval"]
    for owner in ds.ev_owner.values:
        p_w = ds.ev_p_mw.sel(prosumer=owner).values * 1e6
        for step, power in enumerate(p_w):
            assert power <= admitted.get((step // spi, addresses[owner]), 0) + 1e-6


def test_allocations_equal_the_python_reference_and_fit_the_headroom(coordinated):
    run_dir, ds = coordinated
    headroom = {e["args"]["window"]: e["args"]["headroom_w"] for e in charging_events(run_dir, "HeadroomPosted")}
    requests: dict[int, list[ChargeRequest]] = {}
    for e in charging_events(run_dir, "ChargeRequested"):
        a = e["args"]
        requests.setdefault(a["window"], []).append(ChargeRequest(a["account"], a["power_w"], a["energy_needed_wh"],
                                                                  a["soc_permille"], a["departure_timestamp"]))
    on_chain: dict[int, list[tuple[str, int]]] = {}
    for e in charging_events(run_dir, "Allocated"):
        on_chain.setdefault(e["args"]["window"], []).append((e["args"]["account"], e["args"]["power_w"]))
    start_ts = int(ds.interval.values[0].astype("datetime64[s]").astype(int))
    assert requests, "EVs should have asked to charge"
    for window, reqs in requests.items():
        window_end = start_ts + (window + 1) * 900
        expected = [(a.account, a.power_w) for a in allocate(headroom[window], reqs, window_end)]
        assert on_chain.get(window, []) == expected
        assert sum(p for _, p in expected) <= headroom[window]
    np.testing.assert_array_equal(ds.charging_headroom_w.values[list(headroom)], list(headroom.values()))


def test_energy_balance_per_step(coordinated, uncoordinated):
    for _, ds in (coordinated, uncoordinated):
        np.testing.assert_allclose(ds.substation_p_mw, ds.p_mw.sum("bus") + ds.pl_mw, atol=1e-5)
