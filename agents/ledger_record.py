"""The ledger's record: per-interval market outcome and per-prosumer settlement, from chain events.

Each mined block is accounted once (`LedgerRecord.block`) from its events,
decoded once (`gridledger.agents.blocks`): gas, transactions and reverts
count to the market interval the block was mined in; the market's events
(``Cleared``, ``Trade``, ``Settled``, ``Sourced``) to the interval they
name, and the Settlement's ``Unpaid`` events (an imbalance payment beyond
what its payer could afford within the credit line) to the interval and
prosumer they name. The positions kept from ``Trade`` events are also what the market
operator sends the agents. `LedgerRecord.part` turns the record into the
ledger's results part.
"""

from __future__ import annotations

import numpy as np

from gridledger.agents.blocks import MinedBlock
from gridledger.contracts.reference import SourceMix, chosen_mix
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster
from gridledger.units import price_per_kwh, tokens

SETTLEMENT = "Settlement"


class LedgerRecord:
    """Per-interval market outcome and per-prosumer settlement, decoded from chain events.

    Parameters
    ----------
    sc : Roster
        The study's scenario (intervals, prosumers).
    prosumer_addresses : list of str
        Each prosumer's account, in the scenario's prosumer order.
    auction_contract : str
        The contract that runs the market mechanism; its ``Cleared`` and
        ``Trade`` events and the Settlement's ``Settled``, ``Sourced`` and
        ``Unpaid`` events are recorded, every other contract's are not.
    aliases : dict of str to int, optional
        Other accounts of a prosumer, by address, to its position: with
        ``pseudonyms``, every pseudonym it trades under. Its events count
        to the prosumer.
    """

    # Energy sources Settlement tracks, as the prefixes of its SourceMix fields.
    SOURCES = ("pv", "battery", "grid")
    SOURCE_NAMES = {"pv": "PV", "battery": "battery discharge", "grid": "the grid"}

    def __init__(self, sc: Roster, prosumer_addresses: list[str], auction_contract: str,
                 aliases: dict[str, int] | None = None):
        n_int, n_pro = sc.study.n_intervals, len(sc.prosumers)
        self.sc = sc
        self.addresses = prosumer_addresses
        self.contracts = (auction_contract, SETTLEMENT)
        self.index_of = {a: i for i, a in enumerate(prosumer_addresses)} | (aliases or {})
        self.positions: dict[int, dict[str, int]] = {}
        self.price = np.full(n_int, np.nan)
        self.volume_wh = np.zeros(n_int, dtype=np.int64)
        self.gas_used = np.zeros(n_int, dtype=np.int64)
        self.transactions = np.zeros(n_int, dtype=np.int64)
        self.reverted = np.zeros(n_int, dtype=np.int64)
        self.position_wh = np.zeros((n_int, n_pro), dtype=np.int64)
        self.p2p = np.zeros((n_int, n_pro))
        self.fee = np.zeros((n_int, n_pro))
        self.imbalance = np.zeros((n_int, n_pro))
        self.unpaid = np.zeros((n_int, n_pro))
        self.settled = np.zeros((n_int, n_pro), dtype=np.int8)
        self.settled_import_wh = np.zeros((n_int, n_pro), dtype=np.int64)
        self.settled_position_wh = np.zeros((n_int, n_pro), dtype=np.int64)
        self.sold_wh = {source: np.zeros((n_int, n_pro), dtype=np.int64) for source in self.SOURCES}
        self.supply_conserved = False

    def block(self, interval: int, block: MinedBlock) -> None:
        """Account a mined block's gas and events to the market interval it was mined in.

        A block mined after the last interval (the final readings) counts
        to the last interval.
        """
        interval = min(interval, len(self.gas_used) - 1)
        receipts = block.all_receipts()
        self.gas_used[interval] += sum(r.gas_used for r in receipts)
        self.transactions[interval] += len(receipts)
        self.reverted[interval] += sum(not r.ok for r in receipts)
        for event in block.all_events():
            if event.contract in self.contracts:
                self._event(event.event, event.args)

    def _event(self, name: str, args: dict) -> None:
        if name == "Cleared":
            self.price[args["interval"]] = price_per_kwh(args["price_wei_per_wh"])
            self.volume_wh[args["interval"]] = args["volume_wh"]
        elif name == "Trade":
            k = args["interval"]
            self.position_wh[k, self.index_of[args["account"]]] = args["position_wh"]
            self.positions.setdefault(k, {})[args["account"]] = args["position_wh"]
        elif name == "Settled":
            k, i = args["interval"], self.index_of[args["prosumer"]]
            self.p2p[k, i] = tokens(args["p2p_wei"])
            self.fee[k, i] = tokens(args["fee_wei"])
            self.imbalance[k, i] = tokens(args["imbalance_wei"])
            self.settled[k, i] = 1
            self.settled_import_wh[k, i] = args["import_wh"]
            self.settled_position_wh[k, i] = args["position_wh"]
        elif name == "Sourced":
            k, i = args["interval"], self.index_of[args["seller"]]
            for source in self.SOURCES:
                self.sold_wh[source][k, i] = args[f"{source}_wh"]
        elif name == "Unpaid":
            self._unpaid(args["interval"], args["payer"], args["payee"], tokens(args["unpaid_wei"]))

    def _unpaid(self, k: int, payer: str, payee: str, unpaid_token: float) -> None:
        """Count an ``Unpaid`` event to the prosumer it names: positive if it did not pay, negative if not paid.

        The other party is the operator, which is no prosumer.
        """
        if payer in self.index_of:
            self.unpaid[k, self.index_of[payer]] += unpaid_token
        else:
            self.unpaid[k, self.index_of[payee]] -= unpaid_token

    def cleared_positions(self, interval: int) -> dict[str, int]:
        """The positions of `interval` by account, as cleared (positive = sold). [Wh]

        An order book's come from its ``Trade`` events and name only the
        accounts that traded; a lot auction's (`lot_auction_cleared`) name
        every prosumer.
        """
        return dict(self.positions.get(interval, {}))

    def lot_auction_cleared(self, interval: int, positions_wh: dict[str, int], received_wei: int) -> None:
        """Record a lot auction's final positions and what its sellers received.

        Parameters
        ----------
        interval : int
            The auction's market interval.
        positions_wh : dict of str to int
            Every prosumer's position by account, positive = sold. [Wh]
        received_wei : int
            What the sellers receive in total. [wei]

        The interval's volume is the energy sold, its price the
        volume-weighted mean price of the lots sold.
        """
        volume_wh = sum(q for q in positions_wh.values() if q > 0)
        for address, position in positions_wh.items():
            self.position_wh[interval, self.index_of[address]] = position
        self.positions[interval] = dict(positions_wh)
        self.volume_wh[interval] = volume_wh
        if volume_wh:
            self.price[interval] = price_per_kwh(received_wei / volume_wh)

    def bought_wh(self) -> np.ndarray:
        """Each buyer's energy bought peer to peer and imported per interval, min(-position, import); 0 for a
        seller. [Wh]"""
        return np.minimum(np.maximum(-self.settled_position_wh, 0), self.settled_import_wh)

    def consumed_wh(self, chose_pv: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Each prosumer's imported energy per interval by source, as ``Settlement.consumed_mix`` splits it, or with
        buyers that chose PV (`chose_pv`, by interval and prosumer) as ``SourceChoice.consumed_mix`` does. [Wh]

        Its peer-to-peer part takes the interval's sold mix (the sum of the
        ``Sourced`` events) pro rata, choosers' first from its PV; the rest
        of the import is grid.
        """
        consumed = {source: np.zeros_like(self.settled_import_wh) for source in self.SOURCES}
        p2p_wh = self.bought_wh()
        chose = np.zeros(p2p_wh.shape, dtype=bool) if chose_pv is None else chose_pv.astype(bool)
        for k in range(self.settled_import_wh.shape[0]):
            sold = SourceMix(*(int(self.sold_wh[source][k].sum()) for source in self.SOURCES))
            chosen_wh = int(p2p_wh[k][chose[k]].sum())
            for i in range(self.settled_import_wh.shape[1]):
                mix = chosen_mix(int(p2p_wh[k, i]), int(self.settled_import_wh[k, i]), bool(chose[k, i]), sold,
                                 chosen_wh)
                for source in self.SOURCES:
                    consumed[source][k, i] = getattr(mix, f"{source}_wh")
        return consumed

    def part(self, federate: str = "ledger", chose_pv: np.ndarray | None = None, **attrs: object) -> Part:
        """The ledger's results part (`federate`: its name, a zone ledger's ``ledger-<zone>``): market outcome per
        interval, settlement per interval and prosumer; with source choice, whose choice of PV held when
        (`chose_pv`, by interval and prosumer)."""
        part = Part(self.sc, federate, token_supply_conserved=int(self.supply_conserved), **attrs)
        part.add("address", ("prosumer",), np.array(self.addresses, dtype=object), "1", "prosumer's account on chain")
        part.add("clearing_price_per_kwh", ("interval",), self.price, "token/kWh", "uniform clearing price")
        part.add("cleared_volume_wh", ("interval",), self.volume_wh, "Wh", "energy matched peer to peer")
        part.add("gas_used", ("interval",), self.gas_used, "gas", "gas used by blocks mined in the interval")
        part.add("transactions", ("interval",), self.transactions, "1", "transactions submitted in the interval",
                 cell_methods=INTERVAL_SUM)
        part.add("transactions_reverted", ("interval",), self.reverted, "1", "transactions reverted or rejected",
                 cell_methods=INTERVAL_SUM)
        part.add("position_wh", ("interval", "prosumer"), self.position_wh, "Wh",
                 "cleared position, positive = sold")
        part.add("p2p_token", ("interval", "prosumer"), self.p2p, "token",
                 "peer-to-peer payment at the clearing price, positive = received")
        part.add("fee_token", ("interval", "prosumer"), self.fee, "token", "grid fee paid on energy bought")
        part.add("imbalance_token", ("interval", "prosumer"), self.imbalance, "token",
                 "imbalance settled with the grid, positive = received")
        part.add("unpaid_token", ("interval", "prosumer"), self.unpaid, "token",
                 "imbalance payment left unpaid beyond the credit line (Settlement Unpaid event), "
                 "positive = the prosumer did not pay it, negative = the operator did not pay the prosumer")
        part.add("settled", ("interval", "prosumer"), self.settled, "1", "meter reading settled on chain")
        split_by = "Settlement.consumed_mix" if chose_pv is None else "SourceChoice.consumed_mix"
        for source, consumed in self.consumed_wh(chose_pv).items():
            part.add(f"sold_{source}_wh", ("interval", "prosumer"), self.sold_wh[source], "Wh",
                     f"sold position attributed to {self.SOURCE_NAMES[source]} (Settlement Sourced event)")
            part.add(f"consumed_{source}_wh", ("interval", "prosumer"), consumed, "Wh",
                     f"imported energy attributed to {self.SOURCE_NAMES[source]} ({split_by})")
        if chose_pv is not None:
            part.add("chose_pv", ("interval", "prosumer"), chose_pv.astype(np.int8), "1",
                     "the buyer's choice of PV-sourced energy held for the interval (SourceChoice)")
            part.add("p2p_bought_wh", ("interval", "prosumer"), self.bought_wh(), "Wh",
                     "energy bought peer to peer and imported, min(-position, import)")
        return part
