"""The ledger's market operator: deploys the study's market, does its duties in each block, tells the agents.

Before time 0 it deploys the contracts (`gridledger.contracts.market`) in
setup blocks, with the voltage-regulation desk (`FlexDesk`), the EV
charging desk (`ChargingDesk`), the meter-fraud ``Audit``
(`gridledger.contracts.audit`), the buyers' ``SourceChoice``
(`gridledger.contracts.source_choice`) and ``DataAccess``
(`gridledger.agents.data_market`) and ``EmergencyAccess``
(`gridledger.agents.emergency_desk`) and ``TwoPhaseTrade``
(`gridledger.agents.two_phase_desk`) when the study turns them on. Then, at each
of the ledger's actions (`gridledger.schedule.ledger_actions`), it mines
one block:

- "mine": its own duties (a merit-order market's demand and settlement)
  and the transactions received since the last block, each in the lane of
  the endpoint that sent it (agents, then meters, then the DSO, then the
  auditor, then the data requestor and worker: `gridledger.agents.blocks.ledger_lanes`); every receipt goes
  back to the endpoint that sent the transaction, the state of the lots
  (lot auctions) and new flexibility requests go to the agents, what the
  block settled, flagged and isolated to the auditor, what it did to the
  data requests to the agents, the worker and the requestor;
- "clear": the end of an interval's auction (book: cleared in
  ``market.clearing`` mode, with ``verified-batch`` the signed orders held
  since they arrived sent with the clearing; Vickrey: finalised; English: nothing, it
  closes at the gate), the flexibility awards and closings, and the
  charging allocation; the agents get the cleared positions, the awards
  and the admitted charging power, the meters the awards.

Each action returns the messages to send as (destination endpoint, payload).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from gridledger.agents.ancillary_desk import AncillaryDesk
from gridledger.agents.audit_record import AuditRecord
from gridledger.agents.blocks import Lane, MinedBlock, ledger_lanes, mine_batches, receipts_by_source
from gridledger.agents.charging_desk import ChargingDesk
from gridledger.agents.data_market import DataMarket, deploy_study_data_access
from gridledger.agents.emergency_desk import EmergencyDesk
from gridledger.agents.two_phase_desk import TwoPhaseDesk
from gridledger.agents.flex_desk import FlexDesk
from gridledger.agents.ledger_record import LedgerRecord
from gridledger.agents.prosumer import expected_exports_wh
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.agents.pseudonym_desk import RELAYED_REGISTRATIONS, PseudonymDesk
from gridledger.agents.relay import (
    rejections,
    relayed_orders,
    relayed_readings,
    signed_orders,
    split_received,
    unordered,
    verified_batch,
)
from gridledger.contracts import audit as audit_contract
from gridledger.contracts import charging as charging_contract
from gridledger.contracts import flexibility as flex_contract
from gridledger.contracts import load_shed as load_shed_contract
from gridledger.contracts import reserve as reserve_contract
from gridledger.contracts import source_choice as source_choice_contract
from gridledger.contracts.chain import Chain, ChainExport, Receipt
from gridledger.contracts.client import Wallet
from gridledger.contracts.emergency import NOBODY
from gridledger.contracts.keys import derive_account, derive_chain_id
from gridledger.contracts.market import (
    MarketAddresses,
    book,
    clear,
    deploy_market,
    finalise,
    lot_states,
    post_demand,
    read,
    settle_across,
    settle_operator,
)
from gridledger.contracts.mechanisms import MECHANISMS, VERIFIED_BATCH
from gridledger.contracts.typed_data import SignedOrder
from gridledger.contracts.zone_clearing import residual_orders
from gridledger.federation import (AUDITOR_ENDPOINT, COORDINATOR_ENDPOINT, DER_ENDPOINT, GRID_ENDPOINT,
                                   MESSAGE_BY_KIND, OPERATOR_ENDPOINT, REQUESTOR_ENDPOINT, SERVICE_ENDPOINT,
                                   WORKER_ENDPOINT, is_sharded)
from gridledger.messages import decode, encode, is_json
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.schedule import LedgerAction, data_access_phase
from gridledger.units import price_wei_per_wh, wei

log = logging.getLogger("gridledger.ledger")

SETUP_LEAD_S = 60
"""The chain's genesis precedes the study start by this much, room for the setup blocks. [s]"""

