# pragma version ~=0.4.3
"""
@title Meter-Fraud Audit of a GridLedger Market
@custom:contract-name audit
@license BSD-3-Clause
@notice An independent auditor, who holds no role in the market's
        registry, checks posted meter readings against the power flow
        (state estimation) and flags a reading it finds false, with its
        own estimate of the registers and the evidence. A flag holds
        the credit the reading may have gained unduly plus a penalty in
        the Settlement; the prosumer may dispute it, the Settlement's
        operator then judges, and an undisputed flag is confirmed once
        the dispute window has passed. A meter flagged too often is
        isolated: the Settlement refuses its readings and the auditor
        settles its intervals from estimates until the operator
        recertifies it.
        Functions:
        - `flag`, `settle_estimate` (`external` functions, the auditor
          only),
        - `dispute` (`external` function, the flagged prosumer only),
        - `resolve`, `recertify` (`external` functions, the operator
          only),
        - `finalize` (`external` function, anyone),
        - `status`, `flag_of`, `is_isolated`, `flag_deadline_timestamp`
          (`external` `view` functions).
        States of a (interval, prosumer): NONE -> FLAGGED -> (DISPUTED
        ->) CONFIRMED or REJECTED; `status` returns the `STATUS_*`
        code.
        Windows: a reading can be flagged from its posting for
        `flag_window_s` (the Settlement keeps the credit a reading adds
        from being withdrawn for as long, so it cannot leave before it
        can be flagged); a flag can be disputed for `dispute_window_s`
        after it was made and finalized from then on.
        Amounts of a flag, with m = export - import of the reading
        (read) and of the estimate (est) [Wh] and d = m_read - m_est:
        overpaid = max(0, o_read - o_est), what the false reading gained
        over the estimate, where o is the imbalance payment the
        Settlement computes for those registers against the cleared
        position (`Settlement.imbalance_owed_wei`: grid sell price for a
        surplus, buy price for a shortfall, non-delivery charge);
        penalty = |d| * `penalty_wei_per_wh`. The flag asks the Settlement to hold
        overpaid + penalty; it holds what the prosumer's free credit
        covers (`held_wei` of the flag).
        Confirmation (by the operator or `finalize`): the held credit
        goes to the operator up to overpaid (restitution: the operator
        is the imbalance counterparty that paid it), then to the
        Settlement's penalty pool up to penalty (a penalty is never
        paid to the party that judges it), the rest back to the
        prosumer. Rejection: all of it back to the prosumer, and the
        flag no longer counts towards isolation (an isolation it
        completed stands until the operator recertifies the meter).
        Isolation: after each flag of interval k, if the prosumer has
        counting flags (not rejected, made since its last
        recertification) in at least `isolate_k` of the `isolate_n`
        intervals k - isolate_n + 1 .. k, it is isolated.
@custom:security The auditor is trusted to flag only readings its
                 estimate contradicts: a false flag costs the prosumer
                 nothing once rejected, but holds its credit until the
                 operator resolves the dispute, which has no deadline.
                 A flag the prosumer does not dispute is confirmed. The
                 auditor's estimates of an isolated prosumer are
                 settled as given, within the registered limits. The operator judges disputes and
                 gains the overpaid part of a confirmed flag, never its
                 penalty.
"""


# @dev The Settlement's registry: roles of the auditor.
interface Registry:
    def roles(account: address) -> uint256: view


# @dev The Settlement this contract audits.
interface Settlement:
    def operator() -> address: view
    def registry() -> Registry: view
    def interval_s() -> uint256: view
    def imbalance_owed_wei(interval: uint256, prosumer: address, import_wh: uint256, export_wh: uint256) -> int256: view
    def READING_TOLERANCE_WH() -> uint256: view
    def reading(interval: uint256, prosumer: address) -> Reading: view
    def posted_timestamp(interval: uint256, prosumer: address) -> uint256: view
    def limits(prosumer: address) -> Limits: view
    def hold(account: address, amount_wei: uint256) -> uint256: nonpayable
    def release_held(account: address, amount_wei: uint256, payee: address): nonpayable
    def post_estimate(
        interval: uint256, prosumer: address, import_wh: uint256, export_wh: uint256, pv_wh: uint256, battery_wh: uint256
    ): nonpayable


