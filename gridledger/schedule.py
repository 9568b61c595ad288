"""When each federate acts, in seconds since study start.

For market interval k, starting at s_k = k * market_interval_s, with gate
g = s_{k+1} - market.gate_closure_s of interval k+1:

    s_k          DER:    orders (or lots) for interval k+1; publish setpoints
    s_k + 0.5    grid:   power flow of the step at s_k; send meter readings of k-1
    s_k + 1      ledger: mine pending transactions (orders k+1, readings k-1)
    g            ledger: gate closure of k+1 -> clear k+1, send results to agents

and with a ledger per zone (`market.sharding: per-zone`):

    g            zone ledgers: clear k+1, send what is left of the orders to the coordinator
    g + 0.5      coordinator: clear the residuals across zones, send each zone its fills
    g + 1        zone ledgers: settle the fills across zones, send results to agents

with the lot auctions ("vickrey", "english") bidding in rounds of
R = market.round_s between the posted lots and the gate:

    s_k + r*R        DER:    bids of round r (vickrey: sealed bids, round 1 only)
    s_k + r*R + 1    ledger: mine them, send the lots' state to the agents
    g                DER:    vickrey: reveal the sealed bids
    g + 1            ledger: vickrey: mine the reveals
    g + reveal       ledger: vickrey: finalise k+1; english: read the
                     winners (its auctions close at g); send results

for r = 1, 2, ... while s_k + r*R + 1 < g (vickrey: r = 1). With the
voltage-regulation market on (`market.voltage_regulation`):

    s_k + 0.75       operator: forecast k+1, post a flexibility request
    s_k + R          DER:    flexibility offers (request k+1)
    s_k + R + 1      ledger: mine them (offer deadline s_k + R + 2)
    g                ledger: award the requests of k+1, tell agents and meters;
                     close the requests whose delivery deadline has passed
    s_{k+2} + 0.5    grid:   meters post the delivered flexibility of k+1

and with charging coordination (`market.charging_coordination`) the same
slots carry the operator's headroom for k+1 (s_k + 0.75), the EVs'
charging requests (s_k + R, deadline = the gate) and the allocation (g).
With two-phase trades (``two_phase``) the buyers propose with their orders
(s_k), the sellers accept in the same slot as flexibility offers
(s_k + R, mined at s_k + R + 1, so the trades are prepared before they
deliver in k+1), and both meters confirm with their readings of k+1.
With an emergency (``emergency``) the operator declares it and grants the
service crew in its first block at or after ``declare_s``; the crew signs
each override at its ``at_s`` + 0.3 s, mined at the ledger's next block,
and the agents cut that admission from their next step; it logs each read
the same way, and after the block the household's gateway (the DER
federate, at its next step) serves the read if the chain allows it.

Power-flow
steps between interval starts follow the same half-second offset: DER at
j * step, grid at j * step + 0.5. The grid runs one extra time at the end
of the study to send the readings of the last interval, and the ledger one
more to mine them. With an auditor (``audit``):

    s_k + 1.25       auditor: check the intervals with new readings; send
                     flags, finalizations and estimates (mined at the
                     ledger's next block)
    end + 2          ledger:  mine what the auditor's last check sent

With data access (``data_access``), its protocol runs after the study's
end E over the whole study's data (`DataPhase`):

    E + 3            requestor: propose each query (locks its price)
    E + 4            ledger:  mine the proposals, tell owners, worker, requestor
    E + 5            DER:     each owner writes its store; consenting owners approve
    E + 6            ledger:  mine the approvals
    E + 7            worker:  (approval deadline) answer each query over the
                              approving owners' stores; post its hash, send the
                              answer to the requestor
    E + 8            ledger:  mine the results
    E + 9            requestor: (result deadline) check each answer against its
                              hash and accept (pays the owners), or cancel a
                              request no owner approved
    E + 10           ledger:  mine the acceptances
    E + 10.25        requestor, worker: read what the last block paid, and stop
 Fixed offsets make the order of events explicit and the
same on every run (no iteration).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.study import Study

GRID_OFFSET_S = 0.5
OPERATOR_OFFSET_S = 0.75
LEDGER_OFFSET_S = 1.0
COORDINATOR_OFFSET_S = 0.5
"""After a zone ledger's gate: the coordinator clears; the zone ledgers settle its fills at the gate + 1 s."""
AUDITOR_OFFSET_S = 1.25
"""After an interval's end: its readings were mined at + 1 s (`LEDGER_OFFSET_S`); the auditor checks them."""
SERVICE_OFFSET_S = 0.3
"""After an override's ``at_s``: the service crew signs it (mined at the ledger's next block)."""
DATA_READ_OFFSET_S = 0.25
"""After the data-access protocol's last block: the requestor and the worker read what it paid."""
AUDIT_TAIL_OFFSET_S = 2.0
"""After the study's end, with an auditor: the ledger mines what the auditor's last check sent (a whole second after
its block at + 1 s, as block timestamps are whole seconds)."""


