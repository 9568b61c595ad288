"""What a study resolves to physically: feeder, prosumers, devices and profiles.

Every federate and the launcher build the same `Scenario` from the same
study file, so they agree on names, placement and profiles without sending
them to each other. Profiles are indexed by position in ``net.load``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandapower

from gridledger.grids.feeders import load_feeder
from gridledger.grids.profiles import load_profile_pu, pv_profile_pu
from gridledger.grids.prosumers import DeviceIndex, Prosumer, add_prosumer_devices, place_prosumers
from gridledger.study import Study, load_study

STUDY_FILE = "study.yaml"


@dataclass
class Scenario:
    """A study's feeder with prosumers placed and its per-step profiles.

    Attributes
    ----------
    load_pu, pv_pu : ndarray (step, load)
        Actual load (per unit of peak) and PV output (per kWp) with noise.
    load_pu_expected, pv_pu_expected : ndarray (step, load)
        The noise-free shapes, which agents use as their forecast.
    load_peak_p_mw, load_peak_q_mvar : ndarray (load,)
        Peak of each ``net.load`` row. [MW], [Mvar]
    """

    study: Study
    net: pandapower.pandapowerNet
    prosumers: list[Prosumer]
    devices: DeviceIndex | None
    times_s: np.ndarray
    load_pu: np.ndarray
    pv_pu: np.ndarray
    load_pu_expected: np.ndarray
    pv_pu_expected: np.ndarray
    load_peak_p_mw: np.ndarray
    load_peak_q_mvar: np.ndarray

    def column(self, prosumer: Prosumer) -> int:
        """Profile column of a prosumer (its load's position in ``net.load``)."""
        return self.net.load.index.get_loc(prosumer.load_index)


def build_scenario(study: Study, with_devices: bool = False) -> Scenario:
    """Place prosumers and compute profiles; add PV/battery elements if `with_devices`."""
    net = load_feeder(study.grid.feeder)
    pros = study.prosumers
    prosumers = place_prosumers(
        net, pros.count, study.seed, pros.pv.share, pros.pv.kwp_per_kw_load,
        pros.battery.share, pros.battery.kwh_per_kw_load, pros.battery.kw_per_kwh, pros.buses,
    )
    devices = add_prosumer_devices(net, prosumers) if with_devices else None
    times_s = np.arange(study.n_steps, dtype=float) * study.power_flow_step_s
    n_load = len(net.load)
    lat = study.grid.pv_latitude_deg
    return Scenario(
        study=study,
        net=net,
        prosumers=prosumers,
        devices=devices,
        times_s=times_s,
        load_pu=load_profile_pu(study.start, times_s, n_load, study.seed),
        pv_pu=pv_profile_pu(study.start, times_s, n_load, study.seed, latitude_deg=lat),
        load_pu_expected=load_profile_pu(study.start, times_s, n_load, study.seed, noise=False),
        pv_pu_expected=pv_profile_pu(study.start, times_s, n_load, study.seed, noise=False, latitude_deg=lat),
        load_peak_p_mw=net.load.p_mw.to_numpy(copy=True),
        load_peak_q_mvar=net.load.q_mvar.to_numpy(copy=True),
    )


def load_scenario(run_dir: Path, with_devices: bool = False) -> Scenario:
    """The scenario of a prepared run directory."""
    return build_scenario(load_study(Path(run_dir) / STUDY_FILE), with_devices)
