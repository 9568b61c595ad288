"""MeritOrder on a real py-evm chain against the Python reference dispatch."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import market as mk
from gridledger.contracts.chain import CallReverted
from gridledger.contracts.client import encode_call
from gridledger.contracts.reference import Clearing, Order, clear_merit_order, settle

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    ENDOWMENT_WEI,
    GATE_CLOSURE_S,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    Market,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    OPERATOR_DEPOSIT_WEI,
    PRICE_CAP_WEI_PER_WH,
    START_TIMESTAMP,
    new_market,
    order_lists,
    reverted,
)

MAX_OFFERS = 16
MAX_ENERGY_WH = 10**12


@pytest.fixture(scope="module")
def market() -> Market:
    return new_market(MAX_OFFERS, mechanism="merit-order")


def _run(market: Market, demand_wh: int, offers) -> tuple[mk.Book, Clearing, list]:
    """Post demand (if any), submit offers, clear; returns (book, on-chain clearing, clear events)."""
    interval = market.next_interval()
    if demand_wh:
        (posted,) = market.mine([mk.post_demand(market.operator, market.addresses, interval, demand_wh=demand_wh)])
        assert posted.ok, posted.revert_reason
    book = market.submit_book(interval, [], offers)
    assert mk.book(market.chain, market.addresses, interval) == book
    assert market.read("MeritOrder", "demand_wh", interval) == demand_wh
    receipt = market.clear(interval, book)
    assert receipt.ok, receipt.revert_reason
    assert receipt.gas_used <= mk.clear_gas(0, len(offers), "MeritOrder")
    positions = {}
    for account in (market.operator.address, *(order.account for order in book.asks)):
        position_wh = market.read("MeritOrder", "position_wh", interval, account)
        if position_wh:
            positions[account] = position_wh
    clearing = Clearing(
        market.read("MeritOrder", "clearing_price_wei_per_wh", interval),
        market.read("MeritOrder", "cleared_volume_wh", interval),
        positions,
    )
    return book, clearing, [market.chain.decode(log) for log in receipt.logs]


def _assert_dispatch_properties(demand_wh: int, offers, clearing: Clearing, buyer: str) -> None:
    """Dispatch in price order up to the demand, one marginal price above every dispatched offer."""
    dispatched = [o for o in offers if clearing.positions_wh.get(o.account, 0) > 0]
    idle = [o for o in offers if o not in dispatched]
    assert clearing.volume_wh == min(demand_wh, sum(o.energy_wh for o in offers))
    assert sum(clearing.positions_wh.values()) == 0
    if dispatched and idle:
        assert max(o.price_wei_per_wh for o in dispatched) <= min(o.price_wei_per_wh for o in idle)
    for offer in dispatched:
        assert offer.price_wei_per_wh <= clearing.price_wei_per_wh
        assert clearing.positions_wh[offer.account] <= offer.energy_wh
    partial = [o for o in dispatched if clearing.positions_wh[o.account] < o.energy_wh]
    assert len(partial) <= 1
    if clearing.volume_wh:
        assert clearing.positions_wh[buyer] == -clearing.volume_wh
        assert clearing.price_wei_per_wh == max(o.price_wei_per_wh for o in dispatched)
    else:
        assert clearing.price_wei_per_wh == 0 and clearing.positions_wh == {}


# Hand-computed dispatches. Offers come from prosumers o0, o1, ... in submission
# order; "op" is the operator that posted the demand. CENT = 1e13 wei/Wh.
HAND_BOOKS = [
    pytest.param(
        # Merit order o1 8, o0 12, o2 20: o1 200 + o0 300 meet 500; marginal o0 at 12.
        500,
        [(300, 12 * CENT), (200, 8 * CENT), (100, 20 * CENT)],
        12 * CENT,
        500,
        {"o1": 200, "o0": 300, "op": -500},
        id="cheapest-first",
    ),
    pytest.param(
        # o2 5 first, then the tie at 10 by submission index: o0 100, o1 the last 100 of 200.
        250,
        [(100, 10 * CENT), (200, 10 * CENT), (50, 5 * CENT)],
        10 * CENT,
        250,
        {"o2": 50, "o0": 100, "o1": 100, "op": -250},
        id="tie-partial-marginal",
    ),
    pytest.param(
        # Demand 1000 exceeds the 300 offered: everything dispatched at the dearest, 30.
        1000,
        [(100, 30 * CENT), (200, 15 * CENT)],
        30 * CENT,
        300,
        {"o0": 100, "o1": 200, "op": -300},
        id="short-supply",
    ),
    pytest.param(0, [(100, 10 * CENT)], 0, 0, {}, id="no-demand-no-trade"),
    pytest.param(100, [], 0, 0, {}, id="no-offers-no-trade"),
]


@pytest.mark.parametrize("demand_wh, offers, price, volume, positions", HAND_BOOKS)
def test_hand_computed_dispatches_clear_as_written(market, demand_wh, offers, price, volume, positions):
    names = {f"o{i}": w.address for i, w in enumerate(market.prosumers[: len(offers)])}
    names["op"] = market.operator.address
    expected = Clearing(price, volume, {names[name]: q for name, q in positions.items()})
    book, on_chain, events = _run(market, demand_wh, offers)
    assert clear_merit_order(demand_wh, book.asks, market.operator.address) == expected
    assert on_chain == expected
    *trades, cleared = events
    assert {e.args["account"]: e.args["position_wh"] for e in trades} == {
        a: q for a, q in expected.positions_wh.items() if q > 0
    }
    assert (cleared.event, cleared.args["price_wei_per_wh"], cleared.args["volume_wh"]) == ("Cleared", price, volume)


OFFERS = order_lists(max_size=MAX_OFFERS)
DEMAND = st.integers(0, 6000)


@settings(max_examples=20, deadline=None)
@given(demand_wh=DEMAND, offers=OFFERS)
def test_onchain_dispatch_equals_reference(market, demand_wh, offers):
    book, on_chain, _ = _run(market, demand_wh, offers)
    expected = clear_merit_order(demand_wh, book.asks, market.operator.address)
    assert on_chain == expected
    _assert_dispatch_properties(demand_wh, book.asks, on_chain, market.operator.address)


@settings(max_examples=300, deadline=None)
@given(demand_wh=DEMAND, offers=OFFERS)
def test_merit_order_dispatches_in_price_order_at_one_marginal_price(demand_wh, offers):
    book = [Order(f"o{i}", q, p) for i, (q, p) in enumerate(offers)]
    _assert_dispatch_properties(demand_wh, book, clear_merit_order(demand_wh, book, "op"), "op")


def test_settlement_pays_sellers_from_the_operator_and_conserves_tokens(market):
    interval = market.next_interval()
    market.mine([mk.post_demand(market.operator, market.addresses, interval, demand_wh=400)])
    book = market.submit_book(interval, [], [(300, 12 * CENT), (200, 8 * CENT)])
    assert market.clear(interval, book).ok
    clearing = clear_merit_order(400, book.asks, market.operator.address)
    accounts = [market.operator.address, *(w.address for w in market.prosumers)]
    before = {a: market.read("Settlement", "credit_wei", a) for a in accounts}
    readings = [(0, 210), (0, 200)]
    txs = [
        mk.post_reading(meter, market.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=exp, battery_wh=0)
        for meter, (imp, exp) in zip(market.meters, readings, strict=False)
    ]
    receipts = market.mine([*txs, mk.settle_operator(market.outsider, market.addresses, interval)], market.end(interval))
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts]
    operator_delta = -clearing.price_wei_per_wh * clearing.volume_wh
    for wallet, (imp, exp) in zip(market.prosumers, readings, strict=False):
        position_wh = clearing.positions_wh[wallet.address]
        line = settle(
            position_wh,
            clearing.price_wei_per_wh * position_wh,
            imp,
            exp,
            GRID_BUY_PRICE_WEI_PER_WH,
            GRID_SELL_PRICE_WEI_PER_WH,
            GRID_FEE_WEI_PER_WH,
            non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH,
        )
        assert market.read("Settlement", "credit_wei", wallet.address) - before[wallet.address] == line.credit_delta_wei
        operator_delta += line.operator_delta_wei
    assert market.read("Settlement", "credit_wei", market.operator.address) - before[accounts[0]] == operator_delta
    released, event = map(market.chain.decode, receipts[-1].logs)
    # The demand locked 400 Wh at the cap, fee-free for the operator; settling returns all of it.
    assert (released.event, released.args["amount_wei"]) == ("Released", 400 * PRICE_CAP_WEI_PER_WH)
    assert market.read("Settlement", "lock_wei", interval, market.operator.address) == 0
    assert (event.event, event.args["position_wh"], event.args["value_wei"]) == (
        "OperatorSettled",
        -400,
        -400 * 12 * CENT,
    )
    assert market.read("Settlement", "operator_settled", interval)
    assert market.read("Settlement", "pool_wei") == 0
    assert market.read("GridToken", "totalSupply") == ENDOWMENT_WEI * len(market.prosumers) + OPERATOR_DEPOSIT_WEI
    held = market.read("GridToken", "balanceOf", market.addresses.settlement)
    assert sum(market.read("Settlement", "credit_wei", a) for a in accounts) + market.read(
        "Settlement", "penalty_pool_wei") == held


def test_bids_are_refused_by_the_builder(market):
    with pytest.raises(ValueError, match="only asks"):
        mk.submit_order(market.prosumers[0], market.addresses, 0, is_ask=False, energy_wh=1, price_wei_per_wh=1)


@pytest.fixture(scope="module")
def scene() -> tuple[Market, int, int]:
    """A merit-order market with one settled interval and one pending past its gate."""
    market = new_market(4, mechanism="merit-order")
    settled = market.next_interval()
    pending = settled + 1
    market.mine([mk.post_demand(market.operator, market.addresses, k, demand_wh=100) for k in (settled, pending)])
    book = market.submit_book(settled, [], [(100, 10 * CENT)])
    market.submit_book(pending, [], [(10, 30 * CENT), (10, 10 * CENT), (10, 20 * CENT)])
    assert market.clear(settled, book).ok
    receipts = market.mine([mk.settle_operator(market.operator, market.addresses, settled)], market.end(settled))
    assert receipts[0].ok
    return market, settled, pending


# (reason, who signs, function, arguments); "@next" is the next open interval.
# The pending interval's offers are priced 30, 10, 20: its true order is [1, 2, 0].
CASES = [
    ("access: caller is not operator", "prosumer", "post_demand", ("@next", 1)),
    ("merit_order: zero demand", "operator", "post_demand", ("@next", 0)),
    ("merit_order: demand above limit", "operator", "post_demand", ("@next", MAX_ENERGY_WH + 1)),
    ("gate: gate closed", "operator", "post_demand", ("@pending", 1)),
    ("access: caller is not a prosumer", "outsider", "submit_offer", ("@next", 1, 1)),
    ("book: zero energy", "prosumer", "submit_offer", ("@next", 0, 1)),
    ("book: energy above limit", "prosumer", "submit_offer", ("@next", MAX_ENERGY_WH + 1, 1)),
    ("book: zero price", "prosumer", "submit_offer", ("@next", 1, 0)),
    ("book: price above cap", "prosumer", "submit_offer", ("@next", 1, PRICE_CAP_WEI_PER_WH + 1)),
    ("gate: gate closed", "prosumer", "submit_offer", ("@pending", 1, 1)),
    ("access: caller is neither prosumer nor operator", "outsider", "clear", ("@pending", [1, 2, 0], 0, 0)),
    ("gate: gate open", "operator", "clear", ("@next", [], 0, 0)),
    ("book: already cleared", "operator", "clear", ("@settled", [0], 0, 0)),
    ("book: order length mismatch", "operator", "clear", ("@pending", [1, 2], 0, 0)),
    ("book: order index out of range", "operator", "clear", ("@pending", [1, 2, 3], 0, 0)),
    ("book: order index repeated", "operator", "clear", ("@pending", [1, 2, 2], 0, 0)),
    ("book: order index repeated", "operator", "clear", ("@pending", [1, 1, 0], 0, 0)),
    ("book: order not sorted", "operator", "clear", ("@pending", [2, 1, 0], 0, 0)),
    ("book: order not sorted", "operator", "clear", ("@pending", [1, 0, 2], 0, 0)),
    ("settlement: interval not cleared", "outsider", "Settlement.settle_operator", ("@pending",)),
    ("settlement: operator settled", "outsider", "Settlement.settle_operator", ("@settled",)),
]


@pytest.mark.parametrize("reason, who, function, args", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_transaction_reverts_with_exact_reason(scene, reason, who, function, args):
    market, settled, pending = scene
    wallet = {"operator": market.operator, "prosumer": market.prosumers[3], "outsider": market.outsider}[who]
    symbols = {"@next": market.next_interval(), "@pending": pending, "@settled": settled}
    contract, _, function = function.rpartition(".")
    contract = contract or "MeritOrder"
    raw = market.call_tx(wallet, contract, function, *(symbols.get(a, a) if isinstance(a, str) else a for a in args))
    (receipt,) = market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason


def test_repeated_demand_and_offer_revert(scene):
    market, _, _ = scene
    interval = market.next_interval()
    prosumer = market.prosumers[2]
    receipts = market.mine(
        [
            mk.post_demand(market.operator, market.addresses, interval, demand_wh=5),
            mk.post_demand(market.operator, market.addresses, interval, demand_wh=5),
            mk.submit_order(prosumer, market.addresses, interval, is_ask=True, energy_wh=1, price_wei_per_wh=1),
            mk.submit_order(prosumer, market.addresses, interval, is_ask=True, energy_wh=1, price_wei_per_wh=1),
        ]
    )
    assert receipts[0].ok and receipts[2].ok
    assert reverted(receipts[1], "merit_order: demand exists")
    assert reverted(receipts[3], "book: order exists")
    (early,) = market.mine([mk.settle_operator(market.outsider, market.addresses, interval)], market.gate(interval))
    assert reverted(early, "settlement: interval not cleared")
    clear = mk.clear(market.operator, market.addresses, interval, mk.book(market.chain, market.addresses, interval))
    (early,) = market.mine([clear, mk.settle_operator(market.outsider, market.addresses, interval)])[1:]
    assert reverted(early, "settlement: interval not ended")


def test_missing_offer_view_reverts_with_reason(scene):
    market, _, pending = scene
    with pytest.raises(CallReverted) as raised:
        market.chain.call(market.addresses.auction, encode_call("MeritOrder", "order", pending, 3))
    assert raised.value.reason == "book: no such order"


@pytest.mark.parametrize(
    "reason, args",
    [
        ("gate: zero interval", (START_TIMESTAMP, 0, GATE_CLOSURE_S, 1)),
        ("gate: gate closure before epoch", (10, INTERVAL_S, 11, 1)),
        ("access: price cap out of range", (START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 0)),
    ],
)
def test_constructor_reverts_with_exact_reason(scene, reason, args):
    market, _, _ = scene
    receipt = market.deploy("MeritOrder", market.addresses.registry, *args)
    assert reverted(receipt, reason), receipt.revert_reason
