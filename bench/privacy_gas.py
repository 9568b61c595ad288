"""Gas of the privacy and secure-transaction features (issue 14): per action, per use and per market interval.

`privacy_gas` runs each feature once on a fresh chain holding a market
of n prosumers (`deploy_market`, a meter bound to each), with the
client builders of `gridledger.contracts`, and returns the gas used by
each labelled action:

* data access (``DataAccess``): the deployment; a request proposed to
  all n prosumers at 0.05 token each, approved by 3/4 of them
  (``data_access.approve_share`` of studies/data-access.yaml), the
  worker's result and the requestor's accept, which pays the approving
  owners into wallets that held no token; a second request no owner
  approved, cancelled after its approval deadline;
* pseudonyms (``Pseudonyms``): every prosumer's ticket for the next
  interval, then its one-time address and its meter's one-time key,
  both blindly signed by the registrar (`gridledger.contracts.pseudonyms`)
  and registered by a relay, in one block each;
* two-phase trade (``TwoPhaseTrade``): one trade of 1 kWh at 0.02
  token/kWh proposed, accepted, confirmed by the seller's meter and then
  the buyer's (the commit, which pays the seller); a second one
  prepared and rolled back by the operator after its deadline;
* emergency access (``EmergencyAccess`` and
  ``ChargingCoordination.override``): an EV admitted at 7.4 kW in a
  window, then the operator's declaration, its grant of the read and
  override scopes over that household to a service account, the
  account's logged read and its cut of the admission to 0 W, as in
  studies/emergency.yaml.

`feature_costs` adds the actions up to one use of each feature and to
what a feature adds to one 15-minute market interval. Gas is
deterministic: no repeats, no baseline run; every key is fixed, so the
calldata's gas is too.
"""

from __future__ import annotations

from dataclasses import dataclass
from statistics import median

from eth_utils import keccak

from gridledger.contracts import charging as ch
from gridledger.contracts import data_access as da
from gridledger.contracts import emergency as em
from gridledger.contracts import flexibility as fx
from gridledger.contracts import market as mk
from gridledger.contracts import pseudonyms as pn
from gridledger.contracts import two_phase as tp
from gridledger.contracts.chain import Chain
from gridledger.contracts.charging_reference import ChargeRequest, EVRegistration
from gridledger.contracts.client import Wallet, encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account

N_PROSUMERS = 32
"""Prosumers of the feeder: the reference study's count."""
INTERVALS_PER_DAY = 96
"""15-minute market intervals of a day, over which a daily data request is spread."""
APPROVE_SHARE = 0.75
"""Share of the owners approving a data request (``data_access.approve_share`` of studies/data-access.yaml)."""
TWO_PHASE_SHARE = 0.5
"""Share of the prosumers trading bilaterally (``two_phase.share`` of studies/two-phase.yaml)."""

# Fixed, public benchmark secret (accounts and the registrar's key; gas figures protect nothing).
SECRET = keccak(text="gridledger bench privacy gas")
_GENESIS_TIMESTAMP = 1_767_225_600  # 2026-01-01T00:00:00Z
_START_TIMESTAMP = _GENESIS_TIMESTAMP + 3600
_INTERVAL_S = 900
_GATE_CLOSURE_S = 60
_CENT_PER_KWH = 10**13  # [wei/Wh]
_TOKEN_WEI = 10**18
PSEUDONYM_BOND_WEI = _TOKEN_WEI
"""A ticket's bond, the pseudonym's credit: 1 token."""
PSEUDONYM_CLASS_W = (10_000, 5_000, 0)
"""The one class of the scenario: 10 kW meter rating, 5 kW PV, no battery. [W]"""
_HOUR_S = 3600
_ACCEPT_WINDOW_S = 600  # the requestor's time to check a result before anyone may finalise it
_PRICE_PER_OWNER_WEI = 5 * _TOKEN_WEI // 100  # 0.05 token, the study's first query
_TRADE_WH = 1000
_TRADE_PRICE_WEI_PER_WH = 2 * _CENT_PER_KWH  # the study's premium, 0.02 token/kWh
_REQUEST_LEAD_S = 300
_CAPACITY_WH, _CHARGER_W = 55_556, 7400  # a 50 kWh battery behind a 90 % efficient 7.4 kW charger

