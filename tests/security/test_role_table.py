"""The README's role table is the contracts' behaviour (issue 11).

`ROLE_TABLE` is the single source of the table: each row is an external
function of a market's contracts in one phase of the market, and each cell
what a valid call of it does when one of the five roles sends it: `allowed`,
or the exact revert reason. The test sets up one market (double auction,
settlement, voltage regulation with the DSO as its operator, charging
coordination) and one market of each other mechanism, walks them through the phases and dry-runs every call from every
role against the head state (`Chain.call` with the role as sender, so no call
changes anything), asserting each cell; it also asserts the README holds the
table as `render_table` writes it. Views are open to anyone and not listed.
"""

from dataclasses import dataclass
from pathlib import Path

import pytest

from gridledger.contracts import charging as ch
from gridledger.contracts import flexibility as fx
from gridledger.contracts import market as mk
from gridledger.contracts.chain import CallReverted
from gridledger.contracts.charging import ChargeRequest
from gridledger.contracts.charging_reference import EVRegistration
from gridledger.contracts.client import encode_call
from tests.contract_helpers import CENT_PER_KWH as CENT
from tests.contract_helpers import GATE_CLOSURE_S, INTERVAL_S, START_TIMESTAMP, Market, new_market

README = Path(__file__).resolve().parents[2] / "README.md"
ROLES = ("operator", "prosumer", "meter", "DSO", "anyone")
ALLOWED = "allowed"
ROLE_PROSUMER, ROLE_METER = 2, 4
# An account with no role that calls target. [address]
FRESH = "0x" + "ab" * 20
# Tokens minted to each role's account. [wei]
TOKENS_WEI = 10**24

# Phases of the market in which the rows are tried, with the head's timestamp.
# [s since the Unix epoch]
PHASES = {
    "setup": None,
    "gate of interval 0": START_TIMESTAMP - GATE_CLOSURE_S,
    "offers open": START_TIMESTAMP + 20,
    "offer deadline": START_TIMESTAMP + 100,
    "interval 0 and window ended": START_TIMESTAMP + 1100,
    "delivery period over": START_TIMESTAMP + 2000,
}
FLEX_DEADLINE = START_TIMESTAMP + 100
FLEX_WINDOW = (START_TIMESTAMP + 200, START_TIMESTAMP + 1100)

_CALLER = "registry: caller is not operator"
_FROZEN = "registry: bindings frozen"
_NOT_PROSUMER = "access: caller is not a prosumer"
_NO_METER = "settlement: caller is not a bound meter"
_NOT_MECHANISM = "settlement: caller is not the mechanism"
_NEITHER = "access: caller is neither prosumer nor operator"
_NOT_CHARGING_OP = "charging: caller is not operator"
_NOT_FLEX_OP = "flexibility: caller is not operator"
_NOT_FLEX_PROSUMER = "flexibility: caller is not a prosumer"
_NO_FLEX_METER = "flexibility: caller is not a bound meter"
_NOT_REGISTRAR = "flexibility: caller is not registrar"
_NOT_CHARGING_PROSUMER = "charging: caller is not a prosumer"
_CHARGING_CLOSED = "charging: registration closed"



def _only(allowed: tuple[str, ...], reason: str) -> tuple[str, ...]:
    """Cells of a row that ``allowed`` roles may call and the others revert with ``reason``."""
    return tuple(ALLOWED if role in allowed else reason for role in ROLES)


