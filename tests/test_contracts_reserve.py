"""OperatingReserve on a real py-evm chain against the Python reference."""

import re
from dataclasses import dataclass

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import flexibility as fx
from gridledger.contracts import reserve as rx
from gridledger.contracts.chain import CallReverted, Receipt
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact, source_path
from gridledger.contracts.reserve_reference import (
    LONGEST_RESPONSE_S,
    PRODUCT_REGULATING,
    PRODUCT_SPINNING,
    PRODUCT_SUPPLEMENTAL,
    Activation,
    Award,
    ReserveOffer,
    ReserveWindow,
    activate_awards,
    award_offers,
    budget_wei,
    close_window,
    energy_wh,
    offer_bond_wei,
    offer_refusal,
    settle_awards,
    window_budget_wei,
)

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import Market, new_market, reverted

N_PROVIDERS = 6
PENALTY_PERMILLE = 1500
# A second deployment whose odd factor makes bonds and penalties round down.
ODD_PENALTY_PERMILLE = 333
DELIVERY_PERIOD_S = 900
PROVIDER_TOKENS_WEI = 10**24
OPERATOR_TOKENS_WEI = 10**26
UNLIMITED_WEI = 2**256 - 1
MAX_RATING_W = 10**9
# Offer phase, then a gap before the window, relative to the head. [s]
OFFER_S = 100
LEAD_S = 100


@dataclass
class Reserve:
    """A market with operating-reserve contracts (name -> address) and funded wallets."""

    market: Market
    contracts: dict[str, str]
    penalties_permille: dict[str, int]
    supply_wei: int

    @property
    def chain(self):
        return self.market.chain

    def balance(self, account: str) -> int:
        return self.market.read("GridToken", "balanceOf", account)

    def accounts(self) -> list[str]:
        return [self.market.operator.address, *(w.address for w in self.market.prosumers), *self.contracts.values()]


def _deploy_reserve(
    market: Market,
    penalties_permille: dict[str, int],
    unapproved: tuple[int, ...] = (),
    facts: dict[int, tuple[int, int]] | None = None,
    min_offer_w: int = 1,
    min_bond_wei: int = 0,
) -> Reserve:
    """Deploy one contract per name in ``penalties_permille`` (name -> penalty factor) on ``market``
    with prosumer i registered at ``facts[i]`` = (bus, rating W) (by default bus i at the largest
    rating); mint tokens to the operator and every prosumer, each of whom approves every contract
    without limit, except the ``unapproved`` prosumers."""
    op = market.operator
    if facts is None:
        facts = {i: (i, MAX_RATING_W) for i in range(len(market.prosumers))}
    providers = [rx.ProviderFacts(market.prosumers[i].address, bus, rating_w) for i, (bus, rating_w) in facts.items()]
    contracts = {
        name: rx.deploy_operating_reserve(
            market.chain,
            op,
            market.addresses.registry,
            market.addresses.token,
            penalty_permille=k,
            delivery_period_s=DELIVERY_PERIOD_S,
            min_offer_w=min_offer_w,
            min_bond_wei=min_bond_wei,
            providers=providers,
        )
        for name, k in penalties_permille.items()
    }
    token = market.addresses.token
    raw = [market.call_tx(op, "GridToken", "mint", op.address, OPERATOR_TOKENS_WEI)]
    raw += [market.call_tx(op, "GridToken", "mint", w.address, PROVIDER_TOKENS_WEI) for w in market.prosumers]
    raw += [fx.approve(op, token, a, UNLIMITED_WEI) for a in contracts.values()]
    raw += [
        fx.approve(w, token, a, UNLIMITED_WEI)
        for i, w in enumerate(market.prosumers)
        if i not in unapproved
        for a in contracts.values()
    ]
    receipts = market.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    return Reserve(market, contracts, dict(penalties_permille), market.read("GridToken", "totalSupply"))


@pytest.fixture(scope="module")
def reserve() -> Reserve:
    return _deploy_reserve(
        new_market(N_PROVIDERS),
        {"hand": PENALTY_PERMILLE, "main": PENALTY_PERMILLE, "odd": ODD_PENALTY_PERMILLE},
    )


@dataclass(frozen=True)
class Outcome:
    """What one window did on chain, in the reference's terms."""

    window: ReserveWindow
    offers: list[ReserveOffer]
    awards: list[Award] | None
    activations: list[Activation]
    capacity_payments_wei: dict[str, int]
    energy_payments_wei: dict[str, int]
    penalties_wei: dict[str, int]
    bond_refunds_wei: dict[str, int]
    operator_refund_wei: int
    penalty_shares_wei: dict[str, int]
    reserve_before_wei: int
    reserve_wei: int
    deltas_wei: dict[str, int]


def _events(res: Reserve, receipts: list[Receipt], name: str) -> list[dict]:
    decoded = (res.chain.decode(log) for r in receipts for log in r.logs)
    return [e.args for e in decoded if e is not None and e.event == name]


def _assert_held_equals_balance(res: Reserve, windows: dict[str, list[int]] | None = None) -> None:
    """Each contract holds exactly the tokens its windows account for plus its penalty reserve.

    ``windows`` names the contracts to check and the windows of each that may hold tokens (by
    default every window of every contract): `_run` leaves every window it ran closed.
    """
    for name in res.contracts if windows is None else windows:
        address = res.contracts[name]
        ids = range(rx.read(res.chain, address, "window_count")) if windows is None else windows[name]
        held = sum(rx.read(res.chain, address, "held_wei", w) for w in ids)
        assert res.balance(address) == held + rx.read(res.chain, address, "penalty_reserve_wei")


