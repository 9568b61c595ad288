"""Federations across hosts, emulated on one machine: Linux routes all of 127.0.0.0/8 to the loopback.

The broker listens on 127.0.0.2, the federates' cores receive on 127.0.0.1,
127.0.0.2 (the broker's host) and 127.0.0.3 or 127.0.0.5, each federate its
own process; what is bound where is read from ``/proc/net/tcp`` while the
run goes. A placed run must equal the single-host run of the same study and
secret: KPIs, chain and every result variable.
"""

from __future__ import annotations

import json
import shlex
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import xarray as xr
import yaml

from gridledger.cli import EXIT_BAD_INPUT, main
from gridledger.interfaces import broker_port_of
from gridledger.launcher import read_progress
from gridledger.run_secret import RUN_SECRET_ENV
from tests.e2e_helpers import ROOT, SHORT_STUDY, TEST_SECRET_FILE, gridledger, only_run_dir, with_secret

pytestmark = pytest.mark.e2e

HALF_HOUR = {**yaml.safe_load(SHORT_STUDY.read_text()), "name": "hosts", "duration_s": 1800}
PLACED = {"broker_address": "127.0.0.2", "hosts": {"grid": "127.0.0.1", "der": "127.0.0.3"}}
TCP_LISTEN = "0A"
CHAIN_FILES = ("blocks.jsonl", "receipts.jsonl", "events.jsonl")


def _study(directory: Path, helics: dict | None = None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "hosts.yaml"
    path.write_text(yaml.safe_dump({**HALF_HOUR, **({"helics": helics} if helics else {})}, sort_keys=False))
    return path


def _listening() -> set[tuple[str, int]]:
    """(IPv4 address, port) of every listening TCP socket on this machine."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        if state == TCP_LISTEN:
            address, port = local.split(":")
            found.add((socket.inet_ntoa(bytes.fromhex(address)[::-1]), int(port, 16)))
    return found


def _watch(procs: list[subprocess.Popen], timeout_s: float = 300) -> set[tuple[str, int]]:
    """Wait for `procs`; every listening socket seen meanwhile."""
    seen, end = set(), time.monotonic() + timeout_s
    while any(p.poll() is None for p in procs):
        assert time.monotonic() < end, "run did not end"
        seen |= _listening()
        time.sleep(0.05)
    return seen


def _broker_port(run_dir: Path) -> int:
    return broker_port_of(json.loads((run_dir / "helics" / "ledger.json").read_text())["core_init_string"])


def _in_block(seen: set[tuple[str, int]], port: int) -> set[str]:
    """Addresses that listened on the run's port block (its broker port and the 63 after it)."""
    return {address for address, p in seen if port <= p < port + 64}


def _same_run(a: Path, b: Path) -> None:
    assert (a / "kpis.json").read_bytes() == (b / "kpis.json").read_bytes()
    for name in CHAIN_FILES:
        assert (a / "chain" / name).read_bytes() == (b / "chain" / name).read_bytes(), name
    with xr.open_dataset(a / "results.nc") as ra, xr.open_dataset(b / "results.nc") as rb:
        xr.testing.assert_equal(ra, rb)


@pytest.fixture(scope="module")
def single_host(tmp_path_factory) -> Path:
    """The study run as always: broker and every federate on 127.0.0.1."""
    runs = tmp_path_factory.mktemp("single")
    done = gridledger("run", str(_study(runs)), "--runs", str(runs))
    assert done.returncode == 0, done.stdout + done.stderr
    return only_run_dir(runs, "hosts")


def test_run_placed_on_three_loopback_addresses_equals_the_single_host_run(tmp_path, single_host):
    runs = tmp_path / "runs"
    proc = subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(_study(tmp_path, PLACED)),
                             "--runs", str(runs)], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=with_secret())
    seen = _watch([proc])
    assert proc.returncode == 0, proc.stdout.read()
    run_dir = only_run_dir(runs, "hosts")
    assert _in_block(seen, _broker_port(run_dir)) == {"127.0.0.1", "127.0.0.2", "127.0.0.3"}
    assert (_broker_port(run_dir) in {p for a, p in seen if a == "127.0.0.2"})
    _same_run(single_host, run_dir)


