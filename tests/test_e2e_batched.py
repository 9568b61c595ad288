"""End to end: the short study with signed orders and readings relayed in batches, and with verified batches
(orders sent with their clearing), settles like one transaction each."""

from __future__ import annotations

import pytest
import xarray as xr
import yaml

from tests.e2e_helpers import SHORT_STUDY, events, run_variants

pytestmark = pytest.mark.e2e

SAME = ("position_wh", "clearing_price_per_kwh", "cleared_volume_wh", "p2p_token", "fee_token", "imbalance_token",
        "unpaid_token", "settled", "meter_import_wh", "meter_export_wh", "order_energy_wh", "orders_rejected", "vm_pu")


@pytest.fixture(scope="module")
def both(tmp_path_factory):
    """The short study batched, and batched with verified batches (``clearing: verified-batch``), run at once."""
    runs = {tmp_path_factory.mktemp("batched"): {"submission": "batched"},
            tmp_path_factory.mktemp("verified"): {"submission": "batched", "clearing": "verified-batch"}}
    return list(run_variants(SHORT_STUDY, runs).values())


@pytest.fixture(scope="module")
def batched(both):
    return both[0]


@pytest.fixture(scope="module")
def verified(both):
    return both[1]


def test_batched_submission_gives_the_same_book_prices_payments_and_physics(short_run, batched):
    _, ds = batched
    assert int(ds.cleared_volume_wh.sum()) > 0
    for name in SAME:
        xr.testing.assert_identical(short_run.ds[name], ds[name])


def test_every_order_and_reading_was_relayed_and_skipped_where_a_transaction_reverted(short_run, batched):
    run_dir, ds = batched
    direct = events(short_run.run_dir, "OrderSubmitted")
    relayed = events(run_dir, "OrderSubmitted")
    assert [(e["args"]["account"], e["args"]["energy_wh"]) for e in relayed] == \
        [(e["args"]["account"], e["args"]["energy_wh"]) for e in direct]
    assert len(events(run_dir, "Settled")) == len(events(short_run.run_dir, "Settled")) > 0
    assert len(events(run_dir, "OrderRejected")) == int(short_run.ds.orders_rejected.sum())
    assert events(run_dir, "ReadingRejected") == []


def test_relaying_needs_fewer_transactions(short_run, batched):
    """Per interval at most one relayed order batch and one reading batch replace a transaction per order and reading."""
    _, ds = batched
    assert int(ds.transactions.sum()) < int(short_run.ds.transactions.sum())
    assert int(ds.transactions_reverted.sum()) <= int(short_run.ds.transactions_reverted.sum())


def test_verified_batches_give_the_same_book_prices_payments_and_physics(short_run, verified):
    run_dir, ds = verified
    assert int(ds.cleared_volume_wh.sum()) > 0
    for name in SAME:
        xr.testing.assert_identical(short_run.ds[name], ds[name])
    direct = events(short_run.run_dir, "OrderSubmitted")
    relayed = events(run_dir, "OrderSubmitted")
    assert [(e["args"]["account"], e["args"]["energy_wh"]) for e in relayed] == \
        [(e["args"]["account"], e["args"]["energy_wh"]) for e in direct]
    assert len(events(run_dir, "OrderRejected")) == int(short_run.ds.orders_rejected.sum())
    assert len(events(run_dir, "Settled")) == len(events(short_run.run_dir, "Settled")) > 0


def test_verified_batches_need_no_order_transaction_and_lock_only_what_is_filled(short_run, batched, verified):
    """The orders ride in the clearing: fewer transactions than relayed batches, one escrow lock per filled bid."""
    (run_dir, ds), (batched_dir, batched_ds) = verified, batched
    assert int(ds.transactions.sum()) < int(batched_ds.transactions.sum())
    filled_bids = sum(1 for e in events(run_dir, "Trade") if e["args"]["position_wh"] < 0)
    assert len(events(run_dir, "Locked")) == filled_bids < len(events(batched_dir, "Locked"))


def test_merit_order_offers_relayed_in_batches_dispatch_as_one_transaction_each(tmp_path):
    """The first hour of the short study under the merit order, both ways at once."""
    study = tmp_path / "merit.yaml"
    config = yaml.safe_load(SHORT_STUDY.read_text())
    study.write_text(yaml.safe_dump({**config, "duration_s": 3600, "market": {**config["market"],
                                                                            "mechanism": "merit-order"}}))
    variants = {tmp_path / "direct": {}, tmp_path / "batched": {"submission": "batched"}}
    for runs in variants:
        runs.mkdir()
    (direct_dir, direct), (batched_dir, batched) = run_variants(study, variants).values()
    assert int(direct.cleared_volume_wh.sum()) > 0
    for name in SAME:
        xr.testing.assert_identical(direct[name], batched[name])
    assert events(batched_dir, "OrderRejected") == []
    assert len(events(batched_dir, "OrderSubmitted")) == len(events(direct_dir, "OrderSubmitted")) > 0
    assert int(batched.transactions.sum()) < int(direct.transactions.sum())
