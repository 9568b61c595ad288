"""Reference implementation of the charging coordination rule in plain Python.

:func:`allocate` follows ``ChargingCoordination.allocate``,
:func:`check_request` the checks of ``request_charge`` against the EV's
registration and its session, and :func:`check_override` the checks of an
emergency ``override``, with the same integer arithmetic and revert
reasons; the contract tests check the chain against them.
Power is positive when charging (the storage convention of
``docs/nomenclature.md``).
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from gridledger.units import SECONDS_PER_HOUR

MAX_ENERGY_WH = 10**12
"""Largest registered capacity, ``ChargingCoordination.MAX_ENERGY_WH``. [Wh]"""
MAX_POWER_W = 10**9
"""Largest charger power, ``ChargingCoordination.MAX_POWER_W``. [W]"""
FULL_SOC_PERMILLE = 1000
NEED_SLACK_WH = 1
"""Rounding allowance of an energy need against an earlier one: the EV
rounds each need up to the next Wh. [Wh]"""


class RequestRefused(ValueError):
    """A request ``request_charge`` reverts; the message is its exact revert reason."""


class OverrideRefused(ValueError):
    """An ``override`` the contract reverts; the message is its exact revert reason."""


@dataclass(frozen=True)
class EVRegistration:
    """An EV as the operator registers it before the first window.

    Attributes
    ----------
    account : str
        Address of the prosumer owning the EV.
    capacity_wh : int
        Most energy one session draws from the grid: battery capacity
        over charger efficiency, rounded up. [Wh]
    max_charge_w : int
        Charger rating, to the nearest W. [W]
    """

    account: str
    capacity_wh: int
    max_charge_w: int


@dataclass(frozen=True)
class Mark:
    """One request of a session: its window and energy need. [Wh]"""

    window: int
    energy_needed_wh: int


@dataclass(frozen=True)
class Session:
    """An account's charging session, as ``ChargingCoordination.session`` keeps it.

    Attributes
    ----------
    departure_timestamp : int
        Declared departure. [s since the Unix epoch]
    first_window : int
        Window of the session's first request.
    soc_permille : int
        Last claimed state of charge. [permille]
    last, previous : Mark or None
        The session's last two requests; ``previous`` is None after one.
    """

    departure_timestamp: int
    first_window: int
    soc_permille: int
    last: Mark
    previous: Mark | None


@dataclass(frozen=True)
class ChargeRequest:
    """One charging request of a window, in submission order.

    Attributes
    ----------
    account : str
        Address of the prosumer that owns the EV or storage unit.
    power_w : int
        Charging power wanted. [W]
    energy_needed_wh : int
        Energy still needed to reach the target. [Wh]
    soc_permille : int
        State of charge, 0 to 1000. [permille]
    departure_timestamp : int
        When the EV leaves or the storage unit must be charged.
        [s since the Unix epoch]
    """

    account: str
    power_w: int
    energy_needed_wh: int
    soc_permille: int
    departure_timestamp: int


@dataclass(frozen=True)
class Admission:
    """One admitted request: its account and the power it may draw. [W]"""

    account: str
    power_w: int


def time_to_complete_s(request: ChargeRequest) -> int:
    """Time to complete charging at the requested power, rounded up.

    Parameters
    ----------
    request : ChargeRequest
        The request.

    Returns
    -------
    tcc_s : int
        ceil(3600 * energy_needed_wh / power_w). [s]
    """
    return -(-request.energy_needed_wh * SECONDS_PER_HOUR // request.power_w)


def must_charge_now(request: ChargeRequest, window_end_timestamp: int) -> bool:
    """Whether the request cannot wait past this window and still finish.

    Its laxity, departure - window_end - tcc_s, is at most 0: charging
    only from the next window on at the requested power would end after
    departure.

    Parameters
    ----------
    request : ChargeRequest
        The request.
    window_end_timestamp : int
        End of the request's window. [s since the Unix epoch]
    """
    return request.departure_timestamp - window_end_timestamp - time_to_complete_s(request) <= 0


def priority(requests: Sequence[ChargeRequest], window_end_timestamp: int) -> list[int]:
    """Indices of ``requests`` in admission priority.

    Requests that must charge now (:func:`must_charge_now`) first, then
    lower state of charge, shorter time to complete charging
    (:func:`time_to_complete_s`), lower power and earlier submission.
    State of charge and time to complete charging are the priority
    criteria of Baza et al.; the feasibility class ahead of them keeps
    EVs that cannot wait from being displaced.

    Parameters
    ----------
    requests : sequence of ChargeRequest
        The window's requests in submission order.
    window_end_timestamp : int
        End of the window. [s since the Unix epoch]

    Returns
    -------
    list of int
        The permutation, highest priority first.

    References
    ----------
    M. Baza, M. Nabil, M. Ismail, M. Mahmoud, E. Serpedin,
    M. A. Rahman, "Blockchain-based charging coordination mechanism for
    smart grid energy storage units", 2019 IEEE International Conference
    on Blockchain, arXiv:1811.02001.
    """

    def rank(index: int) -> tuple[bool, int, int, int, int]:
        request = requests[index]
        return (
            not must_charge_now(request, window_end_timestamp),
            request.soc_permille,
            time_to_complete_s(request),
            request.power_w,
            index,
        )

    return sorted(range(len(requests)), key=rank)


def allocate(
    headroom_w: int, requests: Sequence[ChargeRequest], window_end_timestamp: int
) -> tuple[Admission, ...]:
    """Admit a window's charging requests within the feeder headroom.

    Greedy-skip: in :func:`priority` order each request is admitted if
    its power fits in the headroom the requests admitted before it
    leave, and skipped otherwise; the scan goes on, so a later, smaller
    request may still fit. The admitted power is at most the headroom,
    and every skipped request needs more than the headroom left once
    all admissions are made.

    Parameters
    ----------
    headroom_w : int
        Charging power the feeder can give in the window. [W]
    requests : sequence of ChargeRequest
        The window's requests in submission order, one per account.
    window_end_timestamp : int
        End of the window. [s since the Unix epoch]

    Returns
    -------
    tuple of Admission
        The admitted requests in priority order.

    References
    ----------
    M. Baza et al., "Blockchain-based charging coordination mechanism
    for smart grid energy storage units", 2019 IEEE International
    Conference on Blockchain, arXiv:1811.02001.
    C. Liu, K. K. Chai, X. Zhang, E. T. Lau, Y. Chen, "Adaptive
    blockchain-based electric vehicle participation scheme in smart grid
    platform", IEEE Access 6, 2018.
    """
    accounts = [request.account for request in requests]
    if len(set(accounts)) != len(accounts):
        raise ValueError("an account may request only once per window")
    admitted = []
    left_w = headroom_w
    for index in priority(requests, window_end_timestamp):
        request = requests[index]
        if request.power_w <= left_w:
            admitted.append(Admission(request.account, request.power_w))
            left_w -= request.power_w
    return tuple(admitted)


def need_bound_wh(session: Session, mark: Mark | None, timestamp: int, start_timestamp: int, window_s: int,
                  admitted_power_w: Mapping[int, int]) -> int | None:
    """Most energy a request of an open ``session`` may need after its earlier request ``mark``.

    ``mark``'s need less the energy admitted in the session's windows
    (its last two requests' windows, the first window excepted) from
    ``mark``'s window on that ended by ``timestamp``, counting
    ``admitted - 1`` W per window, never below 0, plus
    :data:`NEED_SLACK_WH`; None if there is no ``mark``.

    Parameters
    ----------
    session : Session
        The open session.
    mark : Mark or None
        An earlier request of the session.
    timestamp : int
        Block timestamp of the new request. [s since the Unix epoch]
    start_timestamp, window_s : int
        Start of window 0 [s since the Unix epoch] and window length [s].
    admitted_power_w : mapping of int to int
        The account's admitted power by window. [W]
    """
    if mark is None:
        return None
    admitted_wh = 0
    for earlier in (session.previous, session.last):
        if earlier is None or earlier.window == session.first_window:
            continue
        if earlier.window < mark.window or start_timestamp + (earlier.window + 1) * window_s > timestamp:
            continue
        power_w = admitted_power_w.get(earlier.window, 0)
        if power_w:
            admitted_wh += (power_w - 1) * window_s // SECONDS_PER_HOUR
    return max(mark.energy_needed_wh - admitted_wh, 0) + NEED_SLACK_WH


def check_request(ev: EVRegistration | None, session: Session | None, request: ChargeRequest, window: int, *,
                  timestamp: int, start_timestamp: int, window_s: int, min_request_w: int,
                  admitted_power_w: Mapping[int, int]) -> Session:
    """The account's session after ``request`` for ``window``, or the reason the contract refuses it.

    The registration and session checks of ``request_charge``, in its
    order (the role, deadline and window-full checks are not repeated):
    an account requests windows in increasing order, once each.

    Parameters
    ----------
    ev : EVRegistration or None
        The requesting account's registered EV; None if not registered.
    session : Session or None
        Its session before the request; None before its first request.
    request : ChargeRequest
        The request.
    window : int
        Its window.
    timestamp : int
        Block timestamp the request is mined at. [s since the Unix epoch]
    start_timestamp, window_s : int
        Start of window 0 [s since the Unix epoch] and window length [s].
    min_request_w : int
        Least power of a request. [W]
    admitted_power_w : mapping of int to int
        The account's admitted power by window. [W]

    Returns
    -------
    Session
        The session the request opens or continues.

    Raises
    ------
    RequestRefused
        With the contract's exact revert reason.
    """
    checks = (
        (ev is not None, "charging: EV not registered"),
        (request.power_w >= min_request_w, "charging: power below minimum"),
        (ev is None or request.power_w <= ev.max_charge_w, "charging: power above registered charger"),
        (request.energy_needed_wh != 0, "charging: zero energy"),
        (ev is None or request.energy_needed_wh <= ev.capacity_wh, "charging: energy above registered capacity"),
        (request.soc_permille <= FULL_SOC_PERMILLE, "charging: state of charge above 1000 permille"),
        (request.departure_timestamp > start_timestamp + window * window_s,
         "charging: departure not after window start"),
    )
    for ok, reason in checks:
        if not ok:
            raise RequestRefused(reason)
    if session is not None and window <= session.last.window:
        raise RequestRefused("charging: request exists" if window == session.last.window
                             else "charging: window before last request")
    mark = Mark(window, request.energy_needed_wh)
    if session is None or session.departure_timestamp <= start_timestamp + window * window_s:
        return Session(request.departure_timestamp, window, request.soc_permille, mark, None)
    if request.departure_timestamp != session.departure_timestamp:
        raise RequestRefused("charging: departure differs from session")
    if request.soc_permille < session.soc_permille:
        raise RequestRefused("charging: state of charge below earlier claim")
    bounds = [need_bound_wh(session, m, timestamp, start_timestamp, window_s, admitted_power_w)
              for m in (session.last, session.previous)]
    if any(b is not None and request.energy_needed_wh > b for b in bounds):
        raise RequestRefused("charging: energy need above earlier claim less admitted")
    return Session(session.departure_timestamp, session.first_window, request.soc_permille, mark, session.last)


def check_override(emergency_refusal: str | None, ev: EVRegistration | None, window: int, new_w: int, *,
                   timestamp: int, start_timestamp: int, window_s: int, allocated: bool, admitted_w: int) -> int:
    """The account's admitted power in ``window`` after an emergency override to ``new_w``, or the contract's reason.

    An override only cuts: ``new_w`` is at most the power admitted now
    (``admitted_w``, itself at most what ``allocate`` admitted and so at
    most the registered charger), and an EV not admitted stays so. A cut
    lowers the feeder's load, so the window stays within its headroom,
    and the power it frees goes to no one, so the service account cannot
    favour anybody; raising an admission would bypass both the headroom
    and the priority rule of :func:`allocate`.

    Parameters
    ----------
    emergency_refusal : str or None
        ``EmergencyAccess.refusal(sender, SCOPE_OVERRIDE_CHARGING, account)``
        at ``timestamp`` ("" if the grant covers the call); None if the
        contract has no emergency access.
    ev : EVRegistration or None
        The account's registered EV; None if not registered.
    window : int
        The window.
    new_w : int
        The admitted power asked for. [W]
    timestamp : int
        Block timestamp of the override. [s since the Unix epoch]
    start_timestamp, window_s : int
        Start of window 0 [s since the Unix epoch] and window length [s].
    allocated : bool
        Whether ``window`` is allocated.
    admitted_w : int
        The account's admitted power in ``window`` now. [W]

    Returns
    -------
    int
        ``new_w``, the account's admitted power from then on. [W]

    Raises
    ------
    OverrideRefused
        With the contract's exact revert reason, the emergency access's
        own reason when the grant does not cover the call.
    """
    checks = (
        (emergency_refusal is not None, "charging: no emergency access"),
        (not emergency_refusal, emergency_refusal),
        (ev is not None, "charging: EV not registered"),
        (timestamp < start_timestamp + (window + 1) * window_s, "charging: window over"),
        (allocated, "charging: window not allocated"),
        (admitted_w != 0, "charging: EV not admitted"),
        (new_w <= admitted_w, "charging: override above admitted"),
    )
    for ok, reason in checks:
        if not ok:
            raise OverrideRefused(reason)
    return new_w
