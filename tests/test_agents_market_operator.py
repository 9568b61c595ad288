"""The ledger's market operator on an in-process chain: blocks, duties per mechanism, messages, record, conservation.

Each market runs from a four-prosumer scenario (`small_scenario`): p01 and
p04 have PV and a surplus, p02 and p03 a deficit. Times are seconds since
the study start; the gate of interval 1 is at 900 - 60 = 840 s.
"""

from __future__ import annotations

import dataclasses

import pytest
import xarray as xr
from hypothesis import given
from hypothesis import strategies as st

from gridledger.agents.market_operator import (
    MarketOperator,
    by_lane,
    close_auction,
    operator_duties,
    require_ok,
    tokens_conserved,
)
from gridledger.agents.prosumer import expected_exports_wh
from gridledger.agents.relay import signed_orders_message
from gridledger.contracts import market as mk
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.mechanisms import VERIFIED_OFFCHAIN
from gridledger.contracts.typed_data import sign_order
from gridledger.federation import AUDITOR_ENDPOINT, REQUESTOR_ENDPOINT, WORKER_ENDPOINT
from gridledger.interfaces import DER_ENDPOINT, GRID_ENDPOINT, OPERATOR_ENDPOINT
from gridledger.messages import decode
from gridledger.schedule import LedgerAction, ledger_actions
from gridledger.study import parse_study
from tests.ledger_agents_helpers import (
    CENT_PER_KWH,
    LV_FEEDER,
    SECRET,
    meter_wallets,
    prosumer_wallets,
    receipt,
    small_scenario,
)


def twin(operator: MarketOperator) -> Wallet:
    """A second wallet of the operator's account at the same nonce: it signs the same bytes."""
    return Wallet(operator.wallet.account, operator.chain.chain_id, operator.wallet.nonce)


def messages(outbox, kind: str) -> list[tuple[str, dict]]:
    """(destination, body) of the messages of one type."""
    return [(dest, body) for dest, body in ((d, decode(p)) for d, p in outbox) if body["type"] == kind]


@pytest.fixture(scope="module")
def double_auction():
    """A uniform double auction through one interval: orders, gate, readings (outboxes by step)."""
    op = MarketOperator.deploy(small_scenario(), SECRET)
    seller, buyer, *_ = prosumer_wallets(op)
    orders = [mk.submit_order(seller, op.addresses, 1, is_ask=True, energy_wh=500, price_wei_per_wh=10 * CENT_PER_KWH),
              mk.submit_order(buyer, op.addresses, 1, is_ask=False, energy_wh=300, price_wei_per_wh=20 * CENT_PER_KWH)]
    m_seller, m_buyer, *_ = meter_wallets(op)
    # A meter transaction signed with a nonce the chain has not reached: rejected, never included.
    early = mk.post_reading(Wallet(m_seller.account, op.chain.chain_id, 5), op.addresses, 0, import_wh=0,
                            export_wh=0, pv_wh=0, battery_wh=0)
    outboxes = {"deployed": op.deployment()}
    outboxes["orders"] = op.act(LedgerAction(1.0, "mine"), [(DER_ENDPOINT, tx) for tx in orders]
                                + [(GRID_ENDPOINT, early)])
    outboxes["gate"] = op.act(LedgerAction(840.0, "clear", 1), [])
    readings = [mk.post_reading(m_seller, op.addresses, 1, import_wh=0, export_wh=300, pv_wh=300, battery_wh=0),
                mk.post_reading(m_buyer, op.addresses, 1, import_wh=350, export_wh=0, pv_wh=0, battery_wh=0)]
    outboxes["readings"] = op.act(LedgerAction(1801.0, "mine"), [(GRID_ENDPOINT, tx) for tx in readings])
    return op, outboxes


def test_deployment_notice_goes_to_agents_and_meters_without_a_dso(double_auction):
    op, outboxes = double_auction
    assert [dest for dest, _ in outboxes["deployed"]] == [DER_ENDPOINT, GRID_ENDPOINT]
    body = decode(outboxes["deployed"][0][1])
    assert body["addresses"]["auction"] == op.addresses.auction and body["chain_id"] == op.chain.chain_id
    assert body["flexibility"] is None and body["charging"] is None