# (phase, "Contract.function", cells for operator, prosumer, meter, DSO, anyone).
ROLE_TABLE: list[tuple[str, str, tuple[str, str, str, str, str]]] = [
    ("setup", "Registry.grant_role", (ALLOWED, _CALLER, _CALLER, ALLOWED, _CALLER)),
    ("setup", "Registry.revoke_role", (ALLOWED, _CALLER, _CALLER, ALLOWED, _CALLER)),
    ("setup", "Registry.bind_meter", (ALLOWED, _CALLER, _CALLER, ALLOWED, _CALLER)),
    ("offers open", "Registry.revoke_role", (_FROZEN, _CALLER, _CALLER, _FROZEN, _CALLER)),
    ("offers open", "Registry.bind_meter", (_FROZEN, _CALLER, _CALLER, _FROZEN, _CALLER)),
    ("setup", "GridToken.transfer", (ALLOWED,) * 5),
    ("setup", "GridToken.approve", (ALLOWED,) * 5),
    ("setup", "GridToken.transferFrom", (ALLOWED,) * 5),
    ("setup", "GridToken.mint", (ALLOWED, *("token: caller is not the owner",) * 4)),
    ("setup", "DoubleAuction.bind_settlement", ("escrow: settlement already bound",
                                                *("escrow: caller is not the deployer",) * 4)),
    ("setup", "DoubleAuction.submit_order", (_NOT_PROSUMER, ALLOWED, _NOT_PROSUMER, _NOT_PROSUMER, _NOT_PROSUMER)),
    ("gate of interval 0", "DoubleAuction.clear", (ALLOWED, ALLOWED, _NEITHER, ALLOWED, _NEITHER)),
    ("gate of interval 0", "DoubleAuction.clear_onchain", (ALLOWED, ALLOWED, _NEITHER, ALLOWED, _NEITHER)),
    ("gate of interval 0", "DoubleAuction.clear_signed", (ALLOWED, ALLOWED, _NEITHER, ALLOWED, _NEITHER)),
    ("setup", "Settlement.deposit_for", (ALLOWED,) * 5),
    ("setup", "Settlement.withdraw", (ALLOWED,) * 5),
    ("setup", "Settlement.lock", (_NOT_MECHANISM,) * 5),
    ("setup", "Settlement.lock_bids", (_NOT_MECHANISM,) * 5),
    ("setup", "Settlement.unlock", (_NOT_MECHANISM,) * 5),
    ("interval 0 and window ended", "Settlement.release", (ALLOWED,) * 5),
    ("interval 0 and window ended", "Settlement.post_reading", (_NO_METER, _NO_METER, ALLOWED, _NO_METER, _NO_METER)),
    ("interval 0 and window ended", "Settlement.settle_operator", (ALLOWED,) * 5),
    ("setup", "VoltageRegulation.register_der", _only(("operator",), _NOT_REGISTRAR)),
    ("offers open", "VoltageRegulation.register_der", ("flexibility: registration closed", *(_NOT_REGISTRAR,) * 4)),
    ("setup", "VoltageRegulation.post_request", _only(("DSO",), _NOT_FLEX_OP)),
    ("offers open", "VoltageRegulation.offer", _only(("prosumer",), _NOT_FLEX_PROSUMER)),
    ("offer deadline", "VoltageRegulation.award", (ALLOWED,) * 5),
    ("interval 0 and window ended", "VoltageRegulation.post_delivery", _only(("meter",), _NO_FLEX_METER)),
    ("delivery period over", "VoltageRegulation.close", (ALLOWED,) * 5),
    ("setup", "ChargingCoordination.register_ev", _only(("operator", "DSO"), _NOT_CHARGING_OP)),
    ("offers open", "ChargingCoordination.register_ev",
     (_CHARGING_CLOSED, _NOT_CHARGING_OP, _NOT_CHARGING_OP, _CHARGING_CLOSED, _NOT_CHARGING_OP)),
    ("setup", "ChargingCoordination.post_headroom", _only(("operator", "DSO"), _NOT_CHARGING_OP)),
    ("setup", "ChargingCoordination.request_charge", _only(("prosumer",), _NOT_CHARGING_PROSUMER)),
    ("gate of interval 0", "ChargingCoordination.allocate", (ALLOWED,) * 5),
    ("setup", "PayAsBid.submit_order", _only(("prosumer",), _NOT_PROSUMER)),
    ("gate of interval 0", "PayAsBid.clear", _only(("operator", "prosumer", "DSO"), _NEITHER)),
    ("gate of interval 0", "PayAsBid.clear_onchain", _only(("operator", "prosumer", "DSO"), _NEITHER)),
    ("setup", "MeritOrder.post_demand", _only(("operator", "DSO"), "access: caller is not operator")),
    ("setup", "MeritOrder.submit_offer", _only(("prosumer",), _NOT_PROSUMER)),
    ("gate of interval 0", "MeritOrder.clear", _only(("operator", "prosumer", "DSO"), _NEITHER)),
    ("gate of interval 0", "MeritOrder.clear_onchain", _only(("operator", "prosumer", "DSO"), _NEITHER)),
    ("setup", "VickreyAuction.post_lot", _only(("prosumer",), _NOT_PROSUMER)),
    ("setup", "VickreyAuction.commit_bid", _only(("prosumer",), _NOT_PROSUMER)),
    ("setup", "EnglishAuction.post_lot", _only(("prosumer",), _NOT_PROSUMER)),
    ("setup", "EnglishAuction.bid", _only(("prosumer",), _NOT_PROSUMER)),
]

