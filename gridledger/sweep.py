"""Scenario sweeps: one study run over a grid of values of its fields, in parallel on Dask.

``--param PATH=V1,V2`` names any field of the study schema by its dotted
path (``market.grid_fee_per_kwh``, ``prosumers.pv.share``); values are read
as YAML scalars. The sweep runs the cartesian product of all parameters.
Every scenario is validated before anything starts (unknown path, bad value,
unbuildable feeder or placement, or an empty sweep raise `StudyError`), then runs as one Dask task that prepares
and launches it with a HELICS broker port of its own.

A sweep directory holds ``sNNN/`` run roots, ``sweep.json`` (scenarios,
their parameters, run directories and how they ended), ``sweep.nc`` (the
scenarios' results stacked along a ``scenario`` dimension with one
coordinate per swept parameter) and ``compare.html``.

Every scenario of a sweep runs with the same run secret (the launcher's
choice: ``--secret-file``, ``GRIDLEDGER_RUN_SECRET`` or a fresh one), so
scenarios differ only by the swept fields. It reaches the workers as a task
argument, never a file: with a remote ``--scheduler``, secure the cluster's
connections (Dask TLS) as for any secret.
"""

from __future__ import annotations

import copy
import html
import itertools
import json
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import xarray as xr
import yaml
from pydantic import BaseModel

from gridledger.compare import COMPARE_FILE, load_run, write_compare
from gridledger.execute import execute
from gridledger.launcher import free_port, preflight, prepare
from gridledger.report import table
from gridledger.results import RESULTS_FILE, run_timestamp
from gridledger.study import Study, StudyError, load_study, parse_study

if TYPE_CHECKING:
    from distributed import Client

SWEEP_FILE = "sweep.json"
DATASET_FILE = "sweep.nc"
PER_SCENARIO = "helics.port"


@dataclass(frozen=True)
class Param:
    """One swept field: its dotted path in the study schema and its values."""

    path: str
    values: tuple


def check_path(path: str) -> None:
    """Raise `StudyError` unless `path` names one field of the study schema."""
    model: type[BaseModel] = Study
    parts = path.split(".")
    for depth, part in enumerate(parts):
        here = ".".join(parts[:depth + 1])
        if part not in model.model_fields:
            raise StudyError(f"--param {path}: unknown field {here!r}; allowed here: {', '.join(model.model_fields)}")
        annotation = model.model_fields[part].annotation
        is_group = isinstance(annotation, type) and issubclass(annotation, BaseModel)
        if depth < len(parts) - 1 and not is_group:
            raise StudyError(f"--param {path}: {here} is a single field, it has no fields below it")
        if depth == len(parts) - 1 and is_group:
            raise StudyError(f"--param {path}: {here} is a group of fields; sweep one of: "
                             f"{', '.join(f'{here}.{f}' for f in annotation.model_fields)}")
        model = annotation if is_group else model
    if path == PER_SCENARIO:
        raise StudyError(f"--param {path}: every scenario gets a free broker port of its own; it cannot be swept")


def parse_param(text: str) -> Param:
    """Parse ``PATH=V1,V2,...``; raise `StudyError` naming what is wrong."""
    path, sep, values = text.partition("=")
    path = path.strip()
    if not sep or not path:
        raise StudyError(f"--param {text!r}: expected PATH=VALUE[,VALUE...], e.g. market.grid_fee_per_kwh=0.01,0.02")
    check_path(path)
    items = [item.strip() for item in values.split(",") if item.strip()]
    if not items:
        raise StudyError(f"--param {path}: no values given")
    return Param(path, tuple(yaml.safe_load(item) for item in items))


def assign(data: dict, path: str, value) -> dict:
    """A copy of study data with the field at dotted `path` set to `value`."""
    data = copy.deepcopy(data)
    node = data
    *parents, leaf = path.split(".")
    for part in parents:
        node[part] = node.get(part) or {}
        node = node[part]
    node[leaf] = value
    return data


