"""JSON messages between federates over HELICS endpoints, as `gridledger.federation` declares them.

Signed transactions travel to ``ledger/tx`` as raw bytes; every other
message is one JSON object whose ``type`` names a declared message kind and
whose other keys are exactly its declared fields. `encode` refuses anything
else, so a message cannot drift from its declaration. The kinds, generated
from the declaration:

"""

from __future__ import annotations

import json

from gridledger.federation import MESSAGE_BY_KIND, MESSAGES, Field, message_table

# Generated, so the listing cannot drift from the declaration (python -OO strips docstrings: `or ""`).
__doc__ = (__doc__ or "") + message_table()


class MessageError(ValueError):
    """A message whose kind or fields are not declared."""


def encode(kind: str, **body: object) -> bytes:
    """A declared message as bytes: its fields, plus ``type`` = `kind`, as sorted-key JSON.

    Raises
    ------
    MessageError
        If `kind` is not a declared JSON message, or the fields of `body`
        (or of an object nested in it) are not exactly the declared ones.
    """
    message = MESSAGE_BY_KIND.get(kind)
    if message is None or message.encoding != "json":
        known = ", ".join(m.kind for m in MESSAGES if m.encoding == "json")
        raise MessageError(f"message {kind!r} is not a declared JSON message; declared: {known}")
    _check_fields(kind, "body", message.fields, body)
    return json.dumps({"type": kind, **body}, sort_keys=True).encode()


def _check_fields(kind: str, where: str, fields: tuple[Field, ...], body: dict) -> None:
    """`body` has exactly the `fields`; objects nested in a field with declared fields likewise."""
    declared = {f.name for f in fields}
    if set(body) != declared:
        missing, extra = sorted(declared - set(body)), sorted(set(body) - declared)
        raise MessageError(f"message {kind!r}: {where} has fields {sorted(body)}, declared {sorted(declared)} "
                           f"(missing {missing}, extra {extra})")
    for field in fields:
        value = body[field.name]
        if not field.fields or value is None:
            continue
        items = value if isinstance(value, list) else [value]
        for i, item in enumerate(items):
            path = f"{field.name}[{i}]" if isinstance(value, list) else field.name
            _check_fields(kind, path, field.fields, item)


def is_json(payload: bytes) -> bool:
    """Whether `payload` is a JSON message rather than a signed raw transaction.

    A JSON message starts with ``{`` (0x7b); a raw transaction starts with
    its EIP-2718 type byte (0x00-0x04 in use) or, untyped, with an RLP
    list prefix (0xc0 and above), never 0x7b.
    """
    return payload[:1] == b"{"


def decode(payload: bytes) -> dict:
    """A message back as a dict with its ``type``."""
    return json.loads(payload)


def deployment(messages: list[tuple[str, bytes]]) -> dict:
    """The ``deployed`` notice among messages received at time 0.

    A sharded run's zone ledgers each send one; they deploy the same
    contracts in the same order from the same operator account, so every
    notice names the same addresses and chain id, and one serves every
    prosumer (each chain still holds only its zone's accounts).

    Raises
    ------
    RuntimeError
        If no notice arrived, or two notices differ.
    """
    notices = [body for body in (decode(payload) for _, payload in messages) if body["type"] == "deployed"]
    if not notices:
        raise RuntimeError("no deployment notice from the ledger at time 0")
    if any(notice != notices[0] for notice in notices):
        raise RuntimeError(f"the zone ledgers' deployment notices differ: {notices}")
    return notices[0]
