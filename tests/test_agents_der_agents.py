"""The DER agents' facade: what they sign per action, in which order, and what they make of the ledger's messages."""

import dataclasses

import numpy as np
import pytest
import xarray as xr

from gridledger.agents.bilateral import pairs, trade_id
from gridledger.agents.der_agents import DerAgents
from gridledger.agents.orders import opening_orders, zic_orders
from gridledger.agents.prosumer import expected_exports_wh
from gridledger.agents.source_choosers import pv_choosers
from gridledger.contracts.client import encode_call
from gridledger.contracts.market import LotState
from gridledger.contracts.mechanisms import MECHANISMS
from gridledger.messages import encode
from gridledger.results import PARTS_DIR
from gridledger.schedule import DerAction
from gridledger.study import SourceChoice
from gridledger.study_privacy import TwoPhase
from gridledger.units import price_wei_per_wh
from tests.agents_der_helpers import AUCTION, CHARGING, FLEX, SECRET, SETTLEMENT, TOKEN, decoded, notice, small_scenario

NOBODY = "0x" + "00" * 20
SOURCE_CHOICE = "0x" + "12" * 20
TWO_PHASE = "0x" + "21" * 20
K = 1  # the interval traded; in small_scenario p01 and p04 (PV) sell, p02 and p03 buy


def agents_for(mechanism: str, sc=None, **services) -> DerAgents:
    agents = DerAgents(sc or small_scenario(mechanism=mechanism), SECRET)
    agents.connect(notice(mechanism, **services))
    return agents


def receipt(agents, i, nonce, included):
    return {"tx_hash": "0x01", "sender": agents.accounts[i].address, "nonce": nonce, "status": 0,
            "included": included, "revert_reason": "VickreyAuction: late", "gas_used": 0}


def lots_message(agents, reserve_per_kwh=0.08):
    """One 800 Wh lot of p01 at the feed-in tariff, which every buyer's ZI-C limit reaches."""
    lot = LotState(4, agents.accounts[0].address, 800, price_wei_per_wh(reserve_per_kwh), NOBODY, 0)
    return [("ledger/tx", encode("lots", interval=K, lots=[dataclasses.asdict(lot)]))]


def test_book_orders_are_signed_in_prosumer_order_recorded_and_noted_for_their_receipts():
    agents = agents_for("uniform-double-auction")
    txs = [decoded(tx) for tx in agents.market_txs(DerAction(0.0, None, "orders", K))]
    orders = zic_orders(agents.sc, K)
    assert [tx.sender for tx in txs] == [a.address for a in agents.accounts]   # all four have something to trade
    assert [tx.nonce for tx in txs] == [0, 0, 0, 0]
    assert [o.is_ask for o in orders] == [True, False, False, True]
    assert txs[1].to == AUCTION
    assert txs[1].data == encode_call("DoubleAuction", "submit_order", K, False, orders[1].energy_wh,
                                      orders[1].price_wei_per_wh)
    assert agents.orders.energy_wh[K].tolist() == [orders[0].energy_wh, -orders[1].energy_wh,
                                                   -orders[2].energy_wh, orders[3].energy_wh]
    assert agents.sent_for == {(i, 0): K for i in range(4)}


@pytest.mark.parametrize("mechanism, function", [("merit-order", "submit_offer"), ("english", "post_lot")])
def test_where_buyers_do_not_order_only_the_sellers_sign_at_the_interval_start(mechanism, function):
    agents = agents_for(mechanism)
    txs = [decoded(tx) for tx in agents.market_txs(DerAction(0.0, None, "orders", K))]
    assert [tx.sender for tx in txs] == [agents.accounts[0].address, agents.accounts[3].address]
    ask = zic_orders(agents.sc, K)[0]
    assert txs[0].data == encode_call(MECHANISMS[mechanism].contract, function, K, ask.energy_wh,
                                      ask.price_wei_per_wh)
    assert agents.orders.energy_wh[K, 1:3].tolist() == [0, 0]


def test_vickrey_buyers_commit_and_a_commit_that_never_made_a_block_is_not_revealed_and_its_nonce_reused():
    agents = agents_for("vickrey")
    agents.handle(lots_message(agents))
    commits = [decoded(tx) for tx in agents.market_txs(DerAction(60.0, None, "bid", K))]
    assert [tx.sender for tx in commits] == [agents.accounts[1].address, agents.accounts[2].address]
    assert agents.orders.energy_wh[K, 1:3].tolist() == [-800, -800]   # the lot's energy, bought
    agents.handle([("ledger/tx", encode("receipts", receipts=[receipt(agents, 1, 0, included=False)]))])
    assert agents.rejected[K].tolist() == [0, 1, 0, 0]
    assert agents.wallets[1].nonce == 0
    reveals = [decoded(tx) for tx in agents.market_txs(DerAction(840.0, None, "reveal", K))]
    assert [(tx.sender, tx.nonce) for tx in reveals] == [(agents.accounts[2].address, 1)]


