"""Attacks on the load shed service by loads, meters and the operator, each refused or bounded with nothing lost.

A load's interruptible power comes from registration, so it cannot enrol
more than it can drop; its bond is priced at the programme's cap, so
bidding nothing does not free it from the bond; a flood of tiny
enrolments is refused by the minimum power, the minimum bond and the
energy of the longest event. The operator decides when and how much to
call but not whom, pays only from its budget and never receives a
penalty. A load is called only with its notice, within its events per
day, never for overlapping events and only while its bond covers every
open call; only its own meter posts its delivery, once, in time; a load
that claims to have shed but did not is paid nothing and pays the
penalty. Every test checks, besides the refusal or the bound: the token
supply is unchanged and the honest accounts' token balances are
unchanged by the attack or moved exactly as their honest part says.

Cast: p0 registered at bus 1 (4 kW interruptible), p1 at bus 2 (5 kW),
p2 the honest load at bus 1 (2 kW), p3 a prosumer never registered, p4..p7
sybils registered at bus 1 (5 kW). The contract's operator is the DSO
account; the market operator is the registrar. One programme: enrolment
until its start, two days from start, events up to 1 h, caps 100 CENT per
event and 50 CENT/Wh, penalty factor 1, so a bond is 50 CENT per Wh of a
1 h event.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from gridledger.contracts.operated import ROLE_OPERATOR
from gridledger.contracts import load_shed as ls
from gridledger.contracts.chain import Receipt
from gridledger.contracts.client import encode_call
from gridledger.contracts.load_shed_reference import ShedProgramme, enrol_bond_wei
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import START_TIMESTAMP, Market, new_market, reverted

MIN_SHED_W = 100
MIN_BOND_WEI = 10_000 * CENT
PENALTY_PERMILLE = 1000
DELIVERY_PERIOD_S = 900
TOKENS_WEI = 10**24
FACTS = {0: (1, 4000), 1: (2, 5000), 2: (1, 2000), 4: (1, 5000), 5: (1, 5000), 6: (1, 5000), 7: (1, 5000)}
HONEST = 2
LIAR = 0
DAY_S = 86_400
LEAD_S = 100
BUDGET_WEI = 10**6 * CENT
WH_CAP = 50 * CENT


@dataclass
class Scene:
    market: Market
    address: str
    programme_id: int
    programme: ShedProgramme

    @property
    def dso(self):
        return self.market.dso

    @property
    def start(self) -> int:
        return self.programme.start_timestamp

    def balances(self, *indices: int) -> dict[str, int]:
        accounts = [self.market.prosumers[i].address for i in indices]
        return {a: self.market.read("GridToken", "balanceOf", a) for a in accounts}

    def balance(self, account: str) -> int:
        return self.market.read("GridToken", "balanceOf", account)

    def supply(self) -> int:
        return self.market.read("GridToken", "totalSupply")

    def enrol(self, i: int, shed_w: int, *, notice_s: int = 0, per_day: int = 2, fee: int = 0,
              price: int = 10 * CENT, programme_id: int | None = None) -> Receipt:
        (receipt,) = self.market.mine([ls.enrol(
            self.market.prosumers[i], self.address, self.programme_id if programme_id is None else programme_id,
            shed_w=shed_w, notice_s=notice_s, max_events_per_day=per_day, price_per_event_wei=fee,
            price_per_wh_wei=price)])
        return receipt

    def call(self, shed_w: int, begin: int, end: int, *, at: int | None = None, programme_id: int | None = None,
             sender=None) -> Receipt:
        (receipt,) = self.market.mine([ls.call(
            sender or self.dso, self.address, self.programme_id if programme_id is None else programme_id,
            shed_w=shed_w, from_timestamp=begin, to_timestamp=end, n_enrolments=8)], at)
        return receipt

    def called(self, receipt: Receipt) -> list[str]:
        return [c.load for c in ls.decode_calls(self.market.chain, receipt)]

    def deliver(self, i: int, event_id: int, delivered_wh: int, *, at: int | None = None) -> Receipt:
        (receipt,) = self.market.mine([ls.post_delivery(self.market.meters[i], self.address, event_id,
                                                        delivered_wh=delivered_wh)], at)
        return receipt

    def address_of(self, i: int) -> str:
        return self.market.prosumers[i].address

    def held_is_balance(self) -> bool:
        n = ls.read(self.market.chain, self.address, "programme_count")
        held = sum(ls.read(self.market.chain, self.address, "held_wei", g) for g in range(n))
        return self.balance(self.address) == held + ls.read(self.market.chain, self.address, "penalty_reserve_wei")


def _post(m: Market, address: str, *, start: int, max_event_s: int = 3600, budget_wei: int = BUDGET_WEI) -> bytes:
    return ls.post_programme(m.dso, address, start_timestamp=start, end_timestamp=start + 2 * DAY_S,
                             enrol_deadline_timestamp=start, max_event_s=max_event_s,
                             price_per_event_cap_wei=100 * CENT, price_per_wh_cap_wei=WH_CAP, budget_wei=budget_wei)


def _scene(budget_wei: int = BUDGET_WEI) -> Scene:
    """The cast registered at deployment, before the start; tokens and approvals; one programme open for enrolment."""
    m = new_market(8)
    op = m.operator
    loads = [ls.LoadFacts(m.prosumers[i].address, bus, max_w) for i, (bus, max_w) in FACTS.items()]
    address = ls.deploy_load_shed(m.chain, op, m.addresses.registry, m.addresses.token,
                                  penalty_permille=PENALTY_PERMILLE, delivery_period_s=DELIVERY_PERIOD_S,
                                  min_shed_w=MIN_SHED_W, min_bond_wei=MIN_BOND_WEI, loads=loads,
                                  operator_address=m.dso.address)
    raw = [m.call_tx(op, "GridToken", "mint", w.address, TOKENS_WEI) for w in (m.dso, *m.prosumers)]
    raw += [m.call_tx(w, "GridToken", "approve", address, TOKENS_WEI) for w in (m.dso, *m.prosumers)]
    receipts = m.mine(raw)
    start = m.chain.timestamp + LEAD_S
    receipts += m.mine([_post(m, address, start=start, budget_wei=budget_wei)])
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    programme = ShedProgramme(start, start + 2 * DAY_S, start, 3600, 100 * CENT, WH_CAP, budget_wei)
    return Scene(m, address, ls.read(m.chain, address, "programme_count") - 1, programme)


@pytest.fixture
def scene() -> Scene:
    return _scene()


def test_an_unregistered_prosumer_a_meter_or_an_outsider_cannot_enrol(scene):
    before, supply = scene.balances(HONEST), scene.supply()
    assert reverted(scene.enrol(3, 1000), "load shed: load not registered")
    for wallet in (scene.market.meters[0], scene.market.outsider, scene.dso):
        raw = wallet.transact(scene.address, encode_call("LoadShed", "enrol", scene.programme_id, 1000, 0, 1, 0, CENT),
                              gas=ls.GAS_ENROL)
        (receipt,) = scene.market.mine([raw])
        assert reverted(receipt, "load shed: caller is not a prosumer")
    assert ls.programme(scene.market.chain, scene.address, scene.programme_id).enrolment_count == 0
    assert scene.balances(HONEST) == before and scene.supply() == supply


def test_an_enrolment_above_the_registered_interruptible_power_reverts(scene):
    before, supply = scene.balances(0, 1), scene.supply()
    assert reverted(scene.enrol(HONEST, 2001), "load shed: shed above maximum")
    assert scene.enrol(HONEST, 2000).ok
    assert scene.balances(0, 1) == before and scene.supply() == supply


def test_bidding_nothing_does_not_zero_the_bond(scene):
    """p0 enrols 4 kW at 0 per event and 0 per Wh: its bond is still 4000 Wh * 50 CENT (the cap), as for a
    load bidding the cap."""
    supply = scene.supply()
    before = scene.balances(LIAR, HONEST)
    assert scene.enrol(LIAR, 4000, fee=0, price=0).ok
    assert scene.enrol(HONEST, 2000, fee=100 * CENT, price=WH_CAP).ok
    after = scene.balances(LIAR, HONEST)
    liar, honest = scene.address_of(LIAR), scene.address_of(HONEST)
    assert before[liar] - after[liar] == 4000 * WH_CAP == enrol_bond_wei(scene.programme, 4000, PENALTY_PERMILLE,
                                                                          MIN_BOND_WEI)
    assert before[honest] - after[honest] == 2000 * WH_CAP
    assert scene.supply() == supply and scene.held_is_balance()


def test_a_flood_of_tiny_enrolments_is_refused_or_pays_the_minimum_bond(scene):
    """4 W falls below the 100 W minimum; 1000 W in a programme of 1 s events sheds 0 Wh and could never be
    called; 100 W at price 0 passes but posts the minimum bond (its own is 100 Wh * 50 CENT, below it)."""
    m = scene.market
    before, supply = scene.balances(HONEST), scene.supply()
    sybils = range(4, 8)
    assert all(reverted(scene.enrol(i, 4), "load shed: shed below minimum") for i in sybils)
    (short,) = m.mine([_post(m, scene.address, start=m.chain.timestamp + LEAD_S, max_event_s=1)])
    assert short.ok
    short_id = ls.read(m.chain, scene.address, "programme_count") - 1
    assert all(reverted(scene.enrol(i, 1000, programme_id=short_id), "load shed: zero energy") for i in sybils)
    assert ls.programme(m.chain, scene.address, scene.programme_id).enrolment_count == 0
    assert scene.balances(HONEST) == before and scene.supply() == supply
    assert scene.enrol(HONEST, 2000).ok
    sybil = scene.address_of(4)
    paid_before = scene.balance(sybil)
    assert scene.enrol(4, MIN_SHED_W, price=0).ok
    assert paid_before - scene.balance(sybil) == MIN_BOND_WEI > MIN_SHED_W * WH_CAP
    assert ls.enrolments(m.chain, scene.address, scene.programme_id)[0].load == scene.address_of(HONEST)


def test_enrolling_twice_or_after_the_deadline_is_refused(scene):
    supply = scene.supply()
    assert scene.enrol(HONEST, 2000).ok
    before = scene.balances(HONEST)
    assert reverted(scene.enrol(HONEST, 1000), "load shed: load enrolled")
    scene.market.mine([], scene.programme.enrol_deadline_timestamp)
    assert reverted(scene.enrol(LIAR, 1000), "load shed: enrolment closed")
    assert scene.balances(HONEST) == before and scene.supply() == supply
    assert ls.programme(scene.market.chain, scene.address, scene.programme_id).enrolment_count == 1


def test_only_the_operator_holding_its_role_posts_programmes_and_calls(scene):
    """Prosumers, meters, an outsider and the registrar (the market operator) are not the contract's
    operator; once the DSO loses the registry's operator role it is refused too."""
    m = scene.market
    assert scene.enrol(HONEST, 2000).ok
    before, supply = scene.balances(HONEST), scene.supply()
    dso_before = scene.balance(m.dso.address)
    begin = scene.start + 3600
    for wallet in (m.prosumers[LIAR], m.meters[HONEST], m.outsider, m.operator):
        assert reverted(scene.call(2000, begin, begin + 3600, sender=wallet), "load shed: caller is not operator")
        raw = wallet.transact(scene.address, encode_call(
            "LoadShed", "post_programme", begin, begin + DAY_S, begin, 3600, 0, CENT, CENT), gas=ls.GAS_POST_PROGRAMME)
        (receipt,) = m.mine([raw])
        assert reverted(receipt, "load shed: caller is not operator")
    (revoked,) = m.mine([m.call_tx(m.operator, "Registry", "revoke_role", m.dso.address, ROLE_OPERATOR)])
    assert revoked.ok
    assert reverted(scene.call(2000, begin, begin + 3600), "load shed: caller is not operator")
    (posted,) = m.mine([_post(m, scene.address, start=begin)])
    assert reverted(posted, "load shed: caller is not operator")
    assert ls.read(m.chain, scene.address, "event_count") == 0
    assert scene.balances(HONEST) == before and scene.balance(m.dso.address) == dso_before
    assert scene.supply() == supply


