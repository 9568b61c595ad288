# pragma version ~=0.4.3
"""
@title Charging Coordination of Storage Units and Electric Vehicles
@custom:contract-name charging
@license BSD-3-Clause
@notice Decides, per time window, which energy storage units (ESUs)
        and electric vehicles (EVs) may charge within a feeder headroom
        the operator publishes. Window w spans [`start_timestamp` +
        w * `window_s`, `start_timestamp` + (w + 1) * `window_s`); its
        requests close `request_lead_s` seconds before it starts.
        Before `start_timestamp` the operator registers each prosumer's
        EV once (`register_ev`: battery capacity and charger power);
        registrations are frozen from then on.
        Phases of window w:
        - before its deadline: the operator calls `post_headroom`
          (again to replace it) and each prosumer `request_charge` once;
        - from the deadline until the window starts: anyone calls
          `allocate` once;
        - from its allocation until the window ends: a service account
          the emergency access grants `SCOPE_OVERRIDE_CHARGING` over a
          household (or every household) may `override` (cut) that
          household's admission, any number of times.
        Functions:
        - `register_ev`, `post_headroom`, `request_charge`, `allocate`,
          `override` (`external` functions),
        - `ev`, `session`, `headroom_w`, `requests`, `admitted`,
          `allocation`, `emergency_access` (`external` `view`
          functions),
        - `request_deadline_timestamp`, `window_start_timestamp`,
          `window_end_timestamp` (`external` `view` functions).
        Priority rule (as Baza et al. rank ESUs by state of charge and
        time to complete charging, with a feasibility class first):
        time to complete charging tcc_s = ceil(3600 * energy_needed_wh /
        power_w); laxity_s = departure - window_end - tcc_s. Requests
        rank by
        1. must charge now (laxity_s <= 0) before the rest,
        2. lower `soc_permille`,
        3. shorter tcc_s,
        4. lower `power_w`,
        5. earlier request.
        Admission (greedy-skip): in that order each request is admitted
        if its power fits in the headroom left by the requests admitted
        before it, and skipped otherwise; later, smaller requests may
        still fit. So the admitted power never exceeds the headroom,
        and every skipped request needs more power than was left when
        its turn came, hence more than is left at the end.
        Overrides only cut: an emergency override sets an admission to
        at most its current power (so never above what `allocate`
        admitted, which is at most the EV's registered charger), never
        raises it and never admits an EV that was not admitted. A cut
        only lowers the feeder's load, so the window stays within its
        headroom; and the power it frees goes to no one, so a service
        account cannot hand priority to anybody (raising an admission
        would bypass both the headroom and the priority rule). The cut
        power is what `admitted` and `allocation` report from then on,
        and what the session checks count as charged.
        Each account requests windows in increasing order, once each.
        Sessions: an account's requests belong to one charging session
        while the departure it declared is after the requested window's
        start; a request in the same session must repeat the declared
        departure, may not claim a lower state of charge than before and
        may not need more energy than an earlier request of the session
        less the energy admitted in the windows from that request's
        window on that ended before this request (the session's first
        window excepted: the EV may have arrived during it). A request
        after the declared departure opens a new session.
        References: M. Baza, M. Nabil, M. Ismail, M. Mahmoud, E.
        Serpedin, M. A. Rahman, "Blockchain-based charging coordination
        mechanism for smart grid energy storage units", 2019 IEEE
        International Conference on Blockchain, arXiv:1811.02001;
        C. Liu, K. K. Chai, X. Zhang, E. T. Lau, Y. Chen, "Adaptive
        blockchain-based electric vehicle participation scheme in smart
        grid platform", IEEE Access 6, 2018.
@custom:security Only EVs the operator registered before the first
                 window may request, each at least `min_request_w` and
                 at most its registered charger power, for at most its
                 registered battery capacity, once per window: a flood
                 of small requests needs as many registered EVs, and
                 `MAX_REQUESTS` bounds a window. Within a session a
                 lower state of charge, a changed departure or an energy
                 need that ignores admitted charging reverts, so a lie
                 cannot be deepened or renewed window by window.
                 What remains trusted: the first request of a session
                 (its state of charge, energy need and departure) is
                 self-reported within the registered battery, and so is
                 the energy the EV drew in the session's first window;
                 a prosumer may still claim a low state of charge or a
                 near departure when it plugs in (a meter at the charger
                 could bound it later). A session ends only at its
                 declared departure, so an early departure claimed for
                 priority ends the session there. The registration
                 itself is the operator's word. A window that nobody
                 allocates before it starts admits no one, and a window
                 without a posted headroom cannot be allocated. A window
                 so far in the future that its timestamps overflow
                 uint256 reverts without a reason string.
                 Emergency overrides are as trusted as the operator's
                 grant (`EmergencyAccess.vy`: declared, scoped, ending
                 on its own, revocable); the contract takes the grant's
                 refusal reason as its own, and every override is
                 logged (`ChargingOverridden`). An override made during
                 its window may come after the EV drew power at the
                 admitted rate: the session checks then count the cut
                 power, in the prosumer's favour.
"""


