"""Gas of the load shed service of interruptible loads (issue 15, part 3), per transaction type.

`load_shed_gas` deploys a ``LoadShed`` contract on a market (registry,
token) with two interruptible loads, each a prosumer with a bound meter,
registers both before the market's start and runs one programme through
with the builders of `gridledger.contracts.load_shed`: the operator's
programme, both loads' enrolments, one event calling both, one meter's
delivery, the settlement of the other load at zero after the delivery
period, and the close after the programme's end. Each labelled figure is
the first of its kind (the first load's where both send one).

Gas is deterministic: every key is fixed (`_account`), so addresses and
with them the calldata's gas are the same on every run.

Run ``python -m bench.load_shed_gas`` to print the figures as JSON.
"""

from __future__ import annotations

import json
import sys

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

from gridledger.contracts import load_shed as ls
from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact

LOAD_SHED_TX_TYPES = ("deploy", "register load", "post programme", "enrol", "call", "post delivery",
                      "settle event", "close programme")
_GENESIS_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
_START_TIMESTAMP = _GENESIS_TIMESTAMP + 3600
_INTERVAL_S = 900
_CENT_PER_KWH = 10**13  # [wei/Wh]
_TOKENS_WEI = 100 * 10**18
# The two loads' interruptible and enrolled power [W], per-event price [wei] and energy price [wei/Wh].
_LOADS = ((5_000, 4_000, 0, 10 * _CENT_PER_KWH), (3_000, 3_000, 50 * _CENT_PER_KWH, 20 * _CENT_PER_KWH))
_EVENT_S = 3600
_DAY_S = 86_400


def _account(label: str) -> LocalAccount:
    """A fixed, public key of the scenario: gas figures protect nothing."""
    return Account.from_key(keccak(text=f"gridledger bench load shed gas/{label}"))


def _mine(chain: Chain, labelled: list[tuple[str | None, bytes]], timestamp: int) -> dict[str, int]:
    """Mine the transactions in one block; the gas of the first of each label. Raises unless every one succeeded."""
    receipts = chain.mine([raw for _, raw in labelled], timestamp)
    failed = [(label, r.revert_reason) for (label, _), r in zip(labelled, receipts, strict=True) if not r.ok]
    if failed:
        raise RuntimeError(f"load shed gas scenario: transactions failed: {failed}")
    gas: dict[str, int] = {}
    for (label, _), r in zip(labelled, receipts, strict=True):
        if label is not None:
            gas.setdefault(label, r.gas_used)
    return gas


def _call(wallet: Wallet, address: str, contract: str, function: str, *args) -> bytes:
    return wallet.transact(address, encode_call(contract, function, *args), gas=500_000)


def load_shed_gas() -> dict[str, int]:
    """Gas used by each transaction type of one load shed programme, by type (`LOAD_SHED_TX_TYPES`). [gas]

    Deployment and registration before the market's start (registration
    closes then); the programme posted at t, enrolment until t + 100 s,
    the programme running two days from then; one 1 h event called
    with an hour's notice; delivery at its end, the other load settled
    after the delivery period, the close after the programme's end plus
    the delivery period.
    """
    labels = ("operator", "load 0", "load 1", "meter 0", "meter 1", "outsider")
    accounts = [_account(label) for label in labels]
    chain = Chain([a.address for a in accounts], genesis_timestamp=_GENESIS_TIMESTAMP)
    op, load0, load1, meter0, meter1, outsider = (chain.wallet(a) for a in accounts)
    loads, meters = [load0, load1], [meter0, meter1]
    market = mk.deploy_market(
        chain, op, prosumers=[w.address for w in loads],
        meters={w.address: m.address for w, m in zip(loads, meters, strict=True)},
        start_timestamp=_START_TIMESTAMP, interval_s=_INTERVAL_S, gate_closure_s=60,
        price_cap_wei_per_wh=100 * _CENT_PER_KWH, grid_buy_price_wei_per_wh=30 * _CENT_PER_KWH,
        grid_sell_price_wei_per_wh=8 * _CENT_PER_KWH, grid_fee_wei_per_wh=2 * _CENT_PER_KWH, endowment_wei=0,
        operator_deposit_wei=0,
    )
    raw, address = op.deploy(load_artifact(ls.CONTRACT), market.registry, market.token, op.address, 1500,
                             _INTERVAL_S, 100, 10**13, gas=ls.GAS_DEPLOY)
    gas = _mine(chain, [("deploy", raw)], chain.timestamp + 1)
    chain.label(address, ls.CONTRACT)
    gas |= _mine(chain, [("register load", ls.register_load(op, address, ls.LoadFacts(w.address, 1, max_w)))
                         for w, (max_w, *_) in zip(loads, _LOADS, strict=True)], chain.timestamp + 1)
    _mine(chain, [(None, _call(op, market.token, "GridToken", "mint", w.address, _TOKENS_WEI)) for w in (op, *loads)]
          + [(None, _call(w, market.token, "GridToken", "approve", address, _TOKENS_WEI)) for w in (op, *loads)],
          chain.timestamp + 1)
    t = chain.timestamp + 1
    start = t + 100
    gas |= _mine(chain, [("post programme", ls.post_programme(
        op, address, start_timestamp=start, end_timestamp=start + 2 * _DAY_S, enrol_deadline_timestamp=start,
        max_event_s=_EVENT_S, price_per_event_cap_wei=100 * _CENT_PER_KWH, price_per_wh_cap_wei=50 * _CENT_PER_KWH,
        budget_wei=10**18))], t)
    gas |= _mine(chain, [("enrol", ls.enrol(w, address, 0, shed_w=q, notice_s=0, max_events_per_day=2,
                                             price_per_event_wei=fee, price_per_wh_wei=price))
                         for w, (_, q, fee, price) in zip(loads, _LOADS, strict=True)], t + 10)
    begin = start + _EVENT_S
    gas |= _mine(chain, [("call", ls.call(op, address, 0, shed_w=7_000, from_timestamp=begin,
                                           to_timestamp=begin + _EVENT_S, n_enrolments=2))], start)
    end = begin + _EVENT_S
    gas |= _mine(chain, [("post delivery", ls.post_delivery(meter0, address, 0, delivered_wh=4_000))], end)
    gas |= _mine(chain, [("settle event", ls.settle_event(outsider, address, 0, n_calls=2))], end + _INTERVAL_S)
    gas |= _mine(chain, [("close programme", ls.close_programme(outsider, address, 0, n_enrolments=2))],
                 start + 2 * _DAY_S + _INTERVAL_S)
    return {tx_type: gas[tx_type] for tx_type in LOAD_SHED_TX_TYPES if tx_type in gas}


if __name__ == "__main__":
    json.dump(load_shed_gas(), sys.stdout, indent=2)
    print()
