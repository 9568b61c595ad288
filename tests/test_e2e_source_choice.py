"""Source choice in a real federation: buyers that chose PV get the PV sold first, nobody gets more PV than sold.

One hour of the short study (10:00-11:00, PV sellers) with a quarter of
the prosumers choosing PV-sourced energy through ``SourceChoice``.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from gridledger.agents.source_choosers import pv_choosers
from gridledger.study import load_study
from tests.e2e_helpers import SHORT_STUDY, run_variants

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("source")
    study = root / "choice.yaml"
    config = yaml.safe_load(SHORT_STUDY.read_text())
    study.write_text(yaml.safe_dump({**config, "name": "choice", "duration_s": 3600}))
    (root / "runs").mkdir()
    return run_variants(study, {root / "runs": {"source_choice": {"share": 0.25}}})[root / "runs"]


def test_the_chosen_buyers_state_their_choice_on_chain_before_the_first_gate(run):
    run_dir, ds = run
    study = load_study(run_dir / "study.yaml")
    chosen = pv_choosers(study.market.source_choice, [str(p) for p in ds.prosumer.values], study.seed)
    assert len(chosen) == 8
    chose = ds.chose_pv.values.astype(bool)
    assert not chose[0].any()                                   # interval 0 was cleared before anyone could choose
    assert (np.flatnonzero(chose[1:].all(axis=0)) == chosen).all() and chose[1:].sum() == 8 * (ds.sizes["interval"] - 1)


def test_choosers_get_the_pv_first_and_no_more_pv_is_written_than_sold(run):
    run_dir, ds = run
    chose = ds.chose_pv.values.astype(bool)
    bought, pv = ds.p2p_bought_wh.values, ds.consumed_pv_wh.values
    sold_pv = ds.sold_pv_wh.values.sum(axis=1)
    assert (pv.sum(axis=1) <= sold_pv).all() and sold_pv.sum() > 0
    for k in range(1, ds.sizes["interval"]):
        share = np.divide(pv[k], bought[k], out=np.zeros(bought.shape[1]), where=bought[k] > 0)
        buying = bought[k] > 100
        if (chose[k] & buying).any() and (~chose[k] & buying).any():
            assert share[chose[k] & buying].min() >= share[~chose[k] & buying].max() - 0.01
    kpis = json.loads((run_dir / "kpis.json").read_text())["source_choice"]
    assert kpis["choosers"]["pv_share"] >= kpis["others"]["pv_share"]
    assert kpis["choosers"]["pv_kwh"] + kpis["others"]["pv_kwh"] <= kpis["pv_sold_kwh"] + 1e-6
    assert len(kpis["by_buyer"]) == 8 and all(b["asked"] == "pv" for b in kpis["by_buyer"].values())
