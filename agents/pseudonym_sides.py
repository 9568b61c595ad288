"""The households' and the meters' parts in trading under pseudonyms, on the timeline of
`gridledger.agents.pseudonym_plan`.

`HouseholdPseudonyms` (the DER federate) moves each owner's tickets from
its Settlement credit to its wallet, buys a ticket per interval, asks for
and sends its half of each registration, and signs each interval's orders
with that interval's pseudonym. `MeterPseudonyms` (the grid federate's
meters) asks for and sends the meter's half, and signs each interval's
reading with that interval's one-time meter key.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from eth_account.signers.local import LocalAccount

from gridledger.agents.pseudonym_plan import (bond_wei, household_of_pseudonyms, pseudonym_addresses, study_classes,
                                              ticket_intervals, traded)
from gridledger.agents.pseudonym_requests import BlindRequests, Deployment, one_time_pair
from gridledger.contracts import flexibility
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import MarketAddresses, withdraw
from gridledger.roster import Roster
from gridledger.study_pseudonyms import FIRST_INTERVAL


def _keys(sc: Roster, secret: bytes) -> list[tuple[bytes, bytes]]:
    """Each household's (owner key, meter key): each side signs with its own and derives only the other's one-time
    addresses (`gridledger.agents.pseudonym_requests`)."""
    return [(derive_account(secret, f"prosumer/{p.name}").key, derive_account(secret, f"meter/{p.name}").key)
            for p in sc.prosumers]


class HouseholdPseudonyms:
    """Every household's tickets, requests, halves and order keys, for the study of `sc` with ``pseudonyms``; keys
    from the run `secret`; `owners` are the households' registered accounts in prosumer order."""

    def __init__(self, sc: Roster, secret: bytes, owners: Sequence[LocalAccount]):
        study = sc.study
        self.n_intervals = study.n_intervals
        self.keys = _keys(sc, secret)
        _, class_index = study_classes(sc)
        self.requests = BlindRequests(list(owners), class_index, self.pair)
        self.bond_wei = bond_wei(sc)
        self.bought_until = FIRST_INTERVAL
        self.household_of = household_of_pseudonyms(pseudonym_addresses([owner.key for owner in owners],
                                                                         self.n_intervals))
        self.address: str | None = None

    def pair(self, i: int, interval: int) -> tuple[str, str]:
        """Household `i`'s pseudonym and one-time meter key of `interval`, as addresses."""
        return one_time_pair(*self.keys[i], interval)

    def account(self, i: int, interval: int) -> LocalAccount:
        """Household `i`'s pseudonym of `interval`, which signs its orders for it."""
        return pn.pseudonym_account(self.keys[i][0], interval)

    def connect(self, notice: dict) -> None:
        """Request at the contract of the ledger's deployment notice."""
        deployment = Deployment.of(notice)
        self.requests.connect(deployment)
        self.address = deployment.address

    def opening(self, addresses: MarketAddresses, sender: Callable[[int, int], Wallet]) -> list[bytes]:
        """Each owner's withdrawal of every ticket's bond from its Settlement credit and its approval of them to the
        ``Pseudonyms`` contract (`sender`: household position, interval -> its wallet, noted)."""
        total_wei = self.bond_wei * (self.n_intervals - FIRST_INTERVAL)
        txs = []
        for i in range(len(self.keys)):
            txs.append(withdraw(sender(i, 0), addresses, total_wei))
            txs.append(flexibility.approve(sender(i, 0), addresses.token, self.address, total_wei))
        return txs

    def before_orders(self, order_interval: int, sender: Callable[[int, int], Wallet]) -> list[bytes]:
        """What goes out with the orders of `order_interval`: the tickets now due, the requests of the next interval,
        the halves of this one."""
        out = []
        due = ticket_intervals(order_interval, self.n_intervals, self.bought_until)
        for k in due:
            out += [pn.buy_ticket(sender(i, order_interval), self.address, k) for i in range(len(self.keys))]
        self.bought_until = max(self.bought_until, due.stop)
        if traded(order_interval + 1, self.n_intervals):
            out.append(self.requests.requests(order_interval + 1))
        if traded(order_interval, self.n_intervals) and (halves := self.requests.halves(order_interval)):
            out.append(halves)
        return out


class MeterPseudonyms:
    """Every meter's requests, halves and one-time reading keys, for the study of `sc` with ``pseudonyms``; keys from
    the run `secret`, the contract from the ledger's deployment `notice`; `meters` are the households' bound meter
    keys in prosumer order."""

    def __init__(self, sc: Roster, secret: bytes, notice: dict, meters: Sequence[LocalAccount]):
        self.n_intervals = sc.study.n_intervals
        self.keys = _keys(sc, secret)
        self.chain_id = notice["chain_id"]
        self.requests = BlindRequests(list(meters), [pn.METER_CLASS] * len(self.keys),
                                      lambda i, k: one_time_pair(*self.keys[i], k))
        self.requests.connect(Deployment.of(notice))
        self.registered: set[str] = set()

    def at_interval_start(self, interval: int) -> list[bytes]:
        """At the start of `interval`: the requests of two intervals on, the halves of the next one."""
        out = []
        if traded(interval + 2, self.n_intervals):
            out.append(self.requests.requests(interval + 2))
        if traded(interval + 1, self.n_intervals) and (halves := self.requests.halves(interval + 1)):
            out.append(halves)
        return out

    def reading_wallets(self, interval: int, fixed: list[Wallet]) -> list[Wallet]:
        """The keys that sign `interval`'s readings: each meter's one-time key of a traded interval if the ledger
        said its pair registered (``pseudonyms_registered``), else its bound key, so a household whose pair did not
        register (refused, or its half never sent) still pays that interval's bill from its own account."""
        if not traded(interval, self.n_intervals):
            return fixed
        one_time = [Wallet(pn.meter_account(meter_key, interval), self.chain_id) for _, meter_key in self.keys]
        return [w if w.address in self.registered else bound for w, bound in zip(one_time, fixed, strict=True)]
