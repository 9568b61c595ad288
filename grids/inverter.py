"""Smart PV inverters: IEEE 1547-2018 volt-var and volt-watt curves.

The curves are pure functions of the voltage at the point of connection
(:func:`volt_var_q_pu`, :func:`volt_watt_p_limit_pu`), combined within the
inverter's kVA rating by :func:`inverter_output`. :class:`InverterController`
applies them to ``net.sgen`` rows as a pandapower controller, so the
inverters and the feeder voltages converge together inside each power flow:
:class:`~gridledger.grids.powerflow.PowerFlow` runs it through pandapower's
``run_control`` like the controllers of :mod:`gridledger.grids.controls`.
The caller's ``net.sgen.p_mw`` is the PV's available power; the inverter's
output is in ``net.res_sgen``.

Sign convention: reactive power positive = injection into the grid
(over-excited, capacitive), as ``q_mvar`` of pandapower's ``sgen``.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np
import pandapower
from pandapower.control.basic_controller import Controller

__all__ = [
    "VOLT_VAR_CAT_B", "VOLT_WATT_CAT_B", "VoltVarCurve", "VoltWattCurve", "Inverter", "volt_var_q_pu",
    "volt_watt_p_limit_pu", "inverter_output", "InverterController", "add_inverter_control",
]


# Used by the curves' __post_init__, so defined before the default curves are built.
def _check_finite(curve) -> None:
    for name, value in vars(curve).items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")


@dataclass(frozen=True)
class VoltVarCurve:
    """Volt-var (voltage-reactive power) curve through four points.

    Reactive power is linear between the points and flat outside them:
    ``q1_pu`` below ``v1_pu``, ``q4_pu`` above ``v4_pu``. The defaults are
    the Category B default settings of IEEE 1547-2018 with the reference
    voltage at 1.0 pu: a deadband from 0.98 to 1.02 pu and 44 % of the
    nameplate apparent power, injected at 0.92 pu and absorbed at 1.08 pu.

    Attributes
    ----------
    v1_pu, v2_pu, v3_pu, v4_pu : float
        Voltages of the points, ``0 < v1 < v2 <= v3 < v4``. [pu]
    q1_pu, q2_pu, q3_pu, q4_pu : float
        Reactive power at each point, positive = injection, in pu of the
        inverter's rated apparent power; within [-1, 1] and
        ``q1 >= q2 >= q3 >= q4``. The standard lets Q2 and Q3 be set
        independently; a rising segment is rejected here because reactive
        power that grows with voltage feeds back positively and the
        controller would not settle. [pu]

    Raises
    ------
    ValueError
        Naming the first field out of range.

    References
    ----------
    IEEE Std 1547-2018, "IEEE Standard for Interconnection and
    Interoperability of Distributed Energy Resources with Associated
    Electric Power Systems Interfaces," clause 5.3.3 and Table 8
    (voltage-reactive power settings, Category B defaults).
    """

    v1_pu: float = 0.92
    q1_pu: float = 0.44
    v2_pu: float = 0.98
    q2_pu: float = 0.0
    v3_pu: float = 1.02
    q3_pu: float = 0.0
    v4_pu: float = 1.08
    q4_pu: float = -0.44

    def __post_init__(self):
        _check_finite(self)
        if not self.v1_pu > 0.0:
            raise ValueError(f"v1_pu must be positive, got {self.v1_pu!r}")
        for name, value, lower, strict in (("v2_pu", self.v2_pu, self.v1_pu, True),
                                           ("v3_pu", self.v3_pu, self.v2_pu, False),
                                           ("v4_pu", self.v4_pu, self.v3_pu, True)):
            if value < lower or (strict and value == lower):
                order = ">" if strict else ">="
                raise ValueError(f"{name} must be {order} the point before it ({lower!r}), got {value!r}")
        for name in ("q1_pu", "q2_pu", "q3_pu", "q4_pu"):
            if not -1.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be within [-1, 1] (pu of rated kVA), got {getattr(self, name)!r}")
        for name, value, before in (("q2_pu", self.q2_pu, self.q1_pu), ("q3_pu", self.q3_pu, self.q2_pu),
                                    ("q4_pu", self.q4_pu, self.q3_pu)):
            if value > before:
                raise ValueError(f"{name} must not exceed the point before it ({before!r}): "
                                 f"reactive power may not rise with voltage, got {value!r}")


@dataclass(frozen=True)
class VoltWattCurve:
    """Volt-watt (voltage-active power) limit through two points.

    The active power limit is the rated active power up to ``v1_pu``,
    falls linearly to ``p2_pu`` at ``v2_pu`` and stays there above it.

    The defaults are the Category B defaults of IEEE 1547-2018 for a DER
    that can only generate active power, such as PV: 1.0 at 1.06 pu and
    P2 at 1.10 pu, where Table 10 sets P2 to "the lesser of 0.2 Prated or
    P'min", P'min being the DER's minimum active power output in pu of its
    rating. The default 0.2 is therefore that of a DER whose P'min is at
    least 0.2 pu; one that can turn down further gets P2 = P'min. DER that
    can also absorb active power (storage, P'2 = 0 by default) are not
    modelled by this curve.

    Attributes
    ----------
    v1_pu, v2_pu : float
        Voltages of the points, ``0 < v1 < v2``. [pu]
    p2_pu : float
        Active power limit at and above ``v2_pu``, in pu of the rated
        active power, within [0, 1]. [pu]

    Raises
    ------
    ValueError
        Naming the first field out of range.

    References
    ----------
    IEEE Std 1547-2018, clause 5.4.2 and Table 10 (voltage-active power
    settings, Category B defaults, P2 and its footnote on P'min).

    IEEE Std 1547.1-2020, Table 31 (the same defaults as characteristic 1
    of the volt-watt conformance test).
    """

    v1_pu: float = 1.06
    v2_pu: float = 1.10
    p2_pu: float = 0.2

    def __post_init__(self):
        _check_finite(self)
        if not self.v1_pu > 0.0:
            raise ValueError(f"v1_pu must be positive, got {self.v1_pu!r}")
        if not self.v2_pu > self.v1_pu:
            raise ValueError(f"v2_pu must be > v1_pu ({self.v1_pu!r}), got {self.v2_pu!r}")
        if not 0.0 <= self.p2_pu <= 1.0:
            raise ValueError(f"p2_pu must be within [0, 1] (pu of rated active power), got {self.p2_pu!r}")


VOLT_VAR_CAT_B = VoltVarCurve()
"""IEEE 1547-2018 Category B default volt-var curve (Table 8)."""

VOLT_WATT_CAT_B = VoltWattCurve()
"""IEEE 1547-2018 Category B default volt-watt curve (Table 10), P2 = 0.2."""


@dataclass(frozen=True)
class Inverter:
    """Rating of one PV inverter and the curves it runs.

    Attributes
    ----------
    s_rated_kva : float
        Nameplate apparent power rating, > 0. [kVA]
    p_rated_kw : float
        Rated active power, ``0 < p_rated_kw <= s_rated_kva``. [kW]
    volt_var : VoltVarCurve or None, default VOLT_VAR_CAT_B
        Volt-var curve; None disables it (no reactive power).
    volt_watt : VoltWattCurve or None, default VOLT_WATT_CAT_B
        Volt-watt curve; None disables it (active power limited only by
        the ratings).

    Raises
    ------
    ValueError
        Naming the rating out of range.
    """

    s_rated_kva: float
    p_rated_kw: float
    volt_var: VoltVarCurve | None = VOLT_VAR_CAT_B
    volt_watt: VoltWattCurve | None = VOLT_WATT_CAT_B

    def __post_init__(self):
        if not (math.isfinite(self.s_rated_kva) and self.s_rated_kva > 0.0):
            raise ValueError(f"s_rated_kva must be positive and finite, got {self.s_rated_kva!r}")
        if not 0.0 < self.p_rated_kw <= self.s_rated_kva:
            raise ValueError(f"p_rated_kw must be within (0, s_rated_kva = {self.s_rated_kva!r}], "
                             f"got {self.p_rated_kw!r}")


def volt_var_q_pu(vm_pu, curve: VoltVarCurve = VOLT_VAR_CAT_B) -> np.ndarray | float:
    """Reactive power of a smart inverter from its volt-var curve.

    Parameters
    ----------
    vm_pu : array_like
        Voltage at the point of connection. [pu]
    curve : VoltVarCurve, default VOLT_VAR_CAT_B
        Four-point curve; piecewise linear, flat outside its end points.

    Returns
    -------
    q_pu : float or ndarray
        Reactive power, positive = injection, in pu of rated kVA.

    References
    ----------
    IEEE Std 1547-2018, clause 5.3.3 and Table 8 (Category B default
    settings).
    """
    return np.interp(np.asarray(vm_pu, dtype=float),
                     (curve.v1_pu, curve.v2_pu, curve.v3_pu, curve.v4_pu),
                     (curve.q1_pu, curve.q2_pu, curve.q3_pu, curve.q4_pu))


def volt_watt_p_limit_pu(vm_pu, curve: VoltWattCurve = VOLT_WATT_CAT_B) -> np.ndarray | float:
    """Active power limit of a smart inverter from its volt-watt curve.

    Parameters
    ----------
    vm_pu : array_like
        Voltage at the point of connection. [pu]
    curve : VoltWattCurve, default VOLT_WATT_CAT_B
        Two-point curve; 1.0 below ``v1_pu``, ``p2_pu`` above ``v2_pu``.

    Returns
    -------
    p_limit_pu : float or ndarray
        Maximum active power, in pu of the rated active power.

    References
    ----------
    IEEE Std 1547-2018, clause 5.4.2 and Table 10 (Category B default
    settings).
    """
    return np.interp(np.asarray(vm_pu, dtype=float), (curve.v1_pu, curve.v2_pu), (1.0, curve.p2_pu))


def inverter_output(p_available_kw, vm_pu, inverter: Inverter) -> tuple[np.ndarray, np.ndarray]:
    """Active and reactive power of a PV inverter at a voltage, reactive power first.

    The volt-var curve sets the reactive power (``q_pu * s_rated_kva``).
    Active power is the available power, limited by the rated active power,
    by the volt-watt curve (``p_limit_pu * p_rated_kw``) and by what the
    kVA rating leaves next to the reactive power,
    ``sqrt(s_rated_kva**2 - q_kvar**2)``. IEEE 1547-2018 lets the DER
    choose between reactive and active power priority when its rating is
    reached; reactive power priority is chosen here so that the voltage
    support the curve asks for is always delivered, as with pandapower's
    ``DERController(q_prio=True)``. Its cost is PV energy: an inverter with
    ``p_rated_kw`` above ``sqrt(1 - 0.44**2) = 0.898`` of ``s_rated_kva``
    curtails at the ends of the default volt-var curve.

    Parameters
    ----------
    p_available_kw : array_like
        Active power the PV array can deliver, >= 0. [kW]
    vm_pu : array_like
        Voltage at the point of connection; broadcast with
        ``p_available_kw``. [pu]
    inverter : Inverter
        Ratings and enabled curves.

    Returns
    -------
    p_kw : float or ndarray
        Active power output, ``0 <= p_kw <= p_available_kw``. [kW]
    q_kvar : float or ndarray
        Reactive power output, positive = injection;
        ``p_kw**2 + q_kvar**2 <= s_rated_kva**2``. [kvar]

    Raises
    ------
    ValueError
        If an available power is negative or not finite.

    References
    ----------
    IEEE Std 1547-2018, clauses 5.2 (reactive power capability, Table 7),
    5.3.3 (voltage-reactive power mode, Table 8) and 5.4.2
    (voltage-active power mode, Table 10).

    pandapower, ``pandapower.control.DERController`` (saturation to
    ``saturate_sn_mva`` with ``q_prio``), https://www.pandapower.org.
    """
    p_available_kw, vm_pu = np.broadcast_arrays(np.asarray(p_available_kw, dtype=float),
                                                np.asarray(vm_pu, dtype=float))
    if not np.all(np.isfinite(p_available_kw) & (p_available_kw >= 0.0)):
        raise ValueError(f"p_available_kw must be finite and >= 0, got {p_available_kw}")
    s_kva = inverter.s_rated_kva
    q_pu = np.zeros_like(vm_pu) if inverter.volt_var is None else volt_var_q_pu(vm_pu, inverter.volt_var)
    p_limit_pu = np.ones_like(vm_pu) if inverter.volt_watt is None else volt_watt_p_limit_pu(vm_pu, inverter.volt_watt)
    q_kvar = q_pu * s_kva
    p_limit_kw = p_limit_pu * inverter.p_rated_kw
    # |q_kvar| <= s_kva because |q_pu| <= 1; the clip only absorbs rounding.
    p_headroom_kw = np.sqrt(np.clip(s_kva ** 2 - q_kvar ** 2, 0.0, None))
    p_kw = np.minimum(p_available_kw, np.minimum(p_limit_kw, p_headroom_kw))
    return p_kw, q_kvar


class InverterController(Controller):
    """Volt-var and volt-watt inverters on ``net.sgen`` rows, inside the power flow.

    At the start of each power flow (``initialize_control``) the
    controller takes each sgen's ``p_mw`` as the PV's available power, as
    the caller set it for the step (``PowerFlow`` writes
    ``Injections.sgen_p_mw`` there). After each power flow it computes
    every inverter's target output at its bus voltage with
    :func:`inverter_output`; while a target differs from the present output
    by more than the tolerance, it moves the output a fraction of the way
    to the target, writes it to ``net.sgen`` (``p_mw``, ``q_mvar``) and
    pandapower solves again. When it converges, every inverter's output is
    on its curves at the voltage the output produces, within the
    tolerance. Then ``net.sgen.p_mw`` gets the available power back, so
    the element table keeps the set point and repeated power flows do not
    ratchet the PV down; the output is in ``net.res_sgen``. ``q_mvar``
    keeps the last output, the next step's starting point.

    The fraction matters: a move changes the voltages, which move the
    targets back against it, and with steep curves on a weak feeder a
    full move overshoots (the plain fixed-point iteration diverges). The
    first move goes ``damping`` of the way; each later one goes
    ``min(damping, 1 / r)``, where ``r`` is how much the last move shrank
    the mismatch along itself, per unit of move (a secant, or
    Barzilai-Borwein, step size), and half the last fraction if the
    mismatch grew instead. On case33bw that settles in 7-9 iterations
    with PV pushing the feeder to 1.08 pu without control, and in 22-23
    at 1.24-1.30 pu, within the 30 that pandapower's ``run_control``
    allows. Moving a fraction of
    the way keeps the output inside the kVA circle and below the
    available power, since both the present output and the target are.

    Built on pandapower's ``Controller`` rather than its
    ``DERController``, whose active power does not depend on voltage (no
    volt-watt) and whose curves are VDE ones; the curve values come from
    this module's tested functions.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; the controller adds itself to ``net.controller``.
    sgen_index : sequence of int
        ``net.sgen`` rows, each with ``scaling`` 1 (the controller writes
        the inverter's output itself).
    inverters : sequence of Inverter
        One per sgen, in the same order. The list may be changed between
        power flows (new settings from the DER federate).
    damping : float, default 1.0
        Largest fraction of the way to the target taken in one iteration,
        and the first one's, in (0, 1].
    tolerance_kw, tolerance_kvar : float, default 0.01
        Largest mismatch between target and output at convergence, > 0.
        [kW], [kvar]
    **kwargs
        Passed to pandapower's ``Controller`` (``name``, ``order``,
        ``level``, ``in_service``).

    Attributes
    ----------
    p_available_kw : ndarray
        Available PV power of each sgen in the current power flow. [kW]
    iterations : int
        Control iterations of the last power flow (outputs written).

    Raises
    ------
    ValueError
        For an unknown or repeated sgen, an sgen whose ``scaling`` is not
        1, a count of inverters that differs from the sgens, or a damping
        or tolerance out of range.

    References
    ----------
    IEEE Std 1547-2018, clauses 5.3.3 and 5.4.2.

    L. Thurner et al., "pandapower - an open-source Python tool for
    convenient modeling, analysis, and optimization of electric power
    systems," IEEE Trans. Power Systems, vol. 33, no. 6, pp. 6510-6521,
    2018 (the controller loop ``run_control``).

    J. Barzilai and J. M. Borwein, "Two-point step size gradient methods,"
    IMA J. Numerical Analysis, vol. 8, no. 1, pp. 141-148, 1988 (the step
    size).
    """

    def __init__(self, net, sgen_index, inverters, damping: float = 1.0, tolerance_kw: float = 0.01,
                 tolerance_kvar: float = 0.01, **kwargs):
        sgen_index = [int(sgen) for sgen in sgen_index]
        unknown = [sgen for sgen in sgen_index if sgen not in net.sgen.index]
        if unknown:
            raise ValueError(f"net.sgen has no rows {unknown}")
        if len(set(sgen_index)) != len(sgen_index):
            raise ValueError(f"sgen_index repeats rows: {sgen_index}")
        scaled = net.sgen.loc[sgen_index, "scaling"]
        if (scaled != 1.0).any():
            raise ValueError(f"sgens {scaled.index[scaled != 1.0].tolist()} have scaling "
                             f"{scaled[scaled != 1.0].tolist()}; InverterController needs scaling 1")
        inverters = list(inverters)
        if len(inverters) != len(sgen_index):
            raise ValueError(f"inverters must have one entry per sgen ({len(sgen_index)}), got {len(inverters)}")
        if not 0.0 < damping <= 1.0:
            raise ValueError(f"damping must be within (0, 1], got {damping!r}")
        for name, value in (("tolerance_kw", tolerance_kw), ("tolerance_kvar", tolerance_kvar)):
            if not value > 0.0:
                raise ValueError(f"{name} must be positive, got {value!r}")
        super().__init__(net, **kwargs)
        self.sgen_index = np.array(sgen_index, dtype=np.int64)
        self.bus = net.sgen.loc[sgen_index, "bus"].to_numpy(dtype=np.int64)
        self.inverters = inverters
        self.damping = float(damping)
        self.tolerance_kw = float(tolerance_kw)
        self.tolerance_kvar = float(tolerance_kvar)
        self.p_available_kw = net.sgen.loc[sgen_index, "p_mw"].to_numpy(dtype=float) * 1e3
        self.iterations = 0
        self._p_kw = self.p_available_kw.copy()
        self._q_kvar = net.sgen.loc[sgen_index, "q_mvar"].to_numpy(dtype=float) * 1e3
        self._p_target_kw = self._p_kw
        self._q_target_kvar = self._q_kvar
        self._step = self.damping
        self._last_move = None

    def initialize_control(self, net):
        """Start of a power flow: read the available power, keep the reactive power."""
        self.p_available_kw = net.sgen.loc[self.sgen_index, "p_mw"].to_numpy(dtype=float) * 1e3
        self._p_kw = self.p_available_kw.copy()
        self._q_kvar = net.sgen.loc[self.sgen_index, "q_mvar"].to_numpy(dtype=float) * 1e3
        self._step = self.damping
        self._last_move = None
        self.iterations = 0

    def is_converged(self, net) -> bool:
        """Whether every output is within tolerance of its curves at the solved voltages."""
        vm_pu = net.res_bus.loc[self.bus, "vm_pu"].to_numpy(dtype=float)
        targets = [inverter_output(p_kw, vm, inverter)
                   for p_kw, vm, inverter in zip(self.p_available_kw, vm_pu, self.inverters)]
        self._p_target_kw = np.array([p for p, _ in targets], dtype=float)
        self._q_target_kvar = np.array([q for _, q in targets], dtype=float)
        dp_kw = np.abs(self._p_target_kw - self._p_kw)
        dq_kvar = np.abs(self._q_target_kvar - self._q_kvar)
        return bool(np.all(dp_kw <= self.tolerance_kw) and np.all(dq_kvar <= self.tolerance_kvar))

    def control_step(self, net):
        """Move the outputs towards their targets and write them to ``net.sgen``."""
        mismatch_kw = np.concatenate([self._p_target_kw - self._p_kw, self._q_target_kvar - self._q_kvar])
        if self._last_move is not None:
            move_kw, last_mismatch_kw = self._last_move
            # Secant estimate of how much of a move the feeder undoes (1 = none):
            # the mismatch changed by -response * move along the move.
            response = float(move_kw @ (last_mismatch_kw - mismatch_kw)) / float(move_kw @ move_kw)
            self._step = min(self.damping, 1.0 / response) if response > 0.0 else self._step / 2.0
        move_kw = self._step * mismatch_kw
        self._last_move = (move_kw, mismatch_kw)
        n = len(self.sgen_index)
        self._p_kw = self._p_kw + move_kw[:n]
        self._q_kvar = self._q_kvar + move_kw[n:]
        net.sgen.loc[self.sgen_index, "p_mw"] = self._p_kw / 1e3
        net.sgen.loc[self.sgen_index, "q_mvar"] = self._q_kvar / 1e3
        self.iterations += 1

    def finalize_control(self, net):
        """Give ``net.sgen.p_mw`` the available power back; the output stays in ``res_sgen``."""
        net.sgen.loc[self.sgen_index, "p_mw"] = self.p_available_kw / 1e3


def add_inverter_control(net: pandapower.pandapowerNet, sgen_index,
                         volt_var: VoltVarCurve | None = VOLT_VAR_CAT_B,
                         volt_watt: VoltWattCurve | None = VOLT_WATT_CAT_B,
                         damping: float = 1.0) -> InverterController:
    """Put volt-var and volt-watt inverters on PV sgens, rated at their ``sn_mva``.

    Each sgen gets an :class:`Inverter` whose apparent power rating and
    rated active power are both its ``sn_mva`` (the PV's kWp in
    :func:`~gridledger.grids.prosumers.add_prosumer_devices`), so with the
    default volt-var curve it curtails active power at the curve's ends
    (reactive power priority, :func:`inverter_output`).

    Parameters
    ----------
    net : pandapowerNet
        The feeder; modified in place (``net.controller``).
    sgen_index : sequence of int
        ``net.sgen`` rows, each with a positive ``sn_mva`` and ``scaling`` 1.
    volt_var : VoltVarCurve or None, default VOLT_VAR_CAT_B
        Curve of every inverter; None disables volt-var.
    volt_watt : VoltWattCurve or None, default VOLT_WATT_CAT_B
        Curve of every inverter; None disables volt-watt.
    damping : float, default 1.0
        See :class:`InverterController`.

    Returns
    -------
    controller : InverterController

    Raises
    ------
    ValueError
        If an sgen does not exist or has no positive ``sn_mva``, or as
        :class:`InverterController`.

    References
    ----------
    See :class:`InverterController`.
    """
    sgen_index = [int(sgen) for sgen in sgen_index]
    unknown = [sgen for sgen in sgen_index if sgen not in net.sgen.index]
    if unknown:
        raise ValueError(f"net.sgen has no rows {unknown}")
    inverters = []
    for sgen in sgen_index:
        s_rated_kva = float(net.sgen.at[sgen, "sn_mva"]) * 1e3
        if not s_rated_kva > 0.0:
            raise ValueError(f"sgen {sgen} has sn_mva {net.sgen.at[sgen, 'sn_mva']!r}; the inverter rating "
                             "needs a positive sn_mva")
        inverters.append(Inverter(s_rated_kva, s_rated_kva, volt_var=volt_var, volt_watt=volt_watt))
    return InverterController(net, sgen_index, inverters, damping=damping, name="PV inverters")
