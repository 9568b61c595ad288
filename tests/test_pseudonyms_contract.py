"""Pseudonyms: one-time addresses registered with the registrar's RSA blind signature; the blind-signature
protocol by hand, its unlinkability, the contract against its Python reference under hypothesis, and the gas of
a whole interval's registrations."""

from __future__ import annotations

import functools
from itertools import permutations
from math import gcd

import pytest
from eth_account.signers.local import LocalAccount
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.client import MAX_FEE_PER_GAS_WEI, Wallet
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account
from gridledger.contracts.pseudonyms_reference import PseudonymsModel
from tests.contract_helpers import INTERVAL_S, SEED, START_TIMESTAMP, Market, new_market, timeline
from tests.secret_helpers import fixed_secret

KEY = pn.registrar_key(fixed_secret(SEED + 14))
"""The registrar's key of every test (test-only secret)."""
HORIZON_INTERVALS = 4
FUNDS_WEI = 3 * pn.GAS_REGISTER * MAX_FEE_PER_GAS_WEI
"""What the faucet sends a pseudonym: the fee cap of its registration, with room."""
PROSUMERS_PER_FEEDER = 33


def _scene(horizon_intervals: int = HORIZON_INTERVALS) -> tuple[Market, str]:
    market = new_market(2)
    return market, pn.deploy_pseudonyms(market.chain, market.operator, market.addresses.registry, KEY.modulus,
                                        START_TIMESTAMP, INTERVAL_S, horizon_intervals)


def _one(market: Market, raw: bytes, timestamp: int | None = None):
    (receipt,) = market.mine([raw], timestamp)
    return receipt


def _events(market: Market, receipt) -> list[tuple[str, dict]]:
    return [(e.event, dict(e.args)) for e in map(market.chain.decode, receipt.logs) if e is not None]


def _fund(market: Market, account: str) -> bytes:
    """The faucet's (the role-less outsider's) transfer of a registration's gas money to ``account``."""
    return market.outsider.transact(account, b"", gas=21_000, value_wei=FUNDS_WEI)


def _funded(market: Market, account: LocalAccount) -> Wallet:
    assert _one(market, _fund(market, account.address)).ok
    return market.chain.wallet(account)


@functools.cache
def _signature(chain_id: int, contract: str, account: str, interval: int) -> bytes:
    """The registrar's signature H(account, interval)^d mod N: what an honest unblinding yields."""
    return pn.signature_bytes(pn.sign_blinded(KEY, pn.full_domain_hash(chain_id, contract, account, interval)))


def _issued(market: Market, address: str, registrar: pn.Registrar, owner: LocalAccount, interval: int,
            ) -> tuple[LocalAccount, bytes]:
    """The owner's pseudonym of ``interval`` and its unblinded signature, through the whole blind protocol."""
    request, pending = pn.request_pseudonym(owner, KEY.n, market.chain.chain_id, address, interval)
    return pending.account, pn.finish_pseudonym(pending, KEY.n, registrar.serve(request))


def _registrar(market: Market, address: str) -> pn.Registrar:
    return pn.Registrar(KEY, market.chain.chain_id, address, [w.address for w in market.prosumers])


def test_a_blindly_signed_one_time_address_registers_for_its_interval_and_no_other():
    market, address = _scene()
    owner = market.prosumers[0]
    account, signature = _issued(market, address, _registrar(market, address), owner.account, 1)
    pseudonym = _funded(market, account)
    registered = _one(market, pn.register(pseudonym, address, 1, signature))
    assert registered.ok and registered.gas_used < pn.GAS_REGISTER
    assert _events(market, registered) == [("PseudonymRegistered", {"pseudonym": account.address, "interval": 1})]
    assert pn.is_pseudonym(market.chain, address, account.address, 1)
    assert not pn.is_pseudonym(market.chain, address, account.address, 2)
    assert not pn.is_pseudonym(market.chain, address, owner.address, 1)
    assert pn.read(market.chain, address, "registered_count", 1) == 1
    assert pn.read(market.chain, address, "modulus") == KEY.modulus
    # The same signature does not register the pseudonym for the next interval.
    assert _one(market, pn.register(pseudonym, address, 2, signature)).revert_reason == "pseudonyms: bad signature"