def _run(
    res: Reserve,
    name: str,
    window: tuple[int, int, int, int, int],
    offers: list[tuple[int, int, int, int]],
    activation: tuple[int, int] | None,
    deliveries: dict[int, int],
    *,
    awarded: bool = True,
) -> Outcome:
    """Post a window (product, capacity W, length s, capacity cap, activation cap), offer
    (p_w, capacity price, activation price, response s) from prosumers 0, 1, ..., award at the
    deadline (unless not ``awarded``: the window lapses), activate (seconds into the window, p_w)
    if given, post the deliveries {offer index: Wh} at the window's end and close after the
    delivery period (a lapsed window at its start).

    Checks gas limits, the held-tokens invariant after every phase, the supply and the
    conservation of every balance; returns the flows read from events and balances.
    """
    market, address = res.market, res.contracts[name]
    product, capacity_w, window_s, cap_c, cap_a = window
    accounts = res.accounts()
    before = {a: res.balance(a) for a in accounts}
    reserve_before_wei = rx.read(res.chain, address, "penalty_reserve_wei")
    head = res.chain.timestamp
    deadline = head + OFFER_S
    start = deadline + LEAD_S
    end = start + window_s
    receipts: dict[str, list[Receipt]] = {}
    open_windows = {name: [rx.read(res.chain, address, "window_count")]}

    def mine(phase: str, raw: list[bytes], timestamp: int) -> None:
        receipts[phase] = market.mine(raw, timestamp)
        assert all(r.ok for r in receipts[phase]), [r.revert_reason for r in receipts[phase]]
        _assert_held_equals_balance(res, open_windows)

    (window_id,) = open_windows[name]
    providers = market.prosumers[: len(offers)]
    # The window is posted and offered for in one block: transactions run in order.
    mine("post and offer", [
        rx.post_window(market.operator, address, product=product, capacity_w=capacity_w,
                       window_start_timestamp=start, window_end_timestamp=end, offer_deadline_timestamp=deadline,
                       capacity_price_cap_wei_per_wh=cap_c, activation_price_cap_wei_per_wh=cap_a),
        *(rx.offer(w, address, window_id, p_w=p, capacity_price_wei_per_wh=c, activation_price_wei_per_wh=a,
                   response_s=r) for w, (p, c, a, r) in zip(providers, offers)),
    ], head + 1)
    both = receipts.pop("post and offer")
    receipts["post"], receipts["offer"] = both[:1], both[1:]
    (posted,) = _events(res, receipts["post"], "WindowPosted")
    assert posted["window_id"] == window_id
    n = len(offers)
    if awarded:
        mine("award", [rx.award(market.outsider, address, window_id, n_offers=n)], deadline)
        if activation is not None:
            offset_s, p_w = activation
            mine("activate", [rx.activate(market.operator, address, window_id, p_w=p_w, n_offers=n)], start + offset_s)
        if deliveries:
            mine("deliver", [rx.post_delivery(market.meters[i], address, window_id, delivered_wh=d)
                             for i, d in sorted(deliveries.items())], end)
        mine("close", [rx.close(market.outsider, address, window_id, n_offers=n)], end + DELIVERY_PERIOD_S)
    else:
        mine("close", [rx.close(market.outsider, address, window_id, n_offers=n)], start)

    ref_window = ReserveWindow(product, capacity_w, start, end, cap_c, cap_a)
    ref_offers = [ReserveOffer(w.address, *o) for w, o in zip(providers, offers)]
    penalty_permille = res.penalties_permille[name]
    assert posted["budget_wei"] == window_budget_wei(ref_window)
    assert [e["bond_wei"] for e in _events(res, receipts["offer"], "Offered")] == [
        offer_bond_wei(ref_window, o, penalty_permille) for o in ref_offers
    ]
    awarded_events = _events(res, receipts.get("award", []), "Awarded")
    settled = _events(res, receipts.get("deliver", []) + receipts["close"], "Settled")
    refunds = {e["provider"]: e["bond_released_wei"] for e in awarded_events}
    for e in settled:
        refunds[e["provider"]] += e["bond_refund_wei"]
    for e in _events(res, receipts["close"], "BondReturned"):
        refunds[e["provider"]] = e["bond_wei"]
    (closed,) = _events(res, receipts["close"], "Closed")
    reserve_wei = rx.read(res.chain, address, "penalty_reserve_wei")
    assert closed["reserve_wei"] == reserve_wei
    assert rx.window(res.chain, address, window_id).closed
    assert rx.read(res.chain, address, "held_wei", window_id) == 0
    after = {a: res.balance(a) for a in accounts}
    assert sum(after.values()) == sum(before.values())
    assert market.read("GridToken", "totalSupply") == res.supply_wei
    limits = {"post": rx.GAS_POST_WINDOW, "offer": rx.GAS_OFFER, "award": rx.award_gas(n),
              "activate": rx.activate_gas(n), "deliver": rx.GAS_POST_DELIVERY, "close": rx.close_gas(n)}
    for phase, rs in receipts.items():
        assert all(r.gas_used <= limits[phase] for r in rs), (phase, [r.gas_used for r in rs], limits[phase])
    return Outcome(
        ref_window,
        ref_offers,
        rx.decode_awards(res.chain, receipts["award"][0]) if awarded else None,
        rx.decode_activations(res.chain, receipts["activate"][0]) if "activate" in receipts else [],
        {e["provider"]: e["capacity_payment_wei"] for e in settled},
        {e["provider"]: e["energy_payment_wei"] for e in settled},
        {e["provider"]: e["penalty_wei"] for e in settled},
        refunds,
        closed["operator_refund_wei"],
        {e["provider"]: e["share_wei"] for e in _events(res, receipts["close"], "PenaltyShared")},
        reserve_before_wei,
        reserve_wei,
        {a: after[a] - before[a] for a in accounts},
    )


def _assert_matches_reference(res: Reserve, name: str, outcome: Outcome, activation: tuple[int, int] | None,
                              deliveries: dict[int, int]):
    """On-chain awards, activations, payments, penalties, refunds and balance changes equal the reference."""
    penalty_permille = res.penalties_permille[name]
    window, offers = outcome.window, outcome.offers
    awards = award_offers(window, offers) if outcome.awards is not None else None
    assert outcome.awards == awards
    activations = []
    if activation is not None:
        offset_s, p_w = activation
        activations = activate_awards(window, offers, awards, p_w, window.window_start_timestamp + offset_s)
    assert outcome.activations == activations
    window_id = rx.read(res.chain, res.contracts[name], "window_count") - 1
    stored = rx.offers(res.chain, res.contracts[name], window_id)
    if awards is not None:
        by_provider = {a.provider: a.p_w for a in awards}
        assert [o.awarded_p_w for o in stored] == [by_provider[o.provider] for o in offers]
        assert all(o.settled == (o.awarded_p_w != 0) for o in stored)
    activated = {a.provider: a.p_w for a in activations if a.energy_wh}
    assert [o.activated_p_w for o in stored] == [activated.get(o.provider, 0) for o in offers]
    state = rx.window(res.chain, res.contracts[name], window_id)
    assert state.activated_timestamp == (window.window_start_timestamp + activation[0] if activation else 0)
    assert state.activated_p_w == sum(activated.values())
    delivered = {offers[i].provider: d for i, d in deliveries.items()}
    ref = close_window(window, offers, awards, activations, delivered, penalty_permille, outcome.reserve_before_wei)
    assert outcome.capacity_payments_wei == ref.capacity_payments_wei
    assert outcome.energy_payments_wei == ref.energy_payments_wei
    assert outcome.penalties_wei == ref.penalties_wei
    assert outcome.bond_refunds_wei == ref.bond_refunds_wei
    assert outcome.operator_refund_wei == ref.operator_refund_wei
    assert outcome.penalty_shares_wei == ref.penalty_shares_wei
    assert outcome.reserve_wei == ref.reserve_wei
    operator = res.market.operator.address
    assert outcome.deltas_wei[operator] == ref.operator_refund_wei - window_budget_wei(window)
    assert ref.operator_refund_wei >= 0
    for offer in offers:
        assert outcome.deltas_wei[offer.provider] == (
            ref.capacity_payments_wei.get(offer.provider, 0)
            + ref.energy_payments_wei.get(offer.provider, 0)
            - ref.penalties_wei.get(offer.provider, 0)
            + ref.penalty_shares_wei.get(offer.provider, 0)
        )
    return ref


