# pragma version ~=0.4.3
"""
@title Voltage-Regulation Flexibility Market
@custom:contract-name flexibility
@license BSD-3-Clause
@notice The operator buys a change of active power in a zone of
        buses for a time window; distributed energy resources (DERs)
        offer it, the offers most effective per token win, and the
        awarded DERs are paid for the flexibility their meters show
        after the window, or lose part of their bond for a shortfall.
        Registration: before the registry's start the deployer (the
        registrar, an operator of the registry) registers each DER once
        with the facts it cannot declare itself: its feeder bus and its
        inverter rating. An offer takes its bus from the registration,
        may not exceed the rating, and must be at least `min_offer_w`
        with a bond of at least `min_bond_wei`, so a flood of tiny
        offers costs real bonds and needs registered DERs.
        Phases of request r (timestamps of the request):
        - before `offer_deadline_timestamp`: registered prosumers `offer`;
        - [offer deadline, window start): anyone calls `award` once;
        - the window [window start, window end): awarded DERs move
          their setpoints by their awarded power in the request's
          direction;
        - [window end, window end + `delivery_period_s`): the meter
          bound to each awarded DER calls `post_delivery` once;
        - from window end + `delivery_period_s` on: anyone calls
          `close` once.
        Roles: the operator fixed at deployment must hold the registry's
        operator role at deployment and whenever it posts a request; the
        registry never lets it hold the meter or prosumer role, so it
        can neither offer nor post a delivery. Only the meter bound to a
        DER posts its delivery, and bindings are frozen from the
        market's start (see `Registry.vy`).
        Functions:
        - `register_der`, `post_request`, `offer`, `award`,
          `post_delivery`, `close` (`external` functions),
        - `request`, `offers`, `sensitivity_upu_per_kw`, `held_wei`,
          `delivery_deadline_timestamp`, `request_count`,
          `penalty_reserve_wei`, `der_bus`, `der_rating_w`
          (`external` `view` functions).
        Units: power p [W]; energy E(p) = floor(p * window_s / 3600)
        [Wh] with window_s = window end - window start [s]; prices
        [wei/Wh] of flexibility energy; the voltage sensitivity s of a
        bus is |dV| in 1e-6 pu per kW of active power changed at that
        bus [upu/kW], published by the operator with the request.
        Escrow: `post_request` pulls the budget E(p_request) * price
        cap from the operator; `offer` pulls the bond
        floor(E(p_offer) * price * penalty_permille / 1000) from the
        DER.
        Award rule: offers rank by price / s of their bus ascending,
        compared exactly as price_a * s_b < price_b * s_a; equal ratios
        keep offer order. In rank order each offer is awarded the
        smaller of its power and the requested power still uncovered
        (so the last awarded offer may be partial and the request may
        stay under-subscribed). Each offer keeps the bond of its
        awarded energy, floor(E(p_award) * price * penalty_permille /
        1000), and gets the rest of its bond back at once.
        Settlement of an award with delivered energy d [Wh] (the
        energy of the DER's measured response over the window against
        its baseline, in the requested direction, computed by the grid
        side from the power flow: available PV minus injected PV): pay-as-bid payment
        min(d, E(p_award)) * price from the budget; shortfall
        s = E(p_award) - min(d, E(p_award)); penalty floor(s * price *
        penalty_permille / 1000) from the bond into the request's
        penalty pool; the rest of the bond back to the DER. An award
        without a posted delivery is settled at `close` with d = 0,
        forfeiting its whole bond.
        Penalty rule: penalties never go to the operator, who judges
        the request. At `close` the pool P = the request's penalties +
        `penalty_reserve_wei` is shared among the request's awarded
        DERs pro rata to their paid energy w_i = min(d_i, E_i):
        floor(P * w_i / sum w); what is left (rounding, or all of P
        when nobody delivered) becomes the new `penalty_reserve_wei`,
        carried to the next request closed. `close` pays the operator
        the unspent budget only. A request nobody awarded before its
        window started lapses: `close` returns every bond in full and
        the whole budget, and leaves the reserve as it is.
        Invariant: this contract's token balance equals the sum of
        `held_wei` over all requests plus `penalty_reserve_wei`; a
        closed request holds nothing.
        Tokens move only by `transfer` and `transferFrom` of `token`.
@custom:security The operator's sensitivities, the registrar's DER facts
                 and the meters' delivered energies are trusted as
                 posted (within the registry's separation of duties). Offers are public, so a late
                 offer may undercut an earlier one. The operator account
                 is fixed at deployment; its registry operator role is
                 checked at deployment and on every request. Arrays
                 longer than their bound, and timestamps so large that
                 the delivery deadline overflows uint256, revert without
                 a reason string.
"""


