"""Shared parts of the stateful security machines: the expected ledger, refusals and the money invariants.

:class:`Ledger` keeps what every account's Settlement credit and escrow
must be, moved only by the reference (`contracts/reference.py`):
deposits and withdrawals, `escrow_wei` when a bid locks, `obligation_wei`
when a lock is released, `settle` when a reading is posted, which also
moves the penalty pool (non-delivery penalties in, cover of unpaid
imbalance payments out). The machines
compare the chain with it exactly after every step, so no account's credit
or free credit can move without a deposit, a delivery or a payment it is
owed. :func:`assert_refused` mines one malicious transaction and checks it
reverted with one of the expected reasons and changed no state the
machines watch.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field

from hypothesis import HealthCheck, event, settings

from gridledger.contracts.reference import escrow_wei, obligation_wei, settle
from tests.contract_helpers import (
    BATTERY_PEAK_WH,
    ENDOWMENT_WEI,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    PV_PEAK_WH,
    RATING_WH,
    Market,
)

# Credit line of the machines' markets: debtors arise when a prosumer withdrew and then imports. [wei]
CREDIT_LINE_WEI = 10**18
# Intervals the machines trade in, and the prosumers they trade with.
INTERVALS = (0, 1)
N_PROSUMERS = 3
# Most an ask or lot may carry: the rating or what PV and battery export in an interval, the smaller. [Wh]
ASK_LIMIT_WH = min(RATING_WH, PV_PEAK_WH + BATTERY_PEAK_WH)
# Orders stay well inside every registered limit and above a minimum order size. [Wh]
MIN_ORDER_WH = 100
MAX_ORDER_WH = 2000


def machine_settings(max_examples: int, steps: int) -> settings:
    """Deterministic settings of a machine run with ``max_examples`` examples of up to ``steps`` steps.

    derandomize and no database: CI explores the same examples on every
    run. The chain makes each step take milliseconds, so the health checks
    that flag slow data generation are suppressed; there is no deadline.
    """
    return settings(
        max_examples=max_examples,
        stateful_step_count=steps,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    )


@dataclass
class Ledger:
    """Expected Settlement credits and escrow, moved only by the reference.

    Attributes
    ----------
    operator : str
        The operator's address: it pays no fee on its own bids.
    credit_wei : dict of str to int
        Credit of every account. [wei]
    lock_wei : dict of (int, str) to int
        Escrow of every (interval, account). [wei]
    penalty_pool_wei : int
        The Settlement's penalty pool. [wei]
    covered_wei : int
        What the penalty pool paid out so far to cover unpaid imbalance payments. [wei]
    """

    operator: str
    credit_wei: dict[str, int]
    lock_wei: dict[tuple[int, str], int] = field(default_factory=dict)
    penalty_pool_wei: int = 0
    covered_wei: int = 0

    def locked_wei(self, account: str) -> int:
        """Escrow of ``account`` over all intervals. [wei]"""
        return sum(v for (_, a), v in self.lock_wei.items() if a == account)

    def free_wei(self, account: str) -> int:
        """Credit less escrow. [wei]"""
        return self.credit_wei.get(account, 0) - self.locked_wei(account)

    def debt_wei(self) -> int:
        """Sum of the negative credits, all owed to the operator. [wei]"""
        return sum(max(-c, 0) for c in self.credit_wei.values())

    def payable_wei(self, account: str) -> int:
        """What ``account`` may withdraw or lock: free credit, the operator's less the debt. [wei]"""
        return self.free_wei(account) - (self.debt_wei() if account == self.operator else 0)

    def is_debtor(self, account: str) -> bool:
        """Free credit below zero: the account may not order."""
        return self.free_wei(account) < 0

    def fee(self, account: str) -> int:
        """Fee rate of ``account``'s escrow and obligation. [wei/Wh]"""
        return 0 if account == self.operator else GRID_FEE_WEI_PER_WH

    def lock(self, interval: int, account: str, energy_wh: int, price_wei_per_wh: int) -> None:
        """A bid of ``account`` locks its escrow."""
        key = (interval, account)
        self.lock_wei[key] = self.lock_wei.get(key, 0) + escrow_wei(energy_wh, price_wei_per_wh, self.fee(account))

    def unlock(self, interval: int, account: str, amount_wei: int) -> None:
        """A bid that no longer binds returns ``amount_wei`` of its escrow."""
        self.lock_wei[interval, account] -= amount_wei

    def release(self, interval: int, account: str, position_wh: int, value_wei: int) -> None:
        """`Settlement.release`: the lock down to the obligation of the cleared terms."""
        key = (interval, account)
        owed = obligation_wei(position_wh, value_wei, self.fee(account))
        self.lock_wei[key] = min(self.lock_wei.get(key, 0), owed)

    def deposit(self, account: str, amount_wei: int) -> None:
        self.credit_wei[account] = self.credit_wei.get(account, 0) + amount_wei

    def settle_reading(
        self, interval: int, account: str, position_wh: int, value_wei: int, import_wh: int, export_wh: int
    ) -> None:
        """`Settlement.post_reading`: release the interval's escrow and pay the reference's `settle` line,
        each imbalance payment up to what its payer can afford once the market payment and fee are booked."""
        self.lock_wei.pop((interval, account), None)
        # The market payment and fee alone: a reading that delivers exactly the position.
        booked = settle(position_wh, value_wei, max(-position_wh, 0), max(position_wh, 0),
                        GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                        non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH)
        after = Ledger(self.operator, dict(self.credit_wei), self.lock_wei)
        after.deposit(account, booked.credit_delta_wei)
        after.deposit(self.operator, booked.operator_delta_wei)
        line = settle(
            position_wh, value_wei, import_wh, export_wh, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH,
            GRID_FEE_WEI_PER_WH, non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
            prosumer_payable_wei=after.free_wei(account) + CREDIT_LINE_WEI,
            operator_payable_wei=after.payable_wei(self.operator),
            penalty_pool_wei=self.penalty_pool_wei,
        )
        self.deposit(account, line.credit_delta_wei)
        self.deposit(self.operator, line.operator_delta_wei)
        self.penalty_pool_wei += line.penalty_pool_delta_wei
        self.covered_wei += line.covered_wei
        if line.covered_wei:
            event("penalty pool covered an unpaid imbalance")

    def settle_operator(self, interval: int, value_wei: int) -> None:
        """`Settlement.settle_operator`: release the operator's escrow and book its market value."""
        self.lock_wei.pop((interval, self.operator), None)
        self.deposit(self.operator, value_wei)


