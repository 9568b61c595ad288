# pragma version ~=0.4.3
"""
@title Clearing House of a GridLedger Market
@custom:contract-name settlement
@license BSD-3-Clause
@notice Holds the market's tokens and keeps a signed credit per account
        (negative = debt, billed after delivery) plus the pool of
        peer-to-peer payments in flight. A bound meter posts each
        interval's reading once the interval has ended; the prosumer's
        cleared position is then settled at the money value the market
        mechanism gives it, buyers pay the grid fee to the operator, and
        the difference between metered and cleared energy is settled
        with the operator at the grid prices. Tokens leave only through
        `withdraw`; the penalty pool moves only to a payee's credit,
        through `Covered` (below). Any mechanism that offers
        `settlement_terms` (uniform or discriminatory prices alike) can
        be settled.
        Functions:
        - `register_prosumer`, `register_prosumers`, `post_price_spike` (`external` functions, the operator
          only, before the market starts),
        - `register_pseudonym` (`external` function, the registry's pseudonym contract only),
        - `deposit_for`, `deposit_for_each` (`external` functions),
        - `withdraw` (`external` function),
        - `lock`, `lock_bids`, `unlock` (`external` functions, the
          mechanism only),
        - `release` (`external` function),
        - `post_reading`, `post_signed_readings` (`external` functions),
        - `set_audit` (`external` function, the operator only),
        - `hold`, `release_held`, `post_estimate` (`external` functions,
          the audit only),
        - `settle_operator` (`external` function),
        - `credit_wei`, `pool_wei`, `penalty_pool_wei`, `reading`
          (`external` `view` functions),
        - `locked_wei`, `lock_wei`, `free_credit_wei`, `escrow_wei`
          (`external` `view` functions),
        - `sold_mix`, `consumed_mix` (`external` `view` functions),
        - `held_wei`, `fresh_wei`, `fresh_until_timestamp`,
          `posted_timestamp`, `imbalance_owed_wei` (`external` `view`
          functions),
        - `order_problems` (`external` `view` function),
        - `limits`, `is_debtor`, `order_limit_wh`, `can_lock` (`external` `view`
          functions).
        Price spikes: before the market starts the operator may announce
        an upstream price spike of an interval (`post_price_spike`): its
        imbalances and the replacement part of its non-delivery charges
        use that buy price instead of the tariff. Frozen from the start,
        a spike cannot change the terms of an interval already traded.
        Limits: before the market starts the operator registers each
        prosumer once (`register_prosumer`): its meter rating, PV peak
        and battery power [W]; they never change. A reading reverts if
        its import or export exceeds rating * interval, its PV energy
        PV peak * interval, its battery discharge battery power *
        interval, or its export PV + battery discharge, each plus
        `READING_TOLERANCE_WH` (the registers are rounded separately);
        an unregistered prosumer may post only an empty reading.
        Pseudonyms: the registry's pseudonym contract registers a
        one-time prosumer of one interval (`register_pseudonym`) at any
        time, with the limits of its class. It trades in that interval
        only: its orders elsewhere are refused ("settlement: pseudonym
        outside its interval": `trades_in`, `order_problems`, `lock`,
        `lock_bids`), its meter may post a non-empty reading for that
        interval only, and it may withdraw only once that interval's
        reading is settled ("settlement: pseudonym not settled"), so its
        bond pays its bill before it can leave.
        Orders: the mechanisms accept an order only from `min_order_wh`
        up to `order_limit_wh`: a bid up to the meter rating * interval,
        an ask (book ask, merit-order offer, lot) up to the smaller of
        that and (PV peak + battery power) * interval, what the seller
        could export; an unregistered account may order nothing. With
        one order per account and interval, a flood of orders is
        bounded by the registered accounts and costs each at least
        `min_order_wh`.
        Non-delivery: a seller's undelivered energy u = max(0, q -
        export) is charged nd = max(ceil(v * u / q), buy * u) +
        `non_delivery_penalty_wei_per_wh` * u instead of buy * u: the
        seller returns what it was paid for the undelivered share of
        its position (at least the grid's price of replacing it) plus
        the penalty. That share earned v * u / q <= nd - penalty * u,
        so an ask of energy the seller does not deliver loses at least
        penalty * u whatever the price it cleared at, up to what the
        seller can pay (below); an honest seller's forecast error costs
        only the penalty beyond the old imbalance price when its price
        is at most the buy price.
        Penalty pool: the penalty part of nd (penalty * u) goes to
        `penalty_pool_wei`, the rest of the imbalance payment to the
        operator, which paid for the replacement energy. A seller that
        cannot afford the whole payment pays the operator's part first,
        the penalty pool the rest. Nobody withdraws the penalty pool:
        its only release is by rule, whenever an imbalance payment
        leaves a payee (the operator or a prosumer) unpaid, the pool
        pays that payee's unpaid part up to its balance (`Covered`);
        the penalty pool's own unpaid part is not covered.
        Solvency: the operator extends a credit line `credit_line_wei`
        to every other account and has none itself. An imbalance
        payment is made only up to what the payer can afford: the
        prosumer's free credit plus the credit line, or the operator's
        free credit less `debt_wei`; the rest is logged as `Unpaid`,
        covered from the penalty pool as far as it goes, and left to
        the operator off-chain. So no account's free credit falls
        below -credit line, all debt is owed to the
        operator, and the operator may neither withdraw nor lock nor
        pay out the part of its credit its debtors owe it (`debt_wei`):
        the Settlement's tokens always cover every other account's
        positive credit, the operator's credit less `debt_wei`, and the
        two pools. A debtor (free credit below zero) can neither bid
        (`lock`) nor ask (the mechanisms check `is_debtor`).
        Escrow: a bid locks part of the bidder's credit, never tokens;
        the locks of an account (`lock_wei` per interval, `locked_wei`
        in total) are a part of its credit, and free credit = credit -
        locked - held (audit, below). The mechanism calls `lock(account, interval, q, p)`
        when it accepts a bid for q Wh at up to p wei/Wh, which locks
        `escrow_wei` = q * (p + fee) of free credit or reverts; the
        operator's locks carry no fee, since a fee it paid would be
        credited back to it. The mechanism calls `unlock` when a bid
        stops binding (an English leader outbid, a Vickrey bid revealed
        below the cap). Once the interval is cleared anyone may
        `release` an account's lock down to its obligation
        max(0, -v) + fee * max(0, -q) for its cleared position q and
        value v; an account without a purchase gets all of it back.
        `post_reading` (and `settle_operator` for the operator)
        releases the rest of the interval's lock before it pays.
        `withdraw` pays out free credit only.
        Sources: a reading carries the PV energy `pv_wh` and battery
        discharge `battery_wh` of the interval besides import and
        export. A seller's position q > 0 is attributed with delivered =
        min(q, export): pv = min(delivered, pv_wh), battery =
        min(delivered - pv, battery_wh), grid = q - pv - battery (the
        shortfall and re-sold grid energy); the interval sums the split
        of every seller (`sold_mix`). A buyer's consumed energy, its
        import, splits into its peer-to-peer part min(-q, import),
        shared pro rata to the interval's sold mix (pv and battery
        rounded down, the remainder grid), and the rest of its import,
        all grid (`consumed_mix`). The mix is final once every seller
        of the interval has posted.
        With q the position [Wh], v its money value [wei] (positive =
        received; p*q at a uniform price p), m = export - import:
        prosumer += v, pool -= v;
        q < 0: prosumer -= fee*|q|, operator += fee*|q|;
        u = max(0, q - export), d = m - q + u (= -import if u > 0);
        d > 0: prosumer += sell*d, operator -= sell*d;
        d < 0: prosumer -= buy*|d|, operator += buy*|d|;
        u > 0: prosumer -= nd, operator += nd - penalty*u,
        penalty pool += penalty*u with nd the non-delivery charge; the
        imbalance is paid as one payment.
        The operator's own market position (the buyer of a merit-order
        dispatch) has no meter: `settle_operator` settles it with
        operator += v, pool -= v, without fee or imbalance.
        Audit: before the start the operator may set, once, an audit
        contract (`set_audit`) that judges meter fraud. It may `hold`
        free credit of an account (`held_wei`, a part of its credit
        that is not free, so neither withdrawn, locked nor paid with),
        release a hold (`release_held`) back to the account, to the
        penalty pool or to another account, and settle an interval of
        a meter it isolated from an estimate (`post_estimate`, a
        reading whose export the audit books as PV, then battery);
        a reading of a meter
        the audit reports isolated is refused. Fresh credit rule: with
        an audit set, the credit a reading adds (its net positive
        change of the prosumer's credit, `fresh_wei`) cannot be
        withdrawn until the audit's flag window for it has closed,
        `flag_window_s` after the reading was posted
        (`fresh_until_timestamp`); a reading posted while an earlier
        one is still fresh adds to the fresh credit and extends the
        window to its own, so no credit leaves before the audit could
        flag the reading that made it.
        Invariant: the sum of all credits plus `pool_wei` plus
        `penalty_pool_wei` equals this contract's token balance; an
        interval's pool share returns to zero once every participant
        has posted. A reading is stored as one packed word (layout at
        the `_READING_*` constants).
@custom:security A debt within the credit line and every `Unpaid` imbalance
                 (less what the penalty pool `Covered`) are collected
                 off-chain by the operator. Settlement trusts its
                 mechanism to keep positions within `MAX_ENERGY_WH`
                 and |value| within `MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH`,
                 and the values of an interval to sum to zero over all
                 accounts it settles. Escrow trusts the mechanism to
                 lock before clearing and to keep each obligation within
                 the lock; an interval that is never cleared keeps its
                 locks. Meters are trusted within the registered limits:
                 a reading that is physically possible is paid as read.
                 The audit contract the operator sets can move held
                 credit: participants check its code before the start;
                 fresh credit may still be spent in the market (a bid's
                 escrow) while its flag window is open.
"""


