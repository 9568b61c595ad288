"""Emergency access in a real federation: the crew cuts the granted household's EV admission, nothing else.

``studies/emergency.yaml``: an EV evening on a SimBench LV feeder with a
two-hour emergency declared at 18:00 and an hour's grant to the service
crew over p17. The crew cuts p17's admission of the 18:30 window (done) and reads p17's
data (served by p17's gateway), tries both on p14 (out of scope) and,
after the hour, the cut on p17 again (expired).
"""

from __future__ import annotations

import pytest

from gridledger.contracts.keys import derive_account
from tests.e2e_helpers import ROOT, TEST_SECRET, events, run_variants

pytestmark = pytest.mark.e2e

STUDY = ROOT / "studies" / "emergency.yaml"
WINDOW = 9                 # 18:30-19:00, the window of the block that mines the 18:10 override
STEP_AFTER_CUT = 19        # 18:45: the agents' first step after the block at 18:30:01


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("emergency")
    return run_variants(STUDY, {root: {}})[root]


def _account(name: str) -> str:
    return derive_account(TEST_SECRET, name).address


def test_the_operator_declares_and_grants_the_crew_only_the_override_of_one_household(run):
    run_dir, _ = run
    (declared,) = events(run_dir, "EmergencyDeclared")
    assert declared["args"]["reason"] == "transformer overload"
    (granted,) = events(run_dir, "Granted")
    assert granted["args"]["account"] == _account("service")
    assert (granted["args"]["scope"], granted["args"]["subject"]) == (3, _account("prosumer/p17"))   # cut and read
    assert _account("service") not in {e["args"]["account"] for e in events(run_dir, "RoleGranted")}


def test_the_granted_cut_is_done_logged_and_followed_and_the_others_refused_with_their_reasons(run):
    run_dir, ds = run
    assert ds.override_outcome.values.tolist() == ["overridden", "emergency: out of scope", "emergency: expired"]
    (cut,) = events(run_dir, "ChargingOverridden")
    allocated = {e["args"]["account"]: e["args"]["power_w"] for e in events(run_dir, "Allocated")
                 if e["args"]["window"] == WINDOW}
    p17 = _account("prosumer/p17")
    assert cut["args"] == {"window": WINDOW, "account": p17, "by": _account("service"),
                           "old_w": allocated[p17], "new_w": 0, "note": "transformer overload"}
    assert allocated[p17] > 0 and ds.charging_overridden_w.values.tolist() == [
        allocated[p17] if k == WINDOW else 0 for k in range(ds.sizes["interval"])]
    i = list(ds.prosumer.values).index("p17")
    assert ds.ev_p_mw.values[STEP_AFTER_CUT, i] == 0.0                  # the EV stopped at its next step
    assert ds.ev_p_mw.values[STEP_AFTER_CUT + 1, i] > 0.0               # and charges again in the next window


def test_the_granted_read_is_logged_on_chain_then_served_by_the_households_gateway_and_the_other_refused(run):
    run_dir, ds = run
    assert ds.read_outcome.values.tolist() == ["served", "emergency: out of scope"]
    (used,) = events(run_dir, "Used")
    assert used["args"] == {"account": _account("service"), "subject": _account("prosumer/p17"), "scope": 1,
                            "note": "read last 6 h"}
    # Logged at 18:10 (mined 18:30:01) and served at the gateway's next step: 14:00-18:45, 19 steps of 15 min.
    assert ds.read_steps.values.tolist() == [19, 0]
    assert (run_dir / "data" / "p17.sqlite").exists() and not (run_dir / "data" / "p14.sqlite").exists()
