"""The compute worker's bookkeeping: which requests and approvals the chain holds, what it answered and posted.

The worker learns the requests and approvals from the ledger's
``data_events`` (only from ``ledger/tx``); at the approval deadline it
answers each request that has approvals over the approving owners'
stores only (`gridledger.agents.data_worker.run_query`), with the
query's noise for its ε and the study's ``clip_kw``, signs
``post_result`` (the answer's hash and the commitment to its inputs) and
hands the answer to the requestor, off chain. In the simulation the noise
is drawn from the run secret: deterministic, as reproducible runs need,
but every federate holds that secret, so the requestor's process could in
principle recompute the noise and subtract it. In a deployment the worker
draws it from a key of its own.

What it records (part ``worker``): the exact answer (unclipped, so a
clip's bias counts against the release) beside the released one, the
noise scale and sensitivity, the owners used and which ones.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from eth_utils import keccak

from gridledger.agents.data_catalogue import QUERIES
from gridledger.agents.data_requests import is_study_request, request_index
from gridledger.agents.data_store import store_path
from gridledger.agents.data_worker import Owner, QueryResult, approving_owners, run_query
from gridledger.agents.devices import ev_fleet
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.contracts import data_access
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.federation import LEDGER_ENDPOINT
from gridledger.messages import decode, encode
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.units import PERMILLE, W_PER_KW

log = logging.getLogger("gridledger.worker")


def owners_of(sc: Roster, secret: bytes, run_dir: Path) -> dict[str, Owner]:
    """Every prosumer as the worker knows it, by address: its store, registered meter rating and EV fact."""
    evs = set(ev_fleet(sc).owners.tolist())
    return {derive_account(secret, f"prosumer/{p.name}").address:
            Owner(derive_account(secret, f"prosumer/{p.name}").address, store_path(run_dir, p.name),
                  limits.meter_rating_w / W_PER_KW, i in evs)
            for i, (p, limits) in enumerate(zip(sc.prosumers, prosumer_limits(sc), strict=True))}


class WorkerDesk:
    """The worker's view of the data requests and what it computed, indexed like ``data_access.queries``."""

    def __init__(self, sc: Roster, secret: bytes, run_dir: Path):
        self.sc, self.secret = sc, secret
        self.account = derive_account(secret, "worker")
        self.requestor = derive_account(secret, "requestor").address
        self.owners = owners_of(sc, secret, run_dir)
        self.wallet: Wallet | None = None
        self.address: str | None = None
        self.requests: dict[str, dict] = {}
        self.approvals: dict[str, dict[str, bool]] = {}
        self.exact: dict[int, QueryResult] = {}
        self.released: dict[int, QueryResult] = {}
        self.used: dict[int, list[str]] = {}

    def join(self, notice: dict) -> None:
        """Sign for the chain and ``DataAccess`` named in the ledger's deployment `notice`."""
        self.wallet = Wallet(self.account, notice["chain_id"])
        self.address = notice["data_access"]

    def receive(self, messages: list[tuple[str, bytes]]) -> None:
        """Keep the requests and approvals; log failed receipts; drop what comes from elsewhere."""
        for source, payload in messages:
            body = decode(payload)
            if source != LEDGER_ENDPOINT:
                log.warning("%s message from %s dropped", body.get("type"), source)
            elif body["type"] == "data_events":
                self.requests.update({r["request_id"]: r for r in body["requests"]
                                      if is_study_request(self.sc, self.requestor, r)})
                for approval in body["approvals"]:
                    self.approvals.setdefault(approval["request_id"], {})[approval["owner"]] = True
            elif body["type"] == "receipts":
                for receipt in body["receipts"]:
                    if not receipt["status"]:
                        log.error("worker transaction %s failed: %s", receipt["tx_hash"], receipt["revert_reason"])

    def compute(self) -> tuple[list[bytes], list[bytes]]:
        """Answer every request with approvals: the signed ``post_result`` transactions and the ``data_result``
        messages for the requestor."""
        txs, answers = [], []
        for rid, request in self.requests.items():
            approving = approving_owners(self.owners, self.approvals.get(rid, {}))
            index = request_index(rid)
            if not approving or index is None or index in self.released:
                continue
            query = self.sc.study.data_access.queries[index]
            epsilon = request["epsilon_milli"] / PERMILLE if request["epsilon_milli"] else None
            rng = np.random.default_rng(np.frombuffer(keccak(self.secret + b"worker/noise" + rid.encode()), np.uint32))
            step_s = self.sc.study.power_flow_step_s
            self.exact[index] = run_query(request["code"], None, approving, rng, None, step_s)     # unclipped truth
            result = self.released[index] = run_query(request["code"], epsilon, approving, rng, query.clip_kw, step_s)
            self.used[index] = [o.address for o in approving]
            txs.append(data_access.post_result(self.wallet, self.address, bytes.fromhex(rid[2:]),
                                               result_hash=result.result_hash,
                                               inputs_commitment=result.inputs_commitment, owners_used=result.owners))
            answers.append(encode("data_result", request_id=rid, answer=result.answer, scale=result.scale,
                                  owners=result.owners))
        return txs, answers

    def part(self) -> Part:
        """The ``worker`` results part: per request, the exact and released answers, noise, owners used."""
        sc, queries = self.sc, self.sc.study.data_access.queries
        part = Part(sc, "worker")
        shape = (len(queries), len(part.coords["answer_entry"]))
        exact, released = np.full(shape, np.nan), np.full(shape, np.nan)
        scale, sensitivity = np.full(len(queries), np.nan), np.full(len(queries), np.nan)
        used = np.zeros((len(queries), len(sc.prosumers)), dtype=np.int8)
        addresses = list(self.owners)
        for i, result in self.released.items():
            exact[i, :len(self.exact[i].answer)] = self.exact[i].answer
            released[i, :len(result.answer)] = result.answer
            scale[i] = result.scale
            epsilon = queries[i].epsilon
            sensitivity[i] = result.scale * epsilon if epsilon is not None else np.nan
            used[i, [addresses.index(a) for a in self.used[i]]] = 1
        unit = "the query's unit (data_query_unit)"
        part.add("data_exact_answer", ("request", "answer_entry"), exact, unit,
                 "the query's exact answer over the approving owners' data, unclipped (the worker's, never sent)")
        part.add("data_released_answer", ("request", "answer_entry"), released, unit,
                 "the answer the worker released to the requestor, with its noise")
        part.add("data_noise_scale", ("request",), scale, unit, "Laplace scale of the noise on each entry")
        part.add("data_sensitivity", ("request",), sensitivity, unit,
                 "L1 global sensitivity of the query (scale x epsilon); NaN for an exact release")
        part.add("data_used", ("request", "prosumer"), used, "1", "1 if the worker used the owner's store")
        part.add("data_query_unit", ("request",), np.array([QUERIES[q.code].unit for q in queries], dtype=object),
                 "1", "unit of each query's answer")
        return part
