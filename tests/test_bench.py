"""The benchmark functions run on tiny sizes and return well-formed, positive figures.

No wall-clock assertions: the machines are shared. The 24 h study is not
run here (tests/test_e2e.py runs studies end to end).
"""

import math

from bench.ledger import ledger_throughput
from bench.powerflow import powerflow_step_time


def _positive(*values: float) -> bool:
    return all(math.isfinite(v) and v > 0 for v in values)


def test_ledger_throughput_tiny():
    result = ledger_throughput(block_size=4, n_blocks=2, repeats=1)
    assert result.transactions == 8
    assert len(result.ours_s) == len(result.baseline_s) == 1
    assert _positive(result.ours_tx_per_s, result.baseline_tx_per_s, result.ratio, *result.ours_s, *result.baseline_s)


def test_powerflow_step_time_tiny():
    result = powerflow_step_time(n_steps=5, repeats=1)
    assert result.steps == 5
    assert _positive(result.ours_ms_per_step, result.baseline_ms_per_step, result.ratio)
    assert result.max_abs_dvm_pu < 1e-6


def test_feeder_step_times_cover_both_backends():
    from bench.feeders import feeder_step_times

    rows = {r.feeder: r for r in feeder_step_times(n_steps=2, names=("case33bw", "ieee-eu-lv"))}
    assert rows["case33bw"].pandapower_ms > 0 and rows["case33bw"].lightsim2grid_ms > 0
    assert rows["case33bw"].max_abs_dvm_pu < 1e-6
    assert rows["ieee-eu-lv"].lightsim2grid_ms is None and rows["ieee-eu-lv"].pandapower_ms > 0


def test_security_gas_section_runs_against_a_baseline_that_names_its_commit():
    from bench.__main__ import security_gas_section
    from bench.security_gas import (CHARGING_TX_TYPES, FLEX_TX_TYPES, PRE_HARDENING_COMMIT, SCENARIOS, TX_TYPES,
                                    pre_hardening_baseline, security_gas_rows)

    baseline = pre_hardening_baseline()
    assert baseline["commit"].startswith(PRE_HARDENING_COMMIT) and len(baseline["commit"]) == 40
    assert baseline["measured"] and set(baseline["gas"]) == set(SCENARIOS)
    rows = security_gas_rows()
    expected = {"double auction": TX_TYPES, "flexibility": FLEX_TX_TYPES, "charging": CHARGING_TX_TYPES}
    assert [(r.scenario, r.tx_type) for r in rows] == [(s, t) for s, types in expected.items() for t in types]
    for r in rows:
        assert r.gas > 0 and r.difference == r.gas - (r.pre_hardening_gas or 0)
        assert r.pre_hardening_gas is None or (math.isfinite(r.ratio) and r.ratio > 0)
    new = {r.tx_type for r in rows if r.pre_hardening_gas is None}
    assert new == {"register limits", "register DER", "register EV"}
    by_type = {(r.scenario, r.tx_type): r for r in rows}
    # The session checks read the earlier claim: a later request costs more than before the hardening.
    assert by_type["charging", "request charge (later)"].difference > 0
    lines = security_gas_section(rows, baseline["commit"])
    assert PRE_HARDENING_COMMIT in lines[0] and len(lines) == 2 + len(rows)


def test_relayed_orders_and_verified_batches_record_the_same_orders_as_one_transaction_each():
    from bench.ledger import SECRET, run_batched, run_ours, run_verified
    from gridledger.contracts.keys import derive_account

    operator = derive_account(SECRET, "operator")
    prosumers = [derive_account(SECRET, f"prosumer/{i}") for i in range(4)]
    _, direct = run_ours(operator, prosumers, 2)
    _, relayed = run_batched(operator, prosumers, 2)
    _, verified = run_verified(operator, prosumers, 2)
    assert [e.args for e in relayed] == [e.args for e in direct] == [e.args for e in verified] and len(direct) == 8


def test_batching_gas_section_spreads_each_relayed_transaction_over_what_it_carries():
    from bench.__main__ import batching_gas_section
    from bench.batching_gas import batching_gas

    one, eight = batching_gas((1, 8))
    # A batch of one pays the relay's overhead; from eight on, each order and reading costs less than alone.
    assert one.batched_order_gas > one.order_gas and one.batched_reading_gas > one.reading_gas
    assert eight.batched_order_gas < eight.order_gas and eight.batched_reading_gas < eight.reading_gas
    # Orders and clearing in one verified batch of eight cost less per order than relayed and then cleared.
    assert eight.verified_order_and_clearing_gas < eight.batched_order_and_clearing_gas < eight.order_and_clearing_gas
    assert len(batching_gas_section([one, eight])) == 4


