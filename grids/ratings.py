"""Whether a line has a thermal rating at all: numpy only, so KPIs can ask without loading pandapower."""

import numpy as np

__all__ = ["UNRATED_MAX_I_KA", "unrated_lines"]

UNRATED_MAX_I_KA = 100.0
"""A line "rated" at this current or more has no rating: far above the ampacity of any cable or overhead conductor
bundle (a few kA per circuit), far below placeholders such as the 99999 kA of pandapower's MATPOWER converter. [kA]"""


def unrated_lines(max_i_ka) -> np.ndarray:
    """Whether each line lacks a thermal rating, so that its loading means nothing.

    MATPOWER marks a branch without a limit by ``RATE_A = 0`` ("unlimited");
    pandapower's converter (``from_ppc``, which made ``case33bw`` and the
    other MATPOWER cases of ``pandapower.networks``) turns that into
    ``max_i_ka = 99999``, and the loading it then reports (current over
    99999 kA) is a tiny number, not a margin. A rating that is missing, not positive or
    at least `UNRATED_MAX_I_KA` is no rating.

    Parameters
    ----------
    max_i_ka : array_like
        Thermal current rating of each line, pandapower's
        ``net.line.max_i_ka``. [kA]

    Returns
    -------
    unrated : ndarray of bool
        Same shape as ``max_i_ka``; True where it is NaN, infinite, zero or
        negative, or at least `UNRATED_MAX_I_KA`.

    References
    ----------
    R. D. Zimmerman, C. E. Murillo-Sanchez, "MATPOWER User's Manual",
    version 7.1, 2020, Table B-3 (branch data: ``RATE_A``, "set to 0 for
    unlimited").

    pandapower ``converter.pypower.from_ppc``: ``MAX_VAL = 99999.`` replaces
    a zero ``RATE_A`` in ``max_i_ka``.
    """
    rating = np.asarray(max_i_ka, dtype=float)
    return ~(np.isfinite(rating) & (rating > 0.0) & (rating < UNRATED_MAX_I_KA))
