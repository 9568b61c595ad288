"""DER federate: the prosumer agents, each with its own key, devices and orders.

Publishes
    der/<prosumer>/load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw, pv_curtailed_p_mw   every step
    (pandapower signs: load consuming +, PV generating +, battery charging +)
Endpoint ``der/agents``
    sends the PV inverters' settings (``inverters``) to ``grid/meters`` once
    at the start, and to ``ledger/tx`` each agent's signed transactions: bond
    approvals and choices of PV-sourced energy at the start, then orders (batched submission: one
    ``signed_orders`` message per interval) or lots, bids and reveals in the
    rounds of `gridledger.schedule`, curtailment offers and EV charging
    requests (``market.sharding: per-zone``: each to ``ledger-<zone>/tx`` of
    its signer's zone, `gridledger.agents.routing`), and after the study the owners' approvals of data requests;
    receives ``receipts``, ``rejected``, ``cleared``, ``lots``, ``flex_requests``, ``flex_awards``, ``charging``,
    ``charging_cut``, ``two_phase_events``, ``emergency_reads`` and ``data_events`` from the ledger; as the
    households' gateways, sends ``service/crew`` the data of each emergency read the chain allows
    (``emergency_data``).
Files
    ``data/<prosumer>.sqlite``: each owner's store, written when the data requests arrive (``data_access``).

What the agents decide is `gridledger.agents.der_agents` and the modules it names.
"""

from __future__ import annotations

from pathlib import Path

from gridledger.federates.shell import joined, run_federate  # first: see gridledger.lean
from gridledger.agents.der_agents import DerAgents
from gridledger.agents.routing import TxRouter
from gridledger.federation import GRID_ENDPOINT, setpoint_key
from gridledger.messages import deployment, encode
from gridledger.roster import load_roster
from gridledger.checkpoint import Keeper
from gridledger.run_secret import federate_secret
from gridledger.schedule import der_actions, stop_time_s


def run(run_dir: Path) -> None:
    sc = load_roster(run_dir)
    secret = federate_secret()
    agents = DerAgents(sc, secret, run_dir)
    names = [p.name for p in sc.prosumers]
    keeper = Keeper.of(run_dir, "der", sc.study, secret)
    restored = keeper.restore()
    with joined(run_dir, "der", stop_time_s(sc.study), keeper) as fed:
        finished = False
        try:
            fed.enter()
            if restored is None:
                notice = deployment(fed.receive())
                agents.connect(notice)
                router = TxRouter.of(sc, secret, notice)        # sharded: to each signer's zone ledger
                for tx in agents.opening():
                    fed.send(router.endpoint(tx), tx)
                if (settings := agents.inverter_settings()) is not None:
                    fed.send(GRID_ENDPOINT, encode("inverters", **settings))
            else:
                agents, router = restored
            fed.keep((agents, router), agents.part)
            for action in fed.ahead(der_actions(sc.study), lambda a: a.time_s):
                fed.advance(action.time_s)                      # advance
                agents.handle(fed.receive())                    # receive
                outbox = agents.act(action)                     # act
                for tx in outbox.txs:                           # publish
                    for endpoint, payload in router.route(tx):
                        fed.send(endpoint, payload)
                for endpoint, payload in outbox.messages:
                    fed.send(endpoint, payload)
                for quantity, values in outbox.setpoints.items():
                    for name, value in zip(names, values):
                        fed.publish(setpoint_key(name, quantity), float(value))
            finished = True
        finally:
            agents.part().write(run_dir, complete=finished)


def main() -> None:
    run_federate("der", run)


if __name__ == "__main__":
    main()
