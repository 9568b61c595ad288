"""Attacks on EV charging coordination (issue 11, items 5 and 6), each with its exact outcome.

A lie that wins priority: a prosumer claims a lower state of charge or an
earlier departure than its own. A sybil flood: many tiny requests fill a
window. Each test asserts the exact revert reason (or the bounded outcome)
and that the honest EV's admission is what it would be without the attack.
The charging contract moves no tokens; what an honest account can lose here
is its admitted charging power.
"""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import charging as ch
from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.charging_reference import (
    Admission,
    ChargeRequest,
    EVRegistration,
    RequestRefused,
    Session,
    allocate,
    check_request,
)
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account
from tests.contract_helpers import GENESIS_TIMESTAMP, SEED, START_TIMESTAMP, reverted
from tests.secret_helpers import fixed_secret
from tests.security.charging_scene import (CAPACITY_WH, CHARGER_W, MIN_REQUEST_W, REQUEST_LEAD_S, ROLE_PROSUMER, ROUND_S,
                                          WINDOW_S)

N_SYBILS = 128
HOUR_S = 3600


@dataclass
class Scene:
    """Charging coordination with an honest EV, a liar's EV and ``N_SYBILS`` registered sybils,
    plus one prosumer without a registered EV; before the start."""

    chain: Chain
    operator: Wallet
    honest: Wallet
    liar: Wallet
    sybils: list[Wallet]
    unregistered: Wallet
    outsider: Wallet
    address: str

    def start(self, window: int) -> int:
        return START_TIMESTAMP + window * WINDOW_S

    def end(self, window: int) -> int:
        return self.start(window + 1)

    def request_time(self, window: int) -> int:
        """When the EVs request ``window``: one round into the window before, as the DER federate does."""
        return self.start(window - 1) + ROUND_S

    def file(self, window: int, headroom_w: int, requests: list[tuple[Wallet, ChargeRequest]]) -> list[Receipt]:
        """Post ``headroom_w`` and file ``requests`` at the request time of ``window``; the requests' receipts."""
        receipts = self.chain.mine(
            [ch.post_headroom(self.operator, self.address, window, headroom_w=headroom_w)]
            + [ch.request_charge(wallet, self.address, window, r) for wallet, r in requests],
            self.request_time(window),
        )
        assert receipts[0].ok, receipts[0].revert_reason
        return receipts[1:]

    def allocate(self, window: int) -> tuple[Admission, ...]:
        """Allocate ``window`` at its deadline; the admissions in priority order."""
        n = len(ch.requests(self.chain, self.address, window))
        (receipt,) = self.chain.mine([ch.allocate(self.outsider, self.address, window, n_requests=n)],
                                     self.start(window) - REQUEST_LEAD_S)
        assert receipt.ok, receipt.revert_reason
        events = [self.chain.decode(log) for log in receipt.logs]
        return tuple(Admission(e.args["account"], e.args["power_w"]) for e in events if e.event == "Allocated")


def new_scene(n_sybils: int = N_SYBILS) -> Scene:
    secret = fixed_secret(SEED)
    operator = derive_account(secret, "operator")
    honest, liar, unregistered = (derive_account(secret, f"prosumer/{n}") for n in ("honest", "liar", "unregistered"))
    sybils = [derive_account(secret, f"prosumer/sybil{i}") for i in range(n_sybils)]
    outsider = derive_account(secret, "outsider")
    prosumers = [honest, liar, unregistered, *sybils]
    chain = Chain([a.address for a in (operator, outsider, *prosumers)], genesis_timestamp=GENESIS_TIMESTAMP)
    op = chain.wallet(operator)
    raw, registry = op.deploy(load_artifact("Registry"), START_TIMESTAMP)
    grants = [op.transact(registry, encode_call("Registry", "grant_role", p.address, ROLE_PROSUMER), gas=150_000)
              for p in prosumers]
    receipts = chain.mine([raw, *grants], GENESIS_TIMESTAMP + 1)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    address = ch.deploy_charging(chain, op, registry=registry, start_timestamp=START_TIMESTAMP, window_s=WINDOW_S,
                                 request_lead_s=REQUEST_LEAD_S, min_request_w=MIN_REQUEST_W)
    registered = [honest, liar, *sybils]
    receipts = chain.mine([ch.register_ev(op, address, EVRegistration(p.address, CAPACITY_WH, CHARGER_W))
                           for p in registered], chain.timestamp + 1)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    return Scene(chain, op, chain.wallet(honest), chain.wallet(liar), [chain.wallet(s) for s in sybils],
                 chain.wallet(unregistered), chain.wallet(outsider), address)


@pytest.fixture
def scene() -> Scene:
    return new_scene()


def _ev(wallet: Wallet, need_wh: int, soc_permille: int, departure_timestamp: int,
        power_w: int = CHARGER_W) -> ChargeRequest:
    return ChargeRequest(wallet.address, power_w, need_wh, soc_permille, departure_timestamp)


