"""Deploy a market on a :class:`~gridledger.contracts.chain.Chain` and talk to it.

The transaction builders return signed raw transactions; the caller mines
them with ``chain.mine(raw_txs, timestamp)`` in whatever blocks it likes.
The market mechanism is chosen at deploy time by name (:data:`~gridledger.contracts.mechanisms.MECHANISMS`)
and travels in :class:`MarketAddresses`, so the builders address the
right contract.

The lot auctions ("vickrey", "english") take no orders but lots and bids.
Times relative to the gate g of interval k (``gate_timestamp(k)``):

- vickrey: before g, sellers :func:`post_lot` and bidders
  :func:`commit_bid` (one per interval, on a lot id read from
  ``lots(k)``); in [g, g + reveal_s) bidders :func:`reveal_bid`; from
  g + reveal_s on anyone sends :func:`finalise` once;
- english: before g, sellers :func:`post_lot` and bidders :func:`bid`
  (each bid replaces the leader); the auctions close at g and need no
  finalising.

Settlement then runs as for every mechanism: ``post_reading`` from the
interval's end on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import eth_abi
from eth_utils import keccak
from gridledger.contracts.client import Wallet, decode_return, encode_call, signed_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.mechanisms import (
    CLEARING_MODES,
    DEFAULT_CLEARING_MODE,
    VERIFIED_BATCH_CONTRACTS,
    DEFAULT_MECHANISM,
    LOT_AUCTION_CONTRACTS,
    MECHANISMS,
    SIGNED_ORDER_CONTRACTS,
    mechanism as lookup_mechanism,
)
from gridledger.contracts.reference import (
    Order,
    batch_book,
    clear_merit_order,
    clear_pay_as_bid,
    clear_uniform,
    priority,
)
from gridledger.contracts.typed_data import SignedOrder, SignedReading

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain, Receipt

ROLE_PROSUMER = 2
ROLE_METER = 4

# Gas limits of the market transactions, measured with margin (see the
# contract gas tests): a limit is what a sender must afford, not what it pays.
GAS_DEPLOY = 6_000_000
GAS_SETUP = 150_000
# The setup's batch calls (roles, meter bindings, limits, deposits) take up
# to SETUP_BATCH accounts each (the Registry's MAX_BATCH and the
# Settlement's MAX_READINGS); per account at most two fresh storage words
# and an event.
SETUP_BATCH = 256
GAS_SETUP_PER_ACCOUNT = 80_000
GAS_SUBMIT_ORDER = 250_000
GAS_POST_READING = 250_000
GAS_POST_DEMAND = 180_000
GAS_SETTLE_OPERATOR = 150_000
GAS_RELEASE = 100_000
GAS_WITHDRAW = 100_000
GAS_POST_LOT = 250_000
GAS_COMMIT_BID = 180_000
GAS_REVEAL_BID = 150_000
GAS_BID = 300_000
# A relayed batch: its base (with the memory of the batch-wide arrays,
# sized for 256 items, and the calls that check a whole batch at once)
# plus each signed order or reading (signature recovery, the same checks
# and effects as a direct transaction).
_GAS_RELAY_BASE = 150_000
GAS_SIGNED_ORDER = 200_000
GAS_SIGNED_READING = 250_000
# A verified batch (``clear_signed``): the clearing of its book, the memory
# of the batch-wide arrays and calls, and each signed order (signature
# recovery, checks, its event; a filled one's word and a filled bid's lock).
_GAS_VERIFIED_BASE = 200_000
GAS_VERIFIED_ORDER = 100_000
# ``DoubleAuction.settle_across``: its checks and outcome word, the
# exchange's lock, and per fill its checks (two escrow quotes and a lock
# look-up for a bid), its stored fill, its Trade event and a bid's top-up lock.
_GAS_CROSS_BASE = 150_000
GAS_CROSS_FILL = 90_000
_GAS_FINALISE_BASE = 60_000
_GAS_FINALISE_PER_LOT = 130_000
_GAS_CLEAR_BASE = 300_000
# Per order of the book; the pay-as-bid auction also stores each filled
# order's money value and logs one event per matched pair.
_GAS_CLEAR_PER_ORDER = {"DoubleAuction": 40_000, "PayAsBid": 70_000, "MeritOrder": 40_000}
# Per squared order count of one side: the insertion sort of
# ``clear_onchain`` shifts up to n (n - 1) / 2 keys of ~170 gas each.
_GAS_SORT_PER_ORDER_SQUARED = 150


@dataclass(frozen=True)
class ProsumerLimits:
    """What a prosumer's meter may read per second, registered once in ``Settlement.register_prosumer``. [W]

    Attributes
    ----------
    meter_rating_w : int
        Most power through the meter, either way; positive.
    pv_w : int
        Peak power of the PV system; 0 without PV.
    battery_w : int
        Discharge power of the battery; 0 without a battery.
    """

    meter_rating_w: int
    pv_w: int = 0
    battery_w: int = 0


class SetupFailed(RuntimeError):
    """A market setup transaction failed; the message names it and its reason."""


def deploy_alone(chain: Chain, operator: Wallet, contract: str, *args, gas: int, setup: str) -> str:
    """Deploy ``contract(*args)`` alone in a block one second after the head and label it on ``chain``; its address.

    Raises
    ------
    SetupFailed
        If the deployment reverts: "<setup> setup: deploy <contract> failed: <reason>".
    """
    raw, address = operator.deploy(load_artifact(contract), *args, gas=gas)
    (receipt,) = chain.mine([raw], chain.timestamp + 1)
    if not receipt.ok:
        raise SetupFailed(f"{setup} setup: deploy {contract} failed: {receipt.revert_reason}")
    chain.label(address, contract)
    return address


@dataclass(frozen=True)
class MarketAddresses:
    """Checksummed addresses of one market's contracts and its mechanism.

    ``auction`` runs the mechanism named by ``mechanism`` (a key of
    :data:`~gridledger.contracts.mechanisms.MECHANISMS`).
    """

    registry: str
    token: str
    auction: str
    settlement: str
    mechanism: str = DEFAULT_MECHANISM

    @property
    def auction_contract(self) -> str:
        """Contract name of the mechanism at ``auction``."""
        return MECHANISMS[self.mechanism].contract


@dataclass(frozen=True)
class Book:
    """Both sides of one interval's book, each in submission order.

    A merit-order book keeps its offers in ``asks`` and the energy the
    operator posted to buy in ``demand_wh`` [Wh]; a double auction's
    ``demand_wh`` is 0.
    """

    bids: tuple[Order, ...]
    asks: tuple[Order, ...]
    demand_wh: int = 0


def clear_gas(n_bids: int, n_asks: int, contract: str = "DoubleAuction", mode: str = DEFAULT_CLEARING_MODE) -> int:
    """Gas limit for ``contract`` clearing a book with ``n_bids`` bids and ``n_asks`` asks in ``mode``.

    The on-chain sort adds a term quadratic in each side's size.
    """
    linear = _GAS_CLEAR_BASE + _GAS_CLEAR_PER_ORDER[contract] * (n_bids + n_asks)
    if mode == "on-chain":
        return linear + _GAS_SORT_PER_ORDER_SQUARED * (n_bids**2 + n_asks**2)
    return linear


def finalise_gas(n_lots: int) -> int:
    """Gas limit for ``VickreyAuction.finalise`` of an interval with ``n_lots`` lots."""
    return _GAS_FINALISE_BASE + _GAS_FINALISE_PER_LOT * n_lots


def _check(receipts: Sequence[Receipt], labels: Sequence[str]) -> None:
    for receipt, label in zip(receipts, labels, strict=True):
        if not receipt.ok:
            raise SetupFailed(f"market setup: {label} failed: {receipt.revert_reason}")


def deploy_market(
    chain: Chain,
    operator: Wallet,
    *,
    prosumers: Sequence[str],
    meters: Mapping[str, str],
    start_timestamp: int,
    interval_s: int,
    gate_closure_s: int,
    price_cap_wei_per_wh: int,
    grid_buy_price_wei_per_wh: int,
    grid_sell_price_wei_per_wh: int,
    grid_fee_wei_per_wh: int,
    endowment_wei: int,
    operator_deposit_wei: int,
    limits: Mapping[str, ProsumerLimits] | None = None,
    credit_line_wei: int = 0,
    non_delivery_penalty_wei_per_wh: int = 0,
    min_order_wh: int = 1,
    mechanism: str = DEFAULT_MECHANISM,
    reveal_s: int | None = None,
    bid_increment_wei_per_wh: int = 1,
    price_spikes: Mapping[int, int] | None = None,
) -> MarketAddresses:
    """Deploy and set up a market in two blocks one second apart.

    Block 1 deploys the registry (its bindings frozen from
    ``start_timestamp`` on), the token (its supply is every
    endowment plus the operator deposit, minted to the operator), the
    mechanism's contract and the settlement that settles it. Block 2 binds the settlement to the
    mechanism (whose bids lock credit in it), grants the prosumer and meter
    roles, binds each meter, registers each prosumer's reading limits,
    approves the settlement once and deposits
    ``endowment_wei`` for every prosumer and ``operator_deposit_wei`` for
    the operator (a zero amount is skipped); each of these but the
    operator's deposit is one batch call per `SETUP_BATCH` accounts
    (``grant_roles``, ``bind_meters``, ``register_prosumers``,
    ``deposit_for_each``), which emit the same events as a call per account.

    Parameters
    ----------
    chain : Chain
        The chain; its funded accounts pay the gas.
    operator : Wallet
        Deployer: operator of the registry, owner of the token and the
        settlement's operator account.
    prosumers : sequence of str
        Addresses granted the prosumer role.
    meters : mapping of str to str
        Prosumer address to the address of its meter.
    start_timestamp, interval_s, gate_closure_s, price_cap_wei_per_wh
        Auction parameters ([s since the Unix epoch], [s], [s], [wei/Wh]).
    grid_buy_price_wei_per_wh, grid_sell_price_wei_per_wh, grid_fee_wei_per_wh
        Settlement prices. [wei/Wh]
    endowment_wei, operator_deposit_wei
        Initial credits. [wei]
    limits : mapping of str to ProsumerLimits, optional
        Prosumer address to the limits of its readings and orders,
        registered for every prosumer of ``prosumers`` (setup runs before
        ``start_timestamp``, after which the settlement refuses
        registrations). None registers none: an unregistered prosumer
        may place no order and its meter may post only an empty reading.
    credit_line_wei : int
        Most debt the settlement lets a prosumer run up. [wei]
    non_delivery_penalty_wei_per_wh : int
        Penalty on energy a seller sold and did not export, besides
        returning what it was paid for it (at least the grid buy
        price). [wei/Wh]
    min_order_wh : int
        Least energy of an order; positive. [Wh]
    mechanism : str
        Market mechanism, a key of :data:`~gridledger.contracts.mechanisms.MECHANISMS`.
    reveal_s : int, optional
        Vickrey only: reveal window after the gate, at most
        ``gate_closure_s``; half of it by default. [s]
    bid_increment_wei_per_wh : int
        English only: least raise over the leading bid. [wei/Wh]
    price_spikes : mapping of int to int, optional
        Interval to its spiked grid buy price, announced to the settlement
        in block 2 (``post_price_spike``). [wei/Wh]

    Raises
    ------
    ValueError
        If ``mechanism`` is unknown.
    SetupFailed
        If any setup transaction fails, with its revert reason.
    """
    auction_contract = lookup_mechanism(mechanism).contract
    auction_args = [start_timestamp, interval_s, gate_closure_s, price_cap_wei_per_wh]
    if auction_contract == "VickreyAuction":
        auction_args.append(gate_closure_s // 2 if reveal_s is None else reveal_s)
    elif auction_contract == "EnglishAuction":
        auction_args.append(bid_increment_wei_per_wh)
    supply_wei = endowment_wei * len(prosumers) + operator_deposit_wei
    deploy_registry, registry = operator.deploy(load_artifact("Registry"), start_timestamp, gas=GAS_DEPLOY)
    deploy_token, token = operator.deploy(load_artifact("GridToken"), supply_wei, gas=GAS_DEPLOY)
    deploy_auction, auction = operator.deploy(
        load_artifact(auction_contract),
        registry,
        *auction_args,
        gas=GAS_DEPLOY,
    )
    deploy_settlement, settlement = operator.deploy(
        load_artifact("Settlement"),
        registry,
        auction,
        token,
        operator.address,
        grid_buy_price_wei_per_wh,
        grid_sell_price_wei_per_wh,
        grid_fee_wei_per_wh,
        credit_line_wei,
        start_timestamp,
        interval_s,
        non_delivery_penalty_wei_per_wh,
        min_order_wh,
        gas=GAS_DEPLOY,
    )
    receipts = chain.mine([deploy_registry, deploy_token, deploy_auction, deploy_settlement], chain.timestamp + 1)
    _check(receipts, ["deploy Registry", "deploy GridToken", f"deploy {auction_contract}", "deploy Settlement"])
    addresses = MarketAddresses(registry, token, auction, settlement, mechanism)
    contract_of = {registry: "Registry", token: "GridToken", auction: auction_contract, settlement: "Settlement"}
    for address, name in contract_of.items():
        chain.label(address, name)

    calls: list[tuple[str, str, str, tuple, int]] = [(f"bind settlement to {auction_contract}", auction,
                                                       "bind_settlement", (settlement,), GAS_SETUP)]
    pairs = list(meters.items())
    calls += [(f"grant prosumer role to {group[0]}..", registry, "grant_roles", (group, ROLE_PROSUMER), _setup_gas(group))
              for group in _batches(list(prosumers))]
    calls += [(f"grant meter role to {group[0][1]}..", registry, "grant_roles", ([m for _, m in group], ROLE_METER),
               _setup_gas(group)) for group in _batches(pairs)]
    calls += [(f"bind meters {group[0][1]}..", registry, "bind_meters",
               ([m for _, m in group], [p for p, _ in group]), _setup_gas(group)) for group in _batches(pairs)]
    if limits:
        calls += [(f"register limits of {group[0]}..", settlement, "register_prosumers",
                   ([(p, limits[p].meter_rating_w, limits[p].pv_w, limits[p].battery_w) for p in group],),
                   _setup_gas(group)) for group in _batches(list(prosumers))]
    calls += [(f"price spike of interval {k}", settlement, "post_price_spike", (k, price), GAS_SETUP)
              for k, price in sorted((price_spikes or {}).items())]
    calls.append(("approve settlement", token, "approve", (settlement, supply_wei), GAS_SETUP))
    if endowment_wei:
        calls += [(f"deposit for {group[0]}..", settlement, "deposit_for_each", (group, endowment_wei),
                   _setup_gas(group)) for group in _batches(list(prosumers))]
    if operator_deposit_wei:
        calls.append(("deposit for operator", settlement, "deposit_for", (operator.address, operator_deposit_wei),
                      GAS_SETUP))
    raw_txs = [signed_call(operator, to, contract_of[to], function, *args, gas=gas)
               for _, to, function, args, gas in calls]
    _check(chain.mine(raw_txs, chain.timestamp + 1), [label for label, *_ in calls])
    return addresses


def _batches(items: list) -> list[list]:
    """`items` in consecutive batches of at most `SETUP_BATCH`."""
    return [items[first:first + SETUP_BATCH] for first in range(0, len(items), SETUP_BATCH)]


def _setup_gas(batch: list) -> int:
    """Gas limit of a setup call over `batch`."""
    return GAS_SETUP + GAS_SETUP_PER_ACCOUNT * len(batch)



def submit_order(
    wallet: Wallet, addresses: MarketAddresses, interval: int, *, is_ask: bool, energy_wh: int, price_wei_per_wh: int
) -> bytes:
    """Signed order of ``wallet``'s prosumer.

    A double auction takes bids and asks (``submit_order``); a merit-order
    market takes only asks, as supply offers (``submit_offer``).

    Raises
    ------
    ValueError
        For a bid to a merit-order market, whose demand the operator posts,
        and for a lot auction, which takes lots and bids instead.
    """
    contract = _book_contract(addresses)
    if contract == "MeritOrder":
        if not is_ask:
            raise ValueError("a merit-order market takes only asks; the operator posts the demand (post_demand)")
        return signed_call(wallet, addresses.auction, contract, "submit_offer", interval, energy_wh, price_wei_per_wh,
                       gas=GAS_SUBMIT_ORDER)
    return signed_call(wallet, addresses.auction, contract, "submit_order", interval, is_ask, energy_wh,
                   price_wei_per_wh, gas=GAS_SUBMIT_ORDER)


def submit_signed_orders(relay: Wallet, addresses: MarketAddresses, interval: int,
                         signed: Sequence[SignedOrder]) -> bytes:
    """Signed ``submit_signed_orders`` of ``relay`` carrying the prosumers' `signed` orders of ``interval``.

    Raises
    ------
    ValueError
        For a mechanism that takes no signed orders (`SIGNED_ORDER_CONTRACTS`) or an order of another interval.
    """
    contract = _book_contract(addresses)
    if contract not in SIGNED_ORDER_CONTRACTS:
        raise ValueError(f"{contract} takes no signed orders; those that do: {', '.join(SIGNED_ORDER_CONTRACTS)}")
    if any(o.interval != interval for o in signed):
        raise ValueError(f"every relayed order must be of interval {interval}")
    return signed_call(relay, addresses.auction, contract, "submit_signed_orders", interval,
                   [o.as_struct() for o in signed], gas=_GAS_RELAY_BASE + GAS_SIGNED_ORDER * len(signed))


def post_demand(operator: Wallet, addresses: MarketAddresses, interval: int, *, demand_wh: int) -> bytes:
    """Signed ``MeritOrder.post_demand``: the energy the operator buys in ``interval``. [Wh]"""
    return signed_call(operator, addresses.auction, "MeritOrder", "post_demand", interval, demand_wh,
                       gas=GAS_POST_DEMAND)


def settle_operator(sender: Wallet, addresses: MarketAddresses, interval: int) -> bytes:
    """Signed ``Settlement.settle_operator``: settles the operator's own position in ``interval``."""
    return signed_call(sender, addresses.settlement, "Settlement", "settle_operator", interval, gas=GAS_SETTLE_OPERATOR)


