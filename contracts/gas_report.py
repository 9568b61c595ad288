"""Gas of order submission and clearing per market mechanism and book size.

:func:`gas_table` deploys each mechanism on a fresh embedded chain and
measures, for each book size, the mean gas of one order and the gas of
one clearing of a fully crossing book submitted against priority order
(every order fills and the on-chain insertion sort shifts every key: the
costliest case) in each clearing mode: verified off-chain (the caller
supplies the priority order and the outcome, the contract checks both in
O(n); its gas includes that calldata) and on-chain (the contract sorts in
O(n^2)). :func:`crossover` finds by bisection the smallest book at which
verified clearing is the cheaper one.
A lot auction's book is half lots and half bids, one bid on each lot
above its reserve: an order is a posted lot or a bid (a Vickrey bid is
its commitment plus its reveal), and the clearing is
``VickreyAuction.finalise`` (English auctions close without one: 0).
"""

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.contracts.mechanisms import LOT_AUCTION_CONTRACTS, MECHANISMS
from gridledger.units import SECONDS_PER_HOUR

BOOK_SIZES = (8, 32, 128, 512)
# Fixed, public secret of the measured accounts (gas figures protect nothing).
_SECRET = bytes(32)
_GENESIS_TIMESTAMP = 1_767_225_600
_INTERVAL_S = 900
_GATE_CLOSURE_S = 300
_PRICE_CAP_WEI_PER_WH = 10**15
_ESCROW_ENDOWMENT_WEI = 10**6 * _PRICE_CAP_WEI_PER_WH
# Every prosumer's meter and PV: 10 kW carry 2500 Wh an interval, above
# every order of the report's books.
_LIMITS = mk.ProsumerLimits(meter_rating_w=10_000, pv_w=10_000)
# Orders one interval of each mechanism holds: both sides of a double
# auction, the offers of a merit order.
_CAPACITY = {
    "DoubleAuction": 2 * 256,
    "PayAsBid": 2 * 256,
    "MeritOrder": 256,
    "VickreyAuction": 2 * 128,
    "EnglishAuction": 2 * 128,
}


@dataclass(frozen=True)
class GasRow:
    """Gas figures of one mechanism at one book size.

    Attributes
    ----------
    mechanism : str
        Key of :data:`~gridledger.contracts.mechanisms.MECHANISMS`.
    n_orders : int
        Orders in the book (bids plus asks, or offers). [1]
    submit_gas : int
        Mean gas of one order submission. [gas]
    clear_gas : int
        Gas of clearing the whole book, verified off-chain (``clear``
        with its calldata); a Vickrey auction's ``finalise``, 0 for an
        English auction. [gas]
    clear_onchain_gas : int
        Gas of clearing the whole book sorted on chain
        (``clear_onchain``); 0 for a lot auction, which has no book. [gas]
    capped : bool
        True if a larger book was asked for than one interval holds and
        this row is measured at that limit instead.
    """

    mechanism: str
    n_orders: int
    submit_gas: int
    clear_gas: int
    clear_onchain_gas: int = 0
    capped: bool = False

    @property
    def clear_gas_per_order(self) -> int:
        """Clearing gas divided by the book size, rounded down. [gas]"""
        return self.clear_gas // self.n_orders


def _crossing_book(
    mechanism: str, n_orders: int
) -> tuple[int, list[tuple[bool, int, int]]]:
    """(demand [Wh], orders as (is_ask, energy [Wh], price [wei/Wh])) where every order fills.

    Each side is submitted in reverse priority order (bids cheapest
    first, asks and offers dearest first), the worst case of the
    on-chain insertion sort; every bid outbids every ask and both sides
    hold the same energies, so every order fills.
    """
    if MECHANISMS[mechanism].contract == "MeritOrder":
        offers = [(True, 100 + i, n_orders - i) for i in range(n_orders)]
        return sum(energy for _, energy, _ in offers), offers
    n_side = n_orders // 2
    bids = [(False, 100 + i, _PRICE_CAP_WEI_PER_WH - n_side + 1 + i) for i in range(n_side)]
    asks = [(True, 100 + i, n_side - i) for i in range(n_side)]
    return 0, bids + asks