def test_liar_lowering_its_state_of_charge_or_moving_its_departure_reverts_and_the_honest_ev_is_admitted(scene):
    """Both EVs plug in for the night and request window 1 truthfully; the headroom fits one charger.
    In window 2 the liar claims SoC 0 and a departure one second after the window (the issue's lie): it
    reverts, and the honest EV, at the lower SoC, is admitted as it would be alone."""
    departure = scene.start(40)
    honest = _ev(scene.honest, 30_000, 460, departure)
    liar = _ev(scene.liar, 20_000, 640, departure)
    assert all(r.ok for r in scene.file(1, CHARGER_W, [(scene.honest, honest), (scene.liar, liar)]))
    assert scene.allocate(1) == (Admission(scene.honest.address, CHARGER_W),)

    lies = [
        (_ev(scene.liar, 20_000, 0, scene.end(2) + 1), "charging: departure differs from session"),
        (_ev(scene.liar, 20_000, 0, departure), "charging: state of charge below earlier claim"),
        (_ev(scene.liar, 20_001 + 1, 640, departure), "charging: energy need above earlier claim less admitted"),
    ]
    honest_2 = _ev(scene.honest, 30_000, 460, departure)
    receipts = scene.file(2, CHARGER_W, [(scene.liar, lie) for lie, _ in lies] + [(scene.honest, honest_2)])
    assert [r.revert_reason for r in receipts[:-1]] == [reason for _, reason in lies]
    assert all(reverted(r, reason) for r, (_, reason) in zip(receipts, lies))
    assert receipts[-1].ok
    assert scene.allocate(2) == allocate(CHARGER_W, [honest_2], scene.end(2))
    assert ch.requests(scene.chain, scene.address, 2) == (honest_2,)


def test_first_request_of_a_session_is_still_trusted_but_the_lie_cannot_be_renewed(scene):
    """What remains trusted: a liar that plugs in claiming SoC 0 and a departure one second after the
    window ranks ahead of the honest EV (must charge now). It cannot push that departure on to the
    next window: its session ends at the declared departure, one second into window 2."""
    departure = scene.start(40)
    honest = _ev(scene.honest, 30_000, 460, departure)
    lie = _ev(scene.liar, 20_000, 0, scene.end(1) + 1)
    assert all(r.ok for r in scene.file(1, CHARGER_W, [(scene.honest, honest), (scene.liar, lie)]))
    assert scene.allocate(1) == (Admission(scene.liar.address, CHARGER_W),)

    renewed = _ev(scene.liar, 20_000, 0, scene.end(2) + 1)
    (receipt, honest_receipt) = scene.file(2, CHARGER_W, [(scene.liar, renewed), (scene.honest, honest)])
    assert reverted(receipt, "charging: departure differs from session"), receipt.revert_reason
    assert honest_receipt.ok
    assert scene.allocate(2) == (Admission(scene.honest.address, CHARGER_W),)


def test_need_ignoring_admitted_charging_reverts_while_the_honest_need_passes(scene):
    """An EV admitted at 7400 W in windows 1 to 3 draws at least 1849 Wh a window ((7400 - 1) W x
    900 s). Window 1 is the session's first (the EV may have arrived during it) and each request is
    sent before the window before it ends, so the need may stay 40000 Wh up to window 3; in window 4
    window 2, from the request for window 2 on, has ended, and keeping 40000 Wh reverts. In window
    5, 40000 - 2 x 1850 Wh (windows 2 and 3 charged) passes."""
    departure = scene.start(40)
    for window in (1, 2, 3):
        (receipt,) = scene.file(window, CHARGER_W, [(scene.liar, _ev(scene.liar, 40_000, 280, departure))])
        assert receipt.ok, receipt.revert_reason
        assert scene.allocate(window) == (Admission(scene.liar.address, CHARGER_W),)
    (kept,) = scene.file(4, CHARGER_W, [(scene.liar, _ev(scene.liar, 40_000, 280, departure))])
    assert reverted(kept, "charging: energy need above earlier claim less admitted"), kept.revert_reason
    assert scene.allocate(4) == ()
    (honest,) = scene.file(5, CHARGER_W, [(scene.liar, _ev(scene.liar, 40_000 - 2 * 1850, 280, departure))])
    assert honest.ok, honest.revert_reason


def test_requests_out_of_window_order_are_refused_so_each_window_takes_one_per_account(scene):
    """After a request for window 3, one for window 2 reverts: an account requests windows in order,
    which is what keeps a second request for window 3 refused."""
    departure = scene.start(40)
    receipts = scene.chain.mine(
        [ch.request_charge(scene.liar, scene.address, w, _ev(scene.liar, 20_000, 500, departure)) for w in (3, 2, 3)],
        scene.request_time(1),
    )
    assert [r.revert_reason for r in receipts] == [None, "charging: window before last request",
                                                   "charging: request exists"]
    assert len(ch.requests(scene.chain, scene.address, 3)) == 1 and ch.requests(scene.chain, scene.address, 2) == ()