# @dev We import the built-in `IERC20` interface to move tokens.
from ethereum.ercs import IERC20


# @dev Role queries and meter bindings of the market's registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view
    def prosumer_of_meter(meter: address) -> address: view
    def start_timestamp() -> uint256: view


# @dev Registry role bit of the operator (see `Registry.vy`).
_ROLE_OPERATOR: constant(uint256) = 1


# @dev Registry role bit of prosumers (see `Registry.vy`).
_ROLE_PROSUMER: constant(uint256) = 2


# @dev Seconds per hour, converting W * s into Wh.
_S_PER_H: constant(uint256) = 3600


# @dev Denominator of `penalty_permille`.
_PERMILLE: constant(uint256) = 1000


# @dev Most offers one request takes.
MAX_OFFERS: public(constant(uint256)) = 64


# @dev Most buses in one request's zone.
MAX_ZONE_BUSES: public(constant(uint256)) = 32


# @dev Largest requested or offered power. [W]
MAX_POWER_W: public(constant(uint256)) = 10**9


# @dev Longest delivery window. [s]
MAX_WINDOW_S: public(constant(uint256)) = 86400


# @dev Largest price cap of a request. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Largest voltage sensitivity of a bus. [upu/kW]
MAX_SENSITIVITY_UPU_PER_KW: public(constant(uint256)) = 10**6


# @dev Largest delivered energy a meter may post. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest penalty factor the constructor accepts. [1/1000]
MAX_PENALTY_PERMILLE: public(constant(uint256)) = 10_000


# @dev Longest delivery period the constructor accepts. [s]
MAX_DELIVERY_PERIOD_S: public(constant(uint256)) = 7 * 86400


# @dev One flexibility request with its running totals.
struct Request:
    direction_raise: bool
    p_w: uint256
    window_start_timestamp: uint256
    window_end_timestamp: uint256
    offer_deadline_timestamp: uint256
    price_cap_wei_per_wh: uint256
    budget_wei: uint256
    offer_count: uint256
    awarded: bool
    awarded_p_w: uint256
    paid_wei: uint256
    penalties_wei: uint256
    bonds_wei: uint256
    closed: bool


# @dev One offer with its award and settlement; `awarded_p_w` is 0
# until awarded, `delivered_wh` is 0 until settled.
struct Offer:
    der: address
    bus: uint256
    p_w: uint256
    price_wei_per_wh: uint256
    awarded_p_w: uint256
    delivered_wh: uint256
    settled: bool


# @dev Registry of prosumer roles and meter bindings.
registry: public(immutable(Registry))


# @dev Token the budgets, payments and bonds are paid in.
token: public(immutable(IERC20))


# @dev The only account that posts requests; receives the unspent budgets.
operator: public(immutable(address))


# @dev Penalty per Wh of shortfall as a multiple of the offer price,
# and the bond per Wh offered. [1/1000]
penalty_permille: public(immutable(uint256))


# @dev How long after a window ends meters may post deliveries. [s]
delivery_period_s: public(immutable(uint256))


# @dev The deployer; registers the DERs before the registry's start.
registrar: public(immutable(address))


# @dev Least power an offer may have. [W]
min_offer_w: public(immutable(uint256))


# @dev Least bond an offer must post. [wei]
min_bond_wei: public(immutable(uint256))


# @dev Feeder bus of each registered DER.
der_bus: public(HashMap[address, uint256])


# @dev Inverter rating of each registered DER; 0 if unregistered. [W]
der_rating_w: public(HashMap[address, uint256])


# @dev Penalties not yet shared, carried to the next request closed. [wei]
penalty_reserve_wei: public(uint256)


# @dev Number of requests ever posted; the next request's id.
request_count: public(uint256)


# @dev Every request by id.
_requests: HashMap[uint256, Request]


# @dev Sensitivity of each bus of each request's zone; 0 outside the
# zone. [upu/kW]
_sensitivity_upu_per_kw: HashMap[uint256, HashMap[uint256, uint256]]


# @dev Offers of each request by offer index.
_offers: HashMap[uint256, HashMap[uint256, Offer]]


# @dev Offer index + 1 of each DER in each request; 0 without an offer.
_offer_slot: HashMap[uint256, HashMap[address, uint256]]


# @dev Emitted when the registrar registers `der` at `bus` with its rating.
event DerRegistered:
    der: indexed(address)
    bus: uint256
    rating_w: uint256


