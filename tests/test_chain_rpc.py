"""The chain over Ethereum JSON-RPC: kept on disk, served after the run and live, read with web3.py.

One short study runs once for the module (`watched_run`: one hour of
`studies/baran-wu-short.yaml` with ``ledger.rpc`` on) while a client
polls its live endpoint; then ``gridledger chain serve`` serves the chain
the run kept (`served`), and web3.py's HTTPProvider reads it back against
the run's own export (``chain/*.jsonl``).
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from web3 import HTTPProvider, Web3
from web3.exceptions import ContractLogicError, Web3RPCError

from gridledger.agents.ledger_tools import LedgerTools
from gridledger.chain_reader import MAX_LOG_BLOCKS
from gridledger.chain_rpc import DEPLOYMENTS_FILE, KEPT_CHAIN_DIR, WRITE_METHODS
from gridledger.cli import main
from gridledger.contracts.chain import Chain, KeptChainError, kept_chain
from gridledger.contracts.disk_store import DB_FILE
from gridledger.contracts.keys import derive_account, derive_chain_id
from gridledger.study import Rpc, StudyError, parse_study
from tests.e2e_helpers import ROOT, SHORT_STUDY, TEST_SECRET, only_run_dir, with_secret
from tests.secret_helpers import fixed_secret

GENESIS_TIMESTAMP = 1_700_000_000


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, body: bytes | str) -> dict | list:
    """POST `body` as it is; the decoded JSON answer."""
    raw = body.encode() if isinstance(body, str) else body
    request = urllib.request.Request(url, data=raw, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        return json.loads(response.read())


def _call(url: str, method: str, *params: object) -> dict:
    return _post(url, json.dumps({"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}))


@dataclass(frozen=True)
class WatchedRun:
    """The run, what its live endpoint answered while it ran, and its own export."""

    run_dir: Path
    heads: dict[int, str]
    refusal: dict
    blocks: list[dict]
    events: list[dict]
    receipts: list[dict]


def _watch(url: str, run: subprocess.Popen, deadline_s: float = 600) -> tuple[dict[int, str], dict]:
    """Poll the live endpoint until the run ends: {head number: its hash}, and its answer to a raw transaction."""
    heads, refusal = {}, {}
    deadline = time.monotonic() + deadline_s
    while run.poll() is None:
        if time.monotonic() > deadline:
            run.kill()
            pytest.fail(f"the run did not end within {deadline_s:g} s")
        try:
            head = int(_call(url, "eth_blockNumber")["result"], 16)
            heads.setdefault(head, _call(url, "eth_getBlockByNumber", hex(head), False)["result"]["hash"])
            refusal = refusal or _call(url, "eth_sendRawTransaction", "0x02")
        except (urllib.error.URLError, ConnectionError):
            pass                                # not listening yet, or the ledger has just ended
        time.sleep(0.2)
    return heads, refusal


@pytest.fixture(scope="module")
def watched_run(tmp_path_factory) -> WatchedRun:
    runs = tmp_path_factory.mktemp("rpc-runs")
    port = _free_port()
    study = runs / "study.yaml"
    config = yaml.safe_load(SHORT_STUDY.read_text()) | {"duration_s": 3600, "ledger": {"rpc": {"port": port}}}
    study.write_text(yaml.safe_dump(config))
    with (runs / "run.log").open("w") as log:
        run = subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(study), "--runs", str(runs)],
                               cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=with_secret())
        heads, refusal = _watch(f"http://127.0.0.1:{port}", run)
    assert run.returncode == 0, (runs / "run.log").read_text()
    run_dir = only_run_dir(runs, config["name"])
    export = {name: [json.loads(line) for line in (run_dir / "chain" / f"{name}.jsonl").read_text().splitlines()]
              for name in ("blocks", "events", "receipts")}
    return WatchedRun(run_dir, heads, refusal, export["blocks"], export["events"], export["receipts"])


@pytest.fixture(scope="module")
def served(watched_run) -> str:
    """``gridledger chain serve`` over the finished run, until the module ends; its URL."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "gridledger.cli", "chain", "serve", str(watched_run.run_dir),
                               "--port", str(port)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              text=True)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                _call(url, "eth_chainId")
                break
            except urllib.error.URLError:
                if server.poll() is not None or time.monotonic() > deadline:
                    server.kill()
                    pytest.fail(f"gridledger chain serve never answered: {server.communicate()[0]}")
                time.sleep(0.2)
        yield url
    finally:
        server.terminate()
        server.wait(timeout=60)