def test_startup_section_compares_each_federate_with_the_baseline_process():
    from bench.startup import BASELINE_MODULE, startup_costs, startup_section
    from bench.study import StudyResult

    result = startup_costs(names=("operator",), repeats=1)
    assert result.baseline.module == BASELINE_MODULE and list(result.federates) == ["operator"]
    for cost in (result.baseline, *result.federates.values()):
        assert cost.repeats == 1 and _positive(cost.wall_s, cost.peak_rss_mib)
    # A federate imports pandapower and more, so it cannot need less memory than the bare import.
    assert result.federates["operator"].peak_rss_mib >= result.baseline.peak_rss_mib
    study = StudyResult(study="toy", simulated_s=900.0, run_dir="runs/toy", total_s=3.0, launch_s=2.5, startup_s=1.5,
                        compute_s={"grid": 0.2, "der": 0.1}, rest_s=0.7, collect_s=0.5,
                        peak_rss_mib={"grid": 300.0, "der": 250.0}, federate_startup_s={"grid": 1.5, "der": 1.0})
    lines = startup_section(result, study)
    assert BASELINE_MODULE in lines[1]
    assert sum("gridledger.federates." in line for line in lines) == 1
    assert any(line.split()[:1] == ["grid"] and "300" in line for line in lines)
    assert "summed peak RSS 550 MiB" in lines[-2] and "meets aim" in lines[-2]
    assert "slowest start-up 1.50 s" in lines[-1] and "meets aim" in lines[-1]



def test_plain_loop_runs_every_step_of_the_study_and_the_section_names_the_largest_part():
    from pathlib import Path

    from bench.plain_loop import PlainLoopResult, plain_loop, plain_loop_section
    from bench.study import StudyResult
    from gridledger.study import load_study

    short = Path(__file__).resolve().parent.parent / "studies" / "baran-wu-short.yaml"
    loop = plain_loop(short)
    assert loop.steps == load_study(short).n_steps and _positive(loop.wall_s)
    study = StudyResult(study="toy", simulated_s=900.0, run_dir="runs/toy", total_s=9.0, launch_s=8.0, startup_s=1.5,
                        compute_s={"grid": 0.5, "ledger": 4.0, "der": 0.5}, rest_s=1.5, collect_s=1.0,
                        peak_rss_mib={}, federate_startup_s={})
    slow = plain_loop_section(PlainLoopResult(steps=4, wall_s=3.0), study)
    assert slow[2].endswith("3.00x  MISSES aim")
    assert slow[3] == "   largest part of the study: ledger compute, 4.00 s (44.4 % of its wall time)"
    assert plain_loop_section(PlainLoopResult(steps=4, wall_s=6.0), study)[2].endswith("1.50x  meets aim")


def test_audit_section_gives_the_auditors_cost_per_interval_and_as_shares():
    from bench.audit import AuditCost, audit_section

    cost = AuditCost(intervals=96, auditor_compute_s=48.0, wall_s=160.0, reference_wall_s=80.0)
    assert (cost.per_interval_s, cost.share_of_wall, cost.over_reference) == (0.5, 0.3, 2.0)
    rows = "\n".join(audit_section(cost))
    assert "0.500 s per interval" in rows and "30.0%" in rows and "2.00x" in rows


def test_privacy_gas_section_lists_each_action_and_each_features_cost_per_use_and_interval():
    from bench.privacy_gas import DATA_ACCESS, EMERGENCY, PSEUDONYMS, TWO_PHASE, ActionGas, privacy_gas_section

    actions = {DATA_ACCESS: ("deploy", "propose", "approve (first)", "approve (later)", "post result", "accept",
                             "cancel"),
               PSEUDONYMS: ("ticket (first)", "ticket (later)", "register (first)", "register (later)"),
               TWO_PHASE: ("propose", "accept", "confirm (first)", "confirm (commit)", "roll back"),
               EMERGENCY: ("declare", "grant", "use", "override")}
    rows = [ActionGas(feature, action, 1000, "note") for feature, names in actions.items() for action in names]
    lines = privacy_gas_section(rows, n_prosumers=32)
    assert "32 prosumers" in lines[0] and len(lines) == 2 + len(rows) + len(actions)
    assert all("1,000   note" in line for line in lines[2:2 + len(rows)])
    data, pseudonyms, trades, emergency = lines[-4:]
    # 27 transactions a request (23 later approvals), one request a day of 96 intervals.
    assert "23 x approve (later)" in data and "= 27,000 gas;" in data and "1/96 per interval = 281 gas" in data
    # Every prosumer's ticket and pair each interval: 64 transactions, none spread over the day.
    assert pseudonyms == ("   pseudonyms: one interval = ticket (first) + 31 x ticket (later) + register (first)"
                          " + 31 x register (later) = 64,000 gas per interval"
                          " (each of 32 prosumers trades under a fresh pseudonym)")
    assert "= 4,000 gas;" in trades and "8 per interval = 32,000 gas per interval" in trades
    assert "= 4,000 gas; an exception, not a per-interval cost" in emergency


