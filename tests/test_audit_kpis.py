"""Detection scores by attack kind, on a hand-made results set."""

from __future__ import annotations

import numpy as np
import xarray as xr

from gridledger.agents.attacks import KIND_CODE
from gridledger.audit_kpis import audit_kpis
from gridledger.contracts.audit_reference import Status
from gridledger.study import Study


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
    # No positions; every meter truly exports 1 kWh, meter 0 reports its error on top.
    true_export = np.full((4, 3), 1000)
    reported_export = true_export + error
    status = np.zeros((4, 3), dtype=int)
    status[[0, 1], 0] = Status.CONFIRMED                 # both catches confirmed on chain
    status[0, 2] = Status.FLAGGED                         # the false positive still held
    restituted = np.zeros((4, 3))
    restituted[[0, 1], 0] = 150 * 0.08 / 1000            # the gain at the sell price, paid back
    held = np.zeros((4, 3))
    held[0, 2] = 0.01
    return xr.Dataset({"attack_kind": (dims, kind), "attack_energy_error_wh": (dims, error),
                       "audit_flagged": (dims, flagged), "settled": (dims, settled),
                       "audit_flagged_at_s": (dims, flagged_at_s),
                       "meter_rating_w": (("prosumer",), [4000, 4000, 4000]),
                       "position_wh": (dims, np.zeros((4, 3), dtype=int)), "p2p_token": (dims, np.zeros((4, 3))),
                       "true_import_wh": (dims, np.zeros((4, 3), dtype=int)), "true_export_wh": (dims, true_export),
                       "meter_import_wh": (dims, np.zeros((4, 3), dtype=int)), "meter_export_wh": (dims, reported_export),
                       "settled_import_wh": (dims, np.zeros((4, 3), dtype=int)),
                       "settled_export_wh": (dims, np.where(settled == 1, reported_export, 0)),
                       "audit_status": (dims, status), "audit_restituted_token": (dims, restituted),
                       "audit_held_token": (dims, held), "settled_from_estimate": (dims, np.zeros((4, 3), dtype=int)),
                       "audit_isolated_interval": (("prosumer",), [-1, -1, -1])})


STUDY = Study.model_validate({"name": "kpis", "start": "2024-06-21T00:00:00", "duration_s": 3600,
                              "grid": {"feeder": "case33bw"}, "prosumers": {"count": 3}, "audit": {}})


def test_detection_counts_flags_and_refusals_and_scores_visible_attacks_apart():
    audit = audit_kpis(_results(), STUDY)["audit"]
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
    assert audit_kpis(_results().drop_vars("audit_flagged"), STUDY) == {}


def test_tokens_on_false_readings_audit_off_and_on_by_hand():
    """Off: 3 x 150 Wh + 50 Wh over-reported at the sell price 0.08 token/kWh = 0.040 token (the refused foreign
    key gained nothing). On: the two confirmed catches paid back; the 50 Wh and the missed 150 Wh stay paid."""
    audit = audit_kpis(_results(), STUDY)["audit"]
    tokens = audit["false_reading_tokens"]
    assert tokens == {"audit_off_token": 0.04, "audit_on_token": 0.016, "share_paid": 0.4}
    assert audit["held_from_honest_token"] == 0.01 and audit["isolated_meters"] == 0
