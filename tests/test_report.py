"""report.html and plots: one real run, its report opened in headless Chromium (Debian's package)."""

from __future__ import annotations

import base64
import json
import re
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from websockets.sync.client import connect

from gridledger.execute import RUN_FILE
from gridledger.interfaces import FEDERATES
from gridledger.launcher import free_port
from gridledger.kpis import FLEX_DELIVERED, FLEX_REQUESTED, NOT_RATED, RATED_KPIS
from gridledger.plots import (
    BUS_LABEL,
    PLOTS,
    TIME_LABEL,
    available,
    feeder_layout,
    feeder_load_mw,
    local_times,
    substation_import,
    without_der_mw,
)
from gridledger.report import REPORT_FILE, kpi_section, write_report
from gridledger.results import collect
from gridledger.study import load_study
from gridledger.study_audit import Audit
from gridledger.study_privacy import DataAccess, DataQuery

pytestmark = pytest.mark.e2e

BROWSER_TIMEOUT_S = 60
PAGE_PROBE = """(async () => {
  const images = await Promise.all([...document.images].map(async (img) => {
    try { await img.decode(); } catch (e) { return {alt: img.alt, width: 0, height: 0}; }
    return {alt: img.alt, width: img.naturalWidth, height: img.naturalHeight};
  }));
  const kpis = {};
  for (const row of document.querySelectorAll('#kpis tr[data-kpi]')) kpis[row.dataset.kpi] = row.cells[1].textContent;
  return {title: document.title, ready: document.readyState, images, kpis};
})()"""


@pytest.fixture(scope="module")
def run(short_run):
    return short_run.run_dir, short_run.ds, short_run.stdout


def _cdp(ws, message_id: int, method: str, events: list, **params) -> dict:
    """Send one DevTools command and return its result, keeping the events that arrive meanwhile."""
    ws.send(json.dumps({"id": message_id, "method": method, "params": params}))
    while True:
        message = json.loads(ws.recv(timeout=BROWSER_TIMEOUT_S))
        if message.get("id") == message_id:
            assert "error" not in message, message
            return message["result"]
        events.append(message)


BROWSERS = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
"""Names a Chromium or Chrome installation answers to on the PATH, first found first used."""


def find_browser() -> str | None:
    """The path of an installed Chromium or Chrome (`BROWSERS`), None if none is on the PATH."""
    return next((path for name in BROWSERS if (path := shutil.which(name))), None)


