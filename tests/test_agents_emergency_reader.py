"""A household's store serves a service account its recent data only while the chain's emergency access allows it.

The refusal is read from a real ``EmergencyAccess`` through
``contracts.emergency.read`` at the head; the stores are real SQLite files.
Cast: the operator declares and grants; ``tech`` (no registry role) is the
service account, ``helper`` one never granted; p0 and p1 are households.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

from gridledger.agents import emergency_reader as er
from gridledger.agents.data_store import COLUMNS, store_path, write_store
from gridledger.contracts import emergency as em
from tests.contract_helpers import Market, new_market

HOUR_S = 3600
STEP_S = 300
STEPS = 2 * 24 * 12                                   # two days of 5-minute steps


class Scene:
    """A market with two households' stores (two days each) and its emergency access, before any emergency."""

    def __init__(self, tmp_path):
        self.market: Market = new_market(2)
        self.address = em.deploy_emergency_access(self.market.chain, self.market.operator,
                                                  self.market.addresses.registry)
        self.tech, self.helper = self.market.outsider, self.market.dso
        self.p0, self.p1 = (p.address for p in self.market.prosumers)
        self.values_kw = {}
        for i, household in enumerate((self.p0, self.p1)):
            steps = np.arange(STEPS, dtype=float)
            self.values_kw[household] = {c: steps + 1000 * i + 0.25 * j for j, c in enumerate(COLUMNS)}
            write_store(store_path(tmp_path, f"p{i}"), steps * STEP_S, self.values_kw[household])
        self.reader = er.EmergencyReader({self.p0: store_path(tmp_path, "p0"), self.p1: store_path(tmp_path, "p1")},
                                         functools.partial(em.read, self.market.chain, self.address, "refusal"),
                                         step_s=STEP_S)

    def one(self, raw: bytes, timestamp: int | None = None):
        (receipt,) = self.market.mine([raw], timestamp)
        assert receipt.ok, receipt.revert_reason
        return receipt

    def grant(self, scope: int = em.SCOPE_READ_DATA, subject: str | None = None, duration_s: int = HOUR_S) -> None:
        """Declare an emergency of two hours and grant ``tech`` ``scope`` over ``subject`` (default p0)."""
        self.one(em.declare(self.market.operator, self.address, "fault on feeder 3", 2 * HOUR_S))
        self.one(em.grant(self.market.operator, self.address, self.tech.address, scope,
                          self.p0 if subject is None else subject, duration_s))


@pytest.fixture
def scene(tmp_path) -> Scene:
    return Scene(tmp_path)


def test_a_granted_account_is_served_the_last_hours_and_logs_the_use_with_the_note(scene):
    scene.grant()
    served = scene.reader.serve(scene.tech.address, scene.p0, hours=2)
    assert served.household == scene.p0 and served.columns == COLUMNS
    expected = np.column_stack([scene.values_kw[scene.p0][c][-24:] for c in COLUMNS])
    np.testing.assert_array_equal(served.values_kw, expected)            # the last 24 steps, p0's own
    assert served.values_kw[-1, 0] == STEPS - 1 and served.values_kw[0, 0] == STEPS - 24
    assert served.note == "read 2 h (24 steps): load_kw,pv_kw,battery_kw,ev_kw"
    receipt = scene.one(em.use(scene.tech, scene.address, em.SCOPE_READ_DATA, scene.p0, served.note))
    (used,) = [e for e in map(scene.market.chain.decode, receipt.logs) if e is not None]
    assert (used.event, dict(used.args)) == ("Used", {"account": scene.tech.address, "subject": scene.p0,
                                                      "scope": em.SCOPE_READ_DATA, "note": served.note})


def test_a_grant_over_every_household_serves_each_its_own_data_and_the_chosen_columns(scene):
    scene.grant(scope=em.SCOPE_READ_DATA | em.SCOPE_OVERRIDE_CHARGING, subject=em.NOBODY)
    served = scene.reader.serve(scene.tech.address, scene.p1, hours=er.MAX_RECENT_H, columns=("ev_kw", "load_kw"))
    assert served.values_kw.shape == (288, 2)
    np.testing.assert_array_equal(served.values_kw[:, 0], scene.values_kw[scene.p1]["ev_kw"][-288:])
    np.testing.assert_array_equal(served.values_kw[:, 1], scene.values_kw[scene.p1]["load_kw"][-288:])
    assert served.note == "read 24 h (288 steps): ev_kw,load_kw"
    assert len(served.note.encode()) <= 64


