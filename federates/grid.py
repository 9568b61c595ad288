"""Grid federate: the feeder's power flow, meters and limit checks.

Publishes
    grid/bus/<bus>/vm_pu, grid/line/<line>/loading_percent,
    grid/substation/p_mw, q_mvar, pl_mw                      every step
Subscribes
    der/<prosumer>/load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw
Endpoint ``grid/meters``
    sends each meter's signed ``post_reading`` transaction to ``ledger/tx``
    after every market interval; receives the ledger's deployment notice and
    the receipts of its readings. With the voltage-regulation market on it
    receives the flexibility awards and, after each window, every awarded
    DER's meter posts the PV curtailment its inverter reported over the
    window (``post_delivery``).

Loads without a prosumer follow the shipped load profile. The physics lives
in `gridledger.grids`; this module only wires it to HELICS and records.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from pathlib import Path

import numpy as np

from gridledger.contracts import flexibility as flex
from gridledger.contracts.client import Wallet
from gridledger.contracts.market import MarketAddresses, post_reading
from gridledger.contracts.keys import derive_account
from gridledger.messages import decode, deployment
from gridledger.federates.shell import joined, run_federate
from gridledger.grids.feeders import is_unbalanced
from gridledger.grids.inverter import Inverter, InverterController, VoltVarCurve, VoltWattCurve
from gridledger.grids.limits import overload, voltage_violation
from gridledger.grids.stability import ansi_c84_1_band, voltage_stability_index
from gridledger.grids.metering import interval_energy_wh, source_energy_wh
from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.interfaces import DER_SETPOINTS, LEDGER_ENDPOINT, setpoint_key
from gridledger.results import Part
from gridledger.scenario import Loads, Scenario, load_scenario
from gridledger.schedule import grid_times, stop_time_s

log = logging.getLogger("gridledger.grid")


class GridRecord:
    """What the grid federate records, NaN until a step is solved (so a partial run shows where it stopped)."""

    def __init__(self, sc: Scenario):
        study, net = sc.study, sc.net
        steps, n_bus, n_line, n_pro = study.n_steps, len(net.bus), len(net.line), len(sc.prosumers)
        self.sc = sc
        self.unbalanced = is_unbalanced(net)
        self.vm_pu = np.full((steps, n_bus), np.nan)
        self.vm_phase_pu = np.full((steps, n_bus, 3), np.nan)
        self.vuf_percent = np.full((steps, n_bus), np.nan)
        self.si_pu = np.full((steps, n_bus), np.nan)
        self.trafo_loading_percent = np.full((steps, len(net.trafo)), np.nan)
        self.range_b_violation = np.zeros((steps, n_bus), dtype=np.int8)
        self.va_degree = np.full((steps, n_bus), np.nan)
        self.loading_percent = np.full((steps, n_line), np.nan)
        self.bus_p_mw = np.full((steps, n_bus), np.nan)
        self.bus_q_mvar = np.full((steps, n_bus), np.nan)
        self.substation = {k: np.full(steps, np.nan) for k in ("p_mw", "q_mvar", "pl_mw")}
        self.converged = np.zeros(steps, dtype=np.int8)
        self.voltage_violation = np.zeros((steps, n_bus), dtype=np.int8)
        self.overload = np.zeros((steps, n_line), dtype=np.int8)
        self.export_mw = np.full((steps, n_pro), np.nan)
        self.pv_p_mw = np.full((steps, n_pro), np.nan)
        self.pv_curtailed_p_mw = np.full((steps, n_pro), np.nan)
        self.battery_p_mw = np.full((steps, n_pro), np.nan)
        self.meter_import_wh = np.full((study.n_intervals, n_pro), -1, dtype=np.int64)
        self.meter_export_wh = np.full((study.n_intervals, n_pro), -1, dtype=np.int64)
        self.meter_pv_wh = np.full((study.n_intervals, n_pro), -1, dtype=np.int64)
        self.meter_battery_wh = np.full((study.n_intervals, n_pro), -1, dtype=np.int64)
        self.steps_done = 0

    def step(self, step: int, result, inj: Injections, setpoints: dict[str, np.ndarray]) -> None:
        net, limits = self.sc.net, self.sc.study.grid.limits
        self.vm_pu[step] = result.vm_pu
        self.vm_phase_pu[step] = result.vm_phase_pu
        self.vuf_percent[step] = result.vuf_percent
        self.trafo_loading_percent[step] = result.trafo_loading_percent
        if result.converged and not self.unbalanced:
            self.si_pu[step] = voltage_stability_index(net, result)
        self.range_b_violation[step] = ansi_c84_1_band(result.vm_phase_pu, range="B").violation.any(axis=1)
        self.va_degree[step] = result.va_degree
        self.loading_percent[step] = result.loading_percent
        for key in self.substation:
            self.substation[key][step] = getattr(result, key)
        self.converged[step] = result.converged
        self.voltage_violation[step] = voltage_violation(result.vm_phase_pu, limits.vm_min_pu,
                                                         limits.vm_max_pu).any(axis=1)
        self.overload[step] = overload(result.loading_percent, limits.max_loading_percent)
        self.bus_p_mw[step], self.bus_q_mvar[step] = bus_net_load(net, inj)
        self.export_mw[step] = setpoints["pv_p_mw"] - setpoints["load_p_mw"] - setpoints["battery_p_mw"]
        self.pv_p_mw[step] = setpoints["pv_p_mw"]
        self.pv_curtailed_p_mw[step] = setpoints["pv_curtailed_p_mw"]
        self.battery_p_mw[step] = setpoints["battery_p_mw"]
        self.steps_done = step + 1

    def meter(self, interval: int, registers: dict[str, np.ndarray]) -> None:
        """Keep one interval's meter registers (keys ``import_wh``, ``export_wh``, ``pv_wh``, ``battery_wh``). [Wh]"""
        self.meter_import_wh[interval] = registers["import_wh"]
        self.meter_export_wh[interval] = registers["export_wh"]
        self.meter_pv_wh[interval] = registers["pv_wh"]
        self.meter_battery_wh[interval] = registers["battery_wh"]

    def write(self, run_dir: Path, complete: bool) -> None:
        sc = self.sc
        part = Part(sc, "grid", steps_completed=self.steps_done)
        part.add("vm_pu", ("time", "bus"), self.vm_pu, "pu", "bus voltage magnitude")
        part.add("va_degree", ("time", "bus"), self.va_degree, "degree", "bus voltage angle")
        part.add("loading_percent", ("time", "line"), self.loading_percent, "%", "line loading")
        if len(sc.net.trafo):
            part.add("trafo_loading_percent", ("time", "trafo"), self.trafo_loading_percent, "%",
                     "transformer loading")
        if self.unbalanced:
            part.add("vm_phase_pu", ("time", "bus", "phase"), self.vm_phase_pu, "pu",
                     "phase-to-neutral voltage magnitude per phase")
            part.add("vuf_percent", ("time", "bus"), self.vuf_percent, "%",
                     "voltage unbalance factor |V2|/|V1| (IEC 61000-4-30)")
        else:
            part.add("si_pu", ("time", "bus"), self.si_pu, "pu",
                     "voltage stability index (Chakravorty and Das 2001)")
        part.add("range_b_violation", ("time", "bus"), self.range_b_violation, "1",
                 "voltage outside ANSI C84.1 Range B on any phase")
        part.add("p_mw", ("time", "bus"), self.bus_p_mw, "MW", "net active load at bus (load - generation + charging)")
        part.add("q_mvar", ("time", "bus"), self.bus_q_mvar, "Mvar", "net reactive load at bus")
        part.add("substation_p_mw", ("time",), self.substation["p_mw"], "MW", "substation import (external grid)")
        part.add("substation_q_mvar", ("time",), self.substation["q_mvar"], "Mvar", "substation reactive import")
        part.add("pl_mw", ("time",), self.substation["pl_mw"], "MW", "feeder losses")
        part.add("converged", ("time",), self.converged, "1", "power flow converged")
        part.add("voltage_violation", ("time", "bus"), self.voltage_violation, "1",
                 "voltage outside the study's limits on any phase")
        part.add("overload", ("time", "line"), self.overload, "1", "line loading above limit")
        part.add("export_mw", ("time", "prosumer"), self.export_mw, "MW", "prosumer net export at the meter")
        part.add("meter_import_wh", ("interval", "prosumer"), self.meter_import_wh, "Wh",
                 "metered import per interval (-1: not metered)")
        part.add("meter_export_wh", ("interval", "prosumer"), self.meter_export_wh, "Wh",
                 "metered export per interval (-1: not metered)")
        part.add("meter_pv_wh", ("interval", "prosumer"), self.meter_pv_wh, "Wh",
                 "metered PV generation per interval (-1: not metered)")
        part.add("meter_battery_wh", ("interval", "prosumer"), self.meter_battery_wh, "Wh",
                 "metered battery discharge per interval (-1: not metered)")
        part.write(run_dir, complete)


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


