"""Reference implementation of the meter-fraud audit and the Settlement's holds.

A pure model, in the integer arithmetic of ``Audit.vy`` and of the
Settlement's audit hook (``hold``, ``release_held``, ``post_estimate``,
the fresh-credit rule of ``withdraw``, the isolation refusal of
``post_reading``). Each method mirrors one transaction and returns the
reason it reverts with, or None after applying it; the contract tests
run the same actions on a chain and compare states, holds, credits and
reasons.

The model settles readings of intervals without a market position
(the clearing of an empty book) with :func:`gridledger.contracts.reference.settle`,
so a reading pays only its imbalance with the operator.

Units: energy [Wh], power [W], amounts [wei], prices [wei/Wh], times
[s since the Unix epoch]. m = export - import of a reading [Wh].
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import IntEnum

from gridledger.contracts.reference import reading_limit_reason, settle
from gridledger.units import SECONDS_PER_HOUR

READING_TOLERANCE_WH = 2  # Settlement.READING_TOLERANCE_WH
MAX_WINDOW_S = 30 * 86400  # Audit.MAX_WINDOW_S
MAX_ISOLATE_N = 32  # Audit.MAX_ISOLATE_N
MAX_PRICE_WEI_PER_WH = 10**24  # Audit.MAX_PRICE_WEI_PER_WH


class Status(IntEnum):
    """State of a (interval, prosumer), ``Audit.STATUS_*``."""

    NONE = 0
    FLAGGED = 1
    DISPUTED = 2
    CONFIRMED = 3
    REJECTED = 4


@dataclass(frozen=True)
class AuditTerms:
    """Constructor parameters of ``Audit.vy`` and what it reads from the Settlement.

    Attributes
    ----------
    flag_window_s, dispute_window_s : int
        Flag window after a reading's posting, dispute window after a flag. [s]
    isolate_k, isolate_n : int
        k counting flags among the last n intervals isolate a meter.
    penalty_wei_per_wh : int
        Penalty on |m_read - m_est|. [wei/Wh]
    grid_buy_price_wei_per_wh, grid_sell_price_wei_per_wh, grid_fee_wei_per_wh : int
        The Settlement's grid prices. [wei/Wh]
    non_delivery_penalty_wei_per_wh : int
        The Settlement's non-delivery penalty. [wei/Wh]
    interval_s : int
        Market interval. [s]
    """

    flag_window_s: int
    dispute_window_s: int
    isolate_k: int
    isolate_n: int
    penalty_wei_per_wh: int
    grid_buy_price_wei_per_wh: int
    grid_sell_price_wei_per_wh: int
    grid_fee_wei_per_wh: int
    non_delivery_penalty_wei_per_wh: int
    interval_s: int


@dataclass(frozen=True)
class Limits:
    """A prosumer's registered limits. [W]"""

    meter_rating_w: int
    pv_w: int = 0
    battery_w: int = 0


@dataclass
class FlagRecord:
    """One flag as ``Audit.flag_of`` returns it (same field order)."""

    status: Status
    flagged_timestamp: int
    estimate_import_wh: int
    estimate_export_wh: int
    residual_milli: int
    chi2_milli: int
    evidence: bytes
    overpaid_wei: int
    penalty_wei: int
    held_wei: int

    def as_tuple(self) -> tuple:
        return (int(self.status), self.flagged_timestamp, self.estimate_import_wh, self.estimate_export_wh,
                self.residual_milli, self.chi2_milli, self.evidence, self.overpaid_wei, self.penalty_wei,
                self.held_wei)


def constructor_problem(terms: AuditTerms, auditor_roles: int, auditor_is_operator: bool,
                        auditor_is_zero: bool = False) -> str | None:
    """Reason ``Audit.__init__`` reverts with, or None."""
    if auditor_is_zero:
        return "audit: auditor is the zero address"
    if auditor_is_operator or auditor_roles != 0:
        return "audit: auditor holds a role"
    if not (0 < terms.flag_window_s <= MAX_WINDOW_S and 0 < terms.dispute_window_s <= MAX_WINDOW_S):
        return "audit: window out of range"
    if not 1 <= terms.isolate_k <= terms.isolate_n <= MAX_ISOLATE_N:
        return "audit: isolation out of range"
    if terms.penalty_wei_per_wh > MAX_PRICE_WEI_PER_WH:
        return "audit: price out of range"
    return None


