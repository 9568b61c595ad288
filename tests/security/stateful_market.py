"""The part every stateful market machine shares: its Settlement, meters, accounts and the clock.

`MarketMachine` is a hypothesis `RuleBasedStateMachine` over one market of
``N_PROSUMERS`` prosumers with a credit line, trading in ``INTERVALS``. It
moves the clock (the honest keepers close intervals and meters post
truthful readings as it passes), releases escrow, posts readings, settles
the operator, withdraws and deposits, and attacks as or against a meter and
against accounts and roles; after every step the money invariants hold and
every credit and escrow is the reference's (`stateful_helpers`). A
mechanism's machine adds its orders, its clearing and its attacks, and
gives `_reference` (the reference's positions, values and price of an
interval), `_keep` (what the honest keepers do once gates close) and the
revert reasons of its own attacks.
"""

from __future__ import annotations

from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from gridledger.contracts import market as mk
from gridledger.contracts.reference import reading_limit_reason
from tests.contract_helpers import INTERVAL_S, START_TIMESTAMP, TEST_LIMITS, new_market
from tests.security.stateful_helpers import (
    BATTERY_PEAK_WH,
    CREDIT_LINE_WEI,
    INTERVALS,
    N_PROSUMERS,
    PV_PEAK_WH,
    RATING_WH,
    Head,
    accounts,
    assert_money_invariants,
    assert_refused,
    new_ledger,
)

ROLE_PROSUMER, ROLE_METER = 2, 4
_LIMITS = dict(meter_rating_w=TEST_LIMITS.meter_rating_w, pv_w=TEST_LIMITS.pv_w, battery_w=TEST_LIMITS.battery_w,
               interval_s=INTERVAL_S)


@st.composite
def truthful_readings(draw) -> tuple[int, int, int, int]:
    """(import, export, PV, battery) [Wh] a meter within TEST_LIMITS may read over one interval."""
    pv = draw(st.integers(0, PV_PEAK_WH))
    battery = draw(st.integers(0, BATTERY_PEAK_WH))
    return draw(st.integers(0, RATING_WH)), draw(st.integers(0, min(RATING_WH, pv + battery))), pv, battery


@st.composite
def impossible_readings(draw) -> tuple[int, int, int, int]:
    """Readings that break one registered limit by 3 Wh or more (beyond the tolerance)."""
    excess = draw(st.integers(3, 10**6))
    pv, battery = draw(st.integers(0, PV_PEAK_WH)), draw(st.integers(0, BATTERY_PEAK_WH))
    return draw(st.sampled_from([
        (RATING_WH + excess, 0, 0, 0),
        (0, RATING_WH + excess, PV_PEAK_WH, BATTERY_PEAK_WH),
        (0, 0, PV_PEAK_WH + excess, 0),
        (0, 0, 0, BATTERY_PEAK_WH + excess),
        (0, min(pv + battery + excess, RATING_WH), pv, battery) if pv + battery + 3 <= RATING_WH
        else (0, RATING_WH, 0, 0),
    ]))


# Malicious actions by group: (method name, strategies of its arguments besides ``data``).
ATTACKS: dict[str, list[tuple[str, dict]]] = {}


def _attack(group: str, **strategies):
    """Register a machine method as a malicious action of ``group``."""
    def register(method):
        ATTACKS.setdefault(group, []).append((method.__name__, strategies))
        return method
    return register



# Malicious actions by group: (method name, strategies of its arguments besides ``data``).
ATTACKS: dict[str, list[tuple[str, dict]]] = {}


def attack(group: str, **strategies):
    """Register a machine method as a malicious action of ``group``; the rule of the group draws it."""
    def register(method):
        ATTACKS.setdefault(group, []).append((method.__name__, strategies))
        return method
    return register


