"""Attacks on the pseudonym registration: every ticket and registration the rules refuse reverts with its exact
reason and changes nothing (counts, tickets, roles, bindings, limits, credits, token balances, no log); the quota
bypass, a registrar signing for itself, front-running and replays are refused or bounded, and honest owners' pairs
register with their bonds.

Cast (`tests.test_pseudonyms_contract`): p0, p1, p2 are prosumers of classes
0, 1, 0 holding four bonds' worth of tokens approved to the contract; p0 and
p1 hold tickets for interval 1 and ``registration`` is p0's pair of interval
1, both signatures obtained through the whole blind protocol; the outsider
relays registrations.
"""

from __future__ import annotations

import pytest

from gridledger.contracts import flexibility as fx
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.client import encode_call, signed_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import SetupFailed
from gridledger.contracts.pseudonyms_reference import MAX_POWER_W
from tests.contract_helpers import INTERVAL_S, START_TIMESTAMP, Market, new_market
from tests.test_pseudonyms_contract import (
    BOND_WEI,
    CLASSES,
    HORIZON_INTERVALS,
    KEY,
    TOKENS_WEI,
    ZERO,
    _blindly_signed,
    _fund,
    _one,
    _pair,
    _registrar,
    _request,
    _scene,
    _signed,
)

INTERVALS = range(HORIZON_INTERVALS + 2)


def _state(market: Market, address: str, accounts: tuple[str, ...]) -> dict:
    """Everything a ticket or registration can change: the counts and tickets of every interval, the registry
    roles and bindings, Settlement limits and credits and pseudonym status of ``accounts``, and the token
    balances of the prosumers, the contract and the Settlement."""
    def pseudonyms(function: str, *args):
        return pn.read(market.chain, address, function, *args)

    state = {("count", k): (pseudonyms("tickets", k), pseudonyms("registered_count", k)) for k in INTERVALS}
    state |= {("ticket", w.address, k): pseudonyms("has_ticket", w.address, k)
              for w in market.prosumers for k in INTERVALS}
    for a in accounts:
        state[a] = (market.read("Registry", "roles", a), market.read("Registry", "prosumer_of_meter", a),
                    market.read("Registry", "meter_of_prosumer", a), tuple(market.read("Settlement", "limits", a)),
                    market.read("Settlement", "credit_wei", a), [pseudonyms("is_pseudonym", a, k) for k in INTERVALS])
    for holder in (*(w.address for w in market.prosumers), address, market.addresses.settlement):
        state["tokens", holder] = market.read("GridToken", "balanceOf", holder)
    return state


def _refused(market: Market, address: str, raw: bytes, accounts: tuple[str, ...] = (), at: int | None = None) -> str:
    """Mine ``raw`` alone; check it reverted, logged nothing and changed nothing of :func:`_state`; its reason."""
    accounts = tuple(a for a in accounts if a != ZERO)
    before = _state(market, address, accounts)
    receipt = _one(market, raw, at)
    assert not receipt.ok and not receipt.logs
    assert _state(market, address, accounts) == before
    return receipt.revert_reason


def assert_tokens_conserved(market: Market, address: str, pseudonyms: list[str]) -> None:
    """The supply is every holder's balance (the Pseudonyms contract's and the Settlement's included), and the
    Settlement holds the credits of the operator, the prosumers and ``pseudonyms`` plus its pools."""
    holders = [market.operator.address, market.outsider.address, market.dso.address, address,
               market.addresses.settlement, *(w.address for w in (*market.prosumers, *market.meters)), *pseudonyms]
    assert market.read("GridToken", "totalSupply") == sum(market.read("GridToken", "balanceOf", h) for h in holders)
    credits = [market.read("Settlement", "credit_wei", a)
               for a in (market.operator.address, *(w.address for w in market.prosumers), *pseudonyms)]
    pools = market.read("Settlement", "pool_wei") + market.read("Settlement", "penalty_pool_wei")
    assert market.read("GridToken", "balanceOf", market.addresses.settlement) == sum(credits) + pools


