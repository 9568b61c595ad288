"""Time-series AC power flow of one feeder with warm starts.

:class:`PowerFlow` owns a pandapower net. Each :meth:`PowerFlow.step` writes
the injections into the element tables and runs a Newton-Raphson power flow.
After a converged step the next one reuses pandapower's internal matrices
and starts from the previous voltages (``init="results"`` with
``recycle``), 5-7x faster than a cold ``runpp`` on case33bw. A step
that does not converge returns NaN results, and the step after it starts
cold instead of from the diverged voltages.

Three paths, chosen once per net:

- balanced feeders: ``pandapower.runpp``, with lightsim2grid's Newton-Raphson
  (``backend="lightsim2grid"``, the default ``"auto"`` when installed) or
  pandapower's own (``backend="pandapower"``);
- balanced feeders with in-service ``net.controller`` rows (tap changers,
  switched capacitors): ``runpp(run_control=True)``, which runs pandapower's
  control loop inside every step; it rebuilds the admittance matrix because
  controllers change taps and shunts, so it warm-starts but does not
  recycle;
- unbalanced feeders (:func:`~gridledger.grids.feeders.is_unbalanced`):
  pandapower's sequence-frame three-phase power flow ``runpp_3ph``.
"""

from dataclasses import dataclass

import numpy as np
import pandapower
import pandapower.auxiliary
from pandapower.auxiliary import LoadflowNotConverged, NetCalculationNotConverged

from gridledger.grids.feeders import is_unbalanced
from gridledger.grids.names import BACKENDS
from gridledger.grids.stability import voltage_unbalance_factor_percent

__all__ = ["BACKENDS", "Injections", "StepResult", "PowerFlow"]

"""Newton-Raphson solvers of :class:`PowerFlow` for balanced feeders."""

# Only loads, sgens and storage change between steps; topology, tap positions
# and gen set points do not, so the admittance matrix is reused.
_RECYCLE = {"trafo": False, "gen": False, "bus_pq": True}
_RECYCLE_3PH = {"bus_pq": True, "gen": False, "Ybus": True}
_PHASES = ("a", "b", "c")
# runpp_3ph reads only these tables, and of load/sgen only rows of these types.
_THREE_PHASE_TABLES = ("load", "sgen", "asymmetric_load", "asymmetric_sgen")
_THREE_PHASE_TYPES = ("wye", "delta")


@dataclass(frozen=True)
class Injections:
    """Set points of one power-flow step, positionally like the element tables.

    pandapower applies each element's ``scaling`` to these values. On an
    unbalanced feeder a prosumer on an asymmetric load sets that load's
    three-phase total; :class:`PowerFlow` splits it over the phases in the
    proportions the load had when the ``PowerFlow`` was made (active and
    reactive power separately; a load that was zero on every phase is split
    equally). ``load``, ``sgen`` and ``storage`` rows are balanced: each
    phase takes a third.

    Attributes
    ----------
    load_p_mw : ndarray, shape (n_load,)
        Active load, rows of ``net.load``. [MW]
    load_q_mvar : ndarray, shape (n_load,)
        Reactive load, rows of ``net.load``. [Mvar]
    sgen_p_mw : ndarray, shape (n_sgen,)
        Generation, positive = injection, rows of ``net.sgen``. [MW]
    storage_p_mw : ndarray, shape (n_storage,)
        Storage power, positive = charging, rows of ``net.storage``. [MW]
    asymmetric_load_p_mw : ndarray, shape (n_asymmetric_load,), optional
        Three-phase total active load, rows of ``net.asymmetric_load``;
        None leaves the phases as they are in the net. [MW]
    asymmetric_load_q_mvar : ndarray, shape (n_asymmetric_load,), optional
        Three-phase total reactive load, as above. [Mvar]
    """

    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    sgen_p_mw: np.ndarray
    storage_p_mw: np.ndarray
    asymmetric_load_p_mw: np.ndarray | None = None
    asymmetric_load_q_mvar: np.ndarray | None = None

    @classmethod
    def from_net(cls, net: pandapower.pandapowerNet) -> "Injections":
        """The set points currently in the net's element tables."""
        asymmetric = net.asymmetric_load
        return cls(
            load_p_mw=net.load["p_mw"].to_numpy(dtype=float, copy=True),
            load_q_mvar=net.load["q_mvar"].to_numpy(dtype=float, copy=True),
            sgen_p_mw=net.sgen["p_mw"].to_numpy(dtype=float, copy=True),
            storage_p_mw=net.storage["p_mw"].to_numpy(dtype=float, copy=True),
            asymmetric_load_p_mw=_phase_columns(asymmetric, "p", "mw").sum(axis=1),
            asymmetric_load_q_mvar=_phase_columns(asymmetric, "q", "mvar").sum(axis=1),
        )