@pytest.fixture(scope="module")
def w3(served) -> Web3:
    return Web3(HTTPProvider(served))


@pytest.fixture(scope="module")
def settlement(w3, watched_run):
    entry = json.loads((watched_run.run_dir / DEPLOYMENTS_FILE).read_text())["contracts"]["Settlement"]
    return w3.eth.contract(address=entry["address"], abi=entry["abi"])


# the chain kept on disk


def _transfers(chain: Chain, sender, blocks: int) -> list[bytes]:
    """Mine `blocks` blocks of one value transfer each from `sender`; their hashes from genesis."""
    wallet = chain.wallet(sender)
    for k in range(blocks):
        chain.mine([wallet.transact(sender.address, b"", gas=21_000, value_wei=1)], chain.timestamp + 10)
    return [chain.block_hash(n) for n in range(chain.block_number + 1)]


def test_a_kept_chain_has_the_same_blocks_and_reopens_read_only(tmp_path):
    sender = derive_account(fixed_secret(7), "sender")
    kept = Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP)
    kept.keep(tmp_path / "chaindb")
    hashes = _transfers(kept, sender, 3)
    with pytest.raises(KeptChainError, match="another process has it open"):
        with kept_chain(tmp_path / "chaindb"):
            pass
    kept.close()
    assert _transfers(Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP), sender, 3) == hashes
    with kept_chain(tmp_path / "chaindb") as chain, kept_chain(tmp_path / "chaindb") as second:
        assert [chain.get_canonical_block_hash(n) for n in range(4)] == hashes
        assert chain.chain_id == kept.chain_id == second.chain_id
        assert second.get_canonical_head().hash == hashes[-1]
        with pytest.raises(PermissionError, match="read-only"):
            chain.chaindb.db[b"key"] = b"value"
    with pytest.raises(KeptChainError, match="no kept chain"):
        with kept_chain(tmp_path / "elsewhere"):
            pass


def test_a_kept_chain_maps_none_of_its_database_into_memory_and_mines_the_same_blocks(tmp_path):
    """LevelDB kept every table it read mapped, so the ledger's resident set grew with the chain; the kept chain's
    store reads through a bounded page cache instead: after blocks mined and every block read back, no file of the
    kept chain is mapped into this process."""
    sender = derive_account(fixed_secret(7), "sender")
    kept = Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP)
    kept.keep(tmp_path / "chaindb")
    hashes = _transfers(kept, sender, 6)
    mapped = [line for line in Path("/proc/self/maps").read_text().splitlines() if str(tmp_path) in line]
    kept.close()
    assert (tmp_path / "chaindb" / DB_FILE).stat().st_size > 0 and mapped == []
    assert _transfers(Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP), sender, 6) == hashes


def test_a_reader_thread_reads_while_the_miner_writes(tmp_path):
    """`Chain.view` from another thread (the live endpoint's) while the miner writes each block to the store."""
    sender = derive_account(fixed_secret(7), "sender")
    chain = Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP)
    chain.keep(tmp_path / "chaindb")
    errors, reads, done = [], [], threading.Event()

    def read() -> None:
        while not done.is_set():
            try:
                view = chain.view()
                reads.append(view.get_vm(view.get_canonical_head()).state.get_balance(bytes.fromhex(sender.address[2:])))
            except Exception as error:      # noqa: BLE001 - every failure of the reader is the test's finding
                errors.append(error)

    reader = threading.Thread(target=read)
    reader.start()
    try:
        _transfers(chain, sender, 8)
    finally:
        done.set()
        reader.join()
        chain.close()
    assert not errors and len(reads) > 8