def test_a_call_with_less_notice_than_a_load_needs_skips_that_load(scene):
    """p0 is cheaper (10 CENT/Wh) but needs 1800 s notice; p2 (20 CENT/Wh) none. Called 600 s ahead only p2
    sheds; called 1800 s ahead p0 comes first."""
    supply = scene.supply()
    assert scene.enrol(LIAR, 4000, notice_s=1800, price=10 * CENT).ok
    assert scene.enrol(HONEST, 2000, price=20 * CENT).ok
    begin = scene.start + 3600
    short = scene.call(6000, begin, begin + 900, at=begin - 600)
    assert short.ok and scene.called(short) == [scene.address_of(HONEST)]
    later = begin + 7200
    ample = scene.call(6000, later, later + 900, at=later - 1800)
    assert ample.ok and scene.called(ample) == [scene.address_of(LIAR), scene.address_of(HONEST)]
    assert scene.held_is_balance()
    assert scene.supply() == supply


def test_a_load_is_called_within_its_events_per_day_never_twice_at_once_and_only_while_its_bond_covers(scene):
    """p0 (1 a day) and p2 (2 a day), 1 h events: both shed event A; B overlapping A calls nobody; C later
    that day while A is open finds both bonds set aside for A; after A is settled C calls p2 only (p0
    had its event today), and D the next day calls p0 again."""
    supply = scene.supply()
    p0, p2 = scene.address_of(LIAR), scene.address_of(HONEST)
    assert scene.enrol(LIAR, 4000, per_day=1, price=10 * CENT).ok
    assert scene.enrol(HONEST, 2000, per_day=2, price=20 * CENT).ok
    s = scene.start
    a = scene.call(6000, s + 3600, s + 7200, at=s)
    assert a.ok and scene.called(a) == [p0, p2]
    assert reverted(scene.call(6000, s + 5400, s + 9000), "load shed: no load called")
    assert reverted(scene.call(6000, s + 7200, s + 10_800), "load shed: no load called")
    assert scene.deliver(LIAR, 0, 4000, at=s + 7200).ok and scene.deliver(HONEST, 0, 2000).ok
    c = scene.call(6000, s + 9000, s + 12_600)
    assert c.ok and scene.called(c) == [p2]
    d = scene.call(6000, s + DAY_S, s + DAY_S + 3600)
    assert d.ok and scene.called(d) == [p0]
    events = [ls.shed_event(scene.market.chain, scene.address, e) for e in (1, 2)]
    assert [(e.shed_w, e.called_w) for e in events] == [(6000, 2000), (6000, 4000)]
    assert scene.held_is_balance()
    assert scene.supply() == supply


