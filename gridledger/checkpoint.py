"""Checkpoints: every federate's state at one simulated time, so a stopped, killed or crashed run resumes from it.

When: at `gridledger.schedule.checkpoint_times`, just before a market
interval starts, at times no federate acts. Each federate is granted the
time (`gridledger.federates.shell.Shell.advance`), takes the messages
delivered to it and not yet read (they go to its next action, in the same
order, so a checkpoint changes nothing the run does), and writes them with
its state.

What: ``checkpoints/<j>/<federate>.ckpt`` holds the federate's state (its
agents, what it recorded so far; the ledger's market, whose `Chain` and
`ChainExport` pickle as their position in ``chaindb/`` and ``chain/``),
pickled, then sealed with AES-GCM (NIST SP 800-38D) under a key derived from
the run secret (`derive_checkpoint_key`): the state holds private keys and
unrevealed salts, and a run directory is meant to be shared. The
federate's name and the checkpoint's number are authenticated with it, so
no file stands in for another, and a changed file is refused. Each file is
written whole (renamed into place). A federate drops its files of the
checkpoints before the last complete one (every federate's file there), so
a complete checkpoint is always kept, however far apart the federates are
when one dies.

Resume: `gridledger resume` relaunches every federate with
``GRIDLEDGER_RESUME=<j>`` (`resume_point` picks the last complete j);
each loads its state (`Keeper.restore`), enters executing mode without the
start-up handshake and goes on with its first action after the checkpoint.
The same study, seed and secret give the same actions on the same state,
so results and chain equal an uninterrupted run's.
"""

from __future__ import annotations

import copyreg
import os
import pickle
from contextlib import suppress
from pathlib import Path
from types import MappingProxyType

from Crypto.Cipher import AES
from eth_account import Account
from eth_account.signers.local import LocalAccount

from gridledger.contracts.keys import derive_checkpoint_key
from gridledger.federation import federate_names
from gridledger.roster import run_zones
from gridledger.schedule import checkpoint_times
from gridledger.study import Study

CHECKPOINT_DIR = "checkpoints"
RESUME_ENV = "GRIDLEDGER_RESUME"
"""Environment variable telling a federate process the checkpoint to resume from (its number)."""
SUFFIX = ".ckpt"
_NONCE_BYTES = 12
_TAG_BYTES = 16


class CheckpointError(Exception):
    """A checkpoint that cannot be used; the message says which and why."""


def checkpoint_dir(run_dir: Path, number: int) -> Path:
    """Directory of checkpoint `number` (1 first)."""
    return Path(run_dir) / CHECKPOINT_DIR / str(number)


def written(run_dir: Path) -> dict[int, set[str]]:
    """The federates whose file of each checkpoint is on disk, by checkpoint number."""
    root = Path(run_dir) / CHECKPOINT_DIR
    if not root.is_dir():
        return {}
    return {int(d.name): {f.name.removesuffix(SUFFIX) for f in d.glob(f"*{SUFFIX}")}
            for d in root.iterdir() if d.name.isdigit()}


def _last_complete(on_disk: dict[int, set[str]], federates: tuple[str, ...]) -> int | None:
    complete = [number for number, names in on_disk.items() if set(federates) <= names]
    return max(complete, default=None)


def resume_point(run_dir: Path, federates: tuple[str, ...]) -> int | None:
    """The last checkpoint every one of `federates` wrote, or None."""
    return _last_complete(written(run_dir), federates)


def checkpoint_file(run_dir: Path, number: int, name: str) -> Path:
    """Where federate `name` writes checkpoint `number`."""
    return checkpoint_dir(run_dir, number) / f"{name}{SUFFIX}"


def sealed_file(run_dir: Path, number: int, name: str) -> bytes:
    """The bytes of `name`'s file of checkpoint `number`; raises `CheckpointError` if it is missing."""
    path = checkpoint_file(run_dir, number, name)
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"{path}: missing; checkpoint {number} is not complete") from None


def label(name: str, number: int) -> str:
    """What a checkpoint file authenticates besides its contents: whose and which it is."""
    return f"{name} checkpoint {number}"


def _account(key: bytes) -> LocalAccount:
    return Account.from_key(key)


def _account_reduced(account: LocalAccount):
    return _account, (bytes(account.key),)


def _mapping(items: dict) -> MappingProxyType:
    return MappingProxyType(items)


def _mapping_reduced(mapping: MappingProxyType):
    return _mapping, (dict(mapping),)


def _pickler(stream) -> pickle.Pickler:
    """A pickler into `stream` that pickles accounts as their keys and read-only mappings as dicts."""
    pickler = pickle.Pickler(stream, protocol=pickle.HIGHEST_PROTOCOL)
    pickler.dispatch_table = {**copyreg.dispatch_table, LocalAccount: _account_reduced,
                              MappingProxyType: _mapping_reduced}
    return pickler


