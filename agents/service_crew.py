"""The service crew during a declared emergency: cuts the charging admissions the study lists, and records the answer.

The crew holds its own key and no market role (`EmergencyAccess` refuses
to grant a role holder). At each override's ``at_s`` it signs
``ChargingCoordination.override`` for the window of the block that will
mine it (`gridledger.schedule.next_block_s`); the contract checks the
crew's grant and cuts the admission, or refuses with the grant's reason
("emergency: expired", "emergency: out of scope", ...), which comes back
in the receipt and is recorded: part ``service``, one entry per override.
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.contracts import charging
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.federation import LEDGER_ENDPOINT
from gridledger.messages import decode
from gridledger.results import Part
from gridledger.roster import Roster
from gridledger.schedule import SERVICE_OFFSET_S, next_block_s
from gridledger.units import W_PER_KW

log = logging.getLogger("gridledger.service")

OVERRIDDEN = "overridden"


class ServiceCrew:
    """The crew's overrides, indexed like ``emergency.overrides``, and what became of each."""

    def __init__(self, sc: Roster, secret: bytes):
        self.sc = sc
        self.account = derive_account(secret, "service")
        self.accounts = {p.name: derive_account(secret, f"prosumer/{p.name}").address for p in sc.prosumers}
        self.wallet: Wallet | None = None
        self.charging: str | None = None
        self.sent: dict[int, int] = {}
        self.outcome = [""] * len(sc.study.emergency.overrides)

    def join(self, notice: dict) -> None:
        """Sign for the chain and the ``ChargingCoordination`` named in the ledger's deployment `notice`."""
        self.wallet = Wallet(self.account, notice["chain_id"])
        self.charging = notice["charging"]

    def act(self, time_s: float) -> list[bytes]:
        """The signed overrides due at `time_s`, each for the window of the block that mines it."""
        study = self.sc.study
        due = [i for i, o in enumerate(study.emergency.overrides) if o.at_s + SERVICE_OFFSET_S == time_s]
        if not due:
            return []
        window = int(next_block_s(study, time_s) // study.market_interval_s)
        txs = []
        for i in due:
            override = study.emergency.overrides[i]
            self.sent[self.wallet.nonce] = i
            txs.append(charging.override(self.wallet, self.charging, window, self.accounts[override.household],
                                         round(override.admitted_kw * W_PER_KW), study.emergency.reason))
        return txs

    def receive(self, messages: list[tuple[str, bytes]]) -> None:
        """Record each override's receipt: cut, or the contract's reason."""
        for source, payload in messages:
            body = decode(payload)
            if source != LEDGER_ENDPOINT or body["type"] != "receipts":
                continue
            for receipt in body["receipts"]:
                i = self.sent.get(receipt["nonce"])
                if i is not None:
                    self.outcome[i] = OVERRIDDEN if receipt["status"] else receipt["revert_reason"]
                    if not receipt["status"]:
                        log.warning("override %d refused: %s", i, receipt["revert_reason"])

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
        return part
