"""The federation declared once, as data: federates, HELICS values and endpoint messages.

After mosaik's ``META``: every federate with its endpoint, every
publication key pattern with its type, unit, default, publisher and
subscribers, and every endpoint message type with its fields (type and
unit), sender, receiving endpoints and the study setting that puts it in
use. The HELICS configs (`gridledger.interfaces`), the wiring check before
launch, the message codec (`gridledger.messages`) and the message table of
``docs/nomenclature.md`` all read this module; none spells an interface
again.

Units of HELICS values are `gridledger.units`' labels (pandapower's
spelling, ``"Mvar"``); units of message fields are spelled as in
``docs/nomenclature.md``; ``""`` marks an identifier, an index or a name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from gridledger.contracts.mechanisms import BATCHED, MECHANISMS, SIGNED_ORDER_CONTRACTS
from gridledger.units import MVAR, MW, PERCENT, PU

if TYPE_CHECKING:
    from gridledger.study import Study

LEDGER_ENDPOINT = "ledger/tx"
DER_ENDPOINT = "der/agents"
GRID_ENDPOINT = "grid/meters"
OPERATOR_ENDPOINT = "operator/dso"
COORDINATOR_ENDPOINT = "coordinator/zones"
AUDITOR_ENDPOINT = "auditor/checks"
REQUESTOR_ENDPOINT = "requestor/queries"
WORKER_ENDPOINT = "worker/compute"
SERVICE_ENDPOINT = "service/crew"


@dataclass(frozen=True)
class When:
    """A study setting under which a federate runs or an interface is in use."""

    setting: str
    """How a study author turns it on, as the docs say it."""
    holds: Callable[[Study], bool]


ALWAYS = When("always", lambda study: True)
VOLTAGE_REGULATION = When("`market.voltage_regulation`", lambda study: study.market.voltage_regulation)
CHARGING_COORDINATION = When("`market.charging_coordination`", lambda study: study.market.charging_coordination)
OPERATOR_RUNS = When(
    "`market.voltage_regulation`, `market.charging_coordination` or `ancillary`",
    lambda study: study.market.voltage_regulation or study.market.charging_coordination
    or study.ancillary is not None,
)
ANCILLARY = When("`ancillary`", lambda study: study.ancillary is not None)
ISLANDING = When("an `events.import_caps` window with `island: true`",
                 lambda study: any(cap.island for cap in study.events.import_caps))
LOT_AUCTION = When("`market.mechanism` is a lot auction",
                   lambda study: MECHANISMS[study.market.mechanism].is_lot_auction)
SIGNED_BATCHES = When("`market.submission` is batched", lambda study: study.market.submission == BATCHED)
SIGNED_ORDERS = When("`market.submission` is batched and `market.mechanism` not a lot auction",
                     lambda study: study.market.submission == BATCHED
                     and MECHANISMS[study.market.mechanism].contract in SIGNED_ORDER_CONTRACTS)
SHARDED = When("`market.sharding: per-zone`", lambda study: study.market.sharding == "per-zone")
AUDITED = When("`audit`", lambda study: study.audit is not None)
DATA_ACCESS = When("`data_access`", lambda study: study.data_access is not None)
EMERGENCY = When("`emergency`", lambda study: study.emergency is not None)
TWO_PHASE = When("`two_phase`", lambda study: study.two_phase is not None)
PSEUDONYMS = When("`pseudonyms`", lambda study: study.pseudonyms is not None)
INVERTER_CURVES = When(
    "`prosumers.pv.inverter.volt_var` or `volt_watt`",
    lambda study: study.prosumers.pv.inverter.volt_var or study.prosumers.pv.inverter.volt_watt,
)


@dataclass(frozen=True)
class Federate:
    """One HELICS federate: its name, its one endpoint and when a study runs it."""

    name: str
    endpoint: str
    runs: When


FEDERATION = (
    Federate("grid", GRID_ENDPOINT, ALWAYS),
    Federate("ledger", LEDGER_ENDPOINT, ALWAYS),
    Federate("der", DER_ENDPOINT, ALWAYS),
    Federate("operator", OPERATOR_ENDPOINT, OPERATOR_RUNS),
    Federate("coordinator", COORDINATOR_ENDPOINT, SHARDED),
    Federate("auditor", AUDITOR_ENDPOINT, AUDITED),
    Federate("requestor", REQUESTOR_ENDPOINT, DATA_ACCESS),
    Federate("worker", WORKER_ENDPOINT, DATA_ACCESS),
    Federate("service", SERVICE_ENDPOINT, EMERGENCY),
)
FEDERATES = tuple(f.name for f in FEDERATION if f.runs is ALWAYS)
"""Federates of every study; `federate_names` adds the operator, the zones' coordinator, the auditor, the data
requestor and its compute worker, and the service crew when a study needs them."""


SHARDING_MODES = ("none", "per-zone")
"""`market.sharding`: one ledger for the feeder, or one ledger federate and chain per zone."""
PER_ZONE = "per-zone"
ZONE_LEDGER_PREFIX = "ledger-"


def is_sharded(study: Study) -> bool:
    """Whether the study runs one ledger per zone (`market.sharding: per-zone`)."""
    return study.market.sharding == PER_ZONE


def zone_ledger(zone: str) -> str:
    """The name of a zone's ledger federate: ``ledger-<zone>``."""
    return f"{ZONE_LEDGER_PREFIX}{zone}"


