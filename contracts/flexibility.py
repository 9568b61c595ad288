"""Deploy the voltage-regulation flexibility market and talk to it.

The transaction builders return signed raw transactions; the caller
mines them with ``chain.mine(raw_txs, timestamp)``. Phases of a request
(its own timestamps): :func:`offer` before the offer deadline,
:func:`award` from the deadline until the window starts,
:func:`post_delivery` by each awarded DER's meter from the window's end
for ``delivery_period_s``, then :func:`close`. The operator approves the
contract for each budget and every DER for its bond first
(:func:`approve`; amounts from :mod:`gridledger.contracts.flex_reference`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, encode_call, signed_call
from gridledger.contracts.flex_reference import Award
from gridledger.contracts.market import read as market_read
from gridledger.contracts.operated import deploy_operated

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain, Receipt

CONTRACT = "VoltageRegulation"

# Gas limits, measured with margin in tests/test_contracts_voltage_regulation.py
# at the contract's maxima (64 offers, 32 zone buses): a limit is what a
# sender must afford, not what it pays.
GAS_DEPLOY = 4_000_000
GAS_APPROVE = 60_000
GAS_OFFER = 250_000
GAS_REGISTER_DER = 100_000
GAS_POST_DELIVERY = 200_000
_GAS_POST_REQUEST_BASE = 300_000
_GAS_POST_REQUEST_PER_BUS = 30_000
_GAS_AWARD_BASE = 100_000
_GAS_AWARD_PER_OFFER = 65_000
_GAS_CLOSE_BASE = 150_000
_GAS_CLOSE_PER_OFFER = 80_000


@dataclass(frozen=True)
class DerFacts:
    """What the registrar registers about a DER: its feeder bus and its inverter rating [W]."""

    der: str
    bus: int
    rating_w: int


@dataclass(frozen=True)
class RequestState:
    """A request as stored on chain with its running totals.

    Timestamps are [s since the Unix epoch], power [W], prices
    [wei/Wh], amounts [wei]; ``bonds_wei`` are the bonds still held.
    """

    direction_raise: bool
    p_w: int
    window_start_timestamp: int
    window_end_timestamp: int
    offer_deadline_timestamp: int
    price_cap_wei_per_wh: int
    budget_wei: int
    offer_count: int
    awarded: bool
    awarded_p_w: int
    paid_wei: int
    penalties_wei: int
    bonds_wei: int
    closed: bool


@dataclass(frozen=True)
class OfferState:
    """An offer as stored on chain: power [W], price [wei/Wh], award [W], delivery [Wh]."""

    der: str
    bus: int
    p_w: int
    price_wei_per_wh: int
    awarded_p_w: int
    delivered_wh: int
    settled: bool


def post_request_gas(n_buses: int) -> int:
    """Gas limit of ``post_request`` with a zone of ``n_buses`` buses."""
    return _GAS_POST_REQUEST_BASE + _GAS_POST_REQUEST_PER_BUS * n_buses


def award_gas(n_offers: int) -> int:
    """Gas limit of ``award`` of a request with ``n_offers`` offers."""
    return _GAS_AWARD_BASE + _GAS_AWARD_PER_OFFER * n_offers


def close_gas(n_offers: int) -> int:
    """Gas limit of ``close`` of a request with ``n_offers`` offers."""
    return _GAS_CLOSE_BASE + _GAS_CLOSE_PER_OFFER * n_offers


def deploy_voltage_regulation(
    chain: Chain,
    operator: Wallet,
    registry: str,
    token: str,
    *,
    penalty_permille: int,
    delivery_period_s: int,
    min_offer_w: int,
    min_bond_wei: int,
    ders: Sequence[DerFacts] = (),
    operator_address: str | None = None,
) -> str:
    """Deploy ``VoltageRegulation`` and register ``ders`` in one block one second after the head.

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
        operator: posts requests, receives the unspent budgets.
    registry, token : str
        Addresses of the market's role registry and settlement token.
    penalty_permille : int
        Penalty per Wh of shortfall as a multiple of the offer price, and
        the bond per Wh offered. [1/1000]
    delivery_period_s : int
        Time meters have after a window to post deliveries. [s]
    min_offer_w, min_bond_wei : int
        Least power [W] and least bond [wei] of an offer.
    ders : sequence of DerFacts
        The DERs to register, each a prosumer of ``registry``.
    operator_address : str, optional
        The contract's operator if not the deployer (a DSO whose own
        process signs the requests).

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
                           delivery_period_s=delivery_period_s, min_size_w=min_offer_w, min_bond_wei=min_bond_wei,
                           registrations=lambda address: [register_der(operator, address, facts) for facts in ders],
                           operator_address=operator_address, gas_deploy=GAS_DEPLOY, what="flexibility")



