"""``python -m bench``: run every benchmark, print a table, write ``runs/bench/<timestamp>.json``.

Sizes are fixed so the whole suite takes a few minutes on a 2-core machine:
one 24 h reference study, 512 ledger transactions per block size and
implementation (median of 3), the 288 power-flow steps of the reference
day (median of 3). Gas figures are deterministic and need no repeats; the
gas of issue 11's checks is compared with figures recorded once before the
hardening (`bench.security_gas`). Each federate module's start-up and
peak memory is compared with a bare ``import pandapower`` process measured
in the same run (`bench.startup`). The reference study's wall time is set
against a plain loop of default pandapower ``runpp`` over its steps, in its
own process (`bench.plain_loop`). The auditor's cost is its compute per
interval and share of the meter-fraud day's wall time, and that day's wall
over the reference day's (`bench.audit`). The gas of the privacy features
(issue 14) is given per action, per use and per market interval of a
32-prosumer feeder (`bench.privacy_gas`), that of the ancillary services
(issue 15) per action of one scripted reserve window and one load shed
programme (`bench.reserve_gas`, `bench.load_shed_gas`). The chain kept on disk is timed against the
chain in memory only, and the reference day served live over JSON-RPC and watched against the reference
day (`bench.chain_rpc`, issue 17). Four weeks of the year study give each federate's memory at the end
over its memory after a week, and the reference day checkpointed hourly is set against the reference day
(`bench.long_run`, issue 16). The scaling sweep (`bench.scaling`: the
1000-prosumer MV/LV study at 32, 128, 512 and 1000 prosumers, 2 h each
unless ``GRIDLEDGER_SCALING_HOURS`` says otherwise) comes last and takes
about as long as the rest; ``python -m bench scaling`` runs only it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import sys
from pathlib import Path

from bench import verdict
from bench.audit import audit_cost, audit_section
from bench.feeders import FeederStepTime, feeder_step_times
from bench.batching_gas import BatchingGas, batching_gas
from bench.chain_rpc import LIVE_AIM_RATIO, chain_rpc_cost, chain_rpc_section
from bench.long_run import CHECKPOINT_AIM_RATIO, MEMORY_AIM_RATIO, long_run_cost, long_run_section
from bench.ledger import LedgerResult, ledger_throughput
from bench.plain_loop import AIM_RATIO as PLAIN_LOOP_AIM_RATIO, plain_loop, plain_loop_section
from bench.powerflow import REFERENCE_STUDY, PowerFlowResult, powerflow_step_time
from bench.load_shed_gas import load_shed_gas
from bench.reserve_gas import reserve_gas
from bench.privacy_gas import N_PROSUMERS as PRIVACY_PROSUMERS, feature_costs, privacy_gas, privacy_gas_section
from bench.scaling import VARIANTS, Sweep, plot_scaling, scaling_section, scaling_sweep
from bench.security_gas import BASELINE_FILE, TxGas, pre_hardening_baseline, security_gas_rows
from bench.startup import startup_costs, startup_section
from bench.study import StudyResult, run_study
from gridledger.contracts.gas_report import Crossover, GasRow, crossover, gas_table
from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.results import run_timestamp
from gridledger.units import SECONDS_PER_HOUR

RUNS_ROOT = Path("runs/bench")
STUDY_AIM_S = 30.0
MEMORY_AIM_MIB = 1536.0
LEDGER_AIM_RATIO = 5.0
BATCHED_AIM_RATIO = 10.0
"""Issue 12's aim for orders relayed in batches: orders per second over the web3 baseline's. [-]"""
POWERFLOW_AIM_RATIO = 0.5
LEDGER_TRANSACTIONS = 512
LEDGER_BLOCK_SIZES = (32, 256)
REPEATS = 3



def study_table(r: StudyResult) -> list[str]:
    """Rows of the reference-study section."""
    hours = r.simulated_s / SECONDS_PER_HOUR
    parts = [
        ("start-up (until the last federate enters)", r.startup_s),
        ("ledger compute", r.compute_s["ledger"]),
        ("power-flow compute (grid)", r.compute_s["grid"]),
        ("DER agents compute (der)", r.compute_s["der"]),
        ("HELICS / waiting (rest of the launch)", r.rest_s),
        ("results collection", r.collect_s),
    ]
    rss = ", ".join(f"{name} {mib:.0f}" for name, mib in r.peak_rss_mib.items())
    rows = [
        f"1. Reference study {r.study}: {hours:g} h simulated, one run"
        f"   (aim: wall < {STUDY_AIM_S:g} s, summed peak memory < {MEMORY_AIM_MIB / 1024:g} GiB)",
        f"   {'part':<44}{'wall [s]':>10}{'share of total':>16}",
    ]
    rows += [f"   {label:<44}{seconds:>10.2f}{100 * seconds / r.total_s:>15.1f}%" for label, seconds in parts]
    rows += [
        f"   {'total (launch + collection)':<44}{r.total_s:>10.2f}{100.0:>15.1f}%",
        f"   total / aim {STUDY_AIM_S:g} s = {r.total_s / STUDY_AIM_S:.2f}  ({verdict(r.total_s < STUDY_AIM_S)}); "
        f"simulated / wall = {r.simulated_s / r.total_s:.0f}x real time",
        f"   peak RSS summed over federate processes: {r.peak_rss_sum_mib:.0f} MiB ({rss}; broker not counted)",
        f"   peak RSS / aim {MEMORY_AIM_MIB:g} MiB = {r.peak_rss_sum_mib / MEMORY_AIM_MIB:.2f}"
        f"  ({verdict(r.peak_rss_sum_mib < MEMORY_AIM_MIB)})",
        f"   run directory: {r.run_dir}",
    ]
    return rows


def ledger_table(results: list[LedgerResult]) -> list[str]:
    """Rows of the ledger-throughput section: one transaction per order, and the same orders relayed in batches."""
    rows = [
        f"2. Ledger throughput: {results[0].transactions} signed orders executed and mined with receipts, median of"
        f" {results[0].repeats}   (aims: ours/baseline >= {LEDGER_AIM_RATIO:g}, batched/baseline and"
        f" verified/baseline >= {BATCHED_AIM_RATIO:g})",
        f"   {'block size':>10}{'ours Chain.mine [tx/s]':>26}{'web3 + eth-tester [tx/s]':>28}"
        f"{'ours/baseline':>16}{'batched [orders/s]':>20}{'batched/baseline':>18}{'verified [orders/s]':>21}"
        f"{'verified/baseline':>19}",
    ]
    rows += [
        f"   {r.block_size:>10}{r.ours_tx_per_s:>26.1f}{r.baseline_tx_per_s:>28.1f}{r.ratio:>15.2f}x"
        f"{r.batched_orders_per_s:>20.1f}{r.batched_ratio:>17.2f}x{r.verified_orders_per_s:>21.1f}"
        f"{r.verified_ratio:>18.2f}x"
        f"  {verdict(r.ratio >= LEDGER_AIM_RATIO)} / {verdict(r.batched_ratio >= BATCHED_AIM_RATIO)}"
        f" / {verdict(r.verified_ratio >= BATCHED_AIM_RATIO)}"
        for r in results
    ]
    rows.append("   (baseline: eth-tester PyEVM backend, automine on, one block per transaction, explicit gas;"
                " batched: EIP-712 signed orders, one submit_signed_orders per block; verified: the same signed"
                " orders with their clearing, one clear_signed per block)")
    return rows


def powerflow_table(r: PowerFlowResult) -> list[str]:
    """Rows of the power-flow section."""
    return [
        f"3. Power-flow step: reference feeder, {r.steps} steps of the reference day, median of {r.repeats}"
        f"   (aim: ours/baseline <= {POWERFLOW_AIM_RATIO:g})",
        f"   {'ours PowerFlow.step [ms/step]':>31}{'default runpp [ms/step]':>26}{'ours/baseline':>16}"
        f"{'max |dvm| [pu]':>16}",
        f"   {r.ours_ms_per_step:>31.2f}{r.baseline_ms_per_step:>26.2f}{r.ratio:>15.2f}x{r.max_abs_dvm_pu:>16.1e}"
        f"  {verdict(r.ratio <= POWERFLOW_AIM_RATIO)}",
    ]


def feeders_section(rows: list[FeederStepTime]) -> list[str]:
    """Rows of the per-feeder power-flow section."""
    lines = [
        "5. Power-flow step per catalog feeder, median warm step: pandapower vs lightsim2grid Newton-Raphson",
        f"   {'feeder':<22}{'buses':>7}{'pandapower [ms]':>17}{'lightsim2grid [ms]':>20}{'ratio':>8}{'max |dvm| [pu]':>16}",
    ]
    for r in rows:
        if r.ratio is None:
            lines.append(f"   {r.feeder:<22}{r.n_bus:>7}{r.pandapower_ms:>17.2f}{'(3-phase: n/a)':>20}")
        else:
            lines.append(f"   {r.feeder:<22}{r.n_bus:>7}{r.pandapower_ms:>17.2f}{r.lightsim2grid_ms:>20.2f}"
                         f"{r.ratio:>7.2f}x{r.max_abs_dvm_pu:>16.1e}")
    return lines


def gas_section(rows: list[GasRow], crossovers: list[Crossover]) -> list[str]:
    """Rows of the gas section: gas is deterministic, so no baseline or repeats are needed."""
    lines = [
        "4. Gas per order and per clearing, fully crossing books submitted against priority (every order fills,"
        " the on-chain sort's worst case)",
        "   verified = clear with the off-chain sorted order and claim (calldata included), on-chain = clear_onchain;"
        " lot auctions: finalise",
        f"   {'mechanism':<24}{'orders':>8}{'gas/order':>12}{'verified':>12}{'on-chain':>12}{'cheaper':>10}"
        f"{'verified/order':>16}",
    ]
    for r in rows:
        orders = f"{r.n_orders}*" if r.capped else str(r.n_orders)
        onchain = f"{r.clear_onchain_gas:>12,}" if r.clear_onchain_gas else f"{'n/a':>12}"
        cheaper = ("on-chain" if r.clear_onchain_gas <= r.clear_gas else "verified") if r.clear_onchain_gas else ""
        lines.append(f"   {r.mechanism:<24}{orders:>8}{r.submit_gas:>12,}{r.clear_gas:>12,}{onchain}{cheaper:>10}"
                     f"{r.clear_gas_per_order:>16,}")
    if any(r.capped for r in rows):
        lines.append("   * the largest book one interval holds, measured instead of a larger size asked for")
    lines.append("   Crossover (bisection): smallest book where verified clearing costs less gas than on-chain sorting")
    for c in crossovers:
        if c.at is None:
            lines.append(f"   {c.mechanism:<24}none: on-chain sorting is no dearer up to a full interval")
            continue
        below = (f"; at {c.below.n_orders}: verified {c.below.clear_gas:,}, on-chain {c.below.clear_onchain_gas:,}"
                 if c.below else "; already at the smallest book")
        lines.append(f"   {c.mechanism:<24}{c.n_orders:>4} orders: verified {c.at.clear_gas:,} < on-chain"
                     f" {c.at.clear_onchain_gas:,}{below}")
    return lines


def security_gas_section(rows: list[TxGas], commit: str) -> list[str]:
    """Rows of the section on the gas of issue 11's checks: live figures against the recorded pre-hardening ones."""
    lines = [
        "6. Gas of the security checks (issue 11) per transaction type: three scripted markets, now vs before the"
        f" hardening (commit {commit[:7]}, recorded in {BASELINE_FILE.name})",
        f"   {'scenario':<16}{'transaction':<24}{'now [gas]':>12}{'before [gas]':>14}{'now/before':>12}"
        f"{'difference [gas]':>18}",
    ]
    for r in rows:
        before = f"{r.pre_hardening_gas:>14,}" if r.pre_hardening_gas is not None else f"{'(new)':>14}"
        ratio = f"{r.ratio:>11.3f}x" if r.ratio is not None else f"{'':>12}"
        lines.append(f"   {r.scenario:<16}{r.tx_type:<24}{r.gas:>12,}{before}{ratio}{r.difference:>+18,}")
    return lines