def test_a_rejected_transaction_that_was_mined_keeps_its_nonce_spent():
    agents = agents_for("uniform-double-auction")
    agents.market_txs(DerAction(0.0, None, "orders", K))
    agents.handle([("ledger/tx", encode("receipts", receipts=[receipt(agents, 3, 0, included=True)]))])
    assert agents.rejected[K].tolist() == [0, 0, 0, 1]
    assert agents.wallets[3].nonce == 1


def test_a_transaction_is_let_go_once_its_receipt_is_in_so_a_year_of_them_is_not_kept():
    agents = agents_for("uniform-double-auction")
    agents.market_txs(DerAction(0.0, None, "orders", K))
    done = [receipt(agents, 0, 0, included=True) | {"status": 1}, receipt(agents, 3, 0, included=True)]
    agents.handle([("ledger/tx", encode("receipts", receipts=done))])
    assert agents.sent_for == {(1, 0): K, (2, 0): K}
    assert agents.rejected[K].tolist() == [0, 0, 0, 1]


def test_english_buyers_bid_the_lot_reserve_and_record_the_lot():
    agents = agents_for("english")
    agents.handle(lots_message(agents))
    txs = [decoded(tx) for tx in agents.market_txs(DerAction(60.0, None, "bid", K))]
    assert [tx.sender for tx in txs] == [agents.accounts[1].address, agents.accounts[2].address]
    assert txs[0].data == encode_call("EnglishAuction", "bid", 4, price_wei_per_wh(0.08))
    assert agents.orders.price_per_kwh[K, 1] == pytest.approx(0.08)


def test_cleared_positions_drive_the_battery_setpoint():
    agents = agents_for("uniform-double-auction")
    address = agents.accounts[1].address        # p02: a battery, no PV
    agents.handle([("ledger/tx", encode("cleared", interval=0, positions_wh={address: 100}))])
    assert agents.position_wh[0].tolist() == [0, 100, 0, 0]
    devices = agents.devices
    setpoints = agents.setpoints(0)
    # p02 sold 100 Wh over 900 s = 0.4 kW and has no PV: its battery discharges load + 0.4 kW (within its rating)
    expected_kw = -(devices.load_kw[0, 1] + 0.4)
    assert setpoints["battery_p_mw"][1] == pytest.approx(expected_kw / 1000)


def test_pv_owners_approve_bonds_offer_to_requests_in_their_zone_and_curtail_what_is_awarded():
    agents = agents_for("uniform-double-auction", flexibility=True)
    assert [decoded(tx).sender for tx in agents.opening()] == [agents.accounts[0].address,
                                                                 agents.accounts[3].address]
    zone = {str(agents.sc.prosumers[0].bus): 0.01}       # p01's bus only
    request = {"request_id": 5, "interval": 0, "zone": zone, "p_w": 2000, "price_cap_wei_per_wh": 3 * 10**14,
               "window_s": 900, "close_after": 0}
    agents.handle([("ledger/tx", encode("flex_requests", requests=[request]))])
    [offer] = [decoded(tx) for tx in agents.flex_txs(0)]
    assert (offer.sender, offer.to, offer.nonce) == (agents.accounts[0].address, FLEX, 1)  # nonce 0 was the bond
    assert agents.flex.offer_w[0].tolist() == [2000, 0, 0, 0]     # 150 kWp expects far more than 2 kW
    awards = [{"request_id": 5, "interval": 0, "p_w": {agents.accounts[0].address: 1500}}]
    agents.handle([("ledger/tx", encode("flex_awards", awards=awards))])
    setpoints = agents.setpoints(0)
    assert setpoints["pv_curtailed_p_mw"].tolist() == [0.0015, 0.0, 0.0, 0.0]
    assert setpoints["pv_p_mw"][0] == pytest.approx((agents.devices.pv_kw[0, 0] - 1.5) / 1000)


def evening_agents() -> DerAgents:
    sc = small_scenario(start="2024-01-17T18:00:00", prosumers={"ev": {"share": 1.0}})
    return agents_for("uniform-double-auction", sc=sc, charging=True)


