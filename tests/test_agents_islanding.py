"""The feeder islanded behind its open substation: a contracted battery forms the grid, the rotation restores what
it can carry, and without one the feeder is dark (`gridledger.agents.islanding`, `gridledger.grids.island`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, strategies as st

from gridledger.agents.devices import Devices
from gridledger.agents.feeder import Feeder, load_buses
from gridledger.agents.islanding import GridFormers, excess_mw, shares_mw
from gridledger.agents.load_shedding import TOLERANCE_MW
from gridledger.scenario import build_scenario
from gridledger.study import parse_study

STEP_S = 300
ISLAND = {"start_s": 1800, "end_s": 3600, "cap_mw": 0.0, "island": True}


def _study(**battery):
    return parse_study({
        "name": "island", "start": "2024-01-17T18:00:00", "duration_s": 5400, "power_flow_step_s": STEP_S,
        "market_interval_s": 900, "seed": 5, "grid": {"feeder": "1-LV-semiurb4--0-sw"},
        "prosumers": {"count": 12, "pv": {"share": 0.0}, "battery": {"share": 0.5, "soc_init": 0.8, **battery}},
        "events": {"import_caps": [ISLAND]},
    })


@pytest.fixture(scope="module")
def sc():
    return build_scenario(_study(), with_devices=True)


def _setpoints(sc, step: int) -> dict[str, np.ndarray]:
    rows = [sc.net.load.index.get_loc(p.load_index) for p in sc.prosumers]
    zeros = np.zeros(len(sc.prosumers))
    return {"load_p_mw": sc.loads.p_mw[step][rows], "load_q_mvar": sc.loads.q_mvar[step][rows], "pv_p_mw": zeros,
            "battery_p_mw": zeros, "pv_curtailed_p_mw": zeros}


def _batteries(sc) -> list[int]:
    return [i for i, p in enumerate(sc.prosumers) if p.battery_power_kw > 0]


def _run(sc, activated: dict[int, float], steps=range(18)):
    feeder = Feeder(sc)
    for step in steps:
        feeder.step(step, _setpoints(sc, step), reserve=activated if 6 <= step < 12 else {},
                    responding=[i for i, p_mw in activated.items() if p_mw > 0] if 6 <= step < 12 else ())
    return feeder


def _activated(sc, p_mw: float = 1.0) -> dict[int, float]:
    """Every battery activated for `p_mw` (more than any rating: each shares up to what it can give)."""
    return {i: p_mw for i in _batteries(sc)}


def test_without_a_contracted_battery_the_island_is_dark_and_every_load_unserved(sc):
    record = _run(sc, activated={}).record
    island = slice(6, 12)
    assert (record.islanded[island] == 1).all() and not record.islanded[:6].any() and not record.islanded[12:].any()
    assert np.isnan(record.vm_pu[island]).all() and (record.substation["p_mw"][island] == 0).all()
    load_rows = np.isin(sc.net.bus.index, load_buses(sc.net))
    assert record.cut[island][:, load_rows].all() and not record.grid_forming.any()
    drawn = np.array([sc.loads.p_mw[s].sum() for s in range(6, 12)])
    assert record.unserved_p_mw[island].sum(axis=1) == pytest.approx(drawn, rel=1e-12)
    assert (record.export_mw[island] == 0).all() and record.converged[island].all()
    assert np.isfinite(record.vm_pu[12:]).all() and not record.cut[12:].any()     # reconnected afterwards


def test_contracted_batteries_run_the_island_within_their_limits_and_the_rotation_restores_what_they_carry(sc):
    activated = _activated(sc)
    feeder = _run(sc, activated)
    record, formers = feeder.record, GridFormers(sc)
    former = formers.choose(activated)
    assert (record.grid_forming[6:12, former] == 1).all() and record.grid_forming.sum() == 6
    for step in range(6):
        formers.ran(record.battery_p_mw[step])
    for step in range(6, 12):
        delivered_mw = -record.battery_p_mw[step]
        for i in activated:
            discharge_mw, _ = formers.limits_mw(i)
            assert 0 <= delivered_mw[i] <= discharge_mw + TOLERANCE_MW
        # Energy balance: the batteries supply the served load and the island's losses; the substation nothing.
        served_mw = sc.loads.p_mw[step].sum() - record.unserved_p_mw[step].sum()
        assert delivered_mw.sum() == pytest.approx(served_mw + record.substation["pl_mw"][step], abs=1e-9)
        assert np.nansum(record.bus_p_mw[step]) + record.substation["pl_mw"][step] == pytest.approx(0, abs=1e-9)
        assert record.substation["p_mw"][step] == 0 and record.cut[step].any()
        assert np.nanmax(record.vm_pu[step]) == pytest.approx(1.0, abs=0.1)
        # Shares pro rata to what each can give (all activated above their rating), the former also the losses.
        others = [i for i in activated if i != former]
        limit_mw = np.array([formers.limits_mw(i)[0] for i in others])
        assert delivered_mw[others] / limit_mw == pytest.approx(np.full(len(others), delivered_mw[others][0]
                                                                         / limit_mw[0]), rel=1e-9)
        formers.ran(record.battery_p_mw[step])
    assert record.unserved_p_mw[6:12].sum() < _run(sc, activated={}).record.unserved_p_mw[6:12].sum()


def test_the_buses_of_the_island_batteries_are_restored_first(sc):
    activated = _activated(sc)
    record = _run(sc, activated).record
    battery_buses = {sc.prosumers[i].bus for i in activated}
    rows = np.isin(sc.net.bus.index, sorted(battery_buses))
    assert not record.cut[6:12][:, rows].any() and record.cut[6:12].any()


def test_batteries_give_their_dispatch_first_and_beyond_it_only_what_the_island_still_draws(sc):
    activated = _activated(sc, p_mw=0.001)
    record, formers = _run(sc, activated).record, GridFormers(sc)
    former = formers.choose(activated)
    others = [i for i in activated if i != former]
    delivered_mw = -record.battery_p_mw[6:12][:, others]
    assert (delivered_mw >= 0.001 - TOLERANCE_MW).all() and (delivered_mw > 0.0011).any()   # dispatch, then more


def test_batteries_awarded_but_not_activated_share_the_island_by_what_they_can_give(sc):
    standing = _activated(sc, p_mw=0.0)
    record, formers = _run(sc, standing).record, GridFormers(sc)
    former = formers.choose(standing)
    assert record.grid_forming[6:12, former].all()
    for step in range(6):
        formers.ran(record.battery_p_mw[step])
    others = [i for i in standing if i != former]
    delivered_mw = -record.battery_p_mw[6, others]
    limit_mw = np.array([formers.limits_mw(i)[0] for i in others])
    assert delivered_mw / limit_mw == pytest.approx(np.full(len(others), delivered_mw[0] / limit_mw[0]), rel=1e-9)


@given(st.floats(-2.0, 2.0), st.lists(st.tuples(st.floats(0.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0)),
                                      min_size=1, max_size=6))
def test_shares_add_up_to_the_need_follow_the_dispatch_and_stay_within_each_battery(need_mw, batteries):
    dispatch_mw, give_mw, take_mw = (np.array(column) for column in zip(*batteries))
    shares = shares_mw(need_mw, dispatch_mw, give_mw, take_mw)
    if shares is None:
        assert need_mw > give_mw.sum() + TOLERANCE_MW or -need_mw > take_mw.sum() + TOLERANCE_MW
        return
    assert shares.sum() == pytest.approx(need_mw, abs=1e-9)
    assert (shares <= give_mw + 1e-12).all() and (-shares <= take_mw + 1e-12).all()
    first_mw = np.minimum(dispatch_mw, give_mw)
    if 0 <= need_mw <= first_mw.sum():
        assert (shares <= first_mw + 1e-12).all()                      # nobody beyond its dispatch
    elif need_mw > first_mw.sum():
        assert (shares >= first_mw - 1e-12).all()                      # everybody at least its dispatch


def test_an_empty_grid_former_cannot_hold_the_island(sc):
    drained = build_scenario(_study(soc_init=0.1, soc_min=0.1), with_devices=True)
    record = _run(drained, _activated(drained)).record
    assert not record.grid_forming.any() and np.isnan(record.vm_pu[6:12]).all()


def test_the_grid_former_is_the_largest_activated_battery_and_the_lowest_position_among_equals(sc):
    formers = GridFormers(sc)
    formers.power_kw = np.array([0.0, 3.0, 5.0, 5.0, 0.0] + [1.0] * (len(sc.prosumers) - 5))
    assert formers.choose([1, 2, 3]) == 2 and formers.choose([3, 1]) == 3 and formers.choose([0, 4]) is None
    assert formers.choose([]) is None


@given(st.floats(-1.0, 1.0), st.floats(0.0, 1.0), st.floats(0.0, 1.0))
def test_the_excess_is_zero_within_the_limits_and_the_distance_outside(p_mw, discharge_mw, charge_mw):
    excess = excess_mw(p_mw, discharge_mw, charge_mw)
    if -charge_mw <= p_mw <= discharge_mw:
        assert excess == 0
    else:
        assert excess == pytest.approx(p_mw - discharge_mw if p_mw > discharge_mw else -charge_mw - p_mw)
    assert np.isnan(excess_mw(float("nan"), discharge_mw, charge_mw))


def test_the_der_books_what_its_battery_ran_at_while_forming_as_the_grid_does(sc):
    study = sc.study
    devices = Devices(sc)
    formers = GridFormers(sc)
    i = formers.choose(_activated(sc))
    zeros = np.zeros(len(sc.prosumers))
    for step in range(3):
        set_mw = devices.step(step, zeros, zeros, ev_coordinated=False)["battery_p_mw"]
        ran_mw = set_mw.copy()
        if step == 2:
            ran_mw[i] = -0.003
            devices.formed_island(step, i, -0.003)
        formers.ran(ran_mw)
    assert devices.soc_kwh[i] == pytest.approx(formers.soc_kwh[i], rel=1e-12)
    assert devices.battery_p_kw[2, i] == pytest.approx(-3.0)
    assert devices.soc_trace_kwh[2, i] == devices.soc_kwh[i] < devices.soc_trace_kwh[1, i]
    with pytest.raises(ValueError, match="came after"):
        devices.formed_island(1, i, -0.001)
    assert study.events.islanded_at(1800) and not study.events.islanded_at(3600)


def test_an_island_cap_must_open_the_substation():
    with pytest.raises(ValueError, match="cap_mw must be 0"):
        parse_study({**_study().model_dump(mode="json"),
                     "events": {"import_caps": [{**ISLAND, "cap_mw": 0.01}]}})
