"""End to end: one hour of the short study on case33bw split in three zones, one ledger (unsharded) and one per zone.

Real broker, a process per federate (six when sharded: three zone ledgers
and the coordinator), real py-evm and contracts. Both runs' books are
read back from their chain exports and cleared by the Python reference:
the unsharded ledger as one feeder-wide book, the zone ledgers together
as `clear_zoned` clears them (each zone's book, then the residuals across
zones at the coordinator).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import yaml

from gridledger.contracts.reference import Order, clear_uniform
from gridledger.contracts.zone_clearing import ZoneBook, clear_zoned
from gridledger.roster import load_roster
from gridledger.units import price_per_kwh
from tests.e2e_helpers import SHORT_STUDY, run_variants

pytestmark = pytest.mark.e2e

ZONES = {"buses": [list(range(0, 18)), list(range(18, 25)), list(range(25, 33))]}
PER_INTERVAL = ("clearing_price_per_kwh", "cleared_volume_wh", "gas_used", "transactions", "transactions_reverted")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoned")
    config = yaml.safe_load(SHORT_STUDY.read_text())
    study = root / "zoned.yaml"
    study.write_text(yaml.safe_dump({**config, "name": "zoned", "duration_s": 3600,
                                     "grid": {**config["grid"], "zones": ZONES}}))
    variants = {root / "one": {}, root / "sharded": {"sharding": "per-zone"}}
    for path in variants:
        path.mkdir()
    (one_dir, one), (sharded_dir, sharded) = run_variants(study, variants).values()
    return {"one": (one_dir, one), "sharded": (sharded_dir, sharded)}


def _events(chain: Path, name: str) -> list[dict]:
    rows = [json.loads(line) for line in (chain / "events.jsonl").read_text().splitlines()]
    return sorted((r for r in rows if r["event"] == name), key=lambda r: (r["block_number"], r["log_index"]))


def _book(chain: Path, interval: int) -> ZoneBook:
    """The orders the chain holds for `interval`, each side in submission order."""
    placed = [e["args"] for e in _events(chain, "OrderSubmitted") if e["args"]["interval"] == interval]
    side = {is_ask: tuple(Order(a["account"], a["energy_wh"], a["price_wei_per_wh"]) for a in placed
                          if a["is_ask"] == is_ask) for is_ask in (False, True)}
    return ZoneBook(bids=side[False], asks=side[True])


def test_a_sharded_run_has_a_chain_and_a_part_per_zone_and_every_prosumer_once(runs):
    run_dir, ds = runs["sharded"]
    roster = load_roster(run_dir)
    assert sorted(p.name for p in (run_dir / "chain").iterdir()) == ["z0", "z1", "z2"]
    assert sorted(p.stem for p in (run_dir / "parts").glob("*.nc")) == ["coordinator", "der", "grid", "ledger-z0",
                                                                        "ledger-z1", "ledger-z2"]
    assert list(ds.prosumer.values) == [p.name for p in roster.prosumers]
    assert list(ds.zone.values) == ["z0", "z1", "z2"]
    for name in PER_INTERVAL:
        assert ds[name].dims == ("zone", "interval"), name
    assert len(set(ds.address.values)) == len(roster.prosumers)
    assert ds.attrs["complete"] == 1
    # Every zone deployed the same contracts at the same addresses, so one deployment notice serves all.
    assert ds.attrs["ledger_z0_settlement"] == ds.attrs["ledger_z1_settlement"] == ds.attrs["ledger_z2_settlement"]


def test_each_chain_holds_only_its_zones_prosumers(runs):
    run_dir, ds = runs["sharded"]
    roster = load_roster(run_dir)
    address = dict(zip(ds.prosumer.values, ds.address.values))
    for zone in roster.zones:
        mine = {address[p] for p, z in roster.zone_of.items() if z == zone}
        registered = {e["args"]["prosumer"] for e in _events(run_dir / "chain" / zone, "ProsumerRegistered")}
        ordering = {e["args"]["account"] for e in _events(run_dir / "chain" / zone, "OrderSubmitted")}
        assert registered == mine
        assert ordering and ordering <= mine


def test_tokens_and_energy_are_conserved_in_every_zone(runs):
    run_dir, ds = runs["sharded"]
    roster = load_roster(run_dir)
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["token_supply_conserved"] is True
    assert kpis["gas_used"] == int(ds.gas_used.sum()) and kpis["transactions"] == int(ds.transactions.sum())
    assert int(ds.cleared_volume_wh.sum()) > 0
    assert int(ds.cross_zone_volume_wh.sum()) > 0
    np.testing.assert_array_equal(ds.net_export_wh.sum("zone"), 0)             # what one zone exports others import
    np.testing.assert_array_equal(ds.net_export_wh.clip(min=0).sum("zone"), ds.cross_zone_volume_wh)
    assert kpis["energy_traded_kwh"] == pytest.approx(
        (int(ds.cleared_volume_wh.sum()) + int(ds.cross_zone_volume_wh.sum())) / 1000)
    assert kpis["energy_traded_across_zones_kwh"] == pytest.approx(int(ds.cross_zone_volume_wh.sum()) / 1000)
    price = ds.coordinator_price_per_kwh.fillna(0.0)
    for zone in roster.zones:
        members = [p for p, z in roster.zone_of.items() if z == zone]
        position = ds.position_wh.sel(prosumer=members)
        sold = position.where(position > 0, 0).sum("prosumer")
        bought = -position.where(position < 0, 0).sum("prosumer")
        net = ds.net_export_wh.sel(zone=zone)
        np.testing.assert_array_equal(sold - bought, net)
        assert bool((sold >= ds.cleared_volume_wh.sel(zone=zone)).all())
        assert bool((bought >= ds.cleared_volume_wh.sel(zone=zone)).all())
        # Within the zone what buyers pay sellers receive; across zones the zone is paid its net export.
        np.testing.assert_allclose(ds.p2p_token.sel(prosumer=members).sum("prosumer"), price * net / 1000, atol=1e-9)


def test_each_zones_operator_takes_the_other_side_of_its_net_flow_and_they_balance(runs):
    """The zones' operators settle minus each zone's net export at the coordinator's price; over zones, zero."""
    run_dir, ds = runs["sharded"]
    settled: dict[int, dict[str, dict]] = {}
    for zone in ds.zone.values:
        for event in _events(run_dir / "chain" / zone, "OperatorSettled"):
            settled.setdefault(event["args"]["interval"], {})[zone] = event["args"]
    traded = [k for k in range(ds.sizes["interval"]) if int(ds.cross_zone_volume_wh[k]) > 0]
    assert traded and sorted(settled) == traded
    for k in traded:
        net = ds.net_export_wh.isel(interval=k)
        for zone in ds.zone.values:
            position = settled[k].get(zone, {"position_wh": 0})["position_wh"]
            assert position == -int(net.sel(zone=zone))
        assert sum(args["value_wei"] for args in settled[k].values()) == 0


