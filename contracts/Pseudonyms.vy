# pragma version ~=0.4.3
"""
@title Pseudonyms of a GridLedger Market
@custom:contract-name pseudonyms
@license BSD-3-Clause
@notice One-time addresses that a prosumer trades under for one market
        interval, registered with an RSA blind signature of the
        registrar (the operator), so that the registry cannot link a
        pseudonym to its owner (Chaum 1983). Off chain, a registered
        prosumer sends the registrar m' = H(pseudonym, interval) r^e mod N
        (r random and secret); the registrar, having checked that it has
        not served this prosumer for this interval yet, returns
        m'^d mod N; the prosumer divides out r and gets
        s = H(pseudonym, interval)^d mod N. The pseudonym then sends
        `register(interval, s)` itself; the contract checks
        s^e mod N == H(msg.sender, interval) with the modexp precompile
        (EIP-198). H is a full-domain hash onto [0, 2^2047): eight
        Keccak-256 words of a seed binding the chain, this contract, the
        pseudonym and the interval, the first word's top bit cleared
        (`contracts/pseudonyms.py` computes the same).
        Functions:
        - `register` (`external` function, the pseudonym itself),
        - `is_pseudonym`, `registered_count`, `first_open_interval`,
          `modulus` (`external` `view` functions).
        Reasons of a refused registration, in the order they are
        checked: "pseudonyms: caller holds a role" (the sender holds a
        registry role), "pseudonyms: malformed signature" (not 256
        bytes), "pseudonyms: interval in the past" (the interval has
        begun), "pseudonyms: interval too far ahead" (`horizon_intervals`
        or more after the first that has not begun), "pseudonyms: already
        registered", "pseudonyms: bad signature".
@custom:security Chaum, D. (1983). Blind signatures for untraceable
                 payments. Advances in Cryptology, Proc. Crypto 82,
                 199-203. Bellare, M. and Rogaway, P. (1996). The exact
                 security of digital signatures: how to sign with RSA and
                 Rabin (full-domain hash). Eurocrypt 96.
                 The quota of one pseudonym per prosumer and interval is
                 kept by the registrar off chain; the contract cannot see
                 it. A registrar that signs for itself mints pseudonyms at
                 will: `registered_count` above the number of prosumers
                 proves it. Signatures are not canonical (s and s + N
                 verify alike); harmless, as a registration is keyed by
                 its sender and interval, not by its signature. The
                 registrar's key must sign nothing else: it signs
                 whatever blinded value it is sent.
"""


# @dev The market's role registry.
interface Registry:
    def roles(account: address) -> uint256: view


# @dev Length of the registrar's RSA modulus and of a signature. [bytes]
MODULUS_BYTES: public(constant(uint256)) = 256


# @dev The registrar's public exponent, 65537, as the precompile takes it.
_EXPONENT: constant(Bytes[3]) = b"\x01\x00\x01"


# @dev The modexp precompile (EIP-198).
_MODEXP: constant(address) = 0x0000000000000000000000000000000000000005


# @dev Clears the top bit of the hash's first word: H < 2^2047 <= N.
_LOW_255_BITS: constant(uint256) = 2**255 - 1


# @dev Domain tag of the full-domain hash: keccak256("gridledger/pseudonym").
_DOMAIN: constant(bytes32) = keccak256("gridledger/pseudonym")


# @dev The market's registry.
registry: public(immutable(Registry))


# @dev The registrar's RSA modulus N, 2048 bits, big-endian.
modulus: public(immutable(Bytes[256]))


# @dev Start of interval 0. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev Length of an interval. [s]
interval_s: public(immutable(uint256))


# @dev How many intervals, from the first that has not begun, take registrations.
horizon_intervals: public(immutable(uint256))


# @dev Whether an account is a pseudonym of an interval.
is_pseudonym: public(HashMap[address, HashMap[uint256, bool]])


# @dev Number of pseudonyms registered for an interval.
registered_count: public(HashMap[uint256, uint256])


# @dev Emitted for every registration.
event PseudonymRegistered:
    pseudonym: indexed(address)
    interval: indexed(uint256)


