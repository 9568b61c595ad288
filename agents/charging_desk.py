"""The market operator's EV charging desk: deployment, allocation at each gate, and its record.

Window w of ``ChargingCoordination.vy`` is market interval w. At
deployment the desk registers every EV of the study's fleet
(`gridledger.agents.devices.ev_fleet`) for its owner's account, with the
battery capacity and charger rating the fleet charges with. The DSO
posts each window's headroom and the EVs request charging before the
window's gate; at the gate the ledger's operator calls ``allocate`` (anyone
may), if the headroom was posted, and the admitted power goes to the
agents. With emergency access (``emergency``) the contract checks a
service crew's overrides against its grant; each override the desk sees
(``ChargingOverridden``) goes to the agents as a cut of that admission.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from gridledger.agents.ancillary_terms import storage_registrations
from gridledger.agents.devices import ev_fleet
from gridledger.contracts import charging
from gridledger.contracts import flexibility as flex
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.emergency import NOBODY
from gridledger.contracts.market import MarketAddresses
from gridledger.contracts.operated import ROLE_OPERATOR
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster

CONTRACT = charging.CONTRACT


class ChargingDesk:
    """The ledger's side of EV charging coordination.

    Parameters
    ----------
    sc : Roster
        The study's scenario (number of intervals).
    address : str
        Address of the ``ChargingCoordination`` contract.
    """

    def __init__(self, sc: Roster, address: str):
        self.sc, self.address = sc, address
        n = sc.study.n_intervals
        self.requests = np.zeros(n, dtype=np.int64)
        self.requested_w = np.zeros(n, dtype=np.int64)
        self.admitted_w = np.zeros(n, dtype=np.int64)
        self.headroom_w = np.zeros(n, dtype=np.int64)
        self.overridden_w = np.zeros(n, dtype=np.int64)

    @classmethod
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses, dso: str,
               prosumers: list[str], emergency_access: str = NOBODY) -> ChargingDesk:
        """Deploy the contract on the market's registry, register the study's EVs and give the DSO the operator role.

        `prosumers` are the prosumers' accounts, indexed like `Roster.prosumers`;
        `emergency_access` the ``EmergencyAccess`` whose grantees may cut admissions (none by default).
        """
        study = sc.study
        address = charging.deploy_charging(chain, operator, registry=addresses.registry,
                                           start_timestamp=study.start_timestamp, window_s=study.market_interval_s,
                                           request_lead_s=study.market.gate_closure_s,
                                           min_request_w=study.market.charging_min_request_w,
                                           emergency_access=emergency_access)
        units = ev_fleet(sc).registrations(prosumers) + storage_registrations(sc, prosumers)
        registrations = [charging.register_ev(operator, address, r) for r in units]
        grant = operator.transact(addresses.registry, encode_call("Registry", "grant_role", dso, ROLE_OPERATOR),
                                  gas=flex.GAS_APPROVE)
        for receipt in chain.mine([*registrations, grant], chain.timestamp + 1):
            if not receipt.ok:
                raise RuntimeError(f"charging setup: registering the EVs or granting the DSO the operator role "
                                   f"failed: {receipt.revert_reason}")
        return cls(sc, address)

    def requested(self, events: Iterable[tuple[str, dict]]) -> None:
        """Count the charging requests and record the headrooms among the contract's events.

        Windows past the study's last interval are not recorded.
        """
        for name, args in events:
            if name == "ChargeRequested" and args["window"] < len(self.requests):
                self.requests[args["window"]] += 1
                self.requested_w[args["window"]] += args["power_w"]
            elif name == "HeadroomPosted" and args["window"] < len(self.requests):
                self.headroom_w[args["window"]] = args["headroom_w"]

    def gate(self, sender: Wallet, interval: int) -> list[bytes]:
        """Signed ``allocate`` of `interval`'s window if its headroom was posted, else nothing."""
        if not self.headroom_w[interval]:
            return []
        return [charging.allocate(sender, self.address, interval, n_requests=int(self.requests[interval]))]

    def allocated(self, events: Iterable[tuple[str, dict]], interval: int) -> dict[str, int]:
        """Record and return the power admitted per account by `interval`'s allocation events. [W]"""
        admitted = {args["account"]: args["power_w"] for name, args in events if name == "Allocated"}
        self.admitted_w[interval] = sum(admitted.values())
        return admitted

    def overridden(self, events: Iterable[tuple[str, dict]]) -> list[dict]:
        """Record the cuts among the contract's events; each as the ``charging_cut`` fields (window, account, W)."""
        cuts = []
        for name, args in events:
            if name == "ChargingOverridden":
                if args["window"] < len(self.overridden_w):
                    self.overridden_w[args["window"]] += args["old_w"] - args["new_w"]
                cuts.append({"window": args["window"], "account": args["account"], "admitted_w": args["new_w"]})
        return cuts

    def write(self, part: Part) -> None:
        """Add the desk's per-interval record to the ledger's results part."""
        part.add("charging_requests", ("interval",), self.requests, "1", "EV charging requests of the window",
                 cell_methods=INTERVAL_SUM)
        part.add("charging_requested_w", ("interval",), self.requested_w, "W", "charging power requested")
        part.add("charging_admitted_w", ("interval",), self.admitted_w, "W", "charging power admitted")
        part.add("charging_overridden_w", ("interval",), self.overridden_w, "W",
                 "charging power cut by emergency overrides")
