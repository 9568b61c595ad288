"""Python reference of ``DataAccess.vy``: requests, approvals, results, payments, cancellations.

Same checks in the same order and with the same reasons as the contract,
and the token balances it moves; tests run both on the same calls.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum

from gridledger.contracts.reference import TokenEscrow

CATALOGUE_SIZE = 3
MAX_OWNERS = 64
MAX_PRICE_WEI = 10**24
MAX_HORIZON_S = 30 * 86400


class Status(IntEnum):
    """``DataAccess.STATUS_*``."""

    NONE = 0
    PROPOSED = 1
    RESULT_POSTED = 2
    PAID = 3
    CANCELLED = 4


@dataclass
class Request:
    """One request (``DataAccess.Request``) with its owners and approvals."""

    status: Status
    requestor: str
    price_per_owner_wei: int
    approval_deadline_timestamp: int
    result_deadline_timestamp: int
    owners: list[str]
    approved: set[str] = field(default_factory=set)
    result_timestamp: int = 0


@dataclass
class DataAccessModel:
    """The contract's requests and the token balances it moves (``tokens``)."""

    worker: str
    prosumers: set[str]
    accept_window_s: int
    tokens: TokenEscrow
    requests: dict[bytes, Request] = field(default_factory=dict)

    def propose(self, now: int, sender: str, request_id: bytes, code: int, price_wei: int, owners: list[str],
                approval_deadline: int, result_deadline: int) -> str | None:
        if sender == self.worker:
            return "data: the worker may not request"
        if request_id in self.requests:
            return "data: id taken"
        if code >= CATALOGUE_SIZE:
            return "data: unknown query"
        if not owners:
            return "data: no owners"
        if not 0 < price_wei <= MAX_PRICE_WEI:
            return "data: price out of range"
        if not (approval_deadline > now and result_deadline > approval_deadline
                and result_deadline <= now + MAX_HORIZON_S):
            return "data: deadlines out of range"
        seen = set()
        for owner in owners:
            if owner not in self.prosumers:
                return "data: owner is not a prosumer"
            if owner in seen:
                return "data: owner listed twice"
            seen.add(owner)
        if (reason := self.tokens.pull(sender, price_wei * len(owners))) is not None:
            return reason
        self.requests[request_id] = Request(Status.PROPOSED, sender, price_wei, approval_deadline, result_deadline,
                                            list(owners))
        return None

    def approve(self, now: int, sender: str, request_id: bytes) -> str | None:
        r = self.requests.get(request_id)
        if r is None or r.status != Status.PROPOSED:
            return "data: not proposed"
        if sender not in r.owners:
            return "data: caller is not a listed owner"
        if now >= r.approval_deadline_timestamp:
            return "data: approval closed"
        if sender in r.approved:
            return "data: already approved"
        r.approved.add(sender)
        return None

    def post_result(self, now: int, sender: str, request_id: bytes, owners_used: int) -> str | None:
        if sender != self.worker:
            return "data: caller is not the worker"
        r = self.requests.get(request_id)
        if r is None or r.status != Status.PROPOSED:
            return "data: not proposed"
        if now < r.approval_deadline_timestamp:
            return "data: approval still open"
        if now >= r.result_deadline_timestamp:
            return "data: result deadline passed"
        if not r.approved:
            return "data: no approvals"
        if owners_used != len(r.approved):
            return "data: owners used are not the approvals"
        r.status, r.result_timestamp = Status.RESULT_POSTED, now
        return None

    def accept(self, sender: str, request_id: bytes) -> str | None:
        r = self.requests.get(request_id)
        if r is None or r.status != Status.RESULT_POSTED:
            return "data: no result"
        if sender != r.requestor:
            return "data: caller is not the requestor"
        self._pay(r)
        return None

    def finalize(self, now: int, request_id: bytes) -> str | None:
        r = self.requests.get(request_id)
        if r is None or r.status != Status.RESULT_POSTED:
            return "data: no result"
        if now < r.result_timestamp + self.accept_window_s:
            return "data: accept window open"
        self._pay(r)
        return None

    def cancel(self, now: int, request_id: bytes) -> str | None:
        r = self.requests.get(request_id)
        if r is None or r.status != Status.PROPOSED:
            return "data: not proposed"
        if now < r.result_deadline_timestamp and (now < r.approval_deadline_timestamp or r.approved):
            return "data: request still open"
        r.status = Status.CANCELLED
        self.tokens.pay(r.requestor, r.price_per_owner_wei * len(r.owners))
        return None

    def _pay(self, r: Request) -> None:
        r.status = Status.PAID
        for owner in r.owners:
            if owner in r.approved:
                self.tokens.pay(owner, r.price_per_owner_wei)
        self.tokens.pay(r.requestor, r.price_per_owner_wei * (len(r.owners) - len(r.approved)))

    def locked_wei(self) -> int:
        """What the open requests lock. [wei]"""
        return sum(r.price_per_owner_wei * len(r.owners) for r in self.requests.values()
                   if r.status in (Status.PROPOSED, Status.RESULT_POSTED))
