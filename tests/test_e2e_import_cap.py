"""An upstream import cap in a real federation: the grid federate holds the substation import within the cap in every
capped power-flow step by cutting whole load buses in rotation, records what it cut, and the meters of the cut
prosumers read nothing for those steps.

``studies/baran-wu-short.yaml`` (32 prosumers), shortened to its first midday hour, runs with a cap of 0.1 MW over its
first half hour, below what the feeder draws (0.12-0.33 MW), through the CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import yaml

from gridledger.agents.load_shedding import TOLERANCE_MW
from gridledger.roster import load_roster
from tests.e2e_helpers import ROOT, run_variants

# `make test-all`: make test's budget is tight; tests/test_agents_load_shedding.py runs the same Feeder on case33bw.
pytestmark = [pytest.mark.e2e, pytest.mark.slow]

STUDY = ROOT / "studies" / "baran-wu-short.yaml"
CAP_MW, CAP_END_S, DURATION_S = 0.1, 1800, 3600


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("import-cap")
    config = yaml.safe_load(STUDY.read_text())
    capped = root / "capped.yaml"
    capped.write_text(yaml.safe_dump({**config, "duration_s": DURATION_S, "events": {"import_caps": [
        {"start_s": 0, "end_s": CAP_END_S, "cap_mw": CAP_MW}]}}))
    return run_variants(capped, {root: {}})[root]


def test_the_import_never_exceeds_the_cap_and_the_rotation_cut_what_it_had_to(run):
    run_dir, ds = run
    capped = ds.import_cap_mw.notnull().values
    steps_capped = int(CAP_END_S / float((ds.time[1] - ds.time[0]) / np.timedelta64(1, "s")))
    assert capped.sum() == steps_capped and capped[:steps_capped].all()
    assert (ds.substation_p_mw.values[capped] <= CAP_MW + TOLERANCE_MW).all()
    assert ds.bus_cut.values[capped].any(axis=1).all() and not ds.bus_cut.values[~capped].any()
    kpis = json.loads((run_dir / "kpis.json").read_text())
    assert kpis["import_cap_exceeded_steps"] == 0 and kpis["bus_cut_steps"] == int(ds.bus_cut.sum())
    step_h = float((ds.time[1] - ds.time[0]) / np.timedelta64(1, "h"))
    assert kpis["unserved_energy_kwh"] == pytest.approx(float(ds.unserved_p_mw.sum()) * step_h * 1000, rel=1e-6)
    assert kpis["unserved_energy_kwh"] > 0


def test_a_cut_prosumer_exports_and_imports_nothing_while_its_bus_is_cut(run):
    run_dir, ds = run
    cut = ds.bus_cut.values.astype(bool)                                     # (time, bus position)
    position = {b: i for i, b in enumerate(ds.bus.values)}
    prosumers_cut = 0
    for i, prosumer in enumerate(load_roster(run_dir).prosumers):
        off = cut[:, position[prosumer.bus]]
        prosumers_cut += int(off.any())
        assert (ds.export_mw.values[off, i] == 0).all()
    assert 0 < prosumers_cut
    assert (ds.export_mw.values[~cut[:, [position[p.bus] for p in load_roster(run_dir).prosumers]]] != 0).mean() > 0.9
