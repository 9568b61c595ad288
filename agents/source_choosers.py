"""Which buyers choose PV-sourced energy (``market.source_choice``), the same in every federate.

Named prosumers, or a ``share`` of them picked with a generator seeded from
the study seed and `CHOICE_STREAM` (so the pick does not move when attacks
or devices are added).
"""

from __future__ import annotations

import numpy as np

from gridledger.study import SourceChoice

CHOICE_STREAM = 5
"""Second word of the seed of the share's pick, apart from the attacks' (their list positions)."""


def pv_choosers(spec: SourceChoice | None, names: list[str], seed: int) -> tuple[int, ...]:
    """Positions (in `names` order) of the prosumers that choose PV, sorted; none without `spec`."""
    if spec is None:
        return ()
    if spec.prosumers is not None:
        return tuple(sorted(names.index(name) for name in set(spec.prosumers)))
    rng = np.random.default_rng([seed, CHOICE_STREAM])
    return tuple(sorted(rng.choice(len(names), max(1, round(spec.share * len(names))), replace=False).tolist()))
