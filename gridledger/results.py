"""Results of a run: per-federate parts merged into one NetCDF dataset.

Each federate writes ``parts/<federate>.nc`` when it stops, finished or not.
`collect` merges whatever parts exist into ``results.nc`` and writes
``kpis.json``. It reads results; it never re-simulates.

results.nc follows the CF conventions (`CONVENTIONS`), so that it explains
itself to any netCDF reader:

* ``units`` and ``long_name`` on every variable (`Part.add`), ``long_name``
  (and ``standard_name`` where CF has one) on every coordinate
  (`COORDINATES`); global attrs name the study, seed and software version;
* each prosumer's bus (``prosumer_bus``, the pandapower index, with the
  feeder's name and the paper's number of that bus) and each bus's name
  and label (``bus_name``, ``bus_label``: `gridledger.grids.names.bus_labels`,
  bus index 17 of case33bw is Baran and Wu's bus "18") as coordinates;
* ``time`` (power-flow steps) and ``interval`` (market intervals, with
  ``interval_bounds``) in seconds since the study start: UTC when the study
  names its ``time_zone`` (which the coordinates' ``time_zone`` attribute
  repeats), the feeder's local time otherwise, which the ``comment`` says:
  CF readers take a time without a zone for UTC, so only a named zone lets
  them place the run in absolute time;
* ``cell_methods``: ``time: point`` for what a step's power flow gives,
  ``interval: sum`` for energies, money, gas and counts per market
  interval (`cell_methods_of`, or `Part.add`'s ``cell_methods``);
* integer variables with entries not (yet) recorded, such as a meter
  register of an interval not metered, carry ``_FillValue`` (the value the
  federate keeps there): xarray reads those entries back as NaN.

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
import zoneinfo
from contextlib import ExitStack, contextmanager
from importlib.metadata import version
from pathlib import Path
from types import MappingProxyType

import numpy as np
import xarray as xr

from gridledger.agents.data_catalogue import QUERIES
from gridledger.contracts.catalogue import ACTIONS
from gridledger.federation import zone_of_federate
from gridledger.grids.names import bus_labels, bus_name
from gridledger.kpis import compute_kpis
from gridledger.units import AMOUNT_UNITS

PARTS_DIR = "parts"
RESULTS_FILE = "results.nc"
KPIS_FILE = "kpis.json"
CONVENTIONS = "CF-1.11"
"""The CF version results.nc follows (1.9 and later allow its 64-bit integers)."""
TIME_CALENDAR = "standard"
NO_LEAP_SECONDS = "leap_seconds: none"
"""The simulation's clock counts every step as `power_flow_step_s` seconds, leap seconds or not (CF 1.11, 4.4.3)."""
BOUNDS_DIM = "nv"
"""Dimension of the two ends (start, end) of each market interval in ``interval_bounds``."""
TIME_POINT = "time: point"
"""Cell methods of a value of a power-flow step: the step's power flow, its setpoints held through the step."""
INTERVAL_SUM = "interval: sum"
"""Cell methods of a market interval's total: an amount (energy, money, gas) or a count of events."""

COORDINATES = MappingProxyType({
    "time": {"standard_name": "time", "long_name": "start of the power-flow step", "units_metadata": NO_LEAP_SECONDS},
    "interval": {"standard_name": "time", "long_name": "start of the market interval", "bounds": "interval_bounds",
                 "units_metadata": NO_LEAP_SECONDS},
    "bus": {"long_name": "bus, pandapower net.bus index (from 0)"},
    "bus_name": {"long_name": "bus name in the feeder file (net.bus.name)"},
    "bus_label": {"long_name": "bus as the feeder's paper numbers it (case33bw: index + 1), else its name"},
    "line": {"long_name": "line, pandapower net.line index"},
    "trafo": {"long_name": "transformer, pandapower net.trafo index"},
    "phase": {"long_name": "phase of a three-phase bus"},
    "prosumer": {"long_name": "prosumer: the household behind one feeder load"},
    "prosumer_bus": {"long_name": "bus of the prosumer's connection point, pandapower net.bus index"},
    "prosumer_bus_name": {"long_name": "name of the prosumer's bus in the feeder file"},
    "prosumer_bus_label": {"long_name": "the prosumer's bus as the feeder's paper numbers it"},
    "zone": {"long_name": "market zone of a per-zone ledger (market.sharding)"},
    "ev": {"long_name": "electric vehicle, in the order of the study's EV sessions"},
    "request": {"long_name": "data-access request, position in data_access.queries"},
    "answer_entry": {"long_name": "entry of a data-access answer"},
    "data_action": {"long_name": "action on the DataAccess contract"},
    "override": {"long_name": "emergency override, position in emergency.overrides"},
    "read": {"long_name": "emergency read, position in emergency.reads"},
})
"""CF attributes of each coordinate results.nc may have; the time coordinates get their zone from `time_attrs`."""


