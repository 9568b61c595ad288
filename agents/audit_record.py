"""The ledger's record of the ``Audit`` contract: flags, their outcome and amounts, isolations, estimates.

Kept from the events of each block the ledger mines (``Flagged``,
``Resolved``, ``Isolated`` of the audit; ``Settled`` and ``Estimated`` of
the Settlement) and, at the end of the run, each flag as the contract
stores it (`gridledger.contracts.audit.flag_of`): what it held and, once
confirmed, where the hold went (`confirmation_split`).
"""

from __future__ import annotations

import numpy as np

from gridledger.agents.blocks import MinedBlock
from gridledger.contracts import audit as audit_contract
from gridledger.contracts.audit_reference import Status, confirmation_split
from gridledger.contracts.chain import Chain
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.units import tokens

STATUS_NAMES = tuple(status.name.lower() for status in Status)
NEVER_ISOLATED = -1
"""``audit_isolated_interval`` of a meter never isolated: its ``_FillValue`` (read back as NaN)."""


class AuditRecord:
    """Per meter-interval outcome of the audit on chain, in the study's interval and prosumer order."""

    def __init__(self, sc: Roster, prosumer_addresses: list[str], audit_address: str):
        n_int, n_pro = sc.study.n_intervals, len(sc.prosumers)
        self.sc, self.address, self.addresses = sc, audit_address, prosumer_addresses
        self.index_of = {a: i for i, a in enumerate(prosumer_addresses)}
        self.status = np.zeros((n_int, n_pro), dtype=np.int8)
        self.flag_mined_s = np.full((n_int, n_pro), np.nan)
        self.held = np.zeros((n_int, n_pro))
        self.restituted = np.zeros((n_int, n_pro))
        self.penalty = np.zeros((n_int, n_pro))
        self.estimated = np.zeros((n_int, n_pro), dtype=np.int8)
        self.settled_wh = {name: np.zeros((n_int, n_pro), dtype=np.int64) for name in ("import", "export")}
        self.isolated_at = np.full(n_pro, NEVER_ISOLATED, dtype=np.int32)

    def block(self, block: MinedBlock, time_s: float) -> None:
        """Keep the audit's and the Settlement's audit events of a block mined at `time_s`. [s]"""
        for name, args in block.events_of(audit_contract.CONTRACT):
            if name == "Flagged":
                k, i = args["interval"], self.index_of[args["prosumer"]]
                self.status[k, i], self.flag_mined_s[k, i] = Status.FLAGGED, time_s
            elif name == "Resolved":
                k, i = args["interval"], self.index_of[args["prosumer"]]
                self.status[k, i] = Status.CONFIRMED if args["confirmed"] else Status.REJECTED
            elif name == "Disputed":
                self.status[args["interval"], self.index_of[args["prosumer"]]] = Status.DISPUTED
            elif name == "Isolated":
                self.isolated_at[self.index_of[args["prosumer"]]] = args["interval"]
        for name, args in block.events_of("Settlement"):
            if name == "Settled":
                k, i = args["interval"], self.index_of[args["prosumer"]]
                self.settled_wh["import"][k, i], self.settled_wh["export"][k, i] = args["import_wh"], args["export_wh"]
            elif name == "Estimated":
                self.estimated[args["interval"], self.index_of[args["prosumer"]]] = 1

    def close(self, chain: Chain) -> None:
        """Read every flag as stored: what it held, and where a confirmed one's hold went."""
        for k, i in zip(*np.nonzero(self.status)):
            flag = audit_contract.flag_of(chain, self.address, int(k), self.addresses[i])
            self.held[k, i] = tokens(flag.held_wei)
            if flag.status == Status.CONFIRMED:
                to_operator, to_pool, _ = confirmation_split(flag.held_wei, flag.overpaid_wei, flag.penalty_wei)
                self.restituted[k, i], self.penalty[k, i] = tokens(to_operator), tokens(to_pool)

    def write(self, part: Part) -> None:
        """Add the audit's variables to the ledger's results part."""
        part.add("audit_status", ("interval", "prosumer"), self.status, "1",
                 "state of the meter-interval in the Audit contract at the end of the run")
        part.ds["audit_status"].attrs.update(flag_values=np.arange(len(Status), dtype=np.int8),
                                             flag_meanings=" ".join(STATUS_NAMES))
        part.add("audit_flag_mined_s", ("interval", "prosumer"), self.flag_mined_s, "s",
                 "simulation time of the block that mined the flag (NaN: not flagged on chain)")
        part.add("audit_held_token", ("interval", "prosumer"), self.held, "token",
                 "credit the flag held in the Settlement")
        part.add("audit_restituted_token", ("interval", "prosumer"), self.restituted, "token",
                 "held credit a confirmed flag paid back to the operator (the overpaid part)")
        part.add("audit_penalty_token", ("interval", "prosumer"), self.penalty, "token",
                 "held credit a confirmed flag paid into the penalty pool")
        part.add("settled_from_estimate", ("interval", "prosumer"), self.estimated, "1",
                 "interval of an isolated meter settled from the auditor's estimate")
        part.add("settled_import_wh", ("interval", "prosumer"), self.settled_wh["import"], "Wh",
                 "import register as settled (the reading, or the estimate)")
        part.add("settled_export_wh", ("interval", "prosumer"), self.settled_wh["export"], "Wh",
                 "export register as settled (the reading, or the estimate)")
        part.add("audit_isolated_interval", ("prosumer",), self.isolated_at, "1",
                 "interval whose flag isolated the meter (fill value: never isolated)", fill_value=NEVER_ISOLATED)