# Rows of every other mechanism's escrow binding, of the sealed-bid auction's reveal and finalise
# and of the Settlement's registration of a prosumer's limits (of a fresh account). The Vickrey
# market holds prosumer 0's sealed bid on `SEALED_LOT`, prosumer 1's lot of interval 0
# (`_sealed_bid`): its reveal is open at the gate of interval 0 and closed once interval 0 has
# ended. A reveal is the committing bidder's alone: the commitment is looked up by caller.
SEALED_LOT = 1
SEALED_PRICE_WEI_PER_WH = 20 * CENT
SEALED_SALT = b"\x07" * 32
ROLE_TABLE += [
    *(("setup", f"{contract}.bind_settlement", ("escrow: settlement already bound",
                                                *("escrow: caller is not the deployer",) * 4))
      for contract in ("PayAsBid", "MeritOrder", "VickreyAuction", "EnglishAuction")),
    ("gate of interval 0", "VickreyAuction.reveal_bid", _only(("prosumer",), "vickrey: no commitment")),
    ("interval 0 and window ended", "VickreyAuction.finalise", (ALLOWED,) * 5),
    ("setup", "Settlement.register_prosumer", _only(("operator",), "settlement: caller is not the operator")),
    # Anyone may relay signed orders or readings: each is checked as if its signer had sent it.
    ("setup", "DoubleAuction.submit_signed_orders", (ALLOWED,) * 5),
    ("setup", "PayAsBid.submit_signed_orders", (ALLOWED,) * 5),
    ("interval 0 and window ended", "Settlement.post_signed_readings", (ALLOWED,) * 5),
    ("offers open", "Settlement.register_prosumer",
     ("settlement: market started", *("settlement: caller is not the operator",) * 4)),
    # The setup's batch calls: each refuses whom its single-account call refuses.
    ("setup", "Registry.grant_roles", (ALLOWED, _CALLER, _CALLER, ALLOWED, _CALLER)),
    ("setup", "Registry.bind_meters", (ALLOWED, _CALLER, _CALLER, ALLOWED, _CALLER)),
    ("offers open", "Registry.bind_meters", (_FROZEN, _CALLER, _CALLER, _FROZEN, _CALLER)),
    ("setup", "Settlement.register_prosumers", _only(("operator",), "settlement: caller is not the operator")),
    ("offers open", "Settlement.register_prosumers",
     ("settlement: market started", *("settlement: caller is not the operator",) * 4)),
    ("setup", "Settlement.deposit_for_each", (ALLOWED,) * 5),
    # A zone's cross-zone fills: the settlement's operator alone (not the DSO), once its interval is cleared.
    ("gate of interval 0", "DoubleAuction.settle_across",
     ("auction: interval not cleared", *("auction: caller is not the settlement's operator",) * 4)),
]


@dataclass
class Scene:
    """The market the rows are tried on, with the addresses of its contracts by name, and one
    market per other mechanism (same accounts, own chain) by its contract's name."""

    market: Market
    contracts: dict[str, str]
    mechanisms: dict[str, Market]

    def caller(self, role: str) -> str:
        m = self.market
        return {
            "operator": m.operator.address,
            "prosumer": m.prosumers[0].address,
            "meter": m.meters[0].address,
            "DSO": m.dso.address,
            "anyone": m.outsider.address,
        }[role]


