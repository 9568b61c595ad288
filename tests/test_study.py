"""Study files: defaults make a short file valid; each bad file exits 2 naming the field."""

import textwrap
from pathlib import Path

import pytest

from gridledger.cli import EXIT_BAD_INPUT, main
from gridledger.study import MECHANISMS, StudyError, load_study, parse_study

MINIMAL = {"name": "tiny"}


def test_minimal_study_gets_documented_defaults():
    study = parse_study(MINIMAL)
    assert study.grid.feeder == "case33bw"
    assert (study.power_flow_step_s, study.market_interval_s, study.duration_s) == (300, 900, 86_400)
    assert (study.n_steps, study.n_intervals) == (288, 96)
    assert study.grid.limits.vm_min_pu == 0.95 and study.grid.limits.vm_max_pu == 1.05


def test_reference_studies_are_valid():
    assert load_study("studies/baran-wu-p2p.yaml").n_intervals == 96
    assert load_study("studies/baran-wu-short.yaml").n_intervals == 8


@pytest.mark.parametrize("path", sorted(Path("studies").glob("*.yaml")), ids=lambda p: p.stem)
def test_every_shipped_study_is_valid(path):
    assert load_study(path).name == path.stem


def test_every_mechanism_has_a_reference_study():
    shipped = {load_study(path).market.mechanism for path in Path("studies").glob("baran-wu-*.yaml")}
    assert shipped == set(MECHANISMS)


def test_five_minute_market_interval_is_allowed():
    assert parse_study({**MINIMAL, "market_interval_s": 300}).n_intervals == 288