def browse(url: str, profile_dir) -> tuple[dict, list[str]]:
    """Open `url` in headless Chromium or Chrome; the page probe's result and every URL the page requested."""
    chromium = find_browser()
    assert chromium, (f"the report test needs Chromium or Chrome on the PATH (any of {', '.join(BROWSERS)}): "
                      "install one, e.g. `apt-get install chromium` on Debian (make test does it when run as root)")
    port = free_port()
    browser = subprocess.Popen([chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                                f"--remote-debugging-port={port}", f"--user-data-dir={profile_dir}", "about:blank"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + BROWSER_TIMEOUT_S
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/json/list", timeout=5) as response:
                    pages = [t for t in json.load(response) if t["type"] == "page"]
                if pages:
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Chromium's DevTools endpoint never came up"
            time.sleep(0.2)
        events: list[dict] = []
        with connect(pages[0]["webSocketDebuggerUrl"], max_size=None) as ws:
            _cdp(ws, 1, "Network.enable", events)
            _cdp(ws, 2, "Page.enable", events)
            _cdp(ws, 3, "Page.navigate", events, url=url)
            while not any(e.get("method") == "Page.loadEventFired" for e in events):
                events.append(json.loads(ws.recv(timeout=BROWSER_TIMEOUT_S)))
            probe = _cdp(ws, 4, "Runtime.evaluate", events, expression=PAGE_PROBE, awaitPromise=True,
                         returnByValue=True)
        requested = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
        return probe["result"]["value"], requested
    finally:
        browser.terminate()
        browser.wait(timeout=30)


def test_run_writes_report_and_says_where(run):
    run_dir, _, stdout = run
    assert f"report: {run_dir / REPORT_FILE}" in stdout
    assert re.search(r"wall time: [0-9.]+ s \(run\.json\)", stdout)


def test_report_opens_offline_in_chromium_with_every_plot_and_the_kpis(run, tmp_path):
    run_dir, _, _ = run
    page, requested = browse((run_dir / REPORT_FILE).as_uri(), tmp_path / "profile")
    assert page["ready"] == "complete" and page["title"] == "gridledger report: baran-wu-short"
    assert all(url.startswith(("file:", "data:")) for url in requested), requested
    names = {image["alt"] for image in page["images"]}
    assert names == {"voltage_heatmap", "voltage_profile", "market", "prosumer_cost", "substation_import"}
    for image in page["images"]:
        assert image["width"] > 100 and image["height"] > 100, image
    kpis = json.loads((run_dir / "kpis.json").read_text())
    scalars = {k: v for k, v in kpis.items() if not isinstance(v, dict)}
    assert set(page["kpis"]) == set(scalars)
    for name, value in scalars.items():
        shown = page["kpis"][name]
        if value is None and name in RATED_KPIS:
            assert shown == NOT_RATED, name
        else:
            assert (shown == value) if isinstance(value, str) else (json.loads(shown) == value), name


def test_report_is_one_self_contained_file_and_its_images_are_the_plot_files(run):
    run_dir, _, _ = run
    text = (run_dir / REPORT_FILE).read_text()
    assert not re.search(r"""(src|href)=["'](?!data:)""", text)
    embedded = dict(re.findall(r'<img alt="([a-z_]+)" src="data:image/png;base64,([^"]+)"', text))
    assert embedded and set(embedded) == {p.stem for p in (run_dir / "plots").glob("*.png")}
    for name, data in embedded.items():
        assert base64.b64decode(data) == (run_dir / "plots" / f"{name}.png").read_bytes()


def test_report_shows_study_settings_and_per_prosumer_costs(run):
    run_dir, ds, _ = run
    text = (run_dir / REPORT_FILE).read_text()
    assert '<tr data-field="market.grid_fee_per_kwh"><th>market.grid_fee_per_kwh</th><td class="num">0.02</td>' in text
    assert text.count("<tr data-prosumer=") == ds.sizes["prosumer"]
    assert '<tr data-field="wall_time_s">' in text


def test_every_plot_labels_its_axes_with_units(run):
    run_dir, ds, _ = run
    study = load_study(run_dir / "study.yaml")
    n_int, n_bus = ds.sizes["interval"], ds.sizes["bus"]
    flex = ds.assign({FLEX_REQUESTED: ("interval", np.full(n_int, 800)),
                      FLEX_DELIVERED: ("interval", np.full(n_int, 600)),
                      "flex_vm_forecast_pu": ("interval", np.full(n_int, 1.06)),
                      "flex_zone": (("interval", "bus"), np.ones((n_int, n_bus), dtype=np.int8)),
                      "ev_p_mw": ds.pv_p_mw * 0.1,
                      "trafo_loading_percent": (("time", "trafo"), np.full((ds.sizes["time"], 1), 40.0)),
                      "net_export_wh": (("interval", "zone"), np.tile([300, -100, -200], (n_int, 1))),
                      "coordinator_price_per_kwh": ("interval", np.full(n_int, 0.2)),
                      "cross_zone_volume_wh": ("interval", np.full(n_int, 300)),
                      "audit_flagged": (("interval", "prosumer"), np.eye(n_int, ds.sizes["prosumer"], dtype=np.int8)),
                      "audit_rn": (("interval", "prosumer"), 6.0 * np.eye(n_int, ds.sizes["prosumer"])),
                      "energy_balance_wh": ("interval", np.full(n_int, 120.0)),
                      "data_sensitivity": ("request", [24.0]),
                      "data_exact_answer": (("request", "answer_entry"), [[100.0, 120.0]]),
                      "data_released_answer": (("request", "answer_entry"), [[90.0, 125.0]]),
                      "import_cap_mw": ("time", np.full(ds.sizes["time"], 0.2)),
                      "unserved_p_mw": (("time", "bus"), np.full((ds.sizes["time"], n_bus), 0.001)),
                      "reserve_capacity_kw": ("interval", np.full(n_int, 30.0)),
                      "reserve_awarded_kw": ("interval", np.full(n_int, 25.0)),
                      "reserve_activated_kw": ("interval", np.full(n_int, 20.0)),
                      "reserve_delivered_wh": ("interval", np.full(n_int, 4500)),
                      "shed_p_mw": ds.pv_p_mw * 0.05,
                      "prosumer_bus": ("prosumer", ds.bus.values[1:ds.sizes["prosumer"] + 1])})
    data = DataAccess(queries=[DataQuery(query="aggregate-load-profile", epsilon=1.0)])
    study = study.model_copy(update={"audit": Audit(), "data_access": data})
    layout = feeder_layout(study)
    for plot in PLOTS:
        fig = plot.draw(flex, study, layout)
        for ax in fig.axes:
            for label in (ax.get_xlabel(), ax.get_ylabel()):
                if label:
                    assert label in (TIME_LABEL, BUS_LABEL) or re.search(r"\[[^\]]+\]", label), (plot.name, label)
            assert ax.get_ylabel(), plot.name


def test_loading_kpis_without_line_ratings_show_not_rated_with_the_note(run):
    run_dir, _, _ = run
    kpis = json.loads((run_dir / "kpis.json").read_text())
    text = kpi_section(kpis)
    for name in RATED_KPIS:
        assert f'<tr data-kpi="{name}"><th>{name}</th><td>{NOT_RATED}</td>' in text
    assert '<tr data-kpi="loading_note">' in text and "no thermal rating" in text
    assert '<tr data-kpi="mean_clearing_price_per_kwh">' in kpi_section({"mean_clearing_price_per_kwh": None})
    assert NOT_RATED not in kpi_section({"mean_clearing_price_per_kwh": None})


def test_substation_plot_compares_with_and_without_der_both_without_losses(run):
    """The with-DER line is the substation import less the feeder's losses, the baseline adds back exactly the
    prosumers' PV and battery discharge: the gap between them is DER, not losses."""
    run_dir, ds, _ = run
    with_der, baseline = feeder_load_mw(ds), without_der_mw(ds)
    np.testing.assert_allclose(with_der, ds.substation_p_mw - ds.pl_mw, atol=1e-6)
    np.testing.assert_allclose(baseline - with_der, ds.pv_p_mw.sum("prosumer") - ds.battery_p_mw.sum("prosumer"),
                               atol=1e-12)
    ax = substation_import(ds, load_study(run_dir / "study.yaml"), None).axes[0]
    drawn = {line.get_label(): line.get_ydata()[:-1] for line in ax.get_lines() if not line.get_label().startswith("_")}
    assert set(drawn) == {"with DER and market: substation import less losses",
                          "baseline: load without PV and batteries"}
    np.testing.assert_allclose(drawn["with DER and market: substation import less losses"], with_der.values)
    assert "losses excluded" in ax.get_title()


def test_flexibility_plot_only_when_the_dataset_has_flexibility(run):
    _, ds, _ = run
    assert "flexibility" not in {p.name for p in available(ds)}
    flex = ds.assign({FLEX_REQUESTED: ("interval", np.zeros(ds.sizes["interval"])),
                      FLEX_DELIVERED: ("interval", np.zeros(ds.sizes["interval"]))})
    assert "flexibility" in {p.name for p in available(flex)}


def test_failed_run_gets_a_partial_report(run, tmp_path):
    """A run whose grid federate left nothing: the report names the failure and draws what remains."""
    run_dir, _, _ = run
    failed = tmp_path / "failed"
    shutil.copytree(run_dir, failed, ignore=shutil.ignore_patterns("results.nc", "kpis.json", "plots", "grid.nc"))
    assert collect(failed, load_study(failed / "study.yaml"), FEDERATES) == {"complete": False}
    record = {"exit_code": 1, "failed": "grid", "reason": "exited with code -9", "wall_time_s": 3.0}
    (failed / RUN_FILE).write_text(json.dumps(record))
    text = write_report(failed, record).read_text()
    assert "Run failed: federate grid" in text and "exited with code -9" in text
    assert '<tr data-kpi="complete"><th>complete</th><td>false</td>' in text
    assert set(re.findall(r'<img alt="([a-z_]+)"', text)) == {"market"}


def test_a_run_that_recorded_nothing_gets_a_report_without_plots(run, tmp_path):
    """Every federate gone before its first part (the broker killed at the start): the report still names it."""
    run_dir, _, _ = run
    empty = tmp_path / "empty"
    shutil.copytree(run_dir, empty, ignore=shutil.ignore_patterns("results.nc", "kpis.json", "plots", "parts"))
    assert collect(empty, load_study(empty / "study.yaml"), FEDERATES) == {"complete": False}
    record = {"exit_code": 1, "failed": "broker", "reason": "helics_broker exited with code -9"}
    text = write_report(empty, record).read_text()
    assert "Run failed: federate broker" in text and "<img" not in text


def test_the_browser_is_any_chromium_or_chrome_on_the_path(monkeypatch):
    installed = {"google-chrome-stable": "/opt/google/chrome/chrome"}
    monkeypatch.setattr(shutil, "which", installed.get)
    assert find_browser() == "/opt/google/chrome/chrome"
    installed.clear()
    assert find_browser() is None


def test_plots_put_results_kept_in_utc_back_on_feeder_local_time():
    utc = pd.date_range("2024-06-21T22:00", periods=3, freq="1h").values
    ds = xr.Dataset(coords={"time": ("time", utc, {"time_zone": "Europe/Berlin"}), "interval": ("interval", utc)})
    local = local_times(ds)
    assert str(local.time.values[0])[:16] == "2024-06-22T00:00" and local.time.attrs["time_zone"] == "Europe/Berlin"
    assert str(local.interval.values[2])[:16] == "2024-06-22T02:00"                 # summer time, UTC+2
    unzoned = ds.assign_coords(time=("time", utc))
    assert (local_times(unzoned).time.values == utc).all()                           # already local: untouched
