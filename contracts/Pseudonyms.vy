# pragma version ~=0.4.3
"""
@title Pseudonyms of a GridLedger Market
@custom:contract-name pseudonyms
@license BSD-3-Clause
@notice One-time prosumers that a household trades and is metered under
        for one market interval, registered with RSA blind signatures of
        the registrar (the operator), so that neither the registration
        nor the registry links a pseudonym to its owner (Chaum 1983).
        Tickets: for each interval k a registered prosumer buys at most
        one ticket (`buy_ticket`), paying the bond, from its own
        address; every household buys one each interval, so a ticket
        shows only that its buyer trades. The registrar signs at most
        one pseudonym per ticket holder and interval, so a valid pair
        beyond an interval's tickets proves that it signed more: the
        pair still registers, its bond paid from the reserve the
        operator funded (`fund_reserve`), and the over-issue is logged
        (`OverIssued`); an honest owner whose ticket the registrar took
        by registering first loses nothing while the reserve lasts.
        Two blind signatures make a registration, each on a full-domain
        hash H(a, b, k) (eight Keccak-256 words of a seed binding the
        chain, this contract, a, b and k; `contracts/pseudonyms.py`
        computes the same):
        - the owner's: H(pseudonym, meter, k)^(1/e) mod N for the
          exponent e of k and of the owner's class c, which the
          registrar chooses from the owner's registered limits, so the
          pseudonym inherits limits it cannot choose;
        - its meter's: H(meter, pseudonym, k)^(1/e) mod N for the meter
          exponent of k, requested by the household's meter with its
          bound key, so a pseudonym is metered by a key only a real
          meter obtained.
        Off chain the requester sends m' = H r^e mod N (r random,
        secret) and gets m'^d; dividing out r leaves H^d, a signature
        the registrar never saw. Anyone may then send `register` (the
        market's relay does: a fresh pseudonym holds no ether). It
        checks both signatures with the modexp precompile (EIP-198),
        enrols the pair in the registry (prosumer and bound meter),
        registers the class's limits for interval k in the Settlement
        and deposits the ticket's bond there for the pseudonym.
        Exponents: the exponent of interval k and class c lies in the
        window [B + (k (C + 1) + c) W, B + (k (C + 1) + c + 1) W) with
        B = `EXPONENT_BASE`, W = `EXPONENT_WINDOW`, C = `MAX_CLASSES`
        and c = C for meters; the registrar uses one prime in each.
        All lie in [B, 2B), so none divides a product of others: a
        signature under one interval's or class's exponent gives none
        under another's (strong RSA assumption), and the registrar's
        count per interval and class is the quota.
        Functions:
        - `buy_ticket` (`external` function, a registered prosumer that
          is no pseudonym, once per interval),
        - `register` (`external` function, anyone, with the signatures),
        - `fund_reserve` (`external` function, anyone),
        - `is_pseudonym`, `registered_count`, `tickets`, `has_ticket`,
          `first_open_interval`, `exponent_window`, `class_limits`,
          `class_count`, `modulus`, `bond_wei`, `reserve_wei` (`external`
          `view` functions).
        Reasons of a refused ticket, in the order they are checked:
        "pseudonyms: caller is not a prosumer", "pseudonyms: caller is a
        pseudonym", "pseudonyms: interval in the past", "pseudonyms:
        interval too far ahead", "pseudonyms: ticket bought"; then the
        token's own reason if the bond cannot be pulled.
        Reasons of a refused registration, in the order they are
        checked: "pseudonyms: malformed signature" (not 256 bytes),
        "pseudonyms: interval in the past" (the interval has begun),
        "pseudonyms: interval too far ahead" (`horizon_intervals` or
        more after the first that has not begun), "pseudonyms: unknown
        class", "pseudonyms: exponent not of the interval" (either
        exponent outside its window), "pseudonyms: zero address",
        "pseudonyms: pseudonym is its meter", "pseudonyms: account holds
        a role" (either account already has a registry role: a
        pseudonym registers once), "pseudonyms: bad signature",
        "pseudonyms: bad meter signature", "pseudonyms: no ticket left"
        (beyond the interval's tickets with the reserve below a bond).
@custom:security Chaum, D. (1983). Blind signatures for untraceable
                 payments. Advances in Cryptology, Proc. Crypto 82,
                 199-203. Bellare, M. and Rogaway, P. (1996). The exact
                 security of digital signatures: how to sign with RSA and
                 Rabin (full-domain hash). Eurocrypt 96.
                 Both hashes bind both accounts: a meter signature seen
                 in a pending transaction cannot be paired with another
                 pseudonym, so front-running a registration can only
                 register the same pair. A registrar that signs for
                 itself takes tickets' bonds, but every honest pair it
                 displaces is then paid from the reserve, each time
                 publicly (`OverIssued`), and once the reserve is spent
                 such pairs are refused; an unused ticket's bond is not
                 refunded (a refund would name the buyer). Signatures are not canonical (s and s + N
                 verify alike); harmless, as an account registers once.
                 The relay (the operator) can hold back an honest
                 registration until its interval begins and register a
                 pair of its own on that ticket instead: tickets and
                 registrations then match and nothing on chain shows it;
                 only a second way to the chain (any sender may relay)
                 protects the owner. The registrar can sign pairs whose
                 one-time meter key it holds itself, enrolling a meter
                 after the start that measures nothing real: each costs it
                 a ticket's bond or the reserve, publicly, and its
                 readings stay within the class's limits. The registrar's
                 key must sign nothing else.
"""

