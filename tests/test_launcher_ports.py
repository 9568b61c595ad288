"""Broker ports: a whole block free, outside the kernel's ephemeral range, never one already taken."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from gridledger import launcher
from gridledger.interfaces import federate_names
from gridledger.study import load_study

ROOT = Path(__file__).resolve().parents[1]


def test_block_is_aligned_free_and_below_the_ephemeral_range():
    base = launcher.free_port()
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


def test_a_block_with_one_taken_port_is_passed_over(monkeypatch):
    first = launcher.free_port()
    monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + 2 * launcher.PORT_BLOCK))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + 13))
        picks = {launcher.free_port() for _ in range(20)}
    assert picks <= {first + launcher.PORT_BLOCK}


def test_no_free_block_is_a_clear_error(monkeypatch):
    first = launcher.free_port()
    monkeypatch.setattr(launcher, "PORT_RANGE", (first, first + launcher.PORT_BLOCK))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", first + launcher.PORT_BLOCK - 1))
        with pytest.raises(OSError, match=f"no block of {launcher.PORT_BLOCK} free loopback ports"):
            launcher.free_port()