def test_a_killed_miner_leaves_every_block_it_mined_on_disk(tmp_path):
    script = ("import os\n"
              "from gridledger.contracts.chain import Chain\n"
              "from gridledger.contracts.keys import derive_account\n"
              f"sender = derive_account({fixed_secret(7)!r}, 'sender')\n"
              f"chain = Chain([sender.address], genesis_timestamp={GENESIS_TIMESTAMP})\n"
              f"chain.keep({str(tmp_path / 'chaindb')!r})\n"
              "wallet = chain.wallet(sender)\n"
              "for k in range(2):\n"
              "    chain.mine([wallet.transact(sender.address, b'', gas=21_000, value_wei=1)], chain.timestamp + 10)\n"
              "print(','.join(chain.block_hash(n).hex() for n in range(3)), flush=True)\n"
              "os.kill(os.getpid(), 9)\n")
    killed = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT)
    assert killed.returncode == -9, killed.stderr
    hashes = [bytes.fromhex(h) for h in killed.stdout.strip().split(",")]
    with kept_chain(tmp_path / "chaindb") as chain:
        assert chain.get_canonical_head().block_number == 2
        assert [chain.get_canonical_block_hash(n) for n in range(3)] == hashes


# the live endpoint in the mining process


def test_the_live_endpoint_answers_at_the_block_the_miner_last_showed_it(tmp_path):
    sender = derive_account(fixed_secret(7), "sender")
    chain = Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP)
    _transfers(chain, sender, 1)
    url = f"http://127.0.0.1:{(port := _free_port())}"
    tools = LedgerTools.open(chain, tmp_path, None, Rpc(port=port))
    try:
        assert _call(url, "eth_blockNumber")["result"] == "0x1"
        hashes = _transfers(chain, sender, 1)              # mined, not yet shown: the endpoint still answers at 1
        assert _call(url, "eth_blockNumber")["result"] == "0x1"
        assert _call(url, "eth_getBlockByNumber", "0x2", False)["error"]["code"] == -32001
        tools.mined()
        assert _call(url, "eth_getBlockByNumber", "latest", False)["result"]["hash"] == "0x" + hashes[2].hex()
        assert _call(url, "eth_getBalance", sender.address, "0x1")["result"] != _call(
            url, "eth_getBalance", sender.address, "0x2")["result"]
    finally:
        tools.close()
    assert json.loads((tmp_path / DEPLOYMENTS_FILE).read_text()) == {"chainId": chain.chain_id, "contracts": {}}
    with kept_chain(tmp_path / KEPT_CHAIN_DIR) as kept:
        assert kept.get_canonical_head().hash == hashes[2]


def test_a_live_endpoint_that_cannot_listen_fails_the_ledger_before_it_mines(tmp_path):
    sender = derive_account(fixed_secret(7), "sender")
    chain = Chain([sender.address], genesis_timestamp=GENESIS_TIMESTAMP)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError, match=f"ledger.rpc: cannot listen on 127.0.0.1:{port}: .*address already in use"):
            LedgerTools.open(chain, tmp_path, None, Rpc(port=port))
    with kept_chain(tmp_path / KEPT_CHAIN_DIR):         # the ledger let its kept chain go
        pass


def test_the_bench_section_sets_the_kept_chain_against_memory_and_the_live_day_against_the_reference():
    from bench.chain_rpc import ChainRpcCost, chain_rpc_section, kept_mining

    kept_s, memory_s = kept_mining(repeats=1, block_size=2, n_blocks=1)
    assert len(kept_s) == len(memory_s) == 1 and min(kept_s + memory_s) > 0
    rows = chain_rpc_section(ChainRpcCost(kept_s, memory_s, 10.2, 10.0, 5.0, 5.0, 30))
    assert "live / reference = 1.020x  (meets aim)" in rows[2] and len(rows) == 4


# the study's ledger.rpc


