"""Study schema of upstream events (``events:``): what the transmission side imposes on the feeder.

An import cap limits what the substation may draw from the external grid
over a window, as an upstream shortage would (issue 15). The grid federate
enforces it in the power flow: whatever the feeder would draw above the
cap is shed by the operator's last-resort rotation of whole load buses
(`gridledger.agents.load_shedding`), recorded per bus and step, never
silently allowed.

=================  ====================================================================================
field              meaning
=================  ====================================================================================
``import_caps``    windows of an import cap, each ``start_s`` and ``end_s`` (study time, the cap holds for
                   every power-flow step that starts in [start_s, end_s)) and ``cap_mw``, the most the
                   substation may import [MW]; windows do not overlap
=================  ====================================================================================
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

    @model_validator(mode="after")
    def _ordered(self) -> "ImportCap":
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        return self


class Events(BaseModel):
    """Upstream events of a study (``events:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    import_caps: list[ImportCap] = []

    @model_validator(mode="after")
    def _apart(self) -> "Events":
        windows = sorted(self.import_caps, key=lambda c: c.start_s)
        for before, after in zip(windows, windows[1:]):
            if after.start_s < before.end_s:
                raise ValueError(f"import_caps: the window from {after.start_s} s overlaps the one "
                                 f"{before.start_s}-{before.end_s} s; windows may not overlap")
        return self

    def cap_mw_at(self, time_s: float) -> float | None:
        """The import cap of the step that starts at `time_s` (study time), None if no window holds it. [MW]"""
        return next((c.cap_mw for c in self.import_caps if c.start_s <= time_s < c.end_s), None)
