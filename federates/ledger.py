"""Ledger federate: the embedded chain, its market contracts and their clock.

Endpoint ``ledger/tx``
    receives signed raw transactions (orders from ``der/agents``, meter
    readings from ``grid/meters``, requests and headrooms from
    ``operator/dso``, flags and estimates from ``auditor/checks``), and with ``market.submission: batched`` the signed
    orders (``signed_orders``) and readings (``signed_readings``) the
    operator relays in one transaction each; mines them into one block per action with block
    timestamp = study start + simulation time; returns every receipt
    (status, revert reason, gas) to the endpoint that sent the
    transaction, and what a relayed batch skipped (``rejected``).
Messages sent
    ``deployed`` (before time 0, to agents, meters, the DSO and the
    auditor), ``receipts``, ``lots``, ``flex_requests``, ``flex_awards``
    (agents and meters), ``charging`` and ``cleared`` (agents),
    ``readings`` (the auditor: what each block settled, flagged and
    isolated); a zone's ledger sends
    ``residuals`` to ``coordinator/zones`` at each gate and receives its
    ``cross_fills`` from there.

Every decision (what to mine, how to close an auction, what the agents
are told, what is recorded) is the market operator's
(`gridledger.agents.market_operator`); this module only moves time and
messages. With ``market.sharding: per-zone`` the federate runs once per
zone (``python -m gridledger.federates.ledger RUN_DIR ZONE``, named
``ledger-<zone>``, endpoint ``ledger-<zone>/tx``) over its zone's
prosumers only, with its own chain exported to ``chain/<zone>/`` and its
own results part. The chain is exported to ``chain/`` as it grows: the setup
blocks once deployed, then each block as soon as it is mined, so a
killed ledger leaves every block it mined; a SIGTERM (a stop) waits
until the block being mined is exported. Its database is kept in
``chaindb/`` the same way, with the contracts' addresses and ABIs in
``deployments.json``, and with ``ledger.rpc`` in the study a background
thread serves it over read-only Ethereum JSON-RPC, at the last block
mined (`gridledger.agents.ledger_tools`). After the run the ledger's
results part is written, also after a failure or a stop.
"""

from __future__ import annotations

import sys
from pathlib import Path

from gridledger.federates.shell import Shell, joined, run_federate, stop_deferred  # first: see gridledger.lean
from gridledger.agents.ledger_tools import LedgerTools
from gridledger.agents.market_operator import Message, MarketOperator
from gridledger.checkpoint import Keeper
from gridledger.federation import zone_ledger
from gridledger.roster import load_roster, zone_roster
from gridledger.run_secret import federate_secret
from gridledger.schedule import ledger_actions, stop_time_s


def send(fed: Shell, outbox: list[Message]) -> None:
    """Send each (destination, payload) in order."""
    for destination, payload in outbox:
        fed.send(destination, payload)


def run(run_dir: Path, zone: str | None = None) -> None:
    """Run the ledger of the whole feeder, or (sharded) of one `zone`."""
    sc = load_roster(run_dir) if zone is None else zone_roster(load_roster(run_dir), zone)
    name = "ledger" if zone is None else zone_ledger(zone)
    secret = federate_secret()
    keeper = Keeper.of(run_dir, name, sc.study, secret)
    market = keeper.restore()                                              # resumed: the chain at the checkpoint
    if market is None:
        market = MarketOperator.deploy(sc, secret)                         # setup blocks before time 0
        market.open_export(run_dir, zone)                                  # chain/ (or chain/<zone>/) so far
        tools = LedgerTools.open(market.chain, run_dir, zone, sc.study.ledger.rpc)   # chaindb/, deployments, endpoint
    else:
        tools = LedgerTools.serve(market.chain, sc.study.ledger.rpc)
    with joined(run_dir, name, stop_time_s(sc.study), keeper) as fed:
        finished = False
        try:
            if keeper.resume is None:
                fed.initialize()
                send(fed, market.deployment())
            fed.enter()
            fed.keep(market, lambda: market.part(name))
            for action in fed.ahead(ledger_actions(sc.study), lambda a: a.time_s):
                fed.advance(action.time_s)                                 # advance
                # A gate's block holds the operator's closing alone; a zone's "cross" takes the coordinator's fills.
                received = fed.receive() if action.kind in ("mine", "cross") else []   # receive
                with stop_deferred():                                      # a stop waits for the block
                    outbox = market.act(action, received)                  # act: mine one block
                    market.export.append()                                 # append it to chain/
                    tools.mined()                                          # the endpoint answers at it
                send(fed, outbox)                                          # send
            market.audit()
            finished = True
        finally:
            with stop_deferred():
                market.write(run_dir, complete=finished, name=name)
                tools.close()


def main() -> None:
    """``RUN_DIR`` for the feeder's ledger, ``RUN_DIR ZONE`` for a zone's."""
    argv = sys.argv[1:]
    zone = argv[1] if len(argv) == 2 else None
    run_federate("ledger" if zone is None else zone_ledger(zone), lambda run_dir: run(run_dir, zone), argv[:1])


if __name__ == "__main__":
    main()
