"""A read-only Ethereum JSON-RPC endpoint over a run's chain: after the run, or live from the ledger while it runs.

web3.py, ethers, cast and other standard tools read the chain through it.
The methods are `gridledger.chain_reader.ChainReader`'s (``eth_chainId``,
``net_version``, ``eth_blockNumber``, ``eth_getBlockByNumber``/``ByHash``,
``eth_getTransactionByHash``, ``eth_getTransactionReceipt``,
``eth_getLogs``, ``eth_call``, ``eth_estimateGas``, ``eth_getBalance``,
``eth_getCode``, ``eth_getStorageAt``, ``eth_getTransactionCount``, and
``web3_clientVersion``, ``net_listening``, ``eth_syncing``,
``eth_accounts``); every method that would write (`WRITE_METHODS`)
answers error -32004 saying why. Malformed requests get the JSON-RPC
errors of the specification (-32700 bad JSON, -32600 not a request,
-32601 unknown method, -32602 bad parameters); nothing a client sends
stops the endpoint.

HTTP is aiohttp's server; JSON-RPC 2.0 parsing, batches, notifications
and dispatch are the ``json-rpc`` package's (no dependencies of its own).

- After a run: ``gridledger chain serve RUN_DIR`` (`serve_finished`)
  serves the chain the ledger kept in ``chaindb/`` (`kept_chain_dir`).
- During a run, with ``ledger: {rpc: {port: P}}`` in the study: the
  ledger serves the chain it is mining from a background thread
  (`LiveEndpoint`), answering at the last block it mined.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import inspect
import logging
import threading
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

from aiohttp import web
from jsonrpc import Dispatcher, JSONRPCResponseManager
from jsonrpc.exceptions import JSONRPCDispatchException

from gridledger.chain_reader import INVALID_PARAMS, METHOD_NOT_SUPPORTED, ChainReader, RpcError, quantity
from gridledger.contracts.chain import Chain, kept_chain

log = logging.getLogger("gridledger.chain_rpc")

KEPT_CHAIN_DIR = "chaindb"
"""Folder of a run directory where the ledger keeps its chain database (`gridledger.contracts.disk_store`)."""
DEPLOYMENTS_FILE = "deployments.json"
"""File of a run directory naming each contract with its address, ABI and deployment block."""
INTERNAL_ERROR = -32603
"""JSON-RPC 2.0: the endpoint failed to answer a valid request."""
WRITE_METHODS = ("eth_sendRawTransaction", "eth_sendTransaction", "eth_signTransaction", "eth_sign",
                 "eth_submitWork", "eth_submitHashrate", "miner_start", "miner_stop", "evm_mine", "hardhat_mine",
                 "anvil_mine")
"""Methods that would sign, send or mine: refused."""
FINISHED_REFUSAL = "this chain is a finished run, served read-only: nothing can be sent to it or mined"
LIVE_REFUSAL = ("this endpoint is read-only: the ledger mines only the transactions of its federation, "
                "which arrive over HELICS")


def kept_chain_dir(run_dir: Path, zone: str | None = None) -> Path:
    """Where a ledger keeps its chain database: ``chaindb/``, a zone's ledger ``chaindb/<zone>/``."""
    return run_dir / KEPT_CHAIN_DIR if zone is None else run_dir / KEPT_CHAIN_DIR / zone


def deployments_path(run_dir: Path, zone: str | None = None) -> Path:
    """Where a ledger writes its deployments: ``deployments.json``, a zone's ledger ``deployments-<zone>.json``."""
    return run_dir / (DEPLOYMENTS_FILE if zone is None else f"deployments-{zone}.json")


def methods(reader: ChainReader, refusal: str) -> dict[str, Callable]:
    """Every JSON-RPC method the endpoint answers, by name; the write methods answer `refusal`."""
    def refuse(name: str) -> Callable:
        def refused(*params: object, **named: object) -> None:
            raise RpcError(METHOD_NOT_SUPPORTED, f"{name}: {refusal}")
        return refused

    answered = {
        "web3_clientVersion": lambda: f"gridledger/{version('gridledger')}/py-evm",
        "net_version": lambda: str(reader.chain_id),
        "net_listening": lambda: True,
        "eth_chainId": lambda: quantity(reader.chain_id),
        "eth_syncing": lambda: False,
        "eth_accounts": lambda: [],
        "eth_blockNumber": lambda: quantity(reader.head),
        "eth_getBlockByNumber": reader.block_by_number,
        "eth_getBlockByHash": reader.block_by_hash,
        "eth_getTransactionByHash": reader.transaction_by_hash,
        "eth_getTransactionReceipt": reader.receipt,
        "eth_getLogs": reader.logs,
        "eth_call": reader.call,
        "eth_estimateGas": reader.estimate_gas,
        "eth_getBalance": reader.balance,
        "eth_getCode": reader.code,
        "eth_getStorageAt": reader.storage_at,
        "eth_getTransactionCount": reader.transaction_count,
    }
    return {name: _answering(name, method) for name, method in
            {**answered, **{name: refuse(name) for name in WRITE_METHODS}}.items()}