DATA_ACCESS, PSEUDONYMS, TWO_PHASE, EMERGENCY = "data access", "pseudonyms", "two-phase trade", "emergency access"
FEATURES = (DATA_ACCESS, PSEUDONYMS, TWO_PHASE, EMERGENCY)


@dataclass(frozen=True)
class ActionGas:
    """Gas used by one action of a feature.

    Attributes
    ----------
    feature : str
        One of `FEATURES`.
    action : str
        The transaction, with which of several alike it is ("approve (later)").
    gas : int
        Gas used, refunds deducted. [gas]
    note : str
        What the action did in the scenario.
    """

    feature: str
    action: str
    gas: int
    note: str


@dataclass(frozen=True)
class FeatureCost:
    """Gas of one use of a feature and what it adds to a market interval.

    Attributes
    ----------
    feature : str
        One of `FEATURES`.
    use : str
        What one use is: "request", "interval", "committed trade", "emergency".
    counts : tuple of (str, int)
        Each action of one use and how many times it is sent.
    gas_per_use : int
        Sum of the actions' gas times their counts. [gas]
    uses_per_interval : float or None
        Uses in one market interval; None where the feature is no
        per-interval cost (an emergency).
    basis : str
        Where that many uses per interval come from.
    """

    feature: str
    use: str
    counts: tuple[tuple[str, int], ...]
    gas_per_use: int
    uses_per_interval: float | None
    basis: str

    @property
    def gas_per_interval(self) -> float | None:
        """Gas the feature adds to one market interval; None if it is no per-interval cost. [gas]"""
        return None if self.uses_per_interval is None else self.gas_per_use * self.uses_per_interval


def approving_owners(n_prosumers: int) -> int:
    """Owners approving a data request among `n_prosumers` (`APPROVE_SHARE`, rounded)."""
    return round(APPROVE_SHARE * n_prosumers)


def two_phase_trades(n_prosumers: int) -> int:
    """Two-phase trades of one interval: the participating share of `n_prosumers`, paired buyer to seller."""
    return int(TWO_PHASE_SHARE * n_prosumers) // 2


@dataclass
class _Scene:
    """A fresh chain with a market of prosumers, each with its bound meter, and two funded role-less accounts."""

    chain: Chain
    operator: Wallet
    prosumers: list[Wallet]
    meters: list[Wallet]
    outsider: Wallet
    service: Wallet
    market: mk.MarketAddresses

    def mine(self, labelled: list[tuple[str | None, bytes]], timestamp: int | None = None) -> dict[str, list[int]]:
        """Mine the transactions in one block (default: one second after the head); each label's gas, in order.

        Raises
        ------
        RuntimeError
            Unless every transaction succeeded, naming the failed ones and their reasons.
        """
        at = self.chain.timestamp + 1 if timestamp is None else timestamp
        receipts = self.chain.mine([raw for _, raw in labelled], at)
        failed = [(label, r.revert_reason) for (label, _), r in zip(labelled, receipts, strict=True) if not r.ok]
        if failed:
            raise RuntimeError(f"privacy gas scenario: transactions failed: {failed}")
        gas: dict[str, list[int]] = {}
        for (label, _), r in zip(labelled, receipts, strict=True):
            if label is not None:
                gas.setdefault(label, []).append(r.gas_used)
        return gas

    def one(self, label: str, raw: bytes, timestamp: int | None = None) -> int:
        """Gas of `raw` mined alone. [gas]"""
        return self.mine([(label, raw)], timestamp)[label][0]

    def mint(self, accounts: list[Wallet], amount_wei: int, spender: str) -> None:
        """Mint `amount_wei` to each of `accounts` and have each approve `spender` for it."""
        self.mine([(None, self.operator.transact(self.market.token, encode_call("GridToken", "mint", w.address,
                                                                                   amount_wei), gas=100_000))
                   for w in accounts])
        self.mine([(None, fx.approve(w, self.market.token, spender, amount_wei)) for w in accounts])


