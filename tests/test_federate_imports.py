"""Each federate module, imported alone in a fresh interpreter, leaves out the heavy packages it does not use.

py-evm (top-level package ``eth``) runs only in the ledger; Vyper compiles
only when a stored artifact is stale; web3 is a test baseline. pandapower
(with scipy, matplotlib and simbench) is imported only by the federates that
run power flows, grid and operator; the DER agents and the ledger read the
prosumers and their profiles from the run directory (`gridledger.roster`).
The zones' coordinator holds no key and runs no chain: it signs nothing
and loads neither py-evm nor pandapower; the auditor estimates with
pandapower and runs no chain.
Run as a federate process (``python -m gridledger.federates.<name>``, here
through `runpy` without a run directory, so it stops at its usage message),
no federate loads matplotlib or dask (`gridledger.lean`); imported
as a library, a federate module leaves them alone.
"""

import json
import subprocess
import sys
import tempfile

import pytest

POWER_FLOW = ("pandapower", "scipy", "matplotlib", "simbench")
NOT_IN_PROCESS = ("matplotlib", "dask", "distributed")
NOT_IMPORTED = {
    "der": ("eth", "vyper", "web3", *POWER_FLOW),
    "grid": ("eth", "vyper", "web3"),
    "operator": ("eth", "vyper", "web3"),
    "ledger": ("vyper", "web3", *POWER_FLOW),
    "coordinator": ("eth", "vyper", "web3", *POWER_FLOW),
    "auditor": ("eth", "vyper", "web3"),
}


def _top_level_modules(module: str) -> set[str]:
    code = f"import json, sys; import {module}; print(json.dumps(sorted({{m.split('.')[0] for m in sys.modules}})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout))


def _federate_process_modules(federate: str) -> set[str]:
    code = ("import json, runpy, sys\n"
            "try:\n"
            f"    runpy.run_module('gridledger.federates.{federate}', run_name='__main__', alter_sys=True)\n"
            "except SystemExit:\n"
            "    pass\n"
            "import xarray\n"
            "xarray.Dataset({'x': ('t', [1.0])}).to_netcdf(sys.argv[1], engine='h5netcdf')\n"
            "print(json.dumps(sorted({m.split('.')[0] for m, v in sys.modules.items() if v is not None})))")
    with tempfile.TemporaryDirectory() as tmp:
        out = subprocess.run([sys.executable, "-c", code, f"{tmp}/part.nc"], capture_output=True, text=True, check=True)
    return set(json.loads(out.stdout.splitlines()[-1]))


@pytest.mark.parametrize("federate", sorted(NOT_IMPORTED))
def test_federate_process_leaves_out_plotting_and_dask_even_when_writing_netcdf(federate):
    loaded = _federate_process_modules(federate)
    if federate != "coordinator":
        assert "pandapower" in loaded if federate in ("grid", "operator", "auditor") else "eth_account" in loaded
    assert loaded.isdisjoint(NOT_IN_PROCESS + NOT_IMPORTED[federate]), sorted(loaded & set(NOT_IN_PROCESS))


def test_a_federate_module_imported_as_a_library_blocks_nothing():
    code = ("import sys, gridledger.federates.grid, matplotlib.figure, dask; "
            "print(all(sys.modules[m] is not None for m in ('matplotlib', 'dask')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "True"


@pytest.mark.parametrize("federate", sorted(NOT_IMPORTED))
def test_federate_module_leaves_out_heavy_packages(federate):
    loaded = _top_level_modules(f"gridledger.federates.{federate}")
    assert "gridledger" in loaded and "helics" in loaded
    assert loaded.isdisjoint(NOT_IMPORTED[federate]), sorted(loaded & set(NOT_IMPORTED[federate]))


def test_the_ledger_still_loads_the_chain():
    assert "eth" in _top_level_modules("gridledger.federates.ledger")


def test_the_grid_still_loads_pandapower():
    assert "pandapower" in _top_level_modules("gridledger.federates.grid")