def _lot_auction_gas(
    chain: Chain,
    addresses: mk.MarketAddresses,
    wallets: Sequence[Wallet],
    interval: int,
    n_orders: int,
) -> tuple[int, int]:
    """(mean gas of a lot or a bid, finalise gas) of ``n_orders // 2`` lots each won by one bid."""
    n_lots = n_orders // 2
    sellers, bidders = wallets[:n_lots], wallets[n_lots : 2 * n_lots]
    posted = chain.mine(
        [
            mk.post_lot(
                w,
                addresses,
                interval,
                energy_wh=100 + i,
                reserve_price_wei_per_wh=1 + i,
            )
            for i, w in enumerate(sellers)
        ],
        chain.timestamp + 1,
    )
    lot_ids = mk.read(
        chain, addresses.auction, addresses.auction_contract, "lots", interval
    )
    price = _PRICE_CAP_WEI_PER_WH
    gate = mk.read(
        chain, addresses.auction, addresses.auction_contract, "gate_timestamp", interval
    )
    if addresses.auction_contract == "EnglishAuction":
        bids = chain.mine(
            [
                mk.bid(w, addresses, lot, price_wei_per_wh=price)
                for w, lot in zip(bidders, lot_ids, strict=True)
            ],
            chain.timestamp + 1,
        )
        cleared = None
    else:
        salt = bytes(32)
        commits = chain.mine(
            [
                mk.commit_bid(
                    w, addresses, lot, sealed=mk.commitment(w.address, lot, price, salt)
                )
                for w, lot in zip(bidders, lot_ids, strict=True)
            ],
            chain.timestamp + 1,
        )
        reveals = chain.mine(
            [
                mk.reveal_bid(w, addresses, lot, price_wei_per_wh=price, salt=salt)
                for w, lot in zip(bidders, lot_ids, strict=True)
            ],
            gate,
        )
        bids = [*commits, *reveals]
        reveal_end = mk.read(
            chain, addresses.auction, "VickreyAuction", "reveal_end_timestamp", interval
        )
        (cleared,) = chain.mine(
            [mk.finalise(bidders[0], addresses, interval, n_lots=n_lots)], reveal_end
        )
    failed = [
        r.revert_reason
        for r in (*posted, *bids, *([cleared] if cleared else []))
        if not r.ok
    ]
    if failed:
        raise RuntimeError(f"{addresses.mechanism}: {n_orders} orders failed: {failed}")
    submit_gas = sum(r.gas_used for r in (*posted, *bids)) // n_orders
    return submit_gas, cleared.gas_used if cleared else 0


def _measure(mechanism: str, book_sizes: Sequence[int]) -> list[GasRow]:
    capacity = _CAPACITY[MECHANISMS[mechanism].contract]
    sizes = sorted({min(n, capacity) for n in book_sizes})
    capped = any(n > capacity for n in book_sizes)
    operator = derive_account(_SECRET, "operator")
    prosumers = [derive_account(_SECRET, f"prosumer/{i}") for i in range(max(sizes))]
    chain = Chain(
        [a.address for a in (operator, *prosumers)],
        genesis_timestamp=_GENESIS_TIMESTAMP,
    )
    operator_wallet = chain.wallet(operator)
    start_timestamp = _GENESIS_TIMESTAMP + SECONDS_PER_HOUR
    addresses = mk.deploy_market(
        chain,
        operator_wallet,
        prosumers=[p.address for p in prosumers],
        meters={},
        start_timestamp=start_timestamp,
        interval_s=_INTERVAL_S,
        gate_closure_s=_GATE_CLOSURE_S,
        price_cap_wei_per_wh=_PRICE_CAP_WEI_PER_WH,
        grid_buy_price_wei_per_wh=0,
        grid_sell_price_wei_per_wh=0,
        grid_fee_wei_per_wh=0,
        # Enough free credit for every bid's escrow (the order energies
        # times the cap), and for the merit-order demand's.
        endowment_wei=_ESCROW_ENDOWMENT_WEI,
        operator_deposit_wei=_ESCROW_ENDOWMENT_WEI * max(sizes),
        limits={p.address: _LIMITS for p in prosumers},
        mechanism=mechanism,
    )
    wallets = [chain.wallet(p) for p in prosumers]
    rows = []
    for i, n_orders in enumerate(sizes):
        # Two intervals per size, one for each clearing mode.
        interval = 2 * i + 1
        if MECHANISMS[mechanism].is_lot_auction:
            row = GasRow(mechanism, n_orders, *_lot_auction_gas(chain, addresses, wallets, interval, n_orders))
        else:
            submit_gas, clear_gas = _book_gas(
                chain, addresses, operator_wallet, wallets, interval, n_orders, "verified-offchain"
            )
            _, onchain_gas = _book_gas(chain, addresses, operator_wallet, wallets, interval + 1, n_orders, "on-chain")
            row = GasRow(mechanism, n_orders, submit_gas, clear_gas, onchain_gas)
        rows.append(dataclasses.replace(row, capped=capped and n_orders == capacity))
    return rows


