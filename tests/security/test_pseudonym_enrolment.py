"""Attacks on what a pseudonym registration does in the Registry and the Settlement: only the operator names the
pseudonym contract (once, before the start), only that contract enrols pairs and registers their limits, each
refusal with its exact reason and nothing changed; a pseudonym's meter settles a non-empty reading in its own
interval only, its bond is credited to it and the token supply is conserved.

The Registry's and the Settlement's rules are checked with the funded, role-less ``dso`` account named as the
pseudonym contract (they check only the caller), the reading rules with the real contract
(`tests.test_pseudonyms_contract`).
"""

from __future__ import annotations

import pytest
from eth_utils import to_checksum_address

from gridledger.contracts import market as mk
from gridledger.contracts import flexibility as fx
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts.client import signed_call
from gridledger.contracts.typed_data import sign_order
from gridledger.contracts.chain import Receipt
from gridledger.contracts.pseudonyms_reference import MAX_POWER_W, ROLE_METER, ROLE_PROSUMER
from gridledger.contracts.reference import reading_limit_reason, settle
from tests.contract_helpers import (
    GRID_BUY_PRICE_WEI_PER_WH,
    GRID_FEE_WEI_PER_WH,
    GRID_SELL_PRICE_WEI_PER_WH,
    INTERVAL_S,
    NON_DELIVERY_PENALTY_WEI_PER_WH,
    START_TIMESTAMP,
    Market,
    new_market,
)
from tests.security.test_pseudonyms import _registrars_own_pairs, assert_tokens_conserved
from tests.test_pseudonyms_contract import BOND_WEI, CLASSES, ZERO, _blindly_signed, _fund, _registrar, _scene

MAX_PSEUDONYM_INTERVAL = 2**55
"""``Settlement._MAX_PSEUDONYM_INTERVAL``."""


def _one(market: Market, raw: bytes, timestamp: int | None = None) -> Receipt:
    (receipt,) = market.mine([raw], timestamp)
    return receipt


def _call(market: Market, wallet, contract: str, function: str, *args, at: int | None = None) -> Receipt:
    return _one(market, market.call_tx(wallet, contract, function, *args), at)


def _accounts_state(market: Market, accounts: tuple[str, ...]) -> dict:
    """Registry roles and bindings, Settlement limits and credits of ``accounts``, and the named contract."""
    state = {a: (market.read("Registry", "roles", a), market.read("Registry", "prosumer_of_meter", a),
                 market.read("Registry", "meter_of_prosumer", a), tuple(market.read("Settlement", "limits", a)),
                 market.read("Settlement", "credit_wei", a)) for a in accounts if a != ZERO}
    return state | {"pseudonyms": market.read("Registry", "pseudonyms")}


def _refused(market: Market, receipt_of, accounts: tuple[str, ...]) -> str:
    """Run ``receipt_of()``; check it reverted, logged nothing and changed nothing of ``accounts``; its reason."""
    before = _accounts_state(market, accounts)
    receipt = receipt_of()
    assert not receipt.ok and not receipt.logs
    assert _accounts_state(market, accounts) == before
    return receipt.revert_reason


def _named_dso(market: Market) -> Market:
    """The market with its ``dso`` account named as the pseudonym contract."""
    assert _call(market, market.operator, "Registry", "set_pseudonyms", market.dso.address).ok
    return market


FRESH = (to_checksum_address("0x" + "0a" * 20), to_checksum_address("0x" + "0b" * 20))
"""Two role-less accounts: a pair to enrol."""


