"""Local grid controls as pandapower controllers inside the power flow.

Both controllers act at most once per power-flow step, like the field
devices they model, whose mechanisms need seconds to operate: the first
convergence check of a step (after pandapower's initial power flow) decides,
the action is taken, the power flow is solved again, and the controller
reports convergence for the rest of the step. :class:`~gridledger.grids.
powerflow.PowerFlow` runs them through pandapower's ``run_control`` when
``net.controller`` has them; so does pandapower's own ``run_timeseries``,
where one time step is one power-flow step.
"""

import numpy as np
import pandas as pd
import pandapower
from pandapower.auxiliary import read_from_net
from pandapower.control import DiscreteTapControl
from pandapower.control.controller.shunt_control import ShuntController

__all__ = ["DelayedTapControl", "SwitchedCapacitor", "add_oltc", "add_switched_capacitor"]


class DelayedTapControl(DiscreteTapControl):
    """On-load tap changer with a voltage deadband and a delay in steps.

    The voltage of the transformer's controlled bus is compared with
    ``vm_set_pu +/- deadband_pu`` after each step's first power flow. A
    voltage strictly outside the band counts one step; a voltage inside (or
    exactly at an edge) resets the count. When the count exceeds
    ``delay_steps``, the tap moves one position towards the band (using
    pandapower's :class:`~pandapower.control.DiscreteTapControl` step and
    tap limits), the step is solved again, and the count restarts, so
    further moves need another ``delay_steps + 1`` steps outside. With a
    step length ``dt``, the delay is ``delay_steps * dt`` seconds; 0 moves
    in the first step outside.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; the controller adds itself to ``net.controller``.
    element_index : int
        ``net.trafo`` index; it must have a tap changer (finite
        ``tap_pos``, ``tap_min``, ``tap_max``, ``tap_step_percent`` and a
        ``tap_changer_type``).
    vm_set_pu : float
        Voltage set point of the controlled bus. [pu]
    deadband_pu : float
        Half-width of the band around the set point, >= 0; more than half
        a tap step keeps a single move from overshooting the band. [pu]
    delay_steps : int
        Steps the voltage must stay outside the band before a move, >= 0.
    side : {"lv", "hv"}, default "lv"
        Side whose bus voltage is controlled.
    **kwargs
        Passed to pandapower's ``Controller`` (``name``, ``order``,
        ``level``, ``in_service``).

    Attributes
    ----------
    steps_outside : int
        Consecutive steps found outside the band since the last move.

    References
    ----------
    W. H. Kersting, "Distribution System Modeling and Analysis," 4th ed.,
    CRC Press, 2017, ch. 7 (step-voltage regulator control: voltage
    level, bandwidth, time delay).

    IEC 60214-1:2014, "Tap-changers - Part 1: Performance requirements and
    test methods."
    """

    def __init__(self, net, element_index: int, vm_set_pu: float, deadband_pu: float, delay_steps: int,
                 side: str = "lv", **kwargs):
        _check_tap_changer(net, element_index)
        if not deadband_pu >= 0.0:
            raise ValueError(f"deadband_pu must be non-negative, got {deadband_pu!r}")
        if isinstance(delay_steps, bool) or not isinstance(delay_steps, (int, np.integer)) or delay_steps < 0:
            raise ValueError(f"delay_steps must be a non-negative integer, got {delay_steps!r}")
        super().__init__(net, element_index, vm_lower_pu=vm_set_pu - deadband_pu,
                         vm_upper_pu=vm_set_pu + deadband_pu, side=side, element="trafo", **kwargs)
        self.vm_target_pu = float(vm_set_pu)
        self.deadband_pu = float(deadband_pu)
        self.delay_steps = int(delay_steps)
        self.steps_outside = 0
        self._decided = False

    def initialize_control(self, net):
        """Start of a power-flow step: the next convergence check decides."""
        super().initialize_control(net)
        self._decided = False

    def is_converged(self, net) -> bool:
        """Count the step and ask for a move once the delay has passed."""
        if self._decided or self.nothing_to_do(net):
            return True
        self._decided = True
        vm_pu = read_from_net(net, "res_bus", self.trafobus, "vm_pu", self._read_write_flag)
        outside = bool(vm_pu < self.vm_lower_pu or vm_pu > self.vm_upper_pu)
        self.steps_outside = self.steps_outside + 1 if outside else 0
        # DiscreteTapControl is converged inside the band or at a tap limit.
        if outside and not super().is_converged(net) and self.steps_outside > self.delay_steps:
            self.steps_outside = 0
            return False
        return True


