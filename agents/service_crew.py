"""The service crew during a declared emergency: cuts charging admissions and reads households' data, as listed.

The crew holds its own key and no market role (`EmergencyAccess` refuses
to grant a role holder). At each override's ``at_s`` it signs
``ChargingCoordination.override`` for the window of the block that will
mine it (`gridledger.schedule.next_block_s`); the contract checks the
crew's grant and cuts the admission, or refuses with the grant's reason
("emergency: expired", "emergency: out of scope", ...). At each read's
``at_s`` it logs the read with ``EmergencyAccess.use`` (refused the same
way); the household's gateway serves a logged read the chain allows
(``emergency_data``). Part ``service``: each override's and each read's
outcome, and the steps each read got.
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.agents.emergency_reader import read_note
from gridledger.contracts import charging, emergency
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.federation import DER_ENDPOINT, LEDGER_ENDPOINT
from gridledger.messages import decode
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.schedule import SERVICE_OFFSET_S, next_block_s
from gridledger.units import W_PER_KW

log = logging.getLogger("gridledger.service")

OVERRIDDEN = "overridden"
LOGGED = "logged"
"""A read the chain logged, its data not (yet) served."""
SERVED = "served"


class ServiceCrew:
    """The crew's overrides, indexed like ``emergency.overrides``, and what became of each."""

    def __init__(self, sc: Roster, secret: bytes):
        self.sc = sc
        self.account = derive_account(secret, "service")
        self.accounts = {p.name: derive_account(secret, f"prosumer/{p.name}").address for p in sc.prosumers}
        self.wallet: Wallet | None = None
        self.charging: str | None = None
        self.sent: dict[int, tuple[str, int]] = {}
        self.outcome = [""] * len(sc.study.emergency.overrides)
        self.read_outcome = [""] * len(sc.study.emergency.reads)
        self.read_steps = np.zeros(len(sc.study.emergency.reads), dtype=np.int64)
        self.emergency: str | None = None

    def join(self, notice: dict) -> None:
        """Sign for the chain and the ``ChargingCoordination`` named in the ledger's deployment `notice`."""
        self.wallet = Wallet(self.account, notice["chain_id"])
        self.charging = notice["charging"]
        self.emergency = notice.get("emergency_access")

    def act(self, time_s: float) -> list[bytes]:
        """The signed overrides due at `time_s`, each for the window of the block that mines it, then the reads
        due, each logged with ``use``."""
        spec = self.sc.study.emergency
        txs = []
        for i, override in enumerate(spec.overrides):
            if override.at_s + SERVICE_OFFSET_S == time_s:
                window = int(next_block_s(self.sc.study, time_s) // self.sc.study.market_interval_s)
                self.sent[self.wallet.nonce] = ("override", i)
                txs.append(charging.override(self.wallet, self.charging, window, self.accounts[override.household],
                                             round(override.admitted_kw * W_PER_KW), spec.reason))
        for i, read in enumerate(spec.reads):
            if read.at_s + SERVICE_OFFSET_S == time_s:
                self.sent[self.wallet.nonce] = ("read", i)
                txs.append(emergency.use(self.wallet, self.emergency, emergency.SCOPE_READ_DATA,
                                         self.accounts[read.household], read_note(read.hours)))
        return txs

    def receive(self, messages: list[tuple[str, bytes]]) -> None:
        """Record each action's receipt (done, or the contract's reason) and the steps each served read got."""
        reads = self.sc.study.emergency.reads
        for source, payload in messages:
            body = decode(payload)
            if source == DER_ENDPOINT and body["type"] == "emergency_data" and body["account"] == self.account.address:
                for i, read in enumerate(reads):
                    if read.household == body["household"] and self.read_outcome[i] == LOGGED:
                        self.read_outcome[i], self.read_steps[i] = SERVED, len(body["values_kw"])
                        break
            elif source == LEDGER_ENDPOINT and body["type"] == "receipts":
                for receipt in body["receipts"]:
                    self._receipt(receipt)

    def _receipt(self, receipt: dict) -> None:
        kind, i = self.sent.get(receipt["nonce"], (None, None))
        if kind is None:
            return
        done = OVERRIDDEN if kind == "override" else LOGGED
        outcome = done if receipt["status"] else receipt["revert_reason"]
        (self.outcome if kind == "override" else self.read_outcome)[i] = outcome
        if not receipt["status"]:
            log.warning("%s %d refused: %s", kind, i, receipt["revert_reason"])

    def part(self) -> Part:
        """The ``service`` results part: each override's time, household, power and outcome."""
        overrides = self.sc.study.emergency.overrides
        part = Part(self.sc, "service")
        part.add("override_at_s", ("override",), [o.at_s for o in overrides], "s", "when the crew signed the override")
        part.add("override_household", ("override",), np.array([o.household for o in overrides], dtype=object), "1",
                 "the household whose EV admission the override cuts")
        part.add("override_admitted_kw", ("override",), [o.admitted_kw for o in overrides], "kW",
                 "the admission the override asked for")
        part.add("override_outcome", ("override",), np.array(self.outcome, dtype=object), "1",
                 f"'{OVERRIDDEN}', the contract's reason for refusing it, or empty if no receipt came")
        reads = self.sc.study.emergency.reads
        part.add("read_household", ("read",), np.array([r.household for r in reads], dtype=object), "1",
                 "the household whose data the read asked for")
        part.add("read_outcome", ("read",), np.array(self.read_outcome, dtype=object), "1",
                 f"'{SERVED}', '{LOGGED}' (logged but not served), the contract's reason for refusing the use, or "
                 "empty if no receipt came")
        part.add("read_steps", ("read",), self.read_steps, "1", "power-flow steps of data the read was served")
        return part
