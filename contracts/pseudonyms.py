"""One-time prosumers per market interval, registered with RSA blind signatures of the registrar.

A household trades and is metered in interval k under a pseudonym and a
one-time meter key that only it can derive (:func:`pseudonym_account`
from the owner's key, :func:`meter_account` from its meter's). To
register the pair, the owner buys a ticket for k on chain
(:func:`buy_ticket`, paying the bond the pseudonym will hold) and both
ask the registrar (the operator) for a blind signature (Chaum 1983):

1. :func:`request_signature`: the owner sends m' = H(pseudonym, meter, k) r^e mod N
   for the exponent e of k and its class, the meter m' = H(meter, pseudonym, k) r^e
   for the meters' exponent of k; each authorised with its registered key; r stays secret;
2. :meth:`Registrar.serve`: the registrar checks the sender is a registered prosumer
   with a ticket for k, of that class, or a bound meter, not yet served for k, and
   returns s' = m'^d mod N for d = e^-1 mod phi(N);
3. :func:`finish_signature`: each divides out r, s = s' r^-1 mod N = H^d mod N;
   anyone (the market's relay) sends :func:`register` with both, and
   ``Pseudonyms.vy`` checks s^e mod N = H with the modexp precompile.

The registrar sees who asks for which interval and class, never which
pseudonym it signs: for any request and any registered pair there is
exactly one r that relates them. Each interval and class has its own
prime exponent (:func:`window_exponent`), so a signature bought for one
interval or class is worth nothing in another. The rules of the contract
are :class:`gridledger.contracts.pseudonyms_reference.PseudonymsModel`.

The registrar's key comes from PyCryptodome's FIPS 186-4 generation
(``Crypto.PublicKey.RSA.generate``) fed by a keyed stream of the
registrar's secret: the same secret gives the same key under the same
PyCryptodome generation algorithm. Blinding, signing and unblinding are
plain modular arithmetic (textbook RSA on a full-domain hash, as the
scheme requires; no padding).

References
----------
Chaum, D. (1983). Blind signatures for untraceable payments. Advances in
Cryptology, Proc. Crypto 82, 199-203.
Bellare, M. and Rogaway, P. (1996). The exact security of digital
signatures: how to sign with RSA and Rabin. Eurocrypt 96 (RSA-FDH).
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from math import gcd
from typing import TYPE_CHECKING

import eth_abi
from Crypto.PublicKey import RSA
from Crypto.Util.number import isPrime
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError, keccak, to_checksum_address

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import SetupFailed, deploy_alone, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "Pseudonyms"
MODULUS_BITS = 2048
MODULUS_BYTES = MODULUS_BITS // 8
KEY_EXPONENT = 65537
"""The exponent the key is generated for; it signs nothing (each interval and class has its own)."""
MAX_CLASSES = 8
"""Most classes of households (``Pseudonyms.MAX_CLASSES``); class index ``MAX_CLASSES`` is the meters'."""
METER_CLASS = MAX_CLASSES
EXPONENT_BASE = 2**48
EXPONENT_WINDOW = 2**16
"""The exponent of interval k and class c is the first prime of [B + (k (C + 1) + c) W, ... + W)
(``Pseudonyms.exponent_window``)."""
DEFAULT_HORIZON_INTERVALS = 4
"""Intervals open for tickets and registration: up to an hour before a 15-min interval, at a time of the
household's choosing, so that the time of a registration says little about the time of its request."""
DOMAIN = keccak(b"gridledger/pseudonym")
"""Domain tag of the full-domain hash (``Pseudonyms._DOMAIN``)."""
_REQUEST_DOMAIN = keccak(b"gridledger/pseudonym-request")
_SECRET_BYTES = 32

# Gas limits, measured with margin in tests/test_pseudonyms_contract.py (fund_reserve, 80 k: tests/security/
# test_pseudonyms.py, the reserve pays a displaced pair).
GAS_DEPLOY = 2_000_000
GAS_SET = 80_000
GAS_TICKET = 120_000
GAS_REGISTER = 400_000
GAS_MINT = 100_000
GAS_APPROVE = 60_000
GAS_FUND = 120_000


