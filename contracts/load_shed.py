"""Deploy the load shed service of interruptible loads and talk to it.

The transaction builders return signed raw transactions; the caller
mines them with ``chain.mine(raw_txs, timestamp)``. Phases of a programme
(its own timestamps): :func:`enrol` before the enrolment deadline,
:func:`call` by the operator for events within [start, end),
:func:`post_delivery` by each called load's meter from the event's end for
``delivery_period_s``, :func:`settle_event` after that, and
:func:`close_programme` once the programme's end plus the delivery period
has passed and every event is settled. The operator approves the contract
for each budget and every load for its bond first (``GridToken.approve``;
bonds from :func:`gridledger.contracts.load_shed_reference.enrol_bond_wei`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.load_shed_reference import Call, CallSettlement
from gridledger.contracts.market import read as market_read
from gridledger.contracts.operated import deploy_operated

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain, Receipt

CONTRACT = "LoadShed"
MAX_ENROLMENTS = 64
"""Most enrolments of one programme (the contract's ``MAX_ENROLMENTS``)."""

# Gas limits, measured with margin in tests/test_contracts_load_shed.py at
# the contract's maxima (64 enrolments, all of them called by one event): a
# limit is what a sender must afford, not what it pays.
GAS_DEPLOY = 4_500_000
GAS_REGISTER_LOAD = 100_000
GAS_POST_PROGRAMME = 320_000
GAS_ENROL = 360_000
GAS_POST_DELIVERY = 270_000
_GAS_CALL_BASE = 350_000
_GAS_CALL_PER_ENROLMENT = 175_000
_GAS_SETTLE_EVENT_BASE = 120_000
_GAS_SETTLE_EVENT_PER_CALL = 90_000
_GAS_CLOSE_BASE = 200_000
_GAS_CLOSE_PER_ENROLMENT = 40_000


@dataclass(frozen=True)
class LoadFacts:
    """What the registrar registers about an interruptible load: its feeder bus and its interruptible power [W]."""

    load: str
    bus: int
    max_shed_w: int


@dataclass(frozen=True)
class ProgrammeState:
    """A programme as stored on chain with its running totals.

    Timestamps are [s since the Unix epoch], durations [s], prices [wei]
    per event and [wei/Wh], amounts [wei]; ``reserved_wei`` is the budget
    set aside for unsettled calls, ``bonds_wei`` the bonds still held less
    penalties, ``open_calls`` the called loads not yet settled.
    """

    start_timestamp: int
    end_timestamp: int
    enrol_deadline_timestamp: int
    max_event_s: int
    price_per_event_cap_wei: int
    price_per_wh_cap_wei: int
    budget_wei: int
    enrolment_count: int
    reserved_wei: int
    paid_wei: int
    penalties_wei: int
    bonds_wei: int
    open_calls: int
    closed: bool


@dataclass(frozen=True)
class EnrolmentState:
    """An enrolment as stored on chain: terms [W], [s], [wei], [wei/Wh], and running totals [wei].

    ``committed_wei`` is the full-shortfall penalty of its unsettled
    calls; ``busy_until_timestamp`` the end of its latest call (0 before any).
    """

    load: str
    bus: int
    shed_w: int
    notice_s: int
    max_events_per_day: int
    price_per_event_wei: int
    price_per_wh_wei: int
    bond_wei: int
    committed_wei: int
    penalties_wei: int
    paid_wei: int
    busy_until_timestamp: int


@dataclass(frozen=True)
class EventState:
    """An event as called: requested and called power [W], its window [s since the Unix epoch]."""

    programme_id: int
    shed_w: int
    from_timestamp: int
    to_timestamp: int
    called_w: int
    call_count: int
    settled: bool


@dataclass(frozen=True)
class CalledLoadState:
    """A load called for an event, with its settlement: [W], [Wh], [wei]."""

    load: str
    enrol_index: int
    shed_w: int
    energy_wh: int
    reserved_wei: int
    delivered_wh: int
    payment_wei: int
    penalty_wei: int
    settled: bool


def call_gas(n_enrolments: int) -> int:
    """Gas limit of ``call`` in a programme with ``n_enrolments`` enrolments."""
    return _GAS_CALL_BASE + _GAS_CALL_PER_ENROLMENT * n_enrolments


def settle_event_gas(n_calls: int) -> int:
    """Gas limit of ``settle_event`` of an event that called ``n_calls`` loads."""
    return _GAS_SETTLE_EVENT_BASE + _GAS_SETTLE_EVENT_PER_CALL * n_calls


def close_gas(n_enrolments: int) -> int:
    """Gas limit of ``close_programme`` of a programme with ``n_enrolments`` enrolments."""
    return _GAS_CLOSE_BASE + _GAS_CLOSE_PER_ENROLMENT * n_enrolments


def deploy_load_shed(
    chain: Chain,
    operator: Wallet,
    registry: str,
    token: str,
    *,
    penalty_permille: int,
    delivery_period_s: int,
    min_shed_w: int,
    min_bond_wei: int,
    loads: Sequence[LoadFacts] = (),
    operator_address: str | None = None,
) -> str:
    """Deploy ``LoadShed`` and register ``loads`` in one block one second after the head.

    A contract operator other than the deployer is first granted the
    registry's operator role in the same block (the contract requires it).
    The deployer is the contract's registrar; the block must come before
    the registry's start, after which registration is closed.

    Parameters
    ----------
    chain : Chain
        The chain; ``operator`` pays the gas.
    operator : Wallet
        Deployer, an operator of ``registry``, and by default the contract's
        operator: posts programmes, calls events, receives the unspent budgets.
    registry, token : str
        Addresses of the market's role registry and settlement token.
    penalty_permille : int
        Penalty per Wh of shortfall, and bond per Wh of the longest event,
        as a multiple of a programme's energy price cap. [1/1000]
    delivery_period_s : int
        Time meters have after an event to post deliveries. [s]
    min_shed_w, min_bond_wei : int
        Least power [W] and least bond [wei] of an enrolment.
    loads : sequence of LoadFacts
        The interruptible loads to register, each a prosumer of ``registry``.
    operator_address : str, optional
        The contract's operator if not the deployer (a DSO whose own
        process signs the programmes and calls).

    Returns
    -------
    str
        Checksummed address of the contract, labelled on ``chain``.

    Raises
    ------
    SetupFailed
        If the deployment reverts, with its reason.
    """
    return deploy_operated(chain, operator, CONTRACT, registry, token, penalty_permille=penalty_permille,
                           delivery_period_s=delivery_period_s, min_size_w=min_shed_w, min_bond_wei=min_bond_wei,
                           registrations=lambda address: [register_load(operator, address, facts) for facts in loads],
                           operator_address=operator_address, gas_deploy=GAS_DEPLOY, what="load shed")


def register_load(registrar: Wallet, address: str, facts: LoadFacts) -> bytes:
    """Signed ``register_load`` of the registrar: the load's bus and interruptible power [W]."""
    return signed_call(registrar, address, CONTRACT, "register_load", facts.load, facts.bus, facts.max_shed_w,
                       gas=GAS_REGISTER_LOAD)


def post_programme(
    operator: Wallet,
    address: str,
    *,
    start_timestamp: int,
    end_timestamp: int,
    enrol_deadline_timestamp: int,
    max_event_s: int,
    price_per_event_cap_wei: int,
    price_per_wh_cap_wei: int,
    budget_wei: int,
) -> bytes:
    """Signed ``post_programme``: timestamps [s since the Unix epoch], longest event [s], caps [wei] per
    event and [wei/Wh], budget [wei], which the operator must have approved."""
    return signed_call(
        operator,
        address,
        CONTRACT,
        "post_programme",
        start_timestamp,
        end_timestamp,
        enrol_deadline_timestamp,
        max_event_s,
        price_per_event_cap_wei,
        price_per_wh_cap_wei,
        budget_wei,
        gas=GAS_POST_PROGRAMME,
    )


def enrol(
    wallet: Wallet,
    address: str,
    programme_id: int,
    *,
    shed_w: int,
    notice_s: int,
    max_events_per_day: int,
    price_per_event_wei: int,
    price_per_wh_wei: int,
) -> bytes:
    """Signed ``enrol`` of ``wallet``'s registered load: ``shed_w`` [W] with ``notice_s`` [s] notice, at most
    ``max_events_per_day`` a day, at ``price_per_event_wei`` [wei] plus ``price_per_wh_wei`` [wei/Wh]."""
    return signed_call(wallet, address, CONTRACT, "enrol", programme_id, shed_w, notice_s, max_events_per_day,
                       price_per_event_wei, price_per_wh_wei, gas=GAS_ENROL)


def call(operator: Wallet, address: str, programme_id: int, *, shed_w: int, from_timestamp: int, to_timestamp: int,
         n_enrolments: int) -> bytes:
    """Signed ``call`` of ``shed_w`` [W] over [from, to) [s since the Unix epoch] in a programme with
    ``n_enrolments`` enrolments."""
    return signed_call(operator, address, CONTRACT, "call", programme_id, shed_w, from_timestamp, to_timestamp,
                       gas=call_gas(n_enrolments))


def post_delivery(meter: Wallet, address: str, event_id: int, *, delivered_wh: int) -> bytes:
    """Signed ``post_delivery`` of ``meter``: the energy its load shed in ``event_id``. [Wh]"""
    return signed_call(meter, address, CONTRACT, "post_delivery", event_id, delivered_wh, gas=GAS_POST_DELIVERY)


def settle_event(sender: Wallet, address: str, event_id: int, *, n_calls: int) -> bytes:
    """Signed ``settle_event`` of an event that called ``n_calls`` loads."""
    return signed_call(sender, address, CONTRACT, "settle_event", event_id, gas=settle_event_gas(n_calls))


def close_programme(sender: Wallet, address: str, programme_id: int, *, n_enrolments: int) -> bytes:
    """Signed ``close_programme`` of a programme with ``n_enrolments`` enrolments."""
    return signed_call(sender, address, CONTRACT, "close_programme", programme_id, gas=close_gas(n_enrolments))


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``LoadShed.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)


