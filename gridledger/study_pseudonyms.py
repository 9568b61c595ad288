"""Study schema of a market traded under per-interval pseudonyms (``pseudonyms:``), after Hao et al. and Wang et
al.'s anonymous authentication.

Every household trades and is metered in each market interval under a
one-time prosumer account and a one-time meter key, registered with blind
signatures of the operator (`gridledger.contracts.pseudonyms`), so that no
account on chain serves two intervals of a household (what the values and
the published classes still reveal is measured: ``docs/linkage.md``). For each interval
the household buys a ticket from its own account (the same for every
household: it reveals only that the household trades), which pays the
``bond`` its pseudonym holds in the Settlement to bid with; what a
pseudonym earns stays under its key. The timeline is
`gridledger.agents.pseudonym_plan`.

==================  ===================================================================================
field               meaning
==================  ===================================================================================
``bond``            what each ticket costs and each pseudonym holds in the Settlement: its bids' escrow
                    and what pays its grid bill; null (the default): the largest class's bill for a whole
                    interval at its meter rating, grid buy price plus fee, which pays any honest pseudonym's
                    bill (a seller that does not deliver owes a penalty on top, unpaid beyond the bond).
                    Each household's ``market.endowment`` must pay a bond per interval [token]
``class_step_kw``   households fall into classes of limits (meter rating, PV peak, battery power)
                    rounded up to multiples of this, so a pseudonym's registered limits do not single out
                    its household; the step doubles until there are at most eight classes [kW]
``min_class_size``  fewest households of a class: smaller classes merge into the class that covers
                    them at the least power, so a pseudonym's class never narrows its household down to
                    fewer than this many (all households if there are fewer)
==================  ===================================================================================
"""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field

FIRST_INTERVAL = 2
"""The first interval traded under pseudonyms: its ticket and request go out at s_0, its registration at s_1
(`gridledger.agents.pseudonym_plan`); nobody trades intervals 0 and 1."""


class Pseudonyms(BaseModel):
    """Per-interval pseudonyms for every household (``pseudonyms:``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    bond: Annotated[float, Field(gt=0.0, le=1e6)] | None = None
    class_step_kw: Annotated[float, Field(gt=0.0, le=1000.0)] = 5.0
    min_class_size: Annotated[int, Field(ge=1, le=1000)] = 5
