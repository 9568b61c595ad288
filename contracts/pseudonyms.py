"""One-time addresses per market interval, registered with an RSA blind signature of the registrar.

A prosumer trades in interval k under a pseudonym that only it can
derive (:func:`pseudonym_account`, from its own key). To register it,
the prosumer asks the registrar (the operator) for a blind signature
(Chaum 1983) on the full-domain hash of the pseudonym and k:

1. :func:`request_pseudonym`: the prosumer sends m' = H(pseudonym, k) r^e mod N,
   authorised with its registered key; r stays secret;
2. :meth:`Registrar.serve`: the registrar checks the sender is a registered
   prosumer not yet served for k and returns s' = m'^d mod N;
3. :func:`finish_pseudonym`: the prosumer divides out r, s = s' r^-1 mod N = H^d mod N,
   and the pseudonym itself sends :func:`register`\\ (k, s) to ``Pseudonyms.vy``,
   which checks s^e mod N = H with the modexp precompile.

The registrar sees who asks for which interval, never which pseudonym
it signs: for any request and any registered pseudonym there is exactly
one r that relates them. The rules of the contract are
:class:`gridledger.contracts.pseudonyms_reference.PseudonymsModel`.

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
from collections.abc import Iterable
from dataclasses import dataclass, field
from math import gcd
from typing import TYPE_CHECKING

import eth_abi
from Crypto.PublicKey import RSA
from eth_account import Account
from eth_account.messages import encode_defunct
from eth_account.signers.local import LocalAccount
from eth_keys.exceptions import BadSignature
from eth_utils import ValidationError, keccak, to_checksum_address

from gridledger.contracts.client import Wallet, signed_call
from gridledger.contracts.market import deploy_alone, read as market_read

if TYPE_CHECKING:
    # The chain (py-evm) is the ledger's; signers and readers only name its types.
    from gridledger.contracts.chain import Chain

CONTRACT = "Pseudonyms"
MODULUS_BITS = 2048
MODULUS_BYTES = MODULUS_BITS // 8
PUBLIC_EXPONENT = 65537
DEFAULT_HORIZON_INTERVALS = 4
"""Intervals open for registration: a pseudonym may register up to an hour before its 15-min interval, at a
time of its choosing, so that the time of a registration says little about the time of its request."""
DOMAIN = keccak(b"gridledger/pseudonym")
"""Domain tag of the full-domain hash (``Pseudonyms._DOMAIN``)."""
_REQUEST_DOMAIN = keccak(b"gridledger/pseudonym-request")
_SECRET_BYTES = 32

# Gas limits, measured with margin in tests/test_pseudonyms_contract.py: a registration uses 68.3k gas,
# 85.4k the first of an interval (its count's fresh word); the deployment 0.70M.
GAS_DEPLOY = 1_000_000
GAS_REGISTER = 120_000


@dataclass(frozen=True)
class RegistrarKey:
    """The registrar's RSA key: modulus ``n``, public exponent ``e``, private exponent ``d`` (not shown in repr)."""

    n: int
    e: int
    d: int = field(repr=False)

    @property
    def modulus(self) -> bytes:
        """N, big-endian, 256 bytes: the ``Pseudonyms`` constructor's argument."""
        return self.n.to_bytes(MODULUS_BYTES, "big")


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
    """The registrar's 2048-bit RSA key (e = 65537), determined by ``secret``.

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
    key = RSA.generate(MODULUS_BITS, randfunc=_KeyedStream(secret, b"gridledger/registrar-rsa/"), e=PUBLIC_EXPONENT)
    return RegistrarKey(int(key.n), int(key.e), int(key.d))


def _expand(seed: bytes, words: int) -> bytes:
    """keccak256(seed || i) for i = 0 .. words - 1, each i a 32-byte big-endian word, concatenated."""
    return b"".join(keccak(seed + i.to_bytes(32, "big")) for i in range(words))


def full_domain_hash(chain_id: int, contract: str, account: str, interval: int) -> int:
    """H(account, interval) of ``Pseudonyms._full_domain_hash``: a 2047-bit integer, < N of any 2048-bit N.

    Eight Keccak-256 words of the seed keccak256(abi.encode(DOMAIN, chain_id,
    contract, account, interval)), the first word's top bit cleared. Binding the
    chain and the contract keeps a signature from registering in another market
    or zone that shares the registrar's key.
    """
    seed = keccak(eth_abi.encode(["bytes32", "uint256", "address", "address", "uint256"],
                                 [DOMAIN, chain_id, contract, account, interval]))
    return int.from_bytes(_expand(seed, MODULUS_BYTES // 32), "big") & ((1 << (MODULUS_BITS - 1)) - 1)


def blind(h: int, r: int, n: int, e: int = PUBLIC_EXPONENT) -> int:
    """The blinded message m' = h r^e mod n that the registrar signs; for r uniform in Z_n*, m' is uniform in Z_n*
    whatever h is."""
    return h * pow(r, e, n) % n


def sign_blinded(key: RegistrarKey, blinded: int) -> int:
    """The registrar's signature m'^d mod N of a blinded message."""
    return pow(blinded, key.d, key.n)


def unblind(blinded_signature: int, r: int, n: int) -> int:
    """s = s' r^-1 mod n: the signature h^d mod n of the message that was blinded with r."""
    return blinded_signature * pow(r, -1, n) % n


