"""ABI encoding, log decoding and signed transactions, without a node.

Contracts are named as in :data:`gridledger.contracts.compiler.CONTRACT_NAMES`;
their ABIs come from :func:`~gridledger.contracts.compiler.load_artifact`.
"""

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import eth_abi
import rlp
from eth_abi.grammar import ABIType, TupleType, parse
from eth_account.signers.local import LocalAccount
from eth_utils import (
    event_abi_to_log_topic,
    function_abi_to_4byte_selector,
    get_abi_input_types,
    get_abi_output_types,
    keccak,
    to_canonical_address,
    to_checksum_address,
)

from gridledger.contracts.compiler import load_artifact

# Fee caps of every transaction a Wallet signs. The chain's base fee stays
# near 1 wei/gas, so these only bound what a sender must hold for gas.
MAX_FEE_PER_GAS_WEI = 10**9
MAX_PRIORITY_FEE_PER_GAS_WEI = 0


@dataclass(frozen=True)
class _Function:
    selector: bytes
    input_types: tuple[str, ...]
    output_types: tuple[str, ...]


@dataclass(frozen=True)
class _Event:
    name: str
    inputs: tuple[dict, ...]


@dataclass(frozen=True)
class DecodedLog:
    """An event log decoded with its contract's ABI."""

    contract: str
    event: str
    args: dict[str, Any]


@functools.cache
def _functions(contract: str) -> dict[str, _Function]:
    return {
        entry["name"]: _Function(
            function_abi_to_4byte_selector(entry),
            tuple(get_abi_input_types(entry)),
            tuple(get_abi_output_types(entry)),
        )
        for entry in load_artifact(contract)["abi"]
        if entry["type"] == "function"
    }


@functools.cache
def _events(contract: str) -> dict[bytes, _Event]:
    return {
        event_abi_to_log_topic(entry): _Event(entry["name"], tuple(entry["inputs"]))
        for entry in load_artifact(contract)["abi"]
        if entry["type"] == "event"
    }


def _function(contract: str, function: str) -> _Function:
    try:
        return _functions(contract)[function]
    except KeyError:
        raise ValueError(f"{contract} has no function {function!r}") from None


def _checksummed(abi_type: ABIType, value: Any) -> Any:
    """``value`` of ``abi_type`` with every address in checksum form."""
    if abi_type.arrlist:
        return tuple(_checksummed(abi_type.item_type, item) for item in value)
    if isinstance(abi_type, TupleType):
        return tuple(_checksummed(part, item) for part, item in zip(abi_type.components, value, strict=True))
    return to_checksum_address(value) if abi_type.base == "address" else value


_parse = functools.cache(parse)


def _decode(types: Sequence[str], data: bytes) -> tuple:
    return tuple(_checksummed(_parse(t), v) for t, v in zip(types, eth_abi.decode(types, data), strict=True))


def encode_call(contract: str, function: str, *args: Any) -> bytes:
    """Calldata of ``contract.function(*args)``: selector and ABI-encoded arguments."""
    spec = _function(contract, function)
    return spec.selector + eth_abi.encode(spec.input_types, args)


def decode_return(contract: str, function: str, data: bytes) -> Any:
    """Return value of ``contract.function`` from its ABI-encoded output.

    A single output is returned bare, several as a tuple; a struct is a tuple.
    """
    values = _decode(_function(contract, function).output_types, data)
    return values[0] if len(values) == 1 else values


def encode_deploy(artifact: dict, *ctor_args: Any) -> bytes:
    """Creation code of ``artifact`` followed by its ABI-encoded constructor arguments."""
    constructor = [entry for entry in artifact["abi"] if entry["type"] == "constructor"]
    types = get_abi_input_types(constructor[0]) if constructor else []
    return bytes.fromhex(artifact["bytecode"].removeprefix("0x")) + eth_abi.encode(types, ctor_args)


def decode_log(contract: str, topics: Sequence[bytes], data: bytes) -> DecodedLog:
    """Decode one log of ``contract`` from its 32-byte topics and data."""
    try:
        event = _events(contract)[bytes(topics[0])]
    except (KeyError, IndexError):
        raise ValueError(f"log is no event of {contract}") from None
    indexed = [entry for entry in event.inputs if entry["indexed"]]
    plain = [entry for entry in event.inputs if not entry["indexed"]]
    args = {
        entry["name"]: _decode([entry["type"]], bytes(topic))[0]
        for entry, topic in zip(indexed, topics[1:], strict=True)
    }
    args.update(zip((entry["name"] for entry in plain), _decode([entry["type"] for entry in plain], data), strict=True))
    return DecodedLog(contract, event.name, {entry["name"]: args[entry["name"]] for entry in event.inputs})


def contract_address(sender: str, nonce: int) -> str:
    """Address of the contract that ``sender`` creates with transaction ``nonce``."""
    return to_checksum_address(keccak(rlp.encode([to_canonical_address(sender), nonce]))[12:])


class Wallet:
    """A signing account with a local nonce counter.

    Every transaction is an EIP-1559 dynamic-fee transaction with an
    explicit gas limit, so nothing is estimated against a node. The
    counter assumes every signed transaction gets mined; after a
    transaction is rejected as invalid, set :attr:`nonce` again.

    Parameters
    ----------
    account : LocalAccount
        The key that signs.
    chain_id : int
        EIP-155 chain id of the target chain.
    nonce : int
        Nonce of the next transaction.
    """

    def __init__(self, account: LocalAccount, chain_id: int, nonce: int = 0) -> None:
        self.account = account
        self.chain_id = chain_id
        self.nonce = nonce

    @property
    def address(self) -> str:
        """Checksummed address of the account."""
        return self.account.address

    def transact(self, to: str, data: bytes, *, gas: int, value_wei: int = 0) -> bytes:
        """Sign a call of ``to`` with calldata ``data``; returns the raw transaction."""
        return self._sign(to_canonical_address(to), data, gas, value_wei)

    def deploy(self, artifact: dict, *ctor_args: Any, gas: int = 6_000_000) -> tuple[bytes, str]:
        """Sign the creation of ``artifact``; returns (raw transaction, future address)."""
        address = contract_address(self.address, self.nonce)
        return self._sign(b"", encode_deploy(artifact, *ctor_args), gas, 0), address

    def _sign(self, to: bytes, data: bytes, gas: int, value_wei: int) -> bytes:
        signed = self.account.sign_transaction(
            {
                "type": 2,
                "chainId": self.chain_id,
                "nonce": self.nonce,
                "to": to,
                "value": value_wei,
                "data": data,
                "gas": gas,
                "maxFeePerGas": MAX_FEE_PER_GAS_WEI,
                "maxPriorityFeePerGas": MAX_PRIORITY_FEE_PER_GAS_WEI,
            }
        )
        self.nonce += 1
        return bytes(signed.raw_transaction)


def signed_call(wallet: Wallet, address: str, contract: str, function: str, *args: Any, gas: int) -> bytes:
    """Raw transaction of ``wallet`` calling ``contract.function(*args)`` at ``address`` with gas limit ``gas``."""
    return wallet.transact(address, encode_call(contract, function, *args), gas=gas)
