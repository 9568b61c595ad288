"""Deploy the emergency access of a market and talk to it.

The operator :func:`declare`\\ s an emergency, :func:`grant`\\ s a service
account a scope over one household or all, may :func:`revoke` it or
:func:`end_emergency`; the grantee :func:`use`\\ s it (logged on chain),
and a data store or the charging desk asks :func:`refusal` before it
serves. The rules are :class:`gridledger.contracts.emergency_reference.EmergencyModel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import deploy_alone, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "EmergencyAccess"
SCOPE_READ_DATA = 1
SCOPE_OVERRIDE_CHARGING = 2
NOBODY = "0x" + "00" * 20
"""The subject of a grant over every household."""

# Gas limits, measured with margin in tests/test_emergency_contract.py.
GAS_DEPLOY = 1_500_000
GAS_DECLARE = 120_000
GAS_END = 60_000
GAS_GRANT = 150_000
GAS_REVOKE = 60_000
GAS_USE = 60_000


def deploy_emergency_access(chain: Chain, operator: Wallet, registry: str) -> str:
    """Deploy ``EmergencyAccess`` over ``registry`` in one block one second after the head; its address, labelled.

    Raises
    ------
    SetupFailed
        If the deployment reverts, with its reason.
    """
    return deploy_alone(chain, operator, CONTRACT, registry, gas=GAS_DEPLOY, setup="emergency access")


def declare(operator: Wallet, address: str, reason: str, duration_s: int) -> bytes:
    """Signed ``declare`` of an emergency of ``duration_s``. [s]"""
    return signed_call(operator, address, CONTRACT, "declare", reason, duration_s, gas=GAS_DECLARE)


def end_emergency(operator: Wallet, address: str) -> bytes:
    """Signed ``end_emergency``."""
    return signed_call(operator, address, CONTRACT, "end_emergency", gas=GAS_END)


def grant(operator: Wallet, address: str, account: str, scope: int, subject: str, duration_s: int) -> bytes:
    """Signed ``grant`` of ``scope`` bits over ``subject`` (`NOBODY`: every household) for ``duration_s``. [s]"""
    return signed_call(operator, address, CONTRACT, "grant", account, scope, subject, duration_s, gas=GAS_GRANT)


def revoke(operator: Wallet, address: str, account: str) -> bytes:
    """Signed ``revoke`` of ``account``'s grant."""
    return signed_call(operator, address, CONTRACT, "revoke", account, gas=GAS_REVOKE)


def use(grantee: Wallet, address: str, scope: int, subject: str, note: str) -> bytes:
    """Signed ``use`` of the grantee's grant, logged with ``note``."""
    return signed_call(grantee, address, CONTRACT, "use", scope, subject, note, gas=GAS_USE)


def refusal(chain: Chain, address: str, account: str, scope: int, subject: str) -> str:
    """Why ``account`` may not use ``scope`` on ``subject`` at the head (empty if it may)."""
    return read(chain, address, "refusal", account, scope, subject)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``EmergencyAccess.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)
