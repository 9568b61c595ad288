"""Requestor federate: buys aggregates of the households' data through ``DataAccess``, after the study.

Runs with ``data_access`` in the study.

Endpoint ``requestor/queries``
    receives the ledger's deployment notice, its ``data_events`` and the
    receipts of the requestor's transactions, and the worker's answers
    (``data_result``); sends ``ledger/tx`` its budget approval and
    proposals (`gridledger.schedule.DataPhase.propose_s`), then its
    acceptances and cancellations (``accept_s``).
Files
    ``inbox/requestor.jsonl``: every message it received.

What the requestor decides is `gridledger.agents.requestor`; this module
only wires it to HELICS.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.requestor import Requestor
from gridledger.federation import LEDGER_ENDPOINT
from gridledger.messages import deployment
from gridledger.roster import load_roster
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.schedule import data_access_phase, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_roster(run_dir)
    phase = data_access_phase(sc.study)
    secret = federate_secret()
    requestor = Requestor(sc, secret, run_dir, phase)
    keeper = Keeper.of(run_dir, "requestor", sc.study, secret)
    restored = keeper.restore()
    with joined(run_dir, "requestor", stop_time_s(sc.study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                received = fed.receive()
                requestor.receive(received)
                requestor.join(deployment(received))
            else:
                requestor = restored
            fed.keep(requestor, requestor.part)
            for time_s, act in ((phase.propose_s, requestor.proposals), (phase.accept_s, requestor.decisions)):
                fed.advance(time_s)                                           # advance
                requestor.receive(fed.receive())                              # receive
                for tx in act():                                              # act
                    fed.send(LEDGER_ENDPOINT, tx)                             # send
            fed.advance(stop_time_s(sc.study))
            requestor.receive(fed.receive())
            finished = True
        finally:
            requestor.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("requestor", run)


if __name__ == "__main__":
    main()
