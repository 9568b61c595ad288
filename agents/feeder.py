"""The feeder: prosumer setpoints as pandapower element injections, one solved and recorded step.

Loads without a prosumer follow the feeder's load profile, the feeder's own
generators follow theirs; each prosumer's load, PV and battery setpoints
land on its own ``load`` (or ``asymmetric_load``), ``sgen`` and
``storage`` rows. Smart inverters run as a pandapower controller inside
the power flow (`gridledger.grids.inverter`), so the PV the meters see is
what the inverters delivered, read back from ``net.res_sgen``.

Sign convention (pandapower's): a bus's net load is load - sgen + storage,
storage positive when charging.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import replace

import numpy as np

from gridledger.agents.feeder_record import FeederRecord
from gridledger.agents.islanding import GridFormers, excess_mw, shares_mw
from gridledger.agents.load_shedding import TOLERANCE_MW, Rotation
from gridledger.grids.inverter import Inverter, VoltVarCurve, VoltWattCurve
from gridledger.grids.inverter_control import InverterController
from gridledger.grids.island import dark_result, island_net
from gridledger.grids.powerflow import Injections, PowerFlow, StepResult
from gridledger.scenario import Loads, Scenario


def injections(sc: Scenario, step: int, setpoints: dict[str, np.ndarray], loads: Loads | None = None) -> Injections:
    """pandapower element setpoints for one step: profiles for the feeder's own elements, DER values for prosumers.

    Parameters
    ----------
    sc : Scenario
        The study's feeder with its prosumers' devices (``sc.devices``).
    step : int
        Power-flow step, the row of the profiles.
    setpoints : dict of ndarray
        ``load_p_mw``, ``load_q_mvar``, ``pv_p_mw``, ``battery_p_mw`` per
        prosumer, in the order of ``sc.prosumers``. [MW], [Mvar]
    loads : Loads, optional
        Profiles of the feeder's own loads: the actual ones (``sc.loads``)
        by default, the expected ones for a forecast.
    """
    net = sc.net
    loads = sc.loads if loads is None else loads
    load_p, load_q = loads.p_mw[step].copy(), loads.q_mvar[step].copy()
    asym_p, asym_q = loads.asym_p_mw[step].copy(), loads.asym_q_mvar[step].copy()
    sgen_p = np.concatenate([sc.sgen_p_mw[step], np.zeros(len(net.sgen) - sc.sgen_p_mw.shape[1])])
    storage_p = net.storage.p_mw.to_numpy(copy=True)
    for i, p in enumerate(sc.prosumers):
        if p.load_element == "asymmetric_load":
            row = net.asymmetric_load.index.get_loc(p.load_index)
            asym_p[row], asym_q[row] = setpoints["load_p_mw"][i], setpoints["load_q_mvar"][i]
        else:
            row = net.load.index.get_loc(p.load_index)
            load_p[row], load_q[row] = setpoints["load_p_mw"][i], setpoints["load_q_mvar"][i]
        if p.name in sc.devices.sgen:
            sgen_p[net.sgen.index.get_loc(sc.devices.sgen[p.name])] = setpoints["pv_p_mw"][i]
        if p.name in sc.devices.storage:
            storage_p[net.storage.index.get_loc(sc.devices.storage[p.name])] = setpoints["battery_p_mw"][i]
    return Injections(load_p_mw=load_p, load_q_mvar=load_q, sgen_p_mw=sgen_p, storage_p_mw=storage_p,
                      asymmetric_load_p_mw=asym_p, asymmetric_load_q_mvar=asym_q)


def bus_net_load(net, inj: Injections) -> tuple[np.ndarray, np.ndarray]:
    """Net load per bus (load - sgen + storage), ordered like ``net.bus``. [MW], [Mvar]

    From element setpoints, plus the sgens' reactive power from the last power
    flow where controllers (smart inverters) set it.
    """
    p = np.zeros(len(net.bus))
    q = np.zeros(len(net.bus))
    pos = net.bus.index.get_indexer
    np.add.at(p, pos(net.load.bus), inj.load_p_mw)
    np.add.at(q, pos(net.load.bus), inj.load_q_mvar)
    np.add.at(p, pos(net.sgen.bus), -inj.sgen_p_mw)
    if len(net.controller) and "q_mvar" in net.res_sgen and len(net.res_sgen) == len(net.sgen):
        np.add.at(q, pos(net.sgen.bus), -net.res_sgen.q_mvar.fillna(0.0).to_numpy())
    np.add.at(p, pos(net.storage.bus), inj.storage_p_mw)
    np.add.at(p, pos(net.asymmetric_load.bus), inj.asymmetric_load_p_mw)
    np.add.at(q, pos(net.asymmetric_load.bus), inj.asymmetric_load_q_mvar)
    return p, q


def install_inverters(sc: Scenario, settings: dict) -> InverterController:
    """Run the DER federate's inverter settings as a pandapower controller on the prosumers' PV sgens.

    ``settings["prosumers"]`` names the prosumers, ``["s_rated_kva"]`` and
    ``["p_rated_kw"]`` give their inverters' ratings [kVA], [kW];
    ``["volt_var"]`` and ``["volt_watt"]`` are the curve points
    (`gridledger.grids.inverter.VoltVarCurve`, `VoltWattCurve` fields) or
    None for a curve that is off.
    """
    rows = [sc.devices.sgen[name] for name in settings["prosumers"]]
    volt_var = VoltVarCurve(**settings["volt_var"]) if settings["volt_var"] else None
    volt_watt = VoltWattCurve(**settings["volt_watt"]) if settings["volt_watt"] else None
    inverters = [Inverter(s, p, volt_var=volt_var, volt_watt=volt_watt)
                 for s, p in zip(settings["s_rated_kva"], settings["p_rated_kw"])]
    return InverterController(sc.net, rows, inverters)


def actual_output(sc: Scenario, inj: Injections, setpoints: dict[str, np.ndarray],
                  converged: bool) -> tuple[Injections, dict[str, np.ndarray]]:
    """PV power the inverters delivered where controllers changed it (``net.res_sgen``), for records and meters. [MW]

    Without controllers, or after a power flow that did not converge, the
    setpoints are what was delivered and come back unchanged.
    """
    net = sc.net
    if not converged or not len(net.controller) or not len(net.sgen):
        return inj, setpoints
    sgen_p_mw = net.res_sgen.p_mw.to_numpy(copy=True)
    pv = setpoints["pv_p_mw"].copy()
    for i, p in enumerate(sc.prosumers):
        if p.name in sc.devices.sgen:
            pv[i] = sgen_p_mw[net.sgen.index.get_loc(sc.devices.sgen[p.name])]
    return replace(inj, sgen_p_mw=sgen_p_mw), {**setpoints, "pv_p_mw": pv}


def load_buses(net) -> list[int]:
    """The buses with a load (``load`` or ``asymmetric_load``), in index order: what a rotation cuts."""
    return sorted(set(net.load.bus.tolist()) | set(net.asymmetric_load.bus.tolist()))


def cut_buses(sc: Scenario, inj: Injections, setpoints: dict[str, np.ndarray],
              buses: frozenset[int]) -> tuple[Injections, dict[str, np.ndarray], np.ndarray]:
    """The step with whole `buses` disconnected: their loads, PV and batteries at 0 in the injections and in the
    prosumers' setpoints (their meters see nothing), and what their loads would have drawn. [MW]

    Returns
    -------
    inj, setpoints
        As given, with the cut buses' rows at 0.
    unserved_mw : ndarray, shape (n_bus,)
        Each cut bus's active load (``load`` and ``asymmetric_load`` rows), in ``net.bus`` order; 0 elsewhere. [MW]
    """
    net = sc.net
    unserved_mw = np.zeros(len(net.bus))
    if not buses:
        return inj, setpoints, unserved_mw
    cut = sorted(buses)

    def off(table, values: np.ndarray) -> np.ndarray:
        return np.where(table.bus.isin(cut).to_numpy(), 0.0, values)

    pos = net.bus.index.get_indexer
    on_load, on_asym = net.load.bus.isin(cut).to_numpy(), net.asymmetric_load.bus.isin(cut).to_numpy()
    np.add.at(unserved_mw, pos(net.load.bus[on_load]), inj.load_p_mw[on_load])
    np.add.at(unserved_mw, pos(net.asymmetric_load.bus[on_asym]), inj.asymmetric_load_p_mw[on_asym])
    inj = replace(inj, load_p_mw=off(net.load, inj.load_p_mw), load_q_mvar=off(net.load, inj.load_q_mvar),
                  sgen_p_mw=off(net.sgen, inj.sgen_p_mw), storage_p_mw=off(net.storage, inj.storage_p_mw),
                  asymmetric_load_p_mw=off(net.asymmetric_load, inj.asymmetric_load_p_mw),
                  asymmetric_load_q_mvar=off(net.asymmetric_load, inj.asymmetric_load_q_mvar))
    on_cut = np.array([p.bus in buses for p in sc.prosumers])
    setpoints = {key: np.where(on_cut, 0.0, values) for key, values in setpoints.items()}
    return inj, setpoints, unserved_mw


class Feeder:
    """The grid's power flow and record: each step maps setpoints to injections, solves, records what happened."""

    def __init__(self, sc: Scenario):
        self.sc = sc
        self.pf = PowerFlow(sc.net, backend=sc.study.grid.backend)
        self.record = FeederRecord(sc)
        self.rotation = Rotation(load_buses(sc.net))
        self.formers = GridFormers(sc)
        self.islands: dict[int, PowerFlow] = {}
        self.former: int | None = None
        self.formed: dict[int, float] = {}

    def step(self, step: int, setpoints: dict[str, np.ndarray], bypass_mw: np.ndarray | None = None,
             reserve: dict[int, float] | None = None, responding: Iterable[int] = ()) -> StepResult:
        """Solve power-flow step `step` with the prosumers' setpoints and record it (NaN if not converged).

        `bypass_mw` is load each prosumer draws around its meter (the
        ``bypass`` attack) [MW]: it flows in the power flow and in the
        bus loads recorded, not in what the meters see. Under an import
        cap (``events.import_caps``) the rotation cuts whole load buses
        until the import is within it (`gridledger.agents.load_shedding`);
        under an island cap the substation is open and the rotation cuts
        until the batteries of the `reserve` providers can carry the rest
        (`gridledger.agents.islanding`). Either way it cuts the buses of the
        `responding` households (reserve activated, load shed called:
        positions), and in an island those of the reserve providers, last.
        `reserve` maps the position of each provider awarded reserve over the
        step to its activated power, 0 if not activated. [MW]
        Afterwards `former` is the position of the step's grid
        former (None: none) and `formed` the power each of the island's
        batteries ran at, by position (positive = charging). [MW]
        """
        physical = setpoints if bypass_mw is None else {**setpoints, "load_p_mw": setpoints["load_p_mw"] + bypass_mw}
        inj = injections(self.sc, step, physical)
        last = frozenset(self.sc.prosumers[i].bus for i in responding)
        time_s = step * self.sc.study.power_flow_step_s
        cap_mw = self.sc.study.events.cap_mw_at(time_s)
        cut: frozenset[int] = frozenset()
        self.former, self.formed = None, {}
        if cap_mw is None:
            result = self.pf.step(inj)
        elif self.sc.study.events.islanded_at(time_s):
            result, cut = self._island(inj, setpoints, reserve or {}, last)
        else:
            solved = {}

            def import_mw(buses: frozenset[int]) -> float:
                solved[buses] = self.pf.step(cut_buses(self.sc, inj, setpoints, buses)[0])
                return solved[buses].p_mw if solved[buses].converged else math.nan

            cut = frozenset(self.rotation.shed(import_mw, cap_mw, last))
            result = solved[cut]                                 # the last power flow solved
        inj, setpoints, unserved_mw = cut_buses(self.sc, inj, setpoints, cut)
        if self.formed:
            inj, setpoints = self._formed(inj, setpoints)
        else:
            inj, setpoints = actual_output(self.sc, inj, setpoints, result.converged)
        self.formers.ran(setpoints["battery_p_mw"])
        self.record.step(step, result, bus_net_load(self.sc.net, inj), setpoints)
        self.record.shed(step, cap_mw, unserved_mw, cut, self.former)
        return result

    def _island(self, inj: Injections, setpoints: dict[str, np.ndarray], reserve: dict[int, float],
                last: frozenset[int]) -> tuple[StepResult, frozenset[int]]:
        """One step with the substation open: the island's power flow and the load buses cut; sets `formed`."""
        net = self.sc.net
        former = self.formers.choose(reserve)
        if former is not None:
            prosumer = self.sc.prosumers[former]
            if prosumer.bus not in self.islands:
                self.islands[prosumer.bus] = PowerFlow(island_net(net, prosumer.bus), backend=self.sc.study.grid.backend,
                                                       controllers=False)
            flow = self.islands[prosumer.bus]
            batteries = sorted(i for i in reserve if self.formers.power_kw[i] > 0)
            rows = self._storage_rows(batteries)
            limits = np.array([self.formers.limits_mw(i) for i in batteries]).reshape(-1, 2)
            dispatch_mw = np.array([reserve[i] for i in batteries])
            last = last | {self.sc.prosumers[i].bus for i in batteries}
            at = batteries.index(former)
            solved: dict[frozenset[int], tuple[StepResult, dict[int, float], float]] = {}

            def outside_mw(buses: frozenset[int]) -> float:
                """Solve the island with `buses` cut; how far its batteries fall short of or over what it needs."""
                cut_inj = cut_buses(self.sc, inj, setpoints, buses)[0]
                storage = cut_inj.storage_p_mw.copy()
                storage[rows] = 0.0
                need = flow.step(replace(cut_inj, storage_p_mw=storage))
                shares = shares_mw(need.p_mw, dispatch_mw, *limits.T) if need.converged else None
                if shares is None:
                    solved[buses] = (need, {}, excess_mw(need.p_mw if need.converged else math.nan,
                                                         *limits.sum(axis=0)))
                    return solved[buses][2]
                storage[rows] = -shares
                storage[rows[at]] = 0.0
                result = flow.step(replace(cut_inj, storage_p_mw=storage))
                shares[at] = result.p_mw
                solved[buses] = (result, dict(zip(batteries, -shares)),
                                 excess_mw(result.p_mw if result.converged else math.nan, *limits[at]))
                return solved[buses][2]

            cut = frozenset(self.rotation.shed(outside_mw, 0.0, last))
            result, ran_mw, outside = solved[cut]
            if ran_mw and outside <= TOLERANCE_MW:
                self.former, self.formed = former, ran_mw
                return replace(result, p_mw=0.0, q_mvar=0.0), cut
        return dark_result(net), frozenset(self.rotation.shed(lambda _: math.nan, 0.0))

    def _storage_rows(self, positions: list[int]) -> np.ndarray:
        """The ``net.storage`` rows of the batteries of the prosumers at `positions`."""
        return np.array([self.sc.net.storage.index.get_loc(self.sc.devices.storage[self.sc.prosumers[i].name])
                         for i in positions], dtype=int)

    def _formed(self, inj: Injections, setpoints: dict[str, np.ndarray]) -> tuple[Injections, dict[str, np.ndarray]]:
        """The step's injections and setpoints with the island's batteries at the power they ran at; the PV ran as
        set (the island runs no inverter controllers)."""
        positions = list(self.formed)
        ran_mw = np.array([self.formed[i] for i in positions])
        storage = inj.storage_p_mw.copy()
        storage[self._storage_rows(positions)] = ran_mw
        battery = setpoints["battery_p_mw"].copy()
        battery[positions] = ran_mw
        return replace(inj, storage_p_mw=storage), {**setpoints, "battery_p_mw": battery}