@dataclass(frozen=True)
class Scenario:
    """One point of the sweep grid: its id, the values it sets, and its validated study."""

    id: str
    values: dict[str, object]
    study: Study

    @property
    def description(self) -> str:
        """``path=value`` pairs, for people."""
        return ", ".join(f"{path}={value}" for path, value in self.values.items())


def plan(study_path: Path, params: list[Param]) -> list[Scenario]:
    """Every scenario of the sweep, validated; raise `StudyError` before anything runs."""
    if not params:
        raise StudyError("empty sweep: give at least one --param PATH=VALUE[,VALUE...]")
    paths = [p.path for p in params]
    repeated = sorted({p for p in paths if paths.count(p) > 1})
    if repeated:
        raise StudyError(f"--param {repeated[0]} given more than once; list all its values in one --param")
    base = load_study(study_path).model_dump(mode="json")
    scenarios = []
    for index, combo in enumerate(itertools.product(*(p.values for p in params))):
        values = dict(zip(paths, combo))
        data = base
        for path, value in values.items():
            data = assign(data, path, value)
        source = f"{study_path} with " + ", ".join(f"{k}={v!r}" for k, v in values.items())
        study = parse_study(data, source)
        preflight(study, source)
        scenarios.append(Scenario(f"s{index:03d}", values, study))
    return scenarios


def run_scenario(study_data: dict, runs_root: str, secret: bytes) -> dict:
    """Dask task: prepare and run one scenario on a free broker port; how it ended, JSON-ready.

    Parameters
    ----------
    study_data : dict
        The scenario's resolved study (``Study.model_dump(mode="json")``).
    runs_root : str
        Where its run directory goes; the scenario's study file is written there too.
    secret : bytes
        The sweep's run secret (32 bytes).
    """
    root = Path(runs_root)
    root.mkdir(parents=True, exist_ok=True)
    study_file = root / "scenario.yaml"
    study_file.write_text(yaml.safe_dump(assign(study_data, PER_SCENARIO, free_port()), sort_keys=False))
    done = execute(prepare(study_file, root, secret))
    return {"run_dir": str(done.run_dir), "exit_code": done.outcome.exit_code, "failed": done.outcome.failed,
            "reason": done.outcome.reason, "wall_time_s": done.record.wall_time_s}


def scenario_of(run_dir: Path) -> dict | None:
    """``{"id", "values"}`` of the sweep scenario that made `run_dir` (``<sweep>/sNNN/<study>/<timestamp>``), from
    its sweep's ``sweep.json``; None for a run that is not a sweep scenario."""
    run_dir = Path(run_dir).resolve()
    if len(run_dir.parents) < 3 or not (record := run_dir.parents[2] / SWEEP_FILE).exists():
        return None
    for scenario in json.loads(record.read_text())["scenarios"]:
        if scenario["id"] == run_dir.parents[1].name and scenario["run_dir"] and \
                Path(scenario["run_dir"]).name == run_dir.name:
            return {"id": scenario["id"], "values": scenario["values"]}
    return None


def sweep_dir(study: Study, runs_root: Path) -> Path:
    """A new directory for a sweep of `study`: ``<runs>/<study>-sweep/<timestamp>[-n]``."""
    base = Path(runs_root) / f"{study.name}-sweep" / run_timestamp()
    path, suffix = base, 1
    while path.exists():
        path, suffix = base.with_name(f"{base.name}-{suffix}"), suffix + 1
    path.mkdir(parents=True)
    return path.resolve()