# @dev A posted reading, as `Settlement.reading` returns it. [Wh]
struct Reading:
    import_wh: uint256
    export_wh: uint256
    pv_wh: uint256
    battery_wh: uint256
    posted: bool


# @dev Registered limits, as `Settlement.limits` returns them. [W]
struct Limits:
    meter_rating_w: uint256
    pv_w: uint256
    battery_w: uint256
    registered: bool


# @dev One flag: its state, the auditor's estimate and evidence, and
# the amounts it asked to hold and held.
struct Flag:
    status: uint256
    flagged_timestamp: uint256
    estimate_import_wh: uint256
    estimate_export_wh: uint256
    residual_milli: int256
    chi2_milli: uint256
    evidence: bytes32
    overpaid_wei: uint256
    penalty_wei: uint256
    held_wei: uint256


# @dev Codes of `status`.
STATUS_NONE: public(constant(uint256)) = 0
STATUS_FLAGGED: public(constant(uint256)) = 1
STATUS_DISPUTED: public(constant(uint256)) = 2
STATUS_CONFIRMED: public(constant(uint256)) = 3
STATUS_REJECTED: public(constant(uint256)) = 4


# @dev Longest flag or dispute window the constructor accepts: 30 days. [s]
MAX_WINDOW_S: public(constant(uint256)) = 30 * 86400


# @dev Longest isolation look-back. [intervals]
MAX_ISOLATE_N: public(constant(uint256)) = 32


# @dev Largest penalty rate the constructor accepts; the Settlement's
# `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Seconds per hour, to turn power times interval into energy. [s/h]
_SECONDS_PER_HOUR: constant(uint256) = 3600


# @dev The audited Settlement.
settlement: public(immutable(Settlement))


# @dev The Settlement's operator: judges disputes, recertifies.
operator: public(immutable(address))


# @dev The Settlement's role registry.
registry: public(immutable(Registry))


# @dev The only account that flags and estimates; holds no registry role.
auditor: public(immutable(address))


# @dev Time a reading can be flagged after its posting. [s]
flag_window_s: public(immutable(uint256))


# @dev Time a flag can be disputed after it was made. [s]
dispute_window_s: public(immutable(uint256))


# @dev Counting flags among the last `isolate_n` intervals that isolate
# a meter. [intervals]
isolate_k: public(immutable(uint256))


# @dev Look-back of the isolation rule. [intervals]
isolate_n: public(immutable(uint256))


# @dev Penalty per Wh of |m_read - m_est|. [wei/Wh]
penalty_wei_per_wh: public(immutable(uint256))


# @dev The Settlement's interval length. [s]
interval_s: public(immutable(uint256))


# @dev The Settlement's reading tolerance. [Wh]
reading_tolerance_wh: public(immutable(uint256))


# @dev Flag of each prosumer per interval.
_flags: HashMap[uint256, HashMap[address, Flag]]


# @dev Certification epoch + 1 of each counting flag, 0 for none or a
# rejected one: a flag counts towards isolation while it equals the
# prosumer's `epoch` + 1.
_counted: HashMap[uint256, HashMap[address, uint256]]


# @dev Recertifications of each prosumer so far.
epoch: public(HashMap[address, uint256])


# @dev Whether each prosumer's meter is isolated.
is_isolated: public(HashMap[address, bool])


# @dev Emitted when the auditor flags a reading; `held_wei` is what the
# Settlement held.
event Flagged:
    interval: indexed(uint256)
    prosumer: indexed(address)
    residual_milli: int256
    chi2_milli: uint256
    evidence: bytes32
    held_wei: uint256


