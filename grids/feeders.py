"""Feeder catalog: reference distribution feeders and user pandapower files.

A feeder is named either by a catalog key (``"case33bw"``) or by the path of
a pandapower JSON file. Every feeder is checked before a study starts: it
must have an in-service external grid (the slack) and at least one
in-service load, because prosumers take over the feeder's loads.
"""

from collections.abc import Callable, Mapping
from os import PathLike
from pathlib import Path
from types import MappingProxyType

import pandapower
import pandapower.networks

__all__ = ["FEEDERS", "FeederError", "load_feeder", "load_buses"]

FEEDERS: Mapping[str, Callable[[], pandapower.pandapowerNet]] = MappingProxyType({
    # Baran & Wu (1989) 33-bus 12.66 kV radial feeder, 3.715 MW / 2.300 Mvar.
    "case33bw": pandapower.networks.case33bw,
})
"""Catalog of reference feeders: name -> function returning a fresh net.

Add a feeder by adding a zero-argument factory, e.g.
``functools.partial(pandapower.networks.create_cigre_network_mv, with_der=False)``
or ``functools.partial(simbench.get_simbench_net, "1-LV-rural1--0-sw")``.
"""


class FeederError(ValueError):
    """A feeder spec names no catalog feeder or an unusable pandapower file."""


def load_feeder(spec: str | PathLike) -> pandapower.pandapowerNet:
    """Load a feeder from the catalog or from a pandapower JSON file.

    Parameters
    ----------
    spec : str or os.PathLike
        A key of :data:`FEEDERS` or the path of a file written by
        ``pandapower.to_json``.

    Returns
    -------
    net : pandapowerNet
        A new network; callers may modify it.

    Raises
    ------
    FeederError
        If ``spec`` is neither a catalog name nor a path, the file is
        missing or is not a pandapower net, or the net has no in-service
        ``ext_grid`` or no in-service load. The message names ``spec``.

    References
    ----------
    M. E. Baran and F. F. Wu, "Network reconfiguration in distribution
    systems for loss reduction and load balancing," IEEE Trans. Power
    Delivery, vol. 4, no. 2, pp. 1401-1407, 1989 (``case33bw``).
    """
    spec_str = str(spec)
    if spec_str in FEEDERS:
        net = FEEDERS[spec_str]()
    else:
        path = Path(spec_str)
        if not (path.suffix == ".json" or path.exists() or len(path.parts) > 1):
            raise FeederError(
                f"unknown feeder {spec_str!r}: expected one of the catalog names "
                f"{_catalog_names()} or the path of a pandapower JSON file"
            )
        net = _read_file(path)
    _check_usable(net, spec_str)
    return net


def load_buses(net: pandapower.pandapowerNet) -> list[int]:
    """Buses that carry at least one in-service load.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    buses : list of int
        ``net.bus`` indices, ascending, each once.
    """
    loads = net.load[net.load["in_service"].astype(bool)]
    return sorted({int(bus) for bus in loads["bus"]})


def _catalog_names() -> str:
    return ", ".join(repr(name) for name in sorted(FEEDERS))


def _read_file(path: Path) -> pandapower.pandapowerNet:
    if not path.is_file():
        raise FeederError(
            f"feeder file {str(path)!r} does not exist; expected one of the catalog "
            f"names {_catalog_names()} or the path of a pandapower JSON file"
        )
    try:
        net = pandapower.from_json(str(path))
    except Exception as err:  # from_json raises assorted types for non-net files
        raise FeederError(
            f"feeder file {str(path)!r} is not a pandapower net: {err}"
        ) from err
    if not isinstance(net, pandapower.pandapowerNet):
        raise FeederError(
            f"feeder file {str(path)!r} is not a pandapower net: it holds a "
            f"{type(net).__name__}"
        )
    return net


def _check_usable(net: pandapower.pandapowerNet, spec: str) -> None:
    if not net.ext_grid["in_service"].astype(bool).any():
        raise FeederError(
            f"feeder {spec!r} has no in-service ext_grid: a power flow needs a "
            "slack bus that connects the feeder to the upstream grid"
        )
    if not load_buses(net):
        raise FeederError(
            f"feeder {spec!r} has no in-service load: prosumers take over the "
            "feeder's loads, so at least one is needed"
        )
