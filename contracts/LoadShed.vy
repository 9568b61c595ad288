# pragma version ~=0.4.3
"""
@title Load Shed Service of Interruptible Loads
@custom:contract-name load shed
@license BSD-3-Clause
@notice The operator runs programmes of interruptible loads, after
        the load shed service for imports (LSSi) of the ancillary
        services a system operator buys and the interruptible-load
        programmes it is run with (ERCOT's Load Resources and Emergency
        Response Service in Texas): loads enrol ahead with the power
        they can drop, their notice time, how often a day they may be
        called and their prices; when the feeder's import must fall,
        the operator calls the cheapest loads per Wh for an event; each
        called load's meter posts the energy it shed, which is paid, and
        a shortfall costs part of the load's bond.
        Registration: before the registry's start the deployer (the
        registrar, an operator of the registry) registers each
        interruptible load once with the facts it cannot declare
        itself: its feeder bus and the interruptible part of its load,
        `max_shed_w`. An enrolment may not shed more, must shed at least
        `min_shed_w` and posts a bond of at least `min_bond_wei`, so a
        flood of tiny enrolments costs real bonds and needs registered
        loads.
        Phases of programme g (timestamps of the programme):
        - before `enrol_deadline_timestamp`: registered prosumers `enrol`
          once each;
        - [start, end): the operator `call`s events [from, to) with
          from >= the call's block;
        - [to, to + `delivery_period_s`) of an event: the meter bound to
          each called load calls `post_delivery` once;
        - from to + `delivery_period_s` on: anyone calls `settle_event`
          once per event;
        - from end + `delivery_period_s` on, every event settled: anyone
          calls `close_programme` once. Closing does not settle events
          itself, so that its gas is bounded by the enrolments alone.
        Roles: the operator fixed at deployment must hold the registry's
        operator role at deployment and whenever it posts a programme or
        calls an event; the registry never lets it hold the meter or
        prosumer role, so it can neither enrol nor post a delivery. Only
        the meter bound to a load posts its delivery, and bindings are
        frozen from the market's start (see `Registry.vy`).
        Functions:
        - `register_load`, `post_programme`, `enrol`, `call`,
          `post_delivery`, `settle_event`, `close_programme` (`external`
          functions),
        - `programme`, `enrolments`, `shed_event`, `called_loads`,
          `held_wei`, `delivery_deadline_timestamp`, `programme_count`,
          `event_count`, `penalty_reserve_wei`, `load_bus`,
          `load_max_shed_w` (`external` `view` functions).
        Units: power p [W]; energy E(p, s) = floor(p * s / 3600) [Wh]
        over s seconds; prices [wei/Wh] of shed energy and [wei] per
        event; the penalty factor [1/1000].
        Escrow: `post_programme` pulls the budget from the operator;
        `enrol` pulls the bond max(floor(E(shed_w, max_event_s) * energy
        price cap * penalty_permille / 1000), `min_bond_wei`) from the
        load: the programme's cap, not the load's price, so bidding 0
        does not zero the bond.
        Call rule: an event of length s = to - from asks for `shed_w`.
        Enrolment i is eligible if E_i = E(shed_w_i, s) > 0, its
        notice_s_i <= from - block.timestamp, it has fewer than
        max_events_per_day_i events on the programme day of `from`
        (day = (from - start) // 86400; an event counts on the day it
        starts), `from` is at or after the end of its latest call (so
        its events never overlap), and its bond less its penalties and
        less the full-shortfall penalties of its unsettled calls covers
        the full-shortfall penalty of this event,
        floor(E_i * energy price cap * penalty_permille / 1000).
        Eligible enrolments rank by cost per Wh c_i / E_i ascending, with
        c_i = price_per_event_i + price_per_wh_i * E_i, compared exactly
        as c_a * E_b < c_b * E_a; equal ratios keep enrolment order. In
        rank order each whose c_i the unreserved budget still covers is
        called whole (it sheds its whole shed_w_i) and reserves c_i of
        the budget, until the called power reaches `shed_w` or no
        enrolment is left: the last called load may overshoot and the
        event may fall short, which `EventCalled` logs. A call that
        calls nobody reverts, so every event has a called load.
        Settlement of a called load with delivered energy d [Wh] (the
        energy its meter measured below its baseline over the event,
        computed by the grid side), at `post_delivery`, or with d = 0 at
        `settle_event` for a load without a delivery: w = min(d, E_i);
        payment floor(price_per_event_i * w / E_i) + w * price_per_wh_i
        (the event fee pro rata to compliance) from the budget to the
        load at once; shortfall E_i - w; penalty floor((E_i - w) *
        energy price cap * penalty_permille / 1000) from the load's bond
        into the programme's penalty pool, always covered as the call
        set it aside; c_i - payment back to the unreserved budget.
        Penalty rule: penalties never go to the operator, who decides
        the calls. At `close_programme` the pool P = the programme's
        penalties + `penalty_reserve_wei` is shared among its
        enrolments pro rata to what each was paid over the programme,
        floor(P * paid_i / sum paid); what is left (rounding, or all of
        P when nobody was paid) becomes the new `penalty_reserve_wei`,
        carried to the next programme closed. Each load gets its bond
        less its penalties back; the operator gets the unspent budget.
        Invariant: this contract's token balance equals the sum of
        `held_wei` over all programmes plus `penalty_reserve_wei`; a
        closed programme holds nothing.
        Tokens move only by `transfer` and `transferFrom` of `token`.
@custom:security The registrar's load facts and the meters' delivered
                 energies are trusted as posted (within the registry's
                 separation of duties). The operator decides when and
                 how much to call but not whom: the call rule picks the
                 loads, and it pays only from its own budget. Enrolments
                 are public, so a late enrolment may undercut an earlier
                 one, and `MAX_ENROLMENTS` enrolments fill a programme,
                 each locking at least `min_bond_wei` until the close. A
                 load called for an event is skipped for any event
                 starting before its latest call's end, even one that
                 would not overlap. The operator account is fixed at
                 deployment; its registry operator role is checked at
                 deployment and on every programme and call. Arrays
                 longer than their bound, timestamps so large that a
                 deadline overflows uint256, and a penalty pool above
                 about 10**41 wei (whose share pool * paid_i, paid_i at
                 most `MAX_BUDGET_WEI`, overflows) revert without a
                 reason string.
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


# @dev Seconds per programme day, counting events per day.
_S_PER_DAY: constant(uint256) = 86400


# @dev Denominator of `penalty_permille`.
_PERMILLE: constant(uint256) = 1000


# @dev Most enrolments one programme takes, and so most loads one event calls.
MAX_ENROLMENTS: public(constant(uint256)) = 64


# @dev Largest interruptible, enrolled or requested power. [W]
MAX_POWER_W: public(constant(uint256)) = 10**9


# @dev Longest programme, from start to end. [s]
MAX_PROGRAMME_S: public(constant(uint256)) = 366 * 86400


# @dev Longest event a programme may allow. [s]
MAX_EVENT_S: public(constant(uint256)) = 86400


# @dev Longest notice an enrolment may ask for. [s]
MAX_NOTICE_S: public(constant(uint256)) = 86400


# @dev Most events per programme day an enrolment may accept.
MAX_EVENTS_PER_DAY: public(constant(uint256)) = 24


# @dev Largest energy price cap of a programme. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Largest per-event price cap of a programme. [wei]
MAX_PRICE_PER_EVENT_WEI: public(constant(uint256)) = 10**30


# @dev Largest budget of a programme. [wei]
MAX_BUDGET_WEI: public(constant(uint256)) = 10**36


# @dev Largest delivered energy a meter may post. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest penalty factor the constructor accepts. [1/1000]
MAX_PENALTY_PERMILLE: public(constant(uint256)) = 10_000


# @dev Longest delivery period the constructor accepts. [s]
MAX_DELIVERY_PERIOD_S: public(constant(uint256)) = 7 * 86400


# @dev One programme with its running totals; `reserved_wei` is the
# budget set aside for unsettled calls, `bonds_wei` the bonds held
# (less penalties), `open_calls` the called loads not yet settled.
struct Programme:
    start_timestamp: uint256
    end_timestamp: uint256
    enrol_deadline_timestamp: uint256
    max_event_s: uint256
    price_per_event_cap_wei: uint256
    price_per_wh_cap_wei: uint256
    budget_wei: uint256
    enrolment_count: uint256
    reserved_wei: uint256
    paid_wei: uint256
    penalties_wei: uint256
    bonds_wei: uint256
    open_calls: uint256
    closed: bool


# @dev One load's enrolment with its running totals; `committed_wei`
# is the full-shortfall penalty of its unsettled calls, `busy_until_timestamp`
# the end of its latest call (0 before any).
struct Enrolment:
    load: address
    bus: uint256
    shed_w: uint256
    notice_s: uint256
    max_events_per_day: uint256
    price_per_event_wei: uint256
    price_per_wh_wei: uint256
    bond_wei: uint256
    committed_wei: uint256
    penalties_wei: uint256
    paid_wei: uint256
    busy_until_timestamp: uint256


# @dev One event called in a programme; `called_w` may fall short of
# or overshoot `shed_w`.
struct ShedEvent:
    programme_id: uint256
    shed_w: uint256
    from_timestamp: uint256
    to_timestamp: uint256
    called_w: uint256
    call_count: uint256
    settled: bool


# @dev One load called for an event as stored: its enrolment and, once
# settled, its delivered energy (0 until then). Its power, energy,
# reservation, payment and penalty follow from the enrolment and the
# event, so a call writes one slot per load and a settlement two.
struct CallRecord:
    enrol_index: uint256
    delivered_wh: uint256
    settled: bool


# @dev One load called for an event, with its settlement, as
# `called_loads` returns it: `shed_w` its enrolled power, `energy_wh`
# E(shed_w, event length), `reserved_wei` its cost c.
struct CalledLoad:
    load: address
    enrol_index: uint256
    shed_w: uint256
    energy_wh: uint256
    reserved_wei: uint256
    delivered_wh: uint256
    payment_wei: uint256
    penalty_wei: uint256
    settled: bool


# @dev Registry of prosumer roles and meter bindings.
registry: public(immutable(Registry))


# @dev Token the budgets, payments and bonds are paid in.
token: public(immutable(IERC20))


# @dev The only account that posts programmes and calls events; receives
# the unspent budgets.
operator: public(immutable(address))


# @dev Penalty per Wh of shortfall, and bond per Wh of the longest
# event, as a multiple of the programme's energy price cap. [1/1000]
penalty_permille: public(immutable(uint256))


# @dev How long after an event ends meters may post deliveries. [s]
delivery_period_s: public(immutable(uint256))


# @dev The deployer; registers the loads before the registry's start.
registrar: public(immutable(address))


# @dev Least power an enrolment may shed. [W]
min_shed_w: public(immutable(uint256))


# @dev Least bond an enrolment posts. [wei]
min_bond_wei: public(immutable(uint256))


# @dev Feeder bus of each registered load.
load_bus: public(HashMap[address, uint256])


# @dev Interruptible power of each registered load; 0 if unregistered. [W]
load_max_shed_w: public(HashMap[address, uint256])


# @dev Penalties not yet shared, carried to the next programme closed. [wei]
penalty_reserve_wei: public(uint256)


# @dev Number of programmes ever posted; the next programme's id.
programme_count: public(uint256)


# @dev Number of events ever called, over all programmes; the next event's id.
event_count: public(uint256)


# @dev Every programme by id.
_programmes: HashMap[uint256, Programme]


# @dev Enrolments of each programme by enrolment index.
_enrolments: HashMap[uint256, HashMap[uint256, Enrolment]]


# @dev Enrolment index + 1 of each load in each programme; 0 if not enrolled.
_enrol_slot: HashMap[uint256, HashMap[address, uint256]]


# @dev Events of each enrolment (programme, enrolment index) on each
# programme day.
_events_on_day: HashMap[uint256, HashMap[uint256, HashMap[uint256, uint256]]]


# @dev Every event by id.
_events: HashMap[uint256, ShedEvent]


# @dev Called loads of each event, in call order.
_called: HashMap[uint256, HashMap[uint256, CallRecord]]


# @dev Call index + 1 of each load in each event; 0 if not called.
_called_slot: HashMap[uint256, HashMap[address, uint256]]


# @dev Emitted when the registrar registers `load` at `bus` with its
# interruptible power.
event LoadRegistered:
    load: indexed(address)
    bus: uint256
    max_shed_w: uint256


# @dev Emitted when the operator posts programme `programme_id` and
# escrows `budget_wei`.
event ProgrammePosted:
    programme_id: indexed(uint256)
    start_timestamp: uint256
    end_timestamp: uint256
    enrol_deadline_timestamp: uint256
    max_event_s: uint256
    price_per_event_cap_wei: uint256
    price_per_wh_cap_wei: uint256
    budget_wei: uint256


# @dev Emitted when `load` enrols at its registered bus and escrows `bond_wei`.
event Enrolled:
    programme_id: indexed(uint256)
    load: indexed(address)
    enrol_index: uint256
    bus: uint256
    shed_w: uint256
    notice_s: uint256
    max_events_per_day: uint256
    price_per_event_wei: uint256
    price_per_wh_wei: uint256
    bond_wei: uint256


# @dev Emitted per called load, in merit order, when an event is called.
event Called:
    event_id: indexed(uint256)
    load: indexed(address)
    enrol_index: uint256
    shed_w: uint256
    energy_wh: uint256
    reserved_wei: uint256


# @dev Emitted after the `Called` events of an event.
event EventCalled:
    event_id: indexed(uint256)
    programme_id: indexed(uint256)
    shed_w: uint256
    called_w: uint256
    call_count: uint256
    from_timestamp: uint256
    to_timestamp: uint256


# @dev Emitted when a called load is settled; `meter` is the zero
# address for a load settled by `settle_event` without a delivery;
# `released_wei` goes back to the unreserved budget.
event Settled:
    event_id: indexed(uint256)
    load: indexed(address)
    meter: indexed(address)
    delivered_wh: uint256
    payment_wei: uint256
    penalty_wei: uint256
    released_wei: uint256


# @dev Emitted when `settle_event` closes an event's deliveries.
event EventSettled:
    event_id: indexed(uint256)
    settled_count: uint256


# @dev Emitted per enrolment when its programme is closed: the bond
# less penalties and the share of the penalty pool paid to `load`.
event BondReturned:
    programme_id: indexed(uint256)
    load: indexed(address)
    bond_refund_wei: uint256
    share_wei: uint256


# @dev Emitted when a programme is closed: the operator is refunded the
# unspent budget, `shared_wei` of the penalty pool went to the loads and
# `reserve_wei` is the reserve carried on.
event ProgrammeClosed:
    programme_id: indexed(uint256)
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
    min_shed_w_: uint256,
    min_bond_wei_: uint256,
):
    """
    @dev The deployer becomes the registrar; it must hold the
         registry's operator role.
    @param registry_ The market's role registry.
    @param token_ The settlement token.
    @param operator_ Account that posts programmes and calls events;
           holds the registry's operator role.
    @param penalty_permille_ Penalty per Wh of shortfall as a multiple
           of a programme's energy price cap; at most
           `MAX_PENALTY_PERMILLE`. [1/1000]
    @param delivery_period_s_ Time meters have after an event to post;
           1 to `MAX_DELIVERY_PERIOD_S`. [s]
    @param min_shed_w_ Least power of an enrolment; 1 to `MAX_POWER_W`. [W]
    @param min_bond_wei_ Least bond of an enrolment. [wei]
    """
    assert staticcall registry_.has_role(operator_, _ROLE_OPERATOR), "load shed: operator lacks operator role"
    assert staticcall registry_.has_role(msg.sender, _ROLE_OPERATOR), "load shed: deployer lacks operator role"
    assert min_shed_w_ != 0 and min_shed_w_ <= MAX_POWER_W, "load shed: minimum shed out of range"
    assert penalty_permille_ <= MAX_PENALTY_PERMILLE, "load shed: penalty above limit"
    assert delivery_period_s_ != 0 and delivery_period_s_ <= MAX_DELIVERY_PERIOD_S, "load shed: delivery period out of range"
    registry = registry_
    token = token_
    operator = operator_
    penalty_permille = penalty_permille_
    delivery_period_s = delivery_period_s_
    registrar = msg.sender
    min_shed_w = min_shed_w_
    min_bond_wei = min_bond_wei_


@external
def register_load(load: address, bus: uint256, max_shed_w: uint256):
    """
    @dev Registers prosumer `load` once, before the registry's start,
         with its feeder bus and the interruptible part of its load
         (from the scenario); its enrolments use them.
    @param load A prosumer of the registry.
    @param bus Feeder bus the load is connected at.
    @param max_shed_w Interruptible power; 1 to `MAX_POWER_W`. [W]
    """
    # checks
    assert msg.sender == registrar and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "load shed: caller is not registrar"
    assert block.timestamp < staticcall registry.start_timestamp(), "load shed: registration closed"
    assert staticcall registry.has_role(load, _ROLE_PROSUMER), "load shed: load is not a prosumer"
    assert max_shed_w != 0, "load shed: zero maximum shed"
    assert max_shed_w <= MAX_POWER_W, "load shed: maximum shed above limit"
    assert self.load_max_shed_w[load] == 0, "load shed: load registered"

    # effects
    self.load_bus[load] = bus
    self.load_max_shed_w[load] = max_shed_w
    log LoadRegistered(load=load, bus=bus, max_shed_w=max_shed_w)


@external
def post_programme(
    start_timestamp: uint256,
    end_timestamp: uint256,
    enrol_deadline_timestamp: uint256,
    max_event_s: uint256,
    price_per_event_cap_wei: uint256,
    price_per_wh_cap_wei: uint256,
    budget_wei: uint256,
) -> uint256:
    """
    @dev Posts a programme and pulls its budget from the operator, who
         must have approved this contract for it.
    @param start_timestamp Events start at or after it. [s since the Unix epoch]
    @param end_timestamp Events end at or before it; at most
           `MAX_PROGRAMME_S` after the start. [s since the Unix epoch]
    @param enrol_deadline_timestamp Enrolment closes; after this block and
           at or before the start. [s since the Unix epoch]
    @param max_event_s Longest event; 1 to `MAX_EVENT_S`. [s]
    @param price_per_event_cap_wei Highest per-event price; at most
           `MAX_PRICE_PER_EVENT_WEI`. [wei]
    @param price_per_wh_cap_wei Highest energy price, and the price of
           bonds and penalties; 1 to `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    @param budget_wei Most the programme pays; 1 to `MAX_BUDGET_WEI`. [wei]
    @return uint256 The programme's id.
    """
    # checks
    assert msg.sender == operator and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "load shed: caller is not operator"
    assert block.timestamp < enrol_deadline_timestamp, "load shed: deadline passed"
    assert enrol_deadline_timestamp <= start_timestamp, "load shed: deadline after start"
    assert start_timestamp < end_timestamp, "load shed: empty programme"
    assert end_timestamp - start_timestamp <= MAX_PROGRAMME_S, "load shed: programme too long"
    assert max_event_s != 0, "load shed: zero event length"
    assert max_event_s <= MAX_EVENT_S, "load shed: event length above limit"
    assert price_per_event_cap_wei <= MAX_PRICE_PER_EVENT_WEI, "load shed: event price cap above limit"
    assert price_per_wh_cap_wei != 0, "load shed: zero energy price cap"
    assert price_per_wh_cap_wei <= MAX_PRICE_WEI_PER_WH, "load shed: energy price cap above limit"
    assert budget_wei != 0, "load shed: zero budget"
    assert budget_wei <= MAX_BUDGET_WEI, "load shed: budget above limit"

    # effects
    programme_id: uint256 = self.programme_count
    self.programme_count = programme_id + 1
    self._programmes[programme_id] = Programme(
        start_timestamp=start_timestamp,
        end_timestamp=end_timestamp,
        enrol_deadline_timestamp=enrol_deadline_timestamp,
        max_event_s=max_event_s,
        price_per_event_cap_wei=price_per_event_cap_wei,
        price_per_wh_cap_wei=price_per_wh_cap_wei,
        budget_wei=budget_wei,
        enrolment_count=0,
        reserved_wei=0,
        paid_wei=0,
        penalties_wei=0,
        bonds_wei=0,
        open_calls=0,
        closed=False,
    )
    log ProgrammePosted(
        programme_id=programme_id,
        start_timestamp=start_timestamp,
        end_timestamp=end_timestamp,
        enrol_deadline_timestamp=enrol_deadline_timestamp,
        max_event_s=max_event_s,
        price_per_event_cap_wei=price_per_event_cap_wei,
        price_per_wh_cap_wei=price_per_wh_cap_wei,
        budget_wei=budget_wei,
    )

    # interactions
    assert extcall token.transferFrom(msg.sender, self, budget_wei), "load shed: token transfer failed"
    return programme_id


@external
def enrol(
    programme_id: uint256,
    shed_w: uint256,
    notice_s: uint256,
    max_events_per_day: uint256,
    price_per_event_wei: uint256,
    price_per_wh_wei: uint256,
) -> uint256:
    """
    @dev Enrols the caller's registered load in `programme_id` at its
         registered bus and pulls its bond (rule in the header), for
         which the caller must have approved this contract.
    @param programme_id The programme.
    @param shed_w Power the load drops when called; `min_shed_w` to its
           registered `max_shed_w`, and at least 1 Wh over the
           programme's longest event. [W]
    @param notice_s Least time between a call and the event's start the
           load needs; at most `MAX_NOTICE_S`. [s]
    @param max_events_per_day Most events per programme day; 1 to
           `MAX_EVENTS_PER_DAY`.
    @param price_per_event_wei Price of one event shed in full; at most
           the programme's cap. [wei]
    @param price_per_wh_wei Price of shed energy; at most the
           programme's cap. [wei/Wh]
    @return uint256 The enrolment's index in the programme.
    """
    # checks
    self._check_programme(programme_id)
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "load shed: caller is not a prosumer"
    max_shed_w: uint256 = self.load_max_shed_w[msg.sender]
    assert max_shed_w != 0, "load shed: load not registered"
    programme_: Programme = self._programmes[programme_id]
    assert block.timestamp < programme_.enrol_deadline_timestamp, "load shed: enrolment closed"
    assert self._enrol_slot[programme_id][msg.sender] == 0, "load shed: load enrolled"
    enrol_index: uint256 = programme_.enrolment_count
    assert enrol_index < MAX_ENROLMENTS, "load shed: programme full"
    assert shed_w >= min_shed_w, "load shed: shed below minimum"
    assert shed_w <= max_shed_w, "load shed: shed above maximum"
    longest_wh: uint256 = self._energy_wh(shed_w, programme_.max_event_s)
    assert longest_wh != 0, "load shed: zero energy"
    assert notice_s <= MAX_NOTICE_S, "load shed: notice above limit"
    assert max_events_per_day != 0, "load shed: zero events per day"
    assert max_events_per_day <= MAX_EVENTS_PER_DAY, "load shed: events per day above limit"
    assert price_per_event_wei <= programme_.price_per_event_cap_wei, "load shed: event price above cap"
    assert price_per_wh_wei <= programme_.price_per_wh_cap_wei, "load shed: energy price above cap"

    # effects
    bond_wei: uint256 = max(self._penalty_wei(longest_wh, programme_.price_per_wh_cap_wei), min_bond_wei)
    bus: uint256 = self.load_bus[msg.sender]
    self._programmes[programme_id].enrolment_count = enrol_index + 1
    self._programmes[programme_id].bonds_wei += bond_wei
    self._enrol_slot[programme_id][msg.sender] = enrol_index + 1
    self._enrolments[programme_id][enrol_index] = Enrolment(
        load=msg.sender,
        bus=bus,
        shed_w=shed_w,
        notice_s=notice_s,
        max_events_per_day=max_events_per_day,
        price_per_event_wei=price_per_event_wei,
        price_per_wh_wei=price_per_wh_wei,
        bond_wei=bond_wei,
        committed_wei=0,
        penalties_wei=0,
        paid_wei=0,
        busy_until_timestamp=0,
    )
    log Enrolled(
        programme_id=programme_id,
        load=msg.sender,
        enrol_index=enrol_index,
        bus=bus,
        shed_w=shed_w,
        notice_s=notice_s,
        max_events_per_day=max_events_per_day,
        price_per_event_wei=price_per_event_wei,
        price_per_wh_wei=price_per_wh_wei,
        bond_wei=bond_wei,
    )

    # interactions
    if bond_wei != 0:
        assert extcall token.transferFrom(msg.sender, self, bond_wei), "load shed: token transfer failed"
    return enrol_index


@external
def call(programme_id: uint256, shed_w: uint256, from_timestamp: uint256, to_timestamp: uint256) -> uint256:
    """
    @dev Calls enrolled loads for an event (rule in the header) and
         reserves each called load's cost from the budget.
    @param programme_id The programme.
    @param shed_w Power to shed; 1 to `MAX_POWER_W`. [W]
    @param from_timestamp Start of the event; in the programme, not
           before this block. [s since the Unix epoch]
    @param to_timestamp End of the event; in the programme, at most the
           programme's `max_event_s` after the start. [s since the Unix epoch]
    @return uint256 The event's id.
    """
    # checks
    assert msg.sender == operator and staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "load shed: caller is not operator"
    self._check_programme(programme_id)
    assert shed_w != 0, "load shed: zero shed"
    assert shed_w <= MAX_POWER_W, "load shed: shed above limit"
    assert block.timestamp <= from_timestamp, "load shed: event in the past"
    assert from_timestamp < to_timestamp, "load shed: empty event"
    programme_: Programme = self._programmes[programme_id]
    assert from_timestamp >= programme_.start_timestamp, "load shed: event before programme"
    assert to_timestamp <= programme_.end_timestamp, "load shed: event after programme"
    duration_s: uint256 = to_timestamp - from_timestamp
    assert duration_s <= programme_.max_event_s, "load shed: event too long"

    # effects
    day: uint256 = (from_timestamp - programme_.start_timestamp) // _S_PER_DAY
    notice_s: uint256 = from_timestamp - block.timestamp
    cap: uint256 = programme_.price_per_wh_cap_wei
    candidates: DynArray[uint256, MAX_ENROLMENTS] = []
    costs: DynArray[uint256, MAX_ENROLMENTS] = []
    energies: DynArray[uint256, MAX_ENROLMENTS] = []
    ranking: DynArray[uint256, MAX_ENROLMENTS] = []
    for i: uint256 in range(programme_.enrolment_count, bound=MAX_ENROLMENTS):
        e: Enrolment = self._enrolments[programme_id][i]
        energy_wh: uint256 = self._energy_wh(e.shed_w, duration_s)
        if energy_wh == 0 or e.notice_s > notice_s or e.busy_until_timestamp > from_timestamp:
            continue
        if self._events_on_day[programme_id][i][day] >= e.max_events_per_day:
            continue
        if e.bond_wei - e.penalties_wei - e.committed_wei < self._penalty_wei(energy_wh, cap):
            continue
        k: uint256 = len(candidates)
        candidates.append(i)
        costs.append(e.price_per_event_wei + e.price_per_wh_wei * energy_wh)
        energies.append(energy_wh)
        ranking.append(k)
        # Insertion sort, stable: a new candidate moves ahead only of
        # candidates with a strictly higher cost per Wh.
        j: uint256 = k
        for _: uint256 in range(k, bound=MAX_ENROLMENTS):
            ahead: uint256 = ranking[j - 1]
            if costs[k] * energies[ahead] >= costs[ahead] * energies[k]:
                break
            ranking[j] = ahead
            j -= 1
            ranking[j] = k
            if j == 0:
                break

    event_id: uint256 = self.event_count
    unreserved_wei: uint256 = programme_.budget_wei - programme_.paid_wei - programme_.reserved_wei
    called_w: uint256 = 0
    call_count: uint256 = 0
    for rank: uint256 in range(len(ranking), bound=MAX_ENROLMENTS):
        if called_w >= shed_w:
            break
        k: uint256 = ranking[rank]
        if costs[k] > unreserved_wei:
            continue
        i: uint256 = candidates[k]
        load: address = self._enrolments[programme_id][i].load
        load_shed_w: uint256 = self._enrolments[programme_id][i].shed_w
        unreserved_wei -= costs[k]
        called_w += load_shed_w
        self._called[event_id][call_count].enrol_index = i
        call_count += 1
        self._called_slot[event_id][load] = call_count
        self._enrolments[programme_id][i].committed_wei += self._penalty_wei(energies[k], cap)
        self._enrolments[programme_id][i].busy_until_timestamp = to_timestamp
        self._events_on_day[programme_id][i][day] += 1
        log Called(
            event_id=event_id,
            load=load,
            enrol_index=i,
            shed_w=load_shed_w,
            energy_wh=energies[k],
            reserved_wei=costs[k],
        )
    assert call_count != 0, "load shed: no load called"
    self.event_count = event_id + 1
    self._programmes[programme_id].reserved_wei = programme_.budget_wei - programme_.paid_wei - unreserved_wei
    self._programmes[programme_id].open_calls += call_count
    self._events[event_id] = ShedEvent(
        programme_id=programme_id,
        shed_w=shed_w,
        from_timestamp=from_timestamp,
        to_timestamp=to_timestamp,
        called_w=called_w,
        call_count=call_count,
        settled=False,
    )
    log EventCalled(
        event_id=event_id,
        programme_id=programme_id,
        shed_w=shed_w,
        called_w=called_w,
        call_count=call_count,
        from_timestamp=from_timestamp,
        to_timestamp=to_timestamp,
    )
    return event_id


@external
def post_delivery(event_id: uint256, delivered_wh: uint256):
    """
    @dev Posts the energy the caller's load shed in `event_id` and
         settles its call (rule in the header): the payment goes to
         the load at once.
    @param event_id The event; it has ended and its delivery period not.
    @param delivered_wh Energy the load's measured demand stayed below
           its baseline over the event; at most `MAX_ENERGY_WH`. [Wh]
    """
    # checks
    self._check_event(event_id)
    load: address = staticcall registry.prosumer_of_meter(msg.sender)
    assert load != empty(address), "load shed: caller is not a bound meter"
    slot: uint256 = self._called_slot[event_id][load]
    assert slot != 0, "load shed: load not called"
    end: uint256 = self._events[event_id].to_timestamp
    assert block.timestamp >= end, "load shed: event not ended"
    assert block.timestamp < end + delivery_period_s, "load shed: delivery closed"
    assert not self._called[event_id][slot - 1].settled, "load shed: delivery posted"
    assert delivered_wh <= MAX_ENERGY_WH, "load shed: delivery above limit"

    # effects
    payment_wei: uint256 = self._settle(event_id, slot - 1, delivered_wh, msg.sender)

    # interactions
    if payment_wei != 0:
        assert extcall token.transfer(load, payment_wei), "load shed: token transfer failed"


@external
def settle_event(event_id: uint256):
    """
    @dev Settles every called load of `event_id` without a delivery at
         zero delivery: unpaid, its full-shortfall penalty taken from
         its bond. Moves no tokens.
    @param event_id The event; its delivery period has ended.
    """
    # checks
    self._check_event(event_id)
    assert block.timestamp >= self._delivery_deadline_timestamp(event_id), "load shed: delivery open"
    assert not self._events[event_id].settled, "load shed: event settled"

    # effects
    self._events[event_id].settled = True
    settled_count: uint256 = 0
    for k: uint256 in range(self._events[event_id].call_count, bound=MAX_ENROLMENTS):
        if not self._called[event_id][k].settled:
            # With zero delivery nothing is paid.
            self._settle(event_id, k, 0, empty(address))
            settled_count += 1
    log EventSettled(event_id=event_id, settled_count=settled_count)


@external
def close_programme(programme_id: uint256):
    """
    @dev Returns every bond less its penalties, shares the penalty pool
         among the enrolments (rule in the header) and pays the
         operator the unspent budget.
    @param programme_id The programme; its end plus the delivery period
           has passed and every event of it is settled.
    """
    # checks
    self._check_programme(programme_id)
    programme_: Programme = self._programmes[programme_id]
    assert block.timestamp >= programme_.end_timestamp + delivery_period_s, "load shed: delivery open"
    assert not programme_.closed, "load shed: already closed"
    assert programme_.open_calls == 0, "load shed: events unsettled"

    # effects
    self._programmes[programme_id].closed = True
    self._programmes[programme_id].bonds_wei = 0
    n: uint256 = programme_.enrolment_count
    pool_wei: uint256 = self.penalty_reserve_wei + programme_.penalties_wei
    returned_wei: DynArray[uint256, MAX_ENROLMENTS] = []
    shared_wei: uint256 = 0
    for i: uint256 in range(n, bound=MAX_ENROLMENTS):
        e: Enrolment = self._enrolments[programme_id][i]
        share_wei: uint256 = 0
        if programme_.paid_wei != 0:
            share_wei = pool_wei * e.paid_wei // programme_.paid_wei
        shared_wei += share_wei
        refund_wei: uint256 = e.bond_wei - e.penalties_wei
        returned_wei.append(refund_wei + share_wei)
        log BondReturned(programme_id=programme_id, load=e.load, bond_refund_wei=refund_wei, share_wei=share_wei)
    self.penalty_reserve_wei = pool_wei - shared_wei
    operator_refund_wei: uint256 = programme_.budget_wei - programme_.paid_wei
    log ProgrammeClosed(
        programme_id=programme_id,
        paid_wei=programme_.paid_wei,
        penalties_wei=programme_.penalties_wei,
        operator_refund_wei=operator_refund_wei,
        shared_wei=shared_wei,
        reserve_wei=pool_wei - shared_wei,
    )

    # interactions
    for i: uint256 in range(n, bound=MAX_ENROLMENTS):
        if returned_wei[i] != 0:
            load: address = self._enrolments[programme_id][i].load
            assert extcall token.transfer(load, returned_wei[i]), "load shed: token transfer failed"
    if operator_refund_wei != 0:
        assert extcall token.transfer(operator, operator_refund_wei), "load shed: token transfer failed"


@external
@view
def programme(programme_id: uint256) -> Programme:
    """
    @dev Programme `programme_id` with its running totals.
    @param programme_id The programme.
    @return Programme The stored programme.
    """
    self._check_programme(programme_id)
    return self._programmes[programme_id]


@external
@view
def enrolments(programme_id: uint256) -> DynArray[Enrolment, MAX_ENROLMENTS]:
    """
    @dev Every enrolment of `programme_id` in enrolment order, with its
         running totals.
    @param programme_id The programme.
    @return DynArray The enrolments.
    """
    self._check_programme(programme_id)
    result: DynArray[Enrolment, MAX_ENROLMENTS] = []
    for i: uint256 in range(self._programmes[programme_id].enrolment_count, bound=MAX_ENROLMENTS):
        result.append(self._enrolments[programme_id][i])
    return result


@external
@view
def shed_event(event_id: uint256) -> ShedEvent:
    """
    @dev Event `event_id` as called.
    @param event_id The event.
    @return ShedEvent The stored event.
    """
    self._check_event(event_id)
    return self._events[event_id]


@external
@view
def called_loads(event_id: uint256) -> DynArray[CalledLoad, MAX_ENROLMENTS]:
    """
    @dev Every load called for `event_id` in merit order, with its
         settlement.
    @param event_id The event.
    @return DynArray The called loads.
    """
    self._check_event(event_id)
    programme_id: uint256 = self._events[event_id].programme_id
    duration_s: uint256 = self._events[event_id].to_timestamp - self._events[event_id].from_timestamp
    result: DynArray[CalledLoad, MAX_ENROLMENTS] = []
    for k: uint256 in range(self._events[event_id].call_count, bound=MAX_ENROLMENTS):
        record: CallRecord = self._called[event_id][k]
        e: Enrolment = self._enrolments[programme_id][record.enrol_index]
        energy_wh: uint256 = self._energy_wh(e.shed_w, duration_s)
        payment_wei: uint256 = 0
        penalty_wei: uint256 = 0
        if record.settled:
            payment_wei, penalty_wei = self._settlement_wei(
                e.price_per_event_wei, e.price_per_wh_wei, energy_wh, record.delivered_wh, programme_id
            )
        result.append(
            CalledLoad(
                load=e.load,
                enrol_index=record.enrol_index,
                shed_w=e.shed_w,
                energy_wh=energy_wh,
                reserved_wei=e.price_per_event_wei + e.price_per_wh_wei * energy_wh,
                delivered_wh=record.delivered_wh,
                payment_wei=payment_wei,
                penalty_wei=penalty_wei,
                settled=record.settled,
            )
        )
    return result


@external
@view
def held_wei(programme_id: uint256) -> uint256:
    """
    @dev Tokens this contract holds for `programme_id`: unspent budget,
         penalties not yet shared and bonds; 0 once closed.
    @param programme_id The programme.
    @return uint256 The tokens held. [wei]
    """
    self._check_programme(programme_id)
    programme_: Programme = self._programmes[programme_id]
    if programme_.closed:
        return 0
    return programme_.budget_wei - programme_.paid_wei + programme_.penalties_wei + programme_.bonds_wei


@external
@view
def delivery_deadline_timestamp(event_id: uint256) -> uint256:
    """
    @dev End of the delivery period of `event_id`; `settle_event` opens then.
    @param event_id The event.
    @return uint256 Event end plus `delivery_period_s`. [s since the Unix epoch]
    """
    self._check_event(event_id)
    return self._delivery_deadline_timestamp(event_id)


@internal
def _settle(event_id: uint256, index: uint256, delivered_wh: uint256, meter: address) -> uint256:
    """
    @dev Settles called load `index` of `event_id` at `delivered_wh`
         (rule in the header) and books the flows on its enrolment and
         programme.
    @param event_id The event.
    @param index The unsettled called load.
    @param delivered_wh Delivered energy. [Wh]
    @param meter The posting meter; the zero address at `settle_event`.
    @return uint256 Payment due to the load. [wei]
    """
    # Field by field: the settlement needs a third of the structs' slots.
    enrol_index: uint256 = self._called[event_id][index].enrol_index
    programme_id: uint256 = self._events[event_id].programme_id
    duration_s: uint256 = self._events[event_id].to_timestamp - self._events[event_id].from_timestamp
    load: address = self._enrolments[programme_id][enrol_index].load
    price_per_event_wei: uint256 = self._enrolments[programme_id][enrol_index].price_per_event_wei
    price_per_wh_wei: uint256 = self._enrolments[programme_id][enrol_index].price_per_wh_wei
    called_wh: uint256 = self._energy_wh(self._enrolments[programme_id][enrol_index].shed_w, duration_s)
    reserved_wei: uint256 = price_per_event_wei + price_per_wh_wei * called_wh
    payment_wei: uint256 = 0
    penalty_wei: uint256 = 0
    payment_wei, penalty_wei = self._settlement_wei(
        price_per_event_wei, price_per_wh_wei, called_wh, delivered_wh, programme_id
    )
    self._called[event_id][index].delivered_wh = delivered_wh
    self._called[event_id][index].settled = True
    self._enrolments[programme_id][enrol_index].committed_wei -= self._penalty_wei(
        called_wh, self._programmes[programme_id].price_per_wh_cap_wei
    )
    self._enrolments[programme_id][enrol_index].penalties_wei += penalty_wei
    self._enrolments[programme_id][enrol_index].paid_wei += payment_wei
    self._programmes[programme_id].reserved_wei -= reserved_wei
    self._programmes[programme_id].paid_wei += payment_wei
    self._programmes[programme_id].penalties_wei += penalty_wei
    self._programmes[programme_id].bonds_wei -= penalty_wei
    self._programmes[programme_id].open_calls -= 1
    log Settled(
        event_id=event_id,
        load=load,
        meter=meter,
        delivered_wh=delivered_wh,
        payment_wei=payment_wei,
        penalty_wei=penalty_wei,
        released_wei=reserved_wei - payment_wei,
    )
    return payment_wei


@internal
@view
def _settlement_wei(
    price_per_event_wei: uint256,
    price_per_wh_wei: uint256,
    called_wh: uint256,
    delivered_wh: uint256,
    programme_id: uint256,
) -> (uint256, uint256):
    """
    @dev Payment and penalty of a called load at `delivered_wh` (rule in
         the header). [wei]
    @param price_per_event_wei The enrolment's per-event price. [wei]
    @param price_per_wh_wei The enrolment's energy price. [wei/Wh]
    @param called_wh Its energy over the event, E_i > 0. [Wh]
    @param delivered_wh Delivered energy. [Wh]
    @param programme_id The programme, for its energy price cap.
    @return (uint256, uint256) floor(price per event * w / E_i) + w *
            price per Wh, and the penalty of E_i - w, with
            w = min(delivered_wh, E_i). [wei]
    """
    paid_wh: uint256 = min(delivered_wh, called_wh)
    payment_wei: uint256 = price_per_event_wei * paid_wh // called_wh + paid_wh * price_per_wh_wei
    return payment_wei, self._penalty_wei(called_wh - paid_wh, self._programmes[programme_id].price_per_wh_cap_wei)


@internal
@view
def _check_programme(programme_id: uint256):
    """
    @dev Reverts unless `programme_id` has been posted.
    @param programme_id The programme.
    """
    assert programme_id < self.programme_count, "load shed: unknown programme"


@internal
@view
def _check_event(event_id: uint256):
    """
    @dev Reverts unless `event_id` has been called.
    @param event_id The event.
    """
    assert event_id < self.event_count, "load shed: unknown event"


@internal
@view
def _delivery_deadline_timestamp(event_id: uint256) -> uint256:
    """
    @dev End of the delivery period of `event_id`. [s since the Unix epoch]
    @param event_id The event.
    @return uint256 Event end plus `delivery_period_s`.
    """
    return self._events[event_id].to_timestamp + delivery_period_s


@internal
@pure
def _energy_wh(p_w: uint256, duration_s: uint256) -> uint256:
    """
    @dev Energy of `p_w` held over `duration_s`, rounded down. [Wh]
    @param p_w Power. [W]
    @param duration_s Duration. [s]
    @return uint256 floor(p_w * duration_s / 3600). [Wh]
    """
    return p_w * duration_s // _S_PER_H


@internal
@view
def _penalty_wei(energy_wh: uint256, price_per_wh_cap_wei: uint256) -> uint256:
    """
    @dev Penalty for a shortfall of, and bond for, `energy_wh` at the
         programme's energy price cap, rounded down. [wei]
    @param energy_wh Energy. [Wh]
    @param price_per_wh_cap_wei The programme's energy price cap. [wei/Wh]
    @return uint256 floor(energy_wh * cap * penalty_permille / 1000). [wei]
    """
    return energy_wh * price_per_wh_cap_wei * penalty_permille // _PERMILLE
