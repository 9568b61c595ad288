"""Auditor federate: checks the settled meter readings against the grid's physics, interval by interval.

Runs with ``audit`` in the study.

Endpoint ``auditor/checks``
    receives the ledger's deployment notice, the operator's grid sensors
    of each interval from ``grid/meters`` (``sensors``), what each block
    settled, flagged and isolated from the ledger (``readings``) and the
    receipts of its own transactions; a quarter second after each
    interval's readings block it estimates the state of every interval
    with new data, finds the meters the largest normalized residual test
    singles out, and sends ``ledger/tx`` its signed flags, finalizations
    and estimates of isolated meters.

What the auditor decides is `gridledger.agents.auditor` (the estimate) and
`gridledger.agents.audit_desk` (its inputs and record); this module only
wires them to HELICS.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.audit_desk import AuditDesk
from gridledger.federation import LEDGER_ENDPOINT
from gridledger.messages import deployment
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.scenario import load_scenario
from gridledger.schedule import auditor_times, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir)
    secret = federate_secret()
    desk = AuditDesk(sc, secret)
    keeper = Keeper.of(run_dir, "auditor", sc.study, secret)
    restored = keeper.restore()
    with joined(run_dir, "auditor", stop_time_s(sc.study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                desk.join(deployment(fed.receive()))
            else:
                desk = restored
            fed.keep(desk, desk.part)
            for time_s in fed.ahead(auditor_times(sc.study)):
                fed.advance(time_s)                                           # advance
                desk.receive(fed.receive())                                   # receive
                desk.check_due(time_s)                                        # act
                for tx in desk.transactions(time_s):
                    fed.send(LEDGER_ENDPOINT, tx)                             # send
            finished = True
        finally:
            desk.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("auditor", run)


if __name__ == "__main__":
    main()
