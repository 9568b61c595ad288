"""Deploy the source choice of a market and talk to it.

A registered prosumer signs :func:`choose_pv` once; from the next gate on,
the PV its interval's sellers metered is written to its purchases before
anyone else's (:func:`consumed_mix`; the rule is
:func:`gridledger.contracts.reference.chosen_mix`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import deploy_alone, read as market_read
from gridledger.contracts.reference import SourceMix

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "SourceChoice"

# Gas limits, measured with margin in tests/test_source_choice_contract.py.
GAS_DEPLOY = 1_500_000
GAS_CHOOSE_PV = 120_000


def deploy_source_choice(chain: Chain, operator: Wallet, settlement: str) -> str:
    """Deploy ``SourceChoice`` for ``settlement`` in one block one second after the head.

    Returns
    -------
    str
        Checksummed address of the contract, labelled on ``chain``.

    Raises
    ------
    SetupFailed
        If the deployment reverts, with its reason.
    """
    return deploy_alone(chain, operator, CONTRACT, settlement, gas=GAS_DEPLOY, setup="source choice")


def choose_pv(prosumer: Wallet, address: str) -> bytes:
    """Signed ``choose_pv`` of a prosumer: it buys PV-sourced energy from the next gate on."""
    return signed_call(prosumer, address, CONTRACT, "choose_pv", gas=GAS_CHOOSE_PV)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``SourceChoice.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)


def consumed_mix(chain: Chain, address: str, interval: int, buyer: str) -> SourceMix:
    """Sources of ``buyer``'s import in ``interval``, chosen PV first. [Wh]"""
    return SourceMix(*read(chain, address, "consumed_mix", interval, buyer))