def test_flood_of_one_watt_requests_is_refused_and_the_honest_ev_is_admitted(scene):
    """128 registered sybils ask for 1 W each: every one reverts below the minimum, the window keeps
    room for the honest request, which is admitted as it would be alone."""
    flood = [(s, _ev(s, 1, 999, scene.end(1) + 1, power_w=1)) for s in scene.sybils]
    honest = _ev(scene.honest, 30_000, 460, scene.start(40))
    receipts = scene.file(1, CHARGER_W, [*flood, (scene.honest, honest)])
    assert all(reverted(r, "charging: power below minimum") for r in receipts[:-1])
    assert receipts[-1].ok
    assert scene.allocate(1) == allocate(CHARGER_W, [honest], scene.end(1))


def test_unregistered_and_oversized_requests_are_refused(scene):
    departure = scene.start(40)
    cases = [
        (scene.unregistered, _ev(scene.unregistered, 1000, 500, departure), "charging: EV not registered"),
        (scene.liar, _ev(scene.liar, CAPACITY_WH + 1, 0, departure), "charging: energy above registered capacity"),
        (scene.liar, _ev(scene.liar, 1000, 500, departure, power_w=CHARGER_W + 1),
         "charging: power above registered charger"),
    ]
    honest = _ev(scene.honest, 30_000, 460, departure)
    receipts = scene.file(1, 10 * CHARGER_W, [(w, r) for w, r, _ in cases] + [(scene.honest, honest)])
    assert [r.revert_reason for r in receipts] == [reason for _, _, reason in cases] + [None]
    assert scene.allocate(1) == (Admission(scene.honest.address, CHARGER_W),)


def test_registration_is_the_operators_once_before_the_start(scene):
    op, fresh = scene.operator, scene.unregistered.address
    calls = [
        (scene.liar, EVRegistration(fresh, CAPACITY_WH, CHARGER_W), "charging: caller is not operator"),
        (op, EVRegistration(scene.outsider.address, CAPACITY_WH, CHARGER_W), "charging: account is not a prosumer"),
        (op, EVRegistration(scene.liar.address, CAPACITY_WH, CHARGER_W), "charging: EV registered"),
        (op, EVRegistration(fresh, 0, CHARGER_W), "charging: capacity out of range"),
        (op, EVRegistration(fresh, CAPACITY_WH, MIN_REQUEST_W - 1), "charging: charger power out of range"),
    ]
    receipts = scene.chain.mine([ch.register_ev(w, scene.address, r) for w, r, _ in calls], scene.chain.timestamp + 1)
    assert [r.revert_reason for r in receipts] == [reason for _, _, reason in calls]
    (late,) = scene.chain.mine([ch.register_ev(op, scene.address, EVRegistration(fresh, CAPACITY_WH, CHARGER_W))],
                               START_TIMESTAMP)
    assert reverted(late, "charging: registration closed"), late.revert_reason
    assert ch.read(scene.chain, scene.address, "ev", scene.liar.address) == (CAPACITY_WH, CHARGER_W)
    assert ch.read(scene.chain, scene.address, "ev", fresh) == (0, 0)


# One EV's requests over consecutive windows: (need Wh, SoC permille, departure window, power W).
SESSION_REQUESTS = st.lists(
    st.tuples(st.integers(1, CAPACITY_WH), st.integers(0, 1000), st.integers(2, 8), st.integers(900, CHARGER_W + 1)),
    min_size=1, max_size=6,
)


@settings(max_examples=30, deadline=None)
@given(drawn=SESSION_REQUESTS, admit=st.lists(st.booleans(), min_size=6, max_size=6))
def test_contract_refuses_exactly_what_the_reference_refuses(drawn, admit):
    """Random request sequences of one EV, admitted or not per window: each request reverts on
    chain iff `check_request` refuses it, with the same reason, and the session matches."""
    scene = new_scene(n_sybils=0)
    ev = EVRegistration(scene.liar.address, CAPACITY_WH, CHARGER_W)
    session: Session | None = None
    admitted_w: dict[int, int] = {}
    for window, (need_wh, soc, departure_window, power_w) in enumerate(drawn, start=1):
        request = _ev(scene.liar, need_wh, soc, scene.start(departure_window), power_w=power_w)
        try:
            expected, reason = check_request(ev, session, request, window, timestamp=scene.request_time(window),
                                             start_timestamp=START_TIMESTAMP, window_s=WINDOW_S,
                                             min_request_w=MIN_REQUEST_W, admitted_power_w=admitted_w), None
        except RequestRefused as refused:
            expected, reason = session, str(refused)
        (receipt,) = scene.file(window, CHARGER_W + 1 if admit[window - 1] else 0, [(scene.liar, request)])
        assert receipt.revert_reason == reason
        session = expected
        admitted = scene.allocate(window)
        admitted_w.update({window: a.power_w for a in admitted})
    on_chain = ch.read(scene.chain, scene.address, "session", scene.liar.address)
    if session is None:
        assert on_chain == (0, 0, 0, (0, 0), (0, 0))
        return
    assert on_chain[:3] == (session.departure_timestamp, session.first_window, session.soc_permille)
    assert on_chain[3] == (session.last.window, session.last.energy_needed_wh)
    previous = session.previous
    assert on_chain[4] == ((previous.window, previous.energy_needed_wh) if previous else (0, 0))
