"""End to end: the voltage-regulation market closes the loop on the pv-overvoltage study.

The study runs twice with a real helics_broker, one process per federate and
a real chain: once as shipped (`market.voltage_regulation: on`, with the
operator federate) and once with the market off. Every check recomputes
from the run's outputs (results.nc and the chain export) with the contract's
Python reference or plain numpy.
"""

from __future__ import annotations

import json
from collections import defaultdict

import numpy as np
import pytest
from gridledger.contracts.flex_reference import (
    FlexOffer,
    FlexRequest,
    award_offers,
    energy_wh,
    settle_awards,
)
from gridledger.contracts.keys import derive_account

from gridledger.study import load_study
from tests.e2e_helpers import ROOT, TEST_SECRET, run_variants

pytestmark = pytest.mark.e2e

STUDY = ROOT / "studies" / "pv-overvoltage.yaml"
WEI_PER_TOKEN = 10**18
RANGE_A_PU = (0.95, 1.05)
FLEX = "VoltageRegulation"


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The pv-overvoltage study with the voltage-regulation market on and off, run side by side."""
    on_dir, off_dir = tmp_path_factory.mktemp("flex-on"), tmp_path_factory.mktemp("flex-off")
    runs = run_variants(STUDY, {on_dir: {"voltage_regulation": True}, off_dir: {"voltage_regulation": False}})
    return {flag: (run_dir, ds, load_study(run_dir / "study.yaml"))
            for flag, (run_dir, ds) in zip((True, False), (runs[on_dir], runs[off_dir]))}


@pytest.fixture(scope="module")
def on(both):
    return both[True]


@pytest.fixture(scope="module")
def off(both):
    return both[False]


def chain_events(run_dir, contract: str, name: str) -> list[dict]:
    """Arguments of the events `name` of `contract`, in chain order (the Settlement contract also logs
    "Settled", so the contract matters)."""
    rows = map(json.loads, (run_dir / "chain" / "events.jsonl").read_text().splitlines())
    return [row["args"] for row in rows if row["contract"] == contract and row["event"] == name]


def flex_address(run_dir) -> str:
    rows = map(json.loads, (run_dir / "chain" / "events.jsonl").read_text().splitlines())
    (address,) = {row["address"] for row in rows if row["contract"] == FLEX}
    return address


def interval_of(study, timestamp: int) -> int:
    return (timestamp - study.start_timestamp) // study.market_interval_s


def range_a_bus_steps(ds) -> int:
    lo, hi = RANGE_A_PU
    vm = ds.vm_pu.values
    return int(((vm < lo) | (vm > hi)).sum())


class Market:
    """The flexibility market as the chain's events tell it, one entry per request id."""

    def __init__(self, run_dir, study):
        self.requests, self.interval, self.budget_wei = {}, {}, {}
        for a in chain_events(run_dir, FLEX, "RequestPosted"):
            rid = a["request_id"]
            self.requests[rid] = FlexRequest(dict(zip(a["zone_buses"], a["sensitivities_upu_per_kw"])), a["p_w"],
                                             a["window_end_timestamp"] - a["window_start_timestamp"],
                                             a["price_cap_wei_per_wh"])
            self.interval[rid] = interval_of(study, a["window_start_timestamp"])
            self.budget_wei[rid] = a["budget_wei"]
        self.offered = defaultdict(list)
        for a in chain_events(run_dir, FLEX, "Offered"):
            assert a["offer_index"] == len(self.offered[a["request_id"]])
            self.offered[a["request_id"]].append(a)
        self.awarded = defaultdict(list)
        for a in chain_events(run_dir, FLEX, "Awarded"):
            self.awarded[a["request_id"]].append(a)
        self.settled = defaultdict(list)
        for a in chain_events(run_dir, FLEX, "Settled"):
            self.settled[a["request_id"]].append(a)
        self.closed = {a["request_id"]: a for a in chain_events(run_dir, FLEX, "Closed")}
        # The penalty reserve each close started from: the reserve the previous close left.
        self.reserve_before_wei, reserve_wei = {}, 0
        for rid, a in self.closed.items():
            self.reserve_before_wei[rid], reserve_wei = reserve_wei, a["reserve_wei"]
        self.shared = defaultdict(dict)
        for a in chain_events(run_dir, FLEX, "PenaltyShared"):
            self.shared[a["request_id"]][a["der"]] = a["share_wei"]

    def offers(self, rid: int) -> list[FlexOffer]:
        return [FlexOffer(o["der"], o["p_w"], o["price_wei_per_wh"], o["bus"]) for o in self.offered[rid]]

    def awarded_w(self) -> dict[tuple[int, str], int]:
        """Power awarded per (interval, DER address). [W]"""
        out: dict[tuple[int, str], int] = defaultdict(int)
        for rid, awards in self.awarded.items():
            for a in awards:
                if a["p_w"]:
                    out[self.interval[rid], a["der"]] += a["p_w"]
        return out