# @dev Role queries against the market's registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view


# @dev The grants of service personnel in an emergency (`EmergencyAccess.vy`).
interface EmergencyAccess:
    def refusal(account: address, scope: uint256, subject: address) -> String[64]: view
    def registry() -> address: view


# @dev Registry role bit of the operator (see `Registry.vy`).
_ROLE_OPERATOR: constant(uint256) = 1


# @dev Registry role bit of prosumers (see `Registry.vy`).
_ROLE_PROSUMER: constant(uint256) = 2


# @dev Scope bit of overriding a charging admission (see `EmergencyAccess.vy`).
_SCOPE_OVERRIDE_CHARGING: constant(uint256) = 2


# @dev Most charging requests one window holds.
MAX_REQUESTS: public(constant(uint256)) = 128


# @dev Largest charging power of one request: 1 GW. [W]
MAX_POWER_W: public(constant(uint256)) = 10**9


# @dev Largest energy one request still needs: 1 TWh, as the
# markets' `MAX_ENERGY_WH`; tcc_s stays below 3.6 * 10**15 < 2**52. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest headroom the operator may publish. [W]
MAX_HEADROOM_W: public(constant(uint256)) = 10**12


# @dev Full state of charge. [permille]
_FULL_SOC_PERMILLE: constant(uint256) = 1000


# @dev Seconds per hour, to turn Wh / W into seconds. [s/h]
_SECONDS_PER_HOUR: constant(uint256) = 3600


# @dev Rounding allowance of an energy need against an earlier one: the
# EV rounds each need up to the next Wh. [Wh]
_NEED_SLACK_WH: constant(uint256) = 1


# @dev Packed priority key of one request, lower ranks first: bits
# [0, 32) request index, [32, 96) power [W], [96, 160) tcc [s],
# [160, 192) state of charge [permille], bit 192 set unless the request
# must charge now. The index makes every key of a window distinct.
_KEY_INDEX_MASK: constant(uint256) = 2**32 - 1
_KEY_POWER_SHIFT: constant(uint256) = 32
_KEY_POWER_MASK: constant(uint256) = 2**64 - 1
_KEY_TCC_SHIFT: constant(uint256) = 96
_KEY_SOC_SHIFT: constant(uint256) = 160
_KEY_DEFERRABLE_SHIFT: constant(uint256) = 192


# @dev One charging request as submitted.
struct Request:
    account: address
    power_w: uint256
    energy_needed_wh: uint256
    soc_permille: uint256
    departure_timestamp: uint256


# @dev An EV as the operator registered it; all zero if not registered.
struct EV:
    capacity_wh: uint256
    max_charge_w: uint256