def _answering(name: str, method: Callable) -> Callable:
    """`method` with its parameters checked and every failure turned into a JSON-RPC error."""
    signature = inspect.signature(method)

    def answer(*params: object, **named: object) -> object:
        try:
            signature.bind(*params, **named)
        except TypeError:
            takes = ", ".join(signature.parameters) or "no parameters"
            raise JSONRPCDispatchException(INVALID_PARAMS, f"{name} takes [{takes}], got "
                                                           f"{list(params) if params else named}") from None
        try:
            return method(*params, **named)
        except RpcError as error:
            raise JSONRPCDispatchException(error.code, error.message, error.data) from None
        except Exception as error:
            # A fault of ours answers this request with an error; the endpoint goes on serving the others.
            log.exception("%s failed", name)
            raise JSONRPCDispatchException(INTERNAL_ERROR, f"{name}: internal error: {type(error).__name__}") from None
    return answer


def application(reader: ChainReader, refusal: str) -> web.Application:
    """The aiohttp application answering JSON-RPC 2.0 requests (single or batched) POSTed to ``/``."""
    dispatcher = Dispatcher(methods(reader, refusal))

    async def rpc(request: web.Request) -> web.Response:
        body = (await request.read()).decode("utf-8", errors="replace")
        response = JSONRPCResponseManager.handle(body, dispatcher)
        if response is None:                    # notifications only: nothing to answer
            return web.Response(status=204)
        return web.Response(text=response.json, content_type="application/json")

    app = web.Application()
    app.router.add_post("/", rpc)
    return app


def serve_finished(run_dir: Path, host: str, port: int, zone: str | None = None,
                   announce: Callable[[str], None] = print) -> None:
    """Serve the chain a finished run kept until interrupted (Ctrl-C, SIGTERM).

    Raises
    ------
    gridledger.contracts.chain.KeptChainError
        If the run directory holds no kept chain, or a ledger still has it open.
    OSError
        If nothing can listen on `host`:`port`.
    """
    with kept_chain(kept_chain_dir(run_dir, zone)) as chain:
        reader = ChainReader(chain)
        web.run_app(application(reader, FINISHED_REFUSAL), host=host, port=port, access_log=None,
                    print=lambda _: announce(f"serving {kept_chain_dir(run_dir, zone)} (chain id {reader.chain_id}, "
                                             f"blocks 0..{reader.head}) at http://{host}:{port}; Ctrl-C stops"))


class LiveEndpoint:
    """The endpoint over a chain being mined, served from a background thread of the mining process.

    It answers at the block `show_head` last named, never above: the
    blocks up to it are written for good, so a request read while the
    next block is mined sees that block's state whole. The thread's event
    loop waits in ``select`` between requests and holds no lock the miner
    needs.

    Parameters
    ----------
    chain : Chain
        The chain being mined; read through `Chain.view`.
    host, port : str, int
        Where to listen.

    Raises
    ------
    OSError
        If nothing can listen on `host`:`port`; raised here, before any block is mined.
    """

    def __init__(self, chain: Chain, host: str, port: int) -> None:
        self.reader = ChainReader(chain.view(), head=chain.block_number)
        self.url = f"http://{host}:{port}"
        self._loop = asyncio.new_event_loop()
        listening: concurrent.futures.Future = concurrent.futures.Future()
        self._thread = threading.Thread(target=self._serve, args=(host, port, listening), name="chain-rpc",
                                        daemon=True)
        self._thread.start()
        listening.result()

    def _serve(self, host: str, port: int, listening: concurrent.futures.Future) -> None:
        asyncio.set_event_loop(self._loop)
        runner = web.AppRunner(application(self.reader, LIVE_REFUSAL), access_log=None)
        self._loop.run_until_complete(runner.setup())
        try:
            self._loop.run_until_complete(web.TCPSite(runner, host, port).start())
        except OSError as error:
            listening.set_exception(error)
        else:
            listening.set_result(None)
            self._loop.run_forever()
        self._loop.run_until_complete(runner.cleanup())
        self._loop.close()

    def show_head(self, number: int) -> None:
        """Answer at block `number` from now on: the miner calls it once a block is mined (an int store is atomic)."""
        self.reader.head = number

    def close(self) -> None:
        """Stop serving and wait for the thread to end."""
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join()
