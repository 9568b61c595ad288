"""Seeded picks of prosumers, the same in every federate: each use draws from its own stream of the study's seed."""

from __future__ import annotations

import numpy as np


def picked(n: int, count: int, seed: int, stream: int) -> np.ndarray:
    """A mask of `count` of `n` prosumers drawn without replacement from the generator of (`seed`, `stream`). (n,) bool

    The stream keeps one use's pick from moving when another use draws.
    """
    mask = np.zeros(n, dtype=bool)
    mask[np.random.default_rng([seed, stream]).permutation(n)[:count]] = True
    return mask