def _scene(n_prosumers: int, funded: tuple[str, ...] = ()) -> _Scene:
    """A market of `n_prosumers`, deployed before its start; `funded` addresses get ether at genesis too."""
    accounts = {label: derive_account(SECRET, label) for label in ("operator", "outsider", "service")}
    prosumers = [derive_account(SECRET, f"prosumer/{i}") for i in range(n_prosumers)]
    meters = [derive_account(SECRET, f"meter/{i}") for i in range(n_prosumers)]
    chain = Chain([a.address for a in (*accounts.values(), *prosumers, *meters)] + list(funded),
                  genesis_timestamp=_GENESIS_TIMESTAMP)
    operator = chain.wallet(accounts["operator"])
    market = mk.deploy_market(
        chain, operator, prosumers=[p.address for p in prosumers],
        meters={p.address: m.address for p, m in zip(prosumers, meters, strict=True)},
        start_timestamp=_START_TIMESTAMP, interval_s=_INTERVAL_S, gate_closure_s=_GATE_CLOSURE_S,
        price_cap_wei_per_wh=100 * _CENT_PER_KWH, grid_buy_price_wei_per_wh=30 * _CENT_PER_KWH,
        grid_sell_price_wei_per_wh=8 * _CENT_PER_KWH, grid_fee_wei_per_wh=2 * _CENT_PER_KWH, endowment_wei=0,
        operator_deposit_wei=0,
    )
    return _Scene(chain, operator, [chain.wallet(p) for p in prosumers], [chain.wallet(m) for m in meters],
                  chain.wallet(accounts["outsider"]), chain.wallet(accounts["service"]), market)


def data_access_gas(n_prosumers: int = N_PROSUMERS) -> list[ActionGas]:
    """Gas of each action of a data request to `n_prosumers` owners, 3/4 approving, and of a cancelled one."""
    s = _scene(n_prosumers)
    n_approving = approving_owners(n_prosumers)
    raw, address = s.operator.deploy(load_artifact(da.CONTRACT), s.market.registry, s.market.token,
                                     s.service.address, _ACCEPT_WINDOW_S, gas=da.GAS_DEPLOY)
    deploy = s.one("deploy", raw)
    requestor, worker = s.outsider, s.service
    s.mint([requestor], 2 * n_prosumers * _PRICE_PER_OWNER_WEI, address)
    paid, unanswered = b"paid".ljust(32, b"\0"), b"unanswered".ljust(32, b"\0")
    approval, result = s.chain.timestamp + _HOUR_S, s.chain.timestamp + 2 * _HOUR_S
    owners = [p.address for p in s.prosumers]

    def propose(request_id: bytes) -> bytes:
        return da.propose(requestor, address, request_id, code=1, epsilon_milli=1000,
                          price_per_owner_wei=_PRICE_PER_OWNER_WEI, owners=owners,
                          approval_deadline_timestamp=approval, result_deadline_timestamp=result)

    proposed = s.mine([("propose", propose(paid)), (None, propose(unanswered))])["propose"][0]
    approvals = s.mine([("approve", da.approve(p, address, paid)) for p in s.prosumers[:n_approving]])["approve"]
    posted = s.one("post result", da.post_result(worker, address, paid, result_hash=keccak(b"answer"),
                                                 inputs_commitment=keccak(b"inputs"), owners_used=n_approving),
                   approval)
    accepted = s.one("accept", da.accept(requestor, address, paid))
    cancelled = s.one("cancel", da.cancel(worker, address, unanswered))
    return [
        ActionGas(DATA_ACCESS, "deploy", deploy, "once per market"),
        ActionGas(DATA_ACCESS, "propose", proposed, f"to {n_prosumers} owners, their price locked"),
        ActionGas(DATA_ACCESS, "approve (first)", approvals[0], "the request's first approval"),
        ActionGas(DATA_ACCESS, "approve (later)", round(median(approvals[1:])),
                  f"median of the {n_approving - 1} later ones"),
        ActionGas(DATA_ACCESS, "post result", posted, "the worker's answer hash and inputs commitment"),
        ActionGas(DATA_ACCESS, "accept", accepted,
                  f"pays {n_approving} of {n_prosumers} owners (wallets without tokens), refunds the rest"),
        ActionGas(DATA_ACCESS, "cancel", cancelled, "no owner approved: all refunded after the approval deadline"),
    ]


