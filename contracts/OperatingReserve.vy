# pragma version ~=0.4.3
"""
@title Operating-Reserve Market
@custom:contract-name reserve
@license BSD-3-Clause
@notice The operator buys reserve capacity of one product for a time
        window from the feeder's own resources (batteries, EVs,
        interruptible loads); providers offer it with a capacity price
        and an activation price, the cheapest capacity wins, the
        operator may activate the awarded reserve once, from the award
        until the window ends, and the meters' delivery decides what
        each award is paid or loses from its bond.
        Products and their longest response time, after which an
        activated award must deliver: regulating reserve 300 s (the
        5-minute full activation time of the European aFRR standard
        product, EU 2017/2195 and the PICASSO platform), spinning
        reserve 600 s (the 10-minute rule of CAISO's spinning and
        non-spinning reserve) and supplemental reserve 1800 s (the
        30-minute operating reserve of NYISO and ISO-NE, PJM's
        secondary reserve). A feeder study behind a slack bus has no
        frequency dynamics (docs/ancillary-services.md): it honours a
        response time as a contract term only, an activation taking
        effect after it, in whole power-flow steps.
        Registration: before the registry's start the deployer (the
        registrar, an operator of the registry) registers each provider
        once with the facts it cannot declare itself: its feeder bus and
        the rating of its battery, EV charger or flexible load. An offer may not exceed
        the rating, and must be at least `min_offer_w` with a bond of
        at least `min_bond_wei`, so a flood of tiny offers costs real
        bonds and needs registered providers.
        Phases of window w (timestamps of the window):
        - before `offer_deadline_timestamp`: registered prosumers `offer`;
        - [offer deadline, window start): anyone calls `award` once;
        - from the award until the window end: the operator may call
          `activate` once (ahead of the window, an activation takes
          effect at its start at the earliest);
        - [window end, window end + `delivery_period_s`): the meter
          bound to each activated provider calls `post_delivery` once;
        - from window end + `delivery_period_s` on: anyone calls
          `close` once. A window nobody awarded before its start
          lapses and may be closed from its start on.
        Roles: the operator fixed at deployment must hold the registry's
        operator role at deployment and whenever it posts a window or
        activates one; the registry never lets it hold the meter or
        prosumer role, so it can neither offer nor post a delivery.
        Only the meter bound to a provider posts its delivery, and
        bindings are frozen from the market's start (see `Registry.vy`).
        Functions:
        - `register_provider`, `post_window`, `offer`, `award`,
          `activate`, `post_delivery`, `close` (`external` functions),
        - `window`, `offers`, `held_wei`, `delivery_deadline_timestamp`,
          `window_count`, `penalty_reserve_wei`, `provider_bus`,
          `provider_rating_w` (`external` `view` functions).
        Units: power p [W]; energy E(p, s) = floor(p * s / 3600) [Wh]
        of p held for s seconds; window_s = window end - window start
        [s]; prices [wei/Wh]: the capacity price per Wh of reserved
        capacity-time (availability, as an ISO's $/MW-h), the
        activation price per Wh of energy delivered when activated.
        Escrow: `post_window` pulls the budget E(capacity, window_s) *
        (capacity price cap + activation price cap) from the operator;
        `offer` pulls the bond B(p) = floor(E(p, window_s) * activation
        price cap * penalty_permille / 1000) from the provider. The
        bond uses the window's cap, not the offer's price, so an
        activation price of 0 does not zero the bond.
        Award rule: offers rank by capacity price ascending; equal
        prices keep offer order. In rank order each offer is awarded
        the smaller of its power and the capacity still uncovered (the
        last awarded offer may be partial, the window may stay
        under-subscribed). Each offer keeps the bond B(p_award) of its
        awarded power and gets the rest back at once.
        Activation rule: `activate(p)` takes the awards by activation
        price ascending (equal prices keep offer order); each is
        activated for the smaller of its awarded power and the power p
        still unactivated, delivering from
        `from` = max(block.timestamp + its response time, window start)
        until the window end: E_act = E(p_act, end - from). An award with E_act = 0 (from at
        or after the end) is skipped, logged, and takes none of p. The
        activation's time is stored once per window
        (`activated_timestamp`), each award's activated power with it.
        Settlement of an award with awarded energy E_aw =
        E(p_award, window_s), its offer's capacity price c and
        activation price a:
        - not activated: capacity payment E_aw * c, the whole bond back;
        - activated, with delivered energy d [Wh] (the energy of its
          measured response from `from` to the window end against its
          baseline, posted by its meter): paid energy w = min(d, E_act);
          capacity payment floor(E_aw * c * w / E_act), withheld pro
          rata to the shortfall (the "no pay" rule of CAISO's
          ancillary services); energy payment w * a; penalty
          floor((E_act - w) * activation price cap * penalty_permille
          / 1000) from the bond into the window's penalty pool (never
          more than the bond, as E_act <= E_aw); the rest of the bond
          back. An activated award without a posted delivery is
          settled at `close` with d = 0.
        Payments come from the window's budget; they never exceed it
        because the awarded energies sum to at most E(capacity,
        window_s) and E_act <= E_aw.
        Penalty rule: penalties never go to the operator, who decides
        the activations. At `close` the pool P = the window's penalties
        + `penalty_reserve_wei` is shared among the window's awards pro
        rata to the availability each was paid for, A = E_aw if not
        activated, floor(E_aw * w / E_act) if activated:
        floor(P * A_i / sum A); what is left (rounding, or all of P
        when no award was paid) becomes the new `penalty_reserve_wei`,
        carried to the next window closed. `close` pays the operator
        the unspent budget only. A lapsed window returns every bond in
        full and the whole budget, and leaves the reserve as it is.
        Invariant: this contract's token balance equals the sum of
        `held_wei` over all windows plus `penalty_reserve_wei`; a
        closed window holds nothing.
        Tokens move only by `transfer` and `transferFrom` of `token`.
@custom:security The registrar's provider facts and the meters' delivered
                 energies are trusted as posted (within the registry's
                 separation of duties). The operator chooses when and
                 how much to activate; activating late only shortens
                 the activated energy, and an award skipped for its
                 response time keeps its capacity payment. Offers are
                 public, so a late offer may undercut an earlier one,
                 and `MAX_OFFERS` registered providers with bonds may
                 fill a window. The operator account is fixed at
                 deployment; its registry operator role is checked at
                 deployment, on every window and every activation.
                 Timestamps so large that the delivery deadline
                 overflows uint256 revert without a reason string.
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


# @dev Regulating reserve: follows the operator within minutes.
PRODUCT_REGULATING: public(constant(uint256)) = 0


# @dev Spinning reserve: online and synchronised, full output within 10 min.
PRODUCT_SPINNING: public(constant(uint256)) = 1


# @dev Supplemental reserve: full output within 30 min.
PRODUCT_SUPPLEMENTAL: public(constant(uint256)) = 2


# @dev Longest response time of a regulating-reserve offer. [s]
REGULATING_RESPONSE_S: public(constant(uint256)) = 300


# @dev Longest response time of a spinning-reserve offer. [s]
SPINNING_RESPONSE_S: public(constant(uint256)) = 600


# @dev Longest response time of a supplemental-reserve offer. [s]
SUPPLEMENTAL_RESPONSE_S: public(constant(uint256)) = 1800


# @dev Most offers one window takes.
MAX_OFFERS: public(constant(uint256)) = 64


# @dev Largest capacity, offer, rating or activation. [W]
MAX_POWER_W: public(constant(uint256)) = 10**9


# @dev Longest reserve window. [s]
MAX_WINDOW_S: public(constant(uint256)) = 86400


# @dev Largest capacity or activation price cap of a window. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Largest delivered energy a meter may post. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest penalty factor the constructor accepts. [1/1000]
MAX_PENALTY_PERMILLE: public(constant(uint256)) = 10_000


# @dev Longest delivery period the constructor accepts. [s]
MAX_DELIVERY_PERIOD_S: public(constant(uint256)) = 7 * 86400


# @dev One reserve window with its running totals.
struct Window:
    product: uint256
    capacity_w: uint256
    window_start_timestamp: uint256
    window_end_timestamp: uint256
    offer_deadline_timestamp: uint256
    capacity_price_cap_wei_per_wh: uint256
    activation_price_cap_wei_per_wh: uint256
    budget_wei: uint256
    offer_count: uint256
    awarded: bool
    awarded_p_w: uint256
    activated: bool
    activated_p_w: uint256
    activated_timestamp: uint256
    paid_wei: uint256
    penalties_wei: uint256
    bonds_wei: uint256
    closed: bool


# @dev One offer with its award, activation and settlement;
# `awarded_p_w` is 0 until awarded, `activated_p_w` 0 unless activated,
# `delivered_wh` 0 until settled. An activated award delivers from its
# window's `activated_timestamp` + `response_s` (see `_activated_wh`).
struct Offer:
    provider: address
    p_w: uint256
    capacity_price_wei_per_wh: uint256
    activation_price_wei_per_wh: uint256
    response_s: uint256
    awarded_p_w: uint256
    activated_p_w: uint256
    delivered_wh: uint256
    settled: bool


# @dev Registry of prosumer roles and meter bindings.
registry: public(immutable(Registry))


# @dev Token the budgets, payments and bonds are paid in.
token: public(immutable(IERC20))


# @dev The only account that posts and activates windows; receives the
# unspent budgets.
operator: public(immutable(address))


# @dev Penalty per Wh of activated shortfall, and bond per Wh offered,
# as a multiple of the window's activation price cap. [1/1000]
penalty_permille: public(immutable(uint256))


# @dev How long after a window ends meters may post deliveries. [s]
delivery_period_s: public(immutable(uint256))


# @dev The deployer; registers the providers before the registry's start.
registrar: public(immutable(address))


# @dev Least power an offer may have. [W]
min_offer_w: public(immutable(uint256))


# @dev Least bond an offer must post. [wei]
min_bond_wei: public(immutable(uint256))


# @dev Feeder bus of each registered provider.
provider_bus: public(HashMap[address, uint256])


# @dev Rating of each registered provider; 0 if unregistered. [W]
provider_rating_w: public(HashMap[address, uint256])


# @dev Penalties not yet shared, carried to the next window closed. [wei]
penalty_reserve_wei: public(uint256)


# @dev Number of windows ever posted; the next window's id.
window_count: public(uint256)


# @dev Every window by id.
_windows: HashMap[uint256, Window]


# @dev Offers of each window by offer index.
_offers: HashMap[uint256, HashMap[uint256, Offer]]


# @dev Offer index + 1 of each provider in each window; 0 without an offer.
_offer_slot: HashMap[uint256, HashMap[address, uint256]]


# @dev Emitted when the registrar registers `provider` at `bus` with its rating.
event ProviderRegistered:
    provider: indexed(address)
    bus: uint256
    rating_w: uint256


# @dev Emitted when the operator posts window `window_id` and escrows
# `budget_wei`.
event WindowPosted:
    window_id: indexed(uint256)
    product: uint256
    capacity_w: uint256
    window_start_timestamp: uint256
    window_end_timestamp: uint256
    offer_deadline_timestamp: uint256
    capacity_price_cap_wei_per_wh: uint256
    activation_price_cap_wei_per_wh: uint256
    budget_wei: uint256


# @dev Emitted when `provider` offers `p_w` and escrows `bond_wei`.
event Offered:
    window_id: indexed(uint256)
    provider: indexed(address)
    offer_index: uint256
    p_w: uint256
    capacity_price_wei_per_wh: uint256
    activation_price_wei_per_wh: uint256
    response_s: uint256
    bond_wei: uint256


# @dev Emitted per offer, in rank order (`rank` 0 first), when its
# window is awarded; `p_w` is 0 for an offer left out.
event Awarded:
    window_id: indexed(uint256)
    provider: indexed(address)
    offer_index: uint256
    rank: uint256
    capacity_price_wei_per_wh: uint256
    offered_p_w: uint256
    p_w: uint256
    energy_wh: uint256
    bond_released_wei: uint256


# @dev Emitted after the `Awarded` events of a window.
event AwardsMade:
    window_id: indexed(uint256)
    awarded_p_w: uint256


# @dev Emitted per award activated for `p_w`, delivering `energy_wh`
# from `from_timestamp` to the window end, in activation order.
event Activated:
    window_id: indexed(uint256)
    provider: indexed(address)
    offer_index: uint256
    p_w: uint256
    from_timestamp: uint256
    energy_wh: uint256


# @dev Emitted, in activation order, per award that could deliver no
# energy before the window end after its response time.
event ActivationSkipped:
    window_id: indexed(uint256)
    provider: indexed(address)
    offer_index: uint256
    from_timestamp: uint256


# @dev Emitted after the `Activated` events of a window: the operator
# asked for `p_w` and `activated_p_w` of it was activated.
event ActivationsMade:
    window_id: indexed(uint256)
    p_w: uint256
    activated_p_w: uint256


# @dev Emitted when an award is settled; `meter` is the zero address
# for an award settled at `close`.
event Settled:
    window_id: indexed(uint256)
    provider: indexed(address)
    meter: indexed(address)
    delivered_wh: uint256
    capacity_payment_wei: uint256
    energy_payment_wei: uint256
    penalty_wei: uint256
    bond_refund_wei: uint256


# @dev Emitted per offer when `close` returns the bond of a window
# that lapsed without an award.
event BondReturned:
    window_id: indexed(uint256)
    provider: indexed(address)
    bond_wei: uint256


# @dev Emitted per award that gets `share_wei` of the penalty pool when
# its window is closed.
event PenaltyShared:
    window_id: indexed(uint256)
    provider: indexed(address)
    share_wei: uint256


# @dev Emitted when a window is closed: the operator is refunded the
# unspent budget, `shared_wei` of the penalty pool went to the providers
# and `reserve_wei` is the reserve carried on.
event Closed:
    window_id: indexed(uint256)
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
    @param operator_ Account that posts and activates windows; holds
           the registry's operator role.
    @param penalty_permille_ Penalty per Wh of activated shortfall as a
           multiple of the activation price cap; at most
           `MAX_PENALTY_PERMILLE`. [1/1000]
    @param delivery_period_s_ Time meters have after a window to post;
           1 to `MAX_DELIVERY_PERIOD_S`. [s]
    @param min_offer_w_ Least power of an offer; 1 to `MAX_POWER_W`. [W]
    @param min_bond_wei_ Least bond of an offer. [wei]
    """
    assert staticcall registry_.has_role(operator_, _ROLE_OPERATOR), "reserve: operator lacks operator role"
    assert staticcall registry_.has_role(msg.sender, _ROLE_OPERATOR), "reserve: deployer lacks operator role"
    assert min_offer_w_ != 0 and min_offer_w_ <= MAX_POWER_W, "reserve: minimum offer out of range"
    assert penalty_permille_ <= MAX_PENALTY_PERMILLE, "reserve: penalty above limit"
    assert delivery_period_s_ != 0 and delivery_period_s_ <= MAX_DELIVERY_PERIOD_S, "reserve: delivery period out of range"
    registry = registry_
    token = token_
    operator = operator_
    penalty_permille = penalty_permille_
    delivery_period_s = delivery_period_s_
    registrar = msg.sender
    min_offer_w = min_offer_w_
    min_bond_wei = min_bond_wei_