# @dev Emitted when the operator posts request `request_id` and escrows
# `budget_wei`.
event RequestPosted:
    request_id: indexed(uint256)
    zone_buses: DynArray[uint256, MAX_ZONE_BUSES]
    sensitivities_upu_per_kw: DynArray[uint256, MAX_ZONE_BUSES]
    direction_raise: bool
    p_w: uint256
    window_start_timestamp: uint256
    window_end_timestamp: uint256
    offer_deadline_timestamp: uint256
    price_cap_wei_per_wh: uint256
    budget_wei: uint256


# @dev Emitted when `der` offers `p_w` at its registered bus `bus` and
# escrows `bond_wei`.
event Offered:
    request_id: indexed(uint256)
    der: indexed(address)
    offer_index: uint256
    bus: uint256
    p_w: uint256
    price_wei_per_wh: uint256
    bond_wei: uint256


# @dev Emitted per offer, in rank order (`rank` 0 first), when its
# request is awarded; `p_w` is 0 for an offer left out.
event Awarded:
    request_id: indexed(uint256)
    der: indexed(address)
    offer_index: uint256
    rank: uint256
    price_wei_per_wh: uint256
    offered_p_w: uint256
    p_w: uint256
    energy_wh: uint256
    bond_released_wei: uint256


# @dev Emitted after the `Awarded` events of a request.
event AwardsMade:
    request_id: indexed(uint256)
    awarded_p_w: uint256


# @dev Emitted when an award is settled; `meter` is the zero address
# for an award settled at `close` without a delivery.
event Settled:
    request_id: indexed(uint256)
    der: indexed(address)
    meter: indexed(address)
    delivered_wh: uint256
    payment_wei: uint256
    penalty_wei: uint256
    bond_refund_wei: uint256


# @dev Emitted per offer when `close` returns the bond of a request
# that lapsed without an award.
event BondReturned:
    request_id: indexed(uint256)
    der: indexed(address)
    bond_wei: uint256


# @dev Emitted per awarded DER that gets `share_wei` of the penalty
# pool when its request is closed.
event PenaltyShared:
    request_id: indexed(uint256)
    der: indexed(address)
    share_wei: uint256


# @dev Emitted when a request is closed: the operator is refunded the
# unspent budget, `shared_wei` of the penalty pool went to the DERs
# and `reserve_wei` is the reserve carried on.
event Closed:
    request_id: indexed(uint256)
    paid_wei: uint256
    penalties_wei: uint256
    operator_refund_wei: uint256
    shared_wei: uint256
    reserve_wei: uint256


@deploy
def __init__(
    registry_: Registry,
    token_: IERC20,
    operator_: address,
    penalty_permille_: uint256,
    delivery_period_s_: uint256,
    min_offer_w_: uint256,
    min_bond_wei_: uint256,
):
    """
    @dev The deployer becomes the registrar; it must hold the
         registry's operator role.
    @param registry_ The market's role registry.
    @param token_ The settlement token.
    @param operator_ Account that posts requests; holds the registry's
           operator role.
    @param penalty_permille_ Penalty per Wh of shortfall as a multiple
           of the offer price; at most `MAX_PENALTY_PERMILLE`. [1/1000]
    @param delivery_period_s_ Time meters have after a window to post;
           1 to `MAX_DELIVERY_PERIOD_S`. [s]
    @param min_offer_w_ Least power of an offer; 1 to `MAX_POWER_W`. [W]
    @param min_bond_wei_ Least bond of an offer. [wei]
    """
    assert staticcall registry_.has_role(operator_, _ROLE_OPERATOR), "flexibility: operator lacks operator role"
    assert staticcall registry_.has_role(msg.sender, _ROLE_OPERATOR), "flexibility: deployer lacks operator role"
    assert min_offer_w_ != 0 and min_offer_w_ <= MAX_POWER_W, "flexibility: minimum offer out of range"
    assert penalty_permille_ <= MAX_PENALTY_PERMILLE, "flexibility: penalty above limit"
    assert delivery_period_s_ != 0 and delivery_period_s_ <= MAX_DELIVERY_PERIOD_S, "flexibility: delivery period out of range"
    registry = registry_
    token = token_
    operator = operator_
    penalty_permille = penalty_permille_
    delivery_period_s = delivery_period_s_
    registrar = msg.sender
    min_offer_w = min_offer_w_
    min_bond_wei = min_bond_wei_


