"""Last-resort load shedding: whole load buses cut in rotation until the substation import is within its cap.

When an upstream shortage caps what a feeder may import (``events.import_caps``)
and nothing else has brought the import down, the operator disconnects whole
load buses, as a rotating outage does: every load, PV system (anti-islanding
trips it, IEEE 1547-2018 §8.1) and battery on the bus goes off for the step.
`Rotation` cuts buses from the front of its queue one at a time, re-solving the
power flow after each, until the import is within the cap or every bus is cut;
the buses cut go to the back of the queue, so the next capped step starts with
buses that have not been cut most recently. Buses of households the operator
activated for reserve or load shed are cut last. The grid federate records what
each cut bus's loads would have drawn as unserved (`gridledger.agents.feeder`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

TOLERANCE_MW = 1e-9
"""An import this far above the cap counts as within it (floating-point noise of the power flow). [MW]"""


class Rotation:
    """The operator's rotation over the feeder's load buses (pandapower bus indices), first cut first."""

    def __init__(self, buses: Sequence[int]):
        self.queue = list(buses)

    def shed(self, import_mw: Callable[[frozenset[int]], float], cap_mw: float,
             last: frozenset[int] = frozenset()) -> list[int]:
        """The buses to cut this step: the shortest front of the queue whose cut brings the import within the cap.

        Parameters
        ----------
        import_mw : callable
            The substation import with a set of buses cut (one power flow),
            NaN if it did not converge (which counts as above the cap). [MW]
        cap_mw : float
            The import cap of the step. [MW]
        last : frozenset of int, optional
            Buses to cut only after every other: those of the households
            delivering reserve or load shed the operator activated, whose
            cut would undo their help and fail their contract.

        Returns
        -------
        list of int
            The buses cut, in cutting order; all of them if even that leaves
            the import above the cap. The queue moves them to its back.
        """
        order = [b for b in self.queue if b not in last] + [b for b in self.queue if b in last]
        cut: list[int] = []
        drawn_mw = import_mw(frozenset())
        while not drawn_mw <= cap_mw + TOLERANCE_MW and len(cut) < len(order):
            cut.append(order[len(cut)])
            drawn_mw = import_mw(frozenset(cut))
        self.queue = [b for b in self.queue if b not in cut] + cut
        return cut