BAD = [
    # (YAML body, text that must appear in the message)
    ("name: x\ncolour: red\n", "colour: unknown field; allowed here: name, start"),
    ("name: x\nmarket: {mechanism: uniform-double-auction, tarif: 1}\n", "market.tarif: unknown field"),
    ("name: x\nduration_s: ten\n", "duration_s = 'ten'"),
    ("name: x\nduration_s: -900\n", "duration_s = -900: Input should be greater than 0"),
    ("name: x\nmarket_interval_s: 700\n", "market_interval_s (700) must be a multiple of power_flow_step_s (300)"),
    ("name: x\ngrid: {feeder: ieee9999}\n", "grid.feeder = 'ieee9999': Value error, unknown feeder; allowed: case33bw"),
    ("name: x\nprosumers: {count: 2, pv: {share: 1.5}}\n", "prosumers.pv.share = 1.5"),
    ("name: x\nprosumers: {voltage_level: hv}\n", "prosumers.voltage_level = 'hv': Input should be 'any', 'lv' or 'mv'"),
    ("name: x\nmarket: {grid_buy_price_per_kwh: 0.05}\n", "grid_sell_price_per_kwh (0.08) must be below grid_buy_price_per_kwh (0.05)"),
    ("name: x\nmarket: {mechanism: barter}\n", "market.mechanism = 'barter'"),
    # Verified batches: signed orders (batched), the uniform double auction, one transaction of <= 256 orders.
    ("name: x\nmarket: {clearing: verified-batch}\n",
     "market.clearing 'verified-batch' needs market.submission 'batched' (signed orders to relay), got 'per-transaction'"),
    ("name: x\nmarket: {clearing: verified-batch, submission: batched, mechanism: pay-as-bid}\n",
     "market.clearing 'verified-batch' is not offered by market.mechanism 'pay-as-bid'; allowed: uniform-double-auction"),
    ("name: x\nprosumers: {count: 300}\nmarket: {clearing: verified-batch, submission: batched}\n",
     "prosumers.count (300) must be at most 256"),
    ("name: x\nmarket: {mechanism: english, round_s: 900}\n",
     "market.round_s (900) must be below market_interval_s - market.gate_closure_s - 1 (839)"),
    ("name: x\nmarket: {mechanism: vickrey, gate_closure_s: 60, reveal_s: 60}\n",
     "market.reveal_s (60) must lie in [2, market.gate_closure_s - 1] = [2, 59]"),
    ("name: x\nmarket: {mechanism: vickrey, round_s: 1}\n", "market.round_s = 1: Input should be greater than or equal to 2"),
    ("name: x\nprosumers: {pv: {inverter: {volt_var_curve: {v2_pu: 0.90}}}}\n", "prosumers.pv.inverter.volt_var_curve"),
    ("duration_s: 900\n", "name = (missing)"),
    ("- just\n- a list\n", "a study file must be a mapping"),
    ("name: [unclosed\n", "not valid YAML"),
    # The meter rating registered in the Settlement: a finite number of kW in (0, 1e6], or unset.
    ("name: x\nprosumers: {meter_rating_kw: -5}\n", "prosumers.meter_rating_kw = -5: Input should be greater than 0"),
    ("name: x\nprosumers: {meter_rating_kw: 0}\n", "prosumers.meter_rating_kw = 0: Input should be greater than 0"),
    ("name: x\nprosumers: {meter_rating_kw: 2000000}\n",
     "prosumers.meter_rating_kw = 2000000: Input should be less than or equal to 1000000"),
    ("name: x\nprosumers: {meter_rating_kw: ten}\n",
     "prosumers.meter_rating_kw = 'ten': Input should be a valid number"),
    ("name: x\nprosumers: {meter_rating_kw: [5]}\n", "prosumers.meter_rating_kw = [5]: Input should be a valid number"),
    ("name: x\nprosumers: {meter_rating_kw: true}\n",
     "prosumers.meter_rating_kw = True: Value error, a number is required, not true/false"),
    ("name: x\nprosumers: {meter_rating_kw: .nan}\n",
     "prosumers.meter_rating_kw = nan: Input should be a finite number"),
    # The credit line: a finite number of tokens in [0, 1e15]; 0 is allowed (no debt).
    ("name: x\nmarket: {credit_line: -1}\n", "market.credit_line = -1: Input should be greater than or equal to 0"),
    ("name: x\nmarket: {credit_line: 10000000000000001}\n",
     "market.credit_line = 10000000000000001: Input should be less than or equal to 1000000000000000"),
    ("name: x\nmarket: {credit_line: lots}\n", "market.credit_line = 'lots': Input should be a valid number"),
    ("name: x\nmarket: {credit_line: true}\n",
     "market.credit_line = True: Value error, a number is required, not true/false"),
    ("name: x\nmarket: {credit_line: .inf}\n", "market.credit_line = inf: Input should be a finite number"),
    # Where parts run: addresses and host names only, federates of this study only, a network core.
    ("name: x\nhelics: {broker_address: 'tcp://10.0.0.5'}\n", "helics.broker_address = 'tcp://10.0.0.5'"),
    ("name: x\nhelics: {hosts: {der: '10.0.0.6 '}}\n", "helics.hosts.der = '10.0.0.6 '"),
    ("name: x\nhelics: {hosts: {operator: 10.0.0.6}}\n",
     "helics.hosts names 'operator', which does not run in this study; allowed: grid, ledger, der"),
    ("name: x\nhelics: {hosts: {meter: 10.0.0.6}}\n", "helics.hosts names 'meter', which does not run"),
    ("name: x\nhelics: {core_type: inproc, broker_address: 10.0.0.5}\n",
     "helics.core_type inproc runs in one process; broker_address and hosts need a network core: one of zmq, tcp"),
    # Zones: by transformer or lists of buses, not both; each bus in one zone.
    ("name: x\ngrid: {zones: {by: feeder}}\n", "grid.zones.by = 'feeder': Input should be 'transformer'"),
    ("name: x\ngrid: {zones: {}}\n",
     "grid.zones: give exactly one of by (transformer) and buses (a list of bus lists)"),
    ("name: x\ngrid: {zones: {by: transformer, buses: [[1]]}}\n", "give exactly one of by (transformer) and buses"),
    ("name: x\ngrid: {zones: {buses: []}}\n", "grid.zones: buses lists no zone"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], []]}}\n",
     "grid.zones.buses.1 = []: List should have at least 1 item after validation, not 0"),
    ("name: x\ngrid: {zones: {buses: [1, 2]}}\n", "grid.zones.buses.0 = 1: Input should be a valid list"),
    ("name: x\ngrid: {zones: {buses: [[1, -2]]}}\n",
     "grid.zones.buses.0.1 = -2: Input should be greater than or equal to 0"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], [3, 2]]}}\n",
     "bus 2 is listed in zone z0 and again in zone z1; a bus belongs to one zone"),
    ("name: x\ngrid: {zones: {buses: [[1, 1]]}}\n", "bus 1 is listed twice in zone z0"),
    ("name: x\ngrid: {zones: transformer}\n", "grid.zones = 'transformer': Input should be a valid dictionary"),
    ("name: x\ngrid: {zones: {by: transformer, colour: red}}\n",
     "grid.zones.colour: unknown field; allowed here: by, count, buses"),
    ("name: x\ngrid: {oltc: {colour: red}}\n", "grid.oltc.colour: unknown field; allowed here: vm_set_pu"),
    ("name: x\ngrid: {capacitors: [{bus: 3, q_mvar: 0.1, colour: red}]}\n",
     "grid.capacitors.0.colour: unknown field; allowed here: bus, q_mvar"),
    ("name: x\nmarket: {source_choice: {}}\n", "give exactly one of prosumers (a list of names such as p01)"),
    ("name: x\nprosumers: {count: 4}\nmarket: {source_choice: {prosumers: [p02, p09]}}\n",
     "market.source_choice.prosumers names p09; prosumers here: p01 to p04"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], [3, 4]]}}\nmarket: {sharding: per-zone, source_choice: {share: 0.5}}\n",
     "market.source_choice is not sharded"),
    ("name: x\naudit: {flag_window_s: 900}\n",
     "audit.flag_window_s (900) must be at least two market intervals (1800 s)"),
    ("name: x\naudit: {isolate_k: 5, isolate_n: 4}\n", "isolate_k (5) must be at most isolate_n (4)"),
    ("name: x\naudit: {isolate_n: 40}\n", "audit.isolate_n = 40: Input should be less than or equal to 32"),
    ("name: x\naudit: {penalty_per_kwh: -1}\n", "audit.penalty_per_kwh = -1"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], [3, 4]]}}\nmarket: {sharding: per-zone}\naudit: {}\n",
     "audit needs one chain: market.sharding 'per-zone' runs a chain per zone"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], [3, 4]]}}\nmarket: {sharding: per-zone}\n"
     "attacks: [{kind: foreign-key, prosumers: [p01]}]\n",
     "attacks.0.kind 'foreign-key' signs readings with a key bound to no meter"),
    ("name: x\ndata_access: {queries: [{query: household-names}]}\n",
     "data_access.queries.0.query = 'household-names': Input should be 'aggregate-load-profile', 'group-peak-kw' or "
     "'ev-share'"),
    ("name: x\ndata_access: {queries: []}\n", "data_access.queries = []: List should have at least 1 item"),
    ("name: x\ndata_access: {queries: [{query: ev-share, epsilon: 0}]}\n",
     "data_access.queries.0.epsilon = 0: Input should be greater than or equal to 0.001"),
    ("name: x\ndata_access: {queries: [{query: ev-share, price_per_owner: 0}]}\n",
     "data_access.queries.0.price_per_owner = 0: Input should be greater than 0"),
    ("name: x\ndata_access: {approve_share: 1.5, queries: [{query: ev-share}]}\n",
     "data_access.approve_share = 1.5: Input should be less than or equal to 1"),
    ("name: x\ndata_access: {queries: [{query: ev-share, clip: 5}]}\n",
     "data_access.queries.0.clip: unknown field; allowed here: query, epsilon, price_per_owner, clip_kw"),
    ("name: x\nprosumers: {count: 65}\ndata_access: {queries: [{query: ev-share}]}\n",
     "data_access lists every prosumer in each request, 1 to 64 (DataAccess.MAX_OWNERS): prosumers.count is 65"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], [3, 4]]}}\nmarket: {sharding: per-zone}\n"
     "data_access: {queries: [{query: ev-share}]}\n", "data_access needs one chain"),
    ("name: x\nemergency: {declare_s: 3600, overrides: [{at_s: 4000, household: p01}]}\n",
     "emergency.overrides cut charging admissions: they need market.charging_coordination: on"),
    ("name: x\nemergency: {declare_s: 3600}\n", "an emergency needs overrides or reads for the service crew to do"),
    ("name: x\npseudonyms: {bond: -1}\n", "pseudonyms.bond = -1: Input should be greater than 0"),
    ("name: x\nevents: {import_caps: [{start_s: 600, end_s: 300, cap_mw: 1}]}\n",
     "end_s (300) must be after start_s (600)"),
    ("name: x\nevents: {import_caps: [{start_s: 0, end_s: 3600, cap_mw: 1}, {start_s: 1800, end_s: 4000, cap_mw: 2}]}\n",
     "the window from 1800 s overlaps the one 0-3600 s; windows may not overlap"),
    ("name: x\nduration_s: 3600\nevents: {import_caps: [{start_s: 0, end_s: 7200, cap_mw: 1}]}\n",
     "events.import_caps.0.end_s (7200) must be at most duration_s (3600)"),
    ("name: x\nevents: {import_caps: [{start_s: 0, end_s: 600, cap_mw: -1}]}\n",
     "events.import_caps.0.cap_mw = -1: Input should be greater than or equal to 0"),
    ("name: x\nancillary: {reserve: {}}\n", "ancillary buys reserve and load shed for an upstream shortage: it needs "
     "events.import_caps"),
    ("name: x\nevents: {import_caps: [{start_s: 3600, end_s: 7200, cap_mw: 1}]}\nancillary: {}\n", "ancillary names neither reserve nor load_shed"),
    ("name: x\nevents: {import_caps: [{start_s: 900, end_s: 7200, cap_mw: 1}]}\nancillary: {reserve: {}}\n",
     "events.import_caps starts at 900 s, but with ancillary the reserve is awarded at the gate of interval 1"),
    ("name: x\nevents: {import_caps: [{start_s: 3600, end_s: 7200, cap_mw: 1}]}\nancillary: {load_shed: {notice_s: 899}}\n",
     "ancillary.load_shed.notice_s (899) must be at most market_interval_s - 2 (898)"),
    ("name: x\nevents: {import_caps: [{start_s: 3600, end_s: 7200, cap_mw: 1}]}\nancillary: {reserve: {product: regulating, response_s: 600}}\n",
     "reserve.response_s (600) must be at most 300 s, the longest response of 'regulating' reserve"),
    ("name: x\nevents: {import_caps: [{start_s: 3600, end_s: 7200, cap_mw: 1}]}\nancillary: {reserve: {}, margin: -0.1}\n",
     "ancillary.margin = -0.1: Input should be greater than or equal to 0"),
    ("name: x\nevents: {import_caps: [{start_s: 3600, end_s: 7200, cap_mw: 1}]}\nmarket: {sharding: per-zone}\ngrid: {zones: {by: transformer}}\nancillary: {reserve: {}}\n",
     "ancillary needs market.sharding 'none' and no pseudonyms"),
    ("name: x\nevents: {import_caps: [{start_s: 3600, end_s: 7200, cap_mw: 1}]}\nancillary: {reserve: {schedule_charging: true}}\n",
     "ancillary.reserve.schedule_charging registers each battery as its household's storage unit in the charging "
     "coordination contract: it needs market.charging_coordination: true and prosumers.ev.share 0"),
    ("name: x\nevents: {price_spikes: [{start_s: 1000, end_s: 1800, grid_buy_price_per_kwh: 0.9}]}\n",
     "events.price_spikes.0 (1000-1800 s) must cover whole market intervals"),
    ("name: x\nevents: {price_spikes: [{start_s: 900, end_s: 1800, grid_buy_price_per_kwh: 0.2}]}\n",
     "events.price_spikes.0.grid_buy_price_per_kwh (0.2) must be above market.grid_buy_price_per_kwh (0.3) and at "
     "most market.price_cap_per_kwh (1.0)"),
    ("name: x\nevents: {price_spikes: [{start_s: 0, end_s: 1800, grid_buy_price_per_kwh: 0.5}, "
     "{start_s: 900, end_s: 2700, grid_buy_price_per_kwh: 0.6}]}\n",
     "price_spikes: the window from 900 s overlaps the one 0-1800 s; windows may not overlap"),
    ("name: x\naudit: {}\nevents: {price_spikes: [{start_s: 900, end_s: 1800, grid_buy_price_per_kwh: 0.9}]}\n",
     "events.price_spikes run on one chain without audit or pseudonyms"),
    ("name: x\npseudonyms: {classes: 3}\n", "pseudonyms.classes: unknown field"),
    ("name: x\npseudonyms: {}\n", "pseudonyms trade by signed orders the operator relays"),
    ("name: x\nmarket: {submission: batched}\naudit: {}\npseudonyms: {}\n",
     "pseudonyms cannot run with audit: each of them names households by their fixed accounts"),
    ("name: x\nemergency: {declare_s: 3600, reads: [{at_s: 4000, household: p01, hours: 48}]}\n",
     "emergency.reads.0.hours = 48: Input should be less than or equal to 24"),
    ("name: x\nemergency: {declare_s: 3600, reads: [{at_s: 100, household: p01}]}\n",
     "emergency.reads.0.at_s (100) must be after declare_s (3600)"),
    ("name: x\nmarket: {charging_coordination: on}\n"
     "emergency: {declare_s: 3600, household: p99, overrides: [{at_s: 4000, household: p01}]}\n",
     "emergency.household names p99; prosumers here: p01 to p32"),
    ("name: x\nmarket: {charging_coordination: on}\n"
     "emergency: {declare_s: 3600, overrides: [{at_s: 3000, household: p01}]}\n",
     "emergency.overrides.0.at_s (3000) must be after declare_s (3600) and before the last interval (85500)"),
    ("name: x\nmarket: {charging_coordination: on}\n"
     "emergency: {declare_s: 3600, overrides: [{at_s: 4000, household: p01, admitted_kw: -1}]}\n",
     "emergency.overrides.0.admitted_kw = -1: Input should be greater than or equal to 0"),
    ("name: x\nmarket: {charging_coordination: on}\n"
     "emergency: {declare_s: 3600, duration_s: 700000, overrides: [{at_s: 4000, household: p01}]}\n",
     "emergency.duration_s = 700000: Input should be less than or equal to 604800"),
    ("name: x\ntwo_phase: {share: 0}\n", "two_phase.share = 0: Input should be greater than 0"),
    ("name: x\ntwo_phase: {deadline_intervals: 0}\n", "two_phase.deadline_intervals = 0"),
    ("name: x\nmarket_interval_s: 7200\ntwo_phase: {deadline_intervals: 96}\n",
     "two_phase.deadline_intervals (96) + 2, x market_interval_s, must be at most 7 days"),
    ("name: x\nmarket_interval_s: 7200\ntwo_phase: {deadline_intervals: 83}\n",
     "two_phase.deadline_intervals (83) + 2, x market_interval_s, must be at most 7 days"),
    ("name: x\ntwo_phase: {silent_meters: {prosumers: [p40]}}\n",
     "two_phase.silent_meters.prosumers names p40; prosumers here: p01 to p32"),
    ("name: x\ntwo_phase: {silent_meters: {prosumers: [p01], start_s: 3600, end_s: 1800}}\n",
     "two_phase.silent_meters: start_s (3600) must be below duration_s (86400) and below end_s (1800)"),
    ("name: x\ngrid: {zones: {buses: [[1, 2], [3, 4]]}}\nmarket: {sharding: per-zone}\ntwo_phase: {}\n",
     "two_phase needs one chain"),
]


