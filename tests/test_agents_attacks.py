"""Attacks as study input: the plan over meter-intervals, the meters' tampering and the ground truth, hand-computed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.agents.attacks import NO_ATTACK, bypass_mw, energy_error_wh, plan_attacks, tamper
from gridledger.study import StudyError, parse_study
from gridledger.study_audit import Attack

NAMES = [f"p{i:02d}" for i in range(1, 11)]
RATING_W = np.full(10, 8000)                     # 8 kW meters
TRUE = {"import_wh": np.full(10, 1000), "export_wh": np.zeros(10, dtype=np.int64),
        "pv_wh": np.full(10, 200), "battery_wh": np.zeros(10, dtype=np.int64)}


def _plan(*attacks: dict, n_intervals: int = 8):
    return plan_attacks([Attack(**a) for a in attacks], NAMES, n_intervals, 900, seed=7)


def test_an_attack_hits_whole_intervals_that_start_in_its_window():
    plan = _plan({"kind": "bypass", "prosumers": ["p03"], "start_s": 1000, "end_s": 2700, "fraction_of_rating": 0.1})
    hit = plan.index[:, 2] != NO_ATTACK
    assert hit.tolist() == [False, False, True, False, False, False, False, False]    # 1800 only: 900 < 1000, 2700 = end
    assert (plan.index[:, [0, 1, 3]] == NO_ATTACK).all()


def test_a_share_is_seeded_and_the_first_listed_attack_wins_an_overlap():
    a = {"kind": "replay", "share": 0.3, "intervals": 1}
    b = {"kind": "bypass", "share": 1.0, "fraction_of_rating": 0.1}
    plan = _plan(a, b)
    replayed = np.flatnonzero(plan.index[0] == 0)
    assert len(replayed) == 3 and (plan.index[0][np.setdiff1d(range(10), replayed)] == 1).all()
    assert (plan_attacks([Attack(**a), Attack(**b)], NAMES, 8, 900, seed=7).index == plan.index).all()
    assert not (plan_attacks([Attack(**a)], NAMES, 8, 900, seed=8).index == _plan(a).index).all()


def test_over_report_adds_the_fraction_of_rating_over_the_interval():
    plan = _plan({"kind": "over-report-export", "prosumers": ["p01"], "fraction_of_rating": 0.1})
    out = tamper(plan, 0, TRUE, [], RATING_W, np.full(10, 500))
    assert out["export_wh"][0] == 200 and out["export_wh"][1] == 0              # 0.1 * 8 kW * 0.25 h = 200 Wh
    assert energy_error_wh(plan, 0, TRUE, out, np.zeros(10))[0] == 200


def test_under_report_hides_the_fraction_of_import():
    plan = _plan({"kind": "under-report-import", "prosumers": ["p02"], "fraction": 0.4})
    out = tamper(plan, 0, TRUE, [], RATING_W, np.full(10, 500))
    assert out["import_wh"][1] == 600 and energy_error_wh(plan, 0, TRUE, out, np.zeros(10))[1] == 400


def test_bypass_is_physical_load_the_meter_does_not_see():
    plan = _plan({"kind": "bypass", "prosumers": ["p04"], "fraction_of_rating": 0.25})
    assert bypass_mw(plan, 0, RATING_W).tolist() == [0.0] * 3 + [0.002] + [0.0] * 6     # 0.25 * 8 kW
    out = tamper(plan, 0, TRUE, [], RATING_W, np.full(10, 500))
    assert all((out[k] == TRUE[k]).all() for k in TRUE)
    assert energy_error_wh(plan, 0, TRUE, out, np.where(np.arange(10) == 3, 500, 0))[3] == 500


def test_replay_reposts_an_earlier_true_reading_and_does_nothing_before_it_exists():
    plan = _plan({"kind": "replay", "prosumers": ["p01"], "intervals": 2})
    earlier = {k: v + 7 for k, v in TRUE.items()}
    assert tamper(plan, 1, TRUE, [earlier], RATING_W, np.zeros(10))["import_wh"][0] == 1000
    assert tamper(plan, 2, TRUE, [earlier, TRUE], RATING_W, np.zeros(10))["import_wh"][0] == 1007


def test_impossible_pv_claims_factor_times_the_possible_and_the_registers_follow():
    plan = _plan({"kind": "impossible-pv", "prosumers": ["p01"], "factor": 3.0})
    out = tamper(plan, 0, TRUE, [], RATING_W, np.full(10, 500))
    assert out["pv_wh"][0] == 1500                     # 3 x 500 Wh possible; 1300 Wh more than the true 200
    assert out["import_wh"][0] == 0 and out["export_wh"][0] == 300
    assert energy_error_wh(plan, 0, TRUE, out, np.zeros(10))[0] == 1300


@settings(max_examples=50, deadline=None)
@given(imports=st.lists(st.integers(0, 5000), min_size=10, max_size=10),
       exports=st.lists(st.integers(0, 5000), min_size=10, max_size=10), fraction=st.floats(0.01, 1.0))
def test_honest_meters_have_no_error_and_attacked_ones_the_size_of_their_attack(imports, exports, fraction):
    true = {**TRUE, "import_wh": np.array(imports), "export_wh": np.array(exports)}
    plan = _plan({"kind": "under-report-import", "prosumers": ["p05"], "fraction": fraction})
    error = energy_error_wh(plan, 0, true, tamper(plan, 0, true, [], RATING_W, np.zeros(10)), np.zeros(10))
    assert error[4] == round(fraction * imports[4]) and (np.delete(error, 4) == 0).all()


@pytest.mark.parametrize("attack, message", [
    ({"kind": "bypass", "share": 0.2}, "kind 'bypass' needs fraction_of_rating"),
    ({"kind": "replay", "share": 0.2, "intervals": 1, "fraction": 0.1}, "kind 'replay' uses intervals, not fraction"),
    ({"kind": "foreign-key", "share": 0.2, "factor": 2.0}, "kind 'foreign-key' has no size field, not factor"),
    ({"kind": "delay", "intervals": 1}, "give exactly one of prosumers"),
    ({"kind": "delay", "share": 0.1, "intervals": 1, "start_s": 900, "end_s": 900}, "end_s (900) must be after start_s"),
    ({"kind": "replay", "prosumers": ["p99"], "intervals": 1}, "attacks.0.prosumers names p99; prosumers here: p01 to p32"),
    ({"kind": "delay", "share": 0.1, "intervals": 1, "end_s": 90000}, "attacks.0.end_s (90000) must be at most"),
    ({"kind": "fake-flexibility", "share": 0.1, "fraction": 0.5}, "needs market.voltage_regulation: true"),
    ({"kind": "teleport", "share": 0.1}, "attacks.0.kind = 'teleport'"),
])
def test_a_bad_attack_names_its_field_value_and_what_is_allowed(attack, message):
    with pytest.raises(StudyError, match="s.yaml") as err:
        parse_study({"name": "x", "attacks": [attack]}, "s.yaml")
    assert message in str(err.value)
