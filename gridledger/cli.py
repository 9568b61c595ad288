"""The `gridledger` command: run, describe, validate, compare, sweep and regress studies; serve a run's chain.

Exit codes follow git/pytest: 0 success, 1 the run failed, 2 bad input.
Output is for people on a terminal; elsewhere (a pipe, a CI log) it is plain
text that never wraps, and ``--format json`` on the commands that print
tables (run, compare, regress) prints one JSON document on stdout instead,
the messages for people going to stderr.
"""

from __future__ import annotations

import argparse
import html
import json
import os
import re
import sys
from dataclasses import replace
from importlib.metadata import version
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from gridledger import compare, regress, sweep
from gridledger.compare import RunDirError, load_run
from gridledger.execute import RUN_FILE, execute
from gridledger.progress_view import ProgressView
from gridledger.grids.feeders import catalog
from gridledger.federation import federate_kind
from gridledger.roster import run_zones
from gridledger.interfaces import broker_port_of, core_init_string, federate_names
from gridledger.checkpoint import CheckpointError
from gridledger.launcher import Prepared, check, federate_command, prepare, reopen, require_local, runner_json
from gridledger.process import EXIT_BAD_INPUT, EXIT_FAILED, EXIT_OK
from gridledger.report import PLOTS_DIR, write_report
from gridledger.results import KPIS_FILE, RESULTS_FILE, collect_if_complete
from gridledger.run_secret import RUN_SECRET_ENV, RUN_SECRET_FILE_ENV, SecretError, choose_secret
from gridledger.schedule import checkpoint_times, stop_time_s
from gridledger.study import HOST_PATTERN, STUDY_FILE, Study, StudyError, load_study
from gridledger.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE

RUN_DIR_EXAMPLE = "runs/baran-wu-p2p/20240621T100000"
EXAMPLES = {
    "run": ["gridledger run studies/baran-wu-p2p.yaml",
            "openssl rand -hex 32 > ~/run.secret && gridledger run studies/baran-wu-p2p.yaml --secret-file ~/run.secret",
            "gridledger run studies/baran-wu-short.yaml --format json > run.json   # KPIs for programs"],
    "resume": [f"gridledger resume {RUN_DIR_EXAMPLE} --secret-file ~/run.secret   # after a crash, kill or Ctrl-C"],
    "runner": ["gridledger runner studies/baran-wu-p2p.yaml --secret-file ~/run.secret > runner.json "
               "&& helics run --path runner.json",
               f"gridledger report {RUN_DIR_EXAMPLE}   # then report.html and plots/"],
    "validate": ["gridledger validate studies/my-study.yaml"],
    "federate": [f"gridledger federate der {RUN_DIR_EXAMPLE} --broker 10.0.0.5 --interface 10.0.0.6 "
                 "--secret-file ~/run.secret"],
    "report": [f"gridledger report {RUN_DIR_EXAMPLE}"],
    "compare": [f"gridledger compare {RUN_DIR_EXAMPLE} runs/baran-wu-p2p/20240622T100000",
                "gridledger compare runs/baran-wu-p2p-sweep/20240621T100000/s*/baran-wu-p2p/* --format json   # sweep scenarios"],
    "sweep": ["gridledger sweep studies/baran-wu-p2p.yaml --param market.grid_fee_per_kwh=0.01,0.02 "
              "--param prosumers.pv.share=0.2,0.5,0.8"],
    "linkage": ["gridledger linkage runs/pseudonyms/20240621T100000"],
    "regress": ["gridledger regress            # rerun studies/*.yaml that have studies/golden/<name>/",
                "gridledger regress --update studies/baran-wu-short.yaml",
                "gridledger regress studies/baran-wu-short.yaml --format json"],
    "grids": ["gridledger grids list"],
    "chain": [f"gridledger chain serve {RUN_DIR_EXAMPLE}   # then web3.py: Web3(HTTPProvider('http://127.0.0.1:8545'))",
              f"gridledger chain serve {RUN_DIR_EXAMPLE} --host 0.0.0.0 --port 8600",
              "gridledger chain serve runs/mvlv-1000/20240621T100000 --zone z0   # a sharded run: one chain per zone"],
}
"""Examples shown by each command's --help."""
EXIT_CODES = "exit codes: 0 done; 2 bad input."
EXIT_CODES_RUN = """exit codes: 0 done; 1 a run failed, stalled or was stopped by Ctrl-C/SIGTERM
(the federates are stopped and write their parts; results, chain/ and run.json
are kept) or regressed; 2 bad input."""
EPILOG = f"""examples:
  gridledger grids list
  gridledger validate studies/my-study.yaml
  gridledger run studies/baran-wu-p2p.yaml
  gridledger COMMAND --help     # what COMMAND does, with examples

{EXIT_CODES_RUN}
"""
PLAIN_WIDTH = 10_000
"""Console width off a terminal: wide enough that no table or line is ever wrapped. [characters]"""


