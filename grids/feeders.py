"""Feeder catalog: reference distribution feeders, SimBench grids and user files.

A feeder is named by a catalog key (``"case33bw"``, ``"cigre-mv"``,
``"cigre-lv"``, ``"ieee-eu-lv"``), by a SimBench code of a low- or
medium-voltage grid (``"1-LV-rural1--0-sw"``), or by the path of a
pandapower JSON file. Every feeder is checked before a study starts: it must
have an in-service external grid (the slack) and at least one in-service
load, because prosumers take over the feeder's loads; an unbalanced feeder
must also carry the zero-sequence data that ``runpp_3ph`` needs.
"""

import copy
import functools
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib.metadata import version
from os import PathLike
from pathlib import Path
from types import MappingProxyType

import pandapower
import pandapower.networks
import simbench

from gridledger.grids.disk_cache import cache_root, cached_object
from gridledger.grids.names import SIMBENCH_EXAMPLES, VOLTAGE_LEVELS

__all__ = [
    "FEEDERS",
    "SIMBENCH_EXAMPLES",
    "FeederError",
    "FeederInfo",
    "catalog",
    "feeder_info",
    "is_simbench_code",
    "is_unbalanced",
    "load_feeder",
    "load_buses",
    "VOLTAGE_LEVELS",
]

FEEDERS: Mapping[str, Callable[[], pandapower.pandapowerNet]] = MappingProxyType({
    # Baran & Wu (1989) 33-bus 12.66 kV radial feeder, 3.715 MW / 2.300 Mvar.
    "case33bw": pandapower.networks.case33bw,
    # CIGRE TF C6.04.02 (2014) European MV benchmark, 20 kV, without DER.
    "cigre-mv": functools.partial(pandapower.networks.create_cigre_network_mv, with_der=False),
    # CIGRE TF C6.04.02 (2014) European LV benchmark, 0.4 kV.
    "cigre-lv": pandapower.networks.create_cigre_network_lv,
    # IEEE PES European LV test feeder, 0.416 kV, 55 single-phase loads, minute 566.
    "ieee-eu-lv": functools.partial(pandapower.networks.ieee_european_lv_asymmetric, "on_peak_566"),
})
"""Catalog of reference feeders: name -> function returning a fresh net."""

_DESCRIPTIONS = MappingProxyType({
    "case33bw": "Baran & Wu 33-bus 12.66 kV radial feeder (balanced)",
    "cigre-mv": "CIGRE TF C6.04.02 European MV benchmark, 20 kV, two feeders, no DER (balanced)",
    "cigre-lv": "CIGRE TF C6.04.02 European LV benchmark, 0.4 kV residential, industrial and "
                "commercial subnetworks (balanced)",
    "ieee-eu-lv": "IEEE PES European LV test feeder, 0.416 kV, 55 single-phase loads, on-peak "
                  "snapshot at minute 566 (unbalanced, three-phase power flow)",
})
_SIMBENCH_PATTERN = re.compile(r"^\d+-[A-Za-z]+-")
_DISTRIBUTION_LEVELS = ("LV", "MV", "MVLV")
# Zero-sequence data without which runpp_3ph fails or silently uses NaN.
_THREE_PHASE_COLUMNS = MappingProxyType({
    "ext_grid": ("s_sc_max_mva", "rx_max", "r0x0_max", "x0x_max"),
    "line": ("r0_ohm_per_km", "x0_ohm_per_km", "c0_nf_per_km"),
    "trafo": ("vector_group", "vk0_percent", "vkr0_percent", "mag0_percent", "mag0_rx", "si0_hv_partial"),
})


class FeederError(ValueError):
    """A feeder spec names no catalog feeder or an unusable pandapower file."""


@dataclass(frozen=True)
class FeederInfo:
    """What a feeder is, for listing the catalog.

    Attributes
    ----------
    name : str
        Catalog name or SimBench code.
    unbalanced : bool
        Whether it has per-phase loads or generators and runs with
        ``runpp_3ph``.
    has_profiles : bool
        Whether it ships yearly load and generation profiles
        (:func:`~gridledger.grids.feeder_profiles.feeder_profiles`).
    n_bus, n_line, n_trafo : int
        Rows of ``net.bus``, ``net.line``, ``net.trafo``.
    n_load : int
        Rows of ``net.load`` plus ``net.asymmetric_load``.
    description : str
        One line for people.
    """

    name: str
    unbalanced: bool
    has_profiles: bool
    n_bus: int
    n_line: int
    n_load: int
    n_trafo: int
    description: str


