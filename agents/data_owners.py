"""The prosumers as owners of their meter data: each keeps its own store; the consenting ones approve requests.

After Wang et al.'s SPDS, a household's per-step data never leaves its
store (`gridledger.agents.data_store`) except through a query it
approved, computed by the worker. When the data-access requests arrive
(`gridledger.schedule.DataPhase.approve_s`), every owner writes the
steps its devices ran so far to ``data/<name>.sqlite`` and each owner who
consents (``data_access.approve_share``, drawn with the study's seed)
approves every request that lists it. An owner who does not consent
never approves, so the worker never reads its store.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gridledger.agents.data_store import store_path, write_store
from gridledger.agents.draws import picked
from gridledger.agents.devices import Devices
from gridledger.roster import Roster

CONSENT_STREAM = 0xDA7A
"""Tag of the random stream that draws who consents (with the study's seed)."""


def consenting(n: int, share: float, seed: int) -> np.ndarray:
    """Which of `n` owners consent: round(`share` x n) of them, drawn without replacement with `seed`. (n,) bool"""
    return picked(n, round(share * n), seed, CONSENT_STREAM)


def device_columns_kw(devices: Devices, i: int) -> dict[str, np.ndarray]:
    """Owner `i`'s steps so far as its store keeps them: household load (with flexible load), PV delivered (after
    curtailment), battery (+ = charging) and EV charging. [kW]"""
    done = devices.steps_done
    return {"load_kw": devices.load_kw[:done, i] + devices.flexload_kw[:done, i],
            "pv_kw": devices.pv_kw[:done, i] - devices.pv_curtailed_kw[:done, i],
            "battery_kw": devices.battery_p_kw[:done, i], "ev_kw": devices.ev_kw[:done, i]}


def write_stores(run_dir: Path, sc: Roster, devices: Devices, only: int | None = None) -> None:
    """Every owner's store (or owner `only`'s): the steps its devices ran so far (`device_columns_kw`)."""
    time_s = np.arange(devices.steps_done) * sc.study.power_flow_step_s
    for i, prosumer in enumerate(sc.prosumers):
        if only is None or i == only:
            write_store(store_path(run_dir, prosumer.name), time_s, device_columns_kw(devices, i))


def approvals_due(requests: list[dict], addresses: list[str], consent: np.ndarray) -> list[tuple[int, str]]:
    """(owner index, request id) of every consenting owner listed in each request, in request then owner order."""
    index_of = {a: i for i, a in enumerate(addresses)}
    return [(index_of[owner], request["request_id"]) for request in requests for owner in request["owners"]
            if owner in index_of and consent[index_of[owner]]]
