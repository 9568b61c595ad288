"""Results of a run: per-federate parts merged into one NetCDF dataset.

Each federate writes ``parts/<federate>.nc`` when it stops, finished or not.
`collect` merges whatever parts exist into ``results.nc`` (CF-style: named
dims, coordinates, ``units`` and ``long_name`` on every variable, global
attrs naming study, seed and software version) and writes ``kpis.json``.
It reads results; it never re-simulates.

A sharded run (``market.sharding: per-zone``) has one part per zone
ledger, ``parts/ledger-<zone>.nc``, each over its zone's prosumers:
`zone_ledgers` joins them into one ledger part, per-prosumer variables
along ``prosumer`` (in the roster's order), per-interval ones (clearing
price, volume, gas, transactions) along a new ``zone`` dimension.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
from contextlib import contextmanager
from importlib.metadata import version
from pathlib import Path

import numpy as np
import xarray as xr

from gridledger.agents.data_catalogue import QUERIES
from gridledger.contracts.catalogue import ACTIONS
from gridledger.federation import zone_of_federate
from gridledger.kpis import compute_kpis

PARTS_DIR = "parts"
RESULTS_FILE = "results.nc"
KPIS_FILE = "kpis.json"


def answer_entries(n_steps: int, step_s: int) -> int:
    """The most entries a catalogue answer has over `n_steps` stored steps of `step_s` [s]: the longest of the
    catalogue's own answers (`gridledger.agents.data_catalogue.QUERIES`) to one owner's zero load.

    The hourly profile has one entry per bin of max(1, 3600 // step_s)
    steps, the last bin possibly shorter: more than the study's hours when
    the step does not divide an hour.
    """
    load_kw = np.zeros((n_steps, 1))
    return max(np.size(query.answer(load_kw, np.ones(1), np.zeros(1, dtype=bool), step_s)) for query in QUERIES)


def _coords(sc) -> dict[str, object]:
    study = sc.study
    start = np.datetime64(study.start.replace(tzinfo=None), "s")
    step = np.timedelta64(study.power_flow_step_s, "s")
    interval = np.timedelta64(study.market_interval_s, "s")
    data = {} if study.data_access is None else {
        "request": np.arange(len(study.data_access.queries)),
        "answer_entry": np.arange(answer_entries(study.n_steps, study.power_flow_step_s)),
        "data_action": np.array(ACTIONS, dtype=object),
    }
    if study.emergency is not None:
        data["override"] = np.arange(len(study.emergency.overrides))
        data["read"] = np.arange(len(study.emergency.reads))
    return data | {
        "time": start + step * np.arange(study.n_steps),
        "interval": start + interval * np.arange(study.n_intervals),
        "bus": sc.buses,
        "line": sc.lines,
        "trafo": sc.trafos,
        "phase": np.array(["a", "b", "c"], dtype=object),
        "prosumer": np.array([p.name for p in sc.prosumers], dtype=object),
    }


class Part:
    """One federate's results, built variable by variable with units, then written."""

    def __init__(self, sc, federate: str, **attrs: object):
        self.federate = federate
        self.coords = _coords(sc)
        self.ds = xr.Dataset(attrs={"federate": federate, **attrs})

    def add(self, name: str, dims: tuple[str, ...], data, units: str, long_name: str) -> None:
        """Add a variable; its units go into ``attrs["units"]`` as well as its name."""
        coords = {d: self.coords[d] for d in dims}
        self.ds[name] = xr.DataArray(np.asarray(data), dims=dims, coords=coords,
                                     attrs={"units": units, "long_name": long_name})

    def write(self, run_dir: Path, complete: bool) -> Path:
        """Write ``parts/<federate>.nc``; `complete` says whether the federate ran to its end."""
        self.ds.attrs["complete"] = int(complete)
        path = Path(run_dir) / PARTS_DIR / f"{self.federate}.nc"
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".nc.partial")
        self.ds.to_netcdf(partial, engine="h5netcdf")
        partial.replace(path)
        return path


def _part_complete(run_dir: Path, federate: str) -> bool:
    path = run_dir / PARTS_DIR / f"{federate}.nc"
    if not path.exists():
        return False
    with xr.open_dataset(path, engine="h5netcdf") as part:
        return bool(part.attrs.get("complete", 0))


