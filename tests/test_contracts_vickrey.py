"""VickreyAuction on a real py-evm chain against the Python reference."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.chain import CallReverted
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.reference import (
    Lot,
    LotBid,
    clear_vickrey,
)

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    GATE_CLOSURE_S,
    INTERVAL_S,
    PRICE_CAP_WEI_PER_WH,
    START_TIMESTAMP,
    Market,
    assert_settlement_conserves_tokens,
    named_accounts,
    new_market,
    read_lot_auction,
    reverted,
)

N_PROSUMERS = 10
REVEAL_S = GATE_CLOSURE_S // 2
MAX_ENERGY_WH = 10**12


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(N_PROSUMERS, mechanism="vickrey")


def salt(bidder: str) -> bytes:
    return bytes.fromhex(bidder[2:]).rjust(32, b"\x07")


def sealed(bidder: Wallet, lot_id: int, price_wei_per_wh: int) -> bytes:
    """``bidder``'s commitment to ``price_wei_per_wh`` on ``lot_id`` with its :func:`salt`."""
    return mk.commitment(bidder.address, lot_id, price_wei_per_wh, salt(bidder.address))


def _run(market: Market, lots: list[tuple[int, int]], bids: list[tuple[int, int]]):
    """Post (energy_wh, reserve) lots from the first prosumers; commit (lot, price) bids from the
    next ones, reveal them in order at the gate and finalise after the window.

    Returns (reference lots, reference reveals, reveal receipts, on-chain result, finalise events).
    """
    interval = market.next_interval()
    lot_ids, ref_lots = market.post_lots(interval, lots)
    bidders = market.prosumers[len(lots) :]
    reveals = [
        LotBid(w.address, lot, price)
        for w, (lot, price) in zip(bidders, bids, strict=False)
    ]
    commits = market.mine(
        [
            mk.commit_bid(
                w,
                market.addresses,
                lot_ids[b.lot],
                sealed=sealed(w, lot_ids[b.lot], b.price_wei_per_wh),
            )
            for w, b in zip(bidders, reveals, strict=False)
        ]
    )
    assert all(r.ok for r in commits), [r.revert_reason for r in commits]
    gate = market.gate(interval)
    assert market.read("VickreyAuction", "gate_timestamp", interval) == gate
    assert (
        market.read("VickreyAuction", "reveal_end_timestamp", interval)
        == gate + REVEAL_S
    )
    revealed = market.mine(
        [
            mk.reveal_bid(
                w,
                market.addresses,
                lot_ids[b.lot],
                price_wei_per_wh=b.price_wei_per_wh,
                salt=salt(w.address),
            )
            for w, b in zip(bidders, reveals, strict=False)
        ],
        gate,
    )
    assert all(r.gas_used <= mk.GAS_REVEAL_BID for r in revealed)
    (final,) = market.mine(
        [mk.finalise(market.outsider, market.addresses, interval, n_lots=len(lots))],
        gate + REVEAL_S,
    )
    assert final.ok, final.revert_reason
    assert final.gas_used <= mk.finalise_gas(len(lots))
    winners, prices = [], []
    events = [market.chain.decode(log) for log in final.logs]
    for lot_id, event in zip(lot_ids, events, strict=False):
        lot = market.read("VickreyAuction", "lot", lot_id)
        assert (
            event.event == "LotSettled"
            and event.args["lot_id"] == lot_id
            and event.args["winner"] == lot[4]
        )
        winners.append(None if int(lot[4], 16) == 0 else lot[4])
        prices.append(event.args["price_wei_per_wh"])
    on_chain = read_lot_auction(market, interval, winners, prices, revealed)
    return interval, ref_lots, reveals, revealed, on_chain, events