class MarketMachine(RuleBasedStateMachine):
    """One market of ``MECHANISM``; a subclass deploys it with `_start` in its `initialize` rule."""

    MECHANISM = mk.DEFAULT_MECHANISM

    def _start(self, **mechanism_args: int) -> None:
        """Deploy the market and its expected ledger; start the clock 5 minutes before the gate of interval 0."""
        self.market = new_market(N_PROSUMERS, mechanism=self.MECHANISM, credit_line_wei=CREDIT_LINE_WEI,
                                 **mechanism_args)
        self.contract = self.market.addresses.auction_contract
        self.ledger = new_ledger(self.market)
        self.head = Head(self.market)
        self.terms: dict[int, dict[str, tuple[int, int]]] = {}
        self.posted: set[tuple[int, int]] = set()
        self.operator_settled: set[int] = set()
        self.market.mine([], self.market.gate(0) - 300)

    def _reference(self, interval: int) -> tuple[dict[str, int], dict[str, int], tuple[str, int] | None]:
        """Positions and values the reference gives ``interval``, and (price view, its value) if it has one."""
        raise NotImplementedError

    def _marks(self, interval: int) -> tuple[int, ...]:
        """Times the clock stops at: the gate and the end of ``interval``. [s since the Unix epoch]"""
        return self.market.gate(interval), self.market.end(interval)

    def _after_clock(self) -> None:
        """What follows from the clock alone (an English interval closes at its gate)."""

    def _keep(self, data) -> None:
        """What the honest keepers do once gates have closed."""
        raise NotImplementedError

    def _interval_state(self, interval: int) -> object:
        """The mechanism's state of ``interval`` that a refused call must leave alone."""
        raise NotImplementedError

    def _refused(self, raw: bytes, *reasons: str, interval: int | None = None) -> str:
        """Assert ``raw`` is refused with one of ``reasons``, leaving the money and ``interval``'s state alone."""
        return assert_refused(self.head, raw, reasons,
                              lambda: None if interval is None else self._interval_state(interval))

    def _next_ts(self) -> int:
        return self.market.chain.timestamp + 1

    def _open(self) -> list[int]:
        return [i for i in INTERVALS if self._next_ts() < self.market.gate(i)]

    def _closed(self) -> list[int]:
        return [i for i in INTERVALS if self._next_ts() >= self.market.gate(i)]

    def _ended(self) -> list[int]:
        return [i for i in self.terms if self._next_ts() >= self.market.end(i)]

    def _unread(self) -> list[tuple[int, int]]:
        return [(i, k) for i in self._ended() for k in range(N_PROSUMERS) if (i, k) not in self.posted]

    def _assert_terms(self, interval: int) -> None:
        """The chain's settlement terms and price of a closed ``interval`` are the reference's."""
        positions, values, price = self._reference(interval)
        for a in accounts(self.market):
            cleared, position, value, end = self.market.read(self.contract, "settlement_terms", interval, a)
            assert (cleared, position, value, end) == (
                True, positions.get(a, 0), values.get(a, 0), self.market.end(interval)), a
        if price is not None:
            view, value = price
            assert self.market.read(self.contract, view, interval) == value

    def _record_terms(self, interval: int) -> None:
        """Keep the reference's terms of the just closed ``interval`` and check the chain's against them."""
        positions, values, _ = self._reference(interval)
        self.terms[interval] = {a: (positions.get(a, 0), values.get(a, 0)) for a in accounts(self.market)}
        self._assert_terms(interval)
        event(f"closed with {len(positions)} positions")

    @rule(seconds=st.integers(1, 600))
    def advance_time(self, seconds):
        """Move the clock up to 10 minutes on; nobody acts."""
        self.market.mine([], self._next_ts() + seconds)
        self._after_clock()

    @rule(data=st.data())
    def run_the_market(self, data):
        """Move the clock to the next mark (`_marks`); the honest keepers then close every interval
        whose gate has closed (`_keep`) and every meter posts a truthful reading for every ended
        interval, as a running market does."""
        marks = [t for i in INTERVALS for t in self._marks(i) if t > self._next_ts()]
        self.market.mine([], min(marks, default=self._next_ts()))
        self._after_clock()
        self._keep(data)
        while self._unread():
            self.post_reading(data, data.draw(truthful_readings()))

    @precondition(lambda self: self.terms)
    @rule(data=st.data())
    def release(self, data):
        interval = data.draw(st.sampled_from(sorted(self.terms)))
        account = data.draw(st.sampled_from(accounts(self.market)))
        (receipt,) = self.market.mine([mk.release(self.market.outsider, self.market.addresses, interval, account)])
        assert receipt.ok, receipt.revert_reason
        self.ledger.release(interval, account, *self.terms[interval][account])

    @precondition(lambda self: self._unread())
    @rule(data=st.data(), reading=truthful_readings())
    def post_reading(self, data, reading):
        interval, k = data.draw(st.sampled_from(self._unread()))
        imp, exp, pv, bat = reading
        m = self.market
        (receipt,) = m.mine([mk.post_reading(m.meters[k], m.addresses, interval, import_wh=imp, export_wh=exp,
                                             pv_wh=pv, battery_wh=bat)])
        assert receipt.ok, receipt.revert_reason
        self.posted.add((interval, k))
        event("reading posted" + (" for a position" if self.terms[interval][m.prosumers[k].address][0] else ""))
        account = m.prosumers[k].address
        self.ledger.settle_reading(interval, account, *self.terms[interval][account], imp, exp)

    @precondition(lambda self: [i for i in self._ended() if i not in self.operator_settled])
    @rule(data=st.data())
    def settle_operator(self, data):
        interval = data.draw(st.sampled_from([i for i in self._ended() if i not in self.operator_settled]))
        m = self.market
        (receipt,) = m.mine([mk.settle_operator(m.outsider, m.addresses, interval)])
        assert receipt.ok, receipt.revert_reason
        self.operator_settled.add(interval)
        self.ledger.settle_operator(interval, self.terms[interval][m.operator.address][1])

    @rule(data=st.data(), share=st.integers(1, 100))
    def withdraw(self, data, share):
        m = self.market
        wallet = data.draw(st.sampled_from([m.operator, *m.prosumers]))
        amount = self.ledger.payable_wei(wallet.address) * share // 100
        if amount <= 0:
            return
        (receipt,) = m.mine([m.call_tx(wallet, "Settlement", "withdraw", amount)])
        assert receipt.ok, receipt.revert_reason
        self.ledger.deposit(wallet.address, -amount)

    @rule(data=st.data(), share=st.integers(1, 100))
    def deposit(self, data, share):
        m = self.market
        wallet = data.draw(st.sampled_from([m.operator, *m.prosumers]))
        amount = m.read("GridToken", "balanceOf", wallet.address) * share // 100
        if amount == 0:
            return
        receipts = m.mine([m.call_tx(wallet, "GridToken", "approve", m.addresses.settlement, amount),
                           m.call_tx(wallet, "Settlement", "deposit_for", wallet.address, amount)])
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
        self.ledger.deposit(wallet.address, amount)

    def _attack_of(self, data, group: str):
        name, strategies = data.draw(st.sampled_from(ATTACKS[group]))
        getattr(self, name)(data, **{k: data.draw(v) for k, v in strategies.items()})

    @rule(data=st.data())
    def attack_as_or_against_a_meter(self, data):
        self._attack_of(data, "meter")

    @rule(data=st.data())
    def attack_an_account_or_role(self, data):
        self._attack_of(data, "account")

    @attack("meter", reading=truthful_readings())
    def reading_by_wrong_meter(self, data, reading):
        m = self.market
        wallet = data.draw(st.sampled_from([m.operator, m.outsider, m.dso, *m.prosumers]))
        interval = data.draw(st.sampled_from(INTERVALS))
        imp, exp, pv, bat = reading
        raw = mk.post_reading(wallet, m.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=pv, battery_wh=bat)
        self._refused(raw, "settlement: caller is not a bound meter")

    @attack("meter", reading=impossible_readings())
    def reading_above_limits(self, data, reading):
        if not self._unread():
            return
        interval, k = data.draw(st.sampled_from(self._unread()))
        reason = reading_limit_reason(*reading, **_LIMITS)
        assert reason is not None, reading
        imp, exp, pv, bat = reading
        m = self.market
        self._refused(mk.post_reading(m.meters[k], m.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=pv,
                                      battery_wh=bat), reason)

    @attack("meter", reading=truthful_readings())
    def reading_twice_or_early(self, data, reading):
        m = self.market
        candidates = [(i, k, "settlement: reading exists") for i, k in sorted(self.posted)]
        candidates += [(i, k, "settlement: interval not cleared") for i in INTERVALS if i not in self.terms
                       for k in range(N_PROSUMERS)]
        candidates += [(i, k, "settlement: interval not ended") for i in self.terms if i not in self._ended()
                       for k in range(N_PROSUMERS)]
        if not candidates:
            return
        interval, k, reason = data.draw(st.sampled_from(candidates))
        imp, exp, pv, bat = reading
        self._refused(mk.post_reading(m.meters[k], m.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=pv,
                                      battery_wh=bat), reason)

    @attack("account", excess=st.integers(1, 10**20))
    def withdraw_above_free_credit(self, data, excess):
        m = self.market
        wallet = data.draw(st.sampled_from([m.operator, m.outsider, *m.prosumers]))
        amount = max(self.ledger.free_wei(wallet.address), 0) + excess
        self._refused(m.call_tx(wallet, "Settlement", "withdraw", amount), "settlement: withdraw above free credit")

    @attack("account")
    def operator_settled_twice(self, data):
        if not self.operator_settled:
            return
        interval = data.draw(st.sampled_from(sorted(self.operator_settled)))
        self._refused(mk.settle_operator(self.market.outsider, self.market.addresses, interval),
                      "settlement: operator settled")

    @attack("account")
    def release_uncleared(self, data):
        candidates = [i for i in INTERVALS if i not in self.terms]
        if not candidates:
            return
        interval = data.draw(st.sampled_from(candidates))
        account = data.draw(st.sampled_from(accounts(self.market)))
        self._refused(mk.release(self.market.outsider, self.market.addresses, interval, account),
                      "settlement: interval not cleared")

    @attack("account")
    def role_change_after_start_or_by_outsider(self, data):
        m = self.market
        k = data.draw(st.integers(0, N_PROSUMERS - 1))
        sender = data.draw(st.sampled_from([m.operator, m.outsider, m.prosumers[k], m.meters[k]]))
        call = data.draw(st.sampled_from([
            ("revoke_role", m.prosumers[k].address, ROLE_PROSUMER),
            ("revoke_role", m.meters[k].address, ROLE_METER),
            ("bind_meter", m.meters[k].address, m.prosumers[(k + 1) % N_PROSUMERS].address),
        ]))
        if sender is not m.operator:
            reason = "registry: caller is not operator"
        elif self._next_ts() >= START_TIMESTAMP:
            reason = "registry: bindings frozen"
        else:
            return
        assert_refused(self.head, m.call_tx(sender, "Registry", call[0], *call[1:]), (reason,), lambda: (
            self.head.read("Registry", "roles", call[1]), self.head.read("Registry", "prosumer_of_meter", call[1])))

    @invariant()
    def money_is_conserved_and_as_the_reference_pays(self):
        """Supply conserved; credits + pool + penalty pool == the Settlement's balance; every credit, escrow
        and the penalty pool as the reference moves them."""
        assert_money_invariants(self.head, self.ledger)

    def teardown(self):
        for interval in self.terms:
            self._assert_terms(interval)
