"""EV fleet: charging requests, coordinated charging with the safety net, feeder headroom."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts.charging import DEFAULT_MIN_REQUEST_W
from gridledger.contracts.charging_reference import ChargeRequest, allocate, check_request
from gridledger.agents.ev_fleet import EVChargeRequest, EVFleet, ev_owners, headroom_w
from gridledger.grids.ev import EVSession, ev_sessions, laxity_s, uncoordinated_kw

HOUR_S = 3600
STEP_S, WINDOW_S = 300, 900
START_TIMESTAMP = 1_700_000_000

# Window 72 spans 18:00-18:15; A plugs in at its start, B 10 min into it,
# C an hour later, D needs nothing.
A = EVSession(arrival_s=18 * HOUR_S, departure_s=31 * HOUR_S, energy_needed_kwh=10.0, max_charge_kw=7.4,
              efficiency=0.95)
B = EVSession(arrival_s=18 * HOUR_S + 600, departure_s=30 * HOUR_S, energy_needed_kwh=4.0, max_charge_kw=3.7)
C = EVSession(arrival_s=19 * HOUR_S, departure_s=30 * HOUR_S, energy_needed_kwh=8.0, max_charge_kw=11.0)
D = EVSession(arrival_s=18 * HOUR_S, departure_s=30 * HOUR_S, energy_needed_kwh=0.0, max_charge_kw=7.4)


def small_fleet() -> EVFleet:
    return EVFleet([A, B, C, D], owners=[3, 0, 5, 1], capacity_kwh=np.array([40.0, 50.0, 60.0, 40.0]),
                   window_s=WINDOW_S, step_s=STEP_S)


def run(fleet: EVFleet, n_steps: int, admissions, coordinated: bool = True) -> np.ndarray:
    """Step ``fleet`` through ``n_steps``; at each window start ``admissions(window, requests)``
    returns the admitted power by owner [W]. Returns each EV's power per step, shape (n_steps, n_ev) [kW]."""
    p_kw = []
    for k in range(n_steps):
        if coordinated and k * STEP_S % WINDOW_S == 0:
            window = k * STEP_S // WINDOW_S
            fleet.admit(window, admissions(window, fleet.requests(window)))
        p_kw.append(fleet.step(k, coordinated))
    return np.array(p_kw).reshape(n_steps, len(fleet.sessions))


def contract_admissions(headroom: int):
    """Admissions by the contract's reference rule within a constant headroom [W]."""

    def admissions(window: int, requests: list[EVChargeRequest]) -> dict[int, int]:
        on_chain = [r.on_chain(f"prosumer/{r.owner}", START_TIMESTAMP) for r in requests]
        admitted = allocate(headroom, on_chain, START_TIMESTAMP + (window + 1) * WINDOW_S)
        return {int(a.account.split("/")[1]): a.power_w for a in admitted}

    return admissions


def test_only_plugged_in_evs_that_still_need_energy_request():
    fleet = small_fleet()
    assert fleet.requests(71) == []  # 17:45-18:00 ends as A and D plug in
    assert [r.owner for r in fleet.requests(72)] == [3, 0]  # B plugs in mid-window; D is full
    assert [r.owner for r in fleet.requests(76)] == [3, 0, 5]
    assert [r.owner for r in fleet.requests(119)] == [3, 0, 5]
    assert [r.owner for r in fleet.requests(120)] == [3]  # B and C leave at 30:00, as window 120 starts
    assert fleet.requests(124) == []  # A leaves at 31:00, the start of window 124