from ethereum.ercs import IERC20


# @dev The market's role registry.
interface Registry:
    def roles(account: address) -> uint256: view
    def enrol(prosumer: address, meter: address): nonpayable


# @dev The market's clearing house.
interface Settlement:
    def register_pseudonym(pseudonym: address, interval: uint256, meter_rating_w: uint256, pv_w: uint256,
                           battery_w: uint256): nonpayable
    def deposit_for(beneficiary: address, amount_wei: uint256): nonpayable


# @dev Limits of a class of households, registered for each of its pseudonyms. [W]
struct ClassLimits:
    meter_rating_w: uint256
    pv_w: uint256
    battery_w: uint256


# @dev Length of the registrar's RSA modulus and of a signature. [bytes]
MODULUS_BYTES: public(constant(uint256)) = 256


# @dev Largest power of a class's limit: `Settlement.MAX_POWER_W`. [W]
MAX_POWER_W: public(constant(uint256)) = 10**9


# @dev Most classes of households.
MAX_CLASSES: public(constant(uint256)) = 8


# @dev Lowest exponent of any window.
EXPONENT_BASE: public(constant(uint256)) = 2**48


# @dev Width of one exponent window.
EXPONENT_WINDOW: public(constant(uint256)) = 2**16


# @dev The registry's prosumer role bit (`Registry.ROLE_PROSUMER`).
_ROLE_PROSUMER: constant(uint256) = 2


# @dev Windows per interval: one per class and the meters'.
_WINDOWS_PER_INTERVAL: constant(uint256) = MAX_CLASSES + 1


# @dev First interval whose windows would leave [B, 2B).
_MAX_INTERVAL: constant(uint256) = EXPONENT_BASE // EXPONENT_WINDOW // _WINDOWS_PER_INTERVAL


# @dev The modexp precompile (EIP-198).
_MODEXP: constant(address) = 0x0000000000000000000000000000000000000005


# @dev Clears the top bit of the hash's first word: H < 2^2047 <= N.
_LOW_255_BITS: constant(uint256) = 2**255 - 1


# @dev Domain tag of the full-domain hash: keccak256("gridledger/pseudonym").
_DOMAIN: constant(bytes32) = keccak256("gridledger/pseudonym")


# @dev The market's registry.
registry: public(immutable(Registry))


# @dev The market's clearing house.
settlement: public(immutable(Settlement))


# @dev The market's token.
token: public(immutable(IERC20))


