"""Revert matrix: every assert of every contract fires once, with its exact reason."""

from dataclasses import dataclass

import pytest
import vyper

from gridledger.contracts import market as mk
from gridledger.contracts.chain import CallReverted, Chain
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account

from contract_helpers import CENT_PER_KWH as CENT
from contract_helpers import (
    BATTERY_PEAK_WH,
    ENDOWMENT_WEI,
    GATE_CLOSURE_S,
    GENESIS_TIMESTAMP,
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    PRICE_CAP_WEI_PER_WH,
    PV_PEAK_WH,
    RATING_WH,
    SEED,
    START_TIMESTAMP,
    Market,
    new_market,
    reverted,
)
from tests.secret_helpers import fixed_secret

ZERO = "0x" + "00" * 20
MAX_ENERGY_WH = 10**12
CREDIT_LINE_WEI = 10**18
TOLERANCE_WH = 2


@dataclass
class Scene:
    """A market with one settled interval and one interval past its gate, not cleared."""

    market: Market
    settled: int
    pending: int


def _scene(mechanism: str) -> Scene:
    market = new_market(6, mechanism=mechanism, credit_line_wei=CREDIT_LINE_WEI)
    broke = market.prosumers[5]
    assert market.mine([market.call_tx(broke, "Settlement", "withdraw", ENDOWMENT_WEI)])[0].ok
    settled = market.next_interval()
    pending = settled + 1
    book = market.submit_book(settled, [(100, 20 * CENT)], [(100, 10 * CENT)])
    market.submit_book(
        pending, [(10, 10 * CENT), (10, 30 * CENT), (10, 20 * CENT), (10, 20 * CENT)], [(10, 5 * CENT), (10, 8 * CENT)]
    )
    assert market.clear(settled, book).ok
    receipts = market.mine(
        [
            mk.post_reading(market.meters[0], market.addresses, settled, import_wh=0, export_wh=0, pv_wh=0, battery_wh=0),
            # An import without credit drives prosumer 5's credit down to the credit line.
            mk.post_reading(market.meters[5], market.addresses, settled, import_wh=RATING_WH, export_wh=0, pv_wh=0,
                            battery_wh=0),
        ],
        market.end(settled),
    )
    assert all(r.ok for r in receipts)
    assert market.read("Settlement", "credit_wei", broke.address) == -CREDIT_LINE_WEI
    assert market.read("Settlement", "debt_wei") == CREDIT_LINE_WEI
    assert mk.sorted_order(mk.book(market.chain, market.addresses, pending)) == ([1, 2, 3, 0], [0, 1])
    return Scene(market, settled, pending)


@pytest.fixture(scope="module")
def scene() -> Scene:
    return _scene("uniform-double-auction")


@pytest.fixture(scope="module")
def pay_as_bid_scene() -> Scene:
    return _scene("pay-as-bid")


def _tx(scene: Scene, who: str, contract: str, function: str, *args) -> bytes:
    market = scene.market
    wallet = {
        "operator": market.operator,
        "outsider": market.outsider,
        "prosumer": market.prosumers[1],
        "broke prosumer": market.prosumers[5],
        "meter": market.meters[1],
        "meter0": market.meters[0],
    }[who]
    return market.call_tx(wallet, contract, function, *args, gas=1_000_000)


def _resolve(scene: Scene, arg):
    """Turn a symbolic argument ("@outsider", "@next", ...) into its value."""
    market = scene.market
    symbols = {
        "@operator": market.operator.address,
        "@prosumer": market.prosumers[1].address,
        "@meter": market.meters[1].address,
        "@outsider": market.outsider.address,
        "@zero": ZERO,
        "@next": market.next_interval(),
        "@pending": scene.pending,
        "@settled": scene.settled,
        "@operator_free": market.read("Settlement", "free_credit_wei", market.operator.address),
    }
    return symbols[arg] if isinstance(arg, str) else arg


