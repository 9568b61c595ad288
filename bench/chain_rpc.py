"""What the chain over JSON-RPC costs (issue 17): mining with the database kept, and the day served live.

* Kept chain: the ledger-throughput orders (`bench.ledger.run_ours`, 32
  per block) mined on a chain kept on disk (`Chain.keep`: each block's
  new keys in one write) and on one in memory only, alternating, median
  of the repeats: kept / memory wall time.
* Live endpoint: the reference day (`bench.powerflow.REFERENCE_STUDY`) run
  again with ``ledger: {rpc: ...}`` while a web3.py client polls the
  endpoint every `POLL_S`, as a notebook watching the market would: the
  block number, the logs of every new block and the newest block with its
  transactions. Its wall time is set against the reference day's of the
  same bench run (section 1); the aim is a ratio under `LIVE_AIM_RATIO`.
"""

from __future__ import annotations

import socket
import statistics
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

import yaml
from requests.exceptions import ConnectionError as NoEndpoint
from web3 import HTTPProvider, Web3

from bench import verdict
from bench.ledger import SECRET, run_ours
from bench.powerflow import REFERENCE_STUDY
from bench.study import StudyResult, run_study
from gridledger.contracts.keys import derive_account

POLL_S = 1.0
"""Period of the watching client's polls. [s]"""
LIVE_AIM_RATIO = 1.05
"""Aim: the reference day served live and watched, over the reference day. [-]"""
KEPT_BLOCK_SIZE = 32
KEPT_BLOCKS = 16


@dataclass(frozen=True)
class ChainRpcCost:
    """The cost of keeping the chain and of serving it live.

    Attributes
    ----------
    kept_s, memory_s : list of float
        Wall time of mining `KEPT_BLOCKS` blocks of `KEPT_BLOCK_SIZE` orders, kept / in memory only, per repeat. [s]
    live_wall_s : float
        The reference day's wall time with the live endpoint watched. [s]
    reference_wall_s : float
        The reference day's wall time in the same bench run. [s]
    live_ledger_compute_s, reference_ledger_compute_s : float
        The ledger federate's own compute in those two runs. [s]
    requests : int
        JSON-RPC requests the endpoint answered during the live run.
    """

    kept_s: list[float]
    memory_s: list[float]
    live_wall_s: float
    reference_wall_s: float
    live_ledger_compute_s: float
    reference_ledger_compute_s: float
    requests: int

    @property
    def kept_ratio(self) -> float:
        """Median mining time kept over in memory only. [-]"""
        return statistics.median(self.kept_s) / statistics.median(self.memory_s)

    @property
    def live_ratio(self) -> float:
        """The watched day's wall time over the reference day's. [-]"""
        return self.live_wall_s / self.reference_wall_s


def kept_mining(repeats: int, block_size: int = KEPT_BLOCK_SIZE, n_blocks: int = KEPT_BLOCKS
                ) -> tuple[list[float], list[float]]:
    """(kept, in memory) wall times of mining the same orders, alternating, `repeats` each. [s]"""
    operator = derive_account(SECRET, "operator")
    prosumers = [derive_account(SECRET, f"prosumer/{i}") for i in range(block_size)]
    kept_s, memory_s = [], []
    for _ in range(repeats):
        memory_s.append(run_ours(operator, prosumers, n_blocks)[0])
        with tempfile.TemporaryDirectory() as directory:
            kept_s.append(run_ours(operator, prosumers, n_blocks, keep=Path(directory) / "chaindb")[0])
    return kept_s, memory_s


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _watch(url: str, stop: threading.Event, answered: list[int]) -> None:
    """Poll `url` every `POLL_S` until `stop`, as a notebook would; count the requests answered in `answered`."""
    w3 = Web3(HTTPProvider(url))
    seen = -1
    while not stop.wait(POLL_S):
        try:
            head = w3.eth.block_number
            answered[0] += 1
            if head > seen:
                w3.eth.get_logs({"fromBlock": seen + 1, "toBlock": head})
                w3.eth.get_block(head, full_transactions=True)
                answered[0] += 2
                seen = head
        except NoEndpoint:
            continue                            # the ledger has not started listening yet, or has stopped


def live_day(runs_root: Path) -> tuple[StudyResult, int]:
    """Run the reference day with the live endpoint on and watched; (its result, requests answered)."""
    port = _free_port()
    study = yaml.safe_load(REFERENCE_STUDY.read_text()) | {"ledger": {"rpc": {"port": port}}}
    runs_root.mkdir(parents=True, exist_ok=True)
    path = runs_root / f"{REFERENCE_STUDY.stem}-live-rpc.yaml"
    path.write_text(yaml.safe_dump(study))
    stop, answered = threading.Event(), [0]
    watcher = threading.Thread(target=_watch, args=(f"http://127.0.0.1:{port}", stop, answered), daemon=True)
    watcher.start()
    try:
        return run_study(path, runs_root), answered[0]
    finally:
        stop.set()
        watcher.join()


def chain_rpc_cost(reference: StudyResult, runs_root: Path, repeats: int = 3) -> ChainRpcCost:
    """Measure the kept chain's mining cost and the live endpoint's cost against `reference`."""
    kept_s, memory_s = kept_mining(repeats)
    live, requests = live_day(runs_root)
    return ChainRpcCost(kept_s, memory_s, live.total_s, reference.total_s, live.compute_s["ledger"],
                        reference.compute_s["ledger"], requests)


def chain_rpc_section(cost: ChainRpcCost, number: int = 13) -> list[str]:
    """Rows of the section on the chain over JSON-RPC."""
    return [
        f"{number}. The chain over JSON-RPC (issue 17): the chain kept on disk, and the reference day served live"
        f"   (aim: live / reference < {LIVE_AIM_RATIO:g})",
        f"   mining {KEPT_BLOCKS} blocks of {KEPT_BLOCK_SIZE} orders, median of {len(cost.kept_s)}: kept "
        f"{statistics.median(cost.kept_s):.2f} s, in memory {statistics.median(cost.memory_s):.2f} s, "
        f"kept / memory = {cost.kept_ratio:.3f}x",
        f"   reference day watched live (polled every {POLL_S:g} s, {cost.requests} requests answered): wall "
        f"{cost.live_wall_s:.1f} s vs {cost.reference_wall_s:.1f} s, live / reference = {cost.live_ratio:.3f}x"
        f"  ({verdict(cost.live_ratio < LIVE_AIM_RATIO)})",
        f"   ledger compute {cost.live_ledger_compute_s:.2f} s vs {cost.reference_ledger_compute_s:.2f} s, "
        f"live / reference = {cost.live_ledger_compute_s / cost.reference_ledger_compute_s:.3f}x",
    ]
