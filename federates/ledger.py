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
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np

from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.keys import derive_account
from gridledger.contracts.reference import SourceMix, consumed_mix
from gridledger.contracts.market import (
    LOT_AUCTIONS,
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
from gridledger.federates.messages import encode
from gridledger.federates.prosumer import WEI_PER_TOKEN, expected_exports_wh, price_per_kwh, price_wei_per_wh
from gridledger.federates.shell import joined, run_federate
from gridledger.interfaces import DER_ENDPOINT, GRID_ENDPOINT
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

    def block(self, interval: int, receipts: list[Receipt], chain: Chain) -> None:
        """Account a mined block's gas and events to the market interval it happened in."""
        interval = min(interval, len(self.gas_used) - 1)
        self.gas_used[interval] += sum(r.gas_used for r in receipts)
        self.transactions[interval] += len(receipts)
        self.reverted[interval] += sum(not r.ok for r in receipts)
        for receipt in receipts:
            for event in filter(None, map(chain.decode, receipt.logs)):
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
    chain = Chain([operator_account.address, *prosumers, *meters], genesis_timestamp=start_ts - SETUP_LEAD_S)
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
    supply_wei = read(chain, addresses.token, "GridToken", "totalSupply")
    record = LedgerRecord(sc, prosumers)
    notice = encode("deployed", addresses=dataclasses.asdict(addresses), chain_id=chain.chain_id)
    operator_txs = close_auction(chain, operator, addresses, 0)
    with joined(run_dir, "ledger", stop_time_s(study)) as fed:
        finished = False
        try:
            fed.initialize()
            fed.send(DER_ENDPOINT, notice)
            fed.send(GRID_ENDPOINT, notice)
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
                else:
                    receipts = chain.mine(close_auction(chain, operator, addresses, action.interval), timestamp)
                    if not all(r.ok for r in receipts):
                        raise RuntimeError(f"clearing interval {action.interval} reverted: "
                                           f"{[r.revert_reason for r in receipts]}")
                    if addresses.auction_contract in LOT_AUCTIONS:
                        positions = record.lots_cleared(chain, addresses, action.interval)
                    else:
                        positions = {e.args["account"]: e.args["position_wh"]
                                     for e in filter(None, map(chain.decode, receipts[0].logs)) if e.event == "Trade"}
                    fed.send(DER_ENDPOINT, encode("cleared", interval=action.interval, positions_wh=positions))
                record.block(interval, receipts, chain)
            record.supply_conserved = tokens_conserved(chain, addresses, supply_wei,
                                                       [*prosumers, operator.address])
            finished = True
        finally:
            chain.export(run_dir / "chain")
            record.write(run_dir, complete=finished, **dataclasses.asdict(addresses))


def close_auction(chain: Chain, operator, addresses: MarketAddresses, interval: int) -> list[bytes]:
    """The operator's transactions that end `interval`'s auction.

    An order book is cleared with its off-chain sorted order; a Vickrey
    auction is finalised; an English auction closes by itself at the gate.
    """
    if addresses.mechanism == "english":
        return []
    if addresses.mechanism == "vickrey":
        return [finalise(operator, addresses, interval, n_lots=len(lot_states(chain, addresses, interval)))]
    return [clear(operator, addresses, interval, book(chain, addresses, interval))]


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
