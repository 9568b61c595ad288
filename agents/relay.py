"""Relaying signed orders and readings: the market operator's and the meters' head-end's batches.

With ``market.submission: batched`` a prosumer agent does not send a
transaction per order: it signs the order as EIP-712 typed data
(`gridledger.contracts.typed_data`) and the DER federate sends the
interval's signed orders to the ledger in one ``signed_orders`` message;
the meters likewise sign their readings and the grid federate, as an AMI
head-end, sends them in one ``signed_readings`` message. The ledger's
market operator relays each in one transaction (``submit_signed_orders``,
``post_signed_readings``), signed with its own key and mined in its own
batch, after the agents' and the meters' lanes respectively.

A relay cannot forge or alter what it carries: the contract recovers
every signer from its signature and applies the same checks as to a direct
transaction, skipping (with an ``OrderRejected`` / ``ReadingRejected``
event and the reason) what fails. A relay that leaves an order out cannot
stop it either: its prosumer can still send it directly
(``submit_order``), which every mechanism keeps. With ``market.clearing:
verified-batch`` the operator holds the interval's signed orders and sends
them after the gate with the clearing it computed (:func:`verified_batch`),
whose book holds every order sent directly. :func:`rejections` turns
the skip events of a block back into the ``rejected`` message each sender
reads.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet
from gridledger.contracts.market import (
    MarketAddresses,
    book,
    clear_signed,
    post_signed_readings,
    signed_order_problems,
    submit_signed_orders,
)
from gridledger.contracts.mechanisms import VERIFIED_BATCH_MAX_ORDERS
from gridledger.contracts.typed_data import SignedOrder, SignedReading, order_signer
from gridledger.messages import decode, encode, is_json

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; the DER and grid federates only build messages here.
    from gridledger.contracts.chain import Chain

BATCH_SIZE = 256
"""Most orders or readings one relayed transaction carries (``book.MAX_ORDERS``, ``Settlement.MAX_READINGS``)."""


def split_received(received: list[tuple[str, bytes]],
                   ) -> tuple[list[tuple[str, bytes]], list[dict], list[dict], list[tuple[str, dict]]]:
    """The received messages as (raw transactions with their source, ``signed_orders``, ``signed_readings``, every
    other message with its source: the pseudonyms' requests and halves)."""
    txs, orders, readings, others = [], [], [], []
    for source, payload in received:
        if not is_json(payload):
            txs.append((source, payload))
            continue
        body = decode(payload)
        if body["type"] == "signed_orders":
            orders.append(body)
        elif body["type"] == "signed_readings":
            readings.append(body)
        else:
            others.append((source, body))
    return txs, orders, readings, others


def _signature_json(signed: SignedOrder | SignedReading) -> dict:
    return {"v": signed.v, "r": "0x" + signed.r.hex(), "s": "0x" + signed.s.hex()}


def _signature(item: dict) -> dict:
    return {"v": item["v"], "r": bytes.fromhex(item["r"][2:]), "s": bytes.fromhex(item["s"][2:])}


def signed_orders_message(interval: int, signed: list[SignedOrder]) -> bytes:
    """The ``signed_orders`` message of `interval`'s signed orders, in the given order."""
    return encode("signed_orders", interval=interval, orders=[
        {"is_ask": o.is_ask, "energy_wh": o.energy_wh, "price_wei_per_wh": o.price_wei_per_wh, **_signature_json(o)}
        for o in signed])


def signed_readings_message(interval: int, signed: list[SignedReading]) -> bytes:
    """The ``signed_readings`` message of `interval`'s signed readings, in the given order."""
    return encode("signed_readings", interval=interval, readings=[
        {"import_wh": r.import_wh, "export_wh": r.export_wh, "pv_wh": r.pv_wh, "battery_wh": r.battery_wh,
         **_signature_json(r)} for r in signed])


def _chunks(items: list) -> list[list]:
    return [items[i:i + BATCH_SIZE] for i in range(0, len(items), BATCH_SIZE)]


def signed_order(interval: int, item: dict) -> SignedOrder:
    """One order of a ``signed_orders`` message of `interval`."""
    return SignedOrder(interval=interval, is_ask=item["is_ask"], energy_wh=item["energy_wh"],
                       price_wei_per_wh=item["price_wei_per_wh"], **_signature(item))


def signed_reading(interval: int, item: dict) -> SignedReading:
    """One reading of a ``signed_readings`` message of `interval`."""
    return SignedReading(interval=interval, import_wh=item["import_wh"], export_wh=item["export_wh"],
                         pv_wh=item["pv_wh"], battery_wh=item["battery_wh"], **_signature(item))


def signed_orders(message: dict) -> list[SignedOrder]:
    """The signed orders a ``signed_orders`` message carries, in order."""
    return [signed_order(message["interval"], o) for o in message["orders"]]


def relayed_orders(relay: Wallet, addresses: MarketAddresses, messages: Iterable[dict]) -> list[bytes]:
    """``submit_signed_orders`` transactions of the `relay` carrying the ``signed_orders`` messages, in order."""
    return [submit_signed_orders(relay, addresses, m["interval"], chunk)
            for m in messages for chunk in _chunks(signed_orders(m))]


def verified_batch(chain: Chain, relay: Wallet, addresses: MarketAddresses, interval: int,
                   held: list[SignedOrder]) -> bytes:
    """The `relay`'s ``clear_signed`` of `interval`: the `held` signed orders with the clearing of its book.

    The relay asks the contract which orders it would skip
    (``signed_order_problems``, in the state the transaction will meet),
    recovers the others' signers and clears the stored orders and those
    (`gridledger.contracts.market.clear_signed`).

    Raises
    ------
    ValueError
        If more than `VERIFIED_BATCH_MAX_ORDERS` are held: a verified batch is one transaction.
    """
    if len(held) > VERIFIED_BATCH_MAX_ORDERS:
        raise ValueError(f"a verified batch carries at most {VERIFIED_BATCH_MAX_ORDERS} orders, {len(held)} held for "
                         f"interval {interval}")
    problems = signed_order_problems(chain, addresses, interval, held)
    accepted = [(order_signer(chain.chain_id, addresses.auction, o), o) for o, problem in zip(held, problems)
                if not problem]
    return clear_signed(relay, addresses, interval, book(chain, addresses, interval), held, accepted)


def relayed_readings(relay: Wallet, addresses: MarketAddresses, messages: Iterable[dict]) -> list[bytes]:
    """``post_signed_readings`` transactions of the `relay` carrying the ``signed_readings`` messages, in order."""
    return [post_signed_readings(relay, addresses, m["interval"], chunk) for m in messages
            for chunk in _chunks([signed_reading(m["interval"], r) for r in m["readings"]])]


def unordered(body: dict) -> dict:
    """A ``signed_orders`` or ``signed_readings`` body with its items sorted by their signatures' r: an order as
    good as random and the same on every run, so that where an item sits in the relayed batch (and in the events
    it logs) says nothing of whose it is, as the households' own sending order would (with ``pseudonyms``)."""
    key = "orders" if body["type"] == "signed_orders" else "readings"
    return {**body, key: sorted(body[key], key=lambda item: item["r"])}


def rejections(events: Iterable[tuple[str, dict]], event_name: str) -> list[bytes]:
    """A ``rejected`` message per interval for the `event_name` events (``OrderRejected``, ``ReadingRejected``)."""
    by_interval: dict[int, list[dict]] = {}
    for name, args in events:
        if name == event_name:
            by_interval.setdefault(args["interval"], []).append({"signer": args["signer"], "reason": args["reason"]})
    return [encode("rejected", interval=k, rejections=rows) for k, rows in sorted(by_interval.items())]
