"""Keep packages that a federate process never uses from being imported behind its back; import this first.

Acts only in a federate process, that is when the running ``__main__`` is a
module of `gridledger.federates` (the launcher starts each federate as
``python -m gridledger.federates.<name> RUN_DIR``); importing a federate
module anywhere else (tests, the launcher) changes nothing. The shell
(`gridledger.federates.shell`) imports it before anything else of
gridledger, and every federate module imports the shell first.

Two optional imports inflate every federate's peak memory without changing
anything it computes (measured with ``VmHWM``, reference study, `make bench`
section 7):

- ``matplotlib``: pandapower imports ``matplotlib.pyplot`` when it is
  installed, only to offer plotting helpers (a soft dependency: pandapower
  catches the ImportError, ``pandapower/control/util/auxiliary.py``); about
  28 MiB in the grid federate.
- ``dask`` (with ``distributed``): xarray imports both when writing a netCDF
  file, only to pick a lock for a dask scheduler
  (``xarray.backends.locks.get_dask_scheduler``); without dask it takes a
  plain thread lock. About 15 MiB in every federate that writes its part.

A ``None`` entry in `sys.modules` makes ``import`` of that name raise
ModuleNotFoundError (Python language reference, "The module cache"), which is
what these optional imports handle. It must come before xarray is imported:
xarray notes at import whether dask is installed. Plots and sweeps run in the
launcher and the sweep processes, never in a federate.
`tests/test_federate_imports.py` checks that no federate process loads
either package, even when it writes a netCDF file; the reference study's
kpis.json, results.nc and chain are byte-identical with and without them.
"""

import sys

UNUSED_BY_FEDERATES = ("matplotlib", "dask", "distributed")
"""Top-level packages a federate process refuses to import."""


def is_federate_process() -> bool:
    """Whether this interpreter runs a federate module as its ``__main__``."""
    spec = getattr(sys.modules.get("__main__"), "__spec__", None)
    return spec is not None and spec.name.startswith("gridledger.federates.")


REFUSED = tuple(name for name in UNUSED_BY_FEDERATES if is_federate_process() and name not in sys.modules)
"""The packages this process refuses (none outside a federate process, or if already imported)."""
for _name in REFUSED:
    sys.modules[_name] = None