def test_receipts_go_back_by_name_to_the_endpoint_that_sent_each_transaction(double_auction):
    _, outboxes = double_auction
    receipts = dict((dest, body["receipts"]) for dest, body in messages(outboxes["orders"], "receipts"))
    assert [r["status"] for r in receipts[DER_ENDPOINT]] == [1, 1]
    assert [(r["status"], r["included"]) for r in receipts[GRID_ENDPOINT]] == [(0, False)]


def test_first_block_holds_the_close_of_interval_0_the_orders_and_the_rejected_transaction(double_auction):
    op, _ = double_auction
    # Blocks count to the interval they are mined in: at 1 s the clear of interval 0, 2 orders and
    # 1 rejected reading, at 840 s (still interval 0) the clear of interval 1; at 1801 s (interval 2) 2 readings.
    assert op.record.transactions.tolist() == [1 + 2 + 1 + 1, 0, 2, 0]
    assert op.record.reverted.tolist() == [1, 0, 0, 0]
    assert (op.record.gas_used > 0).tolist() == [True, False, True, False]


def test_gate_clears_the_book_and_sends_the_positions_of_its_trade_events(double_auction):
    op, outboxes = double_auction
    seller, buyer, *_ = prosumer_wallets(op)
    (cleared,) = messages(outboxes["gate"], "cleared")
    assert cleared == (DER_ENDPOINT, {"type": "cleared", "interval": 1,
                                      "positions_wh": {seller.address: 300, buyer.address: -300}})
    assert op.record.position_wh[1].tolist() == [300, -300, 0, 0]
    assert op.record.volume_wh[1] == 300                          # min(ask 500, bid 300)
    assert op.record.price[1] == pytest.approx(0.15)              # midpoint of 0.10 and 0.20 token/kWh


def test_readings_settle_at_the_cleared_price_and_split_the_sold_pv(double_auction):
    op, _ = double_auction
    # Seller: 300 Wh * 0.15 token/kWh = 0.045 received; buyer pays 0.045 and the fee
    # 300 Wh * 0.02 token/kWh = 0.006; its 50 Wh beyond the position cost 50 * 0.30 / 1000 = 0.015.
    assert op.record.settled[1].tolist() == [1, 1, 0, 0]
    assert op.record.p2p[1, :2] == pytest.approx([0.045, -0.045])
    assert op.record.fee[1, :2] == pytest.approx([0.0, 0.006])
    assert op.record.imbalance[1, :2] == pytest.approx([0.0, -0.015])
    assert op.record.sold_wh["pv"][1].tolist() == [300, 0, 0, 0]
    consumed = op.record.consumed_wh()
    # Buyer: p2p part min(300, 350) = 300 Wh, all PV; the other 50 Wh come from the grid.
    assert (consumed["pv"][1, 1], consumed["grid"][1, 1]) == (300, 50)


def test_tokens_are_conserved_on_an_honest_run_and_not_when_perturbed(double_auction):
    op, _ = double_auction
    accounts = [*op.prosumers, op.wallet.address]
    assert op.audit() is True and op.record.supply_conserved
    assert not tokens_conserved(op.chain, op.addresses, op.supply_wei, accounts[1:])   # a credit left out
    mint = op.wallet.transact(op.addresses.token, encode_call("GridToken", "mint", op.addresses.settlement, 1),
                              gas=100_000)
    (receipt,) = op.chain.mine([mint], op.chain.timestamp + 1)
    assert receipt.ok
    assert not tokens_conserved(op.chain, op.addresses, op.supply_wei, accounts)        # supply + 1 wei
    assert not tokens_conserved(op.chain, op.addresses, op.supply_wei + 1, accounts)    # holds 1 wei it owes nobody


def test_book_closes_with_clear_in_the_study_s_clearing_mode():
    op = MarketOperator.deploy(small_scenario(clearing="on-chain"), SECRET)
    expected = mk.clear(twin(op), op.addresses, 2, mk.book(op.chain, op.addresses, 2), mode="on-chain")
    assert close_auction(op.chain, op.wallet, op.addresses, 2, "on-chain") == [expected]