def zone_ledger_endpoint(zone: str) -> str:
    """The transaction endpoint of a zone's ledger: ``ledger-<zone>/tx``."""
    return f"{zone_ledger(zone)}/tx"


def ledger_endpoint(zone_of: dict[str, str] | None, prosumer: str) -> str:
    """Where a prosumer's transactions (its agent's and its meter's) go: its zone's ledger, or the one ledger.

    `zone_of` maps prosumer name to zone name (`gridledger.roster.Roster.zone_of`)
    in a sharded run, None otherwise.
    """
    return LEDGER_ENDPOINT if zone_of is None else zone_ledger_endpoint(zone_of[prosumer])


def federate_names(study: Study, zones: tuple[str, ...] | None = None) -> tuple[str, ...]:
    """The federates a study runs: the operator (DSO) joins for voltage regulation or charging coordination.

    A sharded study (`market.sharding: per-zone`) runs ``ledger-<zone>``
    for each of the `zones` (the run's zone names, `gridledger.roster.Roster.zones`)
    in place of ``ledger``, and the zones' ``coordinator``; without `zones`
    its ledger is listed as ``ledger``.
    """
    names = []
    for f in FEDERATION:
        if f.runs.holds(study):
            sharded = f.name == "ledger" and is_sharded(study) and zones is not None
            names += [zone_ledger(zone) for zone in zones] if sharded else [f.name]
    return tuple(names)


def federate_kind(name: str) -> str:
    """The federate module a federate name runs: ``ledger`` for ``ledger-<zone>``, else the name itself."""
    return "ledger" if name.startswith(ZONE_LEDGER_PREFIX) else name


def zone_of_federate(name: str) -> str | None:
    """The zone a zone ledger's name holds, None for any other federate."""
    return name[len(ZONE_LEDGER_PREFIX):] if name.startswith(ZONE_LEDGER_PREFIX) else None


def endpoint_owner(endpoint: str) -> str:
    """The federate whose endpoint this is (``ledger-<zone>/tx`` is its zone ledger's)."""
    if endpoint.startswith(ZONE_LEDGER_PREFIX):
        return endpoint.split("/", 1)[0]
    return next(f.name for f in FEDERATION if f.endpoint == endpoint)


@dataclass(frozen=True)
class Value:
    """One HELICS value: a key pattern published by one federate, read by its subscribers.

    ``key`` holds at most one placeholder, ``{prosumer}``, ``{bus}`` or
    ``{line}``, filled with the names of `gridledger.interfaces.Topology`.
    """

    key: str
    unit: str
    default: float
    publisher: str
    subscribers: tuple[str, ...]
    meaning: str
    type: str = "double"

    @property
    def over(self) -> str | None:
        """The placeholder of the key (``"prosumer"``, ``"bus"``, ``"line"``), None for a single key."""
        return self.key.split("{")[1].split("}")[0] if "{" in self.key else None

    @property
    def quantity(self) -> str:
        """The last part of the key: the value's name in `docs/nomenclature.md`."""
        return self.key.rsplit("/", 1)[1]

    def key_of(self, element: str | int | None = None) -> str:
        """The key for one prosumer, bus or line (none for a single key)."""
        return self.key.format(**{self.over: element}) if self.over else self.key


def _setpoint(quantity: str, unit: str, meaning: str) -> Value:
    return Value(f"der/{{prosumer}}/{quantity}", unit, 0.0, "der", ("grid",), meaning)