def test_hand_computed_window_awards_activates_and_settles_as_written(reserve):
    """Spinning reserve, 6000 W for 1 h (E = p in Wh), caps 10 CENT (capacity) and 40 CENT
    (activation): budget 6000 * 50 = 300000 CENT. Penalty 1.5, so a bond is
    1.5 * 40 = 60 CENT per Wh offered: d0 180000, d1 120000, d2 120000, d3 60000 CENT.

    Offers (p_w, capacity price, activation price, response s):
    d0 (3000, 4, 30, 600), d1 (2000, 2, 20, 60), d2 (2000, 4, 10, 300), d3 (1000, 8, 5, 0).
    Award by capacity price: d1 2000 W, d0 3000 W, d2 (ties d0 at 4, comes after it) the last
    1000 W, d3 nothing. Released at award: d2 60000 (keeps B(1000 W)), d3 all 60000.

    The operator activates 2500 W 1200 s into the window, by activation price: d3 (5) has no
    award; d2 (10) 1000 W from 1500 s, E_act = floor(1000 * 2100 / 3600) = 583 Wh; d1 (20)
    the other 1500 W from 1260 s, E_act = 1500 * 2340 / 3600 = 975 Wh; d0 (30) is not activated.

    Meters: d2 delivers 583 Wh: capacity 1000 * 4 = 4000, energy 583 * 10 = 5830, bond back
    60000. d1 delivers 585 of 975 Wh (60 %): capacity 2000 * 2 * 0.6 = 2400, energy 585 * 20
    = 11700, penalty 390 * 60 = 23400, bond back 120000 - 23400 = 96600. At close d0, not
    activated, gets capacity 3000 * 4 = 12000 and its bond 180000.
    Paid 35930; operator refund 300000 - 35930 = 264070. The pool 23400 goes by paid
    availability: d2 1000, d1 2000 * 0.6 = 1200, d0 3000 Wh of 5200: 4500, 5400, 13500; no
    reserve left. Net: d0 +25500, d1 -3900, d2 +14330, d3 0, operator -35930.
    """
    offers = [(3000, 4 * CENT, 30 * CENT, 600), (2000, 2 * CENT, 20 * CENT, 60),
              (2000, 4 * CENT, 10 * CENT, 300), (1000, 8 * CENT, 5 * CENT, 0)]
    activation, deliveries = (1200, 2500), {2: 583, 1: 585}
    outcome = _run(reserve, "hand", (PRODUCT_SPINNING, 6000, 3600, 10 * CENT, 40 * CENT), offers, activation,
                   deliveries)
    assert outcome.reserve_before_wei == 0
    ref = _assert_matches_reference(reserve, "hand", outcome, activation, deliveries)
    d = {f"d{i}": o.provider for i, o in enumerate(outcome.offers)}
    start = outcome.window.window_start_timestamp
    assert [(a.provider, a.p_w, a.energy_wh) for a in outcome.awards] == [
        (d["d1"], 2000, 2000), (d["d0"], 3000, 3000), (d["d2"], 1000, 1000), (d["d3"], 0, 0)]
    assert outcome.activations == [Activation(2, d["d2"], 1000, start + 1500, 583),
                                   Activation(1, d["d1"], 1500, start + 1260, 975)]
    assert ref.capacity_payments_wei == {d["d0"]: 12000 * CENT, d["d1"]: 2400 * CENT, d["d2"]: 4000 * CENT}
    assert ref.energy_payments_wei == {d["d0"]: 0, d["d1"]: 11700 * CENT, d["d2"]: 5830 * CENT}
    assert ref.penalties_wei == {d["d0"]: 0, d["d1"]: 23400 * CENT, d["d2"]: 0}
    assert ref.bond_refunds_wei == {d["d0"]: 180000 * CENT, d["d1"]: 96600 * CENT, d["d2"]: 120000 * CENT,
                                    d["d3"]: 60000 * CENT}
    assert ref.operator_refund_wei == 264070 * CENT
    assert ref.penalty_shares_wei == {d["d0"]: 13500 * CENT, d["d1"]: 5400 * CENT, d["d2"]: 4500 * CENT}
    assert ref.reserve_wei == 0
    operator = reserve.market.operator.address
    assert {a: outcome.deltas_wei[a] for a in (*d.values(), operator)} == {
        d["d0"]: 25500 * CENT, d["d1"]: -3900 * CENT, d["d2"]: 14330 * CENT, d["d3"]: 0, operator: -35930 * CENT}


