"""The setup's batch calls (issue 12, start-up at scale): the same checks and events as one call per account.

``Registry.grant_roles`` and ``bind_meters``, ``Settlement.register_prosumers``
and ``deposit_for_each`` let the operator set up a thousand prosumers in a few
transactions instead of five per prosumer. Who may call them, what bounds them
and what a bad item does: each refuses the caller the single-account call
refuses, with the same reason; one bad item reverts the whole batch, so a batch
never half-applies; nothing is granted, bound, registered or credited by a
reverted batch, and the token supply and the Settlement's books hold.
"""

import json

import pytest

from gridledger.contracts.keys import derive_account
from tests.contract_helpers import ENDOWMENT_WEI, START_TIMESTAMP, TEST_LIMITS, Market, new_market, reverted
from tests.secret_helpers import fixed_secret

ROLE_PROSUMER, ROLE_METER = 2, 4
NEWCOMERS = [derive_account(fixed_secret(7), f"newcomer/{i}").address for i in range(6)]


@pytest.fixture()
def market() -> Market:
    return new_market(2)


def _call(m: Market, wallet, contract: str, function: str, *args, at: int | None = None):
    (receipt,) = m.mine([m.call_tx(wallet, contract, function, *args, gas=3_000_000)], at)
    return receipt


def _events(m: Market, receipt, name: str) -> list[dict]:
    return [e.args for e in map(m.chain.decode, receipt.logs) if e is not None and e.event == name]


def _books_hold(m: Market) -> None:
    accounts = [m.operator.address, *(w.address for w in m.prosumers), *NEWCOMERS]
    held = m.read("GridToken", "balanceOf", m.addresses.settlement)
    assert sum(m.read("Settlement", "credit_wei", a) for a in accounts) + m.read("Settlement", "pool_wei") == held


def test_the_setup_is_a_few_batch_calls_with_an_event_per_account(tmp_path):
    m = new_market(300)
    # 4 deployments; then bind, 2 x grant prosumers, 2 x grant meters, 2 x bind, 2 x register limits,
    # approve, 2 x deposit for each, the operator's deposit: 13 setup calls (five per prosumer before: 1,503).
    assert m.chain.nonce(m.operator.address) == 4 + 13
    m.chain.export(tmp_path)
    events = [json.loads(line) for line in (tmp_path / "events.jsonl").read_text().splitlines()]
    setup = [e["event"] for e in events if e["block_number"] == 2]
    for name, count in (("RoleGranted", 600), ("MeterBound", 300), ("ProsumerRegistered", 300), ("Deposited", 301)):
        assert setup.count(name) == count, name
    for w, meter in zip(m.prosumers, m.meters, strict=True):
        assert m.read("Registry", "has_role", w.address, ROLE_PROSUMER)
        assert m.read("Registry", "meter_of_prosumer", w.address) == meter.address
        assert m.read("Settlement", "credit_wei", w.address) == ENDOWMENT_WEI


def test_a_batch_from_anyone_but_the_operator_is_refused_as_one_call_would_be(market):
    m = market
    for wallet in (m.prosumers[0], m.meters[0], m.outsider):
        assert reverted(_call(m, wallet, "Registry", "grant_roles", NEWCOMERS[:2], ROLE_PROSUMER),
                        "registry: caller is not operator")
        assert reverted(_call(m, wallet, "Registry", "bind_meters", [m.meters[1].address], [m.prosumers[0].address]),
                        "registry: caller is not operator")
        assert reverted(_call(m, wallet, "Settlement", "register_prosumers", [(NEWCOMERS[0], 1000, 0, 0)]),
                        "settlement: caller is not the operator")
    assert not any(m.read("Registry", "has_role", a, ROLE_PROSUMER) for a in NEWCOMERS[:2])
    assert m.read("Registry", "prosumer_of_meter", m.meters[1].address) == m.prosumers[1].address
    assert m.read("Settlement", "order_limit_wh", NEWCOMERS[0], False) == 0


def test_one_conflicting_grant_reverts_the_whole_batch(market):
    m = market
    receipt = _call(m, m.operator, "Registry", "grant_roles", [NEWCOMERS[0], m.meters[0].address, NEWCOMERS[1]],
                    ROLE_PROSUMER)
    assert reverted(receipt, "registry: meter cannot be prosumer")
    assert not m.read("Registry", "has_role", NEWCOMERS[0], ROLE_PROSUMER)
    assert reverted(_call(m, m.operator, "Registry", "grant_roles", [NEWCOMERS[0]], 8), "registry: unknown role")
    zero = "0x" + "00" * 20
    assert reverted(_call(m, m.operator, "Registry", "grant_roles", [NEWCOMERS[0], zero], ROLE_METER),
                    "registry: account is the zero address")
    assert not m.read("Registry", "has_role", NEWCOMERS[0], ROLE_METER)


