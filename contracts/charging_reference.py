"""Reference implementation of the charging coordination rule in plain Python.

:func:`allocate` follows ``ChargingCoordination.allocate`` with the same
integer arithmetic; the contract tests check the chain against it.
Power is positive when charging (the storage convention of
``docs/nomenclature.md``).
"""

from collections.abc import Sequence
from dataclasses import dataclass

from gridledger.units import SECONDS_PER_HOUR



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
