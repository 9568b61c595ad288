"""What a meter measured a household deliver on a reserve activation or a load shed call, against its baseline.

The baseline is meter before / meter after (NAESB WEQ-015, the
demand-response measurement and verification standards; ERCOT measures
its load resources' deployments this way): the household's net import in
the power-flow step just before the response starts. Delivered energy is
the baseline minus the metered net import, summed over the response's
steps, never what the household reports. A response that continues one
of the same household ending where it starts (reserve activated in
consecutive windows) keeps that one's baseline (:func:`baseline_step`), so
the first activation's power is not taken as the next one's baseline. A step without a power-flow
value (NaN) counts 0, and a household that imported more than its
baseline delivered nothing (the sum is floored at 0).
"""

from __future__ import annotations

import math

import numpy as np

from gridledger.contracts import load_shed, reserve
from gridledger.units import SECONDS_PER_HOUR, W_PER_MW, WH_PER_MWH


def response_steps(from_s: float, to_s: float, step_s: float) -> range:
    """The power-flow steps a response from `from_s` to `to_s` (study time) covers: those that start in
    [from_s, to_s). [s]"""
    return range(math.ceil(from_s / step_s), math.ceil(to_s / step_s))


def baseline_step(steps: range, earlier: list[range]) -> int:
    """The meter-before step of a response over `steps`: the step before it, or before the first of the household's
    `earlier` responses it continues without a gap (-1 if that is before the study)."""
    starts_of = {span.stop: span.start for span in earlier if len(span)}
    first = steps.start
    while first in starts_of:
        first = starts_of.pop(first)
    return first - 1


def delivered_wh(export_mw: np.ndarray, steps: range, step_s: float, baseline: int) -> int:
    """Energy delivered over `steps` against the net import metered at step `baseline`, to the nearest Wh, at
    least 0. [Wh]

    Parameters
    ----------
    export_mw : ndarray, shape (step,)
        The household's metered net export in every step of the study (net
        import = -export). [MW]
    steps : range
        The response's steps.
    step_s : float
        Duration of each step. [s]
    baseline : int
        The meter-before step (:func:`baseline_step`); none before the study (< 0) delivers nothing.
    """
    if baseline < 0 or not len(steps):
        return 0
    baseline_mw = export_mw[baseline]
    reduction_mw = np.nan_to_num(export_mw[steps.start:steps.stop] - baseline_mw)
    return max(0, round(float(reduction_mw.sum()) * step_s / SECONDS_PER_HOUR * WH_PER_MWH))


class ResponseMeters:
    """The meters' side of the ancillary services: the activations and calls they were told of, and, once each has
    ended, the signed ``post_delivery`` of what the power flow shows the household delivered.

    `prosumer_of` maps a household's account to its position; the meter of
    position i signs with ``wallets[i]``, the key bound to it.
    """

    def __init__(self, reserve: str | None, shed: str | None, prosumer_of: dict[str, int], step_s: float):
        self.reserve, self.shed, self.prosumer_of, self.step_s = reserve, shed, prosumer_of, step_s
        self.pending: list[tuple[str, int, int, float, float, int]] = []
        self.spans: dict[int, list[range]] = {}
        self.awards: list[tuple[int, float, float]] = []

    def handle(self, body: dict) -> None:
        """Keep a ``reserve_activations`` or ``shed_calls`` message's responses until they end, and a
        ``reserve_awards`` message's awards."""
        if body["type"] == "reserve_awards":
            self.awards += [(self.prosumer_of[a["provider"]], a["start_s"], a["end_s"]) for a in body["awards"]]
        elif body["type"] == "reserve_activations":
            self.pending += [("reserve", a["window_id"], self.prosumer_of[a["provider"]], a["from_s"], a["to_s"],
                              a["p_w"]) for a in body["activations"]]
        elif body["type"] == "shed_calls":
            self.pending += [("shed", c["event_id"], self.prosumer_of[c["load"]], c["from_s"], c["to_s"], c["shed_w"])
                             for c in body["calls"]]

    def responding(self, time_s: float, kinds: tuple[str, ...] = ("reserve", "shed")) -> dict[int, int]:
        """The households whose reserve activation (``"reserve"``) or load shed call (``"shed"``) covers `time_s`
        (study time) [s]: position -> power activated or called. [W]"""
        power_w: dict[int, int] = {}
        for kind, _, i, from_s, to_s, p_w in self.pending:
            if kind in kinds and from_s <= time_s < to_s:
                power_w[i] = power_w.get(i, 0) + p_w
        return power_w

    def reserve_mw(self, time_s: float) -> dict[int, float]:
        """The reserve providers standing over `time_s` (study time) [s]: position -> power activated, 0 for those
        awarded and not activated. [MW]"""
        standing = {i: 0.0 for i, start_s, end_s in self.awards if start_s <= time_s < end_s}
        return standing | {i: p_w / W_PER_MW for i, p_w in self.responding(time_s, ("reserve",)).items()}

    def deliveries(self, now_s: float, export_mw: np.ndarray, wallets: list) -> list[bytes]:
        """Signed deliveries of every response that has ended by `now_s` (study time). [s]

        `export_mw` is every household's metered net export per step (step, household). [MW]
        """
        txs, waiting = [], []
        for kind, id_, i, from_s, to_s, p_w in self.pending:
            if to_s > now_s:
                waiting.append((kind, id_, i, from_s, to_s, p_w))
                continue
            steps = response_steps(from_s, to_s, self.step_s)
            earlier = self.spans.setdefault(i, [])
            wh = delivered_wh(export_mw[:, i], steps, self.step_s, baseline_step(steps, earlier))
            earlier.append(steps)
            module, address = (reserve, self.reserve) if kind == "reserve" else (load_shed, self.shed)
            txs.append(module.post_delivery(wallets[i], address, id_, delivered_wh=wh))
        self.pending = waiting
        return txs