def settle_across(operator: Wallet, addresses: MarketAddresses, interval: int,
                  fills_wh: Sequence[tuple[str, int]], price_wei_per_wh: int) -> bytes:
    """Signed ``DoubleAuction.settle_across``: the zone's fills of ``interval`` against other zones.

    Parameters
    ----------
    fills_wh : sequence of (str, int)
        Each account's cross-zone fill on its own order's side. [Wh]
    price_wei_per_wh : int
        The coordinator's uniform price. [wei/Wh]
    """
    gas = _GAS_CROSS_BASE + GAS_CROSS_FILL * len(fills_wh)
    return signed_call(operator, addresses.auction, "DoubleAuction", "settle_across", interval,
                   [list(fill) for fill in fills_wh], price_wei_per_wh, gas=gas)


def sorted_order(interval_book: Book) -> tuple[list[int], list[int]]:
    """Priority permutations (bid order, ask order) that ``clear`` expects."""
    return priority(interval_book.bids, is_ask=False), priority(interval_book.asks, is_ask=True)


def claimed_outcome(contract: str, interval_book: Book) -> tuple[int, ...]:
    """Outcome of ``interval_book`` that a verified ``contract.clear`` claims, from the reference.

    (price [wei/Wh], volume [Wh]) for the uniform double auction and the
    merit order (its marginal price), (volume [Wh],) for pay-as-bid.
    """
    if contract == "MeritOrder":
        # Price and volume do not depend on who buys.
        dispatch = clear_merit_order(interval_book.demand_wh, interval_book.asks, buyer="")
        return dispatch.price_wei_per_wh, dispatch.volume_wh
    if contract == "PayAsBid":
        return (clear_pay_as_bid(interval_book.bids, interval_book.asks).volume_wh,)
    uniform = clear_uniform(interval_book.bids, interval_book.asks)
    return uniform.price_wei_per_wh, uniform.volume_wh


