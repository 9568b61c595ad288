"""The DER federate's results part: device traces, orders, EV sessions, flexibility, rejected transactions."""

from __future__ import annotations

import numpy as np

from gridledger.agents.devices import Devices
from gridledger.agents.flex_offers import Flexibility
from gridledger.agents.orders import OrderRecord
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster
from gridledger.units import KW_PER_MW, MW


def _add_evs(part: Part, sc: Roster, devices: Devices) -> None:
    evs = devices.evs
    part.coords["ev"] = np.arange(len(evs.owners))
    part.add("ev_p_mw", ("time", "prosumer"), devices.ev_kw / KW_PER_MW, MW, "EV charging power (part of load_p_mw)")
    part.add("ev_owner", ("ev",), np.array([sc.prosumers[i].name for i in evs.owners], dtype=object), "1",
             "prosumer owning the EV")
    part.add("ev_energy_needed_kwh", ("ev",), np.array([s.energy_needed_kwh for s in evs.sessions]), "kWh",
             "energy the EV battery needs by departure")
    part.add("ev_energy_delivered_kwh", ("ev",), evs.delivered_kwh.copy(), "kWh",
             "energy delivered to the EV battery")
    part.add("ev_departure_s", ("ev",), np.array([s.departure_s for s in evs.sessions]), "s",
             "departure, seconds since study start")
    part.add("ev_override_steps", ("ev",), evs.override_steps.copy(), "1",
             "steps the EV charged beyond its admission to still finish by departure")


def der_part(sc: Roster, devices: Devices, orders: OrderRecord, rejected: np.ndarray,
             flexibility: Flexibility | None) -> Part:
    """The part ``der`` writes; `flexibility` None without the voltage-regulation market."""
    part = Part(sc, "der", steps_completed=devices.steps_done)
    part.add("load_p_mw", ("time", "prosumer"),
             (devices.load_kw + devices.ev_kw + devices.flexload_kw - devices.shed_kw) / KW_PER_MW,
             MW, "prosumer load, EV charging and shiftable appliances included, interruptible load shed excluded")
    part.add("pv_p_mw", ("time", "prosumer"),
             devices.pv_kw / KW_PER_MW - np.nan_to_num(devices.pv_curtailed_kw) / KW_PER_MW,
             MW, "prosumer PV output (after any curtailment)")
    part.add("pv_curtailed_p_mw", ("time", "prosumer"), devices.pv_curtailed_kw / KW_PER_MW, MW,
             "PV power curtailed for awarded flexibility")
    part.add("battery_p_mw", ("time", "prosumer"), devices.battery_p_kw / KW_PER_MW, MW,
             "battery power, positive = charging")
    part.add("soc_kwh", ("time", "prosumer"), devices.soc_trace_kwh, "kWh", "battery state of charge after the step")
    part.add("order_energy_wh", ("interval", "prosumer"), orders.energy_wh, "Wh",
             "order quantity, positive = ask (sell), negative = bid (buy)")
    part.add("order_price_per_kwh", ("interval", "prosumer"), orders.price_per_kwh, "token/kWh", "order limit price")
    if len(devices.evs.owners):
        _add_evs(part, sc, devices)
    if sc.study.prosumers.flexload.share:
        part.add("flexload_p_mw", ("time", "prosumer"), devices.flexload_kw / KW_PER_MW, MW,
                 "shiftable appliance power (part of load_p_mw)")
    if flexibility is not None:
        part.add("flex_offer_w", ("interval", "prosumer"), flexibility.offer_w, "W", "flexibility offered")
        part.add("flex_awarded_w", ("interval", "prosumer"), flexibility.awarded_w, "W", "flexibility awarded")
    if sc.study.ancillary is not None and sc.study.ancillary.load_shed is not None:
        part.add("shed_p_mw", ("time", "prosumer"), devices.shed_kw / KW_PER_MW, MW,
                 "interruptible load switched off on the operator's call")
    part.add("orders_rejected", ("interval", "prosumer"), rejected, "1", "orders rejected by the chain",
             cell_methods=INTERVAL_SUM)
    return part
