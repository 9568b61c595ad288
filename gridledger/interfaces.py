"""HELICS configs generated from the federation's declaration, and the wiring check before launch.

`gridledger.federation` declares every federate, value and message once;
`federate_configs` turns it into one HELICS JSON config per federate of a
study, and `check_wiring` proves before launch that each subscription has
exactly one publisher with the same unit and that every endpoint message
in use can leave its sender and reach each receiver. Keys follow one scheme:

    der/<prosumer>/<quantity>      prosumer device setpoints (DER -> grid)
    grid/bus/<bus>/vm_pu           bus voltage magnitude (grid -> operator)
    grid/line/<line>/loading_percent
    grid/substation/p_mw, q_mvar, pl_mw
    ledger/tx                      endpoint: signed raw transactions in, results out
    der/agents, grid/meters        endpoints: transactions out, receipts and market results in
    operator/dso                   endpoint of the optional DSO federate
    coordinator/zones              endpoint of the zones' coordinator (a ledger per zone)
    auditor/checks                 endpoint of the auditor (`audit`): sensors and settled readings in

Times (seconds since study start) at which each federate acts are fixed by
`gridledger.schedule`; all federates are uninterruptible and request only
those times, so the order of events is the same on every run.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from gridledger.federation import (
    DER_ENDPOINT,
    DER_SETPOINTS,
    FEDERATES,
    FEDERATION,
    GRID_ENDPOINT,
    LEDGER_ENDPOINT,
    MESSAGES,
    OPERATOR_ENDPOINT,
    VALUES,
    Value,
    endpoint_owner,
    federate_names,
    is_sharded,
    setpoint_key,
    zone_ledger,
    zone_ledger_endpoint,
)
from gridledger.study import Study

# Shells and the core import these from here; they are declared in `gridledger.federation`.
__all__ = [
    "DER_ENDPOINT", "DER_SETPOINTS", "FEDERATES", "GRID_ENDPOINT", "LEDGER_ENDPOINT", "OPERATOR_ENDPOINT",
    "Topology", "WiringError", "check_wiring", "core_init_string", "federate_configs", "federate_names", "setpoint_key",
]


@dataclass(frozen=True)
class Topology:
    """Names the interfaces depend on: prosumers, buses and lines of the feeder, and its zones with prosumers."""

    prosumers: tuple[str, ...]
    buses: tuple[int, ...]
    lines: tuple[int, ...]
    zones: tuple[str, ...] = ()

    def elements(self, over: str | None) -> tuple:
        """What a key placeholder (``"prosumer"``, ``"bus"``, ``"line"``) ranges over; (None,) for a single key."""
        return {None: (None,), "prosumer": self.prosumers, "bus": self.buses, "line": self.lines}[over]


def _keys(values: list[Value], topology: Topology) -> list[tuple[Value, str]]:
    """(value, key) of every value over the topology, element by element (all of a prosumer's setpoints together)."""
    by_placeholder: dict[str | None, list[Value]] = {}
    for value in values:
        by_placeholder.setdefault(value.over, []).append(value)
    return [(value, value.key_of(element))
            for over, group in by_placeholder.items() for element in topology.elements(over) for value in group]


def federate_configs(study: Study, topology: Topology, broker_port: int) -> dict[str, dict]:
    """HELICS JSON configs for every federate of the study, keyed by federate name."""
    common = {
        "core_type": study.helics.core_type,
        "uninterruptible": True,
        "terminate_on_error": True,
        "log_level": "warning",
    }
    configs = {}
    for federate in FEDERATION:
        if not federate.runs.holds(study):
            continue
        if federate.name == "ledger" and is_sharded(study):
            for zone in topology.zones:
                core = core_init_string(study.helics.core_type, study.helics.broker_address, broker_port,
                                        study.helics.host_of("ledger"))
                configs[zone_ledger(zone)] = {**common, "core_init_string": core, "name": zone_ledger(zone),
                                              "endpoints": [{"name": zone_ledger_endpoint(zone), "global": True}]}
            continue
        published = _keys([v for v in VALUES if v.publisher == federate.name], topology)
        subscribed = _keys([v for v in VALUES if federate.name in v.subscribers], topology)
        core = core_init_string(study.helics.core_type, study.helics.broker_address, broker_port,
                                study.helics.host_of(federate.name))
        config = {**common, "core_init_string": core, "name": federate.name}
        if published:
            config["publications"] = [{"key": key, "type": v.type, "unit": v.unit, "global": True}
                                      for v, key in published]
        if subscribed:
            config["subscriptions"] = [{"key": key, "type": v.type, "unit": v.unit, "default": v.default,
                                        "required": True} for v, key in subscribed]
        config["endpoints"] = [{"name": federate.endpoint, "global": True}]
        configs[federate.name] = config
    return configs


def core_init_string(core_type: str, broker_address: str, broker_port: int, local_address: str) -> str:
    """A federate core's HELICS init string: connect to the broker there, receive on `local_address`."""
    if core_type == "inproc":
        return "--federates=1"
    return (f"--federates=1 --broker_address=tcp://{broker_address}:{broker_port} "
            f"--local_interface=tcp://{local_address}")


def broker_port_of(init_string: str) -> int:
    """The broker port a `core_init_string` connects to (TCP cores only)."""
    return int(re.search(r"--broker_address=tcp://[^:\s]+:(\d+)", init_string).group(1))


class WiringError(ValueError):
    """Federate configs whose interfaces do not connect."""


def check_wiring(configs: dict[str, dict], study: Study, zones: tuple[str, ...] = ()) -> None:
    """Values and messages connect: each subscription has one publisher of its unit, each message its endpoints.

    Raises
    ------
    WiringError
        Naming the key or message, the federate and what it lacks.
    """
    _check_values(configs)
    endpoints = [ep["name"] for cfg in configs.values() for ep in cfg.get("endpoints", [])]
    if len(set(endpoints)) != len(endpoints):
        raise WiringError(f"duplicate endpoint names: {sorted(endpoints)}")
    _check_messages(configs, study, zones)


def _check_values(configs: dict[str, dict]) -> None:
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


def _check_messages(configs: dict[str, dict], study: Study, zones: tuple[str, ...]) -> None:
    """Every message the study uses leaves from its sender's endpoint and reaches each receiving endpoint.

    A federate the study does not run neither sends nor receives; one it
    runs must have its endpoint in its config whatever the configs hold.
    In a sharded study every zone ledger's endpoint stands for ``ledger/tx``.
    """
    running = set(federate_names(study, zones))

    def endpoints(endpoint: str) -> list[str]:
        sharded = endpoint == LEDGER_ENDPOINT and is_sharded(study)
        return [zone_ledger_endpoint(zone) for zone in zones] if sharded else [endpoint]

    for message in MESSAGES:
        if not message.when.holds(study):
            continue
        for sender in (e for declared in message.senders for e in endpoints(declared)):
            if endpoint_owner(sender) not in running:
                continue
            for receiver in (e for declared in message.receivers for e in endpoints(declared)):
                for role, endpoint in (("send", sender), ("receive", receiver)):
                    owner = endpoint_owner(endpoint)
                    if owner in running and not _has_endpoint(configs.get(owner, {}), endpoint):
                        raise WiringError(f"message {message.kind!r} ({sender} -> {receiver}): federate {owner!r} "
                                          f"has no endpoint {endpoint!r} to {role} it on")


def _has_endpoint(config: dict, endpoint: str) -> bool:
    return any(ep["name"] == endpoint for ep in config.get("endpoints", []))