def _args(scene: Scene, role: str) -> dict[str, tuple]:
    """Arguments of a valid call of each function by ``role`` in its row's phase."""
    m, me = scene.market, scene.caller(role)
    p0, p1, p2 = (w.address for w in m.prosumers)
    return {
        "Registry.grant_role": (FRESH, ROLE_PROSUMER),
        "Registry.revoke_role": (p2, ROLE_PROSUMER) if m.chain.timestamp < START_TIMESTAMP
        else (m.meters[0].address, ROLE_METER),
        "Registry.bind_meter": (m.meters[1].address, p1),
        "Registry.grant_roles": ([FRESH], ROLE_PROSUMER),
        "Registry.bind_meters": ([m.meters[1].address], [p1]),
        "Settlement.register_prosumers": ([(FRESH, 5000, 0, 0)],),
        "Settlement.deposit_for_each": ([me], 1),
        "DoubleAuction.settle_across": (0, [], 1),
        "GridToken.transfer": (FRESH, 0),
        "GridToken.approve": (FRESH, 1),
        "GridToken.transferFrom": (m.operator.address, FRESH, 0),
        "GridToken.mint": (FRESH, 1),
        "DoubleAuction.bind_settlement": (m.addresses.settlement,),
        "DoubleAuction.submit_order": (1, True, 100, 10 * CENT),
        "DoubleAuction.clear": _clear_args(m, "DoubleAuction"),
        "DoubleAuction.clear_signed": (0, [], *_clear_args(m, "DoubleAuction")[1:]),
        "PayAsBid.submit_order": (1, True, 100, 10 * CENT),
        "PayAsBid.clear": _clear_args(scene.mechanisms["PayAsBid"], "PayAsBid"),
        "PayAsBid.clear_onchain": (0,),
        "MeritOrder.post_demand": (1, 100),
        "MeritOrder.submit_offer": (1, 100, 10 * CENT),
        "MeritOrder.clear": _clear_args(scene.mechanisms["MeritOrder"], "MeritOrder"),
        "MeritOrder.clear_onchain": (0,),
        "VickreyAuction.post_lot": (1, 100, 1),
        "VickreyAuction.commit_bid": (0, b"\x01" * 32),
        "EnglishAuction.post_lot": (1, 100, 1),
        "EnglishAuction.bid": (0, 10 * CENT),
        "DoubleAuction.clear_onchain": (0,),
        "Settlement.deposit_for": (me, 1),
        "Settlement.withdraw": (1,),
        "Settlement.lock": (p0, 1, 1, 1),
        "Settlement.lock_bids": (1, [p0], [1 | 1 << 40]),
        "Settlement.unlock": (p0, 0, 0),
        "Settlement.release": (0, p0),
        "Settlement.post_reading": (0, 0, 0, 0, 0),
        "Settlement.settle_operator": (0,),
        "VoltageRegulation.post_request": ([5], [100], False, 1000, *FLEX_WINDOW, FLEX_DEADLINE, 10 * CENT),
        "VoltageRegulation.register_der": (p1, 5, 1000),
        "VoltageRegulation.offer": (0, 1000, 5 * CENT),
        "VoltageRegulation.award": (0,),
        "VoltageRegulation.post_delivery": (0, 250),
        "VoltageRegulation.close": (0,),
        "ChargingCoordination.post_headroom": (1, 10_000),
        "ChargingCoordination.register_ev": (p1, 50_000, 7000),
        "ChargingCoordination.request_charge": (1, 7000, 5000, 500, START_TIMESTAMP + 3600),
        "ChargingCoordination.allocate": (0,),
    }


def _escrow_and_lot_args(scene: Scene) -> dict[str, tuple]:
    """Arguments of the rows of the escrow bindings, the sealed bid's reveal and finalise and the registration."""
    bindings = {f"{name}.bind_settlement": (m.addresses.settlement,) for name, m in scene.mechanisms.items()}
    return {**bindings,
            "VickreyAuction.reveal_bid": (SEALED_LOT, SEALED_PRICE_WEI_PER_WH, SEALED_SALT),
            "VickreyAuction.finalise": (0,),
            "Settlement.register_prosumer": (FRESH, 5000, 0, 0),
            "DoubleAuction.submit_signed_orders": (1, []),
            "PayAsBid.submit_signed_orders": (1, []),
            "Settlement.post_signed_readings": (0, [])}


def _sealed_bid(m: Market) -> list[bytes]:
    """Prosumer 1's lot `SEALED_LOT` in interval 0 and prosumer 0's sealed bid on it."""
    bidder = m.prosumers[0]
    sealed = mk.commitment(bidder.address, SEALED_LOT, SEALED_PRICE_WEI_PER_WH, SEALED_SALT)
    return [mk.post_lot(m.prosumers[1], m.addresses, 0, energy_wh=1000, reserve_price_wei_per_wh=1),
            mk.commit_bid(bidder, m.addresses, SEALED_LOT, sealed=sealed)]


