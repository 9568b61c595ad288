"""Deploy the operating-reserve market and talk to it.

The transaction builders return signed raw transactions; the caller
mines them with ``chain.mine(raw_txs, timestamp)``. Phases of a window
(its own timestamps): :func:`offer` before the offer deadline,
:func:`award` from the deadline until the window starts,
:func:`activate` by the operator once during the window,
:func:`post_delivery` by each activated provider's meter from the
window's end for ``delivery_period_s``, then :func:`close` (of a window
never awarded: from its start). The operator approves the contract for
each budget and every provider for its bond first
(:func:`gridledger.contracts.flexibility.approve`; amounts from
:mod:`gridledger.contracts.reserve_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import read as market_read
from gridledger.contracts.operated import deploy_operated
from gridledger.contracts.reserve_reference import (
    PRODUCT_REGULATING,
    PRODUCT_SPINNING,
    PRODUCT_SUPPLEMENTAL,
    Activation,
    Award,
)

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain, Receipt

CONTRACT = "OperatingReserve"
MAX_OFFERS = 64
"""Most offers of one window (the contract's ``MAX_OFFERS``)."""
PRODUCTS = {"regulating": PRODUCT_REGULATING, "spinning": PRODUCT_SPINNING, "supplemental": PRODUCT_SUPPLEMENTAL}
"""The contract's products by name; their longest response times are
``reserve_reference.LONGEST_RESPONSE_S``."""

# Gas limits, measured with margin in tests/test_contracts_reserve.py at the
# contract's maxima (64 offers): a limit is what a sender must afford, not
# what it pays.
GAS_DEPLOY = 4_000_000
GAS_REGISTER_PROVIDER = 100_000
GAS_POST_WINDOW = 350_000
GAS_OFFER = 320_000
GAS_POST_DELIVERY = 200_000
_GAS_AWARD_BASE = 100_000
_GAS_AWARD_PER_OFFER = 60_000
_GAS_ACTIVATE_BASE = 100_000
_GAS_ACTIVATE_PER_OFFER = 60_000
_GAS_CLOSE_BASE = 150_000
_GAS_CLOSE_PER_OFFER = 70_000


@dataclass(frozen=True)
class ProviderFacts:
    """What the registrar registers about a provider: its feeder bus and its rating [W]."""

    provider: str
    bus: int
    rating_w: int


@dataclass(frozen=True)
class WindowState:
    """A window as stored on chain with its running totals.

    Timestamps are [s since the Unix epoch], power [W], prices
    [wei/Wh], amounts [wei]; ``bonds_wei`` are the bonds still held.
    """

    product: int
    capacity_w: int
    window_start_timestamp: int
    window_end_timestamp: int
    offer_deadline_timestamp: int
    capacity_price_cap_wei_per_wh: int
    activation_price_cap_wei_per_wh: int
    budget_wei: int
    offer_count: int
    awarded: bool
    awarded_p_w: int
    activated: bool
    activated_p_w: int
    activated_timestamp: int
    paid_wei: int
    penalties_wei: int
    bonds_wei: int
    closed: bool


@dataclass(frozen=True)
class OfferState:
    """An offer as stored on chain: power [W], prices [wei/Wh], response [s], award and activation [W],
    delivery [Wh]. An activated award delivers from its window's ``activated_timestamp`` plus
    ``response_s``, the window start at the earliest (the ``Activated`` event gives both that time and the
    activated energy)."""

    provider: str
    p_w: int
    capacity_price_wei_per_wh: int
    activation_price_wei_per_wh: int
    response_s: int
    awarded_p_w: int
    activated_p_w: int
    delivered_wh: int
    settled: bool


def award_gas(n_offers: int) -> int:
    """Gas limit of ``award`` of a window with ``n_offers`` offers."""
    return _GAS_AWARD_BASE + _GAS_AWARD_PER_OFFER * n_offers


def activate_gas(n_offers: int) -> int:
    """Gas limit of ``activate`` of a window with ``n_offers`` offers."""
    return _GAS_ACTIVATE_BASE + _GAS_ACTIVATE_PER_OFFER * n_offers


def close_gas(n_offers: int) -> int:
    """Gas limit of ``close`` of a window with ``n_offers`` offers."""
    return _GAS_CLOSE_BASE + _GAS_CLOSE_PER_OFFER * n_offers


def deploy_operating_reserve(
    chain: Chain,
    operator: Wallet,
    registry: str,
    token: str,
    *,
    penalty_permille: int,
    delivery_period_s: int,
    min_offer_w: int,
    min_bond_wei: int,
    providers: Sequence[ProviderFacts] = (),
    operator_address: str | None = None,
) -> str:
    """Deploy ``OperatingReserve`` and register ``providers`` in one block one second after the head.

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
        operator: posts and activates windows, receives the unspent budgets.
    registry, token : str
        Addresses of the market's role registry and settlement token.
    penalty_permille : int
        Penalty per Wh of activated shortfall, and bond per Wh offered, as
        a multiple of a window's activation price cap. [1/1000]
    delivery_period_s : int
        Time meters have after a window to post deliveries. [s]
    min_offer_w, min_bond_wei : int
        Least power [W] and least bond [wei] of an offer.
    providers : sequence of ProviderFacts
        The providers to register, each a prosumer of ``registry``.
    operator_address : str, optional
        The contract's operator if not the deployer.

    Returns
    -------
    str
        Checksummed address of the contract, labelled on ``chain``.

    Raises
    ------
    SetupFailed
        If the deployment or a registration reverts, with its reason.
    """
    return deploy_operated(chain, operator, CONTRACT, registry, token, penalty_permille=penalty_permille,
                           delivery_period_s=delivery_period_s, min_size_w=min_offer_w, min_bond_wei=min_bond_wei,
                           registrations=lambda address: [register_provider(operator, address, facts) for facts in providers],
                           operator_address=operator_address, gas_deploy=GAS_DEPLOY, what="reserve")


def register_provider(registrar: Wallet, address: str, facts: ProviderFacts) -> bytes:
    """Signed ``register_provider`` of the registrar: the provider's bus and rating [W]."""
    return signed_call(registrar, address, CONTRACT, "register_provider", facts.provider, facts.bus, facts.rating_w,
                       gas=GAS_REGISTER_PROVIDER)


def post_window(
    operator: Wallet,
    address: str,
    *,
    product: int,
    capacity_w: int,
    window_start_timestamp: int,
    window_end_timestamp: int,
    offer_deadline_timestamp: int,
    capacity_price_cap_wei_per_wh: int,
    activation_price_cap_wei_per_wh: int,
) -> bytes:
    """Signed ``post_window`` of ``product`` (one of `PRODUCTS`).

    Capacity [W], timestamps [s since the Unix epoch], caps [wei/Wh]; the
    operator must have approved the budget (``reserve_reference.budget_wei``).
    """
    return signed_call(operator, address, CONTRACT, "post_window", product, capacity_w, window_start_timestamp,
                       window_end_timestamp, offer_deadline_timestamp, capacity_price_cap_wei_per_wh,
                       activation_price_cap_wei_per_wh, gas=GAS_POST_WINDOW)


def offer(wallet: Wallet, address: str, window_id: int, *, p_w: int, capacity_price_wei_per_wh: int,
          activation_price_wei_per_wh: int, response_s: int) -> bytes:
    """Signed ``offer`` of ``wallet``'s registered reserve: ``p_w`` [W] at both prices [wei/Wh],
    delivering ``response_s`` [s] after an activation."""
    return signed_call(wallet, address, CONTRACT, "offer", window_id, p_w, capacity_price_wei_per_wh,
                       activation_price_wei_per_wh, response_s, gas=GAS_OFFER)


def award(sender: Wallet, address: str, window_id: int, *, n_offers: int) -> bytes:
    """Signed ``award`` of a window with ``n_offers`` offers."""
    return signed_call(sender, address, CONTRACT, "award", window_id, gas=award_gas(n_offers))


def activate(operator: Wallet, address: str, window_id: int, *, p_w: int, n_offers: int) -> bytes:
    """Signed ``activate`` of ``p_w`` [W] of a window with ``n_offers`` offers."""
    return signed_call(operator, address, CONTRACT, "activate", window_id, p_w, gas=activate_gas(n_offers))


def post_delivery(meter: Wallet, address: str, window_id: int, *, delivered_wh: int) -> bytes:
    """Signed ``post_delivery`` of ``meter``: its provider's delivered reserve energy. [Wh]"""
    return signed_call(meter, address, CONTRACT, "post_delivery", window_id, delivered_wh, gas=GAS_POST_DELIVERY)


def close(sender: Wallet, address: str, window_id: int, *, n_offers: int) -> bytes:
    """Signed ``close`` of a window with ``n_offers`` offers."""
    return signed_call(sender, address, CONTRACT, "close", window_id, gas=close_gas(n_offers))


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``OperatingReserve.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)


