"""Taking a signed transaction apart without a chain: who signed it, for which chain, to whom, with what calldata."""

from __future__ import annotations

from dataclasses import dataclass

import rlp
from eth_account import Account
from eth_utils import to_checksum_address


@dataclass(frozen=True)
class SignedTx:
    """The fields of a signed EIP-1559 transaction a test checks."""

    signer: str
    chain_id: int
    nonce: int
    to: str
    data: bytes


def taken_apart(raw: bytes) -> SignedTx:
    """Signer (recovered by eth-account), chain id, nonce, destination and calldata of a type-2 transaction."""
    assert raw[0] == 2, "not an EIP-1559 transaction"
    chain_id, nonce, _, _, _, to, _, data, *_ = rlp.decode(raw[1:])
    return SignedTx(Account.recover_transaction(raw), int.from_bytes(chain_id, "big"), int.from_bytes(nonce, "big"),
                    to_checksum_address(to), data)