# @dev We import the built-in `IERC20` interface to move tokens.
from ethereum.ercs import IERC20

# @dev EIP-712 signatures of relayed readings (a stateless module).
from . import eip712


# @dev Meter bindings of the market's registry.
interface Registry:
    def prosumer_of_meter(meter: address) -> address: view
    def pseudonyms() -> address: view
    def prosumers_of_meters(meters: DynArray[address, MAX_READINGS]) -> DynArray[address, MAX_READINGS]: view


# @dev The audit contract's isolation verdicts and flag window.
interface Audit:
    def is_isolated(prosumer: address) -> bool: view
    def flag_window_s() -> uint256: view


# @dev Cleared results of the market mechanism (any of the auctions).
interface Mechanism:
    def settlement_terms(interval: uint256, account: address) -> SettlementTerms: view


# @dev Largest import or export of one reading; equal to the
# mechanisms' `MAX_ENERGY_WH`. [Wh]
MAX_ENERGY_WH: public(constant(uint256)) = 10**12


# @dev Largest registered power of a meter, PV system or battery. [W]
MAX_POWER_W: public(constant(uint256)) = 10**9


# @dev Allowance of each reading bound for the separately rounded
# registers (each to 1 Wh). [Wh]
READING_TOLERANCE_WH: public(constant(uint256)) = 2


# @dev Longest market interval the constructor accepts: one week. [s]
_MAX_INTERVAL_S: constant(uint256) = 604_800


# @dev Seconds per hour, to turn power times interval into energy. [s/h]
_SECONDS_PER_HOUR: constant(uint256) = 3600


# @dev Packed limits word of one prosumer, zero until registered: bits
# [0, 64) meter rating [W], [64, 128) PV peak [W], [128, 192) battery
# power [W], bit 192 set once registered, bits [200, 256) a
# pseudonym's interval + 1 (0 for any other prosumer).
_LIMIT_MASK: constant(uint256) = 2**64 - 1
_LIMIT_PV_SHIFT: constant(uint256) = 64
_LIMIT_BATTERY_SHIFT: constant(uint256) = 128
_LIMIT_REGISTERED: constant(uint256) = 2**192
_LIMIT_INTERVAL_SHIFT: constant(uint256) = 200
_MAX_PSEUDONYM_INTERVAL: constant(uint256) = 2**55


# @dev Reason of an order, lock or non-empty reading of a pseudonym outside its interval.
OUTSIDE_INTERVAL: constant(String[64]) = "settlement: pseudonym outside its interval"


# @dev Largest grid price or fee the constructor accepts. [wei/Wh]
MAX_PRICE_WEI_PER_WH: public(constant(uint256)) = 10**24


# @dev Packed reading word of one prosumer in one interval, zero until
# posted: bits [0, 40) import [Wh], [40, 80) export [Wh], [80, 120) PV
# energy [Wh], [120, 160) battery discharge [Wh] (each at most
# MAX_ENERGY_WH < 2**40), bit 160 set once posted, bits [168, 232)
# the posting block's timestamp.
_READING_ENERGY_MASK: constant(uint256) = 2**40 - 1
_READING_EXPORT_SHIFT: constant(uint256) = 40
_READING_PV_SHIFT: constant(uint256) = 80
_READING_BATTERY_SHIFT: constant(uint256) = 120
_READING_POSTED: constant(uint256) = 2**160
_READING_TIMESTAMP_SHIFT: constant(uint256) = 168


# @dev Packed sold-energy word of one interval: bits [0, 64) PV [Wh],
# [64, 128) battery [Wh], [128, 192) grid [Wh]; each sum over the
# interval's sellers stays below MAX_ORDERS * MAX_ENERGY_WH < 2**48.
_SOLD_MASK: constant(uint256) = 2**64 - 1
_SOLD_BATTERY_SHIFT: constant(uint256) = 64
_SOLD_GRID_SHIFT: constant(uint256) = 128


# @dev One posted meter reading.
# @dev One prosumer's registered limits (`register_prosumers`). [W]
struct ProsumerRegistration:
    prosumer: address
    meter_rating_w: uint256
    pv_w: uint256
    battery_w: uint256


struct Reading:
    import_wh: uint256
    export_wh: uint256
    pv_wh: uint256
    battery_wh: uint256
    posted: bool


# @dev Energy split by source: PV, battery discharge and grid. [Wh]
struct SourceMix:
    pv_wh: uint256
    battery_wh: uint256
    grid_wh: uint256


# @dev Registered limits of one prosumer. [W]
struct Limits:
    meter_rating_w: uint256
    pv_w: uint256
    battery_w: uint256
    registered: bool


# @dev A cleared interval's terms for one account, as the mechanism's
# `settlement_terms` returns them: position [Wh] positive = sold, its
# money value [wei] positive = received.
struct SettlementTerms:
    cleared: bool
    position_wh: int256
    value_wei: int256
    end_timestamp: uint256


# @dev A meter reading signed as EIP-712 typed data
# (`eip712.READING_TYPEHASH`) for a head-end to relay; the interval is
# the batch's. [Wh]
struct SignedReading:
    import_wh: uint256
    export_wh: uint256
    pv_wh: uint256
    battery_wh: uint256
    v: uint8
    r: bytes32
    s: bytes32


# @dev Packed order word in which a mechanism hands a relayed batch to
# `order_problems` and its bids to `lock_bids`, `book.vy`'s layout:
# bits [0, 40) energy [Wh], [40, 120) limit price [wei/Wh], bit 160 set
# for an ask.
_ORDER_ENERGY_MASK: constant(uint256) = 2**40 - 1
_ORDER_PRICE_SHIFT: constant(uint256) = 40
_ORDER_PRICE_MASK: constant(uint256) = 2**80 - 1
_ORDER_ASK_SHIFT: constant(uint256) = 160


# @dev Codes of `order_problems`, one per order, in the order of the
# checks; `escrow.vy` turns each into its reason string.
ORDER_OK: constant(uint256) = 0
ORDER_IN_DEBT: constant(uint256) = 1
ORDER_BELOW_MINIMUM: constant(uint256) = 2
ORDER_ASK_ABOVE_CAPACITY: constant(uint256) = 3
ORDER_BID_ABOVE_RATING: constant(uint256) = 4
ORDER_CREDIT_BELOW_ESCROW: constant(uint256) = 5
ORDER_OUTSIDE_INTERVAL: constant(uint256) = 7


# @dev Most orders one `order_problems` or `lock_bids` call carries:
# one side of a book (`book.MAX_ORDERS`).
MAX_ORDERS: public(constant(uint256)) = 256


# @dev Most readings one `post_signed_readings` relays.
MAX_READINGS: public(constant(uint256)) = 256


# @dev Registry that binds meters to prosumers.
registry: public(immutable(Registry))


# @dev Market mechanism whose positions are settled.
auction: public(immutable(Mechanism))


# @dev Token the market settles in.
token: public(immutable(IERC20))


# @dev Account credited with fees and grid imbalance payments.
operator: public(immutable(address))


# @dev Price the grid charges for energy imported beyond the
# cleared position. [wei/Wh]
grid_buy_price_wei_per_wh: public(immutable(uint256))


# @dev Price the grid pays for energy exported beyond the
# cleared position. [wei/Wh]
grid_sell_price_wei_per_wh: public(immutable(uint256))


# @dev Network fee per Wh bought in the market. [wei/Wh]
grid_fee_wei_per_wh: public(immutable(uint256))


# @dev Penalty on energy a seller sold and did not export, on top of
# returning what it was paid for it (at least the grid buy price).
# [wei/Wh]
non_delivery_penalty_wei_per_wh: public(immutable(uint256))


# @dev Least energy of an order (bid, ask, offer or lot). [Wh]
min_order_wh: public(immutable(uint256))


# @dev Most debt the operator lets an account other than itself run
# up. [wei]
credit_line_wei: public(immutable(uint256))


# @dev Start of the market's first interval, as the mechanism's
# `start_timestamp`. [s since the Unix epoch]
market_start_timestamp: public(immutable(uint256))


# @dev Length of a market interval, as the mechanism's `interval_s`. [s]
interval_s: public(immutable(uint256))


# @dev Credit of each account, negative = debt. [wei]
credit_wei: public(HashMap[address, int256])


# @dev Peer-to-peer payments received from buyers and not yet
# paid out to sellers. [wei]
pool_wei: public(int256)


# @dev Non-delivery penalties paid and not yet released to cover an
# unpaid imbalance payment; nobody can withdraw them. [wei]
penalty_pool_wei: public(uint256)


# @dev Total debt: the sum of the negative credits, all owed to the
# operator. [wei]
debt_wei: public(uint256)


# @dev Packed limits word of each prosumer (`_LIMIT_*`).
_limits_word: HashMap[address, uint256]


# @dev Packed reading word of each prosumer per interval (`_READING_*`).
_reading_word: HashMap[uint256, HashMap[address, uint256]]


# @dev Packed sold energy of each interval by source (`_SOLD_*`).
_sold_word: HashMap[uint256, uint256]


# @dev Credit of each account held in escrow over all intervals, a
# part of its `credit_wei`. [wei]
locked_wei: public(HashMap[address, uint256])


# @dev Escrow of each account per interval. [wei]
lock_wei: public(HashMap[uint256, HashMap[address, uint256]])