def _book_gas(
    chain: Chain,
    addresses: mk.MarketAddresses,
    operator: Wallet,
    wallets: Sequence[Wallet],
    interval: int,
    n_orders: int,
    mode: str,
) -> tuple[int, int]:
    """(mean gas of an order, gas of clearing in ``mode``) of a crossing book of ``n_orders`` in ``interval``."""
    mechanism = addresses.mechanism
    demand_wh, orders = _crossing_book(mechanism, n_orders)
    raw_txs = [
        mk.submit_order(wallet, addresses, interval, is_ask=is_ask, energy_wh=energy_wh, price_wei_per_wh=price)
        for wallet, (is_ask, energy_wh, price) in zip(wallets, orders, strict=False)
    ]
    if demand_wh:
        raw_txs.append(mk.post_demand(operator, addresses, interval, demand_wh=demand_wh))
    receipts = chain.mine(raw_txs, chain.timestamp + 1)
    if not all(r.ok for r in receipts):
        raise RuntimeError(f"{mechanism}: submission failed: {[r.revert_reason for r in receipts if not r.ok]}")
    gate = mk.read(chain, addresses.auction, addresses.auction_contract, "gate_timestamp", interval)
    book = mk.book(chain, addresses, interval)
    (cleared,) = chain.mine([mk.clear(operator, addresses, interval, book, mode=mode)], max(gate, chain.timestamp + 1))
    if not cleared.ok:
        raise RuntimeError(f"{mechanism}: clearing {n_orders} orders {mode} failed: {cleared.revert_reason}")
    return sum(r.gas_used for r in receipts[:n_orders]) // n_orders, cleared.gas_used


def gas_table(
    book_sizes: Sequence[int] = BOOK_SIZES,
    mechanisms: Sequence[str] = tuple(MECHANISMS),
) -> list[GasRow]:
    """Gas per order and per clearing for each mechanism and book size.

    A book size beyond what one interval of a mechanism holds (256 per
    side of a double auction, 256 offers of a merit order, 128 lots with
    128 bids of a lot auction) is measured at that limit instead, in a
    row marked ``capped``.

    Parameters
    ----------
    book_sizes : sequence of int
        Orders per book; even for the double auctions (half bids, half asks).
    mechanisms : sequence of str
        Keys of :data:`~gridledger.contracts.mechanisms.MECHANISMS`.

    Returns
    -------
    list of GasRow
        One row per mechanism and distinct (capped) book size, sizes
        ascending.
    """
    return [row for mechanism in mechanisms for row in _measure(mechanism, book_sizes)]


@dataclass(frozen=True)
class Crossover:
    """Smallest book at which verified off-chain clearing costs less gas than on-chain sorting.

    Attributes
    ----------
    mechanism : str
        Key of :data:`~gridledger.contracts.mechanisms.MECHANISMS` (a book mechanism).
    step : int
        Spacing of the book sizes searched: 2 for a double auction (half
        bids, half asks), 1 for a merit order. [1]
    at : GasRow or None
        The measured book at the crossover; None if on-chain sorting is
        no dearer up to the largest book an interval holds.
    below : GasRow or None
        The book one step smaller, where on-chain sorting is no dearer;
        None if verified clearing is cheaper already at the smallest book.
    """

    mechanism: str
    step: int
    at: GasRow | None
    below: GasRow | None

    @property
    def n_orders(self) -> int | None:
        """Book size of the crossover, None if there is none. [1]"""
        return None if self.at is None else self.at.n_orders


def _onchain_dearer(row: GasRow) -> bool:
    return row.clear_onchain_gas > row.clear_gas


def crossover(mechanism: str) -> Crossover:
    """Bisect the book size for the point where verified off-chain clearing becomes cheaper.

    On-chain sorting saves the order and the claim in the calldata and
    the O(n) check, but its insertion sort costs O(n^2): below some book
    size it is the cheaper mode, above it verified clearing is. Each
    probed size is measured as in :func:`gas_table` (fresh chain, worst
    case book); the search assumes that the on-chain surplus grows with
    the book, and the returned rows show the two sides of the step.

    Parameters
    ----------
    mechanism : str
        "uniform-double-auction", "pay-as-bid" or "merit-order".

    Returns
    -------
    Crossover
        The smallest size where on-chain clearing costs more gas, with
        the rows at it and one step below.
    """
    contract = MECHANISMS[mechanism].contract
    if contract in LOT_AUCTION_CONTRACTS:
        raise ValueError(f"{mechanism!r} has no order book to sort")
    step = 1 if contract == "MeritOrder" else 2
    measured: dict[int, GasRow] = {}

    def row(n_orders: int) -> GasRow:
        if n_orders not in measured:
            (measured[n_orders],) = _measure(mechanism, [n_orders])
        return measured[n_orders]

    low, high = step, _CAPACITY[contract]
    if not _onchain_dearer(row(high)):
        return Crossover(mechanism, step, None, None)
    if _onchain_dearer(row(low)):
        return Crossover(mechanism, step, row(low), None)
    # Invariant: on-chain is no dearer at `low` and dearer at `high`.
    while high - low > step:
        middle = low + (high - low) // (2 * step) * step
        if _onchain_dearer(row(middle)):
            high = middle
        else:
            low = middle
    return Crossover(mechanism, step, row(high), row(low))
