"""Operator federate (DSO): watches the feeder, posts flexibility requests and charging headroom.

Runs with the voltage-regulation market (`market.voltage_regulation`),
EV charging coordination (`market.charging_coordination`) or ancillary
services for import caps (`ancillary`) on.

Subscribes
    grid/bus/<bus>/vm_pu, grid/substation/p_mw: what it watches; the
    highest voltage and the import measured at each interval start are
    recorded next to its forecast for the interval (and logged).
Endpoint ``operator/dso``
    receives the ledger's deployment notice and the receipts of its
    transactions; sends its signed transactions to ``ledger/tx``: one
    ``approve`` of its budget at the start, then at s_k + 0.75 (after the
    grid has solved the step at s_k) a ``post_request`` for interval k+1
    when its forecast puts the highest voltage above the limit, and the
    substation headroom of interval k+1 for charging (``post_headroom``);
    with ``ancillary`` the reserve windows and load shed programme at s_0,
    and the activation and call for interval k+1 at s_k, having received
    the awards (``reserve_awards``).

What the DSO decides is `gridledger.agents.dso`; this module only wires
it to HELICS.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.dso import Dso
from gridledger.federation import LEDGER_ENDPOINT, SUBSTATION_P_KEY, bus_vm_key
from gridledger.messages import decode, deployment
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.scenario import load_scenario
from gridledger.schedule import operator_times, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir, with_devices=True)
    study = sc.study
    secret = federate_secret()
    dso = Dso(sc, secret)
    buses = [bus_vm_key(b) for b in sc.net.bus.index]
    keeper = Keeper.of(run_dir, "operator", study, secret)
    restored = keeper.restore()
    with joined(run_dir, "operator", stop_time_s(study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                for tx in dso.join(deployment(fed.receive())):
                    fed.send(LEDGER_ENDPOINT, tx)
            else:
                dso = restored
            fed.keep(dso, dso.part)
            for k, time_s in fed.ahead(enumerate(operator_times(study)), lambda item: item[1]):
                fed.advance(time_s)                                           # advance
                dso.handle([decode(payload) for _, payload in fed.receive()])  # receive
                vm_pu = [fed.value(key) for key in buses]                     # read inputs
                for tx in dso.act(k, time_s, vm_pu, fed.value(SUBSTATION_P_KEY)):   # act
                    fed.send(LEDGER_ENDPOINT, tx)                             # send
            finished = True
        finally:
            dso.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("operator", run)


if __name__ == "__main__":
    main()
