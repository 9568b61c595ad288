"""report.html: one self-contained page per run with its settings, KPIs and plots.

Plots are embedded as base64 PNG and the style sheet is inline, so the file
opens offline and can be mailed on its own; the same PNGs are also written
to ``plots/``. A failed run gets a partial report: what went wrong, and the
plots its partial results allow. The page helpers here (`page`, `table`,
`figure`) are shared with compare.html.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

import xarray as xr

from gridledger.kpis import DESCRIPTIONS, NOT_RATED, is_not_rated
from gridledger.plots import PLOTS, draw_all
from gridledger.results import KPIS_FILE, RESULTS_FILE
from gridledger.study import STUDY_FILE, load_study

REPORT_FILE = "report.html"
PLOTS_DIR = "plots"
PER_PROSUMER = ("baseline_cost_per_prosumer_token", "cost_per_prosumer_token", "saving_per_prosumer_token")

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 70em; color: #222; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.75em; text-align: left; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
th { white-space: nowrap; } td { min-width: 8em; }
.failed { background: #fde8e8; border-left: 4px solid #c00; padding: 0.5em 1em; white-space: pre-wrap; }
figure { margin: 1.5em 0; } figcaption { color: #555; }
img { max-width: 100%; }
.scroll { overflow-x: auto; }
"""


def text_of(value) -> str:
    """How a KPI value is shown: numbers exactly as in kpis.json, strings as they are."""
    return value if isinstance(value, str) else json.dumps(value)


def kpi_text(name: str, value) -> str:
    """How the KPI `name` is shown: `NOT_RATED` for a loading KPI of a feeder without line ratings (null), else
    `text_of`."""
    return NOT_RATED if is_not_rated(name, value) else text_of(value)


def table(header: list[str], rows: list[tuple[dict, list[str]]], table_id: str) -> str:
    """An HTML table; each row is (attributes of its <tr>, cells), numbers right-aligned."""
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = []
    for attrs, cells in rows:
        attr_text = "".join(f' {k}="{html.escape(str(v))}"' for k, v in attrs.items())
        tds = []
        for i, cell in enumerate(cells):
            tag, cls = ("th", "") if i == 0 else ("td", ' class="num"' if _numeric(cell) else "")
            tds.append(f"<{tag}{cls}>{html.escape(cell)}</{tag}>")
        body.append(f"<tr{attr_text}>{''.join(tds)}</tr>")
    return f'<div class="scroll"><table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table></div>'


def _numeric(cell: str) -> bool:
    try:
        float(cell.replace(",", "").split(" ")[0])
    except ValueError:
        return False
    return True


def figure(name: str, png: bytes, caption: str) -> str:
    """An embedded PNG with its caption."""
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure id="plot-{html.escape(name)}"><img alt="{html.escape(name)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def page(title: str, sections: list[str]) -> str:
    """A complete HTML document with the inline style sheet."""
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
            f"<style>{STYLE}</style></head><body><h1>{html.escape(title)}</h1>\n" + "\n".join(sections)
            + "\n</body></html>\n")


def flatten(mapping: dict, prefix: str = "") -> dict[str, object]:
    """Nested settings as dotted paths (``market.grid_fee_per_kwh``), the form `gridledger sweep --param` takes."""
    flat = {}
    for key, value in mapping.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(flatten(value, f"{path}."))
        else:
            flat[path] = value
    return flat


def ordered(kpis: dict) -> list[str]:
    """KPI names in the order of `DESCRIPTIONS` (grouped by topic), then any others alphabetically."""
    return [k for k in DESCRIPTIONS if k in kpis] + sorted(k for k in kpis if k not in DESCRIPTIONS)


