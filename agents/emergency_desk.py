"""The market operator's emergency desk: deploys ``EmergencyAccess``, declares the study's emergency, grants the crew.

With ``emergency`` in the study (`gridledger.study_privacy.Emergency`)
the desk deploys ``EmergencyAccess`` on the market's registry before the
charging coordination (which takes its address, so the crew's overrides
are checked against the grant). In the ledger's first block at or after
``declare_s`` the operator declares the emergency and grants the service
crew the scope of overriding charging admissions over the study's
household (every household if none) for ``grant_s``; the grant ends on
its own, at its expiry or the emergency's end.
"""

from __future__ import annotations

from gridledger.contracts import emergency
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet
from gridledger.contracts.emergency import NOBODY
from gridledger.contracts.market import MarketAddresses
from gridledger.roster import Roster

class EmergencyDesk:
    """The ledger's side of emergency access: the contract, the crew's account, whether the emergency is declared."""

    def __init__(self, sc: Roster, address: str, crew: str, subject: str):
        self.sc, self.address, self.crew, self.subject = sc, address, crew, subject
        self.declared = False

    @classmethod
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses, crew: str,
               prosumers: list[str]) -> EmergencyDesk:
        """Deploy ``EmergencyAccess`` on the market's registry; `prosumers` are the accounts, in roster order."""
        spec = sc.study.emergency
        names = [p.name for p in sc.prosumers]
        subject = prosumers[names.index(spec.household)] if spec.household else NOBODY
        return cls(sc, emergency.deploy_emergency_access(chain, operator, addresses.registry), crew, subject)

    def duties(self, operator: Wallet, time_s: float) -> list[bytes]:
        """The declaration and the crew's grant, once, in the first block at or after ``declare_s``."""
        spec = self.sc.study.emergency
        if self.declared or time_s < spec.declare_s:
            return []
        self.declared = True
        return [emergency.declare(operator, self.address, spec.reason, spec.duration_s),
                emergency.grant(operator, self.address, self.crew, emergency.SCOPE_OVERRIDE_CHARGING, self.subject,
                                spec.grant_s)]
