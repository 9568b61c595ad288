"""Ledger throughput: the same signed market orders executed and mined with receipts.

Both sides deploy the market with `gridledger.contracts.market.deploy_market`
and then receive the same orders (`submit_order`: interval, side, energy and
price), signed in advance by the same funded prosumer keys, one order per
prosumer and block, a new interval every block:

* ours: `gridledger.contracts.chain.Chain.mine`, one block per batch;
* ours, batched: the same orders signed as EIP-712 typed data
  (`gridledger.contracts.typed_data`) and relayed by the operator in one
  ``submit_signed_orders`` transaction per block (issue 12);
* ours, verified batch: the same signed orders sent by the operator after
  their interval's gate with the clearing it computed, one
  ``clear_signed`` per block (issue 12; the transaction clears the
  interval too, which the other two leave undone);
* baseline: web3.py with `EthereumTesterProvider` (eth-tester's PyEVM
  backend, automine on: one block per transaction), each transaction sent
  with ``w3.eth.send_raw_transaction`` (explicit ``gas``, so nothing is
  estimated) and awaited with ``w3.eth.wait_for_transaction_receipt``.

Only execution and mining are timed; deployment and signing are not (the
relay's transaction, like every other, is signed in advance). Every
timed transaction must succeed and emit the same ``OrderSubmitted`` event
on both chains, or the benchmark raises.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

from eth_account.signers.local import LocalAccount
from eth_tester import PyEVMBackend
from eth_utils import to_canonical_address
from web3 import EthereumTesterProvider, Web3

from gridledger.contracts.chain import GENESIS_BALANCE_WEI, Chain, Log
from gridledger.contracts.client import DecodedLog, Wallet, decode_log
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import (
    MarketAddresses,
    ProsumerLimits,
    deploy_market,
    Book,
    clear_signed,
    read,
    submit_order,
    submit_signed_orders,
)
from gridledger.contracts.typed_data import sign_order

# Fixed, public benchmark secret (accounts only; nothing here is secret).
SECRET = (20261101).to_bytes(32, "big")
GENESIS_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z, our chain only
INTERVAL_S = 900
GATE_CLOSURE_S = 60
# Interval 0 starts a day after deployment, so every benchmark interval is open.
AUCTION_LEAD_S = 86_400
WEI_PER_WH_PER_CENT_PER_KWH = 10**13
PRICE_CAP_WEI_PER_WH = 100 * WEI_PER_WH_PER_CENT_PER_KWH
# Every prosumer's registered meter and PV, above its largest order
# (1499 Wh an interval). [W]
LIMITS = ProsumerLimits(meter_rating_w=10_000, pv_w=10_000)
# Every prosumer's credit, enough to escrow all its bids. [wei]
ENDOWMENT_WEI = 10**24


@dataclass(frozen=True)
class TesterReceipt:
    """What a web3 receipt tells about one transaction (the fields `deploy_market` and the checks read)."""

    status: int
    logs: tuple[Log, ...]

    @property
    def ok(self) -> bool:
        """True if the transaction succeeded."""
        return self.status == 1

    @property
    def revert_reason(self) -> str | None:
        """None on success; web3 receipts carry no revert reason."""
        return None if self.ok else "reverted (web3 receipts carry no reason)"


class TesterNode:
    """eth-tester's PyEVM chain behind web3.py, automine on.

    Offers the part of `Chain`'s interface that `deploy_market` and this
    benchmark use (``timestamp``, ``mine``, ``label``, ``decode``). The
    addresses in ``funded`` hold ``GENESIS_BALANCE_WEI`` at genesis, as on
    our chain; the chain id is eth-tester's own.
    """

    def __init__(self, funded: Iterable[str]) -> None:
        state = {
            to_canonical_address(address): {"balance": GENESIS_BALANCE_WEI, "nonce": 0, "code": b"", "storage": {}}
            for address in funded
        }
        self.w3 = Web3(EthereumTesterProvider(PyEVMBackend(genesis_state=state)))
        self.chain_id = self.w3.eth.chain_id
        self._labels: dict[str, str] = {}

    @property
    def timestamp(self) -> int:
        """Timestamp of the latest block. [s since the Unix epoch]"""
        return self.w3.eth.get_block("latest")["timestamp"]

    def mine(self, raw_txs: Sequence[bytes], timestamp: int | None = None) -> list[TesterReceipt]:
        """Send each transaction and wait for its receipt, in order.

        eth-tester mines every transaction into its own block stamped by
        its own clock, so ``timestamp`` (which `deploy_market` passes) is
        not used.
        """
        receipts = []
        for raw in raw_txs:
            receipt = self.w3.eth.wait_for_transaction_receipt(self.w3.eth.send_raw_transaction(raw))
            receipts.append(TesterReceipt(
                receipt["status"],
                tuple(Log(log["address"], tuple(bytes(t) for t in log["topics"]), bytes(log["data"]))
                      for log in receipt["logs"]),
            ))
        return receipts

    def label(self, address: str, contract: str) -> None:
        """Declare that ``address`` runs ``contract`` so its logs get decoded."""
        self._labels[address] = contract

    def decode(self, log: Log) -> DecodedLog | None:
        """Decoded form of ``log``, or None if its address has no label."""
        contract = self._labels.get(log.address)
        return None if contract is None else decode_log(contract, log.topics, log.data)


@dataclass(frozen=True)
class LedgerResult:
    """Throughput of ours and of the baseline on the same orders.

    Attributes
    ----------
    block_size : int
        Orders per block (ours) and distinct prosumer accounts.
    transactions : int
        Orders executed per repeat.
    repeats : int
        Repeats, each on fresh chains.
    ours_tx_per_s, baseline_tx_per_s : float
        Median throughput over the repeats. [tx/s]
    ratio : float
        ``ours_tx_per_s / baseline_tx_per_s``. [-]
    ours_s, baseline_s : list of float
        Wall time of executing and mining all orders, per repeat. [s]
    batched_orders_per_s : float
        Median throughput of the same orders relayed in one batch per block. [orders/s]
    batched_ratio : float
        ``batched_orders_per_s / baseline_tx_per_s``. [-]
    batched_s : list of float
        Wall time of the batched orders, per repeat. [s]
    verified_orders_per_s : float
        Median throughput of the same orders sent with their clearing, one verified batch per block. [orders/s]
    verified_ratio : float
        ``verified_orders_per_s / baseline_tx_per_s``. [-]
    verified_s : list of float
        Wall time of the verified batches, per repeat. [s]
    """

    block_size: int
    transactions: int
    repeats: int
    ours_tx_per_s: float
    baseline_tx_per_s: float
    ratio: float
    ours_s: list[float]
    baseline_s: list[float]
    batched_orders_per_s: float
    batched_ratio: float
    batched_s: list[float]
    verified_orders_per_s: float
    verified_ratio: float
    verified_s: list[float]


def _market(chain: Chain | TesterNode, operator: Wallet, prosumers: Sequence[str]) -> MarketAddresses:
    return deploy_market(
        chain, operator, prosumers=prosumers, meters={}, start_timestamp=chain.timestamp + AUCTION_LEAD_S,
        interval_s=INTERVAL_S, gate_closure_s=GATE_CLOSURE_S, price_cap_wei_per_wh=PRICE_CAP_WEI_PER_WH,
        grid_buy_price_wei_per_wh=30 * WEI_PER_WH_PER_CENT_PER_KWH,
        grid_sell_price_wei_per_wh=8 * WEI_PER_WH_PER_CENT_PER_KWH,
        grid_fee_wei_per_wh=2 * WEI_PER_WH_PER_CENT_PER_KWH, endowment_wei=ENDOWMENT_WEI, operator_deposit_wei=0,
        limits={p: LIMITS for p in prosumers},
    )


def _order(i: int, k: int) -> dict:
    """Wallet ``i``'s order of interval ``k``: odd wallets ask, even ones bid."""
    return {"is_ask": i % 2 == 1, "energy_wh": 500 + (37 * i + 11 * k) % 1000,
            "price_wei_per_wh": (8 + (7 * i + 3 * k) % 23) * WEI_PER_WH_PER_CENT_PER_KWH}


