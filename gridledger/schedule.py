"""When each federate acts, in seconds since study start.

For market interval k, starting at s_k = k * market_interval_s:

    s_k          DER:    sign and send orders for interval k+1; publish setpoints
    s_k + 0.5    grid:   power flow of the step at s_k; send meter readings of k-1
    s_k + 1      ledger: mine pending transactions (orders k+1, readings k-1)
    s_{k+1} - g  ledger: gate closure of k+1 -> clear k+1, send results to agents

with g = market.gate_closure_s. Power-flow steps between interval starts
follow the same half-second offset: DER at j * step, grid at j * step + 0.5.
The grid runs one extra time at the end of the study to send the readings of
the last interval, and the ledger one more to mine them. Fixed offsets make
the order of events explicit and the same on every run (no iteration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridledger.study import Study

GRID_OFFSET_S = 0.5
LEDGER_OFFSET_S = 1.0


def der_times(study: Study) -> list[float]:
    """Times at which the DER federate publishes setpoints (every power-flow step). [s]"""
    return [float(j * study.power_flow_step_s) for j in range(study.n_steps)]


def grid_times(study: Study) -> list[float]:
    """Times at which the grid federate solves a step, plus one to meter the last interval. [s]"""
    return [j * study.power_flow_step_s + GRID_OFFSET_S for j in range(study.n_steps + 1)]


@dataclass(frozen=True)
class LedgerAction:
    """One thing the ledger does at one time: mine what is pending, or clear an interval."""

    time_s: float
    kind: Literal["mine", "clear"]
    interval: int | None = None


def ledger_actions(study: Study) -> list[LedgerAction]:
    """The ledger's actions in time order."""
    actions = []
    for k in range(study.n_intervals):
        start = k * study.market_interval_s
        actions.append(LedgerAction(start + LEDGER_OFFSET_S, "mine"))
        if k + 1 < study.n_intervals:
            gate = start + study.market_interval_s - study.market.gate_closure_s
            actions.append(LedgerAction(float(gate), "clear", k + 1))
    actions.append(LedgerAction(study.duration_s + LEDGER_OFFSET_S, "mine"))
    return actions


def stop_time_s(study: Study) -> float:
    """The last time any federate acts. [s]"""
    return study.duration_s + LEDGER_OFFSET_S
