"""Reference implementation of the load shed service of interruptible loads.

Pure functions in the integer arithmetic of ``LoadShed.vy``:
:func:`enrol_bond_wei` and :func:`enrol_refusal` follow ``enrol``,
:func:`call_loads` the merit order and eligibility of ``call``,
:func:`settle_call` the settlement by ``post_delivery`` and
``settle_event``, :func:`close_programme` the close, to the wei;
:class:`ProgrammeBook` strings them together over one programme the way
the contract keeps its running totals. The contract tests check the chain
against them.

Units: power [W], durations [s], energy E(p, s) = floor(p * s / 3600)
[Wh], prices [wei/Wh] of shed energy and [wei] per event, penalty factor
[1/1000]. Payments, penalties and refunds are >= 0 and named by who
receives them.

References
----------
Load shed service for imports (LSSi) among the ancillary services a
system operator buys; ERCOT's Load Resources and Emergency Response
Service (Texas) as interruptible-load programmes: enrolment ahead,
deployment with notice, payment for measured load reduction.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction

from gridledger.contracts.flex_reference import bond_wei as penalty_wei
from gridledger.contracts.flex_reference import energy_wh
from gridledger.units import SECONDS_PER_DAY

MAX_NOTICE_S = 86_400
MAX_EVENTS_PER_DAY = 24


@dataclass(frozen=True)
class ShedProgramme:
    """One programme of the operator.

    Attributes
    ----------
    start_timestamp, end_timestamp : int
        Events lie within [start, end). [s since the Unix epoch]
    enrol_deadline_timestamp : int
        Enrolment closes. [s since the Unix epoch]
    max_event_s : int
        Longest event. [s]
    price_per_event_cap_wei : int
        Highest per-event price. [wei]
    price_per_wh_cap_wei : int
        Highest energy price, and the price of bonds and penalties. [wei/Wh]
    budget_wei : int
        Most the programme pays. [wei]
    """

    start_timestamp: int
    end_timestamp: int
    enrol_deadline_timestamp: int
    max_event_s: int
    price_per_event_cap_wei: int
    price_per_wh_cap_wei: int
    budget_wei: int


@dataclass(frozen=True)
class ShedEnrolment:
    """One load's enrolment, in enrolment order.

    Attributes
    ----------
    load : str
        Address of the load (prosumer).
    shed_w : int
        Power it drops when called, whole. [W]
    notice_s : int
        Least time between a call and the event's start. [s]
    max_events_per_day : int
        Most events per programme day.
    price_per_event_wei : int
        Price of one event shed in full. [wei]
    price_per_wh_wei : int
        Price of shed energy. [wei/Wh]
    """

    load: str
    shed_w: int
    notice_s: int
    max_events_per_day: int
    price_per_event_wei: int
    price_per_wh_wei: int


@dataclass(frozen=True)
class LoadStanding:
    """What earlier calls left an enrolment, as ``call`` reads it.

    Attributes
    ----------
    free_bond_wei : int
        Bond less penalties taken and less the full-shortfall penalties
        of its unsettled calls. [wei]
    busy_until_timestamp : int
        End of its latest call, 0 before any. [s since the Unix epoch]
    events_on_day : mapping of int to int
        Its events on each programme day.
    """

    free_bond_wei: int
    busy_until_timestamp: int = 0
    events_on_day: Mapping[int, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One load called for an event, as the contract's ``Called`` event gives it.

    Attributes
    ----------
    enrol_index : int
        Index of the enrolment in enrolment order.
    load : str
        Address of the load.
    shed_w : int
        Power called, the enrolment's whole. [W]
    energy_wh : int
        E(shed_w, event length). [Wh]
    reserved_wei : int
        Cost c = price per event + price per Wh * energy, set aside from
        the budget. [wei]
    """

    enrol_index: int
    load: str
    shed_w: int
    energy_wh: int
    reserved_wei: int


@dataclass(frozen=True)
class CallSettlement:
    """Token flows of one settled call. [wei]

    Attributes
    ----------
    payment_wei : int
        Paid to the load from the budget.
    penalty_wei : int
        Taken from the load's bond into the programme's penalty pool.
    released_wei : int
        Reserved but unpaid, back to the unreserved budget.
    """

    payment_wei: int
    penalty_wei: int
    released_wei: int


