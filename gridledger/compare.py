"""Compare runs: KPIs side by side with differences to the first run, overlay plots, compare.html.

The first run is the reference; every other run's numeric KPIs get a
difference column (run minus reference). `gridledger compare` and
`gridledger sweep` both write their comparison through `write_compare`.
Runs are labelled by what differs between them (`run_labels`), and runs
over different horizons are flagged (`horizon_warning`): their totals do
not compare.
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
from gridledger.kpis import DESCRIPTIONS, NOT_RATED, by_zone, is_not_rated, market_cost, over_zones
from gridledger.plots import held, new_figure, png_bytes, time_axis
from gridledger.report import PER_PROSUMER, figure, flatten, ordered, page, table, text_of
from gridledger.results import KPIS_FILE, RESULTS_FILE
from gridledger.study import STUDY_FILE, Study, load_study
from gridledger.units import SECONDS_PER_HOUR, WH_PER_KWH

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
    share = delta / abs(reference) if reference else None
    relative = "" if share is None else f" ({share:+.1%})" if abs(share) >= 0.0005 else f" ({share * 100:+.2g}%)"
    size = shown(abs(delta))
    # Below the KPIs' 1e-6 resolution the difference still shows, in significant digits, never as "-0".
    return f"{'+' if delta > 0 else '-'}{size if size != '0' else f'{abs(delta):.3g}'}{relative}"


AVOIDED_COST = "ancillary.cost_per_avoided_kwh_token"
"""What a run's operator paid for reserve and load shed beyond the reference run's, per kWh of unserved energy it
avoided against the reference (``ancillary`` runs against one without, `gridledger.study_ancillary`). [token/kWh]"""


def _ancillary_paid_token(kpis: dict) -> float:
    """What the operator paid for reserve and load shed over the run, 0 without ``ancillary``. [token]"""
    block = kpis.get("ancillary") or {}
    return sum(part.get("paid_token", 0.0) for part in block.values() if isinstance(part, dict))


def comparable_kpis(runs: list[Run]) -> list[dict]:
    """Each run's scalar KPIs, nested blocks as dotted names (the per-prosumer tables left out), and, against the
    first run, the ancillary cost per kWh of unserved energy avoided (`AVOIDED_COST`) where it avoided some."""
    out = [{k: v for k, v in flatten({k: v for k, v in run.kpis.items() if k not in PER_PROSUMER}).items()
            if not isinstance(v, (dict, list))} for run in runs]
    reference = runs[0].kpis
    for run, flat in zip(runs[1:], out[1:]):
        avoided_kwh = reference.get("unserved_energy_kwh", 0.0) - run.kpis.get("unserved_energy_kwh", 0.0)
        if "ancillary" in run.kpis and avoided_kwh > 0:
            extra = _ancillary_paid_token(run.kpis) - _ancillary_paid_token(reference)
            flat[AVOIDED_COST] = round(extra / avoided_kwh, 6)
    return out


def kpi_rows(runs: list[Run]) -> list[tuple[str, list[str]]]:
    """Per scalar KPI: its name and the cells value, then (value, difference) for each further run."""
    flat = comparable_kpis(runs)
    names = ordered({k: v for kpis in flat for k, v in kpis.items()})
    reference = flat[0]
    rows = []
    for name in names:
        cells = [kpi_shown(name, reference[name]) if name in reference else MISSING]
        for kpis in flat[1:]:
            if name in kpis:
                value = kpis[name]
                cells += [kpi_shown(name, value), difference(value, reference[name]) if name in reference else ""]
            else:
                cells += [MISSING, ""]
        rows.append((name, cells))
    return rows


LABEL_FIELDS = 3
"""At most this many differing study fields name a run; more are cut with an ellipsis."""
NOT_A_DIFFERENCE = ("name", "helics.port")
"""Study fields that differ between runs without making them different scenarios (every sweep scenario has its port)."""


def _field_labels(values: list[dict[str, object]]) -> list[str]:
    """``path=value`` of the fields whose values differ between the runs, per run; blank when none differs."""
    paths = [p for p in dict.fromkeys(p for v in values for p in v)
             if len({json.dumps(v.get(p), sort_keys=True, default=str) for v in values}) > 1]
    shown_paths = paths[:LABEL_FIELDS]
    more = ", …" if len(paths) > LABEL_FIELDS else ""
    return [", ".join(f"{p}={text_of(v.get(p))}" for p in shown_paths) + more if paths else "" for v in values]


def run_labels(runs: list[Run], swept: list[dict | None] | None = None) -> list[str]:
    """A distinct label per run, by what differs between them.

    In order, the first rule that tells every run apart: the swept values
    that differ (when every run is a sweep scenario; `swept` holds each
    run's ``{"id", "values"}`` from ``sweep.json``, see
    `gridledger.sweep.scenario_of`), the study names, the study fields that
    differ, the run directories' timestamps, then their paths.
    """
    candidates = []
    if swept and all(swept):
        candidates.append(_field_labels([s["values"] for s in swept]))
    candidates.append([run.study.name for run in runs])
    studies = [flatten(run.study.model_dump(mode="json")) for run in runs]
    candidates.append(_field_labels([{p: v for p, v in s.items() if p not in NOT_A_DIFFERENCE} for s in studies]))
    candidates.append([run.run_dir.name for run in runs])
    candidates.append([f"{run.run_dir.parent.name}/{run.run_dir.name}" for run in runs])
    candidates.append([str(run.run_dir) for run in runs])
    for labels in candidates:
        if all(labels) and len(set(labels)) == len(labels):
            return labels
    return [f"{i + 1}: {label}" for i, label in enumerate(candidates[-1])]


def horizon_warning(runs: list[Run]) -> str | None:
    """Say so when the runs cover different horizons (``duration_s``): totals then do not compare."""
    hours = {run.label: run.study.duration_s / SECONDS_PER_HOUR for run in runs}
    if len(set(hours.values())) == 1:
        return None
    return ("the runs cover different horizons (" + ", ".join(f"{label} {h:g} h" for label, h in hours.items())
            + "): totals such as energy, costs, gas and hours of violations do not compare; extremes and shares do")


def as_json(runs: list[Run], warnings: list[str], comparison: Path | None = None) -> dict:
    """The comparison for programs: each run, each scalar KPI per run label and its difference to the reference."""
    reference = runs[0]
    flat = comparable_kpis(runs)
    names = ordered({k: v for values in flat for k, v in values.items()})
    kpis = {}
    for name in names:
        values = {run.label: f.get(name) for run, f in zip(runs, flat)}
        base = flat[0].get(name)
        kpis[name] = {"values": values,
                      "differences": {run.label: (f[name] - base if _is_number(f.get(name)) and _is_number(base)
                                                  else None) for run, f in zip(runs[1:], flat[1:])}}
    return {"reference": reference.label,
            "runs": [{"label": r.label, "run_dir": str(r.run_dir), "study": r.study.name,
                      "duration_s": r.study.duration_s} for r in runs],
            "kpis": kpis, "warnings": warnings, "comparison": str(comparison) if comparison else None}


def shown(value) -> str:
    """Numbers with thousands separators and the KPIs' 1e-6 resolution, other values as in kpis.json."""
    if isinstance(value, float):
        return f"{value:,.6f}".rstrip("0").rstrip(".")
    return f"{value:,}" if _is_number(value) else text_of(value)


def kpi_shown(name: str, value) -> str:
    """The KPI `name` as `shown`, or `NOT_RATED` for a loading KPI of a feeder without line ratings (null)."""
    return NOT_RATED if is_not_rated(name, value) else shown(value)


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
    """Substation import per step, per run, feeder losses included in every run."""
    fig, ax = _overlay("Substation import (feeder losses included)", "active power [MW] (positive = import)")
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
