"""Ethereum's read-only JSON-RPC methods over a py-evm chain, answered at a head that only moves forward.

A `ChainReader` reads a chain built by `gridledger.contracts.chain`: the
one a finished run kept (`gridledger.contracts.chain.kept_chain`) or the
live one a ledger is mining (`Chain.view`). It answers only at or below
its `ChainReader.head`, which the live ledger moves after each block it
has mined; every block, transaction, receipt and state trie node up to
the head is written once and never changed, so answers read from another
thread while the next block is mined are consistent.

Parameters and answers take the shapes of the Ethereum execution APIs
(``ethereum/execution-apis``; EIP-1474): quantities are 0x-hex without
leading zeros, data 0x-hex bytes, addresses checksummed, a block given as
a number, a tag (``latest``, ``earliest``, ``pending``, ``safe``,
``finalized``) or, as in EIP-1898, ``{"blockNumber": ...}`` or
``{"blockHash": ...}``. A request that cannot be answered raises
`RpcError` with the JSON-RPC error code of EIP-1474 (``3`` for a reverted
call, as geth answers) and a message that says what was wrong and what is
allowed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import rlp
from eth.abc import BlockHeaderAPI, ChainAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.estimators.gas import binary_gas_search_exact
from eth.exceptions import HeaderNotFound, TransactionNotFound
from eth.vm.spoof import SpoofTransaction
from eth_bloom import BloomFilter
from eth_utils import ValidationError, is_address, to_canonical_address, to_checksum_address

from gridledger.contracts.chain import CALL_GAS, revert_reason
from gridledger.contracts.client import contract_address

INVALID_PARAMS = -32602
"""JSON-RPC 2.0: the method's parameters are not what it takes."""
INVALID_INPUT = -32000
"""EIP-1474: a well-formed request the chain refuses (a call whose sender cannot pay its value)."""
RESOURCE_NOT_FOUND = -32001
"""EIP-1474: the block asked for does not exist (past the head)."""
METHOD_NOT_SUPPORTED = -32004
"""EIP-1474: a method this endpoint refuses (every method that would write)."""
LIMIT_EXCEEDED = -32005
"""EIP-1474: a request over a limit (an ``eth_getLogs`` range)."""
EXECUTION_REVERTED = 3
"""geth's code for a call that reverted; ``data`` holds the revert output."""

MAX_LOG_BLOCKS = 10_000
"""Most blocks one ``eth_getLogs`` may scan; a longer range is refused, to be split. [blocks]"""
BLOCK_TAGS = ("latest", "earliest", "pending", "safe", "finalized")
"""Block tags a block parameter may be; all but ``earliest`` mean the head: the chain has no pending block."""
_ZERO_ADDRESS = b"\x00" * 20


class RpcError(Exception):
    """A request the chain cannot answer: its JSON-RPC error `code`, `message` and optional `data`."""

    def __init__(self, code: int, message: str, data: str | None = None) -> None:
        super().__init__(message)
        self.code, self.message, self.data = code, message, data


def quantity(value: int) -> str:
    """An integer as a JSON-RPC quantity: 0x-hex, no leading zeros."""
    return hex(value)


def data(value: bytes) -> str:
    """Bytes as JSON-RPC data: 0x-hex."""
    return "0x" + value.hex()


def parse_quantity(value: object, what: str) -> int:
    """A JSON-RPC quantity (0x-hex) as an integer; RpcError naming `what` if it is not one."""
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) > 2:
        try:
            return int(value, 16)
        except ValueError:
            pass
    raise RpcError(INVALID_PARAMS, f"{what} = {value!r}: expected a 0x-hex quantity such as '0x1a'")


def parse_data(value: object, what: str, size: int | None = None) -> bytes:
    """JSON-RPC data (0x-hex) as bytes, of `size` bytes if given; RpcError naming `what` if it is not that."""
    if isinstance(value, str) and value[:2] in ("0x", "0X") and len(value) % 2 == 0:
        try:
            raw = bytes.fromhex(value[2:])
        except ValueError:
            raw = None
        if raw is not None and (size is None or len(raw) == size):
            return raw
    shape = f"{size} bytes" if size is not None else "bytes"
    raise RpcError(INVALID_PARAMS, f"{what} = {value!r}: expected 0x-hex data of {shape}")


def parse_address(value: object, what: str) -> bytes:
    """A 20-byte address (0x-hex, any case) as canonical bytes; RpcError naming `what` if it is not one."""
    if isinstance(value, str) and is_address(value):
        return to_canonical_address(value)
    raise RpcError(INVALID_PARAMS, f"{what} = {value!r}: expected an address, 0x and 40 hex digits")


