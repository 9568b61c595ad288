"""The agents' devices stepped through a study: load, PV, battery, EV and shiftable appliance.

Per power-flow step the battery follows the agent's cleared position
(`gridledger.agents.prosumer.contract_following_kw`) within its power and
state-of-charge limits (`gridledger.grids.battery`), PV is curtailed by the
flexibility the agent was awarded, the EV fleet charges
(`gridledger.agents.ev_fleet`) and shiftable appliances run where their
owners scheduled them (:func:`flexload_profiles_kw`). With ``ancillary``
(`gridledger.agents.ancillary_duties`) a battery keeps the energy its
reserve awards need, holds the household's net export at its baseline plus
the activated power while activated, and a called interruptible load
switches off. Signs follow
pandapower: load consuming +, PV generating +, battery charging +.
"""

from __future__ import annotations

import numpy as np

from gridledger.agents.ancillary_duties import AncillaryDuties
from gridledger.agents.ev_fleet import EVFleet, ev_owners
from gridledger.agents.prosumer import contract_following_kw, flexload_schedule_kw
from gridledger.grids.battery import battery_step
from gridledger.grids.ev import ev_sessions
from gridledger.grids.flexload import ShiftableLoad
from gridledger.roster import Roster
from gridledger.units import KW_PER_MW, SECONDS_PER_HOUR, seconds_of_day

_FLEXLOAD_OWNER_STREAM = 5_000


def inverter_settings(sc: Roster) -> dict | None:
    """Each PV inverter's rating and the curve points it runs, None for a curve that is off (None if none is on).

    Sent once to the grid federate, which runs the curves inside its power
    flow; ratings: ``s_rated_kva = kva_per_kwp * kWp``, ``p_rated_kw = kWp``.
    """
    inverter = sc.study.prosumers.pv.inverter
    if not (inverter.volt_var or inverter.volt_watt):
        return None
    with_pv = [p for p in sc.prosumers if p.pv_kwp > 0]
    return {"prosumers": [p.name for p in with_pv],
            "s_rated_kva": [inverter.kva_per_kwp * p.pv_kwp for p in with_pv],
            "p_rated_kw": [p.pv_kwp for p in with_pv],
            "volt_var": inverter.volt_var_curve.model_dump() if inverter.volt_var else None,
            "volt_watt": inverter.volt_watt_curve.model_dump() if inverter.volt_watt else None}


def flexload_profiles_kw(sc: Roster) -> np.ndarray:
    """Every prosumer's shiftable-cycle power per step, zero without one or if its window misses the study. [kW]"""
    study = sc.study
    settings = study.prosumers.flexload
    n, steps = len(sc.prosumers), study.n_steps
    out = np.zeros((steps, n))
    owners = np.flatnonzero(np.random.default_rng([study.seed, _FLEXLOAD_OWNER_STREAM]).random(n) < settings.share)
    day_s = seconds_of_day(study.start)
    earliest_s = max(0.0, settings.earliest_h * SECONDS_PER_HOUR - day_s)
    latest_end_s = min(float(study.duration_s), settings.latest_end_h * SECONDS_PER_HOUR - day_s)
    if (latest_end_s - earliest_s) * settings.power_kw < settings.energy_kwh * SECONDS_PER_HOUR:
        return out
    load = ShiftableLoad(settings.energy_kwh, settings.power_kw, earliest_s, latest_end_s)
    load_kw = sc.prosumer_load_mw(expected=True)[0] * KW_PER_MW
    pv_kw = sc.pv_pu_expected * np.array([p.pv_kwp for p in sc.prosumers])
    for i in owners:
        out[:, i] = flexload_schedule_kw(load, load_kw[:, i] - pv_kw[:, i], sc.times_s, study.power_flow_step_s,
                                         study.market.grid_buy_price_per_kwh, study.market.grid_sell_price_per_kwh)
    return out


def ev_fleet(sc: Roster) -> EVFleet:
    """The study's EVs, their sessions timed from the study start's local midnight."""
    study = sc.study
    owners = ev_owners(len(sc.prosumers), study.prosumers.ev.share, study.seed)
    sessions = ev_sessions(len(owners), study.seed, midnight_s=-seconds_of_day(study.start))
    return EVFleet(sessions, owners, np.full(len(owners), study.prosumers.ev.capacity_kwh),
                   study.market_interval_s, study.power_flow_step_s)