def clear(
    wallet: Wallet,
    addresses: MarketAddresses,
    interval: int,
    interval_book: Book,
    *,
    mode: str = DEFAULT_CLEARING_MODE,
) -> bytes:
    """Signed clearing of ``interval``'s ``interval_book`` by ``wallet`` (a prosumer or the operator).

    Parameters
    ----------
    mode : str
        A key of :data:`~gridledger.contracts.mechanisms.CLEARING_MODES`: "verified-offchain" sends
        ``clear`` with the priority order (:func:`sorted_order`) and the
        outcome the reference computes (:func:`claimed_outcome`), which
        the contract checks; "on-chain" sends ``clear_onchain``, which
        sorts the book itself.

    Raises
    ------
    ValueError
        For an unknown ``mode`` and for a lot auction, which has no book
        (see :func:`finalise`).
    """
    if mode not in CLEARING_MODES:
        raise ValueError(f"unknown clearing mode {mode!r}; expected one of {sorted(CLEARING_MODES)}")
    contract = _book_contract(addresses)
    gas = clear_gas(len(interval_book.bids), len(interval_book.asks), contract, mode)
    if mode == "on-chain":
        return signed_call(wallet, addresses.auction, contract, "clear_onchain", interval, gas=gas)
    bid_order, ask_order = sorted_order(interval_book)
    orders = (ask_order,) if contract == "MeritOrder" else (bid_order, ask_order)
    claim = claimed_outcome(contract, interval_book)
    return signed_call(wallet, addresses.auction, contract, "clear", interval, *orders, *claim, gas=gas)


