"""The linkage experiment: an observer of the chain export links households, with fixed addresses and with
per-interval pseudonyms, on hand-built event lists whose answers are known by hand."""

from __future__ import annotations

import hashlib
import json
from collections import Counter, defaultdict

import numpy as np
import pytest
import xarray as xr
from eth_utils import to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.agents.chain_observer import (NO_HOUSEHOLD, household_addresses, household_index, load_events,
                                              observations, pseudonymise)
from gridledger.agents.linkage import (
    inferred_series_wh,
    link_by_address,
    link_by_assignment,
    pattern_chance_r,
    pattern_correlation,
    reidentify_along_tracks,
    reidentify_by_profile,
    reidentify_by_slot,
    track_grid,
    tracking_accuracy,
    tracks,
)
from gridledger.agents.linkage_study import interval_days, interval_net_import_wh, measure, world_figures

SETTLEMENT = to_checksum_address("0x" + "5e" * 20)
AUCTION = to_checksum_address("0x" + "a0" * 20)


def addr(i: int) -> str:
    """Household i's account (i >= 0), random-looking as real ones are; its meter is `meter_of(addr(i))`."""
    return to_checksum_address("0x" + hashlib.sha256(f"household {i}".encode()).hexdigest()[:40])


def _topic(address: str) -> str:
    return "0x" + "0" * 24 + address[2:].lower()


def settled(prosumer: str, interval: int, net_wh: int) -> dict:
    """A Settlement ``Settled`` event as the export writes it (prosumer indexed, so also in the topics)."""
    return {"address": SETTLEMENT, "contract": "Settlement", "event": "Settled", "block_number": interval + 2,
            "log_index": 0, "tx_hash": "0x" + f"{interval:064x}",
            "topics": ["0x" + "11" * 32, f"0x{interval:064x}", _topic(prosumer)],
            "data": "0x" + f"{max(net_wh, 0):064x}",
            "args": {"prosumer": prosumer, "interval": interval, "import_wh": max(net_wh, 0),
                     "export_wh": max(-net_wh, 0), "position_wh": 0, "pv_wh": 0, "battery_wh": 0}}


def order(account: str, interval: int, energy_wh: int, is_ask: bool) -> dict:
    return {"address": AUCTION, "contract": "DoubleAuction", "event": "OrderSubmitted", "block_number": interval + 1,
            "log_index": 0, "tx_hash": "0x" + "ab" * 32, "topics": ["0x" + "22" * 32, _topic(account)],
            "data": "0x" + f"{energy_wh:064x}",
            "args": {"account": account, "interval": interval, "energy_wh": energy_wh, "is_ask": is_ask,
                     "index": 0, "price_wei_per_wh": 7}}


def registered(prosumer: str) -> list[dict]:
    """Registration events: the prosumer and its meter (no interval)."""
    return [{"address": SETTLEMENT, "contract": "Settlement", "event": "ProsumerRegistered", "block_number": 1,
             "log_index": 0, "tx_hash": "0x" + "cd" * 32, "topics": ["0x" + "33" * 32, _topic(prosumer)],
             "data": "0x", "args": {"prosumer": prosumer, "pv_w": 0, "battery_w": 0, "meter_rating_w": 9}},
            {"address": AUCTION, "contract": "Registry", "event": "MeterBound", "block_number": 1, "log_index": 1,
             "tx_hash": "0x" + "cd" * 32, "topics": ["0x" + "44" * 32], "data": "0x",
             "args": {"meter": meter_of(prosumer), "prosumer": prosumer}}]


def meter_of(prosumer: str) -> str:
    return to_checksum_address("0x" + hashlib.sha256(f"meter of {prosumer}".encode()).hexdigest()[:40])


def run_events(net_wh: np.ndarray) -> list[dict]:
    """Registration, then each interval's Settled events for a (households, intervals) array of net import."""
    events = [e for h in range(len(net_wh)) for e in registered(addr(h))]
    for k in range(net_wh.shape[1]):
        events += [settled(addr(h), k, int(net_wh[h, k])) for h in range(len(net_wh))]
    return events


HOUSEHOLDS = [addr(h) for h in range(3)]


# ---------------------------------------------------------------- reading


