"""Gas per order and per meter reading: one transaction each vs relayed in one batch vs verified batch (issue 12).

`batching_gas` runs the same interval three times on fresh chains: n
prosumers (odd ones ask, even ones bid, `bench.ledger`'s orders) order,
the book is cleared, every meter reads; once with one transaction per
order and per reading, once with the orders and the readings signed as
EIP-712 typed data and relayed in one transaction each, once with the
signed orders sent with their clearing in one verified batch
(``clear_signed``; readings relayed as in the second). It returns the gas
per order and per reading, a relay's transaction spread over what it
carries, and per order with the clearing's share, which a verified batch
cannot be told apart from. Gas is deterministic: no repeats, no baseline
run.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.keys import derive_account
from gridledger.contracts.typed_data import sign_order, sign_reading

from bench.ledger import ENDOWMENT_WEI, GATE_CLOSURE_S, GENESIS_TIMESTAMP, INTERVAL_S, LIMITS, PRICE_CAP_WEI_PER_WH, \
    SECRET, WEI_PER_WH_PER_CENT_PER_KWH, _order

BATCH_SIZES = (1, 8, 32, 256)
MODES = ("per-transaction", "batched", "verified")
_START_TIMESTAMP = GENESIS_TIMESTAMP + 3600


@dataclass(frozen=True)
class BatchingGas:
    """Gas per order and per reading of one interval with `n` prosumers, per transaction and batched, and per
    order with its share of the clearing in each mode, the verified batch's too. [gas]"""

    n: int
    order_gas: float
    batched_order_gas: float
    reading_gas: float
    batched_reading_gas: float
    order_and_clearing_gas: float
    batched_order_and_clearing_gas: float
    verified_order_and_clearing_gas: float


def _interval_gas(n: int, mode: str) -> tuple[float, float, float]:
    """(gas per order, gas per order with its share of the clearing, gas per reading) of one interval of `n`
    prosumers in `mode` (`MODES`); a verified batch's orders and clearing are one transaction. [gas]"""
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
    signed = [sign_order(p, chain.chain_id, a.auction, interval=0, **o) for p, o in zip(prosumers, orders)]
    if mode == "batched":
        raw = [mk.submit_signed_orders(op, a, 0, signed)]
    elif mode == "per-transaction":
        raw = [mk.submit_order(chain.wallet(p), a, 0, **o) for p, o in zip(prosumers, orders)]
    else:
        raw = []
    order_gas = sum(_ok(r).gas_used for r in chain.mine(raw, chain.timestamp + 1)) / n
    if mode == "verified":
        closing = mk.clear_signed(op, a, 0, mk.Book((), ()), signed, [(p.address, o) for p, o in zip(prosumers, signed)])
    else:
        closing = mk.clear(op, a, 0, mk.book(chain, a, 0))
    clearing_gas = _ok(chain.mine([closing], _START_TIMESTAMP - GATE_CLOSURE_S)[0]).gas_used / n
    registers = [{"import_wh": 0 if o["is_ask"] else o["energy_wh"], "export_wh": o["energy_wh"] if o["is_ask"] else 0,
                  "pv_wh": o["energy_wh"] if o["is_ask"] else 0, "battery_wh": 0} for o in orders]
    if mode != "per-transaction":
        raw = [mk.post_signed_readings(op, a, 0, [sign_reading(m, chain.chain_id, a.settlement, interval=0, **r)
                                                  for m, r in zip(meters, registers)])]
    else:
        raw = [mk.post_reading(chain.wallet(m), a, 0, **r) for m, r in zip(meters, registers)]
    reading_gas = sum(_ok(r).gas_used for r in chain.mine(raw, _START_TIMESTAMP + INTERVAL_S)) / n
    return order_gas, order_gas + clearing_gas, reading_gas


def _ok(receipt):
    if not receipt.ok:
        raise RuntimeError(f"batching gas scenario: transaction failed: {receipt.revert_reason}")
    return receipt


def batching_gas(sizes: tuple[int, ...] = BATCH_SIZES) -> list[BatchingGas]:
    """Gas per order and per reading in each of `MODES`, for each interval size in `sizes`."""
    rows = []
    for n in sizes:
        (order, with_clearing, reading), (batched, batched_with_clearing, batched_reading), (_, verified, _) = (
            _interval_gas(n, mode) for mode in MODES)
        rows.append(BatchingGas(n, order, batched, reading, batched_reading, with_clearing, batched_with_clearing,
                                verified))
    return rows
