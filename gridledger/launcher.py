"""Start a study: a run directory, a real `helics_broker`, one process per federate.

`prepare` validates everything that can be checked before launch (study
file, feeder, prosumer placement, interface wiring) and writes the run
directory: resolved ``study.yaml``, ``helics/<federate>.json``. `launch`
starts the broker and the federates, shows progress, and watches them:

* a federate that exits non-zero stops the run; HELICS (``terminate_on_error``)
  stops the others, which keep and write what they have;
* a federation whose simulated time does not advance for
  ``helics.stall_timeout_s`` once every federate has entered executing mode
  is stopped, naming the federate that is still computing (the one
  everybody waits for);
* SIGINT (Ctrl-C) or SIGTERM to the launching process stops the run the
  same way: every federate gets SIGTERM (which `gridledger.federates.shell`
  turns into a federation stop through HELICS) and ``STOP_GRACE_S`` to
  write its part, what is left is killed, and the outcome says which
  signal ended the run. The children run in their own session, so a
  Ctrl-C at the terminal reaches the launcher alone and the stop keeps
  this order.

`runner_json` describes the same processes for ``helics run --path``.

The run secret (`gridledger.run_secret`) travels only in the federates'
environment; neither the run directory nor the runner JSON holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from helics.bin import BIN_DIR as HELICS_BIN_DIR

from gridledger.checkpoint import RESUME_ENV, CheckpointError, label, opened, resume_point, sealed_file
from gridledger.grids.feeders import FeederError
from gridledger.federation import federate_kind, zone_of_federate
from gridledger.interfaces import Topology, check_wiring, core_init_string, federate_configs, federate_names
from gridledger.process import EXIT_STOPPED_BY_PEER, LAUNCHED_AT_ENV, PROGRESS_DIR, RUN_FILE
from gridledger.results import KPIS_FILE, PARTS_DIR, RESULTS_FILE, run_timestamp
from gridledger.roster import Roster, roster_of, run_zones, write_roster
from gridledger.run_secret import RUN_SECRET_ENV, RUN_SECRET_FILE_ENV, choose_secret, secret_env
from gridledger.agents.pseudonym_plan import funding_problem
from gridledger.scenario import Scenario, ScenarioError, build_scenario
from gridledger.schedule import checkpoint_times
from gridledger.study import STUDY_FILE, Study, StudyError, dump_study, load_study

BROKER_TICK = "1000ms"
POLL_S = 0.2
STOP_GRACE_S = 10.0
"""How long stopped federates get to write their parts before they are killed. [s]"""
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
BROKER_READY_S = 30.0
"""How long the broker may take to listen before the run fails. [s]"""
BROKER_POLL_S = 0.01


@dataclass(frozen=True)
class Prepared:
    """A run directory ready to launch, and the run secret its federates get (never shown in its repr)."""

    study: Study
    run_dir: Path
    broker_port: int
    secret: bytes = field(repr=False)
    zones: tuple[str, ...] = ()
    """The run's zones that hold a prosumer (`gridledger.roster.Roster.zones`): a sharded run's zone ledgers."""

    @property
    def federates(self) -> tuple[str, ...]:
        """The federates this run starts (a zone ledger per zone when sharded)."""
        return federate_names(self.study, self.zones)


PORT_BLOCK = 64
"""Ports a run may bind from its broker port on: the broker takes the first two, and HELICS
hands each federate's ZMQ core two more from broker port + 10 on (``NetworkCommsInterface::findOpenPort``)."""
PORT_RANGE = (10240, 32768)
"""Where broker ports are drawn from: below Linux's ephemeral range (32768-60999), so the
ports the kernel gives outgoing connections (the federates' own, among others) never land in a block."""
PORT_LOCKS = Path(tempfile.gettempdir()) / "gridledger-ports"
"""One lock file per port block: a run holds its block's lock (``flock``) from `free_port` to the end
of `launch`, so runs started at the same moment on this host, by any process, never share a block."""
_HELD: dict[int, int] = {}
"""Blocks this process holds: broker port -> file descriptor of its lock."""


