"""Shared set-up of the contract tests: a seeded market on a fresh chain.

Tests import this module directly; it holds no pytest fixtures so each
test module states its own fixture scope.
"""

import dataclasses
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

from hypothesis import strategies as st

from gridledger.contracts import audit as au
from gridledger.contracts import flexibility as fx
from gridledger.contracts import market as mk
from gridledger.contracts.chain import Chain, Receipt
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account
from gridledger.contracts.reference import Lot, LotAuction, Order, settle
from tests.secret_helpers import fixed_secret

SEED = 20260101
GENESIS_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
START_TIMESTAMP = GENESIS_TIMESTAMP + 3600
INTERVAL_S = 900
GATE_CLOSURE_S = 300
# 0.01 token/kWh in token base units per Wh.
CENT_PER_KWH = 10**13
PRICE_CAP_WEI_PER_WH = 100 * CENT_PER_KWH
GRID_BUY_PRICE_WEI_PER_WH = 30 * CENT_PER_KWH
GRID_SELL_PRICE_WEI_PER_WH = 5 * CENT_PER_KWH
GRID_FEE_WEI_PER_WH = 2 * CENT_PER_KWH
NON_DELIVERY_PENALTY_WEI_PER_WH = 5 * CENT_PER_KWH
MIN_ORDER_WH = 1
ENDOWMENT_WEI = 100 * 10**18
OPERATOR_DEPOSIT_WEI = 1000 * 10**18
# Voltage-regulation contract of `new_flex_market`: penalty factor 1.5, a 15 min delivery
# period, and the tokens minted to its operator and to each prosumer for bonds. [1/1000], [s], [wei]
FLEX_PENALTY_PERMILLE = 1500
FLEX_DELIVERY_PERIOD_S = 900
FLEX_OPERATOR_TOKENS_WEI = 10**24
FLEX_DER_TOKENS_WEI = 10**22
# Registered limits of every test prosumer: a 100 kW meter with 100 kWp
# PV and a 50 kW battery, room for every hand-computed reading (25 kWh
# per 15-minute interval through the meter).
TEST_LIMITS = mk.ProsumerLimits(meter_rating_w=100_000, pv_w=100_000, battery_w=50_000)
# What TEST_LIMITS allow through the meter, from the PV and from the battery over one interval. [Wh]
RATING_WH = TEST_LIMITS.meter_rating_w * INTERVAL_S // 3600
PV_PEAK_WH = TEST_LIMITS.pv_w * INTERVAL_S // 3600
BATTERY_PEAK_WH = TEST_LIMITS.battery_w * INTERVAL_S // 3600

# Limit prices of the property tests: a coarse grid, so that many orders tie,
# or any price up to the cap. [wei/Wh]
ORDER_PRICES = st.one_of(
    st.sampled_from([k * 5 * CENT_PER_KWH for k in range(1, 13)]),
    st.integers(1, PRICE_CAP_WEI_PER_WH),
)


def order_lists(*, max_size: int, min_size: int = 0) -> st.SearchStrategy[list[tuple[int, int]]]:
    """Lists of (energy_wh, price_wei_per_wh) orders with 1 to 1000 Wh at :data:`ORDER_PRICES`."""
    return st.lists(st.tuples(st.integers(1, 1000), ORDER_PRICES), min_size=min_size, max_size=max_size)


