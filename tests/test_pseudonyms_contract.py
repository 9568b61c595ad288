"""Pseudonyms: tickets, one-time pairs of a pseudonym and its meter key registered with two RSA blind signatures
under the exponents of their interval and class; the blind-signature protocol and the registrar by hand, their
unlinkability, the contract against its Python reference under hypothesis, and the gas of a feeder's interval.

Cast: p0, p1, p2 are prosumers of classes 0, 1, 0 (``owner_class``), each
with a bound meter, holding ``TOKENS_WEI`` withdrawn from the Settlement
and approved to the contract; the outsider relays registrations.
"""

from __future__ import annotations

import functools
from math import gcd

import pytest
from Crypto.Util.number import isPrime
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridledger.contracts import flexibility as fx
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.chain import CallReverted, Receipt
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.pseudonyms_reference import ROLE_METER, ROLE_PROSUMER, PseudonymsModel, exponent_window
from gridledger.contracts.reference import TokenEscrow
from tests.contract_helpers import ENDOWMENT_WEI, INTERVAL_S, SEED, START_TIMESTAMP, Market, new_market, timeline
from tests.secret_helpers import fixed_secret

KEY = pn.registrar_key(fixed_secret(SEED + 14))
"""The registrar's key of every test (test-only secret)."""
HORIZON_INTERVALS = 4
BOND_WEI = 10**18
CLASSES = [pn.ClassLimits(10_000, 5_000, 0), pn.ClassLimits(20_000, 10_000, 5_000)]
"""Limits of the two classes. [W]"""
TOKENS_WEI = 4 * BOND_WEI
"""What each prosumer withdraws from the Settlement and approves to the contract: four tickets."""
PROSUMERS_PER_FEEDER = 33


def owner_class(owner: int) -> int:
    """Class of prosumer ``owner`` as the registrar reads it from its registered limits: 0, 1, 0, 1, ..."""
    return owner % len(CLASSES)


def _scene(n_prosumers: int = 3, horizon_intervals: int = HORIZON_INTERVALS) -> tuple[Market, str]:
    market = new_market(n_prosumers)
    a = market.addresses
    address = pn.deploy_pseudonyms(market.chain, market.operator, a.registry, a.settlement, a.token, KEY.modulus,
                                   START_TIMESTAMP, INTERVAL_S, BOND_WEI, CLASSES, horizon_intervals)
    txs = [market.call_tx(p, "Settlement", "withdraw", TOKENS_WEI) for p in market.prosumers]
    txs += [fx.approve(p, a.token, address, TOKENS_WEI) for p in market.prosumers]
    assert all(r.ok for r in market.mine(txs))
    return market, address


def _one(market: Market, raw: bytes, timestamp: int | None = None) -> Receipt:
    (receipt,) = market.mine([raw], timestamp)
    return receipt


def _events(market: Market, receipt: Receipt) -> list[tuple[str, dict]]:
    return [(e.event, dict(e.args)) for e in map(market.chain.decode, receipt.logs) if e is not None]


def _fund(market: Market, account: str) -> bytes:
    """The faucet's (the role-less outsider's) transfer of a transaction's gas money to ``account``."""
    return market.outsider.transact(account, b"", gas=21_000, value_wei=10**18)


def _pair(market: Market, owner: int, interval: int) -> tuple[str, str]:
    """Prosumer ``owner``'s pseudonym of ``interval`` and its meter's one-time key."""
    return (pn.pseudonym_account(market.prosumers[owner].account.key, interval).address,
            pn.meter_account(market.meters[owner].account.key, interval).address)


@functools.cache
def _signature(chain_id: int, contract: str, first: str, second: str, interval: int, exponent: int) -> bytes:
    """H(first, second, interval)^(1/exponent) mod N, made with the registrar's key: what an honest unblinding
    yields, or what a registrar signing for itself has."""
    h = pn.full_domain_hash(chain_id, contract, first, second, interval)
    return pn.signature_bytes(pn.sign_blinded(KEY, h, exponent))


