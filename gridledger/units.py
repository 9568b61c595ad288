"""Units and time conversions, defined once for every layer.

A leaf module: it imports nothing from gridledger, so the libraries
(`gridledger.grids`, `gridledger.contracts`) may use it without leaning on
the core. Names follow pandapower (``p_mw``, ``q_mvar``, ``vm_pu``); unit
labels follow its spelling (``"Mvar"``, not ``"MVAr"``).

Money: one token is 10**18 wei, as ether is; a price in tokens per kWh is
an integer number of wei per Wh on chain, rounded to the nearest wei.
"""

from __future__ import annotations

import datetime as dt

SECONDS_PER_MINUTE = 60
SECONDS_PER_HOUR = 3600
SECONDS_PER_DAY = 86_400
WH_PER_KWH = 1000
W_PER_KW = 1000
KW_PER_MW = 1000
W_PER_MW = 1_000_000
WH_PER_MWH = 1_000_000
PERMILLE = 1000
KW_S_PER_WH = SECONDS_PER_HOUR / WH_PER_KWH
"""One watt-hour is 3.6 kilowatt-seconds: energy [Wh] = power [kW] * time [s] / 3.6."""
WEI_PER_TOKEN = 10**18

# Unit labels written into HELICS configs and NetCDF attrs["units"].
MW = "MW"
MVAR = "Mvar"
PU = "pu"
PERCENT = "%"
KW = "kW"
KWH = "kWh"
WH = "Wh"
TOKEN = "token"
GAS = "gas"
AMOUNT_UNITS = (WH, KWH, TOKEN, GAS)
"""Units of amounts that add up over time: a per-interval quantity in one of them is the interval's total
(``cell_methods = "interval: sum"`` in results.nc), not a rate or a state."""


def price_wei_per_wh(price_per_kwh: float) -> int:
    """Token price per kWh as the chain's integer unit. [wei/Wh]"""
    return round(price_per_kwh * WEI_PER_TOKEN / WH_PER_KWH)


def price_per_kwh(price_wei_per_wh: float) -> float:
    """Chain price back to tokens per kWh. [token/kWh]"""
    return price_wei_per_wh * WH_PER_KWH / WEI_PER_TOKEN


def tokens(wei: int) -> float:
    """An amount of wei in tokens. [token]"""
    return wei / WEI_PER_TOKEN


def wei(amount_token: float) -> int:
    """An amount of tokens in wei, rounded to the nearest wei. [wei]"""
    return round(amount_token * WEI_PER_TOKEN)


def seconds_of_day(moment: dt.datetime | dt.time) -> int:
    """Seconds since local midnight of a clock time. [s]"""
    return moment.hour * SECONDS_PER_HOUR + moment.minute * SECONDS_PER_MINUTE + moment.second


def energy_wh(p_w: float, duration_s: float) -> float:
    """Energy of a constant power over a duration. [Wh]"""
    return p_w * duration_s / SECONDS_PER_HOUR
