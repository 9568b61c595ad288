"""Stateful property test of the Registry's roles and meter bindings (issue 11).

A hypothesis `RuleBasedStateMachine` sends random role grants, revokes and
meter bindings from random senders (the operator, accounts it made
operators, and accounts without the role) while the clock crosses the
market start. `RegistryModel` states the rules of `Registry.vy`'s
docstrings: only operators change anything; a role is a non-empty set of
known bits; an operator is neither meter nor prosumer, a meter is no
prosumer; a binding joins a meter to a prosumer one to one, and revoking
either role unbinds the pair; from the start on no binding may change.
Every call the model refuses must revert with the model's reason and
change nothing; after every step the chain's roles and bindings equal the
model's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest
from hypothesis import event
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule

from gridledger.contracts.chain import Chain
from gridledger.contracts.client import encode_call
from gridledger.contracts.compiler import load_artifact
from gridledger.contracts.keys import derive_account
from gridledger.contracts.market import read
from tests.contract_helpers import GENESIS_TIMESTAMP, START_TIMESTAMP
from tests.secret_helpers import fixed_secret
from tests.security.stateful_helpers import machine_settings

ROLE_OPERATOR, ROLE_PROSUMER, ROLE_METER = 1, 2, 4
N_ACCOUNTS = 5
ZERO = "0x" + "00" * 20
# Roles a call may name: most often a prosumer or meter role, else any known combination, the empty
# role or an unknown bit.
ROLES = st.one_of(st.sampled_from([ROLE_PROSUMER, ROLE_METER]), st.sampled_from([*range(8), 8]))


@dataclass
class RegistryModel:
    """Roles and bindings as `Registry.vy` documents them; ``started`` once the market started."""

    roles: dict[str, int]
    meter_of: dict[str, str] = field(default_factory=dict)
    started: bool = False

    def prosumer_of(self, meter: str) -> str:
        return next((p for p, m in self.meter_of.items() if m == meter), ZERO)

    def refusal(self, sender: str, function: str, args: tuple) -> str | None:
        """Revert reason of ``function(*args)`` sent by ``sender``, None if it succeeds."""
        if not self.roles.get(sender, 0) & ROLE_OPERATOR:
            return "registry: caller is not operator"
        if function == "bind_meter":
            meter, prosumer = args
            if not self.roles.get(meter, 0) & ROLE_METER:
                return "registry: meter lacks meter role"
            if not self.roles.get(prosumer, 0) & ROLE_PROSUMER:
                return "registry: prosumer lacks prosumer role"
            return "registry: bindings frozen" if self.started else None
        account, role = args
        if role == 0 or role & ~7:
            return "registry: unknown role"
        if function == "grant_role":
            roles = self.roles.get(account, 0) | role
            if roles & ROLE_OPERATOR and roles & (ROLE_METER | ROLE_PROSUMER):
                return "registry: operator cannot be meter or prosumer"
            if roles & ROLE_METER and roles & ROLE_PROSUMER:
                return "registry: meter cannot be prosumer"
            return None
        unbinds = (role & ROLE_METER and self.prosumer_of(account) != ZERO) or (
            role & ROLE_PROSUMER and account in self.meter_of)
        return "registry: bindings frozen" if unbinds and self.started else None

    def apply(self, function: str, args: tuple) -> None:
        """The effect of a call the model accepts."""
        if function == "bind_meter":
            meter, prosumer = args
            self.meter_of = {p: m for p, m in self.meter_of.items() if m != meter and p != prosumer}
            self.meter_of[prosumer] = meter
        elif function == "grant_role":
            self.roles[args[0]] = self.roles.get(args[0], 0) | args[1]
        else:
            account, role = args
            if role & ROLE_METER:
                self.meter_of = {p: m for p, m in self.meter_of.items() if m != account}
            if role & ROLE_PROSUMER:
                self.meter_of.pop(account, None)
            self.roles[account] = self.roles.get(account, 0) & ~role


class RegistryMachine(RuleBasedStateMachine):
    """A Registry deployed by account 0, its market starting at ``START_TIMESTAMP``."""

    @initialize()
    def deploy(self):
        secret = fixed_secret(20260102)
        keys = [derive_account(secret, f"registry/{i}") for i in range(N_ACCOUNTS)]
        self.chain = Chain([k.address for k in keys], genesis_timestamp=GENESIS_TIMESTAMP)
        self.wallets = [self.chain.wallet(k) for k in keys]
        self.accounts = [k.address for k in keys]
        raw, self.registry = self.wallets[0].deploy(load_artifact("Registry"), START_TIMESTAMP)
        (receipt,) = self.chain.mine([raw], START_TIMESTAMP - 3000)
        assert receipt.ok, receipt.revert_reason
        self.model = RegistryModel({self.accounts[0]: ROLE_OPERATOR})

    def _state(self) -> tuple:
        reg = self.registry
        return tuple(
            (read(self.chain, reg, "Registry", "roles", a), read(self.chain, reg, "Registry", "prosumer_of_meter", a))
            for a in self.accounts
        )

    @rule(seconds=st.integers(1, 1500))
    def advance_time(self, seconds):
        self.chain.mine([], self.chain.timestamp + seconds)
        self.model.started = self.chain.timestamp + 1 >= START_TIMESTAMP

    @rule(data=st.data(), function=st.sampled_from(["grant_role", "revoke_role", "bind_meter"]))
    def call(self, data, function):
        """A call by the operator (most often) or any other account, honest or not; the model says which."""
        sender = data.draw(st.sampled_from([0, 0, *range(N_ACCOUNTS)]))
        if function == "bind_meter":
            # Most often a meter and a prosumer, so that bindings are made and replaced.
            meters = [a for a in self.accounts if self.model.roles.get(a, 0) & ROLE_METER]
            prosumers = [a for a in self.accounts if self.model.roles.get(a, 0) & ROLE_PROSUMER]
            first = data.draw(st.sampled_from(meters * 3 + self.accounts))
            second = data.draw(st.sampled_from(prosumers * 3 + self.accounts))
        else:
            first, second = data.draw(st.sampled_from(self.accounts)), data.draw(ROLES)
        args = (first, second)
        self.model.started = self.chain.timestamp + 1 >= START_TIMESTAMP
        reason = self.model.refusal(self.accounts[sender], function, args)
        before = self._state()
        raw = self.wallets[sender].transact(self.registry, encode_call("Registry", function, *args), gas=300_000)
        (receipt,) = self.chain.mine([raw], self.chain.timestamp + 1)
        if reason is None:
            assert receipt.ok, receipt.revert_reason
            self.model.apply(function, args)
            event(f"accepted: {function}")
        else:
            assert (receipt.status, receipt.revert_reason) == (0, reason)
            assert self._state() == before
            event(f"refused: {reason}")

    @invariant()
    def roles_and_bindings_are_the_models(self):
        assert self._state() == tuple(
            (self.model.roles.get(a, 0), self.model.prosumer_of(a)) for a in self.accounts
        )


TestRegistryMachine = type("TestRegistryMachine", (RegistryMachine.TestCase,),
                           {"settings": machine_settings(25, steps=10)})
TestRegistryMachineSlow = pytest.mark.slow(
    type("TestRegistryMachineSlow", (RegistryMachine.TestCase,), {"settings": machine_settings(1000, steps=20)}))