# Hand-computed auctions. Lots come from sellers s0, s1, ... as (energy Wh, reserve);
# bids from b0, b1, ... as (lot, price), revealed in that order. CENT = 1e13 wei/Wh.
HAND_AUCTIONS = [
    pytest.param(
        # b0 20 > b1 12 > b2 8: b0 wins at the second price 12; value 100 * 12 = 1200 CENT.
        [(100, 5 * CENT)],
        [(0, 20 * CENT), (0, 12 * CENT), (0, 8 * CENT)],
        ["b0"],
        [12 * CENT],
        {"s0": (100, 1200 * CENT), "b0": (-100, -1200 * CENT)},
        id="second-price",
    ),
    pytest.param(
        # b0 is the only bid: it pays the reserve 7, not its 30; value 50 * 7 = 350 CENT.
        [(50, 7 * CENT)],
        [(0, 30 * CENT)],
        ["b0"],
        [7 * CENT],
        {"s0": (50, 350 * CENT), "b0": (-50, -350 * CENT)},
        id="single-bid-pays-reserve",
    ),
    pytest.param(
        # b0 and b1 tie at 15: b0 revealed first and wins, paying the tied 15; 10 * 15 = 150 CENT.
        [(10, 5 * CENT)],
        [(0, 15 * CENT), (0, 15 * CENT)],
        ["b0"],
        [15 * CENT],
        {"s0": (10, 150 * CENT), "b0": (-10, -150 * CENT)},
        id="tie-earliest-reveal-wins",
    ),
    pytest.param(
        # Reserve 25; b0's 20 is refused at reveal, so the lot stays unsold and nobody moves.
        [(100, 25 * CENT)],
        [(0, 20 * CENT)],
        [None],
        [0],
        {},
        id="no-sale-below-reserve",
    ),
    pytest.param(
        # Lot 0 (200 Wh, reserve 10): b0 30, b2 18 -> b0 at 18 = 3600. Lot 1 (40 Wh, reserve 9):
        # b1 11 alone -> at reserve 9 = 360. Lot 2 (60 Wh) gets no bid: unsold.
        [(200, 10 * CENT), (40, 9 * CENT), (60, 1 * CENT)],
        [(0, 30 * CENT), (1, 11 * CENT), (0, 18 * CENT)],
        ["b0", "b1", None],
        [18 * CENT, 9 * CENT, 0],
        {
            "s0": (200, 3600 * CENT),
            "s1": (40, 360 * CENT),
            "b0": (-200, -3600 * CENT),
            "b1": (-40, -360 * CENT),
        },
        id="three-lots-one-unsold",
    ),
]


@pytest.mark.parametrize("lots, bids, winners, prices, outcome", HAND_AUCTIONS)
def test_hand_computed_vickrey_auctions_award_as_written(
    market, lots, bids, winners, prices, outcome
):
    names = named_accounts(market, [("s", len(lots)), ("b", N_PROSUMERS - len(lots))])
    _, ref_lots, reveals, _, on_chain, events = _run(market, lots, bids)
    expected_winners = tuple(names[w] if w else None for w in winners)
    reference = clear_vickrey(ref_lots, reveals, PRICE_CAP_WEI_PER_WH)
    assert (reference.winners, reference.prices_wei_per_wh) == (
        expected_winners,
        tuple(prices),
    )
    assert reference.positions_wh == {names[n]: q for n, (q, _) in outcome.items()}
    assert reference.values_wei == {names[n]: v for n, (_, v) in outcome.items()}
    assert on_chain == reference
    assert (events[-1].event, events[-1].args["sold_lots"]) == (
        "Finalised",
        sum(w is not None for w in winners),
    )


LOTS = st.lists(
    st.tuples(st.integers(1, 1000), st.integers(1, 40).map(lambda k: k * CENT)),
    min_size=1,
    max_size=3,
)
PRICE = st.one_of(
    st.integers(1, 40).map(lambda k: k * CENT), st.integers(1, PRICE_CAP_WEI_PER_WH + 1)
)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_onchain_vickrey_equals_reference(market, data):
    lots = data.draw(LOTS)
    bids = data.draw(
        st.lists(
            st.tuples(st.integers(0, len(lots) - 1), PRICE),
            max_size=N_PROSUMERS - len(lots),
        )
    )
    _, ref_lots, reveals, _, on_chain, _ = _run(market, lots, bids)
    assert on_chain == clear_vickrey(ref_lots, reveals, PRICE_CAP_WEI_PER_WH)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_vickrey_winner_pays_the_second_highest_bid_or_the_reserve(data):
    lots = [Lot(f"s{i}", q, r) for i, (q, r) in enumerate(data.draw(LOTS))]
    bids = data.draw(
        st.lists(st.tuples(st.integers(0, len(lots) - 1), PRICE), max_size=12)
    )
    reveals = [LotBid(f"b{i}", lot, price) for i, (lot, price) in enumerate(bids)]
    result = clear_vickrey(lots, reveals, PRICE_CAP_WEI_PER_WH)
    for index, lot in enumerate(lots):
        valid = [
            r
            for r, ok in zip(reveals, result.accepted, strict=True)
            if ok and r.lot == index
        ]
        prices = sorted((r.price_wei_per_wh for r in valid), reverse=True)
        if not valid:
            assert (result.winners[index], result.prices_wei_per_wh[index]) == (None, 0)
            continue
        winner = next(r for r in valid if r.price_wei_per_wh == prices[0])
        assert result.winners[index] == winner.bidder
        assert result.prices_wei_per_wh[index] == (
            prices[1] if len(prices) > 1 else lot.reserve_price_wei_per_wh
        )
        assert (
            lot.reserve_price_wei_per_wh <= result.prices_wei_per_wh[index] <= prices[0]
        )
    assert (
        sum(result.positions_wh.values()) == 0 and sum(result.values_wei.values()) == 0
    )


