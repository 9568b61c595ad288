"""Shared set-up of the ledger agents' unit tests: a small scenario, hand-made receipts and events, a running market.

No HELICS and no processes: the market operator runs on an in-process
chain, and the record and desks read events built by hand.
"""

from __future__ import annotations

from gridledger.agents.blocks import MinedBlock
from gridledger.agents.market_operator import MarketOperator
from gridledger.contracts.chain import Receipt
from gridledger.contracts.client import DecodedLog, Wallet
from gridledger.contracts.keys import derive_account
from gridledger.scenario import Scenario, build_scenario
from gridledger.study import parse_study
from tests.secret_helpers import fixed_secret

SEED = 42
SECRET = fixed_secret(SEED)
INTERVAL_S = 900
GATE_CLOSURE_S = 60
LV_FEEDER = "1-LV-semiurb4--0-sw"
# Token prices in chain units: 0.01 token/kWh is 10**13 wei/Wh.
CENT_PER_KWH = 10**13


def small_scenario(feeder: str = "case33bw", **market: object) -> Scenario:
    """Four prosumers (two with PV) on `feeder`, one hour of 15-minute intervals from 10:00.

    Charging coordination needs a feeder with a transformer at its grid
    connection, such as ``LV_FEEDER``.
    """
    return build_scenario(parse_study({
        "name": "ledger-agents", "start": "2024-06-21T10:00:00", "duration_s": 4 * INTERVAL_S,
        "power_flow_step_s": 300, "market_interval_s": INTERVAL_S, "seed": SEED,
        "grid": {"feeder": feeder},
        "prosumers": {"count": 4, "pv": {"share": 0.5, "kwp_per_kw_load": 1.5}},
        "market": {"gate_closure_s": GATE_CLOSURE_S, **market},
    }))


def receipt(gas_used: int, ok: bool = True) -> Receipt:
    """A mined receipt with no logs."""
    return Receipt(b"\x00" * 32, "0xsender", 0, int(ok), gas_used, None if ok else "boom", (), 1, None)


def event(contract: str, name: str, **args: object) -> DecodedLog:
    """A decoded event of `contract`."""
    return DecodedLog(contract, name, args)


def block(receipts: list[Receipt], events: list[DecodedLog]) -> MinedBlock:
    """A one-batch block."""
    return MinedBlock({"all": receipts}, {"all": events})


def prosumer_wallets(operator: MarketOperator) -> list[Wallet]:
    """The scenario's prosumers' wallets on the operator's chain, in prosumer order."""
    return [operator.chain.wallet(derive_account(SECRET, f"prosumer/{p.name}")) for p in operator.sc.prosumers]


def meter_wallets(operator: MarketOperator) -> list[Wallet]:
    """The scenario's meters' wallets on the operator's chain, in prosumer order."""
    return [operator.chain.wallet(derive_account(SECRET, f"meter/{p.name}")) for p in operator.sc.prosumers]
