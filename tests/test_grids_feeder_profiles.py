"""SimBench yearly profiles sampled at study times."""

from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import simbench

from gridledger.grids.feeder_profiles import PROFILE_STEP_S, feeder_profiles
from gridledger.grids.feeders import load_feeder
from gridledger.grids.powerflow import Injections, PowerFlow

CODE = "1-LV-rural1--0-sw"
QUARTERS_PER_DAY = 96


@pytest.fixture(scope="module")
def net():
    return load_feeder(CODE)


@pytest.fixture(scope="module")
def absolute(net):
    return simbench.get_absolute_values(load_feeder(CODE), profiles_instead_of_study_cases=True)


def step_of(net, start, seconds=0.0):
    return int(feeder_profiles(net, start, [seconds]).profile_step[0])


def label(net, step):
    return net.profiles["load"]["time"].iloc[step]


def test_values_are_simbench_absolute_values_at_the_mapped_rows(net, absolute):
    times = np.arange(0.0, 6 * 3600.0, 300.0)
    profiles = feeder_profiles(net, datetime(2027, 7, 14, 13, 10), times)
    rows = profiles.profile_step
    np.testing.assert_array_equal(profiles.load_index, net.load.index)
    np.testing.assert_array_equal(profiles.sgen_index, net.sgen.index)
    np.testing.assert_array_equal(profiles.load_p_mw, absolute[("load", "p_mw")].to_numpy()[rows])
    np.testing.assert_array_equal(profiles.load_q_mvar, absolute[("load", "q_mvar")].to_numpy()[rows])
    np.testing.assert_array_equal(profiles.sgen_p_mw, absolute[("sgen", "p_mw")].to_numpy()[rows])
    assert profiles.storage_p_mw.shape == (len(times), 0)
    assert profiles.sgen_p_mw.max() > 0.0


def test_study_time_maps_to_the_same_date_and_standard_time_of_2016(net):
    # 14 July is day 196 of 2016; 13:10 is in the quarter hour from 13:00.
    assert step_of(net, datetime(2027, 7, 14, 13, 10)) == 195 * QUARTERS_PER_DAY + 52 == 18772
    # SimBench labels rows in German civil time: 13:00 standard time is 14:00 CEST.
    assert label(net, 18772) == "14.07.2016 14:00"
    assert label(net, step_of(net, datetime(2027, 1, 14, 13, 10))) == "14.01.2016 13:00"


def test_time_zone_aware_start_drops_daylight_saving(net):
    summer = datetime(2027, 7, 14, 13, 10, tzinfo=ZoneInfo("Europe/Berlin"))
    assert label(net, step_of(net, summer)) == "14.07.2016 13:00"
    assert step_of(net, summer) == step_of(net, datetime(2027, 7, 14, 12, 10))
    assert step_of(net, datetime(2027, 7, 14, 13, 10, tzinfo=timezone.utc)) == 18772


def test_values_hold_over_each_quarter_hour(net):
    times = np.array([0.0, 899.0, 900.0, 1799.9, 1800.0])
    profiles = feeder_profiles(net, datetime(2027, 3, 5, 6, 0), times)
    assert np.diff(profiles.profile_step).tolist() == [0, 1, 0, 1]
    assert PROFILE_STEP_S == 900


def test_leap_day_is_read_only_in_leap_years(net):
    march_first = 60 * QUARTERS_PER_DAY  # 1 March 2016 is day 61
    assert step_of(net, datetime(2027, 3, 1)) == march_first
    assert step_of(net, datetime(2027, 2, 28), 86400.0) == march_first
    assert step_of(net, datetime(2028, 2, 29)) == march_first - QUARTERS_PER_DAY


def test_study_running_past_new_year_wraps_to_january(net):
    steps = feeder_profiles(net, datetime(2027, 12, 31, 23, 50), [0.0, 600.0]).profile_step
    assert steps.tolist() == [366 * QUARTERS_PER_DAY - 1, 0]


def test_feeders_without_profiles_give_none():
    assert feeder_profiles(load_feeder("case33bw"), datetime(2027, 1, 1), [0.0]) is None
    assert feeder_profiles(load_feeder("ieee-eu-lv"), datetime(2027, 1, 1), [0.0]) is None


def test_profiles_come_from_the_published_grid_not_the_current_set_points(net):
    start = datetime(2027, 5, 1, 12, 0)
    before = feeder_profiles(net, start, [0.0]).load_p_mw
    changed = load_feeder(CODE)
    changed.load["p_mw"] *= 3.0
    np.testing.assert_array_equal(feeder_profiles(changed, start, [0.0]).load_p_mw, before)


def test_profiles_are_cached_and_read_only(net):
    first = feeder_profiles(net, datetime(2027, 5, 1), [0.0])
    second = feeder_profiles(net, datetime(2027, 5, 1), [0.0])
    np.testing.assert_array_equal(first.load_p_mw, second.load_p_mw)
    with pytest.raises(ValueError):
        first.load_index[0] = 99


@pytest.mark.parametrize("times", [[[0.0]], [np.nan], [-1.0]])
def test_bad_times_are_rejected(net, times):
    with pytest.raises(ValueError, match="times_s"):
        feeder_profiles(net, datetime(2027, 1, 1), times)


def test_a_day_of_profiles_runs_through_powerflow(net):
    times = np.arange(0.0, 86400.0, 3600.0)
    profiles = feeder_profiles(net, datetime(2027, 6, 21), times)
    flow = PowerFlow(load_feeder(CODE))
    flow_net = flow.net
    base = Injections.from_net(flow_net)
    imports = []
    for k in range(len(times)):
        result = flow.step(Injections(profiles.load_p_mw[k], profiles.load_q_mvar[k], profiles.sgen_p_mw[k],
                                      base.storage_p_mw))
        assert result.converged
        imports.append(result.p_mw)
    # Midsummer noon: the PV of this village exports; at night it imports.
    assert min(imports) < 0.0 < imports[0]
    assert (datetime(2027, 6, 21) + timedelta(hours=int(np.argmin(imports)))).hour in range(10, 16)
