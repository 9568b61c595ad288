"""The households', meters' and ledger's parts in trading under pseudonyms, without a chain: classes, the ticket
timeline, the bond, the study's checks, and the blind-signature round trip from requests to relayed registrations."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.agents.pseudonym_desk import PseudonymDesk
from gridledger.agents.pseudonym_plan import bond_wei, funding_problem, household_classes, ticket_intervals, traded
from gridledger.agents.pseudonym_requests import BlindRequests, Deployment, one_time_pair
from gridledger.agents.pseudonym_sides import MeterPseudonyms
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import ProsumerLimits
from gridledger.messages import decode
from gridledger.scenario import build_scenario
from gridledger.study import parse_study
from gridledger.study_pseudonyms import FIRST_INTERVAL
from gridledger.units import price_wei_per_wh
from tests.secret_helpers import fixed_secret

SECRET = fixed_secret(7)
CHAIN_ID = 1337
CONTRACT = "0x" + "c0" * 20
N = 4


def _study(**fields: object) -> dict:
    return {"name": "pseudonymous", "start": "2024-06-21T10:00:00", "duration_s": 6 * 900, "seed": 3,
            "grid": {"feeder": "case33bw"}, "prosumers": {"count": N, "pv": {"share": 0.5}},
            "market": {"submission": "batched", "endowment": 5000.0}, "pseudonyms": {}, **fields}


def test_classes_round_each_limit_up_to_the_step_and_cover_their_households():
    limits = [ProsumerLimits(3200, 0, 0), ProsumerLimits(7400, 4000, 0), ProsumerLimits(12_000, 6000, 5000),
              ProsumerLimits(4900, 0, 0)]
    classes, index = household_classes(limits, step_kw=5.0)
    assert classes == [pn.ClassLimits(5000, 0, 0), pn.ClassLimits(10_000, 5000, 0),
                       pn.ClassLimits(15_000, 10_000, 5000)]
    assert index == [0, 1, 2, 0]


def test_more_than_eight_classes_double_the_step():
    limits = [ProsumerLimits(5000 * r, 0, 0) for r in range(1, 10)]          # nine ratings: 5 ... 45 kW
    classes, index = household_classes(limits, step_kw=5.0)
    assert [c.meter_rating_w for c in classes] == [10_000, 20_000, 30_000, 40_000, 50_000]
    assert index == [0, 0, 1, 1, 2, 2, 3, 3, 4]


def test_a_class_smaller_than_the_minimum_merges_into_the_cheapest_cover():
    # three 5 kW households without PV, two 10 kW with 5 kW PV, one 15 kW with 10 kW PV and a 5 kW battery
    limits = [ProsumerLimits(4000, 0, 0)] * 3 + [ProsumerLimits(9000, 4000, 0)] * 2 + [ProsumerLimits(14_000, 9000, 4000)]
    classes, index = household_classes(limits, step_kw=5.0, min_size=3)
    # the lone 15 kW household merges first: with the 10 kW pair it grants 2 x 15 kW beyond their own limits, with
    # the 5 kW trio 3 x 25 kW; then both classes hold three
    assert classes == [pn.ClassLimits(5000, 0, 0), pn.ClassLimits(15_000, 10_000, 5000)]
    assert index == [0, 0, 0, 1, 1, 1]
    assert household_classes(limits, step_kw=5.0, min_size=7) == ([pn.ClassLimits(15_000, 10_000, 5000)], [0] * 6)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(1, 2_000_000), st.integers(0, 2_000_000), st.integers(0, 2_000_000)),
                min_size=1, max_size=40), st.sampled_from([0.5, 5.0, 50.0]), st.integers(1, 8))
def test_there_are_at_most_eight_classes_each_large_enough_and_each_covering_its_households(raw, step_kw, min_size):
    limits = [ProsumerLimits(*r) for r in raw]
    classes, index = household_classes(limits, step_kw, min_size)
    assert 1 <= len(classes) <= pn.MAX_CLASSES and sorted(set(index)) == list(range(len(classes)))
    assert all(classes[c].covers(lim.meter_rating_w, lim.pv_w, lim.battery_w) for lim, c in zip(limits, index))
    sizes = [index.count(c) for c in range(len(classes))]
    assert len(classes) == 1 or min(sizes) >= min_size


def test_tickets_run_two_intervals_ahead_of_the_orders_and_stop_at_the_study_end():
    assert list(ticket_intervals(1, 10, FIRST_INTERVAL)) == [2, 3]          # at s_0: the pipeline's first two
    assert list(ticket_intervals(2, 10, 4)) == [4]
    assert list(ticket_intervals(7, 10, 9)) == [9]
    assert list(ticket_intervals(8, 10, 10)) == []
    assert [k for k in range(12) if traded(k, 10)] == list(range(FIRST_INTERVAL, 10))


def test_the_default_bond_pays_the_largest_class_bill_of_a_whole_interval():
    sc = build_scenario(parse_study(_study()))
    classes, _ = household_classes(prosumer_limits(sc), 5.0)
    rating_w = max(c.meter_rating_w for c in classes)
    market = sc.study.market
    expected = math.ceil(rating_w / 4) * (price_wei_per_wh(market.grid_buy_price_per_kwh)
                                          + price_wei_per_wh(market.grid_fee_per_kwh))
    assert bond_wei(sc) == expected
    explicit = build_scenario(parse_study(_study(pseudonyms={"bond": 3.5})))
    assert bond_wei(explicit) == 35 * 10**17


def test_an_endowment_below_the_tickets_is_named_with_what_is_allowed():
    sc = build_scenario(parse_study(_study(market={"submission": "batched", "endowment": 1.0})))
    problem = funding_problem(sc)
    assert problem.startswith("market.endowment: 1.0 token cannot pay a bond of ")
    assert "for each of the 6 intervals (the tickets of the 4 traded ones, the bills of the 2 before)" in problem
    assert "allowed: at least" in problem
    assert funding_problem(build_scenario(parse_study(_study()))) is None


@pytest.mark.parametrize("fields, message", [
    ({"market": {"endowment": 5000.0}}, "they need market.submission 'batched'"),
    ({"market": {"submission": "batched", "mechanism": "vickrey"}}, "a mechanism of orders (not a lot auction)"),
    ({"two_phase": {}}, "pseudonyms cannot run with two_phase"),
    ({"market": {"submission": "batched", "voltage_regulation": True}},
     "pseudonyms cannot run with market.voltage_regulation"),
    ({"duration_s": 1800}, "the study needs more than 2 market intervals, it has 2"),
    ({"market": {"submission": "batched", "credit_line": 10.0}}, "pseudonyms need market.credit_line 0"),
])
def test_the_study_refuses_what_would_link_or_cannot_run_pseudonyms(fields, message):
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_study(_study(**fields))


@pytest.fixture(scope="module")
def key() -> pn.RegistrarKey:
    return pn.registrar_key(SECRET)


def _sides(key: pn.RegistrarKey, classes: list[int]):
    owners = [derive_account(SECRET, f"prosumer/{i}") for i in range(N)]
    meters = [derive_account(SECRET, f"meter/{i}") for i in range(N)]

    def pairs(i: int, k: int) -> tuple[str, str]:
        return one_time_pair(owners[i].key, meters[i].key, k)

    deployment = Deployment(CHAIN_ID, CONTRACT, key.n)
    households = BlindRequests(owners, classes, pairs)
    metering = BlindRequests(meters, [pn.METER_CLASS] * N, pairs)
    for side in (households, metering):
        side.connect(deployment)
    return owners, meters, households, metering, pairs


def _desk(key: pn.RegistrarKey, owners, meters, classes, tickets=lambda owner, k: True) -> PseudonymDesk:
    registrar = pn.Registrar(key, CHAIN_ID, CONTRACT, {o.address: c for o, c in zip(owners, classes)},
                             [m.address for m in meters], tickets)
    return PseudonymDesk(build_scenario(parse_study(_study())), None, CHAIN_ID, CONTRACT, "0x" + "70" * 20,
                         registrar, key.n, [])


def _signed(desk: PseudonymDesk, households: BlindRequests, metering: BlindRequests, k: int) -> None:
    """Both sides' requests of interval `k` answered by the desk, each answer to its sender, and unblinded."""
    for side, source in ((households, "der/agents"), (metering, "grid/meters")):
        ((to, answer),) = desk.answers([(source, decode(side.requests(k)))])
        assert to == source
        side.answered(decode(answer))


