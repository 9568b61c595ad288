"""Deploy a charging coordination contract and talk to it.

The transaction builders return signed raw transactions; the caller mines
them with ``chain.mine(raw_txs, timestamp)``. Times relative to window w,
which starts at ``window_start_timestamp(w)`` and takes requests until
``request_deadline_timestamp(w)``, ``request_lead_s`` earlier:

- before window 0 starts: the operator :func:`register_ev` each EV once;
- before the deadline: the operator :func:`post_headroom` and each
  prosumer :func:`request_charge` once;
- from the deadline until the window starts: anyone :func:`allocate` once;
- then each admitted prosumer may charge at its admitted power for the
  window (:func:`admitted_power_w`);
- from the allocation until the window ends, a service account granted
  ``SCOPE_OVERRIDE_CHARGING`` by the contract's emergency access (see
  :mod:`gridledger.contracts.emergency`) may :func:`override` an
  admission, only downwards.

The rules are :func:`gridledger.contracts.charging_reference.allocate` and
:func:`~gridledger.contracts.charging_reference.check_override`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridledger.contracts.charging_reference import ChargeRequest, EVRegistration
from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.emergency import NOBODY
from gridledger.contracts.market import SetupFailed, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "ChargingCoordination"

# Gas limits, measured with margin (see tests/test_contracts_charging.py):
# a limit is what a sender must afford, not what it pays.
# The wired emergency access is checked at deployment: about 2 230 000 gas.
GAS_DEPLOY = 2_700_000
# A first cut to 0 with a 64-byte note needs a limit of about 66 000 gas
# (it also lowers the window's count of admissions; the refund of the
# cleared admission comes after, so the gas used is about 53 000).
GAS_OVERRIDE = 80_000
GAS_POST_HEADROOM = 100_000
GAS_REGISTER_EV = 120_000
# A session's first request stores the session: about 250 000 gas.
GAS_REQUEST_CHARGE = 300_000
_GAS_ALLOCATE_BASE = 200_000
# Per request: reading and ranking it, its share of the quadratic
# insertion sort at MAX_REQUESTS (a window of 128 requests in reverse
# priority order, all admitted, uses about 7.6 million gas), and storing
# and logging its admission.
_GAS_ALLOCATE_PER_REQUEST = 65_000

DEFAULT_MIN_REQUEST_W = 1000
"""Least power of a request unless a study says otherwise: below the
smallest charger of ``gridledger.grids.ev.CHARGER_POWERS_KW`` (3.7 kW), so
no honest request is refused, and far above the 1 W requests that filled a
window (issue 11). [W]"""


@dataclass(frozen=True)
class Allocation:
    """Outcome of one window as stored on chain.

    Attributes
    ----------
    allocated : bool
        Whether the window is allocated; every other field is 0 until then.
    headroom_w : int
        Headroom the allocation used. [W]
    admitted_power_w : int
        Sum of the admitted requests' power. [W]
    requests : int
        Number of requests of the window.
    admitted : int
        Number of admitted requests.
    """

    allocated: bool
    headroom_w: int
    admitted_power_w: int
    requests: int
    admitted: int


def allocate_gas(n_requests: int) -> int:
    """Gas limit of ``allocate`` for a window with ``n_requests`` requests."""
    return _GAS_ALLOCATE_BASE + _GAS_ALLOCATE_PER_REQUEST * n_requests


def deploy_charging(
    chain: Chain,
    operator: Wallet,
    *,
    registry: str,
    start_timestamp: int,
    window_s: int,
    request_lead_s: int,
    min_request_w: int = DEFAULT_MIN_REQUEST_W,
    emergency_access: str = NOBODY,
) -> str:
    """Deploy a charging coordination contract in one block one second after the head.

    Parameters
    ----------
    chain : Chain
        The chain; the operator's account pays the gas.
    operator : Wallet
        Deployer; posts headroom only if it holds the registry's operator role.
    registry : str
        Address of the market's ``Registry``; its prosumers may request.
    start_timestamp : int
        Start of window 0. [s since the Unix epoch]
    window_s : int
        Length of one window. [s]
    request_lead_s : int
        Request deadline before each window's start. [s]
    min_request_w : int, default DEFAULT_MIN_REQUEST_W
        Least power of a request. [W]
    emergency_access : str, default NOBODY
        Address of an ``EmergencyAccess`` over ``registry`` whose grantees
        may :func:`override` admissions; ``NOBODY`` (the empty address):
        every override is refused with "charging: no emergency access".

    Returns
    -------
    str
        Checksummed address of the contract, labelled on ``chain``.

    Raises
    ------
    SetupFailed
        If the deployment fails, with its revert reason.
    """
    raw, address = operator.deploy(
        load_artifact(CONTRACT), registry, start_timestamp, window_s, request_lead_s, min_request_w, emergency_access,
        gas=GAS_DEPLOY,
    )
    (receipt,) = chain.mine([raw], chain.timestamp + 1)
    if not receipt.ok:
        raise SetupFailed(f"charging setup: deploy {CONTRACT} failed: {receipt.revert_reason}")
    chain.label(address, CONTRACT)
    return address


def register_ev(operator: Wallet, address: str, registration: EVRegistration) -> bytes:
    """Signed ``register_ev``: the EV of ``registration.account``, before window 0 starts."""
    return signed_call(operator, address, CONTRACT, "register_ev", registration.account, registration.capacity_wh,
                   registration.max_charge_w, gas=GAS_REGISTER_EV)


def post_headroom(operator: Wallet, address: str, window: int, *, headroom_w: int) -> bytes:
    """Signed ``post_headroom``: charging power the feeder can give in ``window``. [W]"""
    return signed_call(operator, address, CONTRACT, "post_headroom", window, headroom_w, gas=GAS_POST_HEADROOM)


def request_charge(wallet: Wallet, address: str, window: int, request: ChargeRequest) -> bytes:
    """Signed ``request_charge`` of ``wallet``'s prosumer for ``window``.

    Raises
    ------
    ValueError
        If ``request.account`` is not ``wallet``'s address.
    """
    if request.account != wallet.address:
        raise ValueError(f"request of {request.account} cannot be signed by {wallet.address}")
    return signed_call(
        wallet,
        address,
        CONTRACT,
        "request_charge",
        window,
        request.power_w,
        request.energy_needed_wh,
        request.soc_permille,
        request.departure_timestamp,
        gas=GAS_REQUEST_CHARGE,
    )


def allocate(sender: Wallet, address: str, window: int, *, n_requests: int) -> bytes:
    """Signed ``allocate`` of ``window`` holding ``n_requests`` requests."""
    return signed_call(sender, address, CONTRACT, "allocate", window, gas=allocate_gas(n_requests))


def override(grantee: Wallet, address: str, window: int, account: str, admitted_w: int, note: str) -> bytes:
    """Signed ``override`` by an emergency grantee: cut ``account``'s admission in ``window`` to ``admitted_w``. [W]

    ``note`` (at most 64 bytes) says why; it is logged with the cut.
    """
    return signed_call(grantee, address, CONTRACT, "override", window, account, admitted_w, note, gas=GAS_OVERRIDE)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``ChargingCoordination.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)


def requests(chain: Chain, address: str, window: int) -> tuple[ChargeRequest, ...]:
    """Requests of ``window`` in submission order, as stored on chain."""
    return tuple(ChargeRequest(*request) for request in read(chain, address, "requests", window))


def allocation(chain: Chain, address: str, window: int) -> Allocation:
    """Outcome of ``window``; all zero until it is allocated."""
    return Allocation(*read(chain, address, "allocation", window))


def admitted_power_w(chain: Chain, address: str, window: int, accounts: Iterable[str]) -> dict[str, int]:
    """Admitted charging power of each of ``accounts`` in ``window``, 0 if not admitted. [W]"""
    return {account: read(chain, address, "admitted", window, account) for account in accounts}


def window_timestamps(chain: Chain, address: str, window: int) -> tuple[int, int, int]:
    """Request deadline, start and end of ``window``. [s since the Unix epoch]"""
    return tuple(
        read(chain, address, function, window)
        for function in ("request_deadline_timestamp", "window_start_timestamp", "window_end_timestamp")
    )
