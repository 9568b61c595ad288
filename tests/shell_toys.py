"""Two toy federates on the real HELICS shell, for testing failure propagation.

``python -m tests.shell_toys NAME RUN_DIR [raise]``: federate NAME steps
through t = 0..9 (offset 0.5 for "b"); with ``raise`` it raises at t = 5.
"""

import sys
from pathlib import Path

from gridledger.federates.shell import joined, run_federate

OFFSET = {"a": 0.0, "b": 0.5}


def body_for(name: str, crash: bool):
    def body(run_dir: Path) -> None:
        with joined(run_dir, name, 10.0) as fed:
            fed.enter()
            for t in range(10):
                fed.advance(t + OFFSET[name])
                if crash and t == 5:
                    raise ValueError("toy failure at t=5")
    return body


if __name__ == "__main__":
    name, run_dir, *flags = sys.argv[1:]
    run_federate(name, body_for(name, "raise" in flags), [run_dir])
