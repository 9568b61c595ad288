"""Deterministic accounts: the same seed and label always give the same key."""

from eth_account import Account
from eth_account.signers.local import LocalAccount
from eth_utils import keccak


def derive_account(seed: int, label: str) -> LocalAccount:
    """Account whose private key is ``keccak256(seed as 32 bytes || label)``.

    Parameters
    ----------
    seed : int
        Study seed, 0 <= seed < 2**256.
    label : str
        Role of the account, e.g. ``"operator"`` or ``"prosumer/7"``.

    Returns
    -------
    LocalAccount
        The signing account; distinct labels give independent keys.
    """
    if not 0 <= seed < 2**256:
        raise ValueError(f"seed must be in [0, 2**256), got {seed}")
    return Account.from_key(keccak(seed.to_bytes(32, "big") + label.encode()))