def pseudonyms_gas(n_prosumers: int = N_PROSUMERS) -> list[ActionGas]:
    """Gas of every one of `n_prosumers` owners' ticket and of the registration of its pseudonym and one-time meter
    key for the next interval, each action of all owners in one block (the registrations sent by a relay)."""
    interval = 1
    s = _scene(n_prosumers)
    key = pn.registrar_key(SECRET)
    address = pn.deploy_pseudonyms(s.chain, s.operator, s.market.registry, s.market.settlement, s.market.token,
                                   key.modulus, _START_TIMESTAMP, _INTERVAL_S, PSEUDONYM_BOND_WEI,
                                   [pn.ClassLimits(*PSEUDONYM_CLASS_W)])
    s.mint(s.prosumers, PSEUDONYM_BOND_WEI, address)
    tickets = s.mine([("ticket", pn.buy_ticket(w, address, interval)) for w in s.prosumers])["ticket"]
    registrar = pn.Registrar(key, s.chain.chain_id, address, {w.address: 0 for w in s.prosumers},
                             [m.address for m in s.meters],
                             lambda owner, k: pn.read(s.chain, address, "has_ticket", owner, k))
    registrations = []
    for owner, meter in zip(s.prosumers, s.meters, strict=True):
        pseudonym = pn.pseudonym_account(owner.account.key, interval).address
        one_time_meter = pn.meter_account(meter.account.key, interval).address
        signatures = []
        for requester, class_index, pair in ((owner, 0, (pseudonym, one_time_meter)),
                                             (meter, pn.METER_CLASS, (one_time_meter, pseudonym))):
            h = pn.full_domain_hash(s.chain.chain_id, address, *pair, interval)
            request, pending = pn.request_signature(requester.account, key.n, s.chain.chain_id, address, interval,
                                                    class_index, h)
            signatures.append(pn.finish_signature(pending, key.n, registrar.serve(request)))
        registration = pn.Registration(pseudonym, one_time_meter, interval, 0, *signatures)
        registrations.append(("register", pn.register(s.outsider, address, registration)))
    gas = s.mine(registrations)["register"]
    return [
        ActionGas(PSEUDONYMS, "ticket (first)", tickets[0], "an owner's ticket, the interval's first: its count"),
        ActionGas(PSEUDONYMS, "ticket (later)", round(median(tickets[1:])),
                  f"median of the {n_prosumers - 1} later ones of the same block"),
        ActionGas(PSEUDONYMS, "register (first)", gas[0],
                  "the interval's first pair, sent by a relay: both signatures checked, roles, binding, limits, bond"),
        ActionGas(PSEUDONYMS, "register (later)", round(median(gas[1:])),
                  f"median of the {n_prosumers - 1} later ones of the same block"),
    ]