# @dev One request of a session: its window and its energy need [Wh]; a
# zero need marks no request.
struct Mark:
    window: uint256
    energy_needed_wh: uint256


# @dev An account's current charging session: the declared departure
# [s since the Unix epoch], its first window, the last claimed state of
# charge [permille] and its last two requests.
struct Session:
    departure_timestamp: uint256
    first_window: uint256
    soc_permille: uint256
    last: Mark
    previous: Mark


# @dev Outcome of one window; all zero until it is allocated.
struct Allocation:
    allocated: bool
    headroom_w: uint256
    admitted_power_w: uint256
    requests: uint256
    admitted: uint256


# @dev Registry that grants the operator and prosumer roles.
registry: public(immutable(Registry))


# @dev Start of window 0. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev Length of one window. [s]
window_s: public(immutable(uint256))


# @dev How long before its start a window takes no more requests. [s]
request_lead_s: public(immutable(uint256))


# @dev Least charging power of one request. [W]
min_request_w: public(immutable(uint256))


# @dev Emergency access whose grantees may override admissions; the
# empty address if none (every override is refused).
emergency_access: public(immutable(EmergencyAccess))


# @dev Registered EV of each account.
_ev: HashMap[address, EV]


# @dev Charging session of each account.
_session: HashMap[address, Session]


# @dev Headroom of each window as last posted. [W]
_headroom_w: HashMap[uint256, uint256]


# @dev Whether the operator has posted each window's headroom.
_headroom_posted: HashMap[uint256, bool]


# @dev Requests of each window in submission order.
_requests: HashMap[uint256, DynArray[Request, MAX_REQUESTS]]


# @dev Charging power admitted per window and account; 0 if not. [W]
_admitted_power_w: HashMap[uint256, HashMap[address, uint256]]


# @dev Outcome of each allocated window.
_allocation: HashMap[uint256, Allocation]


# @dev Emitted when the operator registers the EV of `account`.
event EVRegistered:
    account: indexed(address)
    capacity_wh: uint256
    max_charge_w: uint256


# @dev Emitted when the operator posts the headroom of `window`.
event HeadroomPosted:
    window: indexed(uint256)
    headroom_w: uint256


# @dev Emitted when `account` asks to charge in `window`.
event ChargeRequested:
    window: indexed(uint256)
    account: indexed(address)
    power_w: uint256
    energy_needed_wh: uint256
    soc_permille: uint256
    departure_timestamp: uint256


# @dev Emitted per admitted request, in priority order.
event Allocated:
    window: indexed(uint256)
    account: indexed(address)
    power_w: uint256


# @dev Emitted when `window` is allocated, after its `Allocated` events.
event WindowAllocated:
    window: indexed(uint256)
    headroom_w: uint256
    admitted_power_w: uint256
    requests: uint256
    admitted: uint256


# @dev Emitted when service account `by` cuts the admission of `account`
# in `window` from `old_w` to `new_w` [W] in an emergency.
event ChargingOverridden:
    window: indexed(uint256)
    account: indexed(address)
    by: indexed(address)
    old_w: uint256
    new_w: uint256
    note: String[64]


@deploy
def __init__(
    registry_: Registry,
    start_timestamp_: uint256,
    window_s_: uint256,
    request_lead_s_: uint256,
    min_request_w_: uint256,
    emergency_access_: EmergencyAccess,
):
    """
    @param registry_ The market's role registry.
    @param start_timestamp_ Start of window 0. [s since the Unix epoch]
    @param window_s_ Length of one window; positive. [s]
    @param request_lead_s_ Request deadline before a window's start;
           positive (allocation needs the time between deadline and
           start) and at most `start_timestamp_`. [s]
    @param min_request_w_ Least power of a request; 1 to
           `MAX_POWER_W`. [W]
    @param emergency_access_ Emergency access over the same registry
           whose grantees may override admissions; the empty address
           for none.
    """
    assert window_s_ != 0, "charging: zero window"
    assert request_lead_s_ != 0 and request_lead_s_ <= start_timestamp_, "charging: request lead out of range"
    assert min_request_w_ != 0 and min_request_w_ <= MAX_POWER_W, "charging: minimum request out of range"
    # Another registry's operator would grant overrides of this market's EVs.
    if emergency_access_.address != empty(address):
        assert staticcall emergency_access_.registry() == registry_.address, (
            "charging: emergency access of another registry"
        )
    registry = registry_
    start_timestamp = start_timestamp_
    window_s = window_s_
    request_lead_s = request_lead_s_
    min_request_w = min_request_w_
    emergency_access = emergency_access_


