"""Gas of order submission and clearing per market mechanism and book size.

:func:`gas_table` deploys each mechanism on a fresh embedded chain and
measures, for each book size, the mean gas of one order and the gas of
one clearing of a fully crossing book (every order fills: the costliest
case). Every clearing here is verified off-chain-sorted clearing: the
operator supplies the priority order and the contract checks it in O(n).
A lot auction's book is half lots and half bids, one bid on each lot
above its reserve: an order is a posted lot or a bid (a Vickrey bid is
its commitment plus its reveal), and the clearing is
``VickreyAuction.finalise`` (English auctions close without one: 0).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account

BOOK_SIZES = (8, 32, 128, 512)
_SEED = 0
_GENESIS_TIMESTAMP = 1_767_225_600
_INTERVAL_S = 900
_GATE_CLOSURE_S = 300
_PRICE_CAP_WEI_PER_WH = 10**15
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
        Key of :data:`~gridledger.contracts.market.MECHANISMS`.
    n_orders : int
        Orders in the book (bids plus asks, or offers). [1]
    submit_gas : int
        Mean gas of one order submission. [gas]
    clear_gas : int
        Gas of clearing the whole book; 0 for an English auction. [gas]
    """

    mechanism: str
    n_orders: int
    submit_gas: int
    clear_gas: int

    @property
    def clear_gas_per_order(self) -> int:
        """Clearing gas divided by the book size, rounded down. [gas]"""
        return self.clear_gas // self.n_orders


def _crossing_book(
    mechanism: str, n_orders: int
) -> tuple[int, list[tuple[bool, int, int]]]:
    """(demand [Wh], orders as (is_ask, energy [Wh], price [wei/Wh])) where every order fills."""
    if mk.MECHANISMS[mechanism] == "MeritOrder":
        offers = [(True, 100 + i, 1 + i) for i in range(n_orders)]
        return sum(energy for _, energy, _ in offers), offers
    n_side = n_orders // 2
    bids = [(False, 100 + i, _PRICE_CAP_WEI_PER_WH - i) for i in range(n_side)]
    asks = [(True, 100 + i, 1 + i) for i in range(n_side)]
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
    sizes = [n for n in book_sizes if n <= _CAPACITY[mk.MECHANISMS[mechanism]]]
    if not sizes:
        return []
    operator = derive_account(_SEED, "operator")
    prosumers = [derive_account(_SEED, f"prosumer/{i}") for i in range(max(sizes))]
    chain = Chain(
        [a.address for a in (operator, *prosumers)],
        genesis_timestamp=_GENESIS_TIMESTAMP,
    )
    operator_wallet = chain.wallet(operator)
    start_timestamp = _GENESIS_TIMESTAMP + 3600
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
        endowment_wei=0,
        operator_deposit_wei=0,
        mechanism=mechanism,
    )
    wallets = [chain.wallet(p) for p in prosumers]
    rows = []
    for interval, n_orders in enumerate(sizes, start=1):
        if mk.MECHANISMS[mechanism] in mk.LOT_AUCTIONS:
            rows.append(
                GasRow(
                    mechanism,
                    n_orders,
                    *_lot_auction_gas(chain, addresses, wallets, interval, n_orders),
                )
            )
            continue
        demand_wh, orders = _crossing_book(mechanism, n_orders)
        raw_txs = [
            mk.submit_order(
                wallet,
                addresses,
                interval,
                is_ask=is_ask,
                energy_wh=energy_wh,
                price_wei_per_wh=price,
            )
            for wallet, (is_ask, energy_wh, price) in zip(wallets, orders, strict=False)
        ]
        if demand_wh:
            raw_txs.append(
                mk.post_demand(
                    operator_wallet, addresses, interval, demand_wh=demand_wh
                )
            )
        receipts = chain.mine(raw_txs, chain.timestamp + 1)
        if not all(r.ok for r in receipts):
            raise RuntimeError(
                f"{mechanism}: submission failed: {[r.revert_reason for r in receipts if not r.ok]}"
            )
        gate = start_timestamp + interval * _INTERVAL_S - _GATE_CLOSURE_S
        (cleared,) = chain.mine(
            [
                mk.clear(
                    operator_wallet,
                    addresses,
                    interval,
                    mk.book(chain, addresses, interval),
                )
            ],
            gate,
        )
        if not cleared.ok:
            raise RuntimeError(
                f"{mechanism}: clearing {n_orders} orders failed: {cleared.revert_reason}"
            )
        submit_gas = sum(r.gas_used for r in receipts[:n_orders]) // n_orders
        rows.append(GasRow(mechanism, n_orders, submit_gas, cleared.gas_used))
    return rows


def gas_table(
    book_sizes: Sequence[int] = BOOK_SIZES,
    mechanisms: Sequence[str] = tuple(mk.MECHANISMS),
) -> list[GasRow]:
    """Gas per order and per clearing for each mechanism and book size.

    Book sizes beyond what one interval of a mechanism holds (256 per
    side of a double auction, 256 offers of a merit order, 128 lots with
    128 bids of a lot auction) are left out.

    Parameters
    ----------
    book_sizes : sequence of int
        Orders per book; even for the double auctions (half bids, half asks).
    mechanisms : sequence of str
        Keys of :data:`~gridledger.contracts.market.MECHANISMS`.

    Returns
    -------
    list of GasRow
        One row per mechanism and book size, in the order given.
    """
    return [row for mechanism in mechanisms for row in _measure(mechanism, book_sizes)]
