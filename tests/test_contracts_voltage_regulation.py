"""VoltageRegulation on a real py-evm chain against the Python reference."""

from dataclasses import dataclass
from fractions import Fraction
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import flexibility as fx
from gridledger.contracts.chain import CallReverted, Receipt
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.flex_reference import (
    Award,
    FlexOffer,
    FlexRequest,
    award_offers,
    budget_wei,
    energy_wh,
    offer_bond_wei,
    offer_refusal,
    rank_offers,
    settle_awards,
)

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import Market, new_market, reverted

# Each bus of BUSES has a pool of POOL registered DERs; offers at a bus come from its pool.
BUSES = (1, 2, 5, 7, 10, 11)
POOL = 6
N_PROSUMERS = len(BUSES) * POOL
PENALTY_PERMILLE = 1500
# A second deployment whose odd factor makes bonds and penalties round down.
ODD_PENALTY_PERMILLE = 333
DELIVERY_PERIOD_S = 900
DER_TOKENS_WEI = 10**24
OPERATOR_TOKENS_WEI = 10**26
UNLIMITED_WEI = 2**256 - 1
MAX_RATING_W = 10**9
# Offer phase, then a gap before the window, relative to the head. [s]
OFFER_S = 100
LEAD_S = 100


@dataclass
class Flex:
    """A market with voltage-regulation contracts (penalty factor -> address) and funded wallets."""

    market: Market
    contracts: dict[int, str]
    supply_wei: int
    pools: dict[int, list[int]]

    @property
    def chain(self):
        return self.market.chain

    def balance(self, account: str) -> int:
        return self.market.read("GridToken", "balanceOf", account)

    def accounts(self) -> list[str]:
        return [self.market.operator.address, *(w.address for w in self.market.prosumers), *self.contracts.values()]

    def ders_at(self, buses: list[int]) -> list[int]:
        """Distinct prosumer indices registered at each of ``buses`` in turn, from each bus's pool."""
        taken = {bus: iter(self.pools[bus]) for bus in buses}
        return [next(taken[bus]) for bus in buses]