def test_a_meter_posts_only_for_its_own_called_load(scene):
    """p0 alone is called; p2's meter, p0 itself, an outsider and the operator cannot post for it; once
    both are called, p2's meter posting a huge figure settles p2 alone, capped at its energy."""
    supply = scene.supply()
    m = scene.market
    assert scene.enrol(LIAR, 4000, price=10 * CENT).ok
    assert scene.enrol(HONEST, 2000, price=20 * CENT).ok
    s = scene.start
    assert scene.call(4000, s, s + 3600, at=s).ok
    assert reverted(scene.deliver(HONEST, 0, 4000, at=s + 3600), "load shed: load not called")
    for wallet in (m.prosumers[LIAR], m.outsider, m.dso):
        raw = wallet.transact(scene.address, encode_call("LoadShed", "post_delivery", 0, 4000),
                              gas=ls.GAS_POST_DELIVERY)
        (receipt,) = m.mine([raw])
        assert reverted(receipt, "load shed: caller is not a bound meter")
    assert not ls.called_loads(m.chain, scene.address, 0)[0].settled
    # p0's bond is set aside for event 0 until its own meter settles it.
    assert scene.deliver(LIAR, 0, 4000).ok
    assert scene.call(6000, s + 7200, s + 10_800).ok
    before = scene.balances(LIAR)
    assert scene.deliver(HONEST, 1, 10**12, at=s + 10_800).ok
    p0_call, p2_call = ls.called_loads(m.chain, scene.address, 1)
    assert not p0_call.settled and p2_call.settled and p2_call.payment_wei == 2000 * 20 * CENT
    assert scene.balances(LIAR) == before and scene.held_is_balance()
    assert scene.supply() == supply


