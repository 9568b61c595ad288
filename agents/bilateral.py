"""Bilateral trades of local PV in two phases (``two_phase``): who takes part, who pairs with whom, trade ids.

After Dorri et al.: a buyer and a seller agree on a trade peer to peer
(routed by public key) and settle it in two phases on
``TwoPhaseTrade.vy``. Here, before each interval every participant whose
forecast (`gridledger.agents.prosumer.expected_exports_wh`) is a deficit
is paired with one whose forecast is a surplus, largest with largest
(`pairs`); the trade is a firm share of the smaller of the two forecasts. A trade's id
names its interval and buyer (`trade_id`), so every federate can tell
which interval a trade on chain delivers in.
"""

from __future__ import annotations

import numpy as np

from gridledger.agents.draws import picked
from gridledger.study import Study

PARTICIPANT_STREAM = 0x2FC
"""Tag of the random stream that draws who takes part (with the study's seed)."""
TRADE_ID_PREFIX = b"2pc/"


def participants(n: int, share: float, seed: int) -> np.ndarray:
    """Which of `n` prosumers take part: max(1, round(`share` x n)) of them, drawn with `seed`. (n,) bool"""
    return picked(n, max(1, round(share * n)), seed, PARTICIPANT_STREAM)


def pairs(exports_wh: np.ndarray, taking_part: np.ndarray, firm_share: float = 1.0) -> list[tuple[int, int, int]]:
    """(buyer, seller, energy [Wh]) of an interval: participants with a forecast deficit, largest first, each paired
    with the participant of the largest remaining forecast surplus; the energy is `firm_share` of the smaller of the
    two, rounded down (pairs left with nothing trade nothing). [Wh]

    Ties go to the lower index; a side without a partner trades nothing.
    """
    exports_wh = np.asarray(exports_wh)
    buyers = sorted((i for i in np.flatnonzero(taking_part) if exports_wh[i] < 0), key=lambda i: (exports_wh[i], i))
    sellers = sorted((i for i in np.flatnonzero(taking_part) if exports_wh[i] > 0), key=lambda i: (-exports_wh[i], i))
    trades = [(int(b), int(s), int(firm_share * min(-exports_wh[b], exports_wh[s]))) for b, s in zip(buyers, sellers)]
    return [trade for trade in trades if trade[2] > 0]


def trade_id(interval: int, buyer: str) -> bytes:
    """The id of `buyer`'s trade delivering in `interval`: the prefix, the interval (4 bytes), the address. [32 B]"""
    return (TRADE_ID_PREFIX + interval.to_bytes(4, "big") + bytes.fromhex(buyer[2:])).ljust(32, b"\0")


def trade_interval(trade_id_hex: str) -> int | None:
    """The interval a trade id names, None if it is not one of `trade_id`'s."""
    raw = bytes.fromhex(trade_id_hex.removeprefix("0x"))
    if not raw.startswith(TRADE_ID_PREFIX):
        return None
    return int.from_bytes(raw[len(TRADE_ID_PREFIX):len(TRADE_ID_PREFIX) + 4], "big")


def silent(study: Study, name: str, interval: int) -> bool:
    """Whether prosumer `name`'s meter loses its confirmations of `interval`'s trades (``two_phase.silent_meters``:
    intervals that start in [start_s, end_s))."""
    spec = study.two_phase.silent_meters if study.two_phase is not None else None
    if spec is None or name not in spec.prosumers:
        return False
    start_s = interval * study.market_interval_s
    return spec.start_s <= start_s and (spec.end_s is None or start_s < spec.end_s)