def _ticketed() -> tuple[Market, str, pn.Registrar, pn.Registration]:
    """The cast: p0 and p1 hold tickets for interval 1; p0's pair of 1, blindly signed."""
    market, address = _scene()
    assert all(r.ok for r in market.mine([pn.buy_ticket(market.prosumers[i], address, 1) for i in (0, 1)]))
    registrar = _registrar(market, address)
    return market, address, registrar, _blindly_signed(market, address, registrar, 0, 1)


def _register(market: Market, address: str, *args) -> bytes:
    """The outsider's relayed ``register(*args)``."""
    return market.outsider.transact(address, encode_call(pn.CONTRACT, "register", *args), gas=pn.GAS_REGISTER)


@pytest.mark.parametrize("attack,reason", [
    ("the outsider", "pseudonyms: caller is not a prosumer"),
    ("the operator", "pseudonyms: caller is not a prosumer"),
    ("a meter", "pseudonyms: caller is not a prosumer"),
    ("a registered pseudonym", "pseudonyms: caller is a pseudonym"),
    ("for an interval that has begun", "pseudonyms: interval in the past"),
    ("for an interval beyond the horizon", "pseudonyms: interval too far ahead"),
    ("a second ticket", "pseudonyms: ticket bought"),
    ("without allowance", "token: insufficient allowance"),
    ("without tokens", "token: transfer amount exceeds balance"),
])
def test_a_ticket_the_rules_refuse_reverts_and_changes_nothing(attack, reason):
    market, address, _, registration = _ticketed()
    buyer, interval, at = market.prosumers[2], 1, None
    if attack in ("the outsider", "the operator", "a meter"):
        buyer = {"the outsider": market.outsider, "the operator": market.operator, "a meter": market.meters[2]}[attack]
    elif attack == "a registered pseudonym":
        fund, registered = market.mine([_fund(market, registration.pseudonym),
                                        pn.register(market.outsider, address, registration)])
        assert fund.ok and registered.ok
        buyer = market.chain.wallet(pn.pseudonym_account(market.prosumers[0].account.key, 1))
        interval = 2
    elif attack == "for an interval that has begun":
        at = START_TIMESTAMP + INTERVAL_S                   # interval 1 begins; 2 is the first open one
    elif attack == "for an interval beyond the horizon":
        interval = HORIZON_INTERVALS                         # 0 .. 3 are open before the start
    elif attack == "a second ticket":
        buyer = market.prosumers[0]
    elif attack == "without allowance":
        assert _one(market, fx.approve(buyer, market.addresses.token, address, BOND_WEI - 1)).ok
    elif attack == "without tokens":
        assert _one(market, market.call_tx(buyer, "GridToken", "transfer", market.outsider.address,
                                           TOKENS_WEI - BOND_WEI + 1)).ok
    assert _refused(market, address, pn.buy_ticket(buyer, address, interval), (buyer.address,), at) == reason


REGISTRATION_ATTACKS = [
    ("a signature one byte short", "pseudonyms: malformed signature"),
    ("an empty meter signature", "pseudonyms: malformed signature"),
    ("a signature one byte long", "reverted without reason"),           # the ABI decoder's Bytes[256] bound
    ("once its interval has begun", "pseudonyms: interval in the past"),
    ("for an interval beyond the horizon", "pseudonyms: interval too far ahead"),
    ("in an unknown class", "pseudonyms: unknown class"),
    ("under the owner's exponent of another interval", "pseudonyms: exponent not of the interval"),
    ("under the owner's exponent of another class", "pseudonyms: exponent not of the interval"),
    ("under the meter's exponent of another interval", "pseudonyms: exponent not of the interval"),
    ("with the meter's exponent in the owner's window", "pseudonyms: exponent not of the interval"),
    ("for the zero address", "pseudonyms: zero address"),
    ("with the zero address as meter", "pseudonyms: zero address"),
    ("with the pseudonym as its own meter", "pseudonyms: pseudonym is its meter"),
    ("for the owner's own address", "pseudonyms: account holds a role"),
    ("for the operator", "pseudonyms: account holds a role"),
    ("with a bound meter as the one-time key", "pseudonyms: account holds a role"),
    ("a replay of a registered pair", "pseudonyms: account holds a role"),
    ("beyond the interval's tickets", "pseudonyms: no ticket left"),
    ("garbage as signature", "pseudonyms: bad signature"),
    ("the hash itself, unsigned", "pseudonyms: bad signature"),
    ("the owner's signature of another pair", "pseudonyms: bad signature"),
    ("swapped signatures", "pseudonyms: bad signature"),
    ("claiming the other class with the owner's signature", "pseudonyms: bad signature"),
    ("garbage as meter signature", "pseudonyms: bad meter signature"),
    ("the meter's signature of another pseudonym", "pseudonyms: bad meter signature"),
]


