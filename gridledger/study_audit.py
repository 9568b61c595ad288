"""Study schema of auditing: the operator's grid sensors and auditor (``audit:``) and meter attacks (``attacks:``).

``audit:`` turns the auditor on (`gridledger.agents.auditor`): per market
interval it estimates the feeder's state from the grid sensors and the
meter readings and flags the meters the bad-data tests single out.
``attacks:`` lists what tampered meters and DERs do, as ground truth the
auditor's flags are scored against; the auditor never reads it.

Every attack entry names its ``kind``, whom it hits (``prosumers`` by name,
or a seeded ``share`` of them), when (``start_s`` to ``end_s``, seconds
since study start, whole market intervals that start inside the window)
and its size in the one field its kind uses:

=====================  ==========================================================  ===================
kind                   what happens                                                size field
=====================  ==========================================================  ===================
over-report-export     the meter adds energy to its export register                ``fraction_of_rating``
under-report-import    the meter hides part of its import register (theft)         ``fraction``
bypass                 load connected around the meter: it flows in the power      ``fraction_of_rating``
                       flow, the meter does not see it
replay                 the meter re-posts the reading of ``intervals`` earlier     ``intervals``
foreign-key            the reading is signed by a key that is not the bound meter  (none)
impossible-pv          the PV register reads ``factor`` x what the kWp and the     ``factor``
                       irradiance allow (the export follows)
fake-flexibility       a DER's meter reports ``fraction`` of its award delivered   ``fraction``
                       on top of what it measured (voltage-regulation market)
delay                  the reading arrives ``intervals`` later                     ``intervals``
=====================  ==========================================================  ===================

``fraction_of_rating`` is of the prosumer's meter rating x the market
interval (the energy a full-rating hour would meter, scaled to the interval).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridledger.durations import Seconds

ATTACK_KINDS = ("over-report-export", "under-report-import", "bypass", "replay", "foreign-key", "impossible-pv",
                "fake-flexibility", "delay")
SIZE_FIELD = {
    "over-report-export": "fraction_of_rating",
    "under-report-import": "fraction",
    "bypass": "fraction_of_rating",
    "replay": "intervals",
    "foreign-key": None,
    "impossible-pv": "factor",
    "fake-flexibility": "fraction",
    "delay": "intervals",
}
"""The one size field each attack kind uses (None: the kind has no size)."""
SIZE_FIELDS = ("fraction_of_rating", "fraction", "intervals", "factor")


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Attack(_Strict):
    """One attack: its kind, whom it hits, when, and its size (see the module's table)."""

    kind: Literal[ATTACK_KINDS]
    prosumers: list[Annotated[str, Field(pattern=r"^p[0-9]+$")]] | None = None
    share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    start_s: Annotated[Seconds, Field(ge=0)] = 0
    end_s: Annotated[Seconds, Field(gt=0)] | None = None
    fraction_of_rating: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    fraction: Annotated[float, Field(gt=0.0, le=1.0)] | None = None
    intervals: Annotated[int, Field(ge=1, le=96)] | None = None
    factor: Annotated[float, Field(gt=1.0, le=100.0)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "Attack":
        if (self.prosumers is None) == (self.share is None):
            raise ValueError("give exactly one of prosumers (a list of names such as p01) and share (0 to 1]")
        if self.end_s is not None and self.end_s <= self.start_s:
            raise ValueError(f"end_s ({self.end_s}) must be after start_s ({self.start_s})")
        needed = SIZE_FIELD[self.kind]
        for name in SIZE_FIELDS:
            given = getattr(self, name) is not None
            if name == needed and not given:
                raise ValueError(f"kind {self.kind!r} needs {name}")
            if name != needed and given:
                uses = f"uses {needed}" if needed else "has no size field"
                raise ValueError(f"kind {self.kind!r} {uses}, not {name}")
        return self


class Sensors(_Strict):
    """The operator's own measurements, independent of customer meters, each with a Gaussian noise σ.

    The substation (P, Q at the feeder head and V at its bus) is always
    measured; ``lines`` adds µPMU-like P and Q flow sensors at the from
    side of the listed lines (``all``: every line in service), ``buses`` voltage
    sensors. Sensors report the interval's mean.
    """

    substation_sigma_p_kw: Annotated[float, Field(gt=0.0, le=1e4)] = 5.0
    substation_sigma_q_kvar: Annotated[float, Field(gt=0.0, le=1e4)] = 5.0
    substation_sigma_vm_pu: Annotated[float, Field(gt=0.0, le=0.1)] = 0.002
    lines: list[Annotated[int, Field(ge=0)]] | Literal["all"] = []
    line_sigma_p_kw: Annotated[float, Field(gt=0.0, le=1e4)] = 0.5
    line_sigma_q_kvar: Annotated[float, Field(gt=0.0, le=1e4)] = 0.5
    buses: list[Annotated[int, Field(ge=0)]] | Literal["all"] = []
    bus_sigma_vm_pu: Annotated[float, Field(gt=0.0, le=0.1)] = 0.001


MAX_WINDOW_S = 30 * 86400
"""Longest flag or dispute window: ``Audit.MAX_WINDOW_S``. [s]"""
MAX_ISOLATE_N = 32
"""Longest isolation look-back: ``Audit.MAX_ISOLATE_N``. [intervals]"""


class Audit(_Strict):
    """The auditor and its contract: sensors, the meters' accuracy, the bad-data tests' thresholds
    (`gridledger.grids.estimation`), and the ``Audit`` contract's windows, isolation rule and penalty.

    A reading can be flagged for ``flag_window_s`` after its posting (by
    default two market intervals: the auditor checks a reading after its
    block and its flag is mined at the next, so late readings are waited
    for only as long as a longer window leaves room). A flagged reading's
    credit is held; a flag not disputed within
    ``dispute_window_s`` is confirmed (the overpaid part goes back to the
    operator, the penalty to the penalty pool). A meter flagged in
    ``isolate_k`` of the last ``isolate_n`` intervals is isolated: its
    readings are refused and the auditor settles its intervals from its
    estimates.
    """

    sensors: Sensors = Sensors()
    meter_sigma_percent: Annotated[float, Field(gt=0.0, le=20.0)] = 1.0
    chi2_alpha: Annotated[float, Field(gt=0.0, lt=0.5)] = 0.01
    rn_threshold: Annotated[float, Field(ge=2.0, le=20.0)] = 4.0
    flag_window_s: Annotated[Seconds, Field(ge=1, le=MAX_WINDOW_S)] | None = None
    dispute_window_s: Annotated[Seconds, Field(ge=1, le=MAX_WINDOW_S)] = 1800
    isolate_k: Annotated[int, Field(ge=1, le=MAX_ISOLATE_N)] = 3
    isolate_n: Annotated[int, Field(ge=1, le=MAX_ISOLATE_N)] = 4
    penalty_per_kwh: Annotated[float, Field(ge=0.0, le=10.0)] = 0.10

    def flag_window_for(self, interval_s: int) -> int:
        """The flag window: ``flag_window_s``, by default two market intervals of `interval_s`. [s]"""
        return self.flag_window_s if self.flag_window_s is not None else 2 * interval_s

    @model_validator(mode="after")
    def _isolation(self) -> "Audit":
        if self.isolate_k > self.isolate_n:
            raise ValueError(f"isolate_k ({self.isolate_k}) must be at most isolate_n ({self.isolate_n})")
        return self