def _epilog(command: str) -> str:
    examples = "\n".join(f"  {line}" for line in EXAMPLES[command])
    codes = EXIT_CODES_RUN if command in ("run", "resume", "regress", "sweep") else EXIT_CODES
    return f"examples:\n{examples}\n\n{codes}\n"


def make_console(stderr: bool = False) -> Console:
    """A console on stdout or stderr: rich on a terminal; plain and never wrapped elsewhere (pipes, CI logs)."""
    stream = sys.stderr if stderr else sys.stdout
    return Console(stderr=stderr, width=None if stream.isatty() else PLAIN_WIDTH)


def _print_json(document: dict) -> None:
    print(json.dumps(document, indent=2, default=str))


def _span(seconds: int) -> str:
    """A duration for people: ``90 s``, ``15 min``, ``24 h``, ``3 d``."""
    if seconds % SECONDS_PER_DAY == 0 and seconds > SECONDS_PER_DAY:
        return f"{seconds // SECONDS_PER_DAY} d"
    for unit, size in (("h", SECONDS_PER_HOUR), ("min", SECONDS_PER_MINUTE)):
        if seconds % size == 0:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def kpi_table(kpis: dict) -> Table:
    """The scalar KPIs as a two-column table (per-prosumer values stay in kpis.json)."""
    table = Table(title=f"KPIs: {kpis.get('study', '')}", show_header=True)
    table.add_column("KPI")
    table.add_column("value", justify="right")
    for key, value in kpis.items():
        if not isinstance(value, dict):
            table.add_row(key, f"{value:,.6g}" if isinstance(value, float) else str(value))
    return table


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    prepared = prepare(args.study, args.runs, choose_secret(args.secret_file))
    console.print(f"run directory: {prepared.run_dir}", soft_wrap=True)
    if args.secret_file is None and RUN_SECRET_ENV not in os.environ:
        console.print("run secret: fresh and kept nowhere, so this run's keys, bids and chain cannot be repeated "
                      "(--secret-file PATH repeats a run)", soft_wrap=True, highlight=False)
    return _execute(prepared, args, console)


def cmd_resume(args: argparse.Namespace, console: Console) -> int:
    if args.secret_file is None and RUN_SECRET_ENV not in os.environ:
        raise SecretError(f"resume: the checkpoints open only with the run's secret: give --secret-file PATH, or set "
                          f"{RUN_SECRET_ENV}")
    if not (args.run_dir / STUDY_FILE).is_file():
        raise RunDirError(f"{args.run_dir}: not a run directory (no {STUDY_FILE})")
    prepared, number = reopen(args.run_dir, choose_secret(args.secret_file))
    at_s = checkpoint_times(prepared.study)[number - 1]
    console.print(f"resuming {prepared.run_dir} from checkpoint {number} at {at_s:g} s of "
                  f"{stop_time_s(prepared.study):g} s", soft_wrap=True, highlight=False)
    return _execute(prepared, args, console, number)