def test_observations_are_settled_net_import_and_ordered_bids_minus_asks():
    events = [settled(addr(0), 1, 500), settled(addr(1), 1, -300), order(addr(0), 1, 200, False),
              order(addr(0), 1, 50, True), order(addr(1), 2, 70, True), settled(addr(0), 0, 0)]
    obs = observations(events)
    assert obs.interval.tolist() == [0, 1, 1]
    assert obs.address == (addr(0), addr(0), addr(1))
    assert obs.net_import_wh.tolist() == [0, 500, -300]
    # addr(0) bid 200 and asked 50 for interval 1; addr(1)'s ask is for interval 2, where it did not settle.
    assert obs.order_import_wh.tolist() == [0, 150, 0]


def test_household_addresses_are_the_prosumers_and_their_meters():
    events = registered(addr(0)) + [settled(addr(1), 0, 5), order(addr(2), 0, 5, True)]
    assert household_addresses(events) == {addr(0), meter_of(addr(0)), addr(1)}


def test_household_index_follows_the_owner_of_a_label():
    label = to_checksum_address("0x" + "77" * 20)
    index = household_index([addr(2), label, addr(9)], HOUSEHOLDS, {label: addr(1)})
    assert index.tolist() == [2, 1, NO_HOUSEHOLD]