# @dev Audit contract set by the operator (`set_audit`); empty until set.
audit: public(Audit)


# @dev The audit's flag window, read when it is set. [s]
_audit_flag_window_s: uint256


# @dev Credit of each account held by the audit, a part of its
# `credit_wei` that is not free. [wei]
held_wei: public(HashMap[address, uint256])


# @dev Credit readings added to each account that the audit may still
# flag (fresh credit rule in the header). [wei]
fresh_wei: public(HashMap[address, uint256])


# @dev End of the flag window of each account's fresh credit.
# [s since the Unix epoch]
fresh_until_timestamp: public(HashMap[address, uint256])


# @dev Whether the operator's own market position in each interval
# is settled.
operator_settled: public(HashMap[uint256, bool])


# @dev The grid buy price of an interval announced as a price spike, 0
# where the tariff holds; frozen from the market's start. [wei/Wh]
spike_buy_price_wei_per_wh: public(HashMap[uint256, uint256])


# @dev Emitted when the operator registers a prosumer's limits. [W]
event ProsumerRegistered:
    prosumer: indexed(address)
    meter_rating_w: uint256
    pv_w: uint256
    battery_w: uint256


# @dev Emitted when `payer` cannot afford the imbalance payment it owes
# `payee` for `interval` (with a non-delivery penalty's part owed to the
# penalty pool) and `unpaid_wei` of it is left unpaid.
event Unpaid:
    interval: indexed(uint256)
    payer: indexed(address)
    payee: indexed(address)
    unpaid_wei: uint256


# @dev Emitted when the penalty pool pays `payee` `amount_wei` of an
# imbalance payment for `interval` that its payer left `Unpaid`.
event Covered:
    interval: indexed(uint256)
    payee: indexed(address)
    amount_wei: uint256


# @dev Emitted when `payer` deposits tokens for `beneficiary`.
event Deposited:
    beneficiary: indexed(address)
    payer: indexed(address)
    amount_wei: uint256


# @dev Emitted when `account` withdraws tokens.
event Withdrawn:
    account: indexed(address)
    amount_wei: uint256


# @dev Emitted when the mechanism locks credit of `account` for a bid.
event Locked:
    interval: indexed(uint256)
    account: indexed(address)
    amount_wei: uint256


# @dev Emitted when escrow of `account` returns to its free credit:
# through `unlock`, `release`, `post_reading` or `settle_operator`.
event Released:
    interval: indexed(uint256)
    account: indexed(address)
    amount_wei: uint256


# @dev Emitted when a prosumer's interval is settled; `p2p_wei` and
# `imbalance_wei` (as paid by its payer, see `Unpaid` and `Covered`)
# are signed, positive = received by the prosumer.
event Settled:
    interval: indexed(uint256)
    prosumer: indexed(address)
    import_wh: uint256
    export_wh: uint256
    pv_wh: uint256
    battery_wh: uint256
    position_wh: int256
    p2p_wei: int256
    fee_wei: uint256
    imbalance_wei: int256


# @dev Emitted for every relayed reading skipped: `index` is its place
# in the batch, `signer` the recovered meter (empty if none), `reason`
# the reason `post_reading` by that meter would have reverted with.
event ReadingRejected:
    interval: indexed(uint256)
    index: uint256
    signer: indexed(address)
    reason: String[64]


# @dev Emitted when a seller's interval is settled: the sources of
# its sold position. [Wh]
event Sourced:
    interval: indexed(uint256)
    seller: indexed(address)
    pv_wh: uint256
    battery_wh: uint256
    grid_wh: uint256


# @dev Emitted when a seller exported less than it sold: the
# undelivered energy [Wh] and its non-delivery charge [wei], part of
# the `Settled` imbalance.
event Undelivered:
    interval: indexed(uint256)
    seller: indexed(address)
    energy_wh: uint256
    charge_wei: uint256


# @dev Emitted when the operator sets the audit contract.
event AuditSet:
    audit: indexed(address)


# @dev Emitted when the audit holds `amount_wei` of the credit of `account`.
event Held:
    account: indexed(address)
    amount_wei: uint256


# @dev Emitted when the audit releases `amount_wei` held of `account` to
# `payee`: the account itself (the hold ends), the empty address (the
# penalty pool) or another account.
event HeldReleased:
    account: indexed(address)
    payee: indexed(address)
    amount_wei: uint256


# @dev Emitted when the audit settles an isolated prosumer's interval
# from an estimate (the `Settled` event before it has the registers).
event Estimated:
    interval: indexed(uint256)
    prosumer: indexed(address)


# @dev Emitted when the operator's own market position is settled;
# `value_wei` is positive = received.
event OperatorSettled:
    interval: indexed(uint256)
    position_wh: int256
    value_wei: int256


# @dev Emitted when the operator announces a price spike: `interval`'s
# imbalances and replacements are charged `buy_price_wei_per_wh`.
event PriceSpike:
    interval: indexed(uint256)
    buy_price_wei_per_wh: uint256


@deploy
def __init__(
    registry_: Registry,
    auction_: Mechanism,
    token_: IERC20,
    operator_: address,
    grid_buy_price_wei_per_wh_: uint256,
    grid_sell_price_wei_per_wh_: uint256,
    grid_fee_wei_per_wh_: uint256,
    credit_line_wei_: uint256,
    market_start_timestamp_: uint256,
    interval_s_: uint256,
    non_delivery_penalty_wei_per_wh_: uint256,
    min_order_wh_: uint256,
):
    """
    @param registry_ The market's role registry.
    @param auction_ The market's mechanism, any contract offering
           `settlement_terms`.
    @param token_ The settlement token.
    @param operator_ Account that takes fees and settles imbalances.
    @param grid_buy_price_wei_per_wh_ Import price of the grid. [wei/Wh]
    @param grid_sell_price_wei_per_wh_ Export price of the grid. [wei/Wh]
    @param grid_fee_wei_per_wh_ Fee on market purchases. [wei/Wh]
    @param credit_line_wei_ Most debt of any account but the operator;
           at most `MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH`. [wei]
    @param market_start_timestamp_ Start of the mechanism's first
           interval; registrations close then. [s since the Unix epoch]
    @param interval_s_ The mechanism's interval length; positive and at
           most one week. [s]
    @param non_delivery_penalty_wei_per_wh_ Penalty on undelivered
           energy; at most `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    @param min_order_wh_ Least energy of an order; 1 to
           `MAX_ENERGY_WH`. [Wh]
    """
    assert operator_ != empty(address), "settlement: operator is the zero address"
    assert (
        grid_buy_price_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH
        and grid_sell_price_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH
        and grid_fee_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH
    ), "settlement: price out of range"
    assert credit_line_wei_ <= MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH, "settlement: credit line out of range"
    assert interval_s_ != 0 and interval_s_ <= _MAX_INTERVAL_S, "settlement: interval out of range"
    assert non_delivery_penalty_wei_per_wh_ <= MAX_PRICE_WEI_PER_WH, "settlement: price out of range"
    assert min_order_wh_ != 0 and min_order_wh_ <= MAX_ENERGY_WH, "settlement: minimum order out of range"
    registry = registry_
    auction = auction_
    token = token_
    operator = operator_
    grid_buy_price_wei_per_wh = grid_buy_price_wei_per_wh_
    grid_sell_price_wei_per_wh = grid_sell_price_wei_per_wh_
    grid_fee_wei_per_wh = grid_fee_wei_per_wh_
    credit_line_wei = credit_line_wei_
    market_start_timestamp = market_start_timestamp_
    interval_s = interval_s_
    non_delivery_penalty_wei_per_wh = non_delivery_penalty_wei_per_wh_
    min_order_wh = min_order_wh_


@external
def register_prosumer(prosumer: address, meter_rating_w: uint256, pv_w: uint256, battery_w: uint256):
    """
    @dev Registers the limits of `prosumer`'s readings, once and before
         the market starts.
    @param prosumer The prosumer.
    @param meter_rating_w Most power through its meter; 1 to
           `MAX_POWER_W`. [W]
    @param pv_w Peak power of its PV system, 0 without; at most
           `MAX_POWER_W`. [W]
    @param battery_w Discharge power of its battery, 0 without; at most
           `MAX_POWER_W`. [W]
    """
    self._check_registrar()
    self._register(ProsumerRegistration(prosumer=prosumer, meter_rating_w=meter_rating_w, pv_w=pv_w,
                                        battery_w=battery_w))


@external
def register_pseudonym(pseudonym: address, interval: uint256, meter_rating_w: uint256, pv_w: uint256,
                       battery_w: uint256):
    """
    @dev Registers the limits of a pseudonym of `interval`, once, at any
         time; only the registry's pseudonym contract may.
    @param pseudonym The pseudonym.
    @param interval The one interval its meter may post a non-empty reading for.
    @param meter_rating_w As for `register_prosumer`, its class's. [W]
    @param pv_w As for `register_prosumer`, its class's. [W]
    @param battery_w As for `register_prosumer`, its class's. [W]
    """
    assert msg.sender == staticcall registry.pseudonyms(), "settlement: caller is not pseudonyms"
    assert interval < _MAX_PSEUDONYM_INTERVAL, "settlement: interval above limit"
    self._register(ProsumerRegistration(prosumer=pseudonym, meter_rating_w=meter_rating_w, pv_w=pv_w,
                                        battery_w=battery_w))
    self._limits_word[pseudonym] |= (interval + 1) << _LIMIT_INTERVAL_SHIFT


@external
@view
def trades_in(account: address, interval: uint256) -> bool:
    """
    @dev Whether `account` may order in `interval`: every account but a
         pseudonym of another interval.
    @param account The account.
    @param interval Index of the market interval.
    @return bool False only for a pseudonym outside its interval.
    """
    return not self._outside(account, interval)


