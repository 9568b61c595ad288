"""The market operator's ancillary desk: reserve and load shed contracts, awards at the gate, closings, its record.

At deployment the desk deploys ``OperatingReserve`` and/or ``LoadShed``
(`gridledger.study_ancillary`) with the DSO as their operator and, in the
same block before the market starts, registers every provider with its
bus and battery rating and every interruptible load with its bus and
``load_shed.shed_kw``, from the roster (`gridledger.agents.ancillary_terms`),
so nobody declares where it sits or what it can do. It mints the DSO its
budgets and every participant its bond tokens. Then, after each block, it
tells the households of newly posted windows and programmes, and the
households and meters of activations and calls; at every gate (a "clear"
block) it awards the windows whose offer deadline has passed, settles the
load shed events and closes the windows and the programme whose meters
had their delivery period. Anyone may award, settle and close; the
ledger's operator does. Each window belongs to the market interval it
spans.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np

from gridledger.agents.ancillary_terms import (battery_rating_kw, bond_endowment_wei, interruptible_loads,
                                               permille, providers)
from gridledger.contracts import load_shed, reserve
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.market import MarketAddresses, read
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster
from gridledger.units import W_PER_KW, tokens, wei

GAS_MINT = 60_000


class AncillaryDesk:
    """The desk over one chain's reserve and load shed contracts (either may be None)."""

    def __init__(self, sc: Roster, token: str, reserve_address: str | None, shed_address: str | None,
                 prosumers: list[str]):
        self.sc, self.token = sc, token
        self.reserve, self.shed = reserve_address, shed_address
        self.index_of = {a: i for i, a in enumerate(prosumers)}
        study = sc.study
        self.start = study.start_timestamp
        self.delivery_period_s = study.market_interval_s
        n, n_pro = study.n_intervals, len(prosumers)
        self.windows: dict[int, dict] = {}
        self.offers: dict[int, int] = {}
        self.open_windows: set[int] = set()
        self.programmes: dict[int, dict] = {}
        self.enrolled: dict[int, int] = {}
        self.events: dict[int, dict] = {}
        self.called: list[dict] = []
        self.capacity_w = np.zeros(n, dtype=np.int64)
        self.awarded_w = np.zeros(n, dtype=np.int64)
        self.activated_w = np.zeros(n, dtype=np.int64)
        self.activated_wh = np.zeros(n, dtype=np.int64)
        self.delivered_wh = np.zeros(n, dtype=np.int64)
        self.reserve_paid_wei = np.zeros(n, dtype=object)
        self.reserve_penalty_wei = np.zeros(n, dtype=object)
        self.reserve_offers = np.zeros(n, dtype=np.int64)
        self.called_w = np.zeros(n, dtype=np.int64)
        self.shed_wh = np.zeros(n, dtype=np.int64)
        self.shed_delivered_wh = np.zeros(n, dtype=np.int64)
        self.shed_paid_wei = np.zeros(n, dtype=object)
        self.shed_penalty_wei = np.zeros(n, dtype=object)
        self.enrolled_w = np.zeros(n_pro, dtype=np.int64)

    @classmethod
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses, prosumers: list[str],
               dso: str) -> AncillaryDesk:
        """Deploy the study's contracts with `dso` as their operator, register the participants, mint the DSO's
        budgets and the participants' bond tokens."""
        study, spec = sc.study, sc.study.ancillary
        buses = [p.bus for p in sc.prosumers]
        reserve_address = shed_address = None
        mints = []
        if spec.reserve is not None:
            rating = battery_rating_kw(sc)
            reserve_address = reserve.deploy_operating_reserve(
                chain, operator, addresses.registry, addresses.token,
                penalty_permille=permille(spec.reserve.penalty_factor), delivery_period_s=study.market_interval_s,
                min_offer_w=math.ceil(spec.reserve.min_offer_kw * W_PER_KW), min_bond_wei=1,
                providers=[reserve.ProviderFacts(prosumers[i], int(buses[i]), math.floor(rating[i] * W_PER_KW))
                           for i in providers(sc)],
                operator_address=dso)
            mints.append((dso, wei(spec.reserve.budget)))
        if spec.load_shed is not None:
            shed_address = load_shed.deploy_load_shed(
                chain, operator, addresses.registry, addresses.token,
                penalty_permille=permille(spec.load_shed.penalty_factor), delivery_period_s=study.market_interval_s,
                min_shed_w=1, min_bond_wei=1,
                loads=[load_shed.LoadFacts(prosumers[i], int(buses[i]), math.floor(spec.load_shed.shed_kw * W_PER_KW))
                       for i in interruptible_loads(sc)],
                operator_address=dso)
            mints.append((dso, wei(spec.load_shed.budget)))
        mints += [(prosumers[i], amount) for i, amount in sorted(bond_endowment_wei(sc).items())]
        txs = [operator.transact(addresses.token, encode_call("GridToken", "mint", to, amount), gas=GAS_MINT)
               for to, amount in mints]
        failed = [r.revert_reason for r in chain.mine(txs, chain.timestamp + 1) if not r.ok]
        if failed:
            raise RuntimeError(f"ancillary setup: minting failed: {failed}")
        return cls(sc, addresses.token, reserve_address, shed_address, prosumers)

    def _interval(self, timestamp: int) -> int:
        return (timestamp - self.start) // self.sc.study.market_interval_s

    def _study_s(self, timestamp: int) -> int:
        return timestamp - self.start

    def feed(self, reserve_events: Iterable[tuple[str, dict]],
             shed_events: Iterable[tuple[str, dict]]) -> dict[str, dict]:
        """Record a block's events of both contracts; the messages they make, by type (``reserve_windows``,
        ``shed_programme``, ``reserve_awards``, ``reserve_activations``, ``shed_calls``), only those with news."""
        news: dict[str, list] = {"reserve_windows": [], "shed_programme": [], "reserve_awards": [],
                                 "reserve_activations": [], "shed_calls": []}
        for name, args in reserve_events:
            self._reserve_event(name, args, news)
        for name, args in shed_events:
            self._shed_event(name, args, news)
        keys = {"reserve_windows": "windows", "shed_programme": "programmes", "reserve_awards": "awards",
                "reserve_activations": "activations", "shed_calls": "calls"}
        return {kind: {keys[kind]: items} for kind, items in news.items() if items}

    def _reserve_event(self, name: str, args: dict, news: dict[str, list]) -> None:
        if name == "WindowPosted":
            k = self._interval(args["window_start_timestamp"])
            window = {"window_id": args["window_id"], "interval": k, "capacity_w": args["capacity_w"],
                      "start_s": self._study_s(args["window_start_timestamp"]),
                      "end_s": self._study_s(args["window_end_timestamp"]),
                      "deadline_s": self._study_s(args["offer_deadline_timestamp"]),
                      "capacity_price_cap_wei_per_wh": args["capacity_price_cap_wei_per_wh"],
                      "activation_price_cap_wei_per_wh": args["activation_price_cap_wei_per_wh"]}
            self.windows[args["window_id"]] = window
            self.offers[args["window_id"]] = 0
            self.open_windows.add(args["window_id"])
            self.capacity_w[k] += args["capacity_w"]
            news["reserve_windows"].append(window)
            return
        window = self.windows[args["window_id"]]
        k = window["interval"]
        if name == "Offered":
            self.offers[args["window_id"]] += 1
            self.reserve_offers[k] += 1
        elif name == "Awarded" and args["p_w"]:
            self.awarded_w[k] += args["p_w"]
            news["reserve_awards"].append({"window_id": args["window_id"], "interval": k,
                                           "provider": args["provider"], "p_w": args["p_w"],
                                           "start_s": window["start_s"], "end_s": window["end_s"]})
        elif name == "Activated":
            self.activated_w[k] += args["p_w"]
            self.activated_wh[k] += args["energy_wh"]
            news["reserve_activations"].append({"window_id": args["window_id"], "interval": k,
                                                "provider": args["provider"], "p_w": args["p_w"],
                                                "from_s": self._study_s(args["from_timestamp"]),
                                                "to_s": window["end_s"]})
        elif name == "Settled":
            self.delivered_wh[k] += args["delivered_wh"]
            self.reserve_paid_wei[k] += args["capacity_payment_wei"] + args["energy_payment_wei"]
            self.reserve_penalty_wei[k] += args["penalty_wei"]

    def _shed_event(self, name: str, args: dict, news: dict[str, list]) -> None:
        if name == "ProgrammePosted":
            programme = {"programme_id": args["programme_id"], "start_s": self._study_s(args["start_timestamp"]),
                         "end_s": self._study_s(args["end_timestamp"]),
                         "deadline_s": self._study_s(args["enrol_deadline_timestamp"]),
                         "max_event_s": args["max_event_s"],
                         "price_per_event_cap_wei": args["price_per_event_cap_wei"],
                         "price_per_wh_cap_wei": args["price_per_wh_cap_wei"]}
            self.programmes[args["programme_id"]] = programme
            self.enrolled[args["programme_id"]] = 0
            news["shed_programme"].append(programme)
        elif name == "Enrolled":
            self.enrolled[args["programme_id"]] += 1
            self.enrolled_w[self.index_of[args["load"]]] += args["shed_w"]
        elif name == "Called":
            self.called.append({"event_id": args["event_id"], "load": args["load"], "shed_w": args["shed_w"],
                                "energy_wh": args["energy_wh"]})
        elif name == "EventCalled":
            from_s, to_s = self._study_s(args["from_timestamp"]), self._study_s(args["to_timestamp"])
            k = self._interval(args["from_timestamp"])
            calls = [c for c in self.called if c["event_id"] == args["event_id"]]
            self.called = [c for c in self.called if c["event_id"] != args["event_id"]]
            self.events[args["event_id"]] = {"interval": k, "programme_id": args["programme_id"], "calls": len(calls),
                                             "end_s": to_s, "settled": False}
            self.called_w[k] += args["called_w"]
            self.shed_wh[k] += sum(c["energy_wh"] for c in calls)
            news["shed_calls"] += [{**c, "interval": k, "from_s": from_s, "to_s": to_s} for c in calls]
        elif name == "Settled":
            k = self.events[args["event_id"]]["interval"]
            self.shed_delivered_wh[k] += args["delivered_wh"]
            self.shed_paid_wei[k] += args["payment_wei"]
            self.shed_penalty_wei[k] += args["penalty_wei"]

    def gate(self, sender: Wallet, timestamp: int) -> list[bytes]:
        """Signed awards of the windows whose offer deadline has passed, then settlements of the load shed events
        and closings of windows and programmes whose delivery period has passed."""
        now_s = self._study_s(timestamp)
        due_s = now_s - self.delivery_period_s
        txs = []
        for wid in sorted(self.open_windows):
            window = self.windows[wid]
            if window["deadline_s"] <= now_s < window["start_s"] and not window.get("awarded"):
                window["awarded"] = True
                txs.append(reserve.award(sender, self.reserve, wid, n_offers=self.offers[wid]))
            elif window["end_s"] <= due_s:
                self.open_windows.discard(wid)
                txs.append(reserve.close(sender, self.reserve, wid, n_offers=self.offers[wid]))
        for eid, event in sorted(self.events.items()):
            if not event["settled"] and event["end_s"] <= due_s:
                event["settled"] = True
                txs.append(load_shed.settle_event(sender, self.shed, eid, n_calls=event["calls"]))
        for pid, programme in sorted(self.programmes.items()):
            if not programme.get("closed") and programme["end_s"] <= due_s:
                programme["closed"] = True
                txs.append(load_shed.close_programme(sender, self.shed, pid, n_enrolments=self.enrolled[pid]))
        return txs

    def tokens_held_match(self, chain: Chain) -> bool:
        """Each contract holds exactly what its windows or programmes still hold plus its penalty reserve."""
        matched = True
        for address, module, ids in ((self.reserve, reserve, self.windows), (self.shed, load_shed, self.programmes)):
            if address is None:
                continue
            held = sum(module.read(chain, address, "held_wei", i) for i in ids)
            held += module.read(chain, address, "penalty_reserve_wei")
            matched &= read(chain, self.token, "GridToken", "balanceOf", address) == held
        return matched

    def write(self, part: Part) -> None:
        """Add the desk's per-interval record to the ledger's results part."""
        if self.reserve is not None:
            part.add("reserve_capacity_kw", ("interval",), self.capacity_w / W_PER_KW, "kW",
                     "reserve capacity the operator asked for in the interval's window")
            part.add("reserve_offers", ("interval",), self.reserve_offers, "1", "reserve offers received",
                     cell_methods=INTERVAL_SUM)
            part.add("reserve_awarded_kw", ("interval",), self.awarded_w / W_PER_KW, "kW", "reserve capacity awarded")
            part.add("reserve_activated_kw", ("interval",), self.activated_w / W_PER_KW, "kW",
                     "reserve activated for the interval")
            part.add("reserve_activated_wh", ("interval",), self.activated_wh, "Wh",
                     "reserve energy activated: power over the activated time, floored per award")
            part.add("reserve_delivered_wh", ("interval",), self.delivered_wh, "Wh",
                     "reserve energy delivered, as the meters measured and posted it")
            part.add("reserve_payment_token", ("interval",), tokens(self.reserve_paid_wei.astype(float)), "token",
                     "paid for reserve capacity and activated energy")
            part.add("reserve_penalty_token", ("interval",), tokens(self.reserve_penalty_wei.astype(float)), "token",
                     "penalties for reserve not delivered")
        if self.shed is not None:
            part.add("shed_enrolled_kw", ("prosumer",), self.enrolled_w / W_PER_KW, "kW",
                     "interruptible load the household enrolled in the load shed programme")
            part.add("shed_called_kw", ("interval",), self.called_w / W_PER_KW, "kW",
                     "interruptible load called from the interval on")
            part.add("shed_called_wh", ("interval",), self.shed_wh, "Wh",
                     "load shed energy called for events starting in the interval")
            part.add("shed_delivered_wh", ("interval",), self.shed_delivered_wh, "Wh",
                     "load shed energy delivered, as the meters measured and posted it")
            part.add("shed_payment_token", ("interval",), tokens(self.shed_paid_wei.astype(float)), "token",
                     "paid for load shed")
            part.add("shed_penalty_token", ("interval",), tokens(self.shed_penalty_wei.astype(float)), "token",
                     "penalties for load not shed")
