"""Smart PV inverters inside the power flow: a pandapower controller on ``net.sgen`` rows.

:class:`InverterController` applies the IEEE 1547-2018 curves of
:mod:`gridledger.grids.inverter` so that the inverters and the feeder
voltages converge together inside each power flow:
:class:`~gridledger.grids.powerflow.PowerFlow` runs it through pandapower's
``run_control`` like the controllers of :mod:`gridledger.grids.controls`.
The caller's ``net.sgen.p_mw`` is the PV's available power; the inverter's
output is in ``net.res_sgen``.
"""

import numpy as np
import pandapower
from pandapower.control.basic_controller import Controller

from gridledger.grids.inverter import VOLT_VAR_CAT_B, VOLT_WATT_CAT_B, Inverter, VoltVarCurve, VoltWattCurve, inverter_output

__all__ = ["InverterController", "add_inverter_control"]


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
