"""Key performance indicators of a run, computed from its results dataset only.

Costs are in tokens, positive = the prosumer pays. The grid-only baseline
prices each interval's metered import at the grid buy tariff and its export
at the grid sell (feed-in) tariff, the bill a prosumer would have without the
peer-to-peer market. Wall-clock time is not a KPI (it would break
byte-identical KPIs for the same seed); the launcher reports it.
"""

from __future__ import annotations

import numpy as np
import xarray as xr

WH_PER_KWH = 1000.0


def _round(value: float, digits: int = 6) -> float:
    return float(round(float(value), digits))


def baseline_cost(ds: xr.Dataset, buy_per_kwh: float, sell_per_kwh: float) -> xr.DataArray:
    """Grid-only cost per prosumer from metered energy. [token]"""
    imp = ds.meter_import_wh.where(ds.meter_import_wh >= 0, 0) / WH_PER_KWH
    exp = ds.meter_export_wh.where(ds.meter_export_wh >= 0, 0) / WH_PER_KWH
    return (buy_per_kwh * imp - sell_per_kwh * exp).sum("interval")


def market_cost(ds: xr.Dataset) -> xr.DataArray:
    """Cost per prosumer with the market: fees paid minus peer-to-peer and imbalance receipts. [token]"""
    return (ds.fee_token - ds.p2p_token - ds.imbalance_token).sum("interval")


def compute_kpis(ds: xr.Dataset, study) -> dict:
    """The run's KPIs as a JSON-ready dict (floats rounded to 1e-6 so output is stable)."""
    step_h = study.power_flow_step_s / 3600.0
    market = study.market
    baseline = baseline_cost(ds, market.grid_buy_price_per_kwh, market.grid_sell_price_per_kwh)
    cost = market_cost(ds)
    saving = baseline - cost
    peak = int(ds.substation_p_mw.fillna(-np.inf).argmax("time"))
    n_bus_steps = int(ds.voltage_violation.size)
    return {
        "study": study.name,
        "seed": study.seed,
        "steps": int(ds.sizes["time"]),
        "intervals": int(ds.sizes["interval"]),
        "prosumers": int(ds.sizes["prosumer"]),
        "energy_traded_kwh": _round(ds.cleared_volume_wh.sum() / WH_PER_KWH),
        "mean_clearing_price_per_kwh": _round(
            ds.clearing_price_per_kwh.where(ds.cleared_volume_wh > 0).mean()) if bool((ds.cleared_volume_wh > 0).any()) else None,
        "cost_total_token": _round(cost.sum()),
        "baseline_cost_total_token": _round(baseline.sum()),
        "saving_total_token": _round(saving.sum()),
        "saving_per_prosumer_token": {str(p): _round(v) for p, v in zip(ds.prosumer.values, saving.values)},
        "share_of_prosumers_gaining": _round(float((saving > 0).mean())) if saving.size else 0.0,
        "peak_import_mw": _round(ds.substation_p_mw.isel(time=peak)),
        "peak_import_time": str(ds.time.values[peak])[:19],
        "energy_import_mwh": _round((ds.substation_p_mw.clip(min=0) * step_h).sum()),
        "losses_mwh": _round((ds.pl_mw * step_h).sum()),
        "min_vm_pu": _round(ds.vm_pu.min()),
        "max_vm_pu": _round(ds.vm_pu.max()),
        "max_loading_percent": _round(ds.loading_percent.max()),
        "voltage_violation_bus_steps": int(ds.voltage_violation.sum()),
        "voltage_violation_share": _round(int(ds.voltage_violation.sum()) / n_bus_steps) if n_bus_steps else 0.0,
        "overload_line_steps": int(ds.overload.sum()),
        "nonconverged_steps": int((ds.converged == 0).sum()),
        "gas_used": int(ds.gas_used.sum()),
        "transactions": int(ds.transactions.sum()),
        "transactions_reverted": int(ds.transactions_reverted.sum()),
        "token_supply_conserved": bool(ds.attrs.get("ledger_token_supply_conserved", 0)),
    }