Message = tuple[str, bytes]
"""A message to send: (destination endpoint, payload)."""

LANE_OF_ENDPOINT = {DER_ENDPOINT: "agents", GRID_ENDPOINT: "meters", OPERATOR_ENDPOINT: "dso",
                    AUDITOR_ENDPOINT: "auditor", REQUESTOR_ENDPOINT: "data", WORKER_ENDPOINT: "data"}
"""The lane of the transactions each endpoint sends, in mining order; any other sender's go with the agents'."""


def by_lane(received: list[Message]) -> dict[str, list[Message]]:
    """The received (source, raw transaction) pairs by lane, lanes in mining order.

    Within a lane the transactions are grouped by the endpoint that sent
    them, endpoints in name order, each endpoint's in arrival order. HELICS
    delivers one endpoint's messages in the order they were sent but
    interleaves different endpoints' as they happen to arrive; grouping
    makes the block independent of that interleaving, so the run stays
    deterministic.
    """
    lanes: dict[str, list[Message]] = {lane: [] for lane in LANE_OF_ENDPOINT.values()}
    for source, tx in sorted(received, key=lambda message: message[0]):
        lanes[LANE_OF_ENDPOINT.get(source, "agents")].append((source, tx))
    return lanes


RELAYED_ORDERS = "relayed orders"
RELAYED_READINGS = "relayed readings"


def in_block_order(batches: dict[str, list[bytes]], relayed: dict[str, list[bytes]]) -> dict[str, list[bytes]]:
    """The batches of a "mine" block in mining order: the relayed orders right after the agents' lane, the
    relayed readings right after the meters' lane, so a batched run mines in the order of a per-transaction one."""
    after = {"agents": RELAYED_ORDERS, "meters": RELAYED_READINGS}
    ordered: dict[str, list[bytes]] = {}
    for name, txs in batches.items():
        ordered[name] = txs
        if name in after:
            ordered[after[name]] = relayed[after[name]]
    return ordered


def audit_feed(block: MinedBlock, flagged_s: int) -> dict | None:
    """What the auditor learns from a block (the ``readings`` message's body), or None if nothing.

    The readings the Settlement settled (``Settled``), the flags the audit
    mined (``Flagged``, at simulation time `flagged_s`) and the meters it
    isolated (``Isolated``).
    """
    readings = [{"interval": args["interval"], "prosumer": args["prosumer"], "import_wh": args["import_wh"],
                 "export_wh": args["export_wh"], "pv_wh": args["pv_wh"]}
                for name, args in block.events_of("Settlement") if name == "Settled"]
    audit_events = list(block.events_of(audit_contract.CONTRACT))
    flags = [{"interval": args["interval"], "prosumer": args["prosumer"], "flagged_s": flagged_s}
             for name, args in audit_events if name == "Flagged"]
    isolated = [args["prosumer"] for name, args in audit_events if name == "Isolated"]
    if not (readings or flags or isolated):
        return None
    return {"readings": readings, "flags": flags, "isolated": isolated}


def deploy_study_audit(sc: Roster, chain: Chain, operator: Wallet, settlement: str, auditor: str) -> str:
    """Deploy the study's ``Audit`` for `settlement` with `auditor` (``audit``: windows, isolation, penalty)."""
    spec = sc.study.audit
    return audit_contract.deploy_audit(chain, operator, settlement, audit_contract.AuditParameters(
        auditor=auditor, flag_window_s=spec.flag_window_for(sc.study.market_interval_s),
        dispute_window_s=spec.dispute_window_s,
        isolate_k=spec.isolate_k, isolate_n=spec.isolate_n,
        penalty_wei_per_wh=price_wei_per_wh(spec.penalty_per_kwh)))


