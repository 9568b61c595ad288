"""The roster the launcher writes is the scenario the DER and ledger federates would have built, read without pandapower."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import yaml

from gridledger.launcher import prepare
from gridledger.roster import ROSTER_FILE, load_roster, roster_of, write_roster
from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from tests.e2e_helpers import TEST_SECRET

STUDIES = {
    "case33bw": {"name": "r", "start": "2024-06-21T10:00:00", "duration_s": 3600, "seed": 3,
                 "prosumers": {"count": 12, "pv": {"share": 0.5}, "battery": {"share": 0.25}}},
    "cigre-lv": {"name": "r", "duration_s": 3600, "grid": {"feeder": "cigre-lv"}, "prosumers": {"count": 6}},
    "case33bw-zoned": {"name": "r", "duration_s": 900, "prosumers": {"count": 4, "buses": [3, 5, 20, 25]},
                       "grid": {"feeder": "case33bw", "zones": {"buses": [list(range(0, 18)), list(range(18, 33))]}}},
    "cigre-lv-by-transformer": {"name": "r", "duration_s": 900, "prosumers": {"count": 6},
                                "grid": {"feeder": "cigre-lv", "zones": {"by": "transformer"}}},
}


@pytest.mark.parametrize("study", STUDIES.values(), ids=STUDIES.keys())
def test_roster_read_back_equals_the_scenario(tmp_path, study):
    sc = build_scenario(parse_study(study))
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    write_roster(tmp_path, roster_of(sc))
    roster = load_roster(tmp_path)
    assert roster.study == sc.study
    assert roster.prosumers == sc.prosumers
    for expected in (False, True):
        for got, want in zip(roster.prosumer_load_mw(expected), sc.prosumer_load_mw(expected)):
            np.testing.assert_array_equal(got, want)
    assert roster.zones == sc.zones and list(roster.zones) == list(sc.zones)
    assert roster.zone_of == sc.zone_of
    for name in ("times_s", "pv_pu", "pv_pu_expected", "buses", "lines", "trafos"):
        np.testing.assert_array_equal(getattr(roster, name), getattr(sc, name), err_msg=name)
    assert roster.prosumer_load_mw()[0].shape == (sc.study.n_steps, len(sc.prosumers))


def test_the_roster_of_a_zoned_study_routes_each_prosumer_to_the_zone_of_its_bus(tmp_path):
    study = STUDIES["case33bw-zoned"]
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(study))
    write_roster(tmp_path, roster_of(build_scenario(parse_study(study))))
    roster = load_roster(tmp_path)
    assert roster.zones == {"z0": tuple(range(0, 18)), "z1": tuple(range(18, 33))}
    assert roster.zone_of == {"p01": "z0", "p02": "z0", "p03": "z1", "p04": "z1"}


def test_prepare_writes_the_roster_and_reading_it_loads_no_pandapower(tmp_path):
    path = tmp_path / "r.yaml"
    path.write_text(yaml.safe_dump(STUDIES["case33bw"]))
    run_dir = prepare(path, tmp_path / "runs", TEST_SECRET).run_dir
    assert (run_dir / ROSTER_FILE).exists()
    code = ("import sys; from gridledger.roster import load_roster; r = load_roster(sys.argv[1]); "
            "print(len(r.prosumers), 'pandapower' in sys.modules, 'scipy' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(run_dir)], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["12", "False", "False"]
