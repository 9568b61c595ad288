"""The households' side of the ancillary services: bond approvals, offers and enrolments, and the duties they take on.

`AncillaryAgents` is held by the DER agents (`gridledger.agents.der_agents`):
at the opening each participant approves its bond tokens to its contract
(`gridledger.agents.ancillary_terms.bond_endowment_wei`); windows and
programmes the ledger reports are answered at the next offer action
(`gridledger.agents.reserve_offers`); awards, activations and calls go to
the devices' duties (`gridledger.agents.ancillary_duties`). With
``reserve.schedule_charging`` each battery owner with an award asks the
charging coordination contract, window by window until its first awarded
window (its "departure"), for the energy its awards still need
(:meth:`AncillaryAgents.charge_requests`), and charges at what it is
admitted.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from gridledger.agents.ancillary_duties import AncillaryDuties, Response
from gridledger.agents.ancillary_terms import (battery_rating_kw, bond_endowment_wei, interruptible_loads, providers,
                                               scheduled_charging)
from gridledger.agents.ev_fleet import EVChargeRequest
from gridledger.agents.reserve_offers import ReserveWindow, enrolments, reserve_offers
from gridledger.agents.shortage import capped_intervals
from gridledger.contracts import flexibility as flex
from gridledger.contracts import load_shed, reserve
from gridledger.contracts.client import Wallet
from gridledger.roster import Roster
from gridledger.units import KW_PER_MW, PERMILLE, W_PER_KW, WH_PER_KWH, price_wei_per_wh

MESSAGES = ("reserve_windows", "shed_programme", "reserve_awards", "reserve_activations", "shed_calls")
"""The ledger's ancillary messages the households read."""
_ROUNDING_WH = 1e-6
"""Float noise below which an energy need is not rounded up to one more Wh. [Wh]"""
Sender = Callable[[int, int], Wallet]
"""Agent `i`'s wallet, its next transaction noted as serving interval `k`."""