def deploy_study_market(sc: Roster, chain: Chain, operator: Wallet, prosumers: list[str],
                        meters: list[str]) -> MarketAddresses:
    """Deploy the study's market: its mechanism, tariffs and cap as chain prices, endowments in wei.

    The operator deposits one endowment per prosumer, registers each
    prosumer's reading and order limits (:func:`prosumer_limits`) and
    grants the study's credit line, non-delivery penalty and minimum order.
    """
    study, market = sc.study, sc.study.market
    endowment_wei = wei(market.endowment)
    return deploy_market(
        chain, operator, prosumers=prosumers, meters=dict(zip(prosumers, meters)),
        start_timestamp=study.start_timestamp, interval_s=study.market_interval_s,
        gate_closure_s=market.gate_closure_s,
        price_cap_wei_per_wh=price_wei_per_wh(market.price_cap_per_kwh),
        grid_buy_price_wei_per_wh=price_wei_per_wh(market.grid_buy_price_per_kwh),
        grid_sell_price_wei_per_wh=price_wei_per_wh(market.grid_sell_price_per_kwh),
        grid_fee_wei_per_wh=price_wei_per_wh(market.grid_fee_per_kwh),
        endowment_wei=endowment_wei, operator_deposit_wei=endowment_wei * len(prosumers),
        limits=dict(zip(prosumers, prosumer_limits(sc), strict=True)), credit_line_wei=wei(market.credit_line),
        non_delivery_penalty_wei_per_wh=price_wei_per_wh(market.non_delivery_penalty_per_kwh),
        min_order_wh=market.min_order_wh,
        mechanism=market.mechanism, reveal_s=market.reveal_window_s,
        bid_increment_wei_per_wh=price_wei_per_wh(market.bid_increment_per_kwh),
        price_spikes={k: price_wei_per_wh(price)
                      for k, price in study.events.spike_prices_per_kwh(study.market_interval_s).items()},
    )


def close_auction(chain: Chain, operator: Wallet, addresses: MarketAddresses, interval: int,
                  mode: str, held: list[SignedOrder] | None = None) -> list[bytes]:
    """The operator's transactions that end `interval`'s auction.

    An order book is cleared in `mode` (``market.clearing``: sorted
    off-chain and verified, sorted by the contract, or verified with the
    `held` signed orders of the interval in the same transaction); sealed bids
    revealed after the gate are finalised; an auction that closes at the
    gate needs nothing.
    """
    mechanism = MECHANISMS[addresses.mechanism]
    if mechanism.closes_at_gate:
        return []
    if mechanism.reveal_after_gate:
        return [finalise(operator, addresses, interval, n_lots=len(lot_states(chain, addresses, interval)))]
    if mode == VERIFIED_BATCH:
        return [verified_batch(chain, operator, addresses, interval, held or [])]
    return [clear(operator, addresses, interval, book(chain, addresses, interval), mode=mode)]


def operator_duties(sc: Roster, operator: Wallet, addresses: MarketAddresses, interval: int) -> list[bytes]:
    """The operator's own transactions at the start of `interval`, where the mechanism has it post demand.

    It posts the demand of the next interval (the prosumers' expected
    deficits, from the same forecast the agents use) and settles its
    position of the interval that just ended. Other mechanisms need none.
    """
    if not MECHANISMS[addresses.mechanism].operator_demand:
        return []
    txs = []
    if interval + 1 < sc.study.n_intervals:
        exports = expected_exports_wh(sc, interval + 1)
        txs.append(post_demand(operator, addresses, interval + 1, demand_wh=int(-exports[exports < 0].sum())))
    if interval >= 1:
        txs.append(settle_operator(operator, addresses, interval - 1))
    return txs


def lot_positions(chain: Chain, addresses: MarketAddresses, accounts: list[str],
                  interval: int) -> tuple[dict[str, int], int]:
    """Every account's final position in `interval`'s lot auction and what the sellers receive, read from the contract.

    Returns
    -------
    positions_wh : dict of str to int
        Position by account, positive = sold. [Wh]
    received_wei : int
        Sum of the sellers' values. [wei]
    """
    contract = addresses.auction_contract
    positions = {a: read(chain, addresses.auction, contract, "position_wh", interval, a) for a in accounts}
    received_wei = sum(max(0, read(chain, addresses.auction, contract, "value_wei", interval, a))
                       for a, q in positions.items() if q > 0)
    return positions, received_wei


