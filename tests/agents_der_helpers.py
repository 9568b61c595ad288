"""Shared set-up of the DER agent unit tests: a small in-process scenario and signed-transaction decoding.

No HELICS, no processes: the scenario is built in memory and transactions
are decoded with eth-account, so a test reads what an agent signed.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.typed_transactions import TypedTransaction
from hexbytes import HexBytes

from gridledger.scenario import Scenario, build_scenario
from gridledger.study import parse_study
from tests.secret_helpers import fixed_secret

CHAIN_ID = 1337
SECRET = fixed_secret(42)
REGISTRY, TOKEN, AUCTION, SETTLEMENT, FLEX, CHARGING = (f"0x{d * 40}" for d in "abcdef")


def small_scenario(start: str = "2024-06-21T10:00:00", mechanism: str = "uniform-double-auction",
                   prosumers: dict | None = None, market: dict | None = None) -> Scenario:
    """Four prosumers on case33bw for two 15-minute intervals of 5-minute steps (buses 1-4: p01 and p04 have PV)."""
    return build_scenario(parse_study({
        "name": "agents", "start": start, "duration_s": 1800, "power_flow_step_s": 300, "market_interval_s": 900,
        "seed": 42, "grid": {"feeder": "case33bw"},
        "prosumers": {"count": 4, "pv": {"share": 0.5}, "battery": {"share": 0.5}, **(prosumers or {})},
        "market": {"mechanism": mechanism, **(market or {})},
    }))


def notice(mechanism: str, flexibility: bool = False, charging: bool = False) -> dict:
    """A ledger deployment notice naming fake contract addresses."""
    body = {"type": "deployed", "chain_id": CHAIN_ID,
            "addresses": {"registry": REGISTRY, "token": TOKEN, "auction": AUCTION, "settlement": SETTLEMENT,
                          "mechanism": mechanism}}
    if flexibility:
        body["flexibility"] = FLEX
    if charging:
        body["charging"] = CHARGING
    return body


@dataclass(frozen=True)
class Tx:
    """What a signed transaction says: sender, nonce, target and calldata."""

    sender: str
    nonce: int
    to: str
    data: bytes


def decoded(raw: bytes) -> Tx:
    fields = TypedTransaction.from_bytes(HexBytes(raw)).as_dict()
    return Tx(Account.recover_transaction(raw), fields["nonce"], "0x" + bytes(fields["to"]).hex(),
              bytes(fields["data"]))
