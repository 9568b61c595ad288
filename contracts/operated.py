"""Deploy a contract that an operator of the registry runs, with the registrar's registrations, in one block.

``VoltageRegulation``, ``OperatingReserve`` and ``LoadShed`` share a
constructor: (registry, token, operator, penalty_permille,
delivery_period_s, least size [W], least bond [wei]). The deployer becomes
the contract's registrar and, like the contract's operator, must hold the
registry's operator role; an operator other than the deployer (a DSO whose
own process signs) is granted it first, in the same block. The
registrations must be mined before the registry's start, after which the
contracts close registration.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.market import SetupFailed

if TYPE_CHECKING:
    from gridledger.contracts.chain import Chain

GAS_GRANT_ROLE = 80_000
ROLE_OPERATOR = 1  # Registry.vy's ROLE_OPERATOR bit


def deploy_operated(chain: Chain, deployer: Wallet, contract: str, registry: str, token: str, *,
                    penalty_permille: int, delivery_period_s: int, min_size_w: int, min_bond_wei: int,
                    registrations: Callable[[str], list[bytes]], operator_address: str | None, gas_deploy: int,
                    what: str) -> str:
    """Deploy `contract` and mine its `registrations` (given its address) in one block one second after the head.

    Returns the checksummed address, labelled on `chain`; raises
    `SetupFailed` naming `what` and the revert reasons if any transaction
    reverts.
    """
    contract_operator = operator_address or deployer.address
    raw_txs = []
    if contract_operator != deployer.address:
        grant = encode_call("Registry", "grant_role", contract_operator, ROLE_OPERATOR)
        raw_txs.append(deployer.transact(registry, grant, gas=GAS_GRANT_ROLE))
    raw, address = deployer.deploy(load_artifact(contract), registry, token, contract_operator, penalty_permille,
                                   delivery_period_s, min_size_w, min_bond_wei, gas=gas_deploy)
    mined = chain.mine([*raw_txs, raw, *registrations(address)], chain.timestamp + 1)
    failed = [r.revert_reason for r in mined if not r.ok]
    if failed:
        raise SetupFailed(f"{what} setup: deploy {contract} failed: {failed}")
    chain.label(address, contract)
    return address