def free_port(addresses: tuple[str, ...] = ("127.0.0.1",)) -> int:
    """Reserve a `PORT_BLOCK`-aligned block of ports, all free on `addresses`; its first port.

    Blocks are drawn at random, aligned so that two blocks are either the
    same or disjoint, and reserved host-wide by a lock in `PORT_LOCKS` that
    this process holds until `release_port` (or its exit): a block another
    run holds is passed over even before its broker has bound it.
    """
    first, end = PORT_RANGE
    blocks = list(range(first, end, PORT_BLOCK))
    for base in secrets.SystemRandom().sample(blocks, len(blocks)):
        if base in _HELD or not all(_bindable(a, port) for a in addresses for port in range(base, base + PORT_BLOCK)):
            continue
        if _lock(base):
            return base
    raise OSError(f"no block of {PORT_BLOCK} free ports on {', '.join(addresses) or 'this host'} in {first}-{end - 1}")


def release_port(base: int) -> None:
    """Give back the block `free_port` reserved at `base` (nothing if this process does not hold it)."""
    fd = _HELD.pop(base, None)
    if fd is not None:
        os.close(fd)


def _lock(base: int) -> bool:
    PORT_LOCKS.mkdir(mode=0o1777, exist_ok=True)
    fd = os.open(PORT_LOCKS / f"{base}.lock", os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return False
    _HELD[base] = fd
    return True


def _bindable(address: str, port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind((address, port))
        except OSError:
            return False
    return True


def placements(study: Study, zones: tuple[str, ...] | None = None) -> dict[str, str]:
    """Where each part of the study runs: ``broker`` and every federate -> the address of its host.

    A zone ledger runs where ``helics.hosts`` places ``ledger``.
    """
    return {"broker": study.helics.broker_address} | {name: study.helics.host_of(federate_kind(name))
                                                      for name in federate_names(study, zones)}


def is_local(address: str) -> bool:
    """Whether `address` is one of this machine's (it can be bound here)."""
    return _bindable(address, 0)


def require_local(study: Study, source: str | Path) -> None:
    """Raise `StudyError` naming the field of a part that would run on another host."""
    for name, address in placements(study).items():
        if not is_local(address):
            field = "helics.broker_address" if name == "broker" else f"helics.hosts.{name}"
            raise StudyError(f"{source}: {field} = {address!r} is not an address of this machine; "
                             "`gridledger run` starts every part here: start a federate on its own host with "
                             "`gridledger federate NAME RUN_DIR` (see `gridledger runner`)")


def preflight(study: Study, source: str | Path) -> Scenario:
    """Build the study's scenario as the federates will; raise `StudyError` naming `source` and the field."""
    try:
        sc = build_scenario(study, with_devices=True)
    except FeederError as exc:
        raise StudyError(f"{source}: grid.feeder = {study.grid.feeder!r}: {exc}") from None
    except ScenarioError as exc:
        raise StudyError(f"{source}: {exc}") from None
    if study.pseudonyms is not None and (problem := funding_problem(sc)):
        raise StudyError(f"{source}: {problem}")
    return sc


@dataclass(frozen=True)
class Checked:
    """A study that passed every check made before launch: its scenario, roster and HELICS topology."""

    study: Study
    scenario: Scenario
    roster: Roster
    topology: Topology


def check(study_path: str | Path, all_here: bool = True) -> Checked:
    """Every check `prepare` makes before it writes anything (`gridledger validate` runs them alone).

    Loads the study, requires every part on this machine if `all_here`
    (`require_local`), builds the scenario (`preflight`) and checks the
    federates' wiring; raises `StudyError` naming the file and the field.
    """
    study = load_study(study_path)
    if all_here:
        require_local(study, study_path)
    sc = preflight(study, study_path)
    roster = roster_of(sc)
    topology = Topology(
        prosumers=tuple(p.name for p in sc.prosumers),
        buses=tuple(int(b) for b in sc.buses),
        lines=tuple(int(line) for line in sc.lines),
        zones=tuple(roster.zones),
    )
    # The wiring does not depend on the broker port, which `prepare` draws only after these checks.
    check_wiring(federate_configs(study, topology, study.helics.port or PORT_RANGE[0]), study, topology.zones)
    return Checked(study, sc, roster, topology)


def prepare(study_path: str | Path, runs_root: str | Path = "runs", secret: bytes | None = None,
            all_here: bool = True) -> Prepared:
    """Validate a study (`check`) and write its run directory; raise `StudyError` on bad input.

    `secret` is the run secret; None takes ``GRIDLEDGER_RUN_SECRET`` or a
    fresh random one (`gridledger.run_secret.choose_secret`). `all_here`
    requires every part to run on this machine (`launch` starts them all);
    the broker port is then free on every address the run binds.
    """
    secret = choose_secret() if secret is None else secret
    checked = check(study_path, all_here)
    study, roster, topology = checked.study, checked.roster, checked.topology
    here = tuple(sorted({a for a in placements(study).values() if is_local(a)}))
    port = study.helics.port or free_port(here)
    configs = federate_configs(study, topology, port)
    run_dir = Path(runs_root) / study.name / run_timestamp()
    suffix = 1
    while run_dir.exists():
        run_dir = run_dir.with_name(f"{run_timestamp()}-{suffix}")
        suffix += 1
    (run_dir / "helics").mkdir(parents=True)
    (run_dir / "logs").mkdir()
    (run_dir / STUDY_FILE).write_text(dump_study(study))
    write_roster(run_dir, roster)
    for name, config in configs.items():
        (run_dir / "helics" / f"{name}.json").write_text(json.dumps(config, indent=2))
    return Prepared(study, run_dir.resolve(), port, secret, topology.zones)


def reopen(run_dir: str | Path, secret: bytes) -> tuple[Prepared, int]:
    """A stopped run ready to `launch` again from its last complete checkpoint: (the run, the checkpoint's number).

    The federates get a fresh broker port (their HELICS configs are
    rewritten) and what the stopped run collected goes (``results.nc``,
    ``kpis.json``, ``parts/``: the resumed run writes them whole); the rest
    is the run directory as the stopped run left it.

    Raises
    ------
    CheckpointError
        If the run finished, has no complete checkpoint, or its checkpoints
        do not open with `secret`.
    """
    run_dir = Path(run_dir).resolve()
    study = load_study(run_dir / STUDY_FILE)
    prepared = Prepared(study, run_dir, 0, secret, run_zones(run_dir))
    record = run_dir / RUN_FILE
    if record.exists() and json.loads(record.read_text()).get("ended") == "finished":
        raise CheckpointError(f"{run_dir}: the run finished; there is nothing to resume")
    number = resume_point(run_dir, prepared.federates)
    if number is None:
        first = next(iter(checkpoint_times(study)), "-")
        raise CheckpointError(f"{run_dir}: no complete checkpoint to resume from (checkpoint.every_s: "
                              f"{study.checkpoint.every_s}; the first is at {first} s of study time); run the study "
                              "again")
    for name in prepared.federates:
        opened(secret, label(name, number), sealed_file(run_dir, number, name))
    here = tuple(sorted({a for a in placements(study, prepared.zones).values() if is_local(a)}))
    port = free_port(here)
    for name in prepared.federates:
        path = run_dir / "helics" / f"{name}.json"
        config = json.loads(path.read_text())
        config["core_init_string"] = core_init_string(study.helics.core_type, study.helics.broker_address, port,
                                                      study.helics.host_of(federate_kind(name)))
        path.write_text(json.dumps(config, indent=2))
    for collected in (RESULTS_FILE, KPIS_FILE):
        (run_dir / collected).unlink(missing_ok=True)
    shutil.rmtree(run_dir / PARTS_DIR, ignore_errors=True)
    return replace(prepared, broker_port=port), number


def helics_program(name: str) -> str:
    """A HELICS program: the binary the helics wheel ships, else one on PATH.

    The wheel's console script is a Python wrapper that starts the binary
    as a child; signalling the wrapper would leave the broker running, so
    the launcher starts the binary itself.
    """
    shipped = Path(HELICS_BIN_DIR) / name
    found = str(shipped) if shipped.exists() else shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found in {HELICS_BIN_DIR} or on PATH; "
                                "install the helics package (make setup)")
    return found


def broker_command(prepared: Prepared) -> list[str]:
    """The `helics_broker` command line for a prepared run."""
    helics = prepared.study.helics
    return [helics_program("helics_broker"), f"-f{len(prepared.federates)}", f"--coretype={helics.core_type}",
            f"--local_interface=tcp://{helics.broker_address}", f"--port={prepared.broker_port}",
            f"--tick={BROKER_TICK}", "--loglevel=warning", f"--name=gridledger-{prepared.broker_port}"]


def wait_for_broker(address: str, port: int, broker: subprocess.Popen, timeout_s: float = BROKER_READY_S) -> None:
    """Return once the broker accepts connections at `address`:`port`, so federates start against a ready broker.

    Raises
    ------
    RuntimeError
        If the broker exits first or is not listening within `timeout_s`.
    """
    deadline = time.monotonic() + timeout_s
    while broker.poll() is None:
        with socket.socket() as s:
            if s.connect_ex((address, port)) == 0:
                return
        if time.monotonic() > deadline:
            raise RuntimeError(f"helics_broker is not listening on {address}:{port} after {timeout_s:g} s")
        time.sleep(BROKER_POLL_S)
    raise RuntimeError(f"helics_broker exited with code {broker.returncode} before listening on {address}:{port}")


def federate_command(name: str, run_dir: Path) -> list[str]:
    """The command line of one federate process; a zone ledger (``ledger-<zone>``) gets its zone after the run directory."""
    zone = zone_of_federate(name)
    return [sys.executable, "-m", f"gridledger.federates.{federate_kind(name)}", str(run_dir),
            *([zone] if zone is not None else [])]


def runner_json(prepared: Prepared, secret_file: Path | None = None) -> dict:
    """helics-cli runner description (``helics run --path runner.json``) of a prepared run.

    The federates read the run secret from the file `secret_file` (its path
    goes into their ``env``), else from ``GRIDLEDGER_RUN_SECRET`` in the
    environment of ``helics run``; the secret itself is never in the JSON.
    """
    quote = subprocess.list2cmdline
    env = {"env": {RUN_SECRET_FILE_ENV: str(Path(secret_file).resolve())}} if secret_file is not None else {}
    return {
        "name": prepared.study.name,
        "logging_path": str(prepared.run_dir / "logs"),
        "federates": [{"name": name, "directory": ".", "host": host,
                       "exec": quote(broker_command(prepared) if name == "broker" else
                                     federate_command(name, prepared.run_dir)),
                       **({} if name == "broker" else env)}
                      for name, host in placements(prepared.study, prepared.zones).items()],
    }


@dataclass(frozen=True)
class Outcome:
    """How a launched run ended.

    Attributes
    ----------
    exit_code : int
        0 finished, 1 a federate failed or stalled, or the run was interrupted.
    failed, reason : str or None
        The failing federate(s) and why; for an interrupted run `failed` is None.
    interrupted : str or None
        The signal that stopped the run (``"SIGINT"``, ``"SIGTERM"``), if one did.
    """

    exit_code: int
    failed: str | None = None
    reason: str | None = None
    interrupted: str | None = None

    @property
    def ended(self) -> str:
        """How the run ended in words: finished, failed, or interrupted by a signal."""
        if self.interrupted:
            return f"interrupted by {self.interrupted}"
        return "failed" if self.exit_code else "finished"


class StopRequests:
    """SIGINT and SIGTERM received while a run is watched, remembered instead of raised.

    The watch loop reads `received` and stops the federation in order; a
    second signal changes nothing (the stop is already bounded by
    ``STOP_GRACE_S``). Handlers can only be set in the main thread: a run
    started from another thread (a Dask worker) keeps the handlers it has.
    """

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, object] = {}

    def __enter__(self) -> StopRequests:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._catch) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc_info: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)

    def _catch(self, signum: int, frame: object) -> None:
        self.received = self.received or signal.Signals(signum).name


