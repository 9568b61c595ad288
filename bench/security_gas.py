"""Gas of issue 11's checks: three scripted markets, per transaction type, now and before the hardening.

`SCENARIOS` names them: the double auction with its Settlement
(`scenario_gas`), the voltage-regulation market (`flexibility_gas`) and EV
charging coordination (`charging_gas`). `scenario_gas` runs one market on a fresh chain with the builders of
`gridledger.contracts.market`: deploy a double auction with its
Settlement, Registry and token (`deploy_market`, no prosumer yet), then
register a seller and a buyer (roles, meters and, where the Settlement
has it, their reading limits), deposit, an ask and a bid of 1000 Wh in
interval 0, the clearing at its gate, both meters' readings after the
interval and a withdrawal. It returns the gas used by each labelled
transaction (the seller's where both prosumers send one).

`flexibility_gas` deploys a voltage-regulation contract on such a market
(registry, token), registers one DER where the contract has
``register_der``, and runs one request through: the DSO's request, the
DER's offer (with its bus where the old contract asked for it), the
award, the meter's delivery and the close. `charging_gas` deploys the
charging coordination, registers one EV where it has ``register_ev``,
posts headroom, the first request of a session, the allocation and a
later request of the same session (the one the session checks read).

Gas is deterministic, so the figures before the hardening are recorded
once: `gas_pre_hardening.json` holds those of these same scenarios run
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
# The transaction types of each scenario, in scenario order.
TX_TYPES = ("grant prosumer role", "grant meter role", "bind meter", "register limits", "deposit", "ask", "bid",
            "clear", "post reading (seller)", "post reading (buyer)", "withdraw")
FLEX_TX_TYPES = ("register DER", "post request", "offer", "award", "post delivery", "close")
CHARGING_TX_TYPES = ("register EV", "post headroom", "request charge (first)", "allocate", "request charge (later)")
_FLEX_BUS = 5
_FLEX_P_W = 10_000
_EV_CAPACITY_WH, _EV_CHARGE_W = 50_000, 7_000


@dataclass(frozen=True)
class TxGas:
    """Gas of one transaction type now and before the hardening.

    Attributes
    ----------
    scenario : str
        One of `SCENARIOS`.
    tx_type : str
        One of the scenario's transaction types.
    gas : int
        Gas used now. [gas]
    pre_hardening_gas : int or None
        Gas used at `PRE_HARDENING_COMMIT`; None for a transaction that
        did not exist then. [gas]
    """

    scenario: str
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


_GAS_LIMIT = 2_000_000
"""Every scripted transaction's gas limit, above any one's use: gas used does not depend on it. [gas]"""


def _call(wallet: Wallet, address: str, contract: str, function: str, *args) -> bytes:
    return wallet.transact(address, encode_call(contract, function, *args), gas=_GAS_LIMIT)


def _has_function(contract: str, function: str) -> bool:
    return any(item.get("name") == function for item in load_artifact(contract)["abi"])


def _n_constructor_inputs(contract: str) -> int:
    return next(len(item["inputs"]) for item in load_artifact(contract)["abi"] if item.get("type") == "constructor")


def _deploy(chain: Chain, deployer: Wallet, contract: str, *args) -> str:
    """Deploy `contract` with the first of `args` its constructor takes; its labelled address."""
    raw, address = deployer.deploy(load_artifact(contract), *args[:_n_constructor_inputs(contract)], gas=5 * _GAS_LIMIT)
    _mine(chain, [(None, raw)], chain.timestamp + 1)
    chain.label(address, contract)
    return address


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
    a = _empty_market(chain, op)
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


def _empty_market(chain: Chain, op: Wallet) -> mk.MarketAddresses:
    """A double-auction market of the scenarios, deployed by `op` with no prosumer yet."""
    return mk.deploy_market(
        chain, op, prosumers=[], meters={}, start_timestamp=_START_TIMESTAMP, interval_s=_INTERVAL_S,
        gate_closure_s=_GATE_CLOSURE_S, price_cap_wei_per_wh=100 * _CENT_PER_KWH,
        grid_buy_price_wei_per_wh=30 * _CENT_PER_KWH, grid_sell_price_wei_per_wh=8 * _CENT_PER_KWH,
        grid_fee_wei_per_wh=2 * _CENT_PER_KWH, endowment_wei=0, operator_deposit_wei=_DEPOSIT_WEI,
    )


def _prosumer_with_meter(chain: Chain, op: Wallet, a: mk.MarketAddresses, prosumer: Wallet, meter: Wallet) -> None:
    """Give `prosumer` the prosumer role, `meter` the meter role bound to it, and tokens."""
    _mine(chain, [(None, _call(op, a.registry, "Registry", "grant_role", prosumer.address, mk.ROLE_PROSUMER)),
                  (None, _call(op, a.registry, "Registry", "grant_role", meter.address, mk.ROLE_METER)),
                  (None, _call(op, a.registry, "Registry", "bind_meter", meter.address, prosumer.address)),
                  (None, _call(op, a.token, "GridToken", "mint", prosumer.address, _DEPOSIT_WEI))],
          chain.timestamp + 1)


def flexibility_gas() -> dict[str, int]:
    """Gas used by each transaction type of one voltage-regulation request, by type (`FLEX_TX_TYPES`). [gas]

    Every step before the market's start, as the registry's bindings
    freeze from then on: request at t, offers until t + 100 s, a 900 s
    window from t + 200 s, delivery after it, close after the delivery
    period.
    """
    accounts = [_account(name) for name in ("operator", "der", "der meter")]
    chain = Chain([a.address for a in accounts], genesis_timestamp=_GENESIS_TIMESTAMP)
    op, der, meter = (chain.wallet(a) for a in accounts)
    a = _empty_market(chain, op)
    _prosumer_with_meter(chain, op, a, der, meter)
    _mine(chain, [(None, _call(op, a.token, "GridToken", "mint", op.address, _DEPOSIT_WEI))], chain.timestamp + 1)
    flex = _deploy(chain, op, "VoltageRegulation", a.registry, a.token, op.address, 1500, _INTERVAL_S,
                   100, 10**13)
    gas: dict[str, int] = {}
    if _has_function("VoltageRegulation", "register_der"):
        gas |= _mine(chain, [("register DER", _call(op, flex, "VoltageRegulation", "register_der", der.address,
                                                     _FLEX_BUS, _FLEX_P_W))], chain.timestamp + 1)
    _mine(chain, [(None, _call(w, a.token, "GridToken", "approve", flex, _DEPOSIT_WEI)) for w in (op, der)],
          chain.timestamp + 1)
    t = chain.timestamp + 1
    window = (t + 200, t + 200 + _INTERVAL_S)
    gas |= _mine(chain, [("post request", _call(op, flex, "VoltageRegulation", "post_request", [_FLEX_BUS], [100],
                                                 False, _FLEX_P_W, *window, t + 100, 30 * _CENT_PER_KWH))], t)
    bus = (_FLEX_BUS,) if not _has_function("VoltageRegulation", "register_der") else ()
    gas |= _mine(chain, [("offer", _call(der, flex, "VoltageRegulation", "offer", 0, _FLEX_P_W, 10 * _CENT_PER_KWH,
                                         *bus))], t + 10)
    gas |= _mine(chain, [("award", _call(op, flex, "VoltageRegulation", "award", 0))], t + 100)
    delivered_wh = _FLEX_P_W * _INTERVAL_S // 3600
    gas |= _mine(chain, [("post delivery", _call(meter, flex, "VoltageRegulation", "post_delivery", 0,
                                                  delivered_wh))], window[1] + 1)
    gas |= _mine(chain, [("close", _call(op, flex, "VoltageRegulation", "close", 0))], window[1] + _INTERVAL_S + 1)
    return {tx_type: gas[tx_type] for tx_type in FLEX_TX_TYPES if tx_type in gas}


def charging_gas() -> dict[str, int]:
    """Gas used by each transaction type of two charging windows of one EV session (`CHARGING_TX_TYPES`). [gas]"""
    accounts = [_account(name) for name in ("operator", "ev owner", "ev meter")]
    chain = Chain([a.address for a in accounts], genesis_timestamp=_GENESIS_TIMESTAMP)
    op, owner, meter = (chain.wallet(a) for a in accounts)
    a = _empty_market(chain, op)
    _prosumer_with_meter(chain, op, a, owner, meter)
    lead_s = _GATE_CLOSURE_S
    # No emergency access (the empty address): overrides are not measured.
    charging = _deploy(chain, op, "ChargingCoordination", a.registry, _START_TIMESTAMP, _INTERVAL_S, lead_s, 1000,
                       "0x" + "00" * 20)
    gas: dict[str, int] = {}
    if _has_function("ChargingCoordination", "register_ev"):
        gas |= _mine(chain, [("register EV", _call(op, charging, "ChargingCoordination", "register_ev",
                                                    owner.address, _EV_CAPACITY_WH, _EV_CHARGE_W))],
                     chain.timestamp + 1)
    departure = _START_TIMESTAMP + 4 * _INTERVAL_S
    need_wh = 20_000
    gas |= _mine(chain, [("post headroom", _call(op, charging, "ChargingCoordination", "post_headroom", 0, 50_000)),
                         (None, _call(op, charging, "ChargingCoordination", "post_headroom", 1, 50_000))],
                 chain.timestamp + 1)
    gas |= _mine(chain, [("request charge (first)", _call(owner, charging, "ChargingCoordination", "request_charge",
                                                           0, _EV_CHARGE_W, need_wh, 400, departure))],
                 chain.timestamp + 1)
    gas |= _mine(chain, [("allocate", _call(op, charging, "ChargingCoordination", "allocate", 0))],
                 _START_TIMESTAMP - lead_s // 2)
    admitted_wh = _EV_CHARGE_W * _INTERVAL_S // 3600
    gas |= _mine(chain, [("request charge (later)", _call(owner, charging, "ChargingCoordination", "request_charge",
                                                           1, _EV_CHARGE_W, need_wh - admitted_wh, 450, departure))],
                 _START_TIMESTAMP + 10)
    return {tx_type: gas[tx_type] for tx_type in CHARGING_TX_TYPES if tx_type in gas}


SCENARIOS = {"double auction": scenario_gas, "flexibility": flexibility_gas, "charging": charging_gas}
"""Each scripted market by name, with the function measuring its gas per transaction type."""


def all_scenario_gas() -> dict[str, dict[str, int]]:
    """Every scenario's gas per transaction type, by scenario name (`SCENARIOS`). [gas]"""
    return {name: measure() for name, measure in SCENARIOS.items()}


def pre_hardening_baseline(path: Path = BASELINE_FILE) -> dict:
    """The recorded figures of `all_scenario_gas` at `PRE_HARDENING_COMMIT`: ``commit``, ``measured``, ``gas``."""
    return json.loads(path.read_text())


def security_gas_rows(path: Path = BASELINE_FILE) -> list[TxGas]:
    """Each scenario's transaction types' live gas next to their recorded pre-hardening gas, in scenario order."""
    before = pre_hardening_baseline(path)["gas"]
    return [TxGas(scenario, tx_type, gas, before[scenario].get(tx_type))
            for scenario, measured in all_scenario_gas().items() for tx_type, gas in measured.items()]


if __name__ == "__main__":
    json.dump(all_scenario_gas(), sys.stdout, indent=2)
    print()
