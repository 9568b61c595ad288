"""Prosumer agent logic: forecast the next interval, place an order, dispatch the battery.

Pure functions; the DER agents (`gridledger.agents.der_agents`) call them
once per agent, and the DER federate decides nothing itself.

Strategy (documented in README, "How prosumers bid"):

* Forecast: the agent knows the expected (noise-free) shapes of its load and
  PV; its net export forecast for an interval is their mean. Actual load and
  PV carry seeded noise, so forecasts miss and imbalance is real.
* Price: zero-intelligence-constrained trader (Gode & Sunder 1993): the limit
  price is drawn uniformly between the grid sell (feed-in) and buy tariffs,
  the only range in which trading with a peer beats trading with the grid.
  Sellers ask, buyers bid, for the forecast energy.
* Lot auctions: a seller offers its forecast surplus as one lot with its
  ZI-C price as reserve. In a Vickrey auction bidding one's value is a
  dominant strategy (Vickrey 1961), so a buyer seals its limit price on
  one affordable lot, buyers spread over the lots round-robin by rank. In
  an English auction buyers bid straightforwardly (Milgrom 2000): each
  round, a buyer that leads no lot bids the least price allowed (reserve,
  or leading price plus increment) on a lot it can afford, picked at
  random among those.
* Seeds and secrets: prices, lot picks and noise are behaviour, drawn from
  the study seed so a study repeats; a sealed bid's salt is a secret,
  derived from the run secret (:func:`sealed_bid_salt`), never the seed.
* Shiftable appliances start at the owner's cheapest expected time
  (:func:`flexload_schedule_kw`), which moves them into PV surplus.
* Battery: during an interval the battery absorbs the difference between the
  actual net export and the cleared position, so the meter follows the
  contract as closely as its power and state of charge allow. With no
  position this is plain self-consumption. This is where a settlement feeds
  back into physics.

References
----------
W. Vickrey, "Counterspeculation, auctions, and competitive sealed
tenders", J. Finance 16(1), 1961.
P. Milgrom, "Putting auction theory to work: the simultaneous ascending
auction", J. Political Economy 108(2), 2000.
D. K. Gode and S. Sunder, "Allocative efficiency of markets with
zero-intelligence traders", J. Political Economy 101(1), 1993.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gridledger.contracts.keys import derive_salt
from gridledger.contracts.market import LotState
from gridledger.grids.flexload import ShiftableLoad, cheapest_start, run_at
from gridledger.units import KW_S_PER_WH, price_wei_per_wh

@dataclass(frozen=True)
class Order:
    """A limit order for one market interval: an ask sells, a bid buys."""

    interval: int
    is_ask: bool
    energy_wh: int
    price_wei_per_wh: int


def forecast_export_wh(pv_kw: np.ndarray, load_kw: np.ndarray, step_s: float) -> int:
    """Expected net export of an interval from expected PV and load power per step.

    Parameters
    ----------
    pv_kw, load_kw : array_like
        Expected PV output and load over the interval's power-flow steps. [kW]
    step_s : float
        Power-flow step. [s]

    Returns
    -------
    export_wh : int
        Net export, positive = surplus to sell, negative = energy to buy. [Wh]
    """
    return int(np.rint(np.sum(np.asarray(pv_kw) - np.asarray(load_kw)) * step_s / KW_S_PER_WH))


def expected_exports_wh(sc, interval: int) -> np.ndarray:
    """Every prosumer's expected net export in `interval`, from the scenario's noise-free shapes. [Wh]

    Agents use it as their forecast; the operator of a merit-order market
    sums the deficits as the demand it posts.
    """
    study = sc.study
    spi = study.steps_per_interval
    window = slice(interval * spi, (interval + 1) * spi)
    pv_kw = sc.pv_pu_expected[window] * np.array([p.pv_kwp for p in sc.prosumers])
    load_kw = sc.prosumer_load_mw(expected=True)[0][window] * 1000.0
    return np.array([forecast_export_wh(pv_kw[:, i], load_kw[:, i], study.power_flow_step_s)
                     for i in range(len(sc.prosumers))], dtype=np.int64)


def limit_price_draw(seed: int, agent: int, interval: int) -> float:
    """Seeded uniform draw in [0, 1) for one agent's order in one interval."""
    return float(np.random.default_rng([seed, agent, interval]).random())