def test_a_delivery_is_posted_once_and_only_within_its_period(scene):
    supply = scene.supply()
    assert scene.enrol(HONEST, 2000, price=20 * CENT).ok
    s = scene.start
    assert scene.call(2000, s, s + 3600, at=s).ok
    assert reverted(scene.deliver(HONEST, 0, 2000), "load shed: event not ended")
    assert scene.deliver(HONEST, 0, 2000, at=s + 3600).ok
    paid = scene.balances(HONEST)
    assert reverted(scene.deliver(HONEST, 0, 2000), "load shed: delivery posted")
    assert scene.call(2000, s + 7200, s + 10_800).ok
    assert reverted(scene.deliver(HONEST, 1, 2000, at=s + 10_800 + DELIVERY_PERIOD_S), "load shed: delivery closed")
    assert scene.balances(HONEST) == paid
    assert ls.called_loads(scene.market.chain, scene.address, 0)[0].delivered_wh == 2000
    assert scene.held_is_balance()
    assert scene.supply() == supply


def test_a_load_whose_meter_shows_no_shed_is_unpaid_and_its_penalty_goes_to_the_honest_load(scene):
    """p0 says it dropped 4 kW for the hour but its meter measured nothing below the baseline: it posts
    0 Wh, is paid nothing and loses 4000 Wh * 50 CENT, its whole bond. p2 shed its 2000 Wh: paid
    2000 * 20 CENT and, the only load paid, gets all of p0's penalty at close. The operator gets its
    budget less p2's pay, none of the penalty (its budget was escrowed before the scene's balances)."""
    m = scene.market
    supply = scene.supply()
    start = scene.balances(LIAR, HONEST)
    dso_start = scene.balance(m.dso.address)
    assert scene.enrol(LIAR, 4000, price=10 * CENT).ok and scene.enrol(HONEST, 2000, price=20 * CENT).ok
    s = scene.start
    assert scene.call(6000, s, s + 3600, at=s).ok
    assert scene.deliver(LIAR, 0, 0, at=s + 3600).ok and scene.deliver(HONEST, 0, 2000).ok
    end = scene.programme.end_timestamp + DELIVERY_PERIOD_S
    (closed,) = m.mine([ls.close_programme(m.outsider, scene.address, scene.programme_id, n_enrolments=2)], end)
    assert closed.ok
    after = scene.balances(LIAR, HONEST)
    liar, honest = scene.address_of(LIAR), scene.address_of(HONEST)
    bond = 4000 * WH_CAP
    assert after[liar] - start[liar] == -bond
    assert after[honest] - start[honest] == 2000 * 20 * CENT + bond
    assert scene.balance(m.dso.address) - dso_start == BUDGET_WEI - 2000 * 20 * CENT
    assert scene.supply() == supply and scene.balance(scene.address) == 0