def register_der(registrar: Wallet, address: str, facts: DerFacts) -> bytes:
    """Signed ``register_der`` of the registrar: the DER's bus and rating [W]."""
    return signed_call(registrar, address, CONTRACT, "register_der", facts.der, facts.bus, facts.rating_w,
                       gas=GAS_REGISTER_DER)


def approve(wallet: Wallet, token: str, spender: str, amount_wei: int) -> bytes:
    """Signed ``GridToken.approve``: lets ``spender`` pull up to ``amount_wei`` of ``wallet``'s tokens."""
    return wallet.transact(token, encode_call("GridToken", "approve", spender, amount_wei), gas=GAS_APPROVE)


def post_request(
    operator: Wallet,
    address: str,
    *,
    sensitivities_upu_per_kw: Mapping[int, int],
    direction_raise: bool,
    p_w: int,
    window_start_timestamp: int,
    window_end_timestamp: int,
    offer_deadline_timestamp: int,
    price_cap_wei_per_wh: int,
) -> bytes:
    """Signed ``post_request`` of a zone given as bus id -> sensitivity [upu/kW].

    Power [W], timestamps [s since the Unix epoch], cap [wei/Wh]; the
    operator must have approved the budget (``flex_reference.budget_wei``).
    """
    return signed_call(
        operator,
        address,
        CONTRACT,
        "post_request",
        list(sensitivities_upu_per_kw),
        list(sensitivities_upu_per_kw.values()),
        direction_raise,
        p_w,
        window_start_timestamp,
        window_end_timestamp,
        offer_deadline_timestamp,
        price_cap_wei_per_wh,
        gas=post_request_gas(len(sensitivities_upu_per_kw)),
    )


def offer(wallet: Wallet, address: str, request_id: int, *, p_w: int, price_wei_per_wh: int) -> bytes:
    """Signed ``offer`` of ``wallet``'s registered DER: ``p_w`` [W] at ``price_wei_per_wh`` [wei/Wh], at its bus."""
    return signed_call(wallet, address, CONTRACT, "offer", request_id, p_w, price_wei_per_wh, gas=GAS_OFFER)


def award(sender: Wallet, address: str, request_id: int, *, n_offers: int) -> bytes:
    """Signed ``award`` of a request with ``n_offers`` offers."""
    return signed_call(sender, address, CONTRACT, "award", request_id, gas=award_gas(n_offers))


def post_delivery(meter: Wallet, address: str, request_id: int, *, delivered_wh: int) -> bytes:
    """Signed ``post_delivery`` of ``meter``: its DER's delivered flexibility energy. [Wh]"""
    return signed_call(meter, address, CONTRACT, "post_delivery", request_id, delivered_wh, gas=GAS_POST_DELIVERY)


def close(sender: Wallet, address: str, request_id: int, *, n_offers: int) -> bytes:
    """Signed ``close`` of a request with ``n_offers`` offers."""
    return signed_call(sender, address, CONTRACT, "close", request_id, gas=close_gas(n_offers))


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``VoltageRegulation.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)


def request(chain: Chain, address: str, request_id: int) -> RequestState:
    """Request ``request_id`` as stored, with its running totals."""
    return RequestState(*read(chain, address, "request", request_id))


def offers(chain: Chain, address: str, request_id: int) -> list[OfferState]:
    """Every offer of ``request_id`` in offer order, with its award and settlement."""
    return [OfferState(*row) for row in read(chain, address, "offers", request_id)]


def decode_awards(chain: Chain, receipt: Receipt) -> list[Award]:
    """Awards of a mined ``award`` transaction, in rank order, from its ``Awarded`` events.

    ``chain`` must have the contract labelled (as
    :func:`deploy_voltage_regulation` does).
    """
    events = (chain.decode(log) for log in receipt.logs)
    return [
        Award(
            e.args["offer_index"],
            e.args["rank"],
            e.args["der"],
            e.args["price_wei_per_wh"],
            e.args["offered_p_w"],
            e.args["p_w"],
            e.args["energy_wh"],
        )
        for e in events
        if e is not None and e.contract == CONTRACT and e.event == "Awarded"
    ]