@pytest.mark.parametrize("attack,reason", [
    ("the outsider names itself", "registry: caller is not operator"),
    ("a prosumer names itself", "registry: caller is not operator"),
    ("the operator names one at the start", "registry: bindings frozen"),
    ("the operator names the zero address", "registry: pseudonyms is the zero address"),
    ("the operator names a second one", "registry: pseudonyms already set"),
])
def test_only_the_operator_names_the_pseudonym_contract_once_before_the_start(attack, reason):
    market = new_market(2)
    sender, named, at = market.operator, market.dso.address, None
    if attack == "the outsider names itself":
        sender, named = market.outsider, market.outsider.address
    elif attack == "a prosumer names itself":
        sender, named = market.prosumers[0], market.prosumers[0].address
    elif attack == "the operator names one at the start":
        at = START_TIMESTAMP
    elif attack == "the operator names the zero address":
        named = ZERO
    else:
        first = _call(market, market.operator, "Registry", "set_pseudonyms", market.dso.address)
        assert [market.chain.decode(log).event for log in first.logs] == ["PseudonymsSet"]
        named = market.outsider.address
    assert _refused(market, lambda: _call(market, sender, "Registry", "set_pseudonyms", named, at=at), ()) == reason


@pytest.mark.parametrize("attack,reason", [
    ("the outsider", "registry: caller is not pseudonyms"),
    ("the operator", "registry: caller is not pseudonyms"),
    ("a prosumer", "registry: caller is not pseudonyms"),
    ("anyone while none is named", "registry: caller is not pseudonyms"),
    ("a pair of one account", "registry: prosumer is its meter"),
    ("a prosumer as the pseudonym", "registry: account holds a role"),
    ("a bound meter as the meter", "registry: account holds a role"),
    ("the operator as the meter", "registry: account holds a role"),
    ("the zero address as the pseudonym", "registry: account is the zero address"),
    ("the zero address as the meter", "registry: account is the zero address"),
])
def test_only_the_named_contract_enrols_and_only_fresh_accounts(attack, reason):
    market = new_market(2)
    sender, (prosumer, meter) = market.dso, FRESH
    if attack != "anyone while none is named":
        _named_dso(market)
    if attack in ("the outsider", "the operator", "a prosumer"):
        sender = {"the outsider": market.outsider, "the operator": market.operator,
                  "a prosumer": market.prosumers[0]}[attack]
    elif attack == "a pair of one account":
        meter = prosumer
    elif attack == "a prosumer as the pseudonym":
        prosumer = market.prosumers[0].address
    elif attack == "a bound meter as the meter":
        meter = market.meters[0].address
    elif attack == "the operator as the meter":
        meter = market.operator.address
    elif attack == "the zero address as the pseudonym":
        prosumer = ZERO
    elif attack == "the zero address as the meter":
        meter = ZERO
    refused = _refused(market, lambda: _call(market, sender, "Registry", "enrol", prosumer, meter), (prosumer, meter))
    assert refused == reason


def test_the_named_contract_enrols_a_fresh_pair_after_the_start_while_bindings_stay_frozen():
    market = _named_dso(new_market(2))
    prosumer, meter = FRESH
    frozen = _call(market, market.operator, "Registry", "bind_meter", market.meters[1].address,
                   market.prosumers[0].address, at=START_TIMESTAMP + INTERVAL_S)
    assert frozen.revert_reason == "registry: bindings frozen"
    enrolled = _call(market, market.dso, "Registry", "enrol", prosumer, meter)
    assert enrolled.ok
    assert [(e.event, dict(e.args)) for e in map(market.chain.decode, enrolled.logs)] == [
        ("RoleGranted", {"account": prosumer, "role": ROLE_PROSUMER, "sender": market.dso.address}),
        ("RoleGranted", {"account": meter, "role": ROLE_METER, "sender": market.dso.address}),
        ("MeterBound", {"meter": meter, "prosumer": prosumer}),
    ]
    assert (market.read("Registry", "roles", prosumer), market.read("Registry", "roles", meter)) == \
        (ROLE_PROSUMER, ROLE_METER)
    assert market.read("Registry", "prosumer_of_meter", meter) == prosumer
    assert market.read("Registry", "meter_of_prosumer", prosumer) == meter
    # The other bindings are as they were.
    assert market.read("Registry", "prosumer_of_meter", market.meters[1].address) == market.prosumers[1].address
    again = _refused(market, lambda: _call(market, market.dso, "Registry", "enrol", prosumer, meter), FRESH)
    assert again == "registry: account holds a role"