def zic_order(interval: int, export_wh: int, draw: float,
              grid_sell_price_per_kwh: float, grid_buy_price_per_kwh: float) -> Order | None:
    """Zero-intelligence-constrained order for a forecast net export (None if nothing to trade).

    The limit price is ``sell + draw * (buy - sell)`` tokens per kWh (Gode & Sunder 1993).
    """
    if export_wh == 0:
        return None
    price = grid_sell_price_per_kwh + draw * (grid_buy_price_per_kwh - grid_sell_price_per_kwh)
    return Order(interval, export_wh > 0, abs(export_wh), price_wei_per_wh(price))


def contract_following_kw(pv_kw: float, load_kw: float, position_wh: int, interval_s: float) -> float:
    """Battery power request that makes net export follow the cleared position.

    Parameters
    ----------
    pv_kw, load_kw : float
        Actual PV output and load this step. [kW]
    position_wh : int
        Cleared position for the interval, positive = sold. [Wh]
    interval_s : float
        Market interval length. [s]

    Returns
    -------
    p_kw : float
        Requested battery power, positive = charging (pandapower storage sign). [kW]
    """
    contracted_export_kw = position_wh * KW_S_PER_WH / interval_s
    return pv_kw - load_kw - contracted_export_kw


def flexload_schedule_kw(load: ShiftableLoad, expected_net_kw: np.ndarray, times_s: np.ndarray, step_s: float,
                         buy_price_per_kwh: float, sell_price_per_kwh: float) -> np.ndarray:
    """Power profile of a shiftable cycle started at its owner's cheapest time. [kW]

    The owner's marginal price of energy in a step is the grid buy tariff
    where it expects to import (net load > 0) and the feed-in tariff it
    forgoes where it expects surplus; the cycle starts where it costs
    least over that signal (`gridledger.grids.flexload.cheapest_start`).

    Parameters
    ----------
    load : ShiftableLoad
        The cycle and its window (seconds since study start).
    expected_net_kw : ndarray (step,)
        Owner's expected load minus PV. [kW]
    times_s : ndarray (step,)
        Step starts. [s]
    step_s : float
        Step length. [s]
    buy_price_per_kwh, sell_price_per_kwh : float
        Grid tariffs. [token/kWh]
    """
    prices = np.where(expected_net_kw > 0, buy_price_per_kwh, sell_price_per_kwh)
    return run_at(load, cheapest_start(load, prices, times_s, step_s), times_s, step_s)


def vickrey_lot(lots: list[LotState], rank: int, limit_wei_per_wh: int) -> LotState | None:
    """Lot a buyer seals its bid on: the ``rank``-th affordable lot, round-robin (None if none is affordable).

    Parameters
    ----------
    lots : list of LotState
        The interval's lots in posting order.
    rank : int
        The buyer's index among the interval's buyers.
    limit_wei_per_wh : int
        The buyer's limit price; a lot is affordable if its reserve is at most this. [wei/Wh]
    """
    affordable = [lot for lot in lots if lot.reserve_price_wei_per_wh <= limit_wei_per_wh]
    return affordable[rank % len(affordable)] if affordable else None


def required_price_wei_per_wh(lot: LotState, increment_wei_per_wh: int) -> int:
    """Least price a new English bid on ``lot`` must carry: the reserve, or the leader's price plus the increment."""
    if int(lot.leader, 16) == 0:
        return lot.reserve_price_wei_per_wh
    return lot.price_wei_per_wh + increment_wei_per_wh


def english_bid(lots: list[LotState], bidder: str, limit_wei_per_wh: int, increment_wei_per_wh: int,
                draw: float) -> tuple[LotState, int] | None:
    """English bid of a buyer in one round: (lot, price), or None if it leads a lot or nothing is affordable.

    Straightforward bidding (Milgrom 2000): a buyer that leads no lot bids
    the required price on a lot whose required price is within its limit.
    Every such lot is worth the same to it per Wh, so it picks one at
    random (``draw`` in [0, 1), seeded by the caller) among them; buyers
    that all chased the cheapest lot would race in one block and all but
    one would revert.
    """
    if any(lot.leader == bidder for lot in lots):
        return None
    affordable = [(required_price_wei_per_wh(lot, increment_wei_per_wh), lot.lot_id, lot)
                  for lot in lots if lot.seller != bidder]
    affordable = sorted(c for c in affordable if c[0] <= limit_wei_per_wh)
    if not affordable:
        return None
    price, _, lot = affordable[int(draw * len(affordable))]
    return lot, price


def sealed_bid_salt(secret: bytes, agent: int, interval: int) -> bytes:
    """32-byte salt of agent `agent`'s sealed bid on `interval`'s lots, derived from the run secret.

    Unpredictable without the secret (never from the study seed, which is
    published), so nobody can open the commitment before its reveal; the
    same secret repeats the run.
    """
    return derive_salt(secret, agent, interval)