@dataclass(frozen=True)
class ClassLimits:
    """Limits a class of households registers for each of its pseudonyms (``Pseudonyms.ClassLimits``). [W]"""

    meter_rating_w: int
    pv_w: int
    battery_w: int

    def covers(self, meter_rating_w: int, pv_w: int, battery_w: int) -> bool:
        """Whether a household with these limits fits the class. [W]"""
        return meter_rating_w <= self.meter_rating_w and pv_w <= self.pv_w and battery_w <= self.battery_w


def class_of(classes: list[ClassLimits], meter_rating_w: int, pv_w: int, battery_w: int) -> int:
    """Index of the first class that covers a household's limits: list classes from small to large. [W]

    Raises
    ------
    ValueError
        If no class covers them.
    """
    for index, limits in enumerate(classes):
        if limits.covers(meter_rating_w, pv_w, battery_w):
            return index
    raise ValueError(f"pseudonyms: no class covers rating {meter_rating_w} W, PV {pv_w} W, battery {battery_w} W")


@lru_cache(maxsize=4096)
def window_exponent(interval: int, class_index: int) -> int:
    """The public exponent of ``interval`` and ``class_index`` (``METER_CLASS`` for meters): the first prime of its
    window, so that no exponent divides a product of others."""
    if not 0 <= class_index <= MAX_CLASSES:
        raise ValueError(f"pseudonyms: class {class_index} is not in 0..{MAX_CLASSES}")
    e = EXPONENT_BASE + (interval * (MAX_CLASSES + 1) + class_index) * EXPONENT_WINDOW + 1
    while not isPrime(e):
        e += 2
    return e


@dataclass(frozen=True)
class RegistrarKey:
    """The registrar's RSA key: modulus ``n`` and its primes ``p``, ``q`` (not shown in repr)."""

    n: int
    p: int = field(repr=False)
    q: int = field(repr=False)

    @property
    def modulus(self) -> bytes:
        """N, big-endian, 256 bytes: the ``Pseudonyms`` constructor's argument."""
        return self.n.to_bytes(MODULUS_BYTES, "big")

    def private_exponent(self, e: int) -> int:
        """d = e^-1 mod (p - 1)(q - 1).

        Raises
        ------
        ValueError
            If ``e`` shares a factor with (p - 1)(q - 1): for a prime
            above 2^48, a chance of about 2^-38 per key and exponent.
        """
        phi = (self.p - 1) * (self.q - 1)
        if gcd(e, phi) != 1:
            raise ValueError(f"pseudonyms: exponent {e} is not invertible under this key")
        return pow(e, -1, phi)


class _KeyedStream:
    """Bytes of HMAC-SHA256(secret, label || counter), block after block: PyCryptodome's ``randfunc``."""

    def __init__(self, secret: bytes, label: bytes) -> None:
        self._secret, self._label, self._counter, self._buffer = secret, label, 0, b""

    def __call__(self, n: int) -> bytes:
        while len(self._buffer) < n:
            block = self._label + self._counter.to_bytes(8, "big")
            self._buffer += hmac.new(self._secret, block, hashlib.sha256).digest()
            self._counter += 1
        out, self._buffer = self._buffer[:n], self._buffer[n:]
        return out


def registrar_key(secret: bytes) -> RegistrarKey:
    """The registrar's 2048-bit RSA key, determined by ``secret``.

    Parameters
    ----------
    secret : bytes
        32 secret bytes: the run secret or the registrar's own. The key
        is drawn from HMAC-SHA256 under it with a label of its own, so
        it is independent of every account key of the same secret.

    Raises
    ------
    ValueError
        If ``secret`` is not 32 bytes.
    """
    if not isinstance(secret, bytes) or len(secret) != _SECRET_BYTES:
        raise ValueError(f"pseudonyms: a registrar secret is {_SECRET_BYTES} bytes")
    key = RSA.generate(MODULUS_BITS, randfunc=_KeyedStream(secret, b"gridledger/registrar-rsa/"), e=KEY_EXPONENT)
    return RegistrarKey(int(key.n), int(key.p), int(key.q))


def _expand(seed: bytes, words: int) -> bytes:
    """keccak256(seed || i) for i = 0 .. words - 1, each i a 32-byte big-endian word, concatenated."""
    return b"".join(keccak(seed + i.to_bytes(32, "big")) for i in range(words))