@pytest.mark.parametrize("attack,reason", REGISTRATION_ATTACKS)
def test_a_registration_the_rules_refuse_reverts_and_changes_nothing(attack, reason):
    market, address, _, registration = _ticketed()
    chain_id, at = market.chain.chain_id, None
    args = list(registration.args())
    # pseudonym, meter, interval, class_index, pseudonym_exponent, pseudonym_signature, meter_exponent,
    # meter_signature
    pseudonym, meter = args[:2]

    def signed_for(p: str, m: str, interval: int = 1, class_index: int = 0) -> list:
        return list(_signed(market, address, p, m, interval, class_index).args())

    if attack == "a signature one byte short":
        args[5] = args[5][:-1]
    elif attack == "an empty meter signature":
        args[7] = b""
    elif attack == "a signature one byte long":
        args[5] = args[5] + b"\0"
    elif attack == "once its interval has begun":
        at = START_TIMESTAMP + INTERVAL_S
    elif attack == "for an interval beyond the horizon":
        args = signed_for(*_pair(market, 0, HORIZON_INTERVALS), HORIZON_INTERVALS)
    elif attack == "in an unknown class":
        args[3] = len(CLASSES)
    elif attack == "under the owner's exponent of another interval":
        args[4] = pn.window_exponent(2, 0)
    elif attack == "under the owner's exponent of another class":
        args[4] = pn.window_exponent(1, 1)
    elif attack == "under the meter's exponent of another interval":
        args[6] = pn.window_exponent(2, pn.METER_CLASS)
    elif attack == "with the meter's exponent in the owner's window":
        args[6] = pn.window_exponent(1, 0)
    elif attack == "for the zero address":
        args = signed_for(ZERO, meter)
    elif attack == "with the zero address as meter":
        args = signed_for(pseudonym, ZERO)
    elif attack == "with the pseudonym as its own meter":
        args = signed_for(pseudonym, pseudonym)
    elif attack == "for the owner's own address":
        args = signed_for(market.prosumers[0].address, meter)          # the registrar signs blindly: valid
    elif attack == "for the operator":
        args = signed_for(market.operator.address, meter)
    elif attack == "with a bound meter as the one-time key":
        args = signed_for(pseudonym, market.meters[0].address)
    elif attack == "a replay of a registered pair":
        assert _one(market, pn.register(market.outsider, address, registration)).ok
    elif attack == "beyond the interval's tickets":
        assert _one(market, pn.register(market.outsider, address, registration)).ok
        other = _blindly_signed(market, address, _registrar(market, address), 1, 1)
        assert _one(market, pn.register(market.outsider, address, other)).ok   # p1's ticket, p1's pair
        args = signed_for(*_pair(market, 2, 1))                     # p2 holds no ticket: a third pair
    elif attack == "garbage as signature":
        args[5] = bytes(range(256))
    elif attack == "the hash itself, unsigned":
        args[5] = pn.signature_bytes(pn.full_domain_hash(chain_id, address, pseudonym, meter, 1))
    elif attack == "the owner's signature of another pair":
        args[5] = signed_for(pseudonym, _pair(market, 1, 1)[1])[5]
    elif attack == "swapped signatures":
        args[5], args[7] = args[7], args[5]
    elif attack == "claiming the other class with the owner's signature":
        args[3], args[4] = 1, pn.window_exponent(1, 1)             # class 1's larger limits
    elif attack == "garbage as meter signature":
        args[7] = b"\xff" * pn.MODULUS_BYTES
    elif attack == "the meter's signature of another pseudonym":
        args[7] = signed_for(_pair(market, 1, 1)[0], meter)[7]
    assert _refused(market, address, _register(market, address, *args), (args[0], args[1]), at) == reason