def test_evs_request_charging_after_the_offers_and_follow_their_admissions():
    agents = evening_agents()
    requests = agents.devices.evs.requests(0)
    txs = [decoded(tx) for tx in agents.flex_txs(0)]
    assert [tx.sender for tx in txs] == [agents.accounts[r.owner].address for r in requests]
    assert {tx.to for tx in txs} == {CHARGING} and requests
    admitted = requests[0].owner
    agents.handle([("ledger/tx", encode("charging", window=0,
                                        admitted_w={agents.accounts[admitted].address: 2000}))])
    agents.setpoints(0)
    # coordinated: the admitted EV draws its 2 kW admission (its departure is hours away: no safety net),
    # the others wait
    assert agents.devices.ev_kw[0, admitted] == pytest.approx(2.0)
    assert agents.devices.ev_kw[0].sum() == pytest.approx(2.0)


def test_one_action_sends_market_then_charging_transactions_and_returns_the_step_setpoints():
    agents = evening_agents()
    outbox = agents.act(DerAction(0.0, step=0, market="orders", interval=K, flex_interval=K))
    senders = [decoded(tx).sender for tx in outbox.txs]
    placed = opening_orders(zic_orders(agents.sc, K), MECHANISMS["uniform-double-auction"])
    assert senders[:len(placed)] == [agents.accounts[i].address for i, _ in placed]
    assert {decoded(tx).to for tx in outbox.txs[len(placed):]} == {CHARGING}
    assert set(outbox.setpoints) == {"load_p_mw", "load_q_mvar", "pv_p_mw", "battery_p_mw", "pv_curtailed_p_mw"}
    assert agents.act(DerAction(300.0, step=1)).txs == []


def test_results_part_holds_orders_rejections_and_flexibility_only_with_its_market(tmp_path):
    agents = agents_for("uniform-double-auction")
    agents.market_txs(DerAction(0.0, None, "orders", K))
    agents.handle([("ledger/tx", encode("receipts", receipts=[receipt(agents, 2, 0, included=True)]))])
    agents.setpoints(0)
    agents.part().write(tmp_path, complete=False)
    with xr.open_dataset(tmp_path / PARTS_DIR / "der.nc", engine="h5netcdf") as part:
        assert part["orders_rejected"].values[K].tolist() == [0, 0, 1, 0]
        assert part["order_energy_wh"].values[K].tolist() == agents.orders.energy_wh[K].tolist()
        assert (part.attrs["steps_completed"], part.attrs["complete"]) == (1, 0)
        assert "flex_offer_w" not in part and "ev_p_mw" not in part
        np.testing.assert_allclose(part["battery_p_mw"].values[0], agents.devices.battery_p_kw[0] / 1000)
    flex_agents = agents_for("uniform-double-auction", flexibility=True)
    flex_agents.part().write(tmp_path, complete=True)
    with xr.open_dataset(tmp_path / PARTS_DIR / "der.nc", engine="h5netcdf") as part:
        assert "flex_offer_w" in part and "flex_awarded_w" in part


def test_without_the_services_nothing_is_approved_or_requested_and_no_inverter_settings_are_sent():
    agents = agents_for("uniform-double-auction")
    assert agents.opening() == [] and agents.flex_txs(0) == [] and agents.inverter_settings() is None


def test_results_part_holds_the_ev_sessions_and_shiftable_loads_when_the_study_has_them(tmp_path):
    sc = small_scenario(start="2024-01-17T18:00:00",
                        prosumers={"ev": {"share": 1.0},
                                   "flexload": {"share": 1.0, "energy_kwh": 0.5, "earliest_h": 18.0,
                                                "latest_end_h": 18.5}})
    agents = agents_for("uniform-double-auction", sc=sc)
    agents.setpoints(0)
    agents.part().write(tmp_path, complete=False)
    with xr.open_dataset(tmp_path / PARTS_DIR / "der.nc", engine="h5netcdf") as part:
        assert sorted(part["ev_owner"].values.tolist()) == ["p01", "p02", "p03", "p04"]
        np.testing.assert_allclose(part["ev_p_mw"].values[0], agents.devices.ev_kw[0] / 1000)
        # each owner's 0.5 kWh cycle at 2 kW fits in 18:00-18:30: 0.5 kWh = sum(p_mw) * 1000 * 300 s / 3600
        np.testing.assert_allclose(part["flexload_p_mw"].values.sum(axis=0) * 1000 * 300 / 3600, 0.5)
        # load_p_mw = base + EV + shiftable, all in MW
        np.testing.assert_allclose(part["load_p_mw"].values[0],
                                   (agents.devices.load_kw[0] + agents.devices.ev_kw[0]
                                    + agents.devices.flexload_kw[0]) / 1000)