def _execute(prepared: Prepared, args: argparse.Namespace, console: Console, resume: int | None = None) -> int:
    """Run a prepared (or, with `resume`, reopened) run with progress bars, then print how it went."""
    view = ProgressView(stop_time_s(prepared.study), prepared.federates, console)
    with view.bars:
        done = execute(prepared, on_progress=view, resume=resume)
    outcome = done.outcome
    if outcome.interrupted:
        console.print(f"[red]run {outcome.reason}[/red]", highlight=False)
    if outcome.exit_code and not outcome.interrupted:
        console.print(f"[red]run failed:[/red] federate {outcome.failed}: {outcome.reason}", highlight=False)
    if args.format == "json":
        _print_json({"run_dir": prepared.run_dir, "exit_code": outcome.exit_code, "ended": outcome.ended,
                     "failed": outcome.failed, "reason": outcome.reason, "wall_time_s": done.record.wall_time_s,
                     "kpis": done.kpis, "results": prepared.run_dir / RESULTS_FILE, "report": done.report})
    if outcome.exit_code:
        console.print(f"partial results and logs kept in {prepared.run_dir}", soft_wrap=True)
        console.print(f"partial report: {done.report}", soft_wrap=True)
        return EXIT_FAILED
    if args.format != "json":
        console.print(kpi_table(done.kpis))
    console.print(f"wall time: {done.record.wall_time_s:.1f} s (run.json)")
    console.print(f"results: {prepared.run_dir / 'results.nc'}", soft_wrap=True)
    console.print(f"report: {done.report}", soft_wrap=True)
    return EXIT_OK