def _orders(wallets: Sequence[Wallet], addresses: MarketAddresses, n_blocks: int) -> list[list[bytes]]:
    """Block ``k`` holds one order of every wallet for interval ``k``."""
    return [[submit_order(wallet, addresses, k, **_order(i, k)) for i, wallet in enumerate(wallets)]
            for k in range(n_blocks)]


def _relayed(relay: Wallet, wallets: Sequence[Wallet], addresses: MarketAddresses, n_blocks: int) -> list[bytes]:
    """Block ``k``'s one transaction: the same orders, each signed by its wallet, relayed by ``relay``."""
    return [submit_signed_orders(relay, addresses, k, [
        sign_order(w.account, w.chain_id, addresses.auction, interval=k, **_order(i, k)) for i, w in enumerate(wallets)])
        for k in range(n_blocks)]


def _verified(relay: Wallet, wallets: Sequence[Wallet], addresses: MarketAddresses, n_blocks: int) -> list[bytes]:
    """Block ``k``'s one transaction: the same signed orders of interval ``k`` with their clearing."""
    txs = []
    for k in range(n_blocks):
        signed = [sign_order(w.account, w.chain_id, addresses.auction, interval=k, **_order(i, k))
                  for i, w in enumerate(wallets)]
        txs.append(clear_signed(relay, addresses, k, Book((), ()), signed,
                                [(w.address, o) for w, o in zip(wallets, signed)]))
    return txs