def signed_order_problems(chain: Chain, addresses: MarketAddresses, interval: int,
                          signed: Sequence[SignedOrder]) -> list[str]:
    """Why ``clear_signed`` would skip each of the `signed` orders of ``interval`` now, "" where it would accept it."""
    return list(read(chain, addresses.auction, _verified_batch_contract(addresses), "signed_order_problems", interval,
                     [o.as_struct() for o in signed]))


def clear_signed(wallet: Wallet, addresses: MarketAddresses, interval: int, interval_book: Book,
                 signed: Sequence[SignedOrder], accepted: Sequence[tuple[str, SignedOrder]]) -> bytes:
    """Signed verified batch of ``wallet``: ``interval``'s `signed` orders with the clearing of its book.

    The book is ``interval_book`` (the orders stored on chain) and the
    `accepted` orders, (signer, order) in batch order, those
    :func:`signed_order_problems` finds nothing against
    (`reference.batch_book`); the claim is the reference's priority order
    and uniform clearing of it.

    Raises
    ------
    ValueError
        For a mechanism without verified batches or an order of another interval.
    """
    contract = _verified_batch_contract(addresses)
    if any(o.interval != interval for o in signed):
        raise ValueError(f"every order of the batch must be of interval {interval}")
    bids, asks = batch_book(interval_book.bids, interval_book.asks, [
        (o.is_ask, Order(signer, o.energy_wh, o.price_wei_per_wh)) for signer, o in accepted])
    full = Book(tuple(bids), tuple(asks))
    uniform = clear_uniform(bids, asks)
    gas = clear_gas(len(bids), len(asks), contract) + _GAS_VERIFIED_BASE + GAS_VERIFIED_ORDER * len(signed)
    return signed_call(wallet, addresses.auction, contract, "clear_signed", interval, [o.as_struct() for o in signed],
                   *sorted_order(full), uniform.price_wei_per_wh, uniform.volume_wh, gas=gas)