class Devices:
    """Every agent's devices and their traces per step, indexed like `Roster.prosumers`. [kW], [kWh]"""

    def __init__(self, sc: Roster):
        study = sc.study
        self.study = study
        load_p_mw, load_q_mvar = sc.prosumer_load_mw()
        self.load_kw = load_p_mw * KW_PER_MW
        self.load_kvar = load_q_mvar * KW_PER_MW
        self.pv_kw = sc.pv_pu * np.array([p.pv_kwp for p in sc.prosumers])
        self.capacity_kwh = np.array([p.battery_energy_kwh for p in sc.prosumers])
        self.battery_kw = np.array([p.battery_power_kw for p in sc.prosumers])
        self.soc_kwh = self.capacity_kwh * study.prosumers.battery.soc_init
        n, steps = len(sc.prosumers), study.n_steps
        self.battery_p_kw = np.full((steps, n), np.nan)
        self.soc_trace_kwh = np.full((steps, n), np.nan)
        self.pv_curtailed_kw = np.full((steps, n), np.nan)
        self.evs = ev_fleet(sc)
        self.ev_kw = np.full((steps, n), np.nan)
        self.flexload_kw = flexload_profiles_kw(sc)
        self.shed_kw = np.zeros((steps, n))
        self.net_export_kw = np.full((steps, n), np.nan)
        self.duties = (AncillaryDuties(n, study.power_flow_step_s, float(np.sqrt(study.prosumers.battery.efficiency)))
                       if study.ancillary is not None else None)
        self.steps_done = 0

    def step(self, step: int, position_wh: np.ndarray, curtail_kw: np.ndarray,
             ev_coordinated: bool) -> dict[str, np.ndarray]:
        """Step every device; the setpoints to publish. [MW], [Mvar]

        Parameters
        ----------
        step : int
            The step, taken in order from 0.
        position_wh : ndarray (prosumer,)
            Each agent's cleared position in the step's interval, positive = sold. [Wh]
        curtail_kw : ndarray (prosumer,)
            PV curtailment each agent was awarded for the interval, at most its PV output. [kW]
        ev_coordinated : bool
            EVs charge as the coordination contract admitted them.
        """
        study = self.study
        battery = study.prosumers.battery
        has = self.capacity_kwh > 0
        curtailed_kw = np.minimum(curtail_kw, self.pv_kw[step])
        self.ev_kw[step] = self.evs.p_kw_by_prosumer(self.evs.step(step, ev_coordinated), len(has))
        request = np.array([contract_following_kw(self.pv_kw[step, i], self.load_kw[step, i], int(position_wh[i]),
                                                  study.market_interval_s)
                            for i in np.flatnonzero(has)])
        soc_min = np.full(int(has.sum()), battery.soc_min)
        load_kw = self.load_kw[step] + self.ev_kw[step] + self.flexload_kw[step]
        if self.duties is not None:
            self.shed_kw[step] = np.minimum(self.duties.shed_kw(step), self.load_kw[step])
            load_kw = load_kw - self.shed_kw[step]
            soc_min = np.minimum(battery.soc_max, battery.soc_min + self.duties.held_kwh(step)[has] / self.capacity_kwh[has])
            hold = self.duties.holding(step)[has]
            soc_min[hold] = np.minimum(battery.soc_max, np.maximum(soc_min[hold],
                                                                  self.soc_kwh[has][hold] / self.capacity_kwh[has][hold]))
            charge_kw = self.duties.charge_kw(step, study.market_interval_s)[has]
            request = np.where(charge_kw > 0, np.maximum(request, charge_kw), request)
            target_kw = self.duties.export_target_kw(step, self.net_export_kw)[has]
            activated = np.isfinite(target_kw)
            request[activated] = (self.pv_kw[step, has] - curtailed_kw[has] - load_kw[has] - target_kw)[activated]
        p_batt_kw = np.zeros(len(has))
        p_batt_kw[has], self.soc_kwh[has] = battery_step(
            self.soc_kwh[has], request, study.power_flow_step_s, self.capacity_kwh[has], self.battery_kw[has],
            battery.efficiency, soc_min, battery.soc_max)
        self.battery_p_kw[step] = p_batt_kw
        self.pv_curtailed_kw[step] = curtailed_kw
        self.soc_trace_kwh[step] = self.soc_kwh
        self.net_export_kw[step] = self.pv_kw[step] - curtailed_kw - load_kw - p_batt_kw
        self.steps_done = step + 1
        return {
            "load_p_mw": load_kw / KW_PER_MW,
            "load_q_mvar": self.load_kvar[step] / KW_PER_MW,
            "pv_p_mw": (self.pv_kw[step] - curtailed_kw) / KW_PER_MW,
            "battery_p_mw": p_batt_kw / KW_PER_MW,
            "pv_curtailed_p_mw": curtailed_kw / KW_PER_MW,
        }

    def formed_island(self, step: int, i: int, battery_p_mw: float) -> None:
        """Book the power prosumer `i`'s battery ran at in `step`, the last step taken, while it ran an islanded
        feeder (`gridledger.agents.islanding`): its share of the island's balance, not the setpoint. [MW]"""
        if step != self.steps_done - 1:
            raise ValueError(f"the island report of step {step} came after step {self.steps_done - 1} was taken")
        battery = self.study.prosumers.battery
        before_kwh = self.soc_trace_kwh[step - 1, i] if step else self.capacity_kwh[i] * battery.soc_init
        p_kw = battery_p_mw * KW_PER_MW
        self.soc_kwh[i] = battery_step(before_kwh, p_kw, self.study.power_flow_step_s, self.capacity_kwh[i],
                                       self.battery_kw[i], battery.efficiency, 0.0, 1.0)[1]
        self.soc_trace_kwh[step, i] = self.soc_kwh[i]
        self.net_export_kw[step, i] += self.battery_p_kw[step, i] - p_kw
        self.battery_p_kw[step, i] = p_kw
