"""Auditor federate: checks the settled meter readings against the grid's physics, interval by interval.

Runs with ``audit`` in the study.

Endpoint ``auditor/checks``
    receives the operator's grid sensors of each interval from
    ``grid/meters`` (``sensors``) and the readings each block settled from
    the ledger (``readings``); a quarter second after each interval's
    readings block it estimates the state of every interval with new data
    and flags the meters the largest normalized residual test singles out.

What the auditor decides is `gridledger.agents.auditor` (the estimate) and
`gridledger.agents.audit_desk` (its inputs and record); this module only
wires them to HELICS.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.audit_desk import AuditDesk
from gridledger.run_secret import federate_secret
from gridledger.scenario import load_scenario
from gridledger.schedule import auditor_times, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir)
    desk = AuditDesk(sc, federate_secret())
    with joined(run_dir, "auditor", stop_time_s(sc.study)) as fed:
        finished = False
        try:
            fed.enter()
            for time_s in auditor_times(sc.study):
                fed.advance(time_s)                                           # advance
                desk.receive(fed.receive())                                   # receive
                desk.check_due(time_s)                                        # act
            finished = True
        finally:
            desk.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("auditor", run)


if __name__ == "__main__":
    main()
