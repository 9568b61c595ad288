"""The market operator's pseudonym desk: deploys ``Pseudonyms``, blind-signs as the registrar, relays registrations.

With ``pseudonyms`` in the study the desk deploys the contract with the
households' classes (`gridledger.agents.pseudonym_plan`) and names it in
the registry before the start. In each "mine" block it:

1. relays, in a batch of the operator's right before the agents', every
   registration whose two halves (the owner's and the meter's,
   ``registration_halves``) it holds: a fresh pseudonym has no ether, the
   relay pays its gas;
2. after the block (whose tickets are then mined), answers every
   ``blind_requests`` message with a ``blind_signatures`` message to its
   sender: the registrar (`gridledger.contracts.pseudonyms.Registrar`)
   signs what it may and says why it refuses the rest.

It counts per interval the tickets, the registrations and the refused
ones, keeps every registered pseudonym (the Settlement owes each its
credit) and checks that the contract holds exactly the bonds of the
tickets not yet used.
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.agents.blocks import MinedBlock
from gridledger.agents.pseudonym_plan import bond_wei, household_of_pseudonyms, pseudonym_addresses, study_classes
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import MarketAddresses, read
from gridledger.messages import encode
from gridledger.results import INTERVAL_SUM, Part
from gridledger.roster import Roster

log = logging.getLogger(__name__)

RELAYED_REGISTRATIONS = "relayed registrations"


class PseudonymDesk:
    """The ledger's side of the pseudonyms: registrar and relay."""

    def __init__(self, sc: Roster, chain: Chain, chain_id: int, address: str, token: str, registrar: pn.Registrar,
                 modulus: int, pseudonyms: list[list[str]]):
        self.sc, self.chain, self.chain_id, self.address, self.token = sc, chain, chain_id, address, token
        self.registrar, self.modulus = registrar, modulus
        self.pseudonyms = pseudonyms
        self.household_of = household_of_pseudonyms(pseudonyms)
        self.halves: dict[tuple[str, str, int], dict[bool, dict]] = {}
        self.registered: list[str] = []
        n = sc.study.n_intervals
        self.counts = {kind: np.zeros(n, dtype=np.int64) for kind in ("tickets", "registered", "refused")}

    @classmethod
    def deploy(cls, sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses, secret: bytes,
               prosumers: list[str], meters: list[str]) -> PseudonymDesk:
        """Deploy ``Pseudonyms`` for the study's households and their classes, with a reserve of one bond per
        household (an interval's worth of pairs the registrar might displace); the registrar's key from `secret`, and
        (for the results) each household's pseudonyms from its owner's key."""
        study = sc.study
        key = pn.registrar_key(secret)
        classes, index = study_classes(sc)
        bond = bond_wei(sc)
        address = pn.deploy_pseudonyms(chain, operator, addresses.registry, addresses.settlement, addresses.token,
                                       key.modulus, study.start_timestamp, study.market_interval_s, bond, classes,
                                       reserve_wei=bond * len(sc.prosumers))
        registrar = pn.Registrar(key, chain.chain_id, address, dict(zip(prosumers, index, strict=True)), meters,
                                 lambda owner, k: pn.read(chain, address, "has_ticket", owner, k))
        owner_keys = [derive_account(secret, f"prosumer/{p.name}").key for p in sc.prosumers]
        return cls(sc, chain, chain.chain_id, address, addresses.token, registrar, key.n,
                   pseudonym_addresses(owner_keys, study.n_intervals))

    def notice(self) -> dict:
        """The contract's address and the registrar's modulus, for the ``deployed`` notice."""
        return {"address": self.address, "modulus": hex(self.modulus)}

    def _verifies(self, half: dict) -> bool:
        """Whether a half's signature is the registrar's on its pair and interval, under its class's exponent: a
        forged half would otherwise take the place of the real one and its registration revert."""
        is_meter = half["class_index"] == pn.METER_CLASS
        pair = (half["meter"], half["pseudonym"]) if is_meter else (half["pseudonym"], half["meter"])
        if not 0 <= half["class_index"] <= pn.MAX_CLASSES:
            return False
        h = pn.full_domain_hash(self.chain_id, self.address, *pair, half["interval"])
        return pn.verifies(self.modulus, h, int(half["signature"], 16), pn.window_exponent(half["interval"],
                                                                                            half["class_index"]))

    def relayed(self, operator: Wallet, bodies: list[dict]) -> list[bytes]:
        """The ``register`` transactions of every pair whose two halves are now held, the relay's, in the order of
        the pseudonyms' addresses (as good as random: the arrival order is the households'); keeps the halves still
        waiting for their other half and drops (logged) a half whose signature does not verify."""
        complete = []
        for body in bodies:
            for half in body["halves"]:
                if not self._verifies(half):
                    log.warning("registration half of %s for interval %d dropped: its signature does not verify",
                                half["pseudonym"], half["interval"])
                    continue
                key = (half["pseudonym"], half["meter"], half["interval"])
                held = self.halves.setdefault(key, {})
                held[half["class_index"] == pn.METER_CLASS] = half
                if len(held) == 2:
                    owner, meter = held[False], held[True]
                    del self.halves[key]
                    complete.append(pn.Registration(
                        owner["pseudonym"], owner["meter"], owner["interval"], owner["class_index"],
                        bytes.fromhex(owner["signature"][2:]), bytes.fromhex(meter["signature"][2:])))
        return [pn.register(operator, self.address, r) for r in sorted(complete, key=lambda r: r.pseudonym.lower())]

    def answers(self, requests: list[tuple[str, dict]]) -> list[tuple[str, bytes]]:
        """A ``blind_signatures`` message to the sender of each ``blind_requests`` (source, body)."""
        outbox = []
        for source, body in requests:
            signatures, refusals = [], []
            for row in body["requests"]:
                request = pn.BlindRequest(row["interval"], row["class_index"], int(row["blinded"], 16),
                                          bytes.fromhex(row["authorisation"][2:]))
                try:
                    signatures.append({"blinded": row["blinded"], "signature": hex(self.registrar.serve(request))})
                except pn.RegistrarRefusal as refusal:
                    refusals.append({"blinded": row["blinded"], "reason": str(refusal)})
                    log.warning("registrar refused a request for interval %d: %s", row["interval"], refusal)
            outbox.append((source, encode("blind_signatures", signatures=signatures, refusals=refusals)))
        return outbox

    def feed(self, interval: int, block: MinedBlock) -> bytes | None:
        """Count the block's tickets and registrations by the interval they are for, its refused registrations by
        the `interval` it was mined in; the ``pseudonyms_registered`` message for the meters, None if the block
        registered nothing (a meter whose pair did not register reads with its bound key)."""
        meters = []
        for name, args in block.events_of(pn.CONTRACT):
            if name == "TicketBought":
                self.counts["tickets"][args["interval"]] += 1
            elif name == "PseudonymRegistered":
                self.counts["registered"][args["interval"]] += 1
                self.registered.append(args["pseudonym"])
                meters.append(args["meter"])
        for receipt in block.receipts.get(RELAYED_REGISTRATIONS, []):
            if not receipt.ok:
                log.warning("registration refused: %s", receipt.revert_reason)
                self.counts["refused"][min(interval, len(self.counts["refused"]) - 1)] += 1
        return encode("pseudonyms_registered", meters=meters) if meters else None

    def tokens_held_match(self) -> bool:
        """The contract holds exactly its reserve and the bonds of each interval's tickets not yet used by a
        registration (a registration beyond its interval's tickets took its bond from the reserve, and a ticket
        bought after it paid the reserve back)."""
        unused = int(np.maximum(self.counts["tickets"] - self.counts["registered"], 0).sum())
        held = read(self.chain, self.token, "GridToken", "balanceOf", self.address)
        return held == unused * pn.read(self.chain, self.address, "bond_wei") + pn.read(self.chain, self.address,
                                                                                          "reserve_wei")

    def write(self, part: Part) -> None:
        """Add the desk's per-interval counts and each household's pseudonyms to the ledger's results part."""
        part.add("pseudonym_tickets", ("interval",), self.counts["tickets"], "1", "tickets bought for the interval",
                 cell_methods=INTERVAL_SUM)
        part.add("pseudonyms_registered", ("interval",), self.counts["registered"], "1",
                 "pseudonyms registered for the interval", cell_methods=INTERVAL_SUM)
        part.add("pseudonym_address", ("interval", "prosumer"), np.array(self.pseudonyms, dtype=object), "1",
                 "the household's pseudonym of the interval (empty: not traded); ground truth, on no chain")
        part.add("pseudonym_registrations_refused", ("interval",), self.counts["refused"], "1",
                 "relayed registrations the contract refused, by the interval mined in", cell_methods=INTERVAL_SUM)