def two_phase_gas(n_prosumers: int = N_PROSUMERS) -> list[ActionGas]:
    """Gas of each action of a committed two-phase trade and of a prepared one rolled back."""
    s = _scene(n_prosumers)
    address = tp.deploy_two_phase(s.chain, s.operator, s.market.registry, s.market.token)
    (buyer, seller), (buyer_meter, seller_meter) = s.prosumers[:2], s.meters[:2]
    s.mint([buyer, seller], 10 * _TOKEN_WEI, address)
    committed, rolled = b"committed".ljust(32, b"\0"), b"rolled back".ljust(32, b"\0")
    deadline = s.chain.timestamp + 3 * _INTERVAL_S

    def propose(trade_id: bytes) -> bytes:
        return tp.propose(buyer, address, trade_id, seller=seller.address, energy_wh=_TRADE_WH,
                          price_wei_per_wh=_TRADE_PRICE_WEI_PER_WH, deadline_timestamp=deadline)

    gas = {"propose": s.one("propose", propose(committed)), "accept": s.one("accept", tp.accept(seller, address,
                                                                                                committed))}
    gas["confirm (first)"] = s.one("confirm", tp.confirm(seller_meter, address, committed, _TRADE_WH))
    gas["confirm (commit)"] = s.one("confirm", tp.confirm(buyer_meter, address, committed, _TRADE_WH))
    s.mine([(None, propose(rolled))])
    s.mine([(None, tp.accept(seller, address, rolled))])
    gas["roll back"] = s.one("roll back", tp.roll_back(s.operator, address, rolled), deadline)
    notes = {"propose": "1 kWh at 0.02 token/kWh, the buyer's payment locked",
             "accept": "the seller's equal collateral locked: prepared",
             "confirm (first)": "the seller's meter",
             "confirm (commit)": "the buyer's meter: committed, the seller paid",
             "roll back": "a prepared trade after its deadline, by the operator: both locks returned"}
    return [ActionGas(TWO_PHASE, action, g, notes[action]) for action, g in gas.items()]


def emergency_gas(n_prosumers: int = N_PROSUMERS) -> list[ActionGas]:
    """Gas of an emergency: its declaration, a grant over one household, a logged read and a charging cut."""
    s = _scene(n_prosumers)
    emergency = em.deploy_emergency_access(s.chain, s.operator, s.market.registry)
    charging = ch.deploy_charging(s.chain, s.operator, registry=s.market.registry, start_timestamp=_START_TIMESTAMP,
                                  window_s=_INTERVAL_S, request_lead_s=_REQUEST_LEAD_S, emergency_access=emergency)
    household, crew = s.prosumers[0], s.service
    s.mine([(None, ch.register_ev(s.operator, charging, EVRegistration(household.address, _CAPACITY_WH,
                                                                        _CHARGER_W)))])
    request = ChargeRequest(household.address, _CHARGER_W, 30_000, 500, _START_TIMESTAMP + 10 * _INTERVAL_S)
    s.mine([(None, ch.post_headroom(s.operator, charging, 1, headroom_w=2 * _CHARGER_W)),
            (None, ch.request_charge(household, charging, 1, request))], _START_TIMESTAMP + 60)
    window_start = _START_TIMESTAMP + _INTERVAL_S
    s.mine([(None, ch.allocate(crew, charging, 1, n_requests=1))], window_start - _REQUEST_LEAD_S)
    scope = em.SCOPE_READ_DATA | em.SCOPE_OVERRIDE_CHARGING
    gas = {"declare": s.one("declare", em.declare(s.operator, emergency, "transformer overload", 2 * _HOUR_S)),
           "grant": s.one("grant", em.grant(s.operator, emergency, crew.address, scope, household.address, _HOUR_S)),
           "use": s.one("use", em.use(crew, emergency, em.SCOPE_READ_DATA, household.address, "read last 6 h")),
           "override": s.one("override", ch.override(crew, charging, 1, household.address, 0,
                                                     "transformer overload"))}
    notes = {"declare": "a two-hour emergency, by the operator",
             "grant": "read and charging-override scopes over one household for an hour",
             "use": "the service account's logged read of the household's data",
             "override": "ChargingCoordination: the admitted 7.4 kW cut to 0 W (refund of the cleared admission)"}
    return [ActionGas(EMERGENCY, action, g, notes[action]) for action, g in gas.items()]