def _deploy_flex(
    market: Market,
    penalties_permille: tuple[int, ...],
    unapproved: tuple[int, ...] = (),
    facts: dict[int, tuple[int, int]] | None = None,
    min_offer_w: int = 1,
    min_bond_wei: int = 0,
) -> Flex:
    """Deploy one contract per penalty factor on ``market`` with prosumer i registered at
    ``facts[i]`` = (bus, rating W) (by default the pools: POOL prosumers per bus of BUSES, at the
    largest rating); mint tokens to the operator and every prosumer, each of whom approves every
    contract without limit, except the ``unapproved`` prosumers."""
    op = market.operator
    if facts is None:
        facts = {i: (BUSES[i // POOL], MAX_RATING_W) for i in range(len(market.prosumers))}
    ders = [fx.DerFacts(market.prosumers[i].address, bus, rating_w) for i, (bus, rating_w) in facts.items()]
    contracts = {
        k: fx.deploy_voltage_regulation(
            market.chain,
            op,
            market.addresses.registry,
            market.addresses.token,
            penalty_permille=k,
            delivery_period_s=DELIVERY_PERIOD_S,
            min_offer_w=min_offer_w,
            min_bond_wei=min_bond_wei,
            ders=ders,
        )
        for k in penalties_permille
    }
    pools: dict[int, list[int]] = {}
    for i, (bus, _) in facts.items():
        pools.setdefault(bus, []).append(i)
    token = market.addresses.token
    raw = [market.call_tx(op, "GridToken", "mint", op.address, OPERATOR_TOKENS_WEI)]
    raw += [market.call_tx(op, "GridToken", "mint", w.address, DER_TOKENS_WEI) for w in market.prosumers]
    raw += [fx.approve(op, token, a, UNLIMITED_WEI) for a in contracts.values()]
    raw += [
        fx.approve(w, token, a, UNLIMITED_WEI)
        for i, w in enumerate(market.prosumers)
        if i not in unapproved
        for a in contracts.values()
    ]
    receipts = market.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    return Flex(market, contracts, market.read("GridToken", "totalSupply"), pools)


@pytest.fixture(scope="module")
def flex() -> Flex:
    return _deploy_flex(new_market(N_PROSUMERS), (PENALTY_PERMILLE, ODD_PENALTY_PERMILLE))


@dataclass(frozen=True)
class Outcome:
    """What one request did on chain, in the reference's terms."""

    request: FlexRequest
    offers: list[FlexOffer]
    awards: list[Award]
    payments_wei: dict[str, int]
    penalties_wei: dict[str, int]
    bond_refunds_wei: dict[str, int]
    operator_refund_wei: int
    penalty_shares_wei: dict[str, int]
    reserve_before_wei: int
    reserve_wei: int
    deltas_wei: dict[str, int]
    receipts: dict[str, list[Receipt]]


def _events(flex: Flex, receipts: list[Receipt], name: str) -> list[dict]:
    decoded = (flex.chain.decode(log) for r in receipts for log in r.logs)
    return [e.args for e in decoded if e is not None and e.event == name]


def _assert_held_equals_balance(flex: Flex) -> None:
    """Each contract holds exactly the tokens its requests account for plus its penalty reserve."""
    for address in flex.contracts.values():
        n = fx.read(flex.chain, address, "request_count")
        held = sum(fx.read(flex.chain, address, "held_wei", r) for r in range(n))
        assert flex.balance(address) == held + fx.read(flex.chain, address, "penalty_reserve_wei")


def _run(
    flex: Flex,
    zone: dict[int, int],
    p_w: int,
    window_s: int,
    cap: int,
    offers: list[tuple[int, int, int]],
    deliveries: dict[int, int],
    *,
    penalty_permille: int = PENALTY_PERMILLE,
    direction_raise: bool = True,
) -> Outcome:
    """Post a request, offer (p_w, price, bus) from DERs registered at each bus (`Flex.ders_at`),
    award at the deadline, post the deliveries {offer index: Wh} at the window's end and close
    after the delivery period.

    Checks gas limits, the held-tokens invariant after every phase, the supply and the
    conservation of every balance; returns the flows read from events and balances.
    """
    market, address = flex.market, flex.contracts[penalty_permille]
    accounts = flex.accounts()
    before = {a: flex.balance(a) for a in accounts}
    reserve_before_wei = fx.read(flex.chain, address, "penalty_reserve_wei")
    head = flex.chain.timestamp
    deadline = head + OFFER_S
    start = deadline + LEAD_S
    end = start + window_s
    receipts: dict[str, list[Receipt]] = {}

    def mine(phase: str, raw: list[bytes], timestamp: int) -> None:
        receipts[phase] = market.mine(raw, timestamp)
        assert all(r.ok for r in receipts[phase]), [r.revert_reason for r in receipts[phase]]
        _assert_held_equals_balance(flex)

    mine(
        "post",
        [
            fx.post_request(
                market.operator,
                address,
                sensitivities_upu_per_kw=zone,
                direction_raise=direction_raise,
                p_w=p_w,
                window_start_timestamp=start,
                window_end_timestamp=end,
                offer_deadline_timestamp=deadline,
                price_cap_wei_per_wh=cap,
            )
        ],
        head + 1,
    )
    (posted,) = _events(flex, receipts["post"], "RequestPosted")
    request_id = posted["request_id"]
    indices = flex.ders_at([b for _, _, b in offers])
    ders = [market.prosumers[i] for i in indices]
    mine(
        "offer",
        [fx.offer(w, address, request_id, p_w=q, price_wei_per_wh=c) for w, (q, c, _) in zip(ders, offers)],
        head + 2,
    )
    mine("award", [fx.award(market.outsider, address, request_id, n_offers=len(offers))], deadline)
    mine(
        "deliver",
        [
            fx.post_delivery(market.meters[indices[i]], address, request_id, delivered_wh=d)
            for i, d in sorted(deliveries.items())
        ],
        end,
    )
    mine("close", [fx.close(market.outsider, address, request_id, n_offers=len(offers))], end + DELIVERY_PERIOD_S)

    request = FlexRequest(zone, p_w, window_s, cap)
    ref_offers = [FlexOffer(w.address, q, c, b) for w, (q, c, b) in zip(ders, offers)]
    assert posted["budget_wei"] == budget_wei(request)
    assert [e["bond_wei"] for e in _events(flex, receipts["offer"], "Offered")] == [
        offer_bond_wei(request, o, penalty_permille) for o in ref_offers
    ]
    awarded = _events(flex, receipts["award"], "Awarded")
    settled = _events(flex, receipts["deliver"] + receipts["close"], "Settled")
    refunds = {e["der"]: e["bond_released_wei"] for e in awarded}
    for e in settled:
        refunds[e["der"]] += e["bond_refund_wei"]
    (closed,) = _events(flex, receipts["close"], "Closed")
    reserve_wei = fx.read(flex.chain, address, "penalty_reserve_wei")
    assert closed["reserve_wei"] == reserve_wei
    assert flex.balance(address) == reserve_wei
    assert fx.request(flex.chain, address, request_id).closed
    after = {a: flex.balance(a) for a in accounts}
    assert sum(after.values()) == sum(before.values())
    assert market.read("GridToken", "totalSupply") == flex.supply_wei
    for phase, rs in receipts.items():
        limit = {
            "post": fx.post_request_gas(len(zone)),
            "offer": fx.GAS_OFFER,
            "award": fx.award_gas(len(offers)),
            "deliver": fx.GAS_POST_DELIVERY,
            "close": fx.close_gas(len(offers)),
        }[phase]
        assert all(r.gas_used <= limit for r in rs), (phase, [r.gas_used for r in rs], limit)
    return Outcome(
        request,
        ref_offers,
        fx.decode_awards(flex.chain, receipts["award"][0]),
        {e["der"]: e["payment_wei"] for e in settled},
        {e["der"]: e["penalty_wei"] for e in settled},
        refunds,
        closed["operator_refund_wei"],
        {e["der"]: e["share_wei"] for e in _events(flex, receipts["close"], "PenaltyShared")},
        reserve_before_wei,
        reserve_wei,
        {a: after[a] - before[a] for a in accounts},
        receipts,
    )


def _assert_matches_reference(flex: Flex, outcome: Outcome, deliveries: dict[int, int], penalty_permille: int):
    """On-chain awards, payments, penalties, refunds and balance changes equal the reference."""
    awards = award_offers(outcome.request, outcome.offers)
    assert outcome.awards == awards
    by_der = {a.der: a.p_w for a in awards}
    request_id = fx.read(flex.chain, flex.contracts[penalty_permille], "request_count") - 1
    stored = fx.offers(flex.chain, flex.contracts[penalty_permille], request_id)
    assert [o.awarded_p_w for o in stored] == [by_der[o.der] for o in outcome.offers]
    delivered = {outcome.offers[i].der: d for i, d in deliveries.items()}
    ref = settle_awards(outcome.request, awards, delivered, penalty_permille, outcome.reserve_before_wei)
    assert outcome.payments_wei == ref.payments_wei
    assert outcome.penalties_wei == ref.penalties_wei
    assert outcome.bond_refunds_wei == ref.bond_refunds_wei
    assert outcome.operator_refund_wei == ref.operator_refund_wei
    assert outcome.penalty_shares_wei == ref.penalty_shares_wei
    assert outcome.reserve_wei == ref.reserve_wei
    operator = flex.market.operator.address
    assert outcome.deltas_wei[operator] == ref.operator_refund_wei - budget_wei(outcome.request)
    for offer in outcome.offers:
        assert outcome.deltas_wei[offer.der] == (
            ref.payments_wei.get(offer.der, 0)
            - ref.penalties_wei.get(offer.der, 0)
            + ref.penalty_shares_wei.get(offer.der, 0)
        )
    return ref


# Hand-computed requests. Offers come from d0, d1, ... as (p_w, price, bus); prices in
# CENT = 1e13 wei/Wh; penalty factor 1.5, so a bond is 1.5 * energy * price. Expected
# awards {der: (p_w, energy_wh)}, then {der: wei} payments, penalties, total bond
# refunds, and the operator's refund at close: the unspent budget, never the penalties
# (they are shared among the DERs that delivered, checked against the reference).
HAND_REQUESTS = [
    pytest.param(
        # Bus 10 moves the voltage 400 upu/kW, bus 11 only 100: d1's 20 per 400 (0.05) beats
        # d0's cheaper 10 per 100 (0.1). d1 takes 4000 W, d0 the last 1000 W of 5000 W.
        # 1 h window: E = p. d1 delivers in full: 4000 * 20 = 80000. d0 delivers 600 of
        # 1000 Wh: paid 600 * 10 = 6000, penalty 400 * 10 * 1.5 = 6000. Bonds: d0 posts
        # 4000 * 10 * 1.5 = 60000, gets 45000 back at award and 15000 - 6000 = 9000 after;
        # d1 posts and gets back 4000 * 20 * 1.5 = 120000. Budget 5000 * 50 = 250000;
        # operator gets 250000 - 86000 = 164000.
        {10: 400, 11: 100},
        5000,
        3600,
        50 * CENT,
        True,
        [(4000, 10 * CENT, 11), (4000, 20 * CENT, 10)],
        {0: 600, 1: 4000},
        {"d1": (4000, 4000), "d0": (1000, 1000)},
        {"d0": 6000 * CENT, "d1": 80000 * CENT},
        {"d0": 6000 * CENT, "d1": 0},
        {"d0": 54000 * CENT, "d1": 120000 * CENT},
        164000 * CENT,
        id="sensitivity-beats-cheapest-price-partial-last",
    ),
    pytest.param(
        # d0 10 per 100 and d1 20 per 200 tie at 0.1 and keep offer order; d2 30 per 200 is
        # last. 3000 W: d0 2000 W, d1 1000 W, d2 nothing. d0 over-delivers 2500 Wh and is
        # paid its 2000 * 10 = 20000; d1 posts nothing: penalty 1000 * 20 * 1.5 = 30000, its
        # whole held bond (of 60000 posted, 30000 came back at award). d2's bond
        # 2000 * 30 * 1.5 = 90000 comes back at award. Budget 3000 * 40 = 120000; operator
        # gets 120000 - 20000 = 100000.
        {1: 200, 2: 100},
        3000,
        3600,
        40 * CENT,
        True,
        [(2000, 10 * CENT, 2), (2000, 20 * CENT, 1), (2000, 30 * CENT, 1)],
        {0: 2500},
        {"d0": (2000, 2000), "d1": (1000, 1000), "d2": (0, 0)},
        {"d0": 20000 * CENT, "d1": 0},
        {"d0": 0, "d1": 30000 * CENT},
        {"d0": 30000 * CENT, "d1": 30000 * CENT, "d2": 90000 * CENT},
        100000 * CENT,
        id="tie-keeps-offer-order-missing-delivery-forfeits-bond",
    ),
    pytest.param(
        # 10000 W for 15 min (E = 2500 Wh) but only 5000 W offered: both in full, d1 (5)
        # before d0 (15). d1 delivers 500 of 500 Wh: 2500. d0 delivers 700 of 750 Wh:
        # paid 10500, penalty 50 * 15 * 1.5 = 1125. Budget 2500 * 20 = 50000; operator gets
        # 50000 - 13000 = 37000. Lower the voltage: direction does not change money.
        {5: 50},
        10000,
        900,
        20 * CENT,
        False,
        [(3000, 15 * CENT, 5), (2000, 5 * CENT, 5)],
        {0: 700, 1: 500},
        {"d1": (2000, 500), "d0": (3000, 750)},
        {"d0": 10500 * CENT, "d1": 2500 * CENT},
        {"d0": 1125 * CENT, "d1": 0},
        {"d0": 15750 * CENT, "d1": 3750 * CENT},
        37000 * CENT,
        id="under-subscribed-lower",
    ),
    pytest.param(
        # 1001 W for 15 min: E = floor(250.25) = 250 Wh. Equal offers at one bus: d0 1000 W
        # (250 Wh) first, d1 gets the last 1 W, floor(0.25) = 0 Wh: no energy, its whole bond
        # 125 * 10 * 1.5 = 1875 comes back at award, and its meter's zero is neither paid nor
        # penalised. d0 delivers 250: 2500. Budget 250 * 20 = 5000; operator gets 2500.
        {7: 30},
        1001,
        900,
        20 * CENT,
        True,
        [(1000, 10 * CENT, 7), (500, 10 * CENT, 7)],
        {0: 250, 1: 0},
        {"d0": (1000, 250), "d1": (1, 0)},
        {"d0": 2500 * CENT, "d1": 0},
        {"d0": 0, "d1": 0},
        {"d0": 3750 * CENT, "d1": 1875 * CENT},
        2500 * CENT,
        id="partial-award-rounds-to-zero-energy",
    ),
]


@pytest.mark.parametrize(
    "zone, p_w, window_s, cap, direction_raise, offers, deliveries, awards, payments, penalties, refunds, operator_refund",
    HAND_REQUESTS,
)
def test_hand_computed_requests_award_and_settle_as_written(
    flex, zone, p_w, window_s, cap, direction_raise, offers, deliveries, awards, payments, penalties, refunds, operator_refund
):
    outcome = _run(flex, zone, p_w, window_s, cap, offers, deliveries, direction_raise=direction_raise)
    names = {f"d{i}": offer.der for i, offer in enumerate(outcome.offers)}
    ref = _assert_matches_reference(flex, outcome, deliveries, PENALTY_PERMILLE)
    assert [a.der for a in outcome.awards] == [names[n] for n in awards]
    assert {a.der: (a.p_w, a.energy_wh) for a in outcome.awards} == {names[n]: v for n, v in awards.items()}
    assert ref.payments_wei == {names[n]: v for n, v in payments.items()}
    assert ref.penalties_wei == {names[n]: v for n, v in penalties.items()}
    assert ref.bond_refunds_wei == {names[n]: v for n, v in refunds.items()}
    assert ref.operator_refund_wei == operator_refund


def test_lapsed_request_returns_every_bond_and_the_budget(flex):
    market, address = flex.market, flex.contracts[PENALTY_PERMILLE]
    head = flex.chain.timestamp
    # Prosumers 0 and 1 are registered at bus 1.
    request = FlexRequest({1: 100}, 2000, 3600, 10 * CENT)
    before = {a: flex.balance(a) for a in flex.accounts()}
    (posted,) = market.mine(
        [
            fx.post_request(
                market.operator,
                address,
                sensitivities_upu_per_kw=request.sensitivities_upu_per_kw,
                direction_raise=True,
                p_w=request.p_w,
                window_start_timestamp=head + 20,
                window_end_timestamp=head + 20 + request.window_s,
                offer_deadline_timestamp=head + 10,
                price_cap_wei_per_wh=request.price_cap_wei_per_wh,
            )
        ]
    )
    request_id = _events(flex, [posted], "RequestPosted")[0]["request_id"]
    offered = market.mine(
        [fx.offer(w, address, request_id, p_w=1000, price_wei_per_wh=5 * CENT) for w in market.prosumers[:2]]
    )
    assert all(r.ok for r in offered)
    reserve_wei = fx.read(flex.chain, address, "penalty_reserve_wei")
    assert flex.balance(address) == budget_wei(request) + 2 * 1000 * 5 * CENT * 3 // 2 + reserve_wei
    # Nobody awards before the window: the request lapses.
    (late,) = market.mine([fx.award(market.outsider, address, request_id, n_offers=2)], head + 20)
    assert reverted(late, "flexibility: window started")
    (delivery,) = market.mine([fx.post_delivery(market.meters[0], address, request_id, delivered_wh=1000)])
    assert reverted(delivery, "flexibility: prosumer has no award")
    deadline = fx.read(flex.chain, address, "delivery_deadline_timestamp", request_id)
    assert deadline == head + 20 + 3600 + DELIVERY_PERIOD_S
    (closed,) = market.mine([fx.close(market.outsider, address, request_id, n_offers=2)], deadline)
    assert closed.ok and closed.gas_used <= fx.close_gas(2)
    returned = _events(flex, [closed], "BondReturned")
    assert [(e["der"], e["bond_wei"]) for e in returned] == [(w.address, 7500 * CENT) for w in market.prosumers[:2]]
    assert _events(flex, [closed], "Closed")[0]["operator_refund_wei"] == budget_wei(request)
    assert {a: flex.balance(a) for a in flex.accounts()} == before
    assert fx.read(flex.chain, address, "held_wei", request_id) == 0


ZONES = st.dictionaries(
    st.sampled_from(BUSES),
    st.one_of(st.sampled_from([50, 100, 200, 400]), st.integers(1, 10**6)),
    min_size=1,
    max_size=4,
)
WINDOWS_S = st.sampled_from([900, 3600, 3601, 5400, 86400])


@st.composite
def requests(draw, max_offers: int = POOL):
    """(zone, p_w, window_s, cap, offers, delivery per offer or None) with prices on a
    coarse grid (many ties) or anywhere up to the cap."""
    zone = draw(ZONES)
    window_s = draw(WINDOWS_S)
    min_p_w = -(-3600 // window_s)
    p_w = draw(st.integers(min_p_w, 20_000))
    cap = draw(st.one_of(st.sampled_from([k * 10 * CENT for k in range(1, 11)]), st.integers(1, 10**15)))
    price = st.one_of(st.sampled_from([max(1, cap * k // 4) for k in range(1, 5)]), st.integers(1, cap))
    offers = draw(
        st.lists(
            st.tuples(st.integers(min_p_w, p_w), price, st.sampled_from(sorted(zone))), max_size=max_offers
        )
    )
    delivered = draw(
        st.lists(st.one_of(st.none(), st.integers(0, 500_000)), min_size=len(offers), max_size=len(offers))
    )
    return zone, p_w, window_s, cap, offers, delivered


@settings(max_examples=40, deadline=None)
@given(case=requests(), penalty_permille=st.sampled_from([PENALTY_PERMILLE, ODD_PENALTY_PERMILLE]))
def test_onchain_awards_and_settlement_equal_reference_and_conserve_tokens(flex, case, penalty_permille):
    zone, p_w, window_s, cap, offers, delivered = case
    request = FlexRequest(zone, p_w, window_s, cap)
    awards = award_offers(request, [FlexOffer(f"d{i}", q, c, b) for i, (q, c, b) in enumerate(offers)])
    awarded = {a.offer_index for a in awards if a.p_w}
    deliveries = {i: d for i, d in enumerate(delivered) if d is not None and i in awarded}
    outcome = _run(flex, zone, p_w, window_s, cap, offers, deliveries, penalty_permille=penalty_permille)
    _assert_matches_reference(flex, outcome, deliveries, penalty_permille)


@settings(max_examples=500, deadline=None)
@given(case=requests(max_offers=20), penalty_permille=st.integers(0, 10_000))
def test_reference_awards_cover_the_request_in_rank_order_and_flows_balance(case, penalty_permille):
    zone, p_w, window_s, cap, offers, delivered = case
    request = FlexRequest(zone, p_w, window_s, cap)
    ref_offers = [FlexOffer(f"d{i}", q, c, b) for i, (q, c, b) in enumerate(offers)]
    awards = award_offers(request, ref_offers)
    assert [a.offer_index for a in awards] == rank_offers(request, ref_offers)
    assert sum(a.p_w for a in awards) == min(p_w, sum(o.p_w for o in ref_offers))
    costs = [(Fraction(a.price_wei_per_wh, zone[ref_offers[a.offer_index].bus]), a.offer_index) for a in awards]
    assert all(x < y for x, y in pairwise(costs))
    # Full awards, then at most one partial one, then nothing.
    shapes = [0 if a.p_w == 0 else 2 if a.p_w == a.offered_p_w else 1 for a in awards]
    assert shapes == sorted(shapes, reverse=True) and shapes.count(1) <= 1
    deliveries = {a.der: d for a, d in zip(awards, delivered) if d is not None and a.p_w}
    ref = settle_awards(request, awards, deliveries, penalty_permille)
    for a in awards:
        bond = offer_bond_wei(request, ref_offers[a.offer_index], penalty_permille)
        assert ref.payments_wei.get(a.der, 0) <= a.energy_wh * a.price_wei_per_wh
        assert ref.penalties_wei.get(a.der, 0) + ref.bond_refunds_wei[a.der] == bond
    paid = sum(ref.payments_wei.values())
    assert paid + ref.operator_refund_wei == budget_wei(request)
    assert sum(ref.penalty_shares_wei.values()) + ref.reserve_wei == sum(ref.penalties_wei.values())
    assert ref.operator_refund_wei >= 0 and sum(a.energy_wh for a in awards) <= energy_wh(p_w, window_s)


def test_reference_refuses_deliveries_without_an_award():
    request = FlexRequest({1: 10}, 100, 3600, 5)
    awards = award_offers(request, [FlexOffer("d0", 100, 5, 1), FlexOffer("d1", 100, 5, 1)])
    with pytest.raises(ValueError, match="without an award"):
        settle_awards(request, awards, {"d1": 1}, PENALTY_PERMILLE)
    with pytest.raises(ValueError, match="outside the zone"):
        award_offers(request, [FlexOffer("d0", 100, 5, 2)])
    with pytest.raises(ValueError, match="only once"):
        award_offers(request, [FlexOffer("d0", 100, 5, 1), FlexOffer("d0", 50, 5, 1)])


# Scene of the revert matrix; every time is relative to the head T after set-up. [s]
FAR_S = 10**6


@pytest.fixture(scope="module")
def scene() -> tuple[Flex, dict]:
    """Requests in every phase, on one contract, with prosumer p5 holding no allowance:

    - "@done" (window T+20..T+30): p0 awarded, closed;
    - "@deliver" (window T+20..T+3620, delivery until T+4520): p1, p2 awarded, p3 not;
      meter1 has posted;
    - "@awarded" (window from T+20000): p1 awarded, window not started;
    - "@late" (window from T+20): never awarded, window started;
    - "@open" (offers until T+FAR_S, a 10 s window): p0 has offered at bus 1.

    Zones are {1: 100, 2: 200}; caps 10 CENT; 1000 W requested. p0, p1, p3 and p5 are
    registered at bus 1, p2 at bus 2 with an 800 W rating, p4 at bus 3 (outside every zone);
    p6 is not registered. Offers need 100 W and a bond of CENT wei.
    """
    facts = {0: (1, 10**6), 1: (1, 10**6), 2: (2, 800), 3: (1, 10**6), 4: (3, 10**6), 5: (1, 10**6)}
    flex = _deploy_flex(
        new_market(7), (PENALTY_PERMILLE,), unapproved=(5,), facts=facts, min_offer_w=100, min_bond_wei=CENT
    )
    market, address = flex.market, flex.contracts[PENALTY_PERMILLE]
    p, op = market.prosumers, market.operator
    t = flex.chain.timestamp
    windows = {
        "@done": (t + 10, t + 20, t + 30),
        "@deliver": (t + 10, t + 20, t + 3620),
        "@awarded": (t + 10, t + 20_000, t + 30_000),
        "@late": (t + 10, t + 20, t + 30_000),
        "@open": (t + FAR_S, t + FAR_S + 10, t + FAR_S + 20),
    }
    posted = market.mine(
        [
            fx.post_request(
                op,
                address,
                sensitivities_upu_per_kw={1: 100, 2: 200},
                direction_raise=True,
                p_w=1000,
                window_start_timestamp=start,
                window_end_timestamp=end,
                offer_deadline_timestamp=deadline,
                price_cap_wei_per_wh=10 * CENT,
            )
            for deadline, start, end in windows.values()
        ],
        t + 1,
    )
    symbols = {name: _events(flex, [r], "RequestPosted")[0]["request_id"] for name, r in zip(windows, posted)}
    offers = [
        ("@done", 0, 1000, 5 * CENT),
        ("@deliver", 1, 600, 1 * CENT),
        ("@deliver", 2, 600, 2 * CENT),
        ("@deliver", 3, 600, 9 * CENT),
        ("@awarded", 1, 1000, 1 * CENT),
        ("@late", 1, 1000, 1 * CENT),
        ("@open", 0, 1000, 1 * CENT),
    ]
    steps = [
        ([fx.offer(p[i], address, symbols[r], p_w=q, price_wei_per_wh=c) for r, i, q, c in offers], t + 2),
        ([fx.award(op, address, symbols[r], n_offers=3) for r in ("@done", "@deliver", "@awarded")], t + 10),
        ([fx.close(op, address, symbols["@done"], n_offers=1)], t + 30 + DELIVERY_PERIOD_S),
        ([fx.post_delivery(market.meters[1], address, symbols["@deliver"], delivered_wh=600)], t + 3620),
    ]
    for raw, timestamp in steps:
        receipts = market.mine(raw, timestamp)
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    assert [o.awarded_p_w for o in fx.offers(flex.chain, address, symbols["@deliver"])] == [600, 400, 0]
    # A valid new request's offer deadline, window start and end (3599 s: 1 W rounds to 0 Wh).
    symbols.update({"@future": t + FAR_S, "@future+1": t + FAR_S + 1, "@future+3600": t + FAR_S + 3600})
    symbols["p6"] = p[6].address
    return flex, symbols


def _request_args(**changes):
    """post_request arguments of a valid request, with ``changes``."""
    args = {
        "zone_buses": [1, 2],
        "sensitivities": [100, 200],
        "direction_raise": True,
        "p_w": 1000,
        "window_start": "@future+1",
        "window_end": "@future+3600",
        "offer_deadline": "@future",
        "price_cap": 10 * CENT,
    }
    args.update(changes)
    return tuple(args.values())


# (reason, who signs, function, arguments); "@x" are symbols of the scene.
CASES = [
    ("flexibility: caller is not operator", "outsider", "post_request", _request_args()),
    ("flexibility: caller is not operator", "p0", "post_request", _request_args()),
    ("flexibility: empty zone", "operator", "post_request", _request_args(zone_buses=[], sensitivities=[])),
    ("flexibility: zone length mismatch", "operator", "post_request", _request_args(sensitivities=[100])),
    ("flexibility: zero power", "operator", "post_request", _request_args(p_w=0)),
    ("flexibility: power above limit", "operator", "post_request", _request_args(p_w=10**9 + 1)),
    ("flexibility: zero price cap", "operator", "post_request", _request_args(price_cap=0)),
    ("flexibility: price cap above limit", "operator", "post_request", _request_args(price_cap=10**24 + 1)),
    (
        "flexibility: deadline passed",
        "operator",
        "post_request",
        _request_args(offer_deadline=1, window_start=2, window_end=3),
    ),
    (
        "flexibility: deadline not before window",
        "operator",
        "post_request",
        _request_args(window_start="@future"),
    ),
    ("flexibility: empty window", "operator", "post_request", _request_args(window_end="@future+1")),
    (
        "flexibility: window too long",
        "operator",
        "post_request",
        _request_args(window_end=("@future+1", 86400 + 1)),
    ),
    ("flexibility: zero energy", "operator", "post_request", _request_args(p_w=1)),
    ("flexibility: zero sensitivity", "operator", "post_request", _request_args(sensitivities=[100, 0])),
    (
        "flexibility: sensitivity above limit",
        "operator",
        "post_request",
        _request_args(sensitivities=[10**6 + 1, 1]),
    ),
    ("flexibility: duplicate bus", "operator", "post_request", _request_args(zone_buses=[2, 2])),
    ("flexibility: unknown request", "p1", "offer", (99, 1000, CENT)),
    ("flexibility: caller is not a prosumer", "outsider", "offer", ("@open", 1000, CENT)),
    ("flexibility: caller is not a prosumer", "meter1", "offer", ("@open", 1000, CENT)),
    ("flexibility: DER not registered", "p6", "offer", ("@open", 1000, CENT)),
    ("flexibility: offers closed", "p2", "offer", ("@awarded", 1000, CENT)),
    ("flexibility: zero power", "p1", "offer", ("@open", 0, CENT)),
    ("flexibility: power below minimum", "p1", "offer", ("@open", 99, CENT)),
    ("flexibility: power above request", "p1", "offer", ("@open", 1001, CENT)),
    ("flexibility: power above rating", "p2", "offer", ("@open", 801, CENT)),
    ("flexibility: zero energy", "p1", "offer", ("@open", 359, CENT)),
    ("flexibility: zero price", "p1", "offer", ("@open", 1000, 0)),
    ("flexibility: price above cap", "p1", "offer", ("@open", 1000, 10 * CENT + 1)),
    ("flexibility: bus not in zone", "p4", "offer", ("@open", 1000, CENT)),
    ("flexibility: offer exists", "p0", "offer", ("@open", 1000, CENT)),
    # 400 W over 10 s is 1 Wh: a bond of 1.5 wei at 1 wei/Wh.
    ("flexibility: bond below minimum", "p1", "offer", ("@open", 400, 1)),
    ("token: insufficient allowance", "p5", "offer", ("@open", 1000, CENT)),
    ("flexibility: caller is not registrar", "outsider", "register_der", ("p6", 1, 1000)),
    ("flexibility: registration closed", "operator", "register_der", ("p6", 1, 1000)),
    ("flexibility: unknown request", "outsider", "award", (99,)),
    ("flexibility: offers open", "outsider", "award", ("@open",)),
    ("flexibility: window started", "outsider", "award", ("@late",)),
    ("flexibility: already awarded", "outsider", "award", ("@awarded",)),
    ("flexibility: unknown request", "meter2", "post_delivery", (99, 1)),
    ("flexibility: caller is not a bound meter", "outsider", "post_delivery", ("@deliver", 1)),
    ("flexibility: caller is not a bound meter", "p2", "post_delivery", ("@deliver", 1)),
    ("flexibility: prosumer has no award", "meter3", "post_delivery", ("@deliver", 1)),
    ("flexibility: prosumer has no award", "meter4", "post_delivery", ("@deliver", 1)),
    ("flexibility: window not ended", "meter1", "post_delivery", ("@awarded", 1)),
    ("flexibility: delivery closed", "meter0", "post_delivery", ("@done", 1)),
    ("flexibility: delivery posted", "meter1", "post_delivery", ("@deliver", 1)),
    ("flexibility: delivery above limit", "meter2", "post_delivery", ("@deliver", 10**12 + 1)),
    ("flexibility: unknown request", "outsider", "close", (99,)),
    ("flexibility: delivery open", "outsider", "close", ("@deliver",)),
    ("flexibility: already closed", "outsider", "close", ("@done",)),
]


@pytest.mark.parametrize("reason, who, function, args", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_transaction_reverts_with_exact_reason(scene, reason, who, function, args):
    flex, symbols = scene
    market = flex.market

    def resolve(arg):
        if isinstance(arg, str):
            return symbols[arg]
        if isinstance(arg, tuple):
            return symbols[arg[0]] + arg[1]
        return arg

    signer = market.operator if who == "operator" else market.signer(who)
    raw = signer.transact(
        flex.contracts[PENALTY_PERMILLE],
        encode_call("VoltageRegulation", function, *(resolve(a) for a in args)),
        gas=1_000_000,
    )
    (receipt,) = market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason


def test_views_of_an_unknown_request_revert_and_the_zone_reads_back(scene):
    flex, symbols = scene
    address = flex.contracts[PENALTY_PERMILLE]
    for function, args in [
        ("request", (99,)),
        ("offers", (99,)),
        ("held_wei", (99,)),
        ("sensitivity_upu_per_kw", (99, 1)),
        ("delivery_deadline_timestamp", (99,)),
    ]:
        with pytest.raises(CallReverted) as raised:
            flex.chain.call(address, encode_call("VoltageRegulation", function, *args))
        assert raised.value.reason == "flexibility: unknown request"
    request_id = symbols["@deliver"]
    assert [fx.read(flex.chain, address, "sensitivity_upu_per_kw", request_id, b) for b in (1, 2, 3)] == [100, 200, 0]
    state = fx.request(flex.chain, address, request_id)
    assert (state.awarded, state.awarded_p_w, state.offer_count, state.closed) == (True, 1000, 3, False)
    # Budget 1000 Wh * 10 CENT; p1 paid 600 * 1 CENT; p2's bond 400 * 2 * 1.5 CENT still held.
    assert (state.budget_wei, state.paid_wei, state.penalties_wei, state.bonds_wei) == (
        10_000 * CENT,
        600 * CENT,
        0,
        1200 * CENT,
    )
    assert fx.read(flex.chain, address, "held_wei", request_id) == (10_000 - 600 + 1200) * CENT


@pytest.mark.parametrize(
    "reason, operator_is_zero, penalty_permille, delivery_period_s, min_offer_w",
    [
        ("flexibility: operator lacks operator role", True, 1000, 900, 1),
        ("flexibility: penalty above limit", False, 10_001, 900, 1),
        ("flexibility: delivery period out of range", False, 1000, 0, 1),
        ("flexibility: delivery period out of range", False, 1000, 7 * 86400 + 1, 1),
        ("flexibility: minimum offer out of range", False, 1000, 900, 0),
        ("flexibility: minimum offer out of range", False, 1000, 900, 10**9 + 1),
    ],
)
def test_constructor_reverts_with_exact_reason(
    scene, reason, operator_is_zero, penalty_permille, delivery_period_s, min_offer_w
):
    flex, _ = scene
    market = flex.market
    operator = "0x" + "00" * 20 if operator_is_zero else market.operator.address
    receipt = market.deploy(
        "VoltageRegulation",
        market.addresses.registry,
        market.addresses.token,
        operator,
        penalty_permille,
        delivery_period_s,
        min_offer_w,
        0,
    )
    assert reverted(receipt, reason), receipt.revert_reason


def test_a_deployer_without_the_operator_role_cannot_become_registrar(scene):
    flex, _ = scene
    market = flex.market
    raw, _ = market.outsider.deploy(
        load_artifact("VoltageRegulation"),
        market.addresses.registry,
        market.addresses.token,
        market.operator.address,
        1000,
        900,
        1,
        0,
    )
    (receipt,) = market.mine([raw])
    assert reverted(receipt, "flexibility: deployer lacks operator role"), receipt.revert_reason


def test_gas_stays_within_the_signed_limits_at_the_contract_maxima():
    """64 offers (each ranking ahead of all before it: the sort's worst case) on a 32-bus zone,
    one request awarded and settled, one left to lapse; a 65th offer is refused."""
    max_offers, max_buses = 64, 32
    facts = {i: (i % max_buses, MAX_RATING_W) for i in range(max_offers + 1)}
    flex = _deploy_flex(new_market(max_offers + 1), (PENALTY_PERMILLE,), facts=facts)
    market, address = flex.market, flex.contracts[PENALTY_PERMILLE]
    assert fx.read(flex.chain, address, "MAX_OFFERS") == max_offers
    assert fx.read(flex.chain, address, "MAX_ZONE_BUSES") == max_buses
    t = flex.chain.timestamp
    zone = {bus: 100 + bus for bus in range(max_buses)}
    posted = market.mine(
        [
            fx.post_request(
                market.operator,
                address,
                sensitivities_upu_per_kw=zone,
                direction_raise=False,
                p_w=max_offers * 1000 // 2,
                window_start_timestamp=t + 200,
                window_end_timestamp=t + 200 + 3600,
                offer_deadline_timestamp=t + 100,
                price_cap_wei_per_wh=100 * CENT,
            )
            for _ in range(2)
        ],
        t + 1,
    )
    assert all(r.ok and r.gas_used <= fx.post_request_gas(max_buses) for r in posted)
    awarded, lapsing = (_events(flex, [r], "RequestPosted")[0]["request_id"] for r in posted)
    offered = market.mine(
        [
            fx.offer(w, address, request_id, p_w=1000, price_wei_per_wh=(100 - i) * CENT)
            for request_id in (awarded, lapsing)
            for i, w in enumerate(market.prosumers[:max_offers])
        ],
        t + 2,
    )
    assert all(r.ok and r.gas_used <= fx.GAS_OFFER for r in offered)
    (full,) = market.mine([fx.offer(market.prosumers[-1], address, awarded, p_w=1000, price_wei_per_wh=1)])
    assert reverted(full, "flexibility: request full")
    (award,) = market.mine([fx.award(market.outsider, address, awarded, n_offers=max_offers)], t + 100)
    assert award.ok and award.gas_used <= fx.award_gas(max_offers)
    awards = fx.decode_awards(flex.chain, award)
    winners = [a.offer_index for a in awards if a.p_w]
    assert len(winners) == max_offers // 2
    delivered = market.mine(
        [
            fx.post_delivery(market.meters[i], address, awarded, delivered_wh=500 + i)
            for i in winners[: len(winners) // 2]
        ],
        t + 200 + 3600,
    )
    assert all(r.ok and r.gas_used <= fx.GAS_POST_DELIVERY for r in delivered)
    closed = market.mine(
        [fx.close(market.outsider, address, r, n_offers=max_offers) for r in (awarded, lapsing)],
        t + 200 + 3600 + DELIVERY_PERIOD_S,
    )
    assert all(r.ok and r.gas_used <= fx.close_gas(max_offers) for r in closed), [r.gas_used for r in closed]
    assert flex.balance(address) == fx.read(flex.chain, address, "penalty_reserve_wei")


@pytest.fixture(scope="module")
def terms() -> tuple[Flex, int, FlexRequest]:
    """A contract taking offers of at least 100 W and bonds of at least CENT wei, p0 registered at
    bus 1 and p1 at bus 2, both rated 3 kW, and a request open for offers: 5 kW at bus 1 for 900 s."""
    flex = _deploy_flex(
        new_market(2), (PENALTY_PERMILLE,), facts={0: (1, 3000), 1: (2, 3000)}, min_offer_w=100, min_bond_wei=CENT
    )
    request = FlexRequest({1: 100}, 5000, 900, 50 * CENT)
    t = flex.chain.timestamp
    (posted,) = flex.market.mine(
        [
            fx.post_request(
                flex.market.operator,
                flex.contracts[PENALTY_PERMILLE],
                sensitivities_upu_per_kw=request.sensitivities_upu_per_kw,
                direction_raise=False,
                p_w=request.p_w,
                window_start_timestamp=t + FAR_S + 1,
                window_end_timestamp=t + FAR_S + 1 + request.window_s,
                offer_deadline_timestamp=t + FAR_S,
                price_cap_wei_per_wh=request.price_cap_wei_per_wh,
            )
        ]
    )
    return flex, _events(flex, [posted], "RequestPosted")[0]["request_id"], request


@settings(max_examples=200, deadline=None)
@given(
    der=st.sampled_from([0, 1]),
    p_w=st.one_of(st.integers(0, 6000), st.sampled_from([0, 99, 100, 3000, 3001, 5000, 5001])),
    price=st.one_of(st.integers(0, 10**11), st.integers(0, 60 * CENT)),
)
def test_offer_terms_are_refused_exactly_as_the_reference_says(terms, der, p_w, price):
    """Dry-runs (nothing mined) of offers of registered DERs against `flex_reference.offer_refusal`."""
    flex, request_id, request = terms
    wallet = flex.market.prosumers[der]
    bus, rating_w = (1, 3000) if der == 0 else (2, 3000)
    expected = offer_refusal(request, FlexOffer(wallet.address, p_w, price, bus), rating_w, 100, CENT, PENALTY_PERMILLE)
    data = encode_call("VoltageRegulation", "offer", request_id, p_w, price)
    try:
        flex.chain.call(flex.contracts[PENALTY_PERMILLE], data, sender=wallet.address)
        got = None
    except CallReverted as reverted_call:
        got = reverted_call.reason
    assert got == expected
