"""Deploy the data access contract of a market and talk to it.

A requestor :func:`propose`\\ s a catalogue query to owners (its tokens,
price x owners, approved to the contract with ``flexibility.approve``);
listed owners :func:`approve`; the worker :func:`post_result`\\ s the
answer's hash and its inputs commitment (``agents.data_worker``); the
requestor :func:`accept`\\ s or anyone :func:`finalize`\\ s after the accept
window; without a result anyone :func:`cancel`\\ s. The rules are
:class:`gridledger.contracts.data_access_reference.DataAccessModel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import deploy_alone, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "DataAccess"

# Gas limits, measured with margin in tests/test_data_access_contract.py (64 owners for the per-owner ones).
GAS_DEPLOY = 2_500_000
GAS_PROPOSE = 4_000_000
GAS_APPROVE = 150_000
GAS_POST_RESULT = 150_000
GAS_PAY = 2_500_000
GAS_CANCEL = 100_000


def deploy_data_access(chain: Chain, operator: Wallet, registry: str, token: str, worker: str,
                       accept_window_s: int) -> str:
    """Deploy ``DataAccess`` in one block one second after the head; its address, labelled on ``chain``.

    Raises
    ------
    SetupFailed
        If the deployment reverts, with its reason.
    """
    return deploy_alone(chain, operator, CONTRACT, registry, token, worker, accept_window_s, gas=GAS_DEPLOY,
                        setup="data access")


def propose(requestor: Wallet, address: str, request_id: bytes, *, code: int, epsilon_milli: int,
            price_per_owner_wei: int, owners: list[str], approval_deadline_timestamp: int,
            result_deadline_timestamp: int) -> bytes:
    """Signed ``propose``: catalogue code, ε [1/1000, 0 = exact], price per owner [wei], owners, deadlines [s]."""
    return signed_call(requestor, address, CONTRACT, "propose", request_id, code, epsilon_milli, price_per_owner_wei,
                       owners, approval_deadline_timestamp, result_deadline_timestamp, gas=GAS_PROPOSE)


def approve(owner: Wallet, address: str, request_id: bytes) -> bytes:
    """Signed ``approve`` of a listed owner."""
    return signed_call(owner, address, CONTRACT, "approve", request_id, gas=GAS_APPROVE)


def post_result(worker: Wallet, address: str, request_id: bytes, *, result_hash: bytes, inputs_commitment: bytes,
                owners_used: int) -> bytes:
    """Signed ``post_result`` of the worker: the answer's hash, the inputs commitment, the owners used."""
    return signed_call(worker, address, CONTRACT, "post_result", request_id, result_hash, inputs_commitment,
                       owners_used, gas=GAS_POST_RESULT)


def accept(requestor: Wallet, address: str, request_id: bytes) -> bytes:
    """Signed ``accept`` of the requestor: the approving owners are paid."""
    return signed_call(requestor, address, CONTRACT, "accept", request_id, gas=GAS_PAY)


def finalize(sender: Wallet, address: str, request_id: bytes) -> bytes:
    """Signed ``finalize`` of anyone after the accept window."""
    return signed_call(sender, address, CONTRACT, "finalize", request_id, gas=GAS_PAY)


def cancel(sender: Wallet, address: str, request_id: bytes) -> bytes:
    """Signed ``cancel`` of anyone, of a request without a result."""
    return signed_call(sender, address, CONTRACT, "cancel", request_id, gas=GAS_CANCEL)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``DataAccess.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)
