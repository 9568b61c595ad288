# pragma version ~=0.4.3
"""
@title Source Choice of a GridLedger Market
@custom:contract-name source_choice
@license BSD-3-Clause
@notice Buyers choose the source of the energy they buy, after Li et
        al.: a prosumer states once that it buys PV-sourced energy
        (`choose_pv`). The Settlement already traces the sources of
        every interval's sold energy from the sellers' meters (its
        `sold_mix`: PV, battery, grid); this contract allocates that
        PV to the buyers who chose it before anyone else. The clearing,
        positions and payments are the market's and do not change:
        what a choice changes is whose purchase the metered PV is
        written to.
        Functions:
        - `choose_pv` (`external` function, a registered prosumer, once),
        - `chose_pv`, `pv_chosen_wh`, `consumed_mix`, `choosers`
          (`external` `view` functions).
        Allocation for interval k, with S the sold mix (total T), p a
        buyer's peer-to-peer energy min(-position, import) [Wh] and P
        the sum of p over the buyers whose choice holds for k (stated
        before k's gate): the choosers share A = min(S.pv, P) pro rata
        to p (pv = p * A // P); the rest of their p, p * (P - A) / P
        unrounded, comes from battery and grid pro rata to S's non-PV
        part, so that the choosers' battery never exceeds
        (P - A) * S.battery // (S.battery + S.grid) (a sum of floors is
        at most the floor of the sum). Everybody else shares
        what is left, pro rata to p over T - P: PV S.pv - A and
        battery S.battery - (P - A) * S.battery // (S.battery +
        S.grid). PV and battery round down, the rest of the import is
        grid. Without choosers this is the Settlement's own
        `consumed_mix`; a chooser never gets a smaller PV share than
        anyone else, and the PV allocated never exceeds the PV sold.
        Final once every seller and every chooser of the interval has
        posted its reading.
@custom:security Nothing here moves money. A prosumer can only state
                 its own choice, once: it cannot take PV from the
                 others by stating it for another account or changing
                 it after it knows an interval's mix.
"""


# @dev The Settlement's registry of roles.
interface Registry:
    def has_role(account: address, role: uint256) -> bool: view


# @dev The market's auction: gates and positions.
interface Auction:
    def gate_timestamp(interval: uint256) -> uint256: view
    def settlement_terms(interval: uint256, account: address) -> SettlementTerms: view


# @dev The Settlement whose source registers are allocated.
interface Settlement:
    def auction() -> Auction: view
    def registry() -> Registry: view
    def reading(interval: uint256, prosumer: address) -> Reading: view
    def sold_mix(interval: uint256) -> SourceMix: view


# @dev A prosumer's terms of an interval, as the auction returns them.
struct SettlementTerms:
    cleared: bool
    position_wh: int256
    value_wei: int256
    end_timestamp: uint256


# @dev A posted reading, as `Settlement.reading` returns it. [Wh]
struct Reading:
    import_wh: uint256
    export_wh: uint256
    pv_wh: uint256
    battery_wh: uint256
    posted: bool


# @dev Energy by source. [Wh]
struct SourceMix:
    pv_wh: uint256
    battery_wh: uint256
    grid_wh: uint256


# @dev The registry's prosumer role (`Registry.ROLE_PROSUMER`).
ROLE_PROSUMER: constant(uint256) = 2


# @dev Most buyers that may choose PV.
MAX_CHOOSERS: public(constant(uint256)) = 1024


# @dev The Settlement whose sources are allocated.
settlement: public(immutable(Settlement))


# @dev The market's auction, read from the Settlement.
auction: public(immutable(Auction))


# @dev The Settlement's registry.
registry: public(immutable(Registry))


# @dev When each buyer chose PV; 0 if it has not. [s since the Unix epoch]
chosen_timestamp: public(HashMap[address, uint256])


# @dev The buyers that chose PV, in the order they chose.
_choosers: DynArray[address, MAX_CHOOSERS]


# @dev Emitted when a prosumer chooses PV-sourced energy.
event PvChosen:
    buyer: indexed(address)


@deploy
def __init__(settlement_: Settlement):
    """
    @param settlement_ The Settlement whose source registers are allocated.
    """
    settlement = settlement_
    auction = staticcall settlement_.auction()
    registry = staticcall settlement_.registry()


@external
def choose_pv():
    """
    @dev States that the caller buys PV-sourced energy; a registered
         prosumer, once. Holds for every interval whose gate comes
         after this block.
    """
    assert staticcall registry.has_role(msg.sender, ROLE_PROSUMER), "source: caller is not a prosumer"
    assert self.chosen_timestamp[msg.sender] == 0, "source: already chosen"
    assert len(self._choosers) < MAX_CHOOSERS, "source: too many choosers"
    self.chosen_timestamp[msg.sender] = block.timestamp
    self._choosers.append(msg.sender)
    log PvChosen(buyer=msg.sender)