def answer_entries(n_steps: int, step_s: int) -> int:
    """The most entries a catalogue answer has over `n_steps` stored steps of `step_s` [s]: the longest of the
    catalogue's own answers (`gridledger.agents.data_catalogue.QUERIES`) to one owner's zero load.

    The hourly profile has one entry per bin of max(1, 3600 // step_s)
    steps, the last bin possibly shorter: more than the study's hours when
    the step does not divide an hour.
    """
    load_kw = np.zeros((n_steps, 1))
    return max(np.size(query.answer(load_kw, np.ones(1), np.zeros(1, dtype=bool), step_s)) for query in QUERIES)


def time_origin(study) -> np.datetime64:
    """The study start as results.nc counts time from it: in UTC when the study names its ``time_zone``, else as
    written (feeder local time). [s]"""
    if study.time_zone is None:
        return np.datetime64(study.start, "s")
    utc = study.start.replace(tzinfo=zoneinfo.ZoneInfo(study.time_zone)).astimezone(dt.timezone.utc)
    return np.datetime64(utc.replace(tzinfo=None), "s")


def time_attrs(study) -> dict[str, str]:
    """What the time coordinates' values are: UTC with the zone named, or feeder local time of an unnamed zone."""
    if study.time_zone is None:
        return {"comment": "feeder local time (study start as written); the study names no time_zone, so its UTC "
                           "offset is unknown, though CF readers take a time without one for UTC"}
    return {"time_zone": study.time_zone,
            "comment": f"UTC; the study start {study.start.isoformat()} is feeder local time in {study.time_zone}, "
                       "and the simulation runs on from it in steps of equal length"}


def cell_methods_of(dims: tuple[str, ...], units: str) -> str | None:
    """CF cell methods of a variable by its dims and units: ``time: point`` per power-flow step (the step's power
    flow), ``interval: sum`` for an amount (`gridledger.units.AMOUNT_UNITS`) per market interval, else None."""
    if "time" in dims:
        return TIME_POINT
    if "interval" in dims and units in AMOUNT_UNITS:
        return INTERVAL_SUM
    return None


def _coords(sc) -> dict[str, object]:
    study = sc.study
    start = time_origin(study)
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


def _described_coords(sc) -> dict[str, dict[str, np.ndarray]]:
    """Coordinates that describe a dimension's entries, by dimension: each prosumer's bus and, where `sc` holds the
    feeder (a `gridledger.scenario.Scenario`; a `gridledger.roster.Roster` has none), each bus's name and label."""
    prosumer_bus = np.array([p.bus for p in sc.prosumers], dtype=np.int64)
    described = {"prosumer": {"prosumer_bus": prosumer_bus}}
    net = getattr(sc, "net", None)
    if net is not None:
        names = np.array([bus_name(name) for name in net.bus.name], dtype=object)
        labels = np.array(bus_labels(sc.study.grid.feeder, net.bus.index, net.bus.name), dtype=object)
        described["bus"] = {"bus_name": names, "bus_label": labels}
        at = net.bus.index.get_indexer(prosumer_bus)
        described["prosumer"] |= {"prosumer_bus_name": names[at], "prosumer_bus_label": labels[at]}
    return described


class Part:
    """One federate's results, built variable by variable with units, then written."""

    def __init__(self, sc, federate: str, **attrs: object):
        self.federate = federate
        self.coords = _coords(sc)
        self.described = _described_coords(sc)
        self.ds = xr.Dataset(attrs={"federate": federate, **attrs})

    def add(self, name: str, dims: tuple[str, ...], data, units: str, long_name: str, *,
            fill_value: int | None = None, cell_methods: str | None = None) -> None:
        """Add a variable; its units go into ``attrs["units"]`` as well as its name.

        Parameters
        ----------
        name : str
            Variable name, its unit at the end (``meter_import_wh``).
        dims : tuple of str
            Its dimensions; each comes with its coordinate and the coordinates
            describing it (``prosumer_bus`` ...).
        data : array_like
            Values, of shape `dims`.
        units, long_name : str
            CF ``units`` (``"1"`` for a count or flag) and what it is.
        fill_value : int, optional
            For an integer variable, the value that marks an entry without data
            (not metered, not reached): written as ``_FillValue``, read back by
            xarray as NaN.
        cell_methods : str, optional
            CF ``cell_methods``; by default `cell_methods_of` its dims and units.
        """
        values = np.asarray(data)
        coords = {d: self.coords[d] for d in dims}
        coords |= {key: (d, described) for d in dims for key, described in self.described.get(d, {}).items()}
        attrs = {"units": units, "long_name": long_name}
        method = cell_methods or cell_methods_of(dims, units)
        if method is not None:
            attrs["cell_methods"] = method
        self.ds[name] = xr.DataArray(values, dims=dims, coords=coords, attrs=attrs)
        if fill_value is not None:
            self.ds[name].encoding["_FillValue"] = values.dtype.type(fill_value)

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
    """Write results.nc and kpis.json from the parts, read lazily: each variable is read from its part as it is
    written (`_write_by_variable`), so no year of results is held in memory at once."""
    with ExitStack() as files:
        parts = {name: files.enter_context(xr.open_dataset(path, engine="h5netcdf"))
                 for name in federates if (path := run_dir / PARTS_DIR / f"{name}.nc").exists()}
        merged, complete = _merged(zone_ledgers(parts), study, federates)
        _write_by_variable(merged, run_dir / RESULTS_FILE)
    if not complete:
        kpis = {"complete": False}
    else:
        with xr.open_dataset(run_dir / RESULTS_FILE, engine="h5netcdf") as results:
            kpis = compute_kpis(results, study)
    (run_dir / KPIS_FILE).write_text(json.dumps(kpis, indent=2, sort_keys=True) + "\n")
    return kpis


