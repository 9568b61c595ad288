"""An embedded py-evm chain that mines signed transactions into blocks.

The chain runs the Prague VM (Vyper 0.4.3's default EVM target) with
no-proof consensus, a funded genesis and a fixed block gas limit. The
caller chooses every block's timestamp, so the same transactions mined
at the same times give the same block hashes.

Block gas follows Ethereum's rule (py-evm's
``validate_frontier_transaction_against_header``): a transaction may run
if its gas limit fits the block's gas limit minus the gas *used* so far,
and the block is then charged what it used, not its limit. The block
builder may add its own rule on top (`BlockSpace`): the ledger caps each
transaction's gas and keeps lanes (`gridledger.agents.blocks`).

The chain's key-value database lives in memory until `Chain.keep` puts it
in a directory on disk (`gridledger.contracts.disk_store`); from then on each block's new keys go to
disk in one batch as soon as the block is mined and leave memory, so a
killed process leaves every block it mined on disk and a long run's
memory stays flat (reads of older keys go to disk). The bytes stored do
not change what is mined: the same transactions at the same times give the
same block hashes kept or not.
`kept_chain` opens such a directory read-only after the run.
"""

import functools
import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Protocol

import eth_abi
from eth.abc import BlockHeaderAPI, ChainAPI, ComputationAPI, ReceiptAPI, SignedTransactionAPI, StateAPI
from eth.chains.base import MiningChain
from eth.consensus.noproof import NoProofConsensus
from eth.db.atomic import AtomicDB
from eth.db.backends.base import BaseDB
from eth.db.schema import SchemaV1
from eth.exceptions import Revert, UnrecognizedTransactionType
from eth.vm.forks.prague import PragueVM
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError, keccak, to_canonical_address, to_checksum_address
from rlp.exceptions import RLPException

from gridledger.contracts.client import DecodedLog, Wallet, contract_address, decode_log
from gridledger.contracts.disk_store import DiskStore, StoreLocked

# Chain id of a chain built outside a run (contract tests, benchmarks); a run
# derives its own from the run secret (`gridledger.contracts.keys.derive_chain_id`).
CHAIN_ID = 1337
BLOCK_GAS_LIMIT = 1_000_000_000
GENESIS_BALANCE_WEI = 10**24
# Base fee of the genesis block; with blocks far below their gas target it
# stays at 1 wei/gas for good.
GENESIS_BASE_FEE_PER_GAS_WEI = 1
CALL_GAS = 100_000_000

_ERROR_SELECTOR = keccak(text="Error(string)")[:4]
_PANIC_SELECTOR = keccak(text="Panic(uint256)")[:4]

_MiningChain = MiningChain.configure(
    __name__="GridLedgerChain",
    vm_configuration=((0, PragueVM.configure(consensus_class=NoProofConsensus)),),
)

CHAIN_ID_KEY = b"gridledger:chain_id"
"""Key of the chain id (decimal digits) in a kept database, beside py-evm's own keys (hashes, ``v1:...``)."""


class KeptChainError(Exception):
    """A kept chain database that cannot be opened; the message says which and why."""


class _MemoryOverDisk(BaseDB):
    """py-evm's key-value store: in memory until the chain is kept, then the keys set or deleted since the last
    `flush` in memory (a deletion as None) over the `DiskStore` that holds the rest.

    So a kept chain's memory holds one block's writes, not the whole history:
    a year of blocks stays on disk (issue 16: memory flat over a long run).
    """

    def __init__(self) -> None:
        self.recent: dict[bytes, bytes | None] = {}
        self.disk: DiskStore | None = None

    def __getitem__(self, key: bytes) -> bytes:
        value = self.recent[key] if key in self.recent else (self.disk.get(key) if self.disk is not None else None)
        if value is None:
            raise KeyError(key)
        return value

    def _exists(self, key: bytes) -> bool:
        try:
            self[key]
        except KeyError:
            return False
        return True

    def __setitem__(self, key: bytes, value: bytes) -> None:
        self.recent[key] = value

    def __delitem__(self, key: bytes) -> None:
        if not self._exists(key):
            raise KeyError(key)
        if self.disk is None:
            del self.recent[key]
        else:
            self.recent[key] = None

    def flush(self) -> None:
        """Write what was set or deleted since the last flush to the disk in one transaction, then forget it here
        (the disk first, so a reader in another thread finds every key in one place or the other)."""
        self.disk.write(self.recent)
        self.recent = {}