def read_progress(run_dir: Path) -> dict[str, dict]:
    """Latest progress record of every federate that has written one."""
    records = {}
    for path in (run_dir / PROGRESS_DIR).glob("*.json"):
        try:
            records[path.stem] = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError):
            continue
    return records


def _stop(procs: dict[str, subprocess.Popen], names: list[str], sig: int) -> None:
    for name in names:
        if procs[name].poll() is None:
            procs[name].send_signal(sig)


def _last_error(log_path: Path) -> str:
    if not log_path.exists():
        return "(no log)"
    lines = [line for line in log_path.read_text(errors="replace").splitlines() if line.strip()]
    return "\n".join(lines[-8:]) or "(empty log)"


def launch(prepared: Prepared, on_progress=None, resume: int | None = None) -> Outcome:
    """Run the federation to the end, its first failure or a SIGINT/SIGTERM; never leaves processes behind.

    `on_progress(records)` is called on every poll with `read_progress`
    output. With `resume` every federate starts from that checkpoint
    (`reopen`); the logs go on after the stopped run's.
    """
    with StopRequests() as stops:
        return _launch(prepared, stops, on_progress, resume)


def _launch(prepared: Prepared, stops: StopRequests, on_progress, resume: int | None) -> Outcome:
    run_dir, study = prepared.run_dir, prepared.study
    federates = prepared.federates
    logs = {name: open(run_dir / "logs" / f"{name}.log", "w" if resume is None else "a")
            for name in ("broker", *federates)}
    env = {key: value for key, value in os.environ.items()
           if key not in (RUN_SECRET_ENV, RUN_SECRET_FILE_ENV, RESUME_ENV)}
    env.update({"PYTHONUNBUFFERED": "1", LAUNCHED_AT_ENV: repr(time.time())})
    if resume is not None:
        env[RESUME_ENV] = str(resume)
        shutil.rmtree(run_dir / PROGRESS_DIR, ignore_errors=True)
        for handle in logs.values():
            handle.write(f"--- resumed from checkpoint {resume} at {time.strftime('%Y-%m-%d %H:%M:%S')}\n")
            handle.flush()
    procs = {"broker": subprocess.Popen(broker_command(prepared), stdout=logs["broker"],
                                        stderr=subprocess.STDOUT, env=env, start_new_session=True)}
    failed = reason = interrupted = None
    last_change, last_times = time.monotonic(), None
    try:
        try:
            wait_for_broker(study.helics.broker_address, prepared.broker_port, procs["broker"])
        except RuntimeError as exc:
            return Outcome(1, "broker", f"{exc}:\n{_last_error(run_dir / 'logs' / 'broker.log')}")
        for name in federates:
            procs[name] = subprocess.Popen(federate_command(name, run_dir), stdout=logs[name],
                                           stderr=subprocess.STDOUT, env={**env, **secret_env(prepared.secret)},
                                           start_new_session=True)
        while any(procs[n].poll() is None for n in federates):
            time.sleep(POLL_S)
            records = read_progress(run_dir)
            if on_progress:
                on_progress(records)
            exited = [n for n in federates if procs[n].poll() not in (None, 0, EXIT_STOPPED_BY_PEER)]
            if exited and failed is None:
                self_failed = [n for n in exited if records.get(n, {}).get("state") == "failed"]
                failed = (self_failed or exited)[0]
                reason = (f"exited with code {procs[failed].returncode}:\n"
                          f"{_last_error(run_dir / 'logs' / f'{failed}.log')}")
            if procs["broker"].poll() not in (None, 0) and failed is None:
                failed, reason = "broker", f"helics_broker exited with code {procs['broker'].returncode}"
            times = tuple(sorted((n, r.get("time_s"), r.get("state")) for n, r in records.items()))
            entered = all(records.get(n, {}).get("state", "starting") != "starting" for n in federates)
            if times != last_times or not entered:
                last_change, last_times = time.monotonic(), times
            elif failed is None and time.monotonic() - last_change > study.helics.stall_timeout_s:
                blockers = [n for n, r in records.items() if r.get("state") in ("computing", "starting")]
                blockers = blockers or [n for n in federates if procs[n].poll() is None]
                failed = ",".join(sorted(blockers))
                reason = (f"no time grant for {study.helics.stall_timeout_s:g} s; "
                          f"stalled while computing: {failed}")
                _stop(procs, blockers, signal.SIGTERM)
            if stops.received and failed is None:
                interrupted = stops.received
                reason = (f"interrupted by {interrupted}: every federate was stopped and given "
                          f"{STOP_GRACE_S:g} s to write its part")
                _stop(procs, federates, signal.SIGTERM)
            if failed is not None or interrupted:
                _wait_or_kill(procs, federates)
                break
        _wait_or_kill(procs, ("broker",))
    finally:
        _wait_or_kill(procs, tuple(procs), grace_s=0.0)
        for handle in logs.values():
            handle.close()
        release_port(prepared.broker_port)
    if interrupted:
        return Outcome(1, None, reason, interrupted)
    if failed is None:
        for name in federates:
            if procs[name].returncode != 0:
                failed = name
                reason = f"exited with code {procs[name].returncode}:\n{_last_error(run_dir / 'logs' / f'{name}.log')}"
                break
    return Outcome(0 if failed is None else 1, failed, reason)


def _wait_or_kill(procs: dict[str, subprocess.Popen], names, grace_s: float = STOP_GRACE_S) -> None:
    """Give processes `grace_s` to exit, then SIGTERM, then SIGKILL."""
    deadline = time.monotonic() + grace_s
    while time.monotonic() < deadline and any(procs[n].poll() is None for n in names):
        time.sleep(POLL_S)
    _stop(procs, list(names), signal.SIGTERM)
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline and any(procs[n].poll() is None for n in names):
        time.sleep(POLL_S)
    _stop(procs, list(names), signal.SIGKILL)
    for name in names:
        procs[name].wait()