def test_the_registrar_signs_once_per_prosumer_and_interval_and_only_for_a_prosumer():
    market, address = _scene()
    registrar, chain_id = _registrar(market, address), market.chain.chain_id
    p0, p1 = market.prosumers[0].account, market.prosumers[1].account
    request, _ = pn.request_pseudonym(p0, KEY.n, chain_id, address, 3)
    answer = registrar.serve(request)
    assert registrar.serve(request) == answer                  # a lost answer is asked for again, same signature
    # A greedy p0 blinds the hash of a second address of its own for interval 3.
    second = pn.full_domain_hash(chain_id, address, market.outsider.address, 3)
    again = pn.authorised_request(p0, chain_id, address, 3, pn.blind(second, 12345, KEY.n))
    with pytest.raises(pn.RegistrarRefusal, match="registrar: already served"):
        registrar.serve(again)                                 # a second pseudonym for interval 3
    assert registrar.served_count(3) == 1
    registrar.serve(pn.request_pseudonym(p0, KEY.n, chain_id, address, 4)[0])      # the next interval is served
    registrar.serve(pn.request_pseudonym(p1, KEY.n, chain_id, address, 3)[0])      # another prosumer is served
    assert registrar.served_count(3) == 2
    outsider, _ = pn.request_pseudonym(market.outsider.account, KEY.n, chain_id, address, 3)
    other_zone, _ = pn.request_pseudonym(p0, KEY.n, chain_id, market.addresses.registry, 5)
    forged = [pn.BlindRequest(5, outsider.blinded, sig) for sig in (b"", b"\x01" * 10, b"\x01" * 65, b"\0" * 65)]
    for refused in (outsider, other_zone, *forged):
        with pytest.raises(pn.RegistrarRefusal, match="registrar: not a prosumer"):
            registrar.serve(refused)
    for blinded in (0, 1, KEY.n):
        with pytest.raises(pn.RegistrarRefusal, match="registrar: blinded message out of range"):
            registrar.serve(pn.BlindRequest(6, blinded, request.authorisation))
    assert registrar.served_count(5) == registrar.served_count(6) == 0


def test_an_answer_under_another_key_or_garbage_is_caught_by_the_prosumer():
    market, address = _scene()
    request, pending = pn.request_pseudonym(market.prosumers[0].account, KEY.n, market.chain.chain_id, address, 1)
    for answer in (request.blinded, pn.sign_blinded(KEY, request.blinded) + 1):
        with pytest.raises(ValueError, match="no signature under its key"):
            pn.finish_pseudonym(pending, KEY.n, answer)


def test_a_pseudonym_derives_from_its_owner_key_and_interval_only():
    owners = [derive_account(fixed_secret(SEED), f"prosumer/{i}") for i in range(2)]
    accounts = {(i, k): pn.pseudonym_account(o.key, k).address for i, o in enumerate(owners) for k in range(3)}
    assert len(set(accounts.values())) == len(accounts)
    assert not set(accounts.values()) & {o.address for o in owners}
    assert pn.pseudonym_account(owners[0].key, 2).address == accounts[0, 2]      # the owner can always recompute it


def test_the_registrar_key_is_a_2048_bit_rsa_key_repeated_from_its_secret():
    assert KEY.n.bit_length() == pn.MODULUS_BITS and KEY.e == pn.PUBLIC_EXPONENT
    assert pow(pow(123456789, KEY.e, KEY.n), KEY.d, KEY.n) == 123456789
    assert pn.registrar_key(fixed_secret(SEED + 14)) == KEY
    assert pn.registrar_key(fixed_secret(SEED + 15)).n != KEY.n
    assert str(KEY.d) not in repr(KEY)
    with pytest.raises(ValueError, match="32 bytes"):
        pn.registrar_key(b"short")


# A toy RSA key (N = 61 x 53, e = 65537 coprime to (61 - 1)(53 - 1)): small enough to enumerate every r.
TOY_N = 61 * 53
TOY_UNITS = [x for x in range(1, TOY_N) if gcd(x, TOY_N) == 1]


@given(st.sampled_from(TOY_UNITS), st.sampled_from(TOY_UNITS))
def test_blinding_gives_any_two_addresses_the_same_distribution_of_blinded_messages(h1, h2):
    # r -> h r^e is a bijection of Z_N*: over a uniform r, m' is uniform whatever h is, so the
    # registrar's view is independent of which hash (address) was blinded.
    for h in (h1, h2):
        assert sorted(pn.blind(h, r, TOY_N) for r in TOY_UNITS) == TOY_UNITS


def test_the_registrars_transcript_fits_every_matching_of_requests_to_pseudonyms():
    market, address = _scene()
    owners = [derive_account(fixed_secret(SEED), f"household/{i}") for i in range(3)]
    registrar = pn.Registrar(KEY, market.chain.chain_id, address, [o.address for o in owners])
    seen, registered = [], []                                  # the registrar's view; the chain's view
    for owner in owners:
        request, pending = pn.request_pseudonym(owner, KEY.n, market.chain.chain_id, address, 2)
        answer = registrar.serve(request)
        seen.append((request.blinded, answer))
        registered.append((pending.hash, int.from_bytes(pn.finish_pseudonym(pending, KEY.n, answer), "big")))
    # Recomputing H of the pseudonyms on chain does not find the messages it signed.
    assert not {m for m, _ in seen} & {h for h, _ in registered}
    # Every request fits every pseudonym, with the blinding factor r = s' / s: each matching of the
    # three households to the three pseudonyms explains the transcript equally well.
    for matching in permutations(range(3)):
        for (blinded, answer), j in zip(seen, matching, strict=True):
            h, signature = registered[j]
            r = answer * pow(signature, -1, KEY.n) % KEY.n
            assert pn.blind(h, r, KEY.n) == blinded and pn.unblind(answer, r, KEY.n) == signature


