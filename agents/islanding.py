"""Which batteries run the island when the substation opens, and how they share its load.

An import cap with ``island: true`` (``events.import_caps``) opens the
substation: the feeder runs as a microgrid only if a battery forms its
grid (`gridledger.grids.island`). The operator restarts it from the
batteries it holds reserve from over the step
(`gridledger.contracts.reserve`, awarded for the window). The one with
the largest power rating forms the grid (the lowest position among
equals); all of them share what the island draws: first the activated
ones, in proportion to their activated power up to it (the operator's
dispatch, paid as reserve energy), then all of them in proportion to what
each can still deliver this step, as droop control around the dispatch
shares it (Rocabert et al. 2012), each within what it can deliver. That
second share is the response the capacity payment buys, as frequency
containment reserve is paid for capacity, not energy. The grid former,
the slack, also takes the difference the shares' losses make. Without a
battery under reserve the feeder is dark; with the island drawing more
than the batteries give, or feeding them more than they can take, the
rotation cuts load buses until it fits, the batteries' own buses last.

The grid keeps each battery's stored energy from the power it actually
ran at in every step (`gridledger.grids.battery.battery_step`), so it knows
what each can still deliver; the DER federate hears what the island's
batteries ran at and books the same energy (``island`` message,
`gridledger.agents.devices`).

References
----------
J. Rocabert, A. Luna, F. Blaabjerg and P. Rodriguez, "Control of power
converters in AC microgrids," IEEE Trans. Power Electronics, vol. 27, no. 11,
pp. 4734-4749, 2012 (grid-forming and grid-supporting converters; power
shared by droop).

IEEE Std 2030.7-2017, "Standard for the Specification of Microgrid
Controllers" (dispatch of the microgrid's units while islanded).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gridledger.agents.load_shedding import TOLERANCE_MW
from gridledger.grids.battery import battery_step
from gridledger.grids.island import battery_limits_kw
from gridledger.scenario import Scenario
from gridledger.units import KW_PER_MW


class GridFormers:
    """The feeder's batteries as the grid sees them: stored energy per prosumer, and the choice of grid former."""

    def __init__(self, sc: Scenario):
        study = sc.study
        self.battery = study.prosumers.battery
        self.step_s = study.power_flow_step_s
        self.energy_kwh = np.array([p.battery_energy_kwh for p in sc.prosumers])
        self.power_kw = np.array([p.battery_power_kw for p in sc.prosumers])
        self.soc_kwh = self.energy_kwh * self.battery.soc_init

    def choose(self, activated: Iterable[int]) -> int | None:
        """The grid former among the activated providers' positions: a battery with the largest power rating, the
        lowest position among equals; None if none has a battery."""
        able = sorted(i for i in set(activated) if self.power_kw[i] > 0)
        return max(able, key=lambda i: (self.power_kw[i], -i)) if able else None

    def limits_mw(self, i: int) -> tuple[float, float]:
        """The most prosumer `i`'s battery can discharge and charge over the next step. [MW]"""
        discharge_kw, charge_kw = battery_limits_kw(self.soc_kwh[i], self.step_s, self.energy_kwh[i], self.power_kw[i],
                                                    self.battery.efficiency, self.battery.soc_min,
                                                    self.battery.soc_max)
        return discharge_kw / KW_PER_MW, charge_kw / KW_PER_MW

    def ran(self, battery_p_mw: np.ndarray) -> None:
        """Book one step of every battery at the power it ran at (positive = charging). [MW]"""
        has = self.energy_kwh > 0
        self.soc_kwh[has] = battery_step(self.soc_kwh[has], battery_p_mw[has] * KW_PER_MW, self.step_s,
                                         self.energy_kwh[has], self.power_kw[has], self.battery.efficiency,
                                         0.0, 1.0)[1]


def shares_mw(need_mw: float, dispatch_mw: np.ndarray, give_mw: np.ndarray, take_mw: np.ndarray) -> np.ndarray | None:
    """What each battery of the island delivers when together they must deliver `need_mw`; None if the need lies
    outside [-sum(take_mw), sum(give_mw)]. [MW]

    A positive need is shared pro rata to each battery's dispatch (its
    activated power, at most what it gives) up to the dispatch, and what is
    left pro rata to the headroom above it; a negative one (the island feeds
    its batteries) pro rata to what each takes.

    Parameters
    ----------
    need_mw : float
        What the island draws from its batteries, positive = discharging. [MW]
    dispatch_mw : ndarray, shape (battery,)
        The operator's dispatch of each battery (activated power), at least 0. [MW]
    give_mw, take_mw : ndarray, shape (battery,)
        The most each battery discharges and charges over the step, at least 0. [MW]

    Returns
    -------
    ndarray or None
        Each battery's power, positive = discharging, summing to `need_mw`. [MW]
    """
    if need_mw < 0:
        return None if -need_mw > take_mw.sum() + TOLERANCE_MW else _pro_rata(need_mw, take_mw)
    if need_mw > give_mw.sum() + TOLERANCE_MW:
        return None
    first_mw = np.minimum(dispatch_mw, give_mw)
    if need_mw <= first_mw.sum():
        return _pro_rata(need_mw, first_mw)
    return first_mw + _pro_rata(need_mw - float(first_mw.sum()), give_mw - first_mw)


def _pro_rata(total_mw: float, weights: np.ndarray) -> np.ndarray:
    """`total_mw` split in proportion to `weights` (nothing if they are all 0). [MW]"""
    return total_mw * weights / weights.sum() if weights.sum() > 0 else np.zeros(len(weights))


def excess_mw(slack_p_mw: float, discharge_mw: float, charge_mw: float) -> float:
    """How far the grid former's power lies outside what its battery can run at: above its discharge limit or
    below minus its charge limit; 0 within; NaN stays NaN (an island that did not solve). [MW]

    `slack_p_mw` is the power the grid former delivers into the island, positive = discharging.
    """
    return max(slack_p_mw - discharge_mw, -charge_mw - slack_p_mw, 0.0) if slack_p_mw == slack_p_mw else slack_p_mw