@pytest.mark.parametrize("attack,reason", [
    ("the outsider", "settlement: caller is not pseudonyms"),
    ("the operator", "settlement: caller is not pseudonyms"),
    ("a prosumer", "settlement: caller is not pseudonyms"),
    ("anyone while none is named", "settlement: caller is not pseudonyms"),
    ("an interval above the limit", "settlement: interval above limit"),
    ("the zero address", "settlement: prosumer is the zero address"),
    ("a registered prosumer", "settlement: prosumer registered"),
    ("a pseudonym registered before", "settlement: prosumer registered"),
    ("a zero meter rating", "settlement: zero meter rating"),
    ("a battery above the limit", "settlement: power above limit"),
])
def test_only_the_named_contract_registers_a_pseudonyms_limits_once(attack, reason):
    market = new_market(2)
    sender, pseudonym, interval, limits = market.dso, FRESH[0], 1, (10_000, 5_000, 0)
    if attack != "anyone while none is named":
        _named_dso(market)
    if attack in ("the outsider", "the operator", "a prosumer"):
        sender = {"the outsider": market.outsider, "the operator": market.operator,
                  "a prosumer": market.prosumers[0]}[attack]
        pseudonym = sender.address
    elif attack == "an interval above the limit":
        interval = MAX_PSEUDONYM_INTERVAL
    elif attack == "the zero address":
        pseudonym = ZERO
    elif attack == "a registered prosumer":
        pseudonym = market.prosumers[0].address
    elif attack == "a pseudonym registered before":
        assert _call(market, market.dso, "Settlement", "register_pseudonym", pseudonym, 3, *limits).ok
    elif attack == "a zero meter rating":
        limits = (0, 5_000, 0)
    elif attack == "a battery above the limit":
        limits = (10_000, 5_000, MAX_POWER_W + 1)
    refused = _refused(market, lambda: _call(market, sender, "Settlement", "register_pseudonym", pseudonym, interval,
                                             *limits), (pseudonym,))
    assert refused == reason


def test_the_named_contract_registers_a_pseudonyms_limits_at_any_time():
    market = _named_dso(new_market(2))
    pseudonym = FRESH[0]
    largest = MAX_PSEUDONYM_INTERVAL - 1
    registered = _call(market, market.dso, "Settlement", "register_pseudonym", pseudonym, largest, 10_000, 5_000, 0,
                       at=START_TIMESTAMP + 10 * INTERVAL_S)
    assert registered.ok
    assert tuple(market.read("Settlement", "limits", pseudonym)) == (10_000, 5_000, 0, True)
    # The operator's own registration window has closed meanwhile.
    late = _call(market, market.operator, "Settlement", "register_prosumer", FRESH[1], 10_000, 0, 0)
    assert late.revert_reason == "settlement: market started"


def _post(market: Market, meter, interval: int, reading: tuple[int, int, int, int]) -> Receipt:
    imp, exp, pv, bat = reading
    return _one(market, mk.post_reading(meter, market.addresses, interval, import_wh=imp, export_wh=exp, pv_wh=pv,
                                        battery_wh=bat), max(market.end(interval), market.chain.timestamp + 1))


