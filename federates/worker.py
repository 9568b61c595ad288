"""Worker federate: the off-chain compute worker of data access.

Runs with ``data_access`` in the study.

Endpoint ``worker/compute``
    receives the ledger's deployment notice, its ``data_events`` and the
    receipts of the worker's transactions; at the approval deadline
    (`gridledger.schedule.DataPhase.compute_s`) reads the approving
    owners' stores (``data/<prosumer>.sqlite``) and no other, sends
    ``ledger/tx`` each answer's hash and inputs commitment
    (``post_result``) and the requestor each answer (``data_result``).

What the worker computes is `gridledger.agents.data_worker`, its
bookkeeping `gridledger.agents.worker_desk`; this module only wires them
to HELICS.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.worker_desk import WorkerDesk
from gridledger.federation import LEDGER_ENDPOINT, REQUESTOR_ENDPOINT
from gridledger.messages import deployment
from gridledger.roster import load_roster
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.schedule import data_access_phase, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_roster(run_dir)
    secret = federate_secret()
    desk = WorkerDesk(sc, secret, run_dir)
    keeper = Keeper.of(run_dir, "worker", sc.study, secret)
    restored = keeper.restore()
    with joined(run_dir, "worker", stop_time_s(sc.study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                desk.join(deployment(fed.receive()))
            else:
                desk = restored
            fed.keep(desk, desk.part)
            fed.advance(data_access_phase(sc.study).compute_s)               # advance
            desk.receive(fed.receive())                                       # receive
            txs, answers = desk.compute()                                     # act
            for tx in txs:                                                    # send
                fed.send(LEDGER_ENDPOINT, tx)
            for answer in answers:
                fed.send(REQUESTOR_ENDPOINT, answer)
            fed.advance(stop_time_s(sc.study))
            desk.receive(fed.receive())
            finished = True
        finally:
            desk.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("worker", run)


if __name__ == "__main__":
    main()