@pytest.mark.parametrize("case, reason", [
    ("never granted", "emergency: not granted"),
    ("no emergency yet", "emergency: not granted"),
    ("revoked", "emergency: revoked"),
    ("past its end", "emergency: expired"),
    ("emergency ended", "emergency: expired"),
    ("other household", "emergency: out of scope"),
    ("other scope", "emergency: out of scope"),
])
def test_a_read_outside_a_live_grant_is_refused_with_the_contracts_reason_and_reads_nothing(scene, case, reason,
                                                                                            monkeypatch):
    account, household = scene.tech.address, scene.p0
    if case == "never granted":
        scene.grant()
        account = scene.helper.address
    elif case == "no emergency yet":
        pass
    elif case == "revoked":
        scene.grant()
        scene.one(em.revoke(scene.market.operator, scene.address, scene.tech.address))
    elif case == "past its end":
        scene.grant()
        scene.market.mine([], em.read(scene.market.chain, scene.address, "grant_of", account)[2])
    elif case == "emergency ended":
        scene.grant()
        scene.one(em.end_emergency(scene.market.operator, scene.address))
    elif case == "other household":
        scene.grant()
        household = scene.p1
    else:
        scene.grant(scope=em.SCOPE_OVERRIDE_CHARGING)
    reads = []
    monkeypatch.setattr(er, "read_columns_kw", lambda *args: reads.append(args))
    with pytest.raises(er.AccessRefused) as refused:
        scene.reader.serve(account, household, hours=1)
    assert refused.value.reason == reason and str(refused.value) == reason
    assert reads == []                                                     # the store was never opened


def test_the_grant_is_asked_at_each_read_so_a_revocation_stops_the_next_one(scene):
    scene.grant()
    assert scene.reader.serve(scene.tech.address, scene.p0, hours=1).values_kw.shape == (12, len(COLUMNS))
    scene.one(em.revoke(scene.market.operator, scene.address, scene.tech.address))
    with pytest.raises(er.AccessRefused, match="^emergency: revoked$"):
        scene.reader.serve(scene.tech.address, scene.p0, hours=1)


def test_a_household_without_a_store_is_refused_like_any_other_before_it_is_looked_up(scene):
    stranger = scene.market.meters[0].address
    with pytest.raises(er.AccessRefused, match="^emergency: not granted$"):
        scene.reader.serve(scene.tech.address, stranger, hours=1)
    scene.grant(subject=em.NOBODY)
    with pytest.raises(ValueError, match=f"no store for household {stranger}"):
        scene.reader.serve(scene.tech.address, stranger, hours=1)


@pytest.mark.parametrize("hours, columns, message", [
    (0, COLUMNS, "recent data spans 1 to 24 h, not 0"),
    (er.MAX_RECENT_H + 1, COLUMNS, "recent data spans 1 to 24 h, not 25"),
    (1, ("load_kw", "price"), "unknown columns"),
    (1, (), "unknown columns"),
])
def test_a_span_beyond_the_bound_or_an_unknown_column_fails_before_the_grant_is_asked(scene, hours, columns, message):
    asked = []
    reader = er.EmergencyReader(scene.reader.stores, lambda *args: asked.append(args) or "", step_s=STEP_S)
    with pytest.raises(ValueError, match=message):
        reader.serve(scene.tech.address, scene.p0, hours=hours, columns=columns)
    assert asked == []


def test_recent_steps_counts_whole_steps_of_the_span():
    assert er.recent_steps(1, 300) == 12
    assert er.recent_steps(24, 900) == 96
    assert er.recent_steps(1, 7200) == 1                                  # a step longer than the span: its last one
    with pytest.raises(ValueError, match="step_s must be a positive"):
        er.recent_steps(1, 0)


@pytest.mark.parametrize("hours", [1, 6, 24])
def test_a_read_note_names_the_span_the_gateway_serves(hours):
    from gridledger.agents.emergency_reader import hours_asked, read_note
    assert hours_asked(read_note(hours)) == hours
    assert len(read_note(hours).encode()) <= 64


@pytest.mark.parametrize("note", ["", "read last h", "read last six h", "override p17", "read last 6 hours"])
def test_a_note_that_asks_for_no_read_names_no_span(note):
    from gridledger.agents.emergency_reader import hours_asked
    assert hours_asked(note) is None
