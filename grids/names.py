"""Names the study schema accepts for the grid, importable without pandapower or simbench.

`gridledger.grids.feeders` maps each catalog name to the function that
builds its net and `gridledger.grids.powerflow` runs the backends; the
study schema (`gridledger.study`), which every federate reads, needs only
the names, so federates that run no power flow never import pandapower.
"""

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