@external
def register_der(der: address, bus: uint256, rating_w: uint256):
    """
    @dev Registers prosumer `der` once, before the registry's start,
         with its feeder bus and inverter rating; its offers use them.
    @param der A prosumer of the registry.
    @param bus Feeder bus the DER is connected at.
    @param rating_w Inverter rating; 1 to `MAX_POWER_W`. [W]
    """
    # checks
    assert msg.sender == registrar and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "flexibility: caller is not registrar"
    assert block.timestamp < staticcall registry.start_timestamp(), "flexibility: registration closed"
    assert staticcall registry.has_role(der, _ROLE_PROSUMER), "flexibility: DER is not a prosumer"
    assert rating_w != 0, "flexibility: zero rating"
    assert rating_w <= MAX_POWER_W, "flexibility: rating above limit"
    assert self.der_rating_w[der] == 0, "flexibility: DER registered"

    # effects
    self.der_bus[der] = bus
    self.der_rating_w[der] = rating_w
    log DerRegistered(der=der, bus=bus, rating_w=rating_w)


@external
def post_request(
    zone_buses: DynArray[uint256, MAX_ZONE_BUSES],
    sensitivities_upu_per_kw: DynArray[uint256, MAX_ZONE_BUSES],
    direction_raise: bool,
    p_w: uint256,
    window_start_timestamp: uint256,
    window_end_timestamp: uint256,
    offer_deadline_timestamp: uint256,
    price_cap_wei_per_wh: uint256,
) -> uint256:
    """
    @dev Posts a request and pulls its budget E(p_w) * price cap from
         the operator, who must have approved this contract for it.
    @param zone_buses Distinct bus ids of the zone; 1 to `MAX_ZONE_BUSES`.
    @param sensitivities_upu_per_kw Sensitivity of each zone bus, in the
           order of `zone_buses`; 1 to `MAX_SENSITIVITY_UPU_PER_KW`. [upu/kW]
    @param direction_raise True to raise the zone's voltage (inject
           more), False to lower it (inject less).
    @param p_w Power wanted; 1 to `MAX_POWER_W`. [W]
    @param window_start_timestamp Start of the delivery window. [s since the Unix epoch]
    @param window_end_timestamp End of the window; at most
           `MAX_WINDOW_S` after its start. [s since the Unix epoch]
    @param offer_deadline_timestamp Offers close; after this block and
           before the window. [s since the Unix epoch]
    @param price_cap_wei_per_wh Highest offer price; 1 to
           `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    @return uint256 The request's id.
    """
    # checks
    assert msg.sender == operator and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "flexibility: caller is not operator"
    assert len(zone_buses) != 0, "flexibility: empty zone"
    assert len(zone_buses) == len(sensitivities_upu_per_kw), "flexibility: zone length mismatch"
    assert p_w != 0, "flexibility: zero power"
    assert p_w <= MAX_POWER_W, "flexibility: power above limit"
    assert price_cap_wei_per_wh != 0, "flexibility: zero price cap"
    assert price_cap_wei_per_wh <= MAX_PRICE_WEI_PER_WH, "flexibility: price cap above limit"
    assert block.timestamp < offer_deadline_timestamp, "flexibility: deadline passed"
    assert offer_deadline_timestamp < window_start_timestamp, "flexibility: deadline not before window"
    assert window_start_timestamp < window_end_timestamp, "flexibility: empty window"
    window_s: uint256 = window_end_timestamp - window_start_timestamp
    assert window_s <= MAX_WINDOW_S, "flexibility: window too long"
    energy_wh: uint256 = self._energy_wh(p_w, window_s)
    assert energy_wh != 0, "flexibility: zero energy"

    # effects
    request_id: uint256 = self.request_count
    self.request_count = request_id + 1
    for i: uint256 in range(len(zone_buses), bound=MAX_ZONE_BUSES):
        bus: uint256 = zone_buses[i]
        sensitivity: uint256 = sensitivities_upu_per_kw[i]
        assert sensitivity != 0, "flexibility: zero sensitivity"
        assert sensitivity <= MAX_SENSITIVITY_UPU_PER_KW, "flexibility: sensitivity above limit"
        assert self._sensitivity_upu_per_kw[request_id][bus] == 0, "flexibility: duplicate bus"
        self._sensitivity_upu_per_kw[request_id][bus] = sensitivity
    budget_wei: uint256 = energy_wh * price_cap_wei_per_wh
    self._requests[request_id] = Request(
        direction_raise=direction_raise,
        p_w=p_w,
        window_start_timestamp=window_start_timestamp,
        window_end_timestamp=window_end_timestamp,
        offer_deadline_timestamp=offer_deadline_timestamp,
        price_cap_wei_per_wh=price_cap_wei_per_wh,
        budget_wei=budget_wei,
        offer_count=0,
        awarded=False,
        awarded_p_w=0,
        paid_wei=0,
        penalties_wei=0,
        bonds_wei=0,
        closed=False,
    )
    log RequestPosted(
        request_id=request_id,
        zone_buses=zone_buses,
        sensitivities_upu_per_kw=sensitivities_upu_per_kw,
        direction_raise=direction_raise,
        p_w=p_w,
        window_start_timestamp=window_start_timestamp,
        window_end_timestamp=window_end_timestamp,
        offer_deadline_timestamp=offer_deadline_timestamp,
        price_cap_wei_per_wh=price_cap_wei_per_wh,
        budget_wei=budget_wei,
    )

    # interactions
    assert extcall token.transferFrom(msg.sender, self, budget_wei), "flexibility: token transfer failed"
    return request_id