@pytest.mark.parametrize("ledger, extra, message", [
    ({"rpc": {"port": 80}}, {}, "ledger.rpc.port = 80: Input should be greater than or equal to 1024"),
    ({"rpc": {"port": 70000}}, {}, "ledger.rpc.port = 70000: Input should be less than or equal to 65535"),
    ({"rpc": {"host": "127.0.0.1"}}, {}, "ledger.rpc.port = (missing)"),
    ({"rpc": {"port": 8545}}, {"helics": {"port": 8545}}, "ledger.rpc.port (8545) is helics.port"),
    ({"rpc": {"port": 8545}}, {"market": {"sharding": "per-zone"}, "grid": {"zones": {"buses": [[1, 2], [3, 4]]}}},
     "ledger.rpc serves one chain, but market.sharding = 'per-zone'"),
])
def test_ledger_rpc_refuses_a_port_it_cannot_serve_on(ledger, extra, message):
    with pytest.raises(StudyError) as error:
        parse_study({"name": "x", "ledger": ledger, **extra})
    assert message in str(error.value)


def test_ledger_rpc_is_off_unless_asked():
    assert parse_study({"name": "x"}).ledger.rpc is None
    assert parse_study({"name": "x", "ledger": {"rpc": {"port": 8545}}}).ledger.rpc.host == "127.0.0.1"


# the run's files


@pytest.mark.e2e
def test_the_run_keeps_its_chain_and_names_every_deployed_contract(watched_run):
    deployments = json.loads((watched_run.run_dir / DEPLOYMENTS_FILE).read_text())
    assert deployments["chainId"] == derive_chain_id(TEST_SECRET)
    assert list(deployments["contracts"]) == ["Registry", "GridToken", "DoubleAuction", "Settlement"]
    created = {row["contract_address"]: row for row in watched_run.receipts if row["contract_address"]}
    for entry in deployments["contracts"].values():
        receipt = created[entry["address"]]
        assert (entry["blockNumber"], entry["transactionHash"]) == (receipt["block_number"], receipt["tx_hash"])
        assert any(item["type"] == "function" for item in entry["abi"])
    assert (watched_run.run_dir / KEPT_CHAIN_DIR / DB_FILE).is_file()


# the live endpoint


@pytest.mark.e2e
def test_the_live_endpoint_answered_during_the_run_at_blocks_of_the_final_chain(watched_run):
    final = {row["number"]: row["hash"] for row in watched_run.blocks}
    assert len(watched_run.heads) >= 2, watched_run.heads
    assert min(watched_run.heads) < max(final)
    assert all(final[number] == block_hash for number, block_hash in watched_run.heads.items())


@pytest.mark.e2e
def test_the_live_endpoint_refuses_transactions(watched_run):
    error = watched_run.refusal["error"]
    assert error["code"] == -32004 and "read-only" in error["message"]


# the finished chain over web3.py


@pytest.mark.e2e
def test_blocks_transactions_and_receipts_equal_the_export(w3, watched_run):
    assert w3.eth.chain_id == derive_chain_id(TEST_SECRET)
    assert w3.eth.block_number == watched_run.blocks[-1]["number"]
    for row in watched_run.blocks:
        block = w3.eth.get_block(row["number"])
        assert "0x" + block["hash"].hex() == row["hash"]
        assert ["0x" + h.hex() for h in block["transactions"]] == row["transactions"]
        assert w3.eth.get_block(block["hash"])["number"] == row["number"]
    for row in [r for r in watched_run.receipts if r["block_number"] is not None][::25]:
        receipt = w3.eth.get_transaction_receipt(row["tx_hash"])
        assert (receipt["status"], receipt["gasUsed"], receipt["blockNumber"]) == (
            row["status"], row["gas_used"], row["block_number"])
        assert len(receipt["logs"]) == len(row["logs"])
        assert w3.eth.get_transaction(row["tx_hash"])["from"] == row["sender"]


def _settled(settlement, block_hash: bytes | None = None, **filters) -> list[dict]:
    """The ``Settled`` logs the endpoint returns (of every block, or of the block `block_hash`), as rows of
    ``events.jsonl``."""
    blocks = {"block_hash": block_hash} if block_hash else {"from_block": 0, "to_block": "latest"}
    logs = settlement.events.Settled.get_logs(argument_filters=filters or None, **blocks)
    return [{"block_number": log["blockNumber"], "tx_hash": "0x" + log["transactionHash"].hex(),
             "log_index": log["logIndex"], "address": log["address"], "args": dict(log["args"])} for log in logs]


