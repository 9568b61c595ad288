"""Stateful property test of the book mechanisms with their Settlement (issue 11).

A hypothesis `RuleBasedStateMachine` drives one market of each book
mechanism (uniform double auction, pay-as-bid, merit order) through random
interleavings of honest and malicious actions while the chain's clock moves
forward in random jumps, so gates close and intervals end in random order.

Honest: prosumers order within their limits (>= `MIN_ORDER_WH`, bids within
their free credit), the operator posts a merit-order demand, anyone clears a
closed gate (verified off-chain or on-chain) and releases escrow, meters post
physically possible readings after their interval ended, anyone settles the
operator, accounts withdraw free credit and deposit tokens back.
Malicious (each must revert with one of the expected reasons and change no
money or book state): orders by non-prosumers, by debtors, above the cap,
with zero energy or price, after the gate, twice, bids above free credit;
readings by a wrong meter (the operator among them), above the registered
limits, twice, before the interval is cleared or ended; withdrawals above free
credit; clearings before the gate, twice, by a non-participant, with a wrong
permutation or outcome; a second operator settlement; role changes after the start.

Invariants after every step: supply conserved, the Settlement's books balanced
and solvent, every credit and escrow exactly the reference's (`Ledger`); every
clearing equals the reference's clearing of the same book.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from gridledger.contracts import market as mk
from gridledger.contracts.reference import Order, clear_merit_order, clear_pay_as_bid, clear_uniform, escrow_wei
from tests.contract_helpers import CENT_PER_KWH, GRID_FEE_WEI_PER_WH, ORDER_PRICES, PRICE_CAP_WEI_PER_WH
from tests.security.stateful_helpers import (
    ASK_LIMIT_WH,
    INTERVALS,
    MAX_ORDER_WH,
    MIN_ORDER_WH,
    N_PROSUMERS,
    RATING_WH,
    machine_settings,
)
from tests.security.stateful_market import MarketMachine, attack

ORDER_ENERGIES = st.integers(MIN_ORDER_WH, MAX_ORDER_WH)
# Honest limit prices: a coarse grid up to 60 % of the cap, so that bids and asks often cross and tie. [wei/Wh]
GRID_PRICES = st.sampled_from([k * 5 * CENT_PER_KWH for k in range(1, 13)])


class BookMachine(MarketMachine):
    """One book market of ``MECHANISM`` with ``N_PROSUMERS`` prosumers, trading in ``INTERVALS``."""

    MECHANISM = mk.DEFAULT_MECHANISM

    @initialize(orders=st.lists(st.tuples(st.booleans(), ORDER_ENERGIES, GRID_PRICES), min_size=2,
                                max_size=N_PROSUMERS), demand_wh=st.integers(MIN_ORDER_WH, N_PROSUMERS * MAX_ORDER_WH))
    def deploy(self, orders, demand_wh):
        """A fresh market whose prosumers have ordered in interval 0 (with the operator's demand of a merit order)."""
        self._start()
        self.prefix = {"DoubleAuction": "auction", "PayAsBid": "pay_as_bid", "MeritOrder": "merit_order"}[
            self.contract]
        self.books = {i: ([], []) for i in INTERVALS}
        self.demand_wh = dict.fromkeys(INTERVALS, 0)
        self._place(0, self.market.prosumers, orders, demand_wh)

    # --- helpers -----------------------------------------------------------------------------

    def _clearable(self) -> list[int]:
        return [i for i in self._closed() if i not in self.terms]

    def _has_order(self, interval: int, address: str) -> bool:
        return any(o.account == address for side in self.books[interval] for o in side)

    def _book(self, interval: int) -> mk.Book:
        bids, asks = self.books[interval]
        return mk.Book(tuple(bids), tuple(asks), self.demand_wh[interval])

    def _reference(self, interval: int) -> tuple[dict[str, int], dict[str, int], tuple[str, int]]:
        """Positions, values and the (view, value) of the price the reference gives ``interval``'s book."""
        book = self._book(interval)
        if self.contract == "PayAsBid":
            c = clear_pay_as_bid(book.bids, book.asks)
            return c.positions_wh, c.values_wei, ("turnover_wei", c.turnover_wei)
        if self.contract == "MeritOrder":
            c = clear_merit_order(book.demand_wh, book.asks, self.market.operator.address)
        else:
            c = clear_uniform(book.bids, book.asks)
        values = {a: c.price_wei_per_wh * q for a, q in c.positions_wh.items()}
        return c.positions_wh, values, ("clearing_price_wei_per_wh", c.price_wei_per_wh)

    def _interval_state(self, interval: int) -> tuple:
        sides = (True,) if self.contract == "MeritOrder" else (False, True)
        return ([self.head.read(self.contract, "orders", interval, *(() if len(sides) == 1 else (side,)))
                 for side in sides], self.head.read(self.contract, "cleared", interval))

    def _keep(self, data) -> None:
        """The operator clears every closed gate, in either clearing mode."""
        while self._clearable():
            self.clear(data, data.draw(st.sampled_from(mk.CLEARING_MODES)), by_operator=True)

    def _order_tx(self, wallet, interval: int, is_ask: bool, energy_wh: int, price: int) -> bytes:
        if self.contract == "MeritOrder":
            return self.market.call_tx(wallet, "MeritOrder", "submit_offer", interval, energy_wh, price)
        return self.market.call_tx(wallet, self.contract, "submit_order", interval, is_ask, energy_wh, price)

    def _sides(self) -> list[bool]:
        return [True] if self.contract == "MeritOrder" else [False, True]

    # --- honest actions ----------------------------------------------------------------------

    @precondition(lambda self: self._open())
    @rule(data=st.data(), orders=st.lists(st.tuples(st.booleans(), ORDER_ENERGIES, GRID_PRICES), min_size=2,
                                          max_size=N_PROSUMERS))
    def submit_orders(self, data, orders):
        """Prosumers without an order in the next open interval order in one block; bids within free credit.
        In a merit-order market the operator posts the interval's demand first if it has none."""
        interval = min(self._open())
        free = [w for w in self.market.prosumers if not self._has_order(interval, w.address)]
        self._place(interval, data.draw(st.permutations(free)), orders,
                    data.draw(st.integers(MIN_ORDER_WH, N_PROSUMERS * MAX_ORDER_WH)))

    def _place(self, interval: int, wallets, orders, demand_wh: int) -> None:
        """``wallets`` place ``orders`` (is_bid, energy, price) in ``interval`` in one block, skipping debtors
        and bids above free credit; a merit-order operator first posts ``demand_wh`` if it has no demand."""
        if self.contract == "MeritOrder" and not self.demand_wh[interval]:
            self.post_demand(interval, demand_wh)
        placed = []
        for wallet, (is_bid, energy_wh, price) in zip(wallets, orders, strict=False):
            is_ask = not is_bid or self.contract == "MeritOrder"
            affordable = is_ask or escrow_wei(energy_wh, price, GRID_FEE_WEI_PER_WH) <= self.ledger.payable_wei(
                wallet.address)
            if affordable and not self.ledger.is_debtor(wallet.address):
                placed.append((wallet, Order(wallet.address, energy_wh, price), is_ask))
        receipts = self.market.mine([self._order_tx(w, interval, a, o.energy_wh, o.price_wei_per_wh)
                                     for w, o, a in placed])
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
        for _, order, is_ask in placed:
            self.books[interval][is_ask].append(order)
            if not is_ask:
                self.ledger.lock(interval, order.account, order.energy_wh, order.price_wei_per_wh)

    def post_demand(self, interval: int, demand_wh: int) -> None:
        """The operator posts the energy it buys in ``interval`` of a merit-order market."""
        m = self.market
        (receipt,) = m.mine([mk.post_demand(m.operator, m.addresses, interval, demand_wh=demand_wh)])
        assert receipt.ok, receipt.revert_reason
        self.demand_wh[interval] = demand_wh
        self.ledger.lock(interval, m.operator.address, demand_wh, PRICE_CAP_WEI_PER_WH)

    @precondition(lambda self: self._clearable())
    @rule(data=st.data(), mode=st.sampled_from(mk.CLEARING_MODES), by_operator=st.booleans())
    def clear(self, data, mode, by_operator):
        interval = data.draw(st.sampled_from(self._clearable()))
        m = self.market
        assert mk.book(m.chain, m.addresses, interval) == self._book(interval)
        clearer = m.operator if by_operator else m.prosumers[0]
        (receipt,) = m.mine([mk.clear(clearer, m.addresses, interval, self._book(interval), mode=mode)])
        assert receipt.ok, receipt.revert_reason
        self._record_terms(interval)

    # --- malicious actions: each a rule of its group, drawn with its arguments ------------------

    @rule(data=st.data())
    def attack_with_an_order(self, data):
        self._attack_of(data, "order")

    @rule(data=st.data())
    def attack_the_clearing(self, data):
        self._attack_of(data, "clearing")

    @attack("order", energy_wh=ORDER_ENERGIES, price=ORDER_PRICES)
    def order_by_non_prosumer(self, data, energy_wh, price):
        m = self.market
        wallet = data.draw(st.sampled_from([m.operator, m.outsider, m.dso, *m.meters]))
        interval = data.draw(st.sampled_from(INTERVALS))
        is_ask = data.draw(st.sampled_from(self._sides()))
        self._refused(self._order_tx(wallet, interval, is_ask, energy_wh, price),
                      "access: caller is not a prosumer", interval=interval)

    @attack("order", energy_wh=ORDER_ENERGIES, price=ORDER_PRICES)
    def order_by_debtor(self, data, energy_wh, price):
        candidates = [(i, w) for i in self._open() for w in self.market.prosumers
                      if self.ledger.is_debtor(w.address) and not self._has_order(i, w.address)]
        if not candidates:
            return
        interval, wallet = data.draw(st.sampled_from(candidates))
        is_ask = data.draw(st.sampled_from(self._sides()))
        self._refused(self._order_tx(wallet, interval, is_ask, energy_wh, price),
                      "escrow: account in debt", interval=interval)

    @attack("order", price=ORDER_PRICES, excess=st.integers(1, 10**6))
    def order_above_registered_limit(self, data, price, excess):
        candidates = [(i, w) for i in self._open() for w in self.market.prosumers
                      if not self._has_order(i, w.address) and not self.ledger.is_debtor(w.address)]
        if not candidates:
            return
        interval, wallet = data.draw(st.sampled_from(candidates))
        is_ask = data.draw(st.sampled_from(self._sides()))
        if is_ask:
            energy_wh, reason = ASK_LIMIT_WH + excess, "escrow: ask above registered capacity"
        else:
            energy_wh, reason = RATING_WH + excess, "escrow: bid above meter rating"
        self._refused(self._order_tx(wallet, interval, is_ask, energy_wh, price), reason, interval=interval)

    @attack("order", energy_wh=ORDER_ENERGIES, excess=st.integers(1, 10**18))
    def order_out_of_range(self, data, energy_wh, excess):
        wallet = data.draw(st.sampled_from(self.market.prosumers))
        interval = data.draw(st.sampled_from(INTERVALS))
        is_ask = data.draw(st.sampled_from(self._sides()))
        energy_wh, price, reason = data.draw(st.sampled_from([
            (energy_wh, PRICE_CAP_WEI_PER_WH + excess, "book: price above cap"),
            (0, PRICE_CAP_WEI_PER_WH, "book: zero energy"),
            (energy_wh, 0, "book: zero price"),
        ]))
        self._refused(self._order_tx(wallet, interval, is_ask, energy_wh, price), reason, interval=interval)

    @attack("order", energy_wh=ORDER_ENERGIES, price=ORDER_PRICES)
    def order_after_gate(self, data, energy_wh, price):
        if not self._closed():
            return
        interval = data.draw(st.sampled_from(self._closed()))
        wallet = data.draw(st.sampled_from(self.market.prosumers))
        is_ask = data.draw(st.sampled_from(self._sides()))
        self._refused(self._order_tx(wallet, interval, is_ask, energy_wh, price),
                      "gate: gate closed", interval=interval)

    @attack("order", energy_wh=ORDER_ENERGIES, price=ORDER_PRICES)
    def double_order(self, data, energy_wh, price):
        candidates = [(i, w) for i in self._open() for w in self.market.prosumers if self._has_order(i, w.address)]
        if not candidates:
            return
        interval, wallet = data.draw(st.sampled_from(candidates))
        is_ask = data.draw(st.sampled_from(self._sides()))
        self._refused(self._order_tx(wallet, interval, is_ask, energy_wh, price),
                      "book: order exists", interval=interval)

    @attack("order", price=ORDER_PRICES)
    def bid_above_free_credit(self, data, price):
        if self.contract == "MeritOrder":
            return
        candidates = [(i, w) for i in self._open() for w in self.market.prosumers
                      if not self._has_order(i, w.address) and not self.ledger.is_debtor(w.address)]
        if not candidates:
            return
        interval, wallet = data.draw(st.sampled_from(candidates))
        energy_wh = self.ledger.payable_wei(wallet.address) // (price + GRID_FEE_WEI_PER_WH) + 1
        # The meter's rating bounds a bid before its escrow is looked at.
        reason = "escrow: bid above meter rating" if energy_wh > RATING_WH else "settlement: credit below escrow"
        self._refused(self._order_tx(wallet, interval, False, energy_wh, price), reason, interval=interval)

    @attack("clearing")
    def clear_out_of_turn(self, data):
        m = self.market
        interval = data.draw(st.sampled_from(INTERVALS))
        clearer = data.draw(st.sampled_from([m.operator, m.outsider, m.meters[0]]))
        if clearer is not m.operator:
            reason = "access: caller is neither prosumer nor operator"
        elif interval in self.terms:
            reason = "book: already cleared"
        elif interval in self._open():
            reason = "gate: gate open"
        else:
            return
        mode = data.draw(st.sampled_from(mk.CLEARING_MODES))
        raw = mk.clear(clearer, m.addresses, interval, self._book(interval), mode=mode)
        self._refused(raw, reason, interval=interval)

    @attack("clearing", wrong=st.integers(1, 10**6))
    def clear_with_wrong_outcome(self, data, wrong):
        if not self._clearable():
            return
        interval = data.draw(st.sampled_from(self._clearable()))
        book = self._book(interval)
        orders = list(mk.sorted_order(book))
        if self.contract == "MeritOrder":
            orders = orders[1:]
        claim = list(mk.claimed_outcome(self.contract, book))
        sides = [k for k, o in enumerate(orders) if len(o) >= 2]
        lie = data.draw(st.sampled_from(["permutation", *range(len(claim))] if sides else list(range(len(claim)))))
        if lie == "permutation":
            side = data.draw(st.sampled_from(sides))
            permuted = data.draw(st.permutations(orders[side]).filter(lambda p, o=orders[side]: list(p) != o))
            orders[side] = list(permuted)
            reasons = ("book: order not sorted",)
        else:
            claim[lie] = claim[lie] + wrong if data.draw(st.booleans()) or claim[lie] < wrong else claim[lie] - wrong
            what = ["clearing price", "cleared volume"] if len(claim) == 2 else ["cleared volume"]
            reasons = (f"{self.prefix}: wrong {what[lie]}",)
        raw = self.market.call_tx(self.market.operator, self.contract, "clear", interval, *orders, *claim,
                                  gas=mk.clear_gas(len(book.bids), len(book.asks), self.contract))
        self._refused(raw, *reasons, interval=interval)

    # --- invariants --------------------------------------------------------------------------

def _machine_tests(mechanism: str, contract: str):
    """The machine of ``mechanism`` as a quick (25 examples) and a slow (1000 examples) TestCase."""
    machine = type(f"{contract}Machine", (BookMachine,), {"MECHANISM": mechanism})
    quick = type(f"Test{contract}Machine", (machine.TestCase,), {"settings": machine_settings(25, steps=10)})
    slow = type(f"Test{contract}MachineSlow", (machine.TestCase,), {"settings": machine_settings(1000, steps=20)})
    return quick, pytest.mark.slow(slow)

TestDoubleAuctionMachine, TestDoubleAuctionMachineSlow = _machine_tests("uniform-double-auction", "DoubleAuction")
TestPayAsBidMachine, TestPayAsBidMachineSlow = _machine_tests("pay-as-bid", "PayAsBid")
TestMeritOrderMachine, TestMeritOrderMachineSlow = _machine_tests("merit-order", "MeritOrder")