def named_book(bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> mk.Book:
    """Reference book of (energy_wh, price_wei_per_wh) orders from accounts "b<i>" and "a<j>"."""
    return mk.Book(
        tuple(Order(f"b{i}", q, p) for i, (q, p) in enumerate(bids)),
        tuple(Order(f"a{j}", q, p) for j, (q, p) in enumerate(asks)),
    )


def reverted(receipt: Receipt, reason: str) -> bool:
    """True if ``receipt`` failed with exactly ``reason``."""
    return receipt.status == 0 and receipt.revert_reason == reason


@dataclass
class Market:
    """A deployed market with its wallets; intervals are used up one by one. The funded ``dso``
    account holds no role until a test grants it one."""

    chain: Chain
    operator: Wallet
    prosumers: list[Wallet]
    meters: list[Wallet]
    outsider: Wallet
    addresses: mk.MarketAddresses
    dso: Wallet

    def gate(self, interval: int) -> int:
        """Gate closure of ``interval``. [s since the Unix epoch]"""
        return START_TIMESTAMP + interval * INTERVAL_S - GATE_CLOSURE_S

    def end(self, interval: int) -> int:
        """End of ``interval``. [s since the Unix epoch]"""
        return START_TIMESTAMP + (interval + 1) * INTERVAL_S

    def next_interval(self) -> int:
        """First interval whose gate is still open one second after the head."""
        return max(0, (self.chain.timestamp + 1 + GATE_CLOSURE_S - START_TIMESTAMP) // INTERVAL_S + 1)

    def mine(self, raw_txs: list[bytes], timestamp: int | None = None) -> list[Receipt]:
        """Mine ``raw_txs`` at ``timestamp`` (default: one second after the head)."""
        return self.chain.mine(raw_txs, self.chain.timestamp + 1 if timestamp is None else timestamp)

    def address(self, contract: str) -> str:
        """Address of the market's ``contract``."""
        return {
            "Registry": self.addresses.registry,
            "GridToken": self.addresses.token,
            self.addresses.auction_contract: self.addresses.auction,
            "Settlement": self.addresses.settlement,
        }[contract]

    def call_tx(self, wallet: Wallet, contract: str, function: str, *args, gas: int = 500_000) -> bytes:
        """Signed call of ``contract.function(*args)`` by ``wallet``."""
        return wallet.transact(self.address(contract), encode_call(contract, function, *args), gas=gas)

    def read(self, contract: str, function: str, *args):
        """View ``contract.function(*args)`` at the head."""
        return mk.read(self.chain, self.address(contract), contract, function, *args)

    def submit_book(self, interval: int, bids: list[tuple[int, int]], asks: list[tuple[int, int]]) -> mk.Book:
        """Submit (energy_wh, price_wei_per_wh) bids and asks one second after the head.

        Bids come from the first prosumers, asks from the next ones;
        returns the book as the reference sees it, with the demand a
        merit-order market holds for ``interval``.
        """
        wallets = iter(self.prosumers)
        raw_txs, bid_orders, ask_orders = [], [], []
        for side, orders, out in ((False, bids, bid_orders), (True, asks, ask_orders)):
            for energy_wh, price_wei_per_wh in orders:
                wallet = next(wallets)
                raw_txs.append(
                    mk.submit_order(
                        wallet,
                        self.addresses,
                        interval,
                        is_ask=side,
                        energy_wh=energy_wh,
                        price_wei_per_wh=price_wei_per_wh,
                    )
                )
                out.append(Order(wallet.address, energy_wh, price_wei_per_wh))
        receipts = self.mine(raw_txs)
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
        demand_wh = self.read("MeritOrder", "demand_wh", interval) if self.addresses.mechanism == "merit-order" else 0
        return mk.Book(tuple(bid_orders), tuple(ask_orders), demand_wh)

    def clear(self, interval: int, book: mk.Book, *, mode: str = mk.DEFAULT_CLEARING_MODE) -> Receipt:
        """Clear ``interval`` at its gate by the operator in clearing ``mode``."""
        (receipt,) = self.mine([mk.clear(self.operator, self.addresses, interval, book, mode=mode)], self.gate(interval))
        return receipt

    def deploy(self, contract: str, *args) -> Receipt:
        """Receipt of the operator deploying a fresh ``contract(*args)`` one second after the head."""
        raw, _ = self.operator.deploy(load_artifact(contract), *args)
        (receipt,) = self.mine([raw])
        return receipt

    def signer(self, who: str) -> Wallet:
        """Wallet named ``who``: "outsider", "meter<i>" or "p<i>" (prosumer i)."""
        if who == "outsider":
            return self.outsider
        if who.startswith("meter"):
            return self.meters[int(who[5:])]
        return self.prosumers[int(who[1:])]

    def post_lots(self, interval: int, lots: list[tuple[int, int]]) -> tuple[list[int], list[Lot]]:
        """Post (energy_wh, reserve) lots of ``interval`` from the first prosumers, one second after the head.

        Returns the lot ids and the lots as the reference sees them.
        """
        sellers = self.prosumers[: len(lots)]
        posted = self.mine(
            [
                mk.post_lot(w, self.addresses, interval, energy_wh=q, reserve_price_wei_per_wh=r)
                for w, (q, r) in zip(sellers, lots, strict=True)
            ]
        )
        assert all(r.ok for r in posted), [r.revert_reason for r in posted]
        lot_ids = self.read(self.addresses.auction_contract, "lots", interval)
        return lot_ids, [Lot(w.address, q, r) for w, (q, r) in zip(sellers, lots, strict=True)]


def escrowed_mechanism(market: Market, contract: str, *args, buyer: str, credit_wei: int,
                       limits: mk.ProsumerLimits = TEST_LIMITS) -> mk.MarketAddresses:
    """A fresh ``contract(registry, *args)`` with its own token and fee-free settlement, bound to each
    other, every prosumer registered with ``limits`` and ``credit_wei`` deposited for ``buyer``: room for
    bids larger than the endowment.
    ``args`` start with the mechanism's start timestamp and interval length; the settlement takes the
    interval length too (no non-delivery penalty, minimum order 1 Wh)."""
    operator = market.operator
    start_timestamp, interval_s = args[:2]
    # The settlement registers prosumers until its start: a minute from now at least, once the market runs.
    registrations_close = max(start_timestamp, market.chain.timestamp + 60)
    deploy_auction, auction = operator.deploy(load_artifact(contract), market.addresses.registry, *args)
    deploy_token, token = operator.deploy(load_artifact("GridToken"), credit_wei)
    deploy_settlement, settlement = operator.deploy(
        load_artifact("Settlement"), market.addresses.registry, auction, token, operator.address, 0, 0, 0, 0,
        registrations_close, interval_s, 0, 1,
    )
    deployed = market.mine([deploy_auction, deploy_token, deploy_settlement])
    assert all(r.ok for r in deployed), [r.revert_reason for r in deployed]
    set_up = market.mine(
        [
            operator.transact(auction, encode_call(contract, "bind_settlement", settlement), gas=200_000),
            operator.transact(token, encode_call("GridToken", "approve", settlement, credit_wei), gas=200_000),
            operator.transact(
                settlement, encode_call("Settlement", "deposit_for", buyer, credit_wei), gas=200_000
            ),
            *(
                operator.transact(settlement, encode_call("Settlement", "register_prosumer", p.address,
                                                          limits.meter_rating_w, limits.pv_w, limits.battery_w),
                                  gas=200_000)
                for p in market.prosumers
            ),
        ]
    )
    assert all(r.ok for r in set_up), [r.revert_reason for r in set_up]
    return dataclasses.replace(market.addresses, auction=auction, token=token, settlement=settlement)


def read_lot_auction(
    market: Market, interval: int, winners: list[str | None], prices: list[int], bid_receipts: list[Receipt]
) -> LotAuction:
    """Result of a closed lot-auction ``interval``: lot winners and prices as read, each bid's
    acceptance from its receipt, positions and values from the settlement terms of every
    prosumer (checked to be final and due at the interval's end)."""
    terms = {
        w.address: market.read(market.addresses.auction_contract, "settlement_terms", interval, w.address)
        for w in market.prosumers
    }
    assert all(t[0] and t[3] == market.end(interval) for t in terms.values())
    return LotAuction(
        tuple(winners),
        tuple(prices),
        tuple(r.ok for r in bid_receipts),
        {a: t[1] for a, t in terms.items() if t[1]},
        {a: t[2] for a, t in terms.items() if t[2]},
    )


def named_accounts(market: Market, groups: list[tuple[str, int]]) -> dict[str, str]:
    """Prosumer addresses by name: each (prefix, count) group names the next ``count``
    prosumers "<prefix>0", "<prefix>1", ..."""
    wallets = iter(market.prosumers)
    return {f"{prefix}{i}": next(wallets).address for prefix, count in groups for i in range(count)}


def assert_settlement_conserves_tokens(market: Market, interval: int, clearing, readings: list[tuple[int, int]],
                                       buy_price_wei_per_wh: int = GRID_BUY_PRICE_WEI_PER_WH):
    """Post (import_wh, export_wh) readings of the first meters at the end of ``interval`` and check
    each prosumer's and the operator's credit change against the reference, the empty pool, the
    unchanged supply and that the settlement holds every credit.

    ``clearing`` is the interval's reference result (``positions_wh`` and ``values_wei``);
    ``buy_price_wei_per_wh`` the interval's grid buy price (the tariff, or its price spike).
    """
    accounts = [market.operator.address, *(w.address for w in market.prosumers)]
    before = {a: market.read("Settlement", "credit_wei", a) for a in accounts}
    receipts = market.mine(
        [
            mk.post_reading(meter, market.addresses, interval, import_wh=i, export_wh=e, pv_wh=e, battery_wh=0)
            for meter, (i, e) in zip(market.meters, readings, strict=False)
        ],
        market.end(interval),
    )
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    operator_delta = 0
    for wallet, (imp, exp) in zip(market.prosumers, readings, strict=False):
        a = wallet.address
        line = settle(
            clearing.positions_wh.get(a, 0),
            clearing.values_wei.get(a, 0),
            imp,
            exp,
            buy_price_wei_per_wh,
            GRID_SELL_PRICE_WEI_PER_WH,
            GRID_FEE_WEI_PER_WH,
            non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
        )
        assert market.read("Settlement", "credit_wei", a) - before[a] == line.credit_delta_wei
        operator_delta += line.operator_delta_wei
    assert market.read("Settlement", "credit_wei", market.operator.address) - before[accounts[0]] == operator_delta
    assert market.read("Settlement", "pool_wei") == 0
    assert market.read("GridToken", "totalSupply") == ENDOWMENT_WEI * len(market.prosumers) + OPERATOR_DEPOSIT_WEI
    held = market.read("GridToken", "balanceOf", market.addresses.settlement)
    assert sum(market.read("Settlement", "credit_wei", a) for a in accounts) + market.read(
        "Settlement", "penalty_pool_wei") == held


def new_market(
    n_prosumers: int,
    *,
    seed: int = SEED,
    with_meters: bool = True,
    mechanism: str = mk.DEFAULT_MECHANISM,
    limits: mk.ProsumerLimits = TEST_LIMITS,
    credit_line_wei: int = 0,
    min_order_wh: int = MIN_ORDER_WH,
    price_spikes: dict[int, int] | None = None,
    **mechanism_args: int,
) -> Market:
    """Deploy a ``mechanism`` market with ``n_prosumers`` prosumers (and one meter each).

    Every prosumer is registered with ``limits``; ``credit_line_wei`` is
    the settlement's credit line [wei], ``min_order_wh`` its least order. [Wh]

    ``mechanism_args`` are the lot auctions' extra parameters of
    :func:`~gridledger.contracts.market.deploy_market` (``reveal_s``,
    ``bid_increment_wei_per_wh``).
    """
    secret = fixed_secret(seed)
    operator = derive_account(secret, "operator")
    prosumers = [derive_account(secret, f"prosumer/{i}") for i in range(n_prosumers)]
    meters = [derive_account(secret, f"meter/{i}") for i in range(n_prosumers)] if with_meters else []
    outsider = derive_account(secret, "outsider")
    dso = derive_account(secret, "dso")
    chain = Chain(
        [a.address for a in (operator, outsider, *prosumers, *meters, dso)],
        genesis_timestamp=GENESIS_TIMESTAMP,
    )
    operator_wallet = chain.wallet(operator)
    addresses = mk.deploy_market(
        chain,
        operator_wallet,
        prosumers=[p.address for p in prosumers],
        meters={p.address: m.address for p, m in zip(prosumers, meters, strict=True)} if with_meters else {},
        start_timestamp=START_TIMESTAMP,
        interval_s=INTERVAL_S,
        gate_closure_s=GATE_CLOSURE_S,
        price_cap_wei_per_wh=PRICE_CAP_WEI_PER_WH,
        grid_buy_price_wei_per_wh=GRID_BUY_PRICE_WEI_PER_WH,
        grid_sell_price_wei_per_wh=GRID_SELL_PRICE_WEI_PER_WH,
        grid_fee_wei_per_wh=GRID_FEE_WEI_PER_WH,
        endowment_wei=ENDOWMENT_WEI,
        operator_deposit_wei=OPERATOR_DEPOSIT_WEI,
        limits={p.address: limits for p in prosumers},
        credit_line_wei=credit_line_wei,
        non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
        min_order_wh=min_order_wh,
        mechanism=mechanism,
        price_spikes=price_spikes,
        **mechanism_args,
    )
    return Market(
        chain=chain,
        operator=operator_wallet,
        prosumers=[chain.wallet(p) for p in prosumers],
        meters=[chain.wallet(m) for m in meters],
        outsider=chain.wallet(outsider),
        addresses=addresses,
        dso=chain.wallet(dso),
    )


def new_flex_market(n_prosumers: int, bus: int = 5) -> tuple[Market, str]:
    """A :func:`new_market` with a ``VoltageRegulation`` contract whose operator is the market's
    operator, every prosumer registered at ``bus`` with the largest rating, any offer of at least
    1 W and any bond accepted; tokens minted to the operator and every prosumer, each approving the
    contract.

    Returns the market and the contract's address.
    """
    market = new_market(n_prosumers)
    op, token = market.operator, market.addresses.token
    address = fx.deploy_voltage_regulation(
        market.chain,
        op,
        market.addresses.registry,
        token,
        penalty_permille=FLEX_PENALTY_PERMILLE,
        delivery_period_s=FLEX_DELIVERY_PERIOD_S,
        min_offer_w=1,
        min_bond_wei=0,
        ders=[fx.DerFacts(w.address, bus, 10**9) for w in market.prosumers],
    )
    raw = [market.call_tx(op, "GridToken", "mint", op.address, FLEX_OPERATOR_TOKENS_WEI)]
    raw += [market.call_tx(op, "GridToken", "mint", w.address, FLEX_DER_TOKENS_WEI) for w in market.prosumers]
    raw += [fx.approve(w, token, address, FLEX_OPERATOR_TOKENS_WEI) for w in (op, *market.prosumers)]
    receipts = market.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    return market, address


# Audit contract of `new_audit_market`: readings flaggable for 30 min after posting, flags disputable
# for 10 min, 2 flags among 3 intervals isolate a meter, 0.1 token/kWh penalty. [s], [intervals], [wei/Wh]
AUDIT_FLAG_WINDOW_S = 1800
AUDIT_DISPUTE_WINDOW_S = 600
AUDIT_ISOLATE_K = 2
AUDIT_ISOLATE_N = 3
AUDIT_PENALTY_WEI_PER_WH = 10 * CENT_PER_KWH


@dataclass
class AuditMarket:
    """A :class:`Market` whose Settlement has an ``Audit`` contract; the auditor is the market's funded
    ``dso`` account, which holds no registry role."""

    market: Market
    audit: str
    auditor: Wallet

    def accounts(self) -> list[str]:
        """The operator and every prosumer."""
        return [self.market.operator.address, *(w.address for w in self.market.prosumers)]

    def settlement(self, function: str, *args):
        """View ``Settlement.function(*args)`` at the head."""
        return self.market.read("Settlement", function, *args)

    def credits(self) -> dict[str, int]:
        """Credit of the operator and every prosumer. [wei]"""
        return {a: self.settlement("credit_wei", a) for a in self.accounts()}

    def tokens_conserved(self) -> bool:
        """Supply unchanged, and the credits plus both pools equal the Settlement's token balance."""
        m = self.market
        supply = m.read("GridToken", "totalSupply")
        held = m.read("GridToken", "balanceOf", m.addresses.settlement)
        pools = self.settlement("pool_wei") + self.settlement("penalty_pool_wei")
        return supply == ENDOWMENT_WEI * len(m.prosumers) + OPERATOR_DEPOSIT_WEI and \
            sum(self.credits().values()) + pools == held

    def clear_empty(self, intervals: int) -> None:
        """Clear intervals 0 .. ``intervals`` - 1 with an empty book, each at its gate."""
        for interval in range(intervals):
            assert self.market.clear(interval, mk.Book((), ())).ok

    def one(self, raw: bytes, timestamp: int | None = None) -> Receipt:
        """Receipt of mining ``raw`` alone at ``timestamp`` (default: one second after the head)."""
        (receipt,) = self.market.mine([raw], timestamp)
        return receipt

    def post(self, interval: int, prosumer: int, import_wh: int, export_wh: int, timestamp: int | None = None,
             ) -> Receipt:
        """Reading of prosumer ``prosumer``'s meter (PV = export, no battery) at ``timestamp``, at the earliest
        the interval's end."""
        m = self.market
        at = max(m.end(interval), m.chain.timestamp + 1) if timestamp is None else timestamp
        return self.one(mk.post_reading(m.meters[prosumer], m.addresses, interval, import_wh=import_wh,
                                        export_wh=export_wh, pv_wh=export_wh, battery_wh=0), at)


def new_audit_market(
    n_prosumers: int,
    *,
    flag_window_s: int = AUDIT_FLAG_WINDOW_S,
    dispute_window_s: int = AUDIT_DISPUTE_WINDOW_S,
    isolate_k: int = AUDIT_ISOLATE_K,
    isolate_n: int = AUDIT_ISOLATE_N,
    penalty_wei_per_wh: int = AUDIT_PENALTY_WEI_PER_WH,
) -> AuditMarket:
    """A :func:`new_market` with an ``Audit`` contract set as its Settlement's audit before the start,
    the market's ``dso`` account as auditor."""
    market = new_market(n_prosumers)
    parameters = au.AuditParameters(market.dso.address, flag_window_s, dispute_window_s, isolate_k, isolate_n,
                                    penalty_wei_per_wh)
    address = au.deploy_audit(market.chain, market.operator, market.addresses.settlement, parameters)
    return AuditMarket(market, address, market.dso)


def timeline(actions: Iterable[tuple], start_timestamp: int) -> Iterator[tuple[int, str, list]]:
    """(timestamp, kind, arguments) of each action of a hypothesis sequence, one second after the one before;
    a ``("wait", s)`` action only moves the clock on by `s`. [s since the Unix epoch]"""
    now = start_timestamp
    for kind, *args in actions:
        now += 1
        if kind == "wait":
            now += args[0]
            continue
        yield now, kind, args