def test_verified_batch_holds_the_signed_orders_until_the_gate_and_sends_them_with_the_clearing():
    op = MarketOperator.deploy(small_scenario(submission="batched", clearing="verified-batch"), SECRET)
    seller, buyer, *_ = prosumer_wallets(op)

    def signed(wallet, is_ask, energy_wh, cents):
        return sign_order(wallet.account, op.chain.chain_id, op.addresses.auction, interval=1, is_ask=is_ask,
                          energy_wh=energy_wh, price_wei_per_wh=cents * CENT_PER_KWH)

    batch = [signed(seller, True, 500, 10), signed(buyer, False, 300, 20), signed(seller, True, 100, 5)]
    mined = op.act(LedgerAction(1.0, "mine"), [(DER_ENDPOINT, signed_orders_message(1, batch))])
    assert messages(mined, "rejected") == []
    assert not mk.read(op.chain, op.addresses.auction, "DoubleAuction", "has_order", 1, seller.address)   # held
    gate = op.act(LedgerAction(840.0, "clear", 1), [])
    assert messages(gate, "cleared") == [(DER_ENDPOINT, {"type": "cleared", "interval": 1,
                                                         "positions_wh": {seller.address: 300, buyer.address: -300}})]
    assert messages(gate, "rejected") == [(DER_ENDPOINT, {"type": "rejected", "interval": 1, "rejections": [
        {"signer": seller.address, "reason": "book: order exists"}]})]
    assert op.record.price[1] == pytest.approx(0.15)
    assert op.held == {}


@pytest.fixture(scope="module")
def merit_order():
    op = MarketOperator.deploy(small_scenario(mechanism="merit-order"), SECRET)
    op.act(LedgerAction(1.0, "mine"), [])
    op.act(LedgerAction(840.0, "clear", 1), [])
    op.act(LedgerAction(901.0, "mine"), [])
    return op


def test_merit_order_operator_posts_the_sum_of_expected_deficits_as_demand(merit_order):
    op = merit_order
    assert expected_exports_wh(op.sc, 1).tolist() == [20490, -10359, -15931, 9912]
    assert expected_exports_wh(op.sc, 2).tolist() == [21322, -10021, -15335, 10536]
    assert mk.read(op.chain, op.addresses.auction, "MeritOrder", "demand_wh", 1) == 10359 + 15931
    assert mk.read(op.chain, op.addresses.auction, "MeritOrder", "demand_wh", 2) == 10021 + 15335


def test_merit_order_duties_post_next_demand_and_settle_the_previous_interval(merit_order):
    op = merit_order
    first = operator_duties(op.sc, twin(op), op.addresses, 0)
    middle = operator_duties(op.sc, twin(op), op.addresses, 1)
    last = operator_duties(op.sc, twin(op), op.addresses, 3)
    nonce = op.wallet.nonce
    demand_2 = 10021 + 15335
    assert first == [mk.post_demand(Wallet(op.wallet.account, op.chain.chain_id, nonce), op.addresses, 1,
                                    demand_wh=10359 + 15931)]                  # interval 0 has no predecessor
    assert middle == [mk.post_demand(Wallet(op.wallet.account, op.chain.chain_id, nonce), op.addresses, 2,
                                     demand_wh=demand_2),
                      mk.settle_operator(Wallet(op.wallet.account, op.chain.chain_id, nonce + 1), op.addresses, 0)]
    assert last == [mk.settle_operator(Wallet(op.wallet.account, op.chain.chain_id, nonce), op.addresses, 2)]


def test_double_auction_operator_has_no_duties(double_auction):
    op, _ = double_auction
    assert operator_duties(op.sc, twin(op), op.addresses, 1) == []


def test_vickrey_auction_is_finalised_with_gas_for_its_lots():
    op = MarketOperator.deploy(small_scenario(mechanism="vickrey"), SECRET)
    seller = prosumer_wallets(op)[0]
    lot = mk.post_lot(seller, op.addresses, 1, energy_wh=500, reserve_price_wei_per_wh=10 * CENT_PER_KWH)
    outbox = op.act(LedgerAction(1.0, "mine", 1), [(DER_ENDPOINT, lot)])
    (_, lots), = messages(outbox, "lots")
    assert [(x["seller"], x["energy_wh"]) for x in lots["lots"]] == [(seller.address, 500)]
    expected = mk.finalise(twin(op), op.addresses, 1, n_lots=1)
    assert close_auction(op.chain, op.wallet, op.addresses, 1, VERIFIED_OFFCHAIN) == [expected]