def _clear_args(m: Market, contract: str) -> tuple:
    """Arguments of a verified clearing of interval 0 of ``m``'s book, as `mk.clear` sends them."""
    book = mk.book(m.chain, m.addresses, 0)
    bid_order, ask_order = mk.sorted_order(book)
    orders = (ask_order,) if contract == "MeritOrder" else (bid_order, ask_order)
    return (0, *orders, *mk.claimed_outcome(contract, book))


def _outcome(scene: Scene, row: str, role: str) -> str:
    contract, function = row.split(".")
    data = encode_call(contract, function, *{**_args(scene, role), **_escrow_and_lot_args(scene)}[row])
    m = scene.mechanisms.get(contract, scene.market)
    address = m.addresses.auction if contract in scene.mechanisms else scene.contracts[contract]
    try:
        m.chain.call(address, data, sender=scene.caller(role))
    except CallReverted as reverted:
        return reverted.reason
    return ALLOWED


def _scene() -> Scene:
    """Three prosumers with meters, the DSO as the voltage-regulation and charging operator, and
    every role's account funded with tokens and credit; a bid and an ask in interval 0, a
    flexibility request, a charging headroom and request for window 0, all before the start."""
    m = new_market(3)
    op, dso, p0, p1 = m.operator, m.dso, m.prosumers[0], m.prosumers[1]
    token, settlement = m.addresses.token, m.addresses.settlement
    flex = fx.deploy_voltage_regulation(m.chain, op, m.addresses.registry, token, penalty_permille=1500,
                                        delivery_period_s=900, min_offer_w=100, min_bond_wei=CENT,
                                        ders=[fx.DerFacts(p0.address, 5, 5000)], operator_address=dso.address)
    charging = ch.deploy_charging(m.chain, op, registry=m.addresses.registry, start_timestamp=START_TIMESTAMP,
                                  window_s=INTERVAL_S, request_lead_s=GATE_CLOSURE_S)
    wallets = (op, p0, m.meters[0], dso, m.outsider)
    raw = [m.call_tx(op, "GridToken", "mint", w.address, TOKENS_WEI) for w in wallets]
    raw += [fx.approve(w, token, spender, TOKENS_WEI) for w in wallets for spender in (flex, settlement)]
    raw += [m.call_tx(w, "Settlement", "deposit_for", w.address, 10**18) for w in wallets]
    raw += [
        mk.submit_order(p0, m.addresses, 0, is_ask=False, energy_wh=1000, price_wei_per_wh=20 * CENT),
        mk.submit_order(p1, m.addresses, 0, is_ask=True, energy_wh=1000, price_wei_per_wh=10 * CENT),
        fx.post_request(dso, flex, sensitivities_upu_per_kw={5: 100}, direction_raise=False, p_w=1000,
                        window_start_timestamp=FLEX_WINDOW[0], window_end_timestamp=FLEX_WINDOW[1],
                        offer_deadline_timestamp=FLEX_DEADLINE, price_cap_wei_per_wh=10 * CENT),
        ch.register_ev(op, charging, EVRegistration(p0.address, 50_000, 7000)),
        ch.post_headroom(dso, charging, 0, headroom_w=10_000),
        ch.request_charge(p0, charging, 0, ChargeRequest(p0.address, 7000, 5000, 500, START_TIMESTAMP + 3600)),
    ]
    receipts = m.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    contracts = {"Registry": m.addresses.registry, "GridToken": token, "DoubleAuction": m.addresses.auction,
                 "Settlement": settlement, "VoltageRegulation": flex, "ChargingCoordination": charging}
    return Scene(m, contracts, {name: _mechanism_market(name) for name in MECHANISM_MARKETS})


# Market of each other mechanism: its study name and the orders or lots its rows need.
MECHANISM_MARKETS = {
    "PayAsBid": "pay-as-bid",
    "MeritOrder": "merit-order",
    "VickreyAuction": "vickrey",
    "EnglishAuction": "english",
}