def _signed(market: Market, address: str, pseudonym: str, meter: str, interval: int, class_index: int,
            ) -> pn.Registration:
    """The registration of a pair of ``interval`` in ``class_index`` with both signatures made under the key."""
    chain_id = market.chain.chain_id
    return pn.Registration(
        pseudonym, meter, interval, class_index,
        _signature(chain_id, address, pseudonym, meter, interval, pn.window_exponent(interval, class_index)),
        _signature(chain_id, address, meter, pseudonym, interval, pn.window_exponent(interval, pn.METER_CLASS)))


def _registrar(market: Market, address: str) -> pn.Registrar:
    return pn.Registrar(KEY, market.chain.chain_id, address,
                        {w.address: owner_class(i) for i, w in enumerate(market.prosumers)},
                        [m.address for m in market.meters],
                        lambda owner, k: pn.read(market.chain, address, "has_ticket", owner, k))


def _request(market: Market, address: str, requester: Wallet, interval: int, class_index: int, h: int,
             ) -> tuple[pn.BlindRequest, pn.PendingSignature]:
    return pn.request_signature(requester.account, KEY.n, market.chain.chain_id, address, interval, class_index, h)


def _blindly_signed(market: Market, address: str, registrar: pn.Registrar, owner: int, interval: int,
                    ) -> pn.Registration:
    """Prosumer ``owner``'s pair of ``interval`` with both signatures through the whole blind protocol: the owner
    asks in its class, its meter in the meters'."""
    pseudonym, meter = _pair(market, owner, interval)
    chain_id = market.chain.chain_id
    signatures = []
    for requester, class_index, pair in ((market.prosumers[owner], owner_class(owner), (pseudonym, meter)),
                                         (market.meters[owner], pn.METER_CLASS, (meter, pseudonym))):
        h = pn.full_domain_hash(chain_id, address, *pair, interval)
        request, pending = _request(market, address, requester, interval, class_index, h)
        signatures.append(pn.finish_signature(pending, KEY.n, registrar.serve(request)))
    return pn.Registration(pseudonym, meter, interval, owner_class(owner), *signatures)


def _registry(market: Market, function: str, *args):
    return market.read("Registry", function, *args)