@external
def offer(request_id: uint256, p_w: uint256, price_wei_per_wh: uint256) -> uint256:
    """
    @dev Offers the caller's single flexibility for `request_id` at its
         registered bus and pulls its bond
         floor(E(p_w) * price * penalty_permille / 1000), at least
         `min_bond_wei`, for which the caller must have approved this
         contract.
    @param request_id The request.
    @param p_w Power the DER can change; `min_offer_w` to the requested
           power and to the DER's registered rating, and E(p_w) at
           least 1 Wh. [W]
    @param price_wei_per_wh Pay-as-bid price; 1 to the request's cap. [wei/Wh]
    @return uint256 The offer's index in the request.
    """
    # checks
    self._check_request(request_id)
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "flexibility: caller is not a prosumer"
    rating_w: uint256 = self.der_rating_w[msg.sender]
    assert rating_w != 0, "flexibility: DER not registered"
    assert block.timestamp < self._requests[request_id].offer_deadline_timestamp, "flexibility: offers closed"
    assert p_w != 0, "flexibility: zero power"
    assert p_w >= min_offer_w, "flexibility: power below minimum"
    assert p_w <= self._requests[request_id].p_w, "flexibility: power above request"
    assert p_w <= rating_w, "flexibility: power above rating"
    energy_wh: uint256 = self._energy_wh(p_w, self._window_s(request_id))
    assert energy_wh != 0, "flexibility: zero energy"
    assert price_wei_per_wh != 0, "flexibility: zero price"
    assert price_wei_per_wh <= self._requests[request_id].price_cap_wei_per_wh, "flexibility: price above cap"
    bus: uint256 = self.der_bus[msg.sender]
    assert self._sensitivity_upu_per_kw[request_id][bus] != 0, "flexibility: bus not in zone"
    assert self._offer_slot[request_id][msg.sender] == 0, "flexibility: offer exists"
    offer_index: uint256 = self._requests[request_id].offer_count
    assert offer_index < MAX_OFFERS, "flexibility: request full"
    bond_wei: uint256 = self._bond_wei(energy_wh, price_wei_per_wh)
    assert bond_wei >= min_bond_wei, "flexibility: bond below minimum"

    # effects
    self._requests[request_id].offer_count = offer_index + 1
    self._requests[request_id].bonds_wei += bond_wei
    self._offer_slot[request_id][msg.sender] = offer_index + 1
    self._offers[request_id][offer_index] = Offer(
        der=msg.sender,
        bus=bus,
        p_w=p_w,
        price_wei_per_wh=price_wei_per_wh,
        awarded_p_w=0,
        delivered_wh=0,
        settled=False,
    )
    log Offered(
        request_id=request_id,
        der=msg.sender,
        offer_index=offer_index,
        bus=bus,
        p_w=p_w,
        price_wei_per_wh=price_wei_per_wh,
        bond_wei=bond_wei,
    )

    # interactions
    if bond_wei != 0:
        assert extcall token.transferFrom(msg.sender, self, bond_wei), "flexibility: token transfer failed"
    return offer_index


