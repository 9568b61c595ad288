"""ChargingCoordination on a real py-evm chain against the Python reference."""

from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import charging as ch
from gridledger.contracts import emergency as em
from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.charging_reference import (
    Admission,
    ChargeRequest,
    EVRegistration,
    allocate,
    must_charge_now,
    priority,
    time_to_complete_s,
)
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account

from contract_helpers import GENESIS_TIMESTAMP, SEED, START_TIMESTAMP, reverted
from tests.secret_helpers import fixed_secret

WINDOW_S = 900
REQUEST_LEAD_S = 300
N_PROSUMERS = 12
MAX_REQUESTS = 128
MAX_POWER_W = 10**9
MAX_ENERGY_WH = 10**12
MAX_HEADROOM_W = 10**12
ROLE_PROSUMER = 2
HOUR_S = 3600


@dataclass
class Coordination:
    """A charging coordination contract on a fresh chain with its wallets; windows are used up one by one."""

    chain: Chain
    operator: Wallet
    prosumers: list[Wallet]
    outsider: Wallet
    registry: str
    address: str
    emergency: str = em.NOBODY

    def deadline(self, window: int) -> int:
        """Request deadline of ``window``. [s since the Unix epoch]"""
        return START_TIMESTAMP + window * WINDOW_S - REQUEST_LEAD_S

    def start(self, window: int) -> int:
        """Start of ``window``. [s since the Unix epoch]"""
        return START_TIMESTAMP + window * WINDOW_S

    def end(self, window: int) -> int:
        """End of ``window``. [s since the Unix epoch]"""
        return self.start(window + 1)

    def next_window(self) -> int:
        """First window still taking requests one second after the head and starting after every
        declared departure, so that each prosumer's request there opens a new session."""
        taking = max(0, (self.chain.timestamp + 1 + REQUEST_LEAD_S - START_TIMESTAMP) // WINDOW_S + 1)
        departed = max(self.read("session", w.address)[0] for w in self.prosumers)
        return max(taking, -(-(departed - START_TIMESTAMP) // WINDOW_S))

    def mine(self, raw_txs: list[bytes], timestamp: int | None = None) -> list[Receipt]:
        """Mine ``raw_txs`` at ``timestamp`` (default: one second after the head)."""
        return self.chain.mine(raw_txs, self.chain.timestamp + 1 if timestamp is None else timestamp)

    def call_tx(self, wallet: Wallet, function: str, *args) -> bytes:
        """Signed call of ``ChargingCoordination.function(*args)`` by ``wallet``."""
        return wallet.transact(self.address, encode_call(ch.CONTRACT, function, *args), gas=500_000)

    def read(self, function: str, *args):
        """View ``ChargingCoordination.function(*args)`` at the head."""
        return ch.read(self.chain, self.address, function, *args)


def new_coordination(n_prosumers: int, *, n_registered: int | None = None, min_request_w: int = 1,
                     emergency_access: bool = False) -> Coordination:
    """Deploy a registry with ``n_prosumers`` prosumers and a charging coordination contract on it (wired to an
    emergency access on the registry if ``emergency_access``), and register an EV of the largest capacity and
    charger power for the first ``n_registered`` (default all)."""
    operator = derive_account(fixed_secret(SEED), "operator")
    prosumers = [derive_account(fixed_secret(SEED), f"prosumer/{i}") for i in range(n_prosumers)]
    outsider = derive_account(fixed_secret(SEED), "outsider")
    chain = Chain([a.address for a in (operator, outsider, *prosumers)], genesis_timestamp=GENESIS_TIMESTAMP)
    operator_wallet = chain.wallet(operator)
    raw, registry = operator_wallet.deploy(load_artifact("Registry"), START_TIMESTAMP)
    grants = [
        operator_wallet.transact(registry, encode_call("Registry", "grant_role", p.address, ROLE_PROSUMER), gas=150_000)
        for p in prosumers
    ]
    receipts = chain.mine([raw, *grants], GENESIS_TIMESTAMP + 1)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    emergency = em.deploy_emergency_access(chain, operator_wallet, registry) if emergency_access else em.NOBODY
    address = ch.deploy_charging(
        chain,
        operator_wallet,
        registry=registry,
        start_timestamp=START_TIMESTAMP,
        window_s=WINDOW_S,
        request_lead_s=REQUEST_LEAD_S,
        min_request_w=min_request_w,
        emergency_access=emergency,
    )
    registrations = [
        ch.register_ev(operator_wallet, address, EVRegistration(p.address, MAX_ENERGY_WH, MAX_POWER_W))
        for p in prosumers[:n_registered]
    ]
    receipts = chain.mine(registrations, chain.timestamp + 1)
    assert all(r.ok and r.gas_used <= ch.GAS_REGISTER_EV for r in receipts), [r.revert_reason for r in receipts]
    return Coordination(
        chain=chain,
        operator=operator_wallet,
        prosumers=[chain.wallet(p) for p in prosumers],
        outsider=chain.wallet(outsider),
        registry=registry,
        address=address,
        emergency=emergency,
    )


@pytest.fixture(scope="module")
def coordination() -> Coordination:
    return new_coordination(N_PROSUMERS)


def _requests(coordination: Coordination, window: int, drawn: list[tuple[int, int, int, int]]) -> list[ChargeRequest]:
    """Requests of the first prosumers from (power_w, energy_needed_wh, soc_permille, departure after window end [s])."""
    end = coordination.end(window)
    return [
        ChargeRequest(w.address, power_w, energy_wh, soc_permille, end + departure_s)
        for w, (power_w, energy_wh, soc_permille, departure_s) in zip(coordination.prosumers, drawn, strict=False)
    ]


def _run(coordination: Coordination, headroom_w: int, requests: list[ChargeRequest]):
    """Post ``headroom_w`` and file ``requests`` in the next window one second after the head;
    allocate it at its deadline. Returns (window, allocate receipt, admitted from the Allocated events)."""
    window = coordination.next_window()
    wallets = {w.address: w for w in coordination.prosumers}
    filed = coordination.mine(
        [ch.post_headroom(coordination.operator, coordination.address, window, headroom_w=headroom_w)]
        + [ch.request_charge(wallets[r.account], coordination.address, window, r) for r in requests]
    )
    assert all(r.ok for r in filed), [r.revert_reason for r in filed]
    assert filed[0].gas_used <= ch.GAS_POST_HEADROOM
    assert all(r.gas_used <= ch.GAS_REQUEST_CHARGE for r in filed[1:])
    assert ch.requests(coordination.chain, coordination.address, window) == tuple(requests)
    (receipt,) = coordination.mine(
        [ch.allocate(coordination.outsider, coordination.address, window, n_requests=len(requests))],
        coordination.deadline(window),
    )
    assert receipt.ok, receipt.revert_reason
    assert receipt.gas_used <= ch.allocate_gas(len(requests))
    events = [coordination.chain.decode(log) for log in receipt.logs]
    admitted = tuple(Admission(e.args["account"], e.args["power_w"]) for e in events if e.event == "Allocated")
    summary = events[-1]
    assert summary.event == "WindowAllocated"
    assert summary.args == {
        "window": window,
        "headroom_w": headroom_w,
        "admitted_power_w": sum(a.power_w for a in admitted),
        "requests": len(requests),
        "admitted": len(admitted),
    }
    assert ch.allocation(coordination.chain, coordination.address, window) == ch.Allocation(
        True, headroom_w, sum(a.power_w for a in admitted), len(requests), len(admitted)
    )
    powers = {a.account: a.power_w for a in admitted}
    accounts = [w.address for w in coordination.prosumers]
    assert ch.admitted_power_w(coordination.chain, coordination.address, window, accounts) == {
        a: powers.get(a, 0) for a in accounts
    }
    return window, receipt, admitted


H = HOUR_S
# Hand-computed windows: requests from r0, r1, ... as (power W, energy Wh, SoC permille,
# departure - window end [s]); tcc = ceil(3600 * energy / power) s; must charge now iff
# departure - window end <= tcc. Expected admissions in priority order.
HAND_WINDOWS = [
    pytest.param(
        # No one is urgent; by SoC r0 (200), r1 (300), r2 (500). r0 4000 (left 6000),
        # r1 6000 (left 0): the headroom is exactly filled and r2's 1000 W is skipped.
        10_000,
        [(4000, 8000, 200, 10 * H), (6000, 6000, 300, 10 * H), (1000, 1000, 500, 10 * H)],
        [("r0", 4000), ("r1", 6000)],
        id="headroom-exactly-filled",
    ),
    pytest.param(
        # r0 is an EV at SoC 900 needing 14000 Wh at 7000 W: tcc 7200 s, departure 7200 s after
        # the window: laxity 0, must charge now. It beats r1, an ESU at SoC 100 with a day to go.
        7000,
        [(7000, 14_000, 900, 2 * H), (5000, 5000, 100, 24 * H)],
        [("r0", 7000)],
        id="must-charge-now-ev-beats-low-soc-esu",
    ),
    pytest.param(
        # As above but r0 leaves one second later: laxity 1 s, so it can wait; the ESU at
        # SoC 100 goes first (left 2000) and r0's 7000 W no longer fits.
        7000,
        [(7000, 14_000, 900, 2 * H + 1), (5000, 5000, 100, 24 * H)],
        [("r1", 5000)],
        id="one-second-of-laxity-defers-the-ev",
    ),
    pytest.param(
        # r0 needs 14001 Wh at 7000 W: 7200.51 s, rounded up to tcc 7201 s; departure 7201 s after
        # the window is laxity 0, so it must charge now and beats the ESU.
        7000,
        [(7000, 14_001, 900, 2 * H + 1), (5000, 5000, 100, 24 * H)],
        [("r0", 7000)],
        id="time-to-complete-rounds-up",
    ),
    pytest.param(
        # All at SoC 400. r2 has the shortest tcc (1800 s); r3, r0, r1 all need 3600 s, and r3
        # draws the least power (1000 W); r0 and r1 are identical, so the earlier r0 goes first.
        # Order r2, r3, r0, r1: 3000 (left 4000), 1000 (left 3000), 3000 (left 0), r1 skipped.
        7000,
        [(3000, 3000, 400, 10 * H), (3000, 3000, 400, 10 * H), (3000, 1500, 400, 10 * H), (1000, 1000, 400, 10 * H)],
        [("r2", 3000), ("r3", 1000), ("r0", 3000)],
        id="ties-break-by-tcc-then-power-then-request-order",
    ),
    pytest.param(
        # By SoC r0, r1, r2, r3. r0's 8000 W exceeds the 5000 W headroom and is skipped; r1 3000
        # fits (left 2000); r2 2500 is skipped; r3 2000 fits (left 0). Stopping at the first
        # misfit would admit no one.
        5000,
        [(8000, 8000, 100, 10 * H), (3000, 3000, 200, 10 * H), (2500, 2500, 300, 10 * H), (2000, 2000, 400, 10 * H)],
        [("r1", 3000), ("r3", 2000)],
        id="oversized-request-skipped-smaller-later-fits",
    ),
    pytest.param(5000, [], [], id="no-requests"),
    pytest.param(
        # Zero headroom admits no one, urgent or not.
        0,
        [(7000, 14_000, 900, 0), (1, 1, 0, 10 * H)],
        [],
        id="zero-headroom",
    ),
]


@pytest.mark.parametrize("headroom_w, drawn, expected", HAND_WINDOWS)
def test_hand_computed_windows_admit_as_written(coordination, headroom_w, drawn, expected):
    window = coordination.next_window()
    requests = _requests(coordination, window, drawn)
    names = {f"r{i}": r.account for i, r in enumerate(requests)}
    expected_admissions = tuple(Admission(names[n], p) for n, p in expected)
    assert allocate(headroom_w, requests, coordination.end(window)) == expected_admissions
    assert _run(coordination, headroom_w, requests)[2] == expected_admissions


def test_a_granted_service_account_cuts_an_admission_and_the_cut_is_what_the_contract_reports():
    """Hand case: r0 (SoC 200) is admitted at 4000 W and r1 (SoC 300) at 6000 W in a 10 kW window. During an
    emergency the operator grants the outsider the charging override over every household for an hour; it cuts
    r1 to 2500 W. The event names both powers and the note, `admitted` reads 2500 W, r0 keeps 4000 W, and the
    window's allocation now admits 6500 W (two EVs) of its 10 kW."""
    coordination = new_coordination(2, emergency_access=True)
    tech = coordination.outsider
    window = coordination.next_window()
    requests = _requests(coordination, window, [(4000, 8000, 200, 10 * H), (6000, 6000, 300, 10 * H)])
    r0, r1 = (r.account for r in requests)
    assert _run(coordination, 10_000, requests)[2] == (Admission(r0, 4000), Admission(r1, 6000))
    declared, granted = coordination.mine([
        em.declare(coordination.operator, coordination.emergency, "transformer T2 hot", HOUR_S),
        em.grant(coordination.operator, coordination.emergency, tech.address, em.SCOPE_OVERRIDE_CHARGING, em.NOBODY,
                 HOUR_S),
    ])
    assert declared.ok and granted.ok
    (receipt,) = coordination.mine([ch.override(tech, coordination.address, window, r1, 2500, "T2 at 104 %")])
    assert receipt.ok, receipt.revert_reason
    assert receipt.gas_used <= ch.GAS_OVERRIDE
    (event,) = [coordination.chain.decode(log) for log in receipt.logs]
    assert (event.event, event.args) == ("ChargingOverridden", {"window": window, "account": r1, "by": tech.address,
                                                                "old_w": 6000, "new_w": 2500, "note": "T2 at 104 %"})
    assert ch.admitted_power_w(coordination.chain, coordination.address, window, [r0, r1]) == {r0: 4000, r1: 2500}
    assert ch.allocation(coordination.chain, coordination.address, window) == ch.Allocation(True, 10_000, 6500, 2, 2)


def test_stop_at_first_misfit_would_differ_on_the_oversized_case():
    """The contract skips a misfit and goes on; stopping would admit nothing here."""
    requests = [ChargeRequest(f"r{i}", p, p, soc, 10 * H) for i, (p, soc) in enumerate([(8000, 1), (3000, 2)])]
    assert allocate(5000, requests, 0) == (Admission("r1", 3000),)


# Coarse values make ties frequent; the wide ranges reach the limits.
POWER_W = st.one_of(st.sampled_from([1000, 2300, 3700, 7400, 11_000, 22_000]), st.integers(1, MAX_POWER_W))
ENERGY_WH = st.one_of(st.sampled_from([1000, 5000, 14_000, 40_000]), st.integers(1, MAX_ENERGY_WH))
SOC_PERMILLE = st.one_of(st.sampled_from([0, 200, 500, 900, 1000]), st.integers(0, 1000))


@st.composite
def request_specs(draw) -> tuple[int, int, int, int]:
    """(power_w, energy_needed_wh, soc_permille, departure after window end [s]); departures near
    the laxity boundary are common."""
    power_w, energy_wh, soc = draw(POWER_W), draw(ENERGY_WH), draw(SOC_PERMILLE)
    tcc_s = -(-energy_wh * HOUR_S // power_w)
    departure_s = draw(
        st.one_of(
            st.sampled_from([tcc_s - 1, tcc_s, tcc_s + 1]).filter(lambda s: s > -WINDOW_S),
            st.integers(-WINDOW_S + 1, 7 * 24 * H),
        )
    )
    return power_w, energy_wh, soc, departure_s


def headrooms(drawn: list[tuple[int, int, int, int]]) -> st.SearchStrategy[int]:
    """Headroom from 0 to a little over the total demand, or any up to the limit. [W]"""
    total_w = sum(power_w for power_w, *_ in drawn)
    return st.one_of(st.integers(0, total_w + 1), st.integers(0, MAX_HEADROOM_W))


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_onchain_allocation_equals_reference(coordination, data):
    drawn = data.draw(st.lists(request_specs(), max_size=N_PROSUMERS))
    headroom_w = data.draw(headrooms(drawn))
    window = coordination.next_window()
    requests = _requests(coordination, window, drawn)
    assert _run(coordination, headroom_w, requests)[2] == allocate(headroom_w, requests, coordination.end(window))


WINDOW_END = 10**6


@st.composite
def windows(draw) -> tuple[int, list[ChargeRequest]]:
    """A headroom [W] and the requests of a window ending at ``WINDOW_END``."""
    drawn = draw(st.lists(request_specs(), max_size=24))
    requests = [ChargeRequest(f"r{i}", p, e, s, WINDOW_END + d) for i, (p, e, s, d) in enumerate(drawn)]
    return draw(headrooms(drawn)), requests


@settings(max_examples=300, deadline=None)
@given(window=windows())
def test_admitted_power_never_exceeds_the_headroom(window):
    headroom_w, requests = window
    assert sum(a.power_w for a in allocate(headroom_w, requests, WINDOW_END)) <= headroom_w


@settings(max_examples=300, deadline=None)
@given(window=windows())
def test_each_request_is_admitted_iff_it_fits_in_what_higher_priority_admissions_leave(window):
    """The exact greedy-skip property: walking in priority order, a request is admitted if and only
    if its power is at most the headroom minus the power admitted ahead of it. Hence no skipped
    request fits in the headroom left at the end, whatever its rank."""
    headroom_w, requests = window
    admitted = allocate(headroom_w, requests, WINDOW_END)
    admitted_accounts = {a.account for a in admitted}
    ahead_w = 0
    for index in priority(requests, WINDOW_END):
        request = requests[index]
        fits = request.power_w <= headroom_w - ahead_w
        assert (request.account in admitted_accounts) == fits
        ahead_w += request.power_w if fits else 0
    left_w = headroom_w - sum(a.power_w for a in admitted)
    assert all(r.power_w > left_w for r in requests if r.account not in admitted_accounts)


@settings(max_examples=300, deadline=None)
@given(window=windows())
def test_deferrable_requests_never_take_headroom_from_urgent_ones(window):
    """A must-charge-now request is skipped only if the urgent requests that outrank it by
    (SoC, tcc, power, request order) already use so much headroom that it does not fit; the
    admissions list every urgent request before every deferrable one."""
    headroom_w, requests = window
    admitted = allocate(headroom_w, requests, WINDOW_END)
    by_account = {r.account: (i, r) for i, r in enumerate(requests)}
    urgent = [must_charge_now(by_account[a.account][1], WINDOW_END) for a in admitted]
    assert urgent == sorted(urgent, reverse=True)

    def rank(index: int, request: ChargeRequest) -> tuple[int, int, int, int]:
        return request.soc_permille, time_to_complete_s(request), request.power_w, index

    admitted_urgent = [by_account[a.account] for a, u in zip(admitted, urgent, strict=True) if u]
    for index, request in enumerate(requests):
        if request.account in {a.account for a in admitted} or not must_charge_now(request, WINDOW_END):
            continue
        ahead_w = sum(r.power_w for i, r in admitted_urgent if rank(i, r) < rank(index, request))
        assert request.power_w > headroom_w - ahead_w


@settings(max_examples=300, deadline=None)
@given(spec=request_specs())
def test_must_charge_now_means_waiting_a_window_misses_departure(spec):
    """Laxity <= 0 exactly when charging from the window's end on at full power, for the whole
    seconds tcc rounds up to, would not finish before departure."""
    power_w, energy_wh, soc, departure_s = spec
    request = ChargeRequest("r", power_w, energy_wh, soc, WINDOW_END + departure_s)
    tcc_s = time_to_complete_s(request)
    assert (tcc_s - 1) * power_w < energy_wh * HOUR_S <= tcc_s * power_w
    assert must_charge_now(request, WINDOW_END) == (WINDOW_END + tcc_s >= request.departure_timestamp)


def test_reposted_headroom_replaces_the_earlier_one(coordination):
    window = coordination.next_window()
    first, second = coordination.mine(
        [
            ch.post_headroom(coordination.operator, coordination.address, window, headroom_w=1000),
            ch.post_headroom(coordination.operator, coordination.address, window, headroom_w=3000),
        ]
    )
    assert first.ok and second.ok
    assert coordination.read("headroom_w", window) == 3000
    (request,) = _requests(coordination, window, [(3000, 3000, 500, 10 * H)])
    (filed,) = coordination.mine([ch.request_charge(coordination.prosumers[0], coordination.address, window, request)])
    assert filed.ok
    (allocated,) = coordination.mine(
        [ch.allocate(coordination.outsider, coordination.address, window, n_requests=1)], coordination.deadline(window)
    )
    assert allocated.ok
    assert coordination.read("admitted", window, request.account) == 3000


def test_window_timestamps_are_aligned_to_the_start(coordination):
    assert ch.window_timestamps(coordination.chain, coordination.address, 3) == (
        START_TIMESTAMP + 3 * WINDOW_S - REQUEST_LEAD_S,
        START_TIMESTAMP + 3 * WINDOW_S,
        START_TIMESTAMP + 4 * WINDOW_S,
    )


def test_request_builder_refuses_another_account(coordination):
    request = ChargeRequest(coordination.prosumers[1].address, 1, 1, 0, START_TIMESTAMP + 1)
    with pytest.raises(ValueError, match="cannot be signed"):
        ch.request_charge(coordination.prosumers[0], coordination.address, 0, request)


def test_full_window_refuses_a_request_and_allocates_the_worst_case_within_its_gas_limit():
    """128 requests filed in reverse priority (the insertion sort's worst case) fill the window, a
    129th is refused, and all 128 are admitted within :func:`charging.allocate_gas`."""
    coordination = new_coordination(MAX_REQUESTS + 1)
    window = coordination.next_window()
    drawn = [(1000 + i, 10**6, 1000 - i * 7, 10 * H) for i in range(MAX_REQUESTS + 1)]
    requests = _requests(coordination, window, drawn)
    filed = coordination.mine(
        [ch.post_headroom(coordination.operator, coordination.address, window, headroom_w=MAX_HEADROOM_W)]
        + [ch.request_charge(w, coordination.address, window, r) for w, r in zip(coordination.prosumers, requests)]
    )
    assert all(r.ok for r in filed[:-1]) and reverted(filed[-1], "charging: window full")
    (receipt,) = coordination.mine(
        [ch.allocate(coordination.outsider, coordination.address, window, n_requests=MAX_REQUESTS)],
        coordination.deadline(window),
    )
    assert receipt.ok, receipt.revert_reason
    admitted = [coordination.chain.decode(log).args["account"] for log in receipt.logs[:-1]]
    assert admitted == [r.account for r in reversed(requests[:MAX_REQUESTS])]
    assert [a.account for a in allocate(MAX_HEADROOM_W, requests[:MAX_REQUESTS], coordination.end(window))] == admitted
    assert 7_000_000 < receipt.gas_used <= ch.allocate_gas(MAX_REQUESTS)


@pytest.fixture(scope="module")
def scene() -> tuple[Coordination, dict]:
    """Window "allocated" was allocated with p0's request and has started; "started" has
    started unallocated; "closed" is past its deadline without a headroom; "open" takes
    requests, has a headroom and p0's request."""
    coordination = new_coordination(4, n_registered=3)
    allocated = coordination.next_window()
    started, closed, open_ = allocated + 1, allocated + 2, allocated + 3
    p0 = coordination.prosumers[0]
    filed = coordination.mine(
        [
            ch.post_headroom(coordination.operator, coordination.address, allocated, headroom_w=10_000),
            ch.post_headroom(coordination.operator, coordination.address, open_, headroom_w=10_000),
            *(
                ch.request_charge(p0, coordination.address, w, ChargeRequest(p0.address, 1, 1, 0, coordination.end(w)))
                for w in (allocated, open_)
            ),
        ]
    )
    assert all(r.ok for r in filed), [r.revert_reason for r in filed]
    (first,) = coordination.mine(
        [ch.allocate(coordination.outsider, coordination.address, allocated, n_requests=1)],
        coordination.deadline(allocated),
    )
    assert first.ok
    coordination.mine([], coordination.deadline(closed))
    symbols = {"@allocated": allocated, "@started": started, "@closed": closed, "@open": open_}
    symbols["@open_start"] = coordination.start(open_)
    symbols["@open_end"] = coordination.end(open_)
    symbols["@p3"] = coordination.prosumers[3].address
    return coordination, symbols


def _request(window: str, power_w=1000, energy_wh=1000, soc_permille=500, departure="@open_end"):
    return window, power_w, energy_wh, soc_permille, departure


# (reason, who signs, function, arguments); "@x" are symbols of the scene.
CASES = [
    ("charging: caller is not operator", "p1", "post_headroom", ("@open", 1)),
    ("charging: caller is not operator", "outsider", "post_headroom", ("@open", 1)),
    ("charging: headroom above limit", "operator", "post_headroom", ("@open", MAX_HEADROOM_W + 1)),
    ("charging: deadline passed", "operator", "post_headroom", ("@closed", 1)),
    ("charging: caller is not a prosumer", "outsider", "request_charge", _request("@open")),
    ("charging: caller is not a prosumer", "operator", "request_charge", _request("@open")),
    ("charging: EV not registered", "p3", "request_charge", _request("@open")),
    ("charging: power below minimum", "p1", "request_charge", _request("@open", power_w=0)),
    ("charging: power above registered charger", "p1", "request_charge", _request("@open", power_w=MAX_POWER_W + 1)),
    ("charging: zero energy", "p1", "request_charge", _request("@open", energy_wh=0)),
    (
        "charging: energy above registered capacity",
        "p1",
        "request_charge",
        _request("@open", energy_wh=MAX_ENERGY_WH + 1),
    ),
    (
        "charging: state of charge above 1000 permille",
        "p1",
        "request_charge",
        _request("@open", soc_permille=1001),
    ),
    (
        "charging: departure not after window start",
        "p1",
        "request_charge",
        _request("@open", departure="@open_start"),
    ),
    ("charging: deadline passed", "p1", "request_charge", _request("@closed", departure=2**64)),
    ("charging: request exists", "p0", "request_charge", _request("@open")),
    ("charging: requests open", "outsider", "allocate", ("@open",)),
    ("charging: already allocated", "outsider", "allocate", ("@allocated",)),
    ("charging: window started", "operator", "allocate", ("@started",)),
    ("charging: headroom not posted", "p1", "allocate", ("@closed",)),
    ("charging: caller is not operator", "p1", "register_ev", ("@p3", 1000, 1000)),
    ("charging: registration closed", "operator", "register_ev", ("@p3", 1000, 1000)),
]


@pytest.mark.parametrize("reason, who, function, args", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_transaction_reverts_with_exact_reason(scene, reason, who, function, args):
    coordination, symbols = scene
    signer = {"operator": coordination.operator, "outsider": coordination.outsider}.get(who)
    if signer is None:
        signer = coordination.prosumers[int(who[1:])]
    resolved = [symbols[a] if isinstance(a, str) else a for a in args]
    (receipt,) = coordination.mine([coordination.call_tx(signer, function, *resolved)])
    assert reverted(receipt, reason), receipt.revert_reason


@pytest.mark.parametrize(
    "reason, args",
    [
        ("charging: zero window", (START_TIMESTAMP, 0, REQUEST_LEAD_S, 1, em.NOBODY)),
        ("charging: request lead out of range", (START_TIMESTAMP, WINDOW_S, 0, 1, em.NOBODY)),
        ("charging: request lead out of range", (10, WINDOW_S, 11, 1, em.NOBODY)),
        ("charging: minimum request out of range", (START_TIMESTAMP, WINDOW_S, REQUEST_LEAD_S, 0, em.NOBODY)),
        (
            "charging: minimum request out of range",
            (START_TIMESTAMP, WINDOW_S, REQUEST_LEAD_S, MAX_POWER_W + 1, em.NOBODY),
        ),
    ],
)
def test_constructor_reverts_with_exact_reason(scene, reason, args):
    coordination, _ = scene
    raw, _ = coordination.operator.deploy(load_artifact(ch.CONTRACT), coordination.registry, *args)
    (receipt,) = coordination.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason
