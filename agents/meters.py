"""The prosumers' meters: interval registers from the recorded steps, signed readings and flexibility deliveries.

After every market interval each meter signs a ``Settlement.post_reading``
of its import, export, PV and battery-discharge registers
(`gridledger.grids.metering`, power held constant over each step). With the
voltage-regulation market on, after each awarded window the meter of every
awarded DER signs a ``post_delivery`` of the curtailment the grid measured
(:func:`measured_curtailment_wh`): the DER's available PV over the window
(the baseline, from the same irradiance profile the power flow uses)
minus the PV the power flow shows it injected, never what the DER says it
curtailed. Each meter holds its own key (``meter/<prosumer>``), apart
from its prosumer's. With ``market.submission: batched`` the meters sign
their readings as EIP-712 typed data instead and the grid federate, as an
AMI head-end, sends them in one ``signed_readings`` message for the ledger
to relay (`gridledger.agents.relay`). With ``two_phase`` each side's meter
confirms, after an interval, the prepared bilateral trades of its
prosumer that delivered in it, if it metered at least the traded energy
(`gridledger.agents.bilateral`): the buyer's import, the seller's export
of its own PV (`confirmable_wh`). With ``ancillary`` the meter of every
activated reserve provider and called interruptible load signs, after the
response ended, a ``post_delivery`` of what it measured against its
meter-before baseline (`gridledger.agents.reserve_metering`).

`Meters` is also the grid's inbox: it keeps the flexibility awards and the prepared trades, installs
the inverters the DER federate describes and logs rejected meter
transactions.
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.agents.attacks import AttackPlan, bypass_mw, energy_error_wh, plan_attacks, tamper
from gridledger.agents.bilateral import silent, trade_interval
from gridledger.agents.feeder import install_inverters
from gridledger.agents.feeder_record import FeederRecord
from gridledger.agents.prosumer_limits import prosumer_limits
from gridledger.agents.pseudonym_sides import MeterPseudonyms
from gridledger.agents.relay import signed_readings_message
from gridledger.agents.reserve_metering import ResponseMeters
from gridledger.contracts import flexibility as flex
from gridledger.contracts import two_phase
from gridledger.contracts.client import Wallet
from gridledger.contracts.flex_reference import energy_wh
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import MarketAddresses, post_reading
from gridledger.contracts.mechanisms import BATCHED
from gridledger.contracts.typed_data import sign_reading
from gridledger.grids.metering import interval_energy_wh, source_energy_wh
from gridledger.messages import decode
from gridledger.scenario import Scenario
from gridledger.units import SECONDS_PER_HOUR, W_PER_KW, W_PER_MW, WH_PER_MWH

log = logging.getLogger("gridledger.grid")


def interval_registers(record: FeederRecord, steps: slice, step_s: float) -> dict[str, np.ndarray]:
    """Every meter's ``import_wh``, ``export_wh``, ``pv_wh`` and ``battery_wh`` over the recorded `steps`. [Wh]"""
    registers = dict(zip(("import_wh", "export_wh"), interval_energy_wh(record.export_mw[steps], step_s)))
    registers.update(zip(("pv_wh", "battery_wh"),
                         source_energy_wh(record.pv_p_mw[steps], record.battery_p_mw[steps], step_s)))
    return registers


def readings(meters: list[Wallet], addresses: MarketAddresses, interval: int,
             registers: dict[str, np.ndarray]) -> list[bytes]:
    """Signed ``post_reading`` of each meter (ordered like the prosumers) for `interval`."""
    return [post_reading(meter, addresses, interval, **{name: int(wh[i]) for name, wh in registers.items()})
            for i, meter in enumerate(meters)]


def signed_readings(meters: list[Wallet], addresses: MarketAddresses, interval: int,
                    registers: dict[str, np.ndarray]) -> list[bytes]:
    """One ``signed_readings`` message: each meter's reading for `interval` signed as EIP-712 typed data."""
    return [signed_readings_message(interval, [
        sign_reading(meter.account, meter.chain_id, addresses.settlement, interval=interval,
                     **{name: int(wh[i]) for name, wh in registers.items()})
        for i, meter in enumerate(meters)])]