@internal
@view
def _outside(account: address, interval: uint256) -> bool:
    """
    @dev Whether `account` is a pseudonym of an interval other than `interval`.
    """
    pseudonym_of: uint256 = self._limits_word[account] >> _LIMIT_INTERVAL_SHIFT
    return pseudonym_of != 0 and pseudonym_of != interval + 1


@external
def register_prosumers(registrations: DynArray[ProsumerRegistration, MAX_READINGS]):
    """
    @dev `register_prosumer` of each registration, in one call (the setup
         of a large market); reverts as a whole if one would.
    @param registrations Each prosumer with its meter rating, PV peak and
           battery power, as for `register_prosumer`. [W]
    """
    self._check_registrar()
    for registration: ProsumerRegistration in registrations:
        self._register(registration)


@external
def post_price_spike(interval: uint256, buy_price_wei_per_wh: uint256):
    """
    @dev Announces an upstream price spike before the market starts: the
         grid buy price of `interval` becomes `buy_price_wei_per_wh` for
         its imbalances and the replacement of undelivered sales. Once per
         interval; frozen from the start, so no settled or traded
         interval's terms can change after the fact.
    @param interval The interval.
    @param buy_price_wei_per_wh Above the tariff, at most
           `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    """
    self._check_registrar()
    assert self.spike_buy_price_wei_per_wh[interval] == 0, "settlement: spike posted"
    assert buy_price_wei_per_wh > grid_buy_price_wei_per_wh, "settlement: spike not above the tariff"
    assert buy_price_wei_per_wh <= MAX_PRICE_WEI_PER_WH, "settlement: price out of range"
    self.spike_buy_price_wei_per_wh[interval] = buy_price_wei_per_wh
    log PriceSpike(interval=interval, buy_price_wei_per_wh=buy_price_wei_per_wh)


@external
@view
def buy_price_wei_per_wh(interval: uint256) -> uint256:
    """
    @dev The grid buy price `interval` is settled at: its spike, or the
         tariff. [wei/Wh]
    @param interval The interval.
    @return uint256 The price. [wei/Wh]
    """
    return self._buy_price(interval)


@internal
@view
def _buy_price(interval: uint256) -> uint256:
    """
    @dev The spike price of `interval` if one was announced, else the
         grid buy tariff. [wei/Wh]
    """
    spike: uint256 = self.spike_buy_price_wei_per_wh[interval]
    if spike != 0:
        return spike
    return grid_buy_price_wei_per_wh


@internal
@view
def _check_registrar():
    """
    @dev Reverts unless the operator calls before the market starts.
    """
    assert msg.sender == operator, "settlement: caller is not the operator"
    assert block.timestamp < market_start_timestamp, "settlement: market started"


@internal
def _register(r: ProsumerRegistration):
    """
    @dev Registers the limits of one prosumer, once.
    @param r The prosumer and its limits, as for `register_prosumer`. [W]
    """
    # checks
    prosumer: address = r.prosumer
    meter_rating_w: uint256 = r.meter_rating_w
    pv_w: uint256 = r.pv_w
    battery_w: uint256 = r.battery_w
    assert prosumer != empty(address), "settlement: prosumer is the zero address"
    assert self._limits_word[prosumer] == 0, "settlement: prosumer registered"
    assert meter_rating_w != 0, "settlement: zero meter rating"
    assert (
        meter_rating_w <= MAX_POWER_W and pv_w <= MAX_POWER_W and battery_w <= MAX_POWER_W
    ), "settlement: power above limit"

    # effects
    self._limits_word[prosumer] = (
        meter_rating_w | pv_w << _LIMIT_PV_SHIFT | battery_w << _LIMIT_BATTERY_SHIFT | _LIMIT_REGISTERED
    )
    log ProsumerRegistered(prosumer=prosumer, meter_rating_w=meter_rating_w, pv_w=pv_w, battery_w=battery_w)


@external
def deposit_for(beneficiary: address, amount_wei: uint256):
    """
    @dev Pulls `amount_wei` tokens from the caller, who must have
         approved this contract, and credits them to `beneficiary`.
    @param beneficiary The account credited.
    @param amount_wei Tokens deposited; positive. [wei]
    """
    # checks
    assert amount_wei != 0, "settlement: zero amount"

    # effects
    self._add_credit(beneficiary, convert(amount_wei, int256))
    log Deposited(beneficiary=beneficiary, payer=msg.sender, amount_wei=amount_wei)

    # interactions
    assert extcall token.transferFrom(msg.sender, self, amount_wei), "settlement: token transfer failed"


@external
def deposit_for_each(beneficiaries: DynArray[address, MAX_READINGS], amount_wei: uint256):
    """
    @dev `deposit_for` of the same amount for each beneficiary, with one
         token transfer of the sum (the endowments of a large market).
    @param beneficiaries The accounts credited.
    @param amount_wei Tokens deposited for each; positive. [wei]
    """
    # checks
    assert amount_wei != 0, "settlement: zero amount"

    # effects
    for beneficiary: address in beneficiaries:
        self._add_credit(beneficiary, convert(amount_wei, int256))
        log Deposited(beneficiary=beneficiary, payer=msg.sender, amount_wei=amount_wei)

    # interactions
    total_wei: uint256 = amount_wei * len(beneficiaries)
    assert extcall token.transferFrom(msg.sender, self, total_wei), "settlement: token transfer failed"


@external
def withdraw(amount_wei: uint256):
    """
    @dev Pays `amount_wei` of the caller's free credit out in tokens.
    @param amount_wei Tokens withdrawn; positive and at most the
           caller's free credit (credit minus escrow), for the operator
           less `debt_wei`, which keeps the Settlement solvent. [wei]
    """
    # checks
    assert amount_wei != 0, "settlement: zero amount"
    pseudonym_of: uint256 = self._limits_word[msg.sender] >> _LIMIT_INTERVAL_SHIFT
    assert pseudonym_of == 0 or self._reading_word[pseudonym_of - 1][msg.sender] != 0, \
        "settlement: pseudonym not settled"
    credit: int256 = self.credit_wei[msg.sender]
    assert self._free_credit_wei(msg.sender) >= convert(amount_wei, int256), "settlement: withdraw above free credit"
    assert self._payable_wei(msg.sender) >= convert(amount_wei, int256), "settlement: withdraw above solvent credit"
    if block.timestamp < self.fresh_until_timestamp[msg.sender]:
        assert (
            self._free_credit_wei(msg.sender) - convert(amount_wei, int256)
            >= convert(self.fresh_wei[msg.sender], int256)
        ), "settlement: credit under audit"

    # effects
    self.credit_wei[msg.sender] = credit - convert(amount_wei, int256)
    log Withdrawn(account=msg.sender, amount_wei=amount_wei)

    # interactions
    assert extcall token.transfer(msg.sender, amount_wei), "settlement: token transfer failed"


@external
def lock(account: address, interval: uint256, energy_wh: uint256, price_wei_per_wh: uint256):
    """
    @dev Locks `escrow_wei(account, energy_wh, price_wei_per_wh)` of the
         free credit of `account` for its bid in `interval`.
    @param account The bidder.
    @param interval Index of the market interval bid in.
    @param energy_wh Energy the bid may buy; at most `MAX_ENERGY_WH`. [Wh]
    @param price_wei_per_wh Most the bid may pay; at most
           `MAX_PRICE_WEI_PER_WH`. [wei/Wh]
    """
    # checks
    assert msg.sender == auction.address, "settlement: caller is not the mechanism"
    assert not self._outside(account, interval), OUTSIDE_INTERVAL
    assert self._can_lock(account, energy_wh, price_wei_per_wh), "settlement: credit below escrow"
    amount_wei: uint256 = self._escrow_wei(account, energy_wh, price_wei_per_wh)

    # effects
    self.locked_wei[account] += amount_wei
    self.lock_wei[interval][account] += amount_wei
    log Locked(interval=interval, account=account, amount_wei=amount_wei)


@external
def lock_bids(interval: uint256, accounts: DynArray[address, MAX_ORDERS], words: DynArray[uint256, MAX_ORDERS]):
    """
    @dev Locks the escrow of every bid of a relayed batch as `lock`
         does, in one call, once the mechanism has checked them with
         `order_problems`; reverts as a whole if one bid's escrow
         exceeds its bidder's free credit.
    @param interval Index of the market interval bid in.
    @param accounts The bidders, one bid each.
    @param words Each bid's packed order word (`_ORDER_*`: energy [Wh]
           and limit price [wei/Wh] within the mechanism's bounds).
    """
    assert msg.sender == auction.address, "settlement: caller is not the mechanism"
    assert len(accounts) == len(words), "settlement: bid length mismatch"
    for i: uint256 in range(len(accounts), bound=MAX_ORDERS):
        account: address = accounts[i]
        word: uint256 = words[i]
        assert word >> _ORDER_ASK_SHIFT == 0, "settlement: ask carries no escrow"
        assert not self._outside(account, interval), OUTSIDE_INTERVAL
        energy_wh: uint256 = word & _ORDER_ENERGY_MASK
        price_wei_per_wh: uint256 = (word >> _ORDER_PRICE_SHIFT) & _ORDER_PRICE_MASK
        assert self._can_lock(account, energy_wh, price_wei_per_wh), "settlement: credit below escrow"
        amount_wei: uint256 = self._escrow_wei(account, energy_wh, price_wei_per_wh)
        self.locked_wei[account] += amount_wei
        self.lock_wei[interval][account] += amount_wei
        log Locked(interval=interval, account=account, amount_wei=amount_wei)