def _transaction_type(tx: SignedTransactionAPI) -> int:
    """EIP-2718 type of `tx`, 0 for a legacy transaction."""
    return getattr(tx, "type_id", None) or 0


def _effective_gas_price(tx: SignedTransactionAPI, base_fee_per_gas: int) -> int:
    """What `tx` paid per unit of gas in a block of `base_fee_per_gas`. [wei/gas]"""
    if _transaction_type(tx) < 2:
        return tx.gas_price
    return min(tx.max_fee_per_gas, base_fee_per_gas + tx.max_priority_fee_per_gas)


def _log_row(log, header: BlockHeaderAPI, tx_hash: bytes, tx_index: int, log_index: int) -> dict:
    return {
        "address": to_checksum_address(log.address),
        "topics": [data(topic.to_bytes(32, "big")) for topic in log.topics],
        "data": data(log.data),
        "blockNumber": quantity(header.block_number),
        "blockHash": data(header.hash),
        "transactionHash": data(tx_hash),
        "transactionIndex": quantity(tx_index),
        "logIndex": quantity(log_index),
        "removed": False,
    }


class ChainReader:
    """Read-only answers from `chain` at `head` and below.

    Parameters
    ----------
    chain : eth.abc.ChainAPI
        A py-evm chain of `gridledger.contracts.chain`'s VM, only read.
    head : int, optional
        The newest block answered; the chain's canonical head if not given.
        The live ledger moves it forward after each block it mined.
    """

    def __init__(self, chain: ChainAPI, head: int | None = None) -> None:
        self._chain = chain
        self.chain_id: int = chain.chain_id
        self.head: int = chain.get_canonical_head().block_number if head is None else head

    # blocks

    def block_number(self, block: object) -> int:
        """The number a block parameter names, at most the head."""
        return self._at_most_head(self._named_number(block))

    def _at_most_head(self, number: int) -> int:
        if number > self.head:
            raise RpcError(RESOURCE_NOT_FOUND, f"block {number} is past the head, block {self.head}")
        return number

    def _named_number(self, block: object) -> int:
        """The number a block parameter names, the head not checked."""
        if block is None or block in BLOCK_TAGS:
            return 0 if block == "earliest" else self.head
        if isinstance(block, dict):
            if "blockHash" in block:
                return self._header_by_hash(parse_data(block["blockHash"], "blockHash", 32), required=True).block_number
            if "blockNumber" in block:
                return self._named_number(block["blockNumber"])
            raise RpcError(INVALID_PARAMS, f"block {block!r}: give blockNumber or blockHash (EIP-1898)")
        if not (isinstance(block, str) and block.startswith("0x")):
            raise RpcError(INVALID_PARAMS, f"block = {block!r}: expected a 0x-hex number or one of "
                                           f"{', '.join(BLOCK_TAGS)}")
        return parse_quantity(block, "block")

    def header(self, block: object) -> BlockHeaderAPI:
        """The canonical header a block parameter names."""
        return self._chain.get_canonical_block_header_by_number(self.block_number(block))

    def _header_by_hash(self, block_hash: bytes, required: bool = False) -> BlockHeaderAPI | None:
        """The canonical header of `block_hash` at or below the head; None (or, if `required`, RpcError) if none."""
        try:
            header = self._chain.get_block_header_by_hash(block_hash)
        except HeaderNotFound:
            header = None
        if header is not None and (header.block_number > self.head
                                   or self._chain.get_canonical_block_hash(header.block_number) != block_hash):
            header = None
        if header is None and required:
            raise RpcError(RESOURCE_NOT_FOUND, f"no block {data(block_hash)} at or below the head, block {self.head}")
        return header

    def block_by_number(self, block: object, full: bool = False) -> dict:
        """``eth_getBlockByNumber``: the block, its transactions as hashes or (`full`) objects."""
        return self._block(self.header(block), full)

    def block_by_hash(self, block_hash: object, full: bool = False) -> dict | None:
        """``eth_getBlockByHash``: the block, or None if no canonical block up to the head has that hash."""
        header = self._header_by_hash(parse_data(block_hash, "block hash", 32))
        return None if header is None else self._block(header, full)

    def _block(self, header: BlockHeaderAPI, full: bool) -> dict:
        if not isinstance(full, bool):
            raise RpcError(INVALID_PARAMS, f"full transactions = {full!r}: expected true or false")
        block = self._chain.get_block_by_header(header)
        transactions = [self._transaction(tx, header, i) if full else data(tx.hash)
                        for i, tx in enumerate(block.transactions)]
        return {
            "number": quantity(header.block_number),
            "hash": data(header.hash),
            "parentHash": data(header.parent_hash),
            "nonce": data(header.nonce),
            "mixHash": data(header.mix_hash),
            "sha3Uncles": data(header.uncles_hash),
            "logsBloom": data(header.bloom.to_bytes(256, "big")),
            "transactionsRoot": data(header.transaction_root),
            "stateRoot": data(header.state_root),
            "receiptsRoot": data(header.receipt_root),
            "miner": to_checksum_address(header.coinbase),
            "difficulty": quantity(header.difficulty),
            "totalDifficulty": quantity(0),
            "extraData": data(header.extra_data),
            "size": quantity(len(rlp.encode(block))),
            "gasLimit": quantity(header.gas_limit),
            "gasUsed": quantity(header.gas_used),
            "timestamp": quantity(header.timestamp),
            "baseFeePerGas": quantity(header.base_fee_per_gas),
            "withdrawalsRoot": data(header.withdrawals_root),
            "withdrawals": [],
            "blobGasUsed": quantity(header.blob_gas_used),
            "excessBlobGas": quantity(header.excess_blob_gas),
            "parentBeaconBlockRoot": data(header.parent_beacon_block_root),
            "requestsHash": data(header.requests_hash),
            "transactions": transactions,
            "uncles": [],
        }

    # transactions and receipts

    def _located(self, tx_hash: object) -> tuple[BlockHeaderAPI, int, SignedTransactionAPI] | None:
        """(header, index, transaction) of a mined transaction at or below the head, None if there is none."""
        tx_hash = parse_data(tx_hash, "transaction hash", 32)
        try:
            number, index = self._chain.get_canonical_transaction_index(tx_hash)
        except TransactionNotFound:
            return None
        if number > self.head:
            return None
        header = self._chain.get_canonical_block_header_by_number(number)
        return header, index, self._chain.get_canonical_transaction_by_index(number, index)

    def transaction_by_hash(self, tx_hash: object) -> dict | None:
        """``eth_getTransactionByHash``: the mined transaction, or None."""
        located = self._located(tx_hash)
        return None if located is None else self._transaction(located[2], located[0], located[1])

    def _transaction(self, tx: SignedTransactionAPI, header: BlockHeaderAPI, index: int) -> dict:
        kind = _transaction_type(tx)
        row = {
            "blockHash": data(header.hash),
            "blockNumber": quantity(header.block_number),
            "transactionIndex": quantity(index),
            "hash": data(tx.hash),
            "type": quantity(kind),
            "from": to_checksum_address(tx.sender),
            "to": to_checksum_address(tx.to) if tx.to else None,
            "nonce": quantity(tx.nonce),
            "gas": quantity(tx.gas),
            "gasPrice": quantity(_effective_gas_price(tx, header.base_fee_per_gas)),
            "value": quantity(tx.value),
            "input": data(tx.data),
            "r": quantity(tx.r),
            "s": quantity(tx.s),
        }
        if kind == 0:
            return row | {"v": quantity(tx.v)}
        row |= {"chainId": quantity(tx.chain_id), "v": quantity(tx.y_parity), "yParity": quantity(tx.y_parity),
                "accessList": [{"address": to_checksum_address(address), "storageKeys": [data(key.to_bytes(32, "big"))
                                                                                         for key in keys]}
                               for address, keys in tx.access_list]}
        if kind >= 2:
            row |= {"maxFeePerGas": quantity(tx.max_fee_per_gas),
                    "maxPriorityFeePerGas": quantity(tx.max_priority_fee_per_gas)}
        return row

    def _receipts(self, header: BlockHeaderAPI) -> tuple[ReceiptAPI, ...]:
        builder = self._chain.get_vm_class_for_block_number(header.block_number).get_receipt_builder()
        return self._chain.chaindb.get_receipts(header, builder)

    def receipt(self, tx_hash: object) -> dict | None:
        """``eth_getTransactionReceipt``: the receipt of a mined transaction, or None."""
        located = self._located(tx_hash)
        if located is None:
            return None
        header, index, tx = located
        receipts = self._receipts(header)
        receipt = receipts[index]
        gas_before = receipts[index - 1].gas_used if index else 0
        first_log = sum(len(r.logs) for r in receipts[:index])
        return {
            "transactionHash": data(tx.hash),
            "transactionIndex": quantity(index),
            "blockHash": data(header.hash),
            "blockNumber": quantity(header.block_number),
            "from": to_checksum_address(tx.sender),
            "to": to_checksum_address(tx.to) if tx.to else None,
            "contractAddress": None if tx.to else contract_address(to_checksum_address(tx.sender), tx.nonce),
            "cumulativeGasUsed": quantity(receipt.gas_used),
            "gasUsed": quantity(receipt.gas_used - gas_before),
            "effectiveGasPrice": quantity(_effective_gas_price(tx, header.base_fee_per_gas)),
            "logs": [_log_row(log, header, tx.hash, index, first_log + i) for i, log in enumerate(receipt.logs)],
            "logsBloom": data(receipt.bloom.to_bytes(256, "big")),
            "type": quantity(_transaction_type(tx)),
            "status": quantity(int(receipt.state_root == b"\x01")),
        }

    # logs

    def logs(self, query: object) -> list[dict]:
        """``eth_getLogs``: the logs of blocks ``fromBlock``..``toBlock`` (or ``blockHash``) matching ``address``
        (one or a list) and ``topics`` (per position: null, a topic, or a list of topics), at most
        `MAX_LOG_BLOCKS` blocks."""
        if not isinstance(query, dict):
            raise RpcError(INVALID_PARAMS, f"filter = {query!r}: expected an object with fromBlock, toBlock, "
                                           "address, topics or blockHash")
        unknown = set(query) - {"fromBlock", "toBlock", "address", "topics", "blockHash"}
        if unknown:
            raise RpcError(INVALID_PARAMS, f"filter fields {', '.join(sorted(unknown))} unknown; allowed: fromBlock, "
                                           "toBlock, address, topics, blockHash")
        if "blockHash" in query:
            if "fromBlock" in query or "toBlock" in query:
                raise RpcError(INVALID_PARAMS, "filter: give blockHash or fromBlock/toBlock, not both")
            first = last = self._header_by_hash(parse_data(query["blockHash"], "blockHash", 32),
                                                required=True).block_number
        else:
            first = self._named_number(query.get("fromBlock", "latest"))
            last = self._named_number(query.get("toBlock", "latest"))
        if first > last:
            raise RpcError(INVALID_PARAMS, f"filter: fromBlock {first} is after toBlock {last}")
        if last - first + 1 > MAX_LOG_BLOCKS:
            raise RpcError(LIMIT_EXCEEDED, f"eth_getLogs over blocks {first}..{last} spans {last - first + 1} blocks; "
                                           f"at most {MAX_LOG_BLOCKS} per request: split the range")
        self._at_most_head(last)
        addresses = self._addresses(query.get("address"))
        topics = self._topics(query.get("topics") or [])
        matches = _log_matcher(addresses, topics)
        rows = []
        for number in range(first, last + 1):
            header = self._chain.get_canonical_block_header_by_number(number)
            if not _bloom_may_hold(header.bloom, addresses, topics):
                continue
            hashes = self._chain.chaindb.get_block_transaction_hashes(header)
            log_index = 0
            for tx_index, receipt in enumerate(self._receipts(header)):
                for log in receipt.logs:
                    if matches(log):
                        rows.append(_log_row(log, header, hashes[tx_index], tx_index, log_index))
                    log_index += 1
        return rows

    @staticmethod
    def _addresses(value: object) -> set[bytes] | None:
        if value is None:
            return None
        values = value if isinstance(value, list) else [value]
        return {parse_address(v, "filter address") for v in values}

    @staticmethod
    def _topics(value: object) -> list[set[bytes] | None]:
        if not isinstance(value, list) or len(value) > 4:
            raise RpcError(INVALID_PARAMS, f"filter topics = {value!r}: expected a list of up to 4 entries, each null, "
                                           "a topic or a list of topics")
        return [None if t is None else {parse_data(x, "topic", 32) for x in (t if isinstance(t, list) else [t])}
                for t in value]

    # state

    def _state(self, block: object) -> StateAPI:
        return self._chain.get_vm(self.header(block)).state

    def balance(self, address: object, block: object = "latest") -> str:
        """``eth_getBalance``: ether balance after `block`. [wei]"""
        return quantity(self._state(block).get_balance(parse_address(address, "address")))

    def code(self, address: object, block: object = "latest") -> str:
        """``eth_getCode``: the code at `address` after `block`."""
        return data(self._state(block).get_code(parse_address(address, "address")))

    def storage_at(self, address: object, slot: object, block: object = "latest") -> str:
        """``eth_getStorageAt``: the 32-byte word in storage `slot` of `address` after `block`."""
        word = self._state(block).get_storage(parse_address(address, "address"), parse_quantity(slot, "slot"))
        return data(word.to_bytes(32, "big"))

    def transaction_count(self, address: object, block: object = "latest") -> str:
        """``eth_getTransactionCount``: the nonce of `address` after `block`."""
        return quantity(self._state(block).get_nonce(parse_address(address, "address")))

    # execution

    def call(self, call: object, block: object = "latest") -> str:
        """``eth_call``: the output of `call` run on the state after `block`, in a block after it, for free.

        Raises RpcError ``3`` with the revert reason and output if it fails.
        """
        return data(self._run(call, block, lambda state, tx: self._succeeded(state.apply_transaction(tx))))

    def estimate_gas(self, call: object, block: object = "latest") -> str:
        """``eth_estimateGas``: the least gas limit with which `call` succeeds on the state after `block`. [gas]"""
        def search(state: StateAPI, tx: SpoofTransaction) -> int:
            snapshot = state.snapshot()
            self._succeeded(state.apply_transaction(tx))
            state.revert(snapshot)
            return binary_gas_search_exact(state, tx)
        return quantity(self._run(call, block, search))

    @staticmethod
    def _succeeded(computation: ComputationAPI) -> bytes:
        if computation.is_error:
            raise RpcError(EXECUTION_REVERTED, f"execution reverted: {revert_reason(computation)}",
                           data(computation.output))
        return computation.output

    def _run(self, call: object, block: object, run: Callable[[StateAPI, SpoofTransaction], Any]) -> Any:
        """`run`(state, transaction) on a free state after `block`, for the transaction `call` describes."""
        if not isinstance(call, dict):
            raise RpcError(INVALID_PARAMS, f"call = {call!r}: expected an object with to, from, data, value, gas")
        unknown = set(call) - {"from", "to", "data", "input", "value", "gas", "gasPrice", "maxFeePerGas",
                               "maxPriorityFeePerGas", "nonce", "type", "chainId", "accessList"}
        if unknown:
            raise RpcError(INVALID_PARAMS, f"call fields {', '.join(sorted(unknown))} unknown; allowed: from, to, "
                                           "data (or input), value, gas and the fee fields (ignored: calls are free)")
        sender = parse_address(call["from"], "from") if call.get("from") is not None else _ZERO_ADDRESS
        to = parse_address(call["to"], "to") if call.get("to") is not None else b""
        payload = parse_data(call.get("input", call.get("data", "0x")), "data")
        value = parse_quantity(call["value"], "value") if "value" in call else 0
        gas = parse_quantity(call["gas"], "gas") if "gas" in call else CALL_GAS
        vm = self._chain.get_vm(self.header(block))
        with vm.in_costless_state() as state:
            if gas > state.gas_limit:
                raise RpcError(INVALID_PARAMS, f"gas = {gas}: at most the block gas limit, {state.gas_limit}")
            unsigned = vm.create_unsigned_transaction(nonce=state.get_nonce(sender), gas_price=0, gas=gas, to=to,
                                                      value=value, data=payload)
            tx = SpoofTransaction(unsigned, from_=sender)
            try:
                return run(state, tx)
            except ValidationError as error:
                raise RpcError(INVALID_INPUT, f"the call cannot run: {error}") from None


def _log_matcher(addresses: set[bytes] | None, topics: list[set[bytes] | None]) -> Callable[[Any], bool]:
    """Whether a log is from one of `addresses` (any if None) and has, at each position, one of `topics`'s."""
    def matches(log) -> bool:
        if addresses is not None and log.address not in addresses:
            return False
        if len(log.topics) < len(topics):
            return False
        return all(wanted is None or topic.to_bytes(32, "big") in wanted for topic, wanted in zip(log.topics, topics))
    return matches


def _bloom_may_hold(bloom: int, addresses: set[bytes] | None, topics: list[set[bytes] | None]) -> bool:
    """False if a block's logs bloom rules out every log the filter wants (a bloom has no false negatives)."""
    if addresses is None and not any(topics):
        return True
    bloom_filter = BloomFilter(bloom)
    if addresses is not None and not any(address in bloom_filter for address in addresses):
        return False
    return all(wanted is None or any(topic in bloom_filter for topic in wanted) for wanted in topics)
