"""Durations in study files: whole seconds, or a number with a unit (``"15min"``, ``"2h"``, ``"1d"``).

Every ``*_s`` field of the study schema that holds a duration or a time
since the study start is a `Seconds`: ``market_interval_s: 15min`` and
``market_interval_s: 900`` are the same study, and the resolved
``study.yaml`` of a run holds the seconds.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import BeforeValidator

from gridledger.units import SECONDS_PER_DAY, SECONDS_PER_HOUR, SECONDS_PER_MINUTE

UNIT_S = {"d": SECONDS_PER_DAY, "h": SECONDS_PER_HOUR, "min": SECONDS_PER_MINUTE, "s": 1}
"""Seconds per unit a duration may be written in."""
_PART = r"(\d+(?:\.\d+)?)\s*(d|h|min|s)"
ALLOWED = "whole seconds (900) or numbers with a unit d, h, min or s ('15min', '2h', '1d', '1h30min')"


def parse_duration_s(value: object) -> object:
    """Seconds of a duration written as text; numbers pass unchanged for the field's own checks.

    Parameters
    ----------
    value : object
        ``"15min"``, ``"1h30min"``, ``"2h"``, ``"1d"``, ``"30s"`` or ``"900"``;
        an int or float is returned as it is.

    Returns
    -------
    seconds : int or object
        The duration [s] for text, else `value`.

    Raises
    ------
    ValueError
        For true/false and for text that is not a duration, saying what is allowed.
    """
    if isinstance(value, bool):
        raise ValueError(f"a duration is required, not true/false: give {ALLOWED}")
    if not isinstance(value, str):
        return value
    text = value.strip()
    if text.isdigit():
        return int(text)
    if not text or not re.fullmatch(rf"(?:{_PART}\s*)+", text):
        raise ValueError(f"not a duration: give {ALLOWED}")
    seconds = sum(float(number) * UNIT_S[unit] for number, unit in re.findall(_PART, text))
    if seconds != int(seconds):
        raise ValueError(f"{value!r} is {seconds:g} s, not a whole number of seconds")
    return int(seconds)


Seconds = Annotated[int, BeforeValidator(parse_duration_s)]
"""A duration or a time since the study start in whole seconds, also written with a unit (`parse_duration_s`). [s]"""
