"""The kept chain's keys on disk: one SQLite file (the standard library's `sqlite3`), a table of key → value.

Why SQLite: a year's chain is about a gigabyte of keys, and the ledger
reads old ones (state and storage tries) at every block. LevelDB maps
every table file it reads into the process and keeps it mapped while the
table is in its cache, so the ledger's resident set grew with the
database (issue 16: 137 → 258 MiB of mapped tables over the year study).
SQLite reads pages into a bounded cache of its own (`CACHE_KIB`) and maps
nothing (``mmap_size`` 0, its default), so what the ledger holds of the
chain stays the same however long it runs. The store keeps the values of
the `READ_CACHE_KEYS` keys read or written last as well: mining a block
reads about 1,400 keys, most of them read or written for the blocks just
before (trie nodes near the roots, contract code), and a query costs about
8 µs.

A store is written in one transaction per `DiskStore.write` (a block's
keys), in write-ahead-log mode: a process killed afterwards leaves the
write on disk. The writer holds the file exclusively (``locking_mode``
EXCLUSIVE), so no other process reads a chain while it is being mined;
readers open a finished one read-only, several at once.
"""

from __future__ import annotations

import sqlite3
import threading
from collections import OrderedDict
from pathlib import Path

DB_FILE = "chain.sqlite"
"""The store's file in a kept chain's directory."""
CACHE_KIB = 8192
"""SQLite's page cache per open store. [KiB]"""
READ_CACHE_KEYS = 32768
"""Keys whose values a store keeps after reading or writing them, the least recently used dropped first."""


class StoreLocked(Exception):
    """A writer holds the store (a ledger still mining it); readers of a finished chain share it."""


class DiskStore:
    """Keys and values (bytes) in the SQLite file of directory `path`; safe to call from several threads."""

    def __init__(self, path: Path, *, create: bool = False, read_only: bool = False) -> None:
        """Open the store in directory `path`: a new, empty one with `create` (replacing any there), the one there
        otherwise, for reading only with `read_only`.

        Raises
        ------
        FileNotFoundError
            If there is no store in `path` and `create` is not set.
        StoreLocked
            If a writer holds it.
        """
        file = Path(path) / DB_FILE
        if create:
            Path(path).mkdir(parents=True, exist_ok=True)
            for stale in (file, file.with_name(DB_FILE + "-wal"), file.with_name(DB_FILE + "-shm")):
                stale.unlink(missing_ok=True)
        elif not file.is_file():
            raise FileNotFoundError(f"{path}: no kept chain here (no {DB_FILE})")
        uri = f"file:{file}?mode={'ro' if read_only else 'rwc'}"
        self._db = sqlite3.connect(uri, uri=True, timeout=0, isolation_level=None, check_same_thread=False)
        self._lock = threading.Lock()
        self._read: OrderedDict[bytes, bytes] = OrderedDict()
        try:
            self._db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
            if not read_only:
                self._db.execute("PRAGMA locking_mode = EXCLUSIVE")
                self._db.execute("PRAGMA journal_mode = WAL")
                self._db.execute("PRAGMA synchronous = OFF")
                self._db.execute("CREATE TABLE IF NOT EXISTS kv (k BLOB PRIMARY KEY, v BLOB NOT NULL) WITHOUT ROWID")
            self._db.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.OperationalError as error:
            self._db.close()
            if "locked" in str(error):
                raise StoreLocked(f"{path}: {error}") from None
            raise

    def get(self, key: bytes) -> bytes | None:
        """The value of `key`, None if it has none."""
        with self._lock:
            value = self._read.get(key)
            if value is not None:
                self._read.move_to_end(key)
                return value
            row = self._db.execute("SELECT v FROM kv WHERE k = ?", (key,)).fetchone()
            if row is None:
                return None
            self._remember(key, row[0])
            return row[0]

    def write(self, changes: dict[bytes, bytes | None]) -> None:
        """Set each key of `changes` to its value, or delete it where the value is None, in one transaction."""
        with self._lock:
            self._db.execute("BEGIN")
            self._db.executemany("INSERT OR REPLACE INTO kv (k, v) VALUES (?, ?)",
                                 [(k, v) for k, v in changes.items() if v is not None])
            self._db.executemany("DELETE FROM kv WHERE k = ?", [(k,) for k, v in changes.items() if v is None])
            self._db.execute("COMMIT")
            for key, value in changes.items():
                if value is None:
                    self._read.pop(key, None)
                else:
                    self._remember(key, value)

    def _remember(self, key: bytes, value: bytes) -> None:
        """Keep `value` as the last read of `key`, dropping the least recently read beyond `READ_CACHE_KEYS`."""
        self._read[key] = value
        self._read.move_to_end(key)
        if len(self._read) > READ_CACHE_KEYS:
            self._read.popitem(last=False)

    def close(self) -> None:
        """Close the file (the write-ahead log goes into it)."""
        with self._lock:
            self._db.close()
