"""A federate that dies or stalls, or a stop signal to the run, ends it cleanly: exit 1, cause named, results kept.

These start the real CLI on the short study and then harm one federate
process from outside, as an out-of-memory kill or a hung solver would,
or stop the whole run as a user (Ctrl-C) or a scheduler (SIGTERM) would.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import xarray as xr
import yaml

from gridledger.interfaces import broker_port_of
from gridledger.launcher import read_progress
from gridledger.run_secret import RUN_SECRET_ENV
from gridledger.study import load_study
from tests.e2e_helpers import (SHORT_STUDY, TEST_SECRET, TEST_SECRET_FILE, gridledger, only_run_dir, start_run,
                               wait_for_progress)

pytestmark = pytest.mark.e2e


def _harm(runs: Path, federate: str, at_s: float, sig: int, study: Path = SHORT_STUDY) -> tuple[int, str, Path]:
    """Run a study, send `sig` to one federate once it reaches `at_s`; (exit code, output, run dir)."""
    proc = start_run(study, runs)
    record = wait_for_progress(runs, "baran-wu-short", federate, at_s)
    os.kill(record["pid"], sig)
    try:
        out, _ = proc.communicate(timeout=120)
    finally:
        if sig == signal.SIGSTOP and _alive(record["pid"]):
            os.kill(record["pid"], signal.SIGCONT)
    return proc.returncode, out.replace("\n", " "), only_run_dir(runs, "baran-wu-short")


def test_killed_federate_stops_run_with_exit_1_and_partial_results(tmp_path):
    code, out, run_dir = _harm(tmp_path / "runs", "grid", 3600, signal.SIGKILL)
    assert code == 1, out
    assert "run failed: federate grid: exited with code -9" in out
    assert "partial results and logs kept in" in out
    for name in ("broker", "grid", "ledger", "der"):
        assert (run_dir / "logs" / f"{name}.log").exists()
    for name in ("ledger", "der"):
        assert (run_dir / "parts" / f"{name}.nc").exists(), f"{name} kept nothing"
        assert read_progress(run_dir)[name]["state"] == "stopped"
    with xr.open_dataset(run_dir / "results.nc") as ds:
        assert ds.attrs["complete"] == 0
        assert 0 < int(ds.settled.sum()) < 8 * 32
    assert json.loads((run_dir / "kpis.json").read_text()) == {"complete": False}
    assert (run_dir / "chain" / "blocks.jsonl").exists()


def test_terminated_federate_keeps_its_own_results_and_is_named(tmp_path):
    code, out, run_dir = _harm(tmp_path / "runs", "ledger", 1800, signal.SIGTERM)
    assert code == 1, out
    assert f"run failed: federate ledger: exited with code {128 + signal.SIGTERM}" in out
    assert read_progress(run_dir)["ledger"]["state"] == "failed"
    assert {read_progress(run_dir)[n]["state"] for n in ("grid", "der")} == {"stopped"}
    assert (run_dir / "parts" / "ledger.nc").exists() and (run_dir / "chain" / "receipts.jsonl").exists()


def test_stalled_federate_is_named_and_stopped(tmp_path):
    study = tmp_path / "stall.yaml"
    config = yaml.safe_load(SHORT_STUDY.read_text())
    config["helics"] = {"stall_timeout_s": 8}
    study.write_text(yaml.safe_dump(config))
    code, out, run_dir = _harm(tmp_path / "runs", "der", 1800, signal.SIGSTOP, study)
    assert code == 1, out
    assert "no time grant for 8 s; stalled while computing: der" in out, out
    assert (run_dir / "parts" / "grid.nc").exists() and (run_dir / "parts" / "ledger.nc").exists()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def test_runner_json_runs_under_helics_cli_with_identical_kpis(short_run, tmp_path):
    """`gridledger runner` + `helics run --path` gives the same KPIs and chain as `gridledger run` (the session's)."""
    runs_b = tmp_path / "b"
    described = gridledger("runner", str(SHORT_STUDY), "--runs", str(runs_b), "--secret-file", str(TEST_SECRET_FILE))
    assert described.returncode == 0, described.stderr
    assert TEST_SECRET.hex() not in described.stdout.lower()
    runner = json.loads(described.stdout)
    assert [f["name"] for f in runner["federates"]] == ["broker", "grid", "ledger", "der"]
    (tmp_path / "runner.json").write_text(described.stdout)
    helics = Path(sys.executable).parent / "helics"
    # The federates find the secret through the file path in the runner JSON, not in helics' environment.
    env = {key: value for key, value in os.environ.items() if key != RUN_SECRET_ENV}
    done = subprocess.run([str(helics), "run", "--path", str(tmp_path / "runner.json")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    a, b = short_run.run_dir, only_run_dir(runs_b, "baran-wu-short")
    assert (a / "kpis.json").read_bytes() == (b / "kpis.json").read_bytes()
    for name in ("blocks.jsonl", "receipts.jsonl", "events.jsonl"):
        assert (a / "chain" / name).read_bytes() == (b / "chain" / name).read_bytes()


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _chain_is_consistent(chain: Path, killed: bool = False) -> list[dict]:
    """Blocks 0..N in order, every mined receipt in its block, every event from a receipt; the blocks.

    A `killed` writer may have left the receipts and events of block N+1 without the block.
    """
    blocks, receipts, events = (_jsonl(chain / f"{name}.jsonl") for name in ("blocks", "receipts", "events"))
    assert [b["number"] for b in blocks] == list(range(len(blocks)))
    mined = [(r["block_number"], r["tx_hash"]) for r in receipts if r["block_number"] is not None]
    in_blocks = [(b["number"], tx) for b in blocks for tx in b["transactions"]]
    assert mined[:len(in_blocks)] == in_blocks
    assert {n for n, _ in mined[len(in_blocks):]} <= ({len(blocks)} if killed else set())
    logs = [(r["block_number"], r["tx_hash"]) for r in receipts for _ in r["logs"]]
    emitted = [(e["block_number"], e["tx_hash"]) for e in events]
    in_blocks_logs = [log for log in logs if log[0] is not None and log[0] < len(blocks)]
    assert emitted == logs[:len(emitted)] and len(emitted) >= len(in_blocks_logs)
    assert emitted == logs or killed
    return blocks


def _processes_of(run_dir: Path) -> list[str]:
    """Command lines of live processes that belong to the run: its federates and its broker."""
    config = json.loads((run_dir / "helics" / "ledger.json").read_text())
    port = broker_port_of(config["core_init_string"])
    marks = (str(run_dir), f"--name=gridledger-{port}")
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(mark in text for mark in marks):
            found.append(text)
    return found


@pytest.mark.parametrize("sig, to_group", [(signal.SIGTERM, False), (signal.SIGINT, True)], ids=["sigterm", "ctrl-c"])
def test_stop_signal_to_the_run_keeps_every_part_and_the_chain_and_leaves_no_process(tmp_path, sig, to_group):
    """SIGTERM to `gridledger run`, or Ctrl-C (SIGINT to its process group), halfway through the short study."""
    runs = tmp_path / "runs"
    proc = start_run(SHORT_STUDY, runs)
    wait_for_progress(runs, "baran-wu-short", "ledger", 3600)
    if to_group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    out, _ = proc.communicate(timeout=120)
    run_dir = only_run_dir(runs, "baran-wu-short")
    name = signal.Signals(sig).name
    assert proc.returncode == 1, out
    assert f"run interrupted by {name}" in out and "partial results and logs kept in" in out, out
    record = json.loads((run_dir / "run.json").read_text())
    assert (record["exit_code"], record["ended"], record["failed"]) == (1, f"interrupted by {name}", None)
    progress = read_progress(run_dir)
    assert set(progress) == {"grid", "ledger", "der"}
    for federate, last in progress.items():
        assert (run_dir / "parts" / f"{federate}.nc").exists(), f"{federate} kept nothing"
        assert last["state"] in ("failed", "stopped") and 0 < last["time_s"] < last["stop_s"], last
        assert not _alive(last["pid"]), federate
    assert _processes_of(run_dir) == []
    with xr.open_dataset(run_dir / "results.nc") as ds:
        assert ds.attrs["complete"] == 0
    assert json.loads((run_dir / "kpis.json").read_text()) == {"complete": False}
    exported = [line for line in (run_dir / "logs" / "ledger.log").read_text().splitlines()
                if "chain exported up to block" in line]
    assert len(exported) == 1, exported
    blocks = _chain_is_consistent(run_dir / "chain")
    assert blocks[-1]["number"] == int(exported[0].rsplit(" ", 1)[1])
    # The ledger had been granted t >= 3600 s, so it had mined the blocks of the interval before.
    assert blocks[-1]["timestamp"] >= load_study(run_dir / "study.yaml").start_timestamp + 3600 - 900


def test_killed_ledger_keeps_the_blocks_it_mined(tmp_path):
    runs = tmp_path / "runs"
    proc = start_run(SHORT_STUDY, runs)
    record = wait_for_progress(runs, "baran-wu-short", "ledger", 3600)
    os.kill(record["pid"], signal.SIGKILL)
    out, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1 and "run failed: federate ledger: exited with code -9" in out, out
    run_dir = only_run_dir(runs, "baran-wu-short")
    blocks = _chain_is_consistent(run_dir / "chain", killed=True)
    # The ledger had been granted t >= 3600 s, so it had mined the blocks of the interval before.
    assert blocks[-1]["timestamp"] >= load_study(run_dir / "study.yaml").start_timestamp + 3600 - 900
    assert _processes_of(run_dir) == []
