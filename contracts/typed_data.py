"""Orders and meter readings signed as EIP-712 typed data, for a relay to submit in batches.

EIP-712 ("Typed structured data hashing and signing") signs
``keccak256(0x1901 ‖ domainSeparator ‖ hashStruct(message))``. The domain
binds a signature to one chain and one contract, so it cannot be replayed
on another run's chain or at another contract:

    EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)

with name ``"gridledger"``, version ``"1"``, the run's chain id and, as
verifying contract, the market mechanism for an order and the Settlement
for a reading. The messages:

    Order(uint256 interval,bool isAsk,uint256 energyWh,uint256 priceWeiPerWh)
    Reading(uint256 interval,uint256 importWh,uint256 exportWh,uint256 pvWh,uint256 batteryWh)

The contracts (``book.vy`` ``submit_signed_orders``, ``Settlement.vy``
``post_signed_readings``) rebuild the same digest and ``ecrecover`` the
signer; eth-account signs here and :func:`order_signer` /
:func:`reading_signer` recover with eth-account, the reference the tests
check the contracts against. Replay within a run is stopped by the
contracts' one order per account and interval and one reading per meter
and interval.
"""

from __future__ import annotations

from dataclasses import dataclass

from eth_account import Account
from eth_account.messages import encode_typed_data
from eth_account.signers.local import LocalAccount

NAME = "gridledger"
VERSION = "1"
ORDER_TYPES = {"Order": [{"name": "interval", "type": "uint256"}, {"name": "isAsk", "type": "bool"},
                         {"name": "energyWh", "type": "uint256"}, {"name": "priceWeiPerWh", "type": "uint256"}]}
READING_TYPES = {"Reading": [{"name": "interval", "type": "uint256"}, {"name": "importWh", "type": "uint256"},
                             {"name": "exportWh", "type": "uint256"}, {"name": "pvWh", "type": "uint256"},
                             {"name": "batteryWh", "type": "uint256"}]}


def domain(chain_id: int, verifying_contract: str) -> dict:
    """The EIP-712 domain of a signature for `verifying_contract` on the chain `chain_id`."""
    return {"name": NAME, "version": VERSION, "chainId": chain_id, "verifyingContract": verifying_contract}


@dataclass(frozen=True)
class SignedOrder:
    """An order of one interval with its signer's EIP-712 signature (v, r, s).

    Attributes
    ----------
    interval : int
        Market interval index k.
    is_ask : bool
        True to sell, False to buy.
    energy_wh : int
        Energy offered or wanted. [Wh]
    price_wei_per_wh : int
        Limit price. [wei/Wh]
    v : int
        Recovery id, 27 or 28.
    r, s : bytes
        The signature's two 32-byte halves.
    """

    interval: int
    is_ask: bool
    energy_wh: int
    price_wei_per_wh: int
    v: int
    r: bytes
    s: bytes

    def message(self) -> dict:
        """The EIP-712 ``Order`` message."""
        return {"interval": self.interval, "isAsk": self.is_ask, "energyWh": self.energy_wh,
                "priceWeiPerWh": self.price_wei_per_wh}

    def as_struct(self) -> tuple:
        """The contract's ``SignedOrder`` struct argument: (is_ask, energy_wh, price_wei_per_wh, v, r, s)."""
        return self.is_ask, self.energy_wh, self.price_wei_per_wh, self.v, self.r, self.s


@dataclass(frozen=True)
class SignedReading:
    """A meter's reading of one interval with its EIP-712 signature (v, r, s).

    Attributes
    ----------
    interval : int
        Market interval index k.
    import_wh, export_wh, pv_wh, battery_wh : int
        The meter's registers over the interval: import, export, PV
        production, battery discharge. [Wh]
    v : int
        Recovery id, 27 or 28.
    r, s : bytes
        The signature's two 32-byte halves.
    """

    interval: int
    import_wh: int
    export_wh: int
    pv_wh: int
    battery_wh: int
    v: int
    r: bytes
    s: bytes

    def message(self) -> dict:
        """The EIP-712 ``Reading`` message."""
        return {"interval": self.interval, "importWh": self.import_wh, "exportWh": self.export_wh,
                "pvWh": self.pv_wh, "batteryWh": self.battery_wh}

    def as_struct(self) -> tuple:
        """The contract's ``SignedReading`` struct argument: (import_wh, export_wh, pv_wh, battery_wh, v, r, s)."""
        return self.import_wh, self.export_wh, self.pv_wh, self.battery_wh, self.v, self.r, self.s


def _signature(account: LocalAccount, chain_id: int, contract: str, types: dict, message: dict) -> dict:
    signed = account.sign_typed_data(domain(chain_id, contract), types, message)
    return {"v": signed.v, "r": signed.r.to_bytes(32, "big"), "s": signed.s.to_bytes(32, "big")}


def sign_order(account: LocalAccount, chain_id: int, mechanism: str, *, interval: int, is_ask: bool, energy_wh: int,
               price_wei_per_wh: int) -> SignedOrder:
    """`account`'s order for `interval` signed for the market `mechanism` on the chain `chain_id`."""
    fields = {"interval": interval, "is_ask": is_ask, "energy_wh": energy_wh, "price_wei_per_wh": price_wei_per_wh}
    unsigned = SignedOrder(**fields, v=0, r=b"", s=b"")
    return SignedOrder(**fields, **_signature(account, chain_id, mechanism, ORDER_TYPES, unsigned.message()))


def sign_reading(account: LocalAccount, chain_id: int, settlement: str, *, interval: int, import_wh: int,
                 export_wh: int, pv_wh: int, battery_wh: int) -> SignedReading:
    """A meter's (`account`'s) reading for `interval` signed for the `settlement` on the chain `chain_id`."""
    fields = {"interval": interval, "import_wh": import_wh, "export_wh": export_wh, "pv_wh": pv_wh,
              "battery_wh": battery_wh}
    unsigned = SignedReading(**fields, v=0, r=b"", s=b"")
    return SignedReading(**fields, **_signature(account, chain_id, settlement, READING_TYPES, unsigned.message()))


def _signer(chain_id: int, contract: str, types: dict, signed: SignedOrder | SignedReading) -> str:
    encoded = encode_typed_data(domain(chain_id, contract), types, signed.message())
    return Account.recover_message(encoded, vrs=(signed.v, signed.r, signed.s))


def order_signer(chain_id: int, mechanism: str, signed: SignedOrder) -> str:
    """The address that signed `signed` for `mechanism` on the chain `chain_id` (eth-account's recovery)."""
    return _signer(chain_id, mechanism, ORDER_TYPES, signed)


def reading_signer(chain_id: int, settlement: str, signed: SignedReading) -> str:
    """The address that signed the reading `signed` for `settlement` on the chain `chain_id`."""
    return _signer(chain_id, settlement, READING_TYPES, signed)
