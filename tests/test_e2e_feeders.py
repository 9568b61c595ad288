"""The reference study on four catalog feeders: balanced CIGRE LV and MV, the unbalanced
IEEE European LV feeder and a SimBench grid with its own profiles, one midday hour each.

The IEEE and SimBench runs spend most of their ~45 s loading the feeder and its
yearly profiles in four processes, so they run in `make test-all` (marked slow);
their power flow and profile code is unit-tested in `make test`."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
import yaml

from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from tests.e2e_helpers import ROOT, gridledger, only_run_dir

pytestmark = pytest.mark.e2e

FEEDER_STUDIES = ("cigre-lv-p2p", "cigre-mv-p2p",
                  pytest.param("ieee-eu-lv-p2p", marks=pytest.mark.slow),
                  pytest.param("simbench-lv-rural1-p2p", marks=pytest.mark.slow))


def _run(tmp_path, name: str, hours: float) -> tuple[xr.Dataset, dict]:
    config = yaml.safe_load((ROOT / "studies" / f"{name}.yaml").read_text())
    config.update(start="2024-06-21T11:00:00", duration_s=int(hours * 3600))
    study = tmp_path / f"{name}.yaml"
    study.write_text(yaml.safe_dump(config))
    proc = gridledger("run", str(study), "--runs", str(tmp_path / "runs"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    with xr.open_dataset(only_run_dir(tmp_path / "runs", name) / "results.nc") as ds:
        return ds.load(), config


@pytest.mark.parametrize("name", FEEDER_STUDIES)
def test_reference_study_runs_on_catalog_feeder(tmp_path, name):
    ds, config = _run(tmp_path, name, hours=1)
    sc = build_scenario(parse_study(config), with_devices=True)
    assert ds.sizes["bus"] == len(sc.net.bus) and ds.sizes["prosumer"] == config["prosumers"]["count"]
    assert int(ds.converged.sum()) == ds.sizes["time"]
    assert int(ds.settled.sum()) == ds.sizes["interval"] * ds.sizes["prosumer"]
    assert ds.attrs["ledger_token_supply_conserved"] == 1
    np.testing.assert_allclose(ds.substation_p_mw, ds.p_mw.sum("bus") + ds.pl_mw, atol=1e-4)
    if name == "ieee-eu-lv-p2p":
        assert ds.vm_phase_pu.sizes["phase"] == 3
        spread = ds.vm_phase_pu.max("phase") - ds.vm_phase_pu.min("phase")
        assert float(spread.max()) > 1e-3, "an unbalanced feeder shows different phase voltages"
        assert float(ds.vuf_percent.max()) > 0
        np.testing.assert_allclose(ds.vm_pu, ds.vm_phase_pu.mean("phase"), atol=1e-9)
    else:
        assert "vm_phase_pu" not in ds and float(ds.si_pu.min()) > 0


@pytest.mark.slow
def test_simbench_feeder_follows_its_own_profiles(tmp_path):
    """Loads without a prosumer draw exactly the SimBench profile; prosumer loads are theirs too."""
    ds, config = _run(tmp_path, "simbench-lv-rural1-p2p", hours=1)
    sc = build_scenario(parse_study(config))
    load_p, _ = sc.prosumer_load_mw()
    np.testing.assert_allclose(ds.load_p_mw.values, load_p, atol=1e-12)
    assert np.ptp(load_p, axis=0).max() > 0, "profiles vary over the hour"
