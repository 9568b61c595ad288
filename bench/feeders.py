"""Power-flow step time per catalog feeder: pandapower's Newton-Raphson vs lightsim2grid's.

Each balanced feeder of the catalog is stepped with `PowerFlow` over the same
sequence of load levels (its own loads scaled by the shipped daily shape),
once with ``backend="pandapower"`` and once with ``backend="lightsim2grid"``;
the ratio lightsim2grid/pandapower is what `make bench` reports, with the
largest voltage difference between the two (they must agree within 1e-6 pu).
The unbalanced IEEE European LV feeder has only pandapower's three-phase
solver and is reported alone.
"""

from __future__ import annotations

import copy
import datetime as dt
import statistics
import time
from dataclasses import dataclass

import numpy as np

from gridledger.grids.feeders import SIMBENCH_EXAMPLES, FEEDERS, is_unbalanced, load_feeder
from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.grids.profiles import load_profile_pu

FEEDER_NAMES = (*FEEDERS, SIMBENCH_EXAMPLES[0])
START = dt.datetime(2024, 6, 21)


@dataclass(frozen=True)
class FeederStepTime:
    """Median warm step time of one feeder per backend. [ms]"""

    feeder: str
    n_bus: int
    pandapower_ms: float
    lightsim2grid_ms: float | None
    max_abs_dvm_pu: float | None

    @property
    def ratio(self) -> float | None:
        """lightsim2grid over pandapower. [-]"""
        return None if self.lightsim2grid_ms is None else self.lightsim2grid_ms / self.pandapower_ms


def _sequence(net, n_steps: int) -> list[Injections]:
    pu = load_profile_pu(START, np.arange(n_steps) * 300.0, 1, seed=0)[:, 0]
    base = Injections.from_net(net)
    return [Injections(base.load_p_mw * f, base.load_q_mvar * f, base.sgen_p_mw, base.storage_p_mw,
                       None if base.asymmetric_load_p_mw is None else base.asymmetric_load_p_mw * f,
                       None if base.asymmetric_load_q_mvar is None else base.asymmetric_load_q_mvar * f)
            for f in pu]


def _steps(net, sequence: list[Injections], backend: str) -> tuple[float, np.ndarray]:
    pf = PowerFlow(copy.deepcopy(net), backend=backend)
    pf.step(sequence[0])
    times, vm = [], []
    for inj in sequence:
        started = time.perf_counter()
        vm.append(pf.step(inj).vm_pu)
        times.append(time.perf_counter() - started)
    return 1e3 * statistics.median(times), np.array(vm)


def feeder_step_times(n_steps: int = 48, names: tuple[str, ...] = FEEDER_NAMES) -> list[FeederStepTime]:
    """Median warm step time of every feeder in `names` with each available backend."""
    rows = []
    for name in names:
        net = load_feeder(name)
        sequence = _sequence(net, n_steps)
        pp_ms, pp_vm = _steps(net, sequence, "pandapower")
        if is_unbalanced(net):
            rows.append(FeederStepTime(name, len(net.bus), pp_ms, None, None))
            continue
        ls_ms, ls_vm = _steps(net, sequence, "lightsim2grid")
        rows.append(FeederStepTime(name, len(net.bus), pp_ms, ls_ms, float(np.nanmax(np.abs(pp_vm - ls_vm)))))
    return rows