@external
def unlock(account: address, interval: uint256, amount_wei: uint256):
    """
    @dev Returns `amount_wei` of the escrow of `account` in `interval` to
         its free credit, for a bid that no longer binds it.
    @param account The bidder.
    @param interval Index of the market interval bid in.
    @param amount_wei Escrow released; at most the interval's lock. [wei]
    """
    # checks
    assert msg.sender == auction.address, "settlement: caller is not the mechanism"
    assert amount_wei <= self.lock_wei[interval][account], "settlement: unlock above lock"

    # effects
    self._release(interval, account, amount_wei)


@external
def release(interval: uint256, account: address):
    """
    @dev Lowers the escrow of `account` in a cleared `interval` to its
         obligation max(0, -value) + fee * max(0, -position); anyone may
         call it. Does nothing if the lock is at most the obligation.
    @param interval Index of a cleared market interval.
    @param account The account whose escrow is released.
    """
    # checks
    terms: SettlementTerms = staticcall auction.settlement_terms(interval, account)
    assert terms.cleared, "settlement: interval not cleared"
    lock_wei: uint256 = self.lock_wei[interval][account]
    obligation_wei: uint256 = self._obligation_wei(account, terms)

    # effects
    if lock_wei > obligation_wei:
        self._release(interval, account, lock_wei - obligation_wei)


@external
def post_reading(interval: uint256, import_wh: uint256, export_wh: uint256, pv_wh: uint256, battery_wh: uint256):
    """
    @dev Settles the calling meter's prosumer for `interval`: checks the
         reading (`_reading_problem`: a bound meter, a cleared and
         ended interval, one reading, within the prosumer's registered
         limits), releases its escrow of the interval, pays (an
         imbalance payment up to what its payer can afford) and for a
         seller records the sources of its sold energy.
    @param interval Index of a cleared and ended market interval.
    @param import_wh Energy drawn from the grid in the interval. [Wh]
    @param export_wh Energy fed into the grid in the interval. [Wh]
    @param pv_wh Energy the prosumer's PV generated in the interval. [Wh]
    @param battery_wh Energy the prosumer's battery discharged in the
           interval. [Wh]
    """
    prosumer: address = staticcall registry.prosumer_of_meter(msg.sender)
    terms: SettlementTerms = empty(SettlementTerms)
    reason: String[64] = ""
    terms, reason = self._reading_problem(prosumer, interval, import_wh, export_wh, pv_wh, battery_wh, True)
    assert len(reason) == 0, reason
    self._settle(interval, prosumer, terms, import_wh, export_wh, pv_wh, battery_wh)


@external
def post_signed_readings(interval: uint256, readings: DynArray[SignedReading, MAX_READINGS]):
    """
    @dev Settles readings of `interval` that their meters signed as
         EIP-712 typed data (`eip712.vy`), relayed by the caller (a
         head-end, the operator or anyone: it pays the gas and can
         neither forge nor alter a reading). Each reading settles as if
         its meter had sent `post_reading` itself, in the given order;
         one that would revert there is skipped with `ReadingRejected`
         and the same reason ("settlement: bad signature" if no account
         signed it), and the rest settle.
    @param interval Index of a cleared and ended market interval.
    @param readings The signed readings: import, export, PV and battery
           discharge [Wh] and the signature (v, r, s).
    """
    domain_separator: bytes32 = eip712._domain_separator()
    meters: DynArray[address, MAX_READINGS] = []
    for r: SignedReading in readings:
        meters.append(eip712._signer(
            domain_separator,
            keccak256(abi_encode(eip712.READING_TYPEHASH, interval, r.import_wh, r.export_wh, r.pv_wh, r.battery_wh)),
            r.v, r.r, r.s,
        ))
    prosumers: DynArray[address, MAX_READINGS] = staticcall registry.prosumers_of_meters(meters)
    for i: uint256 in range(len(readings), bound=MAX_READINGS):
        r: SignedReading = readings[i]
        meter: address = meters[i]
        prosumer: address = prosumers[i]
        terms: SettlementTerms = empty(SettlementTerms)
        reason: String[64] = "settlement: bad signature"
        if meter != empty(address):
            terms, reason = self._reading_problem(
                prosumer, interval, r.import_wh, r.export_wh, r.pv_wh, r.battery_wh, True
            )
        if len(reason) == 0:
            self._settle(interval, prosumer, terms, r.import_wh, r.export_wh, r.pv_wh, r.battery_wh)
        else:
            log ReadingRejected(interval=interval, index=i, signer=meter, reason=reason)


@internal
@view
def _reading_problem(
    prosumer: address,
    interval: uint256,
    import_wh: uint256,
    export_wh: uint256,
    pv_wh: uint256,
    battery_wh: uint256,
    metered: bool,
) -> (SettlementTerms, String[64]):
    """
    @dev The terms of `interval` of the prosumer a meter is bound to
         and why the meter's reading may not settle (empty if it may):
         no prosumer (not a bound meter), a meter the audit isolated,
         the interval not cleared or
         not ended, a reading already posted, an energy above
         `MAX_ENERGY_WH`, or outside the prosumer's registered limits
         (`_limits_problem`).
    @param prosumer The prosumer of the meter posting the reading
           (`Registry.prosumer_of_meter`), the zero address if unbound.
    @param interval Index of the market interval.
    @param import_wh Energy drawn from the grid. [Wh]
    @param export_wh Energy fed into the grid. [Wh]
    @param pv_wh PV energy. [Wh]
    @param battery_wh Battery discharge. [Wh]
    @param metered True for a meter's reading, False for the audit's
           estimate, which the isolation does not refuse.
    @return (SettlementTerms, String[64]) Terms, reason.
    """
    if prosumer == empty(address):
        return empty(SettlementTerms), "settlement: caller is not a bound meter"
    if metered and self.audit.address != empty(address):
        if staticcall self.audit.is_isolated(prosumer):
            return empty(SettlementTerms), "settlement: meter isolated"
    terms: SettlementTerms = staticcall auction.settlement_terms(interval, prosumer)
    if not terms.cleared:
        return terms, "settlement: interval not cleared"
    if block.timestamp < terms.end_timestamp:
        return terms, "settlement: interval not ended"
    if self._reading_word[interval][prosumer] != 0:
        return terms, "settlement: reading exists"
    if import_wh > MAX_ENERGY_WH or export_wh > MAX_ENERGY_WH or pv_wh > MAX_ENERGY_WH or battery_wh > MAX_ENERGY_WH:
        return terms, "settlement: energy above limit"
    return terms, self._limits_problem(prosumer, interval, import_wh, export_wh, pv_wh, battery_wh)


@internal
def _settle(
    interval: uint256,
    prosumer: address,
    terms: SettlementTerms,
    import_wh: uint256,
    export_wh: uint256,
    pv_wh: uint256,
    battery_wh: uint256,
):
    """
    @dev Settles a reading `_reading_problem` passed: records it,
         releases the prosumer's escrow of the interval, pays and
         records the sources of sold energy.
    @param interval Index of the market interval.
    @param prosumer The prosumer whose meter read.
    @param terms The prosumer's terms of the interval.
    @param import_wh Energy drawn from the grid. [Wh]
    @param export_wh Energy fed into the grid. [Wh]
    @param pv_wh PV energy. [Wh]
    @param battery_wh Battery discharge. [Wh]
    """
    # effects
    self._reading_word[interval][prosumer] = (
        import_wh
        | export_wh << _READING_EXPORT_SHIFT
        | pv_wh << _READING_PV_SHIFT
        | battery_wh << _READING_BATTERY_SHIFT
        | _READING_POSTED
        | block.timestamp << _READING_TIMESTAMP_SHIFT
    )
    credit_before_wei: int256 = self.credit_wei[prosumer]
    lock_wei: uint256 = self.lock_wei[interval][prosumer]
    if lock_wei != 0:
        self._release(interval, prosumer, lock_wei)

    # The mechanism bounds |position_wh| by MAX_ENERGY_WH and |value_wei|
    # by MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH, the checks above bound
    # import and export and the constructor the grid prices and the
    # penalty: every product and sum below stays under 10**37 (the
    # refund's product v * u under 10**49), so only the running totals
    # need checked arithmetic.
    position_wh: int256 = terms.position_wh
    p2p_wei: int256 = terms.value_wei
    fee_wei: uint256 = 0
    if position_wh < 0:
        fee_wei = unsafe_mul(grid_fee_wei_per_wh, convert(unsafe_sub(0, position_wh), uint256))
    imbalance_wei: int256 = 0
    undelivered_wh: int256 = 0
    imbalance_wei, undelivered_wh = self._owed_wei(position_wh, p2p_wei, import_wh, export_wh, self._buy_price(interval))
    penalty_wei: int256 = 0
    if undelivered_wh > 0:
        penalty_wei = unsafe_mul(convert(non_delivery_penalty_wei_per_wh, int256), undelivered_wh)
    self.pool_wei -= p2p_wei
    self._add_credit(operator, convert(fee_wei, int256))
    self._add_credit(prosumer, unsafe_sub(p2p_wei, convert(fee_wei, int256)))
    if imbalance_wei > 0:
        imbalance_wei = self._pay_imbalance(interval, operator, prosumer, imbalance_wei, 0)
    elif imbalance_wei < 0:
        imbalance_wei = -self._pay_imbalance(interval, prosumer, operator, -imbalance_wei, penalty_wei)
    log Settled(
        interval=interval,
        prosumer=prosumer,
        import_wh=import_wh,
        export_wh=export_wh,
        pv_wh=pv_wh,
        battery_wh=battery_wh,
        position_wh=position_wh,
        p2p_wei=p2p_wei,
        fee_wei=fee_wei,
        imbalance_wei=imbalance_wei,
    )
    if undelivered_wh > 0:
        log Undelivered(
            interval=interval,
            seller=prosumer,
            energy_wh=convert(undelivered_wh, uint256),
            charge_wei=convert(self._non_delivery_wei(position_wh, p2p_wei, undelivered_wh, self._buy_price(interval)), uint256),
        )
    if position_wh > 0:
        self._record_sources(interval, prosumer, convert(position_wh, uint256), export_wh, pv_wh, battery_wh)
    gained_wei: int256 = self.credit_wei[prosumer] - credit_before_wei
    if self.audit.address != empty(address) and gained_wei > 0:
        if block.timestamp >= self.fresh_until_timestamp[prosumer]:
            self.fresh_wei[prosumer] = 0
        self.fresh_wei[prosumer] += convert(gained_wei, uint256)
        self.fresh_until_timestamp[prosumer] = block.timestamp + self._audit_flag_window_s