def test_a_feeders_33_pseudonyms_register_in_one_interval_within_the_gas_limit():
    market, address = _scene()
    owners = [derive_account(fixed_secret(SEED), f"household/{i}") for i in range(PROSUMERS_PER_FEEDER)]
    registrar = pn.Registrar(KEY, market.chain.chain_id, address, [o.address for o in owners])
    issued = [_issued(market, address, registrar, owner, 1) for owner in owners]
    assert all(r.ok for r in market.mine([_fund(market, account.address) for account, _ in issued]))
    receipts = market.mine([pn.register(market.chain.wallet(account), address, 1, signature)
                            for account, signature in issued])
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    gas = [r.gas_used for r in receipts]
    assert max(gas) < pn.GAS_REGISTER
    # The first registration of an interval also writes its count's fresh word.
    assert gas[0] - gas[1] == pytest.approx(17_100, abs=100)
    assert sum(gas) < PROSUMERS_PER_FEEDER * 75_000
    assert pn.read(market.chain, address, "registered_count", 1) == registrar.served_count(1) == PROSUMERS_PER_FEEDER


def test_the_deployment_fits_its_gas_limit():
    market = new_market(1)
    raw, _ = market.operator.deploy(load_artifact(pn.CONTRACT), market.addresses.registry, KEY.modulus,
                                    START_TIMESTAMP, INTERVAL_S, HORIZON_INTERVALS, gas=pn.GAS_DEPLOY)
    deployed = _one(market, raw)
    assert deployed.ok and deployed.gas_used < pn.GAS_DEPLOY


# Senders of the differential test: owner o's pseudonym of interval k as (o, k), prosumer p0's own address
# (holding a role), the role-less outsider. Signatures: the registrar's for the sender and interval (most
# often), for the next interval, for someone else's pseudonym, one byte short, or 256 bytes of garbage.
SENDERS = st.sampled_from([*((o, k) for o in range(2) for k in range(3)), "p0", "outsider"])
KINDS = st.sampled_from(["valid"] * 4 + ["next interval", "another address", "short", "garbage"])
ACTIONS = st.one_of(
    st.tuples(st.just("register"), SENDERS, st.integers(0, 5), KINDS),
    st.tuples(st.just("wait"), st.sampled_from([1, 300, 900, 3600])),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=14))
@example([("register", (0, 1), 1, "valid"), ("register", (0, 1), 1, "valid"), ("register", (1, 1), 1, "valid"),
          ("wait", 3600), ("register", (1, 0), 0, "valid"), ("register", (0, 2), 1, "valid"),
          ("register", (0, 2), 2, "valid"), ("register", (0, 2), 5, "valid")])
@example([("register", "p0", 0, "valid"), ("register", "outsider", 0, "garbage"), ("register", (1, 0), 0, "short"),
          ("register", (1, 0), 0, "next interval"), ("register", (1, 0), 0, "another address"),
          ("register", (1, 0), 4, "valid")])
def test_the_contract_is_its_reference_on_any_sequence_of_registrations(actions):
    market, address = _scene()
    chain_id = market.chain.chain_id
    owners = [w.account for w in market.prosumers]
    roles = {market.operator.address: 1, **{w.address: 2 for w in market.prosumers},
             **{w.address: 4 for w in market.meters}}
    model = PseudonymsModel(KEY.n, chain_id, address, START_TIMESTAMP, INTERVAL_S, HORIZON_INTERVALS, roles)
    wallets: dict[object, Wallet] = {"p0": market.prosumers[0], "outsider": market.outsider}
    someone_else = pn.pseudonym_account(owners[0].key, 9).address
    for now, kind, (sender, interval, signed) in timeline(actions, market.chain.timestamp):
        raw = []
        if sender not in wallets:
            owner, k = sender
            raw.append(_fund(market, pn.pseudonym_account(owners[owner].key, k).address))
            wallets[sender] = market.chain.wallet(pn.pseudonym_account(owners[owner].key, k))
        account = wallets[sender].address
        signature = {
            "valid": lambda: _signature(chain_id, address, account, interval),
            "next interval": lambda: _signature(chain_id, address, account, interval + 1),
            "another address": lambda: _signature(chain_id, address, someone_else, interval),
            "short": lambda: _signature(chain_id, address, account, interval)[:-1],
            "garbage": lambda: b"\xff" * pn.MODULUS_BYTES,
        }[signed]()
        *_, receipt = market.mine([*raw, pn.register(wallets[sender], address, interval, signature)], now)
        expected = model.register(now, account, interval, signature)
        assert (None if receipt.ok else receipt.revert_reason) == expected, (kind, sender, interval, signed)
    head = market.chain.timestamp
    assert pn.read(market.chain, address, "first_open_interval") == model.first_open_interval(head)
    for interval in range(6):
        assert pn.read(market.chain, address, "registered_count", interval) == model.registered_count[interval]
        for wallet in wallets.values():
            assert pn.is_pseudonym(market.chain, address, wallet.address, interval) == \
                model.is_pseudonym(wallet.address, interval)
