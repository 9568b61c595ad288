"""Key performance indicators of a run, computed from its results dataset (line ratings included).

Costs are in tokens, positive = the prosumer pays. The grid-only baseline
prices each interval's metered import at the grid buy tariff and its export
at the grid sell (feed-in) tariff, the bill a prosumer would have without the
peer-to-peer market. Wall-clock time is not a KPI (it would break
byte-identical KPIs for the same seed); the CLI writes it to ``run.json``.

Substation import (``peak_import_mw``, ``energy_import_mwh``) is metered at
the external grid and includes the feeder's losses. Voltage violations come
in one family per band, each with the same three measures
(``<band>_violation_bus_steps``, ``_share``, ``_hours``): ``study_band``
(the study's ``grid.limits``), ``range_a`` and ``range_b`` (ANSI C84.1); a
bus counts when any of its phases is outside. Line loading is measured
against each line's thermal rating; on a feeder whose lines have none
(`gridledger.grids.ratings.unrated_lines`) the loading KPIs are null, shown
as `NOT_RATED`, and ``loading_note`` says why.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from gridledger.agents.load_shedding import TOLERANCE_MW
from gridledger.audit_kpis import audit_kpis
from gridledger.data_kpis import data_kpis
from gridledger.grids.ratings import UNRATED_MAX_I_KA, unrated_lines
from gridledger.grids.voltage_band import ansi_c84_1_band
from gridledger.units import KW_PER_MW, SECONDS_PER_HOUR, WH_PER_KWH


FLEX_REQUESTED = "flex_requested_wh"
"""Variable (interval) of flexibility energy requested by the operator. [Wh]"""
FLEX_DELIVERED = "flex_delivered_wh"
"""Variable (interval) of flexibility energy delivered and verified from meters. [Wh]"""
FLEX_PAYMENT = "flex_payment_token"
"""Variable (interval) of what the operator paid for delivered flexibility. [token]"""
KPI_TIME = ("ISO 8601: the study's local time with its UTC offset when it names its time_zone, else feeder local "
            "time without an offset")
"""How kpis.json writes a time (`iso_time`)."""
GAIN_TOLERANCE_TOKEN = 1e-6
"""A saving at or below the KPIs' rounding is floating-point noise from summing
wei as float tokens, not a gain. [token]"""
NO_FLEXIBILITY_MARKET = "no flexibility market in this run: results.nc has no flex_* variables"
NOT_RATED = "not rated"
"""How report, compare and regress show a loading KPI of a feeder without line ratings (null in kpis.json)."""
RATED_KPIS = ("max_loading_percent", "overload_line_steps")
"""KPIs that measure lines against their thermal rating: null when no line has one."""


DESCRIPTIONS = {
    "study": "study name",
    "seed": "random seed of profiles, placement and chain accounts",
    "mechanism": "market mechanism (market.mechanism)",
    "steps": "power-flow steps",
    "intervals": "market intervals",
    "prosumers": "prosumer agents",
    "energy_traded_kwh": "energy matched peer to peer, within zones and across them [kWh]",
    "energy_traded_across_zones_kwh": "energy the coordinator matched between zones (market.sharding: per-zone) [kWh]",
    "mean_clearing_price_per_kwh": "mean clearing price over intervals that traded [token/kWh]",
    "cost_total_token": "net cost of all prosumers with the market, positive = paid [token]",
    "baseline_cost_total_token": "net cost of all prosumers at grid tariffs only [token]",
    "saving_total_token": "baseline cost minus market cost, all prosumers [token]",
    "cost_per_prosumer_token": "net cost per prosumer with the market [token]",
    "baseline_cost_per_prosumer_token": "net cost per prosumer at grid tariffs only [token]",
    "saving_per_prosumer_token": "baseline cost minus market cost per prosumer [token]",
    "share_of_prosumers_gaining": "share of prosumers whose market cost is below baseline by more than 1e-6 token [1]",
    "unpaid_total_token": "imbalance payments prosumers left unpaid beyond their credit line [token]",
    "unpaid_to_prosumers_token": "imbalance payments the operator left unpaid to prosumers [token]",
    "debtors": "prosumers that left an imbalance payment unpaid in some interval",
    "peak_import_mw": "highest substation import, feeder losses included [MW]",
    "peak_import_time": f"time of the highest substation import, {KPI_TIME}",
    "energy_import_mwh": "energy imported at the substation, feeder losses included [MWh]",
    "losses_mwh": "feeder losses [MWh]",
    "self_sufficiency": "share of prosumer load not imported by the prosumer community [1]",
    "min_vm_pu": "lowest bus voltage [pu]",
    "max_vm_pu": "highest bus voltage [pu]",
    "worst_vm_pu": "bus voltage farthest from 1 pu [pu]",
    "worst_vm_bus": "bus of the worst voltage, pandapower index (from 0)",
    "worst_vm_bus_label": "bus of the worst voltage as the feeder's paper numbers it (bus_label in results.nc)",
    "worst_vm_time": f"time of the worst voltage, {KPI_TIME}",
    "lines_rated": "whether every line has a thermal rating (max_i_ka); loading KPIs cover the rated lines only",
    "loading_note": "which lines have no thermal rating, and what the loading KPIs cover",
    "max_loading_percent": "highest loading of a rated line; not rated (null) when no line has a rating [%]",
    "overload_line_steps": "line-steps of rated lines above grid.limits.max_loading_percent; not rated (null) when no "
                           "line has a rating",
    "study_band_violation_bus_steps": "bus-steps outside the study's band grid.limits (vm_min_pu-vm_max_pu, any "
                                      "phase); the same as range_a_violation_bus_steps under the default limits "
                                      "0.95-1.05 pu",
    "study_band_violation_share": "share of bus-steps outside the study's band grid.limits; the same as "
                                  "range_a_violation_share under the default limits [1]",
    "study_band_violation_hours": "time with any bus outside the study's band grid.limits; the same as "
                                  "range_a_violation_hours under the default limits [h]",
    "range_a_violation_bus_steps": "bus-steps outside ANSI C84.1 Range A (114-126 V of 120 V = 0.95-1.05 pu, any "
                                   "phase)",
    "range_a_violation_share": "share of bus-steps outside ANSI C84.1 Range A [1]",
    "range_a_violation_hours": "time with any bus outside ANSI C84.1 Range A [h]",
    "range_b_violation_bus_steps": "bus-steps outside ANSI C84.1 Range B (110-127 V of 120 V = 0.9167-1.0583 pu, any "
                                   "phase)",
    "range_b_violation_share": "share of bus-steps outside ANSI C84.1 Range B [1]",
    "range_b_violation_hours": "time with any bus outside ANSI C84.1 Range B [h]",
    "nonconverged_steps": "power-flow steps that did not converge",
    "unserved_energy_kwh": "load the last-resort rotation cut under the import cap (events.import_caps) [kWh]",
    "bus_cut_steps": "load buses cut by the rotation, summed over steps [bus-steps]",
    "import_cap_exceeded_steps": "capped steps whose import stayed above the cap after the rotation (all cut)",
    "islanded_steps": "steps with the substation open (an island cap)",
    "dark_steps": "islanded steps without a grid-forming battery: no voltage on the feeder",
    "island_battery_energy_kwh": "net energy the batteries delivered while the feeder ran islanded [kWh]",
    "ancillary": "reserve (capacity asked, awarded, activated, delivered [kWh], paid, penalties [token]), load shed "
                 "(enrolled [kW], called, delivered [kWh], paid, penalties [token]) and paid per kWh delivered "
                 "[token/kWh]",
    "flexibility_procured_kwh": "flexibility energy delivered to the operator [kWh]",
    "flexibility_cost_token": "what the operator paid for flexibility [token]",
    "flexibility_note": "why the flexibility KPIs are zero",
    "max_trafo_loading_percent": "highest transformer loading [%]",
    "evs": "electric vehicles",
    "evs_reaching_target": "EVs whose battery got its energy by departure",
    "ev_energy_kwh": "energy charged into EV batteries [kWh]",
    "gas_used": "gas of all market and settlement transactions [gas]",
    "gas_used_per_interval_mean": "mean gas per market interval [gas]",
    "gas_used_per_interval_max": "highest gas in one market interval [gas]",
    "transactions": "transactions submitted",
    "transactions_per_interval_mean": "mean transactions per market interval",
    "transactions_per_interval_max": "most transactions in one market interval",
    "transactions_reverted": "transactions reverted or rejected",
    "token_supply_conserved": "token supply after the run equals the endowments",
}
"""What each KPI in kpis.json means, with its unit."""


def is_not_rated(name: str, value) -> bool:
    """Whether a KPI value is a loading KPI left null because no line has a thermal rating (shown `NOT_RATED`)."""
    return value is None and name in RATED_KPIS


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def _per_prosumer(values: xr.DataArray) -> dict[str, float]:
    return {str(p): _round(v) for p, v in zip(values.prosumer.values, values.values)}


def buy_prices_per_kwh(ds: xr.Dataset, study) -> xr.DataArray:
    """The grid buy price of every interval: the tariff, or its price spike (``events.price_spikes``). [token/kWh]"""
    return xr.DataArray([study.grid_buy_price_per_kwh(k) for k in range(ds.sizes["interval"])], dims="interval")


def baseline_cost(ds: xr.Dataset, buy_per_kwh: float | xr.DataArray, sell_per_kwh: float) -> xr.DataArray:
    """Grid-only cost per prosumer from metered energy; `buy_per_kwh` may vary by interval. [token]"""
    imp = ds.meter_import_wh.where(ds.meter_import_wh >= 0, 0) / WH_PER_KWH
    exp = ds.meter_export_wh.where(ds.meter_export_wh >= 0, 0) / WH_PER_KWH
    return (buy_per_kwh * imp - sell_per_kwh * exp).sum("interval")


def market_cost(ds: xr.Dataset) -> xr.DataArray:
    """Cost per prosumer with the market: fees paid minus peer-to-peer and imbalance receipts. [token]"""
    return (ds.fee_token - ds.p2p_token - ds.imbalance_token).sum("interval")


def unpaid(ds: xr.Dataset) -> dict:
    """Imbalance left unpaid (``unpaid_token``, positive = by the prosumer): totals both ways and the debtors."""
    by_prosumer = ds.unpaid_token.clip(min=0).sum("interval")
    return {"unpaid_total_token": _round(by_prosumer.sum()),
            "unpaid_to_prosumers_token": _round((-ds.unpaid_token).clip(min=0).sum()),
            "debtors": int((by_prosumer > 0).sum())}


def self_sufficiency(export_mw: xr.DataArray, load_p_mw: xr.DataArray) -> float:
    """Share of the prosumers' consumption that the prosumer community covers itself.

    The community imports whatever its summed net export lacks in a step;
    battery charging from the grid counts as import.

    Parameters
    ----------
    export_mw : xarray.DataArray (time, prosumer)
        Net export at each prosumer's meter. [MW]
    load_p_mw : xarray.DataArray (time, prosumer)
        Prosumer consumption. [MW]

    Returns
    -------
    float
        ``1 - sum_t max(0, -sum_p export) / sum_t sum_p load``; 0 when there
        is no load. [1]

    References
    ----------
    R. Luthander, J. Widén, D. Nilsson, J. Palm, "Photovoltaic
    self-consumption in buildings: A review," Applied Energy 142 (2015)
    80-94, eq. (2), applied to the community's aggregate meter.
    """
    load = float(load_p_mw.sum())
    if load <= 0.0:
        return 0.0
    community_import = float((-export_mw.sum("prosumer")).clip(min=0).sum())
    return 1.0 - community_import / load


def violation_hours(violation: xr.DataArray, step_h: float) -> float:
    """Time during which at least one bus is flagged in `violation` (time, bus). [h]"""
    return float(violation.any("bus").sum()) * step_h


def ansi_violation(vm_pu: xr.DataArray, ansi_range: str) -> xr.DataArray:
    """Where voltages (time, bus[, phase]) lie outside ANSI C84.1 service Range ``"A"`` or ``"B"``, per (time, bus):
    any phase outside counts; NaN is not a violation."""
    outside = vm_pu.copy(data=ansi_c84_1_band(vm_pu.values, ansi_range).violation)
    return outside.any("phase") if "phase" in outside.dims else outside


def violation_kpis(band: str, violation: xr.DataArray, step_h: float) -> dict:
    """``<band>_violation_bus_steps``, ``_share`` [1] and ``_hours`` [h] of a (time, bus) violation mask."""
    bus_steps = int(violation.sum())
    return {f"{band}_violation_bus_steps": bus_steps,
            f"{band}_violation_share": _round(bus_steps / violation.size) if violation.size else 0.0,
            f"{band}_violation_hours": _round(violation_hours(violation, step_h))}


def voltage_band_kpis(ds: xr.Dataset, step_h: float) -> dict:
    """The ``<band>_violation_*`` KPIs of each band: ``study_band`` (results' ``voltage_violation``, the study's
    ``grid.limits``), ``range_a`` and ``range_b`` (ANSI C84.1, from the phase voltages where the results have them)."""
    vm = ds.vm_phase_pu if "vm_phase_pu" in ds else ds.vm_pu
    kpis = {}
    for band, violation in (("study_band", ds.voltage_violation), ("range_a", ansi_violation(vm, "A")),
                            ("range_b", ansi_violation(vm, "B"))):
        kpis.update(violation_kpis(band, violation, step_h))
    return kpis


def rated_lines(ds: xr.Dataset) -> xr.DataArray:
    """Whether each line of the results has a thermal rating (`gridledger.grids.ratings.unrated_lines` of the
    ``line_max_i_ka`` the grid recorded)."""
    return xr.DataArray(~unrated_lines(ds.line_max_i_ka.to_numpy()), coords={"line": ds.line.values}, dims="line")


def loading_kpis(ds: xr.Dataset, rated: xr.DataArray) -> dict:
    """Highest loading and overloaded line-steps of the `rated` lines; null (`NOT_RATED`) without any, with
    ``loading_note`` saying which lines have no rating."""
    kpis = {"lines_rated": bool(rated.all())}
    if rated.any():
        kpis.update(max_loading_percent=_round(ds.loading_percent.where(rated).max()),
                    overload_line_steps=int(ds.overload.where(rated, 0).sum()))
    else:
        kpis.update(dict.fromkeys(RATED_KPIS))
    if not kpis["lines_rated"]:
        n_unrated = int((~rated).sum())
        covered = f"cover the {rated.size - n_unrated} rated lines only" if rated.any() else f"are {NOT_RATED}"
        kpis["loading_note"] = (f"{n_unrated} of {rated.size} lines have no thermal rating (max_i_ka missing, not "
                                f"positive or at least {UNRATED_MAX_I_KA:g} kA, such as the 99999 kA pandapower's "
                                f"MATPOWER converter gives an unlimited branch): {' and '.join(RATED_KPIS)} {covered}")
    return kpis


def worst_voltage(vm_pu: xr.DataArray) -> tuple[float, int, np.datetime64]:
    """Voltage farthest from 1 pu [pu], its bus (pandapower index) and its time (NaN steps skipped)."""
    deviation = abs(vm_pu - 1.0).fillna(-1.0)
    where = deviation.argmax(...)
    value = vm_pu.isel(where)
    return float(value), int(value.bus), value.time.values


def in_zone(utc_times, time_zone: str) -> pd.DatetimeIndex:
    """Times results.nc keeps in UTC (a study that names its ``time_zone``, `gridledger.results.time_origin`) as
    local times of the IANA zone `time_zone`, each with its UTC offset."""
    return pd.DatetimeIndex(utc_times).tz_localize("UTC").tz_convert(time_zone)


def iso_time(time: np.datetime64, time_zone: str | None) -> str:
    """A time of results.nc as kpis.json writes it (`KPI_TIME`), to the second.

    With `time_zone` (the study's, results.nc then holds UTC) the local time
    with its UTC offset, ``2024-06-21T10:00:00+02:00``; without, the time as
    recorded, feeder local time of an unknown offset, ``2024-06-21T10:00:00``.
    """
    if time_zone is None:
        return np.datetime_as_string(np.datetime64(time, "s"))
    return in_zone([time], time_zone)[0].isoformat(timespec="seconds")


def flexibility(ds: xr.Dataset) -> dict:
    """Flexibility delivered and paid for, or zeros with a note when the run had no flexibility market."""
    if FLEX_DELIVERED not in ds or FLEX_PAYMENT not in ds:
        return {"flexibility_procured_kwh": 0.0, "flexibility_cost_token": 0.0,
                "flexibility_note": NO_FLEXIBILITY_MARKET}
    return {"flexibility_procured_kwh": _round(ds[FLEX_DELIVERED].sum() / WH_PER_KWH),
            "flexibility_cost_token": _round(ds[FLEX_PAYMENT].sum())}


def ev_kpis(ds: xr.Dataset) -> dict:
    """Transformer peak and EV outcomes, for runs that have them."""
    out = {}
    if "trafo_loading_percent" in ds:
        out["max_trafo_loading_percent"] = _round(ds.trafo_loading_percent.max())
    if "ev_energy_delivered_kwh" in ds:
        reached = np.abs(ds.ev_energy_delivered_kwh - ds.ev_energy_needed_kwh) <= 1e-6
        out.update(evs=int(ds.sizes["ev"]), evs_reaching_target=int(reached.sum()),
                   ev_energy_kwh=_round(ds.ev_energy_delivered_kwh.sum()))
    return out


def two_phase_kpis(ds: xr.Dataset) -> dict:
    """``two_phase``: bilateral trades proposed, prepared, committed and rolled back over the run, and what the
    committed ones paid their sellers [token]; trades still open at the end are neither."""
    if "two_phase_proposed" not in ds:
        return {}
    counts = {kind: int(ds[f"two_phase_{kind}"].sum()) for kind in ("proposed", "prepared", "committed", "rolled_back")}
    return {"two_phase": {**counts, "open_at_end": counts["proposed"] - counts["committed"] - counts["rolled_back"],
                          "paid_token": _round(ds.two_phase_paid_token.sum())}}


def shedding_kpis(ds: xr.Dataset, step_h: float) -> dict:
    """Under an import cap: the energy the rotation left unserved [kWh], the bus-steps it cut, and the capped steps
    still above the cap (every bus cut, or a power flow that did not converge); under an island cap also the steps
    islanded, those dark, and the net energy the batteries delivered while it ran islanded [kWh]."""
    if "import_cap_mw" not in ds:
        return {}
    above = (ds.substation_p_mw > ds.import_cap_mw + TOLERANCE_MW) | (ds.import_cap_mw.notnull()
                                                                      & ds.substation_p_mw.isnull())
    kpis = {"unserved_energy_kwh": _round(float(ds.unserved_p_mw.sum()) * step_h * KW_PER_MW),
            "bus_cut_steps": int(ds.bus_cut.sum()), "import_cap_exceeded_steps": int(above.sum())}
    if "islanded" in ds:
        formed = ds.grid_forming.any("prosumer")
        kpis.update(islanded_steps=int(ds.islanded.sum()), dark_steps=int(((ds.islanded == 1) & ~formed).sum()),
                    island_battery_energy_kwh=_round(0.0 - float(ds.battery_p_mw.where(formed).sum()) * step_h * KW_PER_MW))
    return kpis


def ancillary_kpis(ds: xr.Dataset) -> dict:
    """``ancillary``: reserve asked for, awarded, activated and delivered, load shed called and delivered, what the
    operator paid and the penalties, and the cost per kWh delivered by both."""
    block = {}
    if "reserve_awarded_kw" in ds:
        hours = _interval_hours(ds)
        block["reserve"] = {
            "capacity_kwh": _round(float(ds.reserve_capacity_kw.sum()) * hours),
            "awarded_kwh": _round(float(ds.reserve_awarded_kw.sum()) * hours),
            "activated_kwh": _round(ds.reserve_activated_wh.sum() / WH_PER_KWH),
            "delivered_kwh": _round(ds.reserve_delivered_wh.sum() / WH_PER_KWH),
            "paid_token": _round(ds.reserve_payment_token.sum()),
            "penalties_token": _round(ds.reserve_penalty_token.sum())}
    if "shed_called_wh" in ds:
        block["load_shed"] = {
            "enrolled_kw": _round(ds.shed_enrolled_kw.sum()),
            "called_kwh": _round(ds.shed_called_wh.sum() / WH_PER_KWH),
            "delivered_kwh": _round(ds.shed_delivered_wh.sum() / WH_PER_KWH),
            "paid_token": _round(ds.shed_payment_token.sum()),
            "penalties_token": _round(ds.shed_penalty_token.sum())}
    if not block:
        return {}
    delivered = sum(b["delivered_kwh"] for b in block.values())
    paid = sum(b["paid_token"] for b in block.values())
    block["cost_per_delivered_kwh_token"] = _round(paid / delivered) if delivered else None
    return {"ancillary": block}


def _interval_hours(ds: xr.Dataset) -> float:
    """Length of a market interval, from the time axis and the number of intervals. [h]"""
    step_h = float((ds.time[1] - ds.time[0]) / np.timedelta64(1, "h"))
    return step_h * ds.sizes["time"] / ds.sizes["interval"]


def pseudonyms_kpis(ds: xr.Dataset) -> dict:
    """``pseudonyms``: tickets bought, pseudonyms registered and relayed registrations refused over the run, and the
    intervals traded (registered for)."""
    if "pseudonyms_registered" not in ds:
        return {}
    registered = ds.pseudonyms_registered.values
    return {"pseudonyms": {"tickets": int(ds.pseudonym_tickets.sum()), "registered": int(registered.sum()),
                           "refused": int(ds.pseudonym_registrations_refused.sum()),
                           "intervals_traded": int((registered > 0).sum())}}


def source_choice_kpis(ds: xr.Dataset) -> dict:
    """``source_choice``: what buyers that chose PV asked for and got, against everybody else's purchases.

    Per group (``choosers``: prosumer-intervals whose choice held; ``others``):
    the energy bought peer to peer and imported, its PV part and the PV
    share; per chooser the same over the run. [kWh], [1]
    """
    if "chose_pv" not in ds:
        return {}
    chose = ds.chose_pv.values.astype(bool)
    bought_wh, pv_wh = ds.p2p_bought_wh.values, ds.consumed_pv_wh.values

    def got(mask: np.ndarray) -> dict:
        bought = float(bought_wh[mask].sum())
        return {"bought_kwh": _round(bought / WH_PER_KWH), "pv_kwh": _round(float(pv_wh[mask].sum()) / WH_PER_KWH),
                "pv_share": _round(float(pv_wh[mask].sum()) / bought) if bought else None}

    by_buyer = {}
    for i in np.flatnonzero(chose.any(axis=0)):
        mine = np.zeros_like(chose)
        mine[:, i] = chose[:, i]
        by_buyer[str(ds.prosumer.values[i])] = {"asked": "pv", **got(mine)}
    return {"source_choice": {"choosers": got(chose), "others": got(~chose), "by_buyer": by_buyer,
                              "pv_sold_kwh": _round(float(ds.sold_pv_wh.values.sum()) / WH_PER_KWH)}}


def share_gaining(saving_token: xr.DataArray) -> float:
    """Share of prosumers whose saving exceeds `GAIN_TOLERANCE_TOKEN` (0 without prosumers). [1]"""
    return _round(float((saving_token > GAIN_TOLERANCE_TOKEN).mean())) if saving_token.size else 0.0


def over_zones(per_interval: xr.DataArray) -> xr.DataArray:
    """A per-interval quantity summed over the zone ledgers of a sharded run (``zone`` dimension); else itself."""
    return per_interval.sum("zone") if "zone" in per_interval.dims else per_interval


def by_zone(per_interval: xr.DataArray) -> list[tuple[str | None, xr.DataArray]]:
    """(zone, series) of each zone ledger of a sharded run (``zone`` dimension); else [(None, the series)]."""
    if "zone" not in per_interval.dims:
        return [(None, per_interval)]
    return [(str(zone), per_interval.sel(zone=zone)) for zone in per_interval.zone.values]


def across_zones_wh(ds: xr.Dataset) -> float:
    """Energy the zones' coordinator matched between zones over the run; 0 without one. [Wh]"""
    return float(ds.cross_zone_volume_wh.sum()) if "cross_zone_volume_wh" in ds else 0.0


def compute_kpis(ds: xr.Dataset, study) -> dict:
    """The run's KPIs as a JSON-ready dict (floats rounded to 1e-6 so output is stable)."""
    step_h = study.power_flow_step_s / SECONDS_PER_HOUR
    market = study.market
    baseline = baseline_cost(ds, buy_prices_per_kwh(ds, study), market.grid_sell_price_per_kwh)
    cost = market_cost(ds)
    saving = baseline - cost
    peak = int(ds.substation_p_mw.fillna(-np.inf).argmax("time"))
    worst_vm, worst_bus, worst_time = worst_voltage(ds.vm_pu)
    traded = ds.cleared_volume_wh > 0
    return {
        "study": study.name,
        "seed": study.seed,
        "mechanism": market.mechanism,
        "steps": int(ds.sizes["time"]),
        "intervals": int(ds.sizes["interval"]),
        "prosumers": int(ds.sizes["prosumer"]),
        "energy_traded_kwh": _round((ds.cleared_volume_wh.sum() + across_zones_wh(ds)) / WH_PER_KWH),
        **({"energy_traded_across_zones_kwh": _round(across_zones_wh(ds) / WH_PER_KWH)}
           if "cross_zone_volume_wh" in ds else {}),
        "mean_clearing_price_per_kwh": _round(
            ds.clearing_price_per_kwh.where(traded).mean()) if bool(traded.any()) else None,
        "cost_total_token": _round(cost.sum()),
        "baseline_cost_total_token": _round(baseline.sum()),
        "saving_total_token": _round(saving.sum()),
        "cost_per_prosumer_token": _per_prosumer(cost),
        "baseline_cost_per_prosumer_token": _per_prosumer(baseline),
        "saving_per_prosumer_token": _per_prosumer(saving),
        "share_of_prosumers_gaining": share_gaining(saving),
        **unpaid(ds),
        "peak_import_mw": _round(ds.substation_p_mw.isel(time=peak)),
        "peak_import_time": iso_time(ds.time.values[peak], study.time_zone),
        "energy_import_mwh": _round((ds.substation_p_mw.clip(min=0) * step_h).sum()),
        "losses_mwh": _round((ds.pl_mw * step_h).sum()),
        "self_sufficiency": _round(self_sufficiency(ds.export_mw, ds.load_p_mw)),
        "min_vm_pu": _round(ds.vm_pu.min()),
        "max_vm_pu": _round(ds.vm_pu.max()),
        "worst_vm_pu": _round(worst_vm),
        "worst_vm_bus": worst_bus,
        "worst_vm_bus_label": (str(ds.bus_label.sel(bus=worst_bus).values) if "bus_label" in ds.coords
                               else str(worst_bus)),
        "worst_vm_time": iso_time(worst_time, study.time_zone),
        **loading_kpis(ds, rated_lines(ds)),
        **voltage_band_kpis(ds, step_h),
        "nonconverged_steps": int((ds.converged == 0).sum()),
        **shedding_kpis(ds, step_h),
        **flexibility(ds),
        **ev_kpis(ds),
        **source_choice_kpis(ds),
        **two_phase_kpis(ds),
        **pseudonyms_kpis(ds),
        **ancillary_kpis(ds),
        "gas_used": int(ds.gas_used.sum()),
        "gas_used_per_interval_mean": _round(over_zones(ds.gas_used).mean()),
        "gas_used_per_interval_max": int(over_zones(ds.gas_used).max()),
        "transactions": int(ds.transactions.sum()),
        "transactions_per_interval_mean": _round(over_zones(ds.transactions).mean()),
        "transactions_per_interval_max": int(over_zones(ds.transactions).max()),
        "transactions_reverted": int(ds.transactions_reverted.sum()),
        "token_supply_conserved": bool(ds.attrs.get("ledger_token_supply_conserved", 0)),
        **audit_kpis(ds, study),
        **data_kpis(ds, study),
    }