def test_lapsed_window_returns_every_bond_and_the_budget(reserve):
    market, address = reserve.market, reserve.contracts["main"]
    head = reserve.chain.timestamp
    before = {a: reserve.balance(a) for a in reserve.accounts()}
    reserve_wei = rx.read(reserve.chain, address, "penalty_reserve_wei")
    (posted,) = market.mine([rx.post_window(market.operator, address, product=PRODUCT_REGULATING, capacity_w=2000,
                                            window_start_timestamp=head + 20, window_end_timestamp=head + 3620,
                                            offer_deadline_timestamp=head + 10, capacity_price_cap_wei_per_wh=CENT,
                                            activation_price_cap_wei_per_wh=10 * CENT)])
    window_id = _events(reserve, [posted], "WindowPosted")[0]["window_id"]
    offered = market.mine([rx.offer(w, address, window_id, p_w=1000, capacity_price_wei_per_wh=CENT,
                                     activation_price_wei_per_wh=5 * CENT, response_s=300)
                           for w in market.prosumers[:2]])
    assert all(r.ok for r in offered)
    # Budget 2000 Wh * 11 CENT; bonds 1000 Wh * 10 CENT * 1.5 each.
    assert reserve.balance(address) == (22000 + 2 * 15000) * CENT + reserve_wei
    (early,) = market.mine([rx.close(market.outsider, address, window_id, n_offers=2)], head + 19)
    assert reverted(early, "reserve: award open")
    # Nobody awards before the window: it lapses and closes from its start.
    (late,) = market.mine([rx.award(market.outsider, address, window_id, n_offers=2)], head + 20)
    assert reverted(late, "reserve: window started")
    (activation,) = market.mine([rx.activate(market.operator, address, window_id, p_w=1000, n_offers=2)])
    assert reverted(activation, "reserve: not awarded")
    (closed,) = market.mine([rx.close(market.outsider, address, window_id, n_offers=2)])
    assert closed.ok and closed.gas_used <= rx.close_gas(2)
    returned = _events(reserve, [closed], "BondReturned")
    assert [(e["provider"], e["bond_wei"]) for e in returned] == [
        (w.address, 15000 * CENT) for w in market.prosumers[:2]]
    assert _events(reserve, [closed], "Closed")[0]["operator_refund_wei"] == 22000 * CENT
    assert {a: reserve.balance(a) for a in reserve.accounts()} == before
    assert rx.read(reserve.chain, address, "held_wei", window_id) == 0
    assert rx.read(reserve.chain, address, "penalty_reserve_wei") == reserve_wei
    (again,) = market.mine([rx.close(market.outsider, address, window_id, n_offers=2)])
    assert reverted(again, "reserve: already closed")


WINDOWS_S = st.sampled_from([900, 3600, 3601, 5400, 86400])
PRODUCTS = st.sampled_from([PRODUCT_REGULATING, PRODUCT_SPINNING, PRODUCT_SUPPLEMENTAL])
CAPS = st.one_of(st.sampled_from([k * 10 * CENT for k in range(1, 6)]), st.integers(1, 10**15))