# @dev Emitted when a prosumer's meter is isolated at the flag of `interval`.
event Isolated:
    prosumer: indexed(address)
    interval: indexed(uint256)
    reason: String[64]


# @dev Emitted when the prosumer disputes its flag of `interval`.
event Disputed:
    interval: indexed(uint256)
    prosumer: indexed(address)


# @dev Emitted when a flag is confirmed or rejected.
event Resolved:
    interval: indexed(uint256)
    prosumer: indexed(address)
    confirmed: bool
    reason: String[64]


# @dev Emitted when the operator recertifies an isolated meter.
event Recertified:
    prosumer: indexed(address)


@deploy
def __init__(
    settlement_: Settlement,
    auditor_: address,
    flag_window_s_: uint256,
    dispute_window_s_: uint256,
    isolate_k_: uint256,
    isolate_n_: uint256,
    penalty_wei_per_wh_: uint256,
):
    """
    @dev Reads the operator, registry, interval length and reading
         tolerance from the Settlement.
    @param settlement_ The audited Settlement, which must then name
           this contract its audit (`Settlement.set_audit`).
    @param auditor_ The auditor; holds no role in the registry and is
           not the operator.
    @param flag_window_s_ Flag window; 1 to `MAX_WINDOW_S`. [s]
    @param dispute_window_s_ Dispute window; 1 to `MAX_WINDOW_S`. [s]
    @param isolate_k_ Counting flags that isolate; 1 to `isolate_n_`.
    @param isolate_n_ Look-back; `isolate_k_` to `MAX_ISOLATE_N`. [intervals]
    @param penalty_wei_per_wh_ Penalty rate; at most
           `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    """
    registry_: Registry = staticcall settlement_.registry()
    operator_: address = staticcall settlement_.operator()
    assert auditor_ != empty(address), "audit: auditor is the zero address"
    assert auditor_ != operator_ and staticcall registry_.roles(auditor_) == 0, "audit: auditor holds a role"
    assert (
        flag_window_s_ != 0
        and flag_window_s_ <= MAX_WINDOW_S
        and dispute_window_s_ != 0
        and dispute_window_s_ <= MAX_WINDOW_S
    ), "audit: window out of range"
    assert isolate_k_ != 0 and isolate_k_ <= isolate_n_ and isolate_n_ <= MAX_ISOLATE_N, "audit: isolation out of range"
    assert penalty_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH, "audit: price out of range"
    settlement = settlement_
    operator = operator_
    registry = registry_
    auditor = auditor_
    flag_window_s = flag_window_s_
    dispute_window_s = dispute_window_s_
    isolate_k = isolate_k_
    isolate_n = isolate_n_
    penalty_wei_per_wh = penalty_wei_per_wh_
    interval_s = staticcall settlement_.interval_s()
    reading_tolerance_wh = staticcall settlement_.READING_TOLERANCE_WH()