def full_domain_hash(chain_id: int, contract: str, first: str, second: str, interval: int) -> int:
    """H(first, second, interval) of ``Pseudonyms._full_domain_hash``: a 2047-bit integer, < N of any 2048-bit N.

    Eight Keccak-256 words of the seed keccak256(abi.encode(DOMAIN, chain_id,
    contract, first, second, interval)), the first word's top bit cleared. The
    owner's signature is on H(pseudonym, meter, k), the meter's on H(meter,
    pseudonym, k). Binding the chain and the contract keeps a signature from
    registering in another market or zone that shares the registrar's key.
    """
    seed = keccak(eth_abi.encode(["bytes32", "uint256", "address", "address", "address", "uint256"],
                                 [DOMAIN, chain_id, contract, first, second, interval]))
    return int.from_bytes(_expand(seed, MODULUS_BYTES // 32), "big") & ((1 << (MODULUS_BITS - 1)) - 1)


def blind(h: int, r: int, n: int, e: int) -> int:
    """The blinded message m' = h r^e mod n that the registrar signs; for r uniform in Z_n*, m' is uniform in Z_n*
    whatever h is."""
    return h * pow(r, e, n) % n


def sign_blinded(key: RegistrarKey, blinded: int, e: int) -> int:
    """The registrar's signature m'^d mod N of a blinded message under exponent ``e``."""
    return pow(blinded, key.private_exponent(e), key.n)


def unblind(blinded_signature: int, r: int, n: int) -> int:
    """s = s' r^-1 mod n: the signature h^d mod n of the message that was blinded with r."""
    return blinded_signature * pow(r, -1, n) % n


def verifies(n: int, h: int, signature: int, e: int) -> bool:
    """Whether signature^e mod n == h, as the contract checks."""
    return pow(signature, e, n) == h


def signature_bytes(signature: int) -> bytes:
    """A signature as ``register`` takes it: 256 bytes, big-endian."""
    return signature.to_bytes(MODULUS_BYTES, "big")


def _owner_derived(key: bytes, label: bytes, interval: int) -> bytes:
    return keccak(bytes(key) + label + interval.to_bytes(32, "big"))


def pseudonym_account(owner_key: bytes, interval: int) -> LocalAccount:
    """The one-time account of the owner of ``owner_key`` for ``interval``: key keccak256(owner_key ||
    "gridledger/pseudonym/key" || interval). Nobody without the owner's private key can compute or link it."""
    return Account.from_key(_owner_derived(owner_key, b"gridledger/pseudonym/key", interval))


def meter_account(meter_key: bytes, interval: int) -> LocalAccount:
    """The one-time key of the meter of ``meter_key`` for ``interval``: derived like :func:`pseudonym_account`
    from the meter's own key, so the household's owner cannot sign as its meter."""
    return Account.from_key(_owner_derived(meter_key, b"gridledger/pseudonym/meter-key", interval))


def blinding_factor(key: bytes, interval: int, n: int) -> int:
    """The requester's secret r of ``interval``, in Z_n*: nine Keccak-256 words of its key and the interval, mod n.

    2304 bits reduced mod a 2048-bit n are uniform but for a 2^-256 bias; derived
    (not drawn) so that a run repeats and a retried request blinds alike.
    """
    seed = _owner_derived(key, b"gridledger/pseudonym/blinding", interval)
    counter = 0
    while True:
        r = int.from_bytes(_expand(seed + counter.to_bytes(32, "big"), MODULUS_BYTES // 32 + 1), "big") % n
        if r > 1 and gcd(r, n) == 1:
            return r
        counter += 1


@dataclass(frozen=True)
class BlindRequest:
    """What the registrar receives: the interval, the class (``METER_CLASS`` for a meter), the blinded message m'
    and the requester's EIP-191 signature of all three."""

    interval: int
    class_index: int
    blinded: int
    authorisation: bytes


@dataclass(frozen=True)
class PendingSignature:
    """What a requester keeps until the registrar answers: the message H, its exponent and r (secret)."""

    hash: int
    exponent: int
    r: int = field(repr=False)


def _request_digest(chain_id: int, contract: str, interval: int, class_index: int, blinded: int) -> bytes:
    return keccak(eth_abi.encode(["bytes32", "uint256", "address", "uint256", "uint256", "bytes"],
                                 [_REQUEST_DOMAIN, chain_id, contract, interval, class_index,
                                  signature_bytes(blinded)]))


def request_signature(requester: LocalAccount, n: int, chain_id: int, contract: str, interval: int,
                      class_index: int, h: int) -> tuple[BlindRequest, PendingSignature]:
    """The blinded request of ``requester`` (an owner of class ``class_index``, or a bound meter with
    ``METER_CLASS``) for a signature of ``h`` in ``interval`` at the ``Pseudonyms`` ``contract``.

    Returns
    -------
    request : BlindRequest
        To send to the registrar; it names neither account of the pair nor H.
    pending : PendingSignature
        To keep, secret, for :func:`finish_signature`.
    """
    e = window_exponent(interval, class_index)
    r = blinding_factor(requester.key, interval, n)
    return authorised_request(requester, chain_id, contract, interval, class_index, blind(h, r, n, e)), \
        PendingSignature(h, e, r)


def authorised_request(requester: LocalAccount, chain_id: int, contract: str, interval: int, class_index: int,
                       blinded: int) -> BlindRequest:
    """The request of ``blinded`` for ``interval`` and ``class_index`` at ``contract``, authorised by the
    requester's EIP-191 signature."""
    digest = _request_digest(chain_id, contract, interval, class_index, blinded)
    signed = requester.sign_message(encode_defunct(primitive=digest))
    return BlindRequest(interval, class_index, blinded, bytes(signed.signature))


def finish_signature(pending: PendingSignature, n: int, blinded_signature: int) -> bytes:
    """The signature ``register`` takes, unblinded from the registrar's answer.

    Raises
    ------
    ValueError
        If the answer does not unblind to a signature of the hash under its
        exponent (a registrar that signed with another key or exponent, or answered garbage).
    """
    signature = unblind(blinded_signature, pending.r, n)
    if not verifies(n, pending.hash, signature, pending.exponent):
        raise ValueError("pseudonyms: the registrar's answer is no signature under its key")
    return signature_bytes(signature)


class RegistrarRefusal(ValueError):
    """The registrar refuses a request; the message gives the reason."""


class Registrar:
    """The operator's signing desk: one blind signature per owner with a ticket and interval, in the owner's class,
    and one per bound meter and interval.

    A request is authorised by the requester's registered key (EIP-191
    signature over the chain, the contract, the interval, the class and
    m'); the registrar learns who asked for which interval, and m',
    nothing else. Asking again with the same m' (a lost answer) gets
    the same signature again; another m' for a served interval is
    refused.

    Parameters
    ----------
    key : RegistrarKey
        The key whose modulus the ``Pseudonyms`` contract holds.
    chain_id : int
        EIP-155 id of the chain.
    contract : str
        Address of the ``Pseudonyms`` contract.
    classes : mapping of str to int
        Each registered prosumer's class, by address, from its registered limits.
    meters : iterable of str
        Addresses of the bound meters.
    has_ticket : callable
        Whether an owner (address) holds a ticket for an interval, read from the chain.
    """

    def __init__(self, key: RegistrarKey, chain_id: int, contract: str, classes: Mapping[str, int],
                 meters: Iterable[str], has_ticket: Callable[[str, int], bool]) -> None:
        self._key = key
        self._chain_id = chain_id
        self._contract = to_checksum_address(contract)
        self._classes = {to_checksum_address(a): c for a, c in classes.items()}
        self._meters = frozenset(to_checksum_address(m) for m in meters)
        self._has_ticket = has_ticket
        self._served: dict[tuple[str, int], int] = {}

    def serve(self, request: BlindRequest) -> int:
        """The blind signature m'^d mod N of a request, under the exponent of its interval and class.

        Raises
        ------
        RegistrarRefusal
            "registrar: blinded message out of range" (m' not in [2, N)),
            "registrar: unknown requester" (the authorisation is neither a
            registered prosumer's nor a bound meter's, for this chain,
            contract, interval, class and m'), "registrar: not its class"
            (an owner asking in another class than its own, or a meter not
            in the meters'), "registrar: no ticket" (an owner without a
            ticket for the interval), "registrar: already served" (another
            m' of the same requester and interval).
        """
        if not 1 < request.blinded < self._key.n:
            raise RegistrarRefusal("registrar: blinded message out of range")
        digest = _request_digest(self._chain_id, self._contract, request.interval, request.class_index,
                                 request.blinded)
        try:
            requester = Account.recover_message(encode_defunct(primitive=digest), signature=request.authorisation)
        except (BadSignature, ValidationError, ValueError, IndexError):
            requester = None                                   # no signature at all: nobody's
        if requester in self._meters:
            own_class = METER_CLASS
        elif requester in self._classes:
            own_class = self._classes[requester]
        else:
            raise RegistrarRefusal("registrar: unknown requester")
        if request.class_index != own_class:
            raise RegistrarRefusal("registrar: not its class")
        if own_class != METER_CLASS and not self._has_ticket(requester, request.interval):
            raise RegistrarRefusal("registrar: no ticket")
        served = self._served.setdefault((requester, request.interval), request.blinded)
        if served != request.blinded:
            raise RegistrarRefusal("registrar: already served")
        return sign_blinded(self._key, request.blinded, window_exponent(request.interval, request.class_index))

    def served_count(self, interval: int) -> int:
        """How many owners the registrar has signed for in ``interval``: an upper bound of its honest
        ``registered_count``."""
        return sum(1 for requester, k in self._served if k == interval and requester in self._classes)


@dataclass(frozen=True)
class Registration:
    """Everything ``register`` takes for one pair: both accounts, the interval, the owner's class and both
    signatures (their exponents follow from the interval and class)."""

    pseudonym: str
    meter: str
    interval: int
    class_index: int
    pseudonym_signature: bytes
    meter_signature: bytes

    def args(self) -> tuple:
        """The arguments of ``Pseudonyms.register``, in order."""
        return (self.pseudonym, self.meter, self.interval, self.class_index,
                window_exponent(self.interval, self.class_index), self.pseudonym_signature,
                window_exponent(self.interval, METER_CLASS), self.meter_signature)


def deploy_pseudonyms(chain: Chain, operator: Wallet, registry: str, settlement: str, token: str, modulus: bytes,
                      start_timestamp: int, interval_s: int, bond_wei: int, classes: list[ClassLimits],
                      horizon_intervals: int = DEFAULT_HORIZON_INTERVALS, reserve_wei: int = 0) -> str:
    """Deploy ``Pseudonyms`` with the registrar's ``modulus`` (:attr:`RegistrarKey.modulus`) over the market's
    registry, Settlement, token and intervals, name it in the registry (before the start) and, with ``reserve_wei``,
    mint the operator that much and fund the reserve with it; its address.

    Raises
    ------
    SetupFailed
        If the deployment, the naming or the funding reverts, with its reason.
    """
    address = deploy_alone(chain, operator, CONTRACT, registry, settlement, token, modulus, start_timestamp,
                           interval_s, horizon_intervals, bond_wei,
                           [(c.meter_rating_w, c.pv_w, c.battery_w) for c in classes],
                           gas=GAS_DEPLOY, setup="pseudonyms")
    txs = [signed_call(operator, registry, "Registry", "set_pseudonyms", address, gas=GAS_SET)]
    if reserve_wei:
        txs += [signed_call(operator, token, "GridToken", "mint", operator.address, reserve_wei, gas=GAS_MINT),
                signed_call(operator, token, "GridToken", "approve", address, reserve_wei, gas=GAS_APPROVE),
                signed_call(operator, address, CONTRACT, "fund_reserve", reserve_wei, gas=GAS_FUND)]
    for receipt in chain.mine(txs, chain.timestamp + 1):
        if not receipt.ok:
            raise SetupFailed(f"pseudonyms setup: {receipt.revert_reason}")
    return address


def buy_ticket(owner: Wallet, address: str, interval: int) -> bytes:
    """Signed ``buy_ticket`` of the owner for ``interval``; it must have approved the bond to the contract."""
    return signed_call(owner, address, CONTRACT, "buy_ticket", interval, gas=GAS_TICKET)


def register(sender: Wallet, address: str, registration: Registration) -> bytes:
    """Signed ``register`` of a pair, sent by anyone (the relay)."""
    return signed_call(sender, address, CONTRACT, "register", *registration.args(), gas=GAS_REGISTER)


def is_pseudonym(chain: Chain, address: str, account: str, interval: int) -> bool:
    """Whether ``account`` is a registered pseudonym of ``interval`` at the head."""
    return read(chain, address, "is_pseudonym", account, interval)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``Pseudonyms.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)