@external
def register_ev(account: address, capacity_wh: uint256, max_charge_w: uint256):
    """
    @dev Registers the EV of prosumer `account`, once; only the
         operator, before `start_timestamp`.
    @param account The prosumer owning the EV.
    @param capacity_wh Most energy one charging session draws from the
           grid: the battery capacity over the charger efficiency; 1 to
           `MAX_ENERGY_WH`. [Wh]
    @param max_charge_w Charger rating; `min_request_w` to
           `MAX_POWER_W`. [W]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "charging: caller is not operator"
    assert block.timestamp < start_timestamp, "charging: registration closed"
    assert staticcall registry.has_role(account, _ROLE_PROSUMER), "charging: account is not a prosumer"
    assert self._ev[account].capacity_wh == 0, "charging: EV registered"
    assert capacity_wh != 0 and capacity_wh <= MAX_ENERGY_WH, "charging: capacity out of range"
    assert max_charge_w >= min_request_w and max_charge_w <= MAX_POWER_W, "charging: charger power out of range"

    # effects
    self._ev[account] = EV(capacity_wh=capacity_wh, max_charge_w=max_charge_w)
    log EVRegistered(account=account, capacity_wh=capacity_wh, max_charge_w=max_charge_w)


@external
def post_headroom(window: uint256, headroom_w: uint256):
    """
    @dev Publishes, or replaces, the power the feeder can give charging
         in `window`; only the operator, before the window's deadline.
    @param window Index of the window.
    @param headroom_w Charging power available; 0 to
           `MAX_HEADROOM_W`. [W]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_OPERATOR), "charging: caller is not operator"
    assert headroom_w <= MAX_HEADROOM_W, "charging: headroom above limit"
    assert block.timestamp < self._deadline(window), "charging: deadline passed"

    # effects
    self._headroom_w[window] = headroom_w
    self._headroom_posted[window] = True
    log HeadroomPosted(window=window, headroom_w=headroom_w)