@external
@view
def chose_pv(interval: uint256, buyer: address) -> bool:
    """
    @dev Whether `buyer`'s choice of PV holds for `interval`.
    @param interval Index of the market interval.
    @param buyer The buyer.
    @return bool True if it chose before the interval's gate.
    """
    return self._chose(interval, buyer)


@external
@view
def pv_chosen_wh(interval: uint256) -> uint256:
    """
    @dev P: the peer-to-peer energy of the buyers whose choice holds
         for `interval`, as posted so far.
    @param interval Index of the market interval.
    @return uint256 The sum. [Wh]
    """
    return self._pv_chosen_wh(interval)


@external
@view
def choosers() -> DynArray[address, MAX_CHOOSERS]:
    """
    @dev The buyers that chose PV, in the order they chose.
    @return DynArray[address, MAX_CHOOSERS] Their accounts.
    """
    return self._choosers


@external
@view
def consumed_mix(interval: uint256, buyer: address) -> SourceMix:
    """
    @dev Sources of the energy `buyer` imported in `interval`, the PV
         allocated to choosers first (header); all grid until its
         reading is posted.
    @param interval Index of the market interval.
    @param buyer The buyer.
    @return SourceMix PV, battery and grid energy; sums to the import. [Wh]
    """
    import_wh: uint256 = (staticcall settlement.reading(interval, buyer)).import_wh
    p2p_wh: uint256 = self._p2p_wh(interval, buyer, import_wh)
    sold: SourceMix = staticcall settlement.sold_mix(interval)
    total_wh: uint256 = sold.pv_wh + sold.battery_wh + sold.grid_wh
    chosen_wh: uint256 = self._pv_chosen_wh(interval)
    to_choosers_wh: uint256 = min(sold.pv_wh, chosen_wh)
    rest_wh: uint256 = sold.battery_wh + sold.grid_wh
    pv_wh: uint256 = 0
    battery_wh: uint256 = 0
    if self._chose(interval, buyer):
        if chosen_wh != 0:
            pv_wh = p2p_wh * to_choosers_wh // chosen_wh
            if rest_wh != 0:
                battery_wh = p2p_wh * (chosen_wh - to_choosers_wh) * sold.battery_wh // (chosen_wh * rest_wh)
    else:
        battery_taken_wh: uint256 = 0
        if rest_wh != 0:
            battery_taken_wh = (chosen_wh - to_choosers_wh) * sold.battery_wh // rest_wh
        if total_wh > chosen_wh:
            pv_wh = p2p_wh * (sold.pv_wh - to_choosers_wh) // (total_wh - chosen_wh)
            battery_wh = p2p_wh * (sold.battery_wh - battery_taken_wh) // (total_wh - chosen_wh)
    return SourceMix(pv_wh=pv_wh, battery_wh=battery_wh, grid_wh=import_wh - pv_wh - battery_wh)


@internal
@view
def _chose(interval: uint256, buyer: address) -> bool:
    """
    @dev Whether `buyer` chose PV before `interval`'s gate.
    @param interval Index of the market interval.
    @param buyer The buyer.
    @return bool The answer.
    """
    chosen: uint256 = self.chosen_timestamp[buyer]
    return chosen != 0 and chosen < staticcall auction.gate_timestamp(interval)


@internal
@view
def _p2p_wh(interval: uint256, buyer: address, import_wh: uint256) -> uint256:
    """
    @dev A buyer's peer-to-peer energy: min(-position, import), 0 for
         a seller.
    @param interval Index of the market interval.
    @param buyer The buyer.
    @param import_wh Its posted import. [Wh]
    @return uint256 The energy. [Wh]
    """
    position_wh: int256 = (staticcall auction.settlement_terms(interval, buyer)).position_wh
    if position_wh >= 0:
        return 0
    return min(convert(-position_wh, uint256), import_wh)


@internal
@view
def _pv_chosen_wh(interval: uint256) -> uint256:
    """
    @dev P of `interval` (`pv_chosen_wh`).
    @param interval Index of the market interval.
    @return uint256 The sum. [Wh]
    """
    gate: uint256 = staticcall auction.gate_timestamp(interval)
    total_wh: uint256 = 0
    for buyer: address in self._choosers:
        if self.chosen_timestamp[buyer] < gate:
            total_wh += self._p2p_wh(interval, buyer, (staticcall settlement.reading(interval, buyer)).import_wh)
    return total_wh
