"""Emergency overrides of charging admissions: every misuse refused with its exact reason, the admission unchanged.

Cast: the operator declares emergencies and grants; ``tech`` (no registry
role) is the service account, ``helper`` another one never granted; p0 and
p1 are households with a registered EV, p2 one without. In window 1 p0
alone requests and is admitted at its charger's full power; the emergency
grants ``tech`` the charging override over p0 for an hour.
The charging contract moves no tokens: what an honest account can lose
here is its admitted charging power, so each refused override leaves it,
and the window's allocation, as ``allocate`` set them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridledger.contracts import charging as ch
from gridledger.contracts import emergency as em
from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.charging_reference import (
    ChargeRequest,
    EVRegistration,
    OverrideRefused,
    RequestRefused,
    Session,
    check_override,
    check_request,
)
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.emergency_reference import EmergencyModel
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import SetupFailed
from tests.contract_helpers import GENESIS_TIMESTAMP, SEED, START_TIMESTAMP
from tests.secret_helpers import fixed_secret
from tests.security.charging_scene import (CAPACITY_WH, CHARGER_W, MIN_REQUEST_W, REQUEST_LEAD_S, ROLE_PROSUMER, ROUND_S,
                                          WINDOW_S)

HOUR_S = 3600


@dataclass
class Scene:
    """A registry with three prosumers (EVs registered for p0 and p1), its emergency access and a charging
    coordination wired to it (or to none); before window 0 starts."""

    chain: Chain
    operator: Wallet
    tech: Wallet
    helper: Wallet
    prosumers: list[Wallet]
    registry: str
    emergency: str
    address: str

    def start(self, window: int) -> int:
        return START_TIMESTAMP + window * WINDOW_S

    def end(self, window: int) -> int:
        return self.start(window + 1)

    def one(self, raw: bytes, timestamp: int | None = None) -> Receipt:
        (receipt,) = self.chain.mine([raw], self.chain.timestamp + 1 if timestamp is None else timestamp)
        return receipt

    def admission(self, window: int) -> tuple[dict[str, int], ch.Allocation]:
        """Every prosumer's admitted power in ``window`` [W] and the window's allocation."""
        accounts = [p.address for p in self.prosumers]
        return (ch.admitted_power_w(self.chain, self.address, window, accounts),
                ch.allocation(self.chain, self.address, window))

    def overrides(self, receipt: Receipt) -> list[dict]:
        return [dict(e.args) for e in map(self.chain.decode, receipt.logs)
                if e is not None and e.event == "ChargingOverridden"]


def new_scene(*, wired: bool = True) -> Scene:
    """The scene's contracts; the charging coordination has no emergency access unless ``wired``."""
    secret = fixed_secret(SEED)
    operator, tech, helper = (derive_account(secret, name) for name in ("operator", "outsider", "dso"))
    prosumers = [derive_account(secret, f"prosumer/{i}") for i in range(3)]
    chain = Chain([a.address for a in (operator, tech, helper, *prosumers)], genesis_timestamp=GENESIS_TIMESTAMP)
    op = chain.wallet(operator)
    raw, registry = op.deploy(load_artifact("Registry"), START_TIMESTAMP)
    grants = [op.transact(registry, encode_call("Registry", "grant_role", p.address, ROLE_PROSUMER), gas=150_000)
              for p in prosumers]
    receipts = chain.mine([raw, *grants], GENESIS_TIMESTAMP + 1)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    emergency = em.deploy_emergency_access(chain, op, registry)
    address = ch.deploy_charging(chain, op, registry=registry, start_timestamp=START_TIMESTAMP, window_s=WINDOW_S,
                                 request_lead_s=REQUEST_LEAD_S, min_request_w=MIN_REQUEST_W,
                                 emergency_access=emergency if wired else em.NOBODY)
    receipts = chain.mine([ch.register_ev(op, address, EVRegistration(p.address, CAPACITY_WH, CHARGER_W))
                           for p in prosumers[:2]], chain.timestamp + 1)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    return Scene(chain, op, chain.wallet(tech), chain.wallet(helper), [chain.wallet(p) for p in prosumers],
                 registry, emergency, address)


