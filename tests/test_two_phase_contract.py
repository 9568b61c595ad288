"""Two-phase bilateral trades: prepared with both sides' locks, committed only on both meters' confirmation, rolled
back after the deadline; hand-computed cases and the contract against its Python reference under hypothesis."""

from __future__ import annotations

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from gridledger.contracts import flexibility as flex
from gridledger.contracts import two_phase as tp
from gridledger.contracts.reference import TokenEscrow
from gridledger.contracts.two_phase_reference import Status, TwoPhaseModel
from tests.contract_helpers import CENT_PER_KWH, Market, new_market, timeline

TOKENS_WEI = 10 * 10**18
"""What each prosumer withdraws from the Settlement into its wallet and approves to the contract."""
PRICE = 20 * CENT_PER_KWH
HOUR_S = 3600


def _scene() -> tuple[Market, str]:
    market = new_market(3)
    address = tp.deploy_two_phase(market.chain, market.operator, market.addresses.registry, market.addresses.token)
    txs = [market.call_tx(p, "Settlement", "withdraw", TOKENS_WEI) for p in market.prosumers]
    txs += [flex.approve(p, market.addresses.token, address, TOKENS_WEI) for p in market.prosumers]
    assert all(r.ok for r in market.mine(txs))
    return market, address


def _one(market: Market, raw: bytes, timestamp: int | None = None):
    (receipt,) = market.mine([raw], timestamp)
    return receipt


def _balances(market: Market, address: str) -> list[int]:
    return [market.read("GridToken", "balanceOf", a) for a in (*(p.address for p in market.prosumers), address)]


def test_a_trade_pays_the_seller_only_when_both_meters_confirm():
    market, address = _scene()
    buyer, seller = market.prosumers[0], market.prosumers[1]
    deadline = market.chain.timestamp + HOUR_S
    value = 2000 * PRICE                                            # 2 kWh at 0.20 token/kWh = 0.4 token
    proposed = _one(market, tp.propose(buyer, address, b"t1".ljust(32, b"\0"), seller=seller.address,
                                       energy_wh=2000, price_wei_per_wh=PRICE, deadline_timestamp=deadline))
    assert proposed.ok and proposed.gas_used < tp.GAS_PROPOSE
    trade_id = b"t1".ljust(32, b"\0")
    assert _one(market, tp.accept(seller, address, trade_id)).ok
    assert _balances(market, address) == [TOKENS_WEI - value, TOKENS_WEI - value, TOKENS_WEI, 2 * value]
    assert _one(market, tp.confirm(market.meters[1], address, trade_id, 1999)).revert_reason == \
        "trade: metered below traded"
    assert _one(market, tp.confirm(market.meters[2], address, trade_id, 2000)).revert_reason == \
        "trade: caller is not a side's meter"
    assert _one(market, tp.confirm(market.meters[1], address, trade_id, 2100)).ok
    assert tp.read(market.chain, address, "status", trade_id) == Status.PREPARED      # one side is not enough
    committed = _one(market, tp.confirm(market.meters[0], address, trade_id, 2000))
    assert committed.ok and committed.gas_used < tp.GAS_CONFIRM
    assert tp.read(market.chain, address, "status", trade_id) == Status.COMMITTED
    assert _balances(market, address) == [TOKENS_WEI - value, TOKENS_WEI + value, TOKENS_WEI, 0]
    assert _one(market, tp.roll_back(market.outsider, address, trade_id), deadline).revert_reason == "trade: not open"


def test_a_crash_between_the_phases_rolls_back_at_the_deadline_and_nothing_is_paid_twice():
    """Prepared, one meter confirmed, then the other side's federate dies: after the deadline anyone rolls it back and
    both get their locks; the late meter's confirmation and a second roll-back are refused."""
    market, address = _scene()
    buyer, seller = market.prosumers[0], market.prosumers[1]
    deadline = market.chain.timestamp + HOUR_S
    trade_id = b"crash".ljust(32, b"\0")
    assert _one(market, tp.propose(buyer, address, trade_id, seller=seller.address, energy_wh=500,
                                   price_wei_per_wh=PRICE, deadline_timestamp=deadline)).ok
    assert _one(market, tp.accept(seller, address, trade_id)).ok
    assert _one(market, tp.confirm(market.meters[1], address, trade_id, 500)).ok
    before_deadline = _one(market, tp.roll_back(market.outsider, address, trade_id), deadline - 1)
    assert before_deadline.revert_reason == "trade: deadline not passed"
    rolled = _one(market, tp.roll_back(market.outsider, address, trade_id), deadline)
    assert rolled.ok and rolled.gas_used < tp.GAS_ROLL_BACK
    assert _balances(market, address) == [TOKENS_WEI, TOKENS_WEI, TOKENS_WEI, 0]
    assert _one(market, tp.confirm(market.meters[0], address, trade_id, 500)).revert_reason == "trade: not prepared"
    assert _one(market, tp.roll_back(market.outsider, address, trade_id)).revert_reason == "trade: not open"