@external
def award(request_id: uint256):
    """
    @dev Ranks the request's offers and awards them (rule in the
         header); returns each offer's bond beyond its awarded energy.
    @param request_id The request; its offers are closed and its
           window has not started.
    """
    # checks
    self._check_request(request_id)
    assert block.timestamp >= self._requests[request_id].offer_deadline_timestamp, "flexibility: offers open"
    assert block.timestamp < self._requests[request_id].window_start_timestamp, "flexibility: window started"
    assert not self._requests[request_id].awarded, "flexibility: already awarded"

    # effects
    n: uint256 = self._requests[request_id].offer_count
    window_s: uint256 = self._window_s(request_id)
    prices: DynArray[uint256, MAX_OFFERS] = []
    sensitivities: DynArray[uint256, MAX_OFFERS] = []
    ranking: DynArray[uint256, MAX_OFFERS] = []
    # Insertion sort, stable: a new offer moves ahead only of offers
    # with a strictly higher price per unit of sensitivity.
    for i: uint256 in range(n, bound=MAX_OFFERS):
        prices.append(self._offers[request_id][i].price_wei_per_wh)
        sensitivities.append(self._sensitivity_upu_per_kw[request_id][self._offers[request_id][i].bus])
        ranking.append(i)
        j: uint256 = i
        for _: uint256 in range(i, bound=MAX_OFFERS):
            ahead: uint256 = ranking[j - 1]
            if prices[i] * sensitivities[ahead] >= prices[ahead] * sensitivities[i]:
                break
            ranking[j] = ahead
            j -= 1
            ranking[j] = i
            if j == 0:
                break

    left_w: uint256 = self._requests[request_id].p_w
    released_wei: DynArray[uint256, MAX_OFFERS] = []
    total_released_wei: uint256 = 0
    for rank: uint256 in range(n, bound=MAX_OFFERS):
        i: uint256 = ranking[rank]
        offered_p_w: uint256 = self._offers[request_id][i].p_w
        p_w: uint256 = min(offered_p_w, left_w)
        left_w -= p_w
        energy_wh: uint256 = self._energy_wh(p_w, window_s)
        release_wei: uint256 = self._bond_wei(self._energy_wh(offered_p_w, window_s), prices[i]) - self._bond_wei(
            energy_wh, prices[i]
        )
        released_wei.append(release_wei)
        total_released_wei += release_wei
        if p_w != 0:
            self._offers[request_id][i].awarded_p_w = p_w
        log Awarded(
            request_id=request_id,
            der=self._offers[request_id][i].der,
            offer_index=i,
            rank=rank,
            price_wei_per_wh=prices[i],
            offered_p_w=offered_p_w,
            p_w=p_w,
            energy_wh=energy_wh,
            bond_released_wei=release_wei,
        )
    awarded_p_w: uint256 = self._requests[request_id].p_w - left_w
    self._requests[request_id].awarded = True
    self._requests[request_id].awarded_p_w = awarded_p_w
    self._requests[request_id].bonds_wei -= total_released_wei
    log AwardsMade(request_id=request_id, awarded_p_w=awarded_p_w)

    # interactions
    for rank: uint256 in range(n, bound=MAX_OFFERS):
        if released_wei[rank] != 0:
            der: address = self._offers[request_id][ranking[rank]].der
            assert extcall token.transfer(der, released_wei[rank]), "flexibility: token transfer failed"


@external
def post_delivery(request_id: uint256, delivered_wh: uint256):
    """
    @dev Posts the delivered flexibility energy of the caller's
         prosumer and settles its award (rule in the header): the
         payment and the rest of the bond go to the DER.
    @param request_id The request; its window has ended and its
           delivery period not.
    @param delivered_wh Energy of the DER's measured response over the
           window against its baseline, in the requested direction; at
           most `MAX_ENERGY_WH`. [Wh]
    """
    # checks
    self._check_request(request_id)
    der: address = staticcall registry.prosumer_of_meter(msg.sender)
    assert der != empty(address), "flexibility: caller is not a bound meter"
    slot: uint256 = self._offer_slot[request_id][der]
    assert slot != 0 and self._offers[request_id][slot - 1].awarded_p_w != 0, "flexibility: prosumer has no award"
    end: uint256 = self._requests[request_id].window_end_timestamp
    assert block.timestamp >= end, "flexibility: window not ended"
    assert block.timestamp < end + delivery_period_s, "flexibility: delivery closed"
    assert not self._offers[request_id][slot - 1].settled, "flexibility: delivery posted"
    assert delivered_wh <= MAX_ENERGY_WH, "flexibility: delivery above limit"

    # effects
    payout_wei: uint256 = self._settle(request_id, slot - 1, delivered_wh, msg.sender)

    # interactions
    if payout_wei != 0:
        assert extcall token.transfer(der, payout_wei), "flexibility: token transfer failed"


