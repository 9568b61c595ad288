"""The operator's plan for an announced import cap: the intervals it holds, what to buy, activate and call.

The notice is the study's ``events.import_caps``. The DSO forecasts each
capped interval's substation import from the expected profiles, batteries
idle (those that hold reserve keep their charge for it), and buys reserve
for the forecast excess over the cap plus ``ancillary.margin``
(:func:`shortfall_w`). One interval ahead of a capped interval it corrects
the forecast by the error it measured at the last uncapped interval start
(:class:`Bias`), activates the reserve awarded up to that need
(:func:`activation_w`) and, for the first interval of a cap window whose
need the reserve awarded cannot cover, calls interruptible loads for the
rest of the window (:func:`shed_call_w`). Pure functions, no chain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gridledger.study import Study
from gridledger.units import W_PER_MW


def capped_intervals(study: Study) -> dict[int, float]:
    """Each market interval with a capped power-flow step, and the lowest cap over its steps. [MW]"""
    caps: dict[int, float] = {}
    for step in range(study.n_steps):
        cap_mw = study.events.cap_mw_at(step * study.power_flow_step_s)
        if cap_mw is not None:
            k = step // study.steps_per_interval
            caps[k] = min(cap_mw, caps.get(k, math.inf))
    return caps


def cap_windows(study: Study) -> list[tuple[int, int]]:
    """The runs of consecutive capped intervals, as (first, last + 1) interval indices, in time order."""
    runs: list[tuple[int, int]] = []
    for k in sorted(capped_intervals(study)):
        if runs and runs[-1][1] == k:
            runs[-1] = (runs[-1][0], k + 1)
        else:
            runs.append((k, k + 1))
    return runs


def shortfall_w(import_mw: np.ndarray, cap_mw: float, margin: float) -> int:
    """Power to buy for an interval: the highest forecast import over the cap, times 1 + `margin`, rounded up. [W]

    Parameters
    ----------
    import_mw : ndarray, shape (steps,)
        Forecast substation import of each of the interval's steps. [MW]
    cap_mw : float
        The interval's import cap. [MW]
    margin : float
        Share bought above the forecast excess, for forecast error. [-]
    """
    excess_mw = max(0.0, float(np.max(import_mw)) - cap_mw)
    return math.ceil(excess_mw * (1.0 + margin) * W_PER_MW)


def activation_w(need_w: int, awarded_w: int) -> int:
    """Reserve to activate: the need, at most what was awarded. [W]"""
    return max(0, min(need_w, awarded_w))


def shed_call_w(needs_w: list[int], awarded_w: list[int]) -> int:
    """Interruptible load to call for the rest of a cap window: the largest need the reserve leaves uncovered. [W]

    `needs_w` and `awarded_w` hold the window's remaining intervals, in order.
    """
    return max([0, *(need - awarded for need, awarded in zip(needs_w, awarded_w, strict=True))])


@dataclass
class Bias:
    """The forecast's error at the last interval start without a cap: measured minus forecast import. [MW]

    A capped start is skipped: its import is held at the cap by whatever was
    shed, so it shows the cap, not the demand.
    """

    mw: float = 0.0

    def measured(self, import_mw: float, forecast_mw: float, capped: bool) -> float:
        """Update from an interval start's measurement (kept as it was when `capped` or not finite). [MW]"""
        if not capped and math.isfinite(import_mw) and math.isfinite(forecast_mw):
            self.mw = import_mw - forecast_mw
        return self.mw