def load_feeder(spec: str | PathLike) -> pandapower.pandapowerNet:
    """Load a feeder from the catalog, from SimBench or from a pandapower JSON file.

    Parameters
    ----------
    spec : str or os.PathLike
        A key of :data:`FEEDERS`, a low- or medium-voltage SimBench code
        (e.g. ``"1-LV-rural1--0-sw"``), or the path of a file written by
        ``pandapower.to_json``.

    Returns
    -------
    net : pandapowerNet
        A new network; callers may modify it. A SimBench net carries its
        code in ``net.name`` and its relative yearly profiles in
        ``net.profiles``; its transformers with a tap step get
        ``tap_changer_type = "Ratio"``, which simbench 1.6 leaves empty and
        without which pandapower 3 ignores their tap positions.

    Raises
    ------
    FeederError
        If ``spec`` is neither a catalog name, a SimBench code of a
        distribution grid nor a path, the file is missing or is not a
        pandapower net, the net has no in-service ``ext_grid`` or no
        in-service load, or an unbalanced net lacks zero-sequence data. The
        message names ``spec`` and what is allowed.

    References
    ----------
    M. E. Baran and F. F. Wu, "Network reconfiguration in distribution
    systems for loss reduction and load balancing," IEEE Trans. Power
    Delivery, vol. 4, no. 2, pp. 1401-1407, 1989 (``case33bw``).

    CIGRE Task Force C6.04.02, "Benchmark Systems for Network Integration
    of Renewable and Distributed Energy Resources," CIGRE Technical
    Brochure 575, 2014 (``cigre-mv``, ``cigre-lv``).

    IEEE PES Distribution System Analysis Subcommittee, "European Low
    Voltage Test Feeder," 2015, https://cmte.ieee.org/pes-testfeeders/resources/
    (``ieee-eu-lv``).

    S. Meinecke et al., "SimBench - A Benchmark Dataset of Electric Power
    Systems to Compare Innovative Solutions Based on Power Flow Analysis,"
    Energies, vol. 13, no. 12, 3290, 2020 (SimBench codes).
    """
    spec_str = str(spec)
    if spec_str in FEEDERS:
        net = FEEDERS[spec_str]()
    elif _SIMBENCH_PATTERN.match(spec_str) and Path(spec_str).suffix != ".json":
        net = copy.deepcopy(_simbench_net(spec_str))
    else:
        path = Path(spec_str)
        if not (path.suffix == ".json" or path.exists() or len(path.parts) > 1):
            raise FeederError(
                f"unknown feeder {spec_str!r}: expected one of the catalog names "
                f"{_catalog_names()}, a SimBench code such as {_simbench_examples()}, "
                "or the path of a pandapower JSON file"
            )
        net = _read_file(path)
    _check_usable(net, spec_str)
    return net


def load_buses(net: pandapower.pandapowerNet, voltage_level: str = "any") -> list[int]:
    """Buses that carry at least one in-service load or asymmetric load.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.
    voltage_level : {"any", "lv", "mv"}
        Keep only buses whose nominal voltage ``net.bus.vn_kv`` lies in
        that level's range of :data:`VOLTAGE_LEVELS`.

    Returns
    -------
    buses : list of int
        ``net.bus`` indices, ascending, each once.
    """
    if voltage_level not in VOLTAGE_LEVELS:
        raise ValueError(f"voltage_level must be one of {', '.join(VOLTAGE_LEVELS)}, got {voltage_level!r}")
    low_kv, high_kv = VOLTAGE_LEVELS[voltage_level]
    buses = set()
    for table in ("load", "asymmetric_load"):
        if table in net:
            rows = net[table][net[table]["in_service"].astype(bool)]
            buses.update(int(bus) for bus in rows["bus"])
    vn_kv = net.bus["vn_kv"]
    return sorted(bus for bus in buses if low_kv < vn_kv.at[bus] <= high_kv)


def is_unbalanced(net: pandapower.pandapowerNet) -> bool:
    """Whether a feeder has per-phase loads or generators.

    Such a feeder runs with pandapower's three-phase power flow
    (``runpp_3ph``); the balanced power flow would lump its phases.

    Parameters
    ----------
    net : pandapowerNet
        The feeder.

    Returns
    -------
    unbalanced : bool
        True if ``net.asymmetric_load`` or ``net.asymmetric_sgen`` has an
        in-service row.
    """
    return any(
        table in net and bool(net[table]["in_service"].astype(bool).any())
        for table in ("asymmetric_load", "asymmetric_sgen")
    )


def is_simbench_code(spec: str) -> bool:
    """Whether ``spec`` is a SimBench code of a low- or medium-voltage grid.

    Parameters
    ----------
    spec : str
        Candidate code, e.g. ``"1-LV-rural1--0-sw"``.

    Returns
    -------
    valid : bool
        True for codes of ``simbench.collect_all_simbench_codes()`` whose
        voltage level is LV, MV or MVLV.
    """
    return spec in _distribution_codes()