def _admitted_scene(*, wired: bool = True) -> Scene:
    """Window 1: p0 requests and is admitted at CHARGER_W (headroom 2 x CHARGER_W); then, ten seconds after the
    allocation, an emergency of two hours and ``tech``'s grant of the charging override over p0 for one hour."""
    scene = new_scene(wired=wired)
    p0 = scene.prosumers[0]
    request = ChargeRequest(p0.address, CHARGER_W, 30_000, 500, scene.start(40))
    filed = scene.chain.mine([ch.post_headroom(scene.operator, scene.address, 1, headroom_w=2 * CHARGER_W),
                              ch.request_charge(p0, scene.address, 1, request)], scene.start(0) + ROUND_S)
    assert all(r.ok for r in filed), [r.revert_reason for r in filed]
    assert scene.one(ch.allocate(scene.helper, scene.address, 1, n_requests=1), scene.start(1) - REQUEST_LEAD_S).ok
    assert scene.one(em.declare(scene.operator, scene.emergency, "feeder 3 overload", 2 * HOUR_S),
                     scene.start(1) - REQUEST_LEAD_S + 10).ok
    assert scene.one(em.grant(scene.operator, scene.emergency, scene.tech.address, em.SCOPE_OVERRIDE_CHARGING,
                              p0.address, HOUR_S)).ok
    assert scene.admission(1) == ({p0.address: CHARGER_W, scene.prosumers[1].address: 0,
                                   scene.prosumers[2].address: 0}, ch.Allocation(True, 2 * CHARGER_W, CHARGER_W, 1, 1))
    return scene


def test_a_granted_cut_is_applied_logged_and_counted_in_the_allocation():
    scene = _admitted_scene()
    p0 = scene.prosumers[0].address
    receipt = scene.one(ch.override(scene.tech, scene.address, 1, p0, 3000, "relieve line 7"))
    assert receipt.ok and receipt.gas_used <= ch.GAS_OVERRIDE
    assert scene.overrides(receipt) == [{"window": 1, "account": p0, "by": scene.tech.address, "old_w": CHARGER_W,
                                         "new_w": 3000, "note": "relieve line 7"}]
    admitted, allocation = scene.admission(1)
    assert admitted[p0] == 3000 and allocation == ch.Allocation(True, 2 * CHARGER_W, 3000, 1, 1)
    # Mid-window, a second cut to 0 takes the EV out of the window's admissions.
    stop = scene.one(ch.override(scene.tech, scene.address, 1, p0, 0, "isolate"), scene.start(1) + 60)
    assert stop.ok and stop.gas_used <= ch.GAS_OVERRIDE
    assert scene.admission(1)[1] == ch.Allocation(True, 2 * CHARGER_W, 0, 1, 0)


# (case, reason): the override p0's window-1 admission to 3000 W by tech, after the case's set-up.
CASES = [
    ("never granted", "emergency: not granted"),
    ("revoked", "emergency: revoked"),
    ("expired", "emergency: expired"),
    ("emergency ended", "emergency: expired"),
    ("other household", "emergency: out of scope"),
    ("read-only scope", "emergency: out of scope"),
    ("raise above admitted", "charging: override above admitted"),
    ("raise back after a cut", "charging: override above admitted"),
    ("window not allocated", "charging: window not allocated"),
    ("window over", "charging: window over"),
    ("unknown EV", "charging: EV not registered"),
    ("EV not admitted", "charging: EV not admitted"),
    ("no emergency access deployed", "charging: no emergency access"),
]


@pytest.mark.parametrize("case, reason", CASES, ids=[c for c, _ in CASES])
def test_an_override_outside_a_live_grant_or_its_rule_is_refused_and_the_admission_stands(case, reason):
    scene = _admitted_scene(wired=case != "no emergency access deployed")
    op, tech, emergency = scene.operator, scene.tech, scene.emergency
    p0, p1, p2 = (p.address for p in scene.prosumers)
    sender, window, account, new_w, at = tech, 1, p0, 3000, None
    if case == "never granted":
        sender = scene.helper
    elif case == "revoked":
        assert scene.one(em.revoke(op, emergency, tech.address)).ok
    elif case == "expired":
        at = em.read(scene.chain, emergency, "grant_of", tech.address)[2]
    elif case == "emergency ended":
        assert scene.one(em.end_emergency(op, emergency)).ok
    elif case == "other household":
        account = p1
    elif case == "read-only scope":
        assert scene.one(em.grant(op, emergency, tech.address, em.SCOPE_READ_DATA, p0, HOUR_S)).ok
    elif case == "raise above admitted":
        new_w = CHARGER_W + 1
    elif case == "raise back after a cut":
        assert scene.one(ch.override(tech, scene.address, 1, p0, 3000, "cut")).ok
        new_w = CHARGER_W
    elif case == "window not allocated":
        window = 2
    elif case == "window over":
        at = scene.end(1)
    elif case in ("unknown EV", "EV not admitted"):
        assert scene.one(em.grant(op, emergency, tech.address, em.SCOPE_OVERRIDE_CHARGING, em.NOBODY, HOUR_S)).ok
        account = p2 if case == "unknown EV" else p1
    before = scene.admission(1), scene.admission(2)
    receipt = scene.one(ch.override(sender, scene.address, window, account, new_w, "try"), at)
    assert receipt.revert_reason == reason and not scene.overrides(receipt)
    assert (scene.admission(1), scene.admission(2)) == before


