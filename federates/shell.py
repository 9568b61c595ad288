"""The HELICS shell every federate runs in: join, advance, talk, leave.

A federate module writes its loop against `Shell` and never touches the
HELICS C API itself. `Shell` also writes a one-line progress file per grant
(`progress/<name>.json`: time reached, whether it is computing or waiting)
that the launcher reads to show progress and to name a federate that stalls.

Failure handling follows HELICS: federates run with `terminate_on_error`, so
`Shell.fail` raises a local error that HELICS escalates to the whole
federation; the other federates' next time request then raises
`FederationStopped`, they write what they have and exit with
`EXIT_STOPPED_BY_PEER`, which the launcher tells apart from the federate that
failed first. SIGTERM (how the launcher stops a run) becomes `SystemExit` and
is handled the same way; `stop_deferred` holds it while a federate finishes
work that must not be torn.

With a `Keeper` the shell also takes the run's checkpoints
(`gridledger.checkpoint`): `Shell.advance` first stops at each checkpoint
time on the way, takes the messages delivered so far and writes them with
the state the federate registered (`Shell.keep`), then its results so far
(``parts/<name>.nc``, not complete), so a federate killed later leaves its
results up to its last checkpoint; `Shell.receive` hands them to the next
action first. A resumed federate starts from its
checkpoint's time, with the messages it held then, and `Shell.ahead`
leaves out the actions it had done.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time
import traceback
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import helics as h

from gridledger.lean import REFUSED  # first: keeps matplotlib and dask out of federate processes
from gridledger.process import (EXIT_FAILED, EXIT_STOPPED_BY_PEER, LAUNCHED_AT_ENV, RSS_SAMPLES, peak_rss_mib,
                                progress_path, rss_mib)
from gridledger.checkpoint import Keeper
from gridledger.results import Part, collect_if_complete


log = logging.getLogger("gridledger.federate")
T = TypeVar("T")


class FederationStopped(RuntimeError):
    """Another federate failed and HELICS stopped the federation."""


class Shell:
    """A joined HELICS combination federate configured from its JSON file."""

    def __init__(self, run_dir: Path, name: str, stop_s: float, keeper: Keeper | None = None):
        self.name = name
        self.run_dir = Path(run_dir)
        self.stop_s = stop_s
        self.keeper = keeper
        self.resumed_at_s = keeper.resumed_at_s if keeper is not None else None
        self.granted_s = self.resumed_at_s or 0.0
        self._held: list[tuple[str, bytes]] = list(keeper.held) if keeper is not None else []
        self._state: object | None = None
        self._part: Callable[[], Part] | None = None
        self._wall = {"created": time.time(), "entered": None, "waiting_s": 0.0}
        self.rss_samples: list[tuple[float, float]] = []
        self._progress = progress_path(run_dir, name)
        self._progress.parent.mkdir(parents=True, exist_ok=True)
        self._fed = h.helicsCreateCombinationFederateFromConfig(str(run_dir / "helics" / f"{name}.json"))
        self._pubs = {
            h.helicsPublicationGetName(pub): pub
            for pub in (h.helicsFederateGetPublicationByIndex(self._fed, i)
                        for i in range(h.helicsFederateGetPublicationCount(self._fed)))
        }
        self._subs = {
            h.helicsInputGetTarget(sub): sub
            for sub in (h.helicsFederateGetInputByIndex(self._fed, i)
                        for i in range(h.helicsFederateGetInputCount(self._fed)))
        }
        self._endpoint = h.helicsFederateGetEndpointByIndex(self._fed, 0) if h.helicsFederateGetEndpointCount(self._fed) else None
        self.report("starting", refused_imports=list(REFUSED))

    def initialize(self) -> None:
        """Enter initializing mode: messages sent now arrive at time 0."""
        self._call(h.helicsFederateEnterInitializingMode)

    def enter(self) -> None:
        """Enter executing mode (time 0)."""
        self._call(h.helicsFederateEnterExecutingMode)
        self._wall["entered"] = time.time()
        self.report("computing")

    def _call(self, function) -> None:
        try:
            function(self._fed)
        except h.HelicsException as exc:
            raise FederationStopped(str(exc)) from None

    def keep(self, state: object, part: Callable[[], Part]) -> None:
        """Register what every checkpoint saves: everything the federate's loop changes, and how to build its
        results part from it, written (as not complete) at each checkpoint."""
        self._state, self._part = state, part

    def ahead(self, actions: Iterable[T], time_of: Callable[[T], float] = float) -> list[T]:
        """The `actions` still to do: all on a fresh run, those after its checkpoint on a resumed one."""
        return list(actions) if self.resumed_at_s is None else [a for a in actions if time_of(a) > self.resumed_at_s]

    def advance(self, time_s: float) -> float:
        """Take the checkpoints before `time_s` (if any), then request `time_s` and return the granted time. [s]"""
        self._checkpoints_before(time_s)
        return self._request(time_s)

    def finish(self) -> None:
        """Take the checkpoints after the federate's last action, so each one holds every federate; the results
        part written with them is complete (the federate's own, written when its loop ended, stays so)."""
        self._checkpoints_before(float("inf"), complete=True)

    def _checkpoints_before(self, time_s: float, complete: bool = False) -> None:
        for number, checkpoint_s in self.keeper.due(self.granted_s, time_s) if self.keeper is not None else []:
            if self._state is None:
                raise RuntimeError(f"{self.name}: a checkpoint is due but the federate registered no state (keep)")
            self._request(checkpoint_s)
            self._held += self._take()
            with stop_deferred():
                self.keeper.save(number, self._state, self._held)
                self._part().write(self.run_dir, complete=complete)

    def _request(self, time_s: float) -> float:
        self.report("waiting", requested_s=time_s)
        asked = time.perf_counter()
        try:
            self.granted_s = h.helicsFederateRequestTime(self._fed, time_s)
        except h.HelicsException as exc:
            raise FederationStopped(str(exc)) from None
        finally:
            self._wall["waiting_s"] += time.perf_counter() - asked
        self._sample_rss()
        self.report("computing")
        return self.granted_s

    def _sample_rss(self) -> None:
        """Keep (simulated time [s], resident set [MiB]) each time another 1/`RSS_SAMPLES` of the run is reached."""
        period_s = self.stop_s / RSS_SAMPLES
        if not self.rss_samples or self.granted_s >= self.rss_samples[-1][0] + period_s:
            self.rss_samples.append((self.granted_s, rss_mib()))

    def publish(self, key: str, value: float) -> None:
        """Publish a double on a declared publication."""
        h.helicsPublicationPublishDouble(self._pubs[key], value)

    def value(self, key: str) -> float:
        """Latest value of a subscription (its declared default before any update)."""
        return h.helicsInputGetDouble(self._subs[key])

    def send(self, destination: str, payload: bytes) -> None:
        """Send a message from this federate's endpoint."""
        h.helicsEndpointSendBytesTo(self._endpoint, payload, destination)

    def receive(self) -> list[tuple[str, bytes]]:
        """All messages delivered so far, in arrival order, as (source endpoint, payload)."""
        held, self._held = self._held, []
        return held + self._take()

    def _take(self) -> list[tuple[str, bytes]]:
        messages = []
        while h.helicsEndpointHasMessage(self._endpoint):
            msg = h.helicsEndpointGetMessage(self._endpoint)
            messages.append((h.helicsMessageGetSource(msg), h.helicsMessageGetBytes(msg)))
        return messages

    def fail(self, message: str) -> None:
        """Report a local error; with terminate_on_error HELICS stops every federate."""
        self.report("failed", error=message)
        h.helicsFederateLocalError(self._fed, EXIT_FAILED, message[:1000])

    def close(self) -> None:
        """Leave the federation and free the core."""
        h.helicsFederateDisconnect(self._fed)
        h.helicsFederateFree(self._fed)
        h.helicsCloseLibrary()

    def timing(self) -> dict[str, float | None]:
        """Wall-clock split of this process so far: start-up, waiting on HELICS, own work [s]; its peak and
        sampled resident set (simulated time [s], [MiB]). [MiB]"""
        now, wall = time.time(), self._wall
        launched = float(os.environ.get(LAUNCHED_AT_ENV, wall["created"]))
        entered = wall["entered"] or now
        return {
            "startup_s": entered - launched,
            "waiting_s": wall["waiting_s"],
            "compute_s": now - entered - wall["waiting_s"],
            "peak_rss_mib": peak_rss_mib(),
            "rss_mib": self.rss_samples,
        }

    def report(self, state: str, **extra: object) -> None:
        """Write this federate's progress record (read by the launcher and `make bench`)."""
        record = {"federate": self.name, "state": state, "time_s": self.granted_s,
                  "stop_s": self.stop_s, "pid": os.getpid(), **extra}
        if state in ("done", "stopped", "failed"):
            record["timing"] = self.timing()
        tmp = self._progress.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(self._progress)


def _raise_on_term(signum: int, frame: object) -> None:
    """Turn SIGTERM into an exception so `joined` reports it and parts get written."""
    raise SystemExit(128 + signum)


@contextmanager
def stop_deferred() -> Iterator[None]:
    """Hold SIGTERM until the block ends, so work that must not be torn (a block and its export) completes first."""
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM})
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})