@external
def close(request_id: uint256):
    """
    @dev Settles every award without a delivery at zero delivery,
         shares the penalty pool among the awarded DERs (rule in the
         header) and pays the operator the unspent budget; for a lapsed
         request (never awarded) returns every bond and the whole
         budget.
    @param request_id The request; its delivery period has ended.
    """
    # checks
    self._check_request(request_id)
    assert block.timestamp >= self._delivery_deadline_timestamp(request_id), "flexibility: delivery open"
    assert not self._requests[request_id].closed, "flexibility: already closed"

    # effects
    self._requests[request_id].closed = True
    n: uint256 = self._requests[request_id].offer_count
    awarded: bool = self._requests[request_id].awarded
    returned_wei: DynArray[uint256, MAX_OFFERS] = []
    window_s: uint256 = self._window_s(request_id)
    paid_total_wh: uint256 = 0
    for i: uint256 in range(n, bound=MAX_OFFERS):
        if awarded:
            if self._offers[request_id][i].awarded_p_w != 0 and not self._offers[request_id][i].settled:
                # With zero delivery the penalty is the whole bond, so nothing is paid out.
                self._settle(request_id, i, 0, empty(address))
            paid_total_wh += self._paid_wh(request_id, i, window_s)
        else:
            bond_wei: uint256 = self._bond_wei(
                self._energy_wh(self._offers[request_id][i].p_w, window_s), self._offers[request_id][i].price_wei_per_wh
            )
            returned_wei.append(bond_wei)
            log BondReturned(request_id=request_id, der=self._offers[request_id][i].der, bond_wei=bond_wei)
    request: Request = self._requests[request_id]
    shares_wei: DynArray[uint256, MAX_OFFERS] = []
    shared_wei: uint256 = 0
    if awarded:
        pool_wei: uint256 = self.penalty_reserve_wei + request.penalties_wei
        for i: uint256 in range(n, bound=MAX_OFFERS):
            share_wei: uint256 = 0
            if paid_total_wh != 0:
                share_wei = pool_wei * self._paid_wh(request_id, i, window_s) // paid_total_wh
            shares_wei.append(share_wei)
            if share_wei != 0:
                shared_wei += share_wei
                log PenaltyShared(request_id=request_id, der=self._offers[request_id][i].der, share_wei=share_wei)
        self.penalty_reserve_wei = pool_wei - shared_wei
    refund_wei: uint256 = request.budget_wei - request.paid_wei
    self._requests[request_id].bonds_wei = 0
    log Closed(
        request_id=request_id,
        paid_wei=request.paid_wei,
        penalties_wei=request.penalties_wei,
        operator_refund_wei=refund_wei,
        shared_wei=shared_wei,
        reserve_wei=self.penalty_reserve_wei,
    )

    # interactions
    for i: uint256 in range(len(returned_wei), bound=MAX_OFFERS):
        if returned_wei[i] != 0:
            der: address = self._offers[request_id][i].der
            assert extcall token.transfer(der, returned_wei[i]), "flexibility: token transfer failed"
    for i: uint256 in range(len(shares_wei), bound=MAX_OFFERS):
        if shares_wei[i] != 0:
            der: address = self._offers[request_id][i].der
            assert extcall token.transfer(der, shares_wei[i]), "flexibility: token transfer failed"
    if refund_wei != 0:
        assert extcall token.transfer(operator, refund_wei), "flexibility: token transfer failed"


@external
@view
def request(request_id: uint256) -> Request:
    """
    @dev Request `request_id` with its running totals.
    @param request_id The request.
    @return Request The stored request.
    """
    self._check_request(request_id)
    return self._requests[request_id]


@external
@view
def offers(request_id: uint256) -> DynArray[Offer, MAX_OFFERS]:
    """
    @dev Every offer of `request_id` in offer order, with its award
         and settlement.
    @param request_id The request.
    @return DynArray The offers.
    """
    self._check_request(request_id)
    result: DynArray[Offer, MAX_OFFERS] = []
    for i: uint256 in range(self._requests[request_id].offer_count, bound=MAX_OFFERS):
        result.append(self._offers[request_id][i])
    return result


@external
@view
def sensitivity_upu_per_kw(request_id: uint256, bus: uint256) -> uint256:
    """
    @dev Sensitivity the operator published for `bus` in `request_id`.
    @param request_id The request.
    @param bus The bus id.
    @return uint256 The sensitivity, 0 outside the zone. [upu/kW]
    """
    self._check_request(request_id)
    return self._sensitivity_upu_per_kw[request_id][bus]


