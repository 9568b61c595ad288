"""Serve a household's recent meter data to service personnel during an emergency, only if the ledger allows it.

A household's store (`gridledger.agents.data_store`) answers a service
account only while ``EmergencyAccess.refusal(account, SCOPE_READ_DATA,
household)`` is empty: a declared emergency, a grant that covers reading
this household's data, neither revoked nor expired. Otherwise it raises
`AccessRefused` with the contract's reason and reads nothing. The grant is
asked at the moment of the read; the caller passes the refusal as a
function, e.g. ``functools.partial(emergency.read, chain, address,
"refusal")``, so the decision is testable without a chain.

"Recent" is the last `hours` of the store, 1 to `MAX_RECENT_H` (24 h):
what a technician needs to diagnose a fault is the household's state over
the last day, not its history, and the bound caps what one grant exposes.
The caller holds the address-to-store map (`EmergencyReader`), so the
account names a household, never a file.

What is served comes with a `note` for the grantee's ``use`` entry on
chain (`gridledger.contracts.emergency.use`): what was read, in at most
64 bytes. Logging the use is the grantee's transaction; the store does not
hold its key.

References
----------
Y. N. Aung, T. Tantidham, "Ethereum-based Emergency Service for Smart
Home System: Smart Contract Implementation", 21st International
Conference on Advanced Communication Technology (ICACT), 2019, pp.
147-152 (survey reference [75]).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from gridledger.agents.data_store import COLUMNS, read_columns_kw
from gridledger.contracts.emergency import SCOPE_READ_DATA
from gridledger.units import SECONDS_PER_HOUR

MAX_RECENT_H = 24
"""Longest span of recent data one read serves. [h]"""

Refusal = Callable[[str, int, str], str]
"""``refusal(account, scope, household)``: the reason a use is refused, "" if allowed (``EmergencyAccess.refusal``)."""


class AccessRefused(PermissionError):
    """A read the emergency access refuses; ``reason`` is the contract's exact reason."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Served:
    """Recent data of one household as served to a service account.

    Attributes
    ----------
    household : str
        The household's address.
    columns : tuple of str
        The quantities served, of `COLUMNS`.
    values_kw : ndarray
        The last steps of the store in step order, one column per quantity: (steps, len(columns)). [kW]
    note : str
        What was read, for the grantee's ``use`` entry; at most 64 bytes.
    """

    household: str
    columns: tuple[str, ...]
    values_kw: np.ndarray
    note: str


def recent_steps(hours: int, step_s: int) -> int:
    """Number of power-flow steps in the last `hours` [h] of a store of `step_s` [s] steps (at least one).

    Raises
    ------
    ValueError
        If `hours` is not 1 to `MAX_RECENT_H` or `step_s` is not positive.
    """
    if not 1 <= hours <= MAX_RECENT_H:
        raise ValueError(f"recent data spans 1 to {MAX_RECENT_H} h, not {hours!r}")
    if step_s <= 0:
        raise ValueError(f"step_s must be a positive number of seconds, not {step_s!r}")
    return max(1, hours * SECONDS_PER_HOUR // step_s)


READ_NOTE = "read last {hours} h"
"""The note a grantee logs with ``use`` before a read; the gateway serves the span it names."""


def read_note(hours: int) -> str:
    """The ``use`` note that asks for the last `hours` of a household's data."""
    return READ_NOTE.format(hours=hours)


def hours_asked(note: str) -> int | None:
    """The span a logged ``use`` note asks for (`read_note`), None if the note asks for no read. [h]"""
    prefix, suffix = READ_NOTE.split("{hours}")
    middle = note[len(prefix):len(note) - len(suffix)] if note.startswith(prefix) and note.endswith(suffix) else ""
    return int(middle) if middle.isdigit() else None


def serve_recent(refusal: Refusal, account: str, household: str, store: Path | None, *, hours: int, step_s: int,
                 columns: Sequence[str] = COLUMNS) -> Served:
    """The last `hours` of `household`'s `store` for service `account`, if the emergency access allows it.

    Parameters
    ----------
    refusal : callable
        ``refusal(account, scope, household)`` at the moment of the read.
    account : str
        The service account asking.
    household : str
        The household's address (the grant's subject).
    store : Path or None
        The household's store; None if the caller keeps none for it.
    hours : int
        Span of recent data, 1 to `MAX_RECENT_H`. [h]
    step_s : int
        Power-flow step of the store. [s]
    columns : sequence of str, default COLUMNS
        Quantities to serve, of `COLUMNS`.

    Returns
    -------
    Served
        The data and the note for the ``use`` entry.

    Raises
    ------
    ValueError
        If `hours`, `step_s` or `columns` are out of range (nothing is asked or read), or if the
        access is allowed but `store` is None.
    AccessRefused
        With the emergency access's reason; the store is not opened. Asked before the store is
        looked at, so an account without a grant learns nothing about which households have one.
    """
    steps = recent_steps(hours, step_s)
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"unknown columns {unknown!r}; the store keeps {', '.join(COLUMNS)}")
    reason = refusal(account, SCOPE_READ_DATA, household)
    if reason:
        raise AccessRefused(reason)
    if store is None:
        raise ValueError(f"no store for household {household}")
    values_kw = read_columns_kw(store, *columns)[-steps:]
    note = f"read {hours} h ({len(values_kw)} steps): {','.join(columns)}"
    return Served(household, tuple(columns), values_kw, note)


class EmergencyReader:
    """The data side's gate to the households' stores during an emergency.

    Parameters
    ----------
    stores : mapping of str to Path
        Each household's store by its address (`gridledger.agents.data_store.store_path`).
    refusal : callable
        ``refusal(account, scope, household)``, asked at each read.
    step_s : int
        Power-flow step of the stores. [s]
    """

    def __init__(self, stores: Mapping[str, Path], refusal: Refusal, *, step_s: int):
        self.stores, self.refusal, self.step_s = dict(stores), refusal, step_s

    def serve(self, account: str, household: str, *, hours: int, columns: Sequence[str] = COLUMNS) -> Served:
        """:func:`serve_recent` of `household`'s store for service `account`: the last `hours` [h] of `columns`."""
        return serve_recent(self.refusal, account, household, self.stores.get(household), hours=hours,
                            step_s=self.step_s, columns=columns)