@external
def flag(
    interval: uint256,
    prosumer: address,
    estimate_import_wh: uint256,
    estimate_export_wh: uint256,
    residual_milli: int256,
    chi2_milli: uint256,
    evidence: bytes32,
):
    """
    @dev Flags the posted reading of `prosumer` for `interval`; the
         auditor only (while it holds no registry role), once, within
         `flag_window_s` of the posting. Holds overpaid + penalty of the
         prosumer's free credit (header) and may isolate the meter.
         A false flag costs the auditor nothing on chain; it costs the
         prosumer the use of the held credit until the flag is
         rejected.
    @param interval Index of the market interval.
    @param prosumer The prosumer whose reading is flagged.
    @param estimate_import_wh The auditor's import estimate; within the
           meter rating * interval + tolerance. [Wh]
    @param estimate_export_wh The auditor's export estimate; within the
           smaller of the meter rating and PV peak + battery power,
           times the interval, + tolerance. [Wh]
    @param residual_milli Normalized residual of the reading in the
           state estimation. [1/1000]
    @param chi2_milli Chi-square statistic of the estimation. [1/1000]
    @param evidence Hash of the off-chain evidence (measurements, model).
    """
    # checks
    self._check_auditor()
    posted_timestamp: uint256 = staticcall settlement.posted_timestamp(interval, prosumer)
    assert posted_timestamp != 0, "audit: no reading"
    assert block.timestamp < posted_timestamp + flag_window_s, "audit: flag window closed"
    assert self._flags[interval][prosumer].status == STATUS_NONE, "audit: already flagged"
    assert self._estimate_within_limits(
        prosumer, estimate_import_wh, estimate_export_wh
    ), "audit: estimate above limits"
    r: Reading = staticcall settlement.reading(interval, prosumer)
    # Every energy is below 2**40 Wh and each rate at most 10**24
    # wei/Wh: the products stay far inside int256.
    excess_wh: int256 = (
        convert(r.export_wh, int256) - convert(r.import_wh, int256)
        - convert(estimate_export_wh, int256) + convert(estimate_import_wh, int256)
    )
    read_owed_wei: int256 = staticcall settlement.imbalance_owed_wei(interval, prosumer, r.import_wh, r.export_wh)
    estimate_owed_wei: int256 = staticcall settlement.imbalance_owed_wei(
        interval, prosumer, estimate_import_wh, estimate_export_wh
    )
    overpaid_wei: uint256 = convert(max(read_owed_wei - estimate_owed_wei, 0), uint256)
    penalty_wei: uint256 = convert(abs(excess_wh), uint256) * penalty_wei_per_wh

    # effects
    self._flags[interval][prosumer] = Flag(
        status=STATUS_FLAGGED,
        flagged_timestamp=block.timestamp,
        estimate_import_wh=estimate_import_wh,
        estimate_export_wh=estimate_export_wh,
        residual_milli=residual_milli,
        chi2_milli=chi2_milli,
        evidence=evidence,
        overpaid_wei=overpaid_wei,
        penalty_wei=penalty_wei,
        held_wei=0,
    )
    epoch_: uint256 = self.epoch[prosumer]
    self._counted[interval][prosumer] = epoch_ + 1
    isolate: bool = not self.is_isolated[prosumer] and self._counting_flags(prosumer, interval, epoch_) >= isolate_k
    if isolate:
        self.is_isolated[prosumer] = True

    # interactions: the Settlement is fixed at deployment and calls
    # nothing back, so recording what it held after the call is safe.
    held_wei: uint256 = 0
    if overpaid_wei + penalty_wei != 0:
        held_wei = extcall settlement.hold(prosumer, overpaid_wei + penalty_wei)
        self._flags[interval][prosumer].held_wei = held_wei
    log Flagged(
        interval=interval,
        prosumer=prosumer,
        residual_milli=residual_milli,
        chi2_milli=chi2_milli,
        evidence=evidence,
        held_wei=held_wei,
    )
    if isolate:
        log Isolated(prosumer=prosumer, interval=interval, reason="audit: flags reached isolate_k of isolate_n")


@external
def dispute(interval: uint256):
    """
    @dev Disputes the caller's own flag of `interval`, within
         `dispute_window_s` of the flag; the operator then judges it
         (`resolve`). Disputing costs nothing but gas; a dispute the
         operator confirms costs what the confirmation costs.
    @param interval Index of the flagged interval.
    """
    # checks
    f: Flag = self._flags[interval][msg.sender]
    assert f.status == STATUS_FLAGGED, "audit: not flagged"
    assert block.timestamp < f.flagged_timestamp + dispute_window_s, "audit: dispute window closed"

    # effects
    self._flags[interval][msg.sender].status = STATUS_DISPUTED
    log Disputed(interval=interval, prosumer=msg.sender)