def test_settlement_of_a_vickrey_interval_conserves_tokens(market):
    interval, _, _, _, on_chain, _ = _run(
        market,
        [(200, 10 * CENT), (40, 9 * CENT)],
        [(0, 30 * CENT), (1, 11 * CENT), (0, 18 * CENT)],
    )
    assert_settlement_conserves_tokens(market, interval, on_chain, [(0, 190), (0, 40), (210, 0), (35, 0), (3, 0)])


def test_order_book_builders_refuse_a_lot_auction(market):
    with pytest.raises(ValueError, match="auctions lots"):
        mk.submit_order(
            market.prosumers[0],
            market.addresses,
            0,
            is_ask=True,
            energy_wh=1,
            price_wei_per_wh=1,
        )
    with pytest.raises(ValueError, match="auctions lots"):
        mk.book(market.chain, market.addresses, 0)


@pytest.fixture(scope="module")
def scene() -> tuple[Market, dict]:
    """Interval "open" takes lots and commitments; "reveal" is in its reveal window with
    lot "rlot" (seller p0) committed by p1 at 10 CENT (already revealed), p2 at 20 CENT,
    p4 at 2 CENT (below the reserve 5) and p5 above the cap, all unrevealed. Lot "olot" (seller p0) is in "open",
    where p3 has committed."""
    market = new_market(6, mechanism="vickrey")
    p = market.prosumers
    reveal = market.next_interval()
    open_ = reveal + 2
    market.mine(
        [
            mk.post_lot(p[0], market.addresses, interval, energy_wh=10, reserve_price_wei_per_wh=5 * CENT)
            for interval in (reveal, open_)
        ]
    )
    rlot, olot = 0, 1
    bids = ((1, rlot, 10 * CENT), (2, rlot, 20 * CENT), (4, rlot, 2 * CENT), (5, rlot, PRICE_CAP_WEI_PER_WH + 1))
    receipts = market.mine(
        [
            mk.commit_bid(p[i], market.addresses, lot, sealed=sealed(p[i], lot, price))
            for i, lot, price in (*bids, (3, olot, 10 * CENT))
        ]
    )
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    (first,) = market.mine(
        [
            mk.reveal_bid(
                p[1],
                market.addresses,
                rlot,
                price_wei_per_wh=10 * CENT,
                salt=salt(p[1].address),
            )
        ],
        market.gate(reveal),
    )
    assert first.ok
    return market, {"@reveal": reveal, "@open": open_, "@rlot": rlot, "@olot": olot}


def _reveal_args(who_index: int, price: int, salt_of: int | None = None):
    return ("@rlot", price, ("salt", who_index if salt_of is None else salt_of))


# (reason, who signs, function, arguments); "@x" are symbols of the scene, ("salt", i) the
# salt of prosumer i, ("commit", i, lot, price) a commitment of prosumer i.
CASES = [
    ("access: caller is not a prosumer", "outsider", "post_lot", ("@open", 1, 1)),
    ("lot_book: zero energy", "p1", "post_lot", ("@open", 0, 1)),
    ("lot_book: energy above limit", "p1", "post_lot", ("@open", MAX_ENERGY_WH + 1, 1)),
    ("lot_book: zero reserve", "p1", "post_lot", ("@open", 1, 0)),
    (
        "lot_book: reserve above cap",
        "p1",
        "post_lot",
        ("@open", 1, PRICE_CAP_WEI_PER_WH + 1),
    ),
    ("gate: gate closed", "p1", "post_lot", ("@reveal", 1, 1)),
    ("lot_book: lot exists", "p0", "post_lot", ("@open", 1, 1)),
    (
        "access: caller is not a prosumer",
        "outsider",
        "commit_bid",
        ("@olot", ("commit", 1, 1, 1)),
    ),
    ("lot_book: no such lot", "p1", "commit_bid", (99, ("commit", 1, 99, 1))),
    ("gate: gate closed", "p3", "commit_bid", ("@rlot", ("commit", 3, 0, 1))),
    (
        "vickrey: seller bids on own lot",
        "p0",
        "commit_bid",
        ("@olot", ("commit", 0, 1, 1)),
    ),
    ("vickrey: zero commitment", "p1", "commit_bid", ("@olot", b"\0" * 32)),
    ("vickrey: bid exists", "p3", "commit_bid", ("@olot", ("commit", 3, 1, 1))),
    ("lot_book: no such lot", "p1", "reveal_bid", (99, 1, ("salt", 1))),
    ("vickrey: reveal not open", "p3", "reveal_bid", ("@olot", 10 * CENT, ("salt", 3))),
    ("vickrey: no commitment", "p3", "reveal_bid", _reveal_args(3, 10 * CENT)),
    ("vickrey: already revealed", "p1", "reveal_bid", _reveal_args(1, 10 * CENT)),
    ("vickrey: commitment mismatch", "p2", "reveal_bid", _reveal_args(2, 21 * CENT)),
    (
        "vickrey: commitment mismatch",
        "p2",
        "reveal_bid",
        _reveal_args(2, 20 * CENT, salt_of=1),
    ),
    ("vickrey: price below reserve", "p4", "reveal_bid", _reveal_args(4, 2 * CENT)),
    (
        "vickrey: price above cap",
        "p5",
        "reveal_bid",
        _reveal_args(5, PRICE_CAP_WEI_PER_WH + 1),
    ),
    ("vickrey: reveal open", "outsider", "finalise", ("@reveal",)),
    (
        "settlement: interval not cleared",
        "meter1",
        "Settlement.post_reading",
        ("@reveal", 0, 0, 0, 0),
    ),
]


