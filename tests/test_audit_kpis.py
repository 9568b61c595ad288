"""Detection scores by attack kind, on a hand-made results set."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridledger.agents.attacks import KIND_CODE
from gridledger.audit_kpis import audit_kpis


def _results() -> xr.Dataset:
    """4 intervals x 3 meters of 4 kW (10 % of rating x 15 min = 100 Wh)."""
    kind = np.full((4, 3), -1)
    kind[:, 0] = KIND_CODE["over-report-export"]
    kind[2:, 1] = KIND_CODE["foreign-key"]
    error = np.zeros((4, 3), dtype=int)
    error[:, 0] = [150, 150, 50, 150]                    # the third is below the visible 100 Wh
    flagged = np.zeros((4, 3), dtype=int)
    flagged[[0, 1], 0] = 1                               # caught twice, missed once visible, once invisible
    flagged[0, 2] = 1                                    # a false positive
    settled = np.ones((4, 3), dtype=int)
    settled[2:, 1] = 0                                   # the foreign key's readings refused
    flagged_at_s = np.where(flagged == 1, (np.arange(4)[:, np.newaxis] + 1) * 900 + 1.25, np.nan)
    flagged_at_s[1, 0] += 900                            # caught one interval late
    dims = ("interval", "prosumer")
    return xr.Dataset({"attack_kind": (dims, kind), "attack_energy_error_wh": (dims, error),
                       "audit_flagged": (dims, flagged), "settled": (dims, settled),
                       "audit_flagged_at_s": (dims, flagged_at_s),
                       "meter_rating_w": (("prosumer",), [4000, 4000, 4000])})


def test_detection_counts_flags_and_refusals_and_scores_visible_attacks_apart():
    audit = audit_kpis(_results(), interval_s=900)["audit"]
    over = audit["by_kind"]["over-report-export"]
    assert (over["meter_intervals"], over["detected"], over["visible"]) == (4, 2, 3)
    assert over["visible_detection_rate"] == round(2 / 3, 6) and over["detection_rate"] == 0.5
    assert over["false_energy_settled_kwh"] == 0.5 and over["false_energy_flagged_kwh"] == 0.3
    assert over["time_to_detection_s"] == (1.25 + 901.25) / 2
    key = audit["by_kind"]["foreign-key"]
    assert (key["meter_intervals"], key["detected"], key["refused_by_chain"]) == (2, 2, 2)
    assert audit["false_positives"] == 1 and audit["false_positive_rate"] == round(1 / 6, 6)   # 6 honest settled
    assert audit["visible_energy_attacks"] == 3 and audit["visible_detection_rate"] == round(2 / 3, 6)


def test_without_an_auditor_there_are_no_scores():
    assert audit_kpis(_results().drop_vars("audit_flagged"), interval_s=900) == {}