@external
def settle_operator(interval: uint256):
    """
    @dev Settles the operator's own market position in `interval`, which
         no meter measures, after releasing the operator's escrow of the
         interval; anyone may call it once the interval is cleared and
         has ended.
    @param interval Index of a cleared and ended market interval.
    """
    # checks
    terms: SettlementTerms = staticcall auction.settlement_terms(interval, operator)
    assert terms.cleared, "settlement: interval not cleared"
    assert block.timestamp >= terms.end_timestamp, "settlement: interval not ended"
    assert not self.operator_settled[interval], "settlement: operator settled"

    # effects
    self.operator_settled[interval] = True
    lock_wei: uint256 = self.lock_wei[interval][operator]
    if lock_wei != 0:
        self._release(interval, operator, lock_wei)
    self.pool_wei -= terms.value_wei
    self._add_credit(operator, terms.value_wei)
    log OperatorSettled(interval=interval, position_wh=terms.position_wh, value_wei=terms.value_wei)


@external
def set_audit(audit_: Audit):
    """
    @dev Sets the audit contract, once and before the market starts,
         so that every participant can check its code before it holds
         any of their credit.
    @param audit_ The audit contract; it must offer `flag_window_s`
           and `is_isolated`.
    """
    # checks
    self._check_registrar()
    assert self.audit.address == empty(address), "settlement: audit already set"
    assert audit_.address != empty(address), "settlement: audit is the zero address"

    # effects
    self.audit = audit_
    self._audit_flag_window_s = staticcall audit_.flag_window_s()
    log AuditSet(audit=audit_.address)


@external
def hold(account: address, amount_wei: uint256) -> uint256:
    """
    @dev Holds up to `amount_wei` of the free credit of `account`; the
         audit only. Holds what exists: min(amount, max(0, payable
         credit)), so a hold never puts an account in debt.
    @param account The account whose credit is held.
    @param amount_wei The amount the audit asks to hold. [wei]
    @return uint256 The amount held. [wei]
    """
    # checks
    assert msg.sender == self.audit.address, "settlement: caller is not audit"
    held_wei: uint256 = min(amount_wei, convert(max(self._payable_wei(account), 0), uint256))

    # effects
    self.held_wei[account] += held_wei
    log Held(account=account, amount_wei=held_wei)
    return held_wei


@external
def release_held(account: address, amount_wei: uint256, payee: address):
    """
    @dev Ends a hold of `amount_wei` of the credit of `account`; the
         audit only. The credit stays with `account` if `payee` is the
         account, moves to the penalty pool if `payee` is the empty
         address and to `payee` otherwise: the free credit of `account`
         grows by `amount_wei` if it is the payee and is unchanged
         otherwise, and tokens stay conserved.
    @param account The account whose credit is held.
    @param amount_wei The amount released; at most `held_wei`. [wei]
    @param payee Who receives the credit (above).
    """
    # checks
    assert msg.sender == self.audit.address, "settlement: caller is not audit"
    assert amount_wei <= self.held_wei[account], "settlement: release above held"

    # effects
    self.held_wei[account] -= amount_wei
    if payee != account:
        self._add_credit(account, -convert(amount_wei, int256))
        if payee == empty(address):
            self.penalty_pool_wei += amount_wei
        else:
            self._add_credit(payee, convert(amount_wei, int256))
    log HeldReleased(account=account, payee=payee, amount_wei=amount_wei)


@external
def post_estimate(
    interval: uint256, prosumer: address, import_wh: uint256, export_wh: uint256, pv_wh: uint256, battery_wh: uint256
):
    """
    @dev Settles `interval` of a prosumer whose meter the audit isolated
         from the audit's estimate, the audit only: exactly as a reading
         of those registers (same checks and reasons as `post_reading`,
         once per interval).
    @param interval Index of a cleared and ended market interval.
    @param prosumer The isolated prosumer.
    @param import_wh Estimated energy drawn from the grid. [Wh]
    @param export_wh Estimated energy fed into the grid. [Wh]
    @param pv_wh The part of the export the audit books as PV. [Wh]
    @param battery_wh The rest, booked as battery discharge. [Wh]
    """
    assert msg.sender == self.audit.address, "settlement: caller is not audit"
    terms: SettlementTerms = empty(SettlementTerms)
    reason: String[64] = ""
    terms, reason = self._reading_problem(prosumer, interval, import_wh, export_wh, pv_wh, battery_wh, False)
    assert len(reason) == 0, reason
    self._settle(interval, prosumer, terms, import_wh, export_wh, pv_wh, battery_wh)
    log Estimated(interval=interval, prosumer=prosumer)


@external
@view
def imbalance_owed_wei(interval: uint256, prosumer: address, import_wh: uint256, export_wh: uint256) -> int256:
    """
    @dev The imbalance payment registers of `prosumer` for `interval`
         would settle, before credit limits (`_owed_wei`); what the audit
         compares a reading and its estimate by.
    @param interval Index of the market interval.
    @param prosumer The prosumer.
    @param import_wh Energy drawn from the grid; at most `MAX_ENERGY_WH`. [Wh]
    @param export_wh Energy fed into the grid; at most `MAX_ENERGY_WH`. [Wh]
    @return int256 The payment, + = to the prosumer. [wei]
    """
    assert import_wh <= MAX_ENERGY_WH and export_wh <= MAX_ENERGY_WH, "settlement: energy above limit"
    terms: SettlementTerms = staticcall auction.settlement_terms(interval, prosumer)
    return self._owed_wei(terms.position_wh, terms.value_wei, import_wh, export_wh, self._buy_price(interval))[0]


@external
@view
def posted_timestamp(interval: uint256, prosumer: address) -> uint256:
    """
    @dev When the reading (or estimate) of `prosumer` for `interval` was
         posted; the audit's flag window runs from it.
    @param interval Index of the market interval.
    @param prosumer The prosumer.
    @return uint256 The posting block's timestamp, 0 until posted.
           [s since the Unix epoch]
    """
    return self._reading_word[interval][prosumer] >> _READING_TIMESTAMP_SHIFT


@external
@view
def reading(interval: uint256, prosumer: address) -> Reading:
    """
    @dev Reading of `prosumer` for `interval`; all zero until posted.
    @param interval Index of the market interval.
    @param prosumer The prosumer whose meter posted.
    @return Reading Import, export, PV energy and battery discharge
            [Wh] and whether it is posted.
    """
    word: uint256 = self._reading_word[interval][prosumer]
    return Reading(
        import_wh=word & _READING_ENERGY_MASK,
        export_wh=(word >> _READING_EXPORT_SHIFT) & _READING_ENERGY_MASK,
        pv_wh=(word >> _READING_PV_SHIFT) & _READING_ENERGY_MASK,
        battery_wh=(word >> _READING_BATTERY_SHIFT) & _READING_ENERGY_MASK,
        posted=word != 0,
    )


@external
@view
def limits(prosumer: address) -> Limits:
    """
    @dev Registered limits of `prosumer`; all zero until registered.
    @param prosumer The prosumer to look up.
    @return Limits Meter rating, PV peak and battery power [W] and
            whether it is registered.
    """
    word: uint256 = self._limits_word[prosumer]
    return Limits(
        meter_rating_w=word & _LIMIT_MASK,
        pv_w=(word >> _LIMIT_PV_SHIFT) & _LIMIT_MASK,
        battery_w=(word >> _LIMIT_BATTERY_SHIFT) & _LIMIT_MASK,
        registered=word != 0,
    )


@external
@view
def order_problems(interval: uint256, accounts: DynArray[address, MAX_ORDERS], words: DynArray[uint256, MAX_ORDERS]) -> DynArray[uint256, MAX_ORDERS]:
    """
    @dev The settlement's verdict on each order of a relayed batch, in
         one call: `ORDER_OK`, or the first check it fails of those the
         mechanism makes one by one (`escrow._order_problem`): a
         pseudonym outside its interval (`trades_in`), its account in
         debt (`is_debtor`), energy below `min_order_wh` or
         above `order_limit_wh`, a bid's escrow above its free credit
         (`can_lock`). Each order is judged alone: a batch holds at
         most one order per account, and no lock of one account
         changes another's credit.
    @param interval Index of the market interval of the batch.
    @param accounts The account of each order.
    @param words Each order's packed word (`_ORDER_*`: side, energy
           [Wh], limit price [wei/Wh]).
    @return DynArray One `ORDER_*` code per order, in order.
    """
    assert len(accounts) == len(words), "settlement: order length mismatch"
    codes: DynArray[uint256, MAX_ORDERS] = []
    for i: uint256 in range(len(accounts), bound=MAX_ORDERS):
        account: address = accounts[i]
        word: uint256 = words[i]
        is_ask: bool = word >> _ORDER_ASK_SHIFT != 0
        energy_wh: uint256 = word & _ORDER_ENERGY_MASK
        code: uint256 = ORDER_OK
        if self._outside(account, interval):
            code = ORDER_OUTSIDE_INTERVAL
        elif self._free_credit_wei(account) < 0:
            code = ORDER_IN_DEBT
        elif energy_wh < min_order_wh:
            code = ORDER_BELOW_MINIMUM
        elif energy_wh > self._order_limit_wh(account, is_ask):
            code = ORDER_ASK_ABOVE_CAPACITY if is_ask else ORDER_BID_ABOVE_RATING
        elif not is_ask and not self._can_lock(account, energy_wh, (word >> _ORDER_PRICE_SHIFT) & _ORDER_PRICE_MASK):
            code = ORDER_CREDIT_BELOW_ESCROW
        codes.append(code)
    return codes


