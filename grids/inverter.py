"""Smart PV inverters: IEEE 1547-2018 volt-var and volt-watt curves.

The curves are pure functions of the voltage at the point of connection
(:func:`volt_var_q_pu`, :func:`volt_watt_p_limit_pu`), combined within the
inverter's kVA rating by :func:`inverter_output`.
:class:`~gridledger.grids.inverter_control.InverterController` applies them
to ``net.sgen`` rows inside the power flow. This module imports no
pandapower, so the study schema and the agents can use the curves.

Sign convention: reactive power positive = injection into the grid
(over-excited, capacitive), as ``q_mvar`` of pandapower's ``sgen``.
"""

import math
import numbers
from dataclasses import dataclass

import numpy as np

__all__ = [
    "VOLT_VAR_CAT_B", "VOLT_WATT_CAT_B", "VoltVarCurve", "VoltWattCurve", "Inverter", "volt_var_q_pu",
    "volt_watt_p_limit_pu", "inverter_output",
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
