"""The data catalogue's queries by hand, their stated sensitivities checked against any neighbouring data set, and
the Laplace release's scale."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gridledger.agents.data_catalogue import QUERIES, relative_error, release, steps_per_hour

PROFILE, PEAK, EV_SHARE = QUERIES


def _data():
    """Two owners, 24 steps (two hours of 5 minutes): owner 0 draws 1 kW, owner 1 draws 2 kW in the second hour."""
    load = np.zeros((24, 2))
    load[:, 0] = 1.0
    load[12:, 1] = 2.0
    return load, np.array([4.0, 5.0]), np.array([True, False])


def test_each_query_answers_as_computed_by_hand():
    load, rating, ev = _data()
    assert PROFILE.answer(load, rating, ev).tolist() == [1.0, 3.0]        # hourly means of the summed load
    assert PEAK.answer(load, rating, ev) == 3.0
    assert EV_SHARE.answer(load, rating, ev) == 0.5
    # Sensitivities: two hourly bins x the largest rating; the largest rating; one owner of two.
    assert [q.sensitivity(load, rating, ev) for q in QUERIES] == [10.0, 5.0, 0.5]


@given(arrays(np.float64, (30, 3), elements=st.floats(0.0, 1.0)), arrays(np.float64, (30,), elements=st.floats(0, 1)),
       st.integers(0, 2), st.booleans(), st.lists(st.booleans(), min_size=3, max_size=3))
def test_replacing_one_owners_data_moves_no_answer_by_more_than_its_sensitivity(shares, other, owner, ev_other, ev):
    """Loads within each owner's rating (shares of it); the neighbour replaces one owner's column and EV flag."""
    rating = np.array([3.0, 7.0, 11.0])
    load, has_ev = shares * rating, np.array(ev)
    neighbour, neighbour_ev = load.copy(), has_ev.copy()
    neighbour[:, owner], neighbour_ev[owner] = other * rating[owner], ev_other
    for query in QUERIES:
        moved = np.abs(np.asarray(query.answer(load, rating, has_ev)) -
                       np.asarray(query.answer(neighbour, rating, neighbour_ev))).sum()
        assert moved <= query.sensitivity(load, rating, has_ev) + 1e-9, query.name


def test_the_noise_has_the_laplace_scale_and_shrinks_with_epsilon():
    load, rating, ev = _data()
    rng = np.random.default_rng(7)
    noisy = np.array([release(PEAK, load, rating, ev, 0.5, rng)[0] for _ in range(20_000)])
    # Laplace(b): mean absolute deviation b = sensitivity / epsilon = 5 / 0.5 = 10 kW.
    assert np.abs(noisy - 3.0).mean() == pytest.approx(10.0, rel=0.03)
    assert np.median(noisy) == pytest.approx(3.0, abs=0.5)
    errors = relative_error(EV_SHARE, load, rating, ev, np.array([0.1, 1.0, 10.0]), 2000, rng)
    assert errors[0] > errors[1] > errors[2]
    assert errors[1] == pytest.approx(1.0, rel=0.1)                        # b = 0.5 / 1 over an answer of 0.5
    profile, scale = release(PROFILE, load, rating, ev, 2.0, rng)
    assert profile.shape == (2,) and scale == 5.0 and steps_per_hour(300) == 12


@pytest.mark.parametrize("epsilon", [0.0, -1.0, float("nan")])
def test_a_release_needs_a_positive_epsilon_and_an_owner(epsilon):
    load, rating, ev = _data()
    with pytest.raises(ValueError, match="epsilon must be positive"):
        release(PEAK, load, rating, ev, epsilon, np.random.default_rng(0))
    with pytest.raises(ValueError, match="no owner"):
        release(PEAK, load[:, :0], rating[:0], ev[:0], 1.0, np.random.default_rng(0))