@contextmanager
def joined(run_dir: Path, name: str, stop_s: float, keeper: Keeper | None = None) -> Iterator[Shell]:
    """Join the federation as `name`, taking checkpoints with `keeper`; always leave it, even after an error."""
    shell = Shell(run_dir, name, stop_s, keeper)
    try:
        yield shell
    except FederationStopped:
        shell.report("stopped")
        raise
    except BaseException as exc:
        shell.fail(f"{name}: {type(exc).__name__}: {exc}")
        raise
    else:
        shell.finish()
        shell.report("done")
    finally:
        shell.close()


def run_federate(name: str, body: Callable[[Path], None], argv: list[str] | None = None) -> None:
    """Entry point of a federate process: `python -m gridledger.federates.<name> RUN_DIR`.

    Exits 0 on success, `EXIT_STOPPED_BY_PEER` when another federate stopped
    the federation, `EXIT_FAILED` (with the traceback in the log) otherwise.
    """
    argv = sys.argv[1:] if argv is None else argv
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s {name} %(levelname)s %(message)s",
                        stream=sys.stderr)
    signal.signal(signal.SIGTERM, _raise_on_term)
    if len(argv) != 1:
        sys.exit(f"usage: python -m gridledger.federates.{name} RUN_DIR")
    run_dir = Path(argv[0])
    try:
        body(run_dir)
        collect_if_complete(run_dir)
    except FederationStopped as exc:
        log.error("stopped: another federate failed (%s)", exc)
        sys.exit(EXIT_STOPPED_BY_PEER)
    except Exception:
        log.error("failed:\n%s", traceback.format_exc())
        sys.exit(EXIT_FAILED)