def test_requests_report_hand_computed_power_energy_soc_and_departure():
    fleet = small_fleet()
    # A: 10 kWh / 0.95 = 10526.3 Wh from the grid; SoC (40 - 10) / 40.
    # B: 4 kWh / 0.9 = 4444.4 Wh; SoC (50 - 4) / 50.
    assert fleet.requests(72) == [
        EVChargeRequest(owner=3, power_w=7400, energy_needed_wh=10527, soc_permille=750, departure_s=31.0 * HOUR_S),
        EVChargeRequest(owner=0, power_w=3700, energy_needed_wh=4445, soc_permille=920, departure_s=30.0 * HOUR_S),
    ]
    run(fleet, 73 * WINDOW_S // STEP_S, admissions=None, coordinated=False)
    # Window 72 at full power: A 7.4 kW * 0.95 * 0.25 h = 1.7575 kWh, leaving 8.2425 kWh = 8676.3 Wh
    # from the grid, SoC 31.7575 / 40 = 0.7939; B for its last 5 min, 3.7 * 0.9 / 12 = 0.2775 kWh,
    # leaving 3.7225 kWh = 4136.1 Wh, SoC 46.2775 / 50 = 0.92555.
    assert fleet.requests(73) == [
        EVChargeRequest(owner=3, power_w=7400, energy_needed_wh=8677, soc_permille=793, departure_s=31.0 * HOUR_S),
        EVChargeRequest(owner=0, power_w=3700, energy_needed_wh=4137, soc_permille=925, departure_s=30.0 * HOUR_S),
    ]


def test_on_chain_request_rounds_the_departure_down_to_a_timestamp():
    request = EVChargeRequest(owner=2, power_w=3700, energy_needed_wh=500, soc_permille=900, departure_s=1000.9)
    assert request.on_chain("0xabc", START_TIMESTAMP) == ChargeRequest(
        account="0xabc", power_w=3700, energy_needed_wh=500, soc_permille=900,
        departure_timestamp=START_TIMESTAMP + 1000,
    )


def test_uncoordinated_steps_charge_at_full_power_from_plug_in():
    fleet = small_fleet()
    n_steps = 32 * HOUR_S // STEP_S
    p_kw = run(fleet, n_steps, admissions=None, coordinated=False)
    expected_kw = uncoordinated_kw(np.arange(n_steps) * STEP_S, STEP_S, [A, B, C, D])
    np.testing.assert_allclose(p_kw, expected_kw, atol=1e-9)
    assert fleet.reached_target().all()
    assert fleet.override_steps.sum() == 0


def test_coordinated_ev_charges_only_when_admitted_until_its_laxity_runs_out():
    fleet = small_fleet()
    n_steps = 32 * HOUR_S // STEP_S
    p_kw = run(fleet, n_steps, admissions=lambda window, requests: {3: 7400} if window == 72 else {})
    assert p_kw[216:219, 0].tolist() == [7.4, 7.4, 7.4]  # admitted in window 72
    assert p_kw[219, 0] == 0.0  # not admitted in window 73, and 12.7 h of slack left
    # Never admitted again, A's safety net starts when full power only just finishes by 31:00:
    # 8.2425 kWh / (0.95 * 7.4 kW) = 4218.6 s before departure, in the step starting at 29:45.
    first_kw = np.flatnonzero(p_kw[:, 0] > 0.0)[3]
    assert first_kw * STEP_S == 29 * HOUR_S + 45 * 60
    assert fleet.override_steps[0] == 15
    assert fleet.reached_target().all()
    assert fleet.shortfall_kwh() == pytest.approx(0.0, abs=1e-9)


def test_an_emergency_cut_stops_the_ev_from_the_next_step_of_its_window_and_never_raises_an_admission():
    fleet = small_fleet()
    for k in range(216):
        fleet.step(k, True)
    fleet.admit(72, {3: 7400})
    assert fleet.step(216, True)[0] == 7.4
    with pytest.raises(ValueError, match="between 0 and 7400 W, got 8000"):
        fleet.cut(72, 3, 8000)
    with pytest.raises(ValueError, match="no admission of prosumer 3 in window 73"):
        fleet.cut(73, 3, 0)
    with pytest.raises(ValueError, match="no admission of prosumer 2 in window 72"):
        fleet.cut(72, 2, 0)                                             # prosumer 2 owns no EV
    fleet.cut(72, 3, 3000)
    assert fleet.step(217, True)[0] == 3.0
    fleet.cut(72, 3, 0)
    assert fleet.step(218, True)[0] == 0.0                              # A has 12.7 h of slack: no safety net


# 20 seeded sessions, study from noon to noon (step 288 is the next noon).
FLEET_SESSIONS = ev_sessions(20, seed=7, midnight_s=-12 * HOUR_S)
N_STEPS = 24 * HOUR_S // STEP_S
UNCOORDINATED_KW = uncoordinated_kw(np.arange(N_STEPS) * STEP_S, STEP_S, FLEET_SESSIONS).sum(axis=1)


def evening_fleet() -> EVFleet:
    capacity = np.array([s.energy_needed_kwh for s in FLEET_SESSIONS]) + 40.0
    return EVFleet(FLEET_SESSIONS, list(range(20)), capacity, WINDOW_S, STEP_S)


def test_coordination_halves_the_evening_peak_and_every_ev_reaches_its_target():
    assert UNCOORDINATED_KW.max() == pytest.approx(44.3)  # six 7.4 kW chargers at once, one drawing 7.3 kW
    headroom = int(0.5 * UNCOORDINATED_KW.max() * 1000)  # 22149 W
    fleet = evening_fleet()
    coordinated_kw = run(fleet, N_STEPS, contract_admissions(headroom)).sum(axis=1)
    # Observed: 22.1 kW (three 7.4 kW chargers minus a completing top-up) and no override.
    assert coordinated_kw.max() == pytest.approx(22.1)
    assert coordinated_kw.max() <= headroom / 1000
    assert fleet.override_steps.sum() == 0
    assert fleet.reached_target().all()
    step_energy_kwh = np.array([s.max_charge_kw * s.efficiency for s in FLEET_SESSIONS]) * STEP_S / HOUR_S
    assert np.all(fleet.shortfall_kwh() <= step_energy_kwh)
    np.testing.assert_allclose(coordinated_kw.sum(), UNCOORDINATED_KW.sum())  # same energy, moved later


def test_too_little_headroom_leaves_the_safety_net_to_finish_the_cars():
    headroom = int(0.2 * UNCOORDINATED_KW.max() * 1000)  # 8859 W: one 7.4 kW charger at a time
    fleet = evening_fleet()
    coordinated_kw = run(fleet, N_STEPS, contract_admissions(headroom)).sum(axis=1)
    # Observed: 19 steps on 4 EVs in which cars that the contract left waiting had run out of
    # laxity; the fleet then drew up to 22.0 kW, above the headroom but below the uncoordinated peak.
    assert fleet.override_steps.sum() == 19
    assert np.count_nonzero(fleet.override_steps) == 4
    assert coordinated_kw.max() == pytest.approx(22.0)
    assert headroom / 1000 < coordinated_kw.max() < UNCOORDINATED_KW.max()
    assert fleet.reached_target().all()


@st.composite
def sessions_and_admissions(draw):
    horizon_s = 12 * HOUR_S
    sessions = []
    for _ in range(draw(st.integers(1, 5))):
        arrival_s = draw(st.floats(0.0, 10.0 * HOUR_S))
        departure_s = draw(st.floats(arrival_s + 60.0, horizon_s))
        max_charge_kw = draw(st.sampled_from([3.7, 7.4, 11.0, 0.5]))
        efficiency = draw(st.floats(0.5, 1.0))
        # Up to 1.3 times what full power delivers over the stay: some sessions are infeasible.
        full_kwh = max_charge_kw * efficiency * (departure_s - arrival_s) / HOUR_S
        energy_needed_kwh = draw(st.floats(0.0, 1.3)) * full_kwh
        sessions.append(EVSession(arrival_s, departure_s, energy_needed_kwh, max_charge_kw, efficiency))
    n_windows = horizon_s // WINDOW_S
    admit = draw(st.lists(st.lists(st.booleans(), min_size=5, max_size=5), min_size=n_windows, max_size=n_windows))
    return sessions, admit


@settings(max_examples=150, deadline=None)
@given(sessions_and_admissions())
def test_safety_net_completes_every_feasible_ev_under_any_admissions(case):
    sessions, admit = case
    n = len(sessions)
    capacity = np.array([s.energy_needed_kwh for s in sessions]) + 1.0
    fleet = EVFleet(sessions, list(range(n)), capacity, WINDOW_S, STEP_S)
    p_kw = run(fleet, 12 * HOUR_S // STEP_S,
               lambda window, requests: {r.owner: r.power_w for r in requests if admit[window][r.owner]})
    feasible = np.array([laxity_s(0.0, s.arrival_s, s) >= 0.0 for s in sessions])
    assert fleet.reached_target()[feasible].all()
    max_kw = np.array([s.max_charge_kw for s in sessions])
    assert np.all(p_kw >= 0.0)
    assert np.all(p_kw <= max_kw + 1e-12)


ROUND_S = 60


def honest_requests_checked(sessions: list[EVSession], capacity_kwh: np.ndarray, headroom_w: int, n_steps: int):
    """Run a fleet on the DER federate's schedule -- the requests for window w sent ``ROUND_S`` into
    window w - 1, after its first step -- and pass every request through the contract's registration
    and session checks (`check_request` raises on a refusal); admissions by the reference rule."""
    fleet = EVFleet(sessions, list(range(len(sessions))), capacity_kwh, WINDOW_S, STEP_S)
    registered = {r.account: r for r in fleet.registrations([f"prosumer/{i}" for i in range(len(sessions))])}
    session_of: dict[str, object] = {}
    admitted_of: dict[str, dict[int, int]] = {account: {} for account in registered}
    pending: dict[int, dict[int, int]] = {0: {}}
    for k in range(n_steps):
        t_s = k * STEP_S
        if t_s % WINDOW_S == 0:
            fleet.admit(t_s // WINDOW_S, pending.pop(t_s // WINDOW_S, {}))
        fleet.step(k, True)
        if t_s % WINDOW_S == 0:
            window = t_s // WINDOW_S + 1
            timestamp = START_TIMESTAMP + t_s + ROUND_S
            on_chain = [r.on_chain(f"prosumer/{r.owner}", START_TIMESTAMP) for r in fleet.requests(window)]
            for request in on_chain:
                session_of[request.account] = check_request(
                    registered[request.account], session_of.get(request.account), request, window,
                    timestamp=timestamp, start_timestamp=START_TIMESTAMP, window_s=WINDOW_S,
                    min_request_w=DEFAULT_MIN_REQUEST_W, admitted_power_w=admitted_of[request.account])
            admitted = allocate(headroom_w, on_chain, START_TIMESTAMP + (window + 1) * WINDOW_S)
            for a in admitted:
                admitted_of[a.account][window] = a.power_w
            pending[window] = {int(a.account.split("/")[1]): a.power_w for a in admitted}
    return fleet


def test_registrations_bound_every_request_of_the_fleet():
    fleet = small_fleet()
    registrations = fleet.registrations([f"p{i}" for i in range(6)])
    assert [(r.account, r.capacity_wh, r.max_charge_w) for r in registrations] == [
        ("p3", 42_106, 7400), ("p0", 55_556, 3700), ("p5", 66_667, 11_000), ("p1", 44_445, 7400)]


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**16), n=st.integers(1, 12), headroom_kw=st.integers(0, 60),
       spare_kwh=st.floats(0.0, 40.0))