@external
@view
def order_limit_wh(account: address, is_ask: bool) -> uint256:
    """
    @dev Largest order `account` may place in one interval: a bid up
         to its meter rating * interval, an ask up to the smaller of
         that and (PV peak + battery power) * interval; zero for an
         unregistered account.
    @param account The account placing the order.
    @param is_ask True for an ask (offer, lot), False for a bid.
    @return uint256 The most energy of the order. [Wh]
    """
    return self._order_limit_wh(account, is_ask)


@internal
@view
def _order_limit_wh(account: address, is_ask: bool) -> uint256:
    """
    @dev Largest order of `account` in one interval (`order_limit_wh`).
    @param account The account placing the order.
    @param is_ask True for an ask, False for a bid.
    @return uint256 The most energy of the order. [Wh]
    """
    word: uint256 = self._limits_word[account]
    # Each power is at most MAX_POWER_W and the interval at most
    # _MAX_INTERVAL_S: every bound stays far below MAX_ENERGY_WH.
    rating_wh: uint256 = (word & _LIMIT_MASK) * interval_s // _SECONDS_PER_HOUR
    if not is_ask:
        return rating_wh
    pv_peak_wh: uint256 = ((word >> _LIMIT_PV_SHIFT) & _LIMIT_MASK) * interval_s // _SECONDS_PER_HOUR
    battery_peak_wh: uint256 = ((word >> _LIMIT_BATTERY_SHIFT) & _LIMIT_MASK) * interval_s // _SECONDS_PER_HOUR
    return min(rating_wh, pv_peak_wh + battery_peak_wh)


@external
@view
def is_debtor(account: address) -> bool:
    """
    @dev Whether `account` is in debt (free credit below zero) and so
         may place no order.
    @param account The account to look up.
    @return bool True for a debtor.
    """
    return self._free_credit_wei(account) < 0


@external
@view
def free_credit_wei(account: address) -> int256:
    """
    @dev Credit of `account` neither in escrow nor held by the audit;
         what it may withdraw or lock for a new bid.
    @param account The account to look up.
    @return int256 Credit minus escrow and hold, negative for a
            debtor. [wei]
    """
    return self._free_credit_wei(account)


@external
@view
def can_lock(account: address, energy_wh: uint256, price_wei_per_wh: uint256) -> bool:
    """
    @dev Whether `lock` would find the free credit of `account` enough
         for a bid of `energy_wh` at `price_wei_per_wh`; the mechanisms
         ask before placing a relayed bid.
    @param account The bidder.
    @param energy_wh Energy of the bid. [Wh]
    @param price_wei_per_wh Limit price of the bid. [wei/Wh]
    @return bool True if the escrow fits the free credit.
    """
    return self._can_lock(account, energy_wh, price_wei_per_wh)


@external
@view
def escrow_wei(account: address, energy_wh: uint256, price_wei_per_wh: uint256) -> uint256:
    """
    @dev Escrow `lock` takes for a bid of `account`.
    @param account The bidder; the operator's bids carry no fee.
    @param energy_wh Energy the bid may buy. [Wh]
    @param price_wei_per_wh Most the bid may pay. [wei/Wh]
    @return uint256 energy_wh * (price_wei_per_wh + fee). [wei]
    """
    return self._escrow_wei(account, energy_wh, price_wei_per_wh)


@external
@view
def sold_mix(interval: uint256) -> SourceMix:
    """
    @dev Energy sold in `interval` by source, summed over the sellers
         posted so far.
    @param interval Index of the market interval.
    @return SourceMix PV, battery and grid energy sold. [Wh]
    """
    return self._sold_mix(interval)


@external
@view
def consumed_mix(interval: uint256, buyer: address) -> SourceMix:
    """
    @dev Sources of the energy `buyer` imported in `interval`: its
         peer-to-peer part min(-position, import) pro rata to the
         interval's sold mix (PV and battery rounded down, the rest
         grid), the remaining import from the grid. All zero until its
         reading is posted; final once every seller has posted.
    @param interval Index of the market interval.
    @param buyer The account whose consumption is split.
    @return SourceMix PV, battery and grid energy; sums to the import. [Wh]
    """
    import_wh: uint256 = self._reading_word[interval][buyer] & _READING_ENERGY_MASK
    position_wh: int256 = (staticcall auction.settlement_terms(interval, buyer)).position_wh
    p2p_wh: uint256 = 0
    if position_wh < 0:
        p2p_wh = min(convert(-position_wh, uint256), import_wh)
    sold: SourceMix = self._sold_mix(interval)
    sold_wh: uint256 = sold.pv_wh + sold.battery_wh + sold.grid_wh
    pv_wh: uint256 = 0
    battery_wh: uint256 = 0
    if sold_wh != 0:
        pv_wh = p2p_wh * sold.pv_wh // sold_wh
        battery_wh = p2p_wh * sold.battery_wh // sold_wh
    return SourceMix(pv_wh=pv_wh, battery_wh=battery_wh, grid_wh=import_wh - pv_wh - battery_wh)


@internal
@view
def _free_credit_wei(account: address) -> int256:
    """
    @dev Credit of `account` minus its escrow and what the audit holds.
    @param account The account to look up.
    @return int256 The free credit. [wei]
    """
    return self.credit_wei[account] - convert(self.locked_wei[account] + self.held_wei[account], int256)


@internal
@view
def _payable_wei(account: address) -> int256:
    """
    @dev Free credit `account` may pay with, withdraw or lock: its free
         credit, for the operator less the debt its debtors owe it.
    @param account The account to look up.
    @return int256 The payable credit. [wei]
    """
    if account == operator:
        return self._free_credit_wei(account) - convert(self.debt_wei, int256)
    return self._free_credit_wei(account)


@internal
def _add_credit(account: address, delta_wei: int256):
    """
    @dev Adds `delta_wei` to the credit of `account` and keeps `debt_wei`
         the sum of the negative credits.
    @param account The account.
    @param delta_wei Change of its credit, positive = received. [wei]
    """
    credit_wei: int256 = self.credit_wei[account]
    new_credit_wei: int256 = credit_wei + delta_wei
    self.credit_wei[account] = new_credit_wei
    if credit_wei < 0 or new_credit_wei < 0:
        self.debt_wei = convert(
            convert(self.debt_wei, int256) + max(-new_credit_wei, 0) - max(-credit_wei, 0), uint256
        )


@internal
def _pay_imbalance(
    interval: uint256, payer: address, payee: address, amount_wei: int256, penalty_wei: int256
) -> int256:
    """
    @dev Moves an imbalance payment from `payer`, up to what the payer
         can afford: its payable credit (`_payable_wei`) plus, for an
         account other than the operator, the credit line. The payment
         goes to `payee` up to amount - penalty, the rest to the penalty
         pool. Logs what is left unpaid as `Unpaid`; the penalty pool
         then pays `payee` its unpaid part, up to the pool's balance,
         and logs it as `Covered`.
    @param interval Index of the market interval.
    @param payer The account that pays.
    @param payee The account paid.
    @param amount_wei The payment owed; positive. [wei]
    @param penalty_wei The part of it owed to the penalty pool; 0 to
           `amount_wei`. [wei]
    @return int256 The payment made by `payer`. [wei]
    """
    affordable_wei: int256 = self._payable_wei(payer)
    if payer != operator:
        affordable_wei += convert(credit_line_wei, int256)
    paid_wei: int256 = min(amount_wei, max(affordable_wei, 0))
    payee_owed_wei: int256 = amount_wei - penalty_wei
    payee_paid_wei: int256 = min(paid_wei, payee_owed_wei)
    self._add_credit(payer, -paid_wei)
    self._add_credit(payee, payee_paid_wei)
    self.penalty_pool_wei += convert(paid_wei - payee_paid_wei, uint256)
    if paid_wei < amount_wei:
        log Unpaid(interval=interval, payer=payer, payee=payee, unpaid_wei=convert(amount_wei - paid_wei, uint256))
        covered_wei: uint256 = min(convert(payee_owed_wei - payee_paid_wei, uint256), self.penalty_pool_wei)
        if covered_wei != 0:
            self.penalty_pool_wei -= covered_wei
            self._add_credit(payee, convert(covered_wei, int256))
            log Covered(interval=interval, payee=payee, amount_wei=covered_wei)
    return paid_wei


