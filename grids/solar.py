"""Sun position and clear-sky irradiance from closed-form textbook models."""

import numpy as np

__all__ = [
    "declination_deg",
    "hour_angle_deg",
    "solar_elevation_deg",
    "clearsky_ghi_haurwitz",
]


def declination_deg(day_of_year):
    """Solar declination from Cooper's equation.

    Parameters
    ----------
    day_of_year : array_like
        Day of the year, 1 = 1 January. [-]

    Returns
    -------
    declination : ndarray
        Angle of the sun at solar noon above the equatorial plane,
        within +/-23.45. [deg]

    References
    ----------
    P. I. Cooper, "The absorption of radiation in solar stills," Solar
    Energy, vol. 12, no. 3, pp. 333-346, 1969.

    J. A. Duffie and W. A. Beckman, "Solar Engineering of Thermal
    Processes," 3rd ed., Wiley, 2006, eq. 1.6.1a.
    """
    day = np.asarray(day_of_year, dtype=float)
    return 23.45 * np.sin(2.0 * np.pi * (284.0 + day) / 365.0)


def hour_angle_deg(solar_time_h):
    """Hour angle of the sun: 15 degrees per hour from solar noon.

    Parameters
    ----------
    solar_time_h : array_like
        Local apparent solar time. [h]

    Returns
    -------
    hour_angle : ndarray
        Negative before solar noon, positive after. [deg]

    References
    ----------
    J. A. Duffie and W. A. Beckman, "Solar Engineering of Thermal
    Processes," 3rd ed., Wiley, 2006, sec. 1.6.
    """
    return 15.0 * (np.asarray(solar_time_h, dtype=float) - 12.0)


def solar_elevation_deg(latitude_deg, declination, hour_angle):
    """Solar elevation angle from spherical trigonometry.

    Atmospheric refraction is neglected.

    Parameters
    ----------
    latitude_deg : array_like
        Latitude, north positive. [deg]
    declination : array_like
        Solar declination, see :func:`declination_deg`. [deg]
    hour_angle : array_like
        Hour angle, see :func:`hour_angle_deg`. [deg]

    Returns
    -------
    elevation : ndarray
        Angle of the sun above the horizon, negative at night. [deg]

    References
    ----------
    J. A. Duffie and W. A. Beckman, "Solar Engineering of Thermal
    Processes," 3rd ed., Wiley, 2006, eq. 1.6.5.
    """
    phi = np.radians(latitude_deg)
    delta = np.radians(declination)
    omega = np.radians(hour_angle)
    sin_elevation = np.sin(phi) * np.sin(delta) + np.cos(phi) * np.cos(delta) * np.cos(omega)
    return np.degrees(np.arcsin(np.clip(sin_elevation, -1.0, 1.0)))


def clearsky_ghi_haurwitz(elevation_deg):
    """Clear-sky global horizontal irradiance from the Haurwitz model.

    ``ghi = 1098 * cos(z) * exp(-0.059 / cos(z))`` with zenith ``z``;
    zero when the sun is at or below the horizon.

    Parameters
    ----------
    elevation_deg : array_like
        Solar elevation angle. [deg]

    Returns
    -------
    ghi : ndarray
        Global horizontal irradiance under a clear sky, at most
        1098 exp(-0.059) = 1035.1 at zenith. [W/m^2]

    References
    ----------
    B. Haurwitz, "Insolation in relation to cloudiness and cloud density,"
    Journal of Meteorology, vol. 2, pp. 154-166, 1945.

    M. Reno, C. Hansen and J. Stein, "Global horizontal irradiance clear sky
    models: implementation and analysis," Sandia National Laboratories,
    SAND2012-2389, 2012.
    """
    cos_zenith = np.sin(np.radians(np.asarray(elevation_deg, dtype=float)))
    day = cos_zenith > 0.0
    safe = np.where(day, cos_zenith, 1.0)
    return np.where(day, 1098.0 * safe * np.exp(-0.059 / safe), 0.0)