def test_privacy_gas_fits_each_clients_gas_limit_and_adds_up_per_interval():
    from bench.privacy_gas import (DATA_ACCESS, EMERGENCY, INTERVALS_PER_DAY, PSEUDONYMS, TWO_PHASE, feature_costs,
                                   privacy_gas)
    from gridledger.contracts import charging as ch
    from gridledger.contracts import data_access as da
    from gridledger.contracts import emergency as em
    from gridledger.contracts import pseudonyms as pn
    from gridledger.contracts import two_phase as tp

    limits = {
        (DATA_ACCESS, "deploy"): da.GAS_DEPLOY, (DATA_ACCESS, "propose"): da.GAS_PROPOSE,
        (DATA_ACCESS, "approve (first)"): da.GAS_APPROVE, (DATA_ACCESS, "approve (later)"): da.GAS_APPROVE,
        (DATA_ACCESS, "post result"): da.GAS_POST_RESULT, (DATA_ACCESS, "accept"): da.GAS_PAY,
        (DATA_ACCESS, "cancel"): da.GAS_CANCEL,
        (PSEUDONYMS, "ticket (first)"): pn.GAS_TICKET, (PSEUDONYMS, "ticket (later)"): pn.GAS_TICKET,
        (PSEUDONYMS, "register (first)"): pn.GAS_REGISTER, (PSEUDONYMS, "register (later)"): pn.GAS_REGISTER,
        (TWO_PHASE, "propose"): tp.GAS_PROPOSE, (TWO_PHASE, "accept"): tp.GAS_ACCEPT,
        (TWO_PHASE, "confirm (first)"): tp.GAS_CONFIRM, (TWO_PHASE, "confirm (commit)"): tp.GAS_CONFIRM,
        (TWO_PHASE, "roll back"): tp.GAS_ROLL_BACK,
        (EMERGENCY, "declare"): em.GAS_DECLARE, (EMERGENCY, "grant"): em.GAS_GRANT, (EMERGENCY, "use"): em.GAS_USE,
        (EMERGENCY, "override"): ch.GAS_OVERRIDE,
    }
    rows = privacy_gas(32)
    assert [(r.feature, r.action) for r in rows] == list(limits)
    for r in rows:
        assert 0 < r.gas < limits[r.feature, r.action], r
    g = {(r.feature, r.action): r.gas for r in rows}
    # The first approval, ticket and registration of an interval also write a fresh counter word.
    assert g[DATA_ACCESS, "approve (first)"] > g[DATA_ACCESS, "approve (later)"]
    assert g[PSEUDONYMS, "ticket (first)"] > g[PSEUDONYMS, "ticket (later)"]
    assert g[PSEUDONYMS, "register (first)"] > g[PSEUDONYMS, "register (later)"]
    costs = {c.feature: c for c in feature_costs(rows, 32)}
    request = (g[DATA_ACCESS, "propose"] + g[DATA_ACCESS, "approve (first)"] + 23 * g[DATA_ACCESS, "approve (later)"]
               + g[DATA_ACCESS, "post result"] + g[DATA_ACCESS, "accept"])
    assert costs[DATA_ACCESS].gas_per_use == request
    assert math.isclose(costs[DATA_ACCESS].gas_per_interval, request / INTERVALS_PER_DAY)
    interval = (g[PSEUDONYMS, "ticket (first)"] + 31 * g[PSEUDONYMS, "ticket (later)"]
                + g[PSEUDONYMS, "register (first)"] + 31 * g[PSEUDONYMS, "register (later)"])
    assert costs[PSEUDONYMS].use == "interval" and costs[PSEUDONYMS].uses_per_interval == 1.0
    assert costs[PSEUDONYMS].counts == (("ticket (first)", 1), ("ticket (later)", 31), ("register (first)", 1),
                                        ("register (later)", 31))
    assert costs[PSEUDONYMS].gas_per_use == costs[PSEUDONYMS].gas_per_interval == interval
    trade = sum(g[TWO_PHASE, a] for a in ("propose", "accept", "confirm (first)", "confirm (commit)"))
    assert costs[TWO_PHASE].gas_per_use == trade and costs[TWO_PHASE].gas_per_interval == 8 * trade
    assert costs[EMERGENCY].gas_per_use == sum(g[EMERGENCY, a] for a in ("declare", "grant", "use", "override"))
    assert costs[EMERGENCY].gas_per_interval is None