@dataclass(frozen=True)
class DataPhase:
    """The data-access protocol's times, after the study's end (module docstring). [s]"""

    propose_s: float
    approve_s: float
    approval_deadline_s: float
    compute_s: float
    result_deadline_s: float
    accept_s: float
    blocks_s: tuple[float, ...]
    """The ledger's blocks of the protocol."""
    paid_s: float
    """The requestor and the worker read what the last block paid; the run's last action."""


def data_access_phase(study: Study) -> DataPhase | None:
    """When each step of the data-access protocol happens (None without ``data_access``). [s]"""
    if study.data_access is None:
        return None
    end = float(study.duration_s)
    return DataPhase(propose_s=end + 3, approve_s=end + 5, approval_deadline_s=end + 7, compute_s=end + 7,
                     result_deadline_s=end + 9, accept_s=end + 9, blocks_s=(end + 4, end + 6, end + 8, end + 10),
                     paid_s=end + 10 + DATA_READ_OFFSET_S)


@dataclass(frozen=True)
class DerAction:
    """What the DER federate does at one time: publish a step's setpoints and/or act in the market.

    ``market`` is "orders" (orders or lots of ``interval``), "bid" (a
    bidding round on ``interval``'s lots) or "reveal" (vickrey reveals);
    ``flex_interval`` names the interval whose flexibility requests the
    agents answer with offers now; ``data`` says the owners write their
    stores and approve the data requests now (`DataPhase.approve_s`).
    """

    time_s: float
    step: int | None = None
    market: Literal["orders", "bid", "reveal"] | None = None
    interval: int | None = None
    flex_interval: int | None = None
    data: bool = False


@dataclass(frozen=True)
class LedgerAction:
    """One thing the ledger does at one time: mine what is pending, clear an interval, or (a zone's ledger)
    settle an interval's fills across zones.

    A "mine" with an ``interval`` also tells the agents the state of that
    interval's lots (lot auctions only).
    """

    time_s: float
    kind: Literal["mine", "clear", "cross"]
    interval: int | None = None


def _gate_s(study: Study, interval: int) -> int:
    return interval * study.market_interval_s - study.market.gate_closure_s


def bid_round_times(study: Study, interval: int) -> list[int]:
    """Times of the bidding rounds on the lots of ``interval`` (lot auctions only). [s]"""
    mechanism = MECHANISMS[study.market.mechanism]
    if not mechanism.is_lot_auction:
        return []
    posted = (interval - 1) * study.market_interval_s
    rounds = range(posted + study.market.round_s, _gate_s(study, interval) - 1, study.market.round_s)
    return list(rounds)[:mechanism.bidding_rounds]


def flex_offer_time(study: Study, interval: int) -> int | None:
    """When agents offer flexibility for, EVs request charging in, sellers accept the two-phase trades of, and
    households answer the reserve windows and load shed programme posted before ``interval`` (None if none of them
    runs). [s]"""
    market = study.market
    if not (market.voltage_regulation or market.charging_coordination or study.two_phase
            or study.ancillary is not None) or interval < 1:
        return None
    return (interval - 1) * study.market_interval_s + study.market.round_s


def coordinator_times(study: Study) -> list[tuple[float, int]]:
    """(time [s], interval) of each cross-zone clearing: half a second after every gate."""
    return [(_gate_s(study, k) + COORDINATOR_OFFSET_S, k) for k in range(1, study.n_intervals)]


def operator_times(study: Study) -> list[float]:
    """When the operator federate forecasts and posts the request of the next interval. [s]"""
    return [k * study.market_interval_s + OPERATOR_OFFSET_S for k in range(study.n_intervals - 1)]


def auditor_times(study: Study) -> list[float]:
    """When the auditor checks the intervals whose readings have been settled: after each interval's readings block. [s]

    Interval k's readings are posted at its end and mined a second later;
    the auditor looks a quarter second after that, also after the study's
    last interval.
    """
    return [k * study.market_interval_s + AUDITOR_OFFSET_S for k in range(1, study.n_intervals + 1)]


def service_times(study: Study) -> list[float]:
    """When the service crew signs its emergency overrides and reads (``emergency.overrides``, ``reads``). [s]"""
    if study.emergency is None:
        return []
    return sorted({a.at_s + SERVICE_OFFSET_S for a in (*study.emergency.overrides, *study.emergency.reads)})