def _signed_round(key: pn.RegistrarKey, classes: list[int], k: int):
    """Households of `classes` and their meters, a desk, and both sides' signatures of interval `k` unblinded."""
    owners, meters, households, metering, pairs = _sides(key, classes)
    desk = _desk(key, owners, meters, classes)
    _signed(desk, households, metering, k)
    return owners, meters, households, metering, pairs, desk


def test_requests_answers_and_halves_make_one_relayed_registration_per_household_that_verifies(key):
    classes, k = [0, 1, 0, 2], 5
    owners, meters, households, metering, pairs, desk = _signed_round(key, classes, k)
    assert not (households.pending or households.refused or metering.pending or metering.refused)
    relay = Wallet(derive_account(SECRET, "operator"), CHAIN_ID)
    assert desk.relayed(relay, [decode(households.halves(k))]) == []          # the meters' halves are missing
    assert len(desk.relayed(relay, [decode(metering.halves(k))])) == N
    assert not desk.halves
    for i, c in enumerate(classes):
        pseudonym, meter = pairs(i, k)
        assert pseudonym == pn.pseudonym_account(owners[i].key, k).address
        assert meter == pn.meter_account(meters[i].key, k).address


def test_the_unblinded_signatures_verify_under_the_interval_and_class_exponents_only(key):
    classes, k = [0, 1, 0, 2], 3
    _, _, households, metering, pairs, _ = _signed_round(key, classes, k)
    owner_halves = decode(households.halves(k))["halves"]
    meter_halves = decode(metering.halves(k))["halves"]
    for i, (own, met) in enumerate(zip(owner_halves, meter_halves)):
        pseudonym, meter = pairs(i, k)
        h_owner = pn.full_domain_hash(CHAIN_ID, CONTRACT, pseudonym, meter, k)
        h_meter = pn.full_domain_hash(CHAIN_ID, CONTRACT, meter, pseudonym, k)
        s_owner, s_meter = int(own["signature"], 16), int(met["signature"], 16)
        assert pn.verifies(key.n, h_owner, s_owner, pn.window_exponent(k, classes[i]))
        assert pn.verifies(key.n, h_meter, s_meter, pn.window_exponent(k, pn.METER_CLASS))
        assert not pn.verifies(key.n, h_owner, s_owner, pn.window_exponent(k + 1, classes[i]))
        assert not pn.verifies(key.n, h_owner, s_owner, pn.window_exponent(k, (classes[i] + 1) % 3))


