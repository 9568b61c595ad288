"""What the DER and ledger federates need of a scenario, without the feeder: prosumers and their profiles.

The launcher builds the study's `gridledger.scenario.Scenario` once before
launch (pandapower, SimBench profiles) and writes its `Roster` into the
run directory (``roster.npz``); the DER and ledger federates read it back
instead of building the scenario again, so they never import pandapower:
less start-up time and memory per process (`make bench`, section 7). The
grid and operator federates, which run power flows, build the scenario.

A `Scenario` has the same attributes (``study``, ``prosumers``,
``times_s``, ``pv_pu``, ``pv_pu_expected``, ``buses``, ``lines``,
``trafos``, ``zones``, ``zone_of``, ``prosumer_load_mw``), so agents run on either: the unit tests hand them
scenarios, the federates rosters.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from gridledger.grids.prosumer_spec import Prosumer
from gridledger.study import STUDY_FILE, Study, load_study

if TYPE_CHECKING:
    from gridledger.scenario import Scenario

ROSTER_FILE = "roster.npz"
_ARRAYS = ("buses", "lines", "trafos", "times_s", "load_p_mw", "load_q_mvar", "load_p_mw_expected", "load_q_mvar_expected", "pv_pu",
           "pv_pu_expected")
_PER_PROSUMER = ("load_p_mw", "load_q_mvar", "load_p_mw_expected", "load_q_mvar_expected", "pv_pu", "pv_pu_expected")
"""Arrays of shape (step, prosumer)."""


@dataclass(frozen=True)
class Roster:
    """A study's prosumers and their per-step profiles.

    Attributes
    ----------
    buses, lines, trafos : ndarray of int
        The feeder's ``net.bus``, ``net.line`` and ``net.trafo`` indices.
    times_s : ndarray (step,)
        Seconds since the study start. [s]
    load_p_mw, load_q_mvar : ndarray (step, prosumer)
        Each prosumer's actual load. [MW], [Mvar]
    load_p_mw_expected, load_q_mvar_expected : ndarray (step, prosumer)
        The agents' forecast of it. [MW], [Mvar]
    pv_pu, pv_pu_expected : ndarray (step, prosumer)
        PV output per kWp, actual and forecast. [kW/kWp]
    zones : dict of str to tuple of int
        The market zones that hold a prosumer, name to ``net.bus`` indices
        (`gridledger.scenario.resolve_zones`; one zone of every bus without
        ``grid.zones``).
    zone_of : dict of str to str
        Each prosumer's zone, prosumer name to zone name.
    """

    study: Study
    prosumers: list[Prosumer]
    buses: np.ndarray
    lines: np.ndarray
    trafos: np.ndarray
    times_s: np.ndarray
    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    load_p_mw_expected: np.ndarray
    load_q_mvar_expected: np.ndarray
    pv_pu: np.ndarray
    pv_pu_expected: np.ndarray
    zones: dict[str, tuple[int, ...]]
    zone_of: dict[str, str]

    def prosumer_load_mw(self, expected: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Every prosumer's load, (p, q) each of shape (step, prosumer). [MW], [Mvar]"""
        if expected:
            return self.load_p_mw_expected, self.load_q_mvar_expected
        return self.load_p_mw, self.load_q_mvar


def roster_of(sc: Scenario) -> Roster:
    """The roster of a built scenario."""
    (p, q), (p_expected, q_expected) = sc.prosumer_load_mw(), sc.prosumer_load_mw(expected=True)
    return Roster(sc.study, list(sc.prosumers), sc.buses, sc.lines, sc.trafos, sc.times_s, p, q, p_expected,
                  q_expected, sc.pv_pu, sc.pv_pu_expected, dict(sc.zones), dict(sc.zone_of))


def write_roster(run_dir: Path, roster: Roster) -> Path:
    """Write ``roster.npz`` (the study stays in ``study.yaml``); its path.

    Prosumers and zones are stored as JSON strings (no pickle); zones keep
    their order, which names them (``z0``, ``z1``, ... or by transformer).
    """
    path = Path(run_dir) / ROSTER_FILE
    prosumers = json.dumps([dataclasses.asdict(p) for p in roster.prosumers])
    zones = json.dumps({"zones": list(roster.zones.items()), "zone_of": roster.zone_of})
    np.savez(path, prosumers=np.array(prosumers), zones=np.array(zones),
             **{name: getattr(roster, name) for name in _ARRAYS})
    return path


def run_zones(run_dir: Path) -> tuple[str, ...]:
    """The names of a prepared run's zones that hold a prosumer, in roster order (a sharded run's zone ledgers)."""
    with np.load(Path(run_dir) / ROSTER_FILE, allow_pickle=False) as data:
        return tuple(name for name, _ in json.loads(str(data["zones"]))["zones"])


def zone_roster(roster: Roster, zone: str) -> Roster:
    """The roster of one zone: its prosumers only, their profile columns, the feeder's indices unchanged.

    Raises
    ------
    KeyError
        If no prosumer of `roster` lies in `zone`.
    """
    keep = [i for i, p in enumerate(roster.prosumers) if roster.zone_of[p.name] == zone]
    if not keep:
        raise KeyError(f"zone {zone!r} holds no prosumer; zones: {', '.join(roster.zones)}")
    columns = {name: getattr(roster, name)[:, keep] for name in _PER_PROSUMER}
    return dataclasses.replace(roster, prosumers=[roster.prosumers[i] for i in keep], **columns,
                               zones={zone: roster.zones[zone]},
                               zone_of={roster.prosumers[i].name: zone for i in keep})


def load_roster(run_dir: Path) -> Roster:
    """The roster of a prepared run directory."""
    run_dir = Path(run_dir)
    with np.load(run_dir / ROSTER_FILE, allow_pickle=False) as data:
        prosumers = [Prosumer(**fields) for fields in json.loads(str(data["prosumers"]))]
        zoning = json.loads(str(data["zones"]))
        zones = {name: tuple(buses) for name, buses in zoning["zones"]}
        return Roster(load_study(run_dir / STUDY_FILE), prosumers, **{name: data[name] for name in _ARRAYS},
                      zones=zones, zone_of=zoning["zone_of"])
