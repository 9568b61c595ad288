"""Deploy the meter-fraud audit and talk to it.

The transaction builders return signed raw transactions; the caller
mines them with ``chain.mine(raw_txs, timestamp)``. Life of a flag (its
own timestamps): the auditor calls :func:`flag` within ``flag_window_s``
of the reading's posting; the prosumer may :func:`dispute` within
``dispute_window_s`` of the flag, and the operator then :func:`resolve`\\ s
it; an undisputed flag is confirmed by anyone's :func:`finalize` after
the dispute window. An isolated meter's intervals are settled by the
auditor's :func:`settle_estimate` until the operator calls
:func:`recertify`. Amounts and the state machine are in
:mod:`gridledger.contracts.audit_reference`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridledger.contracts.audit_reference import FlagRecord, Status
from gridledger.contracts.client import Wallet, encode_call, signed_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.market import SetupFailed, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain, Receipt

CONTRACT = "Audit"

# Gas limits, measured with margin in tests/test_audit_contract.py (a flag
# at the largest look-back, 32 intervals): a limit is what a sender must
# afford, not what it pays.
GAS_DEPLOY = 2_000_000
GAS_SET_AUDIT = 100_000
GAS_FLAG = 600_000
GAS_DISPUTE = 60_000
GAS_RESOLVE = 200_000
GAS_FINALIZE = 200_000
GAS_RECERTIFY = 60_000
GAS_SETTLE_ESTIMATE = 300_000


@dataclass(frozen=True)
class AuditParameters:
    """Constructor parameters of ``Audit.vy`` besides the Settlement.

    Windows [s], isolation k of n [intervals], penalty [wei/Wh].
    """

    auditor: str
    flag_window_s: int
    dispute_window_s: int
    isolate_k: int
    isolate_n: int
    penalty_wei_per_wh: int

    def args(self) -> tuple:
        return (self.auditor, self.flag_window_s, self.dispute_window_s, self.isolate_k, self.isolate_n,
                self.penalty_wei_per_wh)


@dataclass(frozen=True)
class AuditEvent:
    """One event of the audit or of the Settlement's audit hook: contract, event name and arguments."""

    contract: str
    event: str
    args: dict


def deploy_audit(chain: Chain, operator: Wallet, settlement: str, parameters: AuditParameters) -> str:
    """Deploy ``Audit`` for ``settlement`` and set it as the Settlement's audit, in one block one second after the head.

    The block must come before the Settlement's market start, after
    which ``set_audit`` is closed.

    Parameters
    ----------
    chain : Chain
        The chain; ``operator`` pays the gas.
    operator : Wallet
        The Settlement's operator, who sets the audit.
    settlement : str
        Address of the Settlement.
    parameters : AuditParameters
        The auditor, windows, isolation rule and penalty.

    Returns
    -------
    str
        Checksummed address of the contract, labelled on ``chain``.

    Raises
    ------
    SetupFailed
        If the deployment or ``set_audit`` reverts, with its reason.
    """
    raw, address = operator.deploy(load_artifact(CONTRACT), settlement, *parameters.args(), gas=GAS_DEPLOY)
    set_audit = operator.transact(settlement, encode_call("Settlement", "set_audit", address), gas=GAS_SET_AUDIT)
    failed = [r.revert_reason for r in chain.mine([raw, set_audit], chain.timestamp + 1) if not r.ok]
    if failed:
        raise SetupFailed(f"audit setup: deploy {CONTRACT} failed: {failed}")
    chain.label(address, CONTRACT)
    return address



def flag(auditor: Wallet, address: str, interval: int, prosumer: str, *, estimate_import_wh: int,
         estimate_export_wh: int, residual_milli: int, chi2_milli: int, evidence: bytes) -> bytes:
    """Signed ``flag`` of the auditor: its estimate [Wh], residual and chi-square [1/1000], evidence hash (32 bytes)."""
    return signed_call(auditor, address, CONTRACT, "flag", interval, prosumer, estimate_import_wh, estimate_export_wh,
                   residual_milli, chi2_milli, evidence, gas=GAS_FLAG)


def dispute(prosumer: Wallet, address: str, interval: int) -> bytes:
    """Signed ``dispute`` of the prosumer's own flag of ``interval``."""
    return signed_call(prosumer, address, CONTRACT, "dispute", interval, gas=GAS_DISPUTE)


def resolve(operator: Wallet, address: str, interval: int, prosumer: str, *, confirm: bool) -> bytes:
    """Signed ``resolve`` of the operator: confirm or reject a disputed flag."""
    return signed_call(operator, address, CONTRACT, "resolve", interval, prosumer, confirm, gas=GAS_RESOLVE)


def finalize(sender: Wallet, address: str, interval: int, prosumer: str) -> bytes:
    """Signed ``finalize`` of anyone: confirms an undisputed flag after its dispute window."""
    return signed_call(sender, address, CONTRACT, "finalize", interval, prosumer, gas=GAS_FINALIZE)


def recertify(operator: Wallet, address: str, prosumer: str) -> bytes:
    """Signed ``recertify`` of the operator: ends an isolation and clears the flag history."""
    return signed_call(operator, address, CONTRACT, "recertify", prosumer, gas=GAS_RECERTIFY)


def settle_estimate(auditor: Wallet, address: str, interval: int, prosumer: str, *, import_wh: int,
                    export_wh: int) -> bytes:
    """Signed ``settle_estimate`` of the auditor for an isolated prosumer: estimated registers. [Wh]"""
    return signed_call(auditor, address, CONTRACT, "settle_estimate", interval, prosumer, import_wh, export_wh,
                   gas=GAS_SETTLE_ESTIMATE)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``Audit.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)


def flag_of(chain: Chain, address: str, interval: int, prosumer: str) -> FlagRecord:
    """The flag of ``prosumer`` for ``interval`` as stored."""
    row = read(chain, address, "flag_of", interval, prosumer)
    return FlagRecord(Status(row[0]), *row[1:])


def status(chain: Chain, address: str, interval: int, prosumer: str) -> Status:
    """State of the reading of ``prosumer`` for ``interval``."""
    return Status(read(chain, address, "status", interval, prosumer))


_HOOK_EVENTS = {"AuditSet", "Held", "HeldReleased", "Estimated"}


def decode_events(chain: Chain, receipt: Receipt) -> list[AuditEvent]:
    """Events of the audit and of the Settlement's audit hook in a mined transaction, in log order.

    ``chain`` must have both contracts labelled (as :func:`deploy_audit`
    and ``market.deploy_market`` do).
    """
    events = (chain.decode(log) for log in receipt.logs)
    return [
        AuditEvent(e.contract, e.event, dict(e.args))
        for e in events
        if e is not None and (e.contract == CONTRACT or (e.contract == "Settlement" and e.event in _HOOK_EVENTS))
    ]
