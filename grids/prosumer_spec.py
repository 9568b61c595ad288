"""A prosumer as placed on a feeder: its connection, peak load and devices (no pandapower needed to read one).

`gridledger.grids.prosumers.place_prosumers` makes them from a feeder; the
federates that run no power flow read them back from the run directory
(`gridledger.roster`).
"""

from dataclasses import dataclass

__all__ = ["Prosumer"]


@dataclass(frozen=True)
class Prosumer:
    """A household or business behind one feeder load.

    Attributes
    ----------
    name : str
        ``"p01"``, ``"p02"``, ... (zero-padded to at least two digits).
    bus : int
        ``net.bus`` index of the connection point.
    load_index : int
        Index of the load the prosumer takes over, in the table named by
        ``load_element``.
    peak_load_p_mw, peak_load_q_mvar : float
        Peak active [MW] and reactive [Mvar] load, all phases.
    pv_kwp : float
        Installed PV, 0 if none. [kWp]
    battery_energy_kwh : float
        Usable battery capacity, 0 if none. [kWh]
    battery_power_kw : float
        Battery charge/discharge power limit, 0 if none. [kW]
    load_element : {"load", "asymmetric_load"}
        pandapower table of ``load_index``; "asymmetric_load" only on buses
        without an in-service ``load``.
    """

    name: str
    bus: int
    load_index: int
    peak_load_p_mw: float
    peak_load_q_mvar: float
    pv_kwp: float
    battery_energy_kwh: float
    battery_power_kw: float
    load_element: str = "load"