@deploy
def __init__(registry_: Registry, modulus_: Bytes[256], start_timestamp_: uint256, interval_s_: uint256,
             horizon_intervals_: uint256):
    """
    @param registry_ The market's role registry; its role holders cannot be pseudonyms.
    @param modulus_ The registrar's RSA modulus, exactly 2048 bits, big-endian.
    @param start_timestamp_ Start of interval 0. [s since the Unix epoch]
    @param interval_s_ Length of an interval; positive. [s]
    @param horizon_intervals_ Intervals open for registration; positive.
    """
    assert len(modulus_) == MODULUS_BYTES and extract32(modulus_, 0, output_type=uint256) >= 2**255, \
        "pseudonyms: modulus not 2048 bits"
    assert extract32(modulus_, MODULUS_BYTES - 32, output_type=uint256) % 2 == 1, "pseudonyms: modulus even"
    assert interval_s_ != 0 and horizon_intervals_ != 0, "pseudonyms: zero interval or horizon"
    registry = registry_
    modulus = modulus_
    start_timestamp = start_timestamp_
    interval_s = interval_s_
    horizon_intervals = horizon_intervals_


@external
def register(interval: uint256, signature: Bytes[256]):
    """
    @dev Registers the caller as a pseudonym of `interval`; reverts with
         the reasons of the header, in their order.
    @param interval The market interval the pseudonym trades in.
    @param signature The registrar's unblinded signature
           H(msg.sender, interval)^d mod N, 256 bytes big-endian.
    """
    # checks
    assert staticcall registry.roles(msg.sender) == 0, "pseudonyms: caller holds a role"
    assert len(signature) == MODULUS_BYTES, "pseudonyms: malformed signature"
    first: uint256 = self._first_open_interval()
    assert interval >= first, "pseudonyms: interval in the past"
    assert interval - first < horizon_intervals, "pseudonyms: interval too far ahead"
    assert not self.is_pseudonym[msg.sender][interval], "pseudonyms: already registered"
    recovered: Bytes[256] = raw_call(
        _MODEXP,
        concat(convert(MODULUS_BYTES, bytes32), convert(len(_EXPONENT), bytes32), convert(MODULUS_BYTES, bytes32),
               signature, _EXPONENT, modulus),
        max_outsize=MODULUS_BYTES,
        is_static_call=True,
    )
    assert recovered == self._full_domain_hash(msg.sender, interval), "pseudonyms: bad signature"
    # effects
    self.is_pseudonym[msg.sender][interval] = True
    self.registered_count[interval] += 1
    log PseudonymRegistered(pseudonym=msg.sender, interval=interval)


@external
@view
def first_open_interval() -> uint256:
    """
    @dev The first interval that has not begun: the earliest a pseudonym may be registered for.
    @return uint256 The interval.
    """
    return self._first_open_interval()


@internal
@view
def _first_open_interval() -> uint256:
    if block.timestamp < start_timestamp:
        return 0
    return (block.timestamp - start_timestamp) // interval_s + 1


@internal
@view
def _full_domain_hash(account: address, interval: uint256) -> Bytes[256]:
    """
    @dev H(account, interval): eight Keccak-256 words of a seed over the
         domain, chain, contract, account and interval; the first word's
         top bit cleared, so that H < 2^2047 <= N.
    """
    seed: bytes32 = keccak256(abi_encode(_DOMAIN, chain.id, self, account, interval))
    first: uint256 = convert(keccak256(concat(seed, convert(0, bytes32))), uint256) & _LOW_255_BITS
    return concat(
        convert(first, bytes32),
        keccak256(concat(seed, convert(1, bytes32))),
        keccak256(concat(seed, convert(2, bytes32))),
        keccak256(concat(seed, convert(3, bytes32))),
        keccak256(concat(seed, convert(4, bytes32))),
        keccak256(concat(seed, convert(5, bytes32))),
        keccak256(concat(seed, convert(6, bytes32))),
        keccak256(concat(seed, convert(7, bytes32))),
    )
