"""Names of the grid, importable without pandapower or simbench: what the study schema accepts, and buses as people
number them.

`gridledger.grids.feeders` maps each catalog name to the function that
builds its net and `gridledger.grids.powerflow` runs the backends; the
study schema (`gridledger.study`), which every federate reads, needs only
the names, so federates that run no power flow never import pandapower.

Buses are indexed as in pandapower's ``net.bus``, from 0; `bus_labels`
gives the number a reader of the feeder's paper knows (bus 18 of Baran and
Wu is index 17), for results and reports.
"""

import math
from collections.abc import Iterable
from types import MappingProxyType

CATALOG_FEEDERS = ("case33bw", "cigre-mv", "cigre-lv", "ieee-eu-lv")
"""Names of the reference feeders of `gridledger.grids.feeders.FEEDERS`."""

SIMBENCH_EXAMPLES = ("1-LV-rural1--0-sw", "1-LV-semiurb4--0-sw", "1-MV-urban--0-sw")
"""SimBench codes listed by `gridledger.grids.feeders.catalog`; any low- or medium-voltage
code of ``simbench.collect_all_simbench_codes()`` is accepted."""

BACKENDS = ("auto", "pandapower", "lightsim2grid")
"""Power-flow solvers `gridledger.grids.powerflow.PowerFlow` accepts."""

VOLTAGE_LEVELS = MappingProxyType({
    "any": (0.0, float("inf")),
    "lv": (0.0, 1.0),
    "mv": (1.0, 35.0),
})
"""Voltage levels of load buses: name -> (above, up to) nominal voltage [kV].

Low voltage is up to 1 kV and medium voltage above 1 kV up to 35 kV, the
ranges of IEC 60038 (35 kV is its highest medium-voltage series)."""

NUMBERED_FROM_ONE = ("case33bw",)
"""Catalog feeders whose papers number buses 1, 2, ... in ``net.bus`` order: MATPOWER cases, whose bus numbers
pandapower's converter turns into indices from 0 (and names equal to the index)."""


def bus_name(name: object) -> str:
    """A bus's name in its feeder file (``net.bus.name``) as text; "" when it has none (None, NaN or blank)."""
    if name is None or (isinstance(name, float) and math.isnan(name)):
        return ""
    return str(name).strip()


def bus_labels(feeder: str, index: Iterable[int], names: Iterable[object]) -> list[str]:
    """How people number a feeder's buses: as the feeder's paper does, else by the feeder's own names.

    Parameters
    ----------
    feeder : str
        The study's ``grid.feeder`` (catalog name, SimBench code or file).
    index : iterable of int
        ``net.bus`` indices.
    names : iterable
        ``net.bus.name``, in the order of `index`.

    Returns
    -------
    labels : list of str
        ``str(index + 1)`` on a feeder of `NUMBERED_FROM_ONE`; otherwise the
        bus's name (`bus_name`: CIGRE's "Bus 1", SimBench's "LV1.101 Bus 5",
        the IEEE European LV feeder's "1" ... "906"), or its index where it
        has none.

    References
    ----------
    M. E. Baran and F. F. Wu, "Network reconfiguration in distribution systems
    for loss reduction and load balancing", IEEE Trans. Power Delivery 4(2),
    1989: the test system's buses 1-33, the substation at bus 1; MATPOWER
    ``case33bw`` numbers them the same.
    """
    if feeder in NUMBERED_FROM_ONE:
        return [str(int(i) + 1) for i in index]
    return [bus_name(name) or str(int(i)) for i, name in zip(index, names)]
