"""Which ledger each signed transaction goes to: the one ledger, or (sharded) its signer's zone ledger.

With ``market.sharding: per-zone`` every zone runs its own ledger and
chain (`gridledger.federation.ledger_endpoint`); a prosumer's agent and its
meter sign transactions for their zone's chain only. The DER and grid
federates send one stream of raw transactions, so each is routed by its
signer, recovered from the signature (EIP-155, ECDSA public-key recovery):
a transaction goes where its signer's zone is, whatever the sending code
intended, and a signer outside the run is refused before anything is sent.
"""

from __future__ import annotations

from eth_account import Account

from gridledger.contracts.keys import derive_account
from gridledger.federation import LEDGER_ENDPOINT, is_sharded, ledger_endpoint


class UnknownSigner(ValueError):
    """A transaction signed by no prosumer or meter of the run."""


def tx_signer(raw: bytes) -> str:
    """The checksummed address that signed a raw transaction."""
    return Account.recover_transaction(raw)


class TxRouter:
    """Ledger endpoint of each signer's transactions; every transaction to ``ledger/tx`` in an unsharded run."""

    def __init__(self, endpoint_of: dict[str, str] | None):
        self.endpoint_of = endpoint_of

    @classmethod
    def of(cls, sc, secret: bytes) -> TxRouter:
        """The router of a roster or scenario `sc` whose accounts derive from the run `secret`."""
        if not is_sharded(sc.study):
            return cls(None)
        endpoint_of = {}
        for p in sc.prosumers:
            endpoint = ledger_endpoint(sc.zone_of, p.name)
            for role in ("prosumer", "meter"):
                endpoint_of[derive_account(secret, f"{role}/{p.name}").address] = endpoint
        return cls(endpoint_of)

    def endpoint(self, raw: bytes) -> str:
        """Where the signed transaction `raw` goes.

        Raises
        ------
        UnknownSigner
            In a sharded run, if no prosumer or meter of the run signed it.
        """
        if self.endpoint_of is None:
            return LEDGER_ENDPOINT
        signer = tx_signer(raw)
        if signer not in self.endpoint_of:
            raise UnknownSigner(f"transaction signed by {signer}, no prosumer or meter of this run: no ledger takes it")
        return self.endpoint_of[signer]
