"""Attacks on data access, each refused with its exact reason, the lock intact and nobody paid.

Cast (`tests.test_data_access_contract`): the outsider requests query 1
of p01-p03 at 1 token each; p01 approves; the DSO account is the worker;
p04 and the operator try what they may not.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import data_access as da
from tests.contract_helpers import reverted
from tests.test_data_access_contract import TOKEN, WINDOW_S, _balance, _one, _propose, _scene

RID = b"q1".ljust(32, b"\0")


def _requested():
    market, address = _scene()
    approval, result = _propose(market, address)
    assert _one(market, da.approve(market.prosumers[0], address, RID)).ok
    return market, address, approval, result


def _balances(market, address) -> list[int]:
    return [_balance(market, a) for a in (market.outsider.address, *(p.address for p in market.prosumers), address)]


@pytest.mark.parametrize("attack,reason", [
    ("an unlisted prosumer approves", "data: caller is not a listed owner"),
    ("an owner approves twice", "data: already approved"),
    ("an owner approves after the deadline", "data: approval closed"),
    ("a prosumer posts a result", "data: caller is not the worker"),
    ("the worker posts before approvals close", "data: approval still open"),
    ("the worker posts after the result deadline", "data: result deadline passed"),
    ("the worker claims more owners than approved", "data: owners used are not the approvals"),
    ("an owner accepts for the requestor", "data: no result"),
    ("anyone cancels an open request", "data: request still open"),
])
def test_a_misuse_of_a_request_is_refused_and_moves_nothing(attack, reason):
    market, address, approval, result = _requested()
    p0, p3, worker = market.prosumers[0], market.prosumers[3], market.dso
    before = _balances(market, address)
    post = {"result_hash": bytes(32), "inputs_commitment": bytes(32)}
    raw, at = {
        "an unlisted prosumer approves": lambda: (da.approve(p3, address, RID), None),
        "an owner approves twice": lambda: (da.approve(p0, address, RID), None),
        "an owner approves after the deadline": lambda: (da.approve(market.prosumers[1], address, RID), approval),
        "a prosumer posts a result": lambda: (da.post_result(p3, address, RID, **post, owners_used=1), approval),
        "the worker posts before approvals close": lambda: (da.post_result(worker, address, RID, **post,
                                                                           owners_used=1), None),
        "the worker posts after the result deadline": lambda: (da.post_result(worker, address, RID, **post,
                                                                              owners_used=1), result),
        "the worker claims more owners than approved": lambda: (da.post_result(worker, address, RID, **post,
                                                                               owners_used=3), approval),
        "an owner accepts for the requestor": lambda: (da.accept(p0, address, RID), None),
        "anyone cancels an open request": lambda: (da.cancel(p3, address, RID), None),
    }[attack]()
    assert reverted(_one(market, raw, at), reason)
    assert _balances(market, address) == before


def test_only_the_requestor_accepts_and_finalizing_waits_for_its_window():
    market, address, approval, _ = _requested()
    assert _one(market, da.post_result(market.dso, address, RID, result_hash=bytes(32), inputs_commitment=bytes(32),
                                       owners_used=1), approval).ok
    posted_at = market.chain.timestamp
    assert reverted(_one(market, da.accept(market.prosumers[0], address, RID)), "data: caller is not the requestor")
    assert reverted(_one(market, da.finalize(market.prosumers[0], address, RID)), "data: accept window open")
    before = _balances(market, address)
    assert _one(market, da.finalize(market.prosumers[3], address, RID), posted_at + WINDOW_S).ok
    after = _balances(market, address)
    # p01 (approved) is paid 1 token; the two refusing owners' 2 tokens go back to the requestor; nothing stays.
    assert [a - b for a, b in zip(after, before)] == [2 * TOKEN, TOKEN, 0, 0, 0, -3 * TOKEN]
    assert reverted(_one(market, da.accept(market.outsider, address, RID)), "data: no result")


@pytest.mark.parametrize("case,reason", [
    ("the worker requests", "data: the worker may not request"),
    ("a non-prosumer owner", "data: owner is not a prosumer"),
    ("an owner listed twice", "data: owner listed twice"),
    ("no owners", "data: no owners"),
    ("a query outside the catalogue", "data: unknown query"),
    ("a result deadline before the approvals close", "data: deadlines out of range"),
    ("a price of zero", "data: price out of range"),
])
def test_a_malformed_request_is_refused(case, reason):
    market, address = _scene()
    now = market.chain.timestamp
    owners = [market.prosumers[0].address, market.prosumers[1].address]
    args = dict(code=1, epsilon_milli=0, price_per_owner_wei=TOKEN, owners=owners,
                approval_deadline_timestamp=now + 100, result_deadline_timestamp=now + 200)
    sender = market.outsider
    if case == "the worker requests":
        sender = market.dso
    elif case == "a non-prosumer owner":
        args["owners"] = [market.outsider.address]
    elif case == "an owner listed twice":
        args["owners"] = [owners[0], owners[0]]
    elif case == "no owners":
        args["owners"] = []
    elif case == "a query outside the catalogue":
        args["code"] = 3
    elif case == "a result deadline before the approvals close":
        args["result_deadline_timestamp"] = now + 50
    else:
        args["price_per_owner_wei"] = 0
    assert reverted(_one(market, da.propose(sender, address, RID, **args)), reason)
    assert _balance(market, address) == 0