def test_an_operator_calling_beyond_its_budget_is_bounded_by_it():
    """The budget, 50000 CENT, covers p2's 2000 Wh * 20 CENT but not p0's 4000 Wh * 10 CENT + p2's:
    a call for 6000 W calls p0 (cheapest per Wh), then skips p2; the next call finds 10000 CENT left,
    below every cost, and calls nobody. Every reservation is paid in full and the operator gets back
    the 10000 CENT it did not spend."""
    scene = _scene(budget_wei=50_000 * CENT)
    m = scene.market
    supply = scene.supply()
    dso_start = scene.balance(m.dso.address)
    assert scene.enrol(LIAR, 4000, price=10 * CENT).ok and scene.enrol(HONEST, 2000, price=20 * CENT).ok
    s = scene.start
    first = scene.call(6000, s, s + 3600, at=s)
    assert first.ok and scene.called(first) == [scene.address_of(LIAR)]
    assert ls.shed_event(m.chain, scene.address, 0).called_w == 4000
    assert reverted(scene.call(2000, s + 3600, s + 7200), "load shed: no load called")
    before = scene.balances(LIAR)
    assert scene.deliver(LIAR, 0, 4000, at=s + 3600).ok
    assert scene.balances(LIAR)[scene.address_of(LIAR)] - before[scene.address_of(LIAR)] == 40_000 * CENT
    (closed,) = m.mine([ls.close_programme(m.outsider, scene.address, scene.programme_id, n_enrolments=2)],
                       scene.programme.end_timestamp + DELIVERY_PERIOD_S)
    assert closed.ok
    assert scene.balance(m.dso.address) - dso_start == 10_000 * CENT
    assert scene.supply() == supply and scene.balance(scene.address) == 0


