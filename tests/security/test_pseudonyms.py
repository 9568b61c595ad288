"""Attacks on the pseudonym registry: every registration the registrar did not sign for this sender, interval and
contract, or outside the window, is refused with its exact reason, and nothing is registered or logged.

Cast (`tests.test_pseudonyms_contract`): p0 and p1 are prosumers; ``a`` and
``b`` are p0's and p1's pseudonyms of interval 1, each with the registrar's
blind signature (obtained through the whole protocol) and gas money from the
role-less outsider (the faucet).
"""

from __future__ import annotations

import pytest

from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.compiler import load_artifact
from tests.contract_helpers import INTERVAL_S, START_TIMESTAMP, new_market
from tests.test_pseudonyms_contract import (
    HORIZON_INTERVALS,
    KEY,
    _funded,
    _issued,
    _one,
    _registrar,
    _scene,
    _signature,
)


def _signed():
    market, address = _scene()
    registrar = _registrar(market, address)
    (a, a_sig), (b, b_sig) = (_issued(market, address, registrar, w.account, 1) for w in market.prosumers)
    return market, address, (_funded(market, a), a_sig), (_funded(market, b), b_sig)


def _refused_changing_nothing(market, address: str, raw: bytes, sender: str, interval: int, at: int | None = None,
                              ) -> str:
    """Mine ``raw`` alone; check it logged nothing and left ``sender``'s registration of ``interval`` and the
    interval's count as they were; its revert reason."""
    before = (pn.is_pseudonym(market.chain, address, sender, interval),
              pn.read(market.chain, address, "registered_count", interval))
    receipt = _one(market, raw, at)
    assert not receipt.ok and not receipt.logs
    assert (pn.is_pseudonym(market.chain, address, sender, interval),
            pn.read(market.chain, address, "registered_count", interval)) == before
    return receipt.revert_reason


@pytest.mark.parametrize("attack,reason", [
    ("garbage as signature", "pseudonyms: bad signature"),
    ("the hash itself, unsigned", "pseudonyms: bad signature"),
    ("a's signature for another interval", "pseudonyms: bad signature"),
    ("a signature for another address", "pseudonyms: bad signature"),
    ("b replays a's registered signature", "pseudonyms: bad signature"),
    ("b front-runs a with a's pending signature", "pseudonyms: bad signature"),
    ("a signature of another zone's contract under the same key", "pseudonyms: bad signature"),
    ("a signature one byte short", "pseudonyms: malformed signature"),
    ("an empty signature", "pseudonyms: malformed signature"),
    ("a registers twice", "pseudonyms: already registered"),
    ("a registers once its interval has begun", "pseudonyms: interval in the past"),
    ("a registers for an interval beyond the horizon", "pseudonyms: interval too far ahead"),
    ("p0 registers its own address", "pseudonyms: caller holds a role"),
    ("p0's meter registers itself", "pseudonyms: caller holds a role"),
    ("the operator registers itself", "pseudonyms: caller holds a role"),
])
def test_a_registration_the_registrar_did_not_sign_is_refused_and_registers_nothing(attack, reason):
    market, address, (a, a_sig), (b, b_sig) = _signed()
    chain_id = market.chain.chain_id
    sender, interval, signature, at = b, 1, a_sig, None
    if attack == "garbage as signature":
        signature = bytes(range(256))
    elif attack == "the hash itself, unsigned":
        signature = pn.signature_bytes(pn.full_domain_hash(chain_id, address, b.address, 1))
    elif attack == "a's signature for another interval":
        sender, interval = a, 2
    elif attack == "a signature for another address":
        signature = _signature(chain_id, address, market.outsider.address, 1)  # p1 blinded a stranger's address
    elif attack == "b replays a's registered signature":
        assert _one(market, pn.register(a, address, 1, a_sig)).ok
    elif attack == "b front-runs a with a's pending signature":
        front, honest = market.mine([pn.register(b, address, 1, a_sig), pn.register(a, address, 1, a_sig)])
        assert front.revert_reason == reason and not front.logs
        assert honest.ok and pn.read(market.chain, address, "registered_count", 1) == 1
        assert pn.is_pseudonym(market.chain, address, a.address, 1)
        assert not pn.is_pseudonym(market.chain, address, b.address, 1)
        return
    elif attack == "a signature of another zone's contract under the same key":
        address = pn.deploy_pseudonyms(market.chain, market.operator, market.addresses.registry, KEY.modulus,
                                       START_TIMESTAMP, INTERVAL_S, HORIZON_INTERVALS)
        sender = a
    elif attack == "a signature one byte short":
        sender, signature = a, a_sig[:-1]
    elif attack == "an empty signature":
        sender, signature = a, b""
    elif attack == "a registers twice":
        assert _one(market, pn.register(a, address, 1, a_sig)).ok
        sender = a
    elif attack == "a registers once its interval has begun":
        sender, at = a, START_TIMESTAMP + INTERVAL_S                   # interval 1 begins
    elif attack == "a registers for an interval beyond the horizon":
        sender, interval = a, HORIZON_INTERVALS                         # intervals 0 .. 3 are open before the start
        signature = _signature(chain_id, address, a.address, interval)
    else:
        sender = {"p0": market.prosumers[0], "p0's meter": market.meters[0],
                  "the operator": market.operator}[attack.split(" registers")[0]]
        signature = _signature(chain_id, address, sender.address, 1)   # the registrar signs blindly: valid
    raw = pn.register(sender, address, interval, signature)
    assert _refused_changing_nothing(market, address, raw, sender.address, interval, at) == reason


def test_an_oversized_signature_is_refused_by_the_abi_decoder():
    market, address, (a, a_sig), _ = _signed()
    assert _refused_changing_nothing(market, address, pn.register(a, address, 1, a_sig + b"\x00"), a.address, 1) == \
        "reverted without reason"


def test_the_window_moves_with_the_intervals():
    market, address, (a, a_sig), _ = _signed()
    # Before the start interval 0 is open; at the start it has begun.
    assert pn.read(market.chain, address, "first_open_interval") == 0
    assert _one(market, pn.register(a, address, 1, a_sig), START_TIMESTAMP + INTERVAL_S - 1).ok
    later = pn.pseudonym_account(market.prosumers[0].account.key, 4)
    late = _funded(market, later)
    assert pn.read(market.chain, address, "first_open_interval") == 2
    signature = _signature(market.chain.chain_id, address, later.address, 4)
    assert _one(market, pn.register(late, address, 4, signature)).ok          # 4 - 2 < the horizon of 4
    assert pn.is_pseudonym(market.chain, address, later.address, 4)


@pytest.mark.parametrize("modulus,interval_s,horizon,reason", [
    (KEY.modulus[:-1], INTERVAL_S, 4, "pseudonyms: modulus not 2048 bits"),
    (b"\x7f" + KEY.modulus[1:], INTERVAL_S, 4, "pseudonyms: modulus not 2048 bits"),
    (KEY.modulus[:-1] + b"\x02", INTERVAL_S, 4, "pseudonyms: modulus even"),
    (KEY.modulus, 0, 4, "pseudonyms: zero interval or horizon"),
    (KEY.modulus, INTERVAL_S, 0, "pseudonyms: zero interval or horizon"),
])
def test_a_deployment_with_a_bad_modulus_or_clock_is_refused(modulus, interval_s, horizon, reason):
    market = new_market(1)
    raw, _ = market.operator.deploy(load_artifact(pn.CONTRACT), market.addresses.registry, modulus, START_TIMESTAMP,
                                    interval_s, horizon, gas=pn.GAS_DEPLOY)
    assert _one(market, raw).revert_reason == reason
