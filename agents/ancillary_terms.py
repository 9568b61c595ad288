"""The terms every side of the ancillary services derives alike from the study: who takes part, when, what bonds.

The ledger's desk (`gridledger.agents.ancillary_desk`), the DSO
(`gridledger.agents.dso`), the households (`gridledger.agents.der_agents`)
and the meters (`gridledger.agents.meters`) read these from the same
roster, so they agree without messages:

* the reserve providers (battery owners) and the interruptible loads
  (`gridledger.agents.reserve_offers.interruptible`);
* the offer and enrolment deadline, the gate of interval 1, where the
  windows are awarded;
* the programme's span: from interval 1 to the end of the last cap window;
  its longest event, the longest cap window;
* the bond tokens the operator mints each participant: its bonds at the
  caps for every window (a provider) or one event of the longest length
  (a load).
"""

from __future__ import annotations

import math

import numpy as np

from gridledger.agents.reserve_offers import interruptible
from gridledger.agents.shortage import cap_windows, capped_intervals
from gridledger.contracts.charging_reference import EVRegistration
from gridledger.contracts.flex_reference import bond_wei, energy_wh
from gridledger.roster import Roster
from gridledger.units import PERMILLE, W_PER_KW, WH_PER_KWH, price_wei_per_wh


def battery_rating_kw(sc: Roster) -> np.ndarray:
    """Every household's battery power rating, 0 without one. [kW]"""
    return np.array([p.battery_power_kw if p.battery_energy_kwh > 0 else 0.0 for p in sc.prosumers])


def providers(sc: Roster) -> np.ndarray:
    """The reserve providers: every battery owner, with ``ancillary.reserve``."""
    if sc.study.ancillary.reserve is None:
        return np.array([], dtype=int)
    return np.flatnonzero(battery_rating_kw(sc) > 0)


def interruptible_loads(sc: Roster) -> np.ndarray:
    """The households with an interruptible load, with ``ancillary.load_shed``."""
    spec = sc.study.ancillary.load_shed
    if spec is None:
        return np.array([], dtype=int)
    return interruptible(len(sc.prosumers), battery_rating_kw(sc) > 0, spec.share, sc.study.seed)


def storage_registrations(sc: Roster, accounts: list[str]) -> list[EVRegistration]:
    """The batteries the charging coordination contract registers as storage units, with
    ``reserve.schedule_charging``: per provider its account, the most one session draws from the grid (its capacity
    over the charging efficiency, rounded up) and its rating. [Wh], [W]"""
    if sc.study.ancillary is None or not scheduled_charging(sc):
        return []
    eta = math.sqrt(sc.study.prosumers.battery.efficiency)
    return [EVRegistration(account=accounts[i], capacity_wh=math.ceil(sc.prosumers[i].battery_energy_kwh / eta
                                                                      * WH_PER_KWH),
                           max_charge_w=math.floor(battery_rating_kw(sc)[i] * W_PER_KW))
            for i in providers(sc)]


def scheduled_charging(sc: Roster) -> bool:
    """Whether the batteries charge for their reserve through the charging coordination contract."""
    return sc.study.ancillary.reserve is not None and sc.study.ancillary.reserve.schedule_charging


def offer_deadline_s(sc: Roster) -> int:
    """The windows' offer deadline and the programme's enrolment deadline: the gate of interval 1. [s]"""
    return sc.study.market_interval_s - sc.study.market.gate_closure_s


def programme_span_s(sc: Roster) -> tuple[int, int]:
    """The load shed programme's start (interval 1) and end (the end of the last cap window). [s]"""
    study = sc.study
    return study.market_interval_s, cap_windows(study)[-1][1] * study.market_interval_s


def max_event_s(sc: Roster) -> int:
    """The longest event the programme allows: its longest cap window. [s]"""
    return max(last - first for first, last in cap_windows(sc.study)) * sc.study.market_interval_s


def permille(factor: float) -> int:
    """A penalty factor as the contracts take it. [1/1000]"""
    return round(factor * PERMILLE)


def bond_endowment_wei(sc: Roster) -> dict[int, int]:
    """What the operator mints each participant for its bonds, by household position. [wei]"""
    study, spec = sc.study, sc.study.ancillary
    out: dict[int, int] = {}
    if spec.reserve is not None:
        cap = price_wei_per_wh(spec.reserve.activation_price_cap_per_kwh)
        n_windows = len(capped_intervals(study))
        for i in providers(sc):
            rating_w = math.floor(battery_rating_kw(sc)[i] * W_PER_KW)
            out[int(i)] = n_windows * bond_wei(energy_wh(rating_w, study.market_interval_s), cap,
                                               permille(spec.reserve.penalty_factor))
    if spec.load_shed is not None:
        cap = price_wei_per_wh(spec.load_shed.price_per_kwh_cap)
        shed_w = math.floor(spec.load_shed.shed_kw * W_PER_KW)
        for i in interruptible_loads(sc):
            out[int(i)] = bond_wei(energy_wh(shed_w, max_event_s(sc)), cap, permille(spec.load_shed.penalty_factor))
    return out
