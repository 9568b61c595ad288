"""Gas per order and per meter reading: one transaction each vs relayed in one batch (issue 12).

`batching_gas` runs the same interval twice on fresh chains: n prosumers
(odd ones ask, even ones bid, `bench.ledger`'s orders) order, the book is
cleared, every meter reads; once with one transaction per order and per
reading, once with the orders and the readings signed as EIP-712 typed
data and relayed in one transaction each. It returns the gas per order
and per reading of both, the relay's transaction spread over what it
carries. Gas is deterministic: no repeats, no baseline run.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.keys import derive_account
from gridledger.contracts.typed_data import sign_order, sign_reading

from bench.ledger import ENDOWMENT_WEI, GATE_CLOSURE_S, GENESIS_TIMESTAMP, INTERVAL_S, LIMITS, PRICE_CAP_WEI_PER_WH, \
    SECRET, WEI_PER_WH_PER_CENT_PER_KWH, _order

BATCH_SIZES = (1, 8, 32)
_START_TIMESTAMP = GENESIS_TIMESTAMP + 3600


@dataclass(frozen=True)
class BatchingGas:
    """Gas per order and per reading of one interval with `n` prosumers, per transaction and batched. [gas]"""

    n: int
    order_gas: float
    batched_order_gas: float
    reading_gas: float
    batched_reading_gas: float


def _interval_gas(n: int, batched: bool) -> tuple[float, float]:
    """(gas per order, gas per reading) of one interval of `n` prosumers. [gas]"""
    operator = derive_account(SECRET, "operator")
    prosumers = [derive_account(SECRET, f"prosumer/{i}") for i in range(n)]
    meters = [derive_account(SECRET, f"meter/{i}") for i in range(n)]
    chain = Chain([a.address for a in (operator, *prosumers, *meters)], genesis_timestamp=GENESIS_TIMESTAMP)
    op = chain.wallet(operator)
    a = mk.deploy_market(
        chain, op, prosumers=[p.address for p in prosumers], meters={p.address: m.address for p, m in
                                                                     zip(prosumers, meters)},
        start_timestamp=_START_TIMESTAMP, interval_s=INTERVAL_S, gate_closure_s=GATE_CLOSURE_S,
        price_cap_wei_per_wh=PRICE_CAP_WEI_PER_WH, grid_buy_price_wei_per_wh=30 * WEI_PER_WH_PER_CENT_PER_KWH,
        grid_sell_price_wei_per_wh=8 * WEI_PER_WH_PER_CENT_PER_KWH,
        grid_fee_wei_per_wh=2 * WEI_PER_WH_PER_CENT_PER_KWH, endowment_wei=ENDOWMENT_WEI, operator_deposit_wei=0,
        limits={p.address: LIMITS for p in prosumers},
    )
    orders = [_order(i, 0) for i in range(n)]
    if batched:
        raw = [mk.submit_signed_orders(op, a, 0, [sign_order(p, chain.chain_id, a.auction, interval=0, **o)
                                                  for p, o in zip(prosumers, orders)])]
    else:
        raw = [mk.submit_order(chain.wallet(p), a, 0, **o) for p, o in zip(prosumers, orders)]
    order_gas = sum(_ok(r).gas_used for r in chain.mine(raw, chain.timestamp + 1)) / n
    _ok(chain.mine([mk.clear(op, a, 0, mk.book(chain, a, 0))], _START_TIMESTAMP - GATE_CLOSURE_S)[0])
    registers = [{"import_wh": 0 if o["is_ask"] else o["energy_wh"], "export_wh": o["energy_wh"] if o["is_ask"] else 0,
                  "pv_wh": o["energy_wh"] if o["is_ask"] else 0, "battery_wh": 0} for o in orders]
    if batched:
        raw = [mk.post_signed_readings(op, a, 0, [sign_reading(m, chain.chain_id, a.settlement, interval=0, **r)
                                                  for m, r in zip(meters, registers)])]
    else:
        raw = [mk.post_reading(chain.wallet(m), a, 0, **r) for m, r in zip(meters, registers)]
    reading_gas = sum(_ok(r).gas_used for r in chain.mine(raw, _START_TIMESTAMP + INTERVAL_S)) / n
    return order_gas, reading_gas


def _ok(receipt):
    if not receipt.ok:
        raise RuntimeError(f"batching gas scenario: transaction failed: {receipt.revert_reason}")
    return receipt


def batching_gas(sizes: tuple[int, ...] = BATCH_SIZES) -> list[BatchingGas]:
    """Gas per order and per reading, per transaction and batched, for each interval size in `sizes`."""
    rows = []
    for n in sizes:
        order_gas, reading_gas = _interval_gas(n, batched=False)
        batched_order_gas, batched_reading_gas = _interval_gas(n, batched=True)
        rows.append(BatchingGas(n, order_gas, batched_order_gas, reading_gas, batched_reading_gas))
    return rows
