"""The HELICS shell: a federate that raises stops its peers through HELICS; both keep their records."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from gridledger.process import EXIT_FAILED, EXIT_STOPPED_BY_PEER, RSS_SAMPLES
from gridledger.launcher import free_port, helics_program
from tests.shell_toys import OFFSET, STEPS

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.e2e


def _config(name: str, port: int) -> dict:
    """Toy federate configs; b subscribes to a, so b's time waits on a's as in a real federation
    (without it b could finish before a's error reaches it)."""
    config = {"name": name, "core_type": "zmq", "uninterruptible": True, "terminate_on_error": True,
              "core_init_string": f"--federates=1 --broker_address=tcp://127.0.0.1:{port}",
              "log_level": "warning"}
    if name == "a":
        config["publications"] = [{"key": "toy/a/x", "type": "double", "unit": "1", "global": True}]
    else:
        config["subscriptions"] = [{"key": "toy/a/x", "type": "double", "unit": "1", "default": 0.0}]
    return config


def _federation(tmp_path: Path, crash: str | None) -> dict[str, subprocess.CompletedProcess]:
    port = free_port()
    (tmp_path / "helics").mkdir()
    for name in ("a", "b"):
        (tmp_path / "helics" / f"{name}.json").write_text(json.dumps(_config(name, port)))
    broker = subprocess.Popen([helics_program("helics_broker"), "-f2", "--coretype=zmq",
                               f"--port={port}", "--loglevel=error"])
    procs = {name: subprocess.Popen([sys.executable, "-m", "tests.shell_toys", name, str(tmp_path),
                                     *(["raise"] if crash == name else [])],
                                    cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for name in ("a", "b")}
    done = {name: subprocess.CompletedProcess(p.args, p.wait(timeout=60), p.stdout.read()) for name, p in procs.items()}
    broker.wait(timeout=30)
    return done


def _progress(tmp_path: Path, name: str) -> dict:
    return json.loads((tmp_path / "progress" / f"{name}.json").read_text())


def test_clean_federation_exits_zero(tmp_path):
    done = _federation(tmp_path, crash=None)
    assert [done[n].returncode for n in ("a", "b")] == [0, 0]
    assert _progress(tmp_path, "a")["state"] == "done" and _progress(tmp_path, "b")["time_s"] == STEPS - 1 + OFFSET["b"]
    samples = _progress(tmp_path, "a")["timing"]["rss_mib"]                 # (simulated time, resident set)
    times = [t for t, _ in samples]
    assert 1 <= len(samples) <= RSS_SAMPLES + 1 and times == sorted(times)
    assert all(0 < mib <= _progress(tmp_path, "a")["timing"]["peak_rss_mib"] for _, mib in samples)


def test_raising_federate_fails_and_its_peer_is_stopped_by_helics(tmp_path):
    done = _federation(tmp_path, crash="a")
    assert done["a"].returncode == EXIT_FAILED
    assert "ValueError: toy failure at t=5" in done["a"].stdout
    assert done["b"].returncode == EXIT_STOPPED_BY_PEER
    assert "toy failure at t=5" in done["b"].stdout
    a, b = _progress(tmp_path, "a"), _progress(tmp_path, "b")
    assert a["state"] == "failed" and "toy failure" in a["error"]
    assert b["state"] == "stopped" and b["time_s"] < STEPS - 1 + OFFSET["b"]
    assert b["timing"]["waiting_s"] >= 0