def test_a_ticket_and_two_blind_signatures_register_a_pseudonym_and_its_meter_for_one_interval():
    market, address = _scene()
    owner, settlement, token = market.prosumers[1], market.addresses.settlement, market.addresses.token
    held = market.read("GridToken", "balanceOf", settlement)
    bought = _one(market, pn.buy_ticket(owner, address, 1))
    assert bought.ok and bought.gas_used < pn.GAS_TICKET
    assert _events(market, bought) == [
        ("TicketBought", {"buyer": owner.address, "interval": 1}),
        ("Approval", {"owner": owner.address, "spender": address, "value": TOKENS_WEI - BOND_WEI}),
        ("Transfer", {"sender": owner.address, "receiver": address, "value": BOND_WEI}),
    ]
    assert pn.read(market.chain, address, "has_ticket", owner.address, 1)
    assert not pn.read(market.chain, address, "has_ticket", owner.address, 2)
    registration = _blindly_signed(market, address, _registrar(market, address), 1, 1)
    pseudonym, meter = registration.pseudonym, registration.meter
    registered = _one(market, pn.register(market.outsider, address, registration))
    assert registered.ok and registered.gas_used < pn.GAS_REGISTER
    assert _events(market, registered) == [
        ("PseudonymRegistered", {"pseudonym": pseudonym, "interval": 1, "meter": meter, "class_index": 1}),
        ("RoleGranted", {"account": pseudonym, "role": ROLE_PROSUMER, "sender": address}),
        ("RoleGranted", {"account": meter, "role": ROLE_METER, "sender": address}),
        ("MeterBound", {"meter": meter, "prosumer": pseudonym}),
        ("ProsumerRegistered", {"prosumer": pseudonym, "meter_rating_w": 20_000, "pv_w": 10_000, "battery_w": 5_000}),
        ("Deposited", {"beneficiary": pseudonym, "payer": address, "amount_wei": BOND_WEI}),
        ("Approval", {"owner": address, "spender": settlement, "value": 2**256 - 1 - BOND_WEI}),
        ("Transfer", {"sender": address, "receiver": settlement, "value": BOND_WEI}),
    ]
    assert pn.is_pseudonym(market.chain, address, pseudonym, 1)
    assert not pn.is_pseudonym(market.chain, address, pseudonym, 2)
    assert not pn.is_pseudonym(market.chain, address, owner.address, 1)
    assert (_registry(market, "roles", pseudonym), _registry(market, "roles", meter)) == (ROLE_PROSUMER, ROLE_METER)
    assert _registry(market, "prosumer_of_meter", meter) == pseudonym
    assert _registry(market, "meter_of_prosumer", pseudonym) == meter
    assert tuple(market.read("Settlement", "limits", pseudonym)) == (20_000, 10_000, 5_000, True)
    assert market.read("Settlement", "credit_wei", pseudonym) == BOND_WEI
    # The owner paid the bond, the contract passed it on, the Settlement holds it for the pseudonym.
    assert market.read("GridToken", "balanceOf", owner.address) == TOKENS_WEI - BOND_WEI
    assert market.read("GridToken", "balanceOf", address) == 0
    assert market.read("GridToken", "balanceOf", settlement) == held + BOND_WEI
    assert market.read("GridToken", "allowance", address, settlement) == 2**256 - 1 - BOND_WEI
    assert pn.read(market.chain, address, "tickets", 1) == pn.read(market.chain, address, "registered_count", 1) == 1
    assert token == pn.read(market.chain, address, "token")
    # Nothing registers twice: the pair's accounts now hold their roles.
    assert _one(market, pn.register(market.outsider, address, registration)).revert_reason == \
        "pseudonyms: account holds a role"


def test_each_interval_and_class_has_its_own_prime_exponent_inside_the_contracts_window():
    market, address = _scene()
    exponents = {}
    for interval in (0, 1, 2, 95, 96 * 366):
        for class_index in (*range(pn.MAX_CLASSES), pn.METER_CLASS):
            e = pn.window_exponent(interval, class_index)
            low, high = exponent_window(interval, class_index)
            assert low <= e < high and isPrime(e) and pn.EXPONENT_BASE <= e < 2 * pn.EXPONENT_BASE
            exponents[interval, class_index] = e
    assert len(set(exponents.values())) == len(exponents)
    for interval, class_index in ((0, 0), (1, pn.METER_CLASS), (96 * 366, 7)):
        assert tuple(pn.read(market.chain, address, "exponent_window", interval, class_index)) == \
            exponent_window(interval, class_index)
    # The last interval whose windows stay below 2B, and the first beyond them.
    last = pn.EXPONENT_BASE // pn.EXPONENT_WINDOW // (pn.MAX_CLASSES + 1) - 1
    assert pn.read(market.chain, address, "exponent_window", last, pn.METER_CLASS)[1] <= 2 * pn.EXPONENT_BASE
    for interval, class_index in ((last + 1, 0), (0, pn.MAX_CLASSES + 1)):
        with pytest.raises(CallReverted, match="pseudonyms: no window"):
            pn.read(market.chain, address, "exponent_window", interval, class_index)
    with pytest.raises(ValueError, match="class 9 is not in 0..8"):
        pn.window_exponent(0, pn.MAX_CLASSES + 1)
    assert (pn.read(market.chain, address, "class_count"), pn.read(market.chain, address, "bond_wei")) == (2, BOND_WEI)
    assert [tuple(pn.read(market.chain, address, "class_limits", i)) for i in range(2)] == \
        [(c.meter_rating_w, c.pv_w, c.battery_w) for c in CLASSES]
    assert pn.read(market.chain, address, "modulus") == KEY.modulus


