"""The DSO's answer to an announced import cap: reserve windows and a load shed programme, activations and calls.

`ShortageDesk` signs the DSO's transactions on ``OperatingReserve`` and
``LoadShed`` following the plan of `gridledger.agents.shortage`:

* at the notice (its first action, s_0): one reserve window per capped
  interval, of the forecast need (the window is sized down to what is left
  of ``reserve.budget``), offers until the gate of interval 1; and the load
  shed programme (`gridledger.agents.ancillary_terms`);
* at s_k, for interval k + 1: the reserve activated up to the need, the
  larger of the need planned at the notice and the forecast corrected by
  the last measured error (a correction may raise the need, never lower
  it below the plan: batteries that served their households' load before
  the cap run down during it, so the error measured before does not
  last; an island interval activates the corrected forecast without the
  margin); if the awarded reserve leaves some of that need uncovered in
  k + 1 or later in its cap window, a call of the interruptible loads for
  the rest of the window, once per window.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import numpy as np

from gridledger.agents.ancillary_terms import max_event_s, offer_deadline_s, programme_span_s
from gridledger.agents.shortage import Bias, activation_w, cap_windows, capped_intervals, shed_call_w, shortfall_w
from gridledger.contracts import flexibility as flex
from gridledger.contracts import load_shed, reserve
from gridledger.contracts.client import Wallet
from gridledger.contracts.reserve_reference import budget_wei as window_budget_wei
from gridledger.roster import Roster
from gridledger.units import W_PER_KW, price_wei_per_wh, wei

log = logging.getLogger("gridledger.operator")


class ShortageDesk:
    """The DSO's reserve and load shed duties; `forecast_mw(step)` is its forecast import of a power-flow step. [MW]"""

    def __init__(self, sc: Roster, forecast_mw: Callable[[int], float]):
        study = sc.study
        spi = study.steps_per_interval
        self.sc, self.spec = sc, study.ancillary
        self.caps = capped_intervals(study)
        self.windows = cap_windows(study)
        self.forecast_step_mw = forecast_mw
        self.forecast_mw = {k: np.array([forecast_mw(j) for j in range(k * spi, (k + 1) * spi)]) for k in self.caps}
        self.bias = Bias()
        n = study.n_intervals
        self.need_w = np.zeros(n, dtype=np.int64)
        self.planned_w = np.zeros(n, dtype=np.int64)
        self.awarded_w = np.zeros(n, dtype=np.int64)
        for k in self.caps:
            self.planned_w[k] = self.forecast_need(k)
        self.window_of: dict[int, int] = {}
        self.calls: set[int] = set()
        self.reserve = self.shed = None
        self.wallet: Wallet | None = None

    def join(self, wallet: Wallet, notice: dict) -> list[bytes]:
        """The approvals of the budgets to the contracts of the deployment `notice`, signed."""
        self.wallet, self.reserve, self.shed = wallet, notice["reserve"], notice["load_shed"]
        token = notice["addresses"]["token"]
        txs = []
        if self.reserve:
            txs.append(flex.approve(wallet, token, self.reserve, wei(self.spec.reserve.budget)))
        if self.shed:
            txs.append(flex.approve(wallet, token, self.shed, wei(self.spec.load_shed.budget)))
        return txs

    def handle(self, body: dict) -> None:
        """Take a ``reserve_awards`` message: what each window awarded."""
        for award in body["awards"]:
            self.awarded_w[award["interval"]] += award["p_w"]

    def forecast_need(self, interval: int) -> int:
        """Reserve and load shed `interval` needs by the forecast corrected by the measured error, with the
        margin. [W]"""
        return shortfall_w(self.forecast_mw[interval] + self.bias.mw, self.caps[interval], self.spec.margin)

    def need(self, interval: int) -> int:
        """What `interval` needs: the plan at the notice, or more if the corrected forecast says so. [W]

        An island interval (``island: true``) needs the corrected forecast
        alone: there the activated batteries share what the island draws
        (`gridledger.agents.islanding`), so power activated above it would
        show only as their shortfall; the margin stays bought as capacity, and
        the batteries give beyond their activation if the island draws more.
        """
        study = self.sc.study
        if study.events.islanded_at(interval * study.market_interval_s):
            return shortfall_w(self.forecast_mw[interval] + self.bias.mw, self.caps[interval], 0.0)
        return max(int(self.planned_w[interval]), self.forecast_need(interval))

    def act(self, interval: int, import_mw: float) -> list[bytes]:
        """The DSO's transactions at the start of `interval`, having measured `import_mw` [MW] there."""
        study = self.sc.study
        capped = study.events.cap_mw_at(interval * study.market_interval_s) is not None
        if not capped:
            self.bias.measured(import_mw, self.forecast_step_mw(interval * study.steps_per_interval), capped)
        txs = self._notice() if interval == 0 else []
        following = interval + 1
        if following not in self.caps:
            return txs
        self.need_w[following] = self.need(following)
        if following in self.window_of and self.awarded_w[following]:
            p_w = activation_w(int(self.need_w[following]), int(self.awarded_w[following]))
            if p_w:
                txs.append(reserve.activate(self.wallet, self.reserve, self.window_of[following], p_w=p_w,
                                            n_offers=reserve.MAX_OFFERS))
        return txs + self._call(following)

    def _notice(self) -> list[bytes]:
        """The reserve windows of every capped interval and the load shed programme, signed."""
        study = self.sc.study
        start = study.start_timestamp
        txs = []
        if self.reserve:
            spec = self.spec.reserve
            left_wei = wei(spec.budget)
            caps = (price_wei_per_wh(spec.capacity_price_cap_per_kwh),
                    price_wei_per_wh(spec.activation_price_cap_per_kwh))
            for k in sorted(self.caps):
                capacity_w = int(self.planned_w[k])
                per_w = window_budget_wei(W_PER_KW, study.market_interval_s, *caps) / W_PER_KW
                capacity_w = min(capacity_w, int(left_wei / per_w) if per_w else capacity_w)
                if capacity_w <= 0:
                    log.warning("interval %d: no reserve window (need 0 W or budget spent)", k)
                    continue
                left_wei -= window_budget_wei(capacity_w, study.market_interval_s, *caps)
                self.window_of[k] = len(self.window_of)
                txs.append(reserve.post_window(
                    self.wallet, self.reserve, product=reserve.PRODUCTS[spec.product], capacity_w=capacity_w,
                    window_start_timestamp=start + k * study.market_interval_s,
                    window_end_timestamp=start + (k + 1) * study.market_interval_s,
                    offer_deadline_timestamp=start + offer_deadline_s(self.sc),
                    capacity_price_cap_wei_per_wh=caps[0], activation_price_cap_wei_per_wh=caps[1]))
        if self.shed:
            spec = self.spec.load_shed
            first_s, last_s = programme_span_s(self.sc)
            txs.append(load_shed.post_programme(
                self.wallet, self.shed, start_timestamp=start + first_s, end_timestamp=start + last_s,
                enrol_deadline_timestamp=start + offer_deadline_s(self.sc), max_event_s=max_event_s(self.sc),
                price_per_event_cap_wei=wei(spec.price_per_event_cap),
                price_per_wh_cap_wei=price_wei_per_wh(spec.price_per_kwh_cap), budget_wei=wei(spec.budget)))
        return txs

    def _call(self, interval: int) -> list[bytes]:
        """A call of the interruptible loads from `interval` to the end of its cap window, if the reserve awarded
        leaves a need uncovered there and none was called in the window yet, signed."""
        if not self.shed:
            return []
        first, last = next((a, b) for a, b in self.windows if a <= interval < b)
        if first in self.calls:
            return []
        rest = range(interval, last)
        shed_w = shed_call_w([int(self.need(k)) for k in rest], [int(self.awarded_w[k]) for k in rest])
        if shed_w <= 0:
            return []
        self.calls.add(first)
        study = self.sc.study
        start = study.start_timestamp
        log.info("interval %d: calling %.1f kW of interruptible load until interval %d", interval, shed_w / W_PER_KW,
                 last)
        return [load_shed.call(self.wallet, self.shed, 0, shed_w=shed_w,
                               from_timestamp=start + interval * study.market_interval_s,
                               to_timestamp=start + last * study.market_interval_s,
                               n_enrolments=load_shed.MAX_ENROLMENTS)]