@pytest.fixture(scope="module")
def market(on):
    run_dir, _, study = on
    return Market(run_dir, study)


def window_steps(study, interval: int) -> slice:
    spi = study.market_interval_s // study.power_flow_step_s
    return slice(interval * spi, (interval + 1) * spi)


def test_market_removes_at_least_90_percent_of_range_a_violations(on, off):
    """Range A (ANSI C84.1, 0.95-1.05 pu) bus-steps from vm_pu, and kpis.json agreeing."""
    before, after = range_a_bus_steps(off[1]), range_a_bus_steps(on[1])
    assert before > 0, "the study should overvolt without the market"
    assert after <= 0.1 * before, (before, after)
    for (run_dir, _, _), count in ((off, before), (on, after)):
        kpis = json.loads((run_dir / "kpis.json").read_text())
        assert kpis["range_a_violation_bus_steps"] == count


def test_both_runs_converge_and_balance_energy_per_step(on, off):
    """Substation import = sum of net bus loads + losses, with and without curtailment."""
    for _, ds, study in (on, off):
        assert int(ds.converged.sum()) == study.n_steps
        np.testing.assert_allclose(ds.substation_p_mw, ds.p_mw.sum("bus") + ds.pl_mw, atol=1e-5)


def test_the_market_is_off_when_switched_off(off):
    run_dir, ds, _ = off
    assert chain_events(run_dir, FLEX, "RequestPosted") == []
    assert "flex_requested_wh" not in ds.data_vars
    assert float(np.nan_to_num(ds.pv_curtailed_p_mw.values).sum()) == 0.0


def test_operator_requests_only_where_its_forecast_exceeds_the_target(on, market):
    """A request for interval k exactly when the forecast of k is above vm_max_pu - margin_pu (midday PV
    is everywhere in the zone, so no interval above the target lacks capacity)."""
    _, ds, study = on
    target = study.grid.limits.vm_max_pu - study.market.flexibility.margin_pu
    requested = sorted(market.interval.values())
    assert len(requested) == len(set(requested)), "one request per interval"
    above = [k for k, vm in enumerate(ds.flex_vm_forecast_pu.values) if vm > target]
    assert requested and requested == above
    for rid, k in market.interval.items():
        assert market.requests[rid].p_w == int(ds.flex_requested_kw[k] * 1000)
        assert market.requests[rid].window_s == study.market_interval_s
        zone = ds.bus.values[ds.flex_zone[k].values == 1]
        assert sorted(market.requests[rid].sensitivities_upu_per_kw) == sorted(zone.tolist())


def test_awards_equal_the_reference_award_of_the_posted_offers(market):
    assert market.requests and sum(map(len, market.offered.values())) > 0
    for rid, request in market.requests.items():
        expected = award_offers(request, market.offers(rid))
        got = [(a["offer_index"], a["rank"], a["der"], a["price_wei_per_wh"], a["offered_p_w"], a["p_w"],
                a["energy_wh"]) for a in market.awarded[rid]]
        assert got == [(w.offer_index, w.rank, w.der, w.price_wei_per_wh, w.offered_p_w, w.p_w, w.energy_wh)
                       for w in expected], rid