def window(chain: Chain, address: str, window_id: int) -> WindowState:
    """Window ``window_id`` as stored, with its running totals."""
    return WindowState(*read(chain, address, "window", window_id))


def offers(chain: Chain, address: str, window_id: int) -> list[OfferState]:
    """Every offer of ``window_id`` in offer order, with its award, activation and settlement."""
    return [OfferState(*row) for row in read(chain, address, "offers", window_id)]


def _events(chain: Chain, receipt: Receipt, names: tuple[str, ...]):
    decoded = (chain.decode(log) for log in receipt.logs)
    return [e for e in decoded if e is not None and e.contract == CONTRACT and e.event in names]


def decode_awards(chain: Chain, receipt: Receipt) -> list[Award]:
    """Awards of a mined ``award`` transaction, in rank order, from its ``Awarded`` events.

    ``chain`` must have the contract labelled (as
    :func:`deploy_operating_reserve` does).
    """
    return [
        Award(e.args["offer_index"], e.args["rank"], e.args["provider"], e.args["capacity_price_wei_per_wh"],
              e.args["offered_p_w"], e.args["p_w"], e.args["energy_wh"])
        for e in _events(chain, receipt, ("Awarded",))
    ]


def decode_activations(chain: Chain, receipt: Receipt) -> list[Activation]:
    """Activated and skipped awards of a mined ``activate`` transaction, in activation order.

    From its ``Activated`` and ``ActivationSkipped`` events; a skipped
    award has power and energy 0.
    """
    return [
        Activation(e.args["offer_index"], e.args["provider"], e.args.get("p_w", 0), e.args["from_timestamp"],
                   e.args.get("energy_wh", 0))
        for e in _events(chain, receipt, ("Activated", "ActivationSkipped"))
    ]
