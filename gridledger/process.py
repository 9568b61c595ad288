"""What the launcher and every federate process agree on: exit codes, environment, progress files.

The launcher starts one process per federate; each writes a one-line
progress record per grant to ``progress/<federate>.json`` in the run
directory (time reached, whether it is computing or waiting) and exits
with one of the codes below, so the launcher can show progress, name a
federate that stalls, and tell the federate that failed first from those
that stopped because of it.
"""

from __future__ import annotations

import resource
from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED_BY_PEER = 3
LAUNCHED_AT_ENV = "GRIDLEDGER_LAUNCHED_AT"
"""Environment variable holding the launch time (Unix seconds), for the start-up figure."""
PROGRESS_DIR = "progress"
RUN_FILE = "run.json"
"""How a run went (`gridledger.execute.RunRecord`), written by the launching process."""
STATUS_FILE = Path("/proc/self/status")
"""Linux's per-process status, whose ``VmHWM`` line is the process's own peak resident set."""


def progress_path(run_dir: Path, federate: str) -> Path:
    """Where `federate` writes its progress record."""
    return Path(run_dir) / PROGRESS_DIR / f"{federate}.json"


RSS_SAMPLES = 100
"""How many times over a run each federate samples its resident set (`rss_mib`), evenly in simulated time."""


def rss_mib(status_file: Path = STATUS_FILE) -> float:
    """Resident set size of this process now (``VmRSS`` of `status_file`); NaN where the file does not exist
    (not Linux). [MiB]"""
    try:
        lines = status_file.read_text().splitlines()
    except FileNotFoundError:
        return float("nan")
    return next(int(line.split()[1]) for line in lines if line.startswith("VmRSS:")) / 1024


def peak_rss_mib(status_file: Path = STATUS_FILE) -> float:
    """Peak resident set size of this process since it was started (exec). [MiB]

    Read from ``VmHWM`` of `status_file`. ``getrusage(RUSAGE_SELF).ru_maxrss``
    is not used where ``VmHWM`` exists: Linux carries the spawning process's
    resident set across ``fork``/``exec`` into it, so every federate started
    by a launcher holding a large feeder would report at least the
    launcher's size. Without the file (not Linux), ``ru_maxrss`` in KiB.
    """
    try:
        lines = status_file.read_text().splitlines()
    except FileNotFoundError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kib = next(int(line.split()[1]) for line in lines if line.startswith("VmHWM:"))
    return kib / 1024