def tokens_conserved(chain: Chain, addresses: MarketAddresses, supply_wei: int, accounts: list[str]) -> bool:
    """Token supply unchanged, and the settlement holds exactly the credits it owes plus its pool and penalty pool."""
    owed = sum(read(chain, addresses.settlement, "Settlement", "credit_wei", a) for a in accounts)
    owed += read(chain, addresses.settlement, "Settlement", "pool_wei")
    owed += read(chain, addresses.settlement, "Settlement", "penalty_pool_wei")
    held = read(chain, addresses.token, "GridToken", "balanceOf", addresses.settlement)
    return read(chain, addresses.token, "GridToken", "totalSupply") == supply_wei and owed == held


def chain_dir(run_dir: Path, zone: str | None = None) -> Path:
    """Where a ledger exports its chain: ``chain/``, or ``chain/<zone>/`` for a zone's ledger."""
    return run_dir / "chain" if zone is None else run_dir / "chain" / zone


def require_ok(receipts: list[Receipt], what: str) -> None:
    """Raise RuntimeError naming `what` and the revert reasons if any receipt failed."""
    if not all(r.ok for r in receipts):
        raise RuntimeError(f"{what} reverted: {[r.revert_reason for r in receipts if not r.ok]}")


class MarketOperator:
    """The ledger's market operator over one chain: its market, desks, record and pending duties.

    Build it with `MarketOperator.deploy`.
    """

    def __init__(self, sc: Roster, chain: Chain, wallet: Wallet, addresses: MarketAddresses,
                 prosumers: list[str], dso: str | None, flex: FlexDesk | None, charging: ChargingDesk | None,
                 audit: str | None = None, source_choice: str | None = None, data: DataMarket | None = None,
                 emergency: EmergencyDesk | None = None, bilateral: TwoPhaseDesk | None = None,
                 pseudonyms: PseudonymDesk | None = None, ancillary: AncillaryDesk | None = None):
        self.sc, self.chain, self.wallet, self.addresses = sc, chain, wallet, addresses
        self.prosumers, self.dso, self.flex, self.charging, self.audit_address = prosumers, dso, flex, charging, audit
        self.source_choice_address = source_choice
        self.data, self.emergency, self.bilateral, self.pseudonyms = data, emergency, bilateral, pseudonyms
        self.ancillary = ancillary
        self.duties_done: set[int] = set()
        self.supply_wei = read(chain, addresses.token, "GridToken", "totalSupply")
        self.record = LedgerRecord(sc, prosumers, addresses.auction_contract,
                                   pseudonyms.household_of if pseudonyms else None)
        self.audit_record = AuditRecord(sc, prosumers, audit) if audit else None
        self.lanes: dict[str, Lane] = ledger_lanes(len(sc.buses))
        # Signed orders held for their interval's verified batch (``market.clearing: verified-batch``).
        self.held: dict[int, list[SignedOrder]] = {}
        # Interval 0 has no gate action: its auction ends in the first block.
        self.pending = close_auction(chain, wallet, addresses, 0, sc.study.market.clearing)
        self.export: ChainExport | None = None
        # A zone's ledger: its zone, the intervals whose cross-zone position the operator still has to
        # settle, and what arrived at a "cross" action besides the coordinator's fills (mined next).
        self.zone = next(iter(sc.zones)) if is_sharded(sc.study) else None
        self.exchange_due: list[int] = []
        self.deferred: list[Message] = []

    @classmethod
    def deploy(cls, sc: Roster, secret: bytes) -> MarketOperator:
        """Start the study's chain (accounts and chain id from the run `secret`) and deploy the market and its desks."""
        study, market = sc.study, sc.study.market
        operator = derive_account(secret, "operator")
        prosumers = [derive_account(secret, f"prosumer/{p.name}").address for p in sc.prosumers]
        meters = [derive_account(secret, f"meter/{p.name}").address for p in sc.prosumers]
        has_dso = market.voltage_regulation or market.charging_coordination or study.ancillary is not None
        dso = derive_account(secret, "dso").address if has_dso else None
        auditor = derive_account(secret, "auditor").address if study.audit is not None else None
        requestor, worker = ((derive_account(secret, "requestor").address, derive_account(secret, "worker").address)
                             if study.data_access is not None else (None, None))
        crew = derive_account(secret, "service").address if study.emergency is not None else None
        chain = Chain([operator.address, *prosumers, *meters,
                       *(a for a in (dso, auditor, requestor, worker, crew) if a)],
                      genesis_timestamp=study.start_timestamp - SETUP_LEAD_S, chain_id=derive_chain_id(secret))
        wallet = chain.wallet(operator)
        addresses = deploy_study_market(sc, chain, wallet, prosumers, meters)
        flex = FlexDesk.deploy(sc, chain, wallet, addresses, prosumers, dso) if market.voltage_regulation else None
        emergency = EmergencyDesk.deploy(sc, chain, wallet, addresses, crew, prosumers) if crew else None
        charging = (ChargingDesk.deploy(sc, chain, wallet, addresses, dso, prosumers,
                                        emergency.address if emergency else NOBODY)
                    if market.charging_coordination else None)
        audit = deploy_study_audit(sc, chain, wallet, addresses.settlement, auditor) if auditor else None
        choice = (source_choice_contract.deploy_source_choice(chain, wallet, addresses.settlement)
                  if market.source_choice is not None else None)
        data = (DataMarket(chain, deploy_study_data_access(sc, chain, wallet, addresses, requestor, worker),
                           addresses.token) if requestor else None)
        bilateral = TwoPhaseDesk.deploy(sc, chain, wallet, addresses) if study.two_phase is not None else None
        pseudonyms = (PseudonymDesk.deploy(sc, chain, wallet, addresses, secret, prosumers, meters)
                      if study.pseudonyms is not None else None)
        ancillary = (AncillaryDesk.deploy(sc, chain, wallet, addresses, prosumers, dso)
                     if study.ancillary is not None else None)
        return cls(sc, chain, wallet, addresses, prosumers, dso, flex, charging, audit, choice, data, emergency,
                   bilateral, pseudonyms, ancillary)

    def deployment(self) -> list[Message]:
        """The ``deployed`` notice for the agents, the meters and those of the DSO, auditor, requestor and worker
        the study runs."""
        notice = encode("deployed", addresses=dataclasses.asdict(self.addresses), chain_id=self.chain.chain_id,
                        flexibility=self.flex.address if self.flex else None,
                        charging=self.charging.address if self.charging else None, audit=self.audit_address,
                        source_choice=self.source_choice_address,
                        data_access=self.data.address if self.data else None,
                        emergency_access=self.emergency.address if self.emergency else None,
                        two_phase=self.bilateral.address if self.bilateral else None,
                        pseudonyms=self.pseudonyms.notice() if self.pseudonyms else None,
                        reserve=self.ancillary.reserve if self.ancillary else None,
                        load_shed=self.ancillary.shed if self.ancillary else None)
        return [(DER_ENDPOINT, notice), (GRID_ENDPOINT, notice)] + ([(OPERATOR_ENDPOINT, notice)] if self.dso else []) \
            + ([(AUDITOR_ENDPOINT, notice)] if self.audit_address else []) \
            + ([(REQUESTOR_ENDPOINT, notice), (WORKER_ENDPOINT, notice)] if self.data else []) \
            + ([(SERVICE_ENDPOINT, notice)] if self.emergency else [])

    def act(self, action: LedgerAction, received: list[Message]) -> list[Message]:
        """Mine the block of `action` with the signed transactions `received` (source, raw); return the messages."""
        study = self.sc.study
        timestamp = study.start_timestamp + int(action.time_s)
        interval = int(action.time_s // study.market_interval_s)
        if action.kind == "mine":
            received, self.deferred = self.deferred + received, []
            return self._mine(interval, timestamp, received, lots_of=action.interval)
        if action.kind == "cross":
            return self._cross(interval, timestamp, action.interval, received)
        return self._clear(interval, timestamp, action.interval)

    def _mine(self, interval: int, timestamp: int, received: list[Message], lots_of: int | None) -> list[Message]:
        ended = [k for k in self.exchange_due if k < interval]
        self.exchange_due = [k for k in self.exchange_due if k >= interval]
        # The start-of-interval duties once per interval: other blocks (offers, two-phase, data access) follow it.
        first = interval not in self.duties_done
        self.duties_done.add(interval)
        duties = (self.pending + (operator_duties(self.sc, self.wallet, self.addresses, interval) if first else [])
                  + [settle_operator(self.wallet, self.addresses, k) for k in ended]
                  + (self.emergency.duties(self.wallet, timestamp - self.sc.study.start_timestamp)
                     if self.emergency else [])
                  + (self.bilateral.duties(self.wallet, timestamp) if self.bilateral else []))
        self.pending = []
        txs, order_messages, signed_readings, others = split_received(received)
        if self.pseudonyms:
            order_messages = [unordered(m) for m in order_messages]
            signed_readings = [unordered(m) for m in signed_readings]
        if self.sc.study.market.clearing == VERIFIED_BATCH:
            for message in order_messages:
                self.held.setdefault(message["interval"], []).extend(signed_orders(message))
            order_messages = []
        lanes = by_lane(txs)
        halves = [body for _, body in others if body["type"] == "registration_halves"]
        registrations = self.pseudonyms.relayed(self.wallet, halves) if self.pseudonyms else []
        batches = {"operator": duties, RELAYED_REGISTRATIONS: registrations,
                   **{lane: [tx for _, tx in messages] for lane, messages in lanes.items()}}
        relayed = {RELAYED_ORDERS: relayed_orders(self.wallet, self.addresses, order_messages),
                   RELAYED_READINGS: relayed_readings(self.wallet, self.addresses, signed_readings)}
        block = mine_batches(self.chain, in_block_order(batches, relayed), timestamp, self.lanes)
        require_ok(block.receipts["operator"] + block.receipts[RELAYED_ORDERS] + block.receipts[RELAYED_READINGS],
                   "operator transaction")
        if self.data:
            self.data.count_gas(block)
        registered = self.pseudonyms.feed(interval, block) if self.pseudonyms else None
        phase = data_access_phase(self.sc.study)
        if phase is None or timestamp - self.sc.study.start_timestamp not in phase.blocks_s:
            self.record.block(interval, block)         # the data-access protocol's blocks are not the market's
        if self.audit_record:
            self.audit_record.block(block, timestamp - self.sc.study.start_timestamp)
        outbox = self._receipts([source for messages in lanes.values() for source, _ in messages],
                                [receipt for lane in lanes for receipt in block.receipts[lane]])
        outbox += [(DER_ENDPOINT, m) for m in rejections(
            block.events_of(self.addresses.auction_contract, RELAYED_ORDERS), "OrderRejected")]
        outbox += [(GRID_ENDPOINT, m) for m in rejections(
            block.events_of("Settlement", RELAYED_READINGS), "ReadingRejected")]
        if lots_of is not None:
            lots = [dataclasses.asdict(lot) for lot in lot_states(self.chain, self.addresses, lots_of)]
            outbox.append((DER_ENDPOINT, encode("lots", interval=lots_of, lots=lots)))
        if self.flex and (posted := self.flex.posted(block.events_of(flex_contract.CONTRACT))):
            outbox.append((DER_ENDPOINT, encode("flex_requests", requests=posted)))
        if self.charging:
            self.charging.requested(block.events_of(charging_contract.CONTRACT))
            outbox += [(DER_ENDPOINT, encode("charging_cut", **cut))
                       for cut in self.charging.overridden(block.events_of(charging_contract.CONTRACT))]
        if self.audit_address and (feed := audit_feed(block, timestamp - self.sc.study.start_timestamp)):
            outbox.append((AUDITOR_ENDPOINT, encode("readings", **feed)))
        outbox += self._ancillary_news(block)
        if self.emergency and (reads := self.emergency.reads(block)):
            outbox.append((DER_ENDPOINT, encode("emergency_reads", reads=reads)))
        if self.bilateral and (trades := self.bilateral.feed(block)):
            message = encode("two_phase_events", **trades)
            outbox += [(DER_ENDPOINT, message), (GRID_ENDPOINT, message)]
        if self.pseudonyms:
            outbox += self.pseudonyms.answers([(source, body) for source, body in others
                                               if body["type"] == "blind_requests"])
            outbox += [(GRID_ENDPOINT, registered)] if registered else []
        if self.data and (events := self.data.feed(block)):
            message = encode("data_events", **events)
            owners = [(DER_ENDPOINT, message)] if events["requests"] else []     # the owners act on requests only
            outbox += owners + [(WORKER_ENDPOINT, message), (REQUESTOR_ENDPOINT, message)]
        return outbox

    @staticmethod
    def _receipts(sources: list[str], receipts: list[Receipt]) -> list[Message]:
        for source, receipt in zip(sources, receipts):
            if not receipt.ok:
                log.warning("transaction from %s (%s) failed: %s", receipt.sender, source, receipt.revert_reason)
        return [(source, encode("receipts", receipts=rows))
                for source, rows in receipts_by_source(sources, receipts).items()]

    def _clear(self, interval: int, timestamp: int, cleared: int) -> list[Message]:
        batches = {
            "closing": close_auction(self.chain, self.wallet, self.addresses, cleared, self.sc.study.market.clearing,
                                     self.held.pop(cleared, [])),
            "flex": self.flex.gate(self.wallet, cleared, timestamp) if self.flex else [],
            "charging": self.charging.gate(self.wallet, cleared) if self.charging else [],
            "ancillary": self.ancillary.gate(self.wallet, timestamp) if self.ancillary else [],
        }
        block = mine_batches(self.chain, batches, timestamp)
        outbox = []
        if self.charging:
            require_ok(block.receipts["charging"], "charging allocation")
            admitted = self.charging.allocated(block.events_of(charging_contract.CONTRACT, "charging"), cleared)
            outbox.append((DER_ENDPOINT, encode("charging", window=cleared, admitted_w=admitted)))
        if self.flex:
            require_ok(block.receipts["flex"], "flexibility award or close")
            awards = self.flex.awarded(list(block.events_of(flex_contract.CONTRACT, "flex")))
            notice = encode("flex_awards", awards=awards)
            outbox += [(DER_ENDPOINT, notice), (GRID_ENDPOINT, notice)]
        require_ok(block.all_receipts(), f"clearing interval {cleared}")
        self.record.block(interval, block)
        outbox += self._ancillary_news(block)
        outbox += [(DER_ENDPOINT, m) for m in rejections(
            block.events_of(self.addresses.auction_contract, "closing"), "OrderRejected")]
        if MECHANISMS[self.addresses.mechanism].is_lot_auction:
            positions_wh, received_wei = lot_positions(self.chain, self.addresses, self.prosumers, cleared)
            self.record.lot_auction_cleared(cleared, positions_wh, received_wei)
        positions = self.record.cleared_positions(cleared)
        if self.zone is not None:
            interval_book = book(self.chain, self.addresses, cleared)
            residuals = {side: [dataclasses.asdict(o) for o in residual_orders(orders, positions)]
                         for side, orders in (("bids", interval_book.bids), ("asks", interval_book.asks))}
            outbox.append((COORDINATOR_ENDPOINT, encode("residuals", interval=cleared, zone=self.zone, **residuals)))
            return outbox
        outbox.append((DER_ENDPOINT, encode("cleared", interval=cleared, positions_wh=positions)))
        return outbox

    def _ancillary_news(self, block: MinedBlock) -> list[Message]:
        """The ancillary desk's messages about a block: posted windows and programmes to the households, awards to
        them, the DSO and the meters, activations and calls to the households and the meters (the receivers each
        message declares, `gridledger.federation`)."""
        if not self.ancillary:
            return []
        news = self.ancillary.feed(block.events_of(reserve_contract.CONTRACT), block.events_of(load_shed_contract.CONTRACT))
        return [(endpoint, encode(kind, **body)) for kind, body in news.items()
                for endpoint in MESSAGE_BY_KIND[kind].receivers]

    def _cross(self, interval: int, timestamp: int, cleared: int, received: list[Message]) -> list[Message]:
        """Settle the coordinator's fills of `cleared` on this zone's chain; tell the agents their positions.

        Anything else that arrived (no agent or meter sends at this time)
        is kept for the next "mine".
        """
        fills_wh: dict[str, int] = {}
        price_wei_per_wh = 0
        for source, payload in received:
            body = decode(payload) if source == COORDINATOR_ENDPOINT and is_json(payload) else {}
            if body.get("type") == "cross_fills" and body["interval"] == cleared:
                fills_wh, price_wei_per_wh = body["fills_wh"], body["price_wei_per_wh"]
            else:
                self.deferred.append((source, payload))
        if fills_wh:
            tx = settle_across(self.wallet, self.addresses, cleared, list(fills_wh.items()), price_wei_per_wh)
            block = mine_batches(self.chain, {"cross": [tx]}, timestamp)
            require_ok(block.all_receipts(), f"cross-zone settlement of interval {cleared}")
            self.record.block(interval, block)
            for name, args in block.events_of(self.addresses.auction_contract):
                if name == "CrossFillRejected":
                    log.warning("cross-zone fill of %s in interval %d refused: %s",
                                args["account"], cleared, args["reason"])
                elif name == "CrossCleared" and args["sold_wh"] != args["bought_wh"]:
                    self.exchange_due.append(cleared)
        positions = self.record.cleared_positions(cleared)
        return [(DER_ENDPOINT, encode("cleared", interval=cleared, positions_wh=positions))]

    def audit(self) -> bool:
        """Record and return whether tokens were conserved: supply, settlement (pseudonyms' credit too), flexibility,
        data-access, two-phase and pseudonym holdings."""
        accounts = [*self.prosumers, self.wallet.address, *(self.pseudonyms.registered if self.pseudonyms else ())]
        conserved = tokens_conserved(self.chain, self.addresses, self.supply_wei, accounts)
        if self.pseudonyms:
            conserved &= self.pseudonyms.tokens_held_match()
        if self.flex:
            conserved &= self.flex.tokens_held_match(self.chain)
        if self.data:
            conserved &= self.data.tokens_held_match()
        if self.bilateral:
            conserved &= self.bilateral.tokens_held_match()
        if self.ancillary:
            conserved &= self.ancillary.tokens_held_match(self.chain)
        self.record.supply_conserved = conserved
        return conserved

    def open_export(self, run_dir: Path, zone: str | None = None) -> ChainExport:
        """Export the chain to ``chain/`` (a zone's to ``chain/<zone>/``): the blocks mined so far now, each later
        one at `ChainExport.append`.

        Open it once the market is deployed (every contract labelled, so
        its events are decoded); the ledger appends after every block, and
        the chain forgets each receipt once written (memory flat over a year).
        """
        self.export = ChainExport(self.chain, chain_dir(run_dir, zone), forget=True)
        return self.export

    def _chose_pv(self) -> np.ndarray | None:
        """Whose choice of PV held for which interval, read from ``SourceChoice`` (None without it)."""
        if self.source_choice_address is None:
            return None
        chose = np.zeros((self.sc.study.n_intervals, len(self.prosumers)), dtype=bool)
        for buyer in source_choice_contract.read(self.chain, self.source_choice_address, "choosers"):
            i = self.prosumers.index(buyer)
            for k in range(len(chose)):
                chose[k, i] = source_choice_contract.read(self.chain, self.source_choice_address, "chose_pv", k,
                                                          buyer)
        return chose

    def write(self, run_dir: Path, complete: bool, name: str = "ledger") -> None:
        """Finish the chain export (all of it now if none was opened) and write the results part `name`."""
        (self.export or ChainExport(self.chain, run_dir / "chain")).close()
        log.info("chain exported up to block %d", self.chain.block_number)
        self.part(name).write(run_dir, complete)

    def part(self, name: str = "ledger") -> Part:
        """The results part `name` so far: the record, the desks' and the audit's variables, read from the chain."""
        part = self.record.part(federate=name, chose_pv=self._chose_pv(), **dataclasses.asdict(self.addresses))
        for desk in (self.flex, self.charging, self.ancillary):
            if desk:
                desk.write(part)
        if self.data:
            self.data.write(part)
        if self.bilateral:
            self.bilateral.write(part)
        if self.pseudonyms:
            self.pseudonyms.write(part)
        if self.audit_record:
            self.audit_record.close(self.chain)
            self.audit_record.write(part)
        return part
