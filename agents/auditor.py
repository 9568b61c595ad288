"""The auditor (the DSO's role): meter readings checked against the grid's physics, interval by interval.

For market interval k the auditor builds one WLS measurement set
(`gridledger.grids.estimation`) over the feeder:

- the operator's grid sensors (`gridledger.grids.sensors`), their interval means;
- per bus with prosumers, the P injection their meters read, as average power
  ((import - export) / interval), σ = ``meter_sigma_percent`` of the prosumers'
  meter ratings (a meter's accuracy class is stated against its rating), plus
  the forecast of any other element on the bus;
- pseudo-measurements where nothing is metered: each bus's reactive
  load from the load forecast (σ = 30 % of the bus's peak reactive load,
  at least 1 kvar) and the feeder's own loads and generators at buses
  without prosumers (σ = 10 % of their forecast, at least 1 kW);
- zero injection (σ = 1 W) at buses with nothing connected.

A reading that has not arrived (delayed) is replaced by a forecast
pseudo-measurement (the prosumer's last reading, σ = 25 % of its meter
rating, after Asefi et al.: estimate with what has arrived, forecasts for
the rest); `Auditor.check` is called again when it arrives, and the new
result replaces the old. Then the chi-squared test and the largest
normalized residual identification; a removed meter measurement flags the
prosumers on its bus (only meter measurements are suspects: the operator
trusts its own sensors, so a sensor fault would be blamed on a meter near
it). Beside it the utility's simplest check, the feeder
energy balance: substation energy minus the estimated losses minus what the
meters and forecasts account for.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from eth_utils import keccak

from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.grids.estimation import EstimationFailed, identify_bad_data
from gridledger.grids.sensors import Sensor, sensor_set
from gridledger.scenario import Scenario
from gridledger.study_audit import Audit
from gridledger.units import KW_PER_MW, SECONDS_PER_HOUR, W_PER_MW, WH_PER_MWH

PSEUDO_Q_SHARE = 0.3
PSEUDO_P_SHARE = 0.1
PSEUDO_FLOOR_MW = 1.0 / KW_PER_MW
ZERO_INJECTION_SIGMA_MW = 1e-6
LATE_FORECAST_SHARE = 0.25
MEASUREMENT_COLUMNS = ["name", "measurement_type", "element_type", "element", "value", "std_dev", "side"]
"""pandapower's ``net.measurement`` columns."""


@dataclass
class IntervalAudit:
    """What the auditor found for one interval.

    ``flagged`` maps a prosumer's position to the normalized residual of its
    bus's meter measurement; ``estimate_wh`` maps it (and each prosumer
    whose estimate was asked for) to the net import its bus's estimated
    injection gives it without its meter (negative = export) [Wh], shared
    evenly among such prosumers on one bus; ``missing``
    lists prosumers whose reading had not arrived (forecast used);
    ``energy_balance_wh`` is substation energy - estimated losses - metered
    and forecast consumption [Wh]; ``evidence`` is the Keccak-256 hash of the
    measurement set the estimate used (`evidence_hash`).
    """

    interval: int
    objective: float
    chi2_threshold: float
    flagged: dict[int, float] = field(default_factory=dict)
    missing: tuple[int, ...] = ()
    vm_pu: np.ndarray | None = None
    energy_balance_wh: float = float("nan")
    estimate_wh: dict[int, int] = field(default_factory=dict)
    evidence: bytes = b""
    failed: str | None = None

    @property
    def bad_data(self) -> bool:
        """Whether the chi-squared test fired on the first estimate."""
        return self.objective > self.chi2_threshold


def evidence_hash(measurements: pd.DataFrame) -> bytes:
    """Keccak-256 of the measurement set, one ``name,value,std_dev`` line per row with values to 1e-9. [32 bytes]

    What the auditor posts with a flag, so that anyone holding the same
    sensor and meter data can check which measurements it judged by.
    """
    lines = "\n".join(f"{r.name},{r.value:.9f},{r.std_dev:.9f}" for r in measurements.itertuples(index=False))
    return keccak(lines.encode())


