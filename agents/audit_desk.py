"""The auditor federate's bookkeeping: what arrived for which interval, when to (re)check, what it found.

Sensors come from the grid (``sensors``, only from ``grid/meters``), the
settled readings, the audit's flags and isolations from the ledger
(``readings``) and the receipts of the auditor's own transactions
(``receipts``), both only from ``ledger/tx`` (an audited study has one
chain); anything else is dropped with a warning. At each check time
every interval whose sensors have arrived and that is unchecked, or got
readings since its last check, is checked (`gridledger.agents.auditor`):
an interval whose readings are late is checked with forecasts first and
again when they come, the later result replacing the earlier. Then the
auditor signs what is due on chain (`gridledger.agents.audit_poster`).
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.agents.audit_poster import AuditPoster
from gridledger.agents.auditor import Auditor, IntervalAudit
from gridledger.contracts.keys import derive_account
from gridledger.federation import GRID_ENDPOINT, LEDGER_ENDPOINT
from gridledger.messages import decode
from gridledger.results import INTERVAL_SUM, Part
from gridledger.scenario import Scenario
from gridledger.units import PU

log = logging.getLogger("gridledger.auditor")


class AuditDesk:
    """Collects an auditor's inputs and keeps its findings, indexed like the study's intervals and prosumers."""

    def __init__(self, sc: Scenario, secret: bytes):
        study = sc.study
        self.sc = sc
        self.auditor = Auditor(sc, study.audit)
        self.position = {derive_account(secret, f"prosumer/{p.name}").address: i for i, p in enumerate(sc.prosumers)}
        n_int, n_pro = study.n_intervals, len(sc.prosumers)
        self.sensors: dict[int, np.ndarray] = {}
        self.readings: dict[int, dict[int, tuple[int, int]]] = {}
        self.checked_with: dict[int, int] = {}
        self.rn = np.zeros((n_int, n_pro))
        self.flagged = np.zeros((n_int, n_pro), dtype=np.int8)
        self.late = np.zeros((n_int, n_pro), dtype=np.int8)
        self.flagged_at_s = np.full((n_int, n_pro), np.nan)
        self.objective = np.full(n_int, np.nan)
        self.chi2_threshold = np.full(n_int, np.nan)
        self.energy_balance_wh = np.full(n_int, np.nan)
        self.vm_pu = np.full((n_int, len(sc.net.bus)), np.nan)
        self.checks = np.zeros(n_int, dtype=np.int16)
        self.latest: dict[int, IntervalAudit] = {}
        self.poster = AuditPoster(sc, secret)

    def join(self, notice: dict) -> None:
        """Take the ledger's deployment `notice` (`AuditPoster.join`)."""
        self.poster.join(notice)

    def receive(self, messages: list[tuple[str, bytes]]) -> None:
        """Keep sensor values and settled readings; drop what comes from the wrong endpoint."""
        for source, payload in messages:
            body = decode(payload)
            if body.get("type") == "sensors" and source == GRID_ENDPOINT:
                self.sensors[int(body["interval"])] = np.array(body["values"], dtype=float)
            elif body.get("type") == "readings" and source == LEDGER_ENDPOINT:
                for r in body["readings"]:
                    i = self.position.get(r["prosumer"])
                    if i is not None:
                        self.readings.setdefault(int(r["interval"]), {})[i] = (int(r["import_wh"]), int(r["export_wh"]))
                self.poster.learn(body)
            elif body.get("type") == "receipts" and source == LEDGER_ENDPOINT:
                for receipt in body["receipts"]:
                    if not receipt["status"]:
                        log.error("auditor transaction %s failed: %s", receipt["tx_hash"], receipt["revert_reason"])
            else:
                log.warning("%s message from %s dropped", body.get("type"), source)

    def check_due(self, time_s: float) -> list[IntervalAudit]:
        """Check every interval that has sensors and is unchecked or has new readings; keep and return the results."""
        done = []
        for k in sorted(self.sensors):
            arrived = len(self.readings.get(k, {}))
            if self.checked_with.get(k) == arrived:
                continue
            result = self.auditor.check(k, self.sensors[k], self.readings.get(k, {}),
                                        estimate_for=frozenset(self.poster.isolated))
            self._keep(result, time_s, first=k not in self.checked_with)
            self.latest[k] = result
            self.checked_with[k] = arrived
            done.append(result)
        return done

    def transactions(self, time_s: float) -> list[bytes]:
        """The flags, finalizations and estimates due after the check at `time_s`, signed (`AuditPoster`).

        An interval waits while the reading of a meter that is not
        isolated is missing.
        """
        n = len(self.sc.prosumers)
        on_chain = {k: set(self.readings.get(k, {})) for k in self.latest}
        waiting = {k: any(i not in on_chain[k] and i not in self.poster.isolated for i in range(n))
                   for k in self.latest}
        return self.poster.transactions(self.latest, on_chain, waiting, time_s)

    def _keep(self, result: IntervalAudit, time_s: float, first: bool) -> None:
        k = result.interval
        self.checks[k] += 1
        if result.failed:
            log.warning("interval %d not audited: %s", k, result.failed)
            return
        self.objective[k], self.chi2_threshold[k] = result.objective, result.chi2_threshold
        self.energy_balance_wh[k] = result.energy_balance_wh
        self.vm_pu[k] = result.vm_pu
        if first:
            self.late[k, list(result.missing)] = 1
        self.rn[k] = 0.0
        self.flagged[k] = 0
        for i, rn in result.flagged.items():
            self.rn[k, i], self.flagged[k, i] = rn, 1
            if np.isnan(self.flagged_at_s[k, i]):
                self.flagged_at_s[k, i] = time_s
        if result.flagged:
            log.info("interval %d: flagged %s", k, ", ".join(f"{self.sc.prosumers[i].name} (rN {rn:.1f})"
                                                              for i, rn in result.flagged.items()))

    def part(self) -> Part:
        """The auditor's results part."""
        part = Part(self.sc, "auditor")
        part.add("audit_flagged", ("interval", "prosumer"), self.flagged, "1",
                 "meter-interval flagged by the largest normalized residual test")
        part.add("audit_rn", ("interval", "prosumer"), self.rn, "1",
                 "normalized residual of a flagged meter's measurement (0: not flagged)")
        part.add("audit_flagged_at_s", ("interval", "prosumer"), self.flagged_at_s, "s",
                 "simulation time of the check that first flagged the meter-interval (NaN: never)")
        part.add("audit_late", ("interval", "prosumer"), self.late, "1",
                 "the reading had not arrived at the interval's first check (forecast used)")
        part.add("audit_objective", ("interval",), self.objective, "1", "WLS objective J of the interval's estimate")
        part.add("audit_chi2_threshold", ("interval",), self.chi2_threshold, "1",
                 "chi-squared threshold of J at the study's audit.chi2_alpha")
        part.add("energy_balance_wh", ("interval",), self.energy_balance_wh, "Wh",
                 "substation energy - estimated losses - metered and forecast consumption")
        part.add("vm_est_pu", ("interval", "bus"), self.vm_pu, PU, "estimated bus voltage magnitude")
        part.add("audit_checks", ("interval",), self.checks, "1", "estimates run for the interval (late readings redo it)",
                 cell_methods=INTERVAL_SUM)
        return part
