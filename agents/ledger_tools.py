"""What the ledger gives standard Ethereum tools: its kept chain, the deployments file and the live endpoint.

Once the market is deployed, `LedgerTools.open` keeps the chain's
database in ``chaindb/`` (a zone's ledger: ``chaindb/<zone>/``;
`gridledger.contracts.chain.Chain.keep`), writes ``deployments.json``
(a zone's: ``deployments-<zone>.json``) and, with ``ledger.rpc`` in the
study, starts the live read-only JSON-RPC endpoint
(`gridledger.chain_rpc.LiveEndpoint`). After each block the ledger tells
it so (`LedgerTools.mined`): the endpoint then answers at that block.

``deployments.json`` has one entry per contract under ``contracts``, in
the shape hardhat-deploy exports and web3.py and ethers load as they are
(``address`` and ``abi``), with the block and transaction that deployed
it::

    {"chainId": 4242, "contracts": {"Settlement": {"address": "0x…", "abi": […],
                                                  "blockNumber": 2, "transactionHash": "0x…"}, …}}
"""

from __future__ import annotations

import json
from pathlib import Path

from gridledger.chain_rpc import LiveEndpoint, deployments_path, kept_chain_dir
from gridledger.contracts.chain import Chain
from gridledger.contracts.compiler import load_artifact
from gridledger.study import Rpc


def deployments(chain: Chain) -> dict:
    """The deployments document of `chain`: its chain id and, per labelled contract, address, ABI and deployment.

    A contract deployed twice on one chain gets its second entry as ``Name_2``.
    """
    contracts: dict[str, dict] = {}
    seen: dict[str, int] = {}
    for contract, address, receipt in chain.deployments():
        seen[contract] = seen.get(contract, 0) + 1
        key = contract if seen[contract] == 1 else f"{contract}_{seen[contract]}"
        contracts[key] = {"address": address, "abi": load_artifact(contract)["abi"],
                          "blockNumber": receipt.block_number, "transactionHash": "0x" + receipt.tx_hash.hex()}
    return {"chainId": chain.chain_id, "contracts": contracts}


class LedgerTools:
    """The kept chain and, if the study asks, the live endpoint of one ledger; build it with `LedgerTools.open`."""

    def __init__(self, chain: Chain, live: LiveEndpoint | None) -> None:
        self.chain, self.live = chain, live

    @classmethod
    def open(cls, chain: Chain, run_dir: Path, zone: str | None, rpc: Rpc | None) -> LedgerTools:
        """Keep `chain` in the run directory, write its deployments and, with `rpc`, serve it live.

        Raises
        ------
        OSError
            If the live endpoint cannot listen where ``ledger.rpc`` says.
        """
        chain.keep(kept_chain_dir(run_dir, zone))
        deployments_path(run_dir, zone).write_text(json.dumps(deployments(chain), indent=1) + "\n")
        return cls.serve(chain, rpc)

    @classmethod
    def serve(cls, chain: Chain, rpc: Rpc | None) -> LedgerTools:
        """The tools of a chain kept already (a resumed run's: `gridledger.checkpoint`), serving it live with `rpc`.

        Raises
        ------
        OSError
            If the live endpoint cannot listen where ``ledger.rpc`` says.
        """
        try:
            live = LiveEndpoint(chain, rpc.host, rpc.port) if rpc is not None else None
        except OSError as error:
            chain.close()
            raise OSError(f"ledger.rpc: cannot listen on {rpc.host}:{rpc.port}: {error.strerror or error}") from None
        return cls(chain, live)

    def mined(self) -> None:
        """A block was mined (and kept): the live endpoint answers at it from now on."""
        if self.live is not None:
            self.live.show_head(self.chain.block_number)

    def close(self) -> None:
        """Stop the live endpoint and close the kept chain."""
        if self.live is not None:
            self.live.close()
        self.chain.close()