def test_load_events_reads_the_zones_of_a_sharded_export(tmp_path):
    for zone, events in (("z1", [settled(addr(0), 0, 1)]), ("z0", [settled(addr(1), 0, 2)])):
        (tmp_path / zone).mkdir()
        (tmp_path / zone / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    assert [e["args"]["prosumer"] for e in load_events(tmp_path)] == [addr(1), addr(0)]
    with pytest.raises(FileNotFoundError, match="events.jsonl"):
        load_events(tmp_path / "z9")


# ---------------------------------------------------------------- the pseudonymous world


def test_pseudonyms_replace_every_address_bearing_field_and_nothing_else():
    events = registered(addr(0)) + [settled(addr(0), 0, 10), order(addr(0), 0, 10, False), settled(addr(0), 1, 10)]
    out = pseudonymise(events, household_addresses(events), seed=3)
    reg, bound, s0, o0, s1 = out.events
    # one label per (address, interval): the order and the settlement of interval 0 share it, interval 1 does not
    assert s0["args"]["prosumer"] == o0["args"]["account"] != s1["args"]["prosumer"]
    assert out.owner_of[s0["args"]["prosumer"]] == addr(0) and out.epoch_of[s1["args"]["prosumer"]] == 1
    assert s0["topics"][2] == _topic(s0["args"]["prosumer"]) and o0["topics"][1] == _topic(o0["args"]["account"])
    assert o0["data"] == events[3]["data"] and s0["topics"][:2] == events[2]["topics"][:2]
    # registration (no interval) gets its own labels, the meter another one
    assert bound["args"]["prosumer"] == reg["args"]["prosumer"] not in (s0["args"]["prosumer"], addr(0))
    assert out.owner_of[bound["args"]["meter"]] == meter_of(addr(0))
    for before, after in zip(events, out.events):
        assert {k: v for k, v in before.items() if k not in ("args", "topics")} == \
               {k: v for k, v in after.items() if k not in ("args", "topics")}
    assert addr(0)[2:].lower() not in json.dumps(out.events).lower()


def test_pseudonyms_are_deterministic_given_the_seed():
    events = run_events(np.array([[1, 2], [3, 4]]))
    households = household_addresses(events)
    assert pseudonymise(events, households, 5).events == pseudonymise(events, households, 5).events
    assert pseudonymise(events, households, 5).events != pseudonymise(events, households, 6).events


_address_ids = st.integers(min_value=0, max_value=3)


@st.composite
def _event_lists(draw):
    events = []
    for _ in range(draw(st.integers(min_value=0, max_value=25))):
        who, interval = addr(draw(_address_ids)), draw(st.integers(min_value=0, max_value=4))
        kind = draw(st.sampled_from(["settled", "order", "register"]))
        if kind == "settled":
            events.append(settled(who, interval, draw(st.integers(min_value=-5000, max_value=5000))))
        elif kind == "order":
            events.append(order(who, interval, draw(st.integers(min_value=1, max_value=5000)), draw(st.booleans())))
        else:
            events.extend(registered(who))
    return events


def _masked(value, labels: set[str]):
    """`value` with every address of `labels` (any case, padded or not) replaced by a mark."""
    text = json.dumps(value)
    for label in labels:
        for form in (label, label.lower(), label[2:].lower()):
            text = text.replace(form, "ADDRESS")
    return json.loads(text)


@settings(max_examples=60, deadline=None)
@given(events=_event_lists(), seed=st.integers(min_value=0, max_value=2**32 - 1))
def test_relabelling_keeps_every_other_field_and_uses_each_pseudonym_in_one_interval_only(events, seed):
    households = {addr(i) for i in range(4)} | {meter_of(addr(i)) for i in range(4)}
    out = pseudonymise(events, households, seed)
    assert len(out.events) == len(events)
    # every non-address field identical
    assert _masked(out.events, set(out.owner_of)) == _masked(events, households)
    # the multiset of each interval's values unchanged
    def values(evs):
        return Counter((e["args"].get("interval"), e["event"], e["args"].get("import_wh"), e["args"].get("export_wh"),
                        e["args"].get("energy_wh")) for e in evs)
    assert values(out.events) == values(events)
    # every household address gone, each label behind one owner and used in one interval only
    assert not households & {a for e in out.events for a in e["args"].values() if isinstance(a, str)}
    epochs, labels_of = defaultdict(set), defaultdict(set)
    for before, after in zip(events, out.events):
        for key, value in after["args"].items():
            if value in out.owner_of:
                assert out.owner_of[value] == before["args"][key]
                epochs[value].add(after["args"].get("interval"))
                labels_of[(before["args"][key], after["args"].get("interval"))].add(value)
    assert all(len(e) == 1 for e in epochs.values())
    assert all(len(labels) == 1 for labels in labels_of.values())


# ---------------------------------------------------------------- linking


def test_three_households_with_distinct_constant_values_are_tracked_perfectly():
    net = np.array([[1000] * 4, [5000] * 4, [9000] * 4])
    out = pseudonymise(run_events(net), HOUSEHOLDS, seed=0)
    obs = observations(out.events)
    assert len(set(obs.address)) == 12          # a fresh pseudonym per household and interval
    pairs = link_by_assignment(obs)
    household = household_index(obs.address, HOUSEHOLDS, out.owner_of)
    figures = tracking_accuracy(pairs, household)
    assert (figures.accuracy, figures.n_links, figures.n_correct) == (1.0, 9, 9)
    track_of = tracks(len(obs), pairs)
    assert len(set(track_of.tolist())) == 3
    assert all(len(set(household[track_of == t].tolist())) == 1 for t in range(3))


def test_two_households_that_swap_identical_values_are_confused():
    # A reads 100, 200, 100, 200 and B the other way round: the cheapest links always join equal values.
    net = np.array([[100, 200, 100, 200], [200, 100, 200, 100]])
    out = pseudonymise(run_events(net), HOUSEHOLDS[:2], seed=1)
    obs = observations(out.events)
    household = household_index(obs.address, HOUSEHOLDS[:2], out.owner_of)
    pairs = link_by_assignment(obs)
    assert tracking_accuracy(pairs, household).accuracy == 0.0
    series = track_grid(obs.net_import_wh.astype(float), tracks(len(obs), pairs), obs.interval, 4, np.nan)
    assert sorted(series[:, 0].tolist()) == [100.0, 200.0] and (series == series[:, :1]).all()
    # the observer's series for A is flat, so its pattern is not inferred at all
    truth = track_grid(household, tracks(len(obs), pairs), obs.interval, 4, NO_HOUSEHOLD)
    assert pattern_correlation(inferred_series_wh(series, truth, 2), net).n_defined == 0


def test_orders_break_a_tie_in_settled_energy():
    # both settle 100 Wh every interval, but each orders its own quantity: whatever order the pseudonyms come
    # in (the seed), the orders tell them apart
    events = run_events(np.full((2, 4), 100))
    events += [order(addr(0), k, 40, False) for k in range(4)] + [order(addr(1), k, 40, True) for k in range(4)]
    for seed in range(8):
        out = pseudonymise(events, HOUSEHOLDS[:2], seed=seed)
        obs = observations(out.events)
        household = household_index(obs.address, HOUSEHOLDS[:2], out.owner_of)
        assert tracking_accuracy(link_by_assignment(obs), household).accuracy == 1.0, seed


def test_published_classes_keep_the_swapping_households_apart():
    # the swap above confuses an observer of energies alone; one that reads each pseudonym's registered class
    # (A in class 0, B in class 1) links within a class and follows both
    net = np.array([[100, 200, 100, 200], [200, 100, 200, 100]])
    out = pseudonymise(run_events(net), HOUSEHOLDS[:2], seed=1)
    obs = observations(out.events)
    household = household_index(obs.address, HOUSEHOLDS[:2], out.owner_of)
    assert tracking_accuracy(link_by_assignment(obs, household.copy()), household).accuracy == 1.0
    unknown = np.full(len(obs), -1)
    assert tracking_accuracy(link_by_assignment(obs, unknown), household).accuracy == 0.0


def test_link_by_address_joins_each_address_to_its_next_observation():
    obs = observations(run_events(np.array([[1, 2, 3], [4, 5, 6]])))
    assert link_by_address(obs).tolist() == [[0, 2], [1, 3], [2, 4], [3, 5]]


def test_tracks_are_the_chains_of_links():
    assert tracks(6, np.array([[0, 2], [2, 4], [1, 3]])).tolist() == [0, 1, 0, 1, 0, 2]
    assert tracks(2, np.zeros((0, 2), dtype=int)).tolist() == [0, 1]


# ---------------------------------------------------------------- metrics


def test_pattern_correlation_by_hand():
    inferred = np.array([[1.0, 2, 3], [1, 2, 3], [5, 5, 5], [1, np.nan, 3]])
    true = np.array([[1.0, 3, 2], [-2, -4, -6], [1, 2, 3], [7, 0, 9]])
    figures = pattern_correlation(inferred, true)
    # (1)(-1)+(0)(1)+(1)(0) over sqrt(2*2); perfectly inverted; constant: undefined; two common points: +1
    assert figures.r[0] == pytest.approx(0.5) and figures.r[1] == pytest.approx(-1.0)
    assert np.isnan(figures.r[2]) and figures.r[3] == pytest.approx(1.0)
    assert figures.n_defined == 3 and figures.mean_r == pytest.approx(0.5 / 3)


def test_a_households_inferred_series_is_the_track_holding_its_first_observation():
    series = np.array([[1.0, 2, 3], [4, 5, 6]])
    truth = np.array([[1, 1, 0], [0, 0, 1]])     # the tracks swap households before the last interval
    inferred = inferred_series_wh(series, truth, n_households=3)
    assert inferred[:2].tolist() == [[4.0, 5, 6], [1, 2, 3]] and np.isnan(inferred[2]).all()


def test_the_fixed_world_infers_the_pattern_exactly_when_settled_equals_true():
    net = np.array([[1, 5, 2, 8], [3, 3, 9, 0], [7, 1, 1, 2]]) * 100
    obs = observations(run_events(net))
    household = household_index(obs.address, HOUSEHOLDS)
    days = np.zeros(4, dtype=int)
    figures = world_figures("fixed addresses", obs, household, link_by_address(obs), net.astype(float), days,
                            net[:, :4].astype(float))
    assert figures.pattern.mean_r == pytest.approx(1.0) and figures.pattern.n_defined == 3
    assert figures.tracking.accuracy == 1.0 and figures.n_tracks == 3
    assert figures.along_tracks is None and figures.by_profile is None and figures.by_slot is None


def test_pattern_chance_is_the_mean_correlation_with_the_other_households():
    true = np.array([[1.0, 2, 3], [3, 2, 1], [1, 3, 2]])
    # r(x1, y0) = -1, r(x2, y0) = 0.5, r(x0, y1) = -1, r(x2, y1) = -0.5, r(x0, y2) = 0.5, r(x1, y2) = -0.5
    assert pattern_chance_r(true, true) == pytest.approx(-1 / 3)


def test_reidentify_along_tracks_labels_each_track_by_its_day1_majority():
    days = np.array([0, 0, 0, 1, 1, 1])
    truth = np.array([[1, 0, 0, 0, 1, 1],
                      [0, 1, 1, 1, 0, NO_HOUSEHOLD]])
    figures = reidentify_along_tracks(truth, days, n_households=2)
    # track 0 is household 0 (right once of three), track 1 household 1 (right once of two)
    assert figures.fraction == pytest.approx(2 / 5) and figures.n_observations == 5
    assert figures.fraction_by_day == pytest.approx((2 / 5,)) and figures.chance == 0.5


def test_reidentify_by_profile_assigns_each_days_tracks_to_the_nearest_profiles():
    days = np.array([0, 0, 1, 1, 2, 2])
    profiles = np.array([[0.0, 0], [10, 10], [20, 20]])
    series = np.array([[0.0, 0, 19, 21, 1, 1],
                       [10, 10, 1, -1, 9, 19],
                       [20, 20, 9, 11, 20, 21]])
    truth = np.array([[0, 0, 2, 2, 0, 0],
                      [1, 1, 0, 0, 1, 2],     # day 3: half of this track is household 2
                      [2, 2, 1, 1, 2, 2]])
    figures = reidentify_by_profile(series, truth, days, profiles)
    # day 2: all three right; day 3: track 1 goes to household 1 (one cell right of two), the others right
    assert figures.fraction_by_day == pytest.approx((1.0, 5 / 6))
    assert figures.fraction == pytest.approx(11 / 12) and figures.chance == pytest.approx(1 / 3)


def test_reidentify_by_slot_needs_no_links():
    days = np.array([0, 0, 1, 1])
    profiles = np.array([[0.0, 100], [50, 0]])
    # day 2, slot 0: 45 -> household 1, 2 -> household 0, both right; slot 1: 90 (household 1) -> household 0
    # and 10 (household 0) -> household 1, both wrong
    value = np.array([45, 2, 90, 10])
    household = np.array([1, 0, 1, 0])
    interval = np.array([2, 2, 3, 3])
    figures = reidentify_by_slot(value, household, interval, days, profiles)
    assert figures.fraction_by_day == pytest.approx((0.5,)) and figures.n_observations == 4


# ---------------------------------------------------------------- truth and a whole (tiny) run


def test_interval_net_import_integrates_the_steps_net_export():
    export_mw = np.array([[-0.004, 0.001]] * 6)
    net = interval_net_import_wh(export_mw, np.arange(6) * 300.0, 300.0, np.array([0.0, 900.0]))
    # 4 kW imported for 15 min = 1000 Wh; 1 kW exported = -250 Wh
    assert net == pytest.approx(np.array([[1000.0, 1000.0], [-250.0, -250.0]]))


def test_interval_days_count_calendar_days_from_the_first_interval():
    starts = np.array(["2024-06-21T18:00", "2024-06-21T23:45", "2024-06-22T00:00", "2024-06-24T01:00"],
                      dtype="datetime64[ns]")
    assert interval_days(starts).tolist() == [0, 0, 1, 3]


def _tiny_run(run_dir, net_wh: np.ndarray, interval_s: int, steps_per_interval: int):
    """A run directory with only what the observer and the truth need: the chain's events and results.nc."""
    n, k = net_wh.shape
    (run_dir / "chain").mkdir(parents=True)
    (run_dir / "chain" / "events.jsonl").write_text("".join(json.dumps(e) + "\n" for e in run_events(net_wh)))
    start = np.datetime64("2024-06-21T00:00", "ns")
    step_s = interval_s // steps_per_interval
    export_mw = -np.repeat(net_wh.T, steps_per_interval, axis=0) * 3600 / step_s / steps_per_interval / 1e6
    ds = xr.Dataset(
        {"export_mw": (("time", "prosumer"), export_mw), "address": (("prosumer",), [addr(h) for h in range(n)])},
        coords={"time": start + np.arange(k * steps_per_interval) * np.timedelta64(step_s, "s"),
                "interval": start + np.arange(k) * np.timedelta64(interval_s, "s"),
                "prosumer": [f"p{h:02d}" for h in range(n)]},
        attrs={"study": "tiny"})
    ds.to_netcdf(run_dir / "results.nc", engine="h5netcdf")


def test_measure_on_a_tiny_two_day_run(tmp_path):
    # three households far apart in level, each with its own daily shape; four 6-hour intervals per day
    shape = np.array([[0, 300, 900, 300], [600, 0, 0, 600], [0, 0, 900, 900]])
    net = np.tile(shape, 2) + np.array([[1000], [5000], [9000]])
    _tiny_run(tmp_path, net, interval_s=21_600, steps_per_interval=2)
    figures = measure(tmp_path, seed=4)
    assert (figures.study, figures.n_households, figures.n_intervals, figures.n_days) == ("tiny", 3, 8, 2)
    assert figures.chance == pytest.approx(1 / 3)
    assert figures.truth_source == "-export_mw integrated per interval"
    for world in (figures.fixed, figures.pseudonyms):
        assert world.pattern.mean_r == pytest.approx(1.0) and world.n_tracks == 3
        assert world.tracking.accuracy == 1.0
        assert world.along_tracks.fraction == 1.0 and world.by_profile.fraction == 1.0
        assert world.by_slot.fraction_by_day == (1.0,)
    assert figures.pseudonyms.tracking.n_links == 21 and figures.fixed.tracking.n_links == 21
    table = figures.table()
    assert "| tracking accuracy (links) | 1.000 (21) | 1.000 (21) |" in table