class _ReadOnlyStore(BaseDB):
    """A kept chain's `DiskStore`, opened read-only, as a py-evm key-value store that refuses every write."""

    def __init__(self, store: DiskStore) -> None:
        self._store: DiskStore | None = store

    def close(self) -> None:
        """Close the store and let it go: py-evm's caches keep this object alive until the interpreter exits."""
        self._store.close()
        self._store = None

    def __getitem__(self, key: bytes) -> bytes:
        value = self._store.get(key)
        if value is None:
            raise KeyError(key)
        return value

    def _exists(self, key: bytes) -> bool:
        return self._store.get(key) is not None

    def __setitem__(self, key: bytes, value: bytes) -> None:
        raise PermissionError("a kept chain is read-only")

    def __delitem__(self, key: bytes) -> None:
        raise PermissionError("a kept chain is read-only")


def evm_chain(db: AtomicDB, chain_id: int) -> ChainAPI:
    """A py-evm chain of this module's VM and consensus over `db`, for reads at blocks `db` already holds."""
    return _MiningChain.configure(chain_id=chain_id)(db)


@contextmanager
def kept_chain(path: str | Path) -> Iterator[ChainAPI]:
    """The chain `Chain.keep` kept in the directory `path`, read-only, open until the block exits.

    Its canonical head is the last block mined; writes raise
    PermissionError. A chain being mined cannot be opened (`DiskStore`).

    Raises
    ------
    KeptChainError
        If `path` holds no kept chain, or a ledger still has it open.
    """
    path = Path(path)
    try:
        store = _ReadOnlyStore(DiskStore(path, read_only=True))
    except FileNotFoundError as error:
        raise KeptChainError(str(error)) from None
    except StoreLocked as error:
        raise KeptChainError(f"{path}: cannot open the kept chain, another process has it open (a ledger still "
                             f"running): {error}") from None
    try:
        try:
            chain_id = int(store[CHAIN_ID_KEY])
        except KeyError:
            raise KeptChainError(f"{path}: a database without a chain id, not a chain gridledger kept") from None
        yield evm_chain(AtomicDB(store), chain_id)
    finally:
        store.close()


class BlockSpace(Protocol):
    """A block builder's own rule on which transactions may use a block's gas, asked before each one runs."""

    def refusal(self, index: int, sender: str, gas_limit: int) -> str | None:
        """Why the transaction at `index` of the block's input may not run, or None if it may.

        Parameters
        ----------
        index : int
            Position of the transaction in the input of `Chain.mine`.
        sender : str
            Its checksummed sender.
        gas_limit : int
            Its gas limit. [gas]
        """

    def charge(self, index: int, sender: str, gas_used: int) -> None:
        """Account the gas the transaction at `index` used once it ran. [gas]"""


