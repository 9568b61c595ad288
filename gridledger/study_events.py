"""Study schema of upstream events (``events:``): what the transmission side imposes on the feeder.

An import cap limits what the substation may draw from the external grid
over a window, as an upstream shortage would (issue 15). The grid federate
enforces it in the power flow: whatever the feeder would draw above the
cap is shed by the operator's last-resort rotation of whole load buses
(`gridledger.agents.load_shedding`), recorded per bus and step, never
silently allowed. An island cap opens the substation instead: the feeder
restarts as a microgrid from a contracted grid-forming battery, or stays dark.

A price spike raises the grid buy price of whole market intervals, as an
upstream scarcity price would: the operator announces it to the
Settlement before the market starts (`Settlement.post_price_spike`), which
charges the intervals' imbalances and the replacement of undelivered
sales at it, and the households price their orders with it.

==================  ===================================================================================
field               meaning
==================  ===================================================================================
``import_caps``     windows of an import cap, each ``start_s`` and ``end_s`` (study time, the cap holds for
                    every power-flow step that starts in [start_s, end_s)) and ``cap_mw``, the most the
                    substation may import [MW]; windows do not overlap. ``island: true`` (with ``cap_mw: 0``)
                    opens the substation: the feeder runs as a microgrid from a grid-forming battery the
                    operator contracted as reserve, or is dark (`gridledger.agents.islanding`)
``price_spikes``    windows of a price spike, each ``start_s`` and ``end_s`` (whole market intervals) and
                    ``grid_buy_price_per_kwh``, above ``market.grid_buy_price_per_kwh`` and at most
                    ``market.price_cap_per_kwh`` [token/kWh]; windows do not overlap
==================  ===================================================================================
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridledger.durations import Seconds


class ImportCap(BaseModel):
    """One window of an import cap at the substation."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: Annotated[Seconds, Field(ge=0)]
    end_s: Annotated[Seconds, Field(gt=0)]
    cap_mw: Annotated[float, Field(ge=0.0, le=1e4)]
    island: bool = False

    @model_validator(mode="after")
    def _ordered(self) -> "ImportCap":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        if self.island and self.cap_mw != 0.0:
            raise ValueError(f"island: true opens the substation, so cap_mw must be 0, got {self.cap_mw}")
        return self


class PriceSpike(BaseModel):
    """One window of a grid buy price spike."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_s: Annotated[Seconds, Field(ge=0)]
    end_s: Annotated[Seconds, Field(gt=0)]
    grid_buy_price_per_kwh: Annotated[float, Field(gt=0.0, le=1e3)]

    @model_validator(mode="after")
    def _ordered(self) -> "PriceSpike":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


def _apart(windows: list, what: str) -> None:
    """Raise ValueError naming `what` if two of `windows` (each with start_s and end_s) overlap."""
    ordered = sorted(windows, key=lambda w: w.start_s)
    for before, after in zip(ordered, ordered[1:]):
        if after.start_s < before.end_s:
            raise ValueError(f"{what}: the window from {after.start_s} s overlaps the one "
                             f"{before.start_s}-{before.end_s} s; windows may not overlap")


class Events(BaseModel):
    """Upstream events of a study (``events:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    import_caps: list[ImportCap] = []
    price_spikes: list[PriceSpike] = []

    @model_validator(mode="after")
    def _apart(self) -> "Events":
        _apart(self.import_caps, "import_caps")
        _apart(self.price_spikes, "price_spikes")
        return self

    def spike_prices_per_kwh(self, interval_s: int) -> dict[int, float]:
        """The spiked grid buy price of each market interval a spike covers, by interval index. [token/kWh]"""
        return {k: spike.grid_buy_price_per_kwh for spike in self.price_spikes
                for k in range(spike.start_s // interval_s, spike.end_s // interval_s)}

    def cap_mw_at(self, time_s: float) -> float | None:
        """The import cap of the step that starts at `time_s` (study time), None if no window holds it. [MW]"""
        return next((c.cap_mw for c in self.import_caps if c.start_s <= time_s < c.end_s), None)

    def islanded_at(self, time_s: float) -> bool:
        """Whether the substation is open (an ``island`` cap) over the step that starts at `time_s`."""
        return any(c.island and c.start_s <= time_s < c.end_s for c in self.import_caps)