@contextmanager
def _locked(run_dir: Path):
    """Serialise writers of results.nc (the launcher and, under helics-cli, the federates)."""
    with open(run_dir / ".collect.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def collect_if_complete(run_dir: Path) -> bool:
    """Collect once every federate of the run's study has written its part (how a helics-cli run gets results.nc).

    A directory without a study file (a toy federation) is never collected.
    """
    from gridledger.interfaces import federate_names
    from gridledger.roster import run_zones
    from gridledger.study import STUDY_FILE, load_study

    run_dir = Path(run_dir)
    if not (run_dir / STUDY_FILE).exists():
        return False
    study = load_study(run_dir / STUDY_FILE)
    federates = federate_names(study, run_zones(run_dir))
    with _locked(run_dir):
        if not all(_part_complete(run_dir, name) for name in federates):
            return False
        if not (run_dir / RESULTS_FILE).exists():
            _merge(run_dir, study, federates)
    return True


def collect(run_dir: Path, study, federates: tuple[str, ...]) -> dict:
    """KPIs of a run, merging its parts into results.nc and kpis.json unless a federate already did.

    A run with missing parts gets ``attrs["complete"] = 0`` in results.nc
    and ``{"complete": false}`` as its KPIs.
    """
    run_dir = Path(run_dir)
    with _locked(run_dir):
        if (run_dir / RESULTS_FILE).exists():
            return json.loads((run_dir / KPIS_FILE).read_text())
        return _merge(run_dir, study, federates)


def _merge(run_dir: Path, study, federates: tuple[str, ...]) -> dict:
    parts = {}
    for name in federates:
        path = run_dir / PARTS_DIR / f"{name}.nc"
        if path.exists():
            with xr.open_dataset(path, engine="h5netcdf") as part:
                parts[name] = part.load()
    parts = zone_ledgers(parts)
    merged = xr.merge([p.drop_attrs(deep=False) for p in parts.values()], compat="no_conflicts", join="outer") if parts else xr.Dataset()
    expected = {"ledger" if zone_of_federate(name) else name for name in federates}
    complete = set(parts) == expected and all(p.attrs["complete"] for p in parts.values())
    merged.attrs = {
        "title": f"gridledger results: {study.name}",
        "study": study.name,
        "seed": study.seed,
        "software": f"gridledger {version('gridledger')}",
        "parts": ",".join(sorted(parts)),
        "complete": int(complete),
        "created_from": "study.yaml in this directory",
        "Conventions": "CF-1.8",
    }
    for name, part in parts.items():
        for key, value in part.attrs.items():
            if key not in ("federate", "complete"):
                merged.attrs[f"{name}_{key}"] = value
    merged.to_netcdf(run_dir / RESULTS_FILE, engine="h5netcdf")
    kpis = compute_kpis(merged, study) if complete else {"complete": False}
    (run_dir / KPIS_FILE).write_text(json.dumps(kpis, indent=2, sort_keys=True) + "\n")
    return kpis


def zone_ledgers(parts: dict[str, xr.Dataset]) -> dict[str, xr.Dataset]:
    """`parts` with the zone ledgers' parts (``ledger-<zone>``) joined into one ``ledger`` part; others unchanged.

    Per-prosumer variables are concatenated along ``prosumer`` (then put
    in the order of the other parts' ``prosumer``, the roster's), the rest
    (per interval) along a new ``zone`` dimension, zones in part order.
    The joined part is complete if every zone's is; its
    ``token_supply_conserved`` holds if it held on every chain; the other
    attributes are kept per zone as ``<zone>_<name>``.
    """
    zoned = {zone_of_federate(name): part for name, part in parts.items() if zone_of_federate(name)}
    if not zoned:
        return parts
    per_prosumer = [p[[v for v in p.data_vars if "prosumer" in p[v].dims]] for p in zoned.values()]
    per_interval = [p[[v for v in p.data_vars if "prosumer" not in p[v].dims]].expand_dims(zone=[z])
                    for z, p in zoned.items()]
    ledger = xr.merge([xr.concat(per_prosumer, "prosumer"), xr.concat(per_interval, "zone")])
    order = next((p.prosumer for name, p in parts.items() if not zone_of_federate(name) and "prosumer" in p.coords),
                 None)
    if order is not None and set(order.values) == set(ledger.prosumer.values):
        ledger = ledger.reindex(prosumer=order.values)
    ledger["zone"].attrs.update(units="1", long_name="market zone of a per-zone ledger (market.sharding)")
    ledger.attrs = {f"{z}_{key}": value for z, p in zoned.items() for key, value in p.attrs.items()
                    if key not in ("federate", "complete", "token_supply_conserved")}
    ledger.attrs.update(federate="ledger", complete=int(all(p.attrs["complete"] for p in zoned.values())),
                        token_supply_conserved=int(all(p.attrs["token_supply_conserved"] for p in zoned.values())))
    return {**{name: p for name, p in parts.items() if not zone_of_federate(name)}, "ledger": ledger}


def run_timestamp(now: dt.datetime | None = None) -> str:
    """Folder name of a run: its local start time, sortable."""
    return (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
