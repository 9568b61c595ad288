"""Fixed, test-only run secrets: committed, hence public; they make tests repeatable and protect nothing."""

from __future__ import annotations

from gridledger.contracts.keys import SECRET_BYTES


def fixed_secret(number: int) -> bytes:
    """Test run secret number `number`: its 32 big-endian bytes (the tests' accounts from before the run secret)."""
    return number.to_bytes(SECRET_BYTES, "big")