def programme(chain: Chain, address: str, programme_id: int) -> ProgrammeState:
    """Programme ``programme_id`` as stored, with its running totals."""
    return ProgrammeState(*read(chain, address, "programme", programme_id))


def enrolments(chain: Chain, address: str, programme_id: int) -> list[EnrolmentState]:
    """Every enrolment of ``programme_id`` in enrolment order, with its running totals."""
    return [EnrolmentState(*row) for row in read(chain, address, "enrolments", programme_id)]


def shed_event(chain: Chain, address: str, event_id: int) -> EventState:
    """Event ``event_id`` as called."""
    return EventState(*read(chain, address, "shed_event", event_id))


def called_loads(chain: Chain, address: str, event_id: int) -> list[CalledLoadState]:
    """Every load called for ``event_id`` in merit order, with its settlement."""
    return [CalledLoadState(*row) for row in read(chain, address, "called_loads", event_id)]


def _events(chain: Chain, receipts: Sequence[Receipt], name: str) -> list[dict]:
    decoded = (chain.decode(log) for receipt in receipts for log in receipt.logs)
    return [e.args for e in decoded if e is not None and e.contract == CONTRACT and e.event == name]


def decode_calls(chain: Chain, receipt: Receipt) -> list[Call]:
    """Called loads of a mined ``call`` transaction, in merit order, from its ``Called`` events.

    ``chain`` must have the contract labelled (as :func:`deploy_load_shed` does).
    """
    return [
        Call(e["enrol_index"], e["load"], e["shed_w"], e["energy_wh"], e["reserved_wei"])
        for e in _events(chain, [receipt], "Called")
    ]


def decode_settlements(chain: Chain, receipts: Sequence[Receipt]) -> list[tuple[int, str, CallSettlement]]:
    """(event id, load, settlement) of every ``Settled`` event in ``receipts``, in log order."""
    return [
        (e["event_id"], e["load"], CallSettlement(e["payment_wei"], e["penalty_wei"], e["released_wei"]))
        for e in _events(chain, receipts, "Settled")
    ]