@pytest.mark.e2e
def test_every_settled_event_from_get_logs_equals_the_export(settlement, watched_run):
    exported = [{key: row[key] for key in ("block_number", "tx_hash", "log_index", "address", "args")}
                for row in watched_run.events if row["event"] == "Settled"]
    assert len(exported) == 4 * 32
    assert _settled(settlement) == exported
    prosumer = exported[0]["args"]["prosumer"]
    assert _settled(settlement, prosumer=prosumer) == [row for row in exported if row["args"]["prosumer"] == prosumer]
    last = watched_run.blocks[exported[-1]["block_number"]]
    assert _settled(settlement, bytes.fromhex(last["hash"][2:])) == [
        row for row in exported if row["block_number"] == last["number"]]


def _credit_up_to(events: list[dict], prosumer: str, block: int) -> int:
    """A prosumer's Settlement credit after `block`, rebuilt from the events up to it. [wei]"""
    credit = 0
    for row in events:
        args = row["args"]
        if row["block_number"] > block or row["contract"] != "Settlement":
            continue
        if row["event"] == "Deposited" and args["beneficiary"] == prosumer:
            credit += args["amount_wei"]
        elif row["event"] == "Settled" and args["prosumer"] == prosumer:
            credit += args["p2p_wei"] - args["fee_wei"] + args["imbalance_wei"]
        elif row["event"] == "Covered" and args["payee"] == prosumer:
            credit += args["amount_wei"]
        elif row["event"] == "Withdrawn" and args["account"] == prosumer:
            credit -= args["amount_wei"]
    return credit


@pytest.mark.e2e
def test_settlement_credit_at_three_past_blocks_equals_the_events_up_to_them(settlement, watched_run):
    head = watched_run.blocks[-1]["number"]
    blocks = sorted({row["block_number"] for row in watched_run.events if row["event"] == "Settled"} - {head})[:3]
    assert len(blocks) == 3
    credits = defaultdict(list)
    for row in watched_run.events:
        if row["event"] == "Settled":
            credits[row["args"]["prosumer"]].append(row["args"]["imbalance_wei"] + row["args"]["p2p_wei"])
    prosumer = next(p for p, changes in credits.items() if all(changes))
    rebuilt = [_credit_up_to(watched_run.events, prosumer, block) for block in blocks]
    assert len(set(rebuilt)) == 3
    assert [settlement.functions.credit_wei(prosumer).call(block_identifier=block) for block in blocks] == rebuilt


@pytest.mark.e2e
def test_calls_and_estimates_run_on_past_state_and_give_revert_reasons(w3, settlement, watched_run):
    prosumer = next(row["args"]["prosumer"] for row in watched_run.events if row["event"] == "Settled")
    deployed = json.loads((watched_run.run_dir / DEPLOYMENTS_FILE).read_text())["contracts"]["Settlement"]
    assert w3.eth.get_code(settlement.address, block_identifier=deployed["blockNumber"] - 1) == b""
    assert len(w3.eth.get_code(settlement.address)) > 1000
    assert settlement.functions.credit_wei(prosumer).estimate_gas() > 21_000
    assert settlement.functions.withdraw(1).estimate_gas({"from": prosumer}) > 21_000
    with pytest.raises(ContractLogicError, match="settlement: withdraw above free credit"):
        settlement.functions.withdraw(10**30).call({"from": prosumer})
    assert w3.eth.get_transaction_count(prosumer) > 0 and w3.eth.get_balance(prosumer) > 0
    assert len(w3.eth.get_storage_at(settlement.address, 0)) == 32


