"""Stability and operating checks of one power-flow result, and their summaries.

Every check is a pure function of arrays (or of a net's impedances and a
result) and says where its definition comes from. :func:`summarize_step`
applies them to one :class:`~gridledger.grids.powerflow.StepResult` and
:func:`summarize_run` folds step summaries into one per run. NaN marks a
value that does not exist (a power flow that did not converge, a bus that
no line feeds); it never counts as a violation, because non-convergence is
reported on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import networkx as nx
import numpy as np
import pandapower
import pandapower.topology

from gridledger.grids.feeders import is_unbalanced
from gridledger.grids.voltage_band import ANSI_C84_1_SERVICE_VOLTAGE_PU, VoltageBand, ansi_c84_1_band

if TYPE_CHECKING:
    from gridledger.grids.powerflow import StepResult

__all__ = [
    "ANSI_C84_1_SERVICE_VOLTAGE_PU",
    "IEC_61000_2_2_VUF_PERCENT",
    "VoltageBand",
    "ansi_c84_1_band",
    "thermal_overload",
    "voltage_unbalance_factor_percent",
    "stability_index_chakravorty_das",
    "voltage_stability_index",
    "StepSummary",
    "RunSummary",
    "summarize_step",
    "summarize_run",
]

IEC_61000_2_2_VUF_PERCENT = 2.0
"""Compatibility level of the voltage unbalance factor in public LV
networks (IEC 61000-2-2:2002, sec. 4.6; also EN 50160). [%]"""

_A = np.exp(2j * np.pi / 3.0)


def thermal_overload(loading_percent, limit_percent=100.0) -> np.ndarray:
    """Whether each line or transformer is loaded above its thermal limit.

    Loading exactly at the limit is not an overload; NaN is not an
    overload (non-convergence is reported separately).

    Parameters
    ----------
    loading_percent : array_like
        Loading as in pandapower's ``res_line.loading_percent`` (current
        over ``max_i_ka * df * parallel``) or ``res_trafo.loading_percent``
        (current over rated current); the highest phase for unbalanced
        results (``res_line_3ph``). [%]
    limit_percent : float or array_like, default 100
        Allowed loading, e.g. ``net.line.max_loading_percent``. [%]

    Returns
    -------
    overloaded : ndarray of bool
        True where ``loading_percent > limit_percent``.

    References
    ----------
    L. Thurner et al., "pandapower - an open-source Python tool for
    convenient modeling, analysis, and optimization of electric power
    systems," IEEE Trans. Power Systems, vol. 33, no. 6, pp. 6510-6521,
    2018 (definition of line and transformer loading).

    IEC 60287-1-1:2023, "Electric cables - Calculation of the current
    rating" (the thermal current rating ``max_i_ka`` of a cable).
    """
    return np.asarray(loading_percent, dtype=float) > np.asarray(limit_percent, dtype=float)


def voltage_unbalance_factor_percent(v_a, v_b, v_c) -> np.ndarray:
    """Voltage unbalance factor: negative- over positive-sequence voltage.

    ``VUF = |V2| / |V1| * 100`` with the symmetrical components
    ``V1 = (Va + a Vb + a^2 Vc) / 3`` and ``V2 = (Va + a^2 Vb + a Vc) / 3``,
    ``a = exp(j 2 pi / 3)``. Phase-to-neutral and line-to-line phasors give
    the same ratio, because neither sequence contains the zero-sequence
    part. This is the IEC definition, not NEMA's line-voltage deviation
    from the mean.

    Parameters
    ----------
    v_a, v_b, v_c : array_like of complex
        Phase voltage phasors, broadcastable. [pu] or [kV]

    Returns
    -------
    vuf : ndarray
        Voltage unbalance factor; 0 for a balanced positive-sequence set,
        NaN where ``V1 = 0`` or an input is NaN. [%]

    References
    ----------
    IEC 61000-4-30:2015, "Electromagnetic compatibility - Testing and
    measurement techniques - Power quality measurement methods", sec. 5.7.1
    (u2 = negative-sequence over positive-sequence voltage, in percent).

    IEC 61000-2-12:2003, "Electromagnetic compatibility - Environment -
    Compatibility levels for low-frequency conducted disturbances ... in
    public medium-voltage power supply systems", sec. 4.6.

    C. L. Fortescue, "Method of symmetrical co-ordinates applied to the
    solution of polyphase networks," Trans. AIEE, vol. 37, pp. 1027-1140,
    1918.
    """
    a, b, c = (np.asarray(v, dtype=complex) for v in (v_a, v_b, v_c))
    v1 = np.abs(a + _A * b + _A**2 * c) / 3.0
    v2 = np.abs(a + _A**2 * b + _A * c) / 3.0
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(v1 > 0.0, 100.0 * v2 / np.where(v1 > 0.0, v1, 1.0), np.nan)


def stability_index_chakravorty_das(vm_send_pu, p_pu, q_pu, r_pu, x_pu):
    """Chakravorty-Das voltage stability index of a branch's receiving node.

    ``SI = |V1|^4 - 4 (P x - Q r)^2 - 4 (P r + Q x) |V1|^2``. It is the
    discriminant of the receiving-end voltage equation
    ``|V2|^4 - (|V1|^2 - 2 (P r + Q x)) |V2|^2 + (P^2 + Q^2)(r^2 + x^2) = 0``,
    so a solution exists only while ``SI >= 0``; then
    ``|V2|^2 = (|V1|^2 - 2 (P r + Q x) + sqrt(SI)) / 2``. The node with the
    smallest SI is the most sensitive to voltage collapse. All quantities
    are per unit on one base.

    Parameters
    ----------
    vm_send_pu : array_like
        Sending-end voltage magnitude ``|V1|``. [pu]
    p_pu, q_pu : array_like
        Active and reactive power received at the node through the branch:
        all load beyond it plus the losses there, positive = towards the
        node. [pu]
    r_pu, x_pu : array_like
        Series resistance and reactance of the branch. [pu]

    Returns
    -------
    si : ndarray
        Stability index; 1 at no load on a 1 pu feeder, 0 at the collapse
        point. [pu]

    References
    ----------
    M. Chakravorty and D. Das, "Voltage stability analysis of radial
    distribution networks," Int. J. Electrical Power & Energy Systems,
    vol. 23, no. 2, pp. 129-135, 2001, eq. (6).
    """
    v1, p, q, r, x = (np.asarray(value, dtype=float) for value in (vm_send_pu, p_pu, q_pu, r_pu, x_pu))
    return v1**4 - 4.0 * (p * x - q * r) ** 2 - 4.0 * (p * r + q * x) * v1**2


def voltage_stability_index(net: pandapower.pandapowerNet, result: StepResult) -> np.ndarray:
    """Chakravorty-Das stability index of every bus fed by a line.

    Each in-service line whose switches are closed is oriented away from
    the external grid (the end with fewer hops to an ``ext_grid`` bus
    sends). The power it delivers, ``P2 + jQ2 = V2 conj((V1 - V2) / z)``,
    comes from the solved voltages and the line's series impedance ``z``,
    so it is the total load fed through the line plus the losses beyond
    it, as in the load flow of Das et al. used by Chakravorty and Das.
    Lines are per unit on ``net.sn_mva`` and the sending bus's ``vn_kv``;
    line charging is left out of the index, as in the paper.

    Parameters
    ----------
    net : pandapowerNet
        A balanced feeder; meant for radial ones (in a meshed feeder each
        line still gets an index, but a bus fed by two lines keeps the one
        of the line listed last).
    result : StepResult
        Its power-flow result.

    Returns
    -------
    si : ndarray, shape (n_bus,)
        Index of each bus, in ``net.bus`` order; NaN for the slack bus,
        buses fed by a transformer or switch only, and every bus when the
        power flow did not converge. [pu]

    Raises
    ------
    ValueError
        If the net is unbalanced: the index is defined on a single-phase
        equivalent.

    References
    ----------
    M. Chakravorty and D. Das, "Voltage stability analysis of radial
    distribution networks," Int. J. Electrical Power & Energy Systems,
    vol. 23, no. 2, pp. 129-135, 2001.

    D. Das, D. P. Kothari and A. Kalam, "Simple and efficient method for
    load flow solution of radial distribution networks," Int. J. Electrical
    Power & Energy Systems, vol. 17, no. 5, pp. 335-346, 1995.
    """
    if is_unbalanced(net):
        raise ValueError(
            "voltage_stability_index needs a balanced feeder: the Chakravorty-Das index "
            "is defined on a single-phase equivalent"
        )
    si = np.full(len(net.bus), np.nan)
    if not result.converged:
        return si
    graph = pandapower.topology.create_nxgraph(net, respect_switches=True, include_out_of_service=False)
    sources = [int(bus) for bus in net.ext_grid.loc[net.ext_grid["in_service"].astype(bool), "bus"]]
    hops = nx.multi_source_dijkstra_path_length(graph, sources, weight=None)
    lines = net.line[net.line["in_service"].astype(bool)]
    open_line_switches = net.switch[(net.switch["et"] == "l") & ~net.switch["closed"].astype(bool)]["element"]
    lines = lines[~lines.index.isin(open_line_switches)]
    reached = list(hops)
    lines = lines[lines["from_bus"].isin(reached) & lines["to_bus"].isin(reached)]
    if lines.empty:
        return si

    from_hops = lines["from_bus"].map(hops).to_numpy()
    to_hops = lines["to_bus"].map(hops).to_numpy()
    send = np.where(from_hops <= to_hops, lines["from_bus"], lines["to_bus"])
    receive = np.where(from_hops <= to_hops, lines["to_bus"], lines["from_bus"])
    position = net.bus.index.get_indexer
    v = result.vm_pu * np.exp(1j * np.radians(result.va_degree))
    v_send, v_receive = v[position(send)], v[position(receive)]
    z_base = net.bus.loc[send, "vn_kv"].to_numpy() ** 2 / net.sn_mva
    length = lines["length_km"].to_numpy() / lines["parallel"].to_numpy()
    z = (lines["r_ohm_per_km"].to_numpy() + 1j * lines["x_ohm_per_km"].to_numpy()) * length / z_base
    s_receive = v_receive * np.conj((v_send - v_receive) / z)
    si[position(receive)] = stability_index_chakravorty_das(
        np.abs(v_send), s_receive.real, s_receive.imag, z.real, z.imag
    )
    return si


@dataclass(frozen=True)
class StepSummary:
    """Worst values and counts of one power-flow step.

    Bus labels are ``net.bus`` indices; values are NaN and labels -1 when
    the step did not converge or the quantity does not exist.

    Attributes
    ----------
    converged : bool
        Whether the power flow converged.
    vm_min_pu, vm_max_pu : float
        Lowest and highest voltage, over phases on unbalanced feeders. [pu]
    vm_min_bus, vm_max_bus : int
        Where they occur.
    n_bus_under, n_bus_over : int
        Buses with a voltage (any phase) below / above the band.
    vuf_max_percent : float
        Worst voltage unbalance factor; 0 on balanced feeders. [%]
    vuf_max_bus : int
        Where it occurs.
    n_bus_vuf_over : int
        Buses whose unbalance factor exceeds the limit.
    si_min_pu : float
        Lowest Chakravorty-Das stability index; NaN on unbalanced
        feeders. [pu]
    si_min_bus : int
        Where it occurs.
    line_loading_max_percent, trafo_loading_max_percent : float
        Highest line and transformer loading; NaN if there is none. [%]
    n_line_overloaded, n_trafo_overloaded : int
        Lines and transformers above their limit.
    """

    converged: bool
    vm_min_pu: float
    vm_min_bus: int
    vm_max_pu: float
    vm_max_bus: int
    n_bus_under: int
    n_bus_over: int
    vuf_max_percent: float
    vuf_max_bus: int
    n_bus_vuf_over: int
    si_min_pu: float
    si_min_bus: int
    line_loading_max_percent: float
    trafo_loading_max_percent: float
    n_line_overloaded: int
    n_trafo_overloaded: int


def summarize_step(
    net: pandapower.pandapowerNet,
    result: StepResult,
    range: str = "A",
    max_loading_percent: float = 100.0,
    vuf_limit_percent: float = IEC_61000_2_2_VUF_PERCENT,
) -> StepSummary:
    """Apply every check to one power-flow result.

    Voltages are classified per phase with :func:`ansi_c84_1_band`; a bus
    counts once if any phase is outside. Loadings use
    :func:`thermal_overload`, the unbalance factor comes with the result
    (:func:`voltage_unbalance_factor_percent`) and the stability index from
    :func:`voltage_stability_index` on balanced feeders.

    Parameters
    ----------
    net : pandapowerNet
        The feeder the result belongs to.
    result : StepResult
        Output of :meth:`~gridledger.grids.powerflow.PowerFlow.step`.
    range : {"A", "B"}, default "A"
        ANSI C84.1 service-voltage range.
    max_loading_percent : float, default 100
        Thermal limit of lines and transformers. [%]
    vuf_limit_percent : float, default 2
        Allowed voltage unbalance factor. [%]

    Returns
    -------
    summary : StepSummary

    References
    ----------
    See :func:`ansi_c84_1_band`, :func:`thermal_overload`,
    :func:`voltage_unbalance_factor_percent` and
    :func:`voltage_stability_index`.
    """
    bus = net.bus.index.to_numpy()
    if not result.converged:
        return StepSummary(False, np.nan, -1, np.nan, -1, 0, 0, np.nan, -1, 0, np.nan, -1,
                           np.nan, np.nan, 0, 0)
    band = ansi_c84_1_band(result.vm_phase_pu, range=range)
    # fmin/fmax skip NaN phases without warning about all-NaN rows.
    vm_min_bus, vm_min_pu = _arg_extreme(bus, np.fmin.reduce(result.vm_phase_pu, axis=1), np.nanargmin)
    vm_max_bus, vm_max_pu = _arg_extreme(bus, np.fmax.reduce(result.vm_phase_pu, axis=1), np.nanargmax)
    vuf_max_bus, vuf_max_percent = _arg_extreme(bus, result.vuf_percent, np.nanargmax)
    if is_unbalanced(net):
        si_min_bus, si_min_pu = -1, np.nan
    else:
        si_min_bus, si_min_pu = _arg_extreme(bus, voltage_stability_index(net, result), np.nanargmin)
    return StepSummary(
        converged=True,
        vm_min_pu=vm_min_pu,
        vm_min_bus=vm_min_bus,
        vm_max_pu=vm_max_pu,
        vm_max_bus=vm_max_bus,
        n_bus_under=int(band.under.any(axis=1).sum()),
        n_bus_over=int(band.over.any(axis=1).sum()),
        vuf_max_percent=vuf_max_percent,
        vuf_max_bus=vuf_max_bus,
        n_bus_vuf_over=int((result.vuf_percent > vuf_limit_percent).sum()),
        si_min_pu=si_min_pu,
        si_min_bus=si_min_bus,
        line_loading_max_percent=_nanmax(result.loading_percent),
        trafo_loading_max_percent=_nanmax(result.trafo_loading_percent),
        n_line_overloaded=int(thermal_overload(result.loading_percent, max_loading_percent).sum()),
        n_trafo_overloaded=int(thermal_overload(result.trafo_loading_percent, max_loading_percent).sum()),
    )


@dataclass(frozen=True)
class RunSummary:
    """Worst values and counts over the steps of a run.

    A worst value comes with the step (position in the summarized
    sequence) and bus where it occurred; -1 where there is none.

    Attributes
    ----------
    n_steps : int
        Steps summarized.
    n_not_converged : int
        Steps whose power flow did not converge.
    n_steps_voltage_violation : int
        Steps with at least one bus outside the voltage band.
    n_steps_overload : int
        Steps with at least one line or transformer above its limit.
    n_steps_vuf_over : int
        Steps with at least one bus above the unbalance limit.
    vm_min_pu, vm_min_step, vm_min_bus : float, int, int
        Lowest voltage of the run. [pu]
    vm_max_pu, vm_max_step, vm_max_bus : float, int, int
        Highest voltage of the run. [pu]
    vuf_max_percent, vuf_max_step, vuf_max_bus : float, int, int
        Worst unbalance factor of the run. [%]
    si_min_pu, si_min_step, si_min_bus : float, int, int
        Lowest stability index of the run. [pu]
    line_loading_max_percent, trafo_loading_max_percent : float
        Highest loadings of the run. [%]
    """

    n_steps: int
    n_not_converged: int
    n_steps_voltage_violation: int
    n_steps_overload: int
    n_steps_vuf_over: int
    vm_min_pu: float
    vm_min_step: int
    vm_min_bus: int
    vm_max_pu: float
    vm_max_step: int
    vm_max_bus: int
    vuf_max_percent: float
    vuf_max_step: int
    vuf_max_bus: int
    si_min_pu: float
    si_min_step: int
    si_min_bus: int
    line_loading_max_percent: float
    trafo_loading_max_percent: float


def summarize_run(steps: Sequence[StepSummary]) -> RunSummary:
    """Fold step summaries into the worst values and counts of a run.

    Parameters
    ----------
    steps : sequence of StepSummary
        From :func:`summarize_step`, in time order.

    Returns
    -------
    summary : RunSummary
        Worst values over the converged steps; NaN (and -1) if none
        converged.
    """
    def worst(value_name: str, bus_name: str, pick) -> tuple[float, int, int]:
        values = np.array([getattr(s, value_name) for s in steps], dtype=float)
        if not np.isfinite(values).any():
            return np.nan, -1, -1
        step = int(pick(values))
        return float(values[step]), step, int(getattr(steps[step], bus_name))

    vm_min = worst("vm_min_pu", "vm_min_bus", np.nanargmin)
    vm_max = worst("vm_max_pu", "vm_max_bus", np.nanargmax)
    vuf_max = worst("vuf_max_percent", "vuf_max_bus", np.nanargmax)
    si_min = worst("si_min_pu", "si_min_bus", np.nanargmin)
    return RunSummary(
        n_steps=len(steps),
        n_not_converged=sum(not s.converged for s in steps),
        n_steps_voltage_violation=sum(s.n_bus_under + s.n_bus_over > 0 for s in steps),
        n_steps_overload=sum(s.n_line_overloaded + s.n_trafo_overloaded > 0 for s in steps),
        n_steps_vuf_over=sum(s.n_bus_vuf_over > 0 for s in steps),
        vm_min_pu=vm_min[0], vm_min_step=vm_min[1], vm_min_bus=vm_min[2],
        vm_max_pu=vm_max[0], vm_max_step=vm_max[1], vm_max_bus=vm_max[2],
        vuf_max_percent=vuf_max[0], vuf_max_step=vuf_max[1], vuf_max_bus=vuf_max[2],
        si_min_pu=si_min[0], si_min_step=si_min[1], si_min_bus=si_min[2],
        line_loading_max_percent=_nanmax([s.line_loading_max_percent for s in steps]),
        trafo_loading_max_percent=_nanmax([s.trafo_loading_max_percent for s in steps]),
    )


def _arg_extreme(labels: np.ndarray, values: np.ndarray, pick) -> tuple[int, float]:
    if not np.isfinite(values).any():
        return -1, np.nan
    i = int(pick(values))
    return int(labels[i]), float(values[i])


def _nanmax(values) -> float:
    array = np.asarray(values, dtype=float)
    return float(np.nanmax(array)) if np.isfinite(array).any() else np.nan