@dataclass(frozen=True)
class StepResult:
    """Results of one power-flow step; every value is NaN if not converged.

    Arrays are positional in the order of ``net.bus``, ``net.line`` and
    ``net.trafo``. On an unbalanced feeder the per-bus values summarize the
    phases as stated; the phases themselves are in ``vm_phase_pu``.

    Attributes
    ----------
    converged : bool
        Whether Newton-Raphson converged.
    vm_pu : ndarray, shape (n_bus,)
        Bus voltage magnitude; on unbalanced feeders the mean of the three
        phase-to-neutral magnitudes. [pu]
    va_degree : ndarray, shape (n_bus,)
        Bus voltage angle; of phase a on unbalanced feeders. [deg]
    loading_percent : ndarray, shape (n_line,)
        Line current in percent of its rating (of the most loaded phase on
        unbalanced feeders); 0 for lines out of service. [%]
    trafo_loading_percent : ndarray, shape (n_trafo,)
        Transformer loading (most loaded phase on unbalanced feeders). [%]
    p_mw : float
        Active power drawn from the external grid(s), positive = import
        into the feeder, all phases. [MW]
    q_mvar : float
        Reactive power drawn from the external grid(s). [Mvar]
    pl_mw : float
        Active losses in lines and transformers, all phases. [MW]
    vm_phase_pu : ndarray, shape (n_bus, 3)
        Phase-to-neutral voltage magnitude of phases a, b, c; on balanced
        feeders each column equals ``vm_pu``. [pu]
    vuf_percent : ndarray, shape (n_bus,)
        Voltage unbalance factor |V2|/|V1|
        (:func:`~gridledger.grids.stability.voltage_unbalance_factor_percent`);
        0 on balanced feeders, which are solved in the positive sequence. [%]
    line_p_from_mw, line_q_from_mvar : ndarray, shape (n_line,)
        Active and reactive power entering each line at its from bus, all
        phases; what a flow sensor there measures. [MW], [Mvar]
    """

    converged: bool
    vm_pu: np.ndarray
    va_degree: np.ndarray
    loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    p_mw: float
    q_mvar: float
    pl_mw: float
    vm_phase_pu: np.ndarray
    vuf_percent: np.ndarray
    line_p_from_mw: np.ndarray
    line_q_from_mvar: np.ndarray


