"""Data access by contract: a requestor pays approving owners for a catalogue answer computed off chain from their
stores only; hand-computed payments, the off-chain worker's hashes on chain, every reason, and the contract against
its Python reference under hypothesis."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridledger.agents.data_store import COLUMNS, store_path, write_store
from gridledger.agents.data_worker import Owner, approving_owners, run_query
from gridledger.contracts import data_access as da
from gridledger.contracts import flexibility as flex
from gridledger.contracts.client import encode_call
from gridledger.contracts.data_access_reference import DataAccessModel, Status
from gridledger.contracts.market import SetupFailed
from gridledger.contracts.reference import TokenEscrow
from tests.contract_helpers import Market, new_market, reverted, timeline

TOKEN = 10**18
FUNDS_WEI = 20 * TOKEN
HOUR_S = 3600
WINDOW_S = 600


def _scene() -> tuple[Market, str]:
    """Four prosumers; the DSO account (no role) is the worker; the outsider, funded by p3, is the requestor."""
    market = new_market(4)
    address = da.deploy_data_access(market.chain, market.operator, market.addresses.registry,
                                    market.addresses.token, market.dso.address, WINDOW_S)
    p3 = market.prosumers[3]
    txs = [market.call_tx(p3, "Settlement", "withdraw", FUNDS_WEI),
           p3.transact(market.addresses.token, encode_call("GridToken", "transfer", market.outsider.address,
                                                            FUNDS_WEI), gas=100_000),
           flex.approve(market.outsider, market.addresses.token, address, FUNDS_WEI)]
    assert all(r.ok for r in market.mine(txs))
    return market, address


def _one(market: Market, raw: bytes, timestamp: int | None = None):
    (receipt,) = market.mine([raw], timestamp)
    return receipt


def _balance(market: Market, account: str) -> int:
    return market.read("GridToken", "balanceOf", account)


def _propose(market: Market, address: str, request_id: bytes = b"q1", owners: tuple[int, ...] = (0, 1, 2),
             code: int = 1, price: int = TOKEN) -> tuple[int, int]:
    now = market.chain.timestamp
    approval, result = now + HOUR_S, now + 2 * HOUR_S
    receipt = _one(market, da.propose(market.outsider, address, request_id.ljust(32, b"\0"), code=code,
                                      epsilon_milli=0, price_per_owner_wei=price,
                                      owners=[market.prosumers[i].address for i in owners],
                                      approval_deadline_timestamp=approval, result_deadline_timestamp=result))
    assert receipt.ok, receipt.revert_reason
    assert receipt.gas_used < da.GAS_PROPOSE
    return approval, result


def test_approving_owners_are_paid_the_rest_returns_and_the_workers_hashes_are_on_chain(tmp_path):
    market, address = _scene()
    rid = b"q1".ljust(32, b"\0")
    approval, _ = _propose(market, address)
    assert _balance(market, address) == 3 * TOKEN
    assert _one(market, da.approve(market.prosumers[0], address, rid)).ok
    assert _one(market, da.approve(market.prosumers[2], address, rid)).ok
    # Off chain: each household's store; the worker reads the approving owners' only.
    owners = {}
    for i, load_kw in enumerate((1.0, 2.0, 4.0)):
        path = store_path(tmp_path, f"p0{i + 1}")
        write_store(path, np.arange(24) * 300.0, {c: np.full(24, load_kw if c == "load_kw" else 0.0) for c in COLUMNS})
        owners[market.prosumers[i].address] = Owner(market.prosumers[i].address, path, 10.0, False)
    approvals = {a: bool(da.read(market.chain, address, "approved", rid, a)) for a in owners}
    result = run_query(1, None, approving_owners(owners, approvals), np.random.default_rng(0))
    assert result.answer == [5.0] and result.owners == 2                    # 1 + 4 kW: p02 refused
    posted = _one(market, da.post_result(market.dso, address, rid, result_hash=result.result_hash,
                                         inputs_commitment=result.inputs_commitment, owners_used=result.owners),
                  approval)
    assert posted.ok and posted.gas_used < da.GAS_POST_RESULT
    stored = da.read(market.chain, address, "request_of", rid)
    assert (stored[0], stored[8], stored[9]) == (Status.RESULT_POSTED, result.result_hash, result.inputs_commitment)
    before = [_balance(market, p.address) for p in market.prosumers[:3]] + [_balance(market, market.outsider.address)]
    paid = _one(market, da.accept(market.outsider, address, rid))
    assert paid.ok and paid.gas_used < da.GAS_PAY
    after = [_balance(market, p.address) for p in market.prosumers[:3]] + [_balance(market, market.outsider.address)]
    assert [a - b for a, b in zip(after, before)] == [TOKEN, 0, TOKEN, TOKEN]   # p02's price back to the requestor
    assert _balance(market, address) == 0


def test_a_request_without_a_result_or_approvals_is_cancelled_and_refunded_in_full():
    market, address = _scene()
    rid = b"q2".ljust(32, b"\0")
    approval, result = _propose(market, address, b"q2")
    assert reverted(_one(market, da.cancel(market.prosumers[1], address, rid)), "data: request still open")
    funds = _balance(market, market.outsider.address)
    receipt = _one(market, da.cancel(market.prosumers[1], address, rid), approval)
    assert receipt.ok and _balance(market, market.outsider.address) == funds + 3 * TOKEN
    events = [(e.event, dict(e.args)) for e in map(market.chain.decode, receipt.logs) if e is not None]
    assert ("Cancelled", {"request_id": rid, "reason": "data: no owner approved"}) in events


def test_a_worker_holding_a_role_is_refused_at_deployment():
    market = new_market(2)
    with pytest.raises(SetupFailed, match="data access setup: deploy DataAccess failed: data: worker holds a role"):
        da.deploy_data_access(market.chain, market.operator, market.addresses.registry, market.addresses.token,
                              market.prosumers[0].address, WINDOW_S)


def _id(n: int) -> bytes:
    return n.to_bytes(32, "big")


ACTIONS = st.one_of(
    st.tuples(st.just("propose"), st.integers(0, 2), st.sampled_from(["requestor", "worker"]), st.integers(0, 3),
              st.sampled_from([(0, 1), (0, 1, 2), (1,), (), (0, 0), (0, 4)]), st.sampled_from([TOKEN, 7 * TOKEN])),
    st.tuples(st.just("approve"), st.integers(0, 2), st.integers(0, 4)),
    st.tuples(st.just("post"), st.integers(0, 2), st.sampled_from(["worker", "requestor"]), st.integers(0, 3)),
    st.tuples(st.just("accept"), st.integers(0, 2), st.sampled_from(["requestor", "p0"])),
    st.tuples(st.just("finalize"), st.integers(0, 2)),
    st.tuples(st.just("cancel"), st.integers(0, 2)),
    st.tuples(st.just("wait"), st.sampled_from([1, WINDOW_S, HOUR_S])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=14))
@example([("propose", 0, "requestor", 1, (0, 1, 2), TOKEN), ("approve", 0, 1), ("wait", HOUR_S),
          ("post", 0, "worker", 1), ("wait", WINDOW_S), ("finalize", 0)])
@example([("propose", 1, "requestor", 0, (0, 1), TOKEN), ("wait", HOUR_S), ("wait", HOUR_S), ("cancel", 1)])
def test_the_contract_is_its_reference_and_holds_exactly_the_open_locks(actions):
    """Accounts p0-p3 (p4 = the outsider, not a prosumer); request ids 0-2."""
    market, address = _scene()
    accounts = [*market.prosumers, market.outsider]
    who = {"requestor": market.outsider, "worker": market.dso, "p0": market.prosumers[0]}
    tracked = [market.outsider.address, *(p.address for p in market.prosumers[:3])]
    model = DataAccessModel(market.dso.address, {p.address for p in market.prosumers}, WINDOW_S,
                            TokenEscrow(balance={a: _balance(market, a) for a in tracked},
                                        allowance={market.outsider.address: FUNDS_WEI}))
    for now, kind, (request, *args) in timeline(actions, market.chain.timestamp):
        action = (kind, request, *args)
        rid = _id(request)
        if kind == "propose":
            sender, code, owners, price = args
            addresses = [accounts[i].address for i in owners]
            raw = da.propose(who[sender], address, rid, code=code, epsilon_milli=0, price_per_owner_wei=price,
                             owners=addresses, approval_deadline_timestamp=now + HOUR_S,
                             result_deadline_timestamp=now + 2 * HOUR_S)
            expected = model.propose(now, who[sender].address, rid, code, price, addresses, now + HOUR_S,
                                     now + 2 * HOUR_S)
        elif kind == "approve":
            raw, expected = da.approve(accounts[args[0]], address, rid), model.approve(now, accounts[args[0]].address,
                                                                                       rid)
        elif kind == "post":
            sender, used = args
            raw = da.post_result(who[sender], address, rid, result_hash=bytes(32), inputs_commitment=bytes(32),
                                 owners_used=used)
            expected = model.post_result(now, who[sender].address, rid, used)
        elif kind == "accept":
            raw, expected = da.accept(who[args[0]], address, rid), model.accept(who[args[0]].address, rid)
        elif kind == "finalize":
            raw, expected = da.finalize(market.prosumers[3], address, rid), model.finalize(now, rid)
        else:
            raw, expected = da.cancel(market.prosumers[3], address, rid), model.cancel(now, rid)
        receipt = _one(market, raw, now)
        assert (None if receipt.ok else receipt.revert_reason) == expected, action
        assert [_balance(market, a) for a in tracked] == [model.tokens.balance[a] for a in tracked]
        assert _balance(market, address) == model.locked_wei()


def test_a_request_to_the_most_owners_fits_the_gas_limits_its_signers_use():
    market = new_market(da_max := 64)
    address = da.deploy_data_access(market.chain, market.operator, market.addresses.registry,
                                    market.addresses.token, market.dso.address, WINDOW_S)
    requestor = market.prosumers[0]
    assert all(r.ok for r in market.mine([market.call_tx(requestor, "Settlement", "withdraw", 100 * TOKEN),
                                          flex.approve(requestor, market.addresses.token, address, 100 * TOKEN)]))
    now, rid = market.chain.timestamp, _id(9)
    proposed = _one(market, da.propose(requestor, address, rid, code=0, epsilon_milli=1000, price_per_owner_wei=TOKEN,
                                       owners=[p.address for p in market.prosumers[:da_max]],
                                       approval_deadline_timestamp=now + HOUR_S,
                                       result_deadline_timestamp=now + 2 * HOUR_S))
    assert proposed.ok and proposed.gas_used < da.GAS_PROPOSE
    approvals = market.mine([da.approve(p, address, rid) for p in market.prosumers[:da_max]])
    assert all(r.ok and r.gas_used < da.GAS_APPROVE for r in approvals)
    assert _one(market, da.post_result(market.dso, address, rid, result_hash=bytes(32), inputs_commitment=bytes(32),
                                       owners_used=da_max), now + HOUR_S).ok
    paid = _one(market, da.accept(requestor, address, rid))
    assert paid.ok and paid.gas_used < da.GAS_PAY