@external
def request_charge(
    window: uint256,
    power_w: uint256,
    energy_needed_wh: uint256,
    soc_permille: uint256,
    departure_timestamp: uint256,
):
    """
    @dev Files the caller's single charging request of `window`.
    @param window Index of the window.
    @param power_w Charging power wanted; `min_request_w` to the
           registered charger power. [W]
    @param energy_needed_wh Energy still to draw from the grid; 1 to
           the registered capacity, and within the session's earlier
           requests less admitted charging (see the contract notice). [Wh]
    @param soc_permille State of charge; 0 to 1000, not below the
           session's last claim. [permille]
    @param departure_timestamp When the EV leaves (or the ESU must be
           charged); after the window's start, and the session's
           declared departure if it is still open. [s since the Unix
           epoch]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "charging: caller is not a prosumer"
    ev: EV = self._ev[msg.sender]
    assert ev.capacity_wh != 0, "charging: EV not registered"
    assert power_w >= min_request_w, "charging: power below minimum"
    assert power_w <= ev.max_charge_w, "charging: power above registered charger"
    assert energy_needed_wh != 0, "charging: zero energy"
    assert energy_needed_wh <= ev.capacity_wh, "charging: energy above registered capacity"
    assert soc_permille <= _FULL_SOC_PERMILLE, "charging: state of charge above 1000 permille"
    window_start: uint256 = start_timestamp + window * window_s
    assert departure_timestamp > window_start, "charging: departure not after window start"
    assert block.timestamp < self._deadline(window), "charging: deadline passed"
    session: Session = self._session[msg.sender]
    # An account requests windows in order, so its request of this window
    # would be its last one.
    if session.last.energy_needed_wh != 0:
        assert session.last.window != window, "charging: request exists"
        assert session.last.window < window, "charging: window before last request"
    assert len(self._requests[window]) < MAX_REQUESTS, "charging: window full"
    mark: Mark = Mark(window=window, energy_needed_wh=energy_needed_wh)
    if session.departure_timestamp > window_start:
        assert departure_timestamp == session.departure_timestamp, "charging: departure differs from session"
        assert soc_permille >= session.soc_permille, "charging: state of charge below earlier claim"
        bound_wh: uint256 = min(
            self._need_bound_wh(msg.sender, session, session.last),
            self._need_bound_wh(msg.sender, session, session.previous),
        )
        assert energy_needed_wh <= bound_wh, "charging: energy need above earlier claim less admitted"
        session = Session(
            departure_timestamp=departure_timestamp,
            first_window=session.first_window,
            soc_permille=soc_permille,
            last=mark,
            previous=session.last,
        )
    else:
        session = Session(
            departure_timestamp=departure_timestamp,
            first_window=window,
            soc_permille=soc_permille,
            last=mark,
            previous=empty(Mark),
        )

    # effects
    self._session[msg.sender] = session
    self._requests[window].append(
        Request(
            account=msg.sender,
            power_w=power_w,
            energy_needed_wh=energy_needed_wh,
            soc_permille=soc_permille,
            departure_timestamp=departure_timestamp,
        )
    )
    log ChargeRequested(
        window=window,
        account=msg.sender,
        power_w=power_w,
        energy_needed_wh=energy_needed_wh,
        soc_permille=soc_permille,
        departure_timestamp=departure_timestamp,
    )


@external
def allocate(window: uint256):
    """
    @dev Ranks the requests of `window` by the priority rule and admits
         them greedily within its headroom; anyone may call it once,
         from the deadline until the window starts.
    @param window Index of the window.
    """
    # checks
    window_start: uint256 = start_timestamp + window * window_s
    assert block.timestamp >= window_start - request_lead_s, "charging: requests open"
    assert not self._allocation[window].allocated, "charging: already allocated"
    assert block.timestamp < window_start, "charging: window started"
    assert self._headroom_posted[window], "charging: headroom not posted"

    # effects
    requests: DynArray[Request, MAX_REQUESTS] = self._requests[window]
    keys: DynArray[uint256, MAX_REQUESTS] = []
    window_end: uint256 = window_start + window_s
    for index: uint256 in range(len(requests), bound=MAX_REQUESTS):
        keys.append(self._priority_key(requests[index], index, window_end))
    keys = self._sorted(keys)

    headroom_w: uint256 = self._headroom_w[window]
    admitted_power_w: uint256 = 0
    admitted: uint256 = 0
    for key: uint256 in keys:
        power_w: uint256 = (key >> _KEY_POWER_SHIFT) & _KEY_POWER_MASK
        if admitted_power_w + power_w > headroom_w:
            continue
        account: address = requests[key & _KEY_INDEX_MASK].account
        admitted_power_w += power_w
        admitted += 1
        self._admitted_power_w[window][account] = power_w
        log Allocated(window=window, account=account, power_w=power_w)
    self._allocation[window] = Allocation(
        allocated=True,
        headroom_w=headroom_w,
        admitted_power_w=admitted_power_w,
        requests=len(requests),
        admitted=admitted,
    )
    log WindowAllocated(
        window=window,
        headroom_w=headroom_w,
        admitted_power_w=admitted_power_w,
        requests=len(requests),
        admitted=admitted,
    )


@external
def override(window: uint256, account: address, admitted_w: uint256, note: String[64]):
    """
    @dev Cuts the charging power admitted to `account` in `window` to
         `admitted_w`; a service account the emergency access grants
         `SCOPE_OVERRIDE_CHARGING` over `account`, from the window's
         allocation until it ends. Reasons, in the order checked:
         "charging: no emergency access", the emergency access's own
         refusal ("emergency: not granted", "... revoked", "... expired",
         "... out of scope"), "charging: EV not registered", "charging:
         window over", "charging: window not allocated", "charging: EV
         not admitted", "charging: override above admitted".
    @param window Index of the window.
    @param account The prosumer whose EV is cut.
    @param admitted_w New admitted power; 0 to its current admission. [W]
    @param note Why, logged.
    """
    # checks
    assert emergency_access.address != empty(address), "charging: no emergency access"
    refused: String[64] = staticcall emergency_access.refusal(msg.sender, _SCOPE_OVERRIDE_CHARGING, account)
    assert len(refused) == 0, refused
    assert self._ev[account].capacity_wh != 0, "charging: EV not registered"
    assert block.timestamp < start_timestamp + (window + 1) * window_s, "charging: window over"
    assert self._allocation[window].allocated, "charging: window not allocated"
    old_w: uint256 = self._admitted_power_w[window][account]
    assert old_w != 0, "charging: EV not admitted"
    assert admitted_w <= old_w, "charging: override above admitted"

    # effects
    self._admitted_power_w[window][account] = admitted_w
    self._allocation[window].admitted_power_w -= old_w - admitted_w
    if admitted_w == 0:
        self._allocation[window].admitted -= 1
    log ChargingOverridden(window=window, account=account, by=msg.sender, old_w=old_w, new_w=admitted_w, note=note)


@external
@view
def ev(account: address) -> EV:
    """
    @dev Registered EV of `account`.
    @param account The account to look up.
    @return EV Its capacity [Wh] and charger power [W]; zero if none.
    """
    return self._ev[account]


@external
@view
def session(account: address) -> Session:
    """
    @dev Current charging session of `account`.
    @param account The account to look up.
    @return Session Its declared departure, first window, last state of
            charge and last two requests; zero before any request.
    """
    return self._session[account]


@external
@view
def headroom_w(window: uint256) -> uint256:
    """
    @dev Headroom of `window` as last posted; 0 before any post.
    @param window Index of the window.
    @return uint256 The headroom. [W]
    """
    return self._headroom_w[window]


@external
@view
def requests(window: uint256) -> DynArray[Request, MAX_REQUESTS]:
    """
    @dev Charging requests of `window`.
    @param window Index of the window.
    @return DynArray The requests in submission order.
    """
    return self._requests[window]


@external
@view
def admitted(window: uint256, account: address) -> uint256:
    """
    @dev Charging power admitted to `account` in `window`, after any
         emergency override.
    @param window Index of the window.
    @param account The account to look up.
    @return uint256 The requested power if admitted, as cut by an
            override, else 0. [W]
    """
    return self._admitted_power_w[window][account]


@external
@view
def allocation(window: uint256) -> Allocation:
    """
    @dev Outcome of `window`; all fields zero until it is allocated.
         Overrides lower its admitted power, and a cut to 0 its number
         of admitted requests.
    @param window Index of the window.
    @return Allocation Whether it is allocated, the headroom used [W],
            the admitted power [W] and the numbers of requests and of
            admitted requests.
    """
    return self._allocation[window]


@external
@view
def request_deadline_timestamp(window: uint256) -> uint256:
    """
    @dev First block timestamp at which `window` takes no requests or
         headroom and may be allocated.
    @param window Index of the window.
    @return uint256 The deadline. [s since the Unix epoch]
    """
    return self._deadline(window)


@external
@view
def window_start_timestamp(window: uint256) -> uint256:
    """
    @dev Start of `window`, from which it can no longer be allocated.
    @param window Index of the window.
    @return uint256 The start time. [s since the Unix epoch]
    """
    return start_timestamp + window * window_s


@external
@view
def window_end_timestamp(window: uint256) -> uint256:
    """
    @dev End of `window`, the reference time of every laxity.
    @param window Index of the window.
    @return uint256 The end time. [s since the Unix epoch]
    """
    return start_timestamp + (window + 1) * window_s


@internal
@view
def _deadline(window: uint256) -> uint256:
    """
    @dev Request deadline of `window`.
    @param window Index of the window.
    @return uint256 The deadline. [s since the Unix epoch]
    """
    return start_timestamp + window * window_s - request_lead_s


@internal
@view
def _need_bound_wh(account: address, session: Session, mark: Mark) -> uint256:
    """
    @dev Most energy a request of `account`'s open `session` may still
         need after the earlier request `mark`: its need less the energy
         admitted in the session's windows from `mark`'s window on that
         ended before this block, plus `_NEED_SLACK_WH`. Only the
         session's last two requests' windows can hold admissions in
         that span. A window counts `admitted - 1` W, as the charger
         rating may lie up to half a watt below its rounded request.
    @param account The account.
    @param session Its open session.
    @param mark An earlier request of it; no bound if empty.
    @return uint256 The bound. [Wh]
    """
    if mark.energy_needed_wh == 0:
        return max_value(uint256)
    admitted_wh: uint256 = 0
    for earlier: Mark in [session.previous, session.last]:
        if earlier.energy_needed_wh == 0 or earlier.window == session.first_window:
            continue
        if earlier.window < mark.window or start_timestamp + (earlier.window + 1) * window_s > block.timestamp:
            continue
        power_w: uint256 = self._admitted_power_w[earlier.window][account]
        if power_w != 0:
            admitted_wh += (power_w - 1) * window_s // _SECONDS_PER_HOUR
    if admitted_wh >= mark.energy_needed_wh:
        return _NEED_SLACK_WH
    return mark.energy_needed_wh - admitted_wh + _NEED_SLACK_WH


@internal
@pure
def _priority_key(request: Request, index: uint256, window_end: uint256) -> uint256:
    """
    @dev Packed priority key of `request`, lower ranks first (layout at
         the `_KEY_*` constants).
    @param request The request.
    @param index Its position in submission order.
    @param window_end End of its window. [s since the Unix epoch]
    @return uint256 The key.
    """
    # Ceiling division: a request that needs part of a second more still
    # needs that second.
    tcc_s: uint256 = (request.energy_needed_wh * _SECONDS_PER_HOUR + request.power_w - 1) // request.power_w
    key: uint256 = (
        (request.soc_permille << _KEY_SOC_SHIFT)
        | (tcc_s << _KEY_TCC_SHIFT)
        | (request.power_w << _KEY_POWER_SHIFT)
        | index
    )
    if request.departure_timestamp > window_end + tcc_s:
        key |= 1 << _KEY_DEFERRABLE_SHIFT
    return key


@internal
@pure
def _sorted(keys: DynArray[uint256, MAX_REQUESTS]) -> DynArray[uint256, MAX_REQUESTS]:
    """
    @dev Insertion sort of distinct keys, O(n**2) for n at most
         `MAX_REQUESTS`.
    @param keys The keys.
    @return DynArray The keys ascending.
    """
    sorted_keys: DynArray[uint256, MAX_REQUESTS] = keys
    for i: uint256 in range(len(keys), bound=MAX_REQUESTS):
        key: uint256 = sorted_keys[i]
        j: uint256 = i
        for _: uint256 in range(i, bound=MAX_REQUESTS):
            if sorted_keys[j - 1] < key:
                break
            sorted_keys[j] = sorted_keys[j - 1]
            j -= 1
            if j == 0:
                break
        sorted_keys[j] = key
    return sorted_keys
