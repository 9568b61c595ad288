"""What an observer reads from a run's public chain export, in the world of fixed addresses and of pseudonyms.

An observer holds a finished run's decoded events (``chain/events.jsonl``)
and nothing else. From the Settlement's ``Settled`` events it reads each
address's settled net import per market interval, from the market's
``OrderSubmitted`` events its ordered quantities (`observations`). The
pseudonymous world (`pseudonymise`) is the same events with every
household address (prosumer account or its meter) replaced, in every
address-bearing field (``args``, ``topics``, ``data``), by a fresh
one-time label per (address, market interval): everything else stays
identical, which is what a market of one-time addresses would publish
(`gridledger.contracts.pseudonyms`). The experiment is
`gridledger.agents.linkage_study`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from eth_utils import to_checksum_address

SETTLED = "Settled"
ORDER = "OrderSubmitted"
NO_HOUSEHOLD = -1
"""Household index of a cell or observation that belongs to no known household."""

_HEX = re.compile(r"0x[0-9a-fA-F]*")
_PAD = "0" * 24
"""An address in a 32-byte ABI word (an indexed topic, a data word) is left-padded with 12 zero bytes."""

checksum = lru_cache(maxsize=1 << 16)(to_checksum_address)
"""EIP-55 spelling of an address, cached: an export names the same few addresses many times."""


# ---------------------------------------------------------------- reading the export


def load_events(chain_dir: Path) -> list[dict]:
    """The decoded events of a run's chain export, in the order they were mined.

    Reads ``chain_dir/events.jsonl``; a sharded run (one folder per zone
    ledger, ``chain_dir/<zone>/events.jsonl``) gives the zones' events one
    zone after the other, zones in name order.
    """
    files = [chain_dir / "events.jsonl"]
    if not files[0].exists():
        files = sorted(chain_dir.glob("*/events.jsonl"))
    if not files:
        raise FileNotFoundError(f"{chain_dir}: no events.jsonl (nor <zone>/events.jsonl)")
    return [json.loads(line) for path in files for line in path.read_text().splitlines() if line.strip()]


def household_addresses(events: Iterable[Mapping]) -> frozenset[str]:
    """Every address that belongs to a household: the prosumer accounts (``prosumer`` of the Settlement's
    ``ProsumerRegistered`` and ``Settled`` events) and the meters bound to them (``meter`` of the Registry's
    ``MeterBound`` events), as checksummed addresses."""
    found = set()
    for event in events:
        args = event.get("args", {})
        if event.get("event") in ("ProsumerRegistered", SETTLED) and "prosumer" in args:
            found.add(args["prosumer"])
        elif event.get("event") == "MeterBound" and "meter" in args:
            found.update((args["meter"], args["prosumer"]))
    return frozenset(checksum(a) for a in found)


def registered_classes(events: Iterable[Mapping]) -> dict[str, int]:
    """The class of limits each pseudonym's registration published (``PseudonymRegistered.class_index``), by
    checksummed address: what an observer of a run under ``pseudonyms`` reads besides the energies."""
    return {checksum(e["args"]["pseudonym"]): int(e["args"]["class_index"]) for e in events
            if e.get("event") == "PseudonymRegistered"}


# ---------------------------------------------------------------- the pseudonymous world


@dataclass(frozen=True)
class Pseudonymised:
    """The events as a market of one-time addresses would publish them, and who is behind each label.

    Attributes
    ----------
    events : tuple of dict
        The input events, each household address replaced by its one-time
        label for the event's epoch; every other field identical.
    owner_of : dict of str to str
        Checksummed one-time label -> the household address it replaced
        (the experimenter's ground truth; the observer never sees it).
    epoch_of : dict of str to int or None
        Checksummed one-time label -> the market interval it was used in
        (None: events that name no interval, such as registration).
    """

    events: tuple[dict, ...]
    owner_of: dict[str, str]
    epoch_of: dict[str, int | None]


def pseudonymise(events: Sequence[Mapping], households: Iterable[str], seed: int) -> Pseudonymised:
    """Give every (household address, market interval) a fresh one-time address.

    An event's epoch is its ``args["interval"]``; events without one
    (registration, deposits) share the epoch None. Within an epoch one
    household address always becomes the same label, in ``args`` (at any
    depth, spelled as it was: checksummed or lower case) and in the 32-byte
    words of ``topics`` and ``data`` that hold it left-padded; labels are 20 random bytes drawn in event order
    from ``numpy.random.default_rng(seed)``, never a household address and
    never used in two epochs. Fields other than ``args``, ``topics`` and
    ``data`` (contract, event name, block, log index, transaction hash) are
    kept as they are.

    Parameters
    ----------
    events : sequence of dict
        Decoded events (`load_events`).
    households : iterable of str
        The addresses to replace (`household_addresses`).
    seed : int
        Seed of the labels: the same seed gives the same labels.
    """
    rng = np.random.default_rng(seed)
    owner_by_hex = {a[2:].lower(): checksum(a) for a in households}
    label_of: dict[tuple[str, int | None], str] = {}
    used: set[str] = set()
    owner_of: dict[str, str] = {}
    epoch_of: dict[str, int | None] = {}

    def label(hex40: str, epoch: int | None) -> str:
        """The lower-case one-time label of a household address (40 hex digits, lower case) in an epoch."""
        key = (hex40, epoch)
        if key not in label_of:
            fresh = rng.bytes(20).hex()
            while fresh in owner_by_hex or fresh in used:
                fresh = rng.bytes(20).hex()
            used.add(fresh)
            label_of[key] = fresh
            owner_of[checksum(fresh)] = owner_by_hex[hex40]
            epoch_of[checksum(fresh)] = epoch
        return label_of[key]

    def relabel_hex(text: str, epoch: int | None) -> str:
        """An address as it was spelled (checksummed or lower case), else 32-byte words holding a padded one."""
        body = text[2:]
        if len(body) == 40 and body.lower() in owner_by_hex:
            fresh = label(body.lower(), epoch)
            return "0x" + (fresh if body == body.lower() else checksum(fresh)[2:])
        if body and len(body) % 64 == 0:
            words = [body[i:i + 64] for i in range(0, len(body), 64)]
            return "0x" + "".join(w[:24] + label(w[24:].lower(), epoch)
                                  if w[:24] == _PAD and w[24:].lower() in owner_by_hex else w for w in words)
        return text

    def relabel(value, epoch):
        if isinstance(value, str):
            return relabel_hex(value, epoch) if _HEX.fullmatch(value) else value
        if isinstance(value, dict):
            return {k: relabel(v, epoch) for k, v in value.items()}
        if isinstance(value, list):
            return [relabel(v, epoch) for v in value]
        return value

    out = []
    for event in events:
        epoch = event.get("args", {}).get("interval")
        new = dict(event)
        for key in ("args", "topics", "data"):
            if key in event:
                new[key] = relabel(event[key], epoch)
        out.append(new)
    return Pseudonymised(tuple(out), owner_of, epoch_of)


# ---------------------------------------------------------------- what the observer reads


@dataclass(frozen=True)
class Observations:
    """One row per (address, market interval) settled on chain, sorted by interval, then address.

    Attributes
    ----------
    interval : ndarray of int
        Market interval of the ``Settled`` event.
    address : tuple of str
        The settled address (``Settled.prosumer``), checksummed.
    net_import_wh : ndarray of int
        Settled net import, ``import_wh - export_wh``. [Wh]
    order_import_wh : ndarray of int
        The address's ordered net import for that interval, bids minus
        asks summed over its ``OrderSubmitted`` events; 0 if none. [Wh]
    """

    interval: np.ndarray
    address: tuple[str, ...]
    net_import_wh: np.ndarray
    order_import_wh: np.ndarray

    def __len__(self) -> int:
        return len(self.address)


def observations(events: Iterable[Mapping]) -> Observations:
    """The observer's table: each address's settled net import and ordered net import per interval."""
    settled: dict[tuple[int, str], int] = {}
    ordered: dict[tuple[int, str], int] = {}
    for event in events:
        args = event.get("args", {})
        if event.get("event") == SETTLED:
            key = (int(args["interval"]), checksum(args["prosumer"]))
            settled[key] = settled.get(key, 0) + int(args["import_wh"]) - int(args["export_wh"])
        elif event.get("event") == ORDER:
            key = (int(args["interval"]), checksum(args["account"]))
            sign = -1 if args["is_ask"] else 1
            ordered[key] = ordered.get(key, 0) + sign * int(args["energy_wh"])
    keys = sorted(settled)
    return Observations(interval=np.array([k[0] for k in keys], dtype=np.int64),
                        address=tuple(k[1] for k in keys),
                        net_import_wh=np.array([settled[k] for k in keys], dtype=np.int64),
                        order_import_wh=np.array([ordered.get(k, 0) for k in keys], dtype=np.int64))


def household_index(addresses: Sequence[str], households: Sequence[str],
                    owner_of: Mapping[str, str] | None = None) -> np.ndarray:
    """Ground truth: the household (position in `households`) behind each address, `NO_HOUSEHOLD` if none.

    `owner_of` maps a one-time label to the address it replaced
    (`Pseudonymised.owner_of`); without it each address is its own owner.
    """
    position = {checksum(a): i for i, a in enumerate(households)}
    owner_of = owner_of or {}
    owners = (owner_of.get(a, a) for a in addresses)
    return np.array([position.get(checksum(o), NO_HOUSEHOLD) for o in owners], dtype=np.int64)