VALUES = (
    _setpoint("load_p_mw", MW, "prosumer consumption, positive = consuming"),
    _setpoint("load_q_mvar", MVAR, "prosumer reactive consumption"),
    _setpoint("pv_p_mw", MW, "PV output, positive = generating"),
    _setpoint("battery_p_mw", MW, "battery power, positive = charging"),
    _setpoint("pv_curtailed_p_mw", MW, "PV power curtailed for voltage regulation"),
    # Nominal voltage until the grid's first power flow: no false alarm at the operator's start.
    Value("grid/bus/{bus}/vm_pu", PU, 1.0, "grid", ("operator",), "bus voltage magnitude"),
    Value("grid/line/{line}/loading_percent", PERCENT, 0.0, "grid", (), "line loading"),
    Value("grid/substation/p_mw", MW, 0.0, "grid", ("operator",), "import from the external grid"),
    Value("grid/substation/q_mvar", MVAR, 0.0, "grid", (), "reactive import from the external grid"),
    Value("grid/substation/pl_mw", MW, 0.0, "grid", (), "feeder losses"),
)
DER_SETPOINTS = tuple((v.quantity, v.unit) for v in VALUES if v.publisher == "der")
"""(quantity, unit) of each prosumer device setpoint the DER federate publishes every step."""
_VALUE = {v.key: v for v in VALUES}


def setpoint_key(prosumer: str, quantity: str) -> str:
    """HELICS key of one prosumer device setpoint (a quantity of `DER_SETPOINTS`)."""
    return _VALUE[f"der/{{prosumer}}/{quantity}"].key_of(prosumer)


def bus_vm_key(bus: int) -> str:
    """HELICS key of a bus voltage magnitude. [pu]"""
    return _VALUE["grid/bus/{bus}/vm_pu"].key_of(bus)


def line_loading_key(line: int) -> str:
    """HELICS key of a line loading. [%]"""
    return _VALUE["grid/line/{line}/loading_percent"].key_of(line)


SUBSTATION_P_KEY = _VALUE["grid/substation/p_mw"].key
SUBSTATION_Q_KEY = _VALUE["grid/substation/q_mvar"].key
SUBSTATION_PL_KEY = _VALUE["grid/substation/pl_mw"].key


@dataclass(frozen=True)
class Field:
    """One field of a message: JSON type, unit, meaning and, for objects, their own fields.

    ``fields`` are the keys of the object, or of every object of the array,
    the field holds (empty: not checked, as for maps keyed by address).
    """

    name: str
    type: str
    unit: str
    meaning: str
    fields: tuple[Field, ...] = ()


@dataclass(frozen=True)
class Message:
    """One endpoint message type: who sends it to whom, when, with which fields.

    ``encoding`` is ``"json"`` (`gridledger.messages.encode`, ``type`` =
    ``kind``) or ``"raw"`` (signed transaction bytes, no fields).
    """

    kind: str
    senders: tuple[str, ...]
    receivers: tuple[str, ...]
    when: When
    meaning: str
    fields: tuple[Field, ...] = ()
    encoding: str = "json"


TX_SENDERS = (DER_ENDPOINT, GRID_ENDPOINT, OPERATOR_ENDPOINT, AUDITOR_ENDPOINT, REQUESTOR_ENDPOINT, WORKER_ENDPOINT,
              SERVICE_ENDPOINT)
