"""The study's data requests as every actor names them, without the chain: ids, the budget, whose terms they are.

The owners (DER federate), the worker and the requestor read these; the
ledger's side (`gridledger.agents.data_market`) too.
"""

from __future__ import annotations

from gridledger.roster import Roster
from gridledger.units import PERMILLE, wei


def budget_wei(sc: Roster) -> int:
    """What the requestor needs: each request's price for every prosumer. [wei]"""
    spec = sc.study.data_access
    return sum(wei(q.price_per_owner) for q in spec.queries) * len(sc.prosumers)
REQUEST_ID_PREFIX = b"gridledger/data-request/"


def request_id(index: int) -> bytes:
    """The id of the study's request `index` (its position in ``data_access.queries``): public, one per query. [32 B]"""
    return (REQUEST_ID_PREFIX + str(index).encode()).ljust(32, b"\0")


def request_index(rid: str) -> int | None:
    """The position in ``data_access.queries`` of the request with hex id `rid`, None if it is not one of the study's."""
    raw = bytes.fromhex(rid[2:]).rstrip(b"\0")
    suffix = raw[len(REQUEST_ID_PREFIX):]
    return int(suffix) if raw.startswith(REQUEST_ID_PREFIX) and suffix.isdigit() else None


def is_study_request(sc: Roster, requestor: str, request: dict) -> bool:
    """Whether a ``data_events`` request is one the study's requestor made with the study's terms for its query: the
    owners approve, and the worker answers, nothing else (anyone may propose to them on chain)."""
    index = request_index(request["request_id"])
    if request["requestor"] != requestor or index is None or index >= len(sc.study.data_access.queries):
        return False
    query = sc.study.data_access.queries[index]
    epsilon_milli = round(query.epsilon * PERMILLE) if query.epsilon is not None else 0
    return (request["code"], request["epsilon_milli"], request["price_per_owner_wei"]) == (
        query.code, epsilon_milli, wei(query.price_per_owner))
