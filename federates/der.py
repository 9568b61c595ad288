"""DER federate: the prosumer agents, each with its own key, devices and orders.

Publishes
    der/<prosumer>/load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw   every step
    (pandapower signs: load consuming +, PV generating +, battery charging +)
Endpoint ``der/agents``
    sends its PV inverters' settings (IEEE 1547 curves on or off, kVA
    ratings) to ``grid/meters`` once at the start; sends each agent's
    signed ``submit_order`` transaction to ``ledger/tx`` at
    the start of every interval (for the next one) -- in a lot auction the
    sellers' ``post_lot`` then, and the buyers' sealed bids, reveals or open
    bids in the rounds of `gridledger.schedule`; receives receipts (reverts
    are logged with their reason and the agent's nonce is repaired), the
    lots' state after each round and each interval's cleared positions.
    With the voltage-regulation market on, each agent approves its bond
    tokens at the start, PV owners in a request's zone offer curtailment
    (their expected PV power, at a price between the feed-in tariff they
    forgo and the request's cap), and awarded agents curtail their PV by the
    awarded power during the window; ``pv_curtailed_p_mw`` is what their
    inverter reports curtailing, which the meters post as delivery.

Forecasting, pricing and battery dispatch are `gridledger.agents.prosumer`;
battery physics is `gridledger.grids.battery`.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from gridledger.contracts.client import Wallet
from gridledger.contracts.market import (
    LotState,
    MarketAddresses,
    bid,
    commit_bid,
    commitment,
    post_lot,
    reveal_bid,
    submit_order,
)
from gridledger.contracts import charging
from gridledger.contracts import flexibility as flex
from gridledger.contracts.keys import derive_account
from gridledger.agents.prosumer import (
    Order,
    contract_following_kw,
    flexload_schedule_kw,
    english_bid,
    expected_exports_wh,
    limit_price_draw,
    sealed_bid_salt,
    vickrey_lot,
    zic_order,
)
from gridledger.agents.ev_fleet import EVFleet, ev_owners
from gridledger.units import WEI_PER_TOKEN, price_per_kwh, price_wei_per_wh
from gridledger.messages import decode, deployment, encode
from gridledger.federates.shell import joined, run_federate
from gridledger.grids.battery import battery_step
from gridledger.grids.ev import ev_sessions
from gridledger.grids.flexload import ShiftableLoad
from gridledger.interfaces import GRID_ENDPOINT, LEDGER_ENDPOINT, setpoint_key
from gridledger.results import Part
from gridledger.scenario import Scenario, load_scenario
from gridledger.schedule import DerAction, der_actions, stop_time_s

log = logging.getLogger("gridledger.der")


class Agents:
    """The agents' keys, devices and market state, indexed like `Scenario.prosumers`."""

    def __init__(self, sc: Scenario):
        study = sc.study
        self.sc = sc
        self.accounts = [derive_account(study.seed, f"prosumer/{p.name}") for p in sc.prosumers]
        self.index_of = {a.address: i for i, a in enumerate(self.accounts)}
        self.wallets: list[Wallet] = []
        self.addresses: MarketAddresses | None = None
        self.sent_for: dict[tuple[int, int], int] = {}
        load_p_mw, load_q_mvar = sc.prosumer_load_mw()
        self.load_kw = load_p_mw * 1000.0
        self.load_kvar = load_q_mvar * 1000.0
        self.pv_kw = sc.pv_pu * np.array([p.pv_kwp for p in sc.prosumers])
        battery = study.prosumers.battery
        self.capacity_kwh = np.array([p.battery_energy_kwh for p in sc.prosumers])
        self.battery_kw = np.array([p.battery_power_kw for p in sc.prosumers])
        self.soc_kwh = self.capacity_kwh * battery.soc_init
        n, steps, intervals = len(sc.prosumers), study.n_steps, study.n_intervals
        self.position_wh = np.zeros((intervals, n), dtype=np.int64)
        self.order_wh = np.zeros((intervals, n), dtype=np.int64)
        self.order_price = np.full((intervals, n), np.nan)
        self.rejected = np.zeros((intervals, n), dtype=np.int64)
        self.battery_p_kw = np.full((steps, n), np.nan)
        self.soc_trace_kwh = np.full((steps, n), np.nan)
        self.steps_done = 0
        self.lots: dict[int, list[LotState]] = {}
        self.flex_address: str | None = None
        self.flex_requests: dict[int, list[dict]] = {}
        self.curtail_kw = np.zeros((intervals, n))
        self.flex_offer_w = np.zeros((intervals, n), dtype=np.int64)
        self.flex_awarded_w = np.zeros((intervals, n), dtype=np.int64)
        self.pv_curtailed_kw = np.full((steps, n), np.nan)
        self.charging_address: str | None = None
        owners = ev_owners(n, study.prosumers.ev.share, study.seed)
        midnight_s = -(study.start.hour * 3600 + study.start.minute * 60 + study.start.second)
        self.evs = EVFleet(ev_sessions(len(owners), study.seed, midnight_s=midnight_s), owners,
                           np.full(len(owners), study.prosumers.ev.capacity_kwh),
                           study.market_interval_s, study.power_flow_step_s)
        self.ev_kw = np.full((steps, n), np.nan)
        self.flexload_kw = flexload_profiles_kw(sc)
        self.sealed: dict[tuple[int, int], tuple[int, int, bytes]] = {}
        self.commits: dict[tuple[int, int], int] = {}

    def connect(self, notice: dict) -> None:
        """Sign for the chain and auction named in the ledger's deployment notice."""
        self.wallets = [Wallet(account, notice["chain_id"]) for account in self.accounts]
        self.addresses = MarketAddresses(**notice["addresses"])
        self.flex_address = notice.get("flexibility")
        self.charging_address = notice.get("charging")

    def approvals(self) -> list[bytes]:
        """Each PV owner's approval of its bond tokens to the voltage-regulation contract (none without it)."""
        if self.flex_address is None:
            return []
        bond_wei = round(self.sc.study.market.flexibility.bond_endowment * WEI_PER_TOKEN)
        return [flex.approve(self.wallets[i], self.addresses.token, self.flex_address, bond_wei)
                for i in np.flatnonzero(self.pv_kw.max(axis=0) > 0)]

    def inverter_settings(self) -> dict | None:
        """Each PV inverter's rating and the curve points it runs, None for a curve that is off (None if none is on).

        Sent once to the grid federate, which runs the curves inside its power
        flow; ratings: ``s_rated_kva = kva_per_kwp * kWp``, ``p_rated_kw = kWp``.
        """
        inverter = self.sc.study.prosumers.pv.inverter
        if not (inverter.volt_var or inverter.volt_watt):
            return None
        with_pv = [p for p in self.sc.prosumers if p.pv_kwp > 0]
        return {"prosumers": [p.name for p in with_pv],
                "s_rated_kva": [inverter.kva_per_kwp * p.pv_kwp for p in with_pv],
                "p_rated_kw": [p.pv_kwp for p in with_pv],
                "volt_var": inverter.volt_var_curve.model_dump() if inverter.volt_var else None,
                "volt_watt": inverter.volt_watt_curve.model_dump() if inverter.volt_watt else None}

    def charge_requests(self, window: int) -> list[bytes]:
        """Signed charging requests of every EV that is plugged in and not full during `window` (coordination on)."""
        if self.charging_address is None:
            return []
        start_ts = self.sc.study.start_timestamp
        txs = []
        for request in self.evs.requests(window):
            wallet = self.wallets[request.owner]
            self.sent_for[(request.owner, wallet.nonce)] = window
            txs.append(charging.request_charge(wallet, self.charging_address, window,
                                               request.on_chain(wallet.address, start_ts)))
        return txs

    def flex_offers(self, interval: int) -> list[bytes]:
        """Signed curtailment offers of the PV owners in the zones of `interval`'s requests.

        Each offers its expected mean PV power over the interval (at most the
        request's power) at a price drawn between the feed-in tariff it forgoes
        and the request's cap.
        """
        study = self.sc.study
        spi = study.market_interval_s // study.power_flow_step_s
        window = slice(interval * spi, (interval + 1) * spi)
        kwp = np.array([p.pv_kwp for p in self.sc.prosumers])
        expected_w = (self.sc.pv_pu_expected[window] * kwp).mean(axis=0) * 1000.0
        sell = price_wei_per_wh(study.market.grid_sell_price_per_kwh)
        txs = []
        for request in self.flex_requests.get(interval, []):
            cap = request["price_cap_wei_per_wh"]
            for i, p in enumerate(self.sc.prosumers):
                p_w = int(min(expected_w[i], request["p_w"]))
                if p.bus not in request["zone"] or p_w * request["window_s"] < 3600:
                    continue
                draw = float(np.random.default_rng([study.seed, i, interval, 1547]).random())
                price = min(cap, sell + int(draw * max(0, cap - sell)))
                self.flex_offer_w[interval, i] = p_w
                self.sent_for[(i, self.wallets[i].nonce)] = interval
                txs.append(flex.offer(self.wallets[i], self.flex_address, request["request_id"], p_w=p_w,
                                      price_wei_per_wh=price, bus=p.bus))
        return txs

    def _zic_orders(self, interval: int) -> list[Order | None]:
        """Every agent's ZI-C order for `interval` from its forecast (None: nothing to trade)."""
        study = self.sc.study
        market = study.market
        exports = expected_exports_wh(self.sc, interval)
        return [zic_order(interval, int(exports[i]), limit_price_draw(study.seed, i, interval),
                          market.grid_sell_price_per_kwh, market.grid_buy_price_per_kwh)
                for i in range(len(self.accounts))]

    def _record(self, interval: int, i: int, order: Order) -> None:
        self.order_wh[interval, i] = order.energy_wh if order.is_ask else -order.energy_wh
        self.order_price[interval, i] = price_per_kwh(order.price_wei_per_wh)
        self.sent_for[(i, self.wallets[i].nonce)] = interval

    def orders(self, interval: int) -> list[bytes]:
        """Signed orders of every agent with something to trade in `interval`.

        A merit-order market takes supply offers only (the operator posts the
        demand), so agents short of energy place no order there. A lot
        auction takes the sellers' lots now and the buyers' bids in the
        bidding rounds (:meth:`bids`).
        """
        mechanism = self.addresses.mechanism
        txs = []
        for i, order in enumerate(self._zic_orders(interval)):
            if order is None or (not order.is_ask and mechanism in ("merit-order", "vickrey", "english")):
                continue
            self._record(interval, i, order)
            if mechanism in ("vickrey", "english"):
                txs.append(post_lot(self.wallets[i], self.addresses, interval, energy_wh=order.energy_wh,
                                    reserve_price_wei_per_wh=order.price_wei_per_wh))
            else:
                txs.append(submit_order(self.wallets[i], self.addresses, interval, is_ask=order.is_ask,
                                        energy_wh=order.energy_wh, price_wei_per_wh=order.price_wei_per_wh))
        return txs

    def _buyers(self, interval: int) -> list[tuple[int, Order]]:
        return [(i, o) for i, o in enumerate(self._zic_orders(interval)) if o is not None and not o.is_ask]

    def bids(self, interval: int, round_s: float) -> list[bytes]:
        """Signed bids of the bidding round at `round_s` on `interval`'s lots (`gridledger.agents.prosumer`).

        Vickrey: each buyer seals its limit price on one lot. English: each
        buyer that leads no lot raises the cheapest lot within its limit.
        """
        lots = self.lots.get(interval, [])
        study = self.sc.study
        txs = []
        for rank, (i, order) in enumerate(self._buyers(interval)):
            wallet = self.wallets[i]
            if self.addresses.mechanism == "vickrey":
                lot = vickrey_lot(lots, rank, order.price_wei_per_wh)
                if lot is None:
                    continue
                salt = sealed_bid_salt(study.seed, i, interval)
                self.sealed[(interval, i)] = (lot.lot_id, order.price_wei_per_wh, salt)
                self._record(interval, i, Order(interval, False, lot.energy_wh, order.price_wei_per_wh))
                self.commits[(i, wallet.nonce)] = interval
                sealed = commitment(wallet.address, lot.lot_id, order.price_wei_per_wh, salt)
                txs.append(commit_bid(wallet, self.addresses, lot.lot_id, sealed=sealed))
            else:
                draw = float(np.random.default_rng([study.seed, i, interval, int(round_s)]).random())
                choice = english_bid(lots, wallet.address, order.price_wei_per_wh,
                                     price_wei_per_wh(study.market.bid_increment_per_kwh), draw)
                if choice is None:
                    continue
                lot, price = choice
                self._record(interval, i, Order(interval, False, lot.energy_wh, price))
                txs.append(bid(wallet, self.addresses, lot.lot_id, price_wei_per_wh=price))
        return txs

    def reveals(self, interval: int) -> list[bytes]:
        """Signed reveals of every sealed bid on `interval`'s lots."""
        txs = []
        for (k, i), (lot_id, price, salt) in sorted(self.sealed.items()):
            if k == interval:
                self.sent_for[(i, self.wallets[i].nonce)] = interval
                txs.append(reveal_bid(self.wallets[i], self.addresses, lot_id, price_wei_per_wh=price, salt=salt))
        return txs

    def market_txs(self, action: DerAction) -> list[bytes]:
        """The transactions of one market action of the schedule."""
        if action.market == "orders":
            return self.orders(action.interval)
        if action.market == "bid":
            return self.bids(action.interval, action.time_s)
        return self.reveals(action.interval)

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Apply cleared positions; log rejected orders and repair nonces."""
        for _, payload in messages:
            body = decode(payload)
            if body["type"] == "flex_requests":
                for request in body["requests"]:
                    request["zone"] = {int(b): s for b, s in request["zone"].items()}
                    self.flex_requests.setdefault(request["interval"], []).append(request)
            elif body["type"] == "flex_awards":
                for award in body["awards"]:
                    for address, p_w in award["p_w"].items():
                        i = self.index_of[address]
                        self.flex_awarded_w[award["interval"], i] += p_w
                        self.curtail_kw[award["interval"], i] += p_w / 1000.0
            elif body["type"] == "charging":
                self.evs.admit(body["window"], {self.index_of[a]: p_w for a, p_w in body["admitted_w"].items()})
            elif body["type"] == "lots":
                self.lots[body["interval"]] = [LotState(**lot) for lot in body["lots"]]
            elif body["type"] == "cleared":
                for address, position in body["positions_wh"].items():
                    self.position_wh[body["interval"], self.index_of[address]] = position
            elif body["type"] == "receipts":
                for receipt in body["receipts"]:
                    if not receipt["status"]:
                        self._rejected(receipt)

    def _rejected(self, receipt: dict) -> None:
        """Log and count a rejected transaction; a sealed bid that did not go through is not revealed."""
        i = self.index_of[receipt["sender"]]
        log.warning("%s: transaction %s rejected: %s", self.sc.prosumers[i].name,
                    receipt["tx_hash"], receipt["revert_reason"])
        self.rejected[self.sent_for[(i, receipt["nonce"])], i] += 1
        if (i, receipt["nonce"]) in self.commits:
            self.sealed.pop((self.commits[(i, receipt["nonce"])], i), None)
        if not receipt["included"]:
            self.wallets[i].nonce = receipt["nonce"]

    def setpoints(self, step: int) -> dict[str, np.ndarray]:
        """Device setpoints of every agent for one step, battery following the contract. [MW], [Mvar]"""
        study = self.sc.study
        battery = study.prosumers.battery
        interval = step * study.power_flow_step_s // study.market_interval_s
        has = self.capacity_kwh > 0
        curtailed_kw = np.minimum(self.curtail_kw[interval], self.pv_kw[step])
        request = np.array([contract_following_kw(self.pv_kw[step, i], self.load_kw[step, i],
                                                  int(self.position_wh[interval, i]), study.market_interval_s)
                            for i in np.flatnonzero(has)])
        p_batt_kw = np.zeros(len(self.accounts))
        p_batt_kw[has], self.soc_kwh[has] = battery_step(
            self.soc_kwh[has], request, study.power_flow_step_s, self.capacity_kwh[has], self.battery_kw[has],
            battery.efficiency, battery.soc_min, battery.soc_max)
        self.battery_p_kw[step] = p_batt_kw
        self.pv_curtailed_kw[step] = curtailed_kw
        self.ev_kw[step] = self.evs.p_kw_by_prosumer(self.evs.step(step, self.charging_address is not None),
                                                     len(self.accounts))
        self.soc_trace_kwh[step] = self.soc_kwh
        self.steps_done = step + 1
        return {
            "load_p_mw": (self.load_kw[step] + self.ev_kw[step] + self.flexload_kw[step]) / 1000.0,
            "load_q_mvar": self.load_kvar[step] / 1000.0,
            "pv_p_mw": (self.pv_kw[step] - curtailed_kw) / 1000.0,
            "battery_p_mw": p_batt_kw / 1000.0,
            "pv_curtailed_p_mw": curtailed_kw / 1000.0,
        }

    def _write_evs(self, part: Part) -> None:
        evs = self.evs
        part.coords["ev"] = np.arange(len(evs.owners))
        part.add("ev_p_mw", ("time", "prosumer"), self.ev_kw / 1000.0, "MW", "EV charging power (part of load_p_mw)")
        part.add("ev_owner", ("ev",), np.array([self.sc.prosumers[i].name for i in evs.owners], dtype=object), "1",
                 "prosumer owning the EV")
        part.add("ev_energy_needed_kwh", ("ev",), np.array([s.energy_needed_kwh for s in evs.sessions]), "kWh",
                 "energy the EV battery needs by departure")
        part.add("ev_energy_delivered_kwh", ("ev",), evs.delivered_kwh.copy(), "kWh",
                 "energy delivered to the EV battery")
        part.add("ev_departure_s", ("ev",), np.array([s.departure_s for s in evs.sessions]), "s",
                 "departure, seconds since study start")
        part.add("ev_override_steps", ("ev",), evs.override_steps.copy(), "1",
                 "steps the EV charged beyond its admission to still finish by departure")

    def write(self, run_dir: Path, complete: bool) -> None:
        part = Part(self.sc, "der", steps_completed=self.steps_done)
        part.add("load_p_mw", ("time", "prosumer"), (self.load_kw + self.ev_kw + self.flexload_kw) / 1000.0, "MW",
                 "prosumer load, EV charging and shiftable appliances included")
        part.add("pv_p_mw", ("time", "prosumer"), self.pv_kw / 1000.0 - np.nan_to_num(self.pv_curtailed_kw) / 1000.0,
                 "MW", "prosumer PV output (after any curtailment)")
        part.add("pv_curtailed_p_mw", ("time", "prosumer"), self.pv_curtailed_kw / 1000.0, "MW",
                 "PV power curtailed for awarded flexibility")
        part.add("battery_p_mw", ("time", "prosumer"), self.battery_p_kw / 1000.0, "MW",
                 "battery power, positive = charging")
        part.add("soc_kwh", ("time", "prosumer"), self.soc_trace_kwh, "kWh", "battery state of charge after the step")
        part.add("order_energy_wh", ("interval", "prosumer"), self.order_wh, "Wh",
                 "order quantity, positive = ask (sell), negative = bid (buy)")
        part.add("order_price_per_kwh", ("interval", "prosumer"), self.order_price, "token/kWh", "order limit price")
        if len(self.evs.owners):
            self._write_evs(part)
        if self.sc.study.prosumers.flexload.share:
            part.add("flexload_p_mw", ("time", "prosumer"), self.flexload_kw / 1000.0, "MW",
                     "shiftable appliance power (part of load_p_mw)")
        if self.flex_address is not None:
            part.add("flex_offer_w", ("interval", "prosumer"), self.flex_offer_w, "W", "flexibility offered")
            part.add("flex_awarded_w", ("interval", "prosumer"), self.flex_awarded_w, "W", "flexibility awarded")
        part.add("orders_rejected", ("interval", "prosumer"), self.rejected, "1", "orders rejected by the chain")
        part.write(run_dir, complete)


def flexload_profiles_kw(sc: Scenario) -> np.ndarray:
    """Every prosumer's shiftable-cycle power per step, zero without one or if its window misses the study. [kW]"""
    study = sc.study
    settings = study.prosumers.flexload
    n, steps = len(sc.prosumers), study.n_steps
    out = np.zeros((steps, n))
    owners = np.flatnonzero(np.random.default_rng([study.seed, 5_000]).random(n) < settings.share)
    day_s = study.start.hour * 3600 + study.start.minute * 60 + study.start.second
    earliest_s = max(0.0, settings.earliest_h * 3600 - day_s)
    latest_end_s = min(float(study.duration_s), settings.latest_end_h * 3600 - day_s)
    if (latest_end_s - earliest_s) * settings.power_kw < settings.energy_kwh * 3600:
        return out
    load = ShiftableLoad(settings.energy_kwh, settings.power_kw, earliest_s, latest_end_s)
    load_kw = sc.prosumer_load_mw(expected=True)[0] * 1000.0
    pv_kw = sc.pv_pu_expected * np.array([p.pv_kwp for p in sc.prosumers])
    for i in owners:
        out[:, i] = flexload_schedule_kw(load, load_kw[:, i] - pv_kw[:, i], sc.times_s, study.power_flow_step_s,
                                         study.market.grid_buy_price_per_kwh, study.market.grid_sell_price_per_kwh)
    return out


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir)
    study = sc.study
    agents = Agents(sc)
    names = [p.name for p in sc.prosumers]
    with joined(run_dir, "der", stop_time_s(study)) as fed:
        finished = False
        try:
            fed.enter()
            agents.connect(deployment(fed.receive()))
            for tx in agents.approvals():
                fed.send(LEDGER_ENDPOINT, tx)
            if (settings := agents.inverter_settings()) is not None:
                fed.send(GRID_ENDPOINT, encode("inverters", **settings))
            for action in der_actions(study):
                fed.advance(action.time_s)
                agents.handle(fed.receive())
                if action.market is not None:
                    for tx in agents.market_txs(action):
                        fed.send(LEDGER_ENDPOINT, tx)
                if action.flex_interval is not None:
                    for tx in agents.flex_offers(action.flex_interval) + agents.charge_requests(action.flex_interval):
                        fed.send(LEDGER_ENDPOINT, tx)
                if action.step is not None:
                    for quantity, values in agents.setpoints(action.step).items():
                        for name, value in zip(names, values):
                            fed.publish(setpoint_key(name, quantity), float(value))
            finished = True
        finally:
            agents.write(run_dir, complete=finished)



def main() -> None:
    run_federate("der", run)


if __name__ == "__main__":
    main()