class _Sealing:
    """A write-only stream that encrypts what it is given into another, piece by piece."""

    def __init__(self, stream, cipher) -> None:
        self._stream, self._cipher = stream, cipher

    def write(self, data) -> int:
        """Encrypt and write `data`: bytes, or a buffer (a large array's, which protocol 5 hands over as it is)."""
        view = memoryview(data).cast("B")
        self._stream.write(self._cipher.encrypt(view))
        return view.nbytes


def seal(stream, secret: bytes, what: str, state: object) -> None:
    """Write `state` pickled, encrypted and authenticated with `what` into `stream` (AES-256-GCM, random nonce):
    nonce, ciphertext, tag. The pickle goes to the cipher as it is made, so no copy of the whole state is held."""
    nonce = os.urandom(_NONCE_BYTES)
    cipher = AES.new(derive_checkpoint_key(secret), AES.MODE_GCM, nonce=nonce)
    cipher.update(what.encode())
    stream.write(nonce)
    _pickler(_Sealing(stream, cipher)).dump(state)
    stream.write(cipher.digest())


def opened(secret: bytes, what: str, data: bytes) -> bytes:
    """The pickle `seal` wrote into `data`, decrypted and checked; raises `CheckpointError` if the secret, `what` or
    a byte differs."""
    nonce, sealed, tag = data[:_NONCE_BYTES], data[_NONCE_BYTES:-_TAG_BYTES], data[-_TAG_BYTES:]
    cipher = AES.new(derive_checkpoint_key(secret), AES.MODE_GCM, nonce=nonce)
    cipher.update(what.encode())
    try:
        return cipher.decrypt_and_verify(sealed, tag)
    except ValueError:
        raise CheckpointError(f"{what}: does not open with this run secret (another run's secret, or the file "
                              "was changed)") from None


def unseal(secret: bytes, what: str, data: bytes) -> object:
    """The state `seal` wrote into `data`, checked before it is unpickled: unpickling runs code, so nothing is
    unpickled that the run secret did not seal."""
    return pickle.loads(opened(secret, what, data))


class Keeper:
    """One federate's checkpoints: which times, where, and (resuming) the one it starts from.

    Parameters
    ----------
    run_dir : Path
        The run directory.
    name : str
        The federate's name.
    times_s : list of float
        Checkpoint times, checkpoint j (1 first) at ``times_s[j - 1]``. [s]
    secret : bytes
        The run secret.
    federates : tuple of str
        Every federate of the run, whose files make a checkpoint complete.
    resume : int or None
        The checkpoint to resume from; None on a fresh run.
    """

    def __init__(self, run_dir: Path, name: str, times_s: list[float], secret: bytes, federates: tuple[str, ...],
                 resume: int | None = None) -> None:
        if resume is not None and not 1 <= resume <= len(times_s):
            raise CheckpointError(f"{name}: no checkpoint {resume}; this study has {len(times_s)}")
        self.run_dir, self.name, self.times_s, self._secret, self.resume = Path(run_dir), name, times_s, secret, resume
        self.federates = federates
        self.held: list[tuple[str, bytes]] = []

    @classmethod
    def of(cls, run_dir: Path, name: str, study: Study, secret: bytes) -> Keeper:
        """The keeper of federate `name` of the run in `run_dir`: resuming if its environment says so
        (``GRIDLEDGER_RESUME``)."""
        resume = os.environ.get(RESUME_ENV)
        return cls(run_dir, name, checkpoint_times(study), secret, federate_names(study, run_zones(run_dir)),
                   int(resume) if resume else None)

    @property
    def resumed_at_s(self) -> float | None:
        """The time the federate starts from: its checkpoint's; None on a fresh run. [s]"""
        return None if self.resume is None else self.times_s[self.resume - 1]

    def due(self, after_s: float, before_s: float) -> list[tuple[int, float]]:
        """(number, time [s]) of each checkpoint strictly between `after_s` and `before_s`."""
        return [(j, t) for j, t in enumerate(self.times_s, start=1) if after_s < t < before_s]

    def save(self, number: int, state: object, held: list[tuple[str, bytes]]) -> None:
        """Write checkpoint `number` (`state` and the messages not yet read), whole; drop this federate's files of
        the checkpoints before the last complete one."""
        path = checkpoint_file(self.run_dir, number, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as stream:
            seal(stream, self._secret, label(self.name, number), (state, held))
        tmp.replace(path)
        on_disk = written(self.run_dir)
        complete = _last_complete(on_disk, self.federates) or 0
        for older, names in on_disk.items():
            if older < complete and self.name in names:
                old = checkpoint_file(self.run_dir, older, self.name)
                old.unlink()
                with suppress(OSError):
                    old.parent.rmdir()

    def restore(self) -> object | None:
        """The state of the checkpoint resumed from (its unread messages go to `held`); None on a fresh run."""
        if self.resume is None:
            return None
        data = sealed_file(self.run_dir, self.resume, self.name)
        state, self.held = unseal(self._secret, label(self.name, self.resume), data)
        return state