def cmd_runner(args: argparse.Namespace, console: Console) -> int:
    if args.secret_file is None and RUN_SECRET_ENV not in os.environ:
        raise SecretError(f"runner: the federates need a run secret: give --secret-file PATH, or set {RUN_SECRET_ENV} "
                          "(64 hex digits) here and for `helics run`")
    prepared = prepare(args.study, args.runs, choose_secret(args.secret_file), all_here=False)
    print(json.dumps(runner_json(prepared, args.secret_file), indent=2))
    print(f"run directory: {prepared.run_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_federate(args: argparse.Namespace, console: Console) -> int:
    """Become one federate of a prepared run (exec), connected to the broker `--broker` names."""
    run_dir = args.run_dir.resolve()
    study = load_study(run_dir / STUDY_FILE)
    running = federate_names(study, run_zones(run_dir))
    if args.name not in running:
        raise StudyError(f"federate {args.name!r} does not run in {run_dir}; allowed: {', '.join(running)}")
    env = dict(os.environ)
    if args.secret_file is not None:
        env[RUN_SECRET_FILE_ENV] = str(args.secret_file.resolve())
    elif RUN_SECRET_ENV not in env:
        raise SecretError(f"federate: give --secret-file PATH or set {RUN_SECRET_ENV}: the run's secret, "
                          "the same for every federate of the run")
    config_path = run_dir / "helics" / f"{args.name}.json"
    config = json.loads(config_path.read_text())
    if args.broker or args.interface:
        if args.interface and not re.fullmatch(HOST_PATTERN, args.interface):
            raise StudyError(f"--interface {args.interface!r}: expected an IPv4 address or host name")
        address, port = _broker_option(args.broker, study, config["core_init_string"])
        config["core_init_string"] = core_init_string(study.helics.core_type, address, port,
                                                      args.interface or study.helics.host_of(federate_kind(args.name)))
        config_path.write_text(json.dumps(config, indent=2))
    command = federate_command(args.name, run_dir)
    sys.stdout.flush()
    os.execve(command[0], command, env)


def _broker_option(text: str | None, study: Study, current: str) -> tuple[str, int]:
    """(address, port) from ``--broker ADDRESS[:PORT]``; the port the run was prepared with if none is given."""
    prepared_port = broker_port_of(current)
    if text is None:
        return study.helics.broker_address, prepared_port
    address, _, port = text.partition(":")
    if not re.fullmatch(HOST_PATTERN, address) or (port and not (port.isdigit() and 1024 <= int(port) <= 65535)):
        raise StudyError(f"--broker {text!r}: expected ADDRESS or ADDRESS:PORT, an IPv4 address or host name "
                         "and a port in 1024-65535")
    return address, int(port) if port else prepared_port


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    """The checks `run` makes before it starts anything (`gridledger.launcher.check`), and nothing more."""
    checked = check(args.study, all_here=False)
    study = checked.study
    try:
        require_local(study, args.study)
    except StudyError as exc:
        console.print(f"note: `gridledger run` would refuse this study on this machine: {exc}", soft_wrap=True,
                      highlight=False, markup=False)
    console.print(f"{args.study}: valid study {study.name!r}: feeder {study.grid.feeder}, "
                  f"{len(checked.scenario.prosumers)} prosumers, {study.n_intervals} market intervals of "
                  f"{_span(study.market_interval_s)} ({_span(study.duration_s)}), {study.market.mechanism}",
                  soft_wrap=True, highlight=False, markup=False)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    """report.html and plots/ of a run directory again, e.g. one a `helics run` left without them."""
    run_dir = args.run_dir
    if not (run_dir / STUDY_FILE).exists():
        raise RunDirError(f"{run_dir}: not a run directory ({STUDY_FILE} missing)")
    if not (run_dir / RESULTS_FILE).exists() and not collect_if_complete(run_dir):
        console.print(f"note: {run_dir} has no {RESULTS_FILE} and not every federate has written its part "
                      "(still running, or failed): the report shows no results", soft_wrap=True, highlight=False)
    record = json.loads((run_dir / RUN_FILE).read_text()) if (run_dir / RUN_FILE).exists() else None
    console.print(f"report: {write_report(run_dir, record)}", soft_wrap=True, highlight=False)
    console.print(f"plots: {run_dir / PLOTS_DIR}", soft_wrap=True, highlight=False)
    return EXIT_OK


def cmd_compare(args: argparse.Namespace, console: Console) -> int:
    if len(args.run_dirs) < 2:
        raise RunDirError(f"compare needs at least two run directories, got {len(args.run_dirs)}")
    runs = [load_run(path) for path in args.run_dirs]
    labels = compare.run_labels(runs, [sweep.scenario_of(run.run_dir) for run in runs])
    runs = [replace(run, label=label) for run, label in zip(runs, labels)]
    warnings = [w for w in (compare.horizon_warning(runs),) if w]
    preamble = "".join(f'<p class="failed">Warning: {html.escape(w)}</p>' for w in warnings)
    out = compare.write_compare(runs, args.out, preamble=preamble)
    for warning in warnings:
        make_console(stderr=True).print(f"warning: {warning}", soft_wrap=True, highlight=False, markup=False)
    if args.format == "json":
        _print_json(compare.as_json(runs, warnings, out))
        return EXIT_OK
    console.print(compare.rich_table(runs))
    console.print(f"comparison: {out}", soft_wrap=True)
    return EXIT_OK


def cmd_linkage(args: argparse.Namespace, console: Console) -> int:
    from gridledger.agents.linkage_study import measure
    from gridledger.report import LINKAGE_FILE, write_report

    run_dir = args.run_dir
    for needed in (run_dir / "chain" / "events.jsonl", run_dir / RESULTS_FILE):
        if not needed.exists():
            raise RunDirError(f"{run_dir}: no {needed.relative_to(run_dir)}; linkage needs a finished run directory")
    figures = measure(run_dir, args.seed)
    (run_dir / LINKAGE_FILE).write_text(json.dumps({"caption": figures.caption(), "rows": figures.rows()}, indent=1))
    console.print(figures.table(), soft_wrap=True, highlight=False, markup=False)
    record = json.loads((run_dir / RUN_FILE).read_text()) if (run_dir / RUN_FILE).exists() else None
    console.print(f"report: {write_report(run_dir, record)}", soft_wrap=True)
    return EXIT_OK


HEADLINE_KPIS = ("energy_traded_kwh", "saving_total_token", "self_sufficiency", "min_vm_pu", "max_vm_pu", "gas_used")


def _sweep_table(scenarios: list[sweep.Scenario], ended: dict[str, dict]) -> Table:
    table = Table(title="sweep")
    for column in ("scenario", *scenarios[0].values, "status", *HEADLINE_KPIS):
        table.add_column(column, justify="left" if column == "scenario" else "right", overflow="fold")
    for scenario in scenarios:
        result = ended[scenario.id]
        if result["exit_code"]:
            kpis, status = {}, f"failed: {result['failed']}"
        else:
            kpis, status = json.loads((Path(result["run_dir"]) / KPIS_FILE).read_text()), "finished"
        table.add_row(scenario.id, *(str(v) for v in scenario.values.values()), status,
                      *(compare.shown(kpis[k]) if k in kpis else "" for k in HEADLINE_KPIS))
    return table


def cmd_sweep(args: argparse.Namespace, console: Console) -> int:
    secret = choose_secret(args.secret_file)
    scenarios = sweep.plan(args.study, [sweep.parse_param(text) for text in args.param or []])
    directory = sweep.sweep_dir(scenarios[0].study, args.runs)
    console.print(f"sweep directory: {directory}", soft_wrap=True)
    where = f"the Dask cluster at {args.scheduler}" if args.scheduler else f"a local Dask cluster of {args.workers} workers"
    console.print(f"{len(scenarios)} scenarios on {where}")
    bar = Progress(TextColumn("scenarios"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                   console=console, disable=not console.is_terminal)

    def done(scenario: sweep.Scenario, result: dict) -> None:
        bar.advance(task)
        state = "finished" if result["exit_code"] == 0 else f"failed ({result['failed']})"
        bar.console.print(f"{scenario.id} {scenario.description}: {state}", highlight=False)

    with bar, sweep.dask_client(args.scheduler, args.workers) as client:
        task = bar.add_task("scenarios", total=len(scenarios))
        ended = sweep.run_all(client, scenarios, directory, secret, done)
    report = sweep.write_outputs(directory, args.study, scenarios, ended)
    console.print(_sweep_table(scenarios, ended))
    console.print(f"combined results: {directory / sweep.DATASET_FILE}" if report else "no scenario finished",
                  soft_wrap=True)
    if report:
        console.print(f"comparison: {report}", soft_wrap=True)
    return EXIT_FAILED if any(r["exit_code"] for r in ended.values()) else EXIT_OK


def _regress_table(study: str, moved: list[regress.Finding]) -> Table:
    table = Table(title=f"{study}: what moved")
    for column in ("value", "golden", "current", "Δ", "tolerance", "status"):
        table.add_column(column, no_wrap=column in ("value", "status"), overflow="fold")
    for f in moved:
        table.add_row(f.name, str(f.golden), str(f.current), compare.difference(f.current, f.golden),
                      str(f.tolerance), f.status, style="red" if f.fails else None)
    return table


def cmd_regress(args: argparse.Namespace, console: Console) -> int:
    paths = args.studies or regress.studies_with_golden(args.studies_dir)
    if not paths:
        raise regress.GoldenError(f"{args.studies_dir}: no study has golden results in "
                                  f"{args.studies_dir / regress.GOLDEN_DIR}/<study>/")
    targets = []
    for path in paths:
        study = load_study(path)
        golden = regress.golden_dir(path, study)
        if not args.update and not (golden / KPIS_FILE).exists():
            raise regress.GoldenError(f"{path}: no golden results in {golden}; create them with "
                                      f"`gridledger regress --update {path}`")
        targets.append((path, study, golden))
    regressed = False
    document = {"studies": [], "regression": False}
    for path, study, golden in targets:
        prepared = prepare(path, args.runs, regress.golden_secret(path))
        console.print(f"{path}: running in {prepared.run_dir}", soft_wrap=True, highlight=False)
        view = ProgressView(stop_time_s(prepared.study), prepared.federates, console)
        with view.bars:
            done = execute(prepared, on_progress=view)
        entry = {"study": path, "name": study.name, "run_dir": done.run_dir, "exit_code": done.outcome.exit_code,
                 "ended": done.outcome.ended}
        document["studies"].append(entry)
        if done.outcome.interrupted:
            console.print(f"[red]{path}: run {done.outcome.reason}[/red]; the remaining studies are not run",
                          highlight=False)
            if args.format == "json":
                _print_json(document | {"regression": True})
            return EXIT_FAILED
        if done.outcome.exit_code:
            console.print(f"[red]{path}: run failed:[/red] federate {done.outcome.failed}: {done.outcome.reason}",
                          highlight=False)
            regressed = True
        elif args.update:
            regress.write_golden(done.run_dir, golden)
            entry["golden_updated"] = golden
            console.print(f"{path}: golden results updated in {golden}", soft_wrap=True, highlight=False)
        else:
            findings = regress.check(done.run_dir, golden)
            failing = sum(f.fails for f in findings)
            regressed = regressed or failing > 0
            moved = [f for f in findings if f.status != "ok"]
            entry |= {"compared": len(findings), "unchanged": len(findings) - len(moved), "moved": len(moved),
                      "regressed": failing, "findings": [regress.as_dict(f) for f in moved]}
            if moved and args.format != "json":
                console.print(_regress_table(study.name, moved))
            console.print(f"{path}: {len(findings)} values compared: {len(findings) - len(moved)} unchanged, "
                          f"{len(moved)} moved, {failing} regressed", highlight=False)
    if not args.update:
        console.print("[red]regression[/red]" if regressed else "no regression", highlight=False)
    if args.format == "json":
        _print_json(document | {"regression": regressed})
    return EXIT_FAILED if regressed else EXIT_OK


def cmd_grids_list(args: argparse.Namespace, console: Console) -> int:
    table = Table(title="feeder catalog (grid.feeder)")
    for column in ("feeder", "phases", "profiles", "buses", "lines", "loads", "trafos"):
        table.add_column(column, justify="right" if column in ("buses", "lines", "loads", "trafos") else "left",
                         no_wrap=True)
    infos = catalog()
    for info in infos:
        table.add_row(info.name, "3-phase" if info.unbalanced else "balanced",
                      "own yearly" if info.has_profiles else "shipped", str(info.n_bus), str(info.n_line),
                      str(info.n_load), str(info.n_trafo))
    console.print(table)
    for info in infos:
        console.print(f"{info.name}: {info.description}", soft_wrap=True, highlight=False)
    console.print("Any SimBench LV/MV code works too (e.g. 1-LV-semiurb4--0-sw), and a pandapower JSON file path.")
    return EXIT_OK


def cmd_chain_serve(args: argparse.Namespace, console: Console) -> int:
    """Serve a finished run's kept chain over read-only Ethereum JSON-RPC until Ctrl-C."""
    from gridledger.chain_rpc import serve_finished
    from gridledger.contracts.chain import KeptChainError

    run_dir = args.run_dir
    if not (run_dir / STUDY_FILE).exists():
        raise RunDirError(f"{run_dir}: not a run directory ({STUDY_FILE} missing)")
    if not re.fullmatch(HOST_PATTERN, args.host):
        raise RunDirError(f"--host {args.host!r}: expected an IPv4 address or host name")
    sharding = load_study(run_dir / STUDY_FILE).market.sharding
    zones = run_zones(run_dir) if sharding != "none" else ()
    if zones and args.zone not in zones:
        raise RunDirError(f"{run_dir}: market.sharding {sharding!r} keeps one chain per zone; give --zone, one of "
                          f"{', '.join(zones)}" + (f" (not {args.zone!r})" if args.zone else ""))
    if not zones and args.zone is not None:
        raise RunDirError(f"--zone {args.zone!r}: {run_dir} runs one ledger, not one per zone; leave --zone out")
    try:
        serve_finished(run_dir, args.host, args.port, args.zone,
                       announce=lambda text: console.print(text, soft_wrap=True, highlight=False, markup=False))
    except KeptChainError as exc:
        raise RunDirError(str(exc)) from None
    except OSError as exc:
        raise RunDirError(f"--host {args.host} --port {args.port}: cannot listen there "
                          f"({exc.strerror or exc})") from None
    return EXIT_OK


def _port(text: str) -> int:
    """A TCP port from the command line."""
    if not (text.isdigit() and 1 <= int(text) <= 65535):
        raise argparse.ArgumentTypeError(f"{text!r}: expected a port in 1-65535")
    return int(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridledger", description="Co-simulate a feeder, a ledger and DER agents over HELICS.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"gridledger {version('gridledger')}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, func, text in (
        ("run", cmd_run, "run a study: broker + one process per federate"),
        ("runner", cmd_runner, "prepare a run and print a helics-cli runner JSON"),
        ("validate", cmd_validate, "check a study file as `run` does before it starts anything, and exit"),
    ):
        cmd = _command(sub, name, text)
        cmd.add_argument("study", type=Path, help="study YAML file")
        if name != "validate":
            cmd.add_argument("--runs", type=Path, default=Path("runs"), help="where run directories go (default: runs)")
            _add_secret_file(cmd)
        if name == "run":
            _add_format(cmd, "the KPIs")
        cmd.set_defaults(func=func)
    cmd = _command(sub, "resume", "go on with a stopped, killed or crashed run from its last checkpoint",
                   "go on with a stopped, killed or crashed run from its last complete checkpoint (checkpoint.every_s "
                   "in the study, weekly by default); results and chain are those of an uninterrupted run")
    cmd.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the run directory of the stopped run")
    _add_secret_file(cmd)
    _add_format(cmd, "the KPIs")
    cmd.set_defaults(func=cmd_resume)
    cmd = _command(sub, "federate", "start one federate of a prepared run (on its own host)",
                   "start one federate of a prepared run (`gridledger runner`), e.g. on another host that shares "
                   "the run directory")
    cmd.add_argument("name", metavar="NAME", help="federate: grid, ledger, der or operator")
    cmd.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="the prepared run directory")
    cmd.add_argument("--broker", metavar="ADDRESS[:PORT]",
                     help="the broker to join (default: helics.broker_address and the run's port)")
    cmd.add_argument("--interface", metavar="ADDRESS",
                     help="this host's address the broker reaches it at (default: helics.hosts.NAME)")
    _add_secret_file(cmd)
    cmd.set_defaults(func=cmd_federate)
    _add_planner_commands(sub)
    grids = _command(sub, "grids", "feeder catalog")
    grids_sub = grids.add_subparsers(dest="grids_command", required=True)
    grids_sub.add_parser("list", help="list the feeders grid.feeder accepts").set_defaults(func=cmd_grids_list)
    chain = _command(sub, "chain", "a finished run's chain for Ethereum tools")
    chain_sub = chain.add_subparsers(dest="chain_command", required=True)
    cmd = chain_sub.add_parser(
        "serve", help="serve a run's chain over read-only Ethereum JSON-RPC (web3.py, ethers, cast)",
        description="serve the chain a finished run kept (RUN_DIR/chaindb) over read-only Ethereum JSON-RPC until "
                    "Ctrl-C; sending and mining methods answer an error. The contracts' addresses and ABIs are in "
                    "RUN_DIR/deployments.json.",
        epilog=_epilog("chain"), formatter_class=argparse.RawDescriptionHelpFormatter)
    cmd.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run directory")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    cmd.add_argument("--port", type=_port, default=8545, help="port to listen on (default: 8545)")
    cmd.add_argument("--zone", metavar="ZONE", help="with market.sharding per-zone: whose zone's chain to serve")
    cmd.set_defaults(func=cmd_chain_serve)
    return parser


def _add_secret_file(cmd: argparse.ArgumentParser) -> None:
    cmd.add_argument("--secret-file", type=Path, metavar="PATH",
                     help=f"file holding the run secret as 64 hex digits (default: ${RUN_SECRET_ENV}, else a fresh "
                          "random secret: keys, salts and chain id differ and the run cannot be repeated)")


def _command(sub, name: str, text: str, description: str | None = None) -> argparse.ArgumentParser:
    """A subcommand whose --help ends with its own examples and exit codes."""
    return sub.add_parser(name, help=text, description=description or text, epilog=_epilog(name),
                          formatter_class=argparse.RawDescriptionHelpFormatter)


def _add_format(cmd: argparse.ArgumentParser, what: str) -> None:
    cmd.add_argument("--format", choices=("table", "json"), default="table",
                     help=f"print {what} as a table (default) or as one JSON document on stdout, messages on stderr")


def _add_planner_commands(sub) -> None:
    def add(name: str, func, text: str) -> argparse.ArgumentParser:
        cmd = _command(sub, name, text)
        cmd.set_defaults(func=func)
        return cmd

    cmd = add("report", cmd_report, "write report.html and plots/ of a run directory again (e.g. after `helics run`)")
    cmd.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a run directory (gridledger run or runner)")

    cmd = add("compare", cmd_compare, "compare finished runs: KPI table with differences, overlay plots")
    cmd.add_argument("run_dirs", type=Path, nargs="+", metavar="RUN_DIR",
                     help="run directories; the first is the reference. Runs are labelled by what differs "
                          "between them: swept values, study names, study fields, else timestamps")
    cmd.add_argument("--out", type=Path, default=Path(compare.COMPARE_FILE), help="HTML file to write (default: compare.html)")
    _add_format(cmd, "the comparison")

    cmd = add("sweep", cmd_sweep, "run a study over a grid of field values on Dask, then compare the scenarios")
    cmd.add_argument("study", type=Path, help="study YAML file")
    cmd.add_argument("--param", action="append", metavar="PATH=V1,V2",
                     help="dotted study field and its values; repeat for a grid (cartesian product)")
    cmd.add_argument("--runs", type=Path, default=Path("runs"), help="where the sweep directory goes (default: runs)")
    cmd.add_argument("--scheduler", metavar="ADDRESS", help="Dask scheduler of an existing cluster (default: a LocalCluster)")
    cmd.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                     help="workers of the LocalCluster (default: one per CPU)")
    _add_secret_file(cmd)

    cmd = add("linkage", cmd_linkage, "measure what a run's chain reveals: an observer links households with fixed "
                                       "addresses and with per-interval pseudonyms (docs/linkage.md)")
    cmd.add_argument("run_dir", type=Path, metavar="RUN_DIR", help="a finished run directory")
    cmd.add_argument("--seed", type=int, default=0, help="seed of the pseudonyms (default: 0)")

    cmd = add("regress", cmd_regress, "rerun reference studies and compare them with their golden results")
    cmd.add_argument("studies", type=Path, nargs="*", metavar="STUDY",
                     help="study files (default: every study in --studies-dir that has golden results)")
    cmd.add_argument("--studies-dir", type=Path, default=Path("studies"), help="where studies live (default: studies)")
    cmd.add_argument("--runs", type=Path, default=Path("runs"), help="where run directories go (default: runs)")
    cmd.add_argument("--update", action="store_true", help="rewrite the golden results from these runs")
    _add_format(cmd, "what moved")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return EXIT_OK
    console = make_console(stderr=args.command == "runner" or getattr(args, "format", "table") == "json")
    try:
        return args.func(args, console)
    except (StudyError, RunDirError, regress.GoldenError, CheckpointError) as exc:
        make_console(stderr=True).print(f"error: {exc}", soft_wrap=True, highlight=False, markup=False)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
