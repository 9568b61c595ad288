# pragma version ~=0.4.3
"""
@title EIP-712 Signatures of Orders and Readings
@custom:contract-name eip712
@license BSD-3-Clause
@notice Stateless module of `book.vy` and `Settlement.vy`: the digest
        of an EIP-712 typed-data message (EIP-712, "Typed structured
        data hashing and signing") signed for the contract that imports
        it on this chain, and the signer recovered from it, so a relay
        can submit many signed orders or readings in one transaction
        without being able to forge or alter one.
        Domain: `EIP712Domain(string name,string version,uint256
        chainId,address verifyingContract)` with name "gridledger",
        version "1", `chain.id` and `self`; a signature is bound to one
        run's chain and one contract. Message types and their hashes
        are `ORDER_TYPEHASH` and `READING_TYPEHASH`; the Python side
        signing them is `contracts/typed_data.py`.
        Functions:
        - `_domain_separator` (`internal` `view` function),
        - `_signer` (`internal` `pure` function).
"""


DOMAIN_TYPEHASH: constant(bytes32) = keccak256(
    "EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"
)
NAME_HASH: constant(bytes32) = keccak256("gridledger")
VERSION_HASH: constant(bytes32) = keccak256("1")
ORDER_TYPEHASH: constant(bytes32) = keccak256(
    "Order(uint256 interval,bool isAsk,uint256 energyWh,uint256 priceWeiPerWh)"
)
READING_TYPEHASH: constant(bytes32) = keccak256(
    "Reading(uint256 interval,uint256 importWh,uint256 exportWh,uint256 pvWh,uint256 batteryWh)"
)


# @dev Largest `s` of a signature (secp256k1 order / 2, EIP-2): the
# other, malleable, form of the same signature is refused.
_S_MAX: constant(uint256) = 57896044618658097711785492504343953926418782139537452191302581570759080747168


@internal
@view
def _domain_separator() -> bytes32:
    """
    @dev `domainSeparator` (EIP-712) of this contract on this chain; a
         batch computes it once for all its signatures.
    @return bytes32 The hash of the domain.
    """
    return keccak256(abi_encode(DOMAIN_TYPEHASH, NAME_HASH, VERSION_HASH, chain.id, self))


@internal
@pure
def _signer(domain_separator: bytes32, struct_hash: bytes32, v: uint8, r: bytes32, s: bytes32) -> address:
    """
    @dev The account that signed the message of `struct_hash` in the
         domain of `domain_separator` (`_domain_separator`: this
         contract on this chain); the empty address if the signature
         is invalid or malleable (`s` above `_S_MAX`, `v` not 27 or 28).
    @param domain_separator `_domain_separator()`.
    @param struct_hash `hashStruct` of the message (EIP-712).
    @param v Recovery id, 27 or 28.
    @param r First half of the signature.
    @param s Second half of the signature.
    @return address The signer, or the empty address.
    """
    if convert(s, uint256) > _S_MAX or (v != 27 and v != 28):
        return empty(address)
    return ecrecover(keccak256(concat(b"\x19\x01", domain_separator, struct_hash)), v, r, s)