@dataclass(frozen=True)
class ProgrammeClose:
    """Token flows of a programme's close. [wei]

    Attributes
    ----------
    bond_refunds_wei : dict of str to int
        Bond less penalties, back to each enrolled load.
    penalty_shares_wei : dict of str to int
        Share of the penalty pool of each enrolled load, 0 included.
    operator_refund_wei : int
        The unspent budget, to the operator.
    reserve_wei : int
        Penalties left unshared, carried to the next programme closed.
    """

    bond_refunds_wei: dict[str, int]
    penalty_shares_wei: dict[str, int]
    operator_refund_wei: int
    reserve_wei: int


def enrol_bond_wei(programme: ShedProgramme, shed_w: int, penalty_permille: int, min_bond_wei: int) -> int:
    """Bond a load escrows when it enrols ``shed_w`` [W]: the penalty of missing the longest event in full.

    Priced at the programme's cap, not the load's price, so bidding 0 does
    not zero it; at least ``min_bond_wei``. [wei]
    """
    full_wh = energy_wh(shed_w, programme.max_event_s)
    return max(penalty_wei(full_wh, programme.price_per_wh_cap_wei, penalty_permille), min_bond_wei)


def enrol_refusal(programme: ShedProgramme, enrolment: ShedEnrolment, max_shed_w: int,
                  min_shed_w: int) -> str | None:
    """Reason ``enrolment`` asks ``LoadShed.enrol`` to revert with, or None if its terms pass.

    ``max_shed_w`` is the load's registered interruptible power and
    ``min_shed_w`` the contract's minimum [W]. The checks run in the
    contract's order; the caller's role and registration, the phase, a
    second enrolment, a full programme and the token allowance are not
    modelled here.
    """
    checks = [
        (enrolment.shed_w < min_shed_w, "shed below minimum"),
        (enrolment.shed_w > max_shed_w, "shed above maximum"),
        (energy_wh(enrolment.shed_w, programme.max_event_s) == 0, "zero energy"),
        (enrolment.notice_s > MAX_NOTICE_S, "notice above limit"),
        (enrolment.max_events_per_day == 0, "zero events per day"),
        (enrolment.max_events_per_day > MAX_EVENTS_PER_DAY, "events per day above limit"),
        (enrolment.price_per_event_wei > programme.price_per_event_cap_wei, "event price above cap"),
        (enrolment.price_per_wh_wei > programme.price_per_wh_cap_wei, "energy price above cap"),
    ]
    return next((f"load shed: {reason}" for refused, reason in checks if refused), None)


def event_cost_wei(enrolment: ShedEnrolment, energy_wh_: int) -> int:
    """Cost c of calling ``enrolment`` for an event of ``energy_wh_``: per-event price + price per Wh * energy. [wei]"""
    return enrolment.price_per_event_wei + enrolment.price_per_wh_wei * energy_wh_


def merit_order(enrolments: Sequence[ShedEnrolment], indices: Sequence[int], duration_s: int) -> list[int]:
    """``indices`` of ``enrolments`` (each with E > 0 over ``duration_s``), cheapest per Wh first.

    The cost per Wh is c / E, compared exactly; equal ratios keep the
    order of ``indices``.
    """
    def cost_per_wh(i: int) -> Fraction:
        e = energy_wh(enrolments[i].shed_w, duration_s)
        return Fraction(event_cost_wei(enrolments[i], e), e)

    return sorted(indices, key=cost_per_wh)