def test_the_quota_bypass_a_signature_bought_under_another_intervals_or_classes_label_registers_nothing():
    """p0 holds tickets for intervals 1 and 2 and wants two pseudonyms in 1: it has its honest pair of 1 signed,
    then blinds a second pair of 1 and asks under interval 2's label, which the registrar cannot tell apart from
    an honest request. Neither exponent makes that signature register in 1; the registrar refuses a second request
    of p0 for 1, a request in another class and one without a ticket; the honest pairs register with their
    bonds."""
    market, address, registrar, honest = _ticketed()
    chain_id, p0, meter0 = market.chain.chain_id, market.prosumers[0], market.meters[0]
    assert _one(market, pn.buy_ticket(p0, address, 2)).ok
    # A second pair of interval 1, both keys p0's (its own meter is taken for 1 by the honest pair).
    greedy = (derive_account(p0.account.key, "greedy pseudonym").address,
              derive_account(p0.account.key, "greedy meter").address)
    owner_hash = pn.full_domain_hash(chain_id, address, *greedy, 1)
    meter_hash = pn.full_domain_hash(chain_id, address, *reversed(greedy), 1)
    signatures = []
    for requester, class_index, h in ((p0, 0, owner_hash), (meter0, pn.METER_CLASS, meter_hash)):
        request, pending = _request(market, address, requester, 2, class_index, h)     # interval 2's label
        signatures.append(pn.finish_signature(pending, KEY.n, registrar.serve(request)))
    e2, e1 = pn.window_exponent(2, 0), pn.window_exponent(1, 0)
    m2, m1 = pn.window_exponent(2, pn.METER_CLASS), pn.window_exponent(1, pn.METER_CLASS)
    for exponents, reason in (((e2, m2), "pseudonyms: exponent not of the interval"),
                              ((e1, m1), "pseudonyms: bad signature"),
                              ((e1, m2), "pseudonyms: exponent not of the interval")):
        raw = _register(market, address, *greedy, 1, 0, exponents[0], signatures[0], exponents[1], signatures[1])
        assert _refused(market, address, raw, greedy) == reason
    # Nor in interval 2: the hashes name interval 1.
    raw = _register(market, address, *greedy, 2, 0, e2, signatures[0], m2, signatures[1])
    assert _refused(market, address, raw, greedy) == "pseudonyms: bad signature"
    # The registrar serves p0 once per interval (another m' than the served one), in its class, with a ticket only.
    third = pn.full_domain_hash(chain_id, address, *_pair(market, 0, 2), 2)
    for interval, class_index, reason in ((1, 0, "registrar: already served"), (2, 0, "registrar: already served"),
                                          (1, 1, "registrar: not its class"), (3, 0, "registrar: no ticket")):
        with pytest.raises(pn.RegistrarRefusal, match=reason):
            registrar.serve(_request(market, address, p0, interval, class_index, third)[0])
    with pytest.raises(pn.RegistrarRefusal, match="registrar: already served"):
        registrar.serve(_request(market, address, meter0, 1, pn.METER_CLASS, meter_hash)[0])
    # The honest pairs of p0 and p1 register, each with its bond; the quota holds.
    other = _blindly_signed(market, address, registrar, 1, 1)
    assert all(r.ok for r in market.mine([pn.register(market.outsider, address, r) for r in (honest, other)]))
    assert pn.read(market.chain, address, "registered_count", 1) == pn.read(market.chain, address, "tickets", 1) == 2
    assert [market.read("Settlement", "credit_wei", r.pseudonym) for r in (honest, other)] == [BOND_WEI, BOND_WEI]
    assert_tokens_conserved(market, address, [honest.pseudonym, other.pseudonym])


def _registrars_own_pairs(market: Market, address: str, count: int) -> list[pn.Registration]:
    """Pairs of interval 1 the registrar (the operator) signs for itself with its key, in class 1."""
    key = market.operator.account.key
    pairs = [(derive_account(key, f"own pseudonym/{i}").address, derive_account(key, f"own meter/{i}").address)
             for i in range(count)]
    return [_signed(market, address, p, m, 1, 1) for p, m in pairs]