def imbalance_owed_wei(terms: AuditTerms, position_wh: int, value_wei: int, import_wh: int, export_wh: int) -> int:
    """The imbalance payment of registers against a position before credit limits, + = to the prosumer
    (``Settlement.imbalance_owed_wei``). [wei]"""
    return settle(position_wh, value_wei, import_wh, export_wh, terms.grid_buy_price_wei_per_wh,
                  terms.grid_sell_price_wei_per_wh, terms.grid_fee_wei_per_wh,
                  non_delivery_penalty_wei_per_wh=terms.non_delivery_penalty_wei_per_wh).imbalance_wei


def flag_amounts(terms: AuditTerms, read_wh: tuple[int, int], estimate_wh: tuple[int, int], position_wh: int = 0,
                 value_wei: int = 0) -> tuple[int, int]:
    """Overpaid and penalty amounts of a flag of a reading and an estimate, each (import_wh, export_wh).

    overpaid = max(0, o_read - o_est) with o the :func:`imbalance_owed_wei`
    of the registers against the cleared position and its value; penalty
    = |m_read - m_est| * penalty rate with m = export - import.

    Returns
    -------
    (overpaid_wei, penalty_wei) : tuple of int
    """
    owed_read = imbalance_owed_wei(terms, position_wh, value_wei, *read_wh)
    owed_estimate = imbalance_owed_wei(terms, position_wh, value_wei, *estimate_wh)
    excess_wh = (read_wh[1] - read_wh[0]) - (estimate_wh[1] - estimate_wh[0])
    return max(owed_read - owed_estimate, 0), abs(excess_wh) * terms.penalty_wei_per_wh


def estimate_bounds_wh(limits: Limits, interval_s: int) -> tuple[int, int]:
    """The largest estimate ``Audit._estimate_within_limits`` takes, before the tolerance: (import, export). [Wh]

    Import up to the meter rating, export up to the smaller of the meter
    rating and PV peak + battery power, each times the interval.
    """
    rating_wh = limits.meter_rating_w * interval_s // SECONDS_PER_HOUR
    sources_wh = limits.pv_w * interval_s // SECONDS_PER_HOUR + limits.battery_w * interval_s // SECONDS_PER_HOUR
    return rating_wh, min(rating_wh, sources_wh)


def estimate_within_limits(limits: Limits, interval_s: int, import_wh: int, export_wh: int) -> bool:
    """Whether an estimate fits the registered limits over one interval plus the tolerance (`estimate_bounds_wh`)."""
    import_max_wh, export_max_wh = estimate_bounds_wh(limits, interval_s)
    return import_wh <= import_max_wh + READING_TOLERANCE_WH and export_wh <= export_max_wh + READING_TOLERANCE_WH


def confirmation_split(held_wei: int, overpaid_wei: int, penalty_wei: int) -> tuple[int, int, int]:
    """Where a confirmed flag's hold goes: (to the operator, to the penalty pool, back to the prosumer). [wei]"""
    to_operator_wei = min(held_wei, overpaid_wei)
    to_pool_wei = min(held_wei - to_operator_wei, penalty_wei)
    return to_operator_wei, to_pool_wei, held_wei - to_operator_wei - to_pool_wei