# @dev The registrar's RSA modulus N, 2048 bits, big-endian.
modulus: public(immutable(Bytes[256]))


# @dev Start of interval 0. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev Length of an interval. [s]
interval_s: public(immutable(uint256))


# @dev How many intervals, from the first that has not begun, take tickets and registrations.
horizon_intervals: public(immutable(uint256))


# @dev What a ticket costs; deposited in the Settlement for its pseudonym. [wei]
bond_wei: public(immutable(uint256))


# @dev Limits of each class. [W]
class_limits: public(DynArray[ClassLimits, MAX_CLASSES])


# @dev Tickets bought for an interval.
tickets: public(HashMap[uint256, uint256])


# @dev Whether a prosumer bought its ticket for an interval.
has_ticket: public(HashMap[address, HashMap[uint256, bool]])


# @dev Number of pseudonyms registered for an interval.
registered_count: public(HashMap[uint256, uint256])


# @dev What pays the bonds of pairs beyond an interval's tickets. [wei]
reserve_wei: public(uint256)


# @dev A pseudonym's interval + 1; 0 for any other account.
_interval_of: HashMap[address, uint256]


# @dev Emitted for every ticket.
event TicketBought:
    buyer: indexed(address)
    interval: indexed(uint256)


# @dev Emitted when the reserve is funded. [wei]
event ReserveFunded:
    payer: indexed(address)
    amount_wei: uint256


# @dev Emitted for a registration beyond its interval's tickets: proof that the registrar signed more.
event OverIssued:
    pseudonym: indexed(address)
    interval: indexed(uint256)


# @dev Emitted for every registration.
event PseudonymRegistered:
    pseudonym: indexed(address)
    interval: indexed(uint256)
    meter: address
    class_index: uint256


@deploy
def __init__(registry_: Registry, settlement_: Settlement, token_: IERC20, modulus_: Bytes[256],
             start_timestamp_: uint256, interval_s_: uint256, horizon_intervals_: uint256, bond_wei_: uint256,
             classes_: DynArray[ClassLimits, MAX_CLASSES]):
    """
    @param registry_ The market's role registry; it must name this contract (`Registry.set_pseudonyms`).
    @param settlement_ The market's clearing house.
    @param token_ The market's token.
    @param modulus_ The registrar's RSA modulus, exactly 2048 bits, big-endian.
    @param start_timestamp_ Start of interval 0. [s since the Unix epoch]
    @param interval_s_ Length of an interval; positive. [s]
    @param horizon_intervals_ Intervals open for tickets and registrations; positive.
    @param bond_wei_ Price of a ticket; positive. [wei]
    @param classes_ Limits of each class, at least one; each meter rating positive, each limit at most
           `MAX_POWER_W`. [W]
    """
    assert len(modulus_) == MODULUS_BYTES and extract32(modulus_, 0, output_type=uint256) >= 2**255, \
        "pseudonyms: modulus not 2048 bits"
    assert extract32(modulus_, MODULUS_BYTES - 32, output_type=uint256) % 2 == 1, "pseudonyms: modulus even"
    assert interval_s_ != 0 and horizon_intervals_ != 0, "pseudonyms: zero interval or horizon"
    assert bond_wei_ != 0, "pseudonyms: zero bond"
    assert len(classes_) != 0, "pseudonyms: no class"
    for limits: ClassLimits in classes_:
        assert limits.meter_rating_w != 0, "pseudonyms: zero meter rating"
        assert (limits.meter_rating_w <= MAX_POWER_W and limits.pv_w <= MAX_POWER_W
                and limits.battery_w <= MAX_POWER_W), "pseudonyms: power above limit"
    registry = registry_
    settlement = settlement_
    token = token_
    modulus = modulus_
    start_timestamp = start_timestamp_
    interval_s = interval_s_
    horizon_intervals = horizon_intervals_
    bond_wei = bond_wei_
    self.class_limits = classes_
    assert extcall token_.approve(settlement_.address, max_value(uint256)), "pseudonyms: approval failed"


