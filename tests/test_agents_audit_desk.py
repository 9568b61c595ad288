"""The auditor's desk: inputs only from their endpoints, intervals checked once and again when readings come."""

from __future__ import annotations

import pytest

from gridledger.agents.audit_desk import AuditDesk
from gridledger.contracts.keys import derive_account
from gridledger.messages import encode
from gridledger.scenario import build_scenario
from gridledger.study import parse_study

SECRET = bytes(range(32))


@pytest.fixture(scope="module")
def desk_parts():
    study = parse_study({"name": "desk", "duration_s": 1800, "prosumers": {"count": 4},
                         "audit": {"sensors": {"lines": "all"}}})
    return build_scenario(study)


def _readings(sc, interval: int, which: list[int]) -> bytes:
    rows = [{"interval": interval, "prosumer": derive_account(SECRET, f"prosumer/{sc.prosumers[i].name}").address,
             "import_wh": 1000, "export_wh": 0, "pv_wh": 0} for i in which]
    return encode("readings", readings=rows, flags=[], isolated=[])


def test_inputs_from_the_wrong_endpoint_are_dropped_and_a_reading_of_an_unknown_account_ignored(desk_parts):
    desk = AuditDesk(desk_parts, SECRET)
    n = len(desk.auditor.sensors)
    desk.receive([("der/agents", encode("sensors", interval=0, values=[0.0] * n)),
                  ("grid/meters", _readings(desk_parts, 0, [0])),
                  ("ledger/tx", encode("readings", readings=[{"interval": 0, "prosumer": "0x" + "11" * 20,
                                                              "import_wh": 5, "export_wh": 0, "pv_wh": 0}],
                                       flags=[], isolated=[]))])
    assert desk.sensors == {} and desk.readings == {}
    desk.receive([("ledger-z1/tx", _readings(desk_parts, 0, [2])), ("ledger/tx", _readings(desk_parts, 0, [1]))])
    assert desk.readings == {0: {1: (1000, 0)}}


def test_an_interval_is_checked_once_and_again_only_when_more_readings_arrive(desk_parts):
    desk = AuditDesk(desk_parts, SECRET)
    sc = desk_parts
    true = [1.0 if sensor.meas_type == "v" else 0.0 for sensor in desk.auditor.sensors]   # an empty feeder
    desk.receive([("grid/meters", encode("sensors", interval=0, values=true)),
                  ("ledger/tx", _readings(sc, 0, [0, 1, 2]))])
    assert [r.interval for r in desk.check_due(901.25)] == [0]
    assert desk.late[0].tolist() == [0, 0, 0, 1] and desk.checks[0] == 1
    assert desk.check_due(1801.25) == []
    desk.receive([("ledger/tx", _readings(sc, 0, [3]))])
    assert [r.interval for r in desk.check_due(1801.25)] == [0]
    assert desk.checks[0] == 2 and desk.late[0].tolist() == [0, 0, 0, 1]      # late stays as first seen