@external
@view
def held_wei(request_id: uint256) -> uint256:
    """
    @dev Tokens this contract holds for `request_id`: unspent budget,
         penalties not yet shared and bonds; 0 once closed.
    @param request_id The request.
    @return uint256 The tokens held. [wei]
    """
    self._check_request(request_id)
    request: Request = self._requests[request_id]
    if request.closed:
        return 0
    return request.budget_wei - request.paid_wei + request.penalties_wei + request.bonds_wei


@external
@view
def delivery_deadline_timestamp(request_id: uint256) -> uint256:
    """
    @dev End of the delivery period of `request_id`; `close` opens then.
    @param request_id The request.
    @return uint256 Window end plus `delivery_period_s`. [s since the Unix epoch]
    """
    self._check_request(request_id)
    return self._delivery_deadline_timestamp(request_id)


@internal
def _settle(request_id: uint256, index: uint256, delivered_wh: uint256, meter: address) -> uint256:
    """
    @dev Settles offer `index` of `request_id` at `delivered_wh`
         (rule in the header) and books the flows on the request.
    @param request_id The request.
    @param index The awarded, unsettled offer.
    @param delivered_wh Delivered energy. [Wh]
    @param meter The posting meter; the zero address at `close`.
    @return uint256 Payment plus bond refund due to the DER. [wei]
    """
    offer_: Offer = self._offers[request_id][index]
    price: uint256 = offer_.price_wei_per_wh
    awarded_wh: uint256 = self._energy_wh(offer_.awarded_p_w, self._window_s(request_id))
    paid_wh: uint256 = min(delivered_wh, awarded_wh)
    payment_wei: uint256 = paid_wh * price
    penalty_wei: uint256 = self._bond_wei(awarded_wh - paid_wh, price)
    bond_wei: uint256 = self._bond_wei(awarded_wh, price)
    self._offers[request_id][index].delivered_wh = delivered_wh
    self._offers[request_id][index].settled = True
    self._requests[request_id].paid_wei += payment_wei
    self._requests[request_id].penalties_wei += penalty_wei
    self._requests[request_id].bonds_wei -= bond_wei
    log Settled(
        request_id=request_id,
        der=offer_.der,
        meter=meter,
        delivered_wh=delivered_wh,
        payment_wei=payment_wei,
        penalty_wei=penalty_wei,
        bond_refund_wei=bond_wei - penalty_wei,
    )
    return payment_wei + bond_wei - penalty_wei


@internal
@view
def _paid_wh(request_id: uint256, index: uint256, window_s: uint256) -> uint256:
    """
    @dev Paid energy min(d, E(p_award)) of offer `index`; 0 unless
         awarded and settled. [Wh]
    @param request_id The request.
    @param index The offer.
    @param window_s Length of the request's window. [s]
    @return uint256 The delivered energy paid for. [Wh]
    """
    offer_: Offer = self._offers[request_id][index]
    return min(offer_.delivered_wh, self._energy_wh(offer_.awarded_p_w, window_s))


@internal
@view
def _check_request(request_id: uint256):
    """
    @dev Reverts unless `request_id` has been posted.
    @param request_id The request.
    """
    assert request_id < self.request_count, "flexibility: unknown request"


@internal
@view
def _window_s(request_id: uint256) -> uint256:
    """
    @dev Length of the delivery window of `request_id`. [s]
    @param request_id The request.
    @return uint256 Window end minus window start. [s]
    """
    return self._requests[request_id].window_end_timestamp - self._requests[request_id].window_start_timestamp


@internal
@view
def _delivery_deadline_timestamp(request_id: uint256) -> uint256:
    """
    @dev End of the delivery period of `request_id`. [s since the Unix epoch]
    @param request_id The request.
    @return uint256 Window end plus `delivery_period_s`.
    """
    return self._requests[request_id].window_end_timestamp + delivery_period_s


@internal
@pure
def _energy_wh(p_w: uint256, window_s: uint256) -> uint256:
    """
    @dev Energy of `p_w` held over `window_s`, rounded down. [Wh]
    @param p_w Power. [W]
    @param window_s Duration. [s]
    @return uint256 floor(p_w * window_s / 3600). [Wh]
    """
    return p_w * window_s // _S_PER_H


@internal
@view
def _bond_wei(energy_wh: uint256, price_wei_per_wh: uint256) -> uint256:
    """
    @dev Bond of, and penalty for a shortfall of, `energy_wh` at
         `price_wei_per_wh`, rounded down. [wei]
    @param energy_wh Energy. [Wh]
    @param price_wei_per_wh Offer price. [wei/Wh]
    @return uint256 floor(energy_wh * price * penalty_permille / 1000). [wei]
    """
    return energy_wh * price_wei_per_wh * penalty_permille // _PERMILLE