def _write_by_variable(ds: xr.Dataset, path: Path) -> None:
    """Write `ds` to `path`: its coordinates and attributes, then one data variable at a time (xarray encodes every
    variable it writes at once, so a dataset written whole would be read whole)."""
    partial = path.with_suffix(".nc.partial")
    ds.drop_vars(list(ds.data_vars)).to_netcdf(partial, engine="h5netcdf")
    for name in ds.data_vars:
        ds[[name]].to_netcdf(partial, engine="h5netcdf", mode="a")
    partial.replace(path)


def _merged(parts: dict[str, xr.Dataset], study, federates: tuple[str, ...]) -> tuple[xr.Dataset, bool]:
    """The parts as one described dataset, and whether every federate's part is there and complete."""
    merged = xr.merge([p.drop_attrs(deep=False) for p in parts.values()], compat="no_conflicts", join="outer") if parts else xr.Dataset()
    expected = {"ledger" if zone_of_federate(name) else name for name in federates}
    complete = set(parts) == expected and all(p.attrs["complete"] for p in parts.values())
    merged = describe(merged, study)
    merged.attrs = {
        "title": f"gridledger results: {study.name}",
        "study": study.name,
        "seed": study.seed,
        "software": f"gridledger {version('gridledger')}",
        "parts": ",".join(sorted(parts)),
        "complete": int(complete),
        "created_from": "study.yaml in this directory",
        "history": f"merged from the federates' parts by gridledger {version('gridledger')}",
        "Conventions": CONVENTIONS,
    }
    for name, part in parts.items():
        for key, value in part.attrs.items():
            if key not in ("federate", "complete"):
                merged.attrs[f"{name}_{key}"] = value
    return merged, complete


def describe(ds: xr.Dataset, study) -> xr.Dataset:
    """`ds`, changed in place, with the CF description of its coordinates: `COORDINATES` attributes, the time
    coordinates in seconds since `time_origin` with their zone (`time_attrs`), and ``interval_bounds``, each market
    interval's start and end."""
    for name in ds.coords:
        ds[name].attrs.update(COORDINATES.get(name, {}))
    units = f"seconds since {np.datetime_as_string(time_origin(study), unit='s')}"
    for name in ("time", "interval"):
        if name in ds.coords:
            ds[name].attrs.update(time_attrs(study))
            ds[name].encoding.update(units=units, calendar=TIME_CALENDAR)
    if "interval" in ds.coords:
        starts = ds.interval.values
        ends = starts + np.timedelta64(study.market_interval_s, "s")
        ds["interval_bounds"] = (("interval", BOUNDS_DIM), np.stack([starts, ends], axis=1))
        ds["interval_bounds"].encoding.update(units=units, calendar=TIME_CALENDAR)
    return ds


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
    ledger.attrs = {f"{z}_{key}": value for z, p in zoned.items() for key, value in p.attrs.items()
                    if key not in ("federate", "complete", "token_supply_conserved")}
    ledger.attrs.update(federate="ledger", complete=int(all(p.attrs["complete"] for p in zoned.values())),
                        token_supply_conserved=int(all(p.attrs["token_supply_conserved"] for p in zoned.values())))
    return {**{name: p for name, p in parts.items() if not zone_of_federate(name)}, "ledger": ledger}


def run_timestamp(now: dt.datetime | None = None) -> str:
    """Folder name of a run: its local start time, sortable."""
    return (now or dt.datetime.now()).strftime("%Y%m%dT%H%M%S")
