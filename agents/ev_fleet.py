"""The prosumers' electric vehicles under per-window charging coordination.

Pure Python and numpy, no HELICS: the DER federate holds one
:class:`EVFleet`, sends its :meth:`EVFleet.requests` to
``ChargingCoordination`` before each window, hands the window's admissions
back to :meth:`EVFleet.admit` and calls :meth:`EVFleet.step` once per
step; the operator federate publishes :func:`headroom_w` per window.

Times are seconds since study start. Window ``w`` spans ``[w * window_s,
(w + 1) * window_s)``, as in a contract deployed with ``start_timestamp``
at the study start, so a departure ``departure_s`` is the timestamp
``start_timestamp + floor(departure_s)`` on chain
(:meth:`EVChargeRequest.on_chain`). Power is positive when charging
(``docs/nomenclature.md``); charging physics is
:mod:`gridledger.grids.ev`.
"""

from dataclasses import dataclass

import numpy as np

from gridledger.contracts import charging_reference
from gridledger.grids.ev import EVSession, ev_step, must_charge_kw
from gridledger.units import PERMILLE, W_PER_KW, W_PER_MW, WH_PER_KWH

__all__ = ["TARGET_TOLERANCE_KWH", "EVChargeRequest", "EVFleet", "ev_owners", "headroom_w"]

_EV_OWNER_STREAM = 6
TARGET_TOLERANCE_KWH = 1e-9
"""Shortfall still counted as reaching the target: float rounding in the
step that completes a session at its must-charge power can leave an ulp
or so; a microwatt-hour is far below the meters' 1 Wh. [kWh]"""


@dataclass(frozen=True)
class EVChargeRequest:
    """The charging request one EV sends for one window.

    Attributes
    ----------
    owner : int
        Index of the prosumer owning the EV, as in ``Roster.prosumers``.
    power_w : int
        Charging power wanted: the charger rating, to the nearest W. [W]
    energy_needed_wh : int
        Energy the charger still has to draw from the grid, rounded up. [Wh]
    soc_permille : int
        State of charge of the battery, rounded down, 0 to 1000. [permille]
    departure_s : float
        Plug-out time, seconds since study start. [s]
    """

    owner: int
    power_w: int
    energy_needed_wh: int
    soc_permille: int
    departure_s: float

    def on_chain(self, account: str, start_timestamp: int) -> charging_reference.ChargeRequest:
        """The request as ``ChargingCoordination.request_charge`` takes it.

        Parameters
        ----------
        account : str
            Address of the owner's wallet.
        start_timestamp : int
            Study start, the contract's ``start_timestamp``. [s since the
            Unix epoch]

        Returns
        -------
        ChargeRequest
            With ``departure_timestamp = start_timestamp +
            floor(departure_s)``: rounding down never promises the
            contract more time than the car has.
        """
        return charging_reference.ChargeRequest(
            account=account,
            power_w=self.power_w,
            energy_needed_wh=self.energy_needed_wh,
            soc_permille=self.soc_permille,
            departure_timestamp=start_timestamp + int(np.floor(self.departure_s)),
        )


