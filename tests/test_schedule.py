"""The fixed schedule: every market action lands in its window, in the order the contracts require."""

import pytest

from gridledger.schedule import (
    auditor_times,
    bid_round_times,
    coordinator_times,
    data_access_phase,
    der_actions,
    ledger_actions,
    stop_time_s,
)
from gridledger.study import load_study, parse_study

SHORT = "studies/baran-wu-short.yaml"


def short(mechanism: str, **market):
    study = load_study(SHORT)
    data = study.model_dump(mode="json")
    data["market"].update(mechanism=mechanism, **market)
    return parse_study(data)


def test_double_auction_schedule_is_one_mine_per_interval_start_and_one_clear_per_gate():
    study = short("uniform-double-auction")
    actions = [(a.time_s, a.kind, a.interval) for a in ledger_actions(study)]
    expected = []
    for k in range(8):
        expected.append((900 * k + 1.0, "mine", None))
        if k < 7:
            expected.append((900 * (k + 1) - 60.0, "clear", k + 1))
    assert actions == expected + [(7201.0, "mine", None)]
    assert [a.time_s for a in der_actions(study)] == [300.0 * j for j in range(24)]


def test_a_zone_ledger_settles_across_zones_a_second_after_the_gate_the_coordinator_between():
    data = load_study(SHORT).model_dump(mode="json")
    data["grid"]["zones"] = {"buses": [list(range(18)), list(range(18, 33))]}
    data["market"]["sharding"] = "per-zone"
    study = parse_study(data)
    actions = [(a.time_s, a.kind, a.interval) for a in ledger_actions(study)]
    gates = [(900 * k - 60.0, k) for k in range(1, 8)]
    assert [(t, k) for t, kind, k in actions if kind == "clear"] == gates
    assert [(t, k) for t, kind, k in actions if kind == "cross"] == [(t + 1, k) for t, k in gates]
    assert coordinator_times(study) == [(t + 0.5, k) for t, k in gates]
    times = [t for t, _, _ in actions]
    assert times == sorted(times) and len(set(map(int, times))) == len(times)   # one block per whole second
    assert "cross" not in {kind for _, kind, _ in (
        (a.time_s, a.kind, a.interval) for a in ledger_actions(short("uniform-double-auction")))}


def test_vickrey_commit_after_lots_reveal_at_gate_finalise_before_interval_start():
    study = short("vickrey", reveal_s=30)
    for k in range(1, 8):
        start, gate = 900 * k, 900 * k - 60
        der = {a.market: a.time_s for a in der_actions(study) if a.interval == k}
        ledger = [(a.time_s, a.kind) for a in ledger_actions(study)]
        assert der == {"orders": start - 900, "bid": start - 900 + 60, "reveal": gate}
        assert (start - 900 + 1.0, "mine") in ledger                # lots mined
        assert (start - 900 + 61.0, "mine") in ledger               # sealed bids mined
        assert (gate + 1.0, "mine") in ledger                       # reveals mined inside [gate, gate + 30)
        assert (gate + 30.0, "clear") in ledger and gate + 30 < start


def test_english_rounds_every_round_s_until_one_second_before_the_gate():
    study = short("english", round_s=120)
    assert bid_round_times(study, 1) == [120, 240, 360, 480, 600, 720]
    rounds = [a.time_s for a in ledger_actions(study) if a.kind == "mine" and a.interval == 1]
    assert rounds == [1.0, 121.0, 241.0, 361.0, 481.0, 601.0, 721.0]
    assert all(t < 840 for t in rounds)
    assert [(a.time_s, a.kind) for a in ledger_actions(study) if a.kind == "clear"][0] == (840.0, "clear")


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid", "merit-order", "vickrey", "english"])
def test_setpoints_are_published_once_per_step_and_actions_are_in_time_order(mechanism):
    study = short(mechanism)
    der = der_actions(study)
    assert [a.step for a in der if a.step is not None] == list(range(study.n_steps))
    times = [a.time_s for a in der]
    assert times == sorted(set(times))
    ledger = [a.time_s for a in ledger_actions(study)]
    assert ledger == sorted(set(ledger))