def feeder_info(spec: str) -> FeederInfo:
    """Describe a catalog feeder or SimBench grid.

    Loads the feeder once per process (SimBench grids take seconds).

    Parameters
    ----------
    spec : str
        A key of :data:`FEEDERS` or a SimBench code.

    Returns
    -------
    info : FeederInfo

    Raises
    ------
    FeederError
        As :func:`load_feeder`; a file path is not catalogued.
    """
    if spec not in FEEDERS and not _SIMBENCH_PATTERN.match(spec):
        raise FeederError(
            f"{spec!r} is not a catalog feeder: expected one of {_catalog_names()} "
            f"or a SimBench code such as {_simbench_examples()}"
        )
    return _feeder_info(spec)


def catalog() -> list[FeederInfo]:
    """The built-in feeders and the example SimBench codes.

    Returns
    -------
    feeders : list of FeederInfo
        :data:`FEEDERS` in catalog order, then :data:`SIMBENCH_EXAMPLES`.
    """
    return [feeder_info(name) for name in (*FEEDERS, *SIMBENCH_EXAMPLES)]


@functools.cache
def _feeder_info(spec: str) -> FeederInfo:
    net = load_feeder(spec)
    if spec in FEEDERS:
        description = _DESCRIPTIONS[spec]
    else:
        _, hv_level, lv_level, hv_type, lv_type, scenario, switches = (
            simbench.get_parameters_from_simbench_code(spec)
        )
        grid = f"{hv_type}/{lv_type}" if lv_type else hv_type
        description = (
            f"SimBench {hv_level}{lv_level} grid '{grid}', scenario {scenario}, "
            f"{'with' if switches else 'without'} switches, yearly 15-min profiles "
            f"({'unbalanced' if is_unbalanced(net) else 'balanced'})"
        )
    return FeederInfo(
        name=spec,
        unbalanced=is_unbalanced(net),
        has_profiles=_has_profiles(net),
        n_bus=len(net.bus),
        n_line=len(net.line),
        n_load=len(net.load) + len(net.get("asymmetric_load", ())),
        n_trafo=len(net.trafo),
        description=description,
    )


def _has_profiles(net: pandapower.pandapowerNet) -> bool:
    return "profiles" in net and "load" in net.profiles and not net.profiles["load"].empty


@functools.cache
def _distribution_codes() -> frozenset[str]:
    return frozenset(
        code for code in simbench.collect_all_simbench_codes()
        if code.split("-")[1] in _DISTRIBUTION_LEVELS
    )


def simbench_net_entry(code: str, root: Path) -> Path:
    """Disk-cache entry of a SimBench net as published, keyed by the code and the releases that read and pickle it."""
    releases = "-".join(f"{package}-{version(package)}" for package in ("simbench", "pandapower", "pandas"))
    return root / "simbench-nets" / releases / f"{code}.pickle"


@functools.cache
def _simbench_net(code: str) -> pandapower.pandapowerNet:
    """The SimBench net of a code, read once per process and from the disk cache after the first build.

    Reading SimBench's CSV files takes seconds to tens of seconds for a
    combined MV/LV grid, in every federate; the pickled net loads in
    a fraction of a second.
    """
    if not is_simbench_code(code):
        what = ("a SimBench grid with a (extra-)high-voltage level, not a distribution feeder"
                if code in simbench.collect_all_simbench_codes()
                else "not a SimBench code")
        raise FeederError(
            f"{code!r} is {what}: expected a low- or medium-voltage grid code such as "
            f"{_simbench_examples()}; simbench.collect_all_simbench_codes() lists every code, "
            f"of which levels {', '.join(_DISTRIBUTION_LEVELS)} are feeders"
        )
    net = cached_object(simbench_net_entry(code, cache_root()), lambda: simbench.get_simbench_net(code))
    net.name = code
    # simbench 1.6 leaves tap_changer_type empty, which pandapower 3 reads as
    # "no tap changer" and so ignores the grids' tap positions.
    for table in ("trafo", "trafo3w"):
        untyped = net[table]["tap_changer_type"].isna() & net[table]["tap_step_percent"].notna()
        net[table].loc[untyped, "tap_changer_type"] = "Ratio"
    return net


def _catalog_names() -> str:
    return ", ".join(repr(name) for name in sorted(FEEDERS))


def _simbench_examples() -> str:
    return ", ".join(repr(code) for code in SIMBENCH_EXAMPLES)


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
    if is_unbalanced(net):
        missing = [
            f"{table}.{column}"
            for table, columns in _THREE_PHASE_COLUMNS.items()
            for column in columns
            if _in_service_missing(net[table], column)
        ]
        if missing:
            raise FeederError(
                f"feeder {spec!r} is unbalanced (it has asymmetric loads or sgens) but lacks the "
                f"zero-sequence data of the three-phase power flow: {', '.join(missing)}; "
                "pandapower.add_zero_impedance_parameters(net) fills them from standard types"
            )


def _in_service_missing(table, column: str) -> bool:
    rows = table[table["in_service"].astype(bool)]
    if rows.empty:
        return False
    if column not in rows:
        return True
    values = rows[column]
    return bool(values.isna().any() or (values.astype(str).str.strip() == "").any())