def test_the_registrar_signs_one_request_per_requester_and_interval_in_its_own_class_and_only_with_a_ticket():
    market, address = _scene()
    registrar, chain_id = _registrar(market, address), market.chain.chain_id
    p0, p1, meter0 = market.prosumers[0], market.prosumers[1], market.meters[0]
    assert all(r.ok for r in market.mine([pn.buy_ticket(w, address, 1) for w in (p0, p1)]))
    pseudonym, meter = _pair(market, 0, 1)
    h = pn.full_domain_hash(chain_id, address, pseudonym, meter, 1)
    request, pending = _request(market, address, p0, 1, 0, h)
    answer = registrar.serve(request)
    assert registrar.serve(request) == answer                  # a lost answer is asked for again, same signature
    signature = int.from_bytes(pn.finish_signature(pending, KEY.n, answer), "big")
    assert pn.verifies(KEY.n, h, signature, pn.window_exponent(1, 0))
    assert not pn.verifies(KEY.n, h, signature, pn.window_exponent(2, 0))
    # A greedy p0 blinds a second pair for interval 1: the registrar does not see which, only that p0 asks again.
    second = pn.full_domain_hash(chain_id, address, *_pair(market, 0, 2), 1)
    e = pn.window_exponent(1, 0)
    refused = {
        "registrar: already served": [pn.authorised_request(p0.account, chain_id, address, 1, 0,
                                                            pn.blind(second, 12345, KEY.n, e))],
        "registrar: not its class": [_request(market, address, p0, 1, 1, second)[0],
                                     _request(market, address, p0, 1, pn.METER_CLASS, second)[0],
                                     _request(market, address, meter0, 1, 0, second)[0]],
        "registrar: no ticket": [_request(market, address, p0, 2, 0, second)[0],
                                 _request(market, address, market.prosumers[2], 1, 0, second)[0]],
        "registrar: unknown requester": [
            _request(market, address, market.outsider, 1, 0, second)[0],
            _request(market, address, market.operator, 1, 0, second)[0],
            pn.authorised_request(p1.account, chain_id, market.addresses.registry, 1, 1,   # signed for another contract
                                  request.blinded),
            *(pn.BlindRequest(1, 1, request.blinded, sig) for sig in (b"", b"\x01" * 10, b"\x01" * 65, b"\0" * 65)),
        ],
        "registrar: blinded message out of range": [pn.BlindRequest(1, 0, blinded, request.authorisation)
                                                    for blinded in (0, 1, KEY.n)],
    }
    for reason, requests in refused.items():
        for bad in requests:
            with pytest.raises(pn.RegistrarRefusal, match=reason):
                registrar.serve(bad)
    # The meter asks without a ticket, once per interval, in the meters' class only.
    meter_request, _ = _request(market, address, meter0, 1, pn.METER_CLASS, h)
    registrar.serve(meter_request)
    with pytest.raises(pn.RegistrarRefusal, match="registrar: already served"):
        registrar.serve(_request(market, address, meter0, 1, pn.METER_CLASS, second)[0])
    registrar.serve(_request(market, address, meter0, 2, pn.METER_CLASS, second)[0])
    registrar.serve(_request(market, address, p1, 1, 1, second)[0])          # another owner with a ticket
    assert registrar.served_count(1) == 2 and registrar.served_count(2) == 0   # meters are not counted


def test_an_answer_under_another_key_or_exponent_or_garbage_is_caught_by_the_requester():
    market, address = _scene()
    h = pn.full_domain_hash(market.chain.chain_id, address, *_pair(market, 0, 1), 1)
    request, pending = _request(market, address, market.prosumers[0], 1, 0, h)
    for answer in (request.blinded, pn.sign_blinded(KEY, request.blinded, pending.exponent) + 1,
                   pn.sign_blinded(KEY, request.blinded, pn.window_exponent(2, 0)),
                   pn.sign_blinded(KEY, request.blinded, pn.window_exponent(1, 1))):
        with pytest.raises(ValueError, match="no signature under its key"):
            pn.finish_signature(pending, KEY.n, answer)


