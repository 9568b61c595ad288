"""EnglishAuction on a real py-evm chain against the Python reference."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.reference import (
    LotBid,
    clear_english,
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

N_PROSUMERS = 8
INCREMENT = CENT
MAX_ENERGY_WH = 10**12


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(
        N_PROSUMERS, mechanism="english", bid_increment_wei_per_wh=INCREMENT
    )


def _run(market: Market, lots: list[tuple[int, int]], bids: list[tuple[int, int, int]]):
    """Post (energy_wh, reserve) lots from the first prosumers; place (bidder, lot, price)
    bids, bidder i being prosumer len(lots) + i, one block each in order; read the result
    at the gate. Returns (interval, reference lots, reference bids, on-chain result)."""
    interval = market.next_interval()
    lot_ids, ref_lots = market.post_lots(interval, lots)
    bidders = market.prosumers[len(lots) :]
    ref_bids = [LotBid(bidders[b].address, lot, price) for b, lot, price in bids]
    placed = market.mine(
        [
            mk.bid(bidders[b], market.addresses, lot_ids[lot], price_wei_per_wh=price)
            for (b, lot, price) in bids
        ]
    )
    assert all(r.gas_used <= mk.GAS_BID for r in placed)
    assert not market.read("EnglishAuction", "cleared", interval)
    assert not market.read("EnglishAuction", "settlement_terms", interval, market.prosumers[0].address)[0]
    market.mine([], market.gate(interval))
    assert market.read("EnglishAuction", "cleared", interval)
    winners, prices = [], []
    for lot_id in lot_ids:
        lot = market.read("EnglishAuction", "lot", lot_id)
        winners.append(None if int(lot[4], 16) == 0 else lot[4])
        prices.append(lot[5])
    on_chain = read_lot_auction(market, interval, winners, prices, placed)
    return interval, ref_lots, ref_bids, on_chain


# Hand-computed auctions (increment 1 CENT). Lots from s0, s1, ... as (energy Wh, reserve);
# bids as (bidder b_i, lot, price) in arrival order; CENT = 1e13 wei/Wh.
HAND_AUCTIONS = [
    pytest.param(
        # b0 10 opens, b1 12 outbids, b0 12.5 is below 12 + 1 and refused, b0 13 leads:
        # b0 wins at its own 13; value 100 * 13 = 1300 CENT.
        [(100, 10 * CENT)],
        [
            (0, 0, 10 * CENT),
            (1, 0, 12 * CENT),
            (0, 0, 12 * CENT + CENT // 2),
            (0, 0, 13 * CENT),
        ],
        [True, True, False, True],
        ["b0"],
        [13 * CENT],
        {"s0": (100, 1300 * CENT), "b0": (-100, -1300 * CENT)},
        id="ascending-with-increment",
    ),
    pytest.param(
        # b0 and b1 both bid 15: the second equal bid is below 15 + 1, so b0 (earliest) keeps
        # the lead and pays 15; value 20 * 15 = 300 CENT.
        [(20, 5 * CENT)],
        [(0, 0, 15 * CENT), (1, 0, 15 * CENT)],
        [True, False],
        ["b0"],
        [15 * CENT],
        {"s0": (20, 300 * CENT), "b0": (-20, -300 * CENT)},
        id="tie-earliest-placed-leads",
    ),
    pytest.param(
        # Reserve 25: b0's 20 is refused, nobody else bids; unsold.
        [(100, 25 * CENT)],
        [(0, 0, 20 * CENT)],
        [False],
        [None],
        [0],
        {},
        id="no-sale-below-reserve",
    ),
    pytest.param(
        # b0 leads lot 0 at 10 and may not bid on lot 1; b1 outbids b0 on lot 0 at 11, then b0 is
        # free and takes lot 1 at its reserve 8. Lot 0: 50 * 11 = 550; lot 1: 30 * 8 = 240.
        [(50, 10 * CENT), (30, 8 * CENT)],
        [(0, 0, 10 * CENT), (0, 1, 8 * CENT), (1, 0, 11 * CENT), (0, 1, 8 * CENT)],
        [True, False, True, True],
        ["b1", "b0"],
        [11 * CENT, 8 * CENT],
        {
            "s0": (50, 550 * CENT),
            "s1": (30, 240 * CENT),
            "b1": (-50, -550 * CENT),
            "b0": (-30, -240 * CENT),
        },
        id="one-lead-per-bidder",
    ),
]


@pytest.mark.parametrize(
    "lots, bids, accepted, winners, prices, outcome", HAND_AUCTIONS
)
def test_hand_computed_english_auctions_award_as_written(
    market, lots, bids, accepted, winners, prices, outcome
):
    names = named_accounts(market, [("s", len(lots)), ("b", N_PROSUMERS - len(lots))])
    _, ref_lots, ref_bids, on_chain = _run(market, lots, bids)
    reference = clear_english(ref_lots, ref_bids, INCREMENT, PRICE_CAP_WEI_PER_WH)
    assert reference.accepted == tuple(accepted)
    assert (reference.winners, reference.prices_wei_per_wh) == (
        tuple(names[w] if w else None for w in winners),
        tuple(prices),
    )
    assert reference.positions_wh == {names[n]: q for n, (q, _) in outcome.items()}
    assert reference.values_wei == {names[n]: v for n, (_, v) in outcome.items()}
    assert on_chain == reference


LOTS = st.lists(
    st.tuples(st.integers(1, 1000), st.integers(1, 20).map(lambda k: k * CENT)),
    min_size=1,
    max_size=3,
)
PRICE = st.one_of(
    st.integers(1, 30).map(lambda k: k * CENT), st.integers(1, PRICE_CAP_WEI_PER_WH + 1)
)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_onchain_english_equals_reference(market, data):
    lots = data.draw(LOTS)
    n_bidders = N_PROSUMERS - len(lots)
    bids = data.draw(
        st.lists(
            st.tuples(
                st.integers(0, n_bidders - 1), st.integers(0, len(lots) - 1), PRICE
            ),
            max_size=12,
        )
    )
    _, ref_lots, ref_bids, on_chain = _run(market, lots, bids)
    reference = clear_english(ref_lots, ref_bids, INCREMENT, PRICE_CAP_WEI_PER_WH)
    assert on_chain == reference
    assert (
        sum(reference.positions_wh.values()) == 0
        and sum(reference.values_wei.values()) == 0
    )
    assert len([w for w in reference.winners if w]) == len(
        {w for w in reference.winners if w}
    )


def test_settlement_of_an_english_interval_conserves_tokens(market):
    interval, _, _, on_chain = _run(
        market,
        [(50, 10 * CENT), (30, 8 * CENT)],
        [(0, 0, 10 * CENT), (1, 0, 11 * CENT), (0, 1, 9 * CENT)],
    )
    assert_settlement_conserves_tokens(market, interval, on_chain, [(0, 50), (0, 25), (31, 0), (48, 0), (2, 1)])


@pytest.fixture(scope="module")
def scene() -> tuple[Market, dict]:
    """Interval "open" has lot "lot" (seller p0, reserve 5 CENT) led by p1 at 10 CENT, lot
    "fresh" (seller p4, reserve 5 CENT) without bids; interval "closed" is past its gate."""
    market = new_market(6, mechanism="english", bid_increment_wei_per_wh=INCREMENT)
    p = market.prosumers
    closed = market.next_interval()
    open_ = closed + 2
    market.mine(
        [
            mk.post_lot(p[seller], market.addresses, interval, energy_wh=10, reserve_price_wei_per_wh=5 * CENT)
            for seller, interval in ((0, closed), (0, open_), (4, open_))
        ]
    )
    (led,) = market.mine(
        [mk.bid(p[1], market.addresses, 1, price_wei_per_wh=10 * CENT)]
    )
    assert led.ok
    market.mine([], market.gate(closed))
    return market, {
        "@open": open_,
        "@closed": closed,
        "@closed_lot": 0,
        "@lot": 1,
        "@fresh": 2,
    }


# (reason, who signs, function, arguments); "@x" are symbols of the scene.
CASES = [
    ("access: caller is not a prosumer", "outsider", "post_lot", ("@open", 1, 1)),
    ("lot_book: zero energy", "p2", "post_lot", ("@open", 0, 1)),
    ("lot_book: energy above limit", "p2", "post_lot", ("@open", MAX_ENERGY_WH + 1, 1)),
    ("lot_book: zero reserve", "p2", "post_lot", ("@open", 1, 0)),
    (
        "lot_book: reserve above cap",
        "p2",
        "post_lot",
        ("@open", 1, PRICE_CAP_WEI_PER_WH + 1),
    ),
    ("gate: gate closed", "p2", "post_lot", ("@closed", 1, 1)),
    ("lot_book: lot exists", "p0", "post_lot", ("@open", 1, 1)),
    ("access: caller is not a prosumer", "outsider", "bid", ("@lot", 20 * CENT)),
    ("lot_book: no such lot", "p2", "bid", (99, 20 * CENT)),
    ("gate: gate closed", "p2", "bid", ("@closed_lot", 20 * CENT)),
    ("english: seller bids on own lot", "p0", "bid", ("@lot", 20 * CENT)),
    ("english: price above cap", "p2", "bid", ("@lot", PRICE_CAP_WEI_PER_WH + 1)),
    ("english: leading another lot", "p1", "bid", ("@fresh", 20 * CENT)),
    ("english: bid below reserve", "p2", "bid", ("@fresh", 5 * CENT - 1)),
    ("english: bid below current plus increment", "p2", "bid", ("@lot", 11 * CENT - 1)),
    ("english: bid below current plus increment", "p2", "bid", ("@lot", 10 * CENT)),
    (
        "settlement: interval not cleared",
        "meter1",
        "Settlement.post_reading",
        ("@open", 0, 0, 0, 0),
    ),
    (
        "settlement: interval not ended",
        "meter1",
        "Settlement.post_reading",
        ("@closed", 0, 0, 0, 0),
    ),
]


@pytest.mark.parametrize(
    "reason, who, function, args",
    CASES,
    ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)],
)
def test_transaction_reverts_with_exact_reason(scene, reason, who, function, args):
    market, symbols = scene
    contract, _, function = function.rpartition(".")
    raw = market.call_tx(
        market.signer(who),
        contract or "EnglishAuction",
        function,
        *(symbols.get(a, a) if isinstance(a, str) else a for a in args),
    )
    (receipt,) = market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason


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
            "english: bid increment out of range",
            (START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 5, 0),
        ),
        (
            "english: bid increment out of range",
            (START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 5, 6),
        ),
    ],
)
def test_constructor_reverts_with_exact_reason(scene, reason, args):
    market, _ = scene
    receipt = market.deploy("EnglishAuction", market.addresses.registry, *args)
    assert reverted(receipt, reason), receipt.revert_reason
