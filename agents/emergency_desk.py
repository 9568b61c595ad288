"""The market operator's emergency desk: deploys ``EmergencyAccess``, declares the study's emergency, grants the crew.

With ``emergency`` in the study (`gridledger.study_privacy.Emergency`)
the desk deploys ``EmergencyAccess`` on the market's registry before the
charging coordination (which takes its address, so the crew's overrides
are checked against the grant). In the ledger's first block at or after
``declare_s`` the operator declares the emergency and grants the service
crew the scopes its actions need (overriding charging admissions,
reading data) over the study's household (every household if none) for
``grant_s``; the grant ends on its own, at its expiry or the emergency's
end. After each block the desk relays every logged read (``Used`` with
the read scope) to the households' gateways with the chain's answer to
``refusal`` for it, which the gateway asks before it serves
(`gridledger.agents.emergency_reader`).
"""

from __future__ import annotations

from gridledger.agents.blocks import MinedBlock
from gridledger.contracts import emergency
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet
from gridledger.contracts.emergency import NOBODY
from gridledger.contracts.market import MarketAddresses
from gridledger.roster import Roster

class EmergencyDesk:
    """The ledger's side of emergency access: the contract, the crew's account, whether the emergency is declared."""

    def __init__(self, sc: Roster, chain: Chain, address: str, crew: str, subject: str):
        self.sc, self.chain, self.address, self.crew, self.subject = sc, chain, address, crew, subject
        self.declared = False

    @classmethod
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses, crew: str,
               prosumers: list[str]) -> EmergencyDesk:
        """Deploy ``EmergencyAccess`` on the market's registry; `prosumers` are the accounts, in roster order."""
        spec = sc.study.emergency
        names = [p.name for p in sc.prosumers]
        subject = prosumers[names.index(spec.household)] if spec.household else NOBODY
        return cls(sc, chain, emergency.deploy_emergency_access(chain, operator, addresses.registry), crew, subject)

    def duties(self, operator: Wallet, time_s: float) -> list[bytes]:
        """The declaration and the crew's grant, once, in the first block at or after ``declare_s``."""
        spec = self.sc.study.emergency
        if self.declared or time_s < spec.declare_s:
            return []
        self.declared = True
        scope = ((emergency.SCOPE_OVERRIDE_CHARGING if spec.overrides else 0)
                 | (emergency.SCOPE_READ_DATA if spec.reads else 0))
        return [emergency.declare(operator, self.address, spec.reason, spec.duration_s),
                emergency.grant(operator, self.address, self.crew, scope, self.subject, spec.grant_s)]

    def reads(self, block: MinedBlock) -> list[dict]:
        """The block's logged reads (``emergency_reads`` entries), each with the chain's ``refusal`` after it."""
        return [{"account": args["account"], "household": args["subject"], "note": args["note"],
                 "refusal": emergency.refusal(self.chain, self.address, args["account"], emergency.SCOPE_READ_DATA,
                                              args["subject"])}
                for name, args in block.events_of(emergency.CONTRACT)
                if name == "Used" and args["scope"] & emergency.SCOPE_READ_DATA]
