"""Last-resort load shedding under an import cap: the rotation by hand and by property, and a real power flow on
case33bw where the cap holds in every capped step and what was cut is recorded as unserved."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.agents.feeder import Feeder, load_buses
from gridledger.agents.load_shedding import TOLERANCE_MW, Rotation
from gridledger.scenario import build_scenario
from gridledger.study import parse_study


def _linear(base_mw: float, load_mw: dict[int, float]):
    """An import that falls by each cut bus's load: a feeder without losses."""
    return lambda cut: base_mw - sum(load_mw[b] for b in cut)


def test_the_rotation_cuts_the_front_of_its_queue_until_the_import_fits_and_moves_it_to_the_back():
    load_mw = {1: 2.0, 2: 3.0, 3: 1.0}
    rotation = Rotation([1, 2, 3])
    assert rotation.shed(_linear(10.0, load_mw), cap_mw=6.0) == [1, 2]           # 8 > 6, then 5 <= 6
    assert rotation.queue == [3, 1, 2]
    assert rotation.shed(_linear(10.0, load_mw), cap_mw=8.5) == [3, 1]           # 9 > 8.5, then 7 <= 8.5
    assert rotation.queue == [2, 3, 1]
    assert rotation.shed(_linear(10.0, load_mw), cap_mw=10.0) == []              # within the cap: nobody is cut
    assert rotation.shed(_linear(10.0, load_mw), cap_mw=1.0) == [2, 3, 1]        # not even all of them suffice


def test_the_buses_of_responding_households_are_cut_last_and_keep_their_place_otherwise():
    load_mw = {1: 2.0, 2: 3.0, 3: 1.0}
    rotation = Rotation([1, 2, 3])
    assert rotation.shed(_linear(10.0, load_mw), cap_mw=7.0, last=frozenset({1})) == [2]        # 10 > 7, then 7
    assert rotation.queue == [1, 3, 2]
    assert rotation.shed(_linear(10.0, load_mw), cap_mw=4.5, last=frozenset({1})) == [3, 2, 1]   # 9, 6, 4
    assert rotation.queue == [3, 2, 1]


def test_a_power_flow_that_does_not_converge_counts_as_above_the_cap():
    rotation = Rotation([4, 5])
    assert rotation.shed(lambda cut: math.nan if len(cut) < 2 else 0.5, cap_mw=1.0) == [4, 5]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(0.0, 5.0), min_size=1, max_size=12), st.floats(0.0, 60.0), st.integers(0, 11))
def test_the_import_ends_within_the_cap_unless_every_bus_is_cut_and_the_cut_is_the_shortest_front(loads, cap_mw,
                                                                                                  start):
    buses = list(range(len(loads)))
    load_mw = dict(zip(buses, loads))
    base = sum(loads) + 1.0
    queue = buses[start % len(buses):] + buses[:start % len(buses)]
    rotation = Rotation(queue)
    cut = rotation.shed(_linear(base, load_mw), cap_mw)
    assert cut == queue[:len(cut)]
    assert sorted(rotation.queue) == buses and rotation.queue[-len(cut):] == cut if cut else rotation.queue == queue
    drawn = base - sum(load_mw[b] for b in cut)
    assert drawn <= cap_mw + TOLERANCE_MW or len(cut) == len(buses)
    if cut:
        assert base - sum(load_mw[b] for b in cut[:-1]) > cap_mw + TOLERANCE_MW


def _scenario(import_caps: list[dict]):
    return build_scenario(parse_study({
        "name": "capped", "start": "2024-06-21T18:00:00", "duration_s": 3600, "seed": 5,
        "grid": {"feeder": "case33bw"}, "prosumers": {"count": 8, "pv": {"share": 0.0}},
        "events": {"import_caps": import_caps},
    }), with_devices=True)


def _setpoints(sc, step: int) -> dict[str, np.ndarray]:
    rows = [sc.net.load.index.get_loc(p.load_index) for p in sc.prosumers]
    zeros = np.zeros(len(sc.prosumers))
    return {"load_p_mw": sc.loads.p_mw[step][rows], "load_q_mvar": sc.loads.q_mvar[step][rows], "pv_p_mw": zeros,
            "battery_p_mw": zeros, "pv_curtailed_p_mw": zeros}


@pytest.fixture(scope="module")
def capped():
    free = Feeder(_scenario([]))
    uncapped_mw = [free.step(step, _setpoints(free.sc, step)).p_mw for step in range(12)]
    cap_mw = round(0.7 * min(uncapped_mw[:6]), 3)
    sc = _scenario([{"start_s": 0, "end_s": 1800, "cap_mw": cap_mw}])
    feeder = Feeder(sc)
    for step in range(12):
        feeder.step(step, _setpoints(sc, step))
    return sc, feeder.record, cap_mw, uncapped_mw


def test_every_capped_step_imports_at_most_the_cap_and_the_others_are_untouched(capped):
    sc, record, cap_mw, uncapped_mw = capped
    p_mw = record.substation["p_mw"]
    assert (p_mw[:6] <= cap_mw + TOLERANCE_MW).all() and record.cut[:6].any(axis=1).all()
    assert np.allclose(p_mw[6:], uncapped_mw[6:]) and not record.cut[6:].any()
    assert np.allclose(record.import_cap_mw[:6], cap_mw) and np.isnan(record.import_cap_mw[6:]).all()


def test_what_a_cut_bus_would_have_drawn_is_unserved_and_its_prosumers_meter_nothing(capped):
    sc, record, _, _ = capped
    net = sc.net
    for step in range(12):
        cut = set(net.bus.index[record.cut[step].astype(bool)])
        expected = np.zeros(len(net.bus))
        for row, bus in enumerate(net.load.bus):
            if bus in cut:
                load = sc.loads.p_mw[step][row]
                prosumer = next((p for p in sc.prosumers if p.load_index == net.load.index[row]), None)
                expected[net.bus.index.get_loc(bus)] += load if prosumer is None else _setpoints(sc, step)[
                    "load_p_mw"][sc.prosumers.index(prosumer)]
        assert np.allclose(record.unserved_p_mw[step], expected)
        on_cut = np.array([p.bus in cut for p in sc.prosumers])
        assert (record.export_mw[step][on_cut] == 0).all()
    assert record.unserved_p_mw[:6].sum() > 0 and record.unserved_p_mw[6:].sum() == 0


def test_the_rotation_spreads_the_cuts_over_the_load_buses(capped):
    sc, record, _, _ = capped
    first = [tuple(np.flatnonzero(record.cut[step])) for step in range(6)]
    assert len(set(first)) > 1                                     # not the same buses every capped step
    assert record.cut[:6].sum(axis=0).max() < 6                    # no bus cut in every capped step
    assert set(np.flatnonzero(record.cut[:6].any(axis=0))) <= {sc.net.bus.index.get_loc(b)
                                                                for b in load_buses(sc.net)}