@st.composite
def windows(draw, max_offers: int = N_PROVIDERS):
    """(window, offers, awarded, activation, delivery per offer or None) with prices on a coarse
    grid (many ties) or anywhere up to the caps, activations anywhere in the window."""
    product, window_s = draw(PRODUCTS), draw(WINDOWS_S)
    min_p_w = -(-3600 // window_s)
    capacity_w = draw(st.integers(min_p_w, 20_000))
    cap_c, cap_a = draw(CAPS), draw(CAPS)

    def prices(cap: int):
        return st.one_of(st.sampled_from([cap * k // 4 for k in range(5)]), st.integers(0, cap))

    longest_s = LONGEST_RESPONSE_S[product]
    offers = draw(st.lists(st.tuples(st.integers(min_p_w, capacity_w), prices(cap_c), prices(cap_a),
                                     st.one_of(st.sampled_from([0, 60, longest_s]), st.integers(0, longest_s))),
                           max_size=max_offers))
    awarded = draw(st.sampled_from([True, True, True, True, False]))
    activation = draw(st.one_of(st.none(), st.tuples(
        st.one_of(st.sampled_from([0, window_s - 1, window_s - longest_s]).filter(lambda s: s >= 0),
                  st.integers(0, window_s - 1)),
        st.integers(1, capacity_w))))
    delivered = draw(st.lists(st.one_of(st.none(), st.integers(0, 100_000)), min_size=len(offers),
                              max_size=len(offers)))
    return (product, capacity_w, window_s, cap_c, cap_a), offers, awarded, activation, delivered


@settings(max_examples=40, deadline=None)
@given(case=windows(), name=st.sampled_from(["main", "odd"]))
def test_onchain_window_equals_reference_and_conserves_tokens(reserve, case, name):
    window, offers, awarded, activation, delivered = case
    product, capacity_w, window_s, cap_c, cap_a = window
    deliveries = {}
    if awarded and activation is not None:
        ref_window = ReserveWindow(product, capacity_w, 0, window_s, cap_c, cap_a)
        ref_offers = [ReserveOffer(f"d{i}", *o) for i, o in enumerate(offers)]
        activated = activate_awards(ref_window, ref_offers, award_offers(ref_window, ref_offers), activation[1],
                                    activation[0])
        active = {a.offer_index for a in activated if a.energy_wh}
        deliveries = {i: d for i, d in enumerate(delivered) if d is not None and i in active}
    outcome = _run(reserve, name, window, offers, activation if awarded else None, deliveries, awarded=awarded)
    _assert_matches_reference(reserve, name, outcome, activation if awarded else None, deliveries)


def test_every_contract_holds_what_its_windows_account_for_and_its_reserve(reserve):
    """The invariant over every window the tests above ran, each closed: only the reserves are left."""
    _assert_held_equals_balance(reserve)
    for address in reserve.contracts.values():
        n = rx.read(reserve.chain, address, "window_count")
        assert n and all(rx.window(reserve.chain, address, w).closed for w in range(n))
        assert reserve.balance(address) == rx.read(reserve.chain, address, "penalty_reserve_wei")


@settings(max_examples=300, deadline=None)
@given(case=windows(max_offers=20), penalty_permille=st.integers(0, 10_000), timestamp=st.integers(0, 10**6))
def test_reference_flows_stay_within_budget_and_bonds(case, penalty_permille, timestamp):
    (product, capacity_w, window_s, cap_c, cap_a), offers, _, activation, delivered = case
    window = ReserveWindow(product, capacity_w, timestamp, timestamp + window_s, cap_c, cap_a)
    ref_offers = [ReserveOffer(f"d{i}", *o) for i, o in enumerate(offers)]
    awards = award_offers(window, ref_offers)
    assert sum(a.p_w for a in awards) == min(capacity_w, sum(o.p_w for o in ref_offers))
    assert [a.capacity_price_wei_per_wh for a in awards] == sorted(o.capacity_price_wei_per_wh for o in ref_offers)
    shapes = [0 if a.p_w == 0 else 2 if a.p_w == a.offered_p_w else 1 for a in awards]
    assert shapes == sorted(shapes, reverse=True) and shapes.count(1) <= 1
    activations = []
    if activation is not None:
        activations = activate_awards(window, ref_offers, awards, activation[1], timestamp + activation[0])
        assert sum(a.p_w for a in activations) <= activation[1]
        awarded_p_w = {a.provider: a.p_w for a in awards}
        assert all(a.p_w <= awarded_p_w[a.provider] for a in activations)
    active = {a.provider for a in activations if a.energy_wh}
    deliveries = {o.provider: d for o, d in zip(ref_offers, delivered) if d is not None and o.provider in active}
    settled = settle_awards(window, ref_offers, awards, activations, deliveries, penalty_permille)
    for a in awards:
        if a.p_w:
            s = settled[a.provider]
            offer = ref_offers[a.offer_index]
            held = offer_bond_wei(window, ReserveOffer(a.provider, a.p_w, 0, 0, 0), penalty_permille)
            assert s.penalty_wei + s.bond_refund_wei == held
            assert s.capacity_payment_wei <= a.energy_wh * offer.capacity_price_wei_per_wh
    ref = close_window(window, ref_offers, awards, activations, deliveries, penalty_permille)
    paid = sum(ref.capacity_payments_wei.values()) + sum(ref.energy_payments_wei.values())
    assert paid + ref.operator_refund_wei == window_budget_wei(window) and ref.operator_refund_wei >= 0
    assert sum(ref.penalty_shares_wei.values()) + ref.reserve_wei == sum(ref.penalties_wei.values())
    for o in ref_offers:
        assert ref.bond_refunds_wei[o.provider] + ref.penalties_wei.get(o.provider, 0) == offer_bond_wei(
            window, o, penalty_permille)


def test_reference_refuses_deliveries_of_providers_not_activated():
    window = ReserveWindow(PRODUCT_SPINNING, 100, 0, 3600, 5, 5)
    offers = [ReserveOffer("d0", 100, 5, 5, 0), ReserveOffer("d1", 100, 5, 5, 0)]
    awards = award_offers(window, offers)
    with pytest.raises(ValueError, match="not activated"):
        settle_awards(window, offers, awards, [], {"d0": 1}, PENALTY_PERMILLE)
    with pytest.raises(ValueError, match="only once"):
        award_offers(window, [offers[0], offers[0]])
    with pytest.raises(ValueError, match="after the window end"):
        activate_awards(window, offers, awards, 100, 3600)
    (early,) = activate_awards(window, offers, awards, 100, -50)
    assert (early.from_timestamp, early.energy_wh) == (0, 100)


# Scene of the revert matrix; every time is relative to the head T after set-up. [s]
FAR_S = 10**6


@pytest.fixture(scope="module")
def scene() -> tuple[Reserve, dict]:
    """Spinning-reserve windows in every phase, on one contract, with prosumer p5 holding no allowance:

    - "@done" (window T+20..T+30): p0 awarded, activated, closed;
    - "@deliver" (window T+20..T+3620, delivery until T+4520): p1 and p2 awarded and
      activated, p3 not awarded; meter1 has posted;
    - "@running" (window T+20..T+80000): p1 awarded, not activated;
    - "@activated" (window T+20..T+80000): p1 awarded and activated;
    - "@awarded" (window from T+20000): p1 awarded, window not started;
    - "@late" (window from T+20): never awarded, window started;
    - "@open" (offers until T+FAR_S, a 10 s window): p0 has offered;
    - "@cheap" (as "@open", activation cap 1 wei/Wh): 1 Wh bonds 1 wei.

    Capacity 1000 W, caps 10 CENT. p0..p5 are registered, p2 with an 800 W rating; p6 is not
    registered. Offers need 100 W and a bond of CENT wei.
    """
    facts = {i: (i, 10**6) for i in range(6)} | {2: (2, 800)}
    res = _deploy_reserve(new_market(7), {"main": PENALTY_PERMILLE}, unapproved=(5,), facts=facts,
                          min_offer_w=100, min_bond_wei=CENT)
    market, address = res.market, res.contracts["main"]
    p, op = market.prosumers, market.operator
    t = res.chain.timestamp
    windows_ = {
        "@done": (t + 10, t + 20, t + 30, 10 * CENT),
        "@deliver": (t + 10, t + 20, t + 3620, 10 * CENT),
        "@running": (t + 10, t + 20, t + 80_000, 10 * CENT),
        "@activated": (t + 10, t + 20, t + 80_000, 10 * CENT),
        "@awarded": (t + 10, t + 20_000, t + 30_000, 10 * CENT),
        "@late": (t + 10, t + 20, t + 30_000, 10 * CENT),
        "@open": (t + FAR_S, t + FAR_S + 10, t + FAR_S + 20, 10 * CENT),
        "@cheap": (t + FAR_S, t + FAR_S + 10, t + FAR_S + 20, 1),
    }
    posted = market.mine([rx.post_window(op, address, product=PRODUCT_SPINNING, capacity_w=1000,
                                         window_start_timestamp=start, window_end_timestamp=end,
                                         offer_deadline_timestamp=deadline, capacity_price_cap_wei_per_wh=10 * CENT,
                                         activation_price_cap_wei_per_wh=cap_a)
                          for deadline, start, end, cap_a in windows_.values()], t + 1)
    assert all(r.ok for r in posted), [r.revert_reason for r in posted]
    symbols = {name: _events(res, [r], "WindowPosted")[0]["window_id"] for name, r in zip(windows_, posted)}
    offers = [
        ("@done", 0, 1000, 5 * CENT),
        ("@deliver", 1, 600, 1 * CENT),
        ("@deliver", 2, 600, 2 * CENT),
        ("@deliver", 3, 600, 9 * CENT),
        ("@running", 1, 1000, 1 * CENT),
        ("@activated", 1, 1000, 1 * CENT),
        ("@awarded", 1, 1000, 1 * CENT),
        ("@late", 1, 1000, 1 * CENT),
        ("@open", 0, 1000, 1 * CENT),
    ]
    awarded = ("@done", "@deliver", "@running", "@activated", "@awarded")
    steps = [
        ([rx.offer(p[i], address, symbols[w], p_w=q, capacity_price_wei_per_wh=c, activation_price_wei_per_wh=c,
                   response_s=0) for w, i, q, c in offers], t + 2),
        ([rx.award(op, address, symbols[w], n_offers=3) for w in awarded], t + 10),
        ([rx.activate(op, address, symbols[w], p_w=1000, n_offers=3) for w in ("@done", "@deliver", "@activated")],
         t + 25),
        ([rx.close(op, address, symbols["@done"], n_offers=1)], t + 30 + DELIVERY_PERIOD_S),
        ([rx.post_delivery(market.meters[1], address, symbols["@deliver"], delivered_wh=590)], t + 3620),
    ]
    for raw, timestamp in steps:
        receipts = market.mine(raw, timestamp)
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    deliver = rx.offers(res.chain, address, symbols["@deliver"])
    assert [(o.awarded_p_w, o.activated_p_w) for o in deliver] == [(600, 600), (400, 400), (0, 0)]
    # A valid new window's offer deadline, start and end (3599 s: 1 W rounds to 0 Wh).
    symbols.update({"@future": t + FAR_S, "@future+1": t + FAR_S + 1, "@future+3600": t + FAR_S + 3600})
    symbols["p6"] = p[6].address
    return res, symbols


def _window_args(**changes):
    """post_window arguments of a valid window, with ``changes``."""
    args = {
        "product": PRODUCT_SPINNING,
        "capacity_w": 1000,
        "window_start": "@future+1",
        "window_end": "@future+3600",
        "offer_deadline": "@future",
        "capacity_price_cap": 10 * CENT,
        "activation_price_cap": 10 * CENT,
    }
    args.update(changes)
    return tuple(args.values())


def _offer_args(window="@open", p_w=1000, capacity_price=CENT, activation_price=CENT, response_s=600):
    return (window, p_w, capacity_price, activation_price, response_s)


# (reason, who signs, function, arguments); "@x" are symbols of the scene.
CASES = [
    ("reserve: caller is not operator", "outsider", "post_window", _window_args()),
    ("reserve: caller is not operator", "p0", "post_window", _window_args()),
    ("reserve: unknown product", "operator", "post_window", _window_args(product=3)),
    ("reserve: zero capacity", "operator", "post_window", _window_args(capacity_w=0)),
    ("reserve: capacity above limit", "operator", "post_window", _window_args(capacity_w=10**9 + 1)),
    ("reserve: zero capacity price cap", "operator", "post_window", _window_args(capacity_price_cap=0)),
    ("reserve: capacity price cap above limit", "operator", "post_window",
     _window_args(capacity_price_cap=10**24 + 1)),
    ("reserve: zero activation price cap", "operator", "post_window", _window_args(activation_price_cap=0)),
    ("reserve: activation price cap above limit", "operator", "post_window",
     _window_args(activation_price_cap=10**24 + 1)),
    ("reserve: deadline passed", "operator", "post_window", _window_args(offer_deadline=1, window_start=2,
                                                                         window_end=3)),
    ("reserve: deadline not before window", "operator", "post_window", _window_args(window_start="@future")),
    ("reserve: empty window", "operator", "post_window", _window_args(window_end="@future+1")),
    ("reserve: window too long", "operator", "post_window", _window_args(window_end=("@future+1", 86400 + 1))),
    ("reserve: zero energy", "operator", "post_window", _window_args(capacity_w=1)),
    ("reserve: unknown window", "p1", "offer", _offer_args(window=99)),
    ("reserve: caller is not a prosumer", "outsider", "offer", _offer_args()),
    ("reserve: caller is not a prosumer", "meter1", "offer", _offer_args()),
    ("reserve: provider not registered", "p6", "offer", _offer_args()),
    ("reserve: offers closed", "p2", "offer", _offer_args(window="@awarded")),
    ("reserve: power below minimum", "p1", "offer", _offer_args(p_w=99)),
    ("reserve: power above capacity", "p1", "offer", _offer_args(p_w=1001)),
    ("reserve: power above rating", "p2", "offer", _offer_args(p_w=801)),
    ("reserve: zero energy", "p1", "offer", _offer_args(p_w=359)),
    ("reserve: capacity price above cap", "p1", "offer", _offer_args(capacity_price=10 * CENT + 1)),
    ("reserve: activation price above cap", "p1", "offer", _offer_args(activation_price=10 * CENT + 1)),
    ("reserve: response too slow", "p1", "offer", _offer_args(response_s=601)),
    ("reserve: offer exists", "p0", "offer", _offer_args()),
    # 360 W over 10 s is 1 Wh: a bond of 1.5 wei at the activation cap of 1 wei/Wh.
    ("reserve: bond below minimum", "p1", "offer", _offer_args(window="@cheap", p_w=360, activation_price=0)),
    ("token: insufficient allowance", "p5", "offer", _offer_args()),
    ("reserve: caller is not registrar", "outsider", "register_provider", ("p6", 1, 1000)),
    ("reserve: registration closed", "operator", "register_provider", ("p6", 1, 1000)),
    ("reserve: unknown window", "outsider", "award", (99,)),
    ("reserve: offers open", "outsider", "award", ("@open",)),
    ("reserve: window started", "outsider", "award", ("@late",)),
    ("reserve: already awarded", "outsider", "award", ("@awarded",)),
    ("reserve: unknown window", "operator", "activate", (99, 1000)),
    ("reserve: caller is not operator", "outsider", "activate", ("@running", 1000)),
    ("reserve: caller is not operator", "p1", "activate", ("@running", 1000)),
    ("reserve: not awarded", "operator", "activate", ("@late", 1000)),
    ("reserve: window ended", "operator", "activate", ("@deliver", 1000)),
    ("reserve: already activated", "operator", "activate", ("@activated", 1000)),
    ("reserve: zero power", "operator", "activate", ("@running", 0)),
    ("reserve: power above capacity", "operator", "activate", ("@running", 1001)),
    ("reserve: unknown window", "meter2", "post_delivery", (99, 1)),
    ("reserve: caller is not a bound meter", "outsider", "post_delivery", ("@deliver", 1)),
    ("reserve: caller is not a bound meter", "p2", "post_delivery", ("@deliver", 1)),
    ("reserve: provider not activated", "meter3", "post_delivery", ("@deliver", 1)),
    ("reserve: provider not activated", "meter4", "post_delivery", ("@deliver", 1)),
    ("reserve: provider not activated", "meter1", "post_delivery", ("@running", 1)),
    ("reserve: window not ended", "meter1", "post_delivery", ("@activated", 1)),
    ("reserve: delivery closed", "meter0", "post_delivery", ("@done", 1)),
    ("reserve: delivery posted", "meter1", "post_delivery", ("@deliver", 1)),
    ("reserve: delivery above limit", "meter2", "post_delivery", ("@deliver", 10**12 + 1)),
    ("reserve: unknown window", "outsider", "close", (99,)),
    ("reserve: delivery open", "outsider", "close", ("@deliver",)),
    ("reserve: award open", "outsider", "close", ("@open",)),
    ("reserve: already closed", "outsider", "close", ("@done",)),
]


@pytest.mark.parametrize("reason, who, function, args", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_transaction_reverts_with_exact_reason(scene, reason, who, function, args):
    res, symbols = scene
    market = res.market

    def resolve(arg):
        if isinstance(arg, str):
            return symbols[arg]
        if isinstance(arg, tuple):
            return symbols[arg[0]] + arg[1]
        return arg

    signer = market.operator if who == "operator" else market.signer(who)
    raw = signer.transact(res.contracts["main"], encode_call(rx.CONTRACT, function, *(resolve(a) for a in args)),
                          gas=1_000_000)
    (receipt,) = market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason


def test_views_of_an_unknown_window_revert_and_the_state_reads_back(scene):
    res, symbols = scene
    address = res.contracts["main"]
    for function in ("window", "offers", "held_wei", "delivery_deadline_timestamp"):
        with pytest.raises(CallReverted) as raised:
            res.chain.call(address, encode_call(rx.CONTRACT, function, 99))
        assert raised.value.reason == "reserve: unknown window"
    state = rx.window(res.chain, address, symbols["@deliver"])
    assert (state.awarded, state.awarded_p_w, state.activated, state.activated_p_w, state.offer_count,
            state.closed) == (True, 1000, True, 1000, 3, False)
    # Budget 1000 Wh * 20 CENT. p1 activated 600 W from T+25 to T+3620: 599 Wh, delivered 590: capacity
    # 600 * 1 * 590 / 599 CENT, energy 590 * 1 CENT, penalty 9 * 10 * 1.5 CENT; p2's bond of
    # 400 Wh * 10 * 1.5 CENT still held.
    capacity_wei = 600 * CENT * 590 // 599
    assert (state.budget_wei, state.paid_wei, state.penalties_wei, state.bonds_wei) == (
        20_000 * CENT, capacity_wei + 590 * CENT, 135 * CENT, 6000 * CENT)
    assert rx.read(res.chain, address, "held_wei", symbols["@deliver"]) == (
        20_000 * CENT - capacity_wei - 590 * CENT + 135 * CENT + 6000 * CENT)
    assert rx.read(res.chain, address, "provider_bus", res.market.prosumers[2].address) == 2
    assert rx.read(res.chain, address, "provider_rating_w", res.market.prosumers[2].address) == 800
    assert [rx.read(res.chain, address, name) for name in (
        "PRODUCT_REGULATING", "PRODUCT_SPINNING", "PRODUCT_SUPPLEMENTAL", "REGULATING_RESPONSE_S",
        "SPINNING_RESPONSE_S", "SUPPLEMENTAL_RESPONSE_S")] == [
        PRODUCT_REGULATING, PRODUCT_SPINNING, PRODUCT_SUPPLEMENTAL, *LONGEST_RESPONSE_S.values()]
    assert rx.PRODUCTS == {"regulating": PRODUCT_REGULATING, "spinning": PRODUCT_SPINNING,
                           "supplemental": PRODUCT_SUPPLEMENTAL}


REGISTRATION_CASES = [
    ("reserve: caller is not registrar", "p1", 1, 1000),
    ("reserve: provider is not a prosumer", "meter1", 1, 1000),
    ("reserve: zero rating", "p1", 1, 0),
    ("reserve: rating above limit", "p1", 1, 10**9 + 1),
    ("reserve: provider registered", "p0", 2, 1000),
]


@pytest.fixture(scope="module")
def before_start() -> Reserve:
    """A fresh contract before the registry's start, p0 registered."""
    return _deploy_reserve(new_market(2), {"main": PENALTY_PERMILLE}, facts={0: (1, 1000)})


@pytest.mark.parametrize("reason, provider, bus, rating_w", REGISTRATION_CASES)
def test_registration_reverts_with_exact_reason(before_start, reason, provider, bus, rating_w):
    market = before_start.market
    sender = market.prosumers[1] if reason == "reserve: caller is not registrar" else market.operator
    facts = rx.ProviderFacts(market.signer(provider).address, bus, rating_w)
    (receipt,) = market.mine([rx.register_provider(sender, before_start.contracts["main"], facts)])
    assert reverted(receipt, reason), receipt.revert_reason


CONSTRUCTOR_CASES = [
    ("reserve: operator lacks operator role", True, 1000, 900, 1),
    ("reserve: penalty above limit", False, 10_001, 900, 1),
    ("reserve: delivery period out of range", False, 1000, 0, 1),
    ("reserve: delivery period out of range", False, 1000, 7 * 86400 + 1, 1),
    ("reserve: minimum offer out of range", False, 1000, 900, 0),
    ("reserve: minimum offer out of range", False, 1000, 900, 10**9 + 1),
]


@pytest.mark.parametrize("reason, operator_is_zero, penalty_permille, delivery_period_s, min_offer_w",
                         CONSTRUCTOR_CASES)
def test_constructor_reverts_with_exact_reason(
    scene, reason, operator_is_zero, penalty_permille, delivery_period_s, min_offer_w
):
    res, _ = scene
    market = res.market
    operator = "0x" + "00" * 20 if operator_is_zero else market.operator.address
    receipt = market.deploy(rx.CONTRACT, market.addresses.registry, market.addresses.token, operator,
                            penalty_permille, delivery_period_s, min_offer_w, 0)
    assert reverted(receipt, reason), receipt.revert_reason


def test_a_deployer_without_the_operator_role_cannot_become_registrar(scene):
    res, _ = scene
    market = res.market
    raw, _ = market.outsider.deploy(load_artifact(rx.CONTRACT), market.addresses.registry, market.addresses.token,
                                    market.operator.address, 1000, 900, 1, 0)
    (receipt,) = market.mine([raw])
    assert reverted(receipt, "reserve: deployer lacks operator role"), receipt.revert_reason


# Reasons asserted outside the matrices: a full window in the gas test; a token that returns
# False instead of reverting (GridToken reverts with its own reason) is not in the market.
ELSEWHERE = {"reserve: offers full", "reserve: deployer lacks operator role"}
UNREACHABLE = {"reserve: token transfer failed"}


def test_the_matrices_assert_every_reason_string_of_the_contract():
    source = source_path(rx.CONTRACT).read_text()
    reasons = set(re.findall(r'"(reserve: [^"]+)"', source))
    tested = {c[0] for c in CASES} | {c[0] for c in REGISTRATION_CASES} | {c[0] for c in CONSTRUCTOR_CASES}
    assert reasons - UNREACHABLE == (tested | ELSEWHERE) - {"token: insufficient allowance"}


def test_gas_stays_within_the_signed_limits_at_the_contract_maxima():
    """64 offers, each ranking ahead of all before it on both prices (the sorts' worst case), all
    awarded and all activated; two meters post, so `close` settles the other 62 awards and
    returns 62 bonds' rest. A 65th offer is refused. (A window half awarded costs less at each
    step; a lapsed window's close only returns bonds: 1.1 M gas at 64 offers.)"""
    max_offers = 64
    res = _deploy_reserve(new_market(max_offers + 1), {"main": PENALTY_PERMILLE})
    market, address = res.market, res.contracts["main"]
    assert rx.read(res.chain, address, "MAX_OFFERS") == max_offers
    t = res.chain.timestamp
    window = (t + 200, t + 200 + 3600)
    (posted,) = market.mine([rx.post_window(market.operator, address, product=PRODUCT_SUPPLEMENTAL,
                                            capacity_w=max_offers * 1000, window_start_timestamp=window[0],
                                            window_end_timestamp=window[1], offer_deadline_timestamp=t + 100,
                                            capacity_price_cap_wei_per_wh=100 * CENT,
                                            activation_price_cap_wei_per_wh=100 * CENT)], t + 1)
    assert posted.ok and posted.gas_used <= rx.GAS_POST_WINDOW, posted.gas_used
    window_id = _events(res, [posted], "WindowPosted")[0]["window_id"]
    offered = market.mine([rx.offer(w, address, window_id, p_w=1000, capacity_price_wei_per_wh=(100 - i) * CENT,
                                    activation_price_wei_per_wh=(100 - i) * CENT, response_s=60)
                           for i, w in enumerate(market.prosumers[:max_offers])], t + 2)
    assert all(r.ok and r.gas_used <= rx.GAS_OFFER for r in offered), max(r.gas_used for r in offered)
    (refused,) = market.mine([rx.offer(market.prosumers[-1], address, window_id, p_w=1000,
                                       capacity_price_wei_per_wh=1, activation_price_wei_per_wh=1, response_s=0)])
    assert reverted(refused, "reserve: offers full")
    (awarded,) = market.mine([rx.award(market.outsider, address, window_id, n_offers=max_offers)], t + 100)
    assert awarded.ok and awarded.gas_used <= rx.award_gas(max_offers), awarded.gas_used
    assert [a.offer_index for a in rx.decode_awards(res.chain, awarded)] == list(reversed(range(max_offers)))
    (activated,) = market.mine([rx.activate(market.operator, address, window_id, p_w=max_offers * 1000,
                                            n_offers=max_offers)], window[0])
    assert activated.ok and activated.gas_used <= rx.activate_gas(max_offers), activated.gas_used
    assert len([a for a in rx.decode_activations(res.chain, activated) if a.energy_wh]) == max_offers
    delivered = market.mine([rx.post_delivery(market.meters[i], address, window_id, delivered_wh=900 + i)
                             for i in (0, max_offers - 1)], window[1])
    assert all(r.ok and r.gas_used <= rx.GAS_POST_DELIVERY for r in delivered), [r.gas_used for r in delivered]
    (closed,) = market.mine([rx.close(market.outsider, address, window_id, n_offers=max_offers)],
                            window[1] + DELIVERY_PERIOD_S)
    assert closed.ok and closed.gas_used <= rx.close_gas(max_offers), closed.gas_used
    assert res.balance(address) == rx.read(res.chain, address, "penalty_reserve_wei")
    assert market.read("GridToken", "totalSupply") == res.supply_wei


@pytest.fixture(scope="module")
def terms() -> tuple[Reserve, int, ReserveWindow]:
    """A contract taking offers of at least 100 W and bonds of at least CENT wei, p0 and p1 rated
    3 kW, and a regulating window open for offers: 5 kW for 900 s."""
    res = _deploy_reserve(new_market(2), {"main": PENALTY_PERMILLE}, facts={0: (1, 3000), 1: (2, 3000)},
                          min_offer_w=100, min_bond_wei=CENT)
    t = res.chain.timestamp
    window = ReserveWindow(PRODUCT_REGULATING, 5000, t + FAR_S + 1, t + FAR_S + 901, 20 * CENT, 30 * CENT)
    (posted,) = res.market.mine([rx.post_window(
        res.market.operator, res.contracts["main"], product=window.product, capacity_w=window.capacity_w,
        window_start_timestamp=window.window_start_timestamp, window_end_timestamp=window.window_end_timestamp,
        offer_deadline_timestamp=t + FAR_S, capacity_price_cap_wei_per_wh=window.capacity_price_cap_wei_per_wh,
        activation_price_cap_wei_per_wh=window.activation_price_cap_wei_per_wh)])
    return res, _events(res, [posted], "WindowPosted")[0]["window_id"], window


@settings(max_examples=200, deadline=None)
@given(
    provider=st.sampled_from([0, 1]),
    p_w=st.one_of(st.integers(0, 6000), st.sampled_from([0, 3, 4, 99, 100, 3000, 3001, 5000, 5001])),
    capacity_price=st.one_of(st.integers(0, 10**11), st.integers(0, 25 * CENT)),
    activation_price=st.one_of(st.integers(0, 10**11), st.integers(0, 35 * CENT)),
    response_s=st.one_of(st.integers(0, 2000), st.sampled_from([0, 300, 301])),
)
def test_offer_terms_are_refused_exactly_as_the_reference_says(terms, provider, p_w, capacity_price,
                                                               activation_price, response_s):
    """Dry-runs (nothing mined) of offers of registered providers against `reserve_reference.offer_refusal`."""
    res, window_id, window = terms
    wallet = res.market.prosumers[provider]
    offer = ReserveOffer(wallet.address, p_w, capacity_price, activation_price, response_s)
    expected = offer_refusal(window, offer, 3000, 100, CENT, PENALTY_PERMILLE)
    data = encode_call(rx.CONTRACT, "offer", window_id, p_w, capacity_price, activation_price, response_s)
    try:
        res.chain.call(res.contracts["main"], data, sender=wallet.address)
        got = None
    except CallReverted as reverted_call:
        got = reverted_call.reason
    assert got == expected


def test_energy_and_budget_are_integer_exact():
    assert energy_wh(1000, 3600) == 1000
    assert energy_wh(1000, 2100) == 583
    assert energy_wh(1, 3599) == 0
    assert budget_wei(6000, 3600, 10 * CENT, 40 * CENT) == 300_000 * CENT
    assert budget_wei(1001, 900, 3, 4) == 250 * 7


def test_the_gas_bench_measures_every_action_within_its_signed_limit():
    from bench.reserve_gas import RESERVE_TX_TYPES, reserve_gas

    gas = reserve_gas()
    assert list(gas) == list(RESERVE_TX_TYPES)
    limits = [rx.GAS_REGISTER_PROVIDER, rx.GAS_POST_WINDOW, rx.GAS_OFFER, rx.award_gas(1), rx.activate_gas(1),
              rx.GAS_POST_DELIVERY, rx.close_gas(1)]
    assert all(0 < used <= limit for used, limit in zip(gas.values(), limits, strict=True)), gas
