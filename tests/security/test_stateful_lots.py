"""Stateful property tests of the lot auctions (English, Vickrey) with their Settlement (issue 11).

`LotMachine` adds to `MarketMachine` (clock, meters, Settlement, accounts)
the lots: prosumers post one lot each in the next open interval; lots by
non-prosumers, by debtors, out of range, twice or after the gate must be
refused.

`EnglishMachine` adds the English auction's open bids. Honest: prosumers post
one lot each in the next open interval, others bid at least the reserve or
the leading price plus the increment, within the cap and their free credit,
leading at most one lot; an interval closes by itself at its gate.
Malicious (each must revert with the expected reason and change neither
money nor the interval's lots): bids by non-prosumers, on no lot, on one's
own lot, above the cap, below the reserve or the increment, while leading
another lot, after the gate, above free credit. After every step every
escrow follows the outbid leaders (the reference's `escrow_wei`), and every
closed interval's leaders, prices, positions and values are those of
`clear_english` over the same lots and bids.

`VickreyMachine` adds sealed bids: honest bidders commit (escrow at the
cap), reveal in the window (escrow down to their price) and anyone
finalises after it. Malicious: commits by non-prosumers, on one's own lot,
empty, twice, after the gate or above free credit; reveals before or after
the window, without a commitment, twice or not matching it; finalising
during the window or twice. Every finalised interval's winners, positions
and values are those of `clear_vickrey` over the same lots and reveals.
"""

from __future__ import annotations

import pytest
from hypothesis import strategies as st
from hypothesis.stateful import initialize, precondition, rule

from gridledger.contracts import market as mk
from gridledger.contracts.reference import Lot, LotAuction, LotBid, clear_english, clear_vickrey, escrow_wei
from tests.contract_helpers import CENT_PER_KWH, PRICE_CAP_WEI_PER_WH
from tests.security.stateful_helpers import (
    ASK_LIMIT_WH,
    INTERVALS,
    MAX_ORDER_WH,
    MIN_ORDER_WH,
    machine_settings,
)
from tests.security.stateful_market import MarketMachine, attack

INCREMENT_WEI_PER_WH = CENT_PER_KWH
LOT_ENERGIES = st.integers(MIN_ORDER_WH, MAX_ORDER_WH)
RESERVES = st.sampled_from([k * 5 * CENT_PER_KWH for k in range(1, 13)])
# Raises over the least acceptable bid. [wei/Wh]
RAISES = st.sampled_from([0, 0, CENT_PER_KWH, 7 * CENT_PER_KWH, 40 * CENT_PER_KWH])
EMPTY = "0x" + "00" * 20


