"""Grid federate: the feeder's power flow, meters and limit checks.

Publishes
    grid/bus/<bus>/vm_pu, grid/line/<line>/loading_percent,
    grid/substation/p_mw, q_mvar, pl_mw                      every step
Subscribes
    der/<prosumer>/load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw, pv_curtailed_p_mw
Endpoint ``grid/meters``
    sends each meter's signed ``post_reading`` transaction to ``ledger/tx``
    (``market.sharding: per-zone``: to its zone's ``ledger-<zone>/tx``)
    after every market interval (batched submission: one ``signed_readings``
    message, as an AMI head-end); receives the ledger's deployment notice and
    the receipts of its readings (batched: ``rejected``). With the voltage-regulation market on it
    receives the flexibility awards and, after each window, every awarded
    DER's meter posts the curtailment measured from the power flow against
    the DER's available PV (``post_delivery``), not what the DER reports.
    Receives the DER federate's inverter settings. With ``audit`` on it
    sends the operator's grid sensors (``sensors``) to ``auditor/checks``
    after every interval; with ``attacks`` the meters tamper as told and
    bypassed load flows in the power flow (`gridledger.agents.attacks`).
    With an island cap it tells the DER federate what the island's
    batteries ran at in each islanded step (``island``).

What the feeder does each step is `gridledger.agents.feeder`, what it
records `gridledger.agents.feeder_record`, what the meters sign
`gridledger.agents.meters`; this module only wires them to HELICS.
"""

from __future__ import annotations

import logging
from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
import numpy as np

from gridledger.agents.feeder import Feeder
from gridledger.agents.grid_sensors import GridSensors
from gridledger.agents.meters import Meters
from gridledger.grids.powerflow import StepResult
from gridledger.agents.routing import TxRouter
from gridledger.federation import (DER_ENDPOINT, DER_SETPOINTS, SUBSTATION_P_KEY, SUBSTATION_PL_KEY,
                                   SUBSTATION_Q_KEY, bus_vm_key, line_loading_key, setpoint_key)
from gridledger.messages import deployment, encode
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.scenario import Scenario, load_scenario
from gridledger.schedule import GRID_OFFSET_S, grid_times, stop_time_s

log = logging.getLogger("gridledger.grid")


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir, with_devices=True)
    study = sc.study
    names = [p.name for p in sc.prosumers]
    feeder = Feeder(sc)
    secret = federate_secret()
    keeper = Keeper.of(run_dir, "grid", study, secret)
    restored = keeper.restore()
    with joined(run_dir, "grid", stop_time_s(study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                notice = deployment(fed.receive())
                meters = Meters(sc, notice, secret)
                router = TxRouter.of(sc, secret, notice)                      # sharded: to each meter's zone ledger
                sensors = GridSensors(sc, secret) if study.audit is not None else None
            else:
                feeder, meters, router, sensors = restored
            fed.keep((feeder, meters, router, sensors), feeder.record.part)
            for step, time_s in fed.ahead(enumerate(grid_times(study)), lambda item: item[1]):
                fed.advance(time_s)                                           # advance
                meters.handle(fed.receive())                                  # receive
                for tx in meters.close_interval(step, feeder.record):         # meter the interval that ended
                    for endpoint, payload in router.route(tx):
                        fed.send(endpoint, payload)
                for endpoint, payload in sensors.close_interval(step, feeder.record) if sensors else []:
                    fed.send(endpoint, payload)                               # the operator's sensors, to the auditor
                if step == study.n_steps:
                    break
                setpoints = {q: np.array([fed.value(setpoint_key(n, q)) for n in names])
                             for q, _ in DER_SETPOINTS}                       # read inputs
                now_s = time_s - GRID_OFFSET_S
                result = feeder.step(step, setpoints, meters.bypass_mw(step),  # solve and record
                                     meters.responses.reserve_mw(now_s), meters.responses.responding(now_s))
                if feeder.formed:                                             # what the island's batteries ran at
                    fed.send(DER_ENDPOINT, encode("island", step=step, battery_p_mw={
                        str(i): p_mw for i, p_mw in feeder.formed.items()}))
                if not result.converged:
                    log.warning("t=%.0f s: power flow did not converge; step recorded as NaN", now_s)
                _publish(fed, sc, result)                                     # publish
            finished = True
        finally:
            feeder.record.part().write(run_dir, complete=finished)


def _publish(fed, sc: Scenario, result: StepResult) -> None:
    for bus, vm in zip(sc.net.bus.index, result.vm_pu):
        fed.publish(bus_vm_key(bus), float(vm))
    for line, loading in zip(sc.net.line.index, result.loading_percent):
        fed.publish(line_loading_key(line), float(loading))
    fed.publish(SUBSTATION_P_KEY, float(result.p_mw))
    fed.publish(SUBSTATION_Q_KEY, float(result.q_mvar))
    fed.publish(SUBSTATION_PL_KEY, float(result.pl_mw))


def main() -> None:
    run_federate("grid", run)


if __name__ == "__main__":
    main()