def test_bindings_in_a_batch_keep_one_meter_per_prosumer_and_freeze_at_the_start(market):
    m = market
    assert _call(m, m.operator, "Registry", "grant_roles", NEWCOMERS[:2], ROLE_METER).ok
    assert reverted(_call(m, m.operator, "Registry", "bind_meters", NEWCOMERS[:2], [m.prosumers[0].address]),
                    "registry: length mismatch")
    assert reverted(_call(m, m.operator, "Registry", "bind_meters", NEWCOMERS[:1], [NEWCOMERS[1]]),
                    "registry: prosumer lacks prosumer role")
    # Rebinding prosumer 0 to a new meter, then the same prosumer again: the last binding wins, as one by one.
    receipt = _call(m, m.operator, "Registry", "bind_meters", NEWCOMERS[:2], [m.prosumers[0].address] * 2)
    assert receipt.ok
    assert m.read("Registry", "meter_of_prosumer", m.prosumers[0].address) == NEWCOMERS[1]
    assert m.read("Registry", "prosumer_of_meter", NEWCOMERS[0]) == "0x" + "00" * 20
    assert m.read("Registry", "prosumer_of_meter", m.meters[0].address) == "0x" + "00" * 20
    assert [e["meter"] for e in _events(m, receipt, "MeterUnbound")] == [m.meters[0].address, NEWCOMERS[0]]
    late = _call(m, m.operator, "Registry", "bind_meters", [m.meters[0].address], [m.prosumers[1].address],
                 at=START_TIMESTAMP)
    assert reverted(late, "registry: bindings frozen")
    assert m.read("Registry", "meter_of_prosumer", m.prosumers[1].address) == m.meters[1].address


def test_registrations_are_once_each_bounded_and_before_the_start(market):
    m = market
    limits = (TEST_LIMITS.meter_rating_w, TEST_LIMITS.pv_w, TEST_LIMITS.battery_w)
    again = _call(m, m.operator, "Settlement", "register_prosumers", [(NEWCOMERS[0], *limits),
                                                                       (m.prosumers[0].address, *limits)])
    assert reverted(again, "settlement: prosumer registered")
    assert m.read("Settlement", "order_limit_wh", NEWCOMERS[0], False) == 0      # the batch did not half-apply
    assert reverted(_call(m, m.operator, "Settlement", "register_prosumers", [(NEWCOMERS[0], 0, 0, 0)]),
                    "settlement: zero meter rating")
    assert reverted(_call(m, m.operator, "Settlement", "register_prosumers", [(NEWCOMERS[0], 10**9 + 1, 0, 0)]),
                    "settlement: power above limit")
    receipt = _call(m, m.operator, "Settlement", "register_prosumers", [(a, *limits) for a in NEWCOMERS[:3]])
    assert receipt.ok and [e["prosumer"] for e in _events(m, receipt, "ProsumerRegistered")] == NEWCOMERS[:3]
    late = _call(m, m.operator, "Settlement", "register_prosumers", [(NEWCOMERS[3], *limits)], at=START_TIMESTAMP)
    assert reverted(late, "settlement: market started")


def test_deposits_for_each_pull_the_sum_once_and_credit_every_beneficiary(market):
    m = market
    supply = m.read("GridToken", "totalSupply")
    before = m.read("Settlement", "credit_wei", m.operator.address)
    assert m.mine([m.call_tx(m.operator, "Settlement", "withdraw", 5 * ENDOWMENT_WEI)])[0].ok
    assert m.mine([m.call_tx(m.operator, "GridToken", "approve", m.addresses.settlement, 3 * ENDOWMENT_WEI)])[0].ok
    assert reverted(_call(m, m.operator, "Settlement", "deposit_for_each", NEWCOMERS[:2], 0), "settlement: zero amount")
    too_much = _call(m, m.operator, "Settlement", "deposit_for_each", NEWCOMERS[:4], ENDOWMENT_WEI)
    assert reverted(too_much, "token: insufficient allowance")                  # 4 endowments, 3 approved
    assert all(m.read("Settlement", "credit_wei", a) == 0 for a in NEWCOMERS[:4])
    receipt = _call(m, m.operator, "Settlement", "deposit_for_each", NEWCOMERS[:3], ENDOWMENT_WEI)
    assert receipt.ok and len(_events(m, receipt, "Deposited")) == 3
    assert [e["value"] for e in _events(m, receipt, "Transfer")] == [3 * ENDOWMENT_WEI]
    assert all(m.read("Settlement", "credit_wei", a) == ENDOWMENT_WEI for a in NEWCOMERS[:3])
    assert m.read("Settlement", "credit_wei", m.operator.address) == before - 5 * ENDOWMENT_WEI
    assert m.read("GridToken", "totalSupply") == supply
    _books_hold(m)
