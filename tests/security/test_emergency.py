"""The emergency role's revert matrix: every misuse refused with its exact reason, nothing logged as a use.

Cast: the operator declares and grants; ``tech`` (an account with no
registry role) is the service account; p0, p1 are households (prosumers);
p0's meter and p0 itself try to take the role.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import emergency as em
from tests.test_emergency_contract import HOUR_S, _one, _scene


def _granted(scope: int = em.SCOPE_READ_DATA, subject_index: int | None = 0, duration_s: int = HOUR_S):
    market, address = _scene()
    subject = em.NOBODY if subject_index is None else market.prosumers[subject_index].address
    assert _one(market, em.declare(market.operator, address, "fault", 2 * HOUR_S)).ok
    assert _one(market, em.grant(market.operator, address, market.outsider.address, scope, subject, duration_s)).ok
    return market, address


def _uses(market, receipt) -> list:
    return [e for e in map(market.chain.decode, receipt.logs) if e is not None and e.event == "Used"]


@pytest.mark.parametrize("case,reason", [
    ("never granted", "emergency: not granted"),
    ("granted in an earlier emergency", "emergency: not granted"),
    ("revoked", "emergency: revoked"),
    ("past its end", "emergency: expired"),
    ("emergency ended early", "emergency: expired"),
    ("another scope", "emergency: out of scope"),
    ("another household", "emergency: out of scope"),
    ("no scope", "emergency: out of scope"),
])
def test_a_use_outside_a_live_grant_is_refused_with_its_reason(case, reason):
    market, address = _granted()
    tech, p0, p1 = market.outsider, market.prosumers[0].address, market.prosumers[1].address
    scope, subject, at = em.SCOPE_READ_DATA, p0, None
    if case == "never granted":
        tech = market.dso
    elif case == "granted in an earlier emergency":
        assert _one(market, em.end_emergency(market.operator, address)).ok
        assert _one(market, em.declare(market.operator, address, "another", HOUR_S)).ok
    elif case == "revoked":
        assert _one(market, em.revoke(market.operator, address, tech.address)).ok
    elif case == "past its end":
        at = market.chain.timestamp + HOUR_S
    elif case == "emergency ended early":
        assert _one(market, em.end_emergency(market.operator, address)).ok
    elif case == "another scope":
        scope = em.SCOPE_OVERRIDE_CHARGING
    elif case == "another household":
        subject = p1
    else:
        scope = 0
    receipt = _one(market, em.use(tech, address, scope, subject, "try"), at)
    assert receipt.revert_reason == reason and not _uses(market, receipt)


@pytest.mark.parametrize("who", ["p0", "meter0", "tech"])
def test_only_the_operator_declares_grants_revokes_and_ends(who):
    market, address = _granted()
    sender = {"p0": market.prosumers[0], "meter0": market.meters[0], "tech": market.outsider}[who]
    for raw in (em.declare(sender, address, "mine", 60), em.end_emergency(sender, address),
                em.grant(sender, address, sender.address, 3, em.NOBODY, 60),
                em.revoke(sender, address, market.outsider.address)):
        assert _one(market, raw).revert_reason == "emergency: caller is not operator"
    assert em.refusal(market.chain, address, market.outsider.address, em.SCOPE_READ_DATA,
                      market.prosumers[0].address) == ""                 # the operator's grant stands


@pytest.mark.parametrize("grantee", ["p0", "meter0", "operator", "nobody"])
def test_a_grantee_holding_a_role_is_refused(grantee):
    market, address = _granted()
    account = {"p0": market.prosumers[0].address, "meter0": market.meters[0].address,
               "operator": market.operator.address, "nobody": em.NOBODY}[grantee]
    receipt = _one(market, em.grant(market.operator, address, account, em.SCOPE_READ_DATA, em.NOBODY, 60))
    assert receipt.revert_reason == "emergency: grantee holds a role"


def test_declarations_and_grants_are_bounded():
    market, address = _scene()
    tech = market.outsider.address
    assert _one(market, em.grant(market.operator, address, tech, 1, em.NOBODY, 60)).revert_reason == \
        "emergency: none declared"
    for duration in (0, 7 * 86400 + 1):
        assert _one(market, em.declare(market.operator, address, "x", duration)).revert_reason == \
            "emergency: duration out of range"
    assert _one(market, em.declare(market.operator, address, "x", 7 * 86400)).ok
    assert _one(market, em.declare(market.operator, address, "y", 60)).revert_reason == "emergency: already declared"
    assert _one(market, em.grant(market.operator, address, tech, 4, em.NOBODY, 60)).revert_reason == \
        "emergency: unknown scope"
    assert _one(market, em.grant(market.operator, address, tech, 1, em.NOBODY, 0)).revert_reason == \
        "emergency: duration out of range"
    assert _one(market, em.revoke(market.operator, address, tech)).revert_reason == "emergency: not granted"
