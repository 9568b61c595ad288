"""Everything secret in a run derives from its 32-byte run secret: account keys, sealed-bid salts, the chain id.

Nothing here takes the study seed: the seed is published with the results,
so anything derived from it alone can be recomputed by anybody. The same
secret gives the same keys, salts and chain id, so a run repeats given
its secret (`gridledger.run_secret` says where a run's secret comes from).

Constructions: an account key is ``keccak256(secret || label)``; a salt
and the chain id are HMAC-SHA256 under the secret with labels of their own,
so no account label can collide with them.
"""

import hashlib
import hmac

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak

SECRET_BYTES = 32
CHAIN_ID_BASE = 2**31
CHAIN_ID_SPAN = 2**30


def _checked(secret: bytes) -> bytes:
    if not isinstance(secret, bytes) or len(secret) != SECRET_BYTES:
        raise ValueError(f"keys: a run secret is {SECRET_BYTES} bytes, got {type(secret).__name__} "
                         f"of length {len(secret) if isinstance(secret, bytes) else '-'}")
    return secret


def _hmac(secret: bytes, label: str) -> bytes:
    return hmac.new(_checked(secret), f"gridledger/{label}".encode(), hashlib.sha256).digest()


def derive_account(secret: bytes, label: str) -> LocalAccount:
    """Account whose private key is ``keccak256(secret || label)``.

    Parameters
    ----------
    secret : bytes
        The run secret, 32 bytes.
    label : str
        Role of the account, e.g. ``"operator"`` or ``"prosumer/7"``.

    Returns
    -------
    LocalAccount
        The signing account; distinct labels give independent keys.
    """
    return Account.from_key(keccak(_checked(secret) + label.encode()))


def derive_salt(secret: bytes, agent: int, interval: int) -> bytes:
    """32-byte salt of agent `agent`'s sealed bid on `interval`'s lots: HMAC-SHA256(secret, label).

    Without the secret it is indistinguishable from random bytes, so the
    commitment cannot be opened before its reveal.
    """
    return _hmac(secret, f"salt/{agent}/{interval}")


def derive_seed(secret: bytes, label: str) -> int:
    """A 64-bit seed for the random generator of `label` (e.g. sensor noise): HMAC-SHA256(secret, label).

    Nobody without the secret can predict the numbers it seeds.
    """
    return int.from_bytes(_hmac(secret, f"seed/{label}")[:8], "big")


def derive_chain_id(secret: bytes) -> int:
    """EIP-155 chain id of the run: ``2**31 + HMAC-SHA256(secret, label) mod 2**30``.

    Runs with different secrets get different chain ids (but for a 2**-30
    chance), so a transaction signed for one run is refused by another.
    """
    return CHAIN_ID_BASE + int.from_bytes(_hmac(secret, "chain-id")[:8], "big") % CHAIN_ID_SPAN


def derive_checkpoint_key(secret: bytes) -> bytes:
    """32-byte key that encrypts and authenticates a run's checkpoints (`gridledger.checkpoint`): HMAC-SHA256(secret,
    label). A checkpoint holds the federates' keys and unrevealed salts, so only the run secret opens it."""
    return _hmac(secret, "checkpoint")