@pytest.mark.parametrize(
    "reason, who, function, args",
    CASES,
    ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)],
)
def test_transaction_reverts_with_exact_reason(scene, reason, who, function, args):
    market, symbols = scene
    def resolve(arg):
        if isinstance(arg, str):
            return symbols[arg]
        if isinstance(arg, tuple) and arg[0] == "salt":
            return salt(market.prosumers[arg[1]].address)
        if isinstance(arg, tuple) and arg[0] == "commit":
            _, i, lot, price = arg
            return sealed(market.prosumers[i], lot, price)
        return arg

    contract, _, function = function.rpartition(".")
    raw = market.call_tx(
        market.signer(who), contract or "VickreyAuction", function, *(resolve(a) for a in args)
    )
    (receipt,) = market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason


def test_reveals_close_with_the_window_and_finalise_runs_once(scene):
    market, symbols = scene
    interval, rlot = symbols["@reveal"], symbols["@rlot"]
    end = market.read("VickreyAuction", "reveal_end_timestamp", interval)
    p2 = market.prosumers[2]
    late, first, again = market.mine(
        [
            mk.reveal_bid(
                p2,
                market.addresses,
                rlot,
                price_wei_per_wh=20 * CENT,
                salt=salt(p2.address),
            ),
            mk.finalise(market.operator, market.addresses, interval, n_lots=1),
            mk.finalise(market.outsider, market.addresses, interval, n_lots=1),
        ],
        end,
    )
    assert reverted(late, "vickrey: reveal closed")
    assert first.ok and reverted(again, "vickrey: already finalised")
    # p2's unrevealed 20 does not count: p1 wins alone at the reserve.
    lot = market.read("VickreyAuction", "lot", rlot)
    assert (lot[4], lot[5], lot[6]) == (market.prosumers[1].address, 10 * CENT, 0)
    assert (
        market.read(
            "VickreyAuction", "value_wei", interval, market.prosumers[1].address
        )
        == -50 * CENT
    )
    (early,) = market.mine(
        [
            mk.post_reading(
                market.meters[1], market.addresses, interval, import_wh=0, export_wh=0
            , pv_wh=0, battery_wh=0)
        ]
    )
    assert reverted(early, "settlement: interval not ended")


def test_missing_lot_view_reverts_with_reason(scene):
    market, _ = scene
    with pytest.raises(CallReverted) as raised:
        market.chain.call(
            market.addresses.auction, encode_call("VickreyAuction", "lot", 99)
        )
    assert raised.value.reason == "lot_book: no such lot"


@pytest.mark.parametrize(
    "reason, args",
    [
        ("gate: zero interval", (START_TIMESTAMP, 0, GATE_CLOSURE_S, 1, 1)),
        ("gate: gate closure before epoch", (10, INTERVAL_S, 11, 1, 1)),
        (
            "access: price cap out of range",
            (START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 0, 1),
        ),
        (
            "vickrey: reveal window out of range",
            (START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 1, 0),
        ),
        (
            "vickrey: reveal window out of range",
            (START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 1, GATE_CLOSURE_S + 1),
        ),
    ],
)
def test_constructor_reverts_with_exact_reason(scene, reason, args):
    market, _ = scene
    receipt = market.deploy("VickreyAuction", market.addresses.registry, *args)
    assert reverted(receipt, reason), receipt.revert_reason