@external
def register_provider(provider: address, bus: uint256, rating_w: uint256):
    """
    @dev Registers prosumer `provider` once, before the registry's
         start, with its feeder bus and the rating of its battery, EV
         charger or flexible load; its offers are bounded by the rating.
    @param provider A prosumer of the registry.
    @param bus Feeder bus the provider is connected at.
    @param rating_w Rating; 1 to `MAX_POWER_W`. [W]
    """
    # checks
    assert msg.sender == registrar and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "reserve: caller is not registrar"
    assert block.timestamp < staticcall registry.start_timestamp(), "reserve: registration closed"
    assert staticcall registry.has_role(provider, _ROLE_PROSUMER), "reserve: provider is not a prosumer"
    assert rating_w != 0, "reserve: zero rating"
    assert rating_w <= MAX_POWER_W, "reserve: rating above limit"
    assert self.provider_rating_w[provider] == 0, "reserve: provider registered"

    # effects
    self.provider_bus[provider] = bus
    self.provider_rating_w[provider] = rating_w
    log ProviderRegistered(provider=provider, bus=bus, rating_w=rating_w)


@external
def post_window(
    product: uint256,
    capacity_w: uint256,
    window_start_timestamp: uint256,
    window_end_timestamp: uint256,
    offer_deadline_timestamp: uint256,
    capacity_price_cap_wei_per_wh: uint256,
    activation_price_cap_wei_per_wh: uint256,
) -> uint256:
    """
    @dev Posts a reserve window and pulls its budget
         E(capacity_w, window_s) * (capacity price cap + activation
         price cap) from the operator, who must have approved this
         contract for it.
    @param product `PRODUCT_REGULATING`, `PRODUCT_SPINNING` or
           `PRODUCT_SUPPLEMENTAL`.
    @param capacity_w Reserve capacity wanted; 1 to `MAX_POWER_W`. [W]
    @param window_start_timestamp Start of the window. [s since the Unix epoch]
    @param window_end_timestamp End of the window; at most
           `MAX_WINDOW_S` after its start. [s since the Unix epoch]
    @param offer_deadline_timestamp Offers close; after this block and
           before the window. [s since the Unix epoch]
    @param capacity_price_cap_wei_per_wh Highest capacity price; 1 to
           `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    @param activation_price_cap_wei_per_wh Highest activation price; 1
           to `MAX_PRICE_WEI_PER_WH`; also prices bonds and penalties. [wei/Wh]
    @return uint256 The window's id.
    """
    # checks
    assert msg.sender == operator and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "reserve: caller is not operator"
    assert product <= PRODUCT_SUPPLEMENTAL, "reserve: unknown product"
    assert capacity_w != 0, "reserve: zero capacity"
    assert capacity_w <= MAX_POWER_W, "reserve: capacity above limit"
    assert capacity_price_cap_wei_per_wh != 0, "reserve: zero capacity price cap"
    assert capacity_price_cap_wei_per_wh <= MAX_PRICE_WEI_PER_WH, "reserve: capacity price cap above limit"
    assert activation_price_cap_wei_per_wh != 0, "reserve: zero activation price cap"
    assert activation_price_cap_wei_per_wh <= MAX_PRICE_WEI_PER_WH, "reserve: activation price cap above limit"
    assert block.timestamp < offer_deadline_timestamp, "reserve: deadline passed"
    assert offer_deadline_timestamp < window_start_timestamp, "reserve: deadline not before window"
    assert window_start_timestamp < window_end_timestamp, "reserve: empty window"
    window_s: uint256 = window_end_timestamp - window_start_timestamp
    assert window_s <= MAX_WINDOW_S, "reserve: window too long"
    energy_wh: uint256 = self._energy_wh(capacity_w, window_s)
    assert energy_wh != 0, "reserve: zero energy"

    # effects
    window_id: uint256 = self.window_count
    self.window_count = window_id + 1
    budget_wei: uint256 = energy_wh * (capacity_price_cap_wei_per_wh + activation_price_cap_wei_per_wh)
    self._windows[window_id] = Window(
        product=product,
        capacity_w=capacity_w,
        window_start_timestamp=window_start_timestamp,
        window_end_timestamp=window_end_timestamp,
        offer_deadline_timestamp=offer_deadline_timestamp,
        capacity_price_cap_wei_per_wh=capacity_price_cap_wei_per_wh,
        activation_price_cap_wei_per_wh=activation_price_cap_wei_per_wh,
        budget_wei=budget_wei,
        offer_count=0,
        awarded=False,
        awarded_p_w=0,
        activated=False,
        activated_p_w=0,
        activated_timestamp=0,
        paid_wei=0,
        penalties_wei=0,
        bonds_wei=0,
        closed=False,
    )
    log WindowPosted(
        window_id=window_id,
        product=product,
        capacity_w=capacity_w,
        window_start_timestamp=window_start_timestamp,
        window_end_timestamp=window_end_timestamp,
        offer_deadline_timestamp=offer_deadline_timestamp,
        capacity_price_cap_wei_per_wh=capacity_price_cap_wei_per_wh,
        activation_price_cap_wei_per_wh=activation_price_cap_wei_per_wh,
        budget_wei=budget_wei,
    )

    # interactions
    assert extcall token.transferFrom(msg.sender, self, budget_wei), "reserve: token transfer failed"
    return window_id