class CallReverted(Exception):
    """A read-only call reverted; ``reason`` is the decoded revert reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Log:
    """One event log: emitting address, 32-byte topics and data."""

    address: str
    topics: tuple[bytes, ...]
    data: bytes


@dataclass(frozen=True)
class Receipt:
    """Outcome of one submitted transaction.

    ``status`` is 1 for success, 0 for a revert or a rejected transaction.
    A rejected transaction has ``block_number`` None and a ``revert_reason``
    starting with ``"invalid transaction:"`` when the chain refused it, or
    the block-space rule's own reason (``"ledger: ..."``) when that refused
    it; ``sender`` and ``nonce`` are None when the bytes could not be
    decoded.
    """

    tx_hash: bytes
    sender: str | None
    nonce: int | None
    status: int
    gas_used: int
    revert_reason: str | None
    logs: tuple[Log, ...]
    block_number: int | None
    contract_address: str | None

    @property
    def ok(self) -> bool:
        """True if the transaction was mined and succeeded."""
        return self.status == 1


def revert_reason(computation: ComputationAPI) -> str:
    """Readable reason of a failed computation.

    ``Error(string)`` payloads give their string, ``Panic(uint256)`` gives
    ``"panic: 0x.."``; other failures name the EVM error.
    """
    if not isinstance(computation.error, Revert):
        return f"{type(computation.error).__name__}: {computation.error}"
    output = computation.output
    if output[:4] == _ERROR_SELECTOR:
        return eth_abi.decode(["string"], output[4:])[0]
    if output[:4] == _PANIC_SELECTOR:
        return f"panic: {eth_abi.decode(['uint256'], output[4:])[0]:#x}"
    if not output:
        return "reverted without reason"
    return f"reverted with data 0x{output.hex()}"


def _rejected(raw: bytes, reason: str, tx: SignedTransactionAPI | None = None, sender: str | None = None) -> Receipt:
    """Receipt of a transaction left out of the block, its reason given in full."""
    return Receipt(
        tx_hash=tx.hash if tx is not None else keccak(raw),
        sender=sender,
        nonce=tx.nonce if tx is not None else None,
        status=0,
        gas_used=0,
        revert_reason=reason,
        logs=(),
        block_number=None,
        contract_address=None,
    )


@functools.lru_cache(maxsize=1024)
def _checksum(address: bytes) -> str:
    """Checksummed form of a canonical address; the same few accounts recur in every block."""
    return to_checksum_address(address)


def _hex(value: bytes) -> str:
    return "0x" + value.hex()


def _jsonable(value):
    if isinstance(value, bytes):
        return _hex(value)
    if isinstance(value, (list, tuple)):
        return [_jsonable(item) for item in value]
    if isinstance(value, dict):
        return {key: _jsonable(item) for key, item in value.items()}
    return value


class Chain:
    """Embedded chain with caller-chosen block timestamps.

    Parameters
    ----------
    funded : iterable of str
        Addresses that hold ``balance_wei`` at genesis.
    genesis_timestamp : int
        Timestamp of block 0. [s since the Unix epoch]
    balance_wei : int
        Genesis balance of every funded address. [wei]
    block_gas_limit : int
        Gas limit of every block. [gas]
    chain_id : int
        EIP-155 chain id; transactions signed for another id are rejected.
    """

    def __init__(
        self,
        funded: Iterable[str],
        *,
        genesis_timestamp: int,
        balance_wei: int = GENESIS_BALANCE_WEI,
        block_gas_limit: int = BLOCK_GAS_LIMIT,
        chain_id: int = CHAIN_ID,
    ) -> None:
        self.block_gas_limit = block_gas_limit
        self.chain_id = chain_id
        genesis = {
            "difficulty": 0,
            "gas_limit": block_gas_limit,
            "timestamp": genesis_timestamp,
            "base_fee_per_gas": GENESIS_BASE_FEE_PER_GAS_WEI,
            "nonce": b"\x00" * 8,
        }
        state = {
            to_canonical_address(address): {"balance": balance_wei, "nonce": 0, "code": b"", "storage": {}}
            for address in funded
        }
        self._memory = _MemoryOverDisk()
        self._db = AtomicDB(self._memory)
        self._chain = _MiningChain.configure(chain_id=chain_id).from_genesis(self._db, genesis, state)
        self._labels: dict[str, str] = {}
        self._receipts: list[Receipt] = []
        self._receipts_forgotten = 0
        self._created: dict[str, Receipt] = {}
        self._kept_path: Path | None = None

    def __getstate__(self) -> dict:
        """A kept chain's position for a checkpoint (`gridledger.checkpoint`): its directory and head block, with
        what this object holds besides the database (labels, receipts not yet exported, deployments)."""
        if self._kept_path is None:
            raise TypeError("only a kept chain (Chain.keep) can be checkpointed: its blocks are on disk")
        return {"path": str(self._kept_path), "head": self._chain.get_canonical_head().hash,
                "chain_id": self.chain_id, "block_gas_limit": self.block_gas_limit, "labels": self._labels,
                "receipts": self._receipts, "receipts_forgotten": self._receipts_forgotten, "created": self._created}

    def __setstate__(self, state: dict) -> None:
        """Reopen the kept chain at the checkpoint's head block: blocks mined after it (by the run that was
        stopped) stay in the database, off the canonical chain until mined again."""
        self.chain_id, self.block_gas_limit = state["chain_id"], state["block_gas_limit"]
        self._labels, self._receipts, self._created = state["labels"], state["receipts"], state["created"]
        self._receipts_forgotten = state["receipts_forgotten"]
        self._kept_path = Path(state["path"])
        self._memory = _MemoryOverDisk()
        try:
            self._memory.disk = DiskStore(self._kept_path)
        except (FileNotFoundError, StoreLocked, sqlite3.Error) as error:
            raise KeptChainError(f"{self._kept_path}: cannot reopen the kept chain: {error}") from None
        self._db = AtomicDB(self._memory)
        self._db[SchemaV1.make_canonical_head_hash_lookup_key()] = state["head"]
        self._memory.flush()
        self._chain = _MiningChain.configure(chain_id=self.chain_id)(self._db)

    @property
    def block_number(self) -> int:
        """Number of the head block."""
        return self._chain.get_canonical_head().block_number

    @property
    def timestamp(self) -> int:
        """Timestamp of the head block. [s since the Unix epoch]"""
        return self._chain.get_canonical_head().timestamp

    def block_hash(self, number: int) -> bytes:
        """Hash of canonical block ``number``."""
        return self._chain.get_canonical_block_hash(number)

    def nonce(self, address: str) -> int:
        """Nonce of ``address`` at the head."""
        return self._head_state().get_nonce(to_canonical_address(address))

    def balance(self, address: str) -> int:
        """Ether balance of ``address`` at the head. [wei]"""
        return self._head_state().get_balance(to_canonical_address(address))

    def wallet(self, account: LocalAccount) -> Wallet:
        """Wallet for ``account`` on this chain, its nonce taken from the head."""
        return Wallet(account, self.chain_id, self.nonce(account.address))

    def label(self, address: str, contract: str) -> None:
        """Declare that ``address`` runs ``contract`` so its logs get decoded."""
        self._labels[to_checksum_address(address)] = contract

    def decode(self, log: Log) -> DecodedLog | None:
        """Decoded form of ``log``, or None if its address has no label."""
        contract = self._labels.get(log.address)
        return None if contract is None else decode_log(contract, log.topics, log.data)

    def deployments(self) -> list[tuple[str, str, Receipt]]:
        """(contract, address, receipt of the transaction that created it) of every labelled contract a transaction
        created, in the order they were labelled."""
        return [(contract, address, self._created[address]) for address, contract in self._labels.items()
                if address in self._created]

    def mine(self, raw_txs: Sequence[bytes], timestamp: int, space: BlockSpace | None = None) -> list[Receipt]:
        """Mine one block at ``timestamp`` holding every valid transaction.

        Transactions run in input order. One that cannot be included
        (undecodable, bad signature, refused by ``space``, wrong chain id
        or nonce, gas limit above the block's remaining gas, funds short)
        gets a rejected receipt, keeps its nonce unused, and the rest of
        the block goes on. Each transaction is checked with py-evm's own
        validation against the block's state as the transactions before
        it left it, right before it runs; the block is charged the gas
        each one used.

        Parameters
        ----------
        raw_txs : sequence of bytes
            Signed raw transactions.
        timestamp : int
            Block timestamp, above the head's. [s since the Unix epoch]
        space : BlockSpace, optional
            The builder's own rule, asked before the chain's checks; its
            reason becomes the receipt's ``revert_reason`` as it is.

        Returns
        -------
        list of Receipt
            One per input transaction, in input order.
        """
        if timestamp <= self.timestamp:
            raise ValueError(f"block timestamp {timestamp} must exceed the head's {self.timestamp}")
        header = self._chain.header.copy(timestamp=timestamp, gas_limit=self.block_gas_limit)
        vm = self._chain.get_vm(header)
        builder = vm.get_transaction_builder()
        included, evm_receipts, receipts = [], [], []
        for index, raw in enumerate(raw_txs):
            try:
                tx = builder.decode(raw)
                tx.validate()
                sender = _checksum(tx.sender)
            except (RLPException, ValidationError, BadSignature, UnrecognizedTransactionType, ValueError) as error:
                receipts.append(_rejected(raw, f"invalid transaction: undecodable or badly signed ({error})"))
                continue
            reason = space.refusal(index, sender, tx.gas) if space is not None else None
            if reason is None:
                reason = self._rejection(vm.state, tx, header.gas_limit - header.gas_used)
            if reason is not None:
                receipts.append(_rejected(raw, reason, tx, sender))
                continue
            evm_receipt, computation = vm.apply_transaction(header, tx)
            receipt = self._receipt(tx, sender, evm_receipt, computation, header)
            receipts.append(receipt)
            if space is not None:
                space.charge(index, sender, receipt.gas_used)
            header = vm.increment_blob_gas_used(vm.add_receipt_to_header(header, evm_receipt), tx)
            included.append(tx)
            evm_receipts.append(evm_receipt)
        block = vm.set_block_transactions_and_withdrawals(vm.get_block(), header, included, evm_receipts)
        mined = vm.mine_block(block).block
        self._chain.persist_block(mined)
        self._chain.header = self._chain.create_header_from_parent(mined.header)
        self._receipts.extend(receipts)
        self._created.update((r.contract_address, r) for r in receipts if r.contract_address is not None)
        if self._kept_path is not None:
            self._memory.flush()
        return receipts

    def receipts_from(self, index: int) -> list[Receipt]:
        """The receipts `mine` returned, from the `index`-th of the chain's history (0 first) on.

        Raises
        ------
        ValueError
            If some of them were forgotten (`forget_receipts`).
        """
        if index < self._receipts_forgotten:
            raise ValueError(f"receipts before {self._receipts_forgotten} were forgotten once exported; "
                             f"receipt {index} is not kept")
        return self._receipts[index - self._receipts_forgotten:]

    def forget_receipts(self, before: int) -> None:
        """Let the receipts before the `before`-th go (exported already), so a long run's memory stays flat."""
        drop = before - self._receipts_forgotten
        if drop > 0:
            del self._receipts[:drop]
            self._receipts_forgotten = before

    def keep(self, path: str | Path) -> None:
        """Keep the chain's database in the directory `path` (`DiskStore`): all of it now, then each block's keys in
        one write as `mine` returns it, after which memory holds none of them (`_MemoryOverDisk`).

        A database already at `path` is replaced. A process killed without
        `close` still leaves every block it mined: each write is in the
        operating system's hands when `mine` returns. Open the directory
        with `kept_chain`.
        """
        if self._kept_path is not None:
            raise RuntimeError("the chain is kept already; close it first")
        self._kept_path = Path(path).resolve()
        self._memory.disk = DiskStore(self._kept_path, create=True)
        self._memory[CHAIN_ID_KEY] = str(self.chain_id).encode()
        self._memory.flush()

    def close(self) -> None:
        """Close the kept database, if any. A kept chain's history is on disk only, so it is not read afterwards."""
        if self._memory.disk is not None:
            self._memory.disk.close()
            self._memory.disk = None
        self._kept_path = None

    def view(self) -> ChainAPI:
        """A second py-evm chain over this chain's database, for reads (from another thread too) at blocks already
        mined; it never writes."""
        return evm_chain(self._db, self.chain_id)

    @staticmethod
    def _receipt(
        tx: SignedTransactionAPI,
        sender: str,
        evm_receipt: ReceiptAPI,
        computation: ComputationAPI,
        previous_header: BlockHeaderAPI,
    ) -> Receipt:
        """Receipt of ``tx``, applied on top of ``previous_header``'s block so far."""
        created = None
        if computation.is_success and not tx.to:
            created = contract_address(sender, tx.nonce)
        return Receipt(
            tx_hash=tx.hash,
            sender=sender,
            nonce=tx.nonce,
            status=int(computation.is_success),
            gas_used=evm_receipt.gas_used - previous_header.gas_used,
            revert_reason=None if computation.is_success else revert_reason(computation),
            logs=tuple(
                Log(_checksum(log.address), tuple(t.to_bytes(32, "big") for t in log.topics), log.data)
                for log in evm_receipt.logs
            ),
            block_number=previous_header.block_number,
            contract_address=created,
        )

    def _rejection(self, state: StateAPI, tx: SignedTransactionAPI, gas_left: int) -> str | None:
        """Why ``tx`` cannot run next on ``state``, with ``gas_left`` of the block unused, or None if it can."""
        chain_id = getattr(tx, "chain_id", None)
        if chain_id != self.chain_id:
            return f"invalid transaction: chain id {chain_id}, expected {self.chain_id}"
        if tx.gas < tx.intrinsic_gas:
            return f"invalid transaction: gas {tx.gas} below intrinsic gas {tx.intrinsic_gas}"
        if tx.gas > gas_left:
            return f"invalid transaction: gas {tx.gas} exceeds the block's remaining {gas_left}"
        try:
            state.validate_transaction(tx)
        except ValidationError as error:
            return f"invalid transaction: {error}"
        return None

    def call(self, to: str, data: bytes, sender: str | None = None) -> bytes:
        """Run a read-only call against the head state and return its output.

        Raises
        ------
        CallReverted
            If the call fails; carries the decoded reason.
        ValueError
            If ``to`` holds no code.
        """
        vm = self._chain.get_vm(self._chain.get_canonical_head())
        state = vm.state
        code = state.get_code(to_canonical_address(to))
        if not code:
            raise ValueError(f"no contract at {to}")
        caller = to_canonical_address(sender) if sender is not None else b"\x00" * 20
        computation = vm.execute_bytecode(
            origin=caller,
            gas_price=0,
            gas=CALL_GAS,
            to=to_canonical_address(to),
            sender=caller,
            value=0,
            data=data,
            code=code,
        )
        if computation.is_error:
            raise CallReverted(revert_reason(computation))
        return computation.output

    def _head_state(self) -> StateAPI:
        return self._chain.get_vm(self._chain.get_canonical_head()).state

    def export(self, dirpath: str | Path) -> None:
        """Write ``blocks.jsonl``, ``receipts.jsonl`` and ``events.jsonl`` to ``dirpath``.

        ``blocks.jsonl`` has one line per canonical block from genesis;
        ``receipts.jsonl`` one line per receipt :meth:`mine` returned,
        rejected transactions included (``block_number`` null);
        ``events.jsonl`` one line per log, with contract, event and
        arguments where the address has a :meth:`label`. Bytes are 0x-hex.
        The files depend only on the chain's history, so equal histories
        give byte-identical files; they are what `ChainExport` writes
        block by block.
        """
        ChainExport(self, dirpath).close()

    def _block_row(self, number: int) -> dict:
        block = self._chain.get_canonical_block_by_number(number)
        header = block.header
        return {
            "number": number,
            "hash": header.hash,
            "parent_hash": header.parent_hash,
            "timestamp": header.timestamp,
            "gas_limit": header.gas_limit,
            "gas_used": header.gas_used,
            "base_fee_per_gas_wei": header.base_fee_per_gas,
            "state_root": header.state_root,
            "transactions_root": header.transaction_root,
            "receipts_root": header.receipt_root,
            "transactions": [tx.hash for tx in block.transactions],
        }

    @staticmethod
    def _receipt_row(receipt: Receipt) -> dict:
        row = asdict(receipt)
        row["logs"] = [asdict(log) for log in receipt.logs]
        return row

    def _event_row(self, receipt: Receipt, log: Log, log_index: int) -> dict:
        row = {
            "block_number": receipt.block_number,
            "tx_hash": receipt.tx_hash,
            "log_index": log_index,
            "address": log.address,
            "contract": None,
            "event": None,
            "args": None,
            "topics": list(log.topics),
            "data": log.data,
        }
        decoded = self.decode(log)
        if decoded is not None:
            row.update(contract=decoded.contract, event=decoded.event, args=decoded.args)
        return row


class ChainExport:
    """The chain's history in ``blocks.jsonl``, ``receipts.jsonl`` and ``events.jsonl``, appended as blocks are mined.

    Opening it writes the history so far; each `append` adds the blocks
    mined since and their receipts and events, each file in one
    unbuffered write, so a process killed between two blocks leaves every
    block it mined on disk. A block's receipts and events are written
    before the block itself: every block in ``blocks.jsonl`` has its rows
    in the other two files, and rows past its last block (a writer killed
    within `append`) belong to a block that was not recorded.
    Rows are never rewritten: open it once every contract whose events
    should be decoded has its :meth:`Chain.label`. Appending block by
    block gives the same bytes as `Chain.export` at the end.

    Parameters
    ----------
    chain : Chain
        The chain to export.
    dirpath : str or Path
        Directory of the three files; created if missing, files replaced.
    forget : bool, default False
        Let the chain forget each receipt once written (`Chain.forget_receipts`):
        what a long run's ledger does, after which the chain's whole history
        can no longer be exported from memory.
    """

    def __init__(self, chain: Chain, dirpath: str | Path, forget: bool = False) -> None:
        directory = Path(dirpath)
        directory.mkdir(parents=True, exist_ok=True)
        self._chain = chain
        self._forget = forget
        self._paths = {name: directory / f"{name}.jsonl" for name in ("receipts", "events", "blocks")}
        self._streams = {name: path.open("wb", buffering=0) for name, path in self._paths.items()}
        self._blocks_written = 0
        self._receipts_written = 0
        self._log_index = 0
        self._log_block: int | None = None
        self.append()

    def __getstate__(self) -> dict:
        """The export's position for a checkpoint: its files' lengths and counters (and the chain)."""
        state = {key: value for key, value in vars(self).items() if key != "_streams"}
        return {**state, "lengths": {name: stream.tell() for name, stream in self._streams.items()}}

    def __setstate__(self, state: dict) -> None:
        """Reopen the files where the checkpoint left them, cutting what was written after it."""
        lengths = state.pop("lengths")
        vars(self).update(state)
        self._streams = {}
        for name, path in self._paths.items():
            stream = path.open("r+b", buffering=0)
            stream.truncate(lengths[name])
            stream.seek(lengths[name])
            self._streams[name] = stream

    def append(self) -> None:
        """Write the blocks mined since the last call with their receipts and events, each file in one write."""
        receipts = self._chain.receipts_from(self._receipts_written)
        self._write("receipts", (self._chain._receipt_row(r) for r in receipts))
        self._write("events", self._events(receipts))
        head = self._chain.block_number
        self._write("blocks", (self._chain._block_row(n) for n in range(self._blocks_written, head + 1)))
        self._receipts_written += len(receipts)
        self._blocks_written = head + 1
        if self._forget:
            self._chain.forget_receipts(self._receipts_written)

    def close(self) -> None:
        """Append what was mined since the last `append` and close the files."""
        try:
            self.append()
        finally:
            for stream in self._streams.values():
                stream.close()

    def __enter__(self) -> "ChainExport":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _write(self, name: str, rows: Iterable[dict]) -> None:
        """All of `rows` as lines of one unbuffered write, so a killed writer leaves whole lines."""
        data = memoryview("".join(json.dumps(_jsonable(row), sort_keys=True, separators=(",", ":")) + "\n"
                                  for row in rows).encode())
        while data:
            data = data[self._streams[name].write(data):]

    def _events(self, receipts: Sequence[Receipt]):
        for receipt in receipts:
            if receipt.block_number != self._log_block:
                self._log_index, self._log_block = 0, receipt.block_number
            for log in receipt.logs:
                yield self._chain._event_row(receipt, log, self._log_index)
                self._log_index += 1
