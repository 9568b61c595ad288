"""What a study resolves to physically: feeder, prosumers, devices and profiles.

Every federate and the launcher build the same `Scenario` from the same
study file, so they agree on names, placement and profiles without sending
them to each other.

Where the power of every element comes from:

* loads (``net.load`` and, on unbalanced feeders, ``net.asymmetric_load``
  three-phase totals): the feeder's own yearly profiles on SimBench grids,
  otherwise the shipped daily shape (`grids.profiles.load_profile_pu`) times
  the element's power in the feeder file, which is taken as its peak;
* the feeder's own generators (``net.sgen``): SimBench profiles, otherwise
  constant at the file's value;
* prosumer PV: `grids.profiles.pv_profile_pu` per kWp.

The agents' forecast ("expected") is the noise-free shape for shipped
profiles and, for SimBench profiles, the same time one day earlier
(persistence), the usual naive forecast for metered load.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower

from gridledger.grids.controls import add_oltc, add_switched_capacitor
from gridledger.grids.feeder_profiles import feeder_profiles
from gridledger.grids.feeders import is_unbalanced, load_feeder
from gridledger.grids.profiles import load_profile_pu, pv_profile_pu
from gridledger.grids.prosumers import DeviceIndex, Prosumer, add_prosumer_devices, place_prosumers
from gridledger.grids.sensors import sensor_set
from gridledger.grids.zones import group_zones, zone_of_prosumers, zones_by_transformer, zones_from_buses
from gridledger.study import STUDY_FILE, Study, load_study



class ScenarioError(ValueError):
    """A study that validates alone but does not fit its feeder; names the study field."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


SINGLE_ZONE = "z0"
"""Name of the one zone of a study without ``grid.zones``."""
PHASE_COLUMNS = (("p_a_mw", "p_b_mw", "p_c_mw"), ("q_a_mvar", "q_b_mvar", "q_c_mvar"))


@dataclass
class Loads:
    """Active and reactive power of the feeder's loads per step. [MW], [Mvar]

    ``p_mw``/``q_mvar`` are positional like ``net.load``; ``asym_p_mw``/
    ``asym_q_mvar`` like ``net.asymmetric_load`` (sum of the three phases).
    """

    p_mw: np.ndarray
    q_mvar: np.ndarray
    asym_p_mw: np.ndarray
    asym_q_mvar: np.ndarray

    def of(self, prosumer: Prosumer, net: pandapower.pandapowerNet) -> tuple[np.ndarray, np.ndarray]:
        """A prosumer's own load series (p, q)."""
        if prosumer.load_element == "asymmetric_load":
            i = net.asymmetric_load.index.get_loc(prosumer.load_index)
            return self.asym_p_mw[:, i], self.asym_q_mvar[:, i]
        i = net.load.index.get_loc(prosumer.load_index)
        return self.p_mw[:, i], self.q_mvar[:, i]