@external
def offer(
    window_id: uint256,
    p_w: uint256,
    capacity_price_wei_per_wh: uint256,
    activation_price_wei_per_wh: uint256,
    response_s: uint256,
) -> uint256:
    """
    @dev Offers the caller's reserve for `window_id` and pulls its bond
         B(p_w) = floor(E(p_w, window_s) * activation price cap *
         penalty_permille / 1000), at least `min_bond_wei`, for which
         the caller must have approved this contract.
    @param window_id The window.
    @param p_w Reserve power; `min_offer_w` to the window's capacity
           and to the provider's registered rating, and
           E(p_w, window_s) at least 1 Wh. [W]
    @param capacity_price_wei_per_wh Price of availability; 0 to the
           window's capacity price cap. [wei/Wh]
    @param activation_price_wei_per_wh Price of activated energy; 0 to
           the window's activation price cap. [wei/Wh]
    @param response_s Time the provider needs to deliver once
           activated; at most the product's longest response time. [s]
    @return uint256 The offer's index in the window.
    """
    # checks
    self._check_window(window_id)
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "reserve: caller is not a prosumer"
    rating_w: uint256 = self.provider_rating_w[msg.sender]
    assert rating_w != 0, "reserve: provider not registered"
    assert block.timestamp < self._windows[window_id].offer_deadline_timestamp, "reserve: offers closed"
    assert p_w >= min_offer_w, "reserve: power below minimum"
    assert p_w <= self._windows[window_id].capacity_w, "reserve: power above capacity"
    assert p_w <= rating_w, "reserve: power above rating"
    energy_wh: uint256 = self._energy_wh(p_w, self._window_s(window_id))
    assert energy_wh != 0, "reserve: zero energy"
    assert capacity_price_wei_per_wh <= self._windows[window_id].capacity_price_cap_wei_per_wh, "reserve: capacity price above cap"
    activation_cap: uint256 = self._windows[window_id].activation_price_cap_wei_per_wh
    assert activation_price_wei_per_wh <= activation_cap, "reserve: activation price above cap"
    assert response_s <= self._longest_response_s(self._windows[window_id].product), "reserve: response too slow"
    assert self._offer_slot[window_id][msg.sender] == 0, "reserve: offer exists"
    offer_index: uint256 = self._windows[window_id].offer_count
    assert offer_index < MAX_OFFERS, "reserve: offers full"
    bond_wei: uint256 = self._bond_wei(energy_wh, activation_cap)
    assert bond_wei >= min_bond_wei, "reserve: bond below minimum"

    # effects
    self._windows[window_id].offer_count = offer_index + 1
    self._windows[window_id].bonds_wei += bond_wei
    self._offer_slot[window_id][msg.sender] = offer_index + 1
    self._offers[window_id][offer_index] = Offer(
        provider=msg.sender,
        p_w=p_w,
        capacity_price_wei_per_wh=capacity_price_wei_per_wh,
        activation_price_wei_per_wh=activation_price_wei_per_wh,
        response_s=response_s,
        awarded_p_w=0,
        activated_p_w=0,
        delivered_wh=0,
        settled=False,
    )
    log Offered(
        window_id=window_id,
        provider=msg.sender,
        offer_index=offer_index,
        p_w=p_w,
        capacity_price_wei_per_wh=capacity_price_wei_per_wh,
        activation_price_wei_per_wh=activation_price_wei_per_wh,
        response_s=response_s,
        bond_wei=bond_wei,
    )

    # interactions
    if bond_wei != 0:
        assert extcall token.transferFrom(msg.sender, self, bond_wei), "reserve: token transfer failed"
    return offer_index


