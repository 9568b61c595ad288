"""Each federate module, imported alone in a fresh interpreter, leaves out the heavy packages it does not use.

py-evm (top-level package ``eth``) runs only in the ledger; Vyper compiles
only when a stored artifact is stale; web3 is a test baseline. Every
federate still imports pandapower, because each builds the study's
`Scenario` from the feeder.
"""

import json
import subprocess
import sys

import pytest

NOT_IMPORTED = {
    "der": ("eth", "vyper", "web3"),
    "grid": ("eth", "vyper", "web3"),
    "operator": ("eth", "vyper", "web3"),
    "ledger": ("vyper", "web3"),
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
