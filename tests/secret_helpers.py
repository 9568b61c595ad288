"""Fixed, test-only run secrets: committed, hence public; they make tests repeatable and protect nothing."""

from __future__ import annotations

from gridledger.contracts.keys import SECRET_BYTES


def fixed_secret(number: int) -> bytes:
    """Test run secret number `number`: its 32 big-endian bytes (the accounts the tests had when keys came from seeds)."""
    return number.to_bytes(SECRET_BYTES, "big")
