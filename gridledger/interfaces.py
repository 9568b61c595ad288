"""The federation's interfaces as data: HELICS configs generated from a study.

Every publication, subscription and endpoint of every federate is declared
here, with its type, unit and default, and `check_wiring` proves before
launch that each subscription has exactly one publisher and that each
message destination exists. Keys follow one scheme:

    der/<prosumer>/<quantity>      prosumer device setpoints (DER -> grid, operator)
    grid/bus/<bus>/vm_pu           bus voltage magnitude (grid -> any)
    grid/line/<line>/loading_percent
    grid/substation/p_mw, q_mvar, pl_mw
    ledger/tx                      endpoint: signed raw transactions in
    der/agents, grid/meters        endpoints: receipts and market results out
    operator/dso                   endpoint: the DSO's flexibility requests and charging
                                   headroom (optional federate; subscribes to bus voltages
                                   and the substation import it watches)

Times (seconds since study start) at which each federate acts are fixed by
`gridledger.schedule`; all federates are uninterruptible and request only
those times, so the order of events is the same on every run.
"""

from __future__ import annotations

from dataclasses import dataclass

from gridledger.study import Study

DER_SETPOINTS = (
    ("load_p_mw", "MW"),
    ("load_q_mvar", "MVAr"),
    ("pv_p_mw", "MW"),
    ("battery_p_mw", "MW"),
    ("pv_curtailed_p_mw", "MW"),
)
LEDGER_ENDPOINT = "ledger/tx"
DER_ENDPOINT = "der/agents"
GRID_ENDPOINT = "grid/meters"
OPERATOR_ENDPOINT = "operator/dso"
FEDERATES = ("grid", "ledger", "der")
"""Federates of every study; `federate_names` adds the operator when a study needs it."""


def federate_names(study: Study) -> tuple[str, ...]:
    """The federates a study runs: the operator (DSO) joins for voltage regulation or charging coordination."""
    market = study.market
    return (*FEDERATES, "operator") if market.voltage_regulation or market.charging_coordination else FEDERATES


@dataclass(frozen=True)
class Topology:
    """Names the interfaces depend on: prosumers, buses and lines of the feeder."""

    prosumers: tuple[str, ...]
    buses: tuple[int, ...]
    lines: tuple[int, ...]


def setpoint_key(prosumer: str, quantity: str) -> str:
    """HELICS key of one prosumer device setpoint."""
    return f"der/{prosumer}/{quantity}"


def _pub(key: str, unit: str) -> dict:
    return {"key": key, "type": "double", "unit": unit, "global": True}


def _sub(key: str, unit: str, default: float) -> dict:
    return {"key": key, "type": "double", "unit": unit, "default": default, "required": True}


def federate_configs(study: Study, topology: Topology, broker_port: int) -> dict[str, dict]:
    """HELICS JSON configs for every federate of the study, keyed by federate name."""
    common = {
        "core_type": study.helics.core_type,
        "core_init_string": f"--federates=1 --broker_address=tcp://127.0.0.1:{broker_port}",
        "uninterruptible": True,
        "terminate_on_error": True,
        "log_level": "warning",
    }
    if study.helics.core_type == "inproc":
        common["core_init_string"] = "--federates=1"
    setpoint_pubs = [
        _pub(setpoint_key(p, q), unit) for p in topology.prosumers for q, unit in DER_SETPOINTS
    ]
    setpoint_subs = [
        _sub(setpoint_key(p, q), unit, 0.0) for p in topology.prosumers for q, unit in DER_SETPOINTS
    ]
    grid_pubs = (
        [_pub(f"grid/bus/{b}/vm_pu", "pu") for b in topology.buses]
        + [_pub(f"grid/line/{line}/loading_percent", "%") for line in topology.lines]
        + [_pub("grid/substation/p_mw", "MW"), _pub("grid/substation/q_mvar", "MVAr"),
           _pub("grid/substation/pl_mw", "MW")]
    )
    configs = {
        "grid": {
            **common,
            "name": "grid",
            "publications": grid_pubs,
            "subscriptions": setpoint_subs,
            "endpoints": [{"name": GRID_ENDPOINT, "global": True}],
        },
        "der": {
            **common,
            "name": "der",
            "publications": setpoint_pubs,
            "endpoints": [{"name": DER_ENDPOINT, "global": True}],
        },
        "ledger": {
            **common,
            "name": "ledger",
            "endpoints": [{"name": LEDGER_ENDPOINT, "global": True}],
        },
    }
    if "operator" in federate_names(study):
        configs["operator"] = {
            **common,
            "name": "operator",
            "subscriptions": [_sub(f"grid/bus/{b}/vm_pu", "pu", 1.0) for b in topology.buses]
            + [_sub("grid/substation/p_mw", "MW", 0.0)],
            "endpoints": [{"name": OPERATOR_ENDPOINT, "global": True}],
        }
    return configs


class WiringError(ValueError):
    """Federate configs whose interfaces do not connect."""


def check_wiring(configs: dict[str, dict]) -> None:
    """Every subscription has exactly one publisher with the same unit; keys are unique."""
    publishers: dict[str, tuple[str, str]] = {}
    for fed, cfg in configs.items():
        for pub in cfg.get("publications", []):
            if pub["key"] in publishers:
                raise WiringError(f"{pub['key']} is published by both {publishers[pub['key']][0]} and {fed}")
            publishers[pub["key"]] = (fed, pub["unit"])
    for fed, cfg in configs.items():
        for sub in cfg.get("subscriptions", []):
            if sub["key"] not in publishers:
                raise WiringError(f"{fed} subscribes to {sub['key']}, which no federate publishes")
            if publishers[sub["key"]][1] != sub["unit"]:
                raise WiringError(
                    f"{fed} expects {sub['key']} in {sub['unit']}, "
                    f"{publishers[sub['key']][0]} publishes {publishers[sub['key']][1]}"
                )
    endpoints = [ep["name"] for cfg in configs.values() for ep in cfg.get("endpoints", [])]
    if len(set(endpoints)) != len(endpoints):
        raise WiringError(f"duplicate endpoint names: {sorted(endpoints)}")
