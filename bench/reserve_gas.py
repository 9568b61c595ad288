"""Gas of the operating-reserve market (issue 15, part 2): one scripted window, per transaction type.

`reserve_gas` deploys an ``OperatingReserve`` contract on the scenarios'
market of `bench.security_gas` (registry, token; a DSO operator that is
also the registrar), registers one provider (a battery, its meter bound
to it) and runs one spinning-reserve window through: the DSO posts it,
the provider offers, anyone awards it at the offer deadline, the DSO
activates it at the window's start, the meter posts the full delivery
after the window and anyone closes it after the delivery period. Every
key is fixed (`bench.security_gas._account`), so the figures are the same
on every run.

Run ``python -m bench.reserve_gas`` to print them as JSON.
"""

from __future__ import annotations

import json
import sys

from bench.security_gas import (
    _CENT_PER_KWH,
    _DEPOSIT_WEI,
    _GENESIS_TIMESTAMP,
    _INTERVAL_S,
    _account,
    _call,
    _deploy,
    _empty_market,
    _mine,
    _prosumer_with_meter,
)
from gridledger.contracts.chain import Chain
from gridledger.contracts.reserve import CONTRACT
from gridledger.contracts.reserve_reference import LONGEST_RESPONSE_S, PRODUCT_SPINNING, energy_wh

RESERVE_TX_TYPES = ("register provider", "post window", "offer", "award", "activate", "post delivery", "close")
_PROVIDER_BUS = 5
_PROVIDER_W = 10_000
_PENALTY_PERMILLE = 1500


def reserve_gas() -> dict[str, int]:
    """Gas used by each transaction type of one operating-reserve window, by type (`RESERVE_TX_TYPES`). [gas]

    Every step before the market's start, where registration is open:
    the window posted at t, the offer at t + 10 s, the award at
    t + 100 s, a 900 s window from t + 200 s activated at its start, the
    delivery after it, the close after the delivery period.
    """
    accounts = [_account(name) for name in ("operator", "provider", "provider meter")]
    chain = Chain([a.address for a in accounts], genesis_timestamp=_GENESIS_TIMESTAMP)
    op, provider, meter = (chain.wallet(a) for a in accounts)
    a = _empty_market(chain, op)
    _prosumer_with_meter(chain, op, a, provider, meter)
    _mine(chain, [(None, _call(op, a.token, "GridToken", "mint", op.address, _DEPOSIT_WEI))], chain.timestamp + 1)
    reserve = _deploy(chain, op, CONTRACT, a.registry, a.token, op.address, _PENALTY_PERMILLE, _INTERVAL_S, 100,
                      10**13)
    gas = _mine(chain, [("register provider", _call(op, reserve, CONTRACT, "register_provider", provider.address,
                                                     _PROVIDER_BUS, _PROVIDER_W))], chain.timestamp + 1)
    _mine(chain, [(None, _call(w, a.token, "GridToken", "approve", reserve, _DEPOSIT_WEI)) for w in (op, provider)],
          chain.timestamp + 1)
    t = chain.timestamp + 1
    window = (t + 200, t + 200 + _INTERVAL_S)
    gas |= _mine(chain, [("post window", _call(op, reserve, CONTRACT, "post_window", PRODUCT_SPINNING, _PROVIDER_W,
                                                *window, t + 100, 2 * _CENT_PER_KWH, 30 * _CENT_PER_KWH))], t)
    response_s = LONGEST_RESPONSE_S[PRODUCT_SPINNING]
    gas |= _mine(chain, [("offer", _call(provider, reserve, CONTRACT, "offer", 0, _PROVIDER_W, _CENT_PER_KWH,
                                         10 * _CENT_PER_KWH, response_s))], t + 10)
    gas |= _mine(chain, [("award", _call(op, reserve, CONTRACT, "award", 0))], t + 100)
    gas |= _mine(chain, [("activate", _call(op, reserve, CONTRACT, "activate", 0, _PROVIDER_W))], window[0])
    delivered_wh = energy_wh(_PROVIDER_W, _INTERVAL_S - response_s)
    gas |= _mine(chain, [("post delivery", _call(meter, reserve, CONTRACT, "post_delivery", 0, delivered_wh))],
                 window[1] + 1)
    gas |= _mine(chain, [("close", _call(op, reserve, CONTRACT, "close", 0))], window[1] + _INTERVAL_S + 1)
    return {tx_type: gas[tx_type] for tx_type in RESERVE_TX_TYPES}


if __name__ == "__main__":
    json.dump(reserve_gas(), sys.stdout, indent=2)
    print()