def _mechanism_market(contract: str) -> Market:
    """A market of ``contract`` whose DSO holds the operator role and credit, with a bid and an ask
    (or the operator's demand and an offer) in interval 0, or a lot of prosumer 1 (lot 0) in interval 1
    and, in the Vickrey market, `_sealed_bid`."""
    m = new_market(3, mechanism=MECHANISM_MARKETS[contract])
    p0, p1 = m.prosumers[0], m.prosumers[1]
    raw = [m.call_tx(m.operator, "Registry", "grant_role", m.dso.address, 1),
           m.call_tx(m.operator, "GridToken", "mint", m.dso.address, TOKENS_WEI),
           fx.approve(m.dso, m.addresses.token, m.addresses.settlement, TOKENS_WEI),
           m.call_tx(m.dso, "Settlement", "deposit_for", m.dso.address, TOKENS_WEI)]
    if contract == "MeritOrder":
        raw += [mk.post_demand(m.operator, m.addresses, 0, demand_wh=1000),
                mk.submit_order(p1, m.addresses, 0, is_ask=True, energy_wh=1000, price_wei_per_wh=10 * CENT)]
    elif contract == "PayAsBid":
        raw += [mk.submit_order(p0, m.addresses, 0, is_ask=False, energy_wh=1000, price_wei_per_wh=20 * CENT),
                mk.submit_order(p1, m.addresses, 0, is_ask=True, energy_wh=1000, price_wei_per_wh=10 * CENT)]
    else:
        raw.append(mk.post_lot(p1, m.addresses, 1, energy_wh=1000, reserve_price_wei_per_wh=1))
    if contract == "VickreyAuction":
        raw += _sealed_bid(m)
    receipts = m.mine(raw)
    assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    return m


def _advance(scene: Scene, phase: str) -> None:
    """Do what the market does between the previous phase and ``phase``: the honest actions of the
    previous phase, mined one second after the head, then an empty block at the phase's time."""
    m = scene.market
    flex, charging = scene.contracts["VoltageRegulation"], scene.contracts["ChargingCoordination"]
    honest = {
        "offers open": lambda: [mk.clear(m.operator, m.addresses, 0, mk.book(m.chain, m.addresses, 0)),
                                ch.allocate(m.operator, charging, 0, n_requests=1)],
        "offer deadline": lambda: [fx.offer(m.prosumers[0], flex, 0, p_w=1000, price_wei_per_wh=5 * CENT)],
        "interval 0 and window ended": lambda: [fx.award(m.outsider, flex, 0, n_offers=1)],
        "delivery period over": lambda: [fx.post_delivery(m.meters[0], flex, 0, delivered_wh=250)],
    }.get(phase, list)()
    if honest:
        receipts = m.mine(honest)
        assert all(r.ok for r in receipts), [r.revert_reason for r in receipts if not r.ok]
    for market in (m, *scene.mechanisms.values()):
        market.mine([], PHASES[phase])


@pytest.fixture(scope="module")
def outcomes() -> dict[tuple[str, str], tuple[str, ...]]:
    """What every row's call does from every role, phase by phase."""
    scene, seen = _scene(), {}
    for phase in PHASES:
        if PHASES[phase] is not None:
            _advance(scene, phase)
        for row_phase, row, _ in ROLE_TABLE:
            if row_phase == phase:
                seen[phase, row] = tuple(_outcome(scene, row, role) for role in ROLES)
    return seen


@pytest.mark.parametrize("phase, row, cells", ROLE_TABLE, ids=[f"{r}@{p}" for p, r, _ in ROLE_TABLE])
def test_each_role_gets_what_the_table_says(outcomes, phase, row, cells):
    assert dict(zip(ROLES, outcomes[phase, row])) == dict(zip(ROLES, cells))


def render_table() -> str:
    """The role table as a Markdown table: allowed as a check mark, a revert as its reason."""
    lines = ["| phase | function | " + " | ".join(ROLES) + " |", "|---" * (2 + len(ROLES)) + "|"]
    for phase, row, cells in ROLE_TABLE:
        shown = ["✓" if c == ALLOWED else f"`{c}`" for c in cells]
        lines.append(f"| {phase} | `{row}` | " + " | ".join(shown) + " |")
    return "\n".join(lines) + "\n"


def test_readme_holds_the_role_table():
    assert render_table() in README.read_text(), "paste render_table() into the README's role table section"