class PowerFlow:
    """Stepwise AC power flow of one feeder.

    Parameters
    ----------
    net : pandapowerNet
        The feeder. ``PowerFlow`` writes set points and results into it;
        topology, element lists and in-service states must not change
        after construction, because warm steps reuse the admittance matrix
        and pandapower's list of active elements.
    backend : {"auto", "pandapower", "lightsim2grid"}, default "auto"
        Newton-Raphson solver of balanced feeders: lightsim2grid's (C++),
        pandapower's own (Python/SciPy), or pandapower's choice, which is
        lightsim2grid when it is installed and supports the net. Both give
        the same voltages to within the solver tolerance (1e-8 MVA
        mismatch). Unbalanced feeders always use pandapower's
        ``runpp_3ph``.
    controllers : bool, default True
        Run the net's in-service pandapower controllers (``net.controller``,
        e.g. from :mod:`gridledger.grids.controls`) inside every step, via
        pandapower's ``run_control``. Only ``initialize_control``,
        ``is_converged``, ``control_step`` and ``finalize_control`` are
        called, once per step; ``time_step`` is not, because set points
        come from :class:`Injections`. Without controllers, or with False,
        steps take the recycling fast path.

    Raises
    ------
    ValueError
        For an unknown backend, lightsim2grid requested but not installed
        or on an unbalanced feeder, or an unbalanced feeder with elements
        that ``runpp_3ph`` would ignore (in-service storage, load or sgen
        rows whose ``type`` is not "wye" or "delta") or with controllers
        (they read ``res_bus``, which ``runpp_3ph`` does not write).

    References
    ----------
    L. Thurner et al., "pandapower - an open-source Python tool for
    convenient modeling, analysis, and optimization of electric power
    systems," IEEE Trans. Power Systems, vol. 33, no. 6, pp. 6510-6521,
    2018.

    B. Donnot, "LightSim2Grid: a c++ backend simulator for Grid2Op," 2020,
    https://github.com/Grid2op/lightsim2grid.

    M. Abdel-Akher, K. M. Nor and A. H. A. Rashid, "Improved three-phase
    power-flow methods using sequence components," IEEE Trans. Power
    Systems, vol. 20, no. 3, pp. 1389-1397, 2005 (the method of
    ``runpp_3ph``).
    """

    def __init__(self, net: pandapower.pandapowerNet, backend: str = "auto", controllers: bool = True):
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        if backend == "lightsim2grid" and not pandapower.auxiliary.lightsim2grid_available:
            raise ValueError("backend='lightsim2grid' needs the lightsim2grid package, which is not installed")
        self.net = net
        self.backend = backend
        self.controllers = controllers
        self.unbalanced = is_unbalanced(net)
        if self.unbalanced:
            _check_three_phase(net, backend, controllers)
        self._solver = {} if backend == "auto" else {"lightsim2grid": backend == "lightsim2grid"}
        self._share_p = _phase_shares(_phase_columns(net.asymmetric_load, "p", "mw"))
        q = _phase_columns(net.asymmetric_load, "q", "mvar")
        # A load without reactive power keeps its active-power split.
        self._share_q = np.where(np.abs(q).sum(axis=1, keepdims=True) > 0.0, _phase_shares(q), self._share_p)
        self._warm = False

    def step(self, injections: Injections) -> StepResult:
        """Set the injections and solve the power flow.

        Parameters
        ----------
        injections : Injections
            Set points for every load, sgen and storage of the net (and
            optionally every asymmetric load).

        Returns
        -------
        result : StepResult
            ``converged=False`` and NaN everywhere if Newton-Raphson did
            not converge.

        Raises
        ------
        ValueError
            If an injection array does not match its element table or holds
            a non-finite value.
        """
        net = self.net
        for table, column, values in (
            ("load", "p_mw", injections.load_p_mw),
            ("load", "q_mvar", injections.load_q_mvar),
            ("sgen", "p_mw", injections.sgen_p_mw),
            ("storage", "p_mw", injections.storage_p_mw),
        ):
            net[table][column] = _checked(values, len(net[table]), f"{table}_{column}")
        for quantity, unit, values, share in (
            ("p", "mw", injections.asymmetric_load_p_mw, self._share_p),
            ("q", "mvar", injections.asymmetric_load_q_mvar, self._share_q),
        ):
            if values is not None:
                total = _checked(values, len(net.asymmetric_load), f"asymmetric_load_{quantity}_{unit}")
                for phase, column in enumerate(_PHASES):
                    net.asymmetric_load[f"{quantity}_{column}_{unit}"] = total * share[:, phase]
        try:
            self._solve()
        except (LoadflowNotConverged, NetCalculationNotConverged):
            self._warm = False
            return self._not_converged()
        self._warm = True
        return self._three_phase_result() if self.unbalanced else self._balanced_result()

    def _solve(self) -> None:
        net = self.net
        # numba's JIT costs 1.5 s per process and gains 10-20 % here.
        if self.unbalanced:
            if self._warm:
                pandapower.runpp_3ph(net, init="results", recycle=_RECYCLE_3PH, numba=False)
            else:
                pandapower.runpp_3ph(net, numba=False)
        elif self.controllers and net.controller["in_service"].astype(bool).any():
            pandapower.runpp(net, init="results" if self._warm else "dc", numba=False,
                             run_control=True, **self._solver)
        elif self._warm:
            pandapower.runpp(net, init="results", recycle=_RECYCLE, **self._solver)
        else:
            pandapower.runpp(net, init="dc", numba=False, **self._solver)

    def _balanced_result(self) -> StepResult:
        net = self.net
        vm = net.res_bus["vm_pu"].to_numpy(dtype=float, copy=True)
        return StepResult(
            converged=True,
            vm_pu=vm,
            va_degree=net.res_bus["va_degree"].to_numpy(dtype=float, copy=True),
            loading_percent=net.res_line["loading_percent"].to_numpy(dtype=float, copy=True),
            trafo_loading_percent=net.res_trafo["loading_percent"].to_numpy(dtype=float, copy=True),
            p_mw=float(net.res_ext_grid["p_mw"].sum()),
            q_mvar=float(net.res_ext_grid["q_mvar"].sum()),
            pl_mw=float(net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum()),
            vm_phase_pu=np.repeat(vm[:, np.newaxis], 3, axis=1),
            vuf_percent=np.where(np.isnan(vm), np.nan, 0.0),
            line_p_from_mw=net.res_line["p_from_mw"].to_numpy(dtype=float, copy=True),
            line_q_from_mvar=net.res_line["q_from_mvar"].to_numpy(dtype=float, copy=True),
        )

    def _three_phase_result(self) -> StepResult:
        net = self.net
        bus = net.res_bus_3ph
        vm = np.column_stack([bus[f"vm_{phase}_pu"].to_numpy(dtype=float) for phase in _PHASES])
        va = np.column_stack([bus[f"va_{phase}_degree"].to_numpy(dtype=float) for phase in _PHASES])
        phasors = vm * np.exp(1j * np.radians(va))
        branches = (net.res_line_3ph, net.res_trafo_3ph)
        return StepResult(
            converged=True,
            vm_pu=vm.mean(axis=1),
            va_degree=va[:, 0].copy(),
            loading_percent=net.res_line_3ph["loading_percent"].to_numpy(dtype=float, copy=True),
            trafo_loading_percent=net.res_trafo_3ph["loading_percent"].to_numpy(dtype=float, copy=True),
            p_mw=float(_phase_columns(net.res_ext_grid_3ph, "p", "mw").sum()),
            q_mvar=float(_phase_columns(net.res_ext_grid_3ph, "q", "mvar").sum()),
            pl_mw=float(sum(_phase_columns(table, "pl", "mw").sum() for table in branches)),
            vm_phase_pu=vm,
            vuf_percent=voltage_unbalance_factor_percent(phasors[:, 0], phasors[:, 1], phasors[:, 2]),
            line_p_from_mw=_phase_columns(net.res_line_3ph, "p", "from_mw").sum(axis=1),
            line_q_from_mvar=_phase_columns(net.res_line_3ph, "q", "from_mvar").sum(axis=1),
        )

    def _not_converged(self) -> StepResult:
        net = self.net
        n_bus = len(net.bus)
        return StepResult(
            converged=False,
            vm_pu=np.full(n_bus, np.nan),
            va_degree=np.full(n_bus, np.nan),
            loading_percent=np.full(len(net.line), np.nan),
            trafo_loading_percent=np.full(len(net.trafo), np.nan),
            p_mw=np.nan,
            q_mvar=np.nan,
            pl_mw=np.nan,
            vm_phase_pu=np.full((n_bus, 3), np.nan),
            vuf_percent=np.full(n_bus, np.nan),
            line_p_from_mw=np.full(len(net.line), np.nan),
            line_q_from_mvar=np.full(len(net.line), np.nan),
        )


