"""The meters (`gridledger.agents.meters`): interval registers, signed readings and deliveries, the grid's inbox.

No HELICS and no chain: signed transactions are taken apart with
eth-account (who signed) and RLP (to whom, which calldata), and their
calldata is compared with `encode_call` of the hand-computed arguments.
baran-wu-short: 32 prosumers, 5-min steps, 3 steps per 15-min interval.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
from eth_utils import to_checksum_address

from gridledger.agents.bilateral import trade_id
from gridledger.agents.feeder_record import FeederRecord
from gridledger.agents.meters import Meters, deliveries, interval_registers, measured_curtailment_wh, readings
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import MarketAddresses
from gridledger.messages import encode
from gridledger.scenario import build_scenario
from gridledger.study import load_study
from gridledger.study_audit import Attack
from tests.secret_helpers import fixed_secret
from tests.signed_tx import SignedTx, taken_apart

CHAIN_ID = 1337
SECRET = fixed_secret(7)
SETTLEMENT = to_checksum_address("0x" + "22" * 20)
FLEXIBILITY = to_checksum_address("0x" + "55" * 20)
NOTICE = {"type": "deployed", "chain_id": CHAIN_ID, "flexibility": FLEXIBILITY, "charging": None,
          "addresses": {"registry": to_checksum_address("0x" + "11" * 20), "settlement": SETTLEMENT,
                        "token": to_checksum_address("0x" + "33" * 20),
                        "auction": to_checksum_address("0x" + "44" * 20)}}
TWO_PHASE = to_checksum_address("0x" + "66" * 20)
STEP_S = 300


@pytest.fixture
def sc():
    return build_scenario(load_study("studies/baran-wu-short.yaml"), with_devices=True)


def filled_record(sc) -> FeederRecord:
    """Steps 0-2 (interval 0): prosumer 0 exports 6 kW, imports 3 kW, exports 1.2 kW; PV 12, 6, 0 kW;
    battery -2.4 (discharge), +3 (charge), -1.2 kW; curtailed PV as the DER reports it 3 kW, nan,
    6 kW (not used for money). Everybody else: 0."""
    record = FeederRecord(sc)
    n = len(sc.prosumers)
    for name in ("export_mw", "pv_p_mw", "battery_p_mw", "pv_curtailed_p_mw"):
        getattr(record, name)[:3] = np.zeros((3, n))
    record.export_mw[:3, 0] = [0.006, -0.003, 0.0012]
    record.pv_p_mw[:3, 0] = [0.012, 0.006, 0.0]
    record.battery_p_mw[:3, 0] = [-0.0024, 0.003, -0.0012]
    record.pv_curtailed_p_mw[:3, 0] = [0.003, np.nan, 0.006]
    return record


def test_interval_registers_integrate_each_direction_and_source(sc):
    """1 MW for 300 s = 1e6 * 300 / 3600 = 83 333.3 Wh.
    export: (6 + 1.2) kW * 300 s = 7.2e-3 * 83 333.3 = 600 Wh; import: 3e-3 * 83 333.3 = 250 Wh;
    PV: 18e-3 * 83 333.3 = 1500 Wh; battery discharge: (2.4 + 1.2)e-3 * 83 333.3 = 300 Wh."""
    registers = interval_registers(filled_record(sc), slice(0, 3), STEP_S)
    assert {name: int(wh[0]) for name, wh in registers.items()} == {
        "import_wh": 250, "export_wh": 600, "pv_wh": 1500, "battery_wh": 300}
    assert all(int(wh[1]) == 0 for wh in registers.values())


def test_readings_are_signed_by_each_meter_and_carry_its_registers(sc):
    meters = [Wallet(derive_account(SECRET, f"meter/{name}"), CHAIN_ID) for name in ("a", "b")]
    registers = {"import_wh": np.array([250, 0]), "export_wh": np.array([600, 5]), "pv_wh": np.array([1500, 9]),
                 "battery_wh": np.array([300, 0])}
    txs = readings(meters, MarketAddresses(**NOTICE["addresses"]), 4, registers)
    # post_reading(interval, import_wh, export_wh, pv_wh, battery_wh)
    assert taken_apart(txs[0]) == SignedTx(meters[0].address, CHAIN_ID, 0, SETTLEMENT,
                                           encode_call("Settlement", "post_reading", 4, 250, 600, 1500, 300))
    assert taken_apart(txs[1]) == SignedTx(meters[1].address, CHAIN_ID, 0, SETTLEMENT,
                                           encode_call("Settlement", "post_reading", 4, 0, 5, 9, 0))


def available(sc) -> np.ndarray:
    """Available PV (step, prosumer): prosumer 0 could have made 15, 9 and 6 kW in steps 0-2. [kW]"""
    kw = np.zeros((sc.study.n_steps, len(sc.prosumers)))
    kw[:3, 0] = [15.0, 9.0, 6.0]
    return kw


def test_measured_curtailment_is_available_minus_injected_pv_capped_at_the_award():
    """Available 15, 9, 6 kW; injected 12, 6, 0 kW: (3 + 3 + 6) kW * 300 s / 3600 = 1000 Wh."""
    injected_mw = np.array([0.012, 0.006, 0.0])
    assert measured_curtailment_wh(np.array([15.0, 9.0, 6.0]), injected_mw, STEP_S, 2000) == 1000
    assert measured_curtailment_wh(np.array([15.0, 9.0, 6.0]), injected_mw, STEP_S, 800) == 800
    # A step without a power flow (NaN) counts nothing: (3 + 6) kW * 300 s = 750 Wh.
    assert measured_curtailment_wh(np.array([15.0, 9.0, 6.0]), np.array([0.012, np.nan, 0.0]), STEP_S, 2000) == 750
    # Injecting more than the baseline is no negative delivery; 0.1 kW over 5 min is 8.33 Wh, nearest 8.
    assert measured_curtailment_wh(np.array([5.0, 0.1]), np.array([0.006, 0.0]), STEP_S, 2000) == 8


def test_a_der_that_injects_all_its_available_pv_delivered_nothing():
    """Whatever the DER reports curtailing, injecting its whole baseline measures 0 Wh."""
    pv_kw = np.array([15.0, 9.0, 6.0])
    assert measured_curtailment_wh(pv_kw, pv_kw / 1000, STEP_S, 10**6) == 0


def test_deliveries_are_signed_by_the_awarded_ders_meter_with_the_measured_energy(sc):
    record = filled_record(sc)
    meters = [Wallet(derive_account(SECRET, f"meter/{p.name}"), CHAIN_ID) for p in sc.prosumers]
    der = derive_account(SECRET, "prosumer/p01").address
    # 1000 Wh measured as above; a 2000 W award over the 900 s window caps it at 500 Wh.
    txs = deliveries(meters, FLEXIBILITY, [(3, der, 5000), (4, der, 2000)], slice(0, 3), record, available(sc),
                     STEP_S, {der: 0})
    assert taken_apart(txs[0]) == SignedTx(meters[0].address, CHAIN_ID, 0, FLEXIBILITY,
                                           encode_call("VoltageRegulation", "post_delivery", 3, 1000))
    assert taken_apart(txs[1]) == SignedTx(meters[0].address, CHAIN_ID, 1, FLEXIBILITY,
                                           encode_call("VoltageRegulation", "post_delivery", 4, 500))


def test_first_step_of_an_interval_signs_the_previous_intervals_readings_then_deliveries(sc):
    meters = Meters(sc, NOTICE, SECRET)
    # The baseline is the irradiance profile the power flow uses times each prosumer's kWp.
    np.testing.assert_array_equal(meters.available_kw, sc.pv_pu * np.array([p.pv_kwp for p in sc.prosumers]))
    meters.available_kw = available(sc)
    record = filled_record(sc)
    p01 = derive_account(SECRET, "prosumer/p01").address
    meters.handle([("ledger/tx", encode("flex_awards", awards=[{"interval": 0, "request_id": 2, "p_w": {p01: 4000}}]))])
    assert meters.close_interval(0, record) == [] and meters.close_interval(2, record) == []
    txs = meters.close_interval(3, record)
    assert len(txs) == 32 + 1
    p01_meter = derive_account(SECRET, "meter/p01").address
    assert taken_apart(txs[0]) == SignedTx(p01_meter, CHAIN_ID, 0, SETTLEMENT,
                                           encode_call("Settlement", "post_reading", 0, 250, 600, 1500, 300))
    # p01's meter signs its measured delivery (1000 Wh as above) after its reading: nonce 1.
    assert taken_apart(txs[-1]) == SignedTx(p01_meter, CHAIN_ID, 1, FLEXIBILITY,
                                            encode_call("VoltageRegulation", "post_delivery", 2, 1000))
    assert [int(record.meter_wh[name][0, 0]) for name in ("import_wh", "export_wh", "pv_wh", "battery_wh")] == [
        250, 600, 1500, 300]
    assert meters.awards == {}


def test_a_seller_exporting_more_than_its_pv_confirms_only_its_pv(sc):
    """Interval 0: p02 exports 6 kW from 2.4 kW of PV and 3.6 kW of battery, 1500 Wh of which 600 Wh PV; p03 and
    p04 import 4 kW, 1000 Wh. p02 sold 800 Wh to p03 and 500 Wh to p04: the 800 Wh trade is more than its PV and
    only the buyer confirms it; the 500 Wh one both sides confirm, the seller with its 600 Wh of PV."""
    meters = Meters(sc, {**NOTICE, "two_phase": TWO_PHASE}, SECRET)
    record = filled_record(sc)
    record.export_mw[:3, 1:4] = [0.006, -0.004, -0.004]
    record.pv_p_mw[:3, 1] = 0.0024
    record.battery_p_mw[:3, 1] = -0.0036
    p02, p03, p04 = (derive_account(SECRET, f"prosumer/{name}").address for name in ("p02", "p03", "p04"))
    trades = [{"trade_id": "0x" + trade_id(0, buyer).hex(), "buyer": buyer, "seller": p02, "energy_wh": energy_wh}
              for buyer, energy_wh in ((p03, 800), (p04, 500))]
    meters.handle([("ledger/tx", encode("two_phase_events", proposed=[], prepared=trades))])
    confirmations = [taken_apart(tx) for tx in meters.close_interval(3, record) if taken_apart(tx).to == TWO_PHASE]
    # confirm(trade_id, metered_wh), each meter after its reading (nonce 1)
    assert confirmations == [
        SignedTx(derive_account(SECRET, "meter/p03").address, CHAIN_ID, 1, TWO_PHASE,
                 encode_call("TwoPhaseTrade", "confirm", trade_id(0, p03), 1000)),
        SignedTx(derive_account(SECRET, "meter/p04").address, CHAIN_ID, 1, TWO_PHASE,
                 encode_call("TwoPhaseTrade", "confirm", trade_id(0, p04), 1000)),
        SignedTx(derive_account(SECRET, "meter/p02").address, CHAIN_ID, 1, TWO_PHASE,
                 encode_call("TwoPhaseTrade", "confirm", trade_id(0, p04), 600))]


def test_inbox_installs_inverters_and_logs_rejected_meter_transactions(sc, caplog):
    meters = Meters(sc, NOTICE, SECRET)
    settings = {"prosumers": ["p02"], "s_rated_kva": [148.5], "p_rated_kw": [135.0], "volt_var": None,
                "volt_watt": None}
    receipt = {"sender": "0x" + "11" * 20, "nonce": 0, "included": True, "gas_used": 50_000}
    receipts = [{**receipt, "tx_hash": "0xaa", "status": 1, "revert_reason": None},
                {**receipt, "tx_hash": "0xbb", "status": 0, "revert_reason": "Settlement: reading already posted"}]
    with caplog.at_level(logging.ERROR, logger="gridledger.grid"):
        meters.handle([("ledger/tx", encode("inverters", **settings)),
                       ("ledger/tx", encode("receipts", receipts=receipts))])
    assert len(sc.net.controller) == 1
    assert [r.getMessage() for r in caplog.records] == [
        "meter transaction 0xbb rejected: Settlement: reading already posted"]


def test_a_meter_faking_flexibility_adds_its_fraction_of_the_award_up_to_the_award(sc):
    record = filled_record(sc)
    meters = [Wallet(derive_account(SECRET, f"meter/{p.name}"), CHAIN_ID) for p in sc.prosumers]
    der = derive_account(SECRET, "prosumer/p01").address
    # 1000 Wh measured; a 8000 W award over 900 s is 2000 Wh: +0.25 x 2000 = 1500; +0.75 x 2000 caps at 2000.
    txs = deliveries(meters, FLEXIBILITY, [(3, der, 8000)], slice(0, 3), record, available(sc), STEP_S, {der: 0},
                     faked={0: 0.25})
    capped = deliveries(meters, FLEXIBILITY, [(3, der, 8000)], slice(0, 3), record, available(sc), STEP_S, {der: 0},
                        faked={0: 0.75})
    assert taken_apart(txs[0]).data == encode_call("VoltageRegulation", "post_delivery", 3, 1500)
    assert taken_apart(capped[0]).data == encode_call("VoltageRegulation", "post_delivery", 3, 2000)


def test_tampering_meters_sign_with_a_foreign_key_hold_delayed_readings_and_record_the_truth(sc):
    study = sc.study.model_copy(update={"attacks": [
        Attack(kind="foreign-key", prosumers=["p02"]),
        Attack(kind="delay", prosumers=["p03"], intervals=1),
        Attack(kind="over-report-export", prosumers=["p04"], fraction_of_rating=0.1)]})
    sc.study = study
    meters = Meters(sc, NOTICE, SECRET)
    record = filled_record(sc)
    first = meters.close_interval(3, record)
    senders = [taken_apart(tx).signer for tx in first]
    assert derive_account(SECRET, "foreign/meter/p02").address in senders
    assert derive_account(SECRET, "meter/p02").address not in senders
    assert derive_account(SECRET, "meter/p03").address not in senders and len(first) == 31
    assert record.attack_error_wh[0, 3] == round(0.1 * meters.rating_w[3] * 0.25) and record.attack_kind[0, 1] == 4
    record.export_mw[3:6] = 0.0
    record.pv_p_mw[3:6] = record.battery_p_mw[3:6] = 0.0
    second = meters.close_interval(6, record)
    p03 = derive_account(SECRET, "meter/p03").address
    late = [taken_apart(tx).data for tx in second if taken_apart(tx).signer == p03]
    assert late == [encode_call("Settlement", "post_reading", 0, 0, 0, 0, 0)]   # interval 0's, held one interval


def test_a_delayed_reading_is_signed_when_it_goes_out_so_the_meter_s_nonces_follow_the_sending_order(sc):
    """The window ends after interval 0: its held reading goes out with interval 1's on-time one, after it; signed
    at closing, the held one would carry the lower nonce and the chain would refuse the on-time one."""
    sc.study = sc.study.model_copy(update={"attacks": [Attack(kind="delay", prosumers=["p03"], intervals=1,
                                                              end_s=900)]})
    meters = Meters(sc, NOTICE, SECRET)
    record = filled_record(sc)
    p03 = derive_account(SECRET, "meter/p03").address
    assert [t for t in map(taken_apart, meters.close_interval(3, record)) if t.signer == p03] == []
    for name in ("export_mw", "pv_p_mw", "battery_p_mw"):
        getattr(record, name)[3:6] = 0.0
    sent = [t for t in map(taken_apart, meters.close_interval(6, record)) if t.signer == p03]
    assert [(t.nonce, t.data[4:36]) for t in sent] == [(0, (1).to_bytes(32, "big")), (1, (0).to_bytes(32, "big"))]