class LotMachine(MarketMachine):
    """A lot-auction market; each example starts with lots of up to two prosumers in interval 0."""

    def _start_lots(self, lots, **mechanism_args: int) -> None:
        self._start(**mechanism_args)
        self.lots: dict[int, list[tuple[int, Lot]]] = {i: [] for i in INTERVALS}
        self._post_lots(0, self.market.prosumers, lots)

    def _interval_state(self, interval: int) -> tuple:
        return tuple(self.head.read(self.contract, "lot", lot_id) for lot_id, _ in self.lots[interval])

    def _post_lots(self, interval: int, wallets, lots) -> None:
        """``wallets`` post ``lots`` (energy, reserve) in ``interval`` in one block; debtors and sellers skip."""
        sellers = {lot.seller for _, lot in self.lots[interval]}
        posting = [(w, q, r) for w, (q, r) in zip(wallets, lots, strict=False)
                   if w.address not in sellers and not self.ledger.is_debtor(w.address)]
        receipts = self.market.mine([mk.post_lot(w, self.market.addresses, interval, energy_wh=q,
                                                 reserve_price_wei_per_wh=r) for w, q, r in posting])
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
        new_ids = self.market.read(self.contract, "lots", interval)[len(self.lots[interval]):]
        self.lots[interval] += [(lot_id, Lot(w.address, q, r)) for lot_id, (w, q, r) in zip(new_ids, posting,
                                                                                            strict=True)]

    def _biddable(self) -> list[tuple[int, int]]:
        """(interval, lot index) of every lot whose gate is open."""
        return [(i, k) for i in self._open() for k in range(len(self.lots[i]))]

    @precondition(lambda self: self._open())
    @rule(data=st.data(), lots=st.lists(st.tuples(LOT_ENERGIES, RESERVES), min_size=1, max_size=2))
    def post_lots(self, data, lots):
        interval = min(self._open())
        self._post_lots(interval, data.draw(st.permutations(self.market.prosumers)), lots)

    @rule(data=st.data())
    def attack_with_a_lot(self, data):
        self._attack_of(data, "lot post")

    @attack("lot post", energy_wh=LOT_ENERGIES, reserve=RESERVES, excess=st.integers(1, 10**18))
    def lot_against_the_rules(self, data, energy_wh, reserve, excess):
        """A lot by a non-prosumer, out of range, after the gate, a second one, or by a debtor."""
        m = self.market
        interval = data.draw(st.sampled_from(INTERVALS))
        sellers = {lot.seller for _, lot in self.lots[interval]}
        wallet = data.draw(st.sampled_from(m.prosumers))
        cases = [(m.outsider, energy_wh, reserve, "access: caller is not a prosumer"),
                 (wallet, 0, reserve, "lot_book: zero energy"),
                 (wallet, energy_wh, 0, "lot_book: zero reserve"),
                 (wallet, energy_wh, PRICE_CAP_WEI_PER_WH + excess, "lot_book: reserve above cap")]
        if interval in self._closed():
            cases.append((wallet, energy_wh, reserve, "gate: gate closed"))
        else:
            cases += [(w, energy_wh, reserve, "lot_book: lot exists") for w in m.prosumers if w.address in sellers]
            cases += [(w, energy_wh, reserve, "escrow: account in debt") for w in m.prosumers
                      if w.address not in sellers and self.ledger.is_debtor(w.address)]
            cases += [(w, ASK_LIMIT_WH + 1, reserve, "escrow: ask above registered capacity") for w in m.prosumers
                      if w.address not in sellers and not self.ledger.is_debtor(w.address)]
        sender, q, r, reason = data.draw(st.sampled_from(cases))
        self._refused(mk.post_lot(sender, m.addresses, interval, energy_wh=q, reserve_price_wei_per_wh=r), reason,
                      interval=interval)