def test_a_household_without_a_ticket_or_asking_twice_is_refused_and_sends_no_half(key):
    classes = [0, 0, 0, 0]
    owners, meters, households, _, _ = _sides(key, classes)
    without = owners[1].address
    desk = _desk(key, owners, meters, classes, tickets=lambda owner, k: owner != without)
    households.answered(decode(desk.answers([("der/agents", decode(households.requests(4)))])[0][1]))
    assert households.refused == [(1, 4, "registrar: no ticket")]
    assert [h["pseudonym"] for h in decode(households.halves(4))["halves"]] == [
        one_time_pair(o.key, m.key, 4)[0] for i, (o, m) in enumerate(zip(owners, meters)) if i != 1]
    again = BlindRequests(owners, classes, lambda i, k: ("0x" + "11" * 20, "0x" + "22" * 20))
    again.connect(Deployment(CHAIN_ID, CONTRACT, key.n))
    again.answered(decode(desk.answers([("der/agents", decode(again.requests(4)))])[0][1]))
    assert {reason for _, _, reason in again.refused} == {"registrar: already served", "registrar: no ticket"}


def test_the_relay_drops_a_forged_half_so_the_real_pair_still_registers(key):
    _, _, households, metering, _, desk = _signed_round(key, [0, 0, 0, 0], 6)
    real_owner, real_meter = decode(households.halves(6)), decode(metering.halves(6))
    forged = {"halves": [{**real_owner["halves"][0], "signature": hex(12345)}]}
    relay = Wallet(derive_account(SECRET, "operator"), CHAIN_ID)
    assert desk.relayed(relay, [forged, real_meter]) == []              # the forgery never takes the owner's place
    assert len(desk.relayed(relay, [real_owner])) == N


def test_a_meter_reads_with_its_one_time_key_only_once_its_pair_registered():
    """A household whose pair did not register (its half never sent, or refused) is metered by its bound key, so its
    own account pays that interval's bill; intervals before the first traded one always are."""
    sc = build_scenario(parse_study(_study()))
    meters = [derive_account(SECRET, f"meter/{p.name}") for p in sc.prosumers]
    notice = {"chain_id": CHAIN_ID, "pseudonyms": {"address": CONTRACT, "modulus": hex(2**2047 + 1)}}
    side = MeterPseudonyms(sc, SECRET, notice, meters)
    bound = [Wallet(m, CHAIN_ID) for m in meters]
    one_time = [pn.meter_account(m.key, 3).address for m in meters]
    side.registered.update(one_time[:2])
    assert [w.address for w in side.reading_wallets(3, bound)] == one_time[:2] + [m.address for m in meters[2:]]
    assert [w.address for w in side.reading_wallets(1, bound)] == [m.address for m in meters]