def test_one_time_accounts_derive_from_their_owners_key_and_interval_only():
    market = new_market(2)
    owners, meters = [w.account for w in market.prosumers], [w.account for w in market.meters]
    accounts = {("pseudonym", i, k): pn.pseudonym_account(o.key, k).address for i, o in enumerate(owners)
                for k in range(3)}
    accounts |= {("meter", i, k): pn.meter_account(m.key, k).address for i, m in enumerate(meters) for k in range(3)}
    # The owner's key gives its pseudonyms, not its meter's keys.
    accounts |= {("owner's meter", i, k): pn.meter_account(o.key, k).address for i, o in enumerate(owners)
                 for k in range(3)}
    assert len(set(accounts.values())) == len(accounts)
    assert not set(accounts.values()) & {w.address for w in (*market.prosumers, *market.meters)}
    assert pn.pseudonym_account(owners[0].key, 2).address == accounts["pseudonym", 0, 2]    # recomputed any time


def test_the_registrar_key_is_a_2048_bit_rsa_key_repeated_from_its_secret():
    assert KEY.n.bit_length() == pn.MODULUS_BITS and KEY.p * KEY.q == KEY.n
    for e in (pn.window_exponent(0, 0), pn.window_exponent(5, pn.METER_CLASS)):
        assert pow(pow(123456789, e, KEY.n), KEY.private_exponent(e), KEY.n) == 123456789
    with pytest.raises(ValueError, match="not invertible under this key"):
        KEY.private_exponent(2)                                # p - 1 is even
    assert pn.registrar_key(fixed_secret(SEED + 14)) == KEY
    assert pn.registrar_key(fixed_secret(SEED + 15)).n != KEY.n
    assert str(KEY.p) not in repr(KEY) and str(KEY.q) not in repr(KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        pn.registrar_key(b"short")


# A toy RSA key (N = 61 x 53, the exponent coprime to (61 - 1)(53 - 1)): small enough to enumerate every r.
TOY_N = 61 * 53
TOY_UNITS = [x for x in range(1, TOY_N) if gcd(x, TOY_N) == 1]
TOY_E = pn.window_exponent(1, 0)


@given(st.sampled_from(TOY_UNITS), st.sampled_from(TOY_UNITS))
def test_blinding_gives_any_two_hashes_the_same_distribution_of_blinded_messages(h1, h2):
    # r -> h r^e is a bijection of Z_N*: over a uniform r, m' is uniform whatever h is, so the
    # registrar's view is independent of which pair was blinded.
    assert gcd(TOY_E, 60 * 52) == 1
    for h in (h1, h2):
        assert sorted(pn.blind(h, r, TOY_N, TOY_E) for r in TOY_UNITS) == TOY_UNITS


def test_the_registrar_never_sees_the_messages_it_signs_nor_the_signatures_registered():
    """Unlinkability itself is algebra (any registered pair fits any request, with r = s' / s); what can fail is
    the blinding: the registrar must see neither H of a pair nor its final signature."""
    market, address = _scene()
    registrar = _registrar(market, address)
    owners = [0, 2]                                            # both of class 0: the class does not tell them apart
    assert all(r.ok for r in market.mine([pn.buy_ticket(market.prosumers[i], address, 1) for i in owners]))
    seen, registered = [], []                                  # the registrar's view; the chain's view
    for owner in owners:
        pseudonym, meter = _pair(market, owner, 1)
        h = pn.full_domain_hash(market.chain.chain_id, address, pseudonym, meter, 1)
        request, pending = _request(market, address, market.prosumers[owner], 1, 0, h)
        answer = registrar.serve(request)
        seen.append((request.blinded, answer))
        registered.append((h, int.from_bytes(pn.finish_signature(pending, KEY.n, answer), "big")))
    assert not {m for m, _ in seen} & {h for h, _ in registered}
    assert not {a for _, a in seen} & {s for _, s in registered}


def test_a_feeders_33_tickets_and_pairs_of_one_interval_fit_their_gas_limits():
    market, address = _scene(PROSUMERS_PER_FEEDER)
    tickets = market.mine([pn.buy_ticket(w, address, 1) for w in market.prosumers])
    assert all(r.ok for r in tickets), [r.revert_reason for r in tickets]
    registrar = _registrar(market, address)
    registrations = [_blindly_signed(market, address, registrar, i, 1) for i in range(PROSUMERS_PER_FEEDER)]
    receipts = market.mine([pn.register(market.outsider, address, r) for r in registrations])
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    for receipts_, limit in ((tickets, pn.GAS_TICKET), (receipts, pn.GAS_REGISTER)):
        gas = [r.gas_used for r in receipts_]
        assert max(gas) < limit
        # The interval's first also writes its count's fresh word; the later ones cost alike (calldata aside).
        assert gas[0] > max(gas[1:]) and max(gas[1:]) - min(gas[1:]) < 10_000
    assert pn.read(market.chain, address, "tickets", 1) == pn.read(market.chain, address, "registered_count", 1) == \
        registrar.served_count(1) == PROSUMERS_PER_FEEDER


def test_the_deployment_and_the_registry_naming_fit_their_gas_limits():
    market = new_market(1)
    a = market.addresses
    raw, address = market.operator.deploy(
        load_artifact(pn.CONTRACT), a.registry, a.settlement, a.token, KEY.modulus, START_TIMESTAMP, INTERVAL_S,
        HORIZON_INTERVALS, BOND_WEI, [(c.meter_rating_w, c.pv_w, c.battery_w) for c in CLASSES], gas=pn.GAS_DEPLOY)
    deployed = _one(market, raw)
    assert deployed.ok and deployed.gas_used < pn.GAS_DEPLOY
    named = _one(market, market.operator.transact(a.registry, encode_call("Registry", "set_pseudonyms", address),
                                                  gas=pn.GAS_SET))
    assert named.ok and named.gas_used < pn.GAS_SET
    assert _registry(market, "pseudonyms") == address


# The differential test. Tickets: buyer p0..p2, a meter, the operator, the outsider or a registered pseudonym (funded
# by the outsider), for interval 0..5. Registrations, relayed by the outsider: owner o's pair of interval k, as made
# by an honest registrar (most often) or altered. Time moves on by waits; the horizon is 4 intervals.
INTERVALS = range(6)
AN_INTERVAL = st.sampled_from([1, 1, 1, 2, 2, 0, 3, 4, 5])       # most often the next ones, so tickets meet pairs
BUYERS = st.sampled_from([*["p0", "p1", "p2"] * 3, "meter0", "operator", "outsider", "pseudonym"])
VARIANTS = st.sampled_from([
    *["valid"] * 6,
    "next interval's exponent",          # the owner had its pair signed under the next interval's label
    "next interval's signature",         # ... and claims this interval's exponent
    "another class",                     # the owner claims the other class with its own class's signature
    "another class's exponent",          # ... signed under the other class (a registrar not checking classes)
    "unknown class",
    "meter's exponent off",              # the meter signature under the owner's window
    "swapped signatures",
    "another pair's meter signature",    # the pending meter signature of the next owner's pair
    "another owner's meter key",         # a valid pair of o's pseudonym and the next owner's one-time meter
    "owner's own address",               # the owner registers its registry address
    "a bound meter",                     # ... with its real meter as the one-time key
    "pseudonym is its meter",
    "zero meter",
    "short signature",
    "long signature",
])
ACTIONS = st.one_of(
    st.tuples(st.just("ticket"), BUYERS, AN_INTERVAL),
    st.tuples(st.just("register"), st.integers(0, 2), AN_INTERVAL, VARIANTS),
    st.tuples(st.just("wait"), st.sampled_from([1, 300, 900, 3600])),
)
ZERO = "0x" + "00" * 20


def _variant(market: Market, address: str, owner: int, interval: int, variant: str) -> tuple:
    """The arguments of ``register`` for owner ``owner``'s pair of ``interval`` made as ``variant`` says."""
    chain_id, c = market.chain.chain_id, owner_class(owner)
    pseudonym, meter = _pair(market, owner, interval)
    other_owner = (owner + 1) % 3
    if variant == "another owner's meter key":
        meter = _pair(market, other_owner, interval)[1]
    elif variant == "owner's own address":
        pseudonym = market.prosumers[owner].address
    elif variant == "a bound meter":
        meter = market.meters[owner].address
    elif variant == "pseudonym is its meter":
        meter = pseudonym
    elif variant == "zero meter":
        meter = ZERO
    args = list(_signed(market, address, pseudonym, meter, interval, c).args())
    # pseudonym, meter, interval, class_index, pseudonym_exponent, pseudonym_signature, meter_exponent,
    # meter_signature
    if variant in ("next interval's exponent", "next interval's signature", "another class's exponent"):
        e = pn.window_exponent(interval + 1, c) if variant.startswith("next") else pn.window_exponent(interval, 1 - c)
        args[5] = _signature(chain_id, address, pseudonym, meter, interval, e)
        if variant != "next interval's signature":
            args[4] = e
    elif variant == "another class":
        args[3], args[4] = 1 - c, pn.window_exponent(interval, 1 - c)
    elif variant == "unknown class":
        args[3] = len(CLASSES)
    elif variant == "meter's exponent off":
        args[6] = pn.window_exponent(interval, c)
    elif variant == "swapped signatures":
        args[5], args[7] = args[7], args[5]
    elif variant == "another pair's meter signature":
        args[7] = _signed(market, address, *_pair(market, other_owner, interval), interval, c).meter_signature
    elif variant == "short signature":
        args[5] = args[5][:-1]
    elif variant == "long signature":
        args[7] = args[7] + b"\0"
    return tuple(args)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=14))
