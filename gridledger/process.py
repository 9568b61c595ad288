"""What the launcher and every federate process agree on: exit codes, environment, progress files.

The launcher starts one process per federate; each writes a one-line
progress record per grant to ``progress/<federate>.json`` in the run
directory (time reached, whether it is computing or waiting) and exits
with one of the codes below, so the launcher can show progress, name a
federate that stalls, and tell the federate that failed first from those
that stopped because of it.
"""

from __future__ import annotations

from pathlib import Path

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_STOPPED_BY_PEER = 3
LAUNCHED_AT_ENV = "GRIDLEDGER_LAUNCHED_AT"
"""Environment variable holding the launch time (Unix seconds), for the start-up figure."""
PROGRESS_DIR = "progress"


def progress_path(run_dir: Path, federate: str) -> Path:
    """Where `federate` writes its progress record."""
    return Path(run_dir) / PROGRESS_DIR / f"{federate}.json"