def test_a_registrar_signing_for_itself_gets_no_more_pairs_than_the_unused_tickets():
    market, address, registrar, honest = _ticketed()
    assert _one(market, pn.buy_ticket(market.prosumers[2], address, 1)).ok       # p2's ticket stays unused
    other = _blindly_signed(market, address, registrar, 1, 1)
    assert all(r.ok for r in market.mine([pn.register(market.outsider, address, r) for r in (honest, other)]))
    own, beyond = _registrars_own_pairs(market, address, 2)
    assert _one(market, pn.register(market.outsider, address, own)).ok          # p2's unused ticket
    assert _refused(market, address, pn.register(market.outsider, address, beyond),
                    (beyond.pseudonym, beyond.meter)) == "pseudonyms: no ticket left"
    assert pn.read(market.chain, address, "registered_count", 1) == pn.read(market.chain, address, "tickets", 1) == 3
    # The honest pseudonyms keep their bonds; the registrar's took only the unused ticket's.
    pseudonyms = [honest.pseudonym, other.pseudonym, own.pseudonym]
    assert [market.read("Settlement", "credit_wei", p) for p in pseudonyms] == [BOND_WEI] * 3
    assert market.read("GridToken", "balanceOf", address) == 0
    assert_tokens_conserved(market, address, pseudonyms)


def test_an_honest_pair_a_registrar_displaced_by_registering_first_is_paid_from_the_reserve_publicly():
    """The registrar signs a pair for itself and registers it before the owners: the last honest pair is beyond
    the interval's tickets, which proves the over-issue; it registers with its bond from the operator's reserve,
    logged as ``OverIssued``, and the honest owner loses nothing."""
    market, address, _, honest = _ticketed()
    assert _one(market, market.call_tx(market.operator, "GridToken", "mint", market.operator.address, BOND_WEI)).ok
    assert _one(market, fx.approve(market.operator, market.addresses.token, address, BOND_WEI)).ok
    funded = _one(market, signed_call(market.operator, address, pn.CONTRACT, "fund_reserve", BOND_WEI,
                                      gas=pn.GAS_FUND))
    assert funded.ok and funded.gas_used < 0.8 * pn.GAS_FUND
    (own,) = _registrars_own_pairs(market, address, 1)
    assert _one(market, pn.register(market.outsider, address, own)).ok          # before the owners register
    other = _blindly_signed(market, address, _registrar(market, address), 1, 1)
    assert _one(market, pn.register(market.outsider, address, other)).ok
    late = _one(market, pn.register(market.outsider, address, honest))
    assert late.ok, late.revert_reason
    assert [e.event for e in map(market.chain.decode, late.logs) if e is not None and e.contract == pn.CONTRACT][:1] \
        == ["OverIssued"]
    assert market.read("Settlement", "credit_wei", honest.pseudonym) == BOND_WEI
    assert pn.read(market.chain, address, "reserve_wei") == 0
    assert pn.read(market.chain, address, "registered_count", 1) == pn.read(market.chain, address, "tickets", 1) + 1
    assert_tokens_conserved(market, address, [own.pseudonym, other.pseudonym, honest.pseudonym])


def test_without_a_reserve_an_honest_pair_beyond_the_tickets_is_refused_and_changes_nothing():
    market, address, _, honest = _ticketed()
    (own,) = _registrars_own_pairs(market, address, 1)
    assert _one(market, pn.register(market.outsider, address, own)).ok
    other = _blindly_signed(market, address, _registrar(market, address), 1, 1)
    assert _one(market, pn.register(market.outsider, address, other)).ok
    assert _refused(market, address, pn.register(market.outsider, address, honest),
                    (honest.pseudonym, honest.meter)) == "pseudonyms: no ticket left"


