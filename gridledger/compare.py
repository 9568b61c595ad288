"""Compare runs: KPIs side by side with differences to the first run, overlay plots, compare.html.

The first run is the reference; every other run's numeric KPIs get a
difference column (run minus reference). `gridledger compare` and
`gridledger sweep` both write their comparison through `write_compare`.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr
from matplotlib.figure import Figure
from rich.table import Table

from gridledger.execute import RUN_FILE
from gridledger.kpis import DESCRIPTIONS, by_zone, market_cost, over_zones
from gridledger.plots import held, new_figure, png_bytes, time_axis
from gridledger.report import figure, ordered, page, table, text_of
from gridledger.results import KPIS_FILE, RESULTS_FILE
from gridledger.study import STUDY_FILE, Study, load_study
from gridledger.units import WH_PER_KWH

COMPARE_FILE = "compare.html"
WALL_TIME = "wall_time_s (run.json)"
MISSING = "—"


class RunDirError(ValueError):
    """A run directory that cannot be compared; the message names it and says why."""


@dataclass(frozen=True)
class Run:
    """One finished run, loaded for comparison."""

    label: str
    run_dir: Path
    study: Study
    kpis: dict
    ds: xr.Dataset


def load_run(run_dir: Path, label: str | None = None) -> Run:
    """Load a complete run; raise `RunDirError` for a missing, unfinished or failed run directory."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise RunDirError(f"{run_dir}: no such run directory")
    kpis_path = run_dir / KPIS_FILE
    if not kpis_path.exists() or not (run_dir / RESULTS_FILE).exists():
        raise RunDirError(f"{run_dir}: not a run directory with results ({KPIS_FILE} and {RESULTS_FILE} missing)")
    kpis = json.loads(kpis_path.read_text())
    if kpis.get("complete") is False:
        raise RunDirError(f"{run_dir}: the run did not finish; its results are partial")
    record_path = run_dir / RUN_FILE
    if record_path.exists():
        kpis[WALL_TIME] = json.loads(record_path.read_text())["wall_time_s"]
    with xr.open_dataset(run_dir / RESULTS_FILE, engine="h5netcdf") as ds:
        loaded = ds.load()
    return Run(label or f"{run_dir.parent.name}/{run_dir.name}", run_dir, load_study(run_dir / STUDY_FILE),
               kpis, loaded)


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def difference(value, reference) -> str:
    """Run minus reference, with the relative change; blank when equal, "changed" for non-numbers."""
    if value == reference:
        return ""
    if not (_is_number(value) and _is_number(reference)):
        return "changed"
    delta = value - reference
    relative = f" ({delta / abs(reference):+.1%})" if reference else ""
    return f"{'+' if delta > 0 else '-'}{shown(abs(delta))}{relative}"


