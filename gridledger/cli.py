"""The `gridledger` command: run a study, describe it for helics-cli, validate it.

Exit codes follow git/pytest: 0 success, 1 the run failed, 2 bad input.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from gridledger.interfaces import FEDERATES
from gridledger.launcher import Prepared, launch, prepare, runner_json
from gridledger.results import collect
from gridledger.schedule import stop_time_s
from gridledger.study import StudyError, load_study

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2

EPILOG = """examples:
  gridledger run studies/baran-wu-p2p.yaml
  gridledger runner studies/baran-wu-p2p.yaml > runner.json && helics run --path runner.json
  gridledger validate studies/my-study.yaml
"""


def _clock(seconds: float) -> str:
    seconds = max(0, int(seconds))
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"


class _ProgressView:
    """Simulated time reached per federate: bars on a terminal, a line per 10 % elsewhere."""

    def __init__(self, prepared: Prepared, console: Console):
        self.stop_s = stop_time_s(prepared.study)
        self.console = console
        self.bars = Progress(TextColumn("{task.fields[name]:>6}"), BarColumn(),
                             TextColumn("{task.fields[clock]} {task.fields[state]}"),
                             console=console, disable=not console.is_terminal)
        self.tasks = {n: self.bars.add_task(n, total=self.stop_s, name=n, clock="00:00", state="starting")
                      for n in FEDERATES}
        self.reported_decile = -1

    def __call__(self, records: dict[str, dict]) -> None:
        for name, record in records.items():
            if name in self.tasks:
                self.bars.update(self.tasks[name], completed=record["time_s"],
                                 clock=_clock(record["time_s"]), state=record["state"])
        if not self.console.is_terminal and len(records) == len(FEDERATES):
            slowest = min(r["time_s"] for r in records.values())
            decile = int(10 * slowest / self.stop_s)
            if decile > self.reported_decile:
                self.reported_decile = decile
                self.console.print("progress: " + ", ".join(
                    f"{n} {_clock(r['time_s'])}" for n, r in sorted(records.items())))


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
    prepared = prepare(args.study, args.runs)
    console.print(f"run directory: {prepared.run_dir}", soft_wrap=True)
    view = _ProgressView(prepared, console)
    with view.bars:
        outcome = launch(prepared, on_progress=view)
    kpis = collect(prepared.run_dir, prepared.study, FEDERATES)
    if outcome.exit_code:
        console.print(f"[red]run failed:[/red] federate {outcome.failed}: {outcome.reason}", highlight=False)
        console.print(f"partial results and logs kept in {prepared.run_dir}", soft_wrap=True)
        return EXIT_FAILED
    console.print(kpi_table(kpis))
    console.print(f"results: {prepared.run_dir / 'results.nc'}", soft_wrap=True)
    return EXIT_OK


def cmd_runner(args: argparse.Namespace, console: Console) -> int:
    prepared = prepare(args.study, args.runs)
    print(json.dumps(runner_json(prepared), indent=2))
    print(f"run directory: {prepared.run_dir}", file=sys.stderr)
    return EXIT_OK


def cmd_validate(args: argparse.Namespace, console: Console) -> int:
    study = load_study(args.study)
    console.print(f"{args.study}: valid study {study.name!r} "
                  f"({study.n_steps} power-flow steps, {study.n_intervals} market intervals)")
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gridledger", description="Co-simulate a feeder, a ledger and DER agents over HELICS.",
        epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    for name, func, text in (
        ("run", cmd_run, "run a study: broker + one process per federate"),
        ("runner", cmd_runner, "prepare a run and print a helics-cli runner JSON"),
        ("validate", cmd_validate, "check a study file and exit"),
    ):
        cmd = sub.add_parser(name, help=text, description=text, epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
        cmd.add_argument("study", type=Path, help="study YAML file")
        if name != "validate":
            cmd.add_argument("--runs", type=Path, default=Path("runs"), help="where run directories go (default: runs)")
        cmd.set_defaults(func=func)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console(stderr=args.command == "runner")
    try:
        return args.func(args, console)
    except StudyError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", highlight=False, markup=False)
        return EXIT_BAD_INPUT


if __name__ == "__main__":
    sys.exit(main())