def test_an_emergency_access_of_another_registry_cannot_be_wired_in():
    """Another registry's operator would grant overrides of this market's EVs: the deployment reverts."""
    scene = new_scene()
    raw, foreign_registry = scene.helper.deploy(load_artifact("Registry"), START_TIMESTAMP)
    assert scene.one(raw).ok
    foreign = em.deploy_emergency_access(scene.chain, scene.helper, foreign_registry)
    with pytest.raises(SetupFailed, match="charging: emergency access of another registry$"):
        ch.deploy_charging(scene.chain, scene.operator, registry=scene.registry, start_timestamp=START_TIMESTAMP,
                           window_s=WINDOW_S, request_lead_s=REQUEST_LEAD_S, emergency_access=foreign)


@pytest.mark.parametrize("wired", [True, False])
def test_the_wired_emergency_access_is_readable(wired):
    scene = new_scene(wired=wired)
    assert ch.read(scene.chain, scene.address, "emergency_access") == (scene.emergency if wired else em.NOBODY)


def test_a_cut_admission_counts_as_less_charging_in_the_session_checks():
    """p0 asks 40000 Wh in windows 1 to 3, admitted at 7400 W; window 2 is cut to 1000 W before it starts. Asking
    for window 4 (window 2 has ended, window 3 not), the need may be 40000 - (1000 - 1) W x 900 s / 3600 s = 39751 Wh
    plus 1 Wh of slack, where charging at the admitted 7400 W would have left 40000 - 1849 + 1 = 38152 Wh."""
    scene = new_scene()
    op, p0 = scene.operator, scene.prosumers[0]
    assert scene.one(em.declare(op, scene.emergency, "storm", 7 * 86400)).ok
    assert scene.one(em.grant(op, scene.emergency, scene.tech.address, em.SCOPE_OVERRIDE_CHARGING, p0.address,
                              7 * 86400)).ok

    def ask(w: int, need_wh: int, at: int) -> Receipt:
        request = ChargeRequest(p0.address, CHARGER_W, need_wh, 280, scene.start(8))
        return scene.one(ch.request_charge(p0, scene.address, w, request), at)

    for w in (1, 2, 3):
        assert scene.one(ch.post_headroom(op, scene.address, w, headroom_w=CHARGER_W), scene.start(w - 1) + 50).ok
        assert ask(w, 40_000, scene.start(w - 1) + ROUND_S).ok
        assert scene.one(ch.allocate(scene.helper, scene.address, w, n_requests=1), scene.start(w) - REQUEST_LEAD_S).ok
        if w == 2:
            assert scene.one(ch.override(scene.tech, scene.address, 2, p0.address, 1000, "line 7")).ok
    assert ask(4, 39_753, scene.start(3) + ROUND_S).revert_reason == \
        "charging: energy need above earlier claim less admitted"
    assert ask(4, 39_752, scene.start(3) + ROUND_S + 1).ok


# One EV's windows: (need Wh, SoC permille, departure window, power W, admitted?, override or None), an override
# being (target window: 0 this one, 1 the one before; when: "before" the window starts or "during" it; new power W).
OVERRIDES = st.none() | st.tuples(st.sampled_from([0, 1]), st.sampled_from(["before", "during"]),
                                  st.one_of(st.sampled_from([0, 1, 3000, CHARGER_W, CHARGER_W + 1]),
                                            st.integers(0, CHARGER_W + 1)))
WINDOWS = st.lists(st.tuples(st.integers(1, CAPACITY_WH), st.integers(0, 1000), st.integers(2, 8),
                             st.integers(900, CHARGER_W + 1), st.booleans(), OVERRIDES), min_size=1, max_size=6)
# The grant: scope bits, household ("p0", "p1" or "all"), duration [s], window before which it is revoked (or None).
GRANTS = st.tuples(st.integers(1, 3), st.sampled_from(["p0", "p1", "all"]),
                   st.sampled_from([1800, HOUR_S, 7 * 86400]), st.none() | st.integers(1, 6))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(windows=WINDOWS, grant=GRANTS)
@example(windows=[(40_000, 280, 8, CHARGER_W, True, None), (40_000, 280, 8, CHARGER_W, True, (0, "before", 1000)),
                  (40_000, 280, 8, CHARGER_W, True, None), (39_700, 280, 8, CHARGER_W, True, None)],
         grant=(2, "p0", 7 * 86400, None))
