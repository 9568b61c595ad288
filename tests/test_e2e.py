"""End to end: the short study with a real helics_broker, one process per federate, a real chain.

Every check here recomputes from the run's outputs (results.nc and the chain
export) with independent arithmetic or an independent pandapower run.
"""

from __future__ import annotations

import json

import numpy as np
import pandapower as pp
import pandapower.networks as pn
import pytest
import xarray as xr
import yaml

from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.contracts.reference import SourceMix, consumed_mix, sold_sources
from gridledger.study import load_study
from gridledger.units import WEI_PER_TOKEN
from tests.e2e_helpers import SHORT_STUDY, events, gridledger, only_run_dir

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module", params=tuple(MECHANISMS))
def run(request, tmp_path_factory):
    """The short study run once per market mechanism."""
    runs = tmp_path_factory.mktemp("runs")
    study = runs / "study.yaml"
    config = yaml.safe_load(SHORT_STUDY.read_text())
    config["market"]["mechanism"] = request.param
    study.write_text(yaml.safe_dump(config))
    proc = gridledger("run", str(study), "--runs", str(runs))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    run_dir = only_run_dir(runs, "baran-wu-short")
    with xr.open_dataset(run_dir / "results.nc") as ds:
        yield run_dir, ds.load(), proc.stdout


def test_run_prints_where_results_are(run):
    run_dir, _, stdout = run
    assert f"results: {run_dir / 'results.nc'}" in stdout.replace("\n", "")


def test_results_have_named_dims_units_and_real_times(run):
    _, ds, _ = run
    assert dict(ds.sizes) == {"time": 24, "bus": 33, "line": 37, "prosumer": 32, "interval": 8, "nv": 2}
    bounds = {var.attrs["bounds"] for var in ds.variables.values() if "bounds" in var.attrs}
    assert bounds == {"interval_bounds"}
    for name, var in ds.data_vars.items():
        if name in bounds:
            continue                                   # CF 7.1: a boundary variable has its coordinate's units
        assert var.attrs.get("units"), f"{name} has no units"
        assert var.attrs.get("long_name"), f"{name} has no long_name"
    assert str(ds.time.values[0])[:19] == "2024-06-21T10:00:00"
    assert ds.attrs["seed"] == 42 and ds.attrs["complete"] == 1


def test_every_step_converged_and_every_meter_read(run):
    _, ds, _ = run
    assert int(ds.converged.sum()) == 24
    assert (ds.meter_import_wh >= 0).all() and (ds.meter_export_wh >= 0).all()
    assert int(ds.settled.sum()) == 8 * 32


def test_token_supply_is_conserved(run):
    run_dir, ds, _ = run
    transfers = events(run_dir, "Transfer")
    minted = sum(t["args"]["value"] for t in transfers if int(t["args"]["sender"], 16) == 0)
    burned = sum(t["args"]["value"] for t in transfers if int(t["args"]["receiver"], 16) == 0)
    assert minted > 0 and burned == 0
    assert [t["block_number"] for t in transfers if int(t["args"]["sender"], 16) == 0] == [1]
    assert ds.attrs["ledger_token_supply_conserved"] == 1


def test_settlement_is_budget_balanced_per_interval(run):
    """Peer-to-peer payments, the operator's included where it buys (merit order), sum to zero."""
    run_dir, _, _ = run
    by_interval: dict[int, int] = {}
    for e in events(run_dir, "Settled") + events(run_dir, "OperatorSettled"):
        value = e["args"]["p2p_wei"] if e["event"] == "Settled" else e["args"]["value_wei"]
        by_interval[e["args"]["interval"]] = by_interval.get(e["args"]["interval"], 0) + value
    assert by_interval and all(total == 0 for total in by_interval.values())


def lot_auction_values(run_dir, mechanism: str) -> dict[tuple[int, str], int]:
    """Money value per (interval, account) recomputed from the auction's own events. [wei]

    Vickrey (Vickrey 1961): per lot, the highest revealed price wins (the
    earliest revealed of equal prices) and pays the second-highest revealed
    price, or the reserve. English: the last accepted bid leads and pays
    its own price.
    """
    lots = {e["args"]["lot_id"]: e["args"] for e in events(run_dir, "LotPosted")}
    bids: dict[int, list[tuple[str, int]]] = {}
    name = "BidRevealed" if mechanism == "vickrey" else "BidPlaced"
    for e in events(run_dir, name):
        bids.setdefault(e["args"]["lot_id"], []).append((e["args"]["bidder"], e["args"]["price_wei_per_wh"]))
    values: dict[tuple[int, str], int] = {}
    for lot_id, lot_bids in bids.items():
        lot = lots[lot_id]
        if mechanism == "vickrey":
            ranked = sorted(range(len(lot_bids)), key=lambda j: (-lot_bids[j][1], j))
            winner = lot_bids[ranked[0]][0]
            price = lot_bids[ranked[1]][1] if len(ranked) > 1 else lot["reserve_price_wei_per_wh"]
        else:
            winner, price = lot_bids[-1]
        value = price * lot["energy_wh"]
        for account, signed in ((lot["seller"], value), (winner, -value)):
            key = (lot["interval"], account)
            values[key] = values.get(key, 0) + signed
    return values


