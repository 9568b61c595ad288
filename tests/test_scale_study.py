"""The 1000-prosumer study on SimBench's rural MV/LV grid: valid, and its prosumers all on LV buses.

Building its scenario on a machine without the disk cache reads the grid's
yearly profiles (minutes, 6.5 GiB in this process, 3.0 GB cached), so the
tests that build it run with ``make test-all``.
"""

import pytest

from gridledger.cli import main
from gridledger.grids.prosumers import place_prosumers
from gridledger.process import EXIT_OK
from gridledger.scenario import build_scenario
from gridledger.study import load_study

STUDY = "studies/mvlv-1000.yaml"
LV_LIMIT_KV = 1.0


@pytest.fixture(scope="module")
def scenario():
    """The study's scenario, built as the launcher builds it."""
    return build_scenario(load_study(STUDY))


def test_the_scale_study_validates(capsys):
    assert main(["validate", STUDY]) == EXIT_OK
    assert "1000 prosumers, 96 market intervals of 15 min (24 h)" in capsys.readouterr().out


@pytest.mark.slow
def test_exactly_1000_prosumers_take_over_distinct_lv_loads(scenario):
    net, prosumers = scenario.net, scenario.prosumers
    assert len(prosumers) == 1000
    assert len({p.bus for p in prosumers}) == len({p.load_index for p in prosumers}) == 1000
    assert all(net.bus.at[p.bus, "vn_kv"] < LV_LIMIT_KV for p in prosumers)
    assert all(net.load.at[p.load_index, "bus"] == p.bus for p in prosumers)
    assert (prosumers[0].name, prosumers[-1].name) == ("p0001", "p1000")
    assert sum(p.pv_kwp > 0 for p in prosumers) == 500
    assert sum(p.battery_energy_kwh > 0 for p in prosumers) == 250


@pytest.mark.slow
def test_placement_is_deterministic(scenario):
    study = scenario.study
    pros = study.prosumers
    again = place_prosumers(scenario.net, pros.count, study.seed, pros.pv.share, pros.pv.kwp_per_kw_load,
                            pros.battery.share, pros.battery.kwh_per_kw_load, pros.battery.kw_per_kwh,
                            voltage_level=pros.voltage_level)
    assert again == scenario.prosumers


@pytest.mark.slow
def test_profiles_cover_the_day_for_every_prosumer(scenario):
    p_mw, _ = scenario.prosumer_load_mw()
    assert p_mw.shape == (96, 1000)
    assert scenario.pv_pu.shape == (96, 1000)
    assert (p_mw >= 0).all() and p_mw.max() > 0