@external
def award(window_id: uint256):
    """
    @dev Ranks the window's offers by capacity price and awards them
         (rule in the header); returns each offer's bond beyond its
         awarded power.
    @param window_id The window; its offers are closed and it has not
           started.
    """
    # checks
    self._check_window(window_id)
    assert block.timestamp >= self._windows[window_id].offer_deadline_timestamp, "reserve: offers open"
    assert block.timestamp < self._windows[window_id].window_start_timestamp, "reserve: window started"
    assert not self._windows[window_id].awarded, "reserve: already awarded"

    # effects
    n: uint256 = self._windows[window_id].offer_count
    window_s: uint256 = self._window_s(window_id)
    activation_cap: uint256 = self._windows[window_id].activation_price_cap_wei_per_wh
    ranking: DynArray[uint256, MAX_OFFERS] = self._merit_order(window_id, False)
    left_w: uint256 = self._windows[window_id].capacity_w
    released_wei: DynArray[uint256, MAX_OFFERS] = []
    total_released_wei: uint256 = 0
    for rank: uint256 in range(n, bound=MAX_OFFERS):
        i: uint256 = ranking[rank]
        offered_p_w: uint256 = self._offers[window_id][i].p_w
        p_w: uint256 = min(offered_p_w, left_w)
        left_w -= p_w
        energy_wh: uint256 = self._energy_wh(p_w, window_s)
        release_wei: uint256 = self._bond_wei(self._energy_wh(offered_p_w, window_s), activation_cap) - self._bond_wei(
            energy_wh, activation_cap
        )
        released_wei.append(release_wei)
        total_released_wei += release_wei
        if p_w != 0:
            self._offers[window_id][i].awarded_p_w = p_w
        log Awarded(
            window_id=window_id,
            provider=self._offers[window_id][i].provider,
            offer_index=i,
            rank=rank,
            capacity_price_wei_per_wh=self._offers[window_id][i].capacity_price_wei_per_wh,
            offered_p_w=offered_p_w,
            p_w=p_w,
            energy_wh=energy_wh,
            bond_released_wei=release_wei,
        )
    awarded_p_w: uint256 = self._windows[window_id].capacity_w - left_w
    self._windows[window_id].awarded = True
    self._windows[window_id].awarded_p_w = awarded_p_w
    self._windows[window_id].bonds_wei -= total_released_wei
    log AwardsMade(window_id=window_id, awarded_p_w=awarded_p_w)

    # interactions
    for rank: uint256 in range(n, bound=MAX_OFFERS):
        if released_wei[rank] != 0:
            provider: address = self._offers[window_id][ranking[rank]].provider
            assert extcall token.transfer(provider, released_wei[rank]), "reserve: token transfer failed"


