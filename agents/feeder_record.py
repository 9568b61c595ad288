"""What the grid records: each step's power flow, limit flags and setpoints, each interval's meter registers.

Arrays are NaN until their step or interval is done, integer meter
registers and attack codes their ``_FillValue`` (`NOT_METERED`,
`ATTACK_KIND_FILL`, read back as NaN), so the results of a run that
stopped early show where it stopped.
"""

from __future__ import annotations

import numpy as np

from gridledger.grids.feeders import is_unbalanced
from gridledger.grids.limits import overload, voltage_violation
from gridledger.grids.powerflow import StepResult
from gridledger.grids.stability import ansi_c84_1_band, voltage_stability_index
from gridledger.agents.attacks import NO_ATTACK
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.results import Part
from gridledger.scenario import Scenario
from gridledger.study_audit import ATTACK_KINDS
from gridledger.units import KW, KWH, MVAR, MW, PERCENT, PU

METER_REGISTERS = ("import_wh", "export_wh", "pv_wh", "battery_wh")
"""A meter reading's registers, in the order `Settlement.post_reading` takes them. [Wh]"""
NOT_METERED = -1
"""A meter register of an interval not (yet) metered: its ``_FillValue``. [Wh]"""
ATTACK_KIND_FILL = -32767
"""``attack_kind`` of an interval not (yet) metered: its ``_FillValue``, netCDF's default fill of a short
(`NO_ATTACK`, -1, is the flag "none")."""