class SwitchedCapacitor(ShuntController):
    """Voltage-controlled capacitor bank: on below one voltage, off above another.

    After each step's first power flow, a bank that is off switches on if
    its bus voltage is strictly below ``v_on_pu``; a bank that is on
    switches off if the voltage is strictly above ``v_off_pu``. Between the
    two thresholds it keeps its state (hysteresis). The bank is the
    ``net.shunt`` row ``shunt_index``; it switches by setting ``step`` to 1
    (on) or 0 (off), so the element stays in service and the net's element
    lists do not change. Built on pandapower's ``ShuntController``, which
    also disables a controller placed on the slack bus.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; the controller adds itself to ``net.controller``.
    shunt_index : int
        ``net.shunt`` index of the bank (``q_mvar < 0``: capacitive).
    v_on_pu, v_off_pu : float
        Switching thresholds, ``v_on_pu < v_off_pu``. [pu]
    **kwargs
        Passed to pandapower's ``ShuntController``.

    References
    ----------
    IEEE Std 1036-2020, "IEEE Guide for the Application of Shunt Power
    Capacitors," (automatic switching controls: voltage control with
    on/off thresholds).
    """

    def __init__(self, net, shunt_index: int, v_on_pu: float, v_off_pu: float, **kwargs):
        if shunt_index not in net.shunt.index:
            raise ValueError(f"net.shunt has no row {shunt_index!r}")
        if not v_on_pu < v_off_pu:
            raise ValueError(f"v_on_pu ({v_on_pu!r}) must be below v_off_pu ({v_off_pu!r})")
        super().__init__(net, shunt_index=int(shunt_index), **kwargs)
        self.v_on_pu = float(v_on_pu)
        self.v_off_pu = float(v_off_pu)
        self._decided = False

    def initialize_control(self, net):
        """Start of a power-flow step: the next convergence check decides."""
        self._decided = False

    def is_converged(self, net) -> bool:
        """Whether the bank's state fits its bus voltage (checked once per step)."""
        if self._decided or not net.shunt.at[self.shunt_index, "in_service"]:
            return True
        self._decided = True
        vm_pu = net.res_bus.at[self.controlled_bus, "vm_pu"]
        if self.is_on(net):
            return not vm_pu > self.v_off_pu
        return not vm_pu < self.v_on_pu

    def control_step(self, net):
        """Switch the bank."""
        net.shunt.at[self.shunt_index, "step"] = 0 if self.is_on(net) else 1

    def is_on(self, net) -> bool:
        """Whether the bank is switched in."""
        return bool(net.shunt.at[self.shunt_index, "step"] >= 1)


def add_oltc(net: pandapower.pandapowerNet, trafo: int, vm_set_pu: float, deadband_pu: float,
             delay_steps: int) -> DelayedTapControl:
    """Put an on-load tap changer controller on a transformer.

    See :class:`DelayedTapControl` for the control law. The low-voltage bus
    is controlled, as at a substation feeding a distribution feeder.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; modified in place (``net.controller``).
    trafo : int
        ``net.trafo`` index with a tap changer.
    vm_set_pu : float
        Voltage set point of the transformer's low-voltage bus. [pu]
    deadband_pu : float
        Half-width of the band around the set point. [pu]
    delay_steps : int
        Power-flow steps the voltage must stay outside the band before a
        tap move.

    Returns
    -------
    controller : DelayedTapControl

    Raises
    ------
    ValueError
        If the transformer has no tap changer or an argument is out of
        range.

    References
    ----------
    See :class:`DelayedTapControl`.
    """
    return DelayedTapControl(net, trafo, vm_set_pu=vm_set_pu, deadband_pu=deadband_pu, delay_steps=delay_steps)


def add_switched_capacitor(net: pandapower.pandapowerNet, bus: int, q_mvar: float, v_on_pu: float,
                           v_off_pu: float) -> SwitchedCapacitor:
    """Add a capacitor bank, initially off, with its voltage controller.

    Parameters
    ----------
    net : pandapowerNet
        The feeder; modified in place (``net.shunt``, ``net.controller``).
    bus : int
        ``net.bus`` index of the bank.
    q_mvar : float
        Reactive power supplied at 1 pu when on, > 0. It is stored as
        ``net.shunt.q_mvar = -q_mvar`` (pandapower counts shunt power as
        consumption); the bank's output scales with the voltage squared. [Mvar]
    v_on_pu, v_off_pu : float
        Switching thresholds, ``v_on_pu < v_off_pu``. [pu]

    Returns
    -------
    controller : SwitchedCapacitor
        Its ``shunt_index`` names the new shunt.

    Raises
    ------
    ValueError
        If ``q_mvar`` is not positive, the thresholds are not ordered or
        the bus does not exist.

    References
    ----------
    See :class:`SwitchedCapacitor`.
    """
    if not q_mvar > 0.0:
        raise ValueError(f"q_mvar must be positive (capacitive), got {q_mvar!r}")
    if bus not in net.bus.index:
        raise ValueError(f"net.bus has no row {bus!r}")
    if not v_on_pu < v_off_pu:
        raise ValueError(f"v_on_pu ({v_on_pu!r}) must be below v_off_pu ({v_off_pu!r})")
    shunt = pandapower.create_shunt(net, bus, q_mvar=-q_mvar, p_mw=0.0, step=0, max_step=1,
                                    name=f"capacitor bus {bus}")
    return SwitchedCapacitor(net, shunt, v_on_pu=v_on_pu, v_off_pu=v_off_pu, name=f"capacitor bus {bus}")


def _check_tap_changer(net, trafo) -> None:
    if trafo not in net.trafo.index:
        raise ValueError(f"net.trafo has no row {trafo!r}")
    columns = ("tap_pos", "tap_min", "tap_max", "tap_step_percent")
    values = net.trafo.loc[trafo, list(columns)].to_numpy(dtype=float)
    missing = [column for column, value in zip(columns, values) if not np.isfinite(value)]
    if pd.isna(net.trafo.at[trafo, "tap_changer_type"]):
        # pandapower 3 ignores the tap position of such a transformer.
        missing.append("tap_changer_type")
    if missing:
        raise ValueError(f"trafo {trafo} has no tap changer: {', '.join(missing)} not set")
