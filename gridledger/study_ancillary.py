"""Study schema of the ancillary services bought for an upstream shortage (``ancillary:``), issue 15.

With an import cap announced (``events.import_caps``), the distribution
system operator (DSO) buys what keeps the feeder within it from the
feeder's own resources, before its last-resort rotation of whole load
buses (`gridledger.agents.load_shedding`) has to:

* **operating reserve** (``reserve:``, `contracts/OperatingReserve.vy`):
  at the notice (the study start) the DSO posts one reserve window per
  capped market interval, sized by its forecast of the import above the
  cap plus ``ancillary.margin``; battery owners offer capacity, a capacity price and
  an activation price; the windows are awarded by merit order on capacity
  price at the gate of interval 1; one interval before each window the DSO
  activates what its forecast, corrected by the import it measures, needs;
* **load shed service** (``load_shed:``, `contracts/LoadShed.vy`, after
  ERCOT's load resources / load shed service for imports): households
  without a battery, a ``share`` of them, enrol an interruptible load of
  up to ``shed_kw`` in a programme posted at the notice, with their notice
  time, most events per day and prices; one interval before a capped
  interval whose need the reserve awarded cannot cover, the DSO calls them
  in merit order for the rest of the cap window.

Delivery is measured by the meters against a meter-before / meter-after
baseline (NAESB WEQ-015 demand-response measurement and verification):
the household's net import in the step before the activation or call
starts, minus its net import in each step after.

========================================  ==========================================================================
field                                     meaning
========================================  ==========================================================================
``margin``                                what the DSO buys above its forecast of the import over the cap, for the
                                          forecast's error [-]
``reserve.product``                       ``regulating``, ``spinning`` or ``supplemental``: the longest response time
                                          an offer may state (300, 600 and 1800 s in the contract)
``reserve.response_s``                    the response time the batteries offer; an activation one interval ahead
                                          starts at the window start when it is at most ``market_interval_s`` - 2 [s]
``reserve.capacity_price_cap_per_kwh``    most the DSO pays per kWh of capacity held over a window (kW times h)
                                          [token/kWh]
``reserve.activation_price_cap_per_kwh``  most the DSO pays per kWh delivered on activation; also the basis of the
                                          bond and the penalty on shortfall [token/kWh]
``reserve.penalty_factor``                penalty per kWh of shortfall as a multiple of the activation price cap [-]
``reserve.min_offer_kw``                  smallest offer [kW]
``reserve.schedule_charging``             the batteries offer what a full charge delivers and charge for their
                                          awards in windows the EV charging coordination contract admits
                                          (``ChargingCoordination.vy``, as storage units: state of charge, time
                                          to complete, power), holding their charge until their first window;
                                          needs ``market.charging_coordination`` and no EVs
``reserve.budget``                        tokens the DSO sets aside for the windows' escrows; a window whose
                                          budget would exceed what is left is sized down to fit [token]
``load_shed.share``                       share of the households without a battery that enrol an interruptible
                                          load [-]
``load_shed.shed_kw``                     most an interruptible load sheds; each enrols what its expected load over
                                          the cap windows allows, at most this [kW]
``load_shed.notice_s``                    notice the loads ask for before a call starts [s]
``load_shed.max_events_per_day``          most calls per load and day
``load_shed.price_per_event_cap``         most the DSO pays a load per call [token]
``load_shed.price_per_kwh_cap``           most the DSO pays per kWh shed; also the basis of the bond and of the
                                          penalty on shortfall [token/kWh]
``load_shed.penalty_factor``              penalty per kWh of shortfall as a multiple of the price cap [-]
``load_shed.budget``                      tokens the DSO escrows for the programme [token]
========================================  ==========================================================================
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridledger.durations import Seconds

PRODUCTS = ("regulating", "spinning", "supplemental")
"""Reserve products, in the order of `contracts/OperatingReserve.vy`'s product codes."""
LONGEST_RESPONSE_S = {"regulating": 300, "spinning": 600, "supplemental": 1800}
"""The longest response time an offer of each product may state (the contract's constants). [s]"""

_Price = Annotated[float, Field(gt=0.0, le=1e3)]
_Factor = Annotated[float, Field(ge=0.0, le=10.0)]


class Reserve(BaseModel):
    """The operating reserve the DSO buys from batteries (``ancillary.reserve``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product: Literal[PRODUCTS] = "spinning"
    response_s: Annotated[Seconds, Field(ge=0, le=1800)] = 300
    capacity_price_cap_per_kwh: _Price = 0.10
    activation_price_cap_per_kwh: _Price = 1.0
    penalty_factor: _Factor = 1.0
    min_offer_kw: Annotated[float, Field(ge=0.001, le=1000.0)] = 0.5
    budget: Annotated[float, Field(gt=0.0, le=1e9)] = 1000.0
    schedule_charging: bool = False

    @model_validator(mode="after")
    def _responds_in_time(self) -> "Reserve":
        longest = LONGEST_RESPONSE_S[self.product]
        if self.response_s > longest:
            raise ValueError(f"reserve.response_s ({self.response_s}) must be at most {longest} s, the longest "
                             f"response of {self.product!r} reserve")
        return self


class LoadShed(BaseModel):
    """The load shed service the DSO contracts from interruptible loads (``ancillary.load_shed``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    shed_kw: Annotated[float, Field(gt=0.0, le=1000.0)] = 1.0
    notice_s: Annotated[Seconds, Field(ge=0, le=86400)] = 600
    max_events_per_day: Annotated[int, Field(ge=1, le=24)] = 2
    price_per_event_cap: _Price = 0.5
    price_per_kwh_cap: _Price = 2.0
    penalty_factor: _Factor = 1.0
    budget: Annotated[float, Field(gt=0.0, le=1e9)] = 1000.0


class Ancillary(BaseModel):
    """Ancillary services for upstream shortages (``ancillary:``): reserve, load shed, or both."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    margin: Annotated[float, Field(ge=0.0, le=2.0)] = 0.2
    reserve: Reserve | None = None
    load_shed: LoadShed | None = None
