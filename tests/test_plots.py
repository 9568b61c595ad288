"""Plots' bus axes: buses named as the feeder's paper numbers them, on small hand-made results."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from gridledger.plots import (
    BUS_INDEX_LABEL,
    BUS_LABEL,
    MAX_BUS_TICKS,
    shed_per_bus,
    voltage_heatmap,
    voltage_profile,
)
from gridledger.study import Study

N_BUS = 33
"""Buses of case33bw, pandapower indices 0-32, Baran and Wu's buses 1-33."""
TIMES = pd.date_range("2024-06-21T10:00", periods=4, freq="5min").values
BUS_AXES = ((voltage_heatmap, "yaxis"), (voltage_profile, "xaxis"), (shed_per_bus, "xaxis"))
"""Each plot with a bus axis, and which axis it is."""


def feeder_results(bus: np.ndarray, labels: list[str] | None) -> xr.Dataset:
    """Four steps of voltages sagging along the feeder, a rotation cutting every bus and two prosumers shedding load;
    with `labels` as ``bus_label`` (and ``prosumer_bus_label``) when given, as results.nc of a feeder has them."""
    vm_pu = 1.0 - 0.002 * np.arange(len(bus)) * np.linspace(1.0, 2.0, len(TIMES))[:, np.newaxis]
    coords = {"time": TIMES, "bus": bus, "prosumer": ["p0", "p1"], "prosumer_bus": ("prosumer", bus[[5, 17]])}
    if labels is not None:
        coords |= {"bus_label": ("bus", np.array(labels, dtype=object)),
                   "prosumer_bus_label": ("prosumer", np.array(labels, dtype=object)[[5, 17]])}
    return xr.Dataset({"vm_pu": (("time", "bus"), vm_pu),
                       "unserved_p_mw": (("time", "bus"), np.full((len(TIMES), len(bus)), 0.001)),
                       "import_cap_mw": ("time", np.full(len(TIMES), 0.2)),
                       "shed_p_mw": (("time", "prosumer"), np.full((len(TIMES), 2), 0.002))}, coords=coords)


def bus_ticks(fig, axis_name: str) -> tuple[np.ndarray, list[str], str]:
    """Tick positions, tick labels and axis label of the plot's bus axis."""
    axis = getattr(fig.axes[0], axis_name)
    return axis.get_ticklocs(), [t.get_text() for t in axis.get_ticklabels()], axis.get_label_text()


@pytest.mark.parametrize(("draw", "axis_name"), BUS_AXES)
def test_bus_axes_name_buses_as_baran_and_wu_number_them(draw, axis_name):
    ds = feeder_results(np.arange(N_BUS), [str(i + 1) for i in range(N_BUS)])
    positions, labels, axis_label = bus_ticks(draw(ds, Study(name="plots"), None), axis_name)
    assert labels == [str(i) for i in range(1, N_BUS + 1, 2)]                         # every other bus of 33
    assert positions.tolist() == list(range(0, N_BUS, 2))
    assert axis_label == BUS_LABEL and "pandapower index" not in axis_label


@pytest.mark.parametrize(("draw", "axis_name"), BUS_AXES)
def test_bus_axes_fall_back_to_the_pandapower_index_without_bus_labels(draw, axis_name):
    ds = feeder_results(np.arange(N_BUS), None)
    _, labels, axis_label = bus_ticks(draw(ds, Study(name="plots"), None), axis_name)
    assert labels == [str(i) for i in range(0, N_BUS, 2)]
    assert axis_label == BUS_INDEX_LABEL


@pytest.mark.parametrize(("draw", "axis_name"), BUS_AXES)
def test_bus_axes_of_a_large_feeder_name_at_most_twenty_buses(draw, axis_name):
    bus = np.arange(906)
    ds = feeder_results(bus, [f"LV bus {i + 1}" for i in bus])
    _, labels, _ = bus_ticks(draw(ds, Study(name="plots"), None), axis_name)
    assert len(labels) <= MAX_BUS_TICKS and labels[0] == "LV bus 1"


def test_heatmap_rows_sit_at_their_labels_on_a_feeder_with_gaps_in_its_indices():
    bus = np.arange(N_BUS) * 3 + 100
    ds = feeder_results(bus, [f"Bus {i}" for i in bus])
    ax = voltage_heatmap(ds, Study(name="plots"), None).axes[0]
    rows = ax.collections[0].get_array().reshape(N_BUS, len(TIMES))
    for position, label in zip(ax.get_yticks(), ax.get_yticklabels()):
        at_label = ds.vm_pu.where(ds.bus_label == label.get_text(), drop=True).squeeze("bus")
        np.testing.assert_allclose(rows[int(position)], at_label.values)


def test_shed_bars_sit_at_the_prosumers_bus_labels():
    ds = feeder_results(np.arange(N_BUS), [str(i + 1) for i in range(N_BUS)])
    ax = shed_per_bus(ds, Study(name="plots"), None).axes[0]
    shed = ax.containers[1]
    tall = [int(round(bar.get_x() + bar.get_width() / 2)) for bar in shed if bar.get_height() > 0]
    assert [str(ds.bus_label.values[i]) for i in tall] == ds.prosumer_bus_label.values.tolist() == ["6", "18"]