class FeederRecord:
    """The grid federate's results, indexed by power-flow step and market interval."""

    def __init__(self, sc: Scenario):
        study, net = sc.study, sc.net
        steps, n_bus, n_line, n_pro = study.n_steps, len(net.bus), len(net.line), len(sc.prosumers)
        self.sc = sc
        self.unbalanced = is_unbalanced(net)
        self.vm_pu = np.full((steps, n_bus), np.nan)
        self.vm_phase_pu = np.full((steps, n_bus, 3), np.nan)
        self.vuf_percent = np.full((steps, n_bus), np.nan)
        self.si_pu = np.full((steps, n_bus), np.nan)
        self.trafo_loading_percent = np.full((steps, len(net.trafo)), np.nan)
        self.range_b_violation = np.zeros((steps, n_bus), dtype=np.int8)
        self.va_degree = np.full((steps, n_bus), np.nan)
        self.loading_percent = np.full((steps, n_line), np.nan)
        self.line_p_from_mw = np.full((steps, n_line), np.nan)
        self.line_q_from_mvar = np.full((steps, n_line), np.nan)
        self.bus_p_mw = np.full((steps, n_bus), np.nan)
        self.bus_q_mvar = np.full((steps, n_bus), np.nan)
        self.substation = {k: np.full(steps, np.nan) for k in ("p_mw", "q_mvar", "pl_mw")}
        self.converged = np.zeros(steps, dtype=np.int8)
        self.voltage_violation = np.zeros((steps, n_bus), dtype=np.int8)
        self.overload = np.zeros((steps, n_line), dtype=np.int8)
        self.export_mw = np.full((steps, n_pro), np.nan)
        self.pv_p_mw = np.full((steps, n_pro), np.nan)
        self.pv_curtailed_p_mw = np.full((steps, n_pro), np.nan)
        self.battery_p_mw = np.full((steps, n_pro), np.nan)
        self.meter_wh = {name: np.full((study.n_intervals, n_pro), NOT_METERED, dtype=np.int64)
                         for name in METER_REGISTERS}
        self.attack_kind = np.full((study.n_intervals, n_pro), ATTACK_KIND_FILL, dtype=np.int16)
        self.attack_error_wh = np.zeros((study.n_intervals, n_pro), dtype=np.int64)
        self.true_wh = {name: np.zeros((study.n_intervals, n_pro), dtype=np.int64) for name in ("import", "export")}
        self.cut = np.zeros((steps, n_bus), dtype=np.int8)
        self.unserved_p_mw = np.full((steps, n_bus), np.nan)
        self.import_cap_mw = np.full(steps, np.nan)
        self.islanded = np.zeros(steps, dtype=np.int8)
        self.grid_forming = np.zeros((steps, n_pro), dtype=np.int8)
        self.steps_done = 0

    def step(self, step: int, result: StepResult, bus_load: tuple[np.ndarray, np.ndarray],
             setpoints: dict[str, np.ndarray]) -> None:
        """Keep one solved step.

        Parameters
        ----------
        step : int
            Power-flow step.
        result : StepResult
            Its power flow.
        bus_load : (ndarray, ndarray)
            Net active and reactive load per bus (`gridledger.agents.feeder.bus_net_load`). [MW], [Mvar]
        setpoints : dict of ndarray
            What the prosumers' devices delivered, per prosumer (``load_p_mw``,
            ``pv_p_mw``, ``battery_p_mw``, ``pv_curtailed_p_mw``). [MW]
        """
        net, limits = self.sc.net, self.sc.study.grid.limits
        self.vm_pu[step] = result.vm_pu
        self.vm_phase_pu[step] = result.vm_phase_pu
        self.vuf_percent[step] = result.vuf_percent
        self.trafo_loading_percent[step] = result.trafo_loading_percent
        if result.converged and not self.unbalanced:
            self.si_pu[step] = voltage_stability_index(net, result)
        self.range_b_violation[step] = ansi_c84_1_band(result.vm_phase_pu, range="B").violation.any(axis=1)
        self.va_degree[step] = result.va_degree
        self.loading_percent[step] = result.loading_percent
        self.line_p_from_mw[step] = result.line_p_from_mw
        self.line_q_from_mvar[step] = result.line_q_from_mvar
        for key in self.substation:
            self.substation[key][step] = getattr(result, key)
        self.converged[step] = result.converged
        self.voltage_violation[step] = voltage_violation(result.vm_phase_pu, limits.vm_min_pu,
                                                         limits.vm_max_pu).any(axis=1)
        self.overload[step] = overload(result.loading_percent, limits.max_loading_percent)
        self.bus_p_mw[step], self.bus_q_mvar[step] = bus_load
        # Positive = export at the meter; the battery's sign is pandapower's (positive = charging).
        self.export_mw[step] = setpoints["pv_p_mw"] - setpoints["load_p_mw"] - setpoints["battery_p_mw"]
        self.pv_p_mw[step] = setpoints["pv_p_mw"]
        self.pv_curtailed_p_mw[step] = setpoints["pv_curtailed_p_mw"]
        self.battery_p_mw[step] = setpoints["battery_p_mw"]
        self.steps_done = step + 1

    def shed(self, step: int, cap_mw: float | None, unserved_mw: np.ndarray, cut: frozenset[int],
             former: int | None = None) -> None:
        """Keep a step's import cap (None: none), the load buses the rotation cut and what their loads would have
        drawn (`gridledger.agents.feeder.cut_buses`) [MW]; on an island step, the position of the prosumer whose
        battery formed the grid (None: the feeder was dark)."""
        self.import_cap_mw[step] = np.nan if cap_mw is None else cap_mw
        self.cut[step] = self.sc.net.bus.index.isin(sorted(cut))
        self.unserved_p_mw[step] = unserved_mw
        self.islanded[step] = self.sc.study.events.islanded_at(step * self.sc.study.power_flow_step_s)
        if former is not None:
            self.grid_forming[step, former] = 1

    def meter(self, interval: int, registers: dict[str, np.ndarray]) -> None:
        """Keep one interval's meter registers (keys `METER_REGISTERS`), until `attacked` says otherwise the true
        ones too and no attack. [Wh]"""
        for name in METER_REGISTERS:
            self.meter_wh[name][interval] = registers[name]
        self.attack_kind[interval] = NO_ATTACK
        for name in self.true_wh:
            self.true_wh[name][interval] = registers[f"{name}_wh"]

    def attacked(self, interval: int, kind_code: np.ndarray, error_wh: np.ndarray, true_import_wh: np.ndarray,
                 true_export_wh: np.ndarray) -> None:
        """Keep one interval's ground truth, after `meter`: each meter's attack kind code (`NO_ATTACK` for none), its
        energy error and the registers an honest meter would have read (import including bypassed load). [Wh]"""
        self.attack_kind[interval] = kind_code
        self.attack_error_wh[interval] = error_wh
        self.true_wh["import"][interval] = true_import_wh
        self.true_wh["export"][interval] = true_export_wh

    def part(self) -> Part:
        """The grid's results part."""
        sc = self.sc
        part = Part(sc, "grid", steps_completed=self.steps_done)
        part.add("vm_pu", ("time", "bus"), self.vm_pu, PU, "bus voltage magnitude")
        part.add("va_degree", ("time", "bus"), self.va_degree, "degree", "bus voltage angle")
        part.add("loading_percent", ("time", "line"), self.loading_percent, PERCENT, "line loading")
        part.add("line_p_from_mw", ("time", "line"), self.line_p_from_mw, MW, "active power into the line at its from bus")
        part.add("line_max_i_ka", ("line",), sc.net.line.max_i_ka.to_numpy(dtype=float), "kA",
                 "thermal rating of the line (pandapower max_i_ka; MATPOWER cases give unlimited lines 99999)")
        part.add("line_q_from_mvar", ("time", "line"), self.line_q_from_mvar, MVAR,
                 "reactive power into the line at its from bus")
        if len(sc.net.trafo):
            part.add("trafo_loading_percent", ("time", "trafo"), self.trafo_loading_percent, PERCENT,
                     "transformer loading")
        if self.unbalanced:
            part.add("vm_phase_pu", ("time", "bus", "phase"), self.vm_phase_pu, PU,
                     "phase-to-neutral voltage magnitude per phase")
            part.add("vuf_percent", ("time", "bus"), self.vuf_percent, PERCENT,
                     "voltage unbalance factor |V2|/|V1| (IEC 61000-4-30)")
        else:
            part.add("si_pu", ("time", "bus"), self.si_pu, PU,
                     "voltage stability index (Chakravorty and Das 2001)")
        part.add("range_b_violation", ("time", "bus"), self.range_b_violation, "1",
                 "voltage outside ANSI C84.1 Range B on any phase")
        part.add("p_mw", ("time", "bus"), self.bus_p_mw, MW, "net active load at bus (load - generation + charging)")
        part.add("q_mvar", ("time", "bus"), self.bus_q_mvar, MVAR, "net reactive load at bus")
        part.add("substation_p_mw", ("time",), self.substation["p_mw"], MW, "substation import (external grid)")
        part.add("substation_q_mvar", ("time",), self.substation["q_mvar"], MVAR, "substation reactive import")
        part.add("pl_mw", ("time",), self.substation["pl_mw"], MW, "feeder losses")
        part.add("converged", ("time",), self.converged, "1", "power flow converged")
        part.add("voltage_violation", ("time", "bus"), self.voltage_violation, "1",
                 "voltage outside the study's limits on any phase")
        part.add("overload", ("time", "line"), self.overload, "1", "line loading above limit")
        part.add("export_mw", ("time", "prosumer"), self.export_mw, MW, "prosumer net export at the meter")
        if sc.study.events.import_caps:
            part.add("import_cap_mw", ("time",), self.import_cap_mw, MW,
                     "the substation's import cap of the step (events.import_caps; NaN: none)")
            part.add("bus_cut", ("time", "bus"), self.cut, "1",
                     "whole load bus cut by the operator's last-resort rotation")
            part.add("unserved_p_mw", ("time", "bus"), self.unserved_p_mw, MW,
                     "active load the rotation left unserved at the bus")
        if any(cap.island for cap in sc.study.events.import_caps):
            part.add("islanded", ("time",), self.islanded, "1", "substation open, the feeder islanded")
            part.add("grid_forming", ("time", "prosumer"), self.grid_forming, "1",
                     "the prosumer's battery formed the island's grid")
        part.add("pv_kwp", ("prosumer",), [p.pv_kwp for p in sc.prosumers], KW,
                 "installed PV peak power (kWp, at standard test conditions), 0 if none")
        part.add("battery_energy_kwh", ("prosumer",), [p.battery_energy_kwh for p in sc.prosumers], KWH,
                 "usable battery capacity, 0 if none")
        part.add("battery_power_kw", ("prosumer",), [p.battery_power_kw for p in sc.prosumers], KW,
                 "battery charge and discharge power limit, 0 if none")
        for name, what in zip(METER_REGISTERS, ("import", "export", "PV generation", "battery discharge")):
            part.add(f"meter_{name}", ("interval", "prosumer"), self.meter_wh[name], "Wh",
                     f"metered {what} per interval", fill_value=NOT_METERED)
        if sc.study.attacks or sc.study.audit is not None:
            part.add("attack_kind", ("interval", "prosumer"), self.attack_kind, "1",
                     "attack on the meter-interval, ground truth", fill_value=ATTACK_KIND_FILL)
            part.ds["attack_kind"].attrs.update(flag_values=np.arange(NO_ATTACK, len(ATTACK_KINDS), dtype=np.int16),
                                                flag_meanings=" ".join(("none",) + ATTACK_KINDS))
            part.add("attack_energy_error_wh", ("interval", "prosumer"), self.attack_error_wh, "Wh",
                     "ground truth: reported minus true net export of the meter-interval")
            for name in ("import", "export"):
                part.add(f"true_{name}_wh", ("interval", "prosumer"), self.true_wh[name], "Wh",
                         f"ground truth: the {name} an honest meter would have read (bypassed load included)")
            part.add("meter_rating_w", ("prosumer",), [lim.meter_rating_w for lim in prosumer_limits(sc)], "W",
                     "registered meter rating")
        return part
