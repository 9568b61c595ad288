"""Operator federate (DSO): forecasts the feeder's voltages and posts flexibility requests.

Runs with the voltage-regulation market (`market.voltage_regulation`)
or EV charging coordination (`market.charging_coordination`) on.

Subscribes
    grid/bus/<bus>/vm_pu, grid/substation/p_mw: what it watches; the
    highest voltage and the import measured at each interval start are
    recorded next to its forecast for the interval (and logged).
Endpoint ``operator/dso``
    receives the ledger's deployment notice and the receipts of its
    transactions; sends its signed transactions to ``ledger/tx``: one
    ``approve`` of its budget at the start, then at s_k + 0.75 (after the
    grid has solved the step at s_k) a ``post_request`` for interval k+1
    when its forecast puts the highest voltage above the limit, and the
    substation headroom of interval k+1 for charging (``post_headroom``).

The headroom is `gridledger.agents.ev_fleet.headroom_w`: the
substation transformer's rating at ``market.charging_max_loading_percent``
minus the interval's mean expected net load (loads minus PV) without EVs.

The forecast is the study's expected (noise-free) load and PV of the
prosumers and the feeder's expected profiles of its other loads, solved at
every power-flow step of the next interval; batteries are taken as idle.
Planning is `gridledger.grids.voltage_planning`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gridledger.contracts import charging
from gridledger.contracts import flexibility as flex
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.agents.ev_fleet import headroom_w
from gridledger.federates.grid import injections
from gridledger.messages import decode, deployment
from gridledger.units import WEI_PER_TOKEN, price_wei_per_wh
from gridledger.federates.shell import joined, run_federate
from gridledger.grids.powerflow import PowerFlow
from gridledger.grids.voltage_planning import FlexPlan, forecast_peak, plan_request, sensitivities_upu_per_kw
from gridledger.interfaces import LEDGER_ENDPOINT
from gridledger.results import Part
from gridledger.scenario import Scenario, load_scenario, substation_trafo
from gridledger.schedule import flex_offer_time, operator_times, stop_time_s

log = logging.getLogger("gridledger.operator")


class Dso:
    """The operator's forecast model, candidate DERs and record, indexed like the study's intervals."""

    def __init__(self, sc: Scenario):
        study = sc.study
        self.sc = sc
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
                         "pv_p_mw": sc.pv_pu_expected * kwp / 1000.0}
        n, n_bus = study.n_intervals, len(sc.net.bus)
        self.vm_forecast_pu = np.full(n, np.nan)
        self.requested_kw = np.zeros(n)
        self.zone = np.zeros((n, n_bus), dtype=np.int8)
        self.headroom_w = np.zeros(n, dtype=np.int64)
        self.vm_measured_pu = np.full(n, np.nan)
        self.import_measured_mw = np.full(n, np.nan)
        self.intervals_done = 0

    def plan(self, interval: int) -> FlexPlan | None:
        """Forecast `interval` and size its request (None if its voltages stay within the limit)."""
        study = self.sc.study
        spi = study.market_interval_s // study.power_flow_step_s
        steps = range(interval * spi, (interval + 1) * spi)
        n = len(self.sc.prosumers)
        forecasts = [injections(self.sc, j, {**{q: v[j] for q, v in self.expected.items()},
                                             "battery_p_mw": np.zeros(n)}, loads=self.sc.loads_expected)
                     for j in steps]
        vm_pu, bus_pos, worst = forecast_peak(self.pf, forecasts)
        self.vm_forecast_pu[interval] = vm_pu
        self.intervals_done = interval + 1
        if worst < 0 or not self.buses:
            return None
        step = steps[worst]
        capacity_kw = np.array([1000.0 * self.expected["pv_p_mw"][step, owners].sum() for owners in self.owners])
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
        spi = study.market_interval_s // study.power_flow_step_s
        window = slice(interval * spi, (interval + 1) * spi)
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
            direction_raise=False, p_w=int(plan.p_kw * 1000), window_start_timestamp=start,
            window_end_timestamp=start + study.market_interval_s,
            offer_deadline_timestamp=study.start_timestamp + flex_offer_time(study, interval) + 2,
            price_cap_wei_per_wh=price_wei_per_wh(study.market.flexibility.price_cap_per_kwh))

    def write(self, run_dir: Path, complete: bool) -> None:
        part = Part(self.sc, "operator", intervals_completed=self.intervals_done)
        part.add("flex_vm_forecast_pu", ("interval",), self.vm_forecast_pu, "pu",
                 "operator's forecast of the highest voltage without flexibility")
        part.add("flex_requested_kw", ("interval",), self.requested_kw, "kW",
                 "injection reduction the operator requested")
        part.add("flex_zone", ("interval", "bus"), self.zone, "1", "bus is in the interval's flexibility zone")
        part.add("operator_vm_measured_pu", ("interval",), self.vm_measured_pu, "pu",
                 "highest bus voltage the operator measured at the interval start")
        part.add("operator_import_measured_mw", ("interval",), self.import_measured_mw, "MW",
                 "substation import the operator measured at the interval start")
        if study_charging(self.sc):
            part.add("charging_headroom_w", ("interval",), self.headroom_w, "W",
                     "substation headroom the operator published for EV charging")
        part.write(run_dir, complete)


def study_charging(sc: Scenario) -> bool:
    """Whether the study coordinates EV charging."""
    return sc.study.market.charging_coordination


def _log_receipts(messages: list[tuple[str, bytes]]) -> None:
    for _, payload in messages:
        for receipt in decode(payload).get("receipts", []):
            if not receipt["status"]:
                log.error("operator transaction %s rejected: %s", receipt["tx_hash"], receipt["revert_reason"])


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir, with_devices=True)
    study = sc.study
    dso = Dso(sc)
    with joined(run_dir, "operator", stop_time_s(study)) as fed:
        finished = False
        try:
            fed.enter()
            notice = deployment(fed.receive())
            wallet = Wallet(derive_account(study.seed, "dso"), notice["chain_id"])
            address = notice["flexibility"]
            if address:
                budget_wei = round(study.market.flexibility.operator_budget * WEI_PER_TOKEN)
                fed.send(LEDGER_ENDPOINT, flex.approve(wallet, notice["addresses"]["token"], address, budget_wei))
            buses = [f"grid/bus/{b}/vm_pu" for b in sc.net.bus.index]
            for k, time_s in enumerate(operator_times(study)):
                fed.advance(time_s)
                _log_receipts(fed.receive())
                dso.vm_measured_pu[k] = max(fed.value(key) for key in buses)
                dso.import_measured_mw[k] = fed.value("grid/substation/p_mw")
                if dso.vm_measured_pu[k] > study.grid.limits.vm_max_pu:
                    log.warning("t=%.0f s: measured %.4f pu, above vm_max_pu", time_s, dso.vm_measured_pu[k])
                if notice["charging"]:
                    fed.send(LEDGER_ENDPOINT, charging.post_headroom(wallet, notice["charging"], k + 1,
                                                                      headroom_w=dso.headroom(k + 1)))
                if not address:
                    continue
                plan = dso.plan(k + 1)
                if plan is not None:
                    log.info("interval %d: forecast %.4f pu at bus %d; requesting %.1f kW from buses %s",
                             k + 1, plan.vm_forecast_pu, plan.monitor_bus, plan.p_kw, list(plan.zone_buses))
                    fed.send(LEDGER_ENDPOINT, dso.request_tx(wallet, address, k + 1, plan))
            finished = True
        finally:
            dso.write(run_dir, complete=finished)


def main() -> None:
    run_federate("operator", run)


if __name__ == "__main__":
    main()