def test_zones_and_coordinator_clear_as_the_reference_does(runs):
    """Every zone's price, the coordinator's price, each order's fill and each zone's flow: as `clear_zoned`."""
    run_dir, ds = runs["sharded"]
    address = dict(zip(ds.address.values, ds.prosumer.values))
    crossed = 0
    for k in range(1, ds.sizes["interval"]):
        books = {zone: _book(run_dir / "chain" / zone, k) for zone in ds.zone.values}
        reference = clear_zoned(books)
        for zone in books:
            cleared = [e["args"] for e in _events(run_dir / "chain" / zone, "Cleared") if e["args"]["interval"] == k]
            assert [c["price_wei_per_wh"] for c in cleared] == [reference.zone_prices_wei_per_wh[zone]]
            assert int(ds.net_export_wh.isel(interval=k).sel(zone=zone)) == reference.net_export_wh[zone]
        for account, fill in reference.fills.items():
            position = int(ds.position_wh.sel(interval=ds.interval[k], prosumer=address[account]))
            assert position == (fill.total_wh if fill.is_ask else -fill.total_wh)
            crossed += fill.coordinator_wh
        if any(fill.coordinator_wh for fill in reference.fills.values()):
            assert float(ds.coordinator_price_per_kwh[k]) == pytest.approx(
                price_per_kwh(reference.coordinator_price_wei_per_wh), rel=1e-12)
        else:
            assert np.isnan(float(ds.coordinator_price_per_kwh[k]))
    assert crossed > 0