def test_front_running_with_a_copied_meter_signature_is_refused_and_a_copied_registration_registers_the_same_pair():
    market, address, registrar, honest = _ticketed()
    # p1 sees p0's pending registration and pairs p0's one-time meter with p1's own pseudonym, its own
    # signature of that pair obtained from the registrar: the meter signature names p0's pseudonym.
    p1_pseudonym = _pair(market, 1, 1)[0]
    h = pn.full_domain_hash(market.chain.chain_id, address, p1_pseudonym, honest.meter, 1)
    request, pending = _request(market, address, market.prosumers[1], 1, 1, h)
    stolen = pn.Registration(p1_pseudonym, honest.meter, 1, 1, pn.finish_signature(pending, KEY.n,
                                                                                    registrar.serve(request)),
                             honest.meter_signature)
    accounts = (p1_pseudonym, honest.pseudonym, honest.meter)
    before = _state(market, address, accounts)
    front, own = market.mine([pn.register(market.outsider, address, stolen),
                              pn.register(market.outsider, address, honest)])
    assert front.revert_reason == "pseudonyms: bad meter signature" and not front.logs
    assert own.ok
    after = _state(market, address, accounts)
    assert after[p1_pseudonym] == before[p1_pseudonym]
    assert after[honest.pseudonym][:2] == (2, ZERO) and after[honest.meter][1] == honest.pseudonym
    assert market.read("Settlement", "credit_wei", honest.pseudonym) == BOND_WEI
    # A relay copying a whole pending registration registers the same pair: the owner's own copy then finds its
    # accounts enrolled, and a later replay too; one bond, credited to the owner's pseudonym.
    assert _one(market, pn.buy_ticket(market.prosumers[2], address, 1)).ok
    p2_pair = _blindly_signed(market, address, registrar, 2, 1)
    copied, original = market.mine([pn.register(market.dso, address, p2_pair),
                                    pn.register(market.outsider, address, p2_pair)])
    assert copied.ok and original.revert_reason == "pseudonyms: account holds a role"
    assert _refused(market, address, pn.register(market.outsider, address, p2_pair),
                    (p2_pair.pseudonym, p2_pair.meter)) == "pseudonyms: account holds a role"
    assert market.read("Settlement", "credit_wei", p2_pair.pseudonym) == BOND_WEI
    assert pn.read(market.chain, address, "registered_count", 1) == 2
    assert_tokens_conserved(market, address, [honest.pseudonym, p2_pair.pseudonym])


def test_a_pair_signed_for_another_contract_under_the_same_key_registers_nothing_there():
    """A second Pseudonyms contract on the same registry and key (another zone's): p0's pair signed for the first
    does not verify there, and the second, not named in the registry, cannot enrol even a pair signed for it."""
    market, address, _, registration = _ticketed()
    a = market.addresses
    raw, second = market.operator.deploy(
        load_artifact(pn.CONTRACT), a.registry, a.settlement, a.token, KEY.modulus, START_TIMESTAMP, INTERVAL_S,
        HORIZON_INTERVALS, BOND_WEI, [(c.meter_rating_w, c.pv_w, c.battery_w) for c in CLASSES], gas=pn.GAS_DEPLOY)
    assert _one(market, raw).ok
    p0 = market.prosumers[0]
    assert all(r.ok for r in market.mine([fx.approve(p0, a.token, second, BOND_WEI),
                                          pn.buy_ticket(p0, second, 1)]))
    assert _refused(market, second, pn.register(market.outsider, second, registration),
                    (registration.pseudonym, registration.meter)) == "pseudonyms: bad signature"
    own = _signed(market, second, registration.pseudonym, registration.meter, 1, 0)
    assert _refused(market, second, pn.register(market.outsider, second, own),
                    (own.pseudonym, own.meter)) == "registry: caller is not pseudonyms"
    assert _one(market, pn.register(market.outsider, address, registration)).ok     # where it was signed for