def _verified_batch_contract(addresses: MarketAddresses) -> str:
    contract = addresses.auction_contract
    if contract not in VERIFIED_BATCH_CONTRACTS:
        raise ValueError(f"{contract} takes no verified batch; those that do: {', '.join(VERIFIED_BATCH_CONTRACTS)}")
    return contract


def _book_contract(addresses: MarketAddresses) -> str:
    contract = addresses.auction_contract
    if contract in LOT_AUCTION_CONTRACTS:
        raise ValueError(f"{addresses.mechanism!r} auctions lots: use post_lot and the bid builders, not an order book")
    return contract


def commitment(bidder: str, lot_id: int, price_wei_per_wh: int, salt: bytes) -> bytes:
    """Sealed Vickrey bid: keccak256(abi_encode(bidder, lot_id, price_wei_per_wh, salt)).

    The encoding is four 32-byte words, types (address, uint256, uint256,
    bytes32), as ``VickreyAuction.reveal_bid`` recomputes it; ``salt`` is
    32 secret random bytes the bidder keeps until its reveal.
    """
    encoded = eth_abi.encode(["address", "uint256", "uint256", "bytes32"], [bidder, lot_id, price_wei_per_wh, salt])
    return keccak(encoded)


def post_lot(
    wallet: Wallet, addresses: MarketAddresses, interval: int, *, energy_wh: int, reserve_price_wei_per_wh: int
) -> bytes:
    """Signed ``post_lot``: ``wallet``'s lot of ``interval`` in a lot auction (before the gate)."""
    return signed_call(wallet, addresses.auction, addresses.auction_contract, "post_lot", interval, energy_wh,
                   reserve_price_wei_per_wh, gas=GAS_POST_LOT)