class EnglishMachine(LotMachine):
    """One English-auction market."""

    MECHANISM = "english"

    @initialize(lots=st.lists(st.tuples(LOT_ENERGIES, RESERVES), min_size=1, max_size=2))
    def deploy(self, lots):
        self.bids: dict[int, list[LotBid]] = {i: [] for i in INTERVALS}
        self._start_lots(lots, bid_increment_wei_per_wh=INCREMENT_WEI_PER_WH)

    def _auction(self, interval: int) -> LotAuction:
        lots = [lot for _, lot in self.lots[interval]]
        return clear_english(lots, self.bids[interval], INCREMENT_WEI_PER_WH, PRICE_CAP_WEI_PER_WH)

    def _reference(self, interval: int):
        auction = self._auction(interval)
        return auction.positions_wh, auction.values_wei, None

    def _assert_terms(self, interval: int) -> None:
        super()._assert_terms(interval)
        auction = self._auction(interval)
        for (lot_id, _), winner, price in zip(self.lots[interval], auction.winners, auction.prices_wei_per_wh,
                                              strict=True):
            _, _, _, _, leader, leading_price = self.market.read(self.contract, "lot", lot_id)
            assert (leader, leading_price) == (winner or EMPTY, price)

    def _after_clock(self) -> None:
        """An interval closes at its gate: its terms are final."""
        for interval in INTERVALS:
            if self.market.chain.timestamp >= self.market.gate(interval) and interval not in self.terms:
                self._record_terms(interval)

    def _keep(self, data) -> None:
        """Nothing to clear: the gate closes the auction."""

    def _lead(self, interval: int, bidder: str) -> int | None:
        """Index of the lot ``bidder`` leads in ``interval``, if any."""
        return next((k for k, w in enumerate(self._auction(interval).winners) if w == bidder), None)

    def _floor(self, interval: int, k: int) -> int:
        """Least price the next bid on lot ``k`` of ``interval`` needs. [wei/Wh]"""
        auction = self._auction(interval)
        lot = self.lots[interval][k][1]
        return lot.reserve_price_wei_per_wh if auction.winners[k] is None else (
            auction.prices_wei_per_wh[k] + INCREMENT_WEI_PER_WH)

    def _bid_tx(self, wallet, lot_id: int, price: int) -> bytes:
        return mk.bid(wallet, self.market.addresses, lot_id, price_wei_per_wh=price)

    @precondition(lambda self: self._biddable())
    @rule(data=st.data(), raise_wei_per_wh=RAISES)
    def bid(self, data, raise_wei_per_wh):
        """A prosumer other than the seller, leading no other lot, bids within the cap and its free credit."""
        interval, k = data.draw(st.sampled_from(self._biddable()))
        lot_id, lot = self.lots[interval][k]
        price = min(self._floor(interval, k) + raise_wei_per_wh, PRICE_CAP_WEI_PER_WH)
        auction = self._auction(interval)
        leader, leading_price = auction.winners[k], auction.prices_wei_per_wh[k]
        bidders = []
        for w in self.market.prosumers:
            lead = self._lead(interval, w.address)
            own_lock = escrow_wei(lot.energy_wh, leading_price, self.ledger.fee(w.address)) if lead == k else 0
            affordable = escrow_wei(lot.energy_wh, price, self.ledger.fee(w.address)) <= (
                self.ledger.payable_wei(w.address) + own_lock)
            if w.address != lot.seller and lead in (None, k) and affordable:
                bidders.append(w)
        if self._floor(interval, k) > PRICE_CAP_WEI_PER_WH or not bidders:
            return
        wallet = data.draw(st.sampled_from(bidders))
        (receipt,) = self.market.mine([self._bid_tx(wallet, lot_id, price)])
        assert receipt.ok, receipt.revert_reason
        self.bids[interval].append(LotBid(wallet.address, k, price))
        assert self._auction(interval).accepted[-1]
        if leader is not None:
            self.ledger.unlock(interval, leader, escrow_wei(lot.energy_wh, leading_price, self.ledger.fee(leader)))
        self.ledger.lock(interval, wallet.address, lot.energy_wh, price)

    @rule(data=st.data())
    def attack_with_a_bid(self, data):
        self._attack_of(data, "english bid")

    @attack("english bid", price=RESERVES)
    def bid_by_non_prosumer(self, data, price):
        m = self.market
        wallet = data.draw(st.sampled_from([m.operator, m.outsider, m.dso, *m.meters]))
        posted = [(i, k) for i in INTERVALS for k in range(len(self.lots[i]))]
        if not posted:
            return
        interval, k = data.draw(st.sampled_from(posted))
        self._refused(self._bid_tx(wallet, self.lots[interval][k][0], price), "access: caller is not a prosumer",
                      interval=interval)

    @attack("english bid", price=RESERVES, beyond=st.integers(0, 10))
    def bid_on_no_lot(self, data, price, beyond):
        lot_count = self.market.read(self.contract, "lot_count")
        wallet = data.draw(st.sampled_from(self.market.prosumers))
        self._refused(self._bid_tx(wallet, lot_count + beyond, price), "lot_book: no such lot")

    @attack("english bid", excess=st.integers(1, 10**18))
    def bid_against_the_rules(self, data, excess):
        """On an open lot: the seller's own bid, a bid above the cap, below the floor, or while leading another."""
        if not self._biddable():
            return
        interval, k = data.draw(st.sampled_from(self._biddable()))
        lot_id, lot = self.lots[interval][k]
        floor = self._floor(interval, k)
        others = [w for w in self.market.prosumers if w.address != lot.seller]
        free = [w for w in others if self._lead(interval, w.address) in (None, k)]
        leading = [w for w in others if self._lead(interval, w.address) not in (None, k)]
        below = "english: bid below reserve" if self._auction(interval).winners[k] is None \
            else "english: bid below current plus increment"
        seller = next(w for w in self.market.prosumers if w.address == lot.seller)
        cases = [(seller, floor, "english: seller bids on own lot"),
                 *[(w, PRICE_CAP_WEI_PER_WH + excess, "english: price above cap") for w in free[:1]],
                 *[(w, floor - 1, below) for w in free[:1] if 0 < floor - 1 <= PRICE_CAP_WEI_PER_WH],
                 *[(w, min(floor, PRICE_CAP_WEI_PER_WH), "english: leading another lot") for w in leading[:1]]]
        wallet, price, reason = data.draw(st.sampled_from(cases))
        self._refused(self._bid_tx(wallet, lot_id, price), reason, interval=interval)

    @attack("english bid", price=RESERVES)
    def bid_after_gate(self, data, price):
        closed = [(i, k) for i in self._closed() for k in range(len(self.lots[i]))]
        if not closed:
            return
        interval, k = data.draw(st.sampled_from(closed))
        lot_id, lot = self.lots[interval][k]
        wallet = data.draw(st.sampled_from([w for w in self.market.prosumers if w.address != lot.seller]))
        self._refused(self._bid_tx(wallet, lot_id, price), "gate: gate closed", interval=interval)

    @attack("english bid")
    def bid_above_free_credit(self, data):
        cases = []
        for interval, k in self._biddable():
            lot_id, lot = self.lots[interval][k]
            price = self._floor(interval, k)
            cases += [(interval, lot_id, w, price) for w in self.market.prosumers
                      if w.address != lot.seller and self._lead(interval, w.address) is None
                      and price <= PRICE_CAP_WEI_PER_WH
                      and escrow_wei(lot.energy_wh, price, self.ledger.fee(w.address))
                      > self.ledger.payable_wei(w.address)]
        if not cases:
            return
        interval, lot_id, wallet, price = data.draw(st.sampled_from(cases))
        self._refused(self._bid_tx(wallet, lot_id, price), "settlement: credit below escrow", interval=interval)