def test_every_settlement_is_metered_energy_at_cleared_price_plus_imbalance_and_fee(run):
    """Recompute each Settled event from results.nc (meters, positions, prices) and the tariffs."""
    run_dir, ds, _ = run
    market = load_study(run_dir / "study.yaml").market
    buy, sell, fee, penalty = (round(x * WEI_PER_TOKEN / 1000) for x in
                               (market.grid_buy_price_per_kwh, market.grid_sell_price_per_kwh,
                                market.grid_fee_per_kwh, market.non_delivery_penalty_per_kwh))
    price = {e["args"]["interval"]: e["args"]["price_wei_per_wh"] for e in events(run_dir, "Cleared")}
    discriminatory = {(e["args"]["interval"], e["args"]["account"]): e["args"]["value_wei"]
                      for e in events(run_dir, "Trade") if "value_wei" in e["args"]}
    if market.mechanism in ("vickrey", "english"):
        discriminatory = lot_auction_values(run_dir, market.mechanism)
    column = {address: i for i, address in enumerate(ds.address.values)}
    settled = events(run_dir, "Settled")
    assert len(settled) == 8 * 32
    traded = 0
    for e in settled:
        a = e["args"]
        k, i = a["interval"], column[a["prosumer"]]
        imp, exp = int(ds.meter_import_wh[k, i]), int(ds.meter_export_wh[k, i])
        q = int(ds.position_wh[k, i])
        assert (a["import_wh"], a["export_wh"], a["position_wh"]) == (imp, exp, q)
        value = discriminatory.get((k, a["prosumer"]), price.get(k, 0) * q)
        # A seller's undelivered energy hands back its share of the value (at least the grid's
        # replacement cost) plus the penalty; the rest of the deviation is settled at the grid prices.
        undelivered = max(0, q - exp) if q > 0 else 0
        charge = max(-(-value * undelivered // q), buy * undelivered) + penalty * undelivered if undelivered else 0
        rest = (exp - imp) - q + undelivered
        expected_imbalance = (sell * rest if rest > 0 else buy * rest) - charge
        assert a["p2p_wei"] == value
        assert a["fee_wei"] == (fee * -q if q < 0 else 0)
        assert a["imbalance_wei"] == expected_imbalance
        assert np.isclose(ds.p2p_token[k, i], a["p2p_wei"] / WEI_PER_TOKEN, rtol=0, atol=1e-9)
        traded += abs(q)
    assert traded > 0, "the short study should trade peer to peer"


def test_trades_are_individually_rational_and_balanced(run):
    """Each filled seller gets at least its ask, each filled buyer pays at most its bid (per Wh);
    in the uniform auction everyone trades at the one clearing price."""
    _, ds, _ = run
    traded = ds.position_wh != 0
    assert bool(traded.any())
    unit_price = (ds.p2p_token / (ds.position_wh / 1000)).where(traded)
    limit = ds.order_price_per_kwh.where(traded)
    sellers, buyers = ds.position_wh > 0, ds.position_wh < 0
    assert bool((unit_price.where(sellers) >= limit.where(sellers) - 1e-9).where(sellers, True).all())
    assert bool((unit_price.where(buyers) <= limit.where(buyers) + 1e-9).where(buyers, True).all())
    sold = ds.position_wh.where(sellers, 0).sum("prosumer")
    assert (sold == ds.cleared_volume_wh).all()
    if ds.attrs["ledger_mechanism"] == "uniform-double-auction":
        assert (ds.position_wh.sum("prosumer") == 0).all()
        np.testing.assert_allclose(unit_price.where(traded).max("prosumer").dropna("interval"),
                                   ds.clearing_price_per_kwh.where(sold > 0).dropna("interval"), rtol=1e-9)


def test_grid_voltages_equal_a_direct_pandapower_run(run):
    """Rebuild case33bw, put each step's recorded net bus loads on it, solve, compare vm_pu."""
    _, ds, _ = run
    net = pn.case33bw()
    net.load.drop(net.load.index, inplace=True)
    for bus in net.bus.index:
        pp.create_load(net, bus, p_mw=0.0, q_mvar=0.0)
    for step in (0, 7, 15, 23):
        net.load["p_mw"] = ds.p_mw.isel(time=step).values
        net.load["q_mvar"] = ds.q_mvar.isel(time=step).values
        pp.runpp(net, numba=False)
        np.testing.assert_allclose(ds.vm_pu.isel(time=step).values, net.res_bus.vm_pu.values, atol=1e-7)
        np.testing.assert_allclose(float(ds.substation_p_mw[step]), net.res_ext_grid.p_mw.sum(), atol=1e-5)


def test_energy_balance_per_step(run):
    """Substation import = sum of net bus loads + losses."""
    _, ds, _ = run
    np.testing.assert_allclose(ds.substation_p_mw, ds.p_mw.sum("bus") + ds.pl_mw, atol=1e-5)


def test_meter_readings_integrate_prosumer_power(run):
    """Each interval's export - import equals the integral of the DER setpoints (within 1 Wh rounding)."""
    _, ds, _ = run
    export_mw = ds.pv_p_mw - ds.load_p_mw - ds.battery_p_mw
    np.testing.assert_allclose(ds.export_mw, export_mw, atol=1e-12)
    step_wh = 300 / 3600 * 1e6
    per_interval = (export_mw * step_wh).coarsen(time=3).sum().values
    metered = (ds.meter_export_wh - ds.meter_import_wh).values
    assert np.all(np.abs(per_interval - metered) <= 1.0)


def test_kpis_match_results(run):
    run_dir, ds, _ = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["energy_traded_kwh"] == pytest.approx(int(ds.cleared_volume_wh.sum()) / 1000)
    assert kpis["gas_used"] == sum(r["gas_used"] for r in map(json.loads, (run_dir / "chain" / "receipts.jsonl")
                                                           .read_text().splitlines()) if r["block_number"] and r["block_number"] > 2)
    assert kpis["peak_import_mw"] == pytest.approx(float(ds.substation_p_mw.max()), abs=1e-6)
    assert kpis["token_supply_conserved"] is True


def test_source_registers_integrate_pv_and_battery_discharge(run):
    """meter_pv_wh and meter_battery_wh are the interval integrals of PV power and battery discharge (1 Wh)."""
    _, ds, _ = run
    step_wh = 300 / 3600 * 1e6
    pv_wh = (ds.pv_p_mw.clip(min=0) * step_wh).coarsen(time=3).sum().values
    discharge_wh = (-ds.battery_p_mw).clip(min=0).pipe(lambda p: p * step_wh).coarsen(time=3).sum().values
    assert np.all(np.abs(pv_wh - ds.meter_pv_wh.values) <= 0.5 + 1e-6)
    assert np.all(np.abs(discharge_wh - ds.meter_battery_wh.values) <= 0.5 + 1e-6)
    assert int(ds.meter_pv_wh.sum()) > 0


def test_sold_and_consumed_energy_split_by_source_as_the_reference(run):
    """Every seller's Sourced event is the reference split of its reading; the results' mixes sum to
    each seller's position and each prosumer's import."""
    run_dir, ds, _ = run
    column = {address: i for i, address in enumerate(ds.address.values)}
    settled = {(e["args"]["interval"], e["args"]["prosumer"]): e["args"] for e in events(run_dir, "Settled")}
    sourced = {(e["args"]["interval"], e["args"]["seller"]): e["args"] for e in events(run_dir, "Sourced")}
    assert set(sourced) == {key for key, a in settled.items() if a["position_wh"] > 0}
    for (k, seller), a in sourced.items():
        reading = settled[k, seller]
        i = column[seller]
        assert (reading["pv_wh"], reading["battery_wh"]) == (int(ds.meter_pv_wh[k, i]), int(ds.meter_battery_wh[k, i]))
        expected = sold_sources(reading["position_wh"], reading["export_wh"], reading["pv_wh"], reading["battery_wh"])
        assert (a["pv_wh"], a["battery_wh"], a["grid_wh"]) == (expected.pv_wh, expected.battery_wh, expected.grid_wh)
    sold = ds.sold_pv_wh + ds.sold_battery_wh + ds.sold_grid_wh
    np.testing.assert_array_equal(sold.values, ds.position_wh.clip(min=0).values)
    consumed = ds.consumed_pv_wh + ds.consumed_battery_wh + ds.consumed_grid_wh
    np.testing.assert_array_equal(consumed.values, ds.meter_import_wh.values)
    for k in range(ds.sizes["interval"]):
        mix = SourceMix(*(int(ds[f"sold_{s}_wh"][k].sum()) for s in ("pv", "battery", "grid")))
        for i in range(ds.sizes["prosumer"]):
            expected = consumed_mix(int(ds.position_wh[k, i]), int(ds.meter_import_wh[k, i]), mix)
            assert (int(ds.consumed_pv_wh[k, i]), int(ds.consumed_battery_wh[k, i]),
                    int(ds.consumed_grid_wh[k, i])) == (expected.pv_wh, expected.battery_wh, expected.grid_wh)


def test_every_prosumer_escrow_is_released_by_its_reading(run):
    """Per interval and prosumer, what bids locked is released in full once its reading settles."""
    run_dir, ds, _ = run
    prosumers = set(ds.address.values)
    net: dict[tuple[int, str], int] = {}
    for name, sign in (("Locked", 1), ("Released", -1)):
        for e in events(run_dir, name):
            key = (e["args"]["interval"], e["args"]["account"])
            net[key] = net.get(key, 0) + sign * e["args"]["amount_wei"]
    assert all(amount == 0 for (_, account), amount in net.items() if account in prosumers)
    if ds.attrs["ledger_mechanism"] != "merit-order":
        assert any(account in prosumers for _, account in net), "prosumers' bids should lock credit"