def commit_bid(wallet: Wallet, addresses: MarketAddresses, lot_id: int, *, sealed: bytes) -> bytes:
    """Signed ``VickreyAuction.commit_bid`` of a :func:`commitment` (before the gate)."""
    return signed_call(wallet, addresses.auction, "VickreyAuction", "commit_bid", lot_id, sealed, gas=GAS_COMMIT_BID)


def reveal_bid(wallet: Wallet, addresses: MarketAddresses, lot_id: int, *, price_wei_per_wh: int, salt: bytes) -> bytes:
    """Signed ``VickreyAuction.reveal_bid`` (in [gate, gate + reveal_s))."""
    return signed_call(wallet, addresses.auction, "VickreyAuction", "reveal_bid", lot_id, price_wei_per_wh, salt,
                   gas=GAS_REVEAL_BID)


def finalise(sender: Wallet, addresses: MarketAddresses, interval: int, *, n_lots: int) -> bytes:
    """Signed ``VickreyAuction.finalise`` of ``interval`` with ``n_lots`` lots (from gate + reveal_s on)."""
    return signed_call(sender, addresses.auction, "VickreyAuction", "finalise", interval, gas=finalise_gas(n_lots))


def bid(wallet: Wallet, addresses: MarketAddresses, lot_id: int, *, price_wei_per_wh: int) -> bytes:
    """Signed ``EnglishAuction.bid`` (before the gate)."""
    return signed_call(wallet, addresses.auction, "EnglishAuction", "bid", lot_id, price_wei_per_wh, gas=GAS_BID)


