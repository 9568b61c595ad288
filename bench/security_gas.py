"""Gas of issue 11's checks: one scripted market, per transaction type, now and before the hardening.

`scenario_gas` runs one market on a fresh chain with the builders of
`gridledger.contracts.market`: deploy a double auction with its
Settlement, Registry and token (`deploy_market`, no prosumer yet), then
register a seller and a buyer (roles, meters and, where the Settlement
has it, their reading limits), deposit, an ask and a bid of 1000 Wh in
interval 0, the clearing at its gate, both meters' readings after the
interval and a withdrawal. It returns the gas used by each labelled
transaction (the seller's where both prosumers send one).

Gas is deterministic, so the figures before the hardening are recorded
once: `gas_pre_hardening.json` holds those of this same scenario run
against commit `PRE_HARDENING_COMMIT` (the last before issue 11), with how
they were measured. `security_gas_rows` sets the live figures next to
them. Every key is fixed in the scenario (`_account`), so addresses, and
with them the calldata's gas, are the same on both.

Run ``python -m bench.security_gas`` to print the live figures as JSON.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact

PRE_HARDENING_COMMIT = "45961e0"
BASELINE_FILE = Path(__file__).with_name("gas_pre_hardening.json")

_GENESIS_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
_START_TIMESTAMP = _GENESIS_TIMESTAMP + 3600
_INTERVAL_S = 900
_GATE_CLOSURE_S = 60
_CENT_PER_KWH = 10**13  # [wei/Wh]
_DEPOSIT_WEI = 100 * 10**18
_ENERGY_WH = 1000
# Meter rating, PV peak and battery discharge power of both prosumers, as
# ``Settlement.register_prosumer`` takes them. [W]
_LIMITS_W = (10_000, 10_000, 0)
# The transaction types in scenario order.
TX_TYPES = ("grant prosumer role", "grant meter role", "bind meter", "register limits", "deposit", "ask", "bid",
            "clear", "post reading (seller)", "post reading (buyer)", "withdraw")


@dataclass(frozen=True)
class TxGas:
    """Gas of one transaction type now and before the hardening.

    Attributes
    ----------
    tx_type : str
        One of `TX_TYPES`.
    gas : int
        Gas used now. [gas]
    pre_hardening_gas : int or None
        Gas used at `PRE_HARDENING_COMMIT`; None for a transaction that
        did not exist then. [gas]
    """

    tx_type: str
    gas: int
    pre_hardening_gas: int | None

    @property
    def difference(self) -> int:
        """Gas now minus gas before; all of it for a new transaction. [gas]"""
        return self.gas - (self.pre_hardening_gas or 0)

    @property
    def ratio(self) -> float | None:
        """Gas now over gas before; None for a new transaction. [-]"""
        return None if self.pre_hardening_gas is None else self.gas / self.pre_hardening_gas


def _account(label: str) -> LocalAccount:
    """A fixed, public key of the scenario: gas figures protect nothing."""
    return Account.from_key(keccak(text=f"gridledger bench security gas/{label}"))


def _call(wallet: Wallet, address: str, contract: str, function: str, *args) -> bytes:
    return wallet.transact(address, encode_call(contract, function, *args), gas=mk.GAS_SETUP)


def _has_function(contract: str, function: str) -> bool:
    return any(item.get("name") == function for item in load_artifact(contract)["abi"])


def _mine(chain: Chain, labelled: list[tuple[str | None, bytes]], timestamp: int) -> dict[str, int]:
    """Mine the transactions in one block; the gas of each labelled one. Raises unless every one succeeded."""
    receipts = chain.mine([raw for _, raw in labelled], timestamp)
    failed = [(label, r.revert_reason) for (label, _), r in zip(labelled, receipts, strict=True) if not r.ok]
    if failed:
        raise RuntimeError(f"security gas scenario: transactions failed: {failed}")
    return {label: r.gas_used for (label, _), r in zip(labelled, receipts, strict=True) if label is not None}


def scenario_gas() -> dict[str, int]:
    """Gas used by each transaction type of the scripted market, by type (`TX_TYPES`, where it exists). [gas]"""
    accounts = [_account(name) for name in ("operator", "seller", "buyer", "seller meter", "buyer meter")]
    chain = Chain([a.address for a in accounts], genesis_timestamp=_GENESIS_TIMESTAMP)
    op, seller, buyer, seller_meter, buyer_meter = (chain.wallet(a) for a in accounts)
    a = mk.deploy_market(
        chain, op, prosumers=[], meters={}, start_timestamp=_START_TIMESTAMP, interval_s=_INTERVAL_S,
        gate_closure_s=_GATE_CLOSURE_S, price_cap_wei_per_wh=100 * _CENT_PER_KWH,
        grid_buy_price_wei_per_wh=30 * _CENT_PER_KWH, grid_sell_price_wei_per_wh=8 * _CENT_PER_KWH,
        grid_fee_wei_per_wh=2 * _CENT_PER_KWH, endowment_wei=0, operator_deposit_wei=_DEPOSIT_WEI,
    )
    gas: dict[str, int] = {}
    registration: list[tuple[str | None, bytes]] = []
    for i, (prosumer, meter) in enumerate(((seller, seller_meter), (buyer, buyer_meter))):
        first = i == 0
        registration += [
            ("grant prosumer role" if first else None,
             _call(op, a.registry, "Registry", "grant_role", prosumer.address, mk.ROLE_PROSUMER)),
            ("grant meter role" if first else None,
             _call(op, a.registry, "Registry", "grant_role", meter.address, mk.ROLE_METER)),
            ("bind meter" if first else None,
             _call(op, a.registry, "Registry", "bind_meter", meter.address, prosumer.address)),
            (None, _call(op, a.token, "GridToken", "mint", prosumer.address, _DEPOSIT_WEI)),
        ]
        if _has_function("Settlement", "register_prosumer"):
            registration.append(("register limits" if first else None,
                                 _call(op, a.settlement, "Settlement", "register_prosumer", prosumer.address,
                                       *_LIMITS_W)))
    gas |= _mine(chain, registration, chain.timestamp + 1)
    gas |= _mine(chain, [(None, _call(p, a.token, "GridToken", "approve", a.settlement, _DEPOSIT_WEI))
                         for p in (seller, buyer)], chain.timestamp + 1)
    gas |= _mine(chain, [("deposit" if p is seller else None,
                          _call(p, a.settlement, "Settlement", "deposit_for", p.address, _DEPOSIT_WEI))
                         for p in (seller, buyer)], chain.timestamp + 1)
    gas |= _mine(chain, [
        ("ask", mk.submit_order(seller, a, 0, is_ask=True, energy_wh=_ENERGY_WH, price_wei_per_wh=10 * _CENT_PER_KWH)),
        ("bid", mk.submit_order(buyer, a, 0, is_ask=False, energy_wh=_ENERGY_WH, price_wei_per_wh=20 * _CENT_PER_KWH)),
    ], chain.timestamp + 1)
    gas |= _mine(chain, [("clear", mk.clear(op, a, 0, mk.book(chain, a, 0)))], _START_TIMESTAMP - _GATE_CLOSURE_S)
    gas |= _mine(chain, [
        ("post reading (seller)", mk.post_reading(seller_meter, a, 0, import_wh=0, export_wh=_ENERGY_WH,
                                                  pv_wh=_ENERGY_WH + 200, battery_wh=0)),
        ("post reading (buyer)", mk.post_reading(buyer_meter, a, 0, import_wh=_ENERGY_WH, export_wh=0, pv_wh=0,
                                                 battery_wh=0)),
    ], _START_TIMESTAMP + _INTERVAL_S + 10)
    gas |= _mine(chain, [("withdraw", _call(seller, a.settlement, "Settlement", "withdraw", 10**18))],
                 chain.timestamp + 1)
    return {tx_type: gas[tx_type] for tx_type in TX_TYPES if tx_type in gas}


def pre_hardening_baseline(path: Path = BASELINE_FILE) -> dict:
    """The recorded figures of `scenario_gas` at `PRE_HARDENING_COMMIT`: ``commit``, ``measured``, ``gas``."""
    return json.loads(path.read_text())


def security_gas_rows(path: Path = BASELINE_FILE) -> list[TxGas]:
    """Each transaction type's live gas next to its recorded pre-hardening gas, in scenario order."""
    before = pre_hardening_baseline(path)["gas"]
    return [TxGas(tx_type, gas, before.get(tx_type)) for tx_type, gas in scenario_gas().items()]


if __name__ == "__main__":
    json.dump(scenario_gas(), sys.stdout, indent=2)
    print()
