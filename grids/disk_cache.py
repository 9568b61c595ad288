"""Arrays and objects computed once per machine and kept on disk between runs.

The root is ``$GRIDLEDGER_CACHE`` or, unset, ``~/.cache/gridledger``. An
array entry is a directory of ``.npy`` files, one per array, and an object
entry one pickle file; an entry's path is its key:
a changed key (a new SimBench release, a new layout) names another directory,
so a stale entry is never read, only left behind. Arrays are read
memory-mapped and read-only: a process keeps in memory only the pages it
touches (a study reads a few days of a yearly profile), and several
federates reading the same entry share them.
"""

from __future__ import annotations

import os
import pickle
import shutil
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

__all__ = ["CACHE_ENV", "cache_root", "cached_arrays", "cached_object"]

CACHE_ENV = "GRIDLEDGER_CACHE"
"""Environment variable naming the cache root."""


def cache_root() -> Path:
    """Directory under which cached arrays are kept: ``$GRIDLEDGER_CACHE`` or ``~/.cache/gridledger``."""
    configured = os.environ.get(CACHE_ENV)
    return Path(configured) if configured else Path.home() / ".cache" / "gridledger"


def cached_arrays(entry: Path, build: Callable[[], Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """The arrays stored at ``entry``, built and stored first if the entry is missing.

    Parameters
    ----------
    entry : Path
        Directory of the entry; its path is the key.
    build : callable
        Returns the arrays by name; called only when ``entry`` does not exist.

    Returns
    -------
    arrays : dict of str to ndarray
        Read-only, memory-mapped (an empty array is read into memory, as
        numpy cannot map zero bytes).

    Notes
    -----
    The entry is written into a sibling temporary directory and renamed
    into place, so a reader never sees a half-written entry; when two
    processes build the same entry at once, the first rename wins and the
    other's copy is discarded.
    """
    if not entry.is_dir():
        _store(entry, build())
    return {path.stem: _read(path) for path in sorted(entry.glob("*.npy"))}


def cached_object(entry: Path, build: Callable[[], object]) -> object:
    """The object pickled at ``entry``, built and pickled first if the entry is missing.

    Parameters
    ----------
    entry : Path
        File of the entry; its path is the key. Put the versions of every
        package whose classes the object holds into it: a pickle is only
        read back by the versions that wrote it.
    build : callable
        Returns the object; called only when ``entry`` does not exist.

    Returns
    -------
    value : object
        A fresh copy on every call.

    Notes
    -----
    The file is written beside the entry and renamed into place, so a
    reader never sees half of it (mode 600). A pickle runs code on load, so
    an entry is read only if this user owns it and its directory, no one
    else may write the entry and no other user the directory; otherwise
    `PermissionError` says why (remove the entry to rebuild it).
    """
    if not entry.is_file():
        value = build()
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=entry.parent, prefix=f".{entry.name}.", delete=False) as staging:
            try:
                pickle.dump(value, staging, protocol=pickle.HIGHEST_PROTOCOL)
            except BaseException:
                Path(staging.name).unlink()
                raise
        Path(staging.name).replace(entry)
        return value
    _check_private(entry)
    with entry.open("rb") as stored:
        return pickle.load(stored)


def _check_private(entry: Path) -> None:
    """Raise `PermissionError` unless this user owns `entry` and its directory, and others cannot replace the entry."""
    for path, others in ((entry, 0o022), (entry.parent, 0o002)):
        info = path.stat()
        if info.st_uid != os.getuid() or info.st_mode & others:
            raise PermissionError(
                f"refusing to load the cached object {entry}: {path} is owned by uid {info.st_uid} with mode "
                f"{info.st_mode & 0o777:o}, and a pickle runs code on load; it must be this user's (uid "
                f"{os.getuid()}) and writable by nobody else. Remove {entry} to rebuild it")


def _store(entry: Path, arrays: Mapping[str, np.ndarray]) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", dir=entry.parent))
    try:
        for name, values in arrays.items():
            np.save(staging / f"{name}.npy", np.ascontiguousarray(values), allow_pickle=False)
        try:
            staging.rename(entry)
        except OSError:
            if not entry.is_dir():
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _read(path: Path) -> np.ndarray:
    values = np.load(path, mmap_mode="r", allow_pickle=False)
    if values.size == 0:
        values = np.array(values)
        values.setflags(write=False)
    return values
