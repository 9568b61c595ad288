"""The closed loop against the physics alone: a study's wall time over a plain pandapower loop's.

Issue 12's yardstick for the whole co-simulation: a plain script that a
planner would write without gridledger, in its own process, start-up
included. It imports pandapower, builds the study's feeder with its
prosumers' PV and batteries (`build_scenario`, as the grid federate does),
and calls a default ``pandapower.runpp`` once per power-flow step over the
injections of `bench.powerflow.injection_sequence` (every load and PV at its
profile, batteries idle). Its wall time runs from spawning the process to
its exit. The study's wall time (`bench.study.run_study`: launch of broker
and federates through results.nc and kpis.json) divided by it says what the
chain, the market, the DER agents and HELICS cost on top of the physics.
"""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from bench import verdict

if TYPE_CHECKING:
    from bench.study import StudyResult

AIM_RATIO = 1.5
"""Issue 12's aim: the closed loop in no more than this multiple of the plain loop's wall time. [-]"""


@dataclass(frozen=True)
class PlainLoopResult:
    """Wall time of the plain pandapower loop over a study's power-flow steps.

    Attributes
    ----------
    steps : int
        Power-flow steps run (``runpp`` calls).
    wall_s : float
        Spawn of the process to its exit: imports, feeder and profiles, every step. [s]
    """

    steps: int
    wall_s: float


def plain_loop(study_path: Path) -> PlainLoopResult:
    """Run `main` in a fresh Python process on ``study_path`` and time it from spawn to exit.

    Raises
    ------
    RuntimeError
        If the process fails; its standard error is in the message.
    """
    started = time.perf_counter()
    child = subprocess.run([sys.executable, "-m", "bench.plain_loop", str(study_path)],
                           capture_output=True, text=True)
    wall_s = time.perf_counter() - started
    if child.returncode:
        raise RuntimeError(f"plain pandapower loop on {study_path} failed: {child.stderr.strip()[-2000:]}")
    return PlainLoopResult(steps=int(child.stdout.split()[-1]), wall_s=wall_s)


def plain_loop_section(loop: PlainLoopResult, study: StudyResult, number: int = 9) -> list[str]:
    """Rows of the section comparing the closed loop with the plain loop, and the study's largest part."""
    ratio = study.total_s / loop.wall_s
    parts = {"start-up": study.startup_s, "HELICS / waiting": study.rest_s, "results collection": study.collect_s,
             **{f"{name} compute": seconds for name, seconds in study.compute_s.items()}}
    largest = max(parts, key=parts.get)
    return [
        f"{number}. Closed loop vs the physics alone: {study.study} as run in section 1 vs a plain loop of default"
        f" pandapower runpp over its {loop.steps} steps in its own process, start-up included"
        f"   (aim: study/plain <= {AIM_RATIO:g})",
        f"   {'study [s]':>12}{'plain loop [s]':>16}{'study/plain':>14}",
        f"   {study.total_s:>12.2f}{loop.wall_s:>16.2f}{ratio:>13.2f}x  {verdict(ratio <= AIM_RATIO)}",
        f"   largest part of the study: {largest}, {parts[largest]:.2f} s"
        f" ({100 * parts[largest] / study.total_s:.1f} % of its wall time)",
    ]


def main(study_path: str) -> int:
    """The plain loop itself: feeder, then one default ``runpp`` per step; prints the number of steps.

    Imports here, not at the top of the module, so that the process loads
    what the plain script needs and no part of gridledger's launcher.
    """
    from bench.powerflow import injection_sequence, runpp_with
    from gridledger.scenario import build_scenario
    from gridledger.study import load_study

    logging.getLogger("pandapower").setLevel(logging.ERROR)
    sc = build_scenario(load_study(Path(study_path)), with_devices=True)
    for inj in injection_sequence(sc, sc.study.n_steps):
        runpp_with(sc.net, inj)
    print(sc.study.n_steps)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