def test_a_rejected_bond_approval_is_counted_against_interval_0_and_its_nonce_repaired():
    agents = agents_for("uniform-double-auction", flexibility=True)
    agents.opening()
    assert agents.wallets[3].nonce == 1
    bad = dict(receipt(agents, 3, 0, included=False), revert_reason="GridToken: approve to the zero address")
    agents.handle([("ledger/tx", encode("receipts", receipts=[bad]))])
    assert agents.rejected[0].tolist() == [0, 0, 0, 1]
    assert agents.wallets[3].nonce == 0


def test_the_named_buyers_choose_pv_at_the_start_signed_by_themselves():
    sc = small_scenario(market={"source_choice": {"prosumers": ["p02", "p04"]}})
    agents = DerAgents(sc, SECRET)
    agents.connect({**notice("uniform-double-auction"), "source_choice": SOURCE_CHOICE})
    txs = [decoded(tx) for tx in agents.opening()]
    assert [(tx.sender, tx.to, tx.nonce) for tx in txs] == [(agents.accounts[1].address, SOURCE_CHOICE, 0),
                                                            (agents.accounts[3].address, SOURCE_CHOICE, 0)]
    assert all(tx.data == encode_call("SourceChoice", "choose_pv") for tx in txs)


def test_a_share_of_choosers_is_the_same_seeded_pick_everywhere():
    names = [f"p{i:02d}" for i in range(1, 33)]
    picked = pv_choosers(SourceChoice(share=0.25), names, seed=42)
    assert len(picked) == 8 and picked == pv_choosers(SourceChoice(share=0.25), names, seed=42)
    assert picked != pv_choosers(SourceChoice(share=0.25), names, seed=43)
    assert pv_choosers(SourceChoice(prosumers=["p03", "p01"]), names, seed=42) == (0, 2)
    assert pv_choosers(None, names, seed=42) == ()


def test_a_two_phase_participant_approves_its_budget_again_before_the_lock_its_allowance_left_falls_short_of():
    """Budget 0.3 token (3e17 wei) at 0.02 token/kWh (2e13 wei/Wh). p03 buys 8314 Wh of p01 in interval 0 (1.6628e17
    wei locked) and 7965 Wh in interval 1 (1.593e17 wei, more than the 1.3372e17 left): each approves its budget
    again before its second lock, the buyer's proposal and the seller's acceptance. p02 buys 4602 and 4956 Wh of
    p04, 1.9116e17 wei in all: neither approves again."""
    sc = small_scenario()
    sc.study = sc.study.model_copy(update={"two_phase": TwoPhase(share=1.0, budget=0.3)})
    agents = DerAgents(sc, SECRET)
    agents.connect({**notice("uniform-double-auction"), "two_phase": TWO_PHASE})
    assert [(decoded(tx).to, decoded(tx).nonce) for tx in agents.opening()] == [(SETTLEMENT, 0), (TOKEN, 1)] * 4
    approve = encode_call("GridToken", "approve", TWO_PHASE, 3 * 10**17)
    p01, p02, p03, p04 = (a.address for a in agents.accounts)

    def signed(action: DerAction) -> list[tuple[str, str, int]]:
        """(sender, what, nonce) of each transaction the action signs."""
        txs = [decoded(tx) for tx in agents.two_phase_txs(action)]
        assert all(tx.data == approve for tx in txs if tx.to == TOKEN)
        names = {encode_call("TwoPhaseTrade", f, *args)[:4]: f for f, args in
                 (("propose", (b"", NOBODY, 0, 0, 0)), ("accept", (b"",)))}
        return [(tx.sender, "approve" if tx.to == TOKEN else names[tx.data[:4]], tx.nonce) for tx in txs]

    def proposed(k: int) -> None:
        """The ledger tells the sellers of interval `k`'s proposals."""
        address = [a.address for a in agents.accounts]
        trades = [{"trade_id": "0x" + trade_id(k, address[b]).hex(), "buyer": address[b], "seller": address[s],
                   "energy_wh": e} for b, s, e in pairs(expected_exports_wh(sc, k), agents.bilateral, 0.5)]
        assert [t["energy_wh"] for t in trades] == [[8314, 4602], [7965, 4956]][k]
        agents.handle([("ledger/tx", encode("two_phase_events", proposed=trades, prepared=[]))])

    assert signed(DerAction(0.0, None, "orders", 0)) == [(p03, "propose", 2), (p02, "propose", 2)]
    proposed(0)
    assert signed(DerAction(900.0, None, "orders", 1)) == [
        (p01, "accept", 2), (p04, "accept", 2), (p03, "approve", 3), (p03, "propose", 4), (p02, "propose", 3)]
    proposed(1)
    assert signed(DerAction(1200.0)) == [(p01, "approve", 3), (p01, "accept", 4), (p04, "accept", 3)]
    assert agents.sent_for[(0, 3)] == agents.sent_for[(2, 3)] == 1
