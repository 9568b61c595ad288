"""Emergency access: a declared emergency, a scoped grant that ends on its own, logged uses; the contract against its
Python reference, by hand and under hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridledger.contracts import emergency as em
from gridledger.contracts.emergency_reference import EmergencyModel
from tests.contract_helpers import Market, new_market, timeline

HOUR_S = 3600


def _scene() -> tuple[Market, str]:
    market = new_market(2)
    return market, em.deploy_emergency_access(market.chain, market.operator, market.addresses.registry)


def _one(market: Market, raw: bytes, timestamp: int | None = None):
    (receipt,) = market.mine([raw], timestamp)
    return receipt


def _events(market: Market, receipt) -> list[tuple[str, dict]]:
    return [(e.event, dict(e.args)) for e in map(market.chain.decode, receipt.logs) if e is not None]


def test_a_declared_emergency_grants_a_scoped_access_that_is_logged_and_ends_on_its_own():
    market, address = _scene()
    tech, house = market.outsider, market.prosumers[0].address
    declared = _one(market, em.declare(market.operator, address, "feeder 3 fault", 2 * HOUR_S))
    start = market.chain.timestamp
    assert declared.ok and declared.gas_used < em.GAS_DECLARE
    assert _events(market, declared) == [("EmergencyDeclared", {"emergency": 1, "end_timestamp": start + 2 * HOUR_S,
                                                                "reason": "feeder 3 fault"})]
    granted = _one(market, em.grant(market.operator, address, tech.address, em.SCOPE_READ_DATA, house, HOUR_S))
    assert granted.ok and granted.gas_used < em.GAS_GRANT
    used = _one(market, em.use(tech, address, em.SCOPE_READ_DATA, house, "read last 24 h"))
    assert used.ok and used.gas_used < em.GAS_USE
    assert _events(market, used) == [("Used", {"account": tech.address, "subject": house,
                                               "scope": em.SCOPE_READ_DATA, "note": "read last 24 h"})]
    assert em.refusal(market.chain, address, tech.address, em.SCOPE_READ_DATA, house) == ""
    # An hour after the grant it has ended by itself: no revocation needed.
    late = market.chain.timestamp + HOUR_S
    refused = _one(market, em.use(tech, address, em.SCOPE_READ_DATA, house, "again"), late)
    assert refused.revert_reason == "emergency: expired"


def test_a_grant_never_outlives_its_emergency_and_ending_it_ends_every_grant():
    market, address = _scene()
    tech, house = market.outsider, market.prosumers[1].address
    assert _one(market, em.declare(market.operator, address, "storm", HOUR_S)).ok
    end = market.chain.timestamp + HOUR_S
    assert _one(market, em.grant(market.operator, address, tech.address, em.SCOPE_OVERRIDE_CHARGING, em.NOBODY,
                                 5 * HOUR_S)).ok
    grant = em.read(market.chain, address, "grant_of", tech.address)
    assert grant == (em.SCOPE_OVERRIDE_CHARGING, em.NOBODY, end, False, 1)      # cut at the emergency's end
    assert _one(market, em.end_emergency(market.operator, address)).ok
    assert em.refusal(market.chain, address, tech.address, em.SCOPE_OVERRIDE_CHARGING, house) == "emergency: expired"
    assert _one(market, em.grant(market.operator, address, tech.address, 1, house, 60)).revert_reason == \
        "emergency: none declared"


ACTIONS = st.one_of(
    st.tuples(st.just("declare"), st.sampled_from(["operator", "tech"]), st.sampled_from([0, 600, HOUR_S])),
    st.tuples(st.just("end"), st.sampled_from(["operator", "tech"])),
    st.tuples(st.just("grant"), st.sampled_from(["operator", "p0"]), st.sampled_from(["tech", "p0", "helper"]),
              st.integers(0, 4), st.sampled_from(["p0", "p1", "all"]), st.sampled_from([0, 300, 2 * HOUR_S])),
    st.tuples(st.just("revoke"), st.sampled_from(["operator", "tech"]), st.sampled_from(["tech", "helper"])),
    st.tuples(st.just("use"), st.sampled_from(["tech", "helper", "p0"]), st.integers(0, 3),
              st.sampled_from(["p0", "p1"])),
    st.tuples(st.just("wait"), st.sampled_from([1, 299, 300, 601, HOUR_S])),
)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=14))
@example([("declare", "operator", HOUR_S), ("grant", "operator", "tech", 1, "p0", 300), ("revoke", "operator", "tech"),
          ("wait", 600), ("use", "tech", 1, "p0")])
@example([("declare", "operator", 600), ("grant", "operator", "tech", 3, "all", 2 * HOUR_S), ("use", "tech", 2, "p1"),
          ("end", "operator"), ("use", "tech", 2, "p1"), ("declare", "operator", 600), ("use", "tech", 1, "p0")])
def test_the_contract_is_its_reference_on_any_sequence_of_calls(actions):
    market, address = _scene()
    who = {"operator": market.operator, "tech": market.outsider, "helper": market.dso, "p0": market.prosumers[0]}
    subject = {"p0": market.prosumers[0].address, "p1": market.prosumers[1].address, "all": em.NOBODY}
    model = EmergencyModel(market.operator.address, {market.operator.address: 1, market.prosumers[0].address: 2,
                                                     market.prosumers[1].address: 2})
    for now, kind, args in timeline(actions, market.chain.timestamp):
        action = (kind, *args)
        if kind == "declare":
            sender, duration = args
            raw, expected = (em.declare(who[sender], address, "test", duration),
                             model.declare(now, who[sender].address, duration))
        elif kind == "end":
            raw, expected = em.end_emergency(who[args[0]], address), model.end_emergency(now, who[args[0]].address)
        elif kind == "grant":
            sender, account, scope, target, duration = args
            raw = em.grant(who[sender], address, who[account].address, scope, subject[target], duration)
            expected = model.grant(now, who[sender].address, who[account].address, scope, subject[target], duration)
        elif kind == "revoke":
            raw, expected = em.revoke(who[args[0]], address, who[args[1]].address), model.revoke(who[args[0]].address,
                                                                                             who[args[1]].address)
        else:
            account, scope, target = args
            raw = em.use(who[account], address, scope, subject[target], "x")
            expected = model.use(now, who[account].address, scope, subject[target])
        receipt = _one(market, raw, now)
        assert (None if receipt.ok else receipt.revert_reason) == expected, action
    for account in ("tech", "helper", "p0"):
        for scope in range(4):
            for target in ("p0", "p1"):
                assert em.refusal(market.chain, address, who[account].address, scope, subject[target]) == \
                    model.refusal(market.chain.timestamp, who[account].address, scope, subject[target])
