"""WLS state estimation and bad-data tests on the Abur & Expósito 3-bus network, against a textbook reference.

The network and the eight measurements are Example 2.1 of Abur & Expósito,
*Power System State Estimation* (2004): lines 1-2 (0.01 + j0.03 pu), 1-3
(0.02 + j0.05 pu), 2-3 (0.03 + j0.08 pu), on a 1 kV / 1 MVA base so that
ohms are per unit. The book's estimate is V = 0.9996, 0.9742, 0.9439 pu,
θ₂ = -1.2475°, θ₃ = -2.7457°. The reference below is an independent
Gauss-Newton WLS written from the book's measurement functions (eq. 2.5
ff.) with a numerical Jacobian; it gives J and rᴺ to compare with.
"""

from __future__ import annotations

import functools
import numpy as np
import pandapower as pp
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.grids.estimation import EstimationFailed, estimate_state, identify_bad_data

LINES = [(0, 1, 0.01, 0.03), (0, 2, 0.02, 0.05), (1, 2, 0.03, 0.08)]
BOOK = [  # kind, element type, element, value [pu], sigma [pu], side
    ("p", "line", 0, 0.888, 0.008, "from"), ("p", "line", 1, 1.173, 0.008, "from"), ("p", "bus", 1, 0.501, 0.01, None),
    ("q", "line", 0, 0.568, 0.008, "from"), ("q", "line", 1, 0.663, 0.008, "from"), ("q", "bus", 1, 0.286, 0.01, None),
    ("v", "bus", 0, 1.006, 0.004, None), ("v", "bus", 1, 0.968, 0.004, None),
]
# A redundant set for identification: the book's plus the flows on line 2-3, bus 3's injection and voltage,
# values from the book's estimated state (a power flow of it), so the honest set is nearly consistent.
EXTRA = [("p", "line", 2, None, 0.008, "from"), ("q", "line", 2, None, 0.008, "from"),
         ("p", "bus", 2, None, 0.01, None), ("q", "bus", 2, None, 0.01, None), ("v", "bus", 2, None, 0.004, None)]


def _network() -> pp.pandapowerNet:
    net = pp.create_empty_network(sn_mva=1.0)
    for _ in range(3):
        pp.create_bus(net, vn_kv=1.0)
    pp.create_ext_grid(net, 0)
    for f, t, r, x in LINES:
        pp.create_line_from_parameters(net, f, t, 1.0, r_ohm_per_km=r, x_ohm_per_km=x, c_nf_per_km=0.0, max_i_ka=1.0)
    return net


def _with(measurements) -> pp.pandapowerNet:
    net = _network()
    for kind, element_type, element, value, sigma, side in measurements:
        pp.create_measurement(net, kind, element_type, value, sigma, element, side=side)
    return net


# -- the independent reference: the book's h(x) and Gauss-Newton ------------------------------------------------

def _ybus() -> np.ndarray:
    y = np.zeros((3, 3), complex)
    for f, t, r, x in LINES:
        ys = 1.0 / complex(r, x)
        y[f, f] += ys
        y[t, t] += ys
        y[f, t] -= ys
        y[t, f] -= ys
    return y


def _h(state: np.ndarray, measurements) -> np.ndarray:
    """Measurement functions at state (θ₂, θ₃, V₁, V₂, V₃) [rad, pu]; bus injections positive for load."""
    theta = np.array([0.0, *state[:2]])
    v = state[2:] * np.exp(1j * theta)
    s_bus = v * np.conj(_ybus() @ v)                       # injected by the network into the bus = generation
    out = []
    for kind, element_type, element, *_ in measurements:
        if element_type == "bus":
            s = -s_bus[element]
            out.append(abs(v[element]) if kind == "v" else (s.real if kind == "p" else s.imag))
        else:
            f, t, r, x = LINES[element]
            s = v[f] * np.conj((v[f] - v[t]) / complex(r, x))
            out.append(s.real if kind == "p" else s.imag)
    return np.array(out)


def _reference(measurements) -> tuple[np.ndarray, float, np.ndarray]:
    """(state, J, rᴺ) by Gauss-Newton WLS with a central-difference Jacobian."""
    z = np.array([m[3] for m in measurements])
    w = np.diag([1.0 / m[4] ** 2 for m in measurements])
    x = np.array([0.0, 0.0, 1.0, 1.0, 1.0])
    for _ in range(30):
        jac = np.column_stack([(_h(x + e, measurements) - _h(x - e, measurements)) / 2e-7 for e in np.eye(5) * 1e-7])
        step = np.linalg.solve(jac.T @ w @ jac, jac.T @ w @ (z - _h(x, measurements)))
        x += step
        if np.max(np.abs(step)) < 1e-12:
            break
    r = z - _h(x, measurements)
    omega = np.linalg.inv(w) - jac @ np.linalg.solve(jac.T @ w @ jac, jac.T)
    return x, float(r @ w @ r), np.abs(r) / np.sqrt(np.diag(omega))


