"""Plots of one run's results: matplotlib figures with units on every axis, saved as PNG.

Each plot declares the variables it needs; `available` keeps the plots whose
variables a dataset has (a failed run's partial results, or a run without a
flexibility market, simply get fewer plots). Figures are built with
`matplotlib.figure.Figure`, without pyplot's global state, so they can be
drawn in any thread or Dask worker.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr
from matplotlib.colors import TwoSlopeNorm
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from pandapower.topology import calc_distance_to_bus

from gridledger.data_kpis import exact_magnitude, expected_relative_error
from gridledger.grids.feeders import FeederError, load_feeder
from gridledger.grids.stability import ANSI_C84_1_SERVICE_VOLTAGE_PU
from gridledger.kpis import (
    FLEX_DELIVERED,
    FLEX_REQUESTED,
    WH_PER_KWH,
    baseline_cost,
    buy_prices_per_kwh,
    by_zone,
    in_zone,
    iso_time,
    market_cost,
    over_zones,
    worst_voltage,
)
from gridledger.study import Study
from gridledger.units import KW_PER_MW

FIGSIZE_IN = (8.0, 4.5)
DPI = 100
TIME_LABEL = "time (feeder local time)"
VM_LABEL = "voltage magnitude [pu]"
BUS_LABEL = "bus (as the feeder's paper numbers it)"
BUS_INDEX_LABEL = "bus (pandapower index)"
"""Bus axis label of results without ``bus_label`` (written before results.nc had it, or by a roster run)."""
MAX_BUS_TICKS = 20
"""Most buses named on a bus axis: more would overlap on a feeder of hundreds of buses."""
LONG_BUS_LABEL = 3
"""Longest bus label (characters) written level under an x axis; longer ones ("LV1.101 Bus 5") stand upright."""


@dataclass(frozen=True)
class FeederLayout:
    """Where buses lie along a feeder, for drawing voltage profiles.

    Attributes
    ----------
    distance_km : pandas.Series
        Distance of each bus (pandapower index) from the slack bus along the lines. [km]
    branches : list of (int, int)
        Bus pairs joined by a line or transformer.
    """

    distance_km: pd.Series
    branches: list[tuple[int, int]]


def feeder_layout(study: Study) -> FeederLayout | None:
    """The study's feeder laid out by distance from the substation, or None if the feeder cannot be loaded."""
    try:
        net = load_feeder(study.grid.feeder)
    except FeederError:
        return None
    slack = int(net.ext_grid.bus[net.ext_grid.in_service].iloc[0])
    branches = list(zip(net.line.from_bus.astype(int), net.line.to_bus.astype(int)))
    branches += list(zip(net.trafo.hv_bus.astype(int), net.trafo.lv_bus.astype(int)))
    return FeederLayout(calc_distance_to_bus(net, slack), branches)


def time_axis(ax) -> None:
    """Concise date ticks and the time label on the x axis."""
    locator = AutoDateLocator()
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    ax.set_xlabel(TIME_LABEL)


def bus_names(ds: xr.Dataset) -> tuple[np.ndarray, str]:
    """Each bus of `ds` as a reader knows it and the axis label saying so: the paper's numbers (``bus_label``,
    `gridledger.grids.names.bus_labels`) where results.nc has them, else the pandapower index."""
    if "bus_label" in ds.coords:
        return ds.bus_label.values.astype(str), BUS_LABEL
    return ds.bus.values.astype(str), BUS_INDEX_LABEL