@pytest.mark.parametrize("interval_s", [300, 900, 3600])
@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid", "merit-order", "vickrey", "english"])
def test_every_market_action_is_mined_before_its_gate_for_5_15_and_60_minute_intervals(mechanism, interval_s):
    """Each DER market transaction is mined one second later, before the gate of its interval;
    clearing (vickrey: finalising) happens at or after the gate and before the interval starts."""
    study = parse_study({"name": "x", "duration_s": 4 * interval_s, "market_interval_s": interval_s,
                         "market": {"mechanism": mechanism, "voltage_regulation": True}})
    mines = {a.time_s for a in ledger_actions(study) if a.kind == "mine"}
    clears = {a.interval: a.time_s for a in ledger_actions(study) if a.kind == "clear"}
    for action in der_actions(study):
        k = action.interval if action.market else action.flex_interval
        if k is None:
            continue
        gate = k * interval_s - study.market.gate_closure_s
        assert action.time_s + 1.0 in mines
        if action.market == "reveal":
            assert action.time_s == gate and clears[k] > action.time_s + 1.0
        else:
            assert action.time_s + 1.0 < gate
    for k, t in clears.items():
        assert k * interval_s - study.market.gate_closure_s <= t < k * interval_s


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "vickrey", "english"])
def test_with_an_auditor_each_check_follows_its_readings_block_and_the_ledger_mines_the_last_in_its_own_second(
        mechanism):
    data = short(mechanism).model_dump(mode="json")
    data["audit"] = {}
    study = parse_study(data)
    actions = ledger_actions(study)
    assert auditor_times(study) == [900 * k + 1.25 for k in range(1, 9)]
    assert (actions[-1].time_s, actions[-1].kind) == (7202.0, "mine") and stop_time_s(study) == 7202.0
    # Block timestamps are whole seconds and must grow: no two ledger actions share one.
    seconds = [int(a.time_s) for a in actions]
    assert seconds == sorted(set(seconds))
    for check in auditor_times(study):
        assert any(a.kind == "mine" and a.time_s > check for a in actions)    # what a check sends gets mined


@pytest.mark.parametrize("audit", [False, True])
@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "vickrey"])
def test_the_data_access_protocol_runs_after_the_market_each_step_after_the_block_it_needs(mechanism, audit):
    data = short(mechanism).model_dump(mode="json")
    data["data_access"] = {"queries": [{"query": "ev-share"}]}
    if audit:
        data["audit"] = {}
    study = parse_study(data)
    phase = data_access_phase(study)
    actions = ledger_actions(study)
    blocks = [a.time_s for a in actions if a.kind == "mine"]
    seconds = [int(a.time_s) for a in actions]
    assert seconds == sorted(set(seconds))                                   # whole, growing block timestamps
    market_end = 7202.0 if audit else 7201.0
    assert max(a.time_s for a in actions if a.time_s not in phase.blocks_s) == market_end < phase.propose_s

    def next_block(t: float) -> float:
        return min(b for b in blocks if b > t)

    requests_mined = next_block(phase.propose_s)
    assert requests_mined < phase.approve_s                                  # owners hear of the requests first
    approvals_mined = next_block(phase.approve_s)
    assert approvals_mined < phase.approval_deadline_s == phase.compute_s    # approvals count; the worker sees them
    results_mined = next_block(phase.compute_s)
    assert phase.approval_deadline_s <= results_mined < phase.result_deadline_s
    assert results_mined < phase.accept_s
    assert next_block(phase.accept_s) == blocks[-1] < phase.paid_s == stop_time_s(study)
    data_actions = [a for a in der_actions(study) if a.data]
    assert [(a.time_s, a.step, a.market) for a in data_actions] == [(phase.approve_s, None, None)]


def test_without_data_access_there_is_no_protocol():
    study = short("uniform-double-auction")
    assert data_access_phase(study) is None
    assert not any(a.data for a in der_actions(study)) and stop_time_s(study) == 7201.0
