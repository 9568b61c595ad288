"""Broker ports: a whole block free on every address the run binds, outside the kernel's ephemeral range, reserved host-wide until the run ends; federates start once the broker listens."""

from __future__ import annotations

import socket
import subprocess
import sys
from pathlib import Path

import pytest

from gridledger import launcher
from gridledger.interfaces import federate_names
from gridledger.study import load_study

ROOT = Path(__file__).resolve().parents[1]


def test_block_is_aligned_free_and_below_the_ephemeral_range():
    base = _picked()
    first, end = launcher.PORT_RANGE
    assert first <= base and base + launcher.PORT_BLOCK <= end
    assert (base - first) % launcher.PORT_BLOCK == 0
    ephemeral_low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    assert base + launcher.PORT_BLOCK <= ephemeral_low
    for port in range(base, base + launcher.PORT_BLOCK):
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))


def test_block_holds_the_broker_and_every_federate_core():
    """HELICS: broker port and port + 1, then two per ZMQ core from broker port + 10 (5 x the count of 2)."""
    study = load_study(ROOT / "studies" / "baran-wu-p2p.yaml")
    assert 10 + 2 * len(federate_names(study)) <= launcher.PORT_BLOCK


def _picked(**kwargs) -> int:
    base = launcher.free_port(**kwargs)
    launcher.release_port(base)
    return base


def _two_free_blocks(monkeypatch) -> int:
    """The first of two adjacent free blocks, both held while they are looked for.

    Other runs (the suite's other workers among them) hold blocks of their own, so
    a free block's neighbour may be taken; try another until both are free.
    """
    whole = launcher.PORT_RANGE
    for _ in range(100):
        monkeypatch.setattr(launcher, "PORT_RANGE", whole)
        first = launcher.free_port()
        monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + 2 * launcher.PORT_BLOCK))
        try:
            second = launcher.free_port() if first + 2 * launcher.PORT_BLOCK <= whole[1] else None
        except OSError:
            second = None
        launcher.release_port(first)
        if second is not None:
            launcher.release_port(second)
            return first
    raise AssertionError("no two adjacent free port blocks on this host")


def test_a_block_with_one_taken_port_is_passed_over(monkeypatch):
    first = _two_free_blocks(monkeypatch)
    monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + 2 * launcher.PORT_BLOCK))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 13))
        picks = {_picked() for _ in range(20)}
    assert picks == {first + launcher.PORT_BLOCK}


def test_a_port_taken_on_another_address_of_the_run_is_seen(monkeypatch):
    first = _two_free_blocks(monkeypatch)
    monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + 2 * launcher.PORT_BLOCK))
    with socket.socket() as taken:
        taken.bind(("127.0.0.2", first + 20))
        assert {_picked() for _ in range(20)} == {first, first + launcher.PORT_BLOCK}
        assert {_picked(addresses=("127.0.0.1", "127.0.0.2")) for _ in range(20)} == {first + launcher.PORT_BLOCK}


def test_no_free_block_is_a_clear_error(monkeypatch):
    first = _picked()
    monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + launcher.PORT_BLOCK))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + launcher.PORT_BLOCK - 1))
        with pytest.raises(OSError, match=f"no block of {launcher.PORT_BLOCK} free ports on 127.0.0.1"):
            launcher.free_port()


HOLDER = """
import sys, time
from gridledger import launcher
launcher.PORT_RANGE = ({first}, {first} + launcher.PORT_BLOCK)
print(launcher.free_port(), flush=True)
sys.stdin.readline()
"""


def test_a_block_another_process_reserved_is_not_handed_out_until_it_lets_go(monkeypatch):
    """Two runs started at the same moment: the second cannot take the first's block before its broker binds it."""
    first = _picked()
    holder = subprocess.Popen([sys.executable, "-c", HOLDER.format(first=first)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert int(holder.stdout.readline()) == first
        monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + launcher.PORT_BLOCK))
        with pytest.raises(OSError, match="no block of"):
            launcher.free_port()
    finally:
        holder.communicate("\n", timeout=30)
    assert launcher.free_port() == first
    launcher.release_port(first)


def test_a_process_does_not_hand_out_its_own_block_twice(monkeypatch):
    first = launcher.free_port()
    try:
        monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + launcher.PORT_BLOCK))
        with pytest.raises(OSError, match="no block of"):
            launcher.free_port()
    finally:
        launcher.release_port(first)
    assert launcher.free_port() == first
    launcher.release_port(first)


def test_federates_start_once_the_broker_listens(tmp_path):
    port = launcher.free_port()
    broker = subprocess.Popen([launcher.helics_program("helics_broker"), "-f1", "--coretype=zmq",
                               "--local_interface=tcp://127.0.0.2", f"--port={port}", "--loglevel=warning"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        launcher.wait_for_broker("127.0.0.2", port, broker)
        with socket.socket() as probe:
            assert probe.connect_ex(("127.0.0.2", port)) == 0
    finally:
        broker.kill()
        broker.wait()
        launcher.release_port(port)


def test_a_broker_that_exits_or_never_listens_fails_the_run_with_the_reason():
    port = _picked()
    gone = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(RuntimeError, match=f"helics_broker exited with code 3 before listening on 127.0.0.1:{port}"):
        launcher.wait_for_broker("127.0.0.1", port, gone)
    mute = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(RuntimeError, match=f"helics_broker is not listening on 127.0.0.1:{port} after 0.3 s"):
            launcher.wait_for_broker("127.0.0.1", port, mute, timeout_s=0.3)
    finally:
        mute.kill()
        mute.wait()
