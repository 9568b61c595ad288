"""Service federate: the service crew that acts on a declared emergency's grant.

Runs with ``emergency`` in the study.

Endpoint ``service/crew``
    receives the ledger's deployment notice and the receipts of the
    crew's transactions; at each override's time
    (`gridledger.schedule.service_times`) sends ``ledger/tx`` the signed
    ``ChargingCoordination.override``, which the contract checks against
    the crew's grant.

What the crew does is `gridledger.agents.service_crew`; this module only
wires it to HELICS.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.service_crew import ServiceCrew
from gridledger.federation import LEDGER_ENDPOINT
from gridledger.messages import deployment
from gridledger.roster import load_roster
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.schedule import service_times, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_roster(run_dir)
    secret = federate_secret()
    crew = ServiceCrew(sc, secret)
    keeper = Keeper.of(run_dir, "service", sc.study, secret)
    restored = keeper.restore()
    with joined(run_dir, "service", stop_time_s(sc.study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                crew.join(deployment(fed.receive()))
            else:
                crew = restored
            fed.keep(crew, crew.part)
            for time_s in fed.ahead([*service_times(sc.study), stop_time_s(sc.study)]):
                fed.advance(time_s)                                           # advance
                crew.receive(fed.receive())                                   # receive
                for tx in crew.act(time_s):                                   # act
                    fed.send(LEDGER_ENDPOINT, tx)                             # send
            finished = True
        finally:
            crew.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("service", run)


if __name__ == "__main__":
    main()
