"""End to end: the short study cleared on-chain gives the same market and settlement as verified off-chain clearing."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr

from tests.e2e_helpers import SHORT_STUDY, events, run_with

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

SAME = ("position_wh", "clearing_price_per_kwh", "cleared_volume_wh", "p2p_token", "fee_token", "imbalance_token",
        "meter_import_wh", "meter_export_wh", "vm_pu")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    return {mode: run_with(SHORT_STUDY, tmp_path_factory.mktemp(mode), clearing=mode)
            for mode in ("verified-offchain", "on-chain")}


def test_both_modes_clear_and_settle_identically(runs):
    (_, verified), (_, onchain) = runs["verified-offchain"], runs["on-chain"]
    assert int(verified.cleared_volume_wh.sum()) > 0
    for name in SAME:
        xr.testing.assert_identical(verified[name], onchain[name])


def test_on_chain_sorting_costs_different_gas_for_the_same_outcome(runs):
    """Only the clearing transactions differ, so every interval's gas differs by what its clearing cost."""
    (vdir, verified), (odir, onchain) = runs["verified-offchain"], runs["on-chain"]
    assert len(events(vdir, "Cleared")) == len(events(odir, "Cleared")) == 8
    assert not np.array_equal(verified.gas_used.values, onchain.gas_used.values)
    assert (verified.transactions == onchain.transactions).all()