@external
def activate(window_id: uint256, p_w: uint256):
    """
    @dev Activates `p_w` of the window's awarded reserve by activation
         price (rule in the header); each activated award delivers from
         now plus its response time, or the window start if later, to
         the window end.
    @param window_id The window; awarded, not ended, not yet activated.
    @param p_w Power to activate; 1 to the window's capacity. [W]
    """
    # checks
    self._check_window(window_id)
    assert msg.sender == operator and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "reserve: caller is not operator"
    assert self._windows[window_id].awarded, "reserve: not awarded"
    end: uint256 = self._windows[window_id].window_end_timestamp
    assert block.timestamp < end, "reserve: window ended"
    assert not self._windows[window_id].activated, "reserve: already activated"
    assert p_w != 0, "reserve: zero power"
    assert p_w <= self._windows[window_id].capacity_w, "reserve: power above capacity"

    # effects
    n: uint256 = self._windows[window_id].offer_count
    ranking: DynArray[uint256, MAX_OFFERS] = self._merit_order(window_id, True)
    left_w: uint256 = p_w
    for rank: uint256 in range(n, bound=MAX_OFFERS):
        if left_w == 0:
            break
        i: uint256 = ranking[rank]
        awarded_p_w: uint256 = self._offers[window_id][i].awarded_p_w
        if awarded_p_w == 0:
            continue
        provider: address = self._offers[window_id][i].provider
        from_timestamp: uint256 = self._from_timestamp(window_id, block.timestamp, self._offers[window_id][i].response_s)
        activated_p_w: uint256 = min(awarded_p_w, left_w)
        energy_wh: uint256 = 0
        if from_timestamp < end:
            energy_wh = self._energy_wh(activated_p_w, end - from_timestamp)
        if energy_wh == 0:
            log ActivationSkipped(window_id=window_id, provider=provider, offer_index=i, from_timestamp=from_timestamp)
            continue
        left_w -= activated_p_w
        self._offers[window_id][i].activated_p_w = activated_p_w
        log Activated(
            window_id=window_id,
            provider=provider,
            offer_index=i,
            p_w=activated_p_w,
            from_timestamp=from_timestamp,
            energy_wh=energy_wh,
        )
    self._windows[window_id].activated = True
    self._windows[window_id].activated_p_w = p_w - left_w
    self._windows[window_id].activated_timestamp = block.timestamp
    log ActivationsMade(window_id=window_id, p_w=p_w, activated_p_w=p_w - left_w)


