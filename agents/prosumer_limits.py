"""Each prosumer's registered reading limits, derived from the scenario alone.

The ledger registers them when it deploys the market and the DER agents cap
their orders with them, so they live apart from the ledger's chain (py-evm):
the DER federate computes them without loading the chain.
"""

from __future__ import annotations

import math

from gridledger.contracts.market import ProsumerLimits
from gridledger.grids.ev import CHARGER_POWERS_KW
from gridledger.roster import Roster
from gridledger.study import METER_RATING_MARGIN
from gridledger.units import KW_PER_MW, W_PER_KW


def prosumer_limits(sc: Roster) -> list[ProsumerLimits]:
    """Each prosumer's registered reading limits, in prosumer order: meter rating, PV peak and battery power. [W]

    The meter rating is ``prosumers.meter_rating_kw`` or, unset,
    `METER_RATING_MARGIN` times the larger of the prosumer's peak demand
    (peak load, battery, the largest EV charger and the flexible appliance
    where the study has them) and its peak supply (PV and battery).
    """
    pros = sc.study.prosumers
    extra_demand_kw = (max(CHARGER_POWERS_KW) if pros.ev.share > 0 else 0.0) + (
        pros.flexload.power_kw if pros.flexload.share > 0 else 0.0)
    limits = []
    for p in sc.prosumers:
        demand_kw = p.peak_load_p_mw * KW_PER_MW + p.battery_power_kw + extra_demand_kw
        supply_kw = p.pv_kwp + p.battery_power_kw
        rating_kw = pros.meter_rating_kw or METER_RATING_MARGIN * max(demand_kw, supply_kw)
        limits.append(ProsumerLimits(meter_rating_w=math.ceil(rating_kw * W_PER_KW),
                                     pv_w=math.ceil(p.pv_kwp * W_PER_KW),
                                     battery_w=math.ceil(p.battery_power_kw * W_PER_KW)))
    return limits