@external
def resolve(interval: uint256, prosumer: address, confirm: bool):
    """
    @dev Judges a disputed flag; the Settlement's operator only.
         Confirming pays the operator at most the overpaid part and
         the penalty pool the penalty (never the operator); rejecting
         returns the whole hold and uncounts the flag.
    @param interval Index of the flagged interval.
    @param prosumer The flagged prosumer.
    @param confirm True to confirm the flag, False to reject it.
    """
    # checks
    assert msg.sender == operator, "audit: caller is not operator"
    assert self._flags[interval][prosumer].status == STATUS_DISPUTED, "audit: not disputed"

    # effects and interactions
    if confirm:
        self._confirm(interval, prosumer, "audit: confirmed by operator")
    else:
        self._flags[interval][prosumer].status = STATUS_REJECTED
        self._counted[interval][prosumer] = 0
        held_wei: uint256 = self._flags[interval][prosumer].held_wei
        if held_wei != 0:
            extcall settlement.release_held(prosumer, held_wei, prosumer)
        log Resolved(interval=interval, prosumer=prosumer, confirmed=False, reason="audit: rejected by operator")


@external
def finalize(interval: uint256, prosumer: address):
    """
    @dev Confirms an undisputed flag once its dispute window has
         passed; anyone may call it.
    @param interval Index of the flagged interval.
    @param prosumer The flagged prosumer.
    """
    # checks
    f: Flag = self._flags[interval][prosumer]
    assert f.status == STATUS_FLAGGED, "audit: not flagged"
    assert block.timestamp >= f.flagged_timestamp + dispute_window_s, "audit: dispute window open"

    # effects and interactions
    self._confirm(interval, prosumer, "audit: not disputed in time")


@external
def recertify(prosumer: address):
    """
    @dev Ends the isolation of `prosumer`'s meter and clears its flag
         history (earlier flags no longer count); the Settlement's
         operator only, once the meter is checked or replaced.
         Pending flags still resolve as before.
    @param prosumer The isolated prosumer.
    """
    # checks
    assert msg.sender == operator, "audit: caller is not operator"
    assert self.is_isolated[prosumer], "audit: not isolated"

    # effects
    self.is_isolated[prosumer] = False
    self.epoch[prosumer] += 1
    log Recertified(prosumer=prosumer)


