"""The operator's grid sensors in the grid federate: each interval's readings, noisy, sent to the auditor.

What the sensors are and how they read is `gridledger.grids.sensors`;
their noise comes from a generator seeded by the run secret (not the
published study seed: a meter that could predict the noise could hide
inside it), so the same run secret reproduces a run.
"""

from __future__ import annotations

import numpy as np

from gridledger.agents.feeder_record import FeederRecord
from gridledger.contracts.keys import derive_seed
from gridledger.federation import AUDITOR_ENDPOINT
from gridledger.grids.sensors import read, sensor_set, true_values
from gridledger.messages import encode
from gridledger.scenario import Scenario


class GridSensors:
    """Reads the study's ``audit.sensors`` at the end of every market interval."""

    def __init__(self, sc: Scenario, secret: bytes):
        self.sc = sc
        self.sensors = sensor_set(sc.net, sc.study.audit.sensors)
        self.rng = np.random.default_rng(derive_seed(secret, "grid/sensors"))

    def close_interval(self, step: int, record: FeederRecord) -> list[tuple[str, bytes]]:
        """At the first step of an interval, the previous interval's ``sensors`` message; nothing at other steps."""
        per_interval = self.sc.study.steps_per_interval
        if not step or step % per_interval:
            return []
        rows = slice(step - per_interval, step)
        true = true_values(self.sensors, self.sc.net, vm_pu=record.vm_pu[rows], bus_p_mw=record.bus_p_mw[rows],
                           bus_q_mvar=record.bus_q_mvar[rows], substation_p_mw=record.substation["p_mw"][rows],
                           substation_q_mvar=record.substation["q_mvar"][rows],
                           line_p_from_mw=record.line_p_from_mw[rows], line_q_from_mvar=record.line_q_from_mvar[rows])
        values = read(self.sensors, true, self.rng)
        return [(AUDITOR_ENDPOINT, encode("sensors", interval=step // per_interval - 1,
                                          values=[float(v) for v in values]))]