def injections(sc: Scenario, step: int, setpoints: dict[str, np.ndarray], loads: Loads | None = None) -> Injections:
    """pandapower element setpoints for one step: profiles for the feeder's own elements, DER values for prosumers.

    ``loads`` are the profiles of the feeder's own loads: the actual ones
    (``sc.loads``) by default, the expected ones for a forecast.
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


def _readings(sc: Scenario, meters: list[Wallet], addresses: MarketAddresses, interval: int,
              steps: slice, record: GridRecord) -> tuple[list[bytes], dict[str, np.ndarray]]:
    """Signed meter-reading transactions for the interval over ``steps`` and the registers they carry. [Wh]"""
    step_s = sc.study.power_flow_step_s
    registers = dict(zip(("import_wh", "export_wh"), interval_energy_wh(record.export_mw[steps], step_s)))
    registers.update(zip(("pv_wh", "battery_wh"),
                         source_energy_wh(record.pv_p_mw[steps], record.battery_p_mw[steps], step_s)))
    txs = [post_reading(meter, addresses, interval, **{name: int(wh[i]) for name, wh in registers.items()})
           for i, meter in enumerate(meters)]
    return txs, registers


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir, with_devices=True)
    study = sc.study
    names = [p.name for p in sc.prosumers]
    accounts = [derive_account(study.seed, f"meter/{name}") for name in names]
    prosumer_of = {derive_account(study.seed, f"prosumer/{name}").address: i for i, name in enumerate(names)}
    awards: dict[int, list[tuple[int, str]]] = {}
    pf = PowerFlow(sc.net, backend=study.grid.backend)
    record = GridRecord(sc)
    steps_per_interval = study.market_interval_s // study.power_flow_step_s
    with joined(run_dir, "grid", stop_time_s(study)) as fed:
        finished = False
        try:
            fed.enter()
            notice = deployment(fed.receive())
            meters = [Wallet(account, notice["chain_id"]) for account in accounts]
            for step, time_s in enumerate(grid_times(study)):
                fed.advance(time_s)
                _handle(fed.receive(), awards, sc)
                if step and step % steps_per_interval == 0:
                    interval = step // steps_per_interval - 1
                    window = slice(step - steps_per_interval, step)
                    txs, registers = _readings(sc, meters, MarketAddresses(**notice["addresses"]), interval, window,
                                               record)
                    for tx in txs:
                        fed.send(LEDGER_ENDPOINT, tx)
                    record.meter(interval, registers)
                    for tx in deliveries(sc, meters, notice.get("flexibility"), awards.pop(interval, []), window,
                                         record, prosumer_of):
                        fed.send(LEDGER_ENDPOINT, tx)
                if step == study.n_steps:
                    break
                setpoints = {q: np.array([fed.value(setpoint_key(n, q)) for n in names])
                             for q, _ in DER_SETPOINTS}
                inj = injections(sc, step, setpoints)
                result = pf.step(inj)
                inj, setpoints = actual_output(sc, inj, setpoints, result.converged)
                record.step(step, result, inj, setpoints)
                if not result.converged:
                    log.warning("t=%.0f s: power flow did not converge; step recorded as NaN", time_s - 0.5)
                _publish(fed, sc, result)
            finished = True
        finally:
            record.write(run_dir, complete=finished)



def install_inverters(sc: Scenario, settings: dict) -> InverterController:
    """Run the DER federate's inverter settings as a pandapower controller on the prosumers' PV sgens.

    ``settings["volt_var"]`` and ``["volt_watt"]`` are the curve points
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
    """PV power the inverters delivered where controllers changed it (``net.res_sgen``), for records and meters. [MW]"""
    net = sc.net
    if not converged or not len(net.controller) or not len(net.sgen):
        return inj, setpoints
    sgen_p_mw = net.res_sgen.p_mw.to_numpy(copy=True)
    pv = setpoints["pv_p_mw"].copy()
    for i, p in enumerate(sc.prosumers):
        if p.name in sc.devices.sgen:
            pv[i] = sgen_p_mw[net.sgen.index.get_loc(sc.devices.sgen[p.name])]
    return replace(inj, sgen_p_mw=sgen_p_mw), {**setpoints, "pv_p_mw": pv}