@external
def buy_ticket(interval: uint256):
    """
    @dev Buys the caller's ticket for `interval` at `bond_wei`, which the
         caller must have approved; reverts with the reasons of the
         header, in their order.
    @param interval The market interval a pseudonym of the caller will trade in.
    """
    # checks
    assert staticcall registry.roles(msg.sender) & _ROLE_PROSUMER != 0, "pseudonyms: caller is not a prosumer"
    assert self._interval_of[msg.sender] == 0, "pseudonyms: caller is a pseudonym"
    self._check_open(interval)
    assert not self.has_ticket[msg.sender][interval], "pseudonyms: ticket bought"
    # effects
    if self.registered_count[interval] > self.tickets[interval]:
        # A pair registered beyond the tickets took its bond from the reserve: this ticket's bond repays it.
        self.reserve_wei += bond_wei
    self.has_ticket[msg.sender][interval] = True
    self.tickets[interval] += 1
    log TicketBought(buyer=msg.sender, interval=interval)
    # interactions
    assert extcall token.transferFrom(msg.sender, self, bond_wei), "pseudonyms: token transfer failed"


@external
def register(pseudonym: address, meter: address, interval: uint256, class_index: uint256,
             pseudonym_exponent: uint256, pseudonym_signature: Bytes[256],
             meter_exponent: uint256, meter_signature: Bytes[256]):
    """
    @dev Registers `pseudonym`, metered by `meter`, for `interval` in
         class `class_index`; reverts with the reasons of the header,
         in their order.
    @param pseudonym The one-time prosumer.
    @param meter Its one-time meter key.
    @param interval The market interval the pseudonym trades in.
    @param class_index The owner's class, an index of `class_limits`.
    @param pseudonym_exponent The exponent the registrar signed the owner's request with.
    @param pseudonym_signature H(pseudonym, meter, interval)^(1/pseudonym_exponent) mod N, 256 bytes big-endian.
    @param meter_exponent The exponent the registrar signed the meter's request with.
    @param meter_signature H(meter, pseudonym, interval)^(1/meter_exponent) mod N, 256 bytes big-endian.
    """
    # checks
    assert len(pseudonym_signature) == MODULUS_BYTES and len(meter_signature) == MODULUS_BYTES, \
        "pseudonyms: malformed signature"
    self._check_open(interval)
    assert class_index < len(self.class_limits), "pseudonyms: unknown class"
    assert (self._in_window(pseudonym_exponent, interval, class_index)
            and self._in_window(meter_exponent, interval, MAX_CLASSES)), "pseudonyms: exponent not of the interval"
    assert pseudonym != empty(address) and meter != empty(address), "pseudonyms: zero address"
    assert pseudonym != meter, "pseudonyms: pseudonym is its meter"
    assert staticcall registry.roles(pseudonym) == 0 and staticcall registry.roles(meter) == 0, \
        "pseudonyms: account holds a role"
    assert self._recovered(pseudonym_signature, pseudonym_exponent) == self._full_domain_hash(
        pseudonym, meter, interval), "pseudonyms: bad signature"
    assert self._recovered(meter_signature, meter_exponent) == self._full_domain_hash(
        meter, pseudonym, interval), "pseudonyms: bad meter signature"
    over_issued: bool = self.registered_count[interval] >= self.tickets[interval]
    assert not over_issued or self.reserve_wei >= bond_wei, "pseudonyms: no ticket left"
    # effects
    if over_issued:
        self.reserve_wei -= bond_wei
        log OverIssued(pseudonym=pseudonym, interval=interval)
    self.registered_count[interval] += 1
    self._interval_of[pseudonym] = interval + 1
    log PseudonymRegistered(pseudonym=pseudonym, interval=interval, meter=meter, class_index=class_index)
    # interactions
    limits: ClassLimits = self.class_limits[class_index]
    extcall registry.enrol(pseudonym, meter)
    extcall settlement.register_pseudonym(pseudonym, interval, limits.meter_rating_w, limits.pv_w, limits.battery_w)
    extcall settlement.deposit_for(pseudonym, bond_wei)