# (reason, who signs, "Contract.function", arguments); "@name" arguments are resolved
# against the scene. The pending interval's bids are priced 10, 30, 20, 20 and its
# asks 5, 8, so its true priority order is bids [1, 2, 3, 0] and asks [0, 1].
CASES = [
    ("registry: caller is not operator", "outsider", "Registry.grant_role", ("@outsider", 2)),
    ("registry: unknown role", "operator", "Registry.grant_role", ("@outsider", 8)),
    ("registry: account is the zero address", "operator", "Registry.grant_role", ("@zero", 2)),
    ("registry: meter lacks meter role", "operator", "Registry.bind_meter", ("@prosumer", "@prosumer")),
    ("registry: prosumer lacks prosumer role", "operator", "Registry.bind_meter", ("@meter", "@outsider")),
    ("registry: bindings frozen", "operator", "Registry.bind_meter", ("@meter", "@prosumer")),
    ("registry: operator cannot be meter or prosumer", "operator", "Registry.grant_role", ("@operator", 4)),
    ("registry: operator cannot be meter or prosumer", "operator", "Registry.grant_role", ("@meter", 1)),
    ("registry: meter cannot be prosumer", "operator", "Registry.grant_role", ("@meter", 2)),
    ("registry: bindings frozen", "operator", "Registry.revoke_role", ("@prosumer", 2)),
    ("token: approve to the zero address", "prosumer", "GridToken.approve", ("@zero", 1)),
    ("token: insufficient allowance", "outsider", "GridToken.transferFrom", ("@operator", "@outsider", 1)),
    ("token: caller is not the owner", "outsider", "GridToken.mint", ("@outsider", 1)),
    ("token: transfer to the zero address", "outsider", "GridToken.transfer", ("@zero", 0)),
    ("token: transfer amount exceeds balance", "outsider", "GridToken.transfer", ("@operator", 1)),
    ("token: mint to the zero address", "operator", "GridToken.mint", ("@zero", 1)),
    ("access: caller is not a prosumer", "outsider", "DoubleAuction.submit_order", ("@next", True, 1, 1)),
    ("book: zero energy", "prosumer", "DoubleAuction.submit_order", ("@next", True, 0, 1)),
    ("book: energy above limit", "prosumer", "DoubleAuction.submit_order", ("@next", True, MAX_ENERGY_WH + 1, 1)),
    ("book: zero price", "prosumer", "DoubleAuction.submit_order", ("@next", True, 1, 0)),
    (
        "book: price above cap",
        "prosumer",
        "DoubleAuction.submit_order",
        ("@next", True, 1, PRICE_CAP_WEI_PER_WH + 1),
    ),
    ("gate: gate closed", "prosumer", "DoubleAuction.submit_order", ("@pending", True, 1, 1)),
    ("access: caller is neither prosumer nor operator", "outsider", "DoubleAuction.clear",
     ("@pending", [1, 2, 3, 0], [0, 1], 0, 0)),
    ("gate: gate open", "operator", "DoubleAuction.clear", ("@next", [], [], 0, 0)),
    ("book: already cleared", "operator", "DoubleAuction.clear", ("@settled", [0], [0], 0, 0)),
    ("book: order length mismatch", "operator", "DoubleAuction.clear", ("@pending", [1, 2, 3], [0, 1], 0, 0)),
    ("book: order index out of range", "operator", "DoubleAuction.clear", ("@pending", [1, 2, 3, 4], [0, 1], 0, 0)),
    ("book: order index repeated", "operator", "DoubleAuction.clear", ("@pending", [1, 2, 2, 0], [0, 1], 0, 0)),
    ("book: order index repeated", "operator", "DoubleAuction.clear", ("@pending", [1, 2, 1, 0], [0, 1], 0, 0)),
    ("book: order not sorted", "operator", "DoubleAuction.clear", ("@pending", [2, 1, 3, 0], [0, 1], 0, 0)),
    ("book: order not sorted", "operator", "DoubleAuction.clear", ("@pending", [1, 3, 2, 0], [0, 1], 0, 0)),
    ("book: order not sorted", "operator", "DoubleAuction.clear", ("@pending", [1, 2, 3, 0], [1, 0], 0, 0)),
    ("settlement: zero amount", "operator", "Settlement.deposit_for", ("@prosumer", 0)),
    ("settlement: zero amount", "prosumer", "Settlement.withdraw", (0,)),
    ("token: insufficient allowance", "outsider", "Settlement.deposit_for", ("@prosumer", 1)),
    ("settlement: withdraw above free credit", "prosumer", "Settlement.withdraw", (10**30,)),
    ("settlement: withdraw above free credit", "broke prosumer", "Settlement.withdraw", (1,)),
    ("settlement: caller is not a bound meter", "prosumer", "Settlement.post_reading", ("@settled", 0, 0, 0, 0)),
    ("settlement: interval not cleared", "meter", "Settlement.post_reading", ("@pending", 0, 0, 0, 0)),
    ("settlement: reading exists", "meter0", "Settlement.post_reading", ("@settled", 0, 0, 0, 0)),
    ("settlement: energy above limit", "meter", "Settlement.post_reading", ("@settled", 0, MAX_ENERGY_WH + 1, 0, 0)),
    ("settlement: import above meter rating", "meter", "Settlement.post_reading",
     ("@settled", RATING_WH + TOLERANCE_WH + 1, 0, 0, 0)),
    ("settlement: export above meter rating", "meter", "Settlement.post_reading",
     ("@settled", 0, RATING_WH + TOLERANCE_WH + 1, PV_PEAK_WH, BATTERY_PEAK_WH)),
    ("settlement: PV above peak power", "meter", "Settlement.post_reading",
     ("@settled", 0, 0, PV_PEAK_WH + TOLERANCE_WH + 1, 0)),
    ("settlement: battery above power", "meter", "Settlement.post_reading",
     ("@settled", 0, 0, 0, BATTERY_PEAK_WH + TOLERANCE_WH + 1)),
    ("settlement: export above PV and battery", "meter", "Settlement.post_reading", ("@settled", 0, 10, 5, 2)),
    ("settlement: caller is not the operator", "outsider", "Settlement.register_prosumer", ("@outsider", 1, 0, 0)),
    ("settlement: market started", "operator", "Settlement.register_prosumer", ("@outsider", 1, 0, 0)),
    ("settlement: withdraw above solvent credit", "operator", "Settlement.withdraw", ("@operator_free",)),
    ("escrow: account in debt", "broke prosumer", "DoubleAuction.submit_order", ("@next", True, 1, 1)),
]


