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
        Phases of window w:
        - before its deadline: the operator calls `post_headroom`
          (again to replace it) and each prosumer `request_charge` once;
        - from the deadline until the window starts: anyone calls
          `allocate` once.
        Functions:
        - `post_headroom`, `request_charge`, `allocate`
          (`external` functions),
        - `headroom_w`, `requests`, `admitted`, `allocation`
          (`external` `view` functions),
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
        References: M. Baza, M. Nabil, M. Ismail, M. Mahmoud, E.
        Serpedin, M. A. Rahman, "Blockchain-based charging coordination
        mechanism for smart grid energy storage units", 2019 IEEE
        International Conference on Blockchain, arXiv:1811.02001;
        C. Liu, K. K. Chai, X. Zhang, E. T. Lau, Y. Chen, "Adaptive
        blockchain-based electric vehicle participation scheme in smart
        grid platform", IEEE Access 6, 2018.
@custom:security Requests are public and unauthenticated beyond the
                 prosumer role: a prosumer may report a lower state of
                 charge or an earlier departure than its own to rank
                 higher. A window that nobody allocates before it
                 starts admits no one, and a window without a posted
                 headroom cannot be allocated. A window so far in the
                 future that its timestamps overflow uint256 reverts
                 without a reason string.
"""


# @dev Role queries against the market's registry.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view


# @dev Registry role bit of the operator (see `Registry.vy`).
_ROLE_OPERATOR: constant(uint256) = 1


# @dev Registry role bit of prosumers (see `Registry.vy`).
_ROLE_PROSUMER: constant(uint256) = 2


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


# @dev Headroom of each window as last posted. [W]
_headroom_w: HashMap[uint256, uint256]


# @dev Whether the operator has posted each window's headroom.
_headroom_posted: HashMap[uint256, bool]


# @dev Requests of each window in submission order.
_requests: HashMap[uint256, DynArray[Request, MAX_REQUESTS]]


# @dev Whether each account has requested in each window.
_has_request: HashMap[uint256, HashMap[address, bool]]


# @dev Charging power admitted per window and account; 0 if not. [W]
_admitted_power_w: HashMap[uint256, HashMap[address, uint256]]


# @dev Outcome of each allocated window.
_allocation: HashMap[uint256, Allocation]


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


@deploy
def __init__(registry_: Registry, start_timestamp_: uint256, window_s_: uint256, request_lead_s_: uint256):
    """
    @param registry_ The market's role registry.
    @param start_timestamp_ Start of window 0. [s since the Unix epoch]
    @param window_s_ Length of one window; positive. [s]
    @param request_lead_s_ Request deadline before a window's start;
           positive (allocation needs the time between deadline and
           start) and at most `start_timestamp_`. [s]
    """
    assert window_s_ != 0, "charging: zero window"
    assert request_lead_s_ != 0 and request_lead_s_ <= start_timestamp_, "charging: request lead out of range"
    registry = registry_
    start_timestamp = start_timestamp_
    window_s = window_s_
    request_lead_s = request_lead_s_


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
    @param power_w Charging power wanted; 1 to `MAX_POWER_W`. [W]
    @param energy_needed_wh Energy still needed to reach the target;
           1 to `MAX_ENERGY_WH`. [Wh]
    @param soc_permille State of charge; 0 to 1000. [permille]
    @param departure_timestamp When the EV leaves (or the ESU must be
           charged); after the window's start. [s since the Unix epoch]
    """
    # checks
    assert staticcall registry.has_role(msg.sender, _ROLE_PROSUMER), "charging: caller is not a prosumer"
    assert power_w != 0, "charging: zero power"
    assert power_w <= MAX_POWER_W, "charging: power above limit"
    assert energy_needed_wh != 0, "charging: zero energy"
    assert energy_needed_wh <= MAX_ENERGY_WH, "charging: energy above limit"
    assert soc_permille <= _FULL_SOC_PERMILLE, "charging: state of charge above 1000 permille"
    assert departure_timestamp > start_timestamp + window * window_s, "charging: departure not after window start"
    assert block.timestamp < self._deadline(window), "charging: deadline passed"
    assert not self._has_request[window][msg.sender], "charging: request exists"
    assert len(self._requests[window]) < MAX_REQUESTS, "charging: window full"

    # effects
    self._has_request[window][msg.sender] = True
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
    @dev Charging power admitted to `account` in `window`.
    @param window Index of the window.
    @param account The account to look up.
    @return uint256 The requested power if admitted, else 0. [W]
    """
    return self._admitted_power_w[window][account]


@external
@view
def allocation(window: uint256) -> Allocation:
    """
    @dev Outcome of `window`; all fields zero until it is allocated.
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
