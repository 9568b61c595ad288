"""Where a run's secret comes from, and how it reaches the federates without touching the run directory.

A run secret is 32 bytes; every key, sealed-bid salt and the chain id of
the run derive from it (`gridledger.contracts.keys`). The launcher takes it
from ``--secret-file PATH`` (64 hex digits), else from the environment
variable ``GRIDLEDGER_RUN_SECRET`` (64 hex digits), else draws a fresh one
with `secrets.token_bytes`, and hands it to its federate processes in
their environment only. It is never written to the run directory: a run is
reproducible given its secret, so keep the secret file to repeat a run.

A federate reads ``GRIDLEDGER_RUN_SECRET``, else the file named by
``GRIDLEDGER_RUN_SECRET_FILE`` (what a helics-cli runner JSON may carry: a
path, never the secret).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from gridledger.contracts.keys import SECRET_BYTES
from gridledger.study import StudyError

RUN_SECRET_ENV = "GRIDLEDGER_RUN_SECRET"
RUN_SECRET_FILE_ENV = "GRIDLEDGER_RUN_SECRET_FILE"


class SecretError(StudyError):
    """A run secret that is missing or malformed; the message names where it came from, never its value."""


def parse_secret(text: str, source: str) -> bytes:
    """The 32 bytes written as 64 hex digits in `text` (white space around them allowed); `source` names it."""
    digits = text.strip()
    if len(digits) != 2 * SECRET_BYTES:
        raise SecretError(f"{source}: a run secret is {2 * SECRET_BYTES} hex digits, got {len(digits)} characters")
    try:
        return bytes.fromhex(digits)
    except ValueError:
        raise SecretError(f"{source}: a run secret is {2 * SECRET_BYTES} hex digits (0-9, a-f)") from None


def read_secret_file(path: str | Path) -> bytes:
    """The run secret kept in the file at `path`."""
    try:
        text = Path(path).read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise SecretError(f"{path}: cannot read the run secret file: {exc.__class__.__name__}") from None
    return parse_secret(text, str(path))


def choose_secret(secret_file: str | Path | None = None) -> bytes:
    """The launcher's secret: `secret_file`, else ``GRIDLEDGER_RUN_SECRET``, else a fresh random one."""
    if secret_file is not None:
        return read_secret_file(secret_file)
    if RUN_SECRET_ENV in os.environ:
        return parse_secret(os.environ[RUN_SECRET_ENV], f"environment variable {RUN_SECRET_ENV}")
    return secrets.token_bytes(SECRET_BYTES)


def secret_env(secret: bytes) -> dict[str, str]:
    """The environment entries that give a federate process `secret`."""
    return {RUN_SECRET_ENV: secret.hex()}


def federate_secret() -> bytes:
    """A federate's run secret, from its environment; `SecretError` says how to provide one."""
    if RUN_SECRET_ENV in os.environ:
        return parse_secret(os.environ[RUN_SECRET_ENV], f"environment variable {RUN_SECRET_ENV}")
    if RUN_SECRET_FILE_ENV in os.environ:
        return read_secret_file(os.environ[RUN_SECRET_FILE_ENV])
    raise SecretError(f"no run secret: set {RUN_SECRET_ENV} (64 hex digits) or {RUN_SECRET_FILE_ENV} "
                      "(a file holding them), or start the run with `gridledger run`")