@pytest.mark.e2e
def test_the_readme_example_reads_a_prosumers_settlements(served, watched_run):
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("### The chain over JSON-RPC"):]
    example = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert len(example.strip().splitlines()) == 5
    prosumer = next(row["args"]["prosumer"] for row in watched_run.events if row["event"] == "Settled")
    code = (example.replace("http://127.0.0.1:8545", served)
            .replace("runs/baran-wu-p2p/<timestamp>/deployments.json", str(watched_run.run_dir / DEPLOYMENTS_FILE)))
    scope = {"PROSUMER": prosumer}
    exec(code, scope)
    assert len(scope["settled"]) == 4 and all(e["args"]["prosumer"] == prosumer for e in scope["settled"])


# what the endpoint refuses


@pytest.mark.e2e
def test_every_write_method_is_refused_and_the_chain_is_unchanged(w3, served, watched_run):
    operator = derive_account(TEST_SECRET, "operator")
    head, nonce = w3.eth.block_number, w3.eth.get_transaction_count(operator.address)
    signed = operator.sign_transaction({"type": 2, "chainId": w3.eth.chain_id, "nonce": nonce, "to": operator.address,
                                        "value": 1, "gas": 21_000, "maxFeePerGas": 10**9, "maxPriorityFeePerGas": 0})
    with pytest.raises(Web3RPCError, match="finished run"):
        w3.eth.send_raw_transaction(signed.raw_transaction)
    for method in WRITE_METHODS:
        error = _call(served, method, {"from": operator.address, "to": operator.address, "value": "0x1"})["error"]
        assert error["code"] == -32004 and error["message"].startswith(f"{method}: this chain is a finished run")
    assert (w3.eth.block_number, w3.eth.get_transaction_count(operator.address)) == (head, nonce)
    assert _call(served, "eth_getTransactionByHash", "0x" + signed.hash.hex())["result"] is None


@pytest.mark.e2e
def test_malformed_requests_answer_json_rpc_errors_and_the_endpoint_goes_on(served, watched_run):
    head = watched_run.blocks[-1]["number"]
    cases = [
        ("{not json", -32700),
        ("[]", -32600),
        ('{"jsonrpc": "2.0", "id": 1}', -32600),
        ('{"jsonrpc": "2.0", "id": 1, "method": "eth_mine_everything", "params": []}', -32601),
        (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": [hex(head + 1), False]}),
         -32001),
        (json.dumps({"jsonrpc": "2.0", "id": 1, "method": "eth_getLogs",
                     "params": [{"fromBlock": "0x0", "toBlock": hex(MAX_LOG_BLOCKS)}]}), -32005),
        ('{"jsonrpc": "2.0", "id": 1, "method": "eth_getBalance", "params": ["0x12", "latest"]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "eth_blockNumber", "params": ["latest"]}', -32602),
        ('{"jsonrpc": "2.0", "id": 1, "method": "eth_call", "params": [{"to": "0x00", "colour": 1}]}', -32602),
        (b'{"jsonrpc": "2.0", "id": 1, "method": "eth_chainId\xff"}', -32601),
    ]
    for body, code in cases:
        assert _post(served, body)["error"]["code"] == code, body
    batch = _post(served, '[{"jsonrpc": "2.0", "id": 1, "method": "nope"}, {"jsonrpc": "2.0", "id": 2, '
                          '"method": "eth_blockNumber"}]')
    assert [answer.get("error", {}).get("code") for answer in batch] == [-32601, None]
    assert _call(served, "eth_blockNumber")["result"] == hex(head)
    past_head = _call(served, "eth_call", {"to": "0x" + "00" * 20}, hex(head + 5))["error"]
    assert past_head["code"] == -32001 and f"block {head + 5} is past the head, block {head}" in past_head["message"]
    assert _call(served, "eth_getCode", "0x" + "00" * 20, "earliest")["result"] == "0x"


@pytest.mark.e2e
def test_serve_refuses_with_exit_2_what_it_cannot_serve(served, watched_run, tmp_path, capsys):
    assert main(["chain", "serve", str(tmp_path)]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["chain", "serve", str(watched_run.run_dir), "--zone", "z0"]) == 2
    assert "runs one ledger, not one per zone" in capsys.readouterr().err
