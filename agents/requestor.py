"""The data requestor (a DSO or a researcher): proposes the study's queries, checks the answers, pays for them.

At `DataPhase.propose_s` it approves ``DataAccess`` for its budget and
proposes each of ``data_access.queries`` to every prosumer, with the
protocol's deadlines. It learns the chain's side from the ledger's
``data_events`` and the answers from the worker's ``data_result``; at
`DataPhase.accept_s` it accepts each answer whose Keccak-256 equals the
hash the worker posted (which pays the approving owners) and cancels each
request no owner approved (which refunds it). An answer that does not
match its hash is not accepted (logged; after the accept window anyone
could still finalize it, outside the run).

Everything the requestor receives is kept in arrival order in
``inbox/requestor.jsonl`` (source, message), so a test can show that no
owner's raw data ever reached it.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np

from gridledger.agents.data_requests import budget_wei, request_id, request_index
from gridledger.agents.data_worker import result_hash
from gridledger.contracts import data_access
from gridledger.contracts import flexibility
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.federation import LEDGER_ENDPOINT, WORKER_ENDPOINT
from gridledger.messages import decode
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.schedule import DataPhase
from gridledger.units import PERMILLE, tokens, wei

log = logging.getLogger("gridledger.requestor")

INBOX = Path("inbox") / "requestor.jsonl"
"""Everything the requestor received, one JSON line per message, under the run directory."""


class Requestor:
    """The requestor's proposals, what it learnt of each request and what it paid, indexed like the queries."""

    def __init__(self, sc: Roster, secret: bytes, run_dir: Path, phase: DataPhase):
        self.sc, self.phase = sc, phase
        self.account = derive_account(secret, "requestor")
        self.prosumers = [derive_account(secret, f"prosumer/{p.name}").address for p in sc.prosumers]
        self.inbox = Path(run_dir) / INBOX
        self.inbox.parent.mkdir(parents=True, exist_ok=True)
        self.inbox.write_text("")
        n = len(sc.study.data_access.queries)
        self.wallet: Wallet | None = None
        self.notice: dict = {}
        self.approved = np.zeros((n, len(self.prosumers)), dtype=np.int8)
        self.paid_wei = np.zeros((n, len(self.prosumers)), dtype=object)
        self.refunded_wei = np.zeros(n, dtype=object)
        self.posted_hash: dict[int, str] = {}
        self.answers: dict[int, dict] = {}
        self.accepted = np.zeros(n, dtype=np.int8)
        self.cancelled = np.zeros(n, dtype=np.int8)

    def join(self, notice: dict) -> None:
        """Sign for the chain named in the ledger's deployment `notice`."""
        self.notice = notice
        self.wallet = Wallet(self.account, notice["chain_id"])

    def receive(self, messages: list[tuple[str, bytes]]) -> None:
        """Log every message to the inbox; keep the chain's events (ledger) and the answers (worker)."""
        with self.inbox.open("a") as inbox:
            for source, payload in messages:
                inbox.write(json.dumps({"source": source, "message": payload.decode()}) + "\n")
        for source, payload in messages:
            body = decode(payload)
            if body["type"] == "data_events" and source == LEDGER_ENDPOINT:
                self._events(body)
            elif body["type"] == "data_result" and source == WORKER_ENDPOINT:
                if (i := self._index(body["request_id"])) is not None:
                    self.answers[i] = body
            elif body["type"] == "deployed" and source == LEDGER_ENDPOINT:
                continue
            elif body["type"] == "receipts" and source == LEDGER_ENDPOINT:
                for receipt in body["receipts"]:
                    if not receipt["status"]:
                        log.error("requestor transaction %s failed: %s", receipt["tx_hash"], receipt["revert_reason"])
            else:
                log.warning("%s message from %s dropped", body["type"], source)

    def _index(self, rid: str) -> int | None:
        """The position of one of the study's requests, None for anybody else's id."""
        index = request_index(rid)
        return index if index is not None and index < len(self.sc.study.data_access.queries) else None

    def _events(self, body: dict) -> None:
        position = {a: j for j, a in enumerate(self.prosumers)}
        for approval in body["approvals"]:
            if (i := self._index(approval["request_id"])) is not None:
                self.approved[i, position[approval["owner"]]] = 1
        for result in body["results"]:
            if (i := self._index(result["request_id"])) is not None:
                self.posted_hash[i] = result["result_hash"]
        for payment in body["payments"]:
            if (i := self._index(payment["request_id"])) is not None:
                self.paid_wei[i, position[payment["owner"]]] += payment["amount_wei"]
        for refund in body["refunds"]:
            if (i := self._index(refund["request_id"])) is not None:
                self.refunded_wei[i] += refund["amount_wei"]

    def proposals(self) -> list[bytes]:
        """Approve ``DataAccess`` for the budget, then propose every query to every prosumer."""
        study = self.sc.study
        address = self.notice["data_access"]
        txs = [flexibility.approve(self.wallet, self.notice["addresses"]["token"], address, budget_wei(self.sc))]
        for i, query in enumerate(study.data_access.queries):
            txs.append(data_access.propose(
                self.wallet, address, request_id(i), code=query.code,
                epsilon_milli=round(query.epsilon * PERMILLE) if query.epsilon is not None else 0,
                price_per_owner_wei=wei(query.price_per_owner), owners=self.prosumers,
                approval_deadline_timestamp=study.start_timestamp + int(self.phase.approval_deadline_s),
                result_deadline_timestamp=study.start_timestamp + int(self.phase.result_deadline_s)))
        return txs

    def decisions(self) -> list[bytes]:
        """Accept every answer that matches its posted hash; cancel every request without an approval."""
        address, txs = self.notice["data_access"], []
        for i in range(len(self.sc.study.data_access.queries)):
            rid = request_id(i)
            if i in self.posted_hash and i in self.answers:
                if "0x" + result_hash(self.answers[i]["answer"]).hex() == self.posted_hash[i]:
                    self.accepted[i] = 1
                    txs.append(data_access.accept(self.wallet, address, rid))
                else:
                    log.error("request %d: the answer does not match the hash the worker posted; not accepted", i)
            elif not self.approved[i].any():
                self.cancelled[i] = 1
                txs.append(data_access.cancel(self.wallet, address, rid))
        return txs

    def part(self) -> Part:
        """The ``requestor`` results part: per request, its terms, approvals, the answer received, what was paid."""
        queries = self.sc.study.data_access.queries
        part = Part(self.sc, "requestor")
        answer = np.full((len(queries), len(part.coords["answer_entry"])), np.nan)
        scale = np.full(len(queries), np.nan)
        for i, body in self.answers.items():
            answer[i, :len(body["answer"])] = body["answer"]
            scale[i] = body["scale"]
        part.add("data_query", ("request",), np.array([q.query for q in queries], dtype=object), "1",
                 "catalogue query of each request (data_access.queries)")
        part.add("data_epsilon", ("request",), [q.epsilon if q.epsilon is not None else np.nan for q in queries], "1",
                 "epsilon of the request's noise; NaN for an exact answer")
        part.add("data_price_per_owner_token", ("request",), [q.price_per_owner for q in queries], "token",
                 "price per approving owner")
        part.add("data_approved", ("request", "prosumer"), self.approved, "1", "1 if the owner approved the request")
        part.add("data_answer", ("request", "answer_entry"), answer, "the query's unit (data_query_unit)",
                 "the answer the requestor received (NaN past its length)")
        part.add("data_answer_scale", ("request",), scale, "the query's unit (data_query_unit)",
                 "Laplace scale the worker reported with the answer")
        part.add("data_accepted", ("request",), self.accepted, "1", "1 if the answer matched its hash and was accepted")
        part.add("data_cancelled", ("request",), self.cancelled, "1", "1 if cancelled for want of approvals")
        part.add("data_paid_token", ("request", "prosumer"), np.vectorize(tokens, otypes=[float])(self.paid_wei), "token",
                 "what the request paid each owner (Paid events)")
        part.add("data_refunded_token", ("request",), np.vectorize(tokens, otypes=[float])(self.refunded_wei), "token",
                 "what returned to the requestor (Refunded events)")
        return part