def test_a_pseudonyms_meter_settles_a_non_empty_reading_only_in_its_interval():
    """p0's pair of interval 1 (class 0: 10 kW meter, 5 kW PV) is registered; intervals 0 to 2 clear empty. Its
    meter's non-empty readings of 0 and 2 are refused, its empty ones settle; its reading of 1 is bounded by the
    class's limits and settles at the grid tariff; p1's meter posts as before; nothing is lost."""
    market, address = _scene()
    p0, p1 = market.prosumers[0], market.prosumers[1]
    assert _one(market, pn.buy_ticket(p0, address, 1)).ok
    registration = _blindly_signed(market, address, _registrar(market, address), 0, 1)
    fund, registered = market.mine([_fund(market, registration.meter),
                                    pn.register(market.outsider, address, registration)])
    assert fund.ok and registered.ok
    pseudonym = registration.pseudonym
    meter = market.chain.wallet(pn.meter_account(market.meters[0].account.key, 1))
    assert meter.address == registration.meter
    assert market.read("Settlement", "credit_wei", pseudonym) == BOND_WEI
    honest = {w.address: market.read("Settlement", "credit_wei", w.address) for w in market.prosumers[1:]}
    for interval in range(3):
        assert market.clear(interval, mk.Book((), ())).ok
    limits = CLASSES[0]
    bounds = dict(meter_rating_w=limits.meter_rating_w, pv_w=limits.pv_w, battery_w=limits.battery_w,
                  interval_s=INTERVAL_S)
    # Another interval's non-empty reading, even one within the class's limits, is refused and settles nothing.
    for interval, reading in ((0, (1, 0, 0, 0)), (0, (0, 0, 1, 0)), (2, (500, 0, 0, 0))):
        assert reading_limit_reason(*reading, **bounds) is None
        refused = _post(market, meter, interval, reading)
        assert refused.revert_reason == "settlement: pseudonym outside its interval" and not refused.logs
        assert market.read("Settlement", "reading", interval, pseudonym)[-1] is False
    assert market.read("Settlement", "credit_wei", pseudonym) == BOND_WEI
    # Its own interval: the class's limits bound the reading (1250 Wh of PV in 15 min, plus the tolerance).
    above = (0, 0, 1253, 0)
    assert reading_limit_reason(*above, **bounds) == "settlement: PV above peak power"
    assert _post(market, meter, 1, above).revert_reason == "settlement: PV above peak power"
    imported = (1000, 0, 0, 0)
    assert _post(market, meter, 1, imported).ok
    line = settle(0, 0, 1000, 0, GRID_BUY_PRICE_WEI_PER_WH, GRID_SELL_PRICE_WEI_PER_WH, GRID_FEE_WEI_PER_WH,
                  non_delivery_penalty_wei_per_wh=NON_DELIVERY_PENALTY_WEI_PER_WH)
    assert market.read("Settlement", "credit_wei", pseudonym) == BOND_WEI + line.credit_delta_wei
    # The empty readings of the other intervals settle.
    for interval in (0, 2):
        assert _post(market, meter, interval, (0, 0, 0, 0)).ok
        assert market.read("Settlement", "reading", interval, pseudonym)[-1] is True
    # An ordinary prosumer's meter posts a non-empty reading in any interval, as before.
    assert _post(market, market.meters[1], 0, (0, 0, 1000, 0)).ok
    assert market.read("Settlement", "credit_wei", p1.address) == honest[p1.address]
    assert market.read("Settlement", "credit_wei", market.prosumers[2].address) == honest[market.prosumers[2].address]
    assert_tokens_conserved(market, address, [pseudonym])


def _registered_pseudonym(market: Market, address: str, interval: int = 1):
    """p0's pair of `interval` registered (ticket bought): the pseudonym's and its meter's wallets, both funded with
    gas money."""
    assert _one(market, pn.buy_ticket(market.prosumers[0], address, interval)).ok
    registration = _blindly_signed(market, address, _registrar(market, address), 0, interval)
    pseudonym = market.chain.wallet(pn.pseudonym_account(market.prosumers[0].account.key, interval))
    *funded, registered = market.mine([_fund(market, pseudonym.address), _fund(market, registration.meter),
                                       pn.register(market.outsider, address, registration)])
    assert all(r.ok for r in funded) and registered.ok and pseudonym.address == registration.pseudonym
    return pseudonym, market.chain.wallet(pn.meter_account(market.meters[0].account.key, interval))


