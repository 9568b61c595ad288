"""Study schema of privacy and secure transactions: data access by contract (``data_access:``), after Wang et al.'s
SPDS, and emergency access (``emergency:``), after Aung et al.

After the study's last interval, a requestor (the account ``requestor``,
a DSO or a researcher) proposes each listed query of the catalogue
(`gridledger.agents.data_catalogue`) to every prosumer at a price per
owner; the owners who consent approve; the compute worker answers each
query over the approving owners' stores only, with Laplace noise for the
query's ε, and posts the answer's hash on chain; the requestor checks the
answer against that hash and accepts, which pays the owners
(`gridledger.contracts.data_access`). The protocol's timeline is
`gridledger.schedule.data_access_phase`.

==================  ===================================================================================
field               meaning
==================  ===================================================================================
``approve_share``   share of the prosumers who consent to every request, drawn with the study's seed
                    (1: all); the others never approve and their data is never read
``accept_window_s`` the requestor's time to accept a posted result before anyone may finalize it [s]
``queries``         one to eight requests, each a catalogue ``query``, its ``epsilon`` (null: an exact
                    answer), ``price_per_owner`` [token] and optional ``clip_kw``: each owner's per-step
                    load is clipped to at most this before the answer, and the noise is scaled to it
                    instead of the meter rating (smaller noise, a bias on larger loads) [kW]
==================  ===================================================================================
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from gridledger.contracts.catalogue import CATALOGUE
from gridledger.durations import Seconds

QUERY_NAMES = CATALOGUE
MAX_OWNERS = 64
"""Owners one request may list: ``DataAccess.MAX_OWNERS``; every prosumer is listed."""
MAX_PRICE_PER_OWNER = 1e6
"""Highest price per owner: ``DataAccess.MAX_PRICE_WEI`` in tokens. [token]"""
MAX_ACCEPT_WINDOW_S = 30 * 86400
"""Longest accept window: ``DataAccess.MAX_HORIZON_S``. [s]"""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class DataQuery(_Strict):
    """One request: a catalogue query, its ε (None: exact), the price per approving owner and an optional clip."""

    query: Literal[QUERY_NAMES]
    epsilon: Annotated[float, Field(ge=0.001, le=1000.0)] | None = 1.0
    price_per_owner: Annotated[float, Field(gt=0.0, le=MAX_PRICE_PER_OWNER)] = 0.05
    clip_kw: Annotated[float, Field(gt=0.0, le=1e4)] | None = None

    @property
    def code(self) -> int:
        """The query's catalogue code (its position in the catalogue)."""
        return QUERY_NAMES.index(self.query)


class DataAccess(_Strict):
    """The requests a requestor makes after the study, and who consents (module docstring)."""

    approve_share: Annotated[float, Field(ge=0.0, le=1.0)] = 1.0
    accept_window_s: Annotated[Seconds, Field(ge=1, le=MAX_ACCEPT_WINDOW_S)] = 3600
    queries: Annotated[list[DataQuery], Field(min_length=1, max_length=8)]


MAX_EMERGENCY_S = 7 * 86400
"""Longest emergency and grant: ``EmergencyAccess.MAX_EMERGENCY_S``. [s]"""
PROSUMER_NAME = r"^p[0-9]+$"


class Override(_Strict):
    """What the service crew does at ``at_s``: cut ``household``'s charging admission of that window to
    ``admitted_kw`` [kW] (``ChargingCoordination.override``)."""

    at_s: Annotated[Seconds, Field(ge=0)]
    household: Annotated[str, Field(pattern=PROSUMER_NAME)]
    admitted_kw: Annotated[float, Field(ge=0.0, le=1e3)] = 0.0


class Read(_Strict):
    """What the service crew reads at ``at_s``: ``household``'s last ``hours`` of meter data from its store, after
    logging the use on chain (``EmergencyAccess.use``)."""

    at_s: Annotated[Seconds, Field(ge=0)]
    household: Annotated[str, Field(pattern=PROSUMER_NAME)]
    hours: Annotated[int, Field(ge=1, le=24)] = 6


class Emergency(_Strict):
    """A declared emergency and the service crew's access during it (``emergency:``).

    At ``declare_s`` the market operator declares an emergency of
    ``duration_s`` for ``reason`` on ``EmergencyAccess`` and grants the
    service crew (its own key, no market role) the scopes it needs over
    ``household`` (every household if null) for ``grant_s``: overriding
    charging admissions for ``overrides``, reading data for ``reads``. The
    crew then cuts the admissions listed in ``overrides`` and reads the
    stores listed in ``reads``: it logs each read on chain, and the
    household's gateway serves it only when the chain says the grant
    covers it. An action outside the grant (too late, another household)
    is refused on chain with the grant's reason and recorded.
    """

    declare_s: Annotated[Seconds, Field(ge=0)]
    duration_s: Annotated[Seconds, Field(ge=1, le=MAX_EMERGENCY_S)] = 7200
    reason: Annotated[str, Field(min_length=1, max_length=64)] = "transformer overload"
    household: Annotated[str, Field(pattern=PROSUMER_NAME)] | None = None
    grant_s: Annotated[Seconds, Field(ge=1, le=MAX_EMERGENCY_S)] = 3600
    overrides: Annotated[list[Override], Field(max_length=64)] = []
    reads: Annotated[list[Read], Field(max_length=64)] = []

    @model_validator(mode="after")
    def _acts(self) -> "Emergency":
        if not self.overrides and not self.reads:
            raise ValueError("an emergency needs overrides or reads for the service crew to do")
        return self


class SilentMeters(_Strict):
    """Meters whose confirmations of two-phase trades are lost (their link to the contract crashed between the
    phases) for the trades of the intervals that start in [``start_s``, ``end_s``)."""

    prosumers: Annotated[list[Annotated[str, Field(pattern=PROSUMER_NAME)]], Field(min_length=1)]
    start_s: Annotated[Seconds, Field(ge=0)] = 0
    end_s: Annotated[Seconds, Field(gt=0)] | None = None


class TwoPhase(_Strict):
    """Bilateral trades of local PV settled in two phases (``two_phase:``), after Dorri et al.

    A ``share`` of the prosumers (drawn with the seed) takes part. Before
    each interval, every taking part whose forecast is a deficit proposes
    to buy the local-PV attribute of the energy it will import from one
    whose forecast is a surplus, at ``premium_per_kwh`` [token/kWh], for
    ``firm_share`` of the smaller forecast (what both meters will likely
    meter despite forecast errors), and locks the payment; the seller accepts and locks an equal collateral
    (phase one: prepared). After the interval both sides' meters confirm
    what they metered, the buyer's import and the seller's export of its
    own PV (at most the interval's PV); the second confirmation pays the
    seller and returns its collateral (phase two: committed). A trade not committed within
    ``deadline_intervals`` after its interval is rolled back by the
    operator and every lock returns. The energy itself is settled by the
    Settlement as always: the trade pays for its origin. Each taking part
    moves ``budget`` [token] of its Settlement credit to its wallet for
    the locks and approves it to the contract, again whenever what it has
    left approved falls short of its next lock. ``silent_meters`` loses some meters' confirmations, as a
    crash between the phases would.
    """

    share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    firm_share: Annotated[float, Field(gt=0.0, le=1.0)] = 0.5
    premium_per_kwh: Annotated[float, Field(gt=0.0, le=10.0)] = 0.02
    deadline_intervals: Annotated[int, Field(ge=1, le=96)] = 2
    budget: Annotated[float, Field(gt=0.0, le=1e6)] = 5.0
    silent_meters: SilentMeters | None = None
