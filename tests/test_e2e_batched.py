"""End to end: the short study with signed orders and readings relayed in batches settles like one transaction each."""

from __future__ import annotations

import pytest
import xarray as xr

from tests.e2e_helpers import SHORT_STUDY, events, run_with

pytestmark = pytest.mark.e2e

SAME = ("position_wh", "clearing_price_per_kwh", "cleared_volume_wh", "p2p_token", "fee_token", "imbalance_token",
        "unpaid_token", "settled", "meter_import_wh", "meter_export_wh", "order_energy_wh", "orders_rejected", "vm_pu")


@pytest.fixture(scope="module")
def batched(tmp_path_factory):
    return run_with(SHORT_STUDY, tmp_path_factory.mktemp("batched"), submission="batched")


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