class VickreyMachine(LotMachine):
    """One Vickrey-auction market: sealed bids committed before the gate, revealed in its window."""

    MECHANISM = "vickrey"

    @initialize(lots=st.lists(st.tuples(LOT_ENERGIES, RESERVES), min_size=1, max_size=2),
                bids=st.lists(st.tuples(RAISES, st.binary(min_size=32, max_size=32)), max_size=2))
    def deploy(self, lots, bids):
        """Lots in interval 0 and sealed bids on its first lot by the prosumers who posted none."""
        self.sealed: dict[int, dict[str, tuple[int, int, bytes]]] = {i: {} for i in INTERVALS}
        self.reveals: dict[int, list[LotBid]] = {i: [] for i in INTERVALS}
        self._start_lots(lots)
        self.reveal_s = self.market.read(self.contract, "reveal_s")
        bidders = [w for w in self.market.prosumers if w.address not in {lot.seller for _, lot in self.lots[0]}]
        for wallet, (raise_wei_per_wh, salt) in zip(bidders, bids, strict=False):
            self._commit(0, 0, wallet, raise_wei_per_wh, salt)

    def _marks(self, interval: int) -> tuple[int, ...]:
        return (*super()._marks(interval), self.market.gate(interval) + self.reveal_s)

    def _auction(self, interval: int) -> LotAuction:
        lots = [lot for _, lot in self.lots[interval]]
        return clear_vickrey(lots, self.reveals[interval], PRICE_CAP_WEI_PER_WH)

    def _reference(self, interval: int):
        auction = self._auction(interval)
        return auction.positions_wh, auction.values_wei, None

    def _assert_terms(self, interval: int) -> None:
        super()._assert_terms(interval)
        for (lot_id, _), winner in zip(self.lots[interval], self._auction(interval).winners, strict=True):
            assert self.market.read(self.contract, "lot", lot_id)[4] == (winner or EMPTY)

    def _in_window(self, interval: int) -> bool:
        return self.market.gate(interval) <= self._next_ts() < self.market.gate(interval) + self.reveal_s

    def _unrevealed(self) -> list[tuple[int, str]]:
        revealed = {(i, r.bidder) for i in INTERVALS for r in self.reveals[i]}
        return [(i, b) for i in INTERVALS if self._in_window(i) for b in self.sealed[i] if (i, b) not in revealed]

    def _finalisable(self) -> list[int]:
        return [i for i in INTERVALS
                if i not in self.terms and self._next_ts() >= self.market.gate(i) + self.reveal_s]

    def _keep(self, data) -> None:
        """Bidders reveal in the window; anyone finalises after it."""
        while self._unrevealed():
            self.reveal(data)
        while self._finalisable():
            self.finalise(data)

    @precondition(lambda self: self._biddable())
    @rule(data=st.data(), raise_wei_per_wh=RAISES, salt=st.binary(min_size=32, max_size=32))
    def commit(self, data, raise_wei_per_wh, salt):
        """A prosumer without a bid in the interval seals one on another's lot, at the reserve or above."""
        interval, k = data.draw(st.sampled_from(self._biddable()))
        _, lot = self.lots[interval][k]
        bidders = [w for w in self.market.prosumers if w.address != lot.seller and w.address not in self.sealed[
            interval] and escrow_wei(lot.energy_wh, PRICE_CAP_WEI_PER_WH, self.ledger.fee(w.address))
            <= self.ledger.payable_wei(w.address)]
        if not bidders:
            return
        self._commit(interval, k, data.draw(st.sampled_from(bidders)), raise_wei_per_wh, salt)

    def _commit(self, interval: int, k: int, wallet, raise_wei_per_wh: int, salt: bytes) -> None:
        """``wallet`` seals a bid of the reserve plus ``raise_wei_per_wh`` on lot ``k`` of ``interval``."""
        lot_id, lot = self.lots[interval][k]
        price = min(lot.reserve_price_wei_per_wh + raise_wei_per_wh, PRICE_CAP_WEI_PER_WH)
        sealed = mk.commitment(wallet.address, lot_id, price, salt)
        (receipt,) = self.market.mine([mk.commit_bid(wallet, self.market.addresses, lot_id, sealed=sealed)])
        assert receipt.ok, receipt.revert_reason
        self.sealed[interval][wallet.address] = (k, price, salt)
        self.ledger.lock(interval, wallet.address, lot.energy_wh, PRICE_CAP_WEI_PER_WH)

    @precondition(lambda self: self._unrevealed())
    @rule(data=st.data())
    def reveal(self, data):
        """A committed bidder opens its bid in the window; its escrow drops from the cap to its price."""
        interval, bidder = data.draw(st.sampled_from(self._unrevealed()))
        k, price, salt = self.sealed[interval][bidder]
        lot_id, lot = self.lots[interval][k]
        wallet = next(w for w in self.market.prosumers if w.address == bidder)
        (receipt,) = self.market.mine([mk.reveal_bid(wallet, self.market.addresses, lot_id, price_wei_per_wh=price,
                                                     salt=salt)])
        assert receipt.ok, receipt.revert_reason
        self.reveals[interval].append(LotBid(bidder, k, price))
        fee = self.ledger.fee(bidder)
        self.ledger.unlock(interval, bidder, escrow_wei(lot.energy_wh, PRICE_CAP_WEI_PER_WH, fee)
                           - escrow_wei(lot.energy_wh, price, fee))

    @precondition(lambda self: self._finalisable())
    @rule(data=st.data())
    def finalise(self, data):
        interval = data.draw(st.sampled_from(self._finalisable()))
        m = self.market
        (receipt,) = m.mine([mk.finalise(m.outsider, m.addresses, interval, n_lots=len(self.lots[interval]))])
        assert receipt.ok, receipt.revert_reason
        self._record_terms(interval)

    @rule(data=st.data())
    def attack_with_a_sealed_bid(self, data):
        self._attack_of(data, "sealed bid")

    @attack("sealed bid", salt=st.binary(min_size=32, max_size=32), price=RESERVES)
    def commit_against_the_rules(self, data, salt, price):
        """A commit by a non-prosumer, on one's own lot, empty, a second one, after the gate, above free credit."""
        m = self.market
        posted = [(i, k) for i in INTERVALS for k in range(len(self.lots[i]))]
        if not posted:
            return
        interval, k = data.draw(st.sampled_from(posted))
        lot_id, lot = self.lots[interval][k]
        seller = next(w for w in m.prosumers if w.address == lot.seller)
        others = [w for w in m.prosumers if w.address != lot.seller]
        cases = [(m.outsider, b"\x01" * 32, "access: caller is not a prosumer")]
        if interval in self._closed():
            cases.append((others[0], b"\x01" * 32, "gate: gate closed"))
        else:
            cases += [(seller, b"\x01" * 32, "vickrey: seller bids on own lot"),
                      (others[0], b"\x00" * 32, "vickrey: zero commitment")]
            cases += [(w, b"\x01" * 32, "vickrey: bid exists") for w in others if w.address in self.sealed[interval]]
            cases += [(w, b"\x01" * 32, "settlement: credit below escrow") for w in others
                      if w.address not in self.sealed[interval] and escrow_wei(
                          lot.energy_wh, PRICE_CAP_WEI_PER_WH, self.ledger.fee(w.address))
                      > self.ledger.payable_wei(w.address)]
        wallet, sealed, reason = data.draw(st.sampled_from(cases))
        if sealed == b"\x01" * 32:
            sealed = mk.commitment(wallet.address, lot_id, price, salt)
        self._refused(mk.commit_bid(wallet, m.addresses, lot_id, sealed=sealed), reason, interval=interval)

    @attack("sealed bid", price=RESERVES, salt=st.binary(min_size=32, max_size=32))
    def reveal_against_the_rules(self, data, price, salt):
        """A reveal out of its window, without a commitment, twice, or not matching the commitment."""
        m = self.market
        cases = []
        for i in INTERVALS:
            revealed = {r.bidder for r in self.reveals[i]}
            for bidder, (k, committed, committed_salt) in self.sealed[i].items():
                lot_id = self.lots[i][k][0]
                if self._next_ts() < m.gate(i):
                    cases.append((i, bidder, lot_id, committed, committed_salt, "vickrey: reveal not open"))
                elif not self._in_window(i):
                    cases.append((i, bidder, lot_id, committed, committed_salt, "vickrey: reveal closed"))
                elif bidder in revealed:
                    cases.append((i, bidder, lot_id, committed, committed_salt, "vickrey: already revealed"))
                elif (price, salt) != (committed, committed_salt):
                    cases.append((i, bidder, lot_id, price, salt, "vickrey: commitment mismatch"))
            cases += [(i, w.address, lot_id, price, salt, "vickrey: no commitment") for lot_id, lot in self.lots[i]
                      for w in m.prosumers if self._in_window(i) and w.address not in self.sealed[i]]
        if not cases:
            return
        interval, bidder, lot_id, p, s, reason = data.draw(st.sampled_from(cases))
        wallet = next(w for w in m.prosumers if w.address == bidder)
        self._refused(mk.reveal_bid(wallet, m.addresses, lot_id, price_wei_per_wh=p, salt=s), reason,
                      interval=interval)

    @attack("sealed bid")
    def finalise_out_of_turn(self, data):
        m = self.market
        cases = [(i, "vickrey: already finalised") for i in self.terms]
        cases += [(i, "vickrey: reveal open") for i in INTERVALS if self._next_ts() < m.gate(i) + self.reveal_s]
        if not cases:
            return
        interval, reason = data.draw(st.sampled_from(cases))
        self._refused(mk.finalise(m.outsider, m.addresses, interval, n_lots=len(self.lots[interval])), reason,
                      interval=interval)


TestEnglishMachine = type("TestEnglishMachine", (EnglishMachine.TestCase,),
                          {"settings": machine_settings(25, steps=10)})
TestEnglishMachineSlow = pytest.mark.slow(
    type("TestEnglishMachineSlow", (EnglishMachine.TestCase,), {"settings": machine_settings(1000, steps=20)}))
TestVickreyMachine = type("TestVickreyMachine", (VickreyMachine.TestCase,),
                          {"settings": machine_settings(25, steps=10)})
TestVickreyMachineSlow = pytest.mark.slow(
    type("TestVickreyMachineSlow", (VickreyMachine.TestCase,), {"settings": machine_settings(1000, steps=20)}))