class Auditor:
    """Per-interval state estimation and bad-data identification for one feeder."""

    def __init__(self, sc: Scenario, spec: Audit):
        self.sc, self.spec = sc, spec
        net = copy.deepcopy(sc.net)
        net.controller = net.controller.iloc[0:0]
        net.measurement = net.measurement.iloc[0:0]
        self.net = net
        self.sensors: tuple[Sensor, ...] = sensor_set(net, spec.sensors)
        self.rating_mw = np.array([lim.meter_rating_w for lim in prosumer_limits(sc)]) / W_PER_MW
        self.prosumers_at: dict[int, list[int]] = {}
        for i, p in enumerate(sc.prosumers):
            self.prosumers_at.setdefault(int(p.bus), []).append(i)
        self.steps = sc.study.steps_per_interval
        self.interval_h = sc.study.market_interval_s / SECONDS_PER_HOUR
        self.last_reading: dict[int, tuple[int, int]] = {}
        self.slack = {int(b) for b in net.ext_grid.bus}
        self._pseudo_p = np.zeros(len(net.bus))

    def check(self, interval: int, sensor_values: np.ndarray, readings_wh: dict[int, tuple[int, int]],
              estimate_for: frozenset[int] = frozenset()) -> IntervalAudit:
        """Audit `interval` from the sensors' readings and the meters' (import_wh, export_wh) by prosumer position.

        `estimate_for` names prosumers (isolated meters) whose estimate is
        wanted besides the flagged ones'.
        """
        metered_mw, missing = self._meter_mw(readings_wh)
        rows, meter_row = self._measurements(interval, sensor_values, metered_mw, missing)
        evidence = evidence_hash(rows)
        net = self.net
        net.measurement = rows
        try:
            first, final, removed = identify_bad_data(net, self.spec.rn_threshold, self.spec.chi2_alpha,
                                                      max_removals=len(meter_row), suspects=meter_row.keys())
        except EstimationFailed as exc:
            return IntervalAudit(interval, float("nan"), float("nan"), missing=tuple(sorted(missing)), failed=str(exc))
        flagged = {i: rn for row, rn in removed if row in meter_row for i in self.prosumers_at[meter_row[row]]}
        return IntervalAudit(
            interval=interval, objective=first.objective, chi2_threshold=first.chi2_threshold, flagged=flagged,
            missing=tuple(sorted(missing)), vm_pu=final.vm_pu.to_numpy(copy=True),
            energy_balance_wh=self._energy_balance_wh(sensor_values, metered_mw, self._pseudo_p),
            estimate_wh=self._estimates_wh(set(flagged) | set(estimate_for), metered_mw), evidence=evidence,
        )

    def _estimates_wh(self, targets: set[int], metered_mw: np.ndarray) -> dict[int, int]:
        """Net import of each target prosumer from its bus's estimated injection. [Wh]

        The bus's estimated net load less the forecast of its other elements
        and the readings (or, if late, forecasts) of its other prosumers,
        shared evenly among its targets.
        """
        out = {}
        position = self.net.bus.index.get_indexer
        for i in sorted(targets):
            bus = int(self.sc.prosumers[i].bus)
            on_bus = [j for j in self.prosumers_at[bus] if j in targets]
            others_mw = sum(metered_mw[j] for j in self.prosumers_at[bus] if j not in targets)
            p_mw = float(self.net.res_bus_est.p_mw.at[bus]) - self._pseudo_p[position([bus])[0]] - others_mw
            out[i] = round(p_mw / len(on_bus) * self.interval_h * WH_PER_MWH)
        return out

    def _measurements(self, interval: int, sensor_values: np.ndarray, metered_mw: np.ndarray,
                      missing: set[int]) -> tuple[pd.DataFrame, dict[int, int]]:
        """``net.measurement`` rows of the interval, and the row of each bus's meter measurement -> its bus."""
        pseudo_p, sigma_p, pseudo_q, sigma_q = self._forecasts(self._steps(interval))
        self._pseudo_p = pseudo_p
        rows = [(s.name, s.meas_type, s.element_type, s.element, float(v), s.sigma, s.side)
                for s, v in zip(self.sensors, sensor_values)]
        meter_row: dict[int, int] = {}
        for position, bus in enumerate(self.net.bus.index):
            bus = int(bus)
            if bus in self.slack:
                continue
            on_bus = self.prosumers_at.get(bus, [])
            p = pseudo_p[position] + sum(metered_mw[i] for i in on_bus)
            sp = np.sqrt(sigma_p[position] ** 2 + sum(self._meter_sigma(i, i in missing) ** 2 for i in on_bus))
            sq = sigma_q[position]
            if sp == 0.0:
                sp = sq = ZERO_INJECTION_SIGMA_MW
            if on_bus:
                meter_row[len(rows)] = bus
            rows.append((f"bus{bus}/p", "p", "bus", bus, float(p), float(sp), None))
            rows.append((f"bus{bus}/q", "q", "bus", bus, float(pseudo_q[position]),
                         float(max(sq, ZERO_INJECTION_SIGMA_MW)), None))
        table = pd.DataFrame(rows, columns=MEASUREMENT_COLUMNS).astype({"element": np.uint32})
        return table, meter_row

    def _steps(self, interval: int) -> slice:
        return slice(interval * self.steps, (interval + 1) * self.steps)

    def _meter_mw(self, readings_wh: dict[int, tuple[int, int]]) -> tuple[np.ndarray, set[int]]:
        """Average net load of each prosumer over the interval from its reading, or its last one if missing. [MW]"""
        out = np.zeros(len(self.rating_mw))
        missing = set()
        for i in range(len(out)):
            reading = readings_wh.get(i)
            if reading is None:
                missing.add(i)
                reading = self.last_reading.get(i, (0, 0))
            else:
                self.last_reading[i] = reading
            out[i] = (reading[0] - reading[1]) / WH_PER_MWH / self.interval_h
        return out, missing

    def _meter_sigma(self, prosumer: int, forecast: bool) -> float:
        share = LATE_FORECAST_SHARE if forecast else self.spec.meter_sigma_percent / 100.0
        return share * self.rating_mw[prosumer]

    def _forecasts(self, rows: slice) -> tuple[np.ndarray, ...]:
        """Per bus: forecast P of non-prosumer elements and its σ, forecast Q of all loads and its σ. [MW], [Mvar]"""
        sc, net = self.sc, self.net
        n = len(net.bus)
        at = net.bus.index.get_indexer
        taken = {p.load_index for p in sc.prosumers if p.load_element == "load"}
        p, vp, q = np.zeros(n), np.zeros(n), np.zeros(n)
        peak_q = np.zeros(n)
        load_p = sc.loads_expected.p_mw[rows].mean(axis=0)
        load_q = sc.loads_expected.q_mvar[rows].mean(axis=0)
        own = np.array([index not in taken for index in net.load.index])
        np.add.at(p, at(net.load.bus[own]), load_p[own])
        np.add.at(vp, at(net.load.bus[own]), (np.maximum(PSEUDO_P_SHARE * np.abs(load_p[own]), PSEUDO_FLOOR_MW)) ** 2)
        np.add.at(q, at(net.load.bus), load_q)
        np.add.at(peak_q, at(net.load.bus), np.abs(net.load.q_mvar.to_numpy()))
        n_own_sgen = sc.sgen_p_mw.shape[1]
        if n_own_sgen:
            sgen_p = sc.sgen_p_mw[rows].mean(axis=0)
            buses = net.sgen.bus.to_numpy()[:n_own_sgen]
            np.add.at(p, at(buses), -sgen_p)
            np.add.at(vp, at(buses), (np.maximum(PSEUDO_P_SHARE * np.abs(sgen_p), PSEUDO_FLOOR_MW)) ** 2)
        connected = np.zeros(n, dtype=bool)
        for table in (net.load, net.sgen, net.storage):
            connected[at(table.bus)] = True
        sigma_q = np.where(connected, np.maximum(PSEUDO_Q_SHARE * peak_q, PSEUDO_FLOOR_MW), 0.0)
        return p, np.sqrt(vp), q, sigma_q

    def _energy_balance_wh(self, sensor_values: np.ndarray, metered_mw: np.ndarray, pseudo_p: np.ndarray) -> float:
        """Substation energy - estimated losses - (meters + forecasts) over the interval. [Wh]"""
        by_name = dict(zip((s.name for s in self.sensors), sensor_values))
        imported_mw = -by_name["substation/p"]
        losses_mw = float(self.net.res_line_est.pl_mw.sum() + (self.net.res_trafo_est.pl_mw.sum()
                                                                 if "res_trafo_est" in self.net and len(self.net.trafo) else 0.0))
        off_slack = ~self.net.bus.index.isin(self.net.ext_grid.bus)
        consumed_mw = float(metered_mw.sum() + pseudo_p[off_slack].sum())
        return (imported_mw - losses_mw - consumed_mw) * self.interval_h * WH_PER_MWH
