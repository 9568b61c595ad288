"""Battery energy balance over one time step."""

import numpy as np

from gridledger.units import SECONDS_PER_HOUR

__all__ = ["battery_step"]


def battery_step(
    soc_kwh,
    p_request_kw,
    dt_s: float,
    energy_kwh,
    power_kw,
    efficiency_roundtrip,
    soc_min,
    soc_max,
):
    """Power a battery delivers for a request, and its state of charge after.

    The request is limited to the power rating and then to what the state
    of charge allows within ``[soc_min, soc_max] * energy_kwh`` over the
    step. The round-trip efficiency is split evenly between charging and
    discharging, ``eta = sqrt(efficiency_roundtrip)``:
    ``soc_new = soc + eta * E_in - E_out / eta``, where ``E_in`` (``E_out``)
    is the energy taken from (delivered to) the grid. All array arguments
    broadcast.

    Parameters
    ----------
    soc_kwh : array_like
        Stored energy at the start of the step. [kWh]
    p_request_kw : array_like
        Requested power at the battery terminals, positive = charging. [kW]
    dt_s : float
        Step length. [s]
    energy_kwh : array_like
        Capacity. [kWh]
    power_kw : array_like
        Charge and discharge power limit. [kW]
    efficiency_roundtrip : array_like
        AC-to-AC round-trip efficiency, in (0, 1]. [-]
    soc_min, soc_max : array_like
        Allowed state of charge, ``0 <= soc_min <= soc_max <= 1``.
        [fraction of energy_kwh]

    Returns
    -------
    p_kw : ndarray or float
        Power delivered, positive = charging; same sign as the request and
        no larger in magnitude. [kW]
    soc_kwh_new : ndarray or float
        Stored energy at the end of the step. [kWh]

    References
    ----------
    A. A. Akhil et al., "DOE/EPRI Electricity Storage Handbook in
    Collaboration with NRECA," Sandia National Laboratories,
    SAND2015-1002, 2015 (round-trip efficiency as energy out over energy
    in; the even split between charge and discharge is an assumption).
    """
    soc, p_request, energy, power, efficiency, low, high = (
        np.asarray(value, dtype=float)
        for value in (soc_kwh, p_request_kw, energy_kwh, power_kw, efficiency_roundtrip, soc_min, soc_max)
    )
    if not all(np.all(np.isfinite(v)) for v in (soc, p_request, energy, power, efficiency, low, high)):
        raise ValueError("battery_step arguments must be finite")
    if not (np.isfinite(dt_s) and dt_s > 0.0):
        raise ValueError(f"dt_s must be a positive number of seconds, got {dt_s!r}")
    if np.any(energy < 0.0) or np.any(power < 0.0):
        raise ValueError("energy_kwh and power_kw must be non-negative")
    if np.any(efficiency <= 0.0) or np.any(efficiency > 1.0):
        raise ValueError(f"efficiency_roundtrip must be within (0, 1], got {efficiency_roundtrip!r}")
    if np.any(low < 0.0) or np.any(low > high) or np.any(high > 1.0):
        raise ValueError(f"need 0 <= soc_min <= soc_max <= 1, got {soc_min!r} and {soc_max!r}")

    eta = np.sqrt(efficiency)
    dt_h = dt_s / SECONDS_PER_HOUR
    soc_low, soc_high = low * energy, high * energy
    max_charge_kw = np.maximum(soc_high - soc, 0.0) / (eta * dt_h)
    max_discharge_kw = np.maximum(soc - soc_low, 0.0) * eta / dt_h
    p = np.clip(p_request, -power, power)
    p = np.clip(p, -max_discharge_kw, max_charge_kw)
    soc_new = soc + eta * np.maximum(p, 0.0) * dt_h - np.maximum(-p, 0.0) * dt_h / eta
    # Rounding can overshoot a limit by an ulp; a state already outside the
    # limits may only move towards them.
    soc_new = np.clip(soc_new, np.minimum(soc, soc_low), np.maximum(soc, soc_high))
    return p[()], soc_new[()]
