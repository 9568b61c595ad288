"""The DER federate's prosumer agents: keys, wallets and nonces around their decisions.

What the agents decide is in `gridledger.agents.orders` (orders and lots),
`gridledger.agents.lot_bidding` (bids on lots), `gridledger.agents.flex_offers`
(voltage-regulation offers), `gridledger.agents.devices` (setpoints) and
`gridledger.agents.data_owners` (data stores and approvals);
:class:`DerAgents` signs those decisions with each agent's key and reads what
the ledger sends back. The DER federate (`gridledger.federates.der`) calls
:meth:`~DerAgents.connect` once, then for every action of the schedule
:meth:`~DerAgents.handle` on the messages received and :meth:`~DerAgents.act`.

A two-phase participant approves its budget to ``TwoPhaseTrade`` at the
start and again whenever the allowance it has left, tracked off chain from
the locks it signed, falls short of its next proposal's or acceptance's
lock: every lock uses allowance up, also the ones that return.

A receipt names a transaction by sender and nonce only, so every signed
transaction is remembered as (agent, nonce) -> the interval it served: a
rejection is counted against that interval and, if the transaction never
made it into a block, the agent's nonce is set back to it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from gridledger.agents.ancillary_agents import MESSAGES as ANCILLARY_MESSAGES, AncillaryAgents
from gridledger.agents.bilateral import pairs, participants, trade_id, trade_interval
from gridledger.agents.data_requests import is_study_request
from gridledger.agents.data_owners import approvals_due, consenting, write_stores
from gridledger.agents.data_store import store_path
from gridledger.agents.der_record import der_part
from gridledger.agents.emergency_reader import MAX_RECENT_H, AccessRefused, hours_asked, serve_recent
from gridledger.agents.devices import Devices, inverter_settings
from gridledger.agents.flex_offers import (Flexibility, OfferRules, bond_approvals, curtailment_offers, expected_pv_w,
                                           offer_tx, pv_owners)
from gridledger.agents.lot_bidding import SealedBids, commit_tx, open_bids, reveal_tx, sealed_bids
from gridledger.agents.orders import OrderRecord, buyers, opening_orders, order_tx, zic_orders
from gridledger.agents.prosumer import Order, expected_exports_wh
from gridledger.agents.pseudonym_plan import traded
from gridledger.agents.pseudonym_sides import HouseholdPseudonyms
from gridledger.agents.relay import signed_orders_message
from gridledger.agents.source_choosers import pv_choosers
from gridledger.contracts import charging
from gridledger.contracts import data_access, two_phase
from gridledger.contracts import flexibility
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import LotState, MarketAddresses, bid, withdraw
from gridledger.contracts.source_choice import choose_pv
from gridledger.contracts.mechanisms import BATCHED, MECHANISMS, SIGNED_ORDER_CONTRACTS
from gridledger.contracts.typed_data import SignedOrder, sign_order
from gridledger.federation import SERVICE_ENDPOINT
from gridledger.messages import decode, encode
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.schedule import DerAction
from gridledger.units import price_wei_per_wh, wei

log = logging.getLogger("gridledger.der")


def delivery_target_wh(position_wh: np.ndarray, bilateral_wh: np.ndarray) -> np.ndarray:
    """What each battery aims to deliver in an interval: the cleared position, at least the two-phase trades' sale
    and at most their purchase (the trades' energy is already in the orders that cleared). [Wh]"""
    return np.where(bilateral_wh > 0, np.maximum(position_wh, bilateral_wh),
                    np.where(bilateral_wh < 0, np.minimum(position_wh, bilateral_wh), position_wh))


@dataclass(frozen=True)
class Outbox:
    """What the agents send at one action: signed transactions in sending order, the step's setpoints (if any), and
    messages to other endpoints (the households' gateways serving emergency reads)."""

    txs: list[bytes]
    setpoints: dict[str, np.ndarray]
    messages: list[tuple[str, bytes]] = field(default_factory=list)


class DerAgents:
    """Every prosumer agent of a scenario, indexed like `Roster.prosumers`; keys and salts from the run `secret`.

    With ``data_access`` the owners keep their stores under `run_dir`.
    """

    def __init__(self, sc: Roster, secret: bytes, run_dir: Path | None = None):
        study = sc.study
        self.sc = sc
        self.secret = secret
        self.accounts = [derive_account(secret, f"prosumer/{p.name}") for p in sc.prosumers]
        self.pseudonyms = HouseholdPseudonyms(sc, secret, self.accounts) if study.pseudonyms is not None else None
        self.index_of = {a.address: i for i, a in enumerate(self.accounts)} | (
            self.pseudonyms.household_of if self.pseudonyms else {})
        self.wallets: list[Wallet] = []
        self.addresses: MarketAddresses | None = None
        self.flex_address: str | None = None
        self.charging_address: str | None = None
        self.source_choice_address: str | None = None
        self.data_access_address: str | None = None
        self.run_dir = run_dir
        self.data_requests: list[dict] = []
        self.two_phase_address: str | None = None
        self.to_accept: list[tuple[int, dict]] = []
        # What each agent has left approved to the two-phase contract, less the locks it signed since. [wei]
        self.allowance_wei = [0] * len(sc.prosumers)
        self.reads: list[dict] = []
        self.bilateral = (participants(len(sc.prosumers), study.two_phase.share, study.seed)
                          if study.two_phase is not None else np.zeros(len(sc.prosumers), dtype=bool))
        # The interval each transaction in flight serves, by (agent, nonce), until its receipt is in.
        self.sent_for: dict[tuple[int, int], int] = {}
        n, intervals = len(sc.prosumers), study.n_intervals
        self.position_wh = np.zeros((intervals, n), dtype=np.int64)
        # Prepared two-phase trades by delivery interval: sold positive, bought negative (a delivery obligation).
        self.bilateral_wh = np.zeros((intervals, n), dtype=np.int64)
        self.rejected = np.zeros((intervals, n), dtype=np.int64)
        self.lots: dict[int, list[LotState]] = {}
        self.orders = OrderRecord(intervals, n)
        self.sealed = SealedBids()
        self.flex = Flexibility(intervals, n)
        self.devices = Devices(sc)
        self.ancillary = (AncillaryAgents(sc, self.devices.duties, self.index_of)
                          if self.devices.duties is not None else None)
        self.signs_orders = (study.market.submission == BATCHED
                             and MECHANISMS[study.market.mechanism].contract in SIGNED_ORDER_CONTRACTS)

    def connect(self, notice: dict) -> None:
        """Sign for the chain and the contracts named in the ledger's deployment notice."""
        self.wallets = [Wallet(account, notice["chain_id"]) for account in self.accounts]
        self.addresses = MarketAddresses(**notice["addresses"])
        self.flex_address = notice.get("flexibility")
        self.charging_address = notice.get("charging")
        self.source_choice_address = notice.get("source_choice")
        self.data_access_address = notice.get("data_access")
        self.two_phase_address = notice.get("two_phase")
        if self.pseudonyms:
            self.pseudonyms.connect(notice)
        if self.ancillary:
            self.ancillary.connect(notice)

    def inverter_settings(self) -> dict | None:
        """The PV inverters' ratings and curves for the grid federate (`gridledger.agents.devices`)."""
        return inverter_settings(self.sc)

    def opening(self) -> list[bytes]:
        """What the agents sign before the first interval: each PV owner's approval of its bond to the
        voltage-regulation contract, each two-phase participant's budget moved to its wallet and approved to the
        trade contract, and each chooser's choice of PV-sourced energy (none without any of them).

        A rejection of either counts against interval 0.
        """
        txs = []
        if self.flex_address is not None:
            owners = pv_owners(self.devices.pv_kw)
            self.sent_for.update({(int(i), self.wallets[i].nonce): 0 for i in owners})
            txs += bond_approvals(self.wallets, owners, self.addresses.token, self.flex_address,
                                  self.sc.study.market.flexibility.bond_endowment)
        if self.two_phase_address is not None:
            budget_wei = wei(self.sc.study.two_phase.budget)
            for i in np.flatnonzero(self.bilateral):
                txs += [withdraw(self._sender(int(i), 0), self.addresses, budget_wei), self._approve_budget(int(i), 0)]
        if self.pseudonyms:
            txs += self.pseudonyms.opening(self.addresses, self._sender)
        if self.ancillary:
            txs += self.ancillary.opening(self.addresses.token, self._sender)
        if self.source_choice_address is not None:
            study = self.sc.study
            for i in pv_choosers(study.market.source_choice, [p.name for p in self.sc.prosumers], study.seed):
                self.sent_for[(i, self.wallets[i].nonce)] = 0
                txs.append(choose_pv(self.wallets[i], self.source_choice_address))
        return txs

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Read the ledger's messages: receipts, cleared positions, lots, flex requests and awards, EV admissions and
        emergency cuts of them, data requests; from the grid, what the batteries ran at while they ran an island."""
        for _, payload in messages:
            body = decode(payload)
            if body["type"] == "flex_requests":
                self.flex.add_requests(body["requests"])
            elif body["type"] == "flex_awards":
                self.flex.award(body["awards"], self.index_of)
            elif body["type"] == "charging":
                admitted = {self.index_of[a]: p_w for a, p_w in body["admitted_w"].items()}
                if self.ancillary:
                    admitted = self.ancillary.admit(body["window"], admitted)
                self.devices.evs.admit(body["window"], admitted)
            elif body["type"] == "island":
                for i, p_mw in body["battery_p_mw"].items():
                    self.devices.formed_island(body["step"], int(i), p_mw)
            elif body["type"] == "charging_cut":
                self.devices.evs.cut(body["window"], self.index_of[body["account"]], body["admitted_w"])
            elif body["type"] == "lots":
                self.lots[body["interval"]] = [LotState(**lot) for lot in body["lots"]]
            elif body["type"] == "cleared":
                for address, position in body["positions_wh"].items():
                    self.position_wh[body["interval"], self.index_of[address]] = position
            elif body["type"] == "rejected":
                for rejection in body["rejections"]:
                    self._rejected_order(body["interval"], rejection)
            elif body["type"] == "two_phase_events":
                self.to_accept += [(self.index_of[t["seller"]], t) for t in body["proposed"]
                                   if t["seller"] in self.index_of]
                for t in body["prepared"]:
                    k = trade_interval(t["trade_id"])
                    self.bilateral_wh[k, self.index_of[t["seller"]]] += t["energy_wh"]
                    self.bilateral_wh[k, self.index_of[t["buyer"]]] -= t["energy_wh"]
            elif body["type"] == "emergency_reads":
                self.reads += [r for r in body["reads"] if r["household"] in self.index_of]
            elif body["type"] == "blind_signatures":
                self.pseudonyms.requests.answered(body)
            elif body["type"] == "data_events":
                self.data_requests += body["requests"]
            elif body["type"] in ANCILLARY_MESSAGES:
                self.ancillary.handle(body)
            elif body["type"] == "receipts":
                for receipt in body["receipts"]:
                    if not receipt["status"]:
                        self._rejected(receipt)
                    self.sent_for.pop((self.index_of[receipt["sender"]], receipt["nonce"]), None)

    def _rejected_order(self, interval: int, rejection: dict) -> None:
        """Count a signed order the contract skipped against its signer (none if the signature was bad)."""
        i = self.index_of.get(rejection["signer"])
        who = self.sc.prosumers[i].name if i is not None else rejection["signer"]
        log.warning("%s: signed order of interval %d rejected: %s", who, interval, rejection["reason"])
        if i is not None:
            self.rejected[interval, i] += 1

    def _rejected(self, receipt: dict) -> None:
        i, nonce = self.index_of[receipt["sender"]], receipt["nonce"]
        log.warning("%s: transaction %s rejected: %s", self.sc.prosumers[i].name,
                    receipt["tx_hash"], receipt["revert_reason"])
        self.rejected[self.sent_for[(i, nonce)], i] += 1
        self.sealed.rejected(i, nonce)
        if not receipt["included"]:
            self.wallets[i].nonce = nonce

    def act(self, action: DerAction) -> Outbox:
        """One action of the schedule: market transactions, then flexibility and charging ones, then data approvals,
        then setpoints."""
        txs = self.market_txs(action) if action.market is not None else []
        if self.two_phase_address is not None:
            txs += self.two_phase_txs(action)
        if action.flex_interval is not None:
            txs += self.flex_txs(action.flex_interval)
        if action.data:
            txs += self.data_txs()
        return Outbox(txs, self.setpoints(action.step) if action.step is not None else {}, self.served())

    def _sender(self, i: int, interval: int) -> Wallet:
        """Agent `i`'s wallet, its next transaction noted as serving `interval`."""
        wallet = self.wallets[i]
        self.sent_for[(i, wallet.nonce)] = interval
        return wallet

    def market_txs(self, action: DerAction) -> list[bytes]:
        """Orders or lots at an interval's start, bids in a bidding round, or reveals after the gate."""
        k = action.interval
        if action.market == "orders":
            if self.pseudonyms:
                return self.pseudonyms.before_orders(k, self._sender) + (
                    self._signed_orders(k) if traded(k, self.sc.study.n_intervals) else [])
            if self.signs_orders:
                return self._signed_orders(k)
            return [order_tx(self._sender(i, k), self.addresses, order) for i, order in self._placed(k)]
        if action.market == "bid":
            return self._bids(k, action.time_s)
        return [reveal_tx(self._sender(b.agent, k), self.addresses, b) for b in self.sealed.to_reveal(k)]

    def _placed(self, interval: int) -> list[tuple[int, Order]]:
        """The agents' orders of `interval` as the mechanism takes them, recorded."""
        placed = opening_orders(zic_orders(self.sc, interval), MECHANISMS[self.addresses.mechanism])
        for i, order in placed:
            self.orders.record(i, order)
        return placed

    def _signed_orders(self, interval: int) -> list[bytes]:
        """The ``signed_orders`` message of `interval`'s orders; none if nobody orders."""
        placed = self._placed(interval)
        return [signed_orders_message(interval, [self._signed(i, order) for i, order in placed])] if placed else []

    def _signed(self, i: int, order: Order) -> SignedOrder:
        """Agent `i`'s `order` signed as EIP-712 typed data for the market's book, to be relayed: by its pseudonym of
        the order's interval with ``pseudonyms``."""
        signer = self.pseudonyms.account(i, order.interval) if self.pseudonyms else self.accounts[i]
        return sign_order(signer, self.wallets[i].chain_id, self.addresses.auction, interval=order.interval,
                          is_ask=order.is_ask, energy_wh=order.energy_wh, price_wei_per_wh=order.price_wei_per_wh)

    def _bids(self, interval: int, round_s: float) -> list[bytes]:
        study = self.sc.study
        lots = self.lots.get(interval, [])
        bidders = buyers(zic_orders(self.sc, interval))
        txs = []
        if MECHANISMS[self.addresses.mechanism].reveal_after_gate:
            for sealed in sealed_bids(bidders, lots, self.secret, interval):
                self.orders.record(sealed.agent, sealed.order)
                wallet = self._sender(sealed.agent, interval)
                self.sealed.committed(sealed, wallet.nonce)
                txs.append(commit_tx(wallet, self.addresses, sealed))
            return txs
        increment = price_wei_per_wh(study.market.bid_increment_per_kwh)
        for raised in open_bids(bidders, lots, [a.address for a in self.accounts], increment, study.seed, interval,
                                round_s):
            self.orders.record(raised.agent, raised.order)
            txs.append(bid(self._sender(raised.agent, interval), self.addresses, raised.lot_id,
                           price_wei_per_wh=raised.order.price_wei_per_wh))
        return txs

    def flex_txs(self, interval: int) -> list[bytes]:
        """Curtailment offers to `interval`'s requests, then the EVs' charging requests for that window."""
        study = self.sc.study
        offers = curtailment_offers(self.flex.requests.get(interval, []), [p.bus for p in self.sc.prosumers],
                                    expected_pv_w(self.sc, interval), OfferRules.of(self.sc),
                                    price_wei_per_wh(study.market.grid_sell_price_per_kwh), study.seed, interval)
        txs = []
        for offer in offers:
            self.flex.offered(interval, offer)
            txs.append(offer_tx(self._sender(offer.agent, interval), self.flex_address, offer))
        if self.ancillary:
            txs += self.ancillary.offers(interval, self.devices.soc_kwh, self._sender)
        if self.charging_address is None:
            return txs
        requests = self.devices.evs.requests(interval)
        if self.ancillary:
            requests += [r for _, r in self.ancillary.charge_requests(interval, self.devices.soc_kwh)]
        return txs + [charging.request_charge(self._sender(r.owner, interval), self.charging_address, interval,
                                              r.on_chain(self.accounts[r.owner].address, study.start_timestamp))
                      for r in requests]

    def two_phase_txs(self, action: DerAction) -> list[bytes]:
        """The sellers' acceptances of the proposals made to them, then (with an interval's orders) the buyers'
        proposals of bilateral trades for that interval (`gridledger.agents.bilateral`); each after its agent's
        approval of its budget again if its allowance left is short of the lock (`_lock`)."""
        study = self.sc.study
        price = price_wei_per_wh(study.two_phase.premium_per_kwh)
        txs = []
        for i, t in self.to_accept:
            if self._agreed(t):
                k = trade_interval(t["trade_id"])
                txs += self._lock(i, k, t["energy_wh"] * price)
                txs.append(two_phase.accept(self._sender(i, k), self.two_phase_address,
                                            bytes.fromhex(t["trade_id"][2:])))
        self.to_accept = []
        if action.market != "orders":
            return txs
        k = action.interval
        deadline = study.start_timestamp + (k + 1 + study.two_phase.deadline_intervals) * study.market_interval_s
        for buyer, seller, energy_wh in pairs(expected_exports_wh(self.sc, k), self.bilateral, study.two_phase.firm_share):
            txs += self._lock(buyer, k, energy_wh * price)
            txs.append(two_phase.propose(self._sender(buyer, k), self.two_phase_address,
                                         trade_id(k, self.accounts[buyer].address),
                                         seller=self.accounts[seller].address, energy_wh=energy_wh,
                                         price_wei_per_wh=price, deadline_timestamp=deadline))
        return txs

    def _approve_budget(self, i: int, interval: int) -> bytes:
        """Agent `i`'s approval of its two-phase budget to the trade contract, serving `interval`; its allowance is
        then the budget (an approval replaces the one before)."""
        budget_wei = wei(self.sc.study.two_phase.budget)
        self.allowance_wei[i] = budget_wei
        return flexibility.approve(self._sender(i, interval), self.addresses.token, self.two_phase_address, budget_wei)

    def _lock(self, i: int, interval: int, lock_wei: int) -> list[bytes]:
        """Agent `i`'s approval of its budget again if its allowance left is below `lock_wei`, the value its next
        proposal or acceptance locks (every proposal is at the study's premium); the lock then counts against the
        allowance. [wei]"""
        txs = [self._approve_budget(i, interval)] if self.allowance_wei[i] < lock_wei else []
        self.allowance_wei[i] -= lock_wei
        return txs

    def served(self) -> list[tuple[str, bytes]]:
        """Each household gateway's answer to the reads logged on chain for it: its store written up to now, then
        its recent data if the chain's refusal is empty (`gridledger.agents.emergency_reader`); nothing otherwise."""
        messages = []
        for read in self.reads:
            i = self.index_of[read["household"]]
            name, hours = self.sc.prosumers[i].name, hours_asked(read["note"])
            if hours is None or not 1 <= hours <= MAX_RECENT_H:
                log.warning("%s: emergency read %r asks for no span the gateway serves (1 to %d h)", name,
                            read["note"], MAX_RECENT_H)
                continue
            write_stores(self.run_dir, self.sc, self.devices, only=i)
            try:
                served = serve_recent(lambda *_: read["refusal"], read["account"], read["household"],
                                      store_path(self.run_dir, name), hours=hours,
                                      step_s=self.sc.study.power_flow_step_s)
            except AccessRefused as refused:
                log.warning("%s: emergency read by %s refused: %s", name, read["account"], refused.reason)
                continue
            messages.append((SERVICE_ENDPOINT, encode("emergency_data", account=read["account"], household=name,
                                                      columns=list(served.columns),
                                                      values_kw=served.values_kw.tolist())))
        self.reads = []
        return messages

    def _agreed(self, proposal: dict) -> bool:
        """Whether a proposal is the trade the seller's own pairing expects: same interval, buyer and energy (the
        contract then holds the price the buyer locked, which the seller does not see here)."""
        k = trade_interval(proposal["trade_id"])
        if k is None or not 0 <= k < self.sc.study.n_intervals:
            return False
        expected = {(self.accounts[b].address, self.accounts[s].address, e)
                    for b, s, e in pairs(expected_exports_wh(self.sc, k), self.bilateral,
                                         self.sc.study.two_phase.firm_share)}
        agreed = (proposal["buyer"], proposal["seller"], proposal["energy_wh"]) in expected
        if not agreed:
            log.warning("two-phase proposal %s is not the agreed trade; not accepted", proposal["trade_id"])
        return agreed

    def data_txs(self) -> list[bytes]:
        """Every owner's store written; the consenting owners' approvals of the requests that list them."""
        study = self.sc.study
        write_stores(self.run_dir, self.sc, self.devices)
        consent = consenting(len(self.accounts), study.data_access.approve_share, study.seed)
        requestor = derive_account(self.secret, "requestor").address
        requests = [r for r in self.data_requests if is_study_request(self.sc, requestor, r)]
        last = study.n_intervals - 1
        return [data_access.approve(self._sender(i, last), self.data_access_address, bytes.fromhex(rid[2:]))
                for i, rid in approvals_due(requests, [a.address for a in self.accounts], consent)]

    def setpoints(self, step: int) -> dict[str, np.ndarray]:
        """Every agent's device setpoints for `step`, the battery following the cleared position and the prepared
        two-phase trades. [MW], [Mvar]"""
        k = step // self.sc.study.steps_per_interval
        return self.devices.step(step, delivery_target_wh(self.position_wh[k], self.bilateral_wh[k]),
                                 self.flex.curtail_kw[k], self.charging_address is not None)

    def part(self) -> Part:
        """The ``der`` results part so far."""
        flexibility = self.flex if self.flex_address is not None else None
        return der_part(self.sc, self.devices, self.orders, self.rejected, flexibility)