@pytest.mark.parametrize("reason, who, target, args", CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(CASES)])
def test_transaction_reverts_with_exact_reason(scene, reason, who, target, args):
    contract, function = target.split(".")
    raw = _tx(scene, who, contract, function, *(_resolve(scene, arg) for arg in args))
    (receipt,) = scene.market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason
    assert receipt.block_number == scene.market.chain.block_number


# The pay-as-bid auction shares the uniform auction's book and its checks;
# its clearing claims the volume only, not a price.
PAY_AS_BID_CASES = [
    (
        reason.replace("auction: ", "pay_as_bid: "),
        who,
        target.replace("DoubleAuction.", "PayAsBid."),
        args[:-2] + args[-1:] if target == "DoubleAuction.clear" else args,
    )
    for reason, who, target, args in CASES
    if target.startswith("DoubleAuction.")
]


@pytest.mark.parametrize(
    "reason, who, target, args", PAY_AS_BID_CASES, ids=[f"{i}-{c[0]}" for i, c in enumerate(PAY_AS_BID_CASES)]
)
def test_pay_as_bid_transaction_reverts_with_exact_reason(pay_as_bid_scene, reason, who, target, args):
    test_transaction_reverts_with_exact_reason(pay_as_bid_scene, reason, who, target, args)


AUCTIONS = pytest.mark.parametrize(
    "scene_name, contract", [("scene", "DoubleAuction"), ("pay_as_bid_scene", "PayAsBid")]
)


@AUCTIONS
def test_second_order_of_an_account_reverts(request, scene_name, contract):
    market = request.getfixturevalue(scene_name).market
    interval = market.next_interval()
    first, second = (
        mk.submit_order(market.prosumers[2], market.addresses, interval, is_ask=is_ask, energy_wh=1, price_wei_per_wh=1)
        for is_ask in (True, False)
    )
    receipts = market.mine([first, second])
    assert receipts[0].ok
    assert reverted(receipts[1], "book: order exists")


