"""JSON messages the ledger sends to agents and meters over HELICS endpoints.

Transactions travel the other way as raw signed bytes. Three message types:

``deployed``  {"addresses": {contract: address}, "chain_id": int}, sent before time 0
``receipts``  {"receipts": [receipt, ...]} for the transactions a sender sent
``cleared``   {"interval": k, "price_wei_per_wh": p, "positions_wh": {address: q}}
"""

from __future__ import annotations

import json


def encode(kind: str, **body: object) -> bytes:
    """A message as bytes."""
    return json.dumps({"type": kind, **body}, sort_keys=True).encode()


def decode(payload: bytes) -> dict:
    """A message back as a dict with its ``type``."""
    return json.loads(payload)


def deployment(messages: list[tuple[str, bytes]]) -> dict:
    """The ``deployed`` notice among messages received at time 0."""
    for _, payload in messages:
        body = decode(payload)
        if body["type"] == "deployed":
            return body
    raise RuntimeError("no deployment notice from the ledger at time 0")