def withdraw(wallet: Wallet, addresses: MarketAddresses, amount_wei: int) -> bytes:
    """Signed ``Settlement.withdraw``: `amount_wei` of ``wallet``'s free credit to its wallet. [wei]"""
    return signed_call(wallet, addresses.settlement, "Settlement", "withdraw", amount_wei, gas=GAS_WITHDRAW)


def post_reading(
    meter: Wallet, addresses: MarketAddresses, interval: int, *, import_wh: int, export_wh: int, pv_wh: int,
    battery_wh: int,
) -> bytes:
    """Signed ``Settlement.post_reading`` of ``meter`` for ``interval``.

    Parameters
    ----------
    import_wh, export_wh : int
        Energy the prosumer drew from and fed into the grid. [Wh]
    pv_wh : int
        Energy its PV generated; 0 without PV. [Wh]
    battery_wh : int
        Energy its battery discharged; 0 without a battery. [Wh]
    """
    return signed_call(meter, addresses.settlement, "Settlement", "post_reading", interval, import_wh, export_wh, pv_wh,
                   battery_wh, gas=GAS_POST_READING)


def post_signed_readings(relay: Wallet, addresses: MarketAddresses, interval: int,
                         signed: Sequence[SignedReading]) -> bytes:
    """Signed ``Settlement.post_signed_readings`` of ``relay`` (a head-end) carrying the meters' `signed` readings.

    Raises
    ------
    ValueError
        For a reading of another interval.
    """
    if any(r.interval != interval for r in signed):
        raise ValueError(f"every relayed reading must be of interval {interval}")
    return signed_call(relay, addresses.settlement, "Settlement", "post_signed_readings", interval,
                   [r.as_struct() for r in signed], gas=_GAS_RELAY_BASE + GAS_SIGNED_READING * len(signed))