def test_settlements_equal_the_reference_for_the_posted_deliveries(on, market):
    """Every flex Settled event's payment, penalty and bond refund, and every Closed event's totals."""
    _, _, study = on
    penalty_permille = round(study.market.flexibility.penalty_factor * 1000)
    assert market.settled and market.closed
    for rid, request in market.requests.items():
        awards = award_offers(request, market.offers(rid))
        deliveries = {s["der"]: s["delivered_wh"] for s in market.settled[rid]}
        reference = settle_awards(request, awards, deliveries, penalty_permille,
                                  market.reserve_before_wei.get(rid, 0))
        released_at_award = {a["der"]: a["bond_released_wei"] for a in market.awarded[rid]}
        for s in market.settled[rid]:
            # The reference's bond refund is the whole of it: what the award released plus the rest now.
            assert (s["payment_wei"], s["penalty_wei"], released_at_award[s["der"]] + s["bond_refund_wei"]) == (
                reference.payments_wei[s["der"]], reference.penalties_wei[s["der"]],
                reference.bond_refunds_wei[s["der"]]), (rid, s["der"])
        if rid in market.closed:
            closed = market.closed[rid]
            assert closed["paid_wei"] == sum(reference.payments_wei.values())
            assert closed["penalties_wei"] == sum(reference.penalties_wei.values())
            assert closed["operator_refund_wei"] == reference.operator_refund_wei
            assert market.shared[rid] == reference.penalty_shares_wei
            assert closed["reserve_wei"] == reference.reserve_wei


def test_every_awarded_der_delivery_is_posted_once(market):
    for rid, awards in market.awarded.items():
        posted = [s["der"] for s in market.settled[rid]]
        assert sorted(posted) == sorted(a["der"] for a in awards if a["p_w"]), rid


def test_posted_deliveries_are_the_measured_curtailment_capped_at_the_award(on, off, market):
    """delivered_wh = min(E(award), sum over the window's steps of max(0, available - injected PV) * step
    length), within 1 Wh. Available PV is the off run's PV output (same weather, nothing curtailed)."""
    _, ds, study = on
    column = {address: i for i, address in enumerate(ds.address.values)}
    step_wh_per_mw = study.power_flow_step_s / 3600 * 1e6
    shortfall_mw = np.maximum(0.0, off[1].pv_p_mw.values - ds.pv_p_mw.values)
    awarded_wh = {(rid, a["der"]): a["energy_wh"] for rid, awards in market.awarded.items() for a in awards}
    for rid, settled in market.settled.items():
        window = window_steps(study, market.interval[rid])
        for s in settled:
            measured_wh = shortfall_mw[window, column[s["der"]]].sum() * step_wh_per_mw
            assert abs(s["delivered_wh"] - min(awarded_wh[rid, s["der"]], measured_wh)) <= 1.0, (rid, s["der"])


def test_offers_come_from_registered_ders_at_their_bus_within_rating_and_minimum(on, market):
    """Every PV owner is registered once, before the start, at its feeder bus with its kWp; every offer
    carries its DER's registered bus and is between the minimum offer power and the rating."""
    run_dir, ds, study = on
    registered = {a["der"]: (a["bus"], a["rating_w"]) for a in chain_events(run_dir, FLEX, "DerRegistered")}
    assert registered
    for rid, offers in market.offered.items():
        for o in offers:
            bus, rating_w = registered[o["der"]]
            assert o["bus"] == bus
            assert study.market.flexibility.min_offer_kw * 1000 <= o["p_w"] <= rating_w, (rid, o["der"])


