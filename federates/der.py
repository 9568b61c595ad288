"""DER federate: the prosumer agents, each with its own key, devices and orders.

Publishes
    der/<prosumer>/load_p_mw, load_q_mvar, pv_p_mw, battery_p_mw   every step
    (pandapower signs: load consuming +, PV generating +, battery charging +)
Endpoint ``der/agents``
    sends each agent's signed ``submit_order`` transaction to ``ledger/tx`` at
    the start of every interval (for the next one) -- in a lot auction the
    sellers' ``post_lot`` then, and the buyers' sealed bids, reveals or open
    bids in the rounds of `gridledger.schedule`; receives receipts (reverts
    are logged with their reason and the agent's nonce is repaired), the
    lots' state after each round and each interval's cleared positions.

Forecasting, pricing and battery dispatch are `gridledger.federates.prosumer`;
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
from gridledger.contracts.keys import derive_account
from gridledger.federates.prosumer import (
    Order,
    contract_following_kw,
    english_bid,
    expected_exports_wh,
    limit_price_draw,
    price_per_kwh,
    price_wei_per_wh,
    sealed_bid_salt,
    vickrey_lot,
    zic_order,
)
from gridledger.federates.messages import decode, deployment
from gridledger.federates.shell import joined, run_federate
from gridledger.grids.battery import battery_step
from gridledger.interfaces import LEDGER_ENDPOINT, setpoint_key
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
        self.sealed: dict[tuple[int, int], tuple[int, int, bytes]] = {}

    def connect(self, notice: dict) -> None:
        """Sign for the chain and auction named in the ledger's deployment notice."""
        self.wallets = [Wallet(account, notice["chain_id"]) for account in self.accounts]
        self.addresses = MarketAddresses(**notice["addresses"])

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
        """Signed bids of the bidding round at `round_s` on `interval`'s lots (`gridledger.federates.prosumer`).

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
            if body["type"] == "lots":
                self.lots[body["interval"]] = [LotState(**lot) for lot in body["lots"]]
            elif body["type"] == "cleared":
                for address, position in body["positions_wh"].items():
                    self.position_wh[body["interval"], self.index_of[address]] = position
            elif body["type"] == "receipts":
                for receipt in body["receipts"]:
                    if not receipt["status"]:
                        self._rejected(receipt)

    def _rejected(self, receipt: dict) -> None:
        i = self.index_of[receipt["sender"]]
        log.warning("%s: transaction %s rejected: %s", self.sc.prosumers[i].name,
                    receipt["tx_hash"], receipt["revert_reason"])
        self.rejected[self.sent_for[(i, receipt["nonce"])], i] += 1
        if not receipt["included"]:
            self.wallets[i].nonce = receipt["nonce"]

    def setpoints(self, step: int) -> dict[str, np.ndarray]:
        """Device setpoints of every agent for one step, battery following the contract. [MW], [Mvar]"""
        study = self.sc.study
        battery = study.prosumers.battery
        interval = step * study.power_flow_step_s // study.market_interval_s
        has = self.capacity_kwh > 0
        request = np.array([contract_following_kw(self.pv_kw[step, i], self.load_kw[step, i],
                                                  int(self.position_wh[interval, i]), study.market_interval_s)
                            for i in np.flatnonzero(has)])
        p_batt_kw = np.zeros(len(self.accounts))
        p_batt_kw[has], self.soc_kwh[has] = battery_step(
            self.soc_kwh[has], request, study.power_flow_step_s, self.capacity_kwh[has], self.battery_kw[has],
            battery.efficiency, battery.soc_min, battery.soc_max)
        self.battery_p_kw[step] = p_batt_kw
        self.soc_trace_kwh[step] = self.soc_kwh
        self.steps_done = step + 1
        return {
            "load_p_mw": self.load_kw[step] / 1000.0,
            "load_q_mvar": self.load_kvar[step] / 1000.0,
            "pv_p_mw": self.pv_kw[step] / 1000.0,
            "battery_p_mw": p_batt_kw / 1000.0,
        }

    def write(self, run_dir: Path, complete: bool) -> None:
        part = Part(self.sc, "der", steps_completed=self.steps_done)
        part.add("load_p_mw", ("time", "prosumer"), self.load_kw / 1000.0, "MW", "prosumer load")
        part.add("pv_p_mw", ("time", "prosumer"), self.pv_kw / 1000.0, "MW", "prosumer PV output")
        part.add("battery_p_mw", ("time", "prosumer"), self.battery_p_kw / 1000.0, "MW",
                 "battery power, positive = charging")
        part.add("soc_kwh", ("time", "prosumer"), self.soc_trace_kwh, "kWh", "battery state of charge after the step")
        part.add("order_energy_wh", ("interval", "prosumer"), self.order_wh, "Wh",
                 "order quantity, positive = ask (sell), negative = bid (buy)")
        part.add("order_price_per_kwh", ("interval", "prosumer"), self.order_price, "token/kWh", "order limit price")
        part.add("orders_rejected", ("interval", "prosumer"), self.rejected, "1", "orders rejected by the chain")
        part.write(run_dir, complete)


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
            for action in der_actions(study):
                fed.advance(action.time_s)
                agents.handle(fed.receive())
                if action.market is not None:
                    for tx in agents.market_txs(action):
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
