"""The distribution system operator (DSO): forecast, flexibility requests, charging headroom, what it measured.

At each interval start the DSO records the highest bus voltage and the
substation import it measures (and warns above the voltage limit). Then,
for the next interval:

* with EV charging coordination, it signs the substation headroom
  (`gridledger.agents.ev_fleet.headroom_w`): the substation transformer's
  rating at ``market.charging_max_loading_percent`` minus the interval's
  mean expected net load (loads minus PV) without EVs;
* with the voltage-regulation market, it forecasts the feeder's voltages
  and, when the forecast puts the highest voltage above the limit, signs a
  flexibility request sized by `gridledger.grids.voltage_planning`;
* with ``ancillary``, it buys, activates and calls reserve and load shed
  for the announced import caps (`gridledger.agents.dso_shortage`).

The forecast is the study's expected (noise-free) load and PV of the
prosumers and the feeder's expected profiles of its other loads, solved at
every power-flow step of the interval; batteries are taken as idle.
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.agents.dso_shortage import ShortageDesk
from gridledger.agents.ev_fleet import headroom_w
from gridledger.agents.feeder import injections
from gridledger.contracts import charging
from gridledger.contracts import flexibility as flex
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.grids.powerflow import PowerFlow
from gridledger.grids.voltage_planning import FlexPlan, forecast_peak, plan_request, sensitivities_upu_per_kw
from gridledger.results import Part
from gridledger.scenario import Scenario, substation_trafo
from gridledger.schedule import flex_offer_time
from gridledger.units import KW_PER_MW, MW, PU, W_PER_KW, price_wei_per_wh, wei

log = logging.getLogger("gridledger.operator")


class Dso:
    """The operator's forecast model, candidate DERs and record, indexed like the study's intervals.

    Its account's key derives from the run `secret`.
    """

    def __init__(self, sc: Scenario, secret: bytes):
        study = sc.study
        self.sc = sc
        self.account = derive_account(secret, "dso")
        self.pf = PowerFlow(sc.net, backend=study.grid.backend)
        self.bus_pos = sc.net.bus.index.get_indexer
        pv = [(i, p) for i, p in enumerate(sc.prosumers) if p.name in sc.devices.sgen]
        by_bus: dict[int, list[int]] = {}
        for i, p in pv:
            by_bus.setdefault(int(sc.net.sgen.at[sc.devices.sgen[p.name], "bus"]), []).append(i)
        self.buses = sorted(by_bus)
        self.owners = [by_bus[b] for b in self.buses]
        self.sgen_rows = [sc.net.sgen.index.get_loc(sc.devices.sgen[sc.prosumers[owners[0]].name])
                          for owners in self.owners]
        load_p, load_q = sc.prosumer_load_mw(expected=True)
        kwp = np.array([p.pv_kwp for p in sc.prosumers])
        self.expected = {"load_p_mw": load_p, "load_q_mvar": load_q,
                         "pv_p_mw": sc.pv_pu_expected * kwp / KW_PER_MW}
        n, n_bus = study.n_intervals, len(sc.net.bus)
        self.vm_forecast_pu = np.full(n, np.nan)
        self.requested_kw = np.zeros(n)
        self.zone = np.zeros((n, n_bus), dtype=np.int8)
        self.headroom_w = np.zeros(n, dtype=np.int64)
        self.vm_measured_pu = np.full(n, np.nan)
        self.import_measured_mw = np.full(n, np.nan)
        self.intervals_done = 0
        self.wallet: Wallet | None = None
        self.flexibility = self.charging = None
        self.shortage = ShortageDesk(sc, self.forecast_import_mw) if study.ancillary is not None else None

    def join(self, notice: dict) -> list[bytes]:
        """Take the ledger's deployment `notice`; with the voltage-regulation market, approve the budget, signed.

        The flexibility contract pulls payments from the DSO's tokens, up to
        ``market.flexibility.operator_budget``.
        """
        study = self.sc.study
        self.wallet = Wallet(self.account, notice["chain_id"])
        self.flexibility, self.charging = notice["flexibility"], notice["charging"]
        txs = self.shortage.join(self.wallet, notice) if self.shortage else []
        if not self.flexibility:
            return txs
        budget_wei = wei(study.market.flexibility.operator_budget)
        return txs + [flex.approve(self.wallet, notice["addresses"]["token"], self.flexibility, budget_wei)]

    def handle(self, messages: list[dict]) -> None:
        """Read the ledger's messages: log rejected transactions, take the reserve awards."""
        for body in messages:
            for receipt in body.get("receipts", []):
                if not receipt["status"]:
                    log.error("operator transaction %s rejected: %s", receipt["tx_hash"], receipt["revert_reason"])
            if body["type"] == "reserve_awards" and self.shortage:
                self.shortage.handle(body)

    def act(self, interval: int, time_s: float, vm_pu: list[float], import_mw: float) -> list[bytes]:
        """Record what was measured at the start of `interval`; the next interval's headroom and request, signed.

        Parameters
        ----------
        interval : int
            The interval that starts.
        time_s : float
            Simulation time, for the log. [s]
        vm_pu : list of float
            Every bus voltage measured. [pu]
        import_mw : float
            Substation import measured. [MW]
        """
        self.vm_measured_pu[interval] = max(vm_pu)
        self.import_measured_mw[interval] = import_mw
        if self.vm_measured_pu[interval] > self.sc.study.grid.limits.vm_max_pu:
            log.warning("t=%.0f s: measured %.4f pu, above vm_max_pu", time_s, self.vm_measured_pu[interval])
        following = interval + 1
        txs = self.shortage.act(interval, import_mw) if self.shortage else []
        if self.charging:
            txs.append(charging.post_headroom(self.wallet, self.charging, following,
                                              headroom_w=self.headroom(following)))
        if not self.flexibility:
            return txs
        plan = self.plan(following)
        if plan is not None:
            log.info("interval %d: forecast %.4f pu at bus %d; requesting %.1f kW from buses %s",
                     following, plan.vm_forecast_pu, plan.monitor_bus, plan.p_kw, list(plan.zone_buses))
            txs.append(self.request_tx(self.wallet, self.flexibility, following, plan))
        return txs

    def forecast_injections(self, step: int):
        """The injections of power-flow `step` by the forecast: expected loads and PV, batteries idle."""
        n = len(self.sc.prosumers)
        return injections(self.sc, step, {**{q: v[step] for q, v in self.expected.items()},
                                          "battery_p_mw": np.zeros(n)}, loads=self.sc.loads_expected)

    def forecast_import_mw(self, step: int) -> float:
        """The substation import of power-flow `step` by the forecast. [MW]"""
        return float(self.pf.step(self.forecast_injections(step)).p_mw)

    def plan(self, interval: int) -> FlexPlan | None:
        """Forecast `interval` and size its request (None if its voltages stay within the limit)."""
        study = self.sc.study
        per_interval = study.steps_per_interval
        steps = range(interval * per_interval, (interval + 1) * per_interval)
        forecasts = [self.forecast_injections(j) for j in steps]
        vm_pu, bus_pos, worst = forecast_peak(self.pf, forecasts)
        self.vm_forecast_pu[interval] = vm_pu
        self.intervals_done = interval + 1
        if worst < 0 or not self.buses:
            return None
        step = steps[worst]
        capacity_kw = np.array([KW_PER_MW * self.expected["pv_p_mw"][step, owners].sum() for owners in self.owners])
        sens = sensitivities_upu_per_kw(self.pf, forecasts[worst], self.sgen_rows, bus_pos)
        settings = study.market.flexibility
        plan = plan_request(vm_pu, int(self.sc.net.bus.index[bus_pos]), self.buses, sens, capacity_kw,
                            study.grid.limits.vm_max_pu, settings.margin_pu, settings.safety_factor)
        if plan is not None:
            self.requested_kw[interval] = plan.p_kw
            self.zone[interval, self.bus_pos(list(plan.zone_buses))] = 1
        return plan

    def headroom(self, interval: int) -> int:
        """Substation headroom for EV charging in `interval` from the expected net load without EVs. [W]"""
        study, sc = self.sc.study, self.sc
        per_interval = study.steps_per_interval
        window = slice(interval * per_interval, (interval + 1) * per_interval)
        expected = sc.loads_expected
        others_mw = expected.p_mw[window].sum(axis=1) + expected.asym_p_mw[window].sum(axis=1)
        prosumer_rows = [sc.net.load.index.get_loc(p.load_index) for p in sc.prosumers
                         if p.load_element != "asymmetric_load"]
        others_mw -= expected.p_mw[window][:, prosumer_rows].sum(axis=1)
        net_mw = (others_mw + self.expected["load_p_mw"][window].sum(axis=1)
                  - self.expected["pv_p_mw"][window].sum(axis=1) - sc.sgen_p_mw[window].sum(axis=1))
        trafo = sc.net.trafo.loc[substation_trafo(sc.net)]
        self.headroom_w[interval] = headroom_w(float(trafo.sn_mva), study.market.charging_max_loading_percent,
                                               float(net_mw.mean()))
        return int(self.headroom_w[interval])

    def request_tx(self, wallet: Wallet, address: str, interval: int, plan: FlexPlan) -> bytes:
        """Signed ``post_request`` of `plan` for `interval` (window = the interval)."""
        study = self.sc.study
        start = study.start_timestamp + interval * study.market_interval_s
        return flex.post_request(
            wallet, address, sensitivities_upu_per_kw=dict(zip(plan.zone_buses, plan.sensitivities_upu_per_kw)),
            direction_raise=False, p_w=int(plan.p_kw * W_PER_KW), window_start_timestamp=start,
            window_end_timestamp=start + study.market_interval_s,
            offer_deadline_timestamp=study.start_timestamp + flex_offer_time(study, interval) + 2,
            price_cap_wei_per_wh=price_wei_per_wh(study.market.flexibility.price_cap_per_kwh))

    def part(self) -> Part:
        """The operator's results part."""
        part = Part(self.sc, "operator", intervals_completed=self.intervals_done)
        part.add("flex_vm_forecast_pu", ("interval",), self.vm_forecast_pu, PU,
                 "operator's forecast of the highest voltage without flexibility")
        part.add("flex_requested_kw", ("interval",), self.requested_kw, "kW",
                 "injection reduction the operator requested")
        part.add("flex_zone", ("interval", "bus"), self.zone, "1", "bus is in the interval's flexibility zone")
        part.add("operator_vm_measured_pu", ("interval",), self.vm_measured_pu, PU,
                 "highest bus voltage the operator measured at the interval start")
        part.add("operator_import_measured_mw", ("interval",), self.import_measured_mw, MW,
                 "substation import the operator measured at the interval start")
        if self.shortage:
            part.add("ancillary_need_kw", ("interval",), self.shortage.need_w / W_PER_KW, "kW",
                     "reserve and load shed the operator forecast the interval to need, at its activation")
        if self.sc.study.market.charging_coordination:
            part.add("charging_headroom_w", ("interval",), self.headroom_w, "W",
                     "substation headroom the operator published for EV charging")
        return part