@dataclass
class AuditModel:
    """The Settlement's accounts and the audit's state, without a chain.

    ``credit_wei`` holds every account's credit (the operator's
    included), ``penalty_pool_wei`` the Settlement's penalty pool. Locks
    are not modelled (no bids), nor is a credit line (no debt).
    """

    terms: AuditTerms
    operator: str
    auditor: str
    limits: Mapping[str, Limits]
    credit_wei: dict[str, int]
    penalty_pool_wei: int = 0
    held_wei: dict[str, int] = field(default_factory=dict)
    fresh_wei: dict[str, int] = field(default_factory=dict)
    fresh_until_timestamp: dict[str, int] = field(default_factory=dict)
    posted_timestamp: dict[tuple[int, str], int] = field(default_factory=dict)
    readings: dict[tuple[int, str], tuple[int, int]] = field(default_factory=dict)
    flags: dict[tuple[int, str], FlagRecord] = field(default_factory=dict)
    counted: dict[tuple[int, str], int] = field(default_factory=dict)
    epoch: dict[str, int] = field(default_factory=dict)
    isolated: dict[str, bool] = field(default_factory=dict)

    # Settlement -------------------------------------------------------------

    def free_credit_wei(self, account: str) -> int:
        """Credit minus what the audit holds (``Settlement.free_credit_wei`` without locks). [wei]"""
        return self.credit_wei.get(account, 0) - self.held_wei.get(account, 0)

    def _settle(self, now: int, interval: int, prosumer: str, import_wh: int, export_wh: int) -> None:
        t = self.terms
        line = settle(0, 0, import_wh, export_wh, t.grid_buy_price_wei_per_wh, t.grid_sell_price_wei_per_wh,
                      t.grid_fee_wei_per_wh, non_delivery_penalty_wei_per_wh=t.non_delivery_penalty_wei_per_wh,
                      prosumer_payable_wei=self.free_credit_wei(prosumer),
                      operator_payable_wei=self.free_credit_wei(self.operator),
                      penalty_pool_wei=self.penalty_pool_wei)
        self.readings[(interval, prosumer)] = (import_wh, export_wh)
        self.posted_timestamp[(interval, prosumer)] = now
        self.credit_wei[prosumer] = self.credit_wei.get(prosumer, 0) + line.credit_delta_wei
        self.credit_wei[self.operator] = self.credit_wei.get(self.operator, 0) + line.operator_delta_wei
        self.penalty_pool_wei += line.penalty_pool_delta_wei
        if line.credit_delta_wei > 0:
            if now >= self.fresh_until_timestamp.get(prosumer, 0):
                self.fresh_wei[prosumer] = 0
            self.fresh_wei[prosumer] = self.fresh_wei.get(prosumer, 0) + line.credit_delta_wei
            self.fresh_until_timestamp[prosumer] = now + t.flag_window_s

    def _reading_problem(self, interval: int, prosumer: str, import_wh: int, export_wh: int, pv_wh: int,
                         battery_wh: int) -> str | None:
        if (interval, prosumer) in self.readings:
            return "settlement: reading exists"
        lim = self.limits[prosumer]
        return reading_limit_reason(import_wh, export_wh, pv_wh, battery_wh, meter_rating_w=lim.meter_rating_w,
                                    pv_w=lim.pv_w, battery_w=lim.battery_w, interval_s=self.terms.interval_s)

    def post_reading(self, now: int, interval: int, prosumer: str, import_wh: int, export_wh: int,
                     pv_wh: int, battery_wh: int = 0) -> str | None:
        """``Settlement.post_reading`` by the prosumer's meter, of a cleared and ended interval."""
        if self.isolated.get(prosumer, False):
            return "settlement: meter isolated"
        reason = self._reading_problem(interval, prosumer, import_wh, export_wh, pv_wh, battery_wh)
        if reason is None:
            self._settle(now, interval, prosumer, import_wh, export_wh)
        return reason

    def withdraw(self, now: int, account: str, amount_wei: int) -> str | None:
        """``Settlement.withdraw`` by ``account`` (not the operator)."""
        if amount_wei == 0:
            return "settlement: zero amount"
        free_wei = self.free_credit_wei(account)
        if free_wei < amount_wei:
            return "settlement: withdraw above free credit"
        if now < self.fresh_until_timestamp.get(account, 0) and free_wei - amount_wei < self.fresh_wei.get(account, 0):
            return "settlement: credit under audit"
        self.credit_wei[account] -= amount_wei
        return None

    def _hold(self, account: str, amount_wei: int) -> int:
        held_wei = min(amount_wei, max(self.free_credit_wei(account), 0))
        self.held_wei[account] = self.held_wei.get(account, 0) + held_wei
        return held_wei

    def _release_held(self, account: str, amount_wei: int, payee: str | None) -> None:
        """Release to ``payee``: the account, None for the penalty pool, or another account."""
        self.held_wei[account] -= amount_wei
        if payee == account:
            return
        self.credit_wei[account] -= amount_wei
        if payee is None:
            self.penalty_pool_wei += amount_wei
        else:
            self.credit_wei[payee] = self.credit_wei.get(payee, 0) + amount_wei

    # Audit ------------------------------------------------------------------

    def status(self, interval: int, prosumer: str) -> Status:
        """``Audit.status``."""
        record = self.flags.get((interval, prosumer))
        return Status.NONE if record is None else record.status

    def _counting_flags(self, prosumer: str, interval: int) -> int:
        mark = self.epoch.get(prosumer, 0) + 1
        first = max(0, interval - self.terms.isolate_n + 1)
        return sum(self.counted.get((k, prosumer), 0) == mark for k in range(first, interval + 1))

    def flag(self, now: int, sender: str, interval: int, prosumer: str, estimate_import_wh: int,
             estimate_export_wh: int, residual_milli: int = 0, chi2_milli: int = 0,
             evidence: bytes = bytes(32)) -> str | None:
        """``Audit.flag``; on success also applies the Settlement's ``hold`` and the isolation rule."""
        if sender != self.auditor:
            return "audit: caller is not auditor"
        posted = self.posted_timestamp.get((interval, prosumer), 0)
        if posted == 0:
            return "audit: no reading"
        if now >= posted + self.terms.flag_window_s:
            return "audit: flag window closed"
        if self.status(interval, prosumer) != Status.NONE:
            return "audit: already flagged"
        if not estimate_within_limits(self.limits[prosumer], self.terms.interval_s, estimate_import_wh,
                                      estimate_export_wh):
            return "audit: estimate above limits"
        read_import_wh, read_export_wh = self.readings[(interval, prosumer)]
        overpaid_wei, penalty_wei = flag_amounts(self.terms, (read_import_wh, read_export_wh),
                                                 (estimate_import_wh, estimate_export_wh))
        held_wei = self._hold(prosumer, overpaid_wei + penalty_wei)
        self.flags[(interval, prosumer)] = FlagRecord(Status.FLAGGED, now, estimate_import_wh, estimate_export_wh,
                                                      residual_milli, chi2_milli, evidence, overpaid_wei,
                                                      penalty_wei, held_wei)
        self.counted[(interval, prosumer)] = self.epoch.get(prosumer, 0) + 1
        if not self.isolated.get(prosumer, False) and self._counting_flags(prosumer, interval) >= \
                self.terms.isolate_k:
            self.isolated[prosumer] = True
        return None

    def dispute(self, now: int, sender: str, interval: int) -> str | None:
        """``Audit.dispute`` by ``sender`` of its own flag."""
        record = self.flags.get((interval, sender))
        if record is None or record.status != Status.FLAGGED:
            return "audit: not flagged"
        if now >= record.flagged_timestamp + self.terms.dispute_window_s:
            return "audit: dispute window closed"
        record.status = Status.DISPUTED
        return None

    def _confirm(self, interval: int, prosumer: str) -> None:
        record = self.flags[(interval, prosumer)]
        record.status = Status.CONFIRMED
        to_operator_wei, to_pool_wei, rest_wei = confirmation_split(record.held_wei, record.overpaid_wei,
                                                                    record.penalty_wei)
        self._release_held(prosumer, to_operator_wei, self.operator)
        self._release_held(prosumer, to_pool_wei, None)
        self._release_held(prosumer, rest_wei, prosumer)

    def resolve(self, sender: str, interval: int, prosumer: str, confirm: bool) -> str | None:
        """``Audit.resolve``."""
        if sender != self.operator:
            return "audit: caller is not operator"
        if self.status(interval, prosumer) != Status.DISPUTED:
            return "audit: not disputed"
        if confirm:
            self._confirm(interval, prosumer)
        else:
            record = self.flags[(interval, prosumer)]
            record.status = Status.REJECTED
            self.counted[(interval, prosumer)] = 0
            self._release_held(prosumer, record.held_wei, prosumer)
        return None

    def finalize(self, now: int, interval: int, prosumer: str) -> str | None:
        """``Audit.finalize`` by anyone."""
        record = self.flags.get((interval, prosumer))
        if record is None or record.status != Status.FLAGGED:
            return "audit: not flagged"
        if now < record.flagged_timestamp + self.terms.dispute_window_s:
            return "audit: dispute window open"
        self._confirm(interval, prosumer)
        return None

    def recertify(self, sender: str, prosumer: str) -> str | None:
        """``Audit.recertify``."""
        if sender != self.operator:
            return "audit: caller is not operator"
        if not self.isolated.get(prosumer, False):
            return "audit: not isolated"
        self.isolated[prosumer] = False
        self.epoch[prosumer] = self.epoch.get(prosumer, 0) + 1
        return None

    def settle_estimate(self, now: int, sender: str, interval: int, prosumer: str, import_wh: int,
                        export_wh: int) -> str | None:
        """``Audit.settle_estimate`` and the Settlement's ``post_estimate`` it calls: the export booked as PV up to
        the PV peak over the interval, the rest as battery discharge."""
        if sender != self.auditor:
            return "audit: caller is not auditor"
        if not self.isolated.get(prosumer, False):
            return "audit: not isolated"
        lim = self.limits[prosumer]
        if not estimate_within_limits(lim, self.terms.interval_s, import_wh, export_wh):
            return "audit: estimate above limits"
        pv_wh = min(export_wh, lim.pv_w * self.terms.interval_s // SECONDS_PER_HOUR)
        reason = self._reading_problem(interval, prosumer, import_wh, export_wh, pv_wh, export_wh - pv_wh)
        if reason is None:
            self._settle(now, interval, prosumer, import_wh, export_wh)
        return reason