@pytest.mark.parametrize("body,expected", BAD, ids=[b[1][:40] for b in BAD])
def test_bad_study_exits_2_naming_file_field_and_value(tmp_path, capsys, body, expected):
    path = tmp_path / "bad.yaml"
    path.write_text(body)
    with pytest.raises(StudyError) as err:
        load_study(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)
    assert main(["validate", str(path)]) == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err


@pytest.mark.parametrize("prosumers,market", [({"meter_rating_kw": 0.5}, {"credit_line": 0}),
                                              ({"meter_rating_kw": 1e6}, {"credit_line": 1e15})])
def test_meter_rating_and_credit_line_bounds_are_allowed(prosumers, market):
    study = parse_study({**MINIMAL, "prosumers": prosumers, "market": market})
    assert (study.prosumers.meter_rating_kw, study.market.credit_line) == (prosumers["meter_rating_kw"],
                                                                           market["credit_line"])


def test_bad_study_launches_nothing(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("name: x\nmarket_interval_s: 700\n")
    runs = tmp_path / "runs"
    assert main(["run", str(path), "--runs", str(runs)]) == EXIT_BAD_INPUT
    assert not runs.exists()


def test_broken_pandapower_file_exits_2(tmp_path, capsys):
    broken = tmp_path / "feeder.json"
    broken.write_text("{not json")
    study = tmp_path / "s.yaml"
    study.write_text(textwrap.dedent(f"""\
        name: broken
        grid: {{feeder: {broken}}}
        """))
    assert main(["run", str(study), "--runs", str(tmp_path / "runs")]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert "grid.feeder" in err and str(broken) in err


def test_missing_study_file_exits_2(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.yaml")]) == EXIT_BAD_INPUT
    assert "cannot read study file" in capsys.readouterr().err


@pytest.mark.parametrize("body,expected", [
    ("name: x\ngrid: {feeder: ieee-eu-lv}\nprosumers: {count: 4, pv: {inverter: {volt_var: true}}}\n",
     "prosumers.pv.inverter: inverter curves run as pandapower controllers"),
    ("name: x\nprosumers: {count: 4, ev: {share: 1.0}}\nmarket: {charging_coordination: true}\n",
     "market.charging_coordination: the feeder has no transformer at its external grid"),
    ("name: x\ngrid: {zones: {by: transformer}}\n", "grid.zones: the feeder has no in-service MV/LV transformer"),
    ("name: x\nprosumers: {count: 4}\ngrid: {zones: {buses: [[1, 2, 3]]}}\n",
     "grid.zones: prosumer p04 on bus 4 is in no zone"),
    ("name: x\nprosumers: {count: 4, voltage_level: lv}\n",
     "prosumers: count=4 prosumers but the feeder has only 0 load buses at voltage level 'lv'"),
    ("name: x\naudit: {sensors: {lines: [3, 99]}}\n",
     "audit.sensors: audit.sensors.lines = [3, 99]: no line [99] in the feeder; its lines are 0 to 36"),
    ("name: x\naudit: {sensors: {buses: [40]}}\n", "audit.sensors.buses = [40]: no bus [40] in the feeder"),
    ("name: x\ngrid: {feeder: ieee-eu-lv}\nprosumers: {count: 4}\naudit: {}\n",
     "audit: the auditor's state estimation is single-phase (balanced), and this feeder is unbalanced"),
])
def test_a_control_the_feeder_cannot_run_exits_2_before_launch(tmp_path, capsys, body, expected):
    study = tmp_path / "s.yaml"
    study.write_text(body)
    assert main(["run", str(study), "--runs", str(tmp_path / "runs")]) == EXIT_BAD_INPUT
    assert expected in capsys.readouterr().err
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("results.nc"))


def test_federates_run_on_the_broker_host_unless_placed():
    helics = parse_study({**MINIMAL, "helics": {"broker_address": "10.0.0.5", "hosts": {"der": "edge-1"}}}).helics
    assert [helics.host_of(name) for name in ("grid", "ledger", "der")] == ["10.0.0.5", "10.0.0.5", "edge-1"]
    assert parse_study(MINIMAL).helics.host_of("der") == "127.0.0.1"


def test_the_readmes_example_study_file_is_valid():
    import yaml

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = readme.split("### Writing a study file")[1].split("```yaml")[1].split("```")[0]
    study = parse_study(yaml.safe_load(block), "README.md")
    assert study.audit is not None and study.attacks == [] and study.name == "my-study"


@pytest.mark.parametrize("interval_s", [300, 900, 3600])
def test_the_audit_flag_window_defaults_to_two_market_intervals(interval_s):
    study = parse_study({**MINIMAL, "market_interval_s": interval_s, "audit": {}})
    assert study.audit.flag_window_s is None and study.audit.flag_window_for(interval_s) == 2 * interval_s