def call_loads(
    programme: ShedProgramme,
    enrolments: Sequence[ShedEnrolment],
    standings: Sequence[LoadStanding],
    *,
    shed_w: int,
    from_timestamp: int,
    to_timestamp: int,
    now_timestamp: int,
    unreserved_wei: int,
    penalty_permille: int,
) -> list[Call]:
    """Loads ``call`` calls for the event [from, to), in merit order.

    An enrolment is eligible if its energy E over the event is > 0, its
    notice fits in from - now, it has fewer than its maximum events on the
    programme day of ``from``, ``from`` is not before the end of its
    latest call, and its free bond covers the penalty of missing E in
    full. Eligible enrolments in :func:`merit_order` are called whole
    while their cost fits in what is left of ``unreserved_wei``, until
    the called power reaches ``shed_w``.

    Parameters
    ----------
    programme : ShedProgramme
        The programme; the event lies in it and is at most its longest.
    enrolments : sequence of ShedEnrolment
        Enrolments in enrolment order.
    standings : sequence of LoadStanding
        What earlier calls left each enrolment.
    shed_w : int
        Power asked for. [W]
    from_timestamp, to_timestamp, now_timestamp : int
        The event and the call's block time. [s since the Unix epoch]
    unreserved_wei : int
        Budget less payments less the reservations of unsettled calls. [wei]
    penalty_permille : int
        Penalty factor. [1/1000]

    Returns
    -------
    list of Call
        The called loads in merit order; empty if none could be called
        (the contract then reverts).
    """
    duration_s = to_timestamp - from_timestamp
    day = (from_timestamp - programme.start_timestamp) // SECONDS_PER_DAY
    notice_s = from_timestamp - now_timestamp
    cap = programme.price_per_wh_cap_wei

    def eligible(i: int) -> bool:
        enrolment, standing = enrolments[i], standings[i]
        e = energy_wh(enrolment.shed_w, duration_s)
        return (
            e > 0
            and enrolment.notice_s <= notice_s
            and standing.busy_until_timestamp <= from_timestamp
            and standing.events_on_day.get(day, 0) < enrolment.max_events_per_day
            and standing.free_bond_wei >= penalty_wei(e, cap, penalty_permille)
        )

    calls, called_w = [], 0
    for i in merit_order(enrolments, [i for i in range(len(enrolments)) if eligible(i)], duration_s):
        if called_w >= shed_w:
            break
        enrolment = enrolments[i]
        e = energy_wh(enrolment.shed_w, duration_s)
        cost = event_cost_wei(enrolment, e)
        if cost > unreserved_wei:
            continue
        unreserved_wei -= cost
        called_w += enrolment.shed_w
        calls.append(Call(i, enrolment.load, enrolment.shed_w, e, cost))
    return calls


def settle_call(call: Call, enrolment: ShedEnrolment, delivered_wh: int, price_per_wh_cap_wei: int,
                penalty_permille: int) -> CallSettlement:
    """Token flows of ``call`` settled at ``delivered_wh`` [Wh] (0 for a load without a delivery).

    With w = min(delivered, E): payment floor(price per event * w / E)
    + w * price per Wh; penalty of the shortfall E - w at the
    programme's cap; the rest of the reservation is released.
    """
    paid_wh = min(delivered_wh, call.energy_wh)
    payment = enrolment.price_per_event_wei * paid_wh // call.energy_wh + paid_wh * enrolment.price_per_wh_wei
    penalty = penalty_wei(call.energy_wh - paid_wh, price_per_wh_cap_wei, penalty_permille)
    return CallSettlement(payment, penalty, call.reserved_wei - payment)