def test_honest_fleet_requests_pass_the_contracts_registration_and_session_checks(seed, n, headroom_kw, spare_kwh):
    """The honest fleet never trips a check, under any headroom (admitted, skipped, overridden)."""
    sessions = ev_sessions(n, seed=seed, midnight_s=-12 * HOUR_S)
    capacity = np.array([s.energy_needed_kwh for s in sessions]) + spare_kwh
    fleet = honest_requests_checked(sessions, capacity, headroom_kw * 1000, N_STEPS)
    assert fleet.reached_target().all()


def test_p_kw_by_prosumer_sums_each_owners_evs():
    fleet = small_fleet()
    np.testing.assert_array_equal(fleet.p_kw_by_prosumer(np.array([7.4, 3.7, 11.0, 0.0]), 7),
                                  [3.7, 0.0, 0.0, 7.4, 0.0, 11.0, 0.0])
    with pytest.raises(ValueError, match="n_prosumers must exceed"):
        fleet.p_kw_by_prosumer(np.zeros(4), 5)


def test_a_study_without_evs_has_an_empty_fleet_drawing_nothing():
    fleet = EVFleet([], ev_owners(5, 0.0, seed=1), np.zeros(0), WINDOW_S, STEP_S)
    assert fleet.requests(0) == []
    fleet.admit(0, {})
    assert fleet.step(0, coordinated=True).shape == (0,)
    np.testing.assert_array_equal(fleet.p_kw_by_prosumer(fleet.step(1, coordinated=False), 5), np.zeros(5))
    assert fleet.steps_done == 2


