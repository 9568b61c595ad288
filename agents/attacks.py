"""What tampered meters and DERs do (``attacks:``), and the ground truth the auditor is scored against.

`plan_attacks` resolves a study's attack list into which attack, if any,
hits each meter-interval (the first listed one where several overlap);
a ``share`` picks that many prosumers with a generator seeded from the
study seed and the entry's position. The physical part of an attack
(``bypass``: load around the meter) is `bypass_mw`, added to the power
flow by the grid; the reporting part is `tamper`, applied by the meter to
its true registers. `energy_error_wh` is the ground truth per
meter-interval: reported minus true net export, the energy a false
reading would be paid for. The kinds are documented in
`gridledger.study_audit`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gridledger.study_audit import ATTACK_KINDS, Attack
from gridledger.units import SECONDS_PER_HOUR, W_PER_MW

NO_ATTACK = -1
KIND_CODE = {kind: code for code, kind in enumerate(ATTACK_KINDS)}
"""Integer code of each attack kind in the results (``attack_kind``); -1 = none."""


@dataclass(frozen=True)
class AttackPlan:
    """Which attack hits each meter-interval.

    Attributes
    ----------
    attacks : tuple of Attack
        The study's list.
    index : ndarray, shape (n_intervals, n_prosumers)
        Position in `attacks` of the attack on each meter-interval, `NO_ATTACK` for none.
    interval_s : int
        Market interval length. [s]
    """

    attacks: tuple[Attack, ...]
    index: np.ndarray
    interval_s: int

    def on(self, interval: int, prosumer: int) -> Attack | None:
        """The attack on one meter-interval, if any."""
        i = self.index[interval, prosumer]
        return None if i == NO_ATTACK else self.attacks[i]

    def kind_code(self) -> np.ndarray:
        """`KIND_CODE` of each meter-interval's attack, -1 for none; shape (n_intervals, n_prosumers)."""
        codes = np.array([KIND_CODE[a.kind] for a in self.attacks] + [NO_ATTACK], dtype=np.int16)
        return codes[self.index]


def plan_attacks(attacks: Sequence[Attack], names: Sequence[str], n_intervals: int, interval_s: int,
                 seed: int) -> AttackPlan:
    """Resolve `attacks` over the study's intervals and prosumers (named `names`, in prosumer order)."""
    index = np.full((n_intervals, len(names)), NO_ATTACK, dtype=np.int32)
    starts = np.arange(n_intervals) * interval_s
    for position, attack in enumerate(attacks):
        if attack.prosumers is not None:
            who = [names.index(name) for name in attack.prosumers]
        else:
            rng = np.random.default_rng([seed, position])
            who = sorted(rng.choice(len(names), max(1, round(attack.share * len(names))), replace=False).tolist())
        end = np.inf if attack.end_s is None else attack.end_s
        when = np.flatnonzero((starts >= attack.start_s) & (starts < end))
        rows, cols = np.ix_(when, who)
        index[rows, cols] = np.where(index[rows, cols] == NO_ATTACK, position, index[rows, cols])
    return AttackPlan(tuple(attacks), index, interval_s)


def bypass_mw(plan: AttackPlan, interval: int, meter_rating_w: np.ndarray) -> np.ndarray:
    """Load each prosumer draws around its meter during `interval` (``bypass``). [MW]"""
    out = np.zeros(len(meter_rating_w))
    for i, rating in enumerate(meter_rating_w):
        attack = plan.on(interval, i)
        if attack is not None and attack.kind == "bypass":
            out[i] = attack.fraction_of_rating * rating / W_PER_MW
    return out


def tamper(plan: AttackPlan, interval: int, true_wh: dict[str, np.ndarray], history_wh: list[dict[str, np.ndarray]],
           meter_rating_w: np.ndarray, pv_possible_wh: np.ndarray) -> dict[str, np.ndarray]:
    """The registers the meters report for `interval`, from their true registers. [Wh]

    Parameters
    ----------
    true_wh : dict of ndarray
        ``import_wh``, ``export_wh``, ``pv_wh``, ``battery_wh`` as metered, per prosumer.
    history_wh : list of dict of ndarray
        The true registers of the intervals before, oldest first (for ``replay``).
    meter_rating_w : ndarray
        Registered meter ratings. [W]
    pv_possible_wh : ndarray
        The PV energy each prosumer's kWp and the interval's irradiance allow. [Wh]
    """
    out = {name: values.astype(np.int64).copy() for name, values in true_wh.items()}
    hours = plan.interval_s / SECONDS_PER_HOUR
    for i in range(len(meter_rating_w)):
        attack = plan.on(interval, i)
        if attack is None:
            continue
        if attack.kind == "over-report-export":
            out["export_wh"][i] += round(attack.fraction_of_rating * meter_rating_w[i] * hours)
        elif attack.kind == "under-report-import":
            out["import_wh"][i] -= round(attack.fraction * out["import_wh"][i])
        elif attack.kind == "replay" and interval - attack.intervals >= 0:
            for name in out:
                out[name][i] = history_wh[interval - attack.intervals][name][i]
        elif attack.kind == "impossible-pv":
            claimed = round(attack.factor * pv_possible_wh[i])
            extra = max(0, claimed - out["pv_wh"][i])
            out["pv_wh"][i] += extra
            shown = min(extra, out["import_wh"][i])                           # the extra PV first cancels import
            out["import_wh"][i] -= shown
            out["export_wh"][i] += extra - shown
    return out


def energy_error_wh(plan: AttackPlan, interval: int, true_wh: dict[str, np.ndarray],
                    reported_wh: dict[str, np.ndarray], bypass_wh: np.ndarray) -> np.ndarray:
    """Ground truth: reported minus true net export (export - import) of each meter for `interval`. [Wh]

    A bypass makes the meter miss the bypassed load: the true import is
    the metered one plus ``bypass_wh``.
    """
    reported = reported_wh["export_wh"] - reported_wh["import_wh"]
    true = true_wh["export_wh"] - true_wh["import_wh"] - bypass_wh
    return (reported - true).astype(np.int64)