"""Endpoints that send signed transactions, and so get receipts back."""
_INTERVAL = Field("interval", "int", "", "market interval index k")
_RECEIPT = (
    Field("tx_hash", "str", "", "transaction hash, hex"),
    Field("sender", "address or null", "", "signer; null if the bytes did not decode"),
    Field("nonce", "int or null", "", "sender's nonce; null if the bytes did not decode"),
    Field("status", "int", "", "1 = success, 0 = reverted or rejected"),
    Field("included", "bool", "", "mined into a block (false: rejected before execution)"),
    Field("revert_reason", "str or null", "", "the contract's reason string"),
    Field("gas_used", "int", "gas", "gas charged"),
)
_LOT = (
    Field("lot_id", "int", "", "lot number in the interval"),
    Field("seller", "address", "", "prosumer selling the lot"),
    Field("energy_wh", "int", "Wh", "energy of the lot"),
    Field("reserve_price_wei_per_wh", "int", "wei/Wh", "the seller's reserve price"),
    Field("leader", "address", "", "leading bidder; the empty address before a bid leads"),
    Field("price_wei_per_wh", "int", "wei/Wh", "leading price; 0 before a bid leads"),
)
_REQUEST = (
    Field("request_id", "int", "", "the contract's request number"),
    _INTERVAL,
    Field("zone", "{bus: int}", "10⁻⁶ pu/kW", "voltage sensitivity of each zone bus"),
    Field("p_w", "int", "W", "injection reduction requested"),
    Field("price_cap_wei_per_wh", "int", "wei/Wh", "highest offer price accepted"),
    Field("window_s", "int", "s", "length of the delivery window"),
    Field("close_after", "int", "s", "block timestamp after which the request is closed"),
)
_SIGNATURE = (
    Field("v", "int", "", "signature recovery id, 27 or 28"),
    Field("r", "str", "", "signature r, 0x-prefixed hex of 32 bytes"),
    Field("s", "str", "", "signature s, 0x-prefixed hex of 32 bytes"),
)
_SIGNED_ORDER = (
    Field("is_ask", "bool", "", "true to sell, false to buy"),
    Field("energy_wh", "int", "Wh", "energy offered or wanted"),
    Field("price_wei_per_wh", "int", "wei/Wh", "limit price"),
    *_SIGNATURE,
)
_SIGNED_READING = (
    Field("import_wh", "int", "Wh", "energy imported over the interval"),
    Field("export_wh", "int", "Wh", "energy exported over the interval"),
    Field("pv_wh", "int", "Wh", "PV energy produced over the interval"),
    Field("battery_wh", "int", "Wh", "battery energy discharged over the interval"),
    *_SIGNATURE,
)
_REJECTION = (
    Field("signer", "address", "", "account that signed the order or reading (zero: the signature is bad)"),
    Field("reason", "str", "", "the contract's reason, as a direct transaction would have reverted"),
)
_RESIDUAL = (
    Field("account", "address", "", "the order's account"),
    Field("energy_wh", "int", "Wh", "energy the zone's own clearing left unmatched"),
    Field("price_wei_per_wh", "int", "wei/Wh", "the order's limit price"),
)
_SETTLED_READING = (
    _INTERVAL,
    Field("prosumer", "address", "", "the prosumer whose meter's reading was settled"),
    Field("import_wh", "int", "Wh", "import register as settled"),
    Field("export_wh", "int", "Wh", "export register as settled"),
    Field("pv_wh", "int", "Wh", "PV register as settled"),
)
_FLAG = (
    _INTERVAL,
    Field("prosumer", "address", "", "the prosumer whose reading was flagged"),
    Field("flagged_s", "int", "s", "simulation time of the block that mined the flag"),
)
_AWARD = (
    Field("request_id", "int", "", "the contract's request number"),
    _INTERVAL,
    Field("p_w", "{address: int}", "W", "curtailment awarded per DER"),
)
_DATA_REQUEST_ID = Field("request_id", "str", "", "the data request's id, 0x-prefixed hex of 32 bytes")
_DATA_REQUEST = (
    _DATA_REQUEST_ID,
    Field("requestor", "address", "", "who proposed it"),
    Field("code", "int", "", "catalogue code (`gridledger.contracts.catalogue`)"),
    Field("epsilon_milli", "int", "10⁻³", "ε of the noise; 0 for an exact answer"),
    Field("price_per_owner_wei", "int", "wei", "what each approving owner is paid"),
    Field("owners", "[address]", "", "the owners listed"),
    Field("approval_deadline_timestamp", "int", "s", "owners approve before it (Unix time)"),
    Field("result_deadline_timestamp", "int", "s", "the worker posts before it (Unix time)"),
)
_DATA_RESULT = (
    _DATA_REQUEST_ID,
    Field("result_hash", "str", "", "Keccak-256 of the answer, hex"),
    Field("inputs_commitment", "str", "", "Keccak-256 over the owners used and their stores' digests, hex"),
    Field("owners_used", "int", "", "how many owners' data the answer used"),
)
_TWO_PHASE_TRADE = (
    Field("trade_id", "str", "", "the trade's id, 0x-prefixed hex of 32 bytes (`gridledger.agents.bilateral`)"),
    Field("buyer", "address", "", "the buying prosumer"),
    Field("seller", "address", "", "the selling prosumer"),
    Field("energy_wh", "int", "Wh", "the traded energy both meters must confirm"),
)
MESSAGES = (
    Message("transaction", TX_SENDERS, (LEDGER_ENDPOINT,), ALWAYS,
            "a signed raw Ethereum transaction (orders, bids, readings, offers, requests)", encoding="raw"),
    Message("deployed", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT, OPERATOR_ENDPOINT, AUDITOR_ENDPOINT,
                                             REQUESTOR_ENDPOINT, WORKER_ENDPOINT, SERVICE_ENDPOINT), ALWAYS,
            "where the contracts are, sent before time 0", (
                Field("addresses", "object", "", "the market's contracts and mechanism", (
                    Field("registry", "address", "", "Registry contract"),
                    Field("token", "address", "", "GridToken contract"),
                    Field("auction", "address", "", "the mechanism's contract"),
                    Field("settlement", "address", "", "Settlement contract"),
                    Field("mechanism", "str", "", "`market.mechanism`"),
                )),
                Field("chain_id", "int", "", "chain id to sign transactions for"),
                Field("flexibility", "address or null", "", "VoltageRegulation contract, null when off"),
                Field("charging", "address or null", "", "ChargingCoordination contract, null when off"),
                Field("audit", "address or null", "", "Audit contract, null without `audit`"),
                Field("source_choice", "address or null", "", "SourceChoice contract, null without "
                      "`market.source_choice`"),
                Field("data_access", "address or null", "", "DataAccess contract, null without `data_access`"),
                Field("emergency_access", "address or null", "", "EmergencyAccess contract, null without "
                      "`emergency`"),
                Field("two_phase", "address or null", "", "TwoPhaseTrade contract, null without `two_phase`"),
                Field("reserve", "address or null", "", "OperatingReserve contract, null without "
                      "`ancillary.reserve`"),
                Field("load_shed", "address or null", "", "LoadShed contract, null without `ancillary.load_shed`"),
                Field("pseudonyms", "object or null", "", "null without `pseudonyms`", (
                    Field("address", "address", "", "Pseudonyms contract"),
                    Field("modulus", "str", "", "the registrar's RSA modulus N, hex"),
                )),
            )),
    Message("receipts", (LEDGER_ENDPOINT,), TX_SENDERS, ALWAYS,
            "the receipts of the transactions an endpoint sent, after each block", (
                Field("receipts", "[object]", "", "one per transaction, in sending order", _RECEIPT),
            )),
    Message("cleared", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), ALWAYS,
            "an interval's cleared positions, at its gate", (
                _INTERVAL,
                Field("positions_wh", "{address: int}", "Wh", "cleared position, positive = sold"),
            )),
    Message("lots", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), LOT_AUCTION,
            "the state of an interval's lots after each bidding round", (
                _INTERVAL,
                Field("lots", "[object]", "", "every lot in posting order", _LOT),
            )),
    Message("flex_requests", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), VOLTAGE_REGULATION,
            "the flexibility requests posted in a block", (
                Field("requests", "[object]", "", "one per new request", _REQUEST),
            )),
    Message("flex_awards", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT), VOLTAGE_REGULATION,
            "an interval's flexibility awards, at its gate", (
                Field("awards", "[object]", "", "one per request with an award", _AWARD),
            )),
    Message("charging", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), CHARGING_COORDINATION,
            "an interval's admitted EV charging, at its gate", (
                Field("window", "int", "", "market interval index of the charging window"),
                Field("admitted_w", "{address: int}", "W", "charging power admitted per account"),
            )),
    Message("charging_cut", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), EMERGENCY,
            "an emergency override of one EV's admitted charging, after the block that mined it", (
                Field("window", "int", "", "market interval index of the charging window"),
                Field("account", "address", "", "the EV owner's account"),
                Field("admitted_w", "int", "W", "the charging power admitted from now on"),
            )),
    Message("emergency_reads", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), EMERGENCY,
            "the reads of households' data a block logged (``Used``), for their gateways", (
                Field("reads", "[object]", "", "one per logged read", (
                    Field("account", "address", "", "the service account that logged it"),
                    Field("household", "address", "", "the household whose data it reads"),
                    Field("note", "str", "", "what it reads, as logged"),
                    Field("refusal", "str", "", "the chain's `refusal` for it after the block; empty: allowed"),
                )),
            )),
    Message("emergency_data", (DER_ENDPOINT,), (SERVICE_ENDPOINT,), EMERGENCY,
            "a household's recent data its gateway serves a logged, allowed read (`gridledger.agents.emergency_reader`)",
            (
                Field("account", "address", "", "the service account served"),
                Field("household", "str", "", "the household, by name"),
                Field("columns", "[str]", "", "the store's quantities served"),
                Field("values_kw", "[[float]]", "kW", "one row per step, oldest first, a value per column"),
            )),
    Message("two_phase_events", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT), TWO_PHASE,
            "the two-phase trades a block proposed and prepared, after it", (
                Field("proposed", "[object]", "", "one per ``Proposed``: its seller accepts", _TWO_PHASE_TRADE),
                Field("prepared", "[object]", "", "one per ``Prepared``: both meters confirm after its interval",
                      _TWO_PHASE_TRADE),
            )),
    Message("reserve_windows", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), ANCILLARY,
            "the reserve windows the DSO posted in a block, for the battery owners to offer", (
                Field("windows", "[object]", "", "one per window, in posting order", (
                    Field("window_id", "int", "", "the window's id in OperatingReserve"),
                    _INTERVAL,
                    Field("capacity_w", "int", "W", "reserve capacity asked for"),
                    Field("start_s", "int", "s", "window start, study time"),
                    Field("end_s", "int", "s", "window end, study time"),
                    Field("deadline_s", "int", "s", "offer deadline, study time"),
                    Field("capacity_price_cap_wei_per_wh", "int", "wei/Wh", "most paid per Wh of capacity held"),
                    Field("activation_price_cap_wei_per_wh", "int", "wei/Wh", "most paid per Wh activated"),
                )),
            )),
    Message("shed_programme", (LEDGER_ENDPOINT,), (DER_ENDPOINT,), ANCILLARY,
            "the load shed programme the DSO posted, for the interruptible loads to enrol", (
                Field("programmes", "[object]", "", "one per programme posted", (
                    Field("programme_id", "int", "", "the programme's id in LoadShed"),
                    Field("start_s", "int", "s", "programme start, study time"),
                    Field("end_s", "int", "s", "programme end, study time"),
                    Field("deadline_s", "int", "s", "enrolment deadline, study time"),
                    Field("max_event_s", "int", "s", "longest event"),
                    Field("price_per_event_cap_wei", "int", "wei", "most paid per event"),
                    Field("price_per_wh_cap_wei", "int", "wei/Wh", "most paid per Wh shed"),
                )),
            )),
    Message("reserve_awards", (LEDGER_ENDPOINT,), (DER_ENDPOINT, OPERATOR_ENDPOINT, GRID_ENDPOINT), ANCILLARY,
            "the reserve awarded at a gate", (
                Field("awards", "[object]", "", "one per offer awarded a nonzero power", (
                    Field("window_id", "int", "", "the window"),
                    _INTERVAL,
                    Field("provider", "address", "", "the battery owner awarded"),
                    Field("p_w", "int", "W", "capacity awarded"),
                    Field("start_s", "int", "s", "window start, study time"),
                    Field("end_s", "int", "s", "window end, study time"),
                )),
            )),
    Message("reserve_activations", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT), ANCILLARY,
            "the reserve the DSO activated in a block", (
                Field("activations", "[object]", "", "one per award activated", (
                    Field("window_id", "int", "", "the window"),
                    _INTERVAL,
                    Field("provider", "address", "", "the battery owner activated"),
                    Field("p_w", "int", "W", "power activated"),
                    Field("from_s", "int", "s", "delivery start (activation plus response time), study time"),
                    Field("to_s", "int", "s", "delivery end, the window end, study time"),
                )),
            )),
    Message("shed_calls", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT), ANCILLARY,
            "the interruptible loads the DSO called in a block", (
                Field("calls", "[object]", "", "one per load called", (
                    Field("event_id", "int", "", "the event in LoadShed"),
                    Field("load", "address", "", "the household called"),
                    Field("shed_w", "int", "W", "load to switch off"),
                    Field("energy_wh", "int", "Wh", "energy the call asks for"),
                    _INTERVAL,
                    Field("from_s", "int", "s", "event start, study time"),
                    Field("to_s", "int", "s", "event end, study time"),
                )),
            )),
    Message("island", (GRID_ENDPOINT,), (DER_ENDPOINT,), ISLANDING,
            "the power the batteries that ran the islanded feeder ran at, after the step "
            "(`gridledger.agents.islanding`)", (
                Field("step", "int", "", "power-flow step"),
                Field("battery_p_mw", "{str: float}", "MW", "battery power by prosumer position, positive = charging"),
            )),
    Message("blind_requests", (DER_ENDPOINT, GRID_ENDPOINT), (LEDGER_ENDPOINT,), PSEUDONYMS,
            "the owners' (with their orders) or the meters' (at an interval's start) blinded requests for a "
            "pseudonym's registration", (
                Field("requests", "[object]", "", "one per household", (
                    _INTERVAL,
                    Field("class_index", "int", "", "the owner's class; 8 (`MAX_CLASSES`) for a meter"),
                    Field("blinded", "str", "", "m' = H r^e mod N, hex"),
                    Field("authorisation", "str", "", "the requester's EIP-191 signature of the request, hex"),
                )),
            )),
    Message("blind_signatures", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT), PSEUDONYMS,
            "the registrar's answers to a ``blind_requests``, after the block, to its sender", (
                Field("signatures", "[object]", "", "one per request signed", (
                    Field("blinded", "str", "", "the request's m', hex"),
                    Field("signature", "str", "", "m'^d mod N, hex"),
                )),
                Field("refusals", "[object]", "", "one per request refused", (
                    Field("blinded", "str", "", "the request's m', hex"),
                    Field("reason", "str", "", "the registrar's reason"),
                )),
            )),
    Message("registration_halves", (DER_ENDPOINT, GRID_ENDPOINT), (LEDGER_ENDPOINT,), PSEUDONYMS,
            "the owners' or the meters' unblinded signatures of an interval's pseudonyms, for the relay", (
                Field("halves", "[object]", "", "one per household", (
                    Field("pseudonym", "address", "", "the household's pseudonym of the interval"),
                    Field("meter", "address", "", "its meter's one-time key of the interval"),
                    _INTERVAL,
                    Field("class_index", "int", "", "the owner's class; 8 (`MAX_CLASSES`) for a meter's half"),
                    Field("signature", "str", "", "H^d mod N, 256 bytes, hex"),
                )),
            )),
    Message("pseudonyms_registered", (LEDGER_ENDPOINT,), (GRID_ENDPOINT,), PSEUDONYMS,
            "the one-time meter keys a block registered, after it: a meter reads with its one-time key only then", (
                Field("meters", "[address]", "", "one per pair registered"),
            )),
    Message("signed_orders", (DER_ENDPOINT,), (LEDGER_ENDPOINT,), SIGNED_ORDERS,
            "an interval's orders, each signed by its prosumer as EIP-712 typed data, for the operator to relay", (
                _INTERVAL,
                Field("orders", "[object]", "", "one per prosumer ordering, in prosumer order", _SIGNED_ORDER),
            )),
    Message("signed_readings", (GRID_ENDPOINT,), (LEDGER_ENDPOINT,), SIGNED_BATCHES,
            "an interval's meter readings, each signed by its meter as EIP-712 typed data, for the head-end", (
                _INTERVAL,
                Field("readings", "[object]", "", "one per meter, in prosumer order", _SIGNED_READING),
            )),
    Message("rejected", (LEDGER_ENDPOINT,), (DER_ENDPOINT, GRID_ENDPOINT), SIGNED_BATCHES,
            "the relayed orders or readings the contract skipped, after their block", (
                _INTERVAL,
                Field("rejections", "[object]", "", "one per skipped order or reading", _REJECTION),
            )),
    Message("residuals", (LEDGER_ENDPOINT,), (COORDINATOR_ENDPOINT,), SHARDED,
            "what a zone's clearing left of its orders, at the gate (from each `ledger-<zone>/tx`)", (
                _INTERVAL,
                Field("zone", "str", "", "the zone whose ledger sends it"),
                Field("bids", "[object]", "", "unmatched bids in book order", _RESIDUAL),
                Field("asks", "[object]", "", "unmatched asks in book order", _RESIDUAL),
            )),
    Message("cross_fills", (COORDINATOR_ENDPOINT,), (LEDGER_ENDPOINT,), SHARDED,
            "a zone's fills against the other zones, half a second after the gate (to each `ledger-<zone>/tx`)", (
                _INTERVAL,
                Field("price_wei_per_wh", "int", "wei/Wh", "the coordinator's uniform price; 0 if nothing traded"),
                Field("fills_wh", "{address: int}", "Wh", "each filled order's energy, on its own side"),
            )),
    Message("sensors", (GRID_ENDPOINT,), (AUDITOR_ENDPOINT,), AUDITED,
            "the operator's grid sensors over an interval, at its end (`gridledger.grids.sensors`)", (
                _INTERVAL,
                Field("values", "[float]", "", "each sensor's interval mean plus its noise, in its unit (MW, Mvar "
                      "or pu), in the order of `sensor_set`"),
            )),
    Message("readings", (LEDGER_ENDPOINT,), (AUDITOR_ENDPOINT,), AUDITED,
            "what a block settled and flagged, after it: its readings and the audit's flags and isolations", (
                Field("readings", "[object]", "", "one per ``Settled`` event, in block order", _SETTLED_READING),
                Field("flags", "[object]", "", "one per ``Flagged`` event, in block order", _FLAG),
                Field("isolated", "[address]", "", "prosumers whose meters the block isolated (``Isolated``)"),
            )),
    Message("data_events", (LEDGER_ENDPOINT,), (DER_ENDPOINT, WORKER_ENDPOINT, REQUESTOR_ENDPOINT), DATA_ACCESS,
            "what a block did to the data requests (``DataAccess`` events), after it", (
                Field("requests", "[object]", "", "one per new request", _DATA_REQUEST),
                Field("approvals", "[object]", "", "one per ``Approved``", (
                    _DATA_REQUEST_ID,
                    Field("owner", "address", "", "the owner who approved"),
                )),
                Field("results", "[object]", "", "one per ``ResultPosted``", _DATA_RESULT),
                Field("payments", "[object]", "", "one per ``Paid``", (
                    _DATA_REQUEST_ID,
                    Field("owner", "address", "", "the owner paid"),
                    Field("amount_wei", "int", "wei", "tokens paid"),
                )),
                Field("refunds", "[object]", "", "one per ``Refunded``", (
                    _DATA_REQUEST_ID,
                    Field("amount_wei", "int", "wei", "tokens returned to the requestor"),
                )),
            )),
    Message("data_result", (WORKER_ENDPOINT,), (REQUESTOR_ENDPOINT,), DATA_ACCESS,
            "the answer to a data request, off chain: all the requestor ever receives of the owners' data", (
                _DATA_REQUEST_ID,
                Field("answer", "[float]", "the query's unit", "the (noisy) answer; one entry for a scalar query"),
                Field("scale", "float", "the query's unit", "Laplace scale of the noise on each entry; 0: exact"),
                Field("owners", "int", "", "how many owners' data it used"),
            )),
    Message("inverters", (DER_ENDPOINT,), (GRID_ENDPOINT,), INVERTER_CURVES,
            "the PV inverters' ratings and curves, sent once at the start", (
                Field("prosumers", "[str]", "", "prosumers with PV"),
                Field("s_rated_kva", "[float]", "kVA", "inverter apparent power rating"),
                Field("p_rated_kw", "[float]", "kW", "inverter active power rating (kWp)"),
                Field("volt_var", "object or null", "pu", "volt-var curve points (`VoltVarCurve`), null when off"),
                Field("volt_watt", "object or null", "pu", "volt-watt curve points (`VoltWattCurve`), null when off"),
            )),
)
MESSAGE_BY_KIND = {m.kind: m for m in MESSAGES}


def message_table() -> str:
    """Every message type and its fields as a Markdown table (for docs and the codec's docstring)."""
    rows = ["| message | from → to | when | field | type | unit | meaning |", "|---|---|---|---|---|---|---|"]
    for m in MESSAGES:
        rows.append(f"| `{m.kind}` | {', '.join(m.senders)} → {', '.join(m.receivers)} | {m.when.setting} "
                    f"| | {'bytes' if m.encoding == 'raw' else 'object'} | | {m.meaning} |")
        rows += [f"| | | | `{name}` | {f.type} | {f.unit or '–'} | {f.meaning} |" for name, f in _flat(m.fields)]
    return "\n".join(rows)


def _flat(fields: tuple[Field, ...], prefix: str = "") -> list[tuple[str, Field]]:
    """Fields and their nested fields, nested names written ``outer.inner``."""
    out = []
    for f in fields:
        out.append((prefix + f.name, f))
        out += _flat(f.fields, f"{prefix}{f.name}.")
    return out