def _id(n: int) -> bytes:
    return n.to_bytes(32, "big")


ACTIONS = st.one_of(
    st.tuples(st.just("propose"), st.integers(0, 3), st.integers(0, 3), st.integers(0, 3000),
              st.sampled_from([PRICE, PRICE, 1, 10**18]), st.sampled_from([600, HOUR_S, HOUR_S, 0, 8 * 86400])),
    st.tuples(st.just("cancel"), st.integers(0, 3), st.sampled_from(["buyer", "seller", "outsider"])),
    st.tuples(st.just("accept"), st.integers(0, 3), st.sampled_from(["seller", "seller", "buyer", "outsider"])),
    st.tuples(st.just("confirm"), st.integers(0, 3), st.sampled_from(["buyer", "seller", "outsider"]),
              st.integers(0, 3000)),
    st.tuples(st.just("roll_back"), st.integers(0, 3)),
    st.tuples(st.just("wait"), st.sampled_from([1, 599, 600, HOUR_S])),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(ACTIONS, min_size=1, max_size=16))
@example([("propose", 0, 1, 500, PRICE, 600), ("accept", 0, "seller"), ("wait", 600), ("roll_back", 0)])
@example([("propose", 0, 1, 500, PRICE, 600), ("accept", 0, "seller"), ("confirm", 0, "seller", 500),
          ("confirm", 0, "buyer", 501)])
@example([("propose", 1, 2, 900, PRICE, HOUR_S), ("cancel", 1, "seller"), ("cancel", 1, "buyer"),
          ("accept", 1, "seller")])
def test_the_contract_is_its_reference_tokens_are_conserved_and_open_trades_roll_back_after_the_deadline(actions):
    """Accounts 0-2 are prosumers (3 is the outsider); trade ids 0-3, each proposed by the account of its number.
    A later action names a trade and a role (its buyer, its seller, the outsider). After the run every trade still
    open is rolled back once its deadline has passed, and every token is back with its owner or paid for a
    committed trade."""
    market, address = _scene()
    accounts = [*market.prosumers, market.outsider]
    meter_of_account = {p.address: m for p, m in zip(market.prosumers, market.meters)}
    model = TwoPhaseModel(
        prosumers={p.address for p in market.prosumers},
        meter_of={m.address: p.address for m, p in zip(market.meters, market.prosumers)},
        tokens=TokenEscrow(balance={p.address: TOKENS_WEI for p in market.prosumers},
                           allowance={p.address: TOKENS_WEI for p in market.prosumers}))
    by_address = {a.address: a for a in accounts}

    def party(trade: int, role: str):
        t = model.trades.get(_id(trade))
        return market.outsider if t is None or role == "outsider" else by_address[getattr(t, role)]

    for now, kind, args in timeline(actions, market.chain.timestamp):
        action = (kind, *args)
        if kind == "propose":
            who, seller, energy, price, ahead = args
            raw = tp.propose(accounts[who], address, _id(who), seller=accounts[seller].address, energy_wh=energy,
                             price_wei_per_wh=price, deadline_timestamp=now + ahead)
            expected = model.propose(now, accounts[who].address, _id(who), accounts[seller].address, energy, price,
                                     now + ahead)
        elif kind == "cancel":
            sender = party(*args)
            raw, expected = tp.cancel(sender, address, _id(args[0])), model.cancel(sender.address, _id(args[0]))
        elif kind == "accept":
            sender = party(*args)
            raw, expected = tp.accept(sender, address, _id(args[0])), model.accept(now, sender.address, _id(args[0]))
        elif kind == "confirm":
            trade, role, metered = args
            meter = meter_of_account.get(party(trade, role).address, market.outsider)
            raw = tp.confirm(meter, address, _id(trade), metered)
            expected = model.confirm(now, meter.address, _id(trade), metered)
        else:
            raw, expected = tp.roll_back(market.outsider, address, _id(args[0])), model.roll_back(now, _id(args[0]))
        receipt = _one(market, raw, now)
        assert (None if receipt.ok else receipt.revert_reason) == expected, action
        assert _balances(market, address) == [*(model.tokens.balance[p.address] for p in market.prosumers),
                                              model.locked_wei()]
    late = market.chain.timestamp + 8 * 86400                      # past every deadline (at most 7 days ahead)
    for trade_id in list(model.trades):
        if model.trades[trade_id].status in (Status.PROPOSED, Status.PREPARED):
            assert _one(market, tp.roll_back(market.outsider, address, trade_id), late).ok
            assert model.roll_back(late, trade_id) is None
            late += 1
    assert _balances(market, address) == [*(model.tokens.balance[p.address] for p in market.prosumers), 0]
    paid = {p.address: 0 for p in market.prosumers}
    for t in model.trades.values():
        if t.status == Status.COMMITTED:
            paid[t.seller] += t.value_wei
            paid[t.buyer] -= t.value_wei
    assert _balances(market, address)[:-1] == [TOKENS_WEI + paid[p.address] for p in market.prosumers]
