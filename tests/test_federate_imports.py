"""Each federate module, imported alone in a fresh interpreter, leaves out the heavy packages it does not use.

py-evm (top-level package ``eth``) runs only in the ledger; Vyper compiles
only when a stored artifact is stale; web3 is a test baseline. pandapower
(with scipy, matplotlib and simbench) is imported only by the federates that
run power flows, grid and operator; the DER agents and the ledger read the
prosumers and their profiles from the run directory (`gridledger.roster`).
"""

import json
import subprocess
import sys

import pytest

POWER_FLOW = ("pandapower", "scipy", "matplotlib", "simbench")
NOT_IMPORTED = {
    "der": ("eth", "vyper", "web3", *POWER_FLOW),
    "grid": ("eth", "vyper", "web3"),
    "operator": ("eth", "vyper", "web3"),
    "ledger": ("vyper", "web3", *POWER_FLOW),
}


def _top_level_modules(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


@pytest.mark.parametrize("federate", sorted(NOT_IMPORTED))
def test_federate_module_leaves_out_heavy_packages(federate):
    loaded = _top_level_modules(f"gridledger.federates.{federate}")
    assert "gridledger" in loaded and "helics" in loaded
    assert loaded.isdisjoint(NOT_IMPORTED[federate]), sorted(loaded & set(NOT_IMPORTED[federate]))


def test_the_ledger_still_loads_the_chain():
    assert "eth" in _top_level_modules("gridledger.federates.ledger")


def test_the_grid_still_loads_pandapower():
    assert "pandapower" in _top_level_modules("gridledger.federates.grid")