def test_reading_before_interval_end_reverts(scene):
    market = scene.market
    interval = market.next_interval()
    assert market.clear(interval, mk.book(market.chain, market.addresses, interval)).ok
    (receipt,) = market.mine([mk.post_reading(market.meters[1], market.addresses, interval, import_wh=0, export_wh=0, pv_wh=0, battery_wh=0)])
    assert market.chain.timestamp < market.end(interval)
    assert reverted(receipt, "settlement: interval not ended")


def test_deposit_beyond_the_payers_balance_reverts_in_the_token(scene):
    market = scene.market
    payer = market.prosumers[3]
    receipts = market.mine(
        [
            market.call_tx(payer, "GridToken", "approve", market.addresses.settlement, 1),
            market.call_tx(payer, "Settlement", "deposit_for", payer.address, 1),
        ]
    )
    assert receipts[0].ok
    assert reverted(receipts[1], "token: transfer amount exceeds balance")


@AUCTIONS
def test_missing_order_view_reverts_with_reason(request, scene_name, contract):
    scene = request.getfixturevalue(scene_name)
    data = encode_call(contract, "order", scene.pending, True, 99)
    with pytest.raises(CallReverted) as raised:
        scene.market.chain.call(scene.market.addresses.auction, data)
    assert raised.value.reason == "book: no such order"


def test_a_bound_meter_keeps_its_role_and_binding_after_the_start(scene):
    market = scene.market
    meter = market.meters[4]
    (receipt,) = market.mine([_tx(scene, "operator", "Registry", "revoke_role", meter.address, 4)])
    assert reverted(receipt, "registry: bindings frozen")
    assert market.read("Registry", "prosumer_of_meter", meter.address) == market.prosumers[4].address
    assert market.read("Registry", "meter_of_prosumer", market.prosumers[4].address) == meter.address
    assert market.read("Registry", "has_role", meter.address, 4)
    (receipt,) = market.mine([_tx(scene, "outsider", "Registry", "revoke_role", meter.address, 4)])
    assert reverted(receipt, "registry: caller is not operator")


@pytest.mark.parametrize(
    "reason, contract, args",
    [
        ("gate: zero interval", "DoubleAuction", lambda reg: (reg, START_TIMESTAMP, 0, GATE_CLOSURE_S, 1)),
        ("gate: gate closure before epoch", "DoubleAuction", lambda reg: (reg, 10, INTERVAL_S, 11, 1)),
        (
            "access: price cap out of range",
            "DoubleAuction",
            lambda reg: (reg, START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 0),
        ),
        ("gate: zero interval", "PayAsBid", lambda reg: (reg, START_TIMESTAMP, 0, GATE_CLOSURE_S, 1)),
        ("gate: gate closure before epoch", "PayAsBid", lambda reg: (reg, 10, INTERVAL_S, 11, 1)),
        (
            "access: price cap out of range",
            "PayAsBid",
            lambda reg: (reg, START_TIMESTAMP, INTERVAL_S, GATE_CLOSURE_S, 10**24 + 1),
        ),
        # Settlement: registry, mechanism, token, operator, buy, sell, fee, credit line, start, interval,
        # non-delivery penalty, minimum order.
        ("settlement: operator is the zero address", "Settlement",
         lambda reg: (reg, reg, reg, ZERO, 1, 1, 1, 0, 0, 1, 0, 1)),
        ("settlement: price out of range", "Settlement",
         lambda reg: (reg, reg, reg, reg, 10**24 + 1, 1, 1, 0, 0, 1, 0, 1)),
        ("settlement: credit line out of range", "Settlement",
         lambda reg: (reg, reg, reg, reg, 1, 1, 1, 10**37, 0, 1, 0, 1)),
        ("settlement: interval out of range", "Settlement", lambda reg: (reg, reg, reg, reg, 1, 1, 1, 0, 0, 0, 0, 1)),
        ("settlement: price out of range", "Settlement",
         lambda reg: (reg, reg, reg, reg, 1, 1, 1, 0, 0, 1, 10**24 + 1, 1)),
        ("settlement: minimum order out of range", "Settlement",
         lambda reg: (reg, reg, reg, reg, 1, 1, 1, 0, 0, 1, 0, 0)),
        ("settlement: minimum order out of range", "Settlement",
         lambda reg: (reg, reg, reg, reg, 1, 1, 1, 0, 0, 1, 0, 10**12 + 1)),
    ],
)
def test_constructor_reverts_with_exact_reason(scene, reason, contract, args):
    market = scene.market
    raw, _ = market.operator.deploy(load_artifact(contract), *args(market.addresses.registry))
    (receipt,) = market.mine([raw])
    assert reverted(receipt, reason), receipt.revert_reason
    assert receipt.contract_address is None


