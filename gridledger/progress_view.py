"""How far a run has come: simulated time per federate, the share done, wall time spent and left.

On a terminal, one rich bar per federate with its simulated clock, state,
percentage, elapsed and estimated remaining wall time; elsewhere (CI logs,
pipes) a plain line at every tenth of the study, which a long study needs
as much as a short one: ``progress: 30 % (der day 110 07:15, ...), elapsed
0:12:03, about 0:28:07 left``.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from gridledger.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE


def clock(seconds: float, days: bool = False) -> str:
    """Simulated study time as ``HH:MM``, or ``day N HH:MM`` (day 1 first) when `days`."""
    seconds = max(0, int(seconds))
    day, rest = divmod(seconds, SECONDS_PER_DAY) if days else (0, seconds)
    hhmm = f"{rest // SECONDS_PER_HOUR:02d}:{rest % SECONDS_PER_HOUR // SECONDS_PER_MINUTE:02d}"
    return f"day {day + 1} {hhmm}" if days else hhmm


def wall(seconds: float) -> str:
    """A wall-clock span as ``H:MM:SS``."""
    seconds = max(0, round(seconds))
    return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def remaining_s(elapsed_s: float, done: float) -> float | None:
    """Wall time left if the rest goes as fast as what is done (`done` a share in (0, 1]); None before any. [s]"""
    return elapsed_s * (1.0 - done) / done if done > 0 else None


class ProgressView:
    """Simulated time reached per federate; called with every poll's progress records (`launcher.read_progress`)."""

    def __init__(self, stop_s: float, federates: Iterable[str], console: Console):
        self.stop_s = stop_s
        self.days = stop_s > SECONDS_PER_DAY
        self.console = console
        self.started = time.monotonic()
        self.bars = Progress(TextColumn("{task.fields[name]:>8}"), BarColumn(), TaskProgressColumn(),
                             TextColumn("{task.fields[clock]} {task.fields[state]}"), TimeElapsedColumn(),
                             TimeRemainingColumn(), console=console, disable=not console.is_terminal)
        start = clock(0, self.days)
        self.tasks = {n: self.bars.add_task(n, total=stop_s, name=n, clock=start, state="starting") for n in federates}
        self.reported_decile = -1

    def __call__(self, records: dict[str, dict]) -> None:
        for name, record in records.items():
            if name in self.tasks:
                self.bars.update(self.tasks[name], completed=record["time_s"],
                                 clock=clock(record["time_s"], self.days), state=record["state"])
        if not self.console.is_terminal and len(records) == len(self.tasks):
            self._line(records)

    def _line(self, records: dict[str, dict]) -> None:
        """A plain line when the slowest federate passes another tenth of the study."""
        done = min(1.0, min(r["time_s"] for r in records.values()) / self.stop_s)
        decile = int(10 * done)
        if decile <= self.reported_decile:
            return
        self.reported_decile = decile
        elapsed = time.monotonic() - self.started
        left = remaining_s(elapsed, done)
        clocks = ", ".join(f"{n} {clock(r['time_s'], self.days)}" for n, r in sorted(records.items()))
        self.console.print(f"progress: {100 * done:.0f} % ({clocks}), elapsed {wall(elapsed)}"
                           + (f", about {wall(left)} left" if left is not None and done < 1 else ""), soft_wrap=True)