def batching_gas_section(rows: list[BatchingGas]) -> list[str]:
    """Rows of the section on gas per order and per reading, one transaction each vs relayed in one batch."""
    lines = ["8. Gas per order and per meter reading of one interval: one transaction each vs EIP-712 signed and"
             " relayed in one transaction (submit_signed_orders, post_signed_readings) vs verified batch (orders"
             " with their clearing, clear_signed; order + clearing share)",
             f"   {'prosumers':>10}{'order [gas]':>14}{'batched':>10}{'ratio':>8}{'reading [gas]':>16}{'batched':>10}"
             f"{'ratio':>8}{'order+clearing':>16}{'batched':>10}{'verified':>10}{'ratio':>8}"]
    lines += [f"   {r.n:>10}{r.order_gas:>14,.0f}{r.batched_order_gas:>10,.0f}{r.batched_order_gas / r.order_gas:>7.2f}x"
              f"{r.reading_gas:>16,.0f}{r.batched_reading_gas:>10,.0f}{r.batched_reading_gas / r.reading_gas:>7.2f}x"
              f"{r.order_and_clearing_gas:>16,.0f}{r.batched_order_and_clearing_gas:>10,.0f}"
              f"{r.verified_order_and_clearing_gas:>10,.0f}"
              f"{r.verified_order_and_clearing_gas / r.order_and_clearing_gas:>7.2f}x"
              for r in rows]
    return lines