def test_the_same_orders_clear_as_one_book_unsharded(runs):
    """Sharding changes where orders clear, not what the agents order."""
    one_dir, one = runs["one"]
    sharded_dir, sharded = runs["sharded"]
    np.testing.assert_array_equal(one.order_energy_wh.isel(interval=1), sharded.order_energy_wh.isel(interval=1))
    book = _book(one_dir / "chain", 1)
    zone_books = {zone: _book(sharded_dir / "chain" / zone, 1) for zone in sharded.zone.values}
    zoned_orders = [o for b in zone_books.values() for o in b.bids + b.asks]
    assert len(zoned_orders) == len(book.bids + book.asks) and set(zoned_orders) == set(book.bids + book.asks)
    reference = clear_uniform(book.bids, book.asks)
    cleared = [e["args"] for e in _events(one_dir / "chain", "Cleared") if e["args"]["interval"] == 1]
    assert [c["price_wei_per_wh"] for c in cleared] == [reference.price_wei_per_wh]
    assert "zone" not in one.cleared_volume_wh.dims
    assert json.loads((one_dir / "kpis.json").read_text())["token_supply_conserved"] is True


@pytest.mark.slow
def test_a_sharded_run_repeats_exactly(runs, tmp_path):
    """Same study, seed and run secret: the same results and the same chain in every zone."""
    run_dir, ds = runs["sharded"]
    study = run_dir / "study.yaml"
    (again_dir, again), = run_variants(study, {tmp_path: {}}).values()
    assert again.equals(ds) and again.attrs == ds.attrs
    assert (again_dir / "kpis.json").read_text() == (run_dir / "kpis.json").read_text()
    for zone in ds.zone.values:
        for name in ("blocks.jsonl", "receipts.jsonl", "events.jsonl"):
            assert (again_dir / "chain" / zone / name).read_bytes() == (run_dir / "chain" / zone / name).read_bytes()


BATCH_SAME = ("position_wh", "clearing_price_per_kwh", "cleared_volume_wh", "p2p_token", "fee_token",
              "imbalance_token", "settled", "meter_import_wh", "meter_export_wh", "order_energy_wh", "vm_pu")


@pytest.mark.slow
def test_batches_split_by_zone_settle_like_one_transaction_each(runs, tmp_path):
    """``market.submission: batched``: each zone's operator relays its zone's share of the orders and readings."""
    run_dir, ds = runs["sharded"]
    (batched_dir, batched), = run_variants(run_dir / "study.yaml", {tmp_path: {"submission": "batched"}}).values()
    assert int(batched.cleared_volume_wh.sum()) > 0
    for name in BATCH_SAME:
        np.testing.assert_array_equal(batched[name].values, ds[name].values, err_msg=name)
    assert int(batched.transactions.sum()) < int(ds.transactions.sum())
    for zone in ds.zone.values:
        relayed = [e["args"]["account"] for e in _events(batched_dir / "chain" / zone, "OrderSubmitted")]
        direct = [e["args"]["account"] for e in _events(run_dir / "chain" / zone, "OrderSubmitted")]
        assert relayed == direct
        assert _events(batched_dir / "chain" / zone, "ReadingRejected") == []