@internal
@view
def _owed_wei(
    position_wh: int256, value_wei: int256, import_wh: uint256, export_wh: uint256, buy_wei_per_wh: uint256
) -> (int256, int256):
    """
    @dev The imbalance payment of registers against a position, before
         credit limits: the imbalance (export - import - position + u)
         at the grid sell price if positive, else the buy price, less the
         non-delivery charge of the sold energy not exported, u =
         max(0, position - export) (`_non_delivery_wei`).
    @param position_wh The cleared position, + = sold. [Wh]
    @param value_wei Its money value, + = received. [wei]
    @param import_wh Energy drawn from the grid; at most `MAX_ENERGY_WH`. [Wh]
    @param export_wh Energy fed into the grid; at most `MAX_ENERGY_WH`. [Wh]
    @param buy_wei_per_wh The interval's grid buy price (`_buy_price`). [wei/Wh]
    @return (int256, int256) The payment, + = to the prosumer [wei], and u [Wh].
    """
    # |position| and both registers are at most MAX_ENERGY_WH and every
    # price at most MAX_PRICE_WEI_PER_WH: the products stay under 10**37.
    undelivered_wh: int256 = 0
    if position_wh > convert(export_wh, int256):
        undelivered_wh = unsafe_sub(position_wh, convert(export_wh, int256))
    imbalance_wh: int256 = unsafe_add(
        unsafe_sub(unsafe_sub(convert(export_wh, int256), convert(import_wh, int256)), position_wh), undelivered_wh
    )
    owed_wei: int256 = unsafe_mul(convert(grid_sell_price_wei_per_wh, int256), imbalance_wh)
    if imbalance_wh < 0:
        owed_wei = unsafe_mul(convert(buy_wei_per_wh, int256), imbalance_wh)
    if undelivered_wh > 0:
        owed_wei = unsafe_sub(owed_wei, self._non_delivery_wei(position_wh, value_wei, undelivered_wh, buy_wei_per_wh))
    return owed_wei, undelivered_wh


@internal
@view
def _non_delivery_wei(position_wh: int256, value_wei: int256, undelivered_wh: int256, buy_wei_per_wh: uint256) -> int256:
    """
    @dev Charge for `undelivered_wh` of a sold position:
         max(ceil(value * u / position), buy * u) + penalty * u.
    @param position_wh The seller's position; positive. [Wh]
    @param value_wei Its money value, positive = received. [wei]
    @param undelivered_wh Sold energy not exported; 1 to the position. [Wh]
    @param buy_wei_per_wh The interval's grid buy price. [wei/Wh]
    @return int256 The charge; positive. [wei]
    """
    # |value| <= MAX_ENERGY_WH * MAX_PRICE_WEI_PER_WH and u <= MAX_ENERGY_WH:
    # the product stays under 10**49, far inside int256.
    refund_wei: int256 = 0
    if value_wei > 0:
        refund_wei = unsafe_div(
            unsafe_sub(unsafe_add(unsafe_mul(value_wei, undelivered_wh), position_wh), 1), position_wh
        )
    replacement_wei: int256 = unsafe_mul(convert(buy_wei_per_wh, int256), undelivered_wh)
    penalty_wei: int256 = unsafe_mul(convert(non_delivery_penalty_wei_per_wh, int256), undelivered_wh)
    return unsafe_add(max(refund_wei, replacement_wei), penalty_wei)


@internal
@view
def _limits_problem(
    prosumer: address, interval: uint256, import_wh: uint256, export_wh: uint256, pv_wh: uint256, battery_wh: uint256
) -> String[64]:
    """
    @dev Why a reading of `prosumer` lies outside its registered limits
         over one interval, plus `READING_TOLERANCE_WH`, or the empty
         string; a pseudonym's non-empty reading outside its interval
         is refused first.
    @param prosumer The prosumer whose meter posts.
    @param interval Index of the market interval.
    @param import_wh Energy drawn from the grid. [Wh]
    @param export_wh Energy fed into the grid. [Wh]
    @param pv_wh PV energy. [Wh]
    @param battery_wh Battery discharge. [Wh]
    @return String[64] The reason, empty if the reading is within limits.
    """
    word: uint256 = self._limits_word[prosumer]
    if self._outside(prosumer, interval) and import_wh | export_wh | pv_wh | battery_wh != 0:
        return OUTSIDE_INTERVAL
    # Each power is at most MAX_POWER_W and the interval at most
    # _MAX_INTERVAL_S: every bound stays far below MAX_ENERGY_WH.
    rating_wh: uint256 = (word & _LIMIT_MASK) * interval_s // _SECONDS_PER_HOUR + READING_TOLERANCE_WH
    if import_wh > rating_wh:
        return "settlement: import above meter rating"
    if export_wh > rating_wh:
        return "settlement: export above meter rating"
    pv_peak_wh: uint256 = ((word >> _LIMIT_PV_SHIFT) & _LIMIT_MASK) * interval_s // _SECONDS_PER_HOUR
    if pv_wh > pv_peak_wh + READING_TOLERANCE_WH:
        return "settlement: PV above peak power"
    battery_peak_wh: uint256 = ((word >> _LIMIT_BATTERY_SHIFT) & _LIMIT_MASK) * interval_s // _SECONDS_PER_HOUR
    if battery_wh > battery_peak_wh + READING_TOLERANCE_WH:
        return "settlement: battery above power"
    if export_wh > pv_wh + battery_wh + READING_TOLERANCE_WH:
        return "settlement: export above PV and battery"
    return ""


@internal
@view
def _can_lock(account: address, energy_wh: uint256, price_wei_per_wh: uint256) -> bool:
    """
    @dev Whether the free credit of `account` covers the escrow of a bid
         of `energy_wh` at `price_wei_per_wh` (`_escrow_wei`).
    @param account The bidder.
    @param energy_wh Energy of the bid. [Wh]
    @param price_wei_per_wh Limit price of the bid. [wei/Wh]
    @return bool True if `lock` would not revert for want of credit.
    """
    return self._payable_wei(account) >= convert(self._escrow_wei(account, energy_wh, price_wei_per_wh), int256)


@internal
@view
def _fee_wei_per_wh(account: address) -> uint256:
    """
    @dev Fee rate an account's escrow and obligation carry: none for
         the operator, which would pay the fee to itself.
    @param account The account.
    @return uint256 The fee rate. [wei/Wh]
    """
    if account == operator:
        return 0
    return grid_fee_wei_per_wh


@internal
@view
def _escrow_wei(account: address, energy_wh: uint256, price_wei_per_wh: uint256) -> uint256:
    """
    @dev Escrow of a bid: energy_wh * (price_wei_per_wh + fee).
    @param account The bidder.
    @param energy_wh Energy the bid may buy. [Wh]
    @param price_wei_per_wh Most the bid may pay. [wei/Wh]
    @return uint256 The escrow. [wei]
    """
    return energy_wh * (price_wei_per_wh + self._fee_wei_per_wh(account))


@internal
@view
def _obligation_wei(account: address, terms: SettlementTerms) -> uint256:
    """
    @dev What `account` owes for its cleared position:
         max(0, -value) + fee * max(0, -position).
    @param account The account.
    @param terms Its cleared terms.
    @return uint256 The obligation. [wei]
    """
    obligation_wei: uint256 = 0
    if terms.value_wei < 0:
        obligation_wei = convert(-terms.value_wei, uint256)
    if terms.position_wh < 0:
        obligation_wei += self._fee_wei_per_wh(account) * convert(-terms.position_wh, uint256)
    return obligation_wei


@internal
def _release(interval: uint256, account: address, amount_wei: uint256):
    """
    @dev Returns `amount_wei` of the escrow of `account` in `interval`,
         at most that lock, to its free credit.
    @param interval Index of the market interval.
    @param account The account.
    @param amount_wei Escrow released. [wei]
    """
    self.lock_wei[interval][account] -= amount_wei
    self.locked_wei[account] -= amount_wei
    log Released(interval=interval, account=account, amount_wei=amount_wei)


@internal
@view
def _sold_mix(interval: uint256) -> SourceMix:
    """
    @dev Unpacked sold-energy word of `interval`.
    @param interval Index of the market interval.
    @return SourceMix PV, battery and grid energy sold. [Wh]
    """
    word: uint256 = self._sold_word[interval]
    return SourceMix(
        pv_wh=word & _SOLD_MASK,
        battery_wh=(word >> _SOLD_BATTERY_SHIFT) & _SOLD_MASK,
        grid_wh=(word >> _SOLD_GRID_SHIFT) & _SOLD_MASK,
    )


@internal
def _record_sources(
    interval: uint256, seller: address, sold_wh: uint256, export_wh: uint256, pv_wh: uint256, battery_wh: uint256
):
    """
    @dev Splits a seller's sold energy by source (rule in the header),
         adds it to the interval's sold mix and logs it.
    @param interval Index of the market interval.
    @param seller The seller.
    @param sold_wh Its cleared position; positive. [Wh]
    @param export_wh Its metered export. [Wh]
    @param pv_wh Its PV energy. [Wh]
    @param battery_wh Its battery discharge. [Wh]
    """
    delivered_wh: uint256 = min(sold_wh, export_wh)
    sold_pv_wh: uint256 = min(delivered_wh, pv_wh)
    sold_battery_wh: uint256 = min(delivered_wh - sold_pv_wh, battery_wh)
    sold_grid_wh: uint256 = sold_wh - sold_pv_wh - sold_battery_wh
    # Each part is at most MAX_ENERGY_WH and an interval's sellers
    # together sell less than 2**48 Wh: no field overflows into the next.
    self._sold_word[interval] += (
        sold_pv_wh | sold_battery_wh << _SOLD_BATTERY_SHIFT | sold_grid_wh << _SOLD_GRID_SHIFT
    )
    log Sourced(interval=interval, seller=seller, pv_wh=sold_pv_wh, battery_wh=sold_battery_wh, grid_wh=sold_grid_wh)