def _events(chain: Chain | TesterNode, receipts: Sequence) -> list[DecodedLog]:
    """The ``OrderSubmitted`` event of every receipt; raises unless each succeeded with exactly one.

    A bid also logs its escrow (``Locked``), which is not counted.
    """
    events = []
    for receipt in receipts:
        decoded = [chain.decode(log) for log in receipt.logs]
        orders = [e for e in decoded if e is not None and e.event == "OrderSubmitted"]
        if not receipt.ok or len(orders) != 1:
            raise RuntimeError(f"order did not go through: ok={receipt.ok}, {receipt.revert_reason}, logs={decoded}")
        events.append(orders[0])
    return events


def _fresh_market(operator: LocalAccount, prosumers: Sequence[LocalAccount]) -> tuple[Chain, Wallet, MarketAddresses]:
    """A fresh `Chain` funding the operator and prosumers, the operator's wallet, and the market it deployed."""
    chain = Chain([operator.address, *(p.address for p in prosumers)], genesis_timestamp=GENESIS_TIMESTAMP)
    relay = chain.wallet(operator)
    return chain, relay, _market(chain, relay, [p.address for p in prosumers])


def run_ours(operator: LocalAccount, prosumers: Sequence[LocalAccount], n_blocks: int, keep: Path | None = None
             ) -> tuple[float, list[DecodedLog]]:
    """Mine ``n_blocks`` blocks of orders on a fresh `Chain`, kept in the directory `keep` if given (`Chain.keep`,
    before the timing starts); (wall time [s], events)."""
    chain, _, addresses = _fresh_market(operator, prosumers)
    if keep is not None:
        chain.keep(keep)
    blocks = _orders([chain.wallet(p) for p in prosumers], addresses, n_blocks)
    timestamps = [chain.timestamp + 1 + k for k in range(n_blocks)]
    started = time.perf_counter()
    receipts = [receipt for block, timestamp in zip(blocks, timestamps) for receipt in chain.mine(block, timestamp)]
    elapsed = time.perf_counter() - started
    chain.close()
    return elapsed, _events(chain, receipts)


def _mine_one_each(chain: Chain, blocks: Sequence[bytes], timestamps: Sequence[int], what: str
                   ) -> tuple[float, list[DecodedLog]]:
    """Mine each transaction of `blocks` alone at its timestamp; (wall time [s], ``OrderSubmitted`` events).

    Raises
    ------
    RuntimeError
        Naming `what` if a transaction reverted or skipped an order.
    """
    started = time.perf_counter()
    receipts = [receipt for raw, timestamp in zip(blocks, timestamps) for receipt in chain.mine([raw], timestamp)]
    elapsed = time.perf_counter() - started
    events = [e for r in receipts for e in map(chain.decode, r.logs) if e is not None]
    if not all(r.ok for r in receipts) or any(e.event == "OrderRejected" for e in events):
        raise RuntimeError(f"{what} did not go through: {[r.revert_reason for r in receipts]}, "
                           f"{[e.args for e in events if e.event == 'OrderRejected']}")
    return elapsed, [e for e in events if e.event == "OrderSubmitted"]