@external
def post_delivery(window_id: uint256, delivered_wh: uint256):
    """
    @dev Posts the delivered reserve energy of the caller's prosumer and
         settles its activated award (rule in the header): the payments
         and the rest of the bond go to the provider.
    @param window_id The window; it has ended and its delivery period
           not.
    @param delivered_wh Energy of the provider's measured response from
           its activation's `from` to the window end against its
           baseline; at most `MAX_ENERGY_WH`. [Wh]
    """
    # checks
    self._check_window(window_id)
    provider: address = staticcall registry.prosumer_of_meter(msg.sender)
    assert provider != empty(address), "reserve: caller is not a bound meter"
    slot: uint256 = self._offer_slot[window_id][provider]
    assert slot != 0 and self._offers[window_id][slot - 1].activated_p_w != 0, "reserve: provider not activated"
    end: uint256 = self._windows[window_id].window_end_timestamp
    assert block.timestamp >= end, "reserve: window not ended"
    assert block.timestamp < end + delivery_period_s, "reserve: delivery closed"
    assert not self._offers[window_id][slot - 1].settled, "reserve: delivery posted"
    assert delivered_wh <= MAX_ENERGY_WH, "reserve: delivery above limit"

    # effects
    payout_wei: uint256 = self._settle(window_id, slot - 1, delivered_wh, msg.sender)

    # interactions
    if payout_wei != 0:
        assert extcall token.transfer(provider, payout_wei), "reserve: token transfer failed"


@external
def close(window_id: uint256):
    """
    @dev Settles every award not yet settled (an activated one at zero
         delivery), shares the penalty pool among the awards (rule in
         the header) and pays the operator the unspent budget; for a
         lapsed window (never awarded) returns every bond and the whole
         budget.
    @param window_id The window; its delivery period has ended, or it
           lapsed and has started.
    """
    # checks
    self._check_window(window_id)
    awarded: bool = self._windows[window_id].awarded
    if awarded:
        assert block.timestamp >= self._delivery_deadline_timestamp(window_id), "reserve: delivery open"
    else:
        assert block.timestamp >= self._windows[window_id].window_start_timestamp, "reserve: award open"
    assert not self._windows[window_id].closed, "reserve: already closed"

    # effects
    self._windows[window_id].closed = True
    n: uint256 = self._windows[window_id].offer_count
    window_s: uint256 = self._window_s(window_id)
    payouts_wei: DynArray[uint256, MAX_OFFERS] = []
    availabilities_wh: DynArray[uint256, MAX_OFFERS] = []
    total_availability_wh: uint256 = 0
    for i: uint256 in range(n, bound=MAX_OFFERS):
        payout_wei: uint256 = 0
        if awarded:
            if self._offers[window_id][i].awarded_p_w != 0 and not self._offers[window_id][i].settled:
                payout_wei = self._settle(window_id, i, 0, empty(address))
            availability_wh: uint256 = self._availability_wh(window_id, i, window_s)
            availabilities_wh.append(availability_wh)
            total_availability_wh += availability_wh
        else:
            payout_wei = self._bond_wei(
                self._energy_wh(self._offers[window_id][i].p_w, window_s),
                self._windows[window_id].activation_price_cap_wei_per_wh,
            )
            log BondReturned(window_id=window_id, provider=self._offers[window_id][i].provider, bond_wei=payout_wei)
        payouts_wei.append(payout_wei)
    window_: Window = self._windows[window_id]
    shared_wei: uint256 = 0
    if awarded:
        pool_wei: uint256 = self.penalty_reserve_wei + window_.penalties_wei
        if total_availability_wh != 0:
            for i: uint256 in range(n, bound=MAX_OFFERS):
                share_wei: uint256 = pool_wei * availabilities_wh[i] // total_availability_wh
                if share_wei != 0:
                    payouts_wei[i] += share_wei
                    shared_wei += share_wei
                    log PenaltyShared(window_id=window_id, provider=self._offers[window_id][i].provider, share_wei=share_wei)
        self.penalty_reserve_wei = pool_wei - shared_wei
    refund_wei: uint256 = window_.budget_wei - window_.paid_wei
    self._windows[window_id].bonds_wei = 0
    log Closed(
        window_id=window_id,
        paid_wei=window_.paid_wei,
        penalties_wei=window_.penalties_wei,
        operator_refund_wei=refund_wei,
        shared_wei=shared_wei,
        reserve_wei=self.penalty_reserve_wei,
    )

    # interactions
    for i: uint256 in range(n, bound=MAX_OFFERS):
        if payouts_wei[i] != 0:
            provider: address = self._offers[window_id][i].provider
            assert extcall token.transfer(provider, payouts_wei[i]), "reserve: token transfer failed"
    if refund_wei != 0:
        assert extcall token.transfer(operator, refund_wei), "reserve: token transfer failed"