@external
def fund_reserve(amount_wei: uint256):
    """
    @dev Adds `amount_wei` tokens, which the caller must have approved,
         to the reserve that pays the bonds of pairs beyond an
         interval's tickets (the operator funds it at deployment).
    @param amount_wei Tokens added; positive. [wei]
    """
    assert amount_wei != 0, "pseudonyms: zero amount"
    self.reserve_wei += amount_wei
    log ReserveFunded(payer=msg.sender, amount_wei=amount_wei)
    assert extcall token.transferFrom(msg.sender, self, amount_wei), "pseudonyms: token transfer failed"


@external
@view
def is_pseudonym(account: address, interval: uint256) -> bool:
    """
    @dev Whether `account` is a registered pseudonym of `interval`.
    @param account The account.
    @param interval The market interval.
    @return bool True if it is.
    """
    return self._interval_of[account] == interval + 1


@external
@view
def class_count() -> uint256:
    """
    @dev Number of classes.
    @return uint256 The length of `class_limits`.
    """
    return len(self.class_limits)


@external
@view
def exponent_window(interval: uint256, class_index: uint256) -> (uint256, uint256):
    """
    @dev The window of the exponents of `interval` and `class_index`
         (`MAX_CLASSES` for meters).
    @param interval The market interval; below the limit of the windows.
    @param class_index A class index, or `MAX_CLASSES`.
    @return (uint256, uint256) Its lowest exponent and the first above it.
    """
    low: uint256 = self._window_low(interval, class_index)
    return low, low + EXPONENT_WINDOW


@external
@view
def first_open_interval() -> uint256:
    """
    @dev The first interval that has not begun: the earliest a ticket or pseudonym may be for.
    @return uint256 The interval.
    """
    return self._first_open_interval()


@internal
@view
def _check_open(interval: uint256):
    """
    @dev Reverts unless `interval` has not begun and is within the horizon.
    """
    first: uint256 = self._first_open_interval()
    assert interval >= first, "pseudonyms: interval in the past"
    assert interval - first < horizon_intervals, "pseudonyms: interval too far ahead"


@internal
@view
def _first_open_interval() -> uint256:
    if block.timestamp < start_timestamp:
        return 0
    return (block.timestamp - start_timestamp) // interval_s + 1


@internal
@pure
def _window_low(interval: uint256, class_index: uint256) -> uint256:
    """
    @dev Lowest exponent of the window of `interval` and `class_index`.
    """
    assert interval < _MAX_INTERVAL and class_index <= MAX_CLASSES, "pseudonyms: no window"
    return EXPONENT_BASE + (interval * _WINDOWS_PER_INTERVAL + class_index) * EXPONENT_WINDOW


@internal
@pure
def _in_window(exponent: uint256, interval: uint256, class_index: uint256) -> bool:
    low: uint256 = self._window_low(interval, class_index)
    return low <= exponent and exponent < low + EXPONENT_WINDOW


@internal
@view
def _recovered(signature: Bytes[256], exponent: uint256) -> Bytes[256]:
    """
    @dev signature^exponent mod N with the modexp precompile.
    """
    return raw_call(
        _MODEXP,
        concat(convert(MODULUS_BYTES, bytes32), convert(32, bytes32), convert(MODULUS_BYTES, bytes32),
               signature, convert(exponent, bytes32), modulus),
        max_outsize=MODULUS_BYTES,
        is_static_call=True,
    )


@internal
@view
def _full_domain_hash(first_account: address, second_account: address, interval: uint256) -> Bytes[256]:
    """
    @dev H(a, b, interval): eight Keccak-256 words of a seed over the
         domain, chain, contract, both accounts and interval; the first
         word's top bit cleared, so that H < 2^2047 <= N.
    """
    seed: bytes32 = keccak256(abi_encode(_DOMAIN, chain.id, self, first_account, second_account, interval))
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
