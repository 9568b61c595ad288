"""Deploy the two-phase bilateral trades of a market and talk to them.

Phase one: the buyer :func:`propose`\\ s (its payment locked; it may
:func:`cancel` until the seller acts), the seller :func:`accept`\\ s (a
collateral of the same value locked): the trade is prepared. Phase two:
each side's bound meter :func:`confirm`\\ s the energy; the second
confirmation pays the seller. A trade not committed by its deadline is
rolled back by anyone's :func:`roll_back`. Token approvals are
``flexibility.approve`` (a plain ``GridToken.approve``). The rules are
:class:`gridledger.contracts.two_phase_reference.TwoPhaseModel`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import deploy_alone, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "TwoPhaseTrade"

# Gas limits, measured with margin in tests/test_two_phase_contract.py.
GAS_DEPLOY = 2_000_000
GAS_PROPOSE = 250_000
GAS_CANCEL = 100_000
GAS_ACCEPT = 100_000
GAS_CONFIRM = 120_000
GAS_ROLL_BACK = 120_000


def deploy_two_phase(chain: Chain, operator: Wallet, registry: str, token: str) -> str:
    """Deploy ``TwoPhaseTrade`` over ``registry`` and ``token`` in one block one second after the head; its address.

    Raises
    ------
    SetupFailed
        If the deployment reverts, with its reason.
    """
    return deploy_alone(chain, operator, CONTRACT, registry, token, gas=GAS_DEPLOY,
                        setup="two-phase trade")


def propose(buyer: Wallet, address: str, trade_id: bytes, *, seller: str, energy_wh: int, price_wei_per_wh: int,
            deadline_timestamp: int) -> bytes:
    """Signed ``propose`` of the buyer: energy [Wh], price [wei/Wh], deadline [s since the Unix epoch]."""
    return signed_call(buyer, address, CONTRACT, "propose", trade_id, seller, energy_wh, price_wei_per_wh,
                       deadline_timestamp, gas=GAS_PROPOSE)


def cancel(buyer: Wallet, address: str, trade_id: bytes) -> bytes:
    """Signed ``cancel`` of an unaccepted proposal by its buyer."""
    return signed_call(buyer, address, CONTRACT, "cancel", trade_id, gas=GAS_CANCEL)


def accept(seller: Wallet, address: str, trade_id: bytes) -> bytes:
    """Signed ``accept`` of the named seller."""
    return signed_call(seller, address, CONTRACT, "accept", trade_id, gas=GAS_ACCEPT)


def confirm(meter: Wallet, address: str, trade_id: bytes, metered_wh: int) -> bytes:
    """Signed ``confirm`` of a side's bound meter: the energy it metered. [Wh]"""
    return signed_call(meter, address, CONTRACT, "confirm", trade_id, metered_wh, gas=GAS_CONFIRM)


def roll_back(sender: Wallet, address: str, trade_id: bytes) -> bytes:
    """Signed ``roll_back`` of anyone, after the deadline."""
    return signed_call(sender, address, CONTRACT, "roll_back", trade_id, gas=GAS_ROLL_BACK)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``TwoPhaseTrade.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)
