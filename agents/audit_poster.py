"""The auditor's transactions to the ``Audit`` contract: flags, finalizations, estimates of isolated meters.

After each check (`gridledger.agents.audit_desk`) the auditor signs:

- a ``flag`` for every meter-interval its latest check of the interval
  flagged, once: as soon as every reading it waits for has arrived, or
  at the last check whose transactions still reach the chain within the
  flag window (`FlagTiming`), with its estimate bounded by the meter's
  registered limits, the normalized residual and the chi-squared
  statistic in thousandths, and the evidence hash;
- a ``finalize`` for every flag mined at least ``dispute_window_s`` ago
  (nobody in a run disputes: the prosumer agents do not see their true
  registers, so the confirmation is the contract's default);
- a ``settle_estimate`` for every interval of an isolated meter whose
  reading is missing (the Settlement refuses it), from the estimate.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from gridledger.agents.auditor import IntervalAudit
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.contracts import audit as audit_contract
from gridledger.contracts.audit_reference import Limits, estimate_bounds_wh
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.scenario import Scenario

log = logging.getLogger("gridledger.auditor")

MILLI = 1000
"""The contract's fixed-point scale of the residual and the chi-squared statistic."""


@dataclass(frozen=True)
class FlagTiming:
    """When the flags of an interval go out.

    A reading of interval k is mined about one interval after k ends and
    checked a quarter second later; what the auditor sends is mined at the
    ledger's next block, at most one interval later. Waiting for late
    readings may therefore last ``flag_window_s / interval_s - 2`` checks.

    Attributes
    ----------
    interval_s : int
        Market interval. [s]
    wait_checks : int
        Checks after the first one during which the auditor waits for
        missing readings before flagging with what it has.
    duration_s : int
        The study's duration: its last check waits for nothing. [s]
    """

    interval_s: int
    wait_checks: int
    duration_s: int

    @classmethod
    def of(cls, interval_s: int, flag_window_s: int, duration_s: int) -> FlagTiming:
        return cls(interval_s, max(0, flag_window_s // interval_s - 2), duration_s)

    def last_chance(self, interval: int, time_s: float) -> bool:
        """Whether a check at `time_s` is the last that may still flag `interval`'s on-time readings."""
        return time_s >= min((interval + 1 + self.wait_checks) * self.interval_s, self.duration_s)


def bounded_estimate(estimate_wh: int, meter_rating_w: int, pv_w: int, battery_w: int,
                     interval_s: int) -> tuple[int, int]:
    """(import_wh, export_wh) of a net-import estimate, within the limits ``Audit`` accepts
    (`gridledger.contracts.audit_reference.estimate_bounds_wh`, without the reading tolerance). [Wh]"""
    import_max_wh, export_max_wh = estimate_bounds_wh(Limits(meter_rating_w, pv_w, battery_w), interval_s)
    return min(max(estimate_wh, 0), import_max_wh), min(max(-estimate_wh, 0), export_max_wh)


class AuditPoster:
    """What the auditor has sent to and learnt from the ``Audit`` contract, and what it signs next."""

    def __init__(self, sc: Scenario, secret: bytes):
        study, spec = sc.study, sc.study.audit
        self.account = derive_account(secret, "auditor")
        self.addresses = [derive_account(secret, f"prosumer/{p.name}").address for p in sc.prosumers]
        self.position = {a: i for i, a in enumerate(self.addresses)}
        self.limits = prosumer_limits(sc)
        self.interval_s, self.dispute_window_s = study.market_interval_s, spec.dispute_window_s
        self.timing = FlagTiming.of(study.market_interval_s, spec.flag_window_for(study.market_interval_s),
                                     study.duration_s)
        self.wallet: Wallet | None = None
        self.audit: str | None = None
        self.sent: set[tuple[int, int]] = set()
        self.mined: dict[tuple[int, int], int] = {}
        self.finalized: set[tuple[int, int]] = set()
        self.estimated: set[tuple[int, int]] = set()
        self.isolated: set[int] = set()

    def join(self, notice: dict) -> None:
        """Take the ledger's deployment `notice`: the chain id to sign for and the audit's address."""
        self.wallet = Wallet(self.account, notice["chain_id"])
        self.audit = notice["audit"]

    def learn(self, body: dict) -> None:
        """Take the flags a block mined and the meters it isolated (a ``readings`` message's body)."""
        for flag in body["flags"]:
            i = self.position.get(flag["prosumer"])
            if i is not None:
                self.mined[int(flag["interval"]), i] = int(flag["flagged_s"])
        for prosumer in body["isolated"]:
            if (i := self.position.get(prosumer)) is not None:
                self.isolated.add(i)
                log.warning("meter of %s isolated", prosumer)

    def transactions(self, latest: dict[int, IntervalAudit], on_chain: dict[int, set[int]], waiting: dict[int, bool],
                     time_s: float) -> list[bytes]:
        """The flags, finalizations and estimates due at `time_s`, signed.

        Parameters
        ----------
        latest : dict of int to IntervalAudit
            The latest check of each interval.
        on_chain : dict of int to set of int
            Per interval, the prosumers whose reading the chain settled.
        waiting : dict of int to bool
            Per interval, whether a reading the auditor waits for is missing.
        time_s : float
            Simulation time of the check. [s]
        """
        if self.wallet is None or self.audit is None:
            return []
        txs = []
        for k, result in sorted(latest.items()):
            if result.failed:
                continue
            if not waiting.get(k, False) or self.timing.last_chance(k, time_s):
                txs += self._flags(result, on_chain.get(k, set()))
            txs += self._estimates(result, on_chain.get(k, set()))
        for (k, i), flagged_s in sorted(self.mined.items()):
            if (k, i) not in self.finalized and time_s >= flagged_s + self.dispute_window_s:
                self.finalized.add((k, i))
                txs.append(audit_contract.finalize(self.wallet, self.audit, k, self.addresses[i]))
        return txs

    def _flags(self, result: IntervalAudit, settled: set[int]) -> list[bytes]:
        k, txs = result.interval, []
        for i, rn in sorted(result.flagged.items()):
            if (k, i) in self.sent or i not in settled:
                continue
            self.sent.add((k, i))
            imp, exp = self._bounded(i, result.estimate_wh[i])
            txs.append(audit_contract.flag(
                self.wallet, self.audit, k, self.addresses[i], estimate_import_wh=imp, estimate_export_wh=exp,
                residual_milli=round(rn * MILLI), chi2_milli=round(result.objective * MILLI), evidence=result.evidence))
        return txs

    def _estimates(self, result: IntervalAudit, settled: set[int]) -> list[bytes]:
        k, txs = result.interval, []
        for i in sorted(self.isolated):
            if (k, i) in self.estimated or i in settled or i not in result.estimate_wh:
                continue
            self.estimated.add((k, i))
            imp, exp = self._bounded(i, result.estimate_wh[i])
            txs.append(audit_contract.settle_estimate(self.wallet, self.audit, k, self.addresses[i],
                                                      import_wh=imp, export_wh=exp))
        return txs

    def _bounded(self, i: int, estimate_wh: int) -> tuple[int, int]:
        lim = self.limits[i]
        return bounded_estimate(estimate_wh, lim.meter_rating_w, lim.pv_w, lim.battery_w, self.interval_s)
