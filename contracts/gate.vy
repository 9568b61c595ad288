# pragma version ~=0.4.3
"""
@title Market Intervals and their Gate Closure
@custom:contract-name gate
@license BSD-3-Clause
@notice Module of the market mechanisms (`DoubleAuction.vy`,
        `PayAsBid.vy`, `MeritOrder.vy`, `VickreyAuction.vy`,
        `EnglishAuction.vy`): the clock of their market intervals.
        Interval k starts at `start_timestamp + k * interval_s` and ends
        `interval_s` later; its gate closes `gate_closure_s` seconds
        before it starts. Before the gate an interval takes orders,
        from the gate on it may be cleared.
        A contract `initializes: gate`, calls `gate.__init__` from its
        constructor and exports `gate.__interface__`.
        Functions:
        - `start_timestamp`, `interval_s`, `gate_closure_s`
          (`external` `view` functions),
        - `gate_timestamp`, `interval_end_timestamp` (`external` `view`
          functions),
        - `_gate_timestamp`, `_interval_end_timestamp`,
          `_check_before_gate`, `_check_after_gate`, `_is_open`
          (`internal` functions).
@custom:security An interval so far in the future that its timestamps
                 overflow uint256 reverts without a reason string.
"""


# @dev Reason of an order after its interval's gate.
GATE_CLOSED: constant(String[64]) = "gate: gate closed"


# @dev Start of interval 0. [s since the Unix epoch]
start_timestamp: public(immutable(uint256))


# @dev Length of one market interval. [s]
interval_s: public(immutable(uint256))


# @dev How long before its start an interval's gate closes. [s]
gate_closure_s: public(immutable(uint256))


@deploy
def __init__(start_timestamp_: uint256, interval_s_: uint256, gate_closure_s_: uint256):
    """
    @param start_timestamp_ Start of interval 0. [s since the Unix epoch]
    @param interval_s_ Length of one interval; positive. [s]
    @param gate_closure_s_ Gate lead time; at most `start_timestamp_`. [s]
    """
    assert interval_s_ != 0, "gate: zero interval"
    assert gate_closure_s_ <= start_timestamp_, "gate: gate closure before epoch"
    start_timestamp = start_timestamp_
    interval_s = interval_s_
    gate_closure_s = gate_closure_s_


@external
@view
def gate_timestamp(interval: uint256) -> uint256:
    """
    @dev First block timestamp at which `interval` takes no orders
         (bids, asks, offers, demand, lots or commitments) and may be
         cleared (a sealed-bid auction's reveal window opens).
    @param interval Index of the market interval.
    @return uint256 The gate closure time. [s since the Unix epoch]
    """
    return self._gate_timestamp(interval)


@external
@view
def interval_end_timestamp(interval: uint256) -> uint256:
    """
    @dev End of `interval`, when its meter readings are complete.
    @param interval Index of the market interval.
    @return uint256 The end time. [s since the Unix epoch]
    """
    return self._interval_end_timestamp(interval)


@internal
@view
def _gate_timestamp(interval: uint256) -> uint256:
    """
    @dev Gate closure time of `interval`.
    @param interval Index of the market interval.
    @return uint256 The gate closure time. [s since the Unix epoch]
    """
    return start_timestamp + interval * interval_s - gate_closure_s


@internal
@view
def _interval_end_timestamp(interval: uint256) -> uint256:
    """
    @dev End time of `interval`.
    @param interval Index of the market interval.
    @return uint256 The end time. [s since the Unix epoch]
    """
    return start_timestamp + (interval + 1) * interval_s


@internal
@view
def _check_before_gate(interval: uint256):
    """
    @dev Reverts unless the gate of `interval` is still open.
    @param interval Index of the market interval.
    """
    assert self._is_open(interval), GATE_CLOSED


@internal
@view
def _is_open(interval: uint256) -> bool:
    """
    @dev Whether the gate of `interval` is still open (orders accepted).
    @param interval Index of the market interval.
    @return bool True before the gate closure time.
    """
    return block.timestamp < self._gate_timestamp(interval)


@internal
@view
def _check_after_gate(interval: uint256):
    """
    @dev Reverts unless the gate of `interval` has closed.
    @param interval Index of the market interval.
    """
    assert block.timestamp >= self._gate_timestamp(interval), "gate: gate open"