@pytest.mark.parametrize("is_ask", [True, False])
def test_a_pseudonym_orders_only_in_its_own_interval_directly_or_relayed(is_ask):
    """An old pseudonym could otherwise flood later books with phantom supply no reading would ever settle."""
    market, address = _scene()
    pseudonym, _ = _registered_pseudonym(market, address, 1)
    order = dict(is_ask=is_ask, energy_wh=1000, price_wei_per_wh=10**13)
    for interval in (2, 3):
        before = _accounts_state(market, (pseudonym.address,))
        refused = _one(market, mk.submit_order(pseudonym, market.addresses, interval, **order))
        assert refused.revert_reason == "settlement: pseudonym outside its interval" and not refused.logs
        assert _accounts_state(market, (pseudonym.address,)) == before
        signed = sign_order(pseudonym.account, market.chain.chain_id, market.addresses.auction, interval=interval,
                            **order)
        relayed = _one(market, mk.submit_signed_orders(market.operator, market.addresses, interval, [signed]))
        rejected = [e for e in map(market.chain.decode, relayed.logs) if e is not None and e.event == "OrderRejected"]
        assert relayed.ok and [e.args["reason"] for e in rejected] == ["settlement: pseudonym outside its interval"]
        assert market.read("Settlement", "lock_wei", interval, pseudonym.address) == 0
    assert market.read("Settlement", "trades_in", pseudonym.address, 1)
    assert not market.read("Settlement", "trades_in", pseudonym.address, 0)
    assert market.read("Settlement", "trades_in", market.prosumers[1].address, 7)      # anyone else: every interval
    assert _one(market, mk.submit_order(pseudonym, market.addresses, 1, **order)).ok        # its own interval


def test_a_pseudonym_withdraws_its_bond_only_once_its_interval_is_settled():
    """Its bond pays its bill first: a pseudonym that left before could not be charged (it names no one)."""
    market, address = _scene()
    pseudonym, meter = _registered_pseudonym(market, address, 1)
    refused = _one(market, mk.withdraw(pseudonym, market.addresses, BOND_WEI))
    assert refused.revert_reason == "settlement: pseudonym not settled" and not refused.logs
    assert market.read("Settlement", "credit_wei", pseudonym.address) == BOND_WEI
    for interval in range(2):
        assert market.clear(interval, mk.Book((), ())).ok
    assert _post(market, meter, 1, (1000, 0, 0, 0)).ok                       # its bill of interval 1, from the bond
    left_wei = market.read("Settlement", "credit_wei", pseudonym.address)
    assert 0 < left_wei < BOND_WEI
    assert _one(market, mk.withdraw(pseudonym, market.addresses, left_wei)).ok
    assert market.read("GridToken", "balanceOf", pseudonym.address) == left_wei
    assert_tokens_conserved(market, address, [pseudonym.address])


def test_a_ticket_bought_after_a_pair_beyond_the_tickets_repays_the_reserve():
    """The registrar registers a pair before anyone bought a ticket (the reserve pays its bond); the tickets bought
    afterwards repay it, so the reserve pays once per pair beyond the tickets and no bond is stranded."""
    market, address = _scene()
    a = market.addresses
    assert all(r.ok for r in market.mine([market.call_tx(market.operator, "GridToken", "mint",
                                                          market.operator.address, 3 * BOND_WEI)]))
    assert _one(market, fx.approve(market.operator, a.token, address, 3 * BOND_WEI)).ok
    assert _one(market, signed_call(market.operator, address, pn.CONTRACT, "fund_reserve", 3 * BOND_WEI,
                                    gas=pn.GAS_FUND)).ok
    (own,) = _registrars_own_pairs(market, address, 1)
    assert _one(market, pn.register(market.outsider, address, own)).ok
    assert pn.read(market.chain, address, "reserve_wei") == 2 * BOND_WEI
    assert all(r.ok for r in market.mine([pn.buy_ticket(market.prosumers[i], address, 1) for i in (0, 1)]))
    assert pn.read(market.chain, address, "reserve_wei") == 3 * BOND_WEI           # the first ticket repaid it
    registrar = _registrar(market, address)
    pairs = [_blindly_signed(market, address, registrar, i, 1) for i in (0, 1)]
    assert all(r.ok for r in market.mine([pn.register(market.outsider, address, p) for p in pairs]))
    assert pn.read(market.chain, address, "reserve_wei") == 2 * BOND_WEI           # one pair beyond two tickets
    assert market.read("GridToken", "balanceOf", address) == 2 * BOND_WEI          # the reserve, nothing stranded
    assert_tokens_conserved(market, address, [own.pseudonym, *(p.pseudonym for p in pairs)])