def test_penalties_never_reach_the_operator(scene):
    """Nobody sheds: the penalties of both loads stay in the contract's reserve and the operator gets its
    whole budget back; the next programme's only paying load gets the reserve at its close."""
    m = scene.market
    dso_start = scene.balance(m.dso.address)
    assert scene.enrol(LIAR, 4000, price=10 * CENT).ok and scene.enrol(HONEST, 2000, price=20 * CENT).ok
    s = scene.start
    assert scene.call(6000, s, s + 3600, at=s).ok
    (settled,) = m.mine([ls.settle_event(m.outsider, scene.address, 0, n_calls=2)], s + 3600 + DELIVERY_PERIOD_S)
    assert settled.ok
    first_closes = scene.programme.end_timestamp + DELIVERY_PERIOD_S
    (second,) = m.mine([_post(m, scene.address, start=first_closes + LEAD_S)])
    assert second.ok
    second_id = scene.programme_id + 1
    assert scene.enrol(HONEST, 2000, price=20 * CENT, programme_id=second_id).ok
    (closed,) = m.mine([ls.close_programme(m.outsider, scene.address, scene.programme_id, n_enrolments=2)],
                       first_closes)
    assert closed.ok
    penalties = (4000 + 2000) * WH_CAP
    assert ls.read(m.chain, scene.address, "penalty_reserve_wei") == penalties
    # The first budget came back whole; the second is escrowed.
    assert scene.balance(m.dso.address) - dso_start == BUDGET_WEI - BUDGET_WEI
    second_start = ls.programme(m.chain, scene.address, second_id).start_timestamp
    before = scene.balances(HONEST)
    assert scene.call(2000, second_start, second_start + 3600, programme_id=second_id, at=second_start).ok
    assert scene.deliver(HONEST, 1, 2000, at=second_start + 3600).ok
    (closed,) = m.mine([ls.close_programme(m.outsider, scene.address, second_id, n_enrolments=1)],
                       second_start + 2 * DAY_S + DELIVERY_PERIOD_S)
    assert closed.ok
    honest = scene.address_of(HONEST)
    assert scene.balances(HONEST)[honest] - before[honest] == 2000 * 20 * CENT + 2000 * WH_CAP + penalties
    assert scene.balance(m.dso.address) - dso_start == BUDGET_WEI - 2000 * 20 * CENT
    assert ls.read(m.chain, scene.address, "penalty_reserve_wei") == 0 == scene.balance(scene.address)


def test_closing_early_with_unsettled_events_or_twice_is_refused(scene):
    supply = scene.supply()
    m = scene.market
    assert scene.enrol(HONEST, 2000, price=20 * CENT).ok
    s = scene.start
    assert scene.call(2000, s, s + 3600, at=s).ok

    def close() -> Receipt:
        (receipt,) = m.mine([ls.close_programme(m.outsider, scene.address, scene.programme_id, n_enrolments=1)],
                            max(m.chain.timestamp + 1, scene.programme.end_timestamp + DELIVERY_PERIOD_S - 1))
        return receipt

    before = scene.balances(HONEST)
    assert reverted(close(), "load shed: delivery open")
    assert reverted(close(), "load shed: events unsettled")
    (settled,) = m.mine([ls.settle_event(m.outsider, scene.address, 0, n_calls=1)])
    assert settled.ok
    assert close().ok
    assert reverted(close(), "load shed: already closed")
    honest = scene.address_of(HONEST)
    # Bond of 2000 Wh * 50 CENT back less the missed event's penalty, the same 100000 CENT.
    assert scene.balances(HONEST)[honest] == before[honest]
    assert ls.read(m.chain, scene.address, "held_wei", scene.programme_id) == 0
    assert scene.supply() == supply


def test_registration_is_the_registrars_only_and_closes_at_the_start(scene):
    m = scene.market
    p3 = m.prosumers[3].address

    def register(wallet, load: str, bus: int, max_shed_w: int) -> Receipt:
        (receipt,) = m.mine([ls.register_load(wallet, scene.address, ls.LoadFacts(load, bus, max_shed_w))])
        return receipt

    assert reverted(register(m.prosumers[3], p3, 1, 10**6), "load shed: caller is not registrar")
    assert reverted(register(m.dso, p3, 1, 10**6), "load shed: caller is not registrar")
    assert reverted(register(m.operator, m.meters[3].address, 1, 1000), "load shed: load is not a prosumer")
    assert reverted(register(m.operator, p3, 1, 0), "load shed: zero maximum shed")
    assert reverted(register(m.operator, p3, 1, 10**9 + 1), "load shed: maximum shed above limit")
    assert reverted(register(m.operator, m.prosumers[0].address, 2, 10**6), "load shed: load registered")
    assert ls.read(m.chain, scene.address, "load_max_shed_w", m.prosumers[0].address) == 4000
    m.mine([], START_TIMESTAMP)
    assert reverted(register(m.operator, p3, 1, 1000), "load shed: registration closed")
    assert ls.read(m.chain, scene.address, "load_max_shed_w", p3) == 0