def _handle(messages: list[tuple[str, bytes]], awards: dict[int, list[tuple[int, str]]], sc: Scenario) -> None:
    """Log rejected meter transactions; keep flexibility awards as interval -> [(request id, DER address)];
    install the inverters the DER federate describes."""
    for _, payload in messages:
        body = decode(payload)
        if body["type"] == "inverters":
            install_inverters(sc, body)
        elif body["type"] == "flex_awards":
            for award in body["awards"]:
                awards.setdefault(award["interval"], []).extend((award["request_id"], der) for der in award["p_w"])
        for receipt in body.get("receipts", []):
            if not receipt["status"]:
                log.error("meter transaction %s rejected: %s", receipt["tx_hash"], receipt["revert_reason"])


def deliveries(sc: Scenario, meters: list[Wallet], address: str, awarded: list[tuple[int, str]], steps: slice,
               record: GridRecord, prosumer_of: dict[str, int]) -> list[bytes]:
    """Signed ``post_delivery`` of each awarded DER's meter: its curtailed PV energy over ``steps``. [Wh]"""
    step_h = sc.study.power_flow_step_s / 3600.0
    txs = []
    for request_id, der in awarded:
        i = prosumer_of[der]
        delivered_wh = int(round(float(np.nansum(record.pv_curtailed_p_mw[steps, i])) * step_h * 1e6))
        txs.append(flex.post_delivery(meters[i], address, request_id, delivered_wh=delivered_wh))
    return txs


def _publish(fed, sc: Scenario, result) -> None:
    for bus, vm in zip(sc.net.bus.index, result.vm_pu):
        fed.publish(f"grid/bus/{bus}/vm_pu", float(vm))
    for line, loading in zip(sc.net.line.index, result.loading_percent):
        fed.publish(f"grid/line/{line}/loading_percent", float(loading))
    fed.publish("grid/substation/p_mw", float(result.p_mw))
    fed.publish("grid/substation/q_mvar", float(result.q_mvar))
    fed.publish("grid/substation/pl_mw", float(result.pl_mw))


def main() -> None:
    run_federate("grid", run)


if __name__ == "__main__":
    main()