def ancillary_gas_section(gas: dict[str, dict[str, int]], number: int = 12) -> list[str]:
    """Rows of the section on the gas of each action of the reserve and load shed contracts."""
    lines = [f"{number}. Gas of the ancillary-services contracts (issue 15) per action, one scripted window or "
             "programme on a fresh chain", f"   {'contract':<20}{'action':<20}{'gas':>11}"]
    lines += [f"   {contract:<20}{action:<20}{used:>11,}" for contract, rows in gas.items()
              for action, used in rows.items()]
    return lines


def _progress(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def scaling(stamp: str) -> dict:
    """Run the scaling sweep, print its section, plot it next to the JSON copy; its machine-readable part."""
    sweep = Sweep(scaling_sweep(RUNS_ROOT / "scaling", variants=VARIANTS, progress=_progress))
    plot = plot_scaling(sweep, RUNS_ROOT / f"{stamp}-scaling.png")
    print("\n".join(scaling_section(sweep)) + "\n")
    print(f"scaling plot: {plot}")
    return {"points": [dataclasses.asdict(p) for p in sweep.points],
            "curves": {v: dataclasses.asdict(c) for v, c in sweep.curves.items()}}


def main(sections: list[str]) -> int:
    stamp = run_timestamp()
    print(f"gridledger bench {stamp}: Python {platform.python_version()}, {os.cpu_count()} CPUs, {platform.node()}")
    print("Each ratio compares with a baseline measured in this same run; absolute figures drift between machines.")
    if sections == ["scaling"]:
        _write(stamp, {"scaling": scaling(stamp)})
        return 0
    if sections:
        print(f"unknown section {' '.join(sections)!r}; allowed: scaling, or none for every section", file=sys.stderr)
        return 2
    print("running the reference study ...", file=sys.stderr, flush=True)
    study = run_study(REFERENCE_STUDY, RUNS_ROOT)
    print("running the ledger benchmark ...", file=sys.stderr, flush=True)
    ledger = [ledger_throughput(size, LEDGER_TRANSACTIONS // size, REPEATS) for size in LEDGER_BLOCK_SIZES]
    print("running the power-flow benchmark ...", file=sys.stderr, flush=True)
    powerflow = powerflow_step_time(repeats=REPEATS)
    print("running the gas report ...", file=sys.stderr, flush=True)
    gas = gas_table()
    gas_crossovers = [crossover(name) for name, m in MECHANISMS.items() if m.kind == "book"]
    print("running the per-feeder power-flow benchmark ...", file=sys.stderr, flush=True)
    feeders = feeder_step_times()
    print("running the security gas scenario ...", file=sys.stderr, flush=True)
    security_gas = security_gas_rows()
    print("running the batching gas scenario ...", file=sys.stderr, flush=True)
    batching = batching_gas()
    print("running the privacy gas scenarios ...", file=sys.stderr, flush=True)
    privacy = privacy_gas(PRIVACY_PROSUMERS)
    print("running the ancillary-services gas scenarios ...", file=sys.stderr, flush=True)
    ancillary = {"operating reserve": reserve_gas(), "load shed": load_shed_gas()}
    baseline_commit = pre_hardening_baseline()["commit"]
    print("running the federate start-up benchmark ...", file=sys.stderr, flush=True)
    startup = startup_costs(repeats=REPEATS)
    print("running the plain pandapower loop ...", file=sys.stderr, flush=True)
    loop = plain_loop(REFERENCE_STUDY)
    print("running the meter-fraud day (the auditor) ...", file=sys.stderr, flush=True)
    audit = audit_cost(study, RUNS_ROOT)
    print("running the kept chain and the live JSON-RPC day ...", file=sys.stderr, flush=True)
    chain_rpc = chain_rpc_cost(study, RUNS_ROOT, repeats=REPEATS)
    print("running weeks of the year study and the reference day checkpointed ...", file=sys.stderr, flush=True)
    long_run = long_run_cost(study, RUNS_ROOT)
    print()
    for rows in (study_table(study), ledger_table(ledger), powerflow_table(powerflow), gas_section(gas, gas_crossovers),
                 feeders_section(feeders), security_gas_section(security_gas, baseline_commit),
                 startup_section(startup, study), batching_gas_section(batching), plain_loop_section(loop, study),
                 audit_section(audit), privacy_gas_section(privacy, PRIVACY_PROSUMERS),
                 ancillary_gas_section(ancillary), chain_rpc_section(chain_rpc), long_run_section(long_run)):
        print("\n".join(rows) + "\n")
    _write(stamp, {
        "aims": {"study_wall_s": STUDY_AIM_S, "peak_rss_sum_mib": MEMORY_AIM_MIB,
                 "ledger_ours_over_baseline_min": LEDGER_AIM_RATIO,
                 "ledger_batched_over_baseline_min": BATCHED_AIM_RATIO,
                 "powerflow_ours_over_baseline_max": POWERFLOW_AIM_RATIO,
                 "study_over_plain_loop_max": PLAIN_LOOP_AIM_RATIO,
                 "live_rpc_over_reference_max": LIVE_AIM_RATIO,
                 "long_run_end_over_week_max": MEMORY_AIM_RATIO,
                 "checkpointed_over_reference_max": CHECKPOINT_AIM_RATIO},
        "study": {**dataclasses.asdict(study), "peak_rss_sum_mib": study.peak_rss_sum_mib},
        "ledger": [dataclasses.asdict(r) for r in ledger],
        "powerflow": dataclasses.asdict(powerflow),
        "gas": [dataclasses.asdict(r) for r in gas],
        "gas_crossover": [dataclasses.asdict(c) for c in gas_crossovers],
        "feeders": [dataclasses.asdict(r) for r in feeders],
        "batching_gas": [dataclasses.asdict(r) for r in batching],
        "privacy_gas": {"n_prosumers": PRIVACY_PROSUMERS, "rows": [dataclasses.asdict(r) for r in privacy],
                        "features": [{**dataclasses.asdict(c), "gas_per_interval": c.gas_per_interval}
                                     for c in feature_costs(privacy, PRIVACY_PROSUMERS)]},
        "ancillary_gas": ancillary,
        "chain_rpc": {**dataclasses.asdict(chain_rpc), "kept_ratio": chain_rpc.kept_ratio,
                      "live_ratio": chain_rpc.live_ratio},
        "security_gas": {"pre_hardening_commit": baseline_commit,
                         "rows": [{**dataclasses.asdict(r), "ratio": r.ratio, "difference": r.difference}
                                  for r in security_gas]},
        "startup": dataclasses.asdict(startup),
        "plain_loop": dataclasses.asdict(loop),
        "audit": {**dataclasses.asdict(audit), "per_interval_s": audit.per_interval_s,
                  "share_of_wall": audit.share_of_wall, "over_reference": audit.over_reference},
        "long_run": {**dataclasses.asdict(long_run), "checkpoint_ratio": long_run.checkpoint_ratio,
                     "end_over_week": {name: long_run.end_over_week(name) for name in long_run.rss_mib}},
        "scaling": scaling(stamp),
    })
    return 0


def _write(stamp: str, figures: dict) -> None:
    path = RUNS_ROOT / f"{stamp}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"timestamp": stamp, "python": platform.python_version(), "cpus": os.cpu_count(),
                                "host": platform.node(), **figures}, indent=2))
    print(f"machine-readable copy: {path}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