def kpi_section(kpis: dict) -> str:
    """The scalar KPIs with their meaning, and per-prosumer costs when the run has them."""
    rows = [({"data-kpi": key}, [key, kpi_text(key, kpis[key]), DESCRIPTIONS.get(key, "")])
            for key in ordered(kpis) if not isinstance(kpis[key], dict)]
    parts = ["<h2>KPIs</h2>", table(["KPI", "value", "meaning"], rows, "kpis")]
    if all(key in kpis for key in PER_PROSUMER):
        prosumer_rows = [({"data-prosumer": p}, [p, *(text_of(kpis[key][p]) for key in PER_PROSUMER)])
                         for p in kpis[PER_PROSUMER[0]]]
        parts += ["<h2>Cost per prosumer</h2>",
                  table(["prosumer", "grid only [token]", "with market [token]", "saving [token]"],
                        prosumer_rows, "prosumers")]
    if "audit" in kpis:
        parts += audit_section(kpis["audit"])
    if "data_access" in kpis:
        parts += data_section(kpis["data_access"])
    if "two_phase" in kpis:
        t = kpis["two_phase"]
        parts += ["<h2>Two-phase trades</h2>",
                  f"<p>Proposed {t['proposed']}, prepared {t['prepared']}, committed {t['committed']} (paid "
                  f"{text_of(t['paid_token'])} token), rolled back with every lock returned {t['rolled_back']}, "
                  f"open at the end {t['open_at_end']}.</p>"]
    if "pseudonyms" in kpis:
        t = kpis["pseudonyms"]
        parts += ["<h2>Pseudonyms</h2>",
                  f"<p>{t['intervals_traded']} intervals traded under pseudonyms: {t['tickets']} tickets bought, "
                  f"{t['registered']} pseudonyms registered, {t['refused']} relayed registrations refused. "
                  "Measure what the chain export reveals with <code>gridledger linkage</code>.</p>"]
    return "\n".join(parts)


DATA_COLUMNS = ("query", "epsilon", "clip_kw", "owners_listed", "approved", "used", "accepted", "paid_token",
                "refunded_token", "relative_error", "expected_relative_error")


def data_section(data: dict) -> list[str]:
    """What each data request asked, who approved, what the worker used, what was paid, and the answer's accuracy
    (`gridledger.data_kpis`); the gas of each ``DataAccess`` action."""
    rows = [({"data-request": str(i)}, [text_of(r[c]) for c in DATA_COLUMNS]) for i, r in enumerate(data["requests"])]
    gas = ", ".join(f"{action} {text_of(g)}" for action, g in data["gas_per_action"].items())
    summary = (f"<p>Paid to owners: {text_of(data['paid_token'])} token; every lock paid out or refunded: "
               f"{text_of(data['tokens_balanced'])}. Gas per transaction: {gas}.</p>")
    return ["<h2>Data access</h2>", summary, table(list(DATA_COLUMNS), rows, "data-access")]


AUDIT_COLUMNS = ("meter_intervals", "visible", "detected", "refused_by_chain", "detection_rate", "visible_detection_rate",
                 "false_energy_settled_kwh", "false_energy_flagged_kwh", "time_to_detection_s", "late_rechecked")


TOKEN_COLUMNS = ("audit_off_token", "audit_on_token", "share_paid")


def audit_section(audit: dict) -> list[str]:
    """The auditor's detection table by attack kind (`gridledger.audit_kpis`), what the false readings earned with
    the audit off and kept with it on, and its false positives."""
    def tokens(scores: dict) -> list[str]:
        paid = scores.get("false_reading_tokens")
        return [text_of(paid[c]) if paid else "" for c in TOKEN_COLUMNS]

    rows = [({"data-attack": kind}, [kind, *(text_of(scores[c]) for c in AUDIT_COLUMNS), *tokens(scores)])
            for kind, scores in audit["by_kind"].items()]
    summary = (f"<p>Attacked meter-intervals: {audit['attacked_meter_intervals']}; visible energy attacks detected: "
               f"{text_of(audit['visible_detection_rate'])}; false positives: {audit['false_positives']} "
               f"(rate {text_of(audit['false_positive_rate'])}).</p>")
    if "false_reading_tokens" in audit:
        paid = audit["false_reading_tokens"]
        summary += (f"<p>Tokens the false readings earned with the audit off: {text_of(paid['audit_off_token'])}; "
                    f"kept with it on: {text_of(paid['audit_on_token'])} (share {text_of(paid['share_paid'])}). "
                    f"Meters isolated: {audit['isolated_meters']}; intervals settled from estimates: "
                    f"{audit['settled_from_estimate']}; credit held from honest prosumers: "
                    f"{text_of(audit['held_from_honest_token'])} token.</p>")
    return ["<h2>Meter audit</h2>", summary, table(["attack", *AUDIT_COLUMNS, *TOKEN_COLUMNS], rows, "audit")]