def verifies(n: int, h: int, signature: int, e: int = PUBLIC_EXPONENT) -> bool:
    """Whether signature^e mod n == h, as the contract checks."""
    return pow(signature, e, n) == h


def signature_bytes(signature: int) -> bytes:
    """A signature as ``register`` takes it: 256 bytes, big-endian."""
    return signature.to_bytes(MODULUS_BYTES, "big")


def _owner_derived(owner_key: bytes, label: bytes, interval: int) -> bytes:
    return keccak(bytes(owner_key) + label + interval.to_bytes(32, "big"))


def pseudonym_account(owner_key: bytes, interval: int) -> LocalAccount:
    """The one-time account of the owner of ``owner_key`` for ``interval``: key keccak256(owner_key ||
    "gridledger/pseudonym/key" || interval). Nobody without the owner's private key can compute or link it."""
    return Account.from_key(_owner_derived(owner_key, b"gridledger/pseudonym/key", interval))


def blinding_factor(owner_key: bytes, interval: int, n: int) -> int:
    """The owner's secret r of ``interval``, in Z_n*: nine Keccak-256 words of its key and the interval, mod n.

    2304 bits reduced mod a 2048-bit n are uniform but for a 2^-256 bias; derived
    (not drawn) so that a run repeats and a retried request blinds alike.
    """
    seed = _owner_derived(owner_key, b"gridledger/pseudonym/blinding", interval)
    counter = 0
    while True:
        r = int.from_bytes(_expand(seed + counter.to_bytes(32, "big"), MODULUS_BYTES // 32 + 1), "big") % n
        if r > 1 and gcd(r, n) == 1:
            return r
        counter += 1


@dataclass(frozen=True)
class BlindRequest:
    """What the registrar receives: the interval, the blinded message m' and the owner's EIP-191 signature of both."""

    interval: int
    blinded: int
    authorisation: bytes


@dataclass(frozen=True)
class PendingPseudonym:
    """What the owner keeps until the registrar answers: the pseudonym, its interval, H and r (secret)."""

    account: LocalAccount
    interval: int
    hash: int
    r: int = field(repr=False)


def _request_digest(chain_id: int, contract: str, interval: int, blinded: int) -> bytes:
    return keccak(eth_abi.encode(["bytes32", "uint256", "address", "uint256", "bytes"],
                                 [_REQUEST_DOMAIN, chain_id, contract, interval, signature_bytes(blinded)]))


def request_pseudonym(owner: LocalAccount, n: int, chain_id: int, contract: str, interval: int,
                      ) -> tuple[BlindRequest, PendingPseudonym]:
    """The owner's blinded request for a pseudonym of ``interval`` at the ``Pseudonyms`` ``contract``.

    Returns
    -------
    request : BlindRequest
        To send to the registrar; it names neither the pseudonym nor H.
    pending : PendingPseudonym
        To keep, secret, for :func:`finish_pseudonym`.
    """
    account = pseudonym_account(owner.key, interval)
    h = full_domain_hash(chain_id, contract, account.address, interval)
    r = blinding_factor(owner.key, interval, n)
    request = authorised_request(owner, chain_id, contract, interval, blind(h, r, n))
    return request, PendingPseudonym(account, interval, h, r)


def authorised_request(owner: LocalAccount, chain_id: int, contract: str, interval: int, blinded: int,
                       ) -> BlindRequest:
    """The request of ``blinded`` for ``interval`` at ``contract``, authorised by the owner's EIP-191 signature."""
    signed = owner.sign_message(encode_defunct(primitive=_request_digest(chain_id, contract, interval, blinded)))
    return BlindRequest(interval, blinded, bytes(signed.signature))


def finish_pseudonym(pending: PendingPseudonym, n: int, blinded_signature: int) -> bytes:
    """The signature ``register`` takes, unblinded from the registrar's answer.

    Raises
    ------
    ValueError
        If the answer does not unblind to a signature of the pseudonym's hash (a
        registrar that signed with another key or answered garbage).
    """
    signature = unblind(blinded_signature, pending.r, n)
    if not verifies(n, pending.hash, signature):
        raise ValueError("pseudonyms: the registrar's answer is no signature under its key")
    return signature_bytes(signature)


class RegistrarRefusal(ValueError):
    """The registrar refuses a request; the message gives the reason."""


class Registrar:
    """The operator's signing desk: at most one blind signature per registered prosumer and interval.

    A request is authorised by the prosumer's registered key (EIP-191
    signature over the chain, the contract, the interval and m'); the
    registrar learns who asked for which interval, and m', nothing else.
    Asking again with the same m' (a lost answer) gets the same signature
    again; another m' for a served interval is refused.

    Parameters
    ----------
    key : RegistrarKey
        The key whose modulus the ``Pseudonyms`` contract holds.
    chain_id : int
        EIP-155 id of the chain.
    contract : str
        Address of the ``Pseudonyms`` contract.
    prosumers : iterable of str
        Addresses of the registered prosumers (the registry's prosumer role).
    """

    def __init__(self, key: RegistrarKey, chain_id: int, contract: str, prosumers: Iterable[str]) -> None:
        self._key = key
        self._chain_id = chain_id
        self._contract = to_checksum_address(contract)
        self._prosumers = frozenset(to_checksum_address(p) for p in prosumers)
        self._served: dict[tuple[str, int], int] = {}

    def serve(self, request: BlindRequest) -> int:
        """The blind signature m'^d mod N of a request.

        Raises
        ------
        RegistrarRefusal
            "registrar: blinded message out of range" (m' not in [2, N)),
            "registrar: not a prosumer" (the authorisation is not a
            registered prosumer's, for this chain, contract, interval and m'),
            "registrar: already served" (another m' of the same prosumer and interval).
        """
        if not 1 < request.blinded < self._key.n:
            raise RegistrarRefusal("registrar: blinded message out of range")
        digest = _request_digest(self._chain_id, self._contract, request.interval, request.blinded)
        try:
            prosumer = Account.recover_message(encode_defunct(primitive=digest), signature=request.authorisation)
        except (BadSignature, ValidationError, ValueError, IndexError):
            prosumer = None                                    # no signature at all: nobody's
        if prosumer not in self._prosumers:
            raise RegistrarRefusal("registrar: not a prosumer")
        served = self._served.setdefault((prosumer, request.interval), request.blinded)
        if served != request.blinded:
            raise RegistrarRefusal("registrar: already served")
        return sign_blinded(self._key, request.blinded)

    def served_count(self, interval: int) -> int:
        """How many prosumers the registrar has signed for in ``interval``: an upper bound of its honest
        ``registered_count``."""
        return sum(1 for _, k in self._served if k == interval)


def deploy_pseudonyms(chain: Chain, operator: Wallet, registry: str, modulus: bytes, start_timestamp: int,
                      interval_s: int, horizon_intervals: int = DEFAULT_HORIZON_INTERVALS) -> str:
    """Deploy ``Pseudonyms`` with the registrar's ``modulus`` (:attr:`RegistrarKey.modulus`) over ``registry`` and
    the market's intervals, in one block one second after the head; its address, labelled.

    Raises
    ------
    SetupFailed
        If the deployment reverts, with its reason.
    """
    return deploy_alone(chain, operator, CONTRACT, registry, modulus, start_timestamp, interval_s, horizon_intervals,
                        gas=GAS_DEPLOY, setup="pseudonyms")


def register(pseudonym: Wallet, address: str, interval: int, signature: bytes) -> bytes:
    """Signed ``register`` of the pseudonym itself for ``interval`` with its unblinded ``signature``."""
    return signed_call(pseudonym, address, CONTRACT, "register", interval, signature, gas=GAS_REGISTER)


def is_pseudonym(chain: Chain, address: str, account: str, interval: int) -> bool:
    """Whether ``account`` is a registered pseudonym of ``interval`` at the head."""
    return read(chain, address, "is_pseudonym", account, interval)


def read(chain: Chain, address: str, function: str, *args):
    """Value of the view ``Pseudonyms.function(*args)`` at ``address``, at the head."""
    return market_read(chain, address, CONTRACT, function, *args)