@external
@view
def window(window_id: uint256) -> Window:
    """
    @dev Window `window_id` with its running totals.
    @param window_id The window.
    @return Window The stored window.
    """
    self._check_window(window_id)
    return self._windows[window_id]


@external
@view
def offers(window_id: uint256) -> DynArray[Offer, MAX_OFFERS]:
    """
    @dev Every offer of `window_id` in offer order, with its award,
         activation and settlement.
    @param window_id The window.
    @return DynArray The offers.
    """
    self._check_window(window_id)
    result: DynArray[Offer, MAX_OFFERS] = []
    for i: uint256 in range(self._windows[window_id].offer_count, bound=MAX_OFFERS):
        result.append(self._offers[window_id][i])
    return result


@external
@view
def held_wei(window_id: uint256) -> uint256:
    """
    @dev Tokens this contract holds for `window_id`: unspent budget,
         penalties not yet shared and bonds; 0 once closed.
    @param window_id The window.
    @return uint256 The tokens held. [wei]
    """
    self._check_window(window_id)
    window_: Window = self._windows[window_id]
    if window_.closed:
        return 0
    return window_.budget_wei - window_.paid_wei + window_.penalties_wei + window_.bonds_wei


@external
@view
def delivery_deadline_timestamp(window_id: uint256) -> uint256:
    """
    @dev End of the delivery period of `window_id`; `close` of an
         awarded window opens then.
    @param window_id The window.
    @return uint256 Window end plus `delivery_period_s`. [s since the Unix epoch]
    """
    self._check_window(window_id)
    return self._delivery_deadline_timestamp(window_id)


@internal
def _settle(window_id: uint256, index: uint256, delivered_wh: uint256, meter: address) -> uint256:
    """
    @dev Settles the award of offer `index` of `window_id` at
         `delivered_wh` (rule in the header) and books the flows on the
         window.
    @param window_id The window.
    @param index The awarded, unsettled offer.
    @param delivered_wh Delivered energy; ignored unless activated. [Wh]
    @param meter The posting meter; the zero address at `close`.
    @return uint256 Payments plus bond refund due to the provider. [wei]
    """
    offer_: Offer = self._offers[window_id][index]
    activation_cap: uint256 = self._windows[window_id].activation_price_cap_wei_per_wh
    awarded_wh: uint256 = self._energy_wh(offer_.awarded_p_w, self._window_s(window_id))
    capacity_wei: uint256 = awarded_wh * offer_.capacity_price_wei_per_wh
    energy_wei: uint256 = 0
    penalty_wei: uint256 = 0
    if offer_.activated_p_w != 0:
        activated_wh: uint256 = self._activated_wh(window_id, offer_)
        paid_wh: uint256 = min(delivered_wh, activated_wh)
        capacity_wei = capacity_wei * paid_wh // activated_wh
        energy_wei = paid_wh * offer_.activation_price_wei_per_wh
        penalty_wei = self._bond_wei(activated_wh - paid_wh, activation_cap)
    bond_wei: uint256 = self._bond_wei(awarded_wh, activation_cap)
    self._offers[window_id][index].delivered_wh = delivered_wh
    self._offers[window_id][index].settled = True
    self._windows[window_id].paid_wei += capacity_wei + energy_wei
    self._windows[window_id].penalties_wei += penalty_wei
    self._windows[window_id].bonds_wei -= bond_wei
    log Settled(
        window_id=window_id,
        provider=offer_.provider,
        meter=meter,
        delivered_wh=delivered_wh,
        capacity_payment_wei=capacity_wei,
        energy_payment_wei=energy_wei,
        penalty_wei=penalty_wei,
        bond_refund_wei=bond_wei - penalty_wei,
    )
    return capacity_wei + energy_wei + bond_wei - penalty_wei