def _check_three_phase(net: pandapower.pandapowerNet, backend: str, controllers: bool) -> None:
    if backend == "lightsim2grid":
        raise ValueError(
            "backend='lightsim2grid' solves balanced feeders only; this feeder is unbalanced "
            "(asymmetric loads or sgens) and runs with pandapower's runpp_3ph: use 'auto' or 'pandapower'"
        )
    storage = net.storage.index[net.storage["in_service"].astype(bool)]
    if len(storage):
        raise ValueError(
            f"unbalanced feeder with in-service storage {storage.tolist()}: "
            "pandapower's runpp_3ph ignores net.storage, so batteries would not draw power"
        )
    for table in _THREE_PHASE_TABLES:
        rows = net[table][net[table]["in_service"].astype(bool)]
        ignored = rows.index[~rows["type"].isin(_THREE_PHASE_TYPES)]
        if len(ignored):
            raise ValueError(
                f"unbalanced feeder: net.{table} rows {ignored.tolist()} have type "
                f"{sorted(set(rows.loc[ignored, 'type'].astype(str)))}, which runpp_3ph ignores; "
                f"set type to one of {_THREE_PHASE_TYPES}"
            )
    if controllers and net.controller["in_service"].astype(bool).any():
        raise ValueError(
            "unbalanced feeder with controllers: pandapower controllers read net.res_bus, which "
            "runpp_3ph does not write; pass controllers=False or remove them"
        )


def _phase_columns(table, quantity: str, unit: str) -> np.ndarray:
    """Columns ``<quantity>_a_<unit>`` .. ``_c_`` as an (n, 3) array."""
    return np.column_stack([table[f"{quantity}_{phase}_{unit}"].to_numpy(dtype=float) for phase in _PHASES])


def _phase_shares(values: np.ndarray) -> np.ndarray:
    total = values.sum(axis=1, keepdims=True)
    return np.where(total != 0.0, values / np.where(total != 0.0, total, 1.0), 1.0 / 3.0)


def _checked(values, size: int, label: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != (size,):
        raise ValueError(f"{label} must have shape ({size},), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{label} must be finite, got {array}")
    return array
