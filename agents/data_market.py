"""The ledger's side of data access: deploy the study's ``DataAccess``, fund its requestor, tell who needs what.

With ``data_access`` in the study the market operator deploys
``DataAccess`` (`gridledger.contracts.data_access`) for the compute worker
and mints the requestor its budget, the price of every request if every
prosumer approves; the requestor locks it request by request, and what
is not paid returns to it. After each block, `DataMarket.feed` turns the
contract's events into the ``data_events`` message the owners (DER), the
worker and the requestor read: new requests with their owners and
deadlines, approvals, posted results, payments and refunds.
"""

from __future__ import annotations

import numpy as np

from gridledger.agents.blocks import MinedBlock
from gridledger.contracts import data_access as contract
from gridledger.contracts.catalogue import ACTIONS, EVENT_OF_ACTION
from gridledger.contracts.chain import Chain
from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.data_access_reference import Status
from gridledger.contracts.market import MarketAddresses, SetupFailed, read
from gridledger.results import Part
from gridledger.agents.data_requests import budget_wei
from gridledger.roster import Roster

GAS_MINT = 100_000


def deploy_study_data_access(sc: Roster, chain: Chain, operator: Wallet, addresses: MarketAddresses,
                             requestor: str, worker: str) -> str:
    """Deploy ``DataAccess`` with `worker` and the study's accept window, and mint `requestor` its budget.

    Raises
    ------
    SetupFailed
        If the deployment or the mint reverts, with its reason.
    """
    address = contract.deploy_data_access(chain, operator, addresses.registry, addresses.token, worker,
                                          sc.study.data_access.accept_window_s)
    mint = signed_call(operator, addresses.token, "GridToken", "mint", requestor, budget_wei(sc), gas=GAS_MINT)
    (receipt,) = chain.mine([mint], chain.timestamp + 1)
    if not receipt.ok:
        raise SetupFailed(f"data access setup: minting the requestor's budget failed: {receipt.revert_reason}")
    return address


def _hex(value: bytes) -> str:
    return "0x" + bytes(value).hex()


class DataMarket:
    """The study's ``DataAccess`` as the ledger sees it: its address and the requests made so far."""

    def __init__(self, chain: Chain, address: str, token: str):
        self.chain, self.address, self.token = chain, address, token
        self.request_ids: list[bytes] = []
        self.gas: dict[str, list[int]] = {action: [] for action in ACTIONS}

    def count_gas(self, block: MinedBlock) -> None:
        """Note the gas of each successful ``DataAccess`` action in `block`, told by the first event it emitted."""
        action_of = {event: action for action, event in EVENT_OF_ACTION.items()}
        for receipt in block.all_receipts():
            names = [e.event for e in map(self.chain.decode, receipt.logs)
                     if e is not None and e.contract == contract.CONTRACT]
            if receipt.ok and names and names[0] in action_of:
                self.gas[action_of[names[0]]].append(receipt.gas_used)

    def write(self, part: Part) -> None:
        """Add the mean gas of each action (``data_action_gas``) and how many ran to the ledger's part."""
        part.add("data_action_gas", ("data_action",), [np.mean(g) if g else np.nan for g in self.gas.values()], "gas",
                 "mean gas used by one successful DataAccess transaction of each action")
        part.add("data_action_count", ("data_action",), [len(g) for g in self.gas.values()], "1",
                 "successful DataAccess transactions of each action")

    def feed(self, block: MinedBlock) -> dict | None:
        """The ``data_events`` body of a block's ``DataAccess`` events, or None if it has none.

        New requests carry their terms and owners as the contract holds
        them (``request_of``, ``owners_of``, read after the block).
        """
        feed: dict[str, list[dict]] = {"requests": [], "approvals": [], "results": [], "payments": [], "refunds": []}
        for name, args in block.events_of(contract.CONTRACT):
            rid = args["request_id"]
            if name == "Requested":
                self.request_ids.append(rid)
                terms = contract.read(self.chain, self.address, "request_of", rid)
                feed["requests"].append({
                    "request_id": _hex(rid), "requestor": args["requestor"], "code": args["code"],
                    "epsilon_milli": args["epsilon_milli"], "price_per_owner_wei": args["price_per_owner_wei"],
                    "owners": list(contract.read(self.chain, self.address, "owners_of", rid)),
                    "approval_deadline_timestamp": terms[5], "result_deadline_timestamp": terms[6]})
            elif name == "Approved":
                feed["approvals"].append({"request_id": _hex(rid), "owner": args["owner"]})
            elif name == "ResultPosted":
                feed["results"].append({"request_id": _hex(rid), "result_hash": _hex(args["result_hash"]),
                                        "inputs_commitment": _hex(args["inputs_commitment"]),
                                        "owners_used": args["owners_used"]})
            elif name == "Paid":
                feed["payments"].append({"request_id": _hex(rid), "owner": args["owner"],
                                         "amount_wei": args["amount_wei"]})
            elif name == "Refunded":
                feed["refunds"].append({"request_id": _hex(rid), "amount_wei": args["amount_wei"]})
        return feed if any(feed.values()) else None

    def tokens_held_match(self) -> bool:
        """The contract holds exactly the locks of its open requests (proposed, or with a result not yet paid)."""
        held = read(self.chain, self.token, "GridToken", "balanceOf", self.address)
        locked = 0
        for rid in self.request_ids:
            terms = contract.read(self.chain, self.address, "request_of", rid)
            if terms[0] in (Status.PROPOSED, Status.RESULT_POSTED):
                locked += terms[4] * len(contract.read(self.chain, self.address, "owners_of", rid))
        return held == locked

