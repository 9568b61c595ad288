"""Study file schema: what a study declares, validated before anything starts.

A study is data. `load_study` reads a YAML file, checks every field against
this schema and returns a frozen `Study`; a bad file raises `StudyError`,
whose message names the file, the field path, the bad value and what is
allowed. The CLI turns `StudyError` into exit code 2.

Units are in the field names (`_s` seconds, also written with a unit such
as ``15min``: `gridledger.durations`; `_pu`, `_percent`, `_per_kwh` token
units per kWh, `_kwh`, `_kw`). ``start`` is the feeder's local time,
without a UTC offset or zone; ``time_zone`` may name the zone.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from pathlib import Path
from typing import Annotated, Literal, get_args

import yaml
from pydantic import (BaseModel, BeforeValidator, ConfigDict, Field, ValidationError, ValidationInfo, field_validator,
                      model_validator)

from gridledger.grids.inverter import VOLT_VAR_CAT_B, VOLT_WATT_CAT_B, VoltVarCurve, VoltWattCurve
from gridledger.grids.names import BACKENDS, CATALOG_FEEDERS, SIMBENCH_EXAMPLES, VOLTAGE_LEVELS
from gridledger.contracts.mechanisms import (
    BATCHED,
    DEFAULT_CLEARING_MODE,
    DEFAULT_MECHANISM,
    DEFAULT_SUBMISSION_MODE,
    MECHANISMS,
    STUDY_CLEARING_MODES,
    SIGNED_ORDER_CONTRACTS,
    SUBMISSION_MODES,
    VERIFIED_BATCH,
    VERIFIED_BATCH_CONTRACTS,
    VERIFIED_BATCH_MAX_ORDERS,
)
from gridledger.durations import Seconds, parse_duration_s
from gridledger.federation import SHARDING_MODES, federate_names
from gridledger.study_audit import Attack, Audit
from gridledger.study_privacy import MAX_OWNERS, DataAccess, Emergency, TwoPhase
from gridledger.study_ancillary import Ancillary
from gridledger.study_events import Events
from gridledger.study_pseudonyms import FIRST_INTERVAL, Pseudonyms


def _not_a_bool(value: object) -> object:
    """Refuse YAML true/false where a number is asked for (pydantic's lax mode reads them as 1 and 0)."""
    if isinstance(value, bool):
        raise ValueError("a number is required, not true/false")
    return value


Finite = Annotated[float, BeforeValidator(_not_a_bool), Field(allow_inf_nan=False)]
"""A finite number; true/false, NaN and infinity are refused."""
Share = Annotated[float, Field(ge=0.0, le=1.0)]
Positive = Annotated[float, Field(gt=0.0)]
PerUnit = Annotated[float, Field(gt=0.0, lt=2.0)]

MECHANISM_NAMES = tuple(MECHANISMS)
STUDY_FILE = "study.yaml"
"""Name of the resolved study in a run directory."""
CORE_TYPES = ("zmq", "tcp", "inproc")
# Default meter rating over a prosumer's larger peak of demand and supply. [-]
METER_RATING_MARGIN = 2.0


class StudyError(ValueError):
    """A study file that cannot be run; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Limits(_Strict):
    """Operating limits checked on every power-flow step (ANSI C84.1 Range A by default)."""

    vm_min_pu: PerUnit = 0.95
    vm_max_pu: PerUnit = 1.05
    max_loading_percent: Positive = 100.0

    @model_validator(mode="after")
    def _band(self) -> "Limits":
        if self.vm_min_pu >= self.vm_max_pu:
            raise ValueError(
                f"vm_min_pu ({self.vm_min_pu}) must be below vm_max_pu ({self.vm_max_pu})"
            )
        return self


class OLTC(_Strict):
    """On-load tap changer at the substation transformer (the one fed by the external grid)."""

    vm_set_pu: PerUnit = 1.0
    deadband_pu: Annotated[float, Field(gt=0.0, le=0.1)] = 0.015
    delay_steps: Annotated[int, Field(ge=0)] = 1


class Capacitor(_Strict):
    """A switched capacitor bank: on below `v_on_pu`, off above `v_off_pu`."""

    bus: int
    q_mvar: Positive
    v_on_pu: PerUnit = 0.96
    v_off_pu: PerUnit = 1.02

    @model_validator(mode="after")
    def _hysteresis(self) -> "Capacitor":
        if self.v_on_pu >= self.v_off_pu:
            raise ValueError(f"v_on_pu ({self.v_on_pu}) must be below v_off_pu ({self.v_off_pu})")
        return self


class Zones(_Strict):
    """How the feeder is split into market zones (`gridledger.grids.zones`); unset: one zone.

    ``by: transformer`` makes one zone per MV/LV transformer's LV network
    (named ``trafo<index>``) and one zone ``mv`` of the buses upstream;
    with ``count: n`` neighbouring ones are merged into at most n zones of
    about equal prosumer numbers (``g0``, ``g1``, ...; a SimBench MV/LV grid
    has about a hundred transformers, too many ledgers for one machine).
    ``buses`` lists each zone's buses (zones ``z0``, ``z1``, ...). Every
    prosumer's bus must lie in exactly one zone; that, and that listed buses
    exist, is checked against the feeder before a run starts.
    """

    by: Literal["transformer"] | None = None
    count: Annotated[int, Field(ge=1, le=1000)] | None = None
    buses: list[Annotated[list[Annotated[int, Field(ge=0)]], Field(min_length=1)]] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> "Zones":
        if (self.by is None) == (self.buses is None):
            raise ValueError("give exactly one of by (transformer) and buses (a list of bus lists)")
        if self.count is not None and self.by is None:
            raise ValueError(f"count = {self.count} groups transformer zones; it needs by: transformer")
        if self.buses is not None and not self.buses:
            raise ValueError("buses lists no zone; give at least one list of buses")
        seen: dict[int, int] = {}
        for i, zone in enumerate(self.buses or []):
            for bus in zone:
                if bus in seen:
                    where = f"twice in zone z{i}" if seen[bus] == i else f"in zone z{seen[bus]} and again in zone z{i}"
                    raise ValueError(f"bus {bus} is listed {where}; a bus belongs to one zone")
                seen[bus] = i
        return self


class Grid(_Strict):
    """The feeder (catalog name, SimBench code or pandapower JSON file), limits, local controls and zones."""

    feeder: str = "case33bw"
    limits: Limits = Limits()
    pv_latitude_deg: Annotated[float, Field(ge=-66.0, le=66.0)] = 40.0
    backend: Literal[BACKENDS] = "auto"
    oltc: OLTC | None = None
    capacitors: list[Capacitor] = []
    zones: Zones | None = None

    @field_validator("feeder")
    @classmethod
    def _known_feeder(cls, feeder: str) -> str:
        if feeder in CATALOG_FEEDERS or feeder.endswith(".json"):
            return feeder
        from gridledger.grids.feeders import is_simbench_code  # simbench and pandapower, for SimBench codes only

        if not is_simbench_code(feeder):
            raise ValueError(
                f"unknown feeder; allowed: {', '.join(sorted(CATALOG_FEEDERS))}, a SimBench LV/MV code "
                f"(e.g. {', '.join(SIMBENCH_EXAMPLES)}) or a path to a pandapower JSON file (*.json)"
            )
        return feeder


class VoltVarPoints(_Strict):
    """Volt-var curve points [pu]; Q in pu of rated kVA, positive = injection. Defaults: IEEE 1547-2018 Cat B."""

    v1_pu: float = VOLT_VAR_CAT_B.v1_pu
    q1_pu: float = VOLT_VAR_CAT_B.q1_pu
    v2_pu: float = VOLT_VAR_CAT_B.v2_pu
    q2_pu: float = VOLT_VAR_CAT_B.q2_pu
    v3_pu: float = VOLT_VAR_CAT_B.v3_pu
    q3_pu: float = VOLT_VAR_CAT_B.q3_pu
    v4_pu: float = VOLT_VAR_CAT_B.v4_pu
    q4_pu: float = VOLT_VAR_CAT_B.q4_pu

    @model_validator(mode="after")
    def _valid_curve(self) -> "VoltVarPoints":
        VoltVarCurve(**self.model_dump())
        return self


class VoltWattPoints(_Strict):
    """Volt-watt curve points [pu]; P limit in pu of rated power. Defaults: IEEE 1547-2018 Cat B."""

    v1_pu: float = VOLT_WATT_CAT_B.v1_pu
    v2_pu: float = VOLT_WATT_CAT_B.v2_pu
    p2_pu: float = VOLT_WATT_CAT_B.p2_pu

    @model_validator(mode="after")
    def _valid_curve(self) -> "VoltWattPoints":
        VoltWattCurve(**self.model_dump())
        return self


class Inverter(_Strict):
    """PV inverter control: volt-var and volt-watt curves (IEEE 1547-2018 Category B by default), run
    as pandapower controllers in the grid federate (`gridledger.grids.inverter`)."""

    volt_var: bool = False
    volt_watt: bool = False
    kva_per_kwp: Annotated[float, Field(ge=1.0, le=2.0)] = 1.1
    volt_var_curve: VoltVarPoints = VoltVarPoints()
    volt_watt_curve: VoltWattPoints = VoltWattPoints()


class PV(_Strict):
    """Rooftop PV: which share of prosumers has it, sized against the bus peak load."""

    share: Share = 0.5
    kwp_per_kw_load: Annotated[float, Field(ge=0.0, le=20.0)] = 1.5
    inverter: Inverter = Inverter()


class Battery(_Strict):
    """Behind-the-meter battery: share of prosumers, size and limits."""

    share: Share = 0.0
    kwh_per_kw_load: Annotated[float, Field(ge=0.0, le=50.0)] = 2.0
    kw_per_kwh: Annotated[float, Field(gt=0.0, le=4.0)] = 0.5
    efficiency: Annotated[float, Field(gt=0.0, le=1.0)] = 0.92
    soc_min: Share = 0.1
    soc_max: Share = 0.9
    soc_init: Share = 0.5

    @model_validator(mode="after")
    def _soc_order(self) -> "Battery":
        if not self.soc_min <= self.soc_init <= self.soc_max:
            raise ValueError(
                f"need soc_min <= soc_init <= soc_max, got {self.soc_min}, "
                f"{self.soc_init}, {self.soc_max}"
            )
        return self


class EV(_Strict):
    """Electric vehicles charged at home: which share of prosumers owns one and its battery.

    Sessions (arrival, departure, energy needed, charger kW) are drawn by
    `gridledger.grids.ev.ev_sessions`; with ``market.charging_coordination``
    the chargers follow the coordination contract, otherwise they charge at
    full power from arrival.
    """

    share: Share = 0.0
    capacity_kwh: Annotated[float, Field(gt=0.0, le=200.0)] = 50.0


class FlexLoad(_Strict):
    """A shiftable appliance cycle (washing machine, dishwasher) per owning prosumer, once in the study.

    The owner starts it where its expected cost is lowest: at the grid buy
    tariff while it expects to import, at the feed-in tariff it forgoes
    while it expects surplus PV (`gridledger.agents.prosumer.flexload_schedule_kw`).
    Hours are of the study's first day, feeder local time.
    """

    share: Share = 0.0
    energy_kwh: Annotated[float, Field(gt=0.0, le=50.0)] = 2.0
    power_kw: Annotated[float, Field(gt=0.0, le=22.0)] = 2.0
    earliest_h: Annotated[float, Field(ge=0.0, le=24.0)] = 8.0
    latest_end_h: Annotated[float, Field(ge=0.0, le=48.0)] = 20.0

    @model_validator(mode="after")
    def _window_fits(self) -> "FlexLoad":
        if (self.latest_end_h - self.earliest_h) * self.power_kw < self.energy_kwh:
            raise ValueError(
                f"a {self.energy_kwh} kWh cycle at {self.power_kw} kW does not fit between "
                f"earliest_h {self.earliest_h} and latest_end_h {self.latest_end_h}"
            )
        return self


class Prosumers(_Strict):
    """Prosumer agents: one per load bus, in bus order unless `buses` lists them.

    ``voltage_level`` restricts them to load buses of one nominal voltage
    range (``lv`` up to 1 kV, ``mv`` above 1 kV up to 35 kV; ``any``
    takes every load bus): on a combined MV/LV grid, ``lv`` puts the
    prosumers on households rather than on MV-connected loads.

    ``meter_rating_kw`` is the rating of every prosumer's meter, registered
    in the settlement with its PV peak and battery power: a reading above
    rating x interval reverts. Unset, each meter is rated
    `METER_RATING_MARGIN` times the larger of its peak demand (peak load,
    battery, the largest EV charger and the flexible appliance where the
    study has them) and its peak supply (PV and battery).
    """

    count: Annotated[int, Field(ge=0)] = 32
    buses: list[int] | None = None
    voltage_level: Literal[tuple(VOLTAGE_LEVELS)] = "any"
    meter_rating_kw: Annotated[Finite, Field(gt=0.0, le=1e6)] | None = None
    pv: PV = PV()
    battery: Battery = Battery()
    ev: EV = EV()
    flexload: FlexLoad = FlexLoad()

    @model_validator(mode="after")
    def _buses_match_count(self) -> "Prosumers":
        if self.buses is not None and len(self.buses) != self.count:
            raise ValueError(f"buses lists {len(self.buses)} buses but count is {self.count}")
        return self


class Flexibility(_Strict):
    """The operator's voltage-regulation market (`contracts/VoltageRegulation.vy`).

    The operator requests enough injection reduction to bring the forecast
    highest voltage ``margin_pu`` below ``grid.limits.vm_max_pu``; PV owners
    offer curtailment at prices up to ``price_cap_per_kwh``, post a bond and
    pay ``penalty_factor`` times their price on energy they fail to deliver.
    An offer must be at least ``min_offer_kw`` with a bond of at least
    ``min_bond`` [token], so that a flood of tiny offers costs real bonds;
    a positive ``min_bond`` needs a positive ``penalty_factor`` (the bond
    is the penalty on the whole offer).
    """

    price_cap_per_kwh: Positive = 0.30
    penalty_factor: Annotated[float, Field(ge=0.0, le=10.0)] = 1.0
    margin_pu: Annotated[float, Field(ge=0.0, le=0.05)] = 0.005
    safety_factor: Annotated[float, Field(ge=1.0, le=5.0)] = 1.2
    operator_budget: Annotated[float, Field(gt=0.0)] = 10_000.0
    bond_endowment: Annotated[float, Field(ge=0.0)] = 1000.0
    min_offer_kw: Annotated[float, Field(ge=0.001, le=1000.0)] = 0.1
    min_bond: Annotated[float, Field(ge=0.0, le=1000.0)] = 0.001

    @model_validator(mode="after")
    def _bond_possible(self) -> "Flexibility":
        if self.min_bond > 0 and self.penalty_factor == 0:
            raise ValueError(f"min_bond ({self.min_bond}) needs a positive penalty_factor: with penalty_factor 0 "
                             "every bond is 0 and every offer would be refused")
        return self


class SourceChoice(_Strict):
    """Buyers that choose PV-sourced energy (`contracts/SourceChoice.vy`, after Li et al.): the PV an interval's
    sellers metered goes to their purchases first. Give ``prosumers`` by name or a seeded ``share`` of them."""

    prosumers: list[Annotated[str, Field(pattern=r"^p[0-9]+$")]] | None = None
    share: Annotated[float, Field(gt=0.0, le=1.0)] | None = None

    @model_validator(mode="after")
    def _one_way(self) -> "SourceChoice":
        if (self.prosumers is None) == (self.share is None):
            raise ValueError("give exactly one of prosumers (a list of names such as p01) and share (0 to 1]")
        return self


class Market(_Strict):
    """Market design and grid tariffs, prices in token units per kWh.

    ``credit_line`` [token] is the most debt the settlement lets a
    prosumer run up when its imbalance payments exceed its credit; an
    imbalance payment beyond it is left unpaid (`Unpaid` event) for the
    operator to collect off-chain. The operator itself has no credit line.
    ``charging_min_request_w`` [W] is the least power of an EV charging
    request (`contracts/ChargingCoordination.vy`), below the smallest
    charger so honest requests pass, so that tiny requests cannot fill a
    window.
    ``non_delivery_penalty_per_kwh`` [token/kWh] is charged for energy a
    seller sold and did not export, besides returning what it was paid for
    it (at least the grid buy price), so an undelivered ask always loses
    money. ``min_order_kwh`` [kWh] is the least energy of an order; agents
    place no smaller one.
    ``submission`` is how orders and meter readings reach the chain: one
    transaction each (``per-transaction``), or signed as EIP-712 typed data
    and relayed in one transaction per interval (``batched``: the operator
    relays the book's orders, the meters' head-end their readings; lots and
    bids of the lot auctions stay one transaction each). ``clearing:
    verified-batch`` (with ``submission: batched`` and the uniform double
    auction) has the operator hold the interval's signed orders and send
    them after the gate with the clearing it computed, in one transaction
    that stores only the fills.
    ``sharding`` is how many ledgers run: one for the whole feeder
    (``none``) or one ledger federate and chain per zone of ``grid.zones``
    (``per-zone``), each clearing its zone's uniform double auction, what
    is left of every zone's orders then cleared across zones by the
    coordinator (a second after the gate, so ``gate_closure_s`` >= 2).
    """

    mechanism: Literal[MECHANISM_NAMES] = DEFAULT_MECHANISM
    clearing: Literal[STUDY_CLEARING_MODES] = DEFAULT_CLEARING_MODE
    submission: Literal[SUBMISSION_MODES] = DEFAULT_SUBMISSION_MODE
    grid_buy_price_per_kwh: Positive = 0.30
    grid_sell_price_per_kwh: Positive = 0.08
    grid_fee_per_kwh: Annotated[float, Field(ge=0.0)] = 0.02
    price_cap_per_kwh: Positive = 1.0
    gate_closure_s: Annotated[Seconds, Field(ge=1)] = 60
    endowment: Annotated[float, Field(ge=0.0)] = 1000.0
    credit_line: Annotated[Finite, Field(ge=0.0, le=1e15)] = 0.0
    non_delivery_penalty_per_kwh: Annotated[Finite, Field(ge=0.0, le=1e6)] = 0.05
    min_order_kwh: Annotated[Finite, Field(ge=0.001, le=1e9)] = 0.01
    round_s: Annotated[Seconds, Field(ge=2)] = 60
    reveal_s: Annotated[Seconds, Field(ge=2)] | None = None
    bid_increment_per_kwh: Positive = 0.001
    voltage_regulation: bool = False
    flexibility: Flexibility = Flexibility()
    charging_coordination: bool = False
    charging_max_loading_percent: Annotated[float, Field(gt=0.0, le=200.0)] = 80.0
    charging_min_request_w: Annotated[int, Field(ge=1, le=10**9)] = 1000
    sharding: Literal[SHARDING_MODES] = "none"
    source_choice: SourceChoice | None = None

    @model_validator(mode="after")
    def _shardable(self) -> "Market":
        """A per-zone ledger runs the uniform double auction, no voltage regulation, charging coordination or
        verified batches yet."""
        if self.sharding == "none":
            return self
        refused = [(self.mechanism != DEFAULT_MECHANISM, f"market.mechanism = {self.mechanism!r}"),
                   (self.clearing == VERIFIED_BATCH, f"market.clearing = {VERIFIED_BATCH!r}"),
                   (self.voltage_regulation, "market.voltage_regulation = true"),
                   (self.charging_coordination, "market.charging_coordination = true"),
                   (self.source_choice is not None, "market.source_choice")]
        for refuses, what in refused:
            if refuses:
                raise ValueError(f"market.sharding = {self.sharding!r} runs one ledger per zone with the "
                                 f"{DEFAULT_MECHANISM!r} mechanism, neither voltage regulation nor charging "
                                 f"coordination, and on-chain or verified clearing; {what} is not sharded: "
                                 "set market.sharding: none or drop it")
        if self.gate_closure_s < 2:
            raise ValueError(f"market.gate_closure_s = {self.gate_closure_s} leaves no second between a zone's "
                             "clearing at the gate and the interval start for the cross-zone settlement "
                             f"(market.sharding = {self.sharding!r}): use at least 2")
        return self

    @property
    def min_order_wh(self) -> int:
        """Least energy of an order, `min_order_kwh` rounded to the Wh. [Wh]"""
        return round(self.min_order_kwh * 1000)

    @property
    def reveal_window_s(self) -> int:
        """Vickrey reveal window after the gate: `reveal_s`, or half the gate closure. [s]"""
        return self.reveal_s if self.reveal_s is not None else self.gate_closure_s // 2

    @model_validator(mode="after")
    def _tariffs(self) -> "Market":
        if self.grid_sell_price_per_kwh >= self.grid_buy_price_per_kwh:
            raise ValueError(
                f"grid_sell_price_per_kwh ({self.grid_sell_price_per_kwh}) must be below "
                f"grid_buy_price_per_kwh ({self.grid_buy_price_per_kwh})"
            )
        if self.grid_buy_price_per_kwh > self.price_cap_per_kwh:
            raise ValueError(
                f"price_cap_per_kwh ({self.price_cap_per_kwh}) must be at least "
                f"grid_buy_price_per_kwh ({self.grid_buy_price_per_kwh})"
            )
        self._verified_batch()
        return self

    def _verified_batch(self) -> None:
        """``clearing: verified-batch`` needs signed orders and a mechanism that takes them with its clearing."""
        if self.clearing != VERIFIED_BATCH:
            return
        if self.submission != BATCHED:
            raise ValueError(f"market.clearing {VERIFIED_BATCH!r} needs market.submission {BATCHED!r} (signed orders "
                             "to relay), "
                             f"got {self.submission!r}")
        contract = MECHANISMS[self.mechanism].contract
        if contract not in VERIFIED_BATCH_CONTRACTS:
            allowed = sorted(m.name for m in MECHANISMS.values() if m.contract in VERIFIED_BATCH_CONTRACTS)
            raise ValueError(f"market.clearing {VERIFIED_BATCH!r} is not offered by market.mechanism {self.mechanism!r}; "
                             f"allowed: {', '.join(allowed)}")


HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$"
"""An IPv4 address or a host name."""
HostAddress = Annotated[str, Field(pattern=HOST_PATTERN)]


class Helics(_Strict):
    """Co-simulation transport, where each part runs, and the watchdog.

    ``broker_address`` is where `helics_broker` listens and every federate
    connects; ``hosts`` names, per federate, the address of the host it runs
    on (its core receives there); a federate not listed runs on the broker's
    host. ``gridledger run`` starts every part on this machine, so it needs
    addresses of this machine (loopback 127.0.0.0/8 included); on other
    hosts, start each federate with ``gridledger federate``.
    """

    core_type: Literal[CORE_TYPES] = "zmq"
    port: Annotated[int, Field(ge=1024, le=65535)] | None = None
    broker_address: HostAddress = "127.0.0.1"
    hosts: dict[str, HostAddress] = {}
    stall_timeout_s: Annotated[Positive, BeforeValidator(parse_duration_s)] = 60.0

    @model_validator(mode="after")
    def _network_core(self) -> "Helics":
        placed = self.hosts or self.broker_address != Helics.model_fields["broker_address"].default
        if placed and self.core_type == "inproc":
            raise ValueError("helics.core_type inproc runs in one process; broker_address and hosts "
                             f"need a network core: one of {', '.join(t for t in CORE_TYPES if t != 'inproc')}")
        return self

    def host_of(self, federate: str) -> str:
        """The address of the host `federate` runs on."""
        return self.hosts.get(federate, self.broker_address)


class Rpc(_Strict):
    """The ledger's live, read-only Ethereum JSON-RPC endpoint (`gridledger.chain_rpc`), served while the run goes on.

    It answers at the last block mined; after the run, ``gridledger chain
    serve RUN_DIR`` serves the same methods over the kept chain.
    """

    port: Annotated[int, Field(ge=1024, le=65535)]
    host: HostAddress = "127.0.0.1"


class Ledger(_Strict):
    """What the ledger offers besides the market; unset ``rpc``: no live endpoint."""

    rpc: Rpc | None = None


class Checkpoint(_Strict):
    """When a run writes every federate's state so that ``gridledger resume`` can go on from it
    (`gridledger.checkpoint`): just before the first market interval start at or after each multiple of
    ``every_s``. None: never."""

    every_s: Annotated[Seconds, Field(gt=0)] | None = 7 * 86_400


class Study(_Strict):
    """A complete study: what runs, for how long, on which feeder, with which market."""

    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")]
    start: dt.datetime = dt.datetime(2024, 6, 21)
    time_zone: str | None = None
    """IANA name of the feeder's time zone (``Europe/Berlin``); it places ``start`` in UTC for results.nc and changes
    nothing else. None: unknown, results.nc keeps feeder local time."""
    duration_s: Annotated[Seconds, Field(gt=0)] = 86_400
    power_flow_step_s: Annotated[Seconds, Field(gt=0)] = 300
    market_interval_s: Annotated[Seconds, Field(gt=0)] = 900
    seed: Annotated[int, Field(ge=0, lt=2**63)] = 0
    grid: Grid = Grid()
    prosumers: Prosumers = Prosumers()
    market: Market = Market()
    helics: Helics = Helics()
    audit: Audit | None = None
    attacks: list[Attack] = []
    data_access: DataAccess | None = None
    emergency: Emergency | None = None
    two_phase: TwoPhase | None = None
    pseudonyms: Pseudonyms | None = None
    events: Events = Events()
    ancillary: Ancillary | None = None
    ledger: Ledger = Ledger()
    checkpoint: Checkpoint = Checkpoint()

    @field_validator("start")
    @classmethod
    def _local_time(cls, start: dt.datetime) -> dt.datetime:
        """The start is the feeder's local time as it stands; an offset would shift the chain's clock alone."""
        if start.tzinfo is not None:
            raise ValueError("give the feeder's local time without a UTC offset or time zone, e.g. "
                             f"{start.replace(tzinfo=None).isoformat()}: the load and PV profiles, the times in "
                             "results.nc and the chain's clock all count from the start as written; name the "
                             "zone in time_zone")
        return start

    @field_validator("time_zone")
    @classmethod
    def _iana_zone(cls, name: str | None, info: ValidationInfo) -> str | None:
        """A zone of the IANA database in which the start is one unambiguous instant (not in a daylight-saving gap
        or fold)."""
        if name is None:
            return None
        try:
            zone = zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{name!r} is not an IANA time zone name; give one such as Europe/Berlin, "
                             "America/New_York or UTC") from None
        start = info.data.get("start")
        if start is not None and len({start.replace(tzinfo=zone, fold=fold).utcoffset() for fold in (0, 1)}) > 1:
            raise ValueError(f"start {start.isoformat()} is skipped or repeated by a daylight-saving change in {name}; "
                             "give a start outside that hour")
        return name

    @model_validator(mode="after")
    def _time_grid(self) -> "Study":
        if self.market_interval_s % self.power_flow_step_s:
            raise ValueError(
                f"market_interval_s ({self.market_interval_s}) must be a multiple of "
                f"power_flow_step_s ({self.power_flow_step_s})"
                + _minutes_hint(market_interval_s=self.market_interval_s, power_flow_step_s=self.power_flow_step_s)
            )
        if self.duration_s % self.market_interval_s:
            raise ValueError(
                f"duration_s ({self.duration_s}) must be a multiple of "
                f"market_interval_s ({self.market_interval_s})"
                + _minutes_hint(duration_s=self.duration_s, market_interval_s=self.market_interval_s)
            )
        if self.market.gate_closure_s >= self.market_interval_s - 1:
            raise ValueError(
                f"market.gate_closure_s ({self.market.gate_closure_s}) must be below "
                f"market_interval_s - 1 ({self.market_interval_s - 1})"
                + _minutes_hint(market_interval_s=self.market_interval_s)
            )
        self._lot_auction_windows()
        if self.market.sharding != "none" and self.grid.zones is None:
            raise ValueError(f"market.sharding = {self.market.sharding!r} needs grid.zones (by: transformer, or "
                             "buses: a list of bus lists) to say which prosumers each ledger holds")
        self._verified_batch_fits()
        self._placed_federates()
        self._attacks_fit()
        self._audit_fits()
        self._data_access_fits()
        self._emergency_fits()
        self._two_phase_fits()
        self._pseudonyms_fit()
        self._ancillary_fits()
        for i, cap in enumerate(self.events.import_caps):
            if cap.end_s > self.duration_s:
                raise ValueError(f"events.import_caps.{i}.end_s ({cap.end_s}) must be at most duration_s "
                                 f"({self.duration_s})")
        self._price_spikes_fit()
        if self.market.source_choice is not None:
            self._names_exist("market.source_choice", self.market.source_choice.prosumers)
        return self

    def _names_exist(self, where: str, named: list[str] | None, field: str = "prosumers") -> None:
        """Every name in `named` (the list `field` of `where`) is one of the study's prosumers (p01, p02, ...)."""
        width = max(2, len(str(self.prosumers.count)))
        names = {f"p{i + 1:0{width}d}" for i in range(self.prosumers.count)}
        unknown = sorted(set(named or ()) - names)
        if unknown:
            shown = f"p{1:0{width}d} to p{self.prosumers.count:0{width}d}" if names else "none (prosumers.count is 0)"
            raise ValueError(f"{where}.{field} names {', '.join(unknown)}; prosumers here: {shown}")

    def _attacks_fit(self) -> None:
        """Attacks name existing prosumers, end within the study, and fake deliveries need the flexibility market."""
        for i, attack in enumerate(self.attacks):
            where = f"attacks.{i}"
            self._names_exist(where, attack.prosumers)
            if attack.end_s is not None and attack.end_s > self.duration_s:
                raise ValueError(f"{where}.end_s ({attack.end_s}) must be at most duration_s ({self.duration_s})")
            if attack.start_s >= self.duration_s:
                raise ValueError(f"{where}.start_s ({attack.start_s}) must be below duration_s ({self.duration_s})")
            if attack.kind == "foreign-key" and self.market.sharding == "per-zone":
                raise ValueError(f"{where}.kind 'foreign-key' signs readings with a key bound to no meter, which no "
                                 "zone's ledger takes; it needs market.sharding 'none'")
            if attack.kind == "fake-flexibility" and not self.market.voltage_regulation:
                raise ValueError(f"{where}.kind 'fake-flexibility' fakes voltage-regulation deliveries; "
                                 "it needs market.voltage_regulation: true")

    def _audit_fits(self) -> None:
        """The auditor's flags reach the chain within the flag window; one audit contract watches one chain."""
        if self.audit is None:
            return
        if self.audit.flag_window_for(self.market_interval_s) < 2 * self.market_interval_s:
            raise ValueError(f"audit.flag_window_s ({self.audit.flag_window_s}) must be at least two market intervals "
                             f"({2 * self.market_interval_s} s): a reading is checked after it is mined and the "
                             "auditor's flag is mined in a later block")
        if self.market.sharding == "per-zone":
            raise ValueError("audit needs one chain: market.sharding 'per-zone' runs a chain per zone; "
                             "use market.sharding 'none' with audit")

    def _data_access_fits(self) -> None:
        """Every prosumer is listed in one request on one chain."""
        if self.data_access is None:
            return
        if self.market.sharding == "per-zone":
            raise ValueError("data_access needs one chain: market.sharding 'per-zone' runs a chain per zone; "
                             "use market.sharding 'none' with data_access")
        if not 1 <= self.prosumers.count <= MAX_OWNERS:
            raise ValueError(f"data_access lists every prosumer in each request, 1 to {MAX_OWNERS} "
                             f"(DataAccess.MAX_OWNERS): prosumers.count is {self.prosumers.count}")

    def _emergency_fits(self) -> None:
        """Overrides cut charging admissions on one chain, inside the study, of households that exist."""
        spec = self.emergency
        if spec is None:
            return
        if spec.overrides and not self.market.charging_coordination:
            raise ValueError("emergency.overrides cut charging admissions: they need market.charging_coordination: on")
        if self.market.sharding == "per-zone":
            raise ValueError("emergency needs one chain: use market.sharding 'none' with emergency")
        if spec.declare_s >= self.duration_s:
            raise ValueError(f"emergency.declare_s ({spec.declare_s}) must be below duration_s ({self.duration_s})")
        self._names_exist("emergency", [spec.household] if spec.household else None, "household")
        for kind, actions in (("overrides", spec.overrides), ("reads", spec.reads)):
            for i, action in enumerate(actions):
                self._names_exist(f"emergency.{kind}.{i}", [action.household], "household")
                if not spec.declare_s < action.at_s < self.duration_s - self.market_interval_s:
                    raise ValueError(f"emergency.{kind}.{i}.at_s ({action.at_s}) must be after declare_s "
                                     f"({spec.declare_s}) and before the last interval "
                                     f"({self.duration_s - self.market_interval_s})")

    def _two_phase_fits(self) -> None:
        """Bilateral trades on one chain; silent meters exist and fall silent inside the study."""
        spec = self.two_phase
        if spec is None:
            return
        if self.market.sharding == "per-zone":
            raise ValueError("two_phase needs one chain: use market.sharding 'none' with two_phase")
        # A proposal mined at (k-1) T + 1 has its deadline at (k + 1 + D) T.
        if (spec.deadline_intervals + 2) * self.market_interval_s - 1 > 7 * 86400:
            raise ValueError(f"two_phase.deadline_intervals ({spec.deadline_intervals}) + 2, x market_interval_s, "
                             "must be at most 7 days (TwoPhaseTrade.MAX_DEADLINE_S): a trade's deadline comes that "
                             "long after its proposal")
        silent = spec.silent_meters
        if silent is not None:
            self._names_exist("two_phase.silent_meters", silent.prosumers)
            if silent.start_s >= self.duration_s or (silent.end_s is not None and silent.end_s <= silent.start_s):
                raise ValueError(f"two_phase.silent_meters: start_s ({silent.start_s}) must be below duration_s "
                                 f"({self.duration_s}) and below end_s ({silent.end_s})")

    def _pseudonyms_fit(self) -> None:
        """Pseudonyms trade by signed orders and readings the operator relays, on one chain, in a market of orders and
        readings alone, without a credit line (the endowment's check needs the feeder: `funding_problem`)."""
        spec = self.pseudonyms
        if spec is None:
            return
        market = self.market
        if market.submission != BATCHED or MECHANISMS[market.mechanism].contract not in SIGNED_ORDER_CONTRACTS:
            raise ValueError(f"pseudonyms trade by signed orders the operator relays (a fresh pseudonym has no ether): "
                             f"they need market.submission {BATCHED!r} and a mechanism of orders (not a lot "
                             f"auction); got submission {market.submission!r}, mechanism {market.mechanism!r}")
        if market.sharding != "none" or market.clearing == VERIFIED_BATCH:
            raise ValueError(f"pseudonyms need one chain and the contract's own clearing: use market.sharding 'none' "
                             f"and a market.clearing other than {VERIFIED_BATCH!r} with pseudonyms")
        fixed = [name for name, on in (("market.voltage_regulation", market.voltage_regulation),
                                       ("market.charging_coordination", market.charging_coordination),
                                       ("market.source_choice", market.source_choice is not None),
                                       ("audit", self.audit is not None), ("attacks", bool(self.attacks)),
                                       ("data_access", self.data_access is not None),
                                       ("emergency", self.emergency is not None),
                                       ("two_phase", self.two_phase is not None)) if on]
        if fixed:
            raise ValueError(f"pseudonyms cannot run with {', '.join(fixed)}: each of them names households by "
                             "their fixed accounts, which would link every pseudonym to its household")
        if self.n_intervals <= FIRST_INTERVAL:
            raise ValueError(f"pseudonyms trade from interval {FIRST_INTERVAL} on (the registration pipeline fills "
                             f"before): the study needs more than {FIRST_INTERVAL} market intervals, it has "
                             f"{self.n_intervals}")
        if market.credit_line > 0:
            raise ValueError(f"pseudonyms need market.credit_line 0 (got {market.credit_line}): a pseudonym's debt "
                             "could be charged to nobody; its bond pays its bill")

    def _price_spikes_fit(self) -> None:
        """A spike covers whole market intervals of the study, above the tariff and within the price cap; the audit
        and pseudonyms' bonds assume the tariff."""
        market = self.market
        for i, spike in enumerate(self.events.price_spikes):
            where = f"events.price_spikes.{i}"
            if spike.start_s % self.market_interval_s or spike.end_s % self.market_interval_s:
                raise ValueError(f"{where} ({spike.start_s}-{spike.end_s} s) must cover whole market intervals: "
                                 f"start_s and end_s multiples of market_interval_s ({self.market_interval_s})")
            if spike.end_s > self.duration_s:
                raise ValueError(f"{where}.end_s ({spike.end_s}) must be at most duration_s ({self.duration_s})")
            if not market.grid_buy_price_per_kwh < spike.grid_buy_price_per_kwh <= market.price_cap_per_kwh:
                raise ValueError(f"{where}.grid_buy_price_per_kwh ({spike.grid_buy_price_per_kwh}) must be above "
                                 f"market.grid_buy_price_per_kwh ({market.grid_buy_price_per_kwh}) and at most "
                                 f"market.price_cap_per_kwh ({market.price_cap_per_kwh})")
        if self.events.price_spikes and (self.audit is not None or self.pseudonyms is not None
                                         or market.sharding != "none"):
            raise ValueError("events.price_spikes run on one chain without audit or pseudonyms: the audit's "
                             "recomputation and the pseudonyms' bonds assume the tariff")

    def grid_buy_price_per_kwh(self, interval: int) -> float:
        """The grid buy price of market `interval`: its spike, or the tariff. [token/kWh]"""
        return self.events.spike_prices_per_kwh(self.market_interval_s).get(interval,
                                                                            self.market.grid_buy_price_per_kwh)

    def _ancillary_fits(self) -> None:
        """Reserve and load shed answer an announced import cap, on one chain, bought at the gate of interval 1 and
        activated one interval ahead (`gridledger.study_ancillary`)."""
        spec = self.ancillary
        if spec is None:
            return
        if not self.events.import_caps:
            raise ValueError("ancillary buys reserve and load shed for an upstream shortage: it needs "
                             "events.import_caps (a cap in MW over a window)")
        if spec.reserve is None and spec.load_shed is None:
            raise ValueError("ancillary names neither reserve nor load_shed: give at least one, or drop ancillary")
        if self.market.sharding != "none" or self.pseudonyms is not None:
            raise ValueError("ancillary needs market.sharding 'none' and no pseudonyms: the operator contracts "
                             "households by their fixed accounts on one chain")
        first_s = min(cap.start_s for cap in self.events.import_caps)
        if first_s < 2 * self.market_interval_s:
            raise ValueError(f"events.import_caps starts at {first_s} s, but with ancillary the reserve is awarded at "
                             f"the gate of interval 1 and activated an interval ahead: caps may start at "
                             f"{2 * self.market_interval_s} s (two market intervals) at the earliest")
        if spec.reserve is not None and spec.reserve.schedule_charging and not (
                self.market.charging_coordination and self.prosumers.ev.share == 0):
            raise ValueError("ancillary.reserve.schedule_charging registers each battery as its household's storage "
                             "unit in the charging coordination contract: it needs market.charging_coordination: "
                             f"true and prosumers.ev.share 0 (one unit per household), got "
                             f"{self.market.charging_coordination} and {self.prosumers.ev.share}")
        lead_s = self.market_interval_s - 2
        for what, value_s in (("reserve.response_s", spec.reserve and spec.reserve.response_s),
                              ("load_shed.notice_s", spec.load_shed and spec.load_shed.notice_s)):
            if value_s is not None and value_s > lead_s:
                raise ValueError(f"ancillary.{what} ({value_s}) must be at most market_interval_s - 2 ({lead_s}): "
                                 "the operator activates and calls one interval ahead")

    @model_validator(mode="after")
    def _rpc_fits(self) -> "Study":
        """The live endpoint serves the one ledger's chain on a port of its own."""
        rpc = self.ledger.rpc
        if rpc is None:
            return self
        if self.market.sharding != "none":
            raise ValueError(f"ledger.rpc serves one chain, but market.sharding = {self.market.sharding!r} runs one "
                             "ledger per zone; leave ledger.rpc out and serve a zone's chain after the run with "
                             "`gridledger chain serve RUN_DIR --zone ZONE`")
        if rpc.port == self.helics.port:
            raise ValueError(f"ledger.rpc.port ({rpc.port}) is helics.port, the broker's; give the endpoint "
                             "another port")
        return self

    def _placed_federates(self) -> None:
        """Every federate `helics.hosts` places is one this study runs."""
        running = federate_names(self)
        for name in self.helics.hosts:
            if name not in running:
                raise ValueError(f"helics.hosts names {name!r}, which does not run in this study; "
                                 f"allowed: {', '.join(running)}")

    def _verified_batch_fits(self) -> None:
        """A verified batch is one transaction of at most `VERIFIED_BATCH_MAX_ORDERS` orders, one per prosumer."""
        if self.market.clearing == VERIFIED_BATCH and self.prosumers.count > VERIFIED_BATCH_MAX_ORDERS:
            raise ValueError(f"market.clearing {VERIFIED_BATCH!r} carries at most {VERIFIED_BATCH_MAX_ORDERS} orders "
                             f"per interval, one per prosumer: prosumers.count ({self.prosumers.count}) must be at "
                             f"most {VERIFIED_BATCH_MAX_ORDERS}")

    def _lot_auction_windows(self) -> None:
        """A lot auction needs one bidding round before the gate; Vickrey a reveal window inside it."""
        market = self.market
        rounds = (MECHANISMS[market.mechanism].is_lot_auction or market.voltage_regulation
                  or market.charging_coordination or self.ancillary is not None)
        if not rounds:
            return
        bidding_s = self.market_interval_s - market.gate_closure_s
        if market.round_s + 1 >= bidding_s:
            raise ValueError(
                f"market.round_s ({market.round_s}) must be below market_interval_s - market.gate_closure_s - 1 "
                f"({bidding_s - 1}) so that bidders get a round after the lots (or flexibility requests) are posted"
            )
        reveal_ok = 2 <= market.reveal_window_s <= market.gate_closure_s - 1
        if MECHANISMS[market.mechanism].reveal_after_gate and not reveal_ok:
            raise ValueError(
                f"market.reveal_s ({market.reveal_window_s}) must lie in [2, market.gate_closure_s - 1] "
                f"= [2, {market.gate_closure_s - 1}] so that the reveals are mined and the lots "
                "finalised before the interval starts"
            )

    @property
    def n_steps(self) -> int:
        """Number of power-flow steps."""
        return self.duration_s // self.power_flow_step_s

    @property
    def steps_per_interval(self) -> int:
        """Power-flow steps in one market interval."""
        return self.market_interval_s // self.power_flow_step_s

    @property
    def n_intervals(self) -> int:
        """Number of market intervals."""
        return self.duration_s // self.market_interval_s

    @property
    def start_timestamp(self) -> int:
        """Unix time of the study start, the chain's clock origin. [s]"""
        return int(self.start.replace(tzinfo=dt.timezone.utc).timestamp())


def _field_path(loc: tuple) -> str:
    return ".".join(str(part) for part in loc) or "(top level)"


def _model_in(annotation: object) -> type[BaseModel] | None:
    """The model a field holds, through ``X | None`` and ``list[X]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    return next((model for arg in get_args(annotation) if (model := _model_in(arg)) is not None), None)


def _describe(error: dict, model: type[BaseModel]) -> str:
    """One line for one pydantic error: field path, bad value, what is allowed."""
    path = _field_path(error["loc"])
    if error["type"] == "extra_forbidden":
        parent = model
        for part in error["loc"][:-1]:
            if not isinstance(part, int):
                parent = _model_in(parent.model_fields[part].annotation)
        return f"{path}: unknown field; allowed here: {', '.join(parent.model_fields)}"
    value = error.get("input")
    if isinstance(value, dict) and error["type"] == "value_error":
        # A check across fields: its message names them; the whole input would bury it.
        message = error["msg"].removeprefix("Value error, ")
        return message if not error["loc"] else f"{path}: {message}"
    shown = "(missing)" if error["type"] == "missing" else repr(
        value.isoformat() if isinstance(value, dt.datetime) else value)
    return f"{path} = {shown}: {error['msg']}{_percent_hint(error)}"


def _percent_hint(error: dict) -> str:
    """A hint when a per-unit field got what looks like a percentage (105 for 1.05)."""
    value, field = error.get("input"), error["loc"][-1] if error["loc"] else ""
    looks_like_percent = (isinstance(value, (int, float)) and not isinstance(value, bool)
                          and 2 <= value <= 200 and str(field).endswith("_pu"))
    return f"; looks like percent: give per unit, e.g. {value / 100:g}" if looks_like_percent else ""


MINUTES_BELOW_S = 60
"""A market interval, power-flow step or study duration shorter than this looks like minutes (or hours). [s]"""


def _minutes_hint(**seconds: int) -> str:
    """Hints for time-grid fields whose value in seconds looks like minutes, for a message about them."""
    hints = []
    for name, value in seconds.items():
        if 0 < value < MINUTES_BELOW_S:
            written = f"'{value}h' or '{value}min'" if name == "duration_s" else f"'{value}min'"
            hints.append(f"; {name} = {value} s looks like {'hours or ' if name == 'duration_s' else ''}minutes: "
                         f"write {written}, or seconds")
    return "".join(hints)


def parse_study(data: object, source: str = "<study>") -> Study:
    """Validate a study given as a mapping; raise `StudyError` naming `source`."""
    if not isinstance(data, dict):
        raise StudyError(f"{source}: a study file must be a mapping of fields, got {type(data).__name__}")
    try:
        return Study.model_validate(data)
    except ValidationError as exc:
        lines = [_describe(error, Study) for error in exc.errors(include_url=False)]
        raise StudyError(f"{source}: invalid study\n  " + "\n  ".join(lines)) from None


def load_study(path: str | Path) -> Study:
    """Read and validate a study YAML file."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise StudyError(f"{path}: cannot read study file ({exc.strerror})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise StudyError(f"{path}: not valid YAML: {exc}") from None
    return parse_study(data, str(path))


def dump_study(study: Study) -> str:
    """The resolved study (every default filled in) as YAML."""
    return yaml.safe_dump(study.model_dump(mode="json"), sort_keys=False)