def kpi_rows(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """Per scalar KPI: its name and the cells value, then (value, difference) for each further run."""
    names = ordered({k: v for run in runs for k, v in run.kpis.items() if not isinstance(v, dict)})
    reference = runs[0].kpis
    rows = []
    for name in names:
        cells = [shown(reference[name]) if name in reference else MISSING]
        for run in runs[1:]:
            if name in run.kpis:
                value = run.kpis[name]
                cells += [shown(value), difference(value, reference[name]) if name in reference else ""]
            else:
                cells += [MISSING, ""]
        rows.append((name, cells))
    return rows


def shown(value) -> str:
    """Numbers with thousands separators and the KPIs' 1e-6 resolution, other values as in kpis.json."""
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"{value:,}" if _is_number(value) else text_of(value)


def _header(runs: list[Run]) -> list[str]:
    header = ["KPI", runs[0].label]
    for run in runs[1:]:
        header += [run.label, f"Δ {run.label}"]
    return header


def rich_table(runs: list[Run]) -> Table:
    """The comparison as a terminal table."""
    result = Table(title=f"KPIs compared with {runs[0].label}")
    for i, column in enumerate(_header(runs)):
        if i == 0:
            result.add_column(column, no_wrap=True)
        else:
            result.add_column(column, justify="right", overflow="fold")
    for name, cells in kpi_rows(runs):
        result.add_row(name, *cells)
    return result


def _overlay(title: str, ylabel: str) -> tuple[Figure, object]:
    fig, ax = new_figure()
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    return fig, ax


def voltage_range(runs: list[Run]) -> Figure:
    """Lowest (solid) and highest (dashed) bus voltage per step, per run."""
    fig, ax = _overlay("Voltage range over the feeder", "voltage magnitude [pu]")
    for i, run in enumerate(runs):
        color = f"C{i % 10}"
        ax.plot(run.ds.time.values, run.ds.vm_pu.min("bus").values, color=color, label=run.label)
        ax.plot(run.ds.time.values, run.ds.vm_pu.max("bus").values, color=color, ls="--")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def substation_import(runs: list[Run]) -> Figure:
    """Substation import per step, per run."""
    fig, ax = _overlay("Substation import", "active power [MW] (positive = import)")
    for run in runs:
        ax.step(*held(run.ds.time.values, run.ds.substation_p_mw.values, run.study.power_flow_step_s),
                where="post", label=run.label)
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def clearing_price(runs: list[Run]) -> Figure:
    """Clearing price per interval, per run (intervals without trade left blank; a sharded run's per zone)."""
    fig, ax = _overlay("Clearing price", "clearing price [token/kWh]")
    for run in runs:
        price = run.ds.clearing_price_per_kwh.where(run.ds.cleared_volume_wh > 0)
        for zone, zone_price in by_zone(price):
            ax.step(*held(run.ds.interval.values, zone_price.values, run.study.market_interval_s), where="post",
                    label=run.label if zone is None else f"{run.label}, zone {zone}")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def cleared_volume(runs: list[Run]) -> Figure:
    """Energy matched peer to peer per interval, per run (a sharded run's summed over its zones)."""
    fig, ax = _overlay("Cleared volume", "cleared volume [kWh]")
    for run in runs:
        ax.step(*held(run.ds.interval.values, over_zones(run.ds.cleared_volume_wh).values / WH_PER_KWH,
                      run.study.market_interval_s), where="post", label=run.label)
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def prosumer_cost(runs: list[Run]) -> Figure:
    """Cumulative distribution of prosumers' net cost with the market, per run."""
    fig, ax = _overlay("Prosumer net cost", "share of prosumers [1]")
    for run in runs:
        cost = np.sort(market_cost(run.ds).values)
        ax.step(cost, np.arange(1, cost.size + 1) / cost.size, where="post", label=run.label)
    ax.set_xlabel("net cost over the run [token] (positive = pays)")
    ax.legend(fontsize="small")
    return fig


OVERLAYS = (voltage_range, substation_import, clearing_price, cleared_volume, prosumer_cost)
"""Overlay plots of compare.html, in page order."""


def write_compare(runs: list[Run], path: Path, title: str | None = None, preamble: str = "") -> Path:
    """Write compare.html: KPI table with differences, then the overlay plots; `preamble` is HTML put first."""
    rows = [({"data-kpi": name, "title": DESCRIPTIONS.get(name, "")}, [name, *cells]) for name, cells in kpi_rows(runs)]
    sections = [preamble, "<h2>KPIs</h2>",
                (f"<p>Differences are each run minus the reference run {html.escape(runs[0].label)}; "
                 "hover over a KPI for its meaning.</p>"),
                table(_header(runs), rows, "kpis"),
                "<h2>Runs</h2>",
                table(["run", "directory"], [({"data-run": r.label}, [r.label, str(r.run_dir)]) for r in runs], "runs"),
                "<h2>Plots</h2>"]
    sections += [figure(plot.__name__, png_bytes(plot(runs)), plot.__doc__.strip().splitlines()[0])
                 for plot in OVERLAYS]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page(title or f"gridledger compare: {', '.join(r.label for r in runs)}", sections))
    return path
