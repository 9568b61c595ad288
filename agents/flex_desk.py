"""The market operator's voltage-regulation desk: deployment, awards at the gate, closing, and its record.

The desk deploys the contract and, in the same block before the market
starts, registers every PV owner with its feeder bus and inverter rating
from the scenario, so no DER declares where it sits or how much it can
curtail. The DSO posts flexibility requests on ``VoltageRegulation.vy``; the desk
learns them from their ``RequestPosted`` events, counts the offers, awards
each interval's requests at its gate and closes each request once its
meters had their delivery period (anyone may award and close; the ledger's
operator does). Each request belongs to the market interval its window
starts.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gridledger.agents.flex_offers import OfferRules
from gridledger.contracts import flexibility as flex
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.market import MarketAddresses, read
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster
from gridledger.units import SECONDS_PER_HOUR, tokens, wei

CONTRACT = flex.CONTRACT


def der_facts(sc: Roster, prosumers: list[str]) -> list[flex.DerFacts]:
    """What the registrar registers of each PV owner (address in `prosumers`): its feeder bus and its PV
    inverter rating, kWp to the nearest W. [W]"""
    rating_w = OfferRules.of(sc).rating_w
    return [flex.DerFacts(address, p.bus, int(rating_w[i]))
            for i, (address, p) in enumerate(zip(prosumers, sc.prosumers, strict=True)) if rating_w[i] > 0]


class FlexDesk:
    """The ledger's side of the voltage-regulation market.

    Parameters
    ----------
    sc : Roster
        The study's scenario (start, market interval, gate closure).
    address, token : str
        Addresses of the ``VoltageRegulation`` contract and of the token it holds.
    """

    def __init__(self, sc: Roster, address: str, token: str):
        study = sc.study
        self.sc, self.address, self.token = sc, address, token
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
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses, prosumers: list[str],
               dso: str) -> FlexDesk:
        """Deploy the contract with the DSO as its operator, register the PV owners (`der_facts`) and mint the
        DSO's budget and the bond tokens."""
        study, settings = sc.study, sc.study.market.flexibility
        rules = OfferRules.of(sc)
        address = flex.deploy_voltage_regulation(
            chain, operator, addresses.registry, addresses.token, operator_address=dso,
            penalty_permille=rules.penalty_permille,
            delivery_period_s=study.market_interval_s - study.market.gate_closure_s,
            min_offer_w=rules.min_offer_w, min_bond_wei=rules.min_bond_wei, ders=der_facts(sc, prosumers))
        mints = [(dso, wei(settings.operator_budget))]
        mints += [(p, wei(settings.bond_endowment)) for p in prosumers if settings.bond_endowment]
        txs = [operator.transact(addresses.token, encode_call("GridToken", "mint", to, amount), gas=flex.GAS_APPROVE)
               for to, amount in mints]
        failed = [r.revert_reason for r in chain.mine(txs, chain.timestamp + 1) if not r.ok]
        if failed:
            raise RuntimeError(f"flexibility setup: minting failed: {failed}")
        return cls(sc, address, addresses.token)

    def _interval(self, timestamp: int) -> int:
        return (timestamp - self.sc.study.start_timestamp) // self.sc.study.market_interval_s

    def posted(self, events: Iterable[tuple[str, dict]]) -> list[dict]:
        """Record the requests, offers and settlements among the contract's events; return the new requests.

        A request's energy is its power over its window, floored to whole
        watt-hours; it may be closed once its window has ended and its
        meters had the delivery period (market interval minus gate
        closure) to post.
        """
        new = []
        for name, args in events:
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
                self.requested_wh[k] += args["p_w"] * request["window_s"] // SECONDS_PER_HOUR
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

    def due(self, interval: int, timestamp: int) -> tuple[list[int], list[int]]:
        """Requests to award at the gate of `interval` and open requests to close at `timestamp`, by id.

        Closing them marks them closed here.
        """
        award = [rid for rid, r in sorted(self.requests.items()) if r["interval"] == interval]
        close = [rid for rid in sorted(self.open) if timestamp >= self.requests[rid]["close_after"]]
        self.open.difference_update(close)
        return award, close

    def gate(self, sender: Wallet, interval: int, timestamp: int) -> list[bytes]:
        """Signed awards of `interval`'s requests, then closings of those whose delivery deadline has passed."""
        award, close = self.due(interval, timestamp)
        return ([flex.award(sender, self.address, rid, n_offers=self.offers[rid]) for rid in award]
                + [flex.close(sender, self.address, rid, n_offers=self.offers[rid]) for rid in close])

    def awarded(self, events: list[tuple[str, dict]]) -> list[dict]:
        """Record the events of the awards and closings; return the awards by request.

        Returns
        -------
        list of dict
            ``{"request_id", "interval", "p_w": {der: W}}`` per request
            with a nonzero award, in the order of the events.
        """
        self.posted(events)
        awards: dict[int, dict] = {}
        for name, args in events:
            if name == "Awarded" and args["p_w"]:
                rid = args["request_id"]
                k = self.requests[rid]["interval"]
                awards.setdefault(rid, {"request_id": rid, "interval": k, "p_w": {}})["p_w"][args["der"]] = args["p_w"]
                self.awarded_wh[k] += args["energy_wh"]
        return list(awards.values())

    def tokens_held_match(self, chain: Chain) -> bool:
        """The contract holds exactly what its open requests still hold (budgets, bonds, penalties) plus its
        penalty reserve."""
        held = sum(flex.read(chain, self.address, "held_wei", rid) for rid in self.requests)
        held += flex.read(chain, self.address, "penalty_reserve_wei")
        return read(chain, self.token, "GridToken", "balanceOf", self.address) == held

    def write(self, part: Part) -> None:
        """Add the desk's per-interval record to the ledger's results part."""
        part.add("flex_requested_wh", ("interval",), self.requested_wh, "Wh",
                 "flexibility requested by the operator for the interval")
        part.add("flex_offers", ("interval",), self.offers_per_interval, "1", "flexibility offers received",
                 cell_methods=INTERVAL_SUM)
        part.add("flex_awarded_wh", ("interval",), self.awarded_wh, "Wh", "flexibility awarded")
        part.add("flex_delivered_wh", ("interval",), self.delivered_wh, "Wh",
                 "flexibility delivered, as posted by the meters")
        part.add("flex_payment_token", ("interval",), tokens(self.payment_wei.astype(float)), "token",
                 "paid for delivered flexibility")
        part.add("flex_penalty_token", ("interval",), tokens(self.penalty_wei.astype(float)), "token",
                 "penalties for flexibility not delivered")