def test_federates_started_one_by_one_against_a_remote_broker_equal_the_single_host_run(tmp_path, single_host):
    """`gridledger runner` prepares; the broker and each `gridledger federate` start as on their own hosts."""
    runs = tmp_path / "runs"
    described = gridledger("runner", str(_study(tmp_path, PLACED)), "--runs", str(runs),
                           "--secret-file", str(TEST_SECRET_FILE))
    assert described.returncode == 0, described.stderr
    runner = {f["name"]: f for f in json.loads(described.stdout)["federates"]}
    assert {name: f["host"] for name, f in runner.items()} == {
        "broker": "127.0.0.2", "grid": "127.0.0.1", "ledger": "127.0.0.2", "der": "127.0.0.3"}
    run_dir = only_run_dir(runs, "hosts")
    port = _broker_port(run_dir)
    logs = tmp_path / "logs"
    logs.mkdir()
    procs = [subprocess.Popen(shlex.split(runner["broker"]["exec"]), stdout=(logs / "broker.log").open("w"),
                              stderr=subprocess.STDOUT)]
    moved = {"grid": [], "ledger": [], "der": ["--interface", "127.0.0.5"]}
    for name, extra in moved.items():
        procs.append(subprocess.Popen(
            [sys.executable, "-m", "gridledger.cli", "federate", name, str(run_dir), "--broker", f"127.0.0.2:{port}",
             "--secret-file", str(TEST_SECRET_FILE), *extra], cwd=ROOT,
            stdout=(logs / f"{name}.log").open("w"), stderr=subprocess.STDOUT))
    seen = _watch(procs)
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [(f, f.read_text()[-2000:]) for f in logs.iterdir()]
    assert _in_block(seen, port) == {"127.0.0.1", "127.0.0.2", "127.0.0.5"}
    assert "127.0.0.5" in json.loads((run_dir / "helics" / "der.json").read_text())["core_init_string"]
    assert {r["state"] for r in read_progress(run_dir).values()} == {"done"}
    _same_run(single_host, run_dir)


@pytest.mark.slow
def test_several_studies_launched_at_the_same_moment_all_finish_on_ports_of_their_own(tmp_path):
    short = {**HALF_HOUR, "duration_s": 900, "prosumers": {**HALF_HOUR["prosumers"], "count": 8}}
    procs = {}
    for i in range(3):
        path = tmp_path / f"s{i}.yaml"
        path.write_text(yaml.safe_dump({**short, "name": f"at-once-{i}"}))
        procs[i] = subprocess.Popen([sys.executable, "-m", "gridledger.cli", "run", str(path), "--runs",
                                     str(tmp_path / "runs")], cwd=ROOT, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, env=with_secret())
    outputs = {i: proc.communicate(timeout=300)[0] for i, proc in procs.items()}
    assert {i: proc.returncode for i, proc in procs.items()} == {0: 0, 1: 0, 2: 0}, outputs
    ports = {_broker_port(only_run_dir(tmp_path / "runs", f"at-once-{i}")) for i in procs}
    assert len(ports) == 3


def test_run_refuses_an_address_of_another_machine_before_starting_anything(tmp_path, capsys):
    study = _study(tmp_path, {"broker_address": "192.0.2.1"})
    assert main(["run", str(study), "--runs", str(tmp_path / "runs")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert f"{study}: helics.broker_address = '192.0.2.1' is not an address of this machine" in err
    assert "gridledger federate" in err
    assert not (tmp_path / "runs").exists()


@pytest.fixture(scope="module")
def prepared(tmp_path_factory) -> Path:
    """A run directory prepared by `gridledger runner` (nothing started)."""
    runs = tmp_path_factory.mktemp("prepared")
    done = gridledger("runner", str(_study(runs)), "--runs", str(runs), "--secret-file", str(TEST_SECRET_FILE))
    assert done.returncode == 0, done.stderr
    return only_run_dir(runs, "hosts")


SECRET = ["--secret-file", str(TEST_SECRET_FILE)]


@pytest.mark.parametrize("args, message", [
    (["dso", *SECRET], "federate 'dso' does not run in"),
    (["der", "--broker", "10.0.0.5:99", *SECRET], "--broker '10.0.0.5:99': expected ADDRESS or ADDRESS:PORT"),
    (["der", "--broker", "bad host", *SECRET], "--broker 'bad host': expected ADDRESS or ADDRESS:PORT"),
    (["der", "--interface", "host_1", *SECRET], "--interface 'host_1': expected an IPv4 address or host name"),
    (["der", "--broker", "127.0.0.2"], "federate: give --secret-file PATH or set GRIDLEDGER_RUN_SECRET"),
])
def test_federate_command_refuses_bad_input_with_exit_2_and_changes_nothing(prepared, args, message, monkeypatch,
                                                                            capsys):
    before = (prepared / "helics" / "der.json").read_text()
    monkeypatch.delenv(RUN_SECRET_ENV, raising=False)
    assert main(["federate", args[0], str(prepared), *args[1:]]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert (prepared / "helics" / "der.json").read_text() == before