def test_awarded_agents_curtail_min_of_award_and_available_pv(on, off, market):
    """Per step in each window: curtailment = min(awarded power, available PV); nobody else curtails.
    Available PV is the off run's PV output: same seed, same weather and noise, nothing curtailed."""
    _, ds, study = on
    available_mw = off[1].pv_p_mw.values
    np.testing.assert_allclose(ds.pv_p_mw.values + ds.pv_curtailed_p_mw.values, available_mw, atol=1e-12)
    expected = np.zeros_like(available_mw)
    column = {address: i for i, address in enumerate(ds.address.values)}
    for (k, der), p_w in market.awarded_w().items():
        window, i = window_steps(study, k), column[der]
        expected[window, i] = np.minimum(p_w / 1e6, available_mw[window, i])
    assert expected.sum() > 0
    np.testing.assert_allclose(ds.pv_curtailed_p_mw.values, expected, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(ds.flex_awarded_w.values.sum(), sum(market.awarded_w().values()))


def token_balances(run_dir) -> dict[str, int]:
    balances: dict[str, int] = defaultdict(int)
    for t in chain_events(run_dir, "GridToken", "Transfer"):
        balances[t["sender"]] -= t["value"]
        balances[t["receiver"]] += t["value"]
    return balances


def test_token_supply_is_what_was_minted_with_budget_and_bonds(on):
    run_dir, ds, study = on
    transfers = chain_events(run_dir, "GridToken", "Transfer")
    zero = "0x" + "0" * 40
    mints = [t for t in transfers if int(t["sender"], 16) == 0]
    assert mints and not [t for t in transfers if int(t["receiver"], 16) == 0], "no burns"
    balances = token_balances(run_dir)
    assert -balances.pop(zero) == sum(t["value"] for t in mints)
    assert all(v >= 0 for v in balances.values())
    settings = study.market.flexibility
    minted_to = defaultdict(int)
    for t in mints:
        minted_to[t["receiver"]] += t["value"]
    assert minted_to[derive_account(TEST_SECRET, "dso").address] == round(settings.operator_budget * WEI_PER_TOKEN)
    for address in ds.address.values:
        assert minted_to[address] >= round(settings.bond_endowment * WEI_PER_TOKEN)
    assert ds.attrs["ledger_token_supply_conserved"] == 1


def test_contract_holds_exactly_what_its_open_requests_still_hold(on, market):
    """Per request: budget + offered bonds in; bonds released at award, payments, bond refunds and (at
    close) the operator's refund out; at close the penalties join the reserve, which pays the penalty
    shares. Closed requests hold nothing; the contract's balance from the Transfer events is what the
    open ones still hold (their budgets and bonds less what left) plus the last reserve."""
    run_dir, _, _ = on
    held = {}
    for rid in market.requests:
        held[rid] = (market.budget_wei[rid] + sum(o["bond_wei"] for o in market.offered[rid])
                     - sum(a["bond_released_wei"] for a in market.awarded[rid])
                     - sum(s["payment_wei"] + s["bond_refund_wei"] for s in market.settled[rid])
                     - market.closed.get(rid, {}).get("operator_refund_wei", 0))
        assert held[rid] >= 0
        if rid in market.closed:
            closed = market.closed[rid]
            assert held[rid] == closed["penalties_wei"], rid
            assert (market.reserve_before_wei[rid] + closed["penalties_wei"]
                    == sum(market.shared[rid].values()) + closed["reserve_wei"]), rid
    open_requests = set(market.requests) - set(market.closed)
    assert open_requests, "the last windows' requests are still open at the end"
    reserve_wei = list(market.closed.values())[-1]["reserve_wei"] if market.closed else 0
    assert token_balances(run_dir)[flex_address(run_dir)] == sum(held[rid] for rid in open_requests) + reserve_wei


def test_flex_results_are_the_event_sums_per_interval(on, market):
    run_dir, ds, _ = on
    n = ds.sizes["interval"]
    expected = {name: np.zeros(n, dtype=object) for name in
                ("flex_requested_wh", "flex_offers", "flex_awarded_wh", "flex_delivered_wh",
                 "flex_payment_token", "flex_penalty_token")}
    for rid, request in market.requests.items():
        k = market.interval[rid]
        expected["flex_requested_wh"][k] += energy_wh(request.p_w, request.window_s)
        expected["flex_offers"][k] += len(market.offered[rid])
        expected["flex_awarded_wh"][k] += sum(a["energy_wh"] for a in market.awarded[rid])
        expected["flex_delivered_wh"][k] += sum(s["delivered_wh"] for s in market.settled[rid])
        expected["flex_payment_token"][k] += sum(s["payment_wei"] for s in market.settled[rid])
        expected["flex_penalty_token"][k] += sum(s["penalty_wei"] for s in market.settled[rid])
    units = {"flex_requested_wh": "Wh", "flex_offers": "1", "flex_awarded_wh": "Wh", "flex_delivered_wh": "Wh",
             "flex_payment_token": "token", "flex_penalty_token": "token"}
    for name, values in expected.items():
        assert ds[name].attrs["units"] == units[name] and ds[name].attrs.get("long_name"), name
        if name.endswith("_token"):
            np.testing.assert_allclose(ds[name].values, values.astype(float) / WEI_PER_TOKEN, rtol=1e-12, atol=0)
        else:
            np.testing.assert_array_equal(ds[name].values, values.astype(np.int64), err_msg=name)
    assert expected["flex_delivered_wh"].sum() > 0 and expected["flex_penalty_token"].sum() > 0
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["flexibility_procured_kwh"] == pytest.approx(expected["flex_delivered_wh"].sum() / 1000, abs=1e-6)
    assert kpis["flexibility_cost_token"] == pytest.approx(
        int(expected["flex_payment_token"].sum()) / WEI_PER_TOKEN, abs=1e-6)
