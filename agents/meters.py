"""The prosumers' meters: interval registers from the recorded steps, signed readings and flexibility deliveries.

After every market interval each meter signs a ``Settlement.post_reading``
of its import, export, PV and battery-discharge registers
(`gridledger.grids.metering`, power held constant over each step). With the
voltage-regulation market on, after each awarded window the meter of every
awarded DER signs a ``post_delivery`` of the PV energy its inverter
reported curtailing over the window. Each meter holds its own key
(``meter/<prosumer>``), apart from its prosumer's.

`Meters` is also the grid's inbox: it keeps the flexibility awards, installs
the inverters the DER federate describes and logs rejected meter
transactions.
"""

from __future__ import annotations

import logging

import numpy as np

from gridledger.agents.feeder import install_inverters
from gridledger.agents.feeder_record import FeederRecord
from gridledger.contracts import flexibility as flex
from gridledger.contracts.client import Wallet
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import MarketAddresses, post_reading
from gridledger.grids.metering import interval_energy_wh, source_energy_wh
from gridledger.messages import decode
from gridledger.scenario import Scenario
from gridledger.units import SECONDS_PER_HOUR, W_PER_MW

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


def delivered_wh(pv_curtailed_p_mw: np.ndarray, step_s: float) -> int:
    """PV energy curtailed over a window, steps without a value skipped, to the nearest Wh. [Wh]

    Parameters
    ----------
    pv_curtailed_p_mw : ndarray, shape (steps,)
        Curtailed PV power the inverter reported per step. [MW]
    step_s : float
        Duration of each step. [s]
    """
    step_h = step_s / SECONDS_PER_HOUR
    return int(round(float(np.nansum(pv_curtailed_p_mw)) * step_h * W_PER_MW))


def deliveries(meters: list[Wallet], address: str, awarded: list[tuple[int, str]], steps: slice,
               record: FeederRecord, step_s: float, prosumer_of: dict[str, int]) -> list[bytes]:
    """Signed ``post_delivery`` of each awarded DER's meter: its curtailed PV energy over `steps`. [Wh]

    `awarded` lists (request id, DER address) in award order; `prosumer_of`
    maps a DER address to its prosumer's position.
    """
    txs = []
    for request_id, der in awarded:
        i = prosumer_of[der]
        txs.append(flex.post_delivery(meters[i], address, request_id,
                                      delivered_wh=delivered_wh(record.pv_curtailed_p_mw[steps, i], step_s)))
    return txs


class Meters:
    """Every prosumer's meter, its key from the run `secret`, signing for the chain of the deployment `notice`."""

    def __init__(self, sc: Scenario, notice: dict, secret: bytes):
        names = [p.name for p in sc.prosumers]
        self.sc = sc
        self.wallets = [Wallet(derive_account(secret, f"meter/{name}"), notice["chain_id"]) for name in names]
        self.prosumer_of = {derive_account(secret, f"prosumer/{name}").address: i for i, name in enumerate(names)}
        self.addresses = MarketAddresses(**notice["addresses"])
        self.flexibility = notice.get("flexibility")
        self.awards: dict[int, list[tuple[int, str]]] = {}

    def handle(self, messages: list[tuple[str, bytes]]) -> None:
        """Install the inverters the DER federate describes, keep flexibility awards, log rejected meter transactions.

        Awards are kept as interval -> [(request id, DER address)].
        """
        for _, payload in messages:
            body = decode(payload)
            if body["type"] == "inverters":
                install_inverters(self.sc, body)
            elif body["type"] == "flex_awards":
                for award in body["awards"]:
                    self.awards.setdefault(award["interval"], []).extend(
                        (award["request_id"], der) for der in award["p_w"])
            for receipt in body.get("receipts", []):
                if not receipt["status"]:
                    log.error("meter transaction %s rejected: %s", receipt["tx_hash"], receipt["revert_reason"])

    def close_interval(self, step: int, record: FeederRecord) -> list[bytes]:
        """At the first step of an interval, the previous interval's readings and deliveries, signed.

        The registers go into `record`; at other steps nothing is signed.
        """
        study = self.sc.study
        per_interval = study.steps_per_interval
        if not step or step % per_interval:
            return []
        interval = step // per_interval - 1
        window = slice(step - per_interval, step)
        registers = interval_registers(record, window, study.power_flow_step_s)
        txs = readings(self.wallets, self.addresses, interval, registers)
        record.meter(interval, registers)
        return txs + deliveries(self.wallets, self.flexibility, self.awards.pop(interval, []), window, record,
                                study.power_flow_step_s, self.prosumer_of)