@internal
@view
def _merit_order(window_id: uint256, by_activation_price: bool) -> DynArray[uint256, MAX_OFFERS]:
    """
    @dev Offer indices of `window_id` by capacity price, or activation
         price, ascending; equal prices keep offer order.
    @param window_id The window.
    @param by_activation_price True to rank by activation price.
    @return DynArray The offer indices, cheapest first.
    """
    prices: DynArray[uint256, MAX_OFFERS] = []
    ranking: DynArray[uint256, MAX_OFFERS] = []
    # Insertion sort, stable: a new offer moves ahead only of offers
    # with a strictly higher price.
    for i: uint256 in range(self._windows[window_id].offer_count, bound=MAX_OFFERS):
        if by_activation_price:
            prices.append(self._offers[window_id][i].activation_price_wei_per_wh)
        else:
            prices.append(self._offers[window_id][i].capacity_price_wei_per_wh)
        ranking.append(i)
        j: uint256 = i
        for _: uint256 in range(i, bound=MAX_OFFERS):
            ahead: uint256 = ranking[j - 1]
            if prices[ahead] <= prices[i]:
                break
            ranking[j] = ahead
            j -= 1
            ranking[j] = i
            if j == 0:
                break
    return ranking


@internal
@view
def _availability_wh(window_id: uint256, index: uint256, window_s: uint256) -> uint256:
    """
    @dev Availability A the award of offer `index` was paid for: its
         awarded energy, cut pro rata to its paid energy if activated;
         0 without an award. [Wh]
    @param window_id The window.
    @param index The offer; settled if awarded.
    @param window_s Length of the window. [s]
    @return uint256 E_aw, or floor(E_aw * min(d, E_act) / E_act) if activated. [Wh]
    """
    offer_: Offer = self._offers[window_id][index]
    awarded_wh: uint256 = self._energy_wh(offer_.awarded_p_w, window_s)
    if offer_.activated_p_w == 0:
        return awarded_wh
    activated_wh: uint256 = self._activated_wh(window_id, offer_)
    return awarded_wh * min(offer_.delivered_wh, activated_wh) // activated_wh


@internal
@view
def _activated_wh(window_id: uint256, offer_: Offer) -> uint256:
    """
    @dev Activated energy E_act of an activated award of `window_id`,
         from the activation plus its response time (the window start at
         the earliest) to the window end;
         > 0, as `activate` skips awards that would deliver none. [Wh]
    @param window_id The window; activated.
    @param offer_ The activated offer.
    @return uint256 E(p_act, end - max(activation + response_s, start)). [Wh]
    """
    from_timestamp: uint256 = self._from_timestamp(window_id, self._windows[window_id].activated_timestamp,
                                                   offer_.response_s)
    return self._energy_wh(offer_.activated_p_w, self._windows[window_id].window_end_timestamp - from_timestamp)


@internal
@view
def _from_timestamp(window_id: uint256, activated_timestamp: uint256, response_s: uint256) -> uint256:
    """
    @dev When an award activated at `activated_timestamp` starts to
         deliver: its response time later, not before the window start.
    @param window_id The window.
    @param activated_timestamp When the window was activated.
    @param response_s The award's response time. [s]
    @return uint256 max(activated_timestamp + response_s, window start).
    """
    return max(activated_timestamp + response_s, self._windows[window_id].window_start_timestamp)


@internal
@pure
def _longest_response_s(product: uint256) -> uint256:
    """
    @dev Longest response time an offer for `product` may promise. [s]
    @param product A known product.
    @return uint256 The product's longest response time. [s]
    """
    if product == PRODUCT_REGULATING:
        return REGULATING_RESPONSE_S
    if product == PRODUCT_SPINNING:
        return SPINNING_RESPONSE_S
    return SUPPLEMENTAL_RESPONSE_S


@internal
@view
def _check_window(window_id: uint256):
    """
    @dev Reverts unless `window_id` has been posted.
    @param window_id The window.
    """
    assert window_id < self.window_count, "reserve: unknown window"


@internal
@view
def _window_s(window_id: uint256) -> uint256:
    """
    @dev Length of window `window_id`. [s]
    @param window_id The window.
    @return uint256 Window end minus window start. [s]
    """
    return self._windows[window_id].window_end_timestamp - self._windows[window_id].window_start_timestamp


@internal
@view
def _delivery_deadline_timestamp(window_id: uint256) -> uint256:
    """
    @dev End of the delivery period of `window_id`. [s since the Unix epoch]
    @param window_id The window.
    @return uint256 Window end plus `delivery_period_s`.
    """
    return self._windows[window_id].window_end_timestamp + delivery_period_s


@internal
@pure
def _energy_wh(p_w: uint256, duration_s: uint256) -> uint256:
    """
    @dev Energy E(p, s) of `p_w` held over `duration_s`, rounded down. [Wh]
    @param p_w Power. [W]
    @param duration_s Duration. [s]
    @return uint256 floor(p_w * duration_s / 3600). [Wh]
    """
    return p_w * duration_s // _S_PER_H


@internal
@view
def _bond_wei(energy_wh: uint256, activation_cap_wei_per_wh: uint256) -> uint256:
    """
    @dev Bond of, and penalty for an activated shortfall of,
         `energy_wh` at the window's activation price cap, rounded
         down. [wei]
    @param energy_wh Energy. [Wh]
    @param activation_cap_wei_per_wh The window's activation price cap. [wei/Wh]
    @return uint256 floor(energy_wh * cap * penalty_permille / 1000). [wei]
    """
    return energy_wh * activation_cap_wei_per_wh * penalty_permille // _PERMILLE