def test_english_auction_closes_itself_and_its_price_is_the_volume_weighted_lot_price():
    op = MarketOperator.deploy(small_scenario(mechanism="english"), SECRET)
    p01, p02, p03, p04 = prosumer_wallets(op)
    lots = [mk.post_lot(p01, op.addresses, 1, energy_wh=500, reserve_price_wei_per_wh=10 * CENT_PER_KWH),
            mk.post_lot(p04, op.addresses, 1, energy_wh=200, reserve_price_wei_per_wh=12 * CENT_PER_KWH)]
    (_, posted), = messages(op.act(LedgerAction(1.0, "mine", 1), [(DER_ENDPOINT, tx) for tx in lots]), "lots")
    lot_a, lot_b = (x["lot_id"] for x in posted["lots"])
    bids = [mk.bid(p02, op.addresses, lot_a, price_wei_per_wh=10 * CENT_PER_KWH),
            mk.bid(p03, op.addresses, lot_b, price_wei_per_wh=13 * CENT_PER_KWH)]
    op.act(LedgerAction(61.0, "mine", 1), [(DER_ENDPOINT, tx) for tx in bids])
    assert close_auction(op.chain, op.wallet, op.addresses, 1, VERIFIED_OFFCHAIN) == []
    (_, cleared), = messages(op.act(LedgerAction(840.0, "clear", 1), []), "cleared")
    assert cleared["positions_wh"] == {p01.address: 500, p02.address: -500, p03.address: -200, p04.address: 200}
    assert op.record.volume_wh[1] == 700
    assert op.record.price[1] == pytest.approx(76 / 700)          # (500 * 0.10 + 200 * 0.13) / 700 token/kWh


def test_a_failed_duty_is_an_error_naming_what_failed_and_why():
    with pytest.raises(RuntimeError, match=r"^operator transaction reverted: \['boom'\]$"):
        require_ok([receipt(1), receipt(2, ok=False)], "operator transaction")
    require_ok([receipt(1)], "operator transaction")


def test_gate_with_both_desks_tells_agents_allocation_and_awards_and_meters_the_awards():
    op = MarketOperator.deploy(small_scenario(LV_FEEDER, voltage_regulation=True, charging_coordination=True), SECRET)
    op.act(LedgerAction(1.0, "mine"), [])
    outbox = op.act(LedgerAction(840.0, "clear", 1), [])
    # No headroom was posted and no request: nothing to allocate or award, but everyone hears so.
    assert [(dest, decode(p)["type"]) for dest, p in outbox] == [
        (DER_ENDPOINT, "charging"), (DER_ENDPOINT, "flex_awards"), (GRID_ENDPOINT, "flex_awards"),
        (DER_ENDPOINT, "cleared")]
    assert decode(outbox[0][1])["admitted_w"] == {} and decode(outbox[1][1])["awards"] == []
    assert op.audit() is True


def test_write_exports_the_chain_and_the_ledger_part(double_auction, tmp_path):
    op, _ = double_auction
    op.write(tmp_path, complete=True)
    assert {p.name for p in (tmp_path / "chain").iterdir()} == {"blocks.jsonl", "receipts.jsonl", "events.jsonl"}
    with xr.open_dataset(tmp_path / "parts" / "ledger.nc") as part:
        assert part.attrs["complete"] == 1 and part.attrs["mechanism"] == "uniform-double-auction"
        assert part["position_wh"].values[1].tolist() == [300, -300, 0, 0]