@example([("ticket", "p0", 1), ("register", 0, 1, "next interval's exponent"),
          ("register", 0, 1, "next interval's signature"), ("register", 0, 1, "valid"), ("register", 0, 1, "valid"),
          ("ticket", "pseudonym", 2), ("register", 1, 1, "valid"), ("ticket", "p1", 1), ("register", 1, 1, "valid")])
@example([("ticket", "outsider", 0), ("ticket", "meter0", 0), ("ticket", "operator", 0), ("ticket", "p1", 0),
          ("ticket", "p1", 0), ("register", 1, 0, "swapped signatures"), ("register", 1, 0, "another class"),
          ("register", 1, 0, "another class's exponent"), ("register", 1, 0, "unknown class"),
          ("register", 1, 0, "meter's exponent off"), ("register", 1, 0, "another pair's meter signature"),
          ("register", 1, 0, "short signature"), ("register", 1, 0, "long signature"), ("wait", 3600),
          ("register", 1, 0, "valid"), ("ticket", "p1", 4), ("ticket", "p1", 5)])
@example([("ticket", "p2", 0), ("ticket", "p2", 1), ("ticket", "p2", 2), ("ticket", "p2", 3),
          ("ticket", "p0", 0), ("ticket", "p1", 0), ("register", 2, 0, "owner's own address"),
          ("register", 2, 0, "a bound meter"), ("register", 2, 0, "pseudonym is its meter"),
          ("register", 2, 0, "zero meter"), ("register", 2, 0, "another owner's meter key"),
          ("register", 0, 0, "valid"), ("wait", 3600), ("ticket", "p2", 4), ("ticket", "p2", 5)])
