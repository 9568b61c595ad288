"""What the households owe the operator step by step: reserve held and delivered, load shed on call.

Pure Python and numpy, no HELICS: the DER agents hand the ledger's awards,
activations and calls (`gridledger.agents.reserve_desk`) to one
:class:`AncillaryDuties` and the devices (`gridledger.agents.devices`)
ask it, each step:

* :meth:`~AncillaryDuties.held_kwh`: the energy a battery keeps for its
  awards still to come, the awarded power over what is left of each
  awarded window after the step, as stored energy (divided by the
  discharge efficiency); the battery does not discharge below it for
  anything else;
* :meth:`~AncillaryDuties.export_target_kw`: on an activated step, the
  net export the battery holds the household at: its net export in the
  meter-before step of the activation (the step before it started, or
  before the activation it continues: the baseline the meter measures
  against, `gridledger.agents.reserve_metering`) plus the activated power;
* :meth:`~AncillaryDuties.shed_kw`: on a called step, the load an
  interruptible household switches off;
* with ``reserve.schedule_charging``, :meth:`~AncillaryDuties.charge_kw`:
  the charging power the coordination contract admitted a battery in the
  step's window, and :meth:`~AncillaryDuties.holding`: the batteries that
  keep their charge (do not discharge) until their first awarded window,
  so the state of charge they declare to the contract never falls.

Times are study seconds; a response covers the steps that start in
[from_s, to_s) (`gridledger.agents.reserve_metering.response_steps`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.agents.reserve_metering import baseline_step, response_steps
from gridledger.units import SECONDS_PER_HOUR, W_PER_KW


@dataclass(frozen=True)
class Response:
    """One household's awarded, activated or called power over a time span. [W], [s]"""

    agent: int
    p_w: int
    from_s: float
    to_s: float


class AncillaryDuties:
    """Every household's reserve awards, activations and load shed calls, indexed like the agents."""

    def __init__(self, n_agents: int, step_s: float, discharge_efficiency: float):
        self.n, self.step_s, self.eta = n_agents, step_s, discharge_efficiency
        self.awards: list[Response] = []
        self.activations: list[Response] = []
        self.calls: list[Response] = []
        self.scheduled: set[int] = set()
        self.admitted_w: dict[int, dict[int, int]] = {}

    def held_kwh(self, step: int) -> np.ndarray:
        """Stored energy each battery keeps after `step` for the rest of its awarded windows. [kWh]"""
        after_s = (step + 1) * self.step_s
        held = np.zeros(self.n)
        for a in self.awards:
            held[a.agent] += a.p_w / W_PER_KW * max(0.0, a.to_s - max(after_s, a.from_s)) / SECONDS_PER_HOUR
        return held / self.eta

    def export_target_kw(self, step: int, net_export_kw: np.ndarray) -> np.ndarray:
        """Net export each activated battery holds its household at in `step`, NaN where none is activated. [kW]

        `net_export_kw` is every household's net export per step so far
        (step, agent) [kW].
        """
        target = np.full(self.n, np.nan)
        for a in self.activations:
            steps = response_steps(a.from_s, a.to_s, self.step_s)
            if step in steps:
                earlier = [response_steps(b.from_s, b.to_s, self.step_s) for b in self.activations
                           if b.agent == a.agent and b is not a]
                before = baseline_step(steps, earlier)
                target[a.agent] = (net_export_kw[before, a.agent] if before >= 0 else 0.0) + a.p_w / W_PER_KW
        return target

    def first_award_s(self, agent: int) -> float | None:
        """When `agent`'s first awarded window starts, None without an award. [s]"""
        return min((a.from_s for a in self.awards if a.agent == agent), default=None)

    def needed_kwh(self, agent: int) -> float:
        """Stored energy `agent`'s awards need from its first awarded window on, over the efficiency. [kWh]"""
        first = self.first_award_s(agent)
        if first is None:
            return 0.0
        step = int(first // self.step_s) - 1
        return float(self.held_kwh(step)[agent])

    def holding(self, step: int) -> np.ndarray:
        """Whether each battery keeps its charge in `step`: scheduled and before its first awarded window."""
        hold = np.zeros(self.n, dtype=bool)
        for agent in self.scheduled:
            first = self.first_award_s(agent)
            hold[agent] = first is not None and step * self.step_s < first
        return hold

    def charge_kw(self, step: int, window_s: float) -> np.ndarray:
        """Charging power each battery was admitted in the window (market interval) of `step`. [kW]"""
        charge = np.zeros(self.n)
        for agent, p_w in self.admitted_w.get(int(step * self.step_s // window_s), {}).items():
            charge[agent] = p_w / W_PER_KW
        return charge

    def shed_kw(self, step: int) -> np.ndarray:
        """Load each called household switches off in `step`. [kW]"""
        shed = np.zeros(self.n)
        for c in self.calls:
            if step in response_steps(c.from_s, c.to_s, self.step_s):
                shed[c.agent] += c.p_w / W_PER_KW
        return shed