def test_received_transactions_are_mined_agents_then_meters_then_dso_then_auditor_then_data_each_endpoint_in_arrival_order():
    received = [(WORKER_ENDPOINT, b"w"), (AUDITOR_ENDPOINT, b"f"), (OPERATOR_ENDPOINT, b"d"), (GRID_ENDPOINT, b"m1"),
                ("somebody/else", b"x"), (REQUESTOR_ENDPOINT, b"r"), (DER_ENDPOINT, b"a1"), (GRID_ENDPOINT, b"m2"),
                (DER_ENDPOINT, b"a2")]
    lanes = by_lane(received)
    assert lanes == {
        "agents": [(DER_ENDPOINT, b"a1"), (DER_ENDPOINT, b"a2"), ("somebody/else", b"x")],
        "meters": [(GRID_ENDPOINT, b"m1"), (GRID_ENDPOINT, b"m2")],
        "dso": [(OPERATOR_ENDPOINT, b"d")],
        "auditor": [(AUDITOR_ENDPOINT, b"f")],
        "data": [(REQUESTOR_ENDPOINT, b"r"), (WORKER_ENDPOINT, b"w")],
    }
    assert list(lanes) == ["agents", "meters", "dso", "auditor", "data"]


ENDPOINTS = (DER_ENDPOINT, GRID_ENDPOINT, OPERATOR_ENDPOINT, AUDITOR_ENDPOINT, REQUESTOR_ENDPOINT, WORKER_ENDPOINT,
             "somebody/else")


@given(st.lists(st.sampled_from(ENDPOINTS), max_size=12), st.randoms(use_true_random=False))
def test_the_lanes_do_not_depend_on_how_the_endpoints_messages_interleave(sources, rng):
    """Each endpoint's messages keep their order; shuffling which endpoint's message arrives next changes nothing."""
    sent = [(source, f"{source}#{sources[:i].count(source)}".encode()) for i, source in enumerate(sources)]
    queues = {source: [m for m in sent if m[0] == source] for source in ENDPOINTS}
    interleaved = []
    while any(queues.values()):
        interleaved.append(queues[rng.choice([s for s in ENDPOINTS if queues[s]])].pop(0))
    assert by_lane(interleaved) == by_lane(sent)


def test_a_transaction_above_its_lane_s_cap_comes_back_refused_to_its_sender_with_its_nonce_unused():
    op = MarketOperator.deploy(small_scenario(), SECRET)
    seller, *_ = prosumer_wallets(op)
    m_seller, *_ = meter_wallets(op)
    greedy_reading = m_seller.transact(op.addresses.settlement, b"", gas=op.lanes["meters"].tx_gas_cap + 1)
    order = mk.submit_order(seller, op.addresses, 1, is_ask=True, energy_wh=500, price_wei_per_wh=10 * CENT_PER_KWH)
    outbox = op.act(LedgerAction(1.0, "mine"), [(GRID_ENDPOINT, greedy_reading), (DER_ENDPOINT, order)])
    receipts = dict((dest, body["receipts"]) for dest, body in messages(outbox, "receipts"))
    assert [r["status"] for r in receipts[DER_ENDPOINT]] == [1]
    (refused,) = receipts[GRID_ENDPOINT]
    assert (refused["included"], refused["nonce"]) == (False, 0)
    cap = op.lanes["meters"].tx_gas_cap
    assert refused["revert_reason"] == f"ledger: gas limit {cap + 1} above cap {cap} of the meters lane"
    assert op.chain.nonce(m_seller.address) == 0


@pytest.mark.parametrize("extra", [{"two_phase": {"share": 1.0}},
                                   {"data_access": {"queries": [{"query": "ev-share"}]}}],
                         ids=["two-phase", "data-access"])
def test_a_merit_order_operator_posts_demand_and_settles_once_per_interval_among_extra_blocks(extra):
    """Two-phase acceptances and the data-access protocol add blocks inside and after the intervals; the operator's
    start-of-interval duties (demand, settling its position) still go once each, so none reverts."""
    base = small_scenario(mechanism="merit-order")
    study = parse_study({**base.study.model_dump(mode="json"), **extra})
    sc = dataclasses.replace(base, study=study)
    op = MarketOperator.deploy(sc, SECRET)
    for action in ledger_actions(study):
        op.act(action, [])                                  # require_ok raises on a reverted duty
    assert len(op.duties_done) == study.n_intervals + 1     # every interval, and the block after the last
