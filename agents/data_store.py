"""Each household's own store of its high-resolution meter data, off chain (after Wang et al.'s SPDS).

One SQLite file per prosumer (Python's own ``sqlite3``), ``data/<name>.sqlite``
under the run directory, one row per power-flow step: load, PV, battery
and EV power [kW]. Nothing of it goes on chain; a compute worker reads the
stores of the owners who approved a query, and commits to what it read
with each store's `digest`.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path

import numpy as np
from eth_utils import keccak

DATA_DIR = "data"
COLUMNS = ("load_kw", "pv_kw", "battery_kw", "ev_kw")
"""Per-step quantities a store keeps. [kW] (battery: + = charging)"""


def store_path(run_dir: Path, name: str) -> Path:
    """Where prosumer `name` keeps its data in a run directory."""
    return Path(run_dir) / DATA_DIR / f"{name}.sqlite"


def write_store(path: Path, time_s: np.ndarray, values_kw: dict[str, np.ndarray]) -> None:
    """Write one household's steps (`time_s` [s] and each of `COLUMNS` [kW]) to `path`, replacing what was there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.unlink(missing_ok=True)
    rows = zip(range(len(time_s)), map(float, time_s), *(map(float, values_kw[c]) for c in COLUMNS))
    with closing(sqlite3.connect(path)) as db, db:                    # closed, and committed in one transaction
        db.execute(f"CREATE TABLE steps (step INTEGER PRIMARY KEY, time_s REAL, {', '.join(f'{c} REAL' for c in COLUMNS)})")
        db.executemany(f"INSERT INTO steps VALUES ({', '.join('?' * (2 + len(COLUMNS)))})", rows)


def read_columns_kw(path: Path, *columns: str) -> np.ndarray:
    """The named quantities of every step in one read, a column each, in step order: (steps, len(columns)). [kW]"""
    unknown = [c for c in columns if c not in COLUMNS]
    if unknown or not columns:
        raise ValueError(f"unknown columns {unknown!r}; the store keeps {', '.join(COLUMNS)}")
    with closing(_read_only(path)) as db:
        rows = db.execute(f"SELECT {', '.join(columns)} FROM steps ORDER BY step").fetchall()
    return np.array(rows, dtype=float).reshape(len(rows), len(columns))


def digest(path: Path) -> bytes:
    """Keccak-256 of the store's rows, one ``step,time_s,load,pv,battery,ev`` line each with values to 1e-9. [32 bytes]

    What a worker commits to: anyone holding the same store gets the same
    digest, and any change to a row changes it.
    """
    with closing(_read_only(path)) as db:
        rows = db.execute(f"SELECT step, time_s, {', '.join(COLUMNS)} FROM steps ORDER BY step").fetchall()
    return keccak("\n".join(f"{r[0]}," + ",".join(f"{v:.9f}" for v in r[1:]) for r in rows).encode())


def _read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot change the store (and fails if it does not exist)."""
    return sqlite3.connect(f"file:{path}?mode=ro", uri=True)