def confirmable_wh(registers: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What each meter may confirm of an interval's two-phase trades, by side: as ``buyer`` its import, as ``seller``
    the local PV it exported, min(export, PV). [Wh]

    A trade sells local PV; export beyond the interval's PV came from the
    battery, which may have charged from the grid.
    """
    return {"buyer": registers["import_wh"], "seller": np.minimum(registers["export_wh"], registers["pv_wh"])}


def measured_curtailment_wh(available_kw: np.ndarray, injected_mw: np.ndarray, step_s: float, awarded_wh: int) -> int:
    """Curtailment measured over a window against the PV baseline, to the nearest Wh, at most the award. [Wh]

    E = min(awarded_wh, round(sum_t max(0, available_t - injected_t) * step_s / 3600)); a step
    without a power flow value (NaN) counts 0. A DER that injects all its
    available PV delivered nothing, whatever it reports; autonomous
    volt-watt curtailment inside the power flow counts, as it lowers the
    injection the same way.

    Parameters
    ----------
    available_kw : ndarray, shape (steps,)
        PV power the DER could have injected per step: irradiance profile times kWp. [kW]
    injected_mw : ndarray, shape (steps,)
        PV power the solved power flow shows the DER injecting per step. [MW]
    step_s : float
        Duration of each step. [s]
    awarded_wh : int
        Energy of the DER's award over the window, the most it can be paid for. [Wh]
    """
    shortfall_w = np.nan_to_num(np.maximum(0.0, available_kw * W_PER_KW - injected_mw * W_PER_MW))
    return min(awarded_wh, int(round(float(shortfall_w.sum()) * step_s / SECONDS_PER_HOUR)))


def deliveries(meters: list[Wallet], address: str, awarded: list[tuple[int, str, int]], steps: slice,
               record: FeederRecord, available_kw: np.ndarray, step_s: float,
               prosumer_of: dict[str, int], faked: dict[int, float] | None = None) -> list[bytes]:
    """Signed ``post_delivery`` of each awarded DER's meter: its measured curtailment over `steps`. [Wh]

    `awarded` lists (request id, DER address, awarded power [W]) in award
    order; `available_kw` is every prosumer's available PV per step
    (step, prosumer) [kW]; `prosumer_of` maps a DER address to its
    prosumer's position. A tampered meter in `faked` (position -> fraction,
    the ``fake-flexibility`` attack) adds that fraction of its award to
    what it measured, up to the award.
    """
    window_s = int((steps.stop - steps.start) * step_s)
    faked = faked or {}
    txs = []
    for request_id, der, p_w in awarded:
        i = prosumer_of[der]
        awarded_wh = energy_wh(p_w, window_s)
        delivered = measured_curtailment_wh(available_kw[steps, i], record.pv_p_mw[steps, i], step_s, awarded_wh)
        delivered = min(awarded_wh, delivered + round(faked.get(i, 0.0) * awarded_wh))
        txs.append(flex.post_delivery(meters[i], address, request_id, delivered_wh=delivered))
    return txs


class Meters:
    """Every prosumer's meter, its key from the run `secret`, signing for the chain of the deployment `notice`."""

    def __init__(self, sc: Scenario, notice: dict, secret: bytes):
        names = [p.name for p in sc.prosumers]
        self.sc, self.names = sc, names
        self.wallets = [Wallet(derive_account(secret, f"meter/{name}"), notice["chain_id"]) for name in names]
        self.prosumer_of = {derive_account(secret, f"prosumer/{name}").address: i for i, name in enumerate(names)}
        self.addresses = MarketAddresses(**notice["addresses"])
        self.flexibility = notice.get("flexibility")
        self.two_phase = notice.get("two_phase")
        self.prepared: dict[int, list[dict]] = {}
        self.available_kw = sc.pv_pu * np.array([p.pv_kwp for p in sc.prosumers])
        self.awards: dict[int, list[tuple[int, str, int]]] = {}
        self.sign = signed_readings if sc.study.market.submission == BATCHED else readings
        study = sc.study
        self.plan: AttackPlan | None = (plan_attacks(study.attacks, names, study.n_intervals, study.market_interval_s,
                                                     study.seed) if study.attacks else None)
        self.rating_w = np.array([lim.meter_rating_w for lim in prosumer_limits(sc)])
        self.foreign = [Wallet(derive_account(secret, f"foreign/meter/{name}"), notice["chain_id"]) for name in names]
        self.history: list[dict[str, np.ndarray]] = []
        self.pseudonyms = (MeterPseudonyms(sc, secret, notice, [w.account for w in self.wallets])
                           if study.pseudonyms is not None else None)
        self.responses = ResponseMeters(notice.get("reserve"), notice.get("load_shed"), self.prosumer_of,
                                        study.power_flow_step_s)
        # Delayed readings by the interval they go out at: signed then, so the meter's nonces stay in sending order.
        self.delayed: dict[int, list[tuple[list[int], list[Wallet], int, dict[str, np.ndarray]]]] = {}

    def bypass_mw(self, step: int) -> np.ndarray:
        """Load each prosumer draws around its meter at power-flow `step` (``bypass`` attacks). [MW]"""
        if self.plan is None:
            return np.zeros(len(self.wallets))
        return bypass_mw(self.plan, step // self.sc.study.steps_per_interval, self.rating_w)

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Install the inverters the DER federate describes, keep flexibility awards, log rejected meter transactions.

        Awards are kept as interval -> [(request id, DER address, awarded power [W])].
        """
        for _, payload in messages:
            body = decode(payload)
            if body["type"] == "inverters":
                install_inverters(self.sc, body)
            elif body["type"] == "blind_signatures":
                self.pseudonyms.requests.answered(body)
            elif body["type"] == "pseudonyms_registered":
                self.pseudonyms.registered.update(body["meters"])
            elif body["type"] == "two_phase_events":
                for trade in body["prepared"]:
                    self.prepared.setdefault(trade_interval(trade["trade_id"]), []).append(trade)
            elif body["type"] in ("reserve_awards", "reserve_activations", "shed_calls"):
                self.responses.handle(body)
            elif body["type"] == "flex_awards":
                for award in body["awards"]:
                    self.awards.setdefault(award["interval"], []).extend(
                        (award["request_id"], der, p_w) for der, p_w in award["p_w"].items())
            for rejection in body.get("rejections", []):
                log.error("signed reading of %s for interval %d rejected: %s", rejection["signer"], body["interval"],
                          rejection["reason"])
            for receipt in body.get("receipts", []):
                if not receipt["status"]:
                    log.error("meter transaction %s rejected: %s", receipt["tx_hash"], receipt["revert_reason"])

    def close_interval(self, step: int, record: FeederRecord) -> list[bytes]:
        """At the first step of an interval, the previous interval's readings and deliveries, signed; with
        ``pseudonyms`` also the meters' requests and halves (`MeterPseudonyms.at_interval_start`).

        The registers go into `record`; at other steps nothing is signed.
        """
        study = self.sc.study
        per_interval = study.steps_per_interval
        if step % per_interval:
            return []
        pseudonymous = self.pseudonyms.at_interval_start(step // per_interval) if self.pseudonyms else []
        if not step:
            return pseudonymous
        interval = step // per_interval - 1
        window = slice(step - per_interval, step)
        registers = interval_registers(record, window, study.power_flow_step_s)
        if self.plan is None:
            wallets = self.pseudonyms.reading_wallets(interval, self.wallets) if self.pseudonyms else self.wallets
            txs = self.sign(wallets, self.addresses, interval, registers)
            record.meter(interval, registers)
            faked = {}
        else:
            txs, faked = self._tampered(interval, window, registers, record)
        return (pseudonymous + txs + deliveries(self.wallets, self.flexibility, self.awards.pop(interval, []), window, record,
                                 self.available_kw, study.power_flow_step_s, self.prosumer_of, faked)
                + self._confirmations(interval, registers)
                + self.responses.deliveries(step * study.power_flow_step_s, record.export_mw, self.wallets))

    def _confirmations(self, interval: int, registers: dict[str, np.ndarray]) -> list[bytes]:
        """Each side's confirmation of `interval`'s prepared two-phase trades: its meter's if it metered at least the
        traded energy (`confirmable_wh`); none from a silent meter (``two_phase``)."""
        study = self.sc.study
        confirmable = confirmable_wh(registers)
        txs = []
        for trade in self.prepared.pop(interval, []):
            tid = bytes.fromhex(trade["trade_id"][2:])
            for side in ("buyer", "seller"):
                i = self.prosumer_of[trade[side]]
                metered_wh = int(confirmable[side][i])
                if metered_wh >= trade["energy_wh"] and not silent(study, self.names[i], interval):
                    txs.append(two_phase.confirm(self.wallets[i], self.two_phase, tid, metered_wh))
        return txs

    def _tampered(self, interval: int, window: slice, true_wh: dict[str, np.ndarray],
                  record: FeederRecord) -> tuple[list[bytes], dict[int, float]]:
        """Readings under the study's attacks: tampered registers, foreign keys, delays; the ground truth recorded."""
        study, plan = self.sc.study, self.plan
        hours = study.market_interval_s / SECONDS_PER_HOUR
        possible_wh = self.available_kw[window].mean(axis=0) * W_PER_KW * hours
        reported = tamper(plan, interval, true_wh, self.history, self.rating_w, possible_wh)
        self.history.append(true_wh)
        bypass_wh = np.rint(bypass_mw(plan, interval, self.rating_w) * WH_PER_MWH * hours)
        record.meter(interval, reported)
        error_wh = energy_error_wh(plan, interval, true_wh, reported, bypass_wh)
        record.attacked(interval, plan.kind_code()[interval], error_wh, true_wh["import_wh"] + bypass_wh.astype(np.int64),
                        true_wh["export_wh"])
        attacks = [plan.on(interval, i) for i in range(len(self.wallets))]
        wallets = [self.foreign[i] if a is not None and a.kind == "foreign-key" else w
                   for i, (a, w) in enumerate(zip(attacks, self.wallets))]
        now = [i for i, a in enumerate(attacks) if a is None or a.kind != "delay"]
        txs = self._signed(now, wallets, interval, reported)
        txs += [tx for held in self.delayed.pop(interval, []) for tx in self._signed(*held)]
        for i, a in enumerate(attacks):
            if a is not None and a.kind == "delay":
                self.delayed.setdefault(interval + a.intervals, []).append(([i], wallets, interval, reported))
        faked = {i: a.fraction for i, a in enumerate(attacks) if a is not None and a.kind == "fake-flexibility"}
        return txs, faked

    def _signed(self, which: list[int], wallets: list[Wallet], interval: int,
                registers: dict[str, np.ndarray]) -> list[bytes]:
        """The readings of the meters at positions `which`, signed by `wallets`."""
        if not which:
            return []
        return self.sign([wallets[i] for i in which], self.addresses, interval,
                         {name: values[which] for name, values in registers.items()})