def new_ledger(market: Market) -> Ledger:
    """The ledger of a freshly deployed market: endowments and the operator's deposit."""
    credits = {w.address: ENDOWMENT_WEI for w in market.prosumers}
    credits[market.operator.address] = OPERATOR_DEPOSIT_WEI
    return Ledger(market.operator.address, credits)


class Head:
    """Views of a market at its head, each read once per block: a step that mines nothing, and the
    state before a refused transaction, cost no calls."""

    def __init__(self, market: Market) -> None:
        self.market = market
        self._block = -1
        self._seen: dict[tuple, object] = {}

    def read(self, contract: str, function: str, *args):
        """View ``contract.function(*args)`` at the head."""
        if self.market.chain.block_number != self._block:
            self._block, self._seen = self.market.chain.block_number, {}
        key = (contract, function, *args)
        if key not in self._seen:
            self._seen[key] = self.market.read(contract, function, *args)
        return self._seen[key]


def accounts(market: Market) -> list[str]:
    """The accounts with Settlement credit: the operator and the prosumers."""
    return [market.operator.address, *(w.address for w in market.prosumers)]


def money_state(head: Head) -> dict:
    """Token supply and balances, every credit and escrow, both pools and the debt: what a refused
    call must leave alone. The balances are those of every account the machines pay tokens to;
    their sum equal to the supply means no token is anywhere else."""
    m = head.market
    holders = [*accounts(m), m.addresses.settlement]
    return {
        "supply": head.read("GridToken", "totalSupply"),
        "balances": {a: head.read("GridToken", "balanceOf", a) for a in holders},
        "credits": {a: head.read("Settlement", "credit_wei", a) for a in accounts(m)},
        "locked": {a: head.read("Settlement", "locked_wei", a) for a in accounts(m)},
        "pool": head.read("Settlement", "pool_wei"),
        "penalty_pool": head.read("Settlement", "penalty_pool_wei"),
        "debt": head.read("Settlement", "debt_wei"),
    }


def assert_refused(head: Head, raw_tx: bytes, reasons: Collection[str], extra_state: Callable[[], object]) -> str:
    """Mine ``raw_tx`` one second after the head; assert it reverted with one of ``reasons`` and changed
    neither the money state nor ``extra_state()``. Returns the reason."""
    before = (money_state(head), extra_state())
    (receipt,) = head.market.mine([raw_tx])
    assert receipt.status == 0, f"accepted; expected one of {sorted(reasons)}"
    assert receipt.revert_reason in reasons, (receipt.revert_reason, sorted(reasons))
    assert (money_state(head), extra_state()) == before
    event(f"refused: {receipt.revert_reason}")
    return receipt.revert_reason


def assert_money_invariants(head: Head, ledger: Ledger) -> None:
    """Supply conserved and all of it held by the known holders, the Settlement solvent and its
    books balanced (sum of credits + pool + penalty pool = its balance), every credit, escrow and the
    penalty pool as the ledger expects."""
    m = head.market
    state = money_state(head)
    assert state["supply"] == ENDOWMENT_WEI * len(m.prosumers) + OPERATOR_DEPOSIT_WEI
    assert sum(state["balances"].values()) == state["supply"]
    credits, pool, debt = state["credits"], state["pool"] + state["penalty_pool"], state["debt"]
    held = state["balances"][m.addresses.settlement]
    assert sum(credits.values()) + pool == held
    assert debt == sum(max(-c, 0) for c in credits.values())
    operator = m.operator.address
    owed = sum(max(c, 0) for a, c in credits.items() if a != operator) + max(credits[operator] - debt, 0) + pool
    assert held >= owed
    assert credits == {a: ledger.credit_wei.get(a, 0) for a in accounts(m)}
    assert state["locked"] == {a: ledger.locked_wei(a) for a in accounts(m)}
    assert state["penalty_pool"] == ledger.penalty_pool_wei >= 0