def bus_axis(axis, positions: np.ndarray, ds: xr.Dataset) -> None:
    """Name the buses of `ds`, drawn at `positions` on `axis` (``ax.xaxis`` or ``ax.yaxis``), by `bus_names`: at
    most `MAX_BUS_TICKS` of them, evenly spaced, and the axis label."""
    names, label = bus_names(ds)
    every = max(1, -(-len(positions) // MAX_BUS_TICKS))
    upright = axis.axis_name == "x" and max(map(len, names), default=0) > LONG_BUS_LABEL
    axis.set_ticks(positions[::every], names[::every], rotation=90 if upright else 0)
    axis.set_label_text(label)


def new_figure() -> tuple[Figure, object]:
    """A figure of the standard size with one axes."""
    fig = Figure(figsize=FIGSIZE_IN, dpi=DPI, layout="constrained")
    return fig, fig.add_subplot()


def png_bytes(fig: Figure) -> bytes:
    """The figure as PNG."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", metadata={"Software": None})
    return buffer.getvalue()


def held(starts: np.ndarray, values: np.ndarray, period_s: int) -> tuple[np.ndarray, np.ndarray]:
    """Points for a ``where="post"`` step line that holds each value for `period_s` after its start, the last one too."""
    end = starts[-1:] + np.timedelta64(period_s, "s")
    return np.append(starts, end), np.append(values, values[-1:])


def voltage_heatmap(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Bus voltage over time and bus, coloured around 1 pu with the study limits at the ends of the scale."""
    fig, ax = new_figure()
    vm = ds.vm_pu.transpose("bus", "time")
    limits = study.grid.limits
    norm = TwoSlopeNorm(vcenter=1.0, vmin=min(limits.vm_min_pu, float(vm.min())),
                        vmax=max(limits.vm_max_pu, float(vm.max())))
    positions = np.arange(ds.sizes["bus"])
    mesh = ax.pcolormesh(ds.time.values, positions, vm.values, shading="nearest", cmap="RdBu_r", norm=norm)
    fig.colorbar(mesh, ax=ax, label=VM_LABEL)
    bus_axis(ax.yaxis, positions, ds)
    ax.set_title("Feeder voltage")
    time_axis(ax)
    return fig


def voltage_profile(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Voltage along the feeder at the step with the worst voltage, over the range seen during the run."""
    fig, ax = new_figure()
    _, _, worst_time = worst_voltage(ds.vm_pu)
    at_worst = ds.vm_pu.sel(time=worst_time)
    if layout is None:
        x = pd.Series(np.arange(ds.sizes["bus"], dtype=float), index=ds.bus.values)
        bus_axis(ax.xaxis, x.to_numpy(), ds)
    else:
        x = layout.distance_km
        ax.set_xlabel("distance from substation [km]")
        for a, b in layout.branches:
            ax.plot([x[a], x[b]], [float(at_worst.sel(bus=a)), float(at_worst.sel(bus=b))], color="tab:blue", lw=1)
    xs = x.loc[ds.bus.values].to_numpy()
    ax.vlines(xs, ds.vm_pu.min("time"), ds.vm_pu.max("time"), color="0.8", lw=4, label="range over the run")
    ax.plot(xs, at_worst.values, "o", color="tab:blue", ms=3, label=f"at {iso_time(worst_time, None)}")
    limits = study.grid.limits
    range_b_min_pu, range_b_max_pu = ANSI_C84_1_SERVICE_VOLTAGE_PU["B"]
    for value, style, label in ((limits.vm_min_pu, "--", "study limits"), (limits.vm_max_pu, "--", None),
                                (range_b_min_pu, ":", "ANSI C84.1 Range B"), (range_b_max_pu, ":", None)):
        ax.axhline(value, color="tab:red", ls=style, lw=1, label=label)
    ax.set_ylabel(VM_LABEL)
    ax.set_title("Voltage profile along the feeder at the worst step")
    ax.legend(loc="best", fontsize="small")
    return fig


def market(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Cleared volume (bars) and clearing price (steps, intervals without trade left blank) per interval.

    A sharded run's volume is summed over its zones, with what the zones' coordinator matched between
    them stacked on top; its price is drawn per zone.
    """
    fig, ax = new_figure()
    width_days = study.market_interval_s / 86400.0
    volume_kwh = over_zones(ds.cleared_volume_wh).values / WH_PER_KWH
    ax.bar(ds.interval.values, volume_kwh, width=width_days, align="edge",
           color="tab:green", alpha=0.5, label="cleared volume" if "zone" not in ds.dims else "cleared within zones")
    if "cross_zone_volume_wh" in ds:
        ax.bar(ds.interval.values, ds.cross_zone_volume_wh.values / WH_PER_KWH, bottom=volume_kwh, width=width_days,
               align="edge", color="tab:olive", alpha=0.6, label="cleared across zones")
    ax.set_ylabel("cleared volume [kWh]")
    price_ax = ax.twinx()
    price = ds.clearing_price_per_kwh.where(ds.cleared_volume_wh > 0)
    for zone, zone_price in by_zone(price):
        price_ax.step(*held(ds.interval.values, zone_price.values, study.market_interval_s), where="post",
                      color="tab:purple" if zone is None else None,
                      label="clearing price" if zone is None else f"clearing price, zone {zone}")
    price_ax.axhline(study.market.grid_buy_price_per_kwh, color="0.4", ls="--", lw=1, label="grid buy tariff")
    price_ax.axhline(study.market.grid_sell_price_per_kwh, color="0.4", ls=":", lw=1, label="grid feed-in tariff")
    _finish_price_axis(ax, price_ax, "clearing price [token/kWh]", "Peer-to-peer market per interval")
    return fig


def zone_trades(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Each zone's net export to the other zones per interval (stacked bars) and the coordinator's price (steps)."""
    fig, ax = new_figure()
    width_days = study.market_interval_s / 86400.0
    above = np.zeros(ds.sizes["interval"])
    below = np.zeros(ds.sizes["interval"])
    for zone in ds.zone.values:
        flow_kwh = ds.net_export_wh.sel(zone=zone).values / WH_PER_KWH
        base = np.where(flow_kwh >= 0, above, below)
        ax.bar(ds.interval.values, flow_kwh, bottom=base, width=width_days, align="edge", label=f"zone {zone}")
        above, below = above + np.clip(flow_kwh, 0, None), below + np.clip(flow_kwh, None, 0)
    ax.axhline(0.0, color="0.3", lw=0.8)
    ax.set_ylabel("net export to other zones [kWh]")
    price_ax = ax.twinx()
    price_ax.step(*held(ds.interval.values, ds.coordinator_price_per_kwh.values, study.market_interval_s),
                  where="post", color="black", label="coordinator price")
    _finish_price_axis(ax, price_ax, "coordinator price [token/kWh]",
                       "Trades between zones per interval (market.sharding: per-zone)")
    return fig


def audit(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Normalized residuals of the meter-intervals the auditor flagged (attacked or not) and the feeder's energy balance."""
    fig, ax = new_figure()
    width_days = study.market_interval_s / 86400.0
    balance_ax = ax.twinx()
    balance_ax.bar(ds.interval.values, ds.energy_balance_wh.values / WH_PER_KWH, width=width_days, align="edge",
                   color="0.85", label="energy balance (substation - losses - meters)")
    balance_ax.set_ylabel("energy balance [kWh]")
    flagged = ds.audit_flagged.values.astype(bool)
    attacked = ds.attack_kind.values >= 0 if "attack_kind" in ds else np.zeros_like(flagged)
    times = np.broadcast_to(ds.interval.values[:, np.newaxis], flagged.shape)
    for mask, colour, label in ((flagged & attacked, "tab:red", "flagged, attacked"),
                                (flagged & ~attacked, "tab:blue", "flagged, not attacked")):
        ax.scatter(times[mask], ds.audit_rn.values[mask], s=12, color=colour, label=label, zorder=3)
    ax.axhline(study.audit.rn_threshold, color="0.3", ls="--", lw=1, label="rN threshold")
    ax.set_ylabel("normalized residual rN [1]")
    ax.set_ylim(bottom=0)
    ax.set_zorder(balance_ax.get_zorder() + 1)
    ax.patch.set_visible(False)
    handles = ax.get_legend_handles_labels()[0] + balance_ax.get_legend_handles_labels()[0]
    ax.legend(handles=handles, loc="upper left", fontsize="small")
    ax.set_title("Meter audit per interval (WLS state estimation, largest normalized residual)")
    time_axis(ax)
    return fig


def _finish_price_axis(ax, price_ax, ylabel: str, title: str) -> None:
    """A price axis from 0 beside the energy axis `ax`, one legend for both, the title and the time axis."""
    price_ax.set_ylabel(ylabel)
    price_ax.set_ylim(bottom=0)
    handles = ax.get_legend_handles_labels()[0] + price_ax.get_legend_handles_labels()[0]
    price_ax.legend(handles=handles, loc="upper left", fontsize="small")
    ax.set_title(title)
    time_axis(ax)


def prosumer_cost(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Distribution of prosumers' net cost with the market and at grid tariffs only."""
    fig, ax = new_figure()
    with_market = market_cost(ds).values
    baseline = baseline_cost(ds, buy_prices_per_kwh(ds, study), study.market.grid_sell_price_per_kwh).values
    bins = np.histogram_bin_edges(np.concatenate([with_market, baseline]), bins=min(20, max(5, len(baseline))))
    ax.hist(baseline, bins=bins, histtype="step", lw=2, color="0.4", label="grid only (baseline)")
    ax.hist(with_market, bins=bins, histtype="stepfilled", alpha=0.5, color="tab:green", label="with market")
    ax.set_xlabel("net cost over the run [token] (positive = pays)")
    ax.set_ylabel("prosumers [count]")
    ax.set_title("Prosumer net cost")
    ax.legend(fontsize="small")
    return fig


def feeder_load_mw(ds: xr.Dataset) -> xr.DataArray:
    """What the substation served the buses in each step: their summed net load, the substation import less the
    feeder's losses. [MW]"""
    return ds.p_mw.sum("bus")


def without_der_mw(ds: xr.Dataset) -> xr.DataArray:
    """Feeder load as if prosumers had no PV and no battery: `feeder_load_mw` plus PV minus charging. [MW]

    Losses are excluded, as in `feeder_load_mw`: without DER the power flow
    would differ and so would the losses, which the run did not solve.
    """
    return feeder_load_mw(ds) + ds.pv_p_mw.sum("prosumer") - ds.battery_p_mw.sum("prosumer")


def substation_import(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Load served at the substation with DER and market against the load without DER, both without feeder losses."""
    fig, ax = new_figure()
    step_s = study.power_flow_step_s
    ax.step(*held(ds.time.values, feeder_load_mw(ds).values, step_s), where="post",
            label="with DER and market: substation import less losses")
    ax.step(*held(ds.time.values, without_der_mw(ds).values, step_s), where="post", color="0.4", ls="--",
            label="baseline: load without PV and batteries")
    ax.axhline(0.0, color="0.7", lw=0.8)
    ax.set_ylabel("active power [MW] (positive = import)")
    ax.set_title("Load served at the substation, feeder losses excluded")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def flexibility(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Flexibility energy requested by the operator and delivered, per interval."""
    fig, ax = new_figure()
    width_days = study.market_interval_s / 86400.0
    ax.bar(ds.interval.values, ds[FLEX_REQUESTED].values / WH_PER_KWH, width=width_days, align="edge",
           color="0.6", label="requested")
    ax.bar(ds.interval.values, ds[FLEX_DELIVERED].values / WH_PER_KWH, width=width_days * 0.6, align="edge",
           color="tab:orange", label="delivered")
    ax.set_ylabel("flexibility energy [kWh]")
    ax.set_title("Flexibility requests and deliveries")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def zone_vm_max_pu(ds: xr.Dataset) -> xr.DataArray:
    """Highest measured voltage on each interval's flexibility zone (NaN without a request). [pu]"""
    per_interval = ds.vm_pu.coarsen(time=ds.sizes["time"] // ds.sizes["interval"]).max()
    per_interval = per_interval.rename(time="interval").assign_coords(interval=ds.interval.values)
    return per_interval.where(ds.flex_zone == 1).max("bus")


def flex_voltage(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Closed loop: the operator's forecast peak voltage without flexibility and the measured zone peak with it."""
    fig, ax = new_figure()
    ax.step(ds.interval.values, ds.flex_vm_forecast_pu.values, where="post", color="0.5",
            label="forecast peak, no flexibility")
    ax.step(ds.interval.values, zone_vm_max_pu(ds).values, where="post", color="tab:blue",
            label="measured zone peak, with flexibility")
    ax.axhline(study.grid.limits.vm_max_pu, color="tab:red", linestyle="--", label="vm_max_pu")
    ax.set_ylabel("voltage [pu]")
    ax.set_title("Voltage before and after the flexibility market")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def ev_charging(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """EV charging power and the substation transformer's loading."""
    fig, ax = new_figure()
    ax.plot(ds.time.values, ds.ev_p_mw.sum("prosumer").values * KW_PER_MW, color="tab:green", label="EV charging")
    ax.set_ylabel("EV charging [kW]")
    twin = ax.twinx()
    twin.plot(ds.time.values, ds.trafo_loading_percent.max("trafo").values, color="tab:purple",
              label="transformer loading")
    twin.set_ylabel("transformer loading [%]")
    ax.set_title("EV charging and transformer loading")
    ax.legend(loc="upper left", fontsize="small")
    twin.legend(loc="upper right", fontsize="small")
    time_axis(ax)
    return fig


def data_accuracy(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Accuracy of the released data aggregates against epsilon: expected relative error (lines) and this run's (dots)."""
    fig, ax = new_figure()
    epsilons = np.logspace(-2, 3, 61)
    magnitude = exact_magnitude(ds)
    for i, query in enumerate(study.data_access.queries):
        if query.epsilon is None:
            continue
        line, = ax.loglog(epsilons, expected_relative_error(ds.data_sensitivity.values[i], magnitude[i], epsilons),
                          label=f"{query.query}" + (f" (clip {query.clip_kw:g} kW)" if query.clip_kw else ""))
        error = np.nanmean(np.abs(ds.data_released_answer.values[i] - ds.data_exact_answer.values[i])) / magnitude[i]
        ax.scatter([query.epsilon], [error], color=line.get_color(), zorder=3,
                   label="this run's release" if i == 0 else None)
    ax.axhline(0.1, color="0.5", ls=":", lw=1, label="10 % error")
    ax.set_xlabel("epsilon, the privacy loss [1]")
    ax.set_ylabel("relative error [1]")
    ax.set_title("Laplace mechanism: accuracy against epsilon")
    ax.legend(fontsize="small")
    return fig


def shortage(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Under an import cap: the substation import against the cap, and the load the rotation left unserved; while
    islanded, what the batteries delivered into the island."""
    fig, ax = new_figure()
    step_s = study.power_flow_step_s
    ax.step(*held(ds.time.values, ds.substation_p_mw.values * KW_PER_MW, step_s), where="post",
            label="substation import")
    ax.step(*held(ds.time.values, ds.import_cap_mw.values * KW_PER_MW, step_s), where="post", color="tab:red",
            ls="--", label="import cap")
    ax.fill_between(*held(ds.time.values, ds.unserved_p_mw.sum("bus", min_count=1).values * KW_PER_MW, step_s),
                    step="post", color="tab:orange", alpha=0.5, label="unserved load (rotation)")
    if "islanded" in ds:
        times, islanded = held(ds.time.values, ds.islanded.values.astype(float), step_s)
        island_kw = -(ds.battery_p_mw.where(ds.grid_forming.any("prosumer")).sum("prosumer", min_count=1).values
                      * KW_PER_MW)
        ax.step(*held(ds.time.values, island_kw, step_s), where="post", color="tab:green",
                label="batteries into the island")
        ax.fill_between(times, 0, 1, where=islanded > 0, step="post", color="0.85", alpha=0.6,
                        transform=ax.get_xaxis_transform(), label="substation open (islanded)")
    ax.set_ylabel("active power [kW]")
    ax.set_title("Import cap, substation import and unserved load")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def reserve(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Reserve per window: capacity asked for, awarded, activated, and delivered as mean power over the interval."""
    fig, ax = new_figure()
    width_days = study.market_interval_s / 86400.0
    delivered_kw = ds.reserve_delivered_wh.values / (study.market_interval_s / 3600.0) / 1000.0
    for values, share, color, label in ((ds.reserve_capacity_kw.values, 1.0, "0.8", "asked for"),
                                        (ds.reserve_awarded_kw.values, 0.75, "0.5", "awarded"),
                                        (ds.reserve_activated_kw.values, 0.5, "tab:blue", "activated"),
                                        (delivered_kw, 0.25, "tab:green", "delivered (mean over the interval)")):
        ax.bar(ds.interval.values, values, width=width_days * share, align="edge", color=color, label=label)
    ax.set_ylabel("reserve [kW]")
    ax.set_title("Operating reserve: procured, activated, delivered")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


def shed_per_bus(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """Unserved energy per load bus (the rotation's cuts) and interruptible load shed on call, per bus."""
    fig, ax = new_figure()
    step_h = study.power_flow_step_s / 3600.0
    unserved_kwh = ds.unserved_p_mw.sum("time").values * step_h * KW_PER_MW
    positions = np.arange(len(ds.bus))
    ax.bar(positions, unserved_kwh, color="tab:orange", label="cut by the rotation")
    if "shed_p_mw" in ds:
        called = ds.shed_p_mw.sum("time") * step_h * KW_PER_MW
        heights = pd.Series(called.values).groupby(ds.prosumer_bus.values).sum().reindex(ds.bus.values, fill_value=0)
        ax.bar(positions, heights.values, bottom=unserved_kwh, color="tab:purple", label="shed on call")
    bus_axis(ax.xaxis, positions, ds)
    ax.set_ylabel("energy [kWh]")
    ax.set_title("Load shed per bus")
    ax.legend(fontsize="small")
    return fig


def battery_soc(ds: xr.Dataset, study: Study, layout: FeederLayout | None) -> Figure:
    """The batteries' summed state of charge, with the capped steps shaded."""
    fig, ax = new_figure()
    ax.plot(ds.time.values, ds.soc_kwh.sum("prosumer").values, color="tab:green", label="batteries' charge")
    capped = ds.import_cap_mw.notnull().values
    top = float(ds.soc_kwh.sum("prosumer").max())
    ax.fill_between(ds.time.values, 0, top, where=capped, step="post", color="tab:red", alpha=0.1,
                    label="import capped")
    ax.set_ylabel("state of charge [kWh]")
    ax.set_title("Batteries' state of charge")
    ax.legend(fontsize="small")
    time_axis(ax)
    return fig


@dataclass(frozen=True)
class Plot:
    """A plot, the results variables it needs and the function that draws it."""

    name: str
    needs: tuple[str, ...]
    draw: Callable[[xr.Dataset, Study, FeederLayout | None], Figure]


PLOTS = (
    Plot("voltage_heatmap", ("vm_pu",), voltage_heatmap),
    Plot("voltage_profile", ("vm_pu",), voltage_profile),
    Plot("market", ("clearing_price_per_kwh", "cleared_volume_wh"), market),
    Plot("zone_trades", ("net_export_wh", "coordinator_price_per_kwh"), zone_trades),
    Plot("prosumer_cost", ("meter_import_wh", "meter_export_wh", "fee_token", "p2p_token", "imbalance_token"),
         prosumer_cost),
    Plot("substation_import", ("p_mw", "pv_p_mw", "battery_p_mw"), substation_import),
    Plot("flexibility", (FLEX_REQUESTED, FLEX_DELIVERED), flexibility),
    Plot("flex_voltage", ("flex_vm_forecast_pu", "flex_zone", "vm_pu"), flex_voltage),
    Plot("ev_charging", ("ev_p_mw", "trafo_loading_percent"), ev_charging),
    Plot("shortage", ("import_cap_mw", "unserved_p_mw", "substation_p_mw"), shortage),
    Plot("reserve", ("reserve_capacity_kw", "reserve_awarded_kw", "reserve_activated_kw", "reserve_delivered_wh"),
         reserve),
    Plot("shed_per_bus", ("unserved_p_mw", "import_cap_mw"), shed_per_bus),
    Plot("battery_soc", ("soc_kwh", "import_cap_mw"), battery_soc),
    Plot("audit", ("audit_flagged", "audit_rn", "energy_balance_wh"), audit),
    Plot("data_accuracy", ("data_sensitivity", "data_exact_answer", "data_released_answer"), data_accuracy),
)
"""Every plot of a run report, in report order."""


def available(ds: xr.Dataset) -> list[Plot]:
    """The plots whose variables the dataset has, with at least one value that is not NaN."""
    return [p for p in PLOTS if all(v in ds and bool(ds[v].notnull().any()) for v in p.needs)]


def local_times(ds: xr.Dataset) -> xr.Dataset:
    """`ds` with ``time`` and ``interval`` in feeder local time, as the plots label them: results of a study that
    names its ``time_zone`` keep them in UTC (`gridledger.results`), others already in local time (and a run that
    recorded nothing, killed before its first step, has neither)."""
    zone = ds["time"].attrs.get("time_zone") if "time" in ds.coords else None
    if zone is None:
        return ds
    local = {name: in_zone(ds[name].values, zone).tz_localize(None) for name in ("time", "interval")
             if name in ds.coords}
    return ds.assign_coords({name: (name, values, ds[name].attrs) for name, values in local.items()})


def draw_all(ds: xr.Dataset, study: Study) -> dict[str, bytes]:
    """PNG of every available plot, by plot name, on feeder local time."""
    layout = feeder_layout(study)
    ds = local_times(ds)
    return {plot.name: png_bytes(plot.draw(ds, study, layout)) for plot in available(ds)}
