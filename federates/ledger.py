"""Ledger federate: the embedded chain, its market contracts and their clock.

Endpoint ``ledger/tx``
    receives signed raw transactions (orders from ``der/agents``, meter
    readings from ``grid/meters``); mines them into one block per action
    with block timestamp = study start + simulation time; returns every
    receipt (status, revert reason, gas) to the endpoint that sent the
    transaction; sends each interval's cleared positions to ``der/agents``.

Before time 0 it deploys the contracts (`gridledger.contracts.market`) in
setup blocks and tells agents and meters where they are. At each gate
closure it clears the next interval: the operator reads the book from the
chain, sorts it off-chain and calls ``clear``, which verifies the order in
O(N) on-chain. In a lot auction it sends the agents the state of the
interval's lots after every bidding round, and at the end of the auction
(vickrey: the operator's ``finalise`` after the reveals; english: the
gate) reads every prosumer's position from the contract. After the run
the chain is exported to ``chain/``.

With the voltage-regulation market on it also deploys
``VoltageRegulation.vy`` (the DSO is its operator), mints the DSO's budget
and the prosumers' bond tokens, tells the agents of every request posted,
awards each interval's requests at its gate (anyone may; the ledger's
operator does it) and tells agents and meters the awards, and closes each
request once its delivery deadline has passed.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.client import encode_call
from gridledger.contracts.keys import derive_account
from gridledger.contracts.reference import SourceMix, consumed_mix
from gridledger.contracts.market import (
    MarketAddresses,
    book,
    clear,
    deploy_market,
    finalise,
    lot_states,
    post_demand,
    read,
    settle_operator,
)
from gridledger.contracts import charging
from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.contracts import flexibility as flex
from gridledger.messages import encode
from gridledger.agents.prosumer import expected_exports_wh
from gridledger.units import WEI_PER_TOKEN, price_per_kwh, price_wei_per_wh
from gridledger.federates.shell import joined, run_federate
from gridledger.interfaces import DER_ENDPOINT, GRID_ENDPOINT, OPERATOR_ENDPOINT
from gridledger.results import Part
from gridledger.scenario import Scenario, load_scenario
from gridledger.schedule import ledger_actions, stop_time_s

log = logging.getLogger("gridledger.ledger")
SETUP_LEAD_S = 60


class LedgerRecord:
    """Per-interval market outcome and per-prosumer settlement, decoded from chain events."""

    # Energy sources Settlement tracks, as the prefixes of its SourceMix fields.
    SOURCES = ("pv", "battery", "grid")
    SOURCE_NAMES = {"pv": "PV", "battery": "battery discharge", "grid": "the grid"}

    def __init__(self, sc: Scenario, prosumer_addresses: list[str]):
        n_int, n_pro = sc.study.n_intervals, len(sc.prosumers)
        self.sc = sc
        self.addresses = prosumer_addresses
        self.index_of = {a: i for i, a in enumerate(prosumer_addresses)}
        self.price = np.full(n_int, np.nan)
        self.volume_wh = np.zeros(n_int, dtype=np.int64)
        self.gas_used = np.zeros(n_int, dtype=np.int64)
        self.transactions = np.zeros(n_int, dtype=np.int64)
        self.reverted = np.zeros(n_int, dtype=np.int64)
        self.position_wh = np.zeros((n_int, n_pro), dtype=np.int64)
        self.p2p = np.zeros((n_int, n_pro))
        self.fee = np.zeros((n_int, n_pro))
        self.imbalance = np.zeros((n_int, n_pro))
        self.settled = np.zeros((n_int, n_pro), dtype=np.int8)
        self.settled_import_wh = np.zeros((n_int, n_pro), dtype=np.int64)
        self.settled_position_wh = np.zeros((n_int, n_pro), dtype=np.int64)
        self.sold_wh = {source: np.zeros((n_int, n_pro), dtype=np.int64) for source in self.SOURCES}
        self.supply_conserved = False
        self.flex: FlexDesk | None = None
        self.charging: ChargingDesk | None = None

    def block(self, interval: int, receipts: list[Receipt], chain: Chain) -> None:
        """Account a mined block's gas and events to the market interval it happened in."""
        interval = min(interval, len(self.gas_used) - 1)
        self.gas_used[interval] += sum(r.gas_used for r in receipts)
        self.transactions[interval] += len(receipts)
        self.reverted[interval] += sum(not r.ok for r in receipts)
        for receipt in receipts:
            for event in filter(None, map(chain.decode, receipt.logs)):
                if event.contract != flex.CONTRACT:
                    self._event(event.event, event.args)

    def _event(self, name: str, args: dict) -> None:
        if name == "Cleared":
            self.price[args["interval"]] = price_per_kwh(args["price_wei_per_wh"])
            self.volume_wh[args["interval"]] = args["volume_wh"]
        elif name == "Trade":
            self.position_wh[args["interval"], self.index_of[args["account"]]] = args["position_wh"]
        elif name == "Settled":
            k, i = args["interval"], self.index_of[args["prosumer"]]
            self.p2p[k, i] = args["p2p_wei"] / WEI_PER_TOKEN
            self.fee[k, i] = args["fee_wei"] / WEI_PER_TOKEN
            self.imbalance[k, i] = args["imbalance_wei"] / WEI_PER_TOKEN
            self.settled[k, i] = 1
            self.settled_import_wh[k, i] = args["import_wh"]
            self.settled_position_wh[k, i] = args["position_wh"]
        elif name == "Sourced":
            k, i = args["interval"], self.index_of[args["seller"]]
            for source in self.SOURCES:
                self.sold_wh[source][k, i] = args[f"{source}_wh"]

    def consumed_wh(self) -> dict[str, np.ndarray]:
        """Each prosumer's imported energy per interval by source, as ``Settlement.consumed_mix`` splits it. [Wh]

        Its peer-to-peer part takes the interval's sold mix (the sum of the
        ``Sourced`` events) pro rata; the rest of the import is grid.
        """
        consumed = {source: np.zeros_like(self.settled_import_wh) for source in self.SOURCES}
        for k in range(self.settled_import_wh.shape[0]):
            sold = SourceMix(*(int(self.sold_wh[source][k].sum()) for source in self.SOURCES))
            for i in range(self.settled_import_wh.shape[1]):
                mix = consumed_mix(int(self.settled_position_wh[k, i]), int(self.settled_import_wh[k, i]), sold)
                for source in self.SOURCES:
                    consumed[source][k, i] = getattr(mix, f"{source}_wh")
        return consumed

    def lots_cleared(self, chain: Chain, addresses: MarketAddresses, interval: int) -> dict[str, int]:
        """Record a lot auction's final positions, read from the contract; return them by address. [Wh]

        The interval's price is the volume-weighted mean of the lots' prices.
        """
        contract = addresses.auction_contract
        positions = {a: read(chain, addresses.auction, contract, "position_wh", interval, a) for a in self.addresses}
        received_wei = sum(max(0, read(chain, addresses.auction, contract, "value_wei", interval, a))
                           for a, q in positions.items() if q > 0)
        volume_wh = sum(q for q in positions.values() if q > 0)
        for address, position in positions.items():
            self.position_wh[interval, self.index_of[address]] = position
        self.volume_wh[interval] = volume_wh
        if volume_wh:
            self.price[interval] = price_per_kwh(received_wei / volume_wh)
        return positions

    def write(self, run_dir: Path, complete: bool, **attrs: object) -> None:
        part = Part(self.sc, "ledger", token_supply_conserved=int(self.supply_conserved), **attrs)
        part.add("address", ("prosumer",), np.array(self.addresses, dtype=object), "1", "prosumer's account on chain")
        part.add("clearing_price_per_kwh", ("interval",), self.price, "token/kWh", "uniform clearing price")
        part.add("cleared_volume_wh", ("interval",), self.volume_wh, "Wh", "energy matched peer to peer")
        part.add("gas_used", ("interval",), self.gas_used, "gas", "gas used by blocks mined in the interval")
        part.add("transactions", ("interval",), self.transactions, "1", "transactions submitted in the interval")
        part.add("transactions_reverted", ("interval",), self.reverted, "1", "transactions reverted or rejected")
        part.add("position_wh", ("interval", "prosumer"), self.position_wh, "Wh",
                 "cleared position, positive = sold")
        part.add("p2p_token", ("interval", "prosumer"), self.p2p, "token",
                 "peer-to-peer payment at the clearing price, positive = received")
        part.add("fee_token", ("interval", "prosumer"), self.fee, "token", "grid fee paid on energy bought")
        part.add("imbalance_token", ("interval", "prosumer"), self.imbalance, "token",
                 "imbalance settled with the grid, positive = received")
        part.add("settled", ("interval", "prosumer"), self.settled, "1", "meter reading settled on chain")
        for source, consumed in self.consumed_wh().items():
            part.add(f"sold_{source}_wh", ("interval", "prosumer"), self.sold_wh[source], "Wh",
                     f"sold position attributed to {self.SOURCE_NAMES[source]} (Settlement Sourced event)")
            part.add(f"consumed_{source}_wh", ("interval", "prosumer"), consumed, "Wh",
                     f"imported energy attributed to {self.SOURCE_NAMES[source]} (Settlement.consumed_mix)")
        if self.flex:
            self.flex.write(part)
        if self.charging:
            self.charging.write(part)
        part.write(run_dir, complete)