class AncillaryAgents:
    """Every household's part in the reserve and load shed markets of a study with ``ancillary``."""

    def __init__(self, sc: Roster, duties: AncillaryDuties, index_of: dict[str, int]):
        self.sc, self.duties, self.index_of = sc, duties, index_of
        self.reserve = self.shed = None
        if scheduled_charging(sc):
            duties.scheduled.update(int(i) for i in providers(sc))
        self.windows: list[ReserveWindow] = []
        self.programmes: list[dict] = []

    def connect(self, notice: dict) -> None:
        """Take the contracts' addresses from the ledger's deployment `notice`."""
        self.reserve, self.shed = notice["reserve"], notice["load_shed"]

    def opening(self, token: str, sender: Sender) -> list[bytes]:
        """Each participant's approval of its bond tokens to its contract, signed."""
        spender = {int(i): self.shed for i in interruptible_loads(self.sc)}
        spender |= {i: self.reserve for i in bond_endowment_wei(self.sc) if i not in spender}
        return [flex.approve(sender(i, 0), token, spender[i], amount)
                for i, amount in sorted(bond_endowment_wei(self.sc).items())]

    def handle(self, body: dict) -> None:
        """Take one of the ledger's ancillary messages."""
        kind = body["type"]
        if kind == "reserve_windows":
            self.windows += [ReserveWindow(w["window_id"], w["interval"], w["capacity_w"], w["start_s"], w["end_s"],
                                           w["capacity_price_cap_wei_per_wh"], w["activation_price_cap_wei_per_wh"])
                             for w in body["windows"]]
        elif kind == "shed_programme":
            self.programmes += body["programmes"]
        elif kind == "reserve_awards":
            self.duties.awards += [self._response(a, "start_s", "end_s") for a in body["awards"]]
        elif kind == "reserve_activations":
            self.duties.activations += [self._response(a, "from_s", "to_s") for a in body["activations"]]
        elif kind == "shed_calls":
            self.duties.calls += [Response(self.index_of[c["load"]], c["shed_w"], c["from_s"], c["to_s"])
                                  for c in body["calls"]]

    def _response(self, item: dict, start: str, end: str) -> Response:
        return Response(self.index_of[item["provider"]], item["p_w"], item[start], item[end])

    def offers(self, interval: int, soc_kwh: np.ndarray, sender: Sender) -> list[bytes]:
        """Offers to the windows and enrolments in the programmes reported since the last offer action, signed for
        `interval`; `soc_kwh` is every battery's charge now. [kWh]"""
        study = self.sc.study
        txs = []
        if self.windows:
            spec = study.ancillary.reserve
            battery = study.prosumers.battery
            capacity = np.array([p.battery_energy_kwh for p in self.sc.prosumers])
            stored = (battery.soc_max * capacity if scheduled_charging(self.sc) else soc_kwh)
            deliverable = np.maximum(0.0, stored - battery.soc_min * capacity) * math.sqrt(battery.efficiency)
            offers = reserve_offers(self.windows, battery_rating_kw(self.sc), deliverable,
                                    min_offer_w=math.ceil(spec.min_offer_kw * W_PER_KW), response_s=spec.response_s,
                                    recharge_wei_per_wh=price_wei_per_wh(study.market.grid_buy_price_per_kwh),
                                    seed=study.seed)
            txs += [reserve.offer(sender(o.agent, interval), self.reserve, o.window_id, p_w=o.p_w,
                                  capacity_price_wei_per_wh=o.capacity_price_wei_per_wh,
                                  activation_price_wei_per_wh=o.activation_price_wei_per_wh, response_s=o.response_s)
                    for o in offers]
            self.windows = []
        for programme in self.programmes:
            txs += self._enrol(programme, interval, sender)
        self.programmes = []
        return txs

    def charge_requests(self, window: int, soc_kwh: np.ndarray) -> list[tuple[int, EVChargeRequest]]:
        """Each scheduled battery's charging request for `window`: the energy from the grid its awards still need
        over what it holds, at its rating, until its first awarded window; (agent, request) pairs.

        `soc_kwh` is every battery's charge now [kWh]. A battery whose
        window ends after its first awarded window starts, or that holds
        enough, asks for nothing.
        """
        study = self.sc.study
        battery = study.prosumers.battery
        eta = math.sqrt(battery.efficiency)
        out = []
        for agent in sorted(self.duties.scheduled):
            first_s = self.duties.first_award_s(agent)
            if first_s is None or (window + 1) * study.market_interval_s > first_s:
                continue
            capacity = self.sc.prosumers[agent].battery_energy_kwh
            short_kwh = self.duties.needed_kwh(agent) - (soc_kwh[agent] - battery.soc_min * capacity)
            energy_wh = math.ceil(short_kwh / eta * WH_PER_KWH - _ROUNDING_WH)
            if energy_wh <= 0:
                continue
            out.append((agent, EVChargeRequest(power_w=math.floor(battery_rating_kw(self.sc)[agent] * W_PER_KW),
                                             energy_needed_wh=energy_wh,
                                             soc_permille=math.floor(soc_kwh[agent] / capacity * PERMILLE),
                                             departure_s=first_s, owner=agent)))
        return out

    def admit(self, window: int, admitted_w: dict[int, int]) -> dict[int, int]:
        """Take the scheduled batteries' admissions of `window`; return the others' (EVs). [W]"""
        self.duties.admitted_w[window] = {i: p for i, p in admitted_w.items() if i in self.duties.scheduled}
        return {i: p for i, p in admitted_w.items() if i not in self.duties.scheduled}

    def _enrol(self, programme: dict, interval: int, sender: Sender) -> list[bytes]:
        study = self.sc.study
        spec = study.ancillary.load_shed
        spi = study.steps_per_interval
        steps = [j for k in sorted(capped_intervals(study)) for j in range(k * spi, (k + 1) * spi)]
        expected_kw = self.sc.load_p_mw_expected[steps] * KW_PER_MW
        chosen = enrolments(interruptible_loads(self.sc), expected_kw, shed_kw=spec.shed_kw, min_shed_w=1,
                            notice_s=spec.notice_s, max_events_per_day=spec.max_events_per_day,
                            price_per_event_cap_wei=programme["price_per_event_cap_wei"],
                            price_per_wh_cap_wei=programme["price_per_wh_cap_wei"], seed=study.seed)
        return [load_shed.enrol(sender(e.agent, interval), self.shed, programme["programme_id"], shed_w=e.shed_w,
                                notice_s=e.notice_s, max_events_per_day=e.max_events_per_day,
                                price_per_event_wei=e.price_per_event_wei, price_per_wh_wei=e.price_per_wh_wei)
                for e in chosen]