def run_batched(operator: LocalAccount, prosumers: Sequence[LocalAccount], n_blocks: int
                ) -> tuple[float, list[DecodedLog]]:
    """Mine the same orders relayed in one batch per block on a fresh `Chain`; (wall time [s], events)."""
    chain, relay, addresses = _fresh_market(operator, prosumers)
    blocks = _relayed(relay, [chain.wallet(p) for p in prosumers], addresses, n_blocks)
    return _mine_one_each(chain, blocks, [chain.timestamp + 1 + k for k in range(n_blocks)], "a relayed batch")


def run_verified(operator: LocalAccount, prosumers: Sequence[LocalAccount], n_blocks: int
                 ) -> tuple[float, list[DecodedLog]]:
    """Mine the same orders as verified batches, block ``k`` at interval ``k``'s gate, on a fresh `Chain`."""
    chain, relay, addresses = _fresh_market(operator, prosumers)
    blocks = _verified(relay, [chain.wallet(p) for p in prosumers], addresses, n_blocks)
    timestamps = [read(chain, addresses.auction, "DoubleAuction", "gate_timestamp", k) for k in range(n_blocks)]
    return _mine_one_each(chain, blocks, timestamps, "a verified batch")


def run_baseline(operator: LocalAccount, prosumers: Sequence[LocalAccount], n_blocks: int) -> tuple[float, list[DecodedLog]]:
    """Send the same orders through web3 + eth-tester on a fresh node; (wall time [s], events)."""
    node = TesterNode([operator.address, *(p.address for p in prosumers)])
    addresses = _market(node, Wallet(operator, node.chain_id), [p.address for p in prosumers])
    blocks = _orders([Wallet(p, node.chain_id) for p in prosumers], addresses, n_blocks)
    raw_txs = [raw for block in blocks for raw in block]
    started = time.perf_counter()
    receipts = node.mine(raw_txs)
    elapsed = time.perf_counter() - started
    return elapsed, _events(node, receipts)


def ledger_throughput(block_size: int, n_blocks: int, repeats: int = 3) -> LedgerResult:
    """Throughput of ``n_blocks`` blocks of ``block_size`` orders: ours vs web3 + eth-tester.

    Repeats alternate ours and baseline, each on fresh chains.

    Raises
    ------
    RuntimeError
        If an order fails on any chain or the chains record different orders.
    """
    operator = derive_account(SECRET, "operator")
    prosumers = [derive_account(SECRET, f"prosumer/{i}") for i in range(block_size)]
    ours_s, baseline_s, batched_s, verified_s = [], [], [], []
    for _ in range(repeats):
        seconds, ours_events = run_ours(operator, prosumers, n_blocks)
        ours_s.append(seconds)
        seconds, batched_events = run_batched(operator, prosumers, n_blocks)
        batched_s.append(seconds)
        seconds, verified_events = run_verified(operator, prosumers, n_blocks)
        verified_s.append(seconds)
        seconds, baseline_events = run_baseline(operator, prosumers, n_blocks)
        baseline_s.append(seconds)
        if not ([e.args for e in ours_events] == [e.args for e in batched_events] == [e.args for e in verified_events]
                == [e.args for e in baseline_events]):
            raise RuntimeError("the chains recorded different orders")
    n = block_size * n_blocks
    ours, baseline, batched, verified = (n / statistics.median(t) for t in (ours_s, baseline_s, batched_s, verified_s))
    return LedgerResult(block_size, n, repeats, ours, baseline, ours / baseline, ours_s, baseline_s,
                        batched, batched / baseline, batched_s, verified, verified / baseline, verified_s)