def _receipt_json(receipt: Receipt) -> dict:
    return {"tx_hash": receipt.tx_hash.hex(), "sender": receipt.sender, "nonce": receipt.nonce,
            "status": receipt.status, "included": receipt.block_number is not None,
            "revert_reason": receipt.revert_reason, "gas_used": receipt.gas_used}


def _route_receipts(fed, sources: list[str], receipts: list[Receipt]) -> None:
    """Send every receipt back to the endpoint its transaction came from; log the failures."""
    by_source: dict[str, list[dict]] = {}
    for source, receipt in zip(sources, receipts):
        by_source.setdefault(source, []).append(_receipt_json(receipt))
        if not receipt.ok:
            log.warning("transaction from %s (%s) failed: %s", receipt.sender, source, receipt.revert_reason)
    for source, rows in by_source.items():
        fed.send(source, encode("receipts", receipts=rows))


def run(run_dir: Path) -> None:
    sc = load_scenario(run_dir)
    study, market = sc.study, sc.study.market
    start_ts = study.start_timestamp
    operator_account = derive_account(study.seed, "operator")
    prosumers = [derive_account(study.seed, f"prosumer/{p.name}").address for p in sc.prosumers]
    meters = [derive_account(study.seed, f"meter/{p.name}").address for p in sc.prosumers]
    dso = [derive_account(study.seed, "dso").address] if market.voltage_regulation or market.charging_coordination else []
    chain = Chain([operator_account.address, *prosumers, *meters, *dso], genesis_timestamp=start_ts - SETUP_LEAD_S)
    operator = chain.wallet(operator_account)
    endowment_wei = round(market.endowment * WEI_PER_TOKEN)
    addresses = deploy_market(
        chain, operator, prosumers=prosumers, meters=dict(zip(prosumers, meters)), start_timestamp=start_ts,
        interval_s=study.market_interval_s, gate_closure_s=market.gate_closure_s,
        price_cap_wei_per_wh=price_wei_per_wh(market.price_cap_per_kwh),
        grid_buy_price_wei_per_wh=price_wei_per_wh(market.grid_buy_price_per_kwh),
        grid_sell_price_wei_per_wh=price_wei_per_wh(market.grid_sell_price_per_kwh),
        grid_fee_wei_per_wh=price_wei_per_wh(market.grid_fee_per_kwh),
        endowment_wei=endowment_wei, operator_deposit_wei=endowment_wei * len(prosumers),
        mechanism=market.mechanism, reveal_s=market.reveal_window_s,
        bid_increment_wei_per_wh=price_wei_per_wh(market.bid_increment_per_kwh),
    )
    desk = FlexDesk.deploy(sc, chain, operator, addresses, prosumers, dso[0]) if market.voltage_regulation else None
    chargers = ChargingDesk.deploy(sc, chain, operator, addresses, dso[0]) if market.charging_coordination else None
    supply_wei = read(chain, addresses.token, "GridToken", "totalSupply")
    record = LedgerRecord(sc, prosumers)
    record.flex = desk
    record.charging = chargers
    notice = encode("deployed", addresses=dataclasses.asdict(addresses), chain_id=chain.chain_id,
                    flexibility=desk.address if desk else None, charging=chargers.address if chargers else None)
    operator_txs = close_auction(chain, operator, addresses, 0, market.clearing)
    with joined(run_dir, "ledger", stop_time_s(study)) as fed:
        finished = False
        try:
            fed.initialize()
            fed.send(DER_ENDPOINT, notice)
            fed.send(GRID_ENDPOINT, notice)
            if dso:
                fed.send(OPERATOR_ENDPOINT, notice)
            fed.enter()
            for action in ledger_actions(study):
                fed.advance(action.time_s)
                timestamp = start_ts + int(action.time_s)
                interval = int(action.time_s // study.market_interval_s)
                if action.kind == "mine":
                    messages = sorted(fed.receive(), key=lambda m: m[0])
                    operator_txs += operator_duties(sc, operator, addresses, interval)
                    receipts = chain.mine(operator_txs + [tx for _, tx in messages], timestamp)
                    own, receipts_in = receipts[:len(operator_txs)], receipts[len(operator_txs):]
                    if not all(r.ok for r in own):
                        raise RuntimeError(f"operator transaction reverted: {[r.revert_reason for r in own]}")
                    operator_txs = []
                    _route_receipts(fed, [source for source, _ in messages], receipts_in)
                    if action.interval is not None:
                        lots = [dataclasses.asdict(lot) for lot in lot_states(chain, addresses, action.interval)]
                        fed.send(DER_ENDPOINT, encode("lots", interval=action.interval, lots=lots))
                    if desk and (posted := desk.posted(receipts)):
                        fed.send(DER_ENDPOINT, encode("flex_requests", requests=posted))
                    if chargers:
                        chargers.requested(receipts)
                else:
                    closing = close_auction(chain, operator, addresses, action.interval, market.clearing)
                    flex_txs = desk.gate(operator, action.interval, timestamp) if desk else []
                    charge_txs = chargers.gate(operator, action.interval) if chargers else []
                    receipts = chain.mine(closing + flex_txs + charge_txs, timestamp)
                    if chargers:
                        admitted = chargers.allocated(receipts[len(closing) + len(flex_txs):], action.interval)
                        fed.send(DER_ENDPOINT, encode("charging", window=action.interval, admitted_w=admitted))
                    if desk:
                        awards = desk.awarded(receipts[len(closing):len(closing) + len(flex_txs)])
                        fed.send(DER_ENDPOINT, encode("flex_awards", awards=awards))
                        fed.send(GRID_ENDPOINT, encode("flex_awards", awards=awards))
                    if not all(r.ok for r in receipts):
                        raise RuntimeError(f"clearing interval {action.interval} reverted: "
                                           f"{[r.revert_reason for r in receipts]}")
                    if MECHANISMS[addresses.mechanism].is_lot_auction:
                        positions = record.lots_cleared(chain, addresses, action.interval)
                    else:
                        positions = {e.args["account"]: e.args["position_wh"]
                                     for e in filter(None, map(chain.decode, receipts[0].logs)) if e.event == "Trade"}
                    fed.send(DER_ENDPOINT, encode("cleared", interval=action.interval, positions_wh=positions))
                record.block(interval, receipts, chain)
            record.supply_conserved = tokens_conserved(chain, addresses, supply_wei,
                                                       [*prosumers, operator.address])
            if desk:
                record.supply_conserved &= desk.tokens_held_match(chain)
            finished = True
        finally:
            chain.export(run_dir / "chain")
            record.write(run_dir, complete=finished, **dataclasses.asdict(addresses))


def contract_events(chain: Chain, receipts: list[Receipt], contract: str):
    """(event name, args) of every log of `contract` in the receipts, in order."""
    for receipt in receipts:
        for event in filter(None, map(chain.decode, receipt.logs)):
            if event.contract == contract:
                yield event.event, event.args


class FlexDesk:
    """The ledger's side of the voltage-regulation market: deployment, awards, closing, and its record.

    Requests are known from their ``RequestPosted`` events; each belongs to
    the market interval its window starts.
    """

    def __init__(self, sc: Scenario, chain: Chain, address: str, token: str):
        study = sc.study
        self.sc, self.chain, self.address, self.token = sc, chain, address, token
        self.requests: dict[int, dict] = {}
        self.offers: dict[int, int] = {}
        self.open: set[int] = set()
        n = study.n_intervals
        self.requested_wh = np.zeros(n, dtype=np.int64)
        self.awarded_wh = np.zeros(n, dtype=np.int64)
        self.delivered_wh = np.zeros(n, dtype=np.int64)
        self.payment_wei = np.zeros(n, dtype=object)
        self.penalty_wei = np.zeros(n, dtype=object)
        self.offers_per_interval = np.zeros(n, dtype=np.int64)

    @classmethod
    def deploy(cls, sc: Scenario, chain: Chain, operator, addresses: MarketAddresses, prosumers: list[str],
               dso: str) -> "FlexDesk":
        """Deploy the contract with the DSO as its operator and mint the DSO's budget and the bond tokens."""
        study, settings = sc.study, sc.study.market.flexibility
        address = flex.deploy_voltage_regulation(
            chain, operator, addresses.registry, addresses.token, operator_address=dso,
            penalty_permille=round(settings.penalty_factor * 1000),
            delivery_period_s=study.market_interval_s - study.market.gate_closure_s)
        mints = [(dso, round(settings.operator_budget * WEI_PER_TOKEN))]
        mints += [(p, round(settings.bond_endowment * WEI_PER_TOKEN)) for p in prosumers if settings.bond_endowment]
        txs = [operator.transact(addresses.token, encode_call("GridToken", "mint", to, amount), gas=flex.GAS_APPROVE)
               for to, amount in mints]
        failed = [r.revert_reason for r in chain.mine(txs, chain.timestamp + 1) if not r.ok]
        if failed:
            raise RuntimeError(f"flexibility setup: minting failed: {failed}")
        return cls(sc, chain, address, addresses.token)

    def _interval(self, timestamp: int) -> int:
        return (timestamp - self.sc.study.start_timestamp) // self.sc.study.market_interval_s

    def _events(self, receipts: list[Receipt]):
        return contract_events(self.chain, receipts, flex.CONTRACT)

    def posted(self, receipts: list[Receipt]) -> list[dict]:
        """Record the requests and offers the receipts carry; return the new requests for the agents."""
        new = []
        for name, args in self._events(receipts):
            if name == "RequestPosted":
                k = self._interval(args["window_start_timestamp"])
                request = {"request_id": args["request_id"], "interval": k,
                           "zone": dict(zip(args["zone_buses"], args["sensitivities_upu_per_kw"])),
                           "p_w": args["p_w"], "price_cap_wei_per_wh": args["price_cap_wei_per_wh"],
                           "window_s": args["window_end_timestamp"] - args["window_start_timestamp"],
                           "close_after": args["window_end_timestamp"]
                           + self.sc.study.market_interval_s - self.sc.study.market.gate_closure_s}
                self.requests[args["request_id"]] = request
                self.offers[args["request_id"]] = 0
                self.open.add(args["request_id"])
                self.requested_wh[k] += args["p_w"] * request["window_s"] // 3600
                new.append(request)
            elif name == "Offered":
                self.offers[args["request_id"]] += 1
                self.offers_per_interval[self.requests[args["request_id"]]["interval"]] += 1
            elif name == "Settled":
                k = self.requests[args["request_id"]]["interval"]
                self.delivered_wh[k] += args["delivered_wh"]
                self.payment_wei[k] += args["payment_wei"]
                self.penalty_wei[k] += args["penalty_wei"]
        return new

    def gate(self, sender, interval: int, timestamp: int) -> list[bytes]:
        """Award the requests of `interval`; close those whose delivery deadline has passed."""
        txs = [flex.award(sender, self.address, rid, n_offers=self.offers[rid])
               for rid, r in sorted(self.requests.items()) if r["interval"] == interval]
        for rid in sorted(self.open):
            if timestamp >= self.requests[rid]["close_after"]:
                txs.append(flex.close(sender, self.address, rid, n_offers=self.offers[rid]))
                self.open.discard(rid)
        return txs

    def awarded(self, receipts: list[Receipt]) -> list[dict]:
        """The awards in the receipts, by request: ``{request_id, interval, p_w: {der: W}}``."""
        if not all(r.ok for r in receipts):
            raise RuntimeError(f"flexibility award or close reverted: {[r.revert_reason for r in receipts if not r.ok]}")
        self.posted(receipts)
        awards: dict[int, dict] = {}
        for name, args in self._events(receipts):
            if name == "Awarded" and args["p_w"]:
                rid = args["request_id"]
                k = self.requests[rid]["interval"]
                awards.setdefault(rid, {"request_id": rid, "interval": k, "p_w": {}})["p_w"][args["der"]] = args["p_w"]
                self.awarded_wh[k] += args["energy_wh"]
        return list(awards.values())

    def tokens_held_match(self, chain: Chain) -> bool:
        """The contract holds exactly what its open requests still hold (budgets and bonds)."""
        held = sum(flex.read(chain, self.address, "held_wei", rid) for rid in self.requests)
        return read(chain, self.token, "GridToken", "balanceOf", self.address) == held

    def write(self, part: Part) -> None:
        part.add("flex_requested_wh", ("interval",), self.requested_wh, "Wh",
                 "flexibility requested by the operator for the interval")
        part.add("flex_offers", ("interval",), self.offers_per_interval, "1", "flexibility offers received")
        part.add("flex_awarded_wh", ("interval",), self.awarded_wh, "Wh", "flexibility awarded")
        part.add("flex_delivered_wh", ("interval",), self.delivered_wh, "Wh",
                 "flexibility delivered, as posted by the meters")
        part.add("flex_payment_token", ("interval",), self.payment_wei.astype(float) / WEI_PER_TOKEN, "token",
                 "paid for delivered flexibility")
        part.add("flex_penalty_token", ("interval",), self.penalty_wei.astype(float) / WEI_PER_TOKEN, "token",
                 "penalties for flexibility not delivered")


class ChargingDesk:
    """The ledger's side of EV charging coordination: deployment, allocation at each gate, and its record.

    Window w of the contract is market interval w; requests close at the
    gate of their interval, where the ledger's operator calls ``allocate``
    (anyone may).
    """

    def __init__(self, sc: Scenario, chain: Chain, address: str):
        self.sc, self.chain, self.address = sc, chain, address
        n = sc.study.n_intervals
        self.requests = np.zeros(n, dtype=np.int64)
        self.requested_w = np.zeros(n, dtype=np.int64)
        self.admitted_w = np.zeros(n, dtype=np.int64)
        self.headroom_w = np.zeros(n, dtype=np.int64)

    @classmethod
    def deploy(cls, sc: Scenario, chain: Chain, operator, addresses: MarketAddresses, dso: str) -> "ChargingDesk":
        """Deploy the contract on the market's registry and give the DSO the operator role there."""
        study = sc.study
        address = charging.deploy_charging(chain, operator, registry=addresses.registry,
                                           start_timestamp=study.start_timestamp, window_s=study.market_interval_s,
                                           request_lead_s=study.market.gate_closure_s)
        grant = operator.transact(addresses.registry, encode_call("Registry", "grant_role", dso, 1),
                                  gas=flex.GAS_APPROVE)
        (receipt,) = chain.mine([grant], chain.timestamp + 1)
        if not receipt.ok:
            raise RuntimeError(f"charging setup: granting the DSO the operator role failed: {receipt.revert_reason}")
        return cls(sc, chain, address)

    def _events(self, receipts: list[Receipt]):
        return contract_events(self.chain, receipts, charging.CONTRACT)

    def requested(self, receipts: list[Receipt]) -> None:
        """Count the charging requests and headrooms the receipts carry."""
        for name, args in self._events(receipts):
            if name == "ChargeRequested" and args["window"] < len(self.requests):
                self.requests[args["window"]] += 1
                self.requested_w[args["window"]] += args["power_w"]
            elif name == "HeadroomPosted" and args["window"] < len(self.requests):
                self.headroom_w[args["window"]] = args["headroom_w"]

    def gate(self, sender, interval: int) -> list[bytes]:
        """``allocate`` of `interval`'s window if its headroom was posted."""
        if not self.headroom_w[interval]:
            return []
        return [charging.allocate(sender, self.address, interval, n_requests=int(self.requests[interval]))]

    def allocated(self, receipts: list[Receipt], interval: int) -> dict[str, int]:
        """Admitted power per account from the allocation's events. [W]"""
        if not all(r.ok for r in receipts):
            raise RuntimeError(f"charging allocation reverted: {[r.revert_reason for r in receipts if not r.ok]}")
        admitted = {args["account"]: args["power_w"] for name, args in self._events(receipts) if name == "Allocated"}
        self.admitted_w[interval] = sum(admitted.values())
        return admitted

    def write(self, part: Part) -> None:
        part.add("charging_requests", ("interval",), self.requests, "1", "EV charging requests of the window")
        part.add("charging_requested_w", ("interval",), self.requested_w, "W", "charging power requested")
        part.add("charging_admitted_w", ("interval",), self.admitted_w, "W", "charging power admitted")


def close_auction(chain: Chain, operator, addresses: MarketAddresses, interval: int,
                  mode: str = "verified-offchain") -> list[bytes]:
    """The operator's transactions that end `interval`'s auction.

    An order book is cleared in `mode` (`market.clearing`: sorted off-chain
    and verified, or sorted by the contract); a Vickrey auction is
    finalised; an English auction closes by itself at the gate.
    """
    if addresses.mechanism == "english":
        return []
    if addresses.mechanism == "vickrey":
        return [finalise(operator, addresses, interval, n_lots=len(lot_states(chain, addresses, interval)))]
    return [clear(operator, addresses, interval, book(chain, addresses, interval), mode=mode)]


def operator_duties(sc: Scenario, operator, addresses: MarketAddresses, interval: int) -> list[bytes]:
    """The operator's own transactions at the start of `interval` in a merit-order market.

    It posts the demand of the next interval (the prosumers' expected
    deficits, from the same forecast the agents use) and settles its
    position of the interval that just ended. Double auctions need none.
    """
    if addresses.mechanism != "merit-order":
        return []
    txs = []
    if interval + 1 < sc.study.n_intervals:
        exports = expected_exports_wh(sc, interval + 1)
        txs.append(post_demand(operator, addresses, interval + 1, demand_wh=int(-exports[exports < 0].sum())))
    if interval >= 1:
        txs.append(settle_operator(operator, addresses, interval - 1))
    return txs


def tokens_conserved(chain: Chain, addresses: MarketAddresses, supply_wei: int, accounts: list[str]) -> bool:
    """Token supply unchanged, and the settlement holds exactly the credits it owes plus its pool."""
    owed = sum(read(chain, addresses.settlement, "Settlement", "credit_wei", a) for a in accounts)
    owed += read(chain, addresses.settlement, "Settlement", "pool_wei")
    held = read(chain, addresses.token, "GridToken", "balanceOf", addresses.settlement)
    return read(chain, addresses.token, "GridToken", "totalSupply") == supply_wei and owed == held


def main() -> None:
    run_federate("ledger", run)


if __name__ == "__main__":
    main()