@dataclass
class Scenario:
    """A study's feeder with prosumers placed and its per-step profiles.

    Attributes
    ----------
    loads, loads_expected : Loads
        Actual load and the agents' forecast of it.
    sgen_p_mw : ndarray (step, sgen)
        The feeder's own generators (before prosumer PV is added). [MW]
    pv_pu, pv_pu_expected : ndarray (step, prosumer)
        Prosumer PV output per kWp, actual and forecast. [kW/kWp]
    zones : dict of str to tuple of int
        The study's market zones that hold a prosumer, name to ``net.bus``
        indices (`resolve_zones`); one zone ``SINGLE_ZONE`` of every bus
        when ``grid.zones`` is unset.
    zone_of : dict of str to str
        Zone of every prosumer, by prosumer name.
    """

    study: Study
    net: pandapower.pandapowerNet
    prosumers: list[Prosumer]
    devices: DeviceIndex | None
    times_s: np.ndarray
    loads: Loads
    loads_expected: Loads
    sgen_p_mw: np.ndarray
    pv_pu: np.ndarray
    pv_pu_expected: np.ndarray
    zones: dict[str, tuple[int, ...]]
    zone_of: dict[str, str]

    @property
    def buses(self) -> np.ndarray:
        """``net.bus`` indices."""
        return self.net.bus.index.to_numpy()

    @property
    def lines(self) -> np.ndarray:
        """``net.line`` indices."""
        return self.net.line.index.to_numpy()

    @property
    def trafos(self) -> np.ndarray:
        """``net.trafo`` indices."""
        return self.net.trafo.index.to_numpy()

    def prosumer_load_mw(self, expected: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """Every prosumer's load, (p, q) each of shape (step, prosumer). [MW], [Mvar]"""
        loads = self.loads_expected if expected else self.loads
        pairs = [loads.of(p, self.net) for p in self.prosumers]
        shape = (len(self.times_s), 0)
        p = np.column_stack([pq[0] for pq in pairs]) if pairs else np.empty(shape)
        q = np.column_stack([pq[1] for pq in pairs]) if pairs else np.empty(shape)
        return p, q


def _shipped_loads(net, study: Study, times_s: np.ndarray, noise: bool) -> Loads:
    n_load, n_asym = len(net.load), len(net.asymmetric_load)
    pu = load_profile_pu(study.start, times_s, n_load + n_asym, study.seed, noise=noise)
    asym_peak_p = net.asymmetric_load[list(PHASE_COLUMNS[0])].sum(axis=1).to_numpy()
    asym_peak_q = net.asymmetric_load[list(PHASE_COLUMNS[1])].sum(axis=1).to_numpy()
    return Loads(pu[:, :n_load] * net.load.p_mw.to_numpy(), pu[:, :n_load] * net.load.q_mvar.to_numpy(),
                 pu[:, n_load:] * asym_peak_p, pu[:, n_load:] * asym_peak_q)


def _simbench_loads(net, profiles) -> Loads:
    order = net.load.index.get_indexer(profiles.load_index)
    p = np.zeros((len(profiles.profile_step), len(net.load)))
    q = np.zeros_like(p)
    p[:, order], q[:, order] = profiles.load_p_mw, profiles.load_q_mvar
    empty = np.zeros((len(p), len(net.asymmetric_load)))
    return Loads(p, q, empty, empty.copy())


def substation_trafo(net: pandapower.pandapowerNet) -> int:
    """Index of the transformer whose high-voltage side is an external-grid bus."""
    rows = net.trafo.index[net.trafo.hv_bus.isin(net.ext_grid.bus)]
    if not len(rows):
        raise ScenarioError("grid.oltc", "the feeder has no transformer at its external grid")
    return int(rows[0])


def add_controls(net: pandapower.pandapowerNet, study: Study) -> None:
    """The study's tap changer and capacitor banks as pandapower controllers on `net`."""
    grid = study.grid
    if grid.oltc is not None:
        trafo = substation_trafo(net)
        try:
            add_oltc(net, trafo, grid.oltc.vm_set_pu, grid.oltc.deadband_pu, grid.oltc.delay_steps)
        except ValueError as exc:
            raise ScenarioError("grid.oltc", str(exc)) from None
    for i, cap in enumerate(grid.capacitors):
        if cap.bus not in net.bus.index:
            raise ScenarioError(f"grid.capacitors.{i}.bus", f"bus {cap.bus} is not in the feeder")
        add_switched_capacitor(net, cap.bus, cap.q_mvar, cap.v_on_pu, cap.v_off_pu)


def resolve_zones(net: pandapower.pandapowerNet, study: Study,
                  prosumers: list[Prosumer]) -> tuple[dict[str, tuple[int, ...]], dict[str, str]]:
    """The study's zones that hold a prosumer, and each prosumer's zone (`gridledger.grids.zones`)."""
    spec = study.grid.zones
    try:
        if spec is None:
            zones = {SINGLE_ZONE: tuple(int(bus) for bus in net.bus.index)}
        elif spec.by == "transformer":
            zones = zones_by_transformer(net)
        else:
            zones = zones_from_buses(net, spec.buses)
        buses = {p.name: p.bus for p in prosumers}
        zone_of = zone_of_prosumers(buses, zones)
        if spec is not None and spec.count is not None:
            zones = group_zones(zones, Counter(zone_of.values()), spec.count)
            zone_of = zone_of_prosumers(buses, zones)
    except ValueError as exc:
        raise ScenarioError("grid.zones", str(exc)) from None
    occupied = set(zone_of.values())
    return {name: buses for name, buses in zones.items() if name in occupied}, zone_of


def _check_audit(net: pandapower.pandapowerNet, study: Study) -> None:
    """The auditor's estimate is balanced and its sensors must sit on the feeder's lines and buses."""
    if is_unbalanced(net):
        raise ScenarioError("audit", "the auditor's state estimation is single-phase (balanced), and this feeder is "
                            "unbalanced; drop audit or choose a balanced feeder")
    try:
        sensor_set(net, study.audit.sensors)
    except ValueError as exc:
        raise ScenarioError("audit.sensors", str(exc)) from None


def build_scenario(study: Study, with_devices: bool = False) -> Scenario:
    """Place prosumers and compute profiles; add PV/battery elements and controls if `with_devices`."""
    net = load_feeder(study.grid.feeder)
    pros = study.prosumers
    try:
        prosumers = place_prosumers(
            net, pros.count, study.seed, pros.pv.share, pros.pv.kwp_per_kw_load,
            pros.battery.share, pros.battery.kwh_per_kw_load, pros.battery.kw_per_kwh, pros.buses,
            pros.voltage_level,
        )
    except ValueError as exc:
        raise ScenarioError("prosumers", str(exc)) from None
    zones, zone_of = resolve_zones(net, study, prosumers)
    times_s = np.arange(study.n_steps, dtype=float) * study.power_flow_step_s
    profiles = feeder_profiles(net, study.start, times_s)
    if profiles is None:
        loads = _shipped_loads(net, study, times_s, noise=True)
        expected = _shipped_loads(net, study, times_s, noise=False)
        sgen_p_mw = np.tile(net.sgen.p_mw.to_numpy(), (len(times_s), 1))
    else:
        loads = _simbench_loads(net, profiles)
        expected = _simbench_loads(net, feeder_profiles(net, study.start - dt.timedelta(days=1), times_s))
        sgen_p_mw = np.tile(net.sgen.p_mw.to_numpy(), (len(times_s), 1))
        sgen_p_mw[:, net.sgen.index.get_indexer(profiles.sgen_index)] = profiles.sgen_p_mw
    inverter = study.prosumers.pv.inverter
    if (inverter.volt_var or inverter.volt_watt) and is_unbalanced(net):
        raise ScenarioError("prosumers.pv.inverter",
                            "inverter curves run as pandapower controllers, which the three-phase power flow "
                            "of this unbalanced feeder does not run; set volt_var and volt_watt to false")
    if study.audit is not None:
        _check_audit(net, study)
    if study.market.charging_coordination and not net.trafo.hv_bus.isin(net.ext_grid.bus).any():
        raise ScenarioError("market.charging_coordination",
                            "the feeder has no transformer at its external grid whose headroom could be shared")
    devices = None
    if with_devices:
        try:
            devices = add_prosumer_devices(net, prosumers)
        except ValueError as exc:
            raise ScenarioError("prosumers", str(exc)) from None
        add_controls(net, study)
    lat = study.grid.pv_latitude_deg
    n_pro = len(prosumers)
    return Scenario(
        study=study,
        net=net,
        prosumers=prosumers,
        devices=devices,
        times_s=times_s,
        loads=loads,
        loads_expected=expected,
        sgen_p_mw=sgen_p_mw,
        pv_pu=pv_profile_pu(study.start, times_s, max(n_pro, 1), study.seed, latitude_deg=lat)[:, :n_pro],
        pv_pu_expected=pv_profile_pu(study.start, times_s, max(n_pro, 1), study.seed, noise=False,
                                     latitude_deg=lat)[:, :n_pro],
        zones=zones,
        zone_of=zone_of,
    )


def load_scenario(run_dir: Path, with_devices: bool = False) -> Scenario:
    """The scenario of a prepared run directory."""
    return build_scenario(load_study(Path(run_dir) / STUDY_FILE), with_devices)