def test_the_contract_is_its_reference_on_any_sequence_of_tickets_and_registrations(actions):
    market, address = _scene()
    settlement = market.addresses.settlement
    prosumers = [w.address for w in market.prosumers]
    model = PseudonymsModel(
        KEY.n, market.chain.chain_id, address, settlement, START_TIMESTAMP, INTERVAL_S, HORIZON_INTERVALS, BOND_WEI,
        CLASSES,
        roles={market.operator.address: 1, **{p: ROLE_PROSUMER for p in prosumers},
               **{m.address: ROLE_METER for m in market.meters}},
        tokens=TokenEscrow(balance={**{p: TOKENS_WEI for p in prosumers}, address: 0,
                                    settlement: market.read("GridToken", "balanceOf", settlement)},
                           allowance={p: TOKENS_WEI for p in prosumers}, contract=address),
        limits_registered=set(prosumers))
    wallets = {"p0": market.prosumers[0], "p1": market.prosumers[1], "p2": market.prosumers[2],
               "meter0": market.meters[0], "operator": market.operator, "outsider": market.outsider}
    accounts = set()                                           # every account a registration named
    for now, kind, args in timeline(actions, market.chain.timestamp):
        raw = []
        if kind == "ticket":
            buyer, interval = args
            if buyer == "pseudonym":                           # the first registered one, or a fresh account
                owner, k = next(((o, j) for o in range(3) for j in INTERVALS
                                 if _pair(market, o, j)[0] in model.interval_of), (0, 0))
                account = pn.pseudonym_account(market.prosumers[owner].account.key, k)
                raw.append(_fund(market, account.address))
                wallets["pseudonym"] = market.chain.wallet(account)
            raw.append(pn.buy_ticket(wallets[buyer], address, interval))
            expected = model.buy_ticket(now, wallets[buyer].address, interval)
            limit = pn.GAS_TICKET
        else:
            owner, interval, variant = args
            call = _variant(market, address, owner, interval, variant)
            accounts |= {call[0], call[1]} - {ZERO}
            raw.append(market.outsider.transact(address, encode_call(pn.CONTRACT, "register", *call),
                                                gas=pn.GAS_REGISTER))
            expected = model.register(now, *call)
            limit = pn.GAS_REGISTER
        *funded, receipt = market.mine(raw, now)
        assert all(r.ok for r in funded)
        assert (None if receipt.ok else receipt.revert_reason) == expected, (kind, args)
        assert receipt.gas_used < limit
        interval = args[1]
        assert (pn.read(market.chain, address, "tickets", interval),
                pn.read(market.chain, address, "registered_count", interval)) == \
            (model.tickets[interval], model.registered_count[interval])
    assert pn.read(market.chain, address, "first_open_interval") == model.first_open_interval(market.chain.timestamp)
    for k in INTERVALS:
        assert (pn.read(market.chain, address, "tickets", k), pn.read(market.chain, address, "registered_count", k)) \
            == (model.tickets[k], model.registered_count[k])
        for p in prosumers:
            assert pn.read(market.chain, address, "has_ticket", p, k) == model.has_ticket(p, k)
    for a in accounts:
        assert _registry(market, "roles", a) == model.roles.get(a, 0)
        assert [pn.is_pseudonym(market.chain, address, a, k) for k in INTERVALS] == \
            [model.is_pseudonym(a, k) for k in INTERVALS]
        endowment = ENDOWMENT_WEI - TOKENS_WEI if a in prosumers else 0
        assert market.read("Settlement", "credit_wei", a) == endowment + model.credit_wei[a]
        if a in model.meter_of:
            assert _registry(market, "prosumer_of_meter", model.meter_of[a]) == a
            limits = CLASSES[model.class_of[a]]
            assert tuple(market.read("Settlement", "limits", a)) == (limits.meter_rating_w, limits.pv_w,
                                                                     limits.battery_w, True)
    for holder in (*prosumers, address, settlement):
        assert market.read("GridToken", "balanceOf", holder) == model.tokens.balance[holder]
    assert model.held_wei() == BOND_WEI * sum(model.tickets[k] - model.registered_count[k] for k in INTERVALS)
    assert market.read("GridToken", "totalSupply") == sum(market.read("GridToken", "balanceOf", h)
                                                          for h in (*prosumers, address, settlement,
                                                                    market.operator.address))