@contextmanager
def dask_client(scheduler: str | None, workers: int) -> Iterator[Client]:
    """A client of the cluster at `scheduler`, or of a new LocalCluster of `workers` one-thread processes.

    Workers of an existing cluster need gridledger installed and the sweep
    directory on a file system they share with this machine.

    Raises
    ------
    StudyError
        If Dask is not installed (the ``sweep`` extra).
    """
    try:
        from distributed import Client, LocalCluster
    except ModuleNotFoundError:
        raise StudyError("gridledger sweep runs its scenarios on Dask, which is not installed: "
                         "pip install 'gridledger[sweep]' (make setup installs it)") from None
    if scheduler:
        with Client(scheduler) as client:
            yield client
        return
    with LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                      silence_logs=logging.ERROR) as cluster, Client(cluster) as client:
        yield client


def run_all(client: Client, scenarios: list[Scenario], directory: Path, secret: bytes,
            on_done: Callable[[Scenario, dict], None] = lambda s, r: None) -> dict[str, dict]:
    """Submit every scenario to the Dask `client` with the run `secret`; how each ended, by scenario id."""
    from distributed import as_completed

    futures = {client.submit(run_scenario, s.study.model_dump(mode="json"), str(directory / s.id), secret,
                             key=f"gridledger-{directory.name}-{s.id}", pure=False): s for s in scenarios}
    ended = {}
    for future in as_completed(futures):
        scenario = futures[future]
        if future.status == "error":
            ended[scenario.id] = {"run_dir": None, "exit_code": 1, "failed": "task",
                                  "reason": repr(future.exception()), "wall_time_s": None}
        else:
            ended[scenario.id] = future.result()
        on_done(scenario, ended[scenario.id])
    return ended


def combine(scenarios: list[Scenario], ended: dict[str, dict]) -> xr.Dataset:
    """Results of the scenarios that finished, stacked along ``scenario``, one coordinate per swept field."""
    finished = [s for s in scenarios if ended[s.id]["exit_code"] == 0]
    parts = []
    for scenario in finished:
        with xr.open_dataset(Path(ended[scenario.id]["run_dir"]) / RESULTS_FILE, engine="h5netcdf") as ds:
            # Encodings from the files would write a filled-in integer variable back as integers, NaN lost.
            parts.append(ds.load().drop_encoding().expand_dims(scenario=[scenario.id]))
    combined = xr.concat(parts, dim="scenario", join="outer", combine_attrs="drop_conflicts")
    for path in scenarios[0].values:
        combined.coords[path] = ("scenario", [s.values[path] for s in finished],
                                 {"long_name": f"swept study field {path}"})
    combined.attrs["swept"] = ",".join(scenarios[0].values)
    return combined


def write_outputs(directory: Path, study_path: Path, scenarios: list[Scenario], ended: dict[str, dict]) -> Path | None:
    """Write sweep.json, and sweep.nc and compare.html when at least one scenario finished; the report's path."""
    summary = {"study": str(study_path), "swept": list(scenarios[0].values),
               "scenarios": [{"id": s.id, "values": s.values, **ended[s.id]} for s in scenarios]}
    (directory / SWEEP_FILE).write_text(json.dumps(summary, indent=2, default=str) + "\n")
    finished = [s for s in scenarios if ended[s.id]["exit_code"] == 0]
    if not finished:
        return None
    combine(scenarios, ended).to_netcdf(directory / DATASET_FILE, engine="h5netcdf")
    runs = [load_run(Path(ended[s.id]["run_dir"]), s.id) for s in finished]
    rows = [({"data-scenario": s.id}, [s.id, *(json.dumps(v) for v in s.values.values()),
                                       "finished" if ended[s.id]["exit_code"] == 0 else
                                       f"failed: {ended[s.id]['failed']}"]) for s in scenarios]
    preamble = (f"<p>Sweep of <code>{html.escape(str(study_path))}</code>, scenarios in "
                f"<code>{html.escape(str(directory))}</code>.</p><h2>Scenarios</h2>"
                + table(["scenario", *scenarios[0].values, "status"], rows, "scenarios"))
    return write_compare(runs, directory / COMPARE_FILE, f"gridledger sweep: {scenarios[0].study.name}", preamble)