def test_the_window_moves_with_the_intervals():
    market, address, registrar, registration = _ticketed()
    assert pn.read(market.chain, address, "first_open_interval") == 0
    # Interval 1 registers until its last second before it begins.
    assert _one(market, pn.register(market.outsider, address, registration), START_TIMESTAMP + INTERVAL_S - 1).ok
    assert pn.read(market.chain, address, "first_open_interval") == 1
    p1 = market.prosumers[1]
    assert _one(market, pn.buy_ticket(p1, address, 4), START_TIMESTAMP + INTERVAL_S).ok     # 4 - 2 < the horizon
    assert pn.read(market.chain, address, "first_open_interval") == 2
    late = _blindly_signed(market, address, registrar, 1, 4)
    assert _one(market, pn.register(market.outsider, address, late)).ok
    assert pn.is_pseudonym(market.chain, address, late.pseudonym, 4)
    refused = _refused(market, address, pn.buy_ticket(p1, address, 2 + HORIZON_INTERVALS), (p1.address,))
    assert refused == "pseudonyms: interval too far ahead"


def _constructor(market: Market, **changes) -> tuple:
    a = market.addresses
    args = dict(registry=a.registry, settlement=a.settlement, token=a.token, modulus=KEY.modulus,
                start=START_TIMESTAMP, interval_s=INTERVAL_S, horizon=HORIZON_INTERVALS, bond=BOND_WEI,
                classes=[(c.meter_rating_w, c.pv_w, c.battery_w) for c in CLASSES])
    return tuple((args | changes).values())


@pytest.mark.parametrize("changes,reason", [
    ({"modulus": KEY.modulus[:-1]}, "pseudonyms: modulus not 2048 bits"),
    ({"modulus": b"\x7f" + KEY.modulus[1:]}, "pseudonyms: modulus not 2048 bits"),
    ({"modulus": KEY.modulus[:-1] + b"\x02"}, "pseudonyms: modulus even"),
    ({"interval_s": 0}, "pseudonyms: zero interval or horizon"),
    ({"horizon": 0}, "pseudonyms: zero interval or horizon"),
    ({"bond": 0}, "pseudonyms: zero bond"),
    ({"classes": []}, "pseudonyms: no class"),
    ({"classes": [(10_000, 0, 0), (0, 5_000, 0)]}, "pseudonyms: zero meter rating"),
    ({"classes": [(10_000, MAX_POWER_W + 1, 0)]}, "pseudonyms: power above limit"),
    ({"classes": [(MAX_POWER_W + 1, 0, 0)]}, "pseudonyms: power above limit"),
    ({"classes": [(10_000, 0, MAX_POWER_W + 1)]}, "pseudonyms: power above limit"),
    ({"classes": [(10_000, 0, 0)] * (pn.MAX_CLASSES + 1)}, "reverted without reason"),   # the ABI's DynArray bound
])
def test_a_deployment_with_a_bad_modulus_clock_bond_or_class_is_refused(changes, reason):
    market = new_market(1)
    raw, _ = market.operator.deploy(load_artifact(pn.CONTRACT), *_constructor(market, **changes), gas=pn.GAS_DEPLOY)
    assert _one(market, raw).revert_reason == reason


def test_a_second_pseudonyms_contract_cannot_be_named_in_the_registry():
    market, address = _scene()
    a = market.addresses
    with pytest.raises(SetupFailed, match="registry: pseudonyms already set"):
        pn.deploy_pseudonyms(market.chain, market.operator, a.registry, a.settlement, a.token, KEY.modulus,
                             START_TIMESTAMP, INTERVAL_S, BOND_WEI, CLASSES)
    assert market.read("Registry", "pseudonyms") == address


@pytest.mark.parametrize("amount_wei, approved_wei, reason", [
    (0, 0, "pseudonyms: zero amount"),
    (BOND_WEI, BOND_WEI - 1, "token: insufficient allowance"),
])
def test_a_reserve_that_cannot_be_paid_is_refused_and_changes_nothing(amount_wei, approved_wei, reason):
    market, address = _scene()
    assert _one(market, market.call_tx(market.operator, "GridToken", "mint", market.operator.address, BOND_WEI)).ok
    assert _one(market, fx.approve(market.operator, market.addresses.token, address, approved_wei)).ok
    funded = _one(market, signed_call(market.operator, address, pn.CONTRACT, "fund_reserve", amount_wei,
                                      gas=pn.GAS_FUND))
    assert funded.revert_reason == reason and not funded.logs
    assert pn.read(market.chain, address, "reserve_wei") == 0
    assert market.read("GridToken", "balanceOf", market.operator.address) == BOND_WEI