def next_block_s(study: Study, time_s: float) -> float:
    """The ledger's first "mine" action after `time_s`: where what a federate sends at `time_s` is mined. [s]"""
    return min(a.time_s for a in ledger_actions(study) if a.kind == "mine" and a.time_s > time_s)


def der_actions(study: Study) -> list[DerAction]:
    """The DER federate's actions in time order: every power-flow step, plus the market's rounds."""
    market: dict[float, tuple[str, int]] = {}
    flex: dict[float, int] = {}
    for k in range(1, study.n_intervals):
        market[float((k - 1) * study.market_interval_s)] = ("orders", k)
        market.update({float(t): ("bid", k) for t in bid_round_times(study, k)})
        if MECHANISMS[study.market.mechanism].reveal_after_gate:
            market[float(_gate_s(study, k))] = ("reveal", k)
        if (offer := flex_offer_time(study, k)) is not None:
            flex[float(offer)] = k
    steps = {float(j * study.power_flow_step_s): j for j in range(study.n_steps)}
    actions = []
    for time_s in sorted(steps.keys() | market.keys() | flex.keys()):
        kind, interval = market.get(time_s, (None, None))
        actions.append(DerAction(time_s, steps.get(time_s), kind, interval, flex.get(time_s)))
    if (phase := data_access_phase(study)) is not None:
        actions.append(DerAction(phase.approve_s, data=True))
    return actions


def der_times(study: Study) -> list[float]:
    """Times at which the DER federate acts. [s]"""
    return [a.time_s for a in der_actions(study)]


def grid_times(study: Study) -> list[float]:
    """Times at which the grid federate solves a step, plus one to meter the last interval. [s]"""
    return [j * study.power_flow_step_s + GRID_OFFSET_S for j in range(study.n_steps + 1)]


def ledger_actions(study: Study) -> list[LedgerAction]:
    """The ledger's actions in time order."""
    mechanism = MECHANISMS[study.market.mechanism]
    lots = mechanism.is_lot_auction
    actions = []
    for k in range(study.n_intervals):
        start = k * study.market_interval_s
        following = k + 1 if k + 1 < study.n_intervals else None
        actions.append(LedgerAction(start + LEDGER_OFFSET_S, "mine", following if lots else None))
        if following is None:
            continue
        gate = _gate_s(study, following)
        rounds = set(bid_round_times(study, following))
        if (offer := flex_offer_time(study, following)) is not None:
            rounds.add(offer)
        actions += [LedgerAction(t + LEDGER_OFFSET_S, "mine", following if lots else None) for t in sorted(rounds)]
        if mechanism.reveal_after_gate:
            actions.append(LedgerAction(gate + LEDGER_OFFSET_S, "mine"))
            actions.append(LedgerAction(float(gate + study.market.reveal_window_s), "clear", following))
        else:
            actions.append(LedgerAction(float(gate), "clear", following))
        if study.market.sharding == "per-zone":
            actions.append(LedgerAction(gate + LEDGER_OFFSET_S, "cross", following))
    actions.append(LedgerAction(study.duration_s + LEDGER_OFFSET_S, "mine"))
    if study.audit is not None:
        actions.append(LedgerAction(study.duration_s + AUDIT_TAIL_OFFSET_S, "mine"))
    if (phase := data_access_phase(study)) is not None:
        actions += [LedgerAction(t, "mine") for t in phase.blocks_s]
    return actions


def stop_time_s(study: Study) -> float:
    """The last time any federate acts: the ledger's last block (with an auditor, the one after its last check), or
    with data access the requestor's reading of the last block's payments. [s]"""
    if (phase := data_access_phase(study)) is not None:
        return phase.paid_s
    return study.duration_s + (AUDIT_TAIL_OFFSET_S if study.audit is not None else LEDGER_OFFSET_S)


CHECKPOINT_LEAD_S = 0.0625
"""How long before a market interval's start its checkpoint is taken: before every action of the interval. [s]"""


def checkpoint_times(study: Study) -> list[float]:
    """When every federate writes a checkpoint (`gridledger.checkpoint`): just before the first market interval start
    at or after each multiple of ``checkpoint.every_s``, inside the study, at a time no federate acts. [s]"""
    every_s, interval_s = study.checkpoint.every_s, study.market_interval_s
    if every_s is None:
        return []
    starts = {-(-j * every_s // interval_s) * interval_s for j in range(1, -(-study.duration_s // every_s))}
    acting = {*der_times(study), *grid_times(study), *(a.time_s for a in ledger_actions(study)),
              *operator_times(study), *auditor_times(study), *service_times(study),
              *(t for t, _ in coordinator_times(study))}
    return sorted(t for s in starts if s < study.duration_s and (t := s - CHECKPOINT_LEAD_S) not in acting)
