"""One side of a pseudonym's registration: the households' blind requests and halves, or their meters'.

Each household's pseudonym P_k and its meter's one-time key M_k of
interval k need two blind signatures of the registrar
(`gridledger.contracts.pseudonyms`): the owner's, in the household's
class, on H(P_k, M_k, k) and the meter's, in the meters' class, on
H(M_k, P_k, k). `BlindRequests` is what either side keeps and sends: the
``blind_requests`` of an interval (each authorised with the requester's
registered key), the answers it unblinds (``blind_signatures``) and its
``registration_halves``, which the ledger pairs and relays.

Both sides know both one-time addresses of their household
(:func:`one_time_pair`). In the simulation each side derives the other's
addresses from the run secret, which every federate holds, so the grid
federate could in principle compute an owner's keys; in a deployment a
gateway and its meter would exchange the addresses over their local link,
or derive them publicly (BIP32 non-hardened keys). Each side signs only
with its own keys.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import lru_cache

from eth_account.signers.local import LocalAccount

from gridledger.contracts import pseudonyms as pn
from gridledger.messages import encode

log = logging.getLogger(__name__)


@lru_cache(maxsize=1 << 14)
def one_time_pair(owner_key: bytes, meter_key: bytes, interval: int) -> tuple[str, str]:
    """The household's pseudonym and its meter's one-time key of `interval`, as addresses."""
    return pn.pseudonym_account(owner_key, interval).address, pn.meter_account(meter_key, interval).address


@dataclass(frozen=True)
class Deployment:
    """What the ledger's deployment notice says of the ``Pseudonyms`` contract."""

    chain_id: int
    address: str
    modulus: int

    @classmethod
    def of(cls, notice: dict) -> Deployment:
        """From the ``deployed`` notice."""
        spec = notice["pseudonyms"]
        return cls(notice["chain_id"], spec["address"], int(spec["modulus"], 16))


class BlindRequests:
    """The blind requests and registration halves of one side: households (their classes) or meters.

    Parameters
    ----------
    requesters : list of LocalAccount
        Each household's registered key (owners) or its bound meter's, in prosumer order.
    class_index : list of int
        Each requester's class; ``pn.METER_CLASS`` for every meter.
    pairs : callable
        (household position, interval) -> (pseudonym, one-time meter key) addresses.
    """

    def __init__(self, requesters: list[LocalAccount], class_index: list[int], pairs) -> None:
        self.requesters, self.class_index, self.pairs = requesters, class_index, pairs
        self.deployment: Deployment | None = None
        self.pending: dict[int, tuple[int, int, pn.PendingSignature]] = {}
        self.signatures: dict[tuple[int, int], bytes] = {}
        self.refused: list[tuple[int, int, str]] = []

    def connect(self, deployment: Deployment) -> None:
        """Request at the contract of the ledger's deployment."""
        self.deployment = deployment

    def _hash(self, i: int, interval: int) -> int:
        pseudonym, meter = self.pairs(i, interval)
        first, second = (meter, pseudonym) if self.class_index[i] == pn.METER_CLASS else (pseudonym, meter)
        d = self.deployment
        return pn.full_domain_hash(d.chain_id, d.address, first, second, interval)

    def requests(self, interval: int) -> bytes:
        """The ``blind_requests`` message of every requester for `interval`."""
        d = self.deployment
        rows = []
        for i, requester in enumerate(self.requesters):
            request, pending = pn.request_signature(requester, d.modulus, d.chain_id, d.address, interval,
                                                    self.class_index[i], self._hash(i, interval))
            self.pending[request.blinded] = (i, interval, pending)
            rows.append({"interval": interval, "class_index": request.class_index,
                         "blinded": hex(request.blinded), "authorisation": "0x" + request.authorisation.hex()})
        return encode("blind_requests", requests=rows)

    def answered(self, body: dict) -> None:
        """Unblind the registrar's answers (a ``blind_signatures`` body) to this side's pending requests; log its
        refusals."""
        for answer in body["signatures"]:
            held = self.pending.pop(int(answer["blinded"], 16), None)
            if held is None:
                continue                                    # the other side's
            i, interval, pending = held
            try:
                self.signatures[(i, interval)] = pn.finish_signature(pending, self.deployment.modulus,
                                                                     int(answer["signature"], 16))
            except ValueError as refused:
                self._refuse(i, interval, str(refused))
        for refusal in body["refusals"]:
            held = self.pending.pop(int(refusal["blinded"], 16), None)
            if held is not None:
                self._refuse(held[0], held[1], refusal["reason"])

    def _refuse(self, i: int, interval: int, reason: str) -> None:
        log.warning("pseudonym of household %d for interval %d not signed: %s", i, interval, reason)
        self.refused.append((i, interval, reason))

    def halves(self, interval: int) -> bytes | None:
        """The ``registration_halves`` message of this side's signatures for `interval`; None if it has none."""
        rows = []
        for i in range(len(self.requesters)):
            signature = self.signatures.pop((i, interval), None)
            if signature is not None:
                pseudonym, meter = self.pairs(i, interval)
                rows.append({"pseudonym": pseudonym, "meter": meter, "interval": interval,
                             "class_index": self.class_index[i], "signature": "0x" + signature.hex()})
        return encode("registration_halves", halves=rows) if rows else None