@external
def settle_estimate(interval: uint256, prosumer: address, import_wh: uint256, export_wh: uint256):
    """
    @dev Settles `interval` of an isolated prosumer from the auditor's
         estimate (`Settlement.post_estimate`: the Settlement's checks
         and reasons of a reading); the auditor only (while it holds no
         registry role). The estimate's export is booked as PV up to the
         registered PV peak over the interval, the rest as battery
         discharge.
    @param interval Index of a cleared and ended interval without a
           reading.
    @param prosumer The isolated prosumer.
    @param import_wh Estimated import; within the meter rating * interval
           + tolerance. [Wh]
    @param export_wh Estimated export; within the smaller of the meter
           rating and PV peak + battery power, times the interval, +
           tolerance. [Wh]
    """
    self._check_auditor()
    assert self.is_isolated[prosumer], "audit: not isolated"
    assert self._estimate_within_limits(prosumer, import_wh, export_wh), "audit: estimate above limits"
    limits: Limits = staticcall settlement.limits(prosumer)
    pv_wh: uint256 = min(export_wh, limits.pv_w * interval_s // _SECONDS_PER_HOUR)
    extcall settlement.post_estimate(interval, prosumer, import_wh, export_wh, pv_wh, export_wh - pv_wh)


@external
@view
def status(interval: uint256, prosumer: address) -> uint256:
    """
    @dev State of the reading of `prosumer` for `interval`.
    @param interval Index of the market interval.
    @param prosumer The prosumer.
    @return uint256 A `STATUS_*` code.
    """
    return self._flags[interval][prosumer].status


@external
@view
def flag_of(interval: uint256, prosumer: address) -> Flag:
    """
    @dev The flag of `prosumer` for `interval`: status, time, estimate
         [Wh], residual and chi-square [1/1000], evidence, and the
         overpaid, penalty and held amounts [wei]; all zero unflagged.
    @param interval Index of the market interval.
    @param prosumer The prosumer.
    @return Flag The stored flag.
    """
    return self._flags[interval][prosumer]


@external
@view
def flag_deadline_timestamp(interval: uint256, prosumer: address) -> uint256:
    """
    @dev End of the flag window of the reading of `prosumer` for
         `interval`; 0 while no reading is posted.
    @param interval Index of the market interval.
    @param prosumer The prosumer.
    @return uint256 The posting time + `flag_window_s`. [s since the Unix epoch]
    """
    posted_timestamp: uint256 = staticcall settlement.posted_timestamp(interval, prosumer)
    if posted_timestamp == 0:
        return 0
    return posted_timestamp + flag_window_s


@internal
@view
def _check_auditor():
    """
    @dev Reverts unless the auditor calls and still holds no registry role.
    """
    assert msg.sender == auditor, "audit: caller is not auditor"
    assert staticcall registry.roles(auditor) == 0, "audit: auditor holds a role"


@internal
@view
def _estimate_within_limits(prosumer: address, import_wh: uint256, export_wh: uint256) -> bool:
    """
    @dev Whether an estimate fits the prosumer's registered limits over
         one interval, plus the reading tolerance: import up to the
         meter rating, export up to the smaller of the meter rating and
         PV peak + battery power.
    @param prosumer The prosumer.
    @param import_wh Estimated import. [Wh]
    @param export_wh Estimated export. [Wh]
    @return bool True if within the limits.
    """
    limits: Limits = staticcall settlement.limits(prosumer)
    # The Settlement bounds each power by 10**9 W and the interval by a
    # week: the energies stay far below 2**256.
    rating_wh: uint256 = limits.meter_rating_w * interval_s // _SECONDS_PER_HOUR
    sources_wh: uint256 = (
        limits.pv_w * interval_s // _SECONDS_PER_HOUR + limits.battery_w * interval_s // _SECONDS_PER_HOUR
    )
    return (
        import_wh <= rating_wh + reading_tolerance_wh
        and export_wh <= min(rating_wh, sources_wh) + reading_tolerance_wh
    )


@internal
@view
def _counting_flags(prosumer: address, interval: uint256, epoch_: uint256) -> uint256:
    """
    @dev Intervals among the `isolate_n` up to `interval` in which
         `prosumer` has a counting flag of the current epoch.
    @param prosumer The prosumer.
    @param interval The last interval looked at.
    @param epoch_ The prosumer's certification epoch.
    @return uint256 The number of intervals. [intervals]
    """
    count: uint256 = 0
    for i: uint256 in range(isolate_n, bound=MAX_ISOLATE_N):
        if i > interval:
            break
        if self._counted[interval - i][prosumer] == epoch_ + 1:
            count += 1
    return count


@internal
def _confirm(interval: uint256, prosumer: address, reason: String[64]):
    """
    @dev Confirms a flag: its hold goes to the operator up to the
         overpaid part, to the penalty pool up to the penalty, the rest
         back to the prosumer.
    @param interval Index of the flagged interval.
    @param prosumer The flagged prosumer.
    @param reason Why it is confirmed, for `Resolved`.
    """
    f: Flag = self._flags[interval][prosumer]
    self._flags[interval][prosumer].status = STATUS_CONFIRMED
    to_operator_wei: uint256 = min(f.held_wei, f.overpaid_wei)
    to_pool_wei: uint256 = min(f.held_wei - to_operator_wei, f.penalty_wei)
    rest_wei: uint256 = f.held_wei - to_operator_wei - to_pool_wei
    if to_operator_wei != 0:
        extcall settlement.release_held(prosumer, to_operator_wei, operator)
    if to_pool_wei != 0:
        extcall settlement.release_held(prosumer, to_pool_wei, empty(address))
    if rest_wei != 0:
        extcall settlement.release_held(prosumer, rest_wei, prosumer)
    log Resolved(interval=interval, prosumer=prosumer, confirmed=True, reason=reason)