def test_headroom_is_the_loading_limit_minus_the_forecast_base_load():
    # 0.4 MVA at 100 % is 400 kW; 250 kW of base load leaves 150 kW.
    assert headroom_w(0.4, 100.0, 0.25) == 150_000
    # 0.63 MVA at 80 % is 504 kW; an exporting feeder (-12.5 kW) adds its export.
    assert headroom_w(0.63, 80.0, -0.0125) == 516_500
    assert headroom_w(0.4, 100.0, 0.4) == 0
    assert headroom_w(0.4, 100.0, 0.5) == 0  # already overloaded: nothing, not negative
    with pytest.raises(ValueError, match="trafo_sn_mva must be a positive number"):
        headroom_w(0.0, 100.0, 0.1)


@given(st.floats(1e-3, 100.0), st.floats(1.0, 200.0), st.floats(-100.0, 1000.0))
def test_headroom_is_never_negative_and_within_half_a_watt_of_the_margin(sn_mva, loading_percent, base_mw):
    headroom = headroom_w(sn_mva, loading_percent, base_mw)
    assert isinstance(headroom, int) and headroom >= 0
    assert abs(headroom - max(0.0, (sn_mva * loading_percent / 100 - base_mw) * 1e6)) <= 0.5


def test_ev_owners_are_a_seeded_share_of_the_prosumers():
    owners = ev_owners(40, 0.25, seed=3)
    assert len(owners) == 10 and owners == sorted(set(owners)) and all(0 <= i < 40 for i in owners)
    assert ev_owners(40, 0.25, seed=3) == owners
    assert ev_owners(40, 0.25, seed=4) != owners
    assert ev_owners(40, 1.0, seed=3) == list(range(40))
    assert ev_owners(40, 0.0, seed=3) == []


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"owners": [3, 3, 5, 1]}, "owners must be distinct"),
        ({"owners": [3, 0]}, "owners must be 4 prosumer indices"),
        ({"capacity_kwh": np.array([5.0, 50.0, 60.0, 40.0])}, "at least each session's energy_needed_kwh"),
        ({"window_s": 1000}, "window_s must be a multiple of step_s"),
        ({"step_s": 0}, "step_s must be a positive whole number"),
    ],
)
def test_inconsistent_fleets_are_rejected_naming_the_argument(kwargs, message):
    arguments = {"sessions": [A, B, C, D], "owners": [3, 0, 5, 1],
                 "capacity_kwh": np.array([40.0, 50.0, 60.0, 40.0]), "window_s": WINDOW_S, "step_s": STEP_S}
    with pytest.raises(ValueError, match=message):
        EVFleet(**(arguments | kwargs))


def test_admissions_and_steps_fail_loudly_out_of_order():
    fleet = small_fleet()
    with pytest.raises(ValueError, match="prosumer 2 owns no EV"):
        fleet.admit(72, {2: 7400})
    fleet.admit(72, {3: 7400})
    with pytest.raises(ValueError, match="window 72 is already admitted"):
        fleet.admit(72, {})
    with pytest.raises(ValueError, match="step must be 0, the next one"):
        fleet.step(1, coordinated=True)
