"""Which ledger each signed transaction or batch goes to: the one ledger, or (sharded) its signer's zone ledger.

With ``market.sharding: per-zone`` every zone runs its own ledger and
chain (`gridledger.federation.ledger_endpoint`); a prosumer's agent and its
meter sign for their zone's chain only. The DER and grid federates send
one stream, so each raw transaction is routed by its signer, recovered
from the signature (EIP-155, ECDSA public-key recovery), and a batch of
signed orders or readings (``market.submission: batched``) is split into
one batch per zone by the signer of each item (EIP-712 recovery against
the contract of the deployment notice), items in their order. An item
goes where its signer's zone is, whatever the sending code intended, and
a signer outside the run is refused before anything is sent.
"""

from __future__ import annotations

from eth_account import Account

from gridledger.agents.relay import signed_order, signed_reading
from gridledger.contracts.keys import derive_account
from gridledger.contracts.typed_data import order_signer, reading_signer
from gridledger.federation import LEDGER_ENDPOINT, is_sharded, ledger_endpoint
from gridledger.messages import decode, encode, is_json

BATCH_ITEMS = {"signed_orders": "orders", "signed_readings": "readings"}
"""Batch message kind -> the field holding its signed items."""


class UnknownSigner(ValueError):
    """A transaction or signed item signed by no prosumer or meter of the run."""


def tx_signer(raw: bytes) -> str:
    """The checksummed address that signed a raw transaction."""
    return Account.recover_transaction(raw)


class TxRouter:
    """Ledger endpoint of each signer's transactions and batch items; everything to ``ledger/tx`` unsharded.

    `notice` is the ledgers' ``deployed`` notice (chain id and contracts),
    needed to recover the signers of batch items.
    """

    def __init__(self, endpoint_of: dict[str, str] | None, notice: dict | None = None):
        self.endpoint_of = endpoint_of
        self.notice = notice

    @classmethod
    def of(cls, sc, secret: bytes, notice: dict | None = None) -> TxRouter:
        """The router of a roster or scenario `sc` whose accounts derive from the run `secret`."""
        if not is_sharded(sc.study):
            return cls(None)
        endpoint_of = {}
        for p in sc.prosumers:
            endpoint = ledger_endpoint(sc.zone_of, p.name)
            for role in ("prosumer", "meter"):
                endpoint_of[derive_account(secret, f"{role}/{p.name}").address] = endpoint
        return cls(endpoint_of, notice)

    def _endpoint_of(self, signer: str, what: str) -> str:
        if signer not in self.endpoint_of:
            raise UnknownSigner(f"{what} signed by {signer}, no prosumer or meter of this run: no ledger takes it")
        return self.endpoint_of[signer]

    def endpoint(self, raw: bytes) -> str:
        """Where the signed transaction `raw` goes.

        Raises
        ------
        UnknownSigner
            In a sharded run, if no prosumer or meter of the run signed it.
        """
        if self.endpoint_of is None:
            return LEDGER_ENDPOINT
        return self._endpoint_of(tx_signer(raw), "transaction")

    def route(self, payload: bytes) -> list[tuple[str, bytes]]:
        """(endpoint, payload) pairs to send for a raw transaction or a batch message, batches split by zone.

        The split batches keep the items' order and go out in the order of
        their zones' first item.
        """
        if self.endpoint_of is None:
            return [(LEDGER_ENDPOINT, payload)]
        if not is_json(payload):
            return [(self.endpoint(payload), payload)]
        body = decode(payload)
        field, interval = BATCH_ITEMS[body["type"]], body["interval"]
        groups: dict[str, list[dict]] = {}
        for item in body[field]:
            groups.setdefault(self._endpoint_of(self._item_signer(body["type"], interval, item), "item"), []).append(item)
        return [(endpoint, encode(body["type"], interval=interval, **{field: items}))
                for endpoint, items in groups.items()]

    def _item_signer(self, kind: str, interval: int, item: dict) -> str:
        chain_id, addresses = self.notice["chain_id"], self.notice["addresses"]
        if kind == "signed_orders":
            return order_signer(chain_id, addresses["auction"], signed_order(interval, item))
        return reading_signer(chain_id, addresses["settlement"], signed_reading(interval, item))
