"""Coordinator federate: clears what the zones' books left, across zones, in a sharded run.

Runs with a ledger per zone (`market.sharding: per-zone`).

Endpoint ``coordinator/zones``
    receives each zone ledger's ``residuals`` of an interval (sent at the
    gate) and, half a second after the gate, sends every zone ledger its
    ``cross_fills``: the coordinator's price and the fills of that zone's
    orders, which the zone's operator settles on its chain a second
    after the gate.

What the coordinator decides is `gridledger.agents.coordinator`; this
module only wires it to HELICS. It holds no key and runs no chain.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.coordinator import Coordinator
from gridledger.messages import decode
from gridledger.checkpoint import Keeper
from gridledger.roster import load_roster
from gridledger.run_secret import federate_secret
from gridledger.schedule import coordinator_times, stop_time_s


def run(run_dir: Path) -> None:
    roster = load_roster(run_dir)
    coordinator = Coordinator(roster)
    keeper = Keeper.of(run_dir, "coordinator", roster.study, federate_secret())
    coordinator = keeper.restore() or coordinator
    with joined(run_dir, "coordinator", stop_time_s(roster.study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            fed.keep(coordinator, coordinator.part)
            for time_s, interval in fed.ahead(coordinator_times(roster.study), lambda item: item[0]):
                fed.advance(time_s)                                               # advance
                residuals = [(source, decode(payload)) for source, payload in fed.receive()]   # receive
                for destination, payload in coordinator.clear(interval, residuals):   # act
                    fed.send(destination, payload)                                # send
            finished = True
        finally:
            coordinator.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("coordinator", run)


if __name__ == "__main__":
    main()