LINKAGE_FILE = "linkage.json"
"""What ``gridledger linkage`` measured on a run (`gridledger.agents.linkage_study`), for the report."""


def linkage_section(run_dir: Path) -> list[str]:
    """The linkage experiment's table, if ``gridledger linkage`` measured the run."""
    path = run_dir / LINKAGE_FILE
    if not path.exists():
        return []
    linkage = json.loads(path.read_text())
    rows = [({"data-metric": metric}, [metric, fixed, pseudonyms]) for metric, fixed, pseudonyms in linkage["rows"]]
    return ["<h2>What the chain reveals</h2>",
            f"<p>An observer of the chain export ({html.escape(linkage['caption'])}; docs/linkage.md).</p>",
            table(["metric", "fixed addresses", "per-interval pseudonyms"], rows, "linkage")]


def _plot_captions() -> dict[str, str]:
    return {plot.name: plot.draw.__doc__.strip().splitlines()[0] for plot in PLOTS}


def write_report(run_dir: Path, record: dict | None = None) -> Path:
    """Write ``report.html`` (and ``plots/*.png``) for a run directory; `record` is its run.json content."""
    run_dir = Path(run_dir)
    study = load_study(run_dir / STUDY_FILE)
    kpis_path = run_dir / KPIS_FILE
    kpis = json.loads(kpis_path.read_text()) if kpis_path.exists() else {"complete": False}
    pngs = {}
    if (run_dir / RESULTS_FILE).exists():
        with xr.open_dataset(run_dir / RESULTS_FILE, engine="h5netcdf") as ds:
            pngs = draw_all(ds.load(), study)
    (run_dir / PLOTS_DIR).mkdir(exist_ok=True)
    for name, png in pngs.items():
        (run_dir / PLOTS_DIR / f"{name}.png").write_bytes(png)
    sections = [f"<p>Run directory <code>{html.escape(str(run_dir))}</code></p>"]
    if record and record.get("exit_code"):
        what = f'federate {record["failed"]}' if record.get("failed") else record.get("ended", "run stopped")
        sections.append(f'<div class="failed" id="failure"><strong>Run failed: {html.escape(str(what))}'
                        f'</strong>\n{html.escape(str(record["reason"]))}\n'
                        "Partial report: KPIs need complete results; plots show what was recorded.</div>")
    sections.append(kpi_section(kpis))
    sections += linkage_section(run_dir)
    captions = _plot_captions()
    sections.append("<h2>Plots</h2>" + "".join(figure(n, png, captions[n]) for n, png in pngs.items()))
    settings = [({"data-field": path}, [path, text_of(value)]) for path, value in
                flatten(study.model_dump(mode="json")).items()]
    sections += ["<h2>Study settings</h2>", table(["field", "value"], settings, "study")]
    if record:
        run_rows = [({"data-field": key}, [key, text_of(value)]) for key, value in record.items()]
        sections += ["<h2>Run</h2>", table(["field", "value"], run_rows, "run")]
    path = run_dir / REPORT_FILE
    path.write_text(page(f"gridledger report: {study.name}", sections))
    return path
