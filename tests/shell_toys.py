"""Two toy federates on the real HELICS shell, for testing failure propagation.

``python -m tests.shell_toys NAME RUN_DIR [raise]``: federate NAME steps
through t = 0..STEPS-1 (offset 0.5 for "b"); with ``raise`` it raises at t = 5.
Far more steps follow the failure than HELICS needs to deliver the error: a
failed federate's core leaves at once, so a peer with only a few steps left
could be granted them all (and finish with exit 0) before the error reaches it.
"""

import sys
from pathlib import Path

from gridledger.federates.shell import joined, run_federate

OFFSET = {"a": 0.0, "b": 0.5}
STEPS = 500


def body_for(name: str, crash: bool):
    def body(run_dir: Path) -> None:
        with joined(run_dir, name, float(STEPS)) as fed:
            fed.enter()
            for t in range(STEPS):
                fed.advance(t + OFFSET[name])
                if crash and t == 5:
                    raise ValueError("toy failure at t=5")
    return body


if __name__ == "__main__":
    name, run_dir, *flags = sys.argv[1:]
    run_federate(name, body_for(name, "raise" in flags), [run_dir])
