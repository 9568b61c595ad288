"""Power-flow step time: `PowerFlow.step` vs a default `pandapower.runpp` per step.

Both solve the reference study's feeder (case33bw with the prosumers' PV
and batteries added by `build_scenario(..., with_devices=True)`) over the
same injection sequence: every load at its profile times its peak, every
PV at its profile times its kWp, batteries idle. That is the sequence the
grid federate sees when no battery moves; the grid federate's own setpoints
come from the DER agents over HELICS and are not reproduced here.

Each repeat starts both from a fresh copy of the feeder, so ours pays its
cold first step in every repeat. One untimed step of each runs first so
that one-time costs of the process (imports, JIT) stay out of the figures.
Without numba installed, a default `runpp` logs a warning on every call;
pandapower's warnings are silenced while the benchmark runs.
"""

from __future__ import annotations

import copy
import logging
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower

from gridledger.grids.powerflow import Injections, PowerFlow
from gridledger.scenario import Scenario, build_scenario
from gridledger.study import load_study

REFERENCE_STUDY = Path(__file__).resolve().parent.parent / "studies" / "baran-wu-p2p.yaml"


@dataclass(frozen=True)
class PowerFlowResult:
    """Step time of ours and of the baseline over the same injections.

    Attributes
    ----------
    steps : int
        Power-flow steps per repeat.
    repeats : int
        Repeats, each from a fresh copy of the feeder.
    ours_ms_per_step, baseline_ms_per_step : float
        Median over the repeats of the mean step time. [ms]
    ratio : float
        ``ours_ms_per_step / baseline_ms_per_step``. [-]
    max_abs_dvm_pu : float
        Largest difference in bus voltage magnitude between the two over
        all steps of the last repeat. [pu]
    """

    steps: int
    repeats: int
    ours_ms_per_step: float
    baseline_ms_per_step: float
    ratio: float
    max_abs_dvm_pu: float


def injection_sequence(sc: Scenario, n_steps: int) -> list[Injections]:
    """The first ``n_steps`` steps: loads and PV from the scenario's profiles, batteries at 0. [MW], [Mvar]"""
    net = sc.net
    pv_rows = [(net.sgen.index.get_loc(sc.devices.sgen[p.name]), i, p.pv_kwp / 1e3)
               for i, p in enumerate(sc.prosumers) if p.name in sc.devices.sgen]
    sequence = []
    for step in range(n_steps):
        sgen_p = np.zeros(len(net.sgen))
        for row, column, kwp_mw in pv_rows:
            sgen_p[row] = sc.pv_pu[step, column] * kwp_mw
        sequence.append(Injections(
            load_p_mw=sc.loads.p_mw[step],
            load_q_mvar=sc.loads.q_mvar[step],
            sgen_p_mw=sgen_p,
            storage_p_mw=np.zeros(len(net.storage)),
        ))
    return sequence


def run_ours(net: pandapower.pandapowerNet, sequence: list[Injections]) -> tuple[float, np.ndarray]:
    """`PowerFlow.step` over ``sequence`` on ``net``; (wall time [s], vm_pu per step and bus)."""
    pf = PowerFlow(net)
    vm = np.empty((len(sequence), len(net.bus)))
    started = time.perf_counter()
    for step, inj in enumerate(sequence):
        vm[step] = pf.step(inj).vm_pu
    return time.perf_counter() - started, vm


def run_baseline(net: pandapower.pandapowerNet, sequence: list[Injections]) -> tuple[float, np.ndarray]:
    """Set the injections and call ``pandapower.runpp(net)`` with its defaults, per step; (wall time [s], vm_pu)."""
    vm = np.empty((len(sequence), len(net.bus)))
    started = time.perf_counter()
    for step, inj in enumerate(sequence):
        runpp_with(net, inj)
        vm[step] = net.res_bus["vm_pu"].to_numpy()
    return time.perf_counter() - started, vm


def runpp_with(net: pandapower.pandapowerNet, inj: Injections) -> None:
    """Write ``inj`` into the load, sgen and storage tables of ``net`` and run a default ``pandapower.runpp``."""
    net.load["p_mw"] = inj.load_p_mw
    net.load["q_mvar"] = inj.load_q_mvar
    net.sgen["p_mw"] = inj.sgen_p_mw
    net.storage["p_mw"] = inj.storage_p_mw
    pandapower.runpp(net)


def powerflow_step_time(n_steps: int | None = None, repeats: int = 3,
                        study_path: Path = REFERENCE_STUDY) -> PowerFlowResult:
    """Mean step time over the study's first ``n_steps`` steps (all of them if None): ours vs default runpp."""
    sc = build_scenario(load_study(study_path), with_devices=True)
    sequence = injection_sequence(sc, sc.study.n_steps if n_steps is None else n_steps)
    pandapower_log = logging.getLogger("pandapower")
    level = pandapower_log.level
    pandapower_log.setLevel(logging.ERROR)
    try:
        run_ours(copy.deepcopy(sc.net), sequence[:2])
        run_baseline(copy.deepcopy(sc.net), sequence[:1])
        ours_s, baseline_s = [], []
        for _ in range(repeats):
            seconds, ours_vm = run_ours(copy.deepcopy(sc.net), sequence)
            ours_s.append(seconds)
            seconds, baseline_vm = run_baseline(copy.deepcopy(sc.net), sequence)
            baseline_s.append(seconds)
    finally:
        pandapower_log.setLevel(level)
    ours_ms = 1e3 * statistics.median(ours_s) / len(sequence)
    baseline_ms = 1e3 * statistics.median(baseline_s) / len(sequence)
    return PowerFlowResult(len(sequence), repeats, ours_ms, baseline_ms, ours_ms / baseline_ms,
                           float(np.max(np.abs(ours_vm - baseline_vm))))