@functools.cache
def _book_state() -> tuple[float, ...]:
    return tuple(_reference(BOOK)[0])


def _redundant(corrupt: int | None = None, by: float = 0.0):
    state = np.array(_book_state())
    extra = [(k, e, el, float(_h(state, [(k, e, el)])[0]), s, side) for k, e, el, _, s, side in EXTRA]
    measurements = BOOK + extra
    return [(k, e, el, v + (by if i == corrupt else 0.0), s, side) for i, (k, e, el, v, s, side) in enumerate(measurements)]


# -- tests ----------------------------------------------------------------------------------------------------------

def test_the_book_example_gives_the_books_state():
    est = estimate_state(_with(BOOK))
    assert est.vm_pu.round(4).tolist() == [0.9996, 0.9742, 0.9439]
    assert est.va_degree.round(4).tolist() == [0.0, -1.2475, -2.7457]


def test_objective_and_normalized_residuals_equal_the_textbook_reference():
    est = estimate_state(_with(BOOK))
    _, objective, rn = _reference(BOOK)
    assert est.dof == 8 - 5
    assert est.objective == pytest.approx(objective, rel=1e-5)
    assert est.normalized_residuals.sort_index().to_numpy() == pytest.approx(rn, rel=1e-4)


def test_the_chi2_threshold_is_the_tabulated_quantile():
    est = estimate_state(_with(BOOK))
    assert est.chi2_threshold == pytest.approx(11.345, abs=1e-3)    # χ²(0.99, 3 dof) from the table
    assert estimate_state(_with(BOOK), alpha=0.05).chi2_threshold == pytest.approx(7.815, abs=1e-3)
    assert not est.bad_data                                          # J = 8.64 (the reference above)


def test_a_bad_measurement_with_redundancy_one_is_detected_but_not_identified():
    """p12, p13 and the injection p2 carry the P-equations' only redundancy: their rᴺ tie, so the worst is not the bad one."""
    measurements = [(k, e, el, v + (0.1 if i == 0 else 0.0), s, side) for i, (k, e, el, v, s, side) in enumerate(BOOK)]
    est = estimate_state(_with(measurements))
    assert est.bad_data
    index, _, tied = est.largest()
    assert index != 0 and tied
    first, _, removed = identify_bad_data(_with(measurements), threshold=1.0)
    assert first.largest()[1] > 1.0 and removed == []                   # detected, nobody blamed


def test_removal_stops_when_no_suspect_is_left():
    assert estimate_state(_with(_redundant())).largest(among=[]) is None
    measurements = _redundant(0, by=20 * _redundant()[0][4])
    _, final, removed = identify_bad_data(_with(measurements), threshold=0.0, suspects=[0])
    assert [index for index, _ in removed] == [0] and not final.bad_data


@pytest.mark.parametrize("corrupt", range(len(BOOK) + len(EXTRA)))
def test_with_redundancy_the_largest_normalized_residual_names_the_corrupted_measurement(corrupt):
    measurements = _redundant(corrupt, by=20 * _redundant()[corrupt][4])
    est = estimate_state(_with(measurements))
    _, objective, rn = _reference(measurements)
    assert est.bad_data and est.objective == pytest.approx(objective, rel=1e-4)
    assert est.largest()[0] == corrupt == int(np.argmax(rn))
    _, final, removed = identify_bad_data(_with(measurements))
    assert [index for index, _ in removed] == [corrupt] and not final.bad_data


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), corrupt=st.integers(0, len(BOOK) + len(EXTRA) - 1),
       sigmas=st.floats(15.0, 50.0), sign=st.sampled_from([-1.0, 1.0]))
def test_one_gross_error_among_small_noise_is_the_one_removed(seed, corrupt, sigmas, sign):
    rng = np.random.default_rng(seed)
    measurements = [(k, e, el, v + s * (sign * sigmas if i == corrupt else rng.uniform(-0.5, 0.5)), s, side)
                    for i, (k, e, el, v, s, side) in enumerate(_redundant())]
    _, final, removed = identify_bad_data(_with(measurements))
    assert [index for index, _ in removed] == [corrupt] and not final.bad_data


def test_too_few_measurements_fail_with_a_clear_error():
    with pytest.raises(EstimationFailed, match="5 states"):
        estimate_state(_with(BOOK[:4]))