def privacy_gas(n_prosumers: int = N_PROSUMERS) -> list[ActionGas]:
    """Gas of every action of the four features (`FEATURES`, in order) with `n_prosumers` prosumers."""
    return [row for measure in (data_access_gas, pseudonyms_gas, two_phase_gas, emergency_gas)
            for row in measure(n_prosumers)]


def feature_costs(rows: list[ActionGas], n_prosumers: int = N_PROSUMERS) -> list[FeatureCost]:
    """Each feature's gas per use and per 15-minute interval, from `privacy_gas` rows of `n_prosumers`.

    A data request is spread over the day (one a day: 1/96 per interval);
    every prosumer registers one pseudonym per interval; a quarter of the
    prosumers' worth of trades commit per interval (`two_phase_trades`);
    an emergency is no per-interval cost.
    """
    gas = {(r.feature, r.action): r.gas for r in rows}
    approving = approving_owners(n_prosumers)
    trades = two_phase_trades(n_prosumers)
    spec = [
        (DATA_ACCESS, "request", (("propose", 1), ("approve (first)", 1), ("approve (later)", approving - 1),
                                  ("post result", 1), ("accept", 1)),
         1 / INTERVALS_PER_DAY, "one request a day at 15-min intervals"),
        (PSEUDONYMS, "interval", (("ticket (first)", 1), ("ticket (later)", n_prosumers - 1),
                                  ("register (first)", 1), ("register (later)", n_prosumers - 1)),
         1.0, f"each of {n_prosumers} prosumers trades under a fresh pseudonym"),
        (TWO_PHASE, "committed trade", (("propose", 1), ("accept", 1), ("confirm (first)", 1),
                                        ("confirm (commit)", 1)),
         float(trades), f"{TWO_PHASE_SHARE:.0%} of {n_prosumers} prosumers take part, paired buyer to seller"),
        (EMERGENCY, "emergency", (("declare", 1), ("grant", 1), ("use", 1), ("override", 1)),
         None, "an exception, not a per-interval cost"),
    ]
    return [FeatureCost(feature, use, counts, sum(gas[feature, action] * k for action, k in counts), per_interval,
                        basis)
            for feature, use, counts, per_interval, basis in spec]


def _sum_text(counts: tuple[tuple[str, int], ...]) -> str:
    return " + ".join(action if k == 1 else f"{k} x {action}" for action, k in counts)


def privacy_gas_section(rows: list[ActionGas], n_prosumers: int = N_PROSUMERS, number: int = 11) -> list[str]:
    """Rows of the section on the gas of each privacy feature per action, per use and per interval."""
    lines = [f"{number}. Gas of the privacy and secure-transaction features (issue 14) per action, each feature on a"
             f" fresh chain with {n_prosumers} prosumers",
             f"   {'feature':<18}{'action':<18}{'gas':>11}   note"]
    lines += [f"   {r.feature:<18}{r.action:<18}{r.gas:>11,}   {r.note}" for r in rows]
    for c in feature_costs(rows, n_prosumers):
        per_use = f"   {c.feature}: one {c.use} = {_sum_text(c.counts)} = {c.gas_per_use:,} gas"
        if c.uses_per_interval is None:
            lines.append(f"{per_use}; {c.basis}")
        elif c.use == "interval":
            lines.append(f"{per_use} per interval ({c.basis})")
        else:
            uses = f"{c.uses_per_interval:g}" if c.uses_per_interval >= 1 else f"1/{round(1 / c.uses_per_interval)}"
            lines.append(f"{per_use}; {c.basis}: {uses} per interval = {c.gas_per_interval:,.0f} gas per interval")
    return lines
