"""Start-up and memory of each federate process against a bare ``import pandapower`` process.

Every federate module is run alone in a fresh interpreter as the launcher
starts it (``python -m gridledger.federates.<name>``, through `runpy`
without a run directory, so it stops at its usage message after its
imports; run as ``__main__`` it keeps matplotlib and dask out,
`gridledger.lean`), and timed from process start to exit; its peak resident memory
is the child's own ``VmHWM`` (`gridledger.process.peak_rss_mib`, printed
as it exits: the kernel's ``ru_maxrss`` of a child counts the resident set
of the benchmark process it was forked from). The
baseline is the same measurement of ``python -c "import pandapower"`` in the
same run: a process that does nothing but load the feeder library every
federate needs. Medians of a few repeats; ratios against the baseline are
what carries over between machines.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass

from bench import verdict
from bench.study import StudyResult

BASELINE_MODULE = "pandapower"
FEDERATE_MODULES = ("der", "grid", "ledger", "operator")
MEMORY_AIM_MIB = 600.0
STARTUP_AIM_S = 2.0


@dataclass(frozen=True)
class ProcessCost:
    """Wall time and peak memory of a process that only imports one module.

    Attributes
    ----------
    module : str
        The module imported.
    wall_s : float
        Median, process start to exit. [s]
    peak_rss_mib : float
        Median peak resident memory. [MiB]
    repeats : int
        Processes measured.
    """

    module: str
    wall_s: float
    peak_rss_mib: float
    repeats: int


@dataclass(frozen=True)
class StartupResult:
    """Each federate module's import cost, and the baseline's.

    Attributes
    ----------
    baseline : ProcessCost
        ``import pandapower`` alone.
    federates : dict of str to ProcessCost
        ``import gridledger.federates.<name>`` alone, by federate name.
    """

    baseline: ProcessCost
    federates: dict[str, ProcessCost]


def import_cost(module: str, repeats: int, as_main: bool = False) -> ProcessCost:
    """Median wall time and peak RSS of `repeats` fresh interpreters that import `module` and exit.

    With `as_main`, the module runs as ``__main__`` (``python -m``) with no
    arguments instead of being imported.
    """
    walls, peaks = [], []
    load = (f"import runpy\ntry:\n    runpy.run_module({module!r}, run_name='__main__', alter_sys=True)\n"
            "except SystemExit:\n    pass\n") if as_main else f"import {module}\n"
    code = load + "from gridledger.process import peak_rss_mib; print(peak_rss_mib())"
    for _ in range(repeats):
        started = time.perf_counter()
        child = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        walls.append(time.perf_counter() - started)
        if child.returncode:
            raise RuntimeError(f"python -c 'import {module}' exited with {child.returncode}: {child.stderr[-500:]}")
        peaks.append(float(child.stdout.splitlines()[-1]))
    return ProcessCost(module, statistics.median(walls), statistics.median(peaks), repeats)


def startup_costs(names: Sequence[str] = FEDERATE_MODULES, repeats: int = 3) -> StartupResult:
    """Import cost of the baseline and of each federate module in `names`."""
    return StartupResult(
        baseline=import_cost(BASELINE_MODULE, repeats),
        federates={name: import_cost(f"gridledger.federates.{name}", repeats, as_main=True) for name in names},
    )


def startup_section(result: StartupResult, study: StudyResult, number: int = 7) -> list[str]:
    """Rows of the start-up and memory section: federate processes' imports against the baseline, then the study's."""
    base = result.baseline
    lines = [
        f"{number}. Start-up and memory per federate process, median of {base.repeats} fresh interpreters"
        f"   (aim: summed peak memory <= {MEMORY_AIM_MIB:g} MiB, start-up <= {STARTUP_AIM_S:g} s)",
        f"   baseline: python -c 'import {base.module}': {base.wall_s:.2f} s, {base.peak_rss_mib:.0f} MiB",
        f"   {'python -m (imports only)':<28}{'wall [s]':>10}{'/baseline':>11}{'peak RSS [MiB]':>16}{'/baseline':>11}",
    ]
    for name, cost in result.federates.items():
        lines.append(f"   {'gridledger.federates.' + name:<28}{cost.wall_s:>10.2f}{cost.wall_s / base.wall_s:>10.2f}x"
                     f"{cost.peak_rss_mib:>16.0f}{cost.peak_rss_mib / base.peak_rss_mib:>10.2f}x")
    lines.append(f"   In the reference study {study.study} (launch to entering executing mode; peak RSS of the whole"
                 " process life):")
    lines.append(f"   {'federate':<28}{'start-up [s]':>14}{'peak RSS [MiB]':>16}{'RSS/baseline':>14}")
    for name, startup_s in study.federate_startup_s.items():
        rss = study.peak_rss_mib[name]
        lines.append(f"   {name:<28}{startup_s:>14.2f}{rss:>16.0f}{rss / base.peak_rss_mib:>13.2f}x")
    total = study.peak_rss_sum_mib
    slowest = max(study.federate_startup_s.values())
    lines += [
        f"   summed peak RSS {total:.0f} MiB = {total / base.peak_rss_mib:.2f}x baseline;"
        f" / aim {MEMORY_AIM_MIB:g} MiB = {total / MEMORY_AIM_MIB:.2f}  ({verdict(total <= MEMORY_AIM_MIB)})",
        f"   slowest start-up {slowest:.2f} s = {slowest / base.wall_s:.2f}x baseline;"
        f" / aim {STARTUP_AIM_S:g} s = {slowest / STARTUP_AIM_S:.2f}  ({verdict(slowest <= STARTUP_AIM_S)})",
    ]
    return lines