@pytest.mark.parametrize("mechanism", ["uniform-double-auction", "pay-as-bid"])
def test_full_book_side_rejects_one_more_order(mechanism):
    market = new_market(257, with_meters=False, mechanism=mechanism)
    interval = market.next_interval()
    book = market.submit_book(interval, [(1, 1 + i) for i in range(256)], [])
    (receipt,) = market.mine(
        [
            mk.submit_order(
                market.prosumers[256], market.addresses, interval, is_ask=False, energy_wh=1, price_wei_per_wh=1
            )
        ]
    )
    assert reverted(receipt, "book: book full")
    assert market.clear(interval, book).ok


# A token that pays nothing out, refuses a deposit of 1 wei and pretends
# to take larger ones.
FALSE_TOKEN = """
# pragma version ~=0.4.3
@external
def transfer(to: address, amount: uint256) -> bool:
    return False

@external
def transferFrom(sender: address, to: address, amount: uint256) -> bool:
    return amount > 1
"""


def test_token_returning_false_reverts_deposit_and_withdraw():
    market = new_market(1, seed=SEED + 1)
    false_token = vyper.compile_code(FALSE_TOKEN, output_formats=["abi", "bytecode"])
    operator, prosumer = market.operator, market.prosumers[0]
    token_raw, token = operator.deploy(false_token)
    settlement_raw, settlement = operator.deploy(
        load_artifact("Settlement"),
        market.addresses.registry,
        market.addresses.auction,
        token,
        operator.address,
        GRID_BUY_PRICE_WEI_PER_WH,
        GRID_SELL_PRICE_WEI_PER_WH,
        GRID_FEE_WEI_PER_WH,
        0,
        START_TIMESTAMP,
        INTERVAL_S,
        0,
        1,
    )
    assert all(r.ok for r in market.mine([token_raw, settlement_raw]))
    receipts = market.mine(
        [
            operator.transact(settlement, encode_call("Settlement", "deposit_for", prosumer.address, 1), gas=200_000),
            # A deposit the token claims to take credits the prosumer...
            operator.transact(settlement, encode_call("Settlement", "deposit_for", prosumer.address, 2), gas=200_000),
            # ...which the token then fails to pay out.
            prosumer.transact(settlement, encode_call("Settlement", "withdraw", 1), gas=200_000),
        ]
    )
    assert reverted(receipts[0], "settlement: token transfer failed")
    assert receipts[1].ok
    assert reverted(receipts[2], "settlement: token transfer failed")


def test_failed_market_setup_raises_with_the_revert_reason():
    operator = derive_account(fixed_secret(SEED), "operator")
    chain = Chain([operator.address], genesis_timestamp=GENESIS_TIMESTAMP)
    with pytest.raises(mk.SetupFailed, match="deploy DoubleAuction failed: gate: gate closure before epoch"):
        mk.deploy_market(
            chain,
            chain.wallet(operator),
            prosumers=[],
            meters={},
            start_timestamp=10,
            interval_s=INTERVAL_S,
            gate_closure_s=11,
            price_cap_wei_per_wh=1,
            grid_buy_price_wei_per_wh=1,
            grid_sell_price_wei_per_wh=1,
            grid_fee_wei_per_wh=1,
            endowment_wei=0,
            operator_deposit_wei=0,
        )
