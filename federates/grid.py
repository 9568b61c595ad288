"""Grid federate: the feeder's power flow, meters and limit checks.

Publishes
    grid/bus/<bus>/vm_pu, grid/line/<line>/loading_percent,
    grid/substation/p_mw, q_mvar, pl_mw                      every step
Subscribes
    der/<prosumer>/load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw
Endpoint ``grid/meters``
    sends each meter's signed ``post_reading`` transaction to ``ledger/tx``
    after every market interval; receives the ledger's deployment notice and
    the receipts of its readings.

Loads without a prosumer follow the shipped load profile. The physics lives
in `gridledger.grids`; this module only wires it to HELICS and records.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gridledger.contracts.client import Wallet
from gridledger.contracts.market import MarketAddresses, post_reading
from gridledger.contracts.keys import derive_account
from gridledger.federates.messages import decode, deployment
from gridledger.federates.shell import joined, run_federate
from gridledger.grids.feeders import is_unbalanced
from gridledger.grids.limits import overload, voltage_violation
from gridledger.grids.stability import ansi_c84_1_band, voltage_stability_index
from gridledger.grids.metering import interval_energy_wh
from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.interfaces import LEDGER_ENDPOINT, setpoint_key
from gridledger.results import Part
from gridledger.scenario import Scenario, load_scenario
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
        self.meter_import_wh = np.full((study.n_intervals, n_pro), -1, dtype=np.int64)
        self.meter_export_wh = np.full((study.n_intervals, n_pro), -1, dtype=np.int64)
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
        self.steps_done = step + 1

    def meter(self, interval: int, import_wh: np.ndarray, export_wh: np.ndarray) -> None:
        self.meter_import_wh[interval] = import_wh
        self.meter_export_wh[interval] = export_wh

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
        part.write(run_dir, complete)


def bus_net_load(net, inj: Injections) -> tuple[np.ndarray, np.ndarray]:
    """Net load per bus from element setpoints (load - sgen + storage), ordered like ``net.bus``. [MW], [Mvar]"""
    p = np.zeros(len(net.bus))
    q = np.zeros(len(net.bus))
    pos = net.bus.index.get_indexer
    np.add.at(p, pos(net.load.bus), inj.load_p_mw)
    np.add.at(q, pos(net.load.bus), inj.load_q_mvar)
    np.add.at(p, pos(net.sgen.bus), -inj.sgen_p_mw)
    np.add.at(p, pos(net.storage.bus), inj.storage_p_mw)
    np.add.at(p, pos(net.asymmetric_load.bus), inj.asymmetric_load_p_mw)
    np.add.at(q, pos(net.asymmetric_load.bus), inj.asymmetric_load_q_mvar)
    return p, q


def _injections(sc: Scenario, step: int, setpoints: dict[str, np.ndarray]) -> Injections:
    """pandapower element setpoints for one step: profiles for the feeder's own elements, DER values for prosumers."""
    net = sc.net
    load_p, load_q = sc.loads.p_mw[step].copy(), sc.loads.q_mvar[step].copy()
    asym_p, asym_q = sc.loads.asym_p_mw[step].copy(), sc.loads.asym_q_mvar[step].copy()
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
              export_mw: np.ndarray) -> tuple[list[bytes], np.ndarray, np.ndarray]:
    """Signed meter-reading transactions for one interval and the energies they carry."""
    import_wh, export_wh = interval_energy_wh(export_mw, sc.study.power_flow_step_s)
    txs = [post_reading(meter, addresses, interval, import_wh=int(imp), export_wh=int(exp))
           for meter, imp, exp in zip(meters, import_wh, export_wh)]
    return txs, import_wh, export_wh


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir, with_devices=True)
    study = sc.study
    names = [p.name for p in sc.prosumers]
    accounts = [derive_account(study.seed, f"meter/{name}") for name in names]
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
                _log_receipts(fed.receive())
                if step and step % steps_per_interval == 0:
                    interval = step // steps_per_interval - 1
                    window = record.export_mw[step - steps_per_interval:step]
                    txs, imp, exp = _readings(sc, meters, MarketAddresses(**notice["addresses"]), interval, window)
                    for tx in txs:
                        fed.send(LEDGER_ENDPOINT, tx)
                    record.meter(interval, imp, exp)
                if step == study.n_steps:
                    break
                setpoints = {q: np.array([fed.value(setpoint_key(n, q)) for n in names])
                             for q in ("load_p_mw", "load_q_mvar", "pv_p_mw", "battery_p_mw")}
                inj = _injections(sc, step, setpoints)
                result = pf.step(inj)
                record.step(step, result, inj, setpoints)
                if not result.converged:
                    log.warning("t=%.0f s: power flow did not converge; step recorded as NaN", time_s - 0.5)
                _publish(fed, sc, result)
            finished = True
        finally:
            record.write(run_dir, complete=finished)



def _log_receipts(messages: list[tuple[str, bytes]]) -> None:
    for _, payload in messages:
        for receipt in decode(payload).get("receipts", []):
            if not receipt["status"]:
                log.error("meter transaction %s rejected: %s", receipt["tx_hash"], receipt["revert_reason"])


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