def release(sender: Wallet, addresses: MarketAddresses, interval: int, account: str) -> bytes:
    """Signed ``Settlement.release``: lowers ``account``'s escrow of a cleared ``interval`` to its obligation."""
    return signed_call(sender, addresses.settlement, "Settlement", "release", interval, account, gas=GAS_RELEASE)


def read(chain: Chain, address: str, contract: str, function: str, *args):
    """Value of the view ``contract.function(*args)`` at ``address``, at the head."""
    return decode_return(contract, function, chain.call(address, encode_call(contract, function, *args)))


def book(chain: Chain, addresses: MarketAddresses, interval: int) -> Book:
    """Both sides of ``interval``'s book as stored on chain.

    A merit-order book has no bids: its offers are the asks, and its
    ``demand_wh`` is the view ``MeritOrder.demand_wh``.

    Raises
    ------
    ValueError
        For a lot auction, which has no book.
    """
    contract = _book_contract(addresses)
    if contract == "MeritOrder":
        offers = read(chain, addresses.auction, contract, "orders", interval)
        demand_wh = read(chain, addresses.auction, contract, "demand_wh", interval)
        return Book((), tuple(Order(*order) for order in offers), demand_wh)
    bids, asks = (
        tuple(Order(*order) for order in read(chain, addresses.auction, contract, "orders", interval, is_ask))
        for is_ask in (False, True)
    )
    return Book(bids, asks)


@dataclass(frozen=True)
class LotState:
    """One lot of a lot auction as the chain holds it; ``leader`` is the empty address until a bid leads.

    For a Vickrey lot ``leader`` and ``price_wei_per_wh`` stay empty until
    the reveals (the sealed bids are not visible).
    """

    lot_id: int
    seller: str
    energy_wh: int
    reserve_price_wei_per_wh: int
    leader: str
    price_wei_per_wh: int


def lot_states(chain: Chain, addresses: MarketAddresses, interval: int) -> list[LotState]:
    """Every lot of ``interval`` in posting order, with its leading bid."""
    contract = addresses.auction_contract
    if contract not in LOT_AUCTION_CONTRACTS:
        raise ValueError(f"{addresses.mechanism!r} has no lots")
    states = []
    for lot_id in read(chain, addresses.auction, contract, "lots", interval):
        seller, _, energy_wh, reserve, leader, price, *_ = read(chain, addresses.auction, contract, "lot", lot_id)
        states.append(LotState(lot_id, seller, energy_wh, reserve, leader, price))
    return states