class EVFleet:
    """The EVs of a study's prosumers: requests, admissions and charging.

    Each EV arrives with ``capacity_kwh - energy_needed_kwh`` in its battery
    (assumed: the session's ``energy_needed_kwh`` tops it up to full), so
    its state of charge is ``(capacity_kwh - energy_needed_kwh +
    delivered_kwh) / capacity_kwh``.

    Charging, per step, through :func:`gridledger.grids.ev.ev_step`:

    - uncoordinated: at the charger rating from plug-in until complete;
    - coordinated: at the power the contract admitted for the window
      holding the step, else not at all -- except that an EV charges at
      least :func:`gridledger.grids.ev.must_charge_kw`, the least power
      that still completes it by departure. This safety net is the car's
      own protection of its owner, not the operator's: an EV whose laxity
      has run out charges whatever the contract decided. Steps in which
      it raised an EV's power above its admission are counted in
      :attr:`override_steps`, so a study can tell whether the contract
      alone got every car charged.

    Parameters
    ----------
    sessions : list of EVSession
        One charging session per EV.
    owners : list of int
        ``owners[e]`` is the index of the prosumer owning EV ``e``;
        distinct, since the contract takes one request per account and
        window.
    capacity_kwh : array_like, shape (n_ev,)
        Battery capacity of each EV, at least its ``energy_needed_kwh``.
        [kWh]
    window_s : int
        Length of a coordination window, a whole number of steps. [s]
    step_s : int
        Length of a simulation step. [s]

    Attributes
    ----------
    delivered_kwh : ndarray, shape (n_ev,)
        Energy each battery has received since plug-in. [kWh]
    override_steps : ndarray of int, shape (n_ev,)
        Steps in which the safety net raised each EV's power above what
        the contract admitted.
    steps_done : int
        Steps simulated so far; :meth:`step` takes them in order.

    Raises
    ------
    ValueError
        Naming the argument that is inconsistent or out of range.
    """

    def __init__(
        self,
        sessions: list[EVSession],
        owners: list[int],
        capacity_kwh: np.ndarray,
        window_s: int,
        step_s: int,
    ):
        if not all(isinstance(s, EVSession) for s in sessions):
            raise ValueError("sessions must be EVSession objects")
        n = len(sessions)
        owners_arr = np.asarray(owners)
        capacity = np.asarray(capacity_kwh, dtype=float)
        if owners_arr.shape != (n,) or (n and not np.issubdtype(owners_arr.dtype, np.integer)):
            raise ValueError(f"owners must be {n} prosumer indices, one per session, got {owners!r}")
        if np.any(owners_arr < 0) or len(set(owners_arr.tolist())) != n:
            raise ValueError(f"owners must be distinct non-negative prosumer indices, got {owners!r}")
        if capacity.shape != (n,):
            raise ValueError(f"capacity_kwh must have one value per session ({n}), got shape {capacity.shape}")
        needed = np.array([s.energy_needed_kwh for s in sessions])
        if not np.all(np.isfinite(capacity)) or np.any(capacity <= 0.0) or np.any(capacity < needed):
            raise ValueError("capacity_kwh must be positive and at least each session's energy_needed_kwh")
        for session in sessions:
            if round(session.max_charge_kw * W_PER_KW) < 1:
                raise ValueError(f"max_charge_kw must be at least 1 W to be requested, got {session.max_charge_kw!r}")
        for name, value in (("window_s", window_s), ("step_s", step_s)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value <= 0:
                raise ValueError(f"{name} must be a positive whole number of seconds, got {value!r}")
        if window_s % step_s:
            raise ValueError(f"window_s must be a multiple of step_s, got {window_s!r} and {step_s!r}")
        self.sessions = list(sessions)
        self.owners = owners_arr.astype(int)
        self.capacity_kwh = capacity
        self.window_s = int(window_s)
        self.step_s = int(step_s)
        self.delivered_kwh = np.zeros(n)
        self.override_steps = np.zeros(n, dtype=int)
        self.steps_done = 0
        self._needed_kwh = needed
        self._efficiency = np.array([s.efficiency for s in sessions])
        self._power_w = np.array([round(s.max_charge_kw * W_PER_KW) for s in sessions], dtype=int)
        self._arrival_s = np.array([s.arrival_s for s in sessions])
        self._departure_s = np.array([s.departure_s for s in sessions])
        self._ev_of_owner = {int(owner): e for e, owner in enumerate(self.owners)}
        self._admitted_kw: dict[int, np.ndarray] = {}

    def registrations(self, accounts: list[str]) -> list[charging_reference.EVRegistration]:
        """The EVs as the operator registers them with ``ChargingCoordination.register_ev``, in EV order.

        Parameters
        ----------
        accounts : list of str
            Address of each prosumer's wallet, indexed like the owners.

        Returns
        -------
        list of EVRegistration
            Per EV its owner's account, the capacity ``ceil(capacity_kwh /
            efficiency)`` in Wh -- the most a session draws from the grid,
            which bounds every :meth:`requests` energy need -- and the
            charger rating to the nearest W, the power :meth:`requests`
            asks for.
        """
        return [
            charging_reference.EVRegistration(
                account=accounts[int(owner)],
                capacity_wh=int(np.ceil(self.capacity_kwh[e] / self._efficiency[e] * WH_PER_KWH)),
                max_charge_w=int(self._power_w[e]),
            )
            for e, owner in enumerate(self.owners)
        ]

    def requests(self, window: int) -> list[EVChargeRequest]:
        """The requests the fleet sends for ``window``, in EV order.

        An EV requests if it is plugged in at some time of the window (its
        owner knows when the car will be home) and still needs energy. The
        values come from the energy delivered so far, so requests sent
        before the previous window has ended overstate what is needed by
        at most that window's charging.

        Parameters
        ----------
        window : int
            Index of the window, non-negative.

        Returns
        -------
        list of EVChargeRequest
            One per requesting EV: the charger rating [W], the energy
            still to draw from the grid, ``(energy_needed_kwh -
            delivered_kwh) / efficiency``, so that the contract's time to
            complete ``energy_needed_wh / power_w`` is the real one [Wh],
            the state of charge [permille] and the departure [s].
        """
        start_s = self._window_start_s(window)
        end_s = start_s + self.window_s
        # The contract wants a departure after the window start in whole seconds.
        present = (self._arrival_s < end_s) & (np.floor(self._departure_s) > start_s)
        still_kwh = self._needed_kwh - self.delivered_kwh
        soc = (self.capacity_kwh - still_kwh) / self.capacity_kwh
        return [
            EVChargeRequest(
                owner=int(self.owners[e]),
                power_w=int(self._power_w[e]),
                energy_needed_wh=int(np.ceil(still_kwh[e] / self._efficiency[e] * WH_PER_KWH)),
                soc_permille=int(np.floor(soc[e] * PERMILLE)),
                departure_s=float(self._departure_s[e]),
            )
            for e in np.flatnonzero(present & (still_kwh > 0.0))
        ]

    def admit(self, window: int, admitted_power_w: dict[int, int]) -> None:
        """Record the contract's admissions for ``window``.

        Parameters
        ----------
        window : int
            Index of the window, non-negative, not admitted before.
        admitted_power_w : dict of int to int
            Admitted charging power by owner index; owners left out are
            not admitted. [W]

        Raises
        ------
        ValueError
            If the window was admitted before, an owner has no EV or a
            power is negative.
        """
        self._window_start_s(window)
        if window in self._admitted_kw:
            raise ValueError(f"window {window} is already admitted")
        admitted_kw = np.zeros(len(self.sessions))
        for owner, power_w in admitted_power_w.items():
            if owner not in self._ev_of_owner:
                raise ValueError(f"prosumer {owner!r} owns no EV")
            if power_w < 0:
                raise ValueError(f"admitted power of prosumer {owner} must be non-negative, got {power_w!r}")
            admitted_kw[self._ev_of_owner[owner]] = power_w / W_PER_KW
        self._admitted_kw[window] = admitted_kw

    def cut(self, window: int, owner: int, power_w: int) -> None:
        """Lower owner `owner`'s admitted power in an admitted `window` to `power_w` [W], from the next step on (an
        emergency override, ``ChargingCoordination.override``); the safety net still holds.

        Raises
        ------
        ValueError
            If the window was not admitted, the owner has no EV, or `power_w` is negative or above its admission.
        """
        if window not in self._admitted_kw or owner not in self._ev_of_owner:
            raise ValueError(f"no admission of prosumer {owner!r} in window {window} to cut")
        ev = self._ev_of_owner[owner]
        if not 0 <= power_w / W_PER_KW <= self._admitted_kw[window][ev]:
            raise ValueError(f"a cut of prosumer {owner}'s admission must be between 0 and "
                             f"{self._admitted_kw[window][ev] * W_PER_KW:g} W, got {power_w!r}")
        self._admitted_kw[window][ev] = power_w / W_PER_KW

    def step(self, step: int, coordinated: bool) -> np.ndarray:
        """Charge every EV over step ``step``, ``[step * step_s, (step + 1) * step_s)``.

        Parameters
        ----------
        step : int
            Index of the step; steps are taken in order from 0.
        coordinated : bool
            Charge at the admitted power (with the safety net) rather than
            at the charger rating from plug-in.

        Returns
        -------
        p_kw : ndarray, shape (n_ev,)
            Mean power each EV draws over the step, positive = charging.
            [kW]

        Raises
        ------
        ValueError
            If ``step`` is not the next one, ``steps_done``.
        """
        if step != self.steps_done:
            raise ValueError(f"step must be {self.steps_done}, the next one, got {step!r}")
        t_s = float(step * self.step_s)
        if coordinated:
            admitted_kw = self._admitted_kw.get(int(t_s) // self.window_s, np.zeros(len(self.sessions)))
            must_kw = np.asarray(must_charge_kw(self.delivered_kwh, t_s, self.step_s, self.sessions))
            self.override_steps += must_kw > admitted_kw
            allowed_kw = np.maximum(admitted_kw, must_kw)
        else:
            allowed_kw = np.inf
        p_kw, delivered_kwh = ev_step(self.delivered_kwh, allowed_kw, t_s, self.step_s, self.sessions)
        self.delivered_kwh = np.asarray(delivered_kwh, dtype=float)
        self.steps_done += 1
        return np.asarray(p_kw, dtype=float)

    def p_kw_by_prosumer(self, p_ev_kw: np.ndarray, n_prosumers: int) -> np.ndarray:
        """EV charging power summed per owning prosumer.

        Parameters
        ----------
        p_ev_kw : array_like, shape (n_ev,)
            Power per EV, e.g. from :meth:`step`. [kW]
        n_prosumers : int
            Number of prosumers, more than every owner index.

        Returns
        -------
        p_kw : ndarray, shape (n_prosumers,)
            Charging power per prosumer, 0 for those without an EV. [kW]
        """
        p = np.asarray(p_ev_kw, dtype=float)
        if p.shape != self.owners.shape:
            raise ValueError(f"p_ev_kw must have one value per EV ({len(self.owners)}), got shape {p.shape}")
        if len(self.owners) and n_prosumers <= self.owners.max():
            raise ValueError(f"n_prosumers must exceed every owner index, got {n_prosumers!r}")
        return np.bincount(self.owners, weights=p, minlength=n_prosumers).astype(float)

    def reached_target(self) -> np.ndarray:
        """Whether each battery has received ``energy_needed_kwh``, within ``TARGET_TOLERANCE_KWH``."""
        return self.shortfall_kwh() <= TARGET_TOLERANCE_KWH

    def shortfall_kwh(self) -> np.ndarray:
        """Energy each battery still misses of ``energy_needed_kwh``. [kWh]"""
        return self._needed_kwh - self.delivered_kwh

    def _window_start_s(self, window: int) -> int:
        if isinstance(window, bool) or not isinstance(window, (int, np.integer)) or window < 0:
            raise ValueError(f"window must be a non-negative integer, got {window!r}")
        return int(window) * self.window_s


def headroom_w(trafo_sn_mva: float, max_loading_percent: float, base_load_forecast_mw: float) -> int:
    """Charging power the feeder can give in a window, as the operator publishes it.

    ``max(0, trafo_sn_mva * max_loading_percent / 100 -
    base_load_forecast_mw)``, to the nearest W. It compares
    active power with the transformer's apparent power rating, as if the
    power factor were 1: a simplification that overstates the headroom by
    the reactive part of the loading.

    Parameters
    ----------
    trafo_sn_mva : float
        Transformer rating, pandapower's ``net.trafo.sn_mva``, positive.
        [MVA]
    max_loading_percent : float
        Allowed transformer loading, positive. [%]
    base_load_forecast_mw : float
        Forecast non-EV load of the feeder, the mean expected over the
        window; negative when it exports. [MW]

    Returns
    -------
    headroom_w : int
        Non-negative. [W]
    """
    for name, value in (("trafo_sn_mva", trafo_sn_mva), ("max_loading_percent", max_loading_percent)):
        if not (np.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} must be a positive number, got {value!r}")
    if not np.isfinite(base_load_forecast_mw):
        raise ValueError(f"base_load_forecast_mw must be finite, got {base_load_forecast_mw!r}")
    limit_mw = trafo_sn_mva * max_loading_percent / 100.0
    return max(0, round((limit_mw - base_load_forecast_mw) * W_PER_MW))


def ev_owners(n_prosumers: int, share: float, seed: int) -> list[int]:
    """Which prosumers own an EV: ``round(share * n_prosumers)`` of them, seeded.

    Parameters
    ----------
    n_prosumers : int
        Number of prosumers, non-negative.
    share : float
        Share of prosumers owning an EV, in [0, 1]. [-]
    seed : int
        Study seed, non-negative.

    Returns
    -------
    owners : list of int
        Prosumer indices in ascending order, deterministic for
        ``(n_prosumers, share, seed)``; pair them with
        ``gridledger.grids.ev.ev_sessions(len(owners), seed, midnight_s)``.
    """
    if isinstance(n_prosumers, bool) or not isinstance(n_prosumers, (int, np.integer)) or n_prosumers < 0:
        raise ValueError(f"n_prosumers must be a non-negative integer, got {n_prosumers!r}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"share must be within [0, 1], got {share!r}")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    chosen = np.random.default_rng([seed, _EV_OWNER_STREAM]).permutation(n_prosumers)[: round(share * n_prosumers)]
    return sorted(int(i) for i in chosen)