@example(windows=[(20_000, 500, 8, CHARGER_W, True, None), (20_000, 500, 8, CHARGER_W, True, (1, "during", 10)),
                  (20_000, 500, 8, CHARGER_W, True, (0, "during", 0))],
         grant=(3, "all", 1800, 3))
def test_overrides_and_the_session_checks_follow_their_references(windows, grant):
    """p0's requests over consecutive windows, each allocated with room for it or none, each followed by a drawn
    override by ``tech`` under a drawn grant: every override reverts on chain iff `check_override` (with the
    `EmergencyModel`'s refusal) refuses it, with the same reason; every request iff `check_request` refuses it,
    counting the admissions as cut; and the admissions and allocations read back are the reference's."""
    scene = new_scene()
    op, tech, p0 = scene.operator, scene.tech, scene.prosumers[0]
    subjects = {"p0": p0.address, "p1": scene.prosumers[1].address, "all": em.NOBODY}
    model = EmergencyModel(op.address, {op.address: 1, **{p.address: ROLE_PROSUMER for p in scene.prosumers}})
    scope, subject, duration_s, revoked_before = grant
    now = scene.chain.timestamp + 1
    assert scene.one(em.declare(op, scene.emergency, "storm", 7 * 86400), now).ok
    assert model.declare(now, op.address, 7 * 86400) is None
    assert scene.one(em.grant(op, scene.emergency, tech.address, scope, subjects[subject], duration_s), now + 1).ok
    assert model.grant(now + 1, op.address, tech.address, scope, subjects[subject], duration_s) is None
    ev = EVRegistration(p0.address, CAPACITY_WH, CHARGER_W)
    session: Session | None = None
    admitted_w: dict[int, int] = {}
    allocations: dict[int, ch.Allocation] = {}
    for window, (need_wh, soc, departure_window, power_w, admit, override) in enumerate(windows, start=1):
        if revoked_before == window:
            now = scene.start(window - 1) + 45
            assert scene.one(em.revoke(op, scene.emergency, tech.address), now).ok
            assert model.revoke(op.address, tech.address) is None
        now = scene.start(window - 1) + ROUND_S
        request = ChargeRequest(p0.address, power_w, need_wh, soc, scene.start(departure_window))
        try:
            session, reason = check_request(ev, session, request, window, timestamp=now,
                                            start_timestamp=START_TIMESTAMP, window_s=WINDOW_S,
                                            min_request_w=MIN_REQUEST_W, admitted_power_w=admitted_w), None
        except RequestRefused as refused:
            reason = str(refused)
        filed = scene.chain.mine([ch.post_headroom(op, scene.address, window, headroom_w=CHARGER_W + 1 if admit else 0),
                                  ch.request_charge(p0, scene.address, window, request)], now)
        assert filed[0].ok and filed[1].revert_reason == reason
        assert scene.one(ch.allocate(scene.helper, scene.address, window, n_requests=int(reason is None)),
                         scene.start(window) - REQUEST_LEAD_S).ok
        admitted_w[window] = power_w if reason is None and admit else 0
        allocations[window] = ch.Allocation(True, CHARGER_W + 1 if admit else 0, admitted_w[window],
                                            int(reason is None), int(admitted_w[window] != 0))
        if override is None:
            continue
        back, when, new_w = override
        target = window - back
        now = scene.start(window) - REQUEST_LEAD_S + 50 if when == "before" else scene.start(window) + 30
        try:
            expected = check_override(model.refusal(now, tech.address, em.SCOPE_OVERRIDE_CHARGING, p0.address), ev,
                                      target, new_w, timestamp=now, start_timestamp=START_TIMESTAMP,
                                      window_s=WINDOW_S, allocated=target in allocations,
                                      admitted_w=admitted_w.get(target, 0))
            reason = None
        except OverrideRefused as refused:
            reason = str(refused)
        receipt = scene.one(ch.override(tech, scene.address, target, p0.address, new_w, "drawn"), now)
        assert receipt.revert_reason == reason, (window, override)
        if reason is None:
            old = allocations[target]
            cut_w = admitted_w[target] - expected
            allocations[target] = ch.Allocation(True, old.headroom_w, old.admitted_power_w - cut_w, old.requests,
                                                old.admitted - int(expected == 0))
            admitted_w[target] = expected
    for window in allocations:
        assert scene.admission(window)[0][p0.address] == admitted_w[window]
        assert scene.admission(window)[1] == allocations[window]
    on_chain = ch.read(scene.chain, scene.address, "session", p0.address)
    if session is not None:
        assert on_chain[:3] == (session.departure_timestamp, session.first_window, session.soc_permille)