def close_programme(
    programme: ShedProgramme,
    loads: Sequence[str],
    bonds_wei: Sequence[int],
    paid_wei: Sequence[int],
    penalties_wei: Sequence[int],
    reserve_wei: int,
) -> ProgrammeClose:
    """Token flows of closing a programme whose calls are all settled.

    Each load gets its bond less its penalties back; the pool P = its
    penalties + the carried ``reserve_wei`` is shared pro rata to what
    each load was paid over the programme, floor(P * paid / sum paid);
    the operator gets the budget less the payments; the rest of P is the
    new reserve.

    Parameters
    ----------
    programme : ShedProgramme
        The programme.
    loads : sequence of str
        Enrolled loads in enrolment order.
    bonds_wei, paid_wei, penalties_wei : sequence of int
        Each enrolment's bond, payments and penalties. [wei]
    reserve_wei : int
        The contract's penalty reserve before the close. [wei]
    """
    pool, paid_total = reserve_wei + sum(penalties_wei), sum(paid_wei)
    shares = {load: pool * paid // paid_total if paid_total else 0 for load, paid in zip(loads, paid_wei)}
    return ProgrammeClose(
        {load: bond - penalty for load, bond, penalty in zip(loads, bonds_wei, penalties_wei)},
        shares,
        programme.budget_wei - paid_total,
        pool - sum(shares.values()),
    )


@dataclass
class ProgrammeBook:
    """Running totals of one programme, as the contract keeps them, over :func:`call_loads`,
    :func:`settle_call` and :func:`close_programme`.

    Attributes
    ----------
    programme : ShedProgramme
        The programme.
    enrolments : list of ShedEnrolment
        Its enrolments in enrolment order.
    penalty_permille, min_bond_wei : int
        The contract's penalty factor [1/1000] and least bond [wei].
    """

    programme: ShedProgramme
    enrolments: list[ShedEnrolment]
    penalty_permille: int
    min_bond_wei: int
    bonds_wei: list[int] = field(init=False)
    penalties_wei: list[int] = field(init=False)
    paid_wei: list[int] = field(init=False)
    committed_wei: list[int] = field(init=False)
    busy_until_timestamp: list[int] = field(init=False)
    events_on_day: list[dict[int, int]] = field(init=False)
    reserved_wei: int = 0
    calls: dict[int, list[Call]] = field(default_factory=dict)
    settlements: dict[int, dict[int, CallSettlement]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.enrolments)
        self.bonds_wei = [enrol_bond_wei(self.programme, e.shed_w, self.penalty_permille, self.min_bond_wei)
                          for e in self.enrolments]
        self.penalties_wei, self.paid_wei, self.committed_wei = [0] * n, [0] * n, [0] * n
        self.busy_until_timestamp = [0] * n
        self.events_on_day = [{} for _ in range(n)]

    def _full_penalty_wei(self, call: Call) -> int:
        return penalty_wei(call.energy_wh, self.programme.price_per_wh_cap_wei, self.penalty_permille)

    @property
    def unreserved_wei(self) -> int:
        """Budget less payments less the reservations of unsettled calls. [wei]"""
        return self.programme.budget_wei - sum(self.paid_wei) - self.reserved_wei

    def standings(self) -> list[LoadStanding]:
        """What earlier calls left each enrolment."""
        return [
            LoadStanding(bond - penalty - committed, busy, dict(days))
            for bond, penalty, committed, busy, days in zip(
                self.bonds_wei, self.penalties_wei, self.committed_wei, self.busy_until_timestamp,
                self.events_on_day
            )
        ]

    def call(self, event_id: int, *, shed_w: int, from_timestamp: int, to_timestamp: int,
             now_timestamp: int) -> list[Call]:
        """Call the event [from, to) as ``event_id`` (:func:`call_loads`) and book it; nothing is
        booked when no load is called."""
        calls = call_loads(self.programme, self.enrolments, self.standings(), shed_w=shed_w,
                           from_timestamp=from_timestamp, to_timestamp=to_timestamp, now_timestamp=now_timestamp,
                           unreserved_wei=self.unreserved_wei, penalty_permille=self.penalty_permille)
        if not calls:
            return calls
        day = (from_timestamp - self.programme.start_timestamp) // SECONDS_PER_DAY
        for call in calls:
            i = call.enrol_index
            self.committed_wei[i] += self._full_penalty_wei(call)
            self.busy_until_timestamp[i] = to_timestamp
            self.events_on_day[i][day] = self.events_on_day[i].get(day, 0) + 1
            self.reserved_wei += call.reserved_wei
        self.calls[event_id] = calls
        self.settlements[event_id] = {}
        return calls

    def settle(self, event_id: int, index: int, delivered_wh: int) -> CallSettlement:
        """Settle called load ``index`` of ``event_id`` at ``delivered_wh`` [Wh] (:func:`settle_call`)."""
        if index in self.settlements[event_id]:
            raise ValueError(f"call {index} of event {event_id} is settled")
        call = self.calls[event_id][index]
        i = call.enrol_index
        settlement = settle_call(call, self.enrolments[i], delivered_wh, self.programme.price_per_wh_cap_wei,
                                 self.penalty_permille)
        self.committed_wei[i] -= self._full_penalty_wei(call)
        self.penalties_wei[i] += settlement.penalty_wei
        self.paid_wei[i] += settlement.payment_wei
        self.reserved_wei -= call.reserved_wei
        self.settlements[event_id][index] = settlement
        return settlement

    def settle_event(self, event_id: int) -> dict[int, CallSettlement]:
        """Settle every unsettled call of ``event_id`` at zero delivery; the settlements by call index."""
        return {k: self.settle(event_id, k, 0) for k in range(len(self.calls[event_id]))
                if k not in self.settlements[event_id]}

    def close(self, reserve_wei: int) -> ProgrammeClose:
        """Close the programme (:func:`close_programme`) with the contract's reserve ``reserve_wei`` [wei]."""
        unsettled = [(e, k) for e, calls in self.calls.items() for k in range(len(calls))
                     if k not in self.settlements[e]]
        if unsettled:
            raise ValueError(f"unsettled calls (event, index): {unsettled}")
        return close_programme(self.programme, [e.load for e in self.enrolments], self.bonds_wei, self.paid_wei,
                               self.penalties_wei, reserve_wei)

    def held_wei(self) -> int:
        """Tokens the contract holds for the programme before its close: budget less payments, plus bonds. [wei]"""
        return self.programme.budget_wei - sum(self.paid_wei) + sum(self.bonds_wei)
