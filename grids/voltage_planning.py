"""The operator's voltage-regulation planning: forecast, sensitivities, request size.

For the next market interval the operator (DSO) solves the feeder at each
power-flow step with the prosumers' expected load and PV, finds the highest
voltage, and, if it is above ``vm_max_pu - margin_pu``, asks for enough
injection reduction to bring it down. How much a kW at bus j lowers the
voltage at the critical bus m is the sensitivity dV_m/dP_j, found by
perturbation: one extra power flow per candidate bus with ``delta_kw``
more injection, warm-started from the forecast. Over the small changes
involved the voltage rise is close to linear in the injections
(Carvalho et al. 2008), so the required reduction is

    P_req = safety * (V_m - V_target) / s_eff,

with s_eff the capacity-weighted mean sensitivity of the zone: the
candidate buses whose sensitivity is at least ``zone_share`` of the
largest. The voltage-regulation contract then awards the cheapest offers
per unit of voltage change first (price / sensitivity).

References
----------
P. M. S. Carvalho, P. F. Correia, L. A. F. M. Ferreira, "Distributed
reactive power generation control for voltage rise mitigation in
distribution networks", IEEE Trans. Power Systems 23(2):766-772, 2008.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.units import KW_PER_MW

UPU_PER_PU = 1_000_000
"""Micro-per-unit per per-unit: the contract's integer unit of voltage change."""


@dataclass(frozen=True)
class FlexPlan:
    """A flexibility request the operator posts for one interval.

    Attributes
    ----------
    zone_buses : tuple of int
        Buses (``net.bus`` index) whose DERs may offer.
    sensitivities_upu_per_kw : tuple of int
        Voltage drop at ``monitor_bus`` per kW less injection at each zone bus. [1e-6 pu/kW]
    p_kw : float
        Injection reduction requested. [kW]
    vm_forecast_pu : float
        Highest forecast voltage without flexibility. [pu]
    monitor_bus : int
        Bus of that voltage.
    """

    zone_buses: tuple[int, ...]
    sensitivities_upu_per_kw: tuple[int, ...]
    p_kw: float
    vm_forecast_pu: float
    monitor_bus: int


def forecast_peak(pf: PowerFlow, steps: list[Injections]) -> tuple[float, int, int]:
    """Highest voltage over the forecast steps: (vm_pu, bus position, step position).

    Non-converged steps are skipped; (nan, -1, -1) if none converged.
    """
    best = (float("nan"), -1, -1)
    for k, inj in enumerate(steps):
        vm = pf.step(inj).vm_pu
        if np.all(np.isnan(vm)):
            continue
        pos = int(np.nanargmax(vm))
        if np.isnan(best[0]) or vm[pos] > best[0]:
            best = (float(vm[pos]), pos, k)
    return best


def sensitivities_upu_per_kw(pf: PowerFlow, inj: Injections, sgen_rows: list[int], monitor_pos: int,
                             delta_kw: float = 10.0) -> np.ndarray:
    """Voltage rise at the monitored bus per kW more injection at each sgen's bus. [1e-6 pu/kW]

    Parameters
    ----------
    pf : PowerFlow
        The feeder.
    inj : Injections
        The operating point (the forecast step with the highest voltage).
    sgen_rows : list of int
        Positions in ``net.sgen`` of the candidate injections.
    monitor_pos : int
        Position in ``net.bus`` of the monitored bus.
    delta_kw : float
        Perturbation. [kW]
    """
    base = pf.step(inj).vm_pu[monitor_pos]
    out = np.zeros(len(sgen_rows))
    for i, row in enumerate(sgen_rows):
        sgen_p_mw = inj.sgen_p_mw.copy()
        sgen_p_mw[row] += delta_kw / KW_PER_MW
        out[i] = (pf.step(replace(inj, sgen_p_mw=sgen_p_mw)).vm_pu[monitor_pos] - base) / delta_kw * UPU_PER_PU
    return out


def plan_request(vm_forecast_pu: float, monitor_bus: int, buses: list[int], sensitivities: np.ndarray,
                 capacity_kw: np.ndarray, vm_max_pu: float, margin_pu: float, safety_factor: float,
                 zone_share: float = 0.5) -> FlexPlan | None:
    """Size the request that brings the forecast peak voltage to ``vm_max_pu - margin_pu``.

    Parameters
    ----------
    vm_forecast_pu : float
        Highest forecast voltage. [pu]
    monitor_bus : int
        Its bus.
    buses : list of int
        Candidate DER buses.
    sensitivities : ndarray
        Voltage rise at the monitored bus per kW at each candidate. [1e-6 pu/kW]
    capacity_kw : ndarray
        Injection each candidate could give up (its expected PV output). [kW]
    vm_max_pu, margin_pu : float
        Upper voltage limit and the margin kept below it. [pu]
    safety_factor : float
        Multiplier on the linear estimate (>= 1).
    zone_share : float
        Candidates with at least this share of the largest sensitivity form the zone.

    Returns
    -------
    FlexPlan or None
        None when no reduction is needed or no candidate can give any.
    """
    excess_pu = vm_forecast_pu - (vm_max_pu - margin_pu)
    useful = (capacity_kw > 0) & (sensitivities > 0)
    if not excess_pu > 0 or not useful.any():
        return None
    zone = useful & (sensitivities >= zone_share * sensitivities[useful].max())
    weights = capacity_kw[zone]
    s_eff_pu_per_kw = float(np.sum(weights * sensitivities[zone]) / np.sum(weights)) / UPU_PER_PU
    p_kw = min(float(weights.sum()), safety_factor * excess_pu / s_eff_pu_per_kw)
    chosen = np.flatnonzero(zone)
    return FlexPlan(
        zone_buses=tuple(int(buses[i]) for i in chosen),
        sensitivities_upu_per_kw=tuple(max(1, int(round(sensitivities[i]))) for i in chosen),
        p_kw=p_kw,
        vm_forecast_pu=vm_forecast_pu,
        monitor_bus=monitor_bus,
    )
