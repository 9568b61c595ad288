"""Checkpoints without a federation: when they are taken, how they are sealed, what a kept chain and its export
become when pickled and reopened (the end-to-end kill and resume is tests/test_e2e_resume.py)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.checkpoint import CheckpointError, Keeper, resume_point, seal, unseal, written
from gridledger.contracts.chain import Chain, ChainExport
from gridledger.contracts.keys import derive_account
from gridledger.schedule import (CHECKPOINT_LEAD_S, auditor_times, checkpoint_times, der_times, grid_times,
                                 ledger_actions, operator_times)
from gridledger.study import Study, StudyError, load_study

from contract_helpers import GENESIS_TIMESTAMP
from tests.secret_helpers import fixed_secret

SECRET = fixed_secret(7)


def study(**fields) -> Study:
    return Study.model_validate({"name": "t", **fields})


def test_checkpoints_fall_just_before_the_interval_starts_at_or_after_each_multiple():
    day = study(duration_s=3 * 86_400, checkpoint={"every_s": "1d"})
    assert checkpoint_times(day) == [86_400 - CHECKPOINT_LEAD_S, 2 * 86_400 - CHECKPOINT_LEAD_S]
    odd = study(duration_s=7200, market_interval_s=900, checkpoint={"every_s": "20min"})
    assert checkpoint_times(odd) == [t - CHECKPOINT_LEAD_S for t in (1800, 2700, 3600, 5400, 6300)]
    assert checkpoint_times(study(duration_s=7 * 86_400)) == [], "weekly by default: none inside a week"
    assert checkpoint_times(study(duration_s=8 * 86_400)) == [7 * 86_400 - CHECKPOINT_LEAD_S]
    assert checkpoint_times(study(duration_s=7200, checkpoint={"every_s": None})) == []


@settings(max_examples=40, deadline=None)
@given(every_min=st.integers(1, 300), interval_min=st.sampled_from([5, 15, 30, 60]),
       hours=st.integers(1, 30), audit=st.booleans())
def test_no_federate_acts_at_a_checkpoint(every_min, interval_min, hours, audit):
    s = study(duration_s=hours * 3600, market_interval_s=interval_min * 60, power_flow_step_s=300,
              checkpoint={"every_s": every_min * 60}, **({"audit": {}} if audit else {}))
    times = checkpoint_times(s)
    acting = {*der_times(s), *grid_times(s), *(a.time_s for a in ledger_actions(s)), *operator_times(s),
              *auditor_times(s)}
    assert not acting & set(times)
    assert all(0 < t < s.duration_s for t in times) and times == sorted(set(times))
    assert all((t + CHECKPOINT_LEAD_S) % s.market_interval_s == 0 for t in times)


def test_checkpoint_every_takes_durations_and_refuses_zero(tmp_path):
    path = tmp_path / "s.yaml"
    path.write_text("name: t\ncheckpoint: {every_s: 6h}\n")
    assert load_study(path).checkpoint.every_s == 21_600
    path.write_text("name: t\ncheckpoint: {every_s: 0}\n")
    with pytest.raises(StudyError, match="checkpoint.every_s"):
        load_study(path)


def sealed(state: object, what: str = "der checkpoint 3") -> bytes:
    stream = io.BytesIO()
    seal(stream, SECRET, what, state)
    return stream.getvalue()


def test_sealed_state_opens_only_with_its_secret_and_label():
    sealed_state = sealed({"soc_kwh": [1.5, 2.0]})
    assert unseal(SECRET, "der checkpoint 3", sealed_state) == {"soc_kwh": [1.5, 2.0]}
    for secret, what, data in ((fixed_secret(8), "der checkpoint 3", sealed_state),
                               (SECRET, "grid checkpoint 3", sealed_state),
                               (SECRET, "der checkpoint 2", sealed_state),
                               (SECRET, "der checkpoint 3", sealed_state[:-1] + bytes([sealed_state[-1] ^ 1])),
                               (SECRET, "der checkpoint 3", sealed_state[:20] + bytes([sealed_state[20] ^ 1])
                                + sealed_state[21:])):
        with pytest.raises(CheckpointError, match="does not open with this run secret"):
            unseal(secret, what, data)


def test_accounts_pickle_as_the_same_signer():
    account = derive_account(SECRET, "prosumer/p1")
    back = unseal(SECRET, "der checkpoint 3", sealed({"who": account}))["who"]
    assert back.address == account.address and back.key == account.key
    tx = {"type": 2, "chainId": 5, "nonce": 0, "to": account.address, "value": 0, "data": b"", "gas": 21_000,
          "maxFeePerGas": 1, "maxPriorityFeePerGas": 0}
    assert back.sign_transaction(tx).raw_transaction == account.sign_transaction(tx).raw_transaction


def test_large_arrays_are_sealed_piece_by_piece_and_come_back_equal():
    """A record of a year of 15-minute steps seals without a whole copy and opens equal."""
    record = {"vm_pu": np.linspace(0.9, 1.1, 35_040 * 20).reshape(35_040, 20), "step": 17}
    back = unseal(SECRET, "grid checkpoint 1", sealed(record, "grid checkpoint 1"))
    assert back["step"] == 17 and np.array_equal(back["vm_pu"], record["vm_pu"])


def test_keeper_drops_only_what_a_later_complete_checkpoint_covers(tmp_path):
    """The grid runs ahead of the DER (as a federate that dies leaves the others): the grid keeps every checkpoint
    until the DER's files complete a later one, so a complete checkpoint is always on disk."""
    times = [100.0, 200.0, 300.0, 400.0]
    federates = ("grid", "der")
    grid, der = (Keeper(tmp_path, name, times, SECRET, federates) for name in federates)
    for number in (1, 2, 3):
        grid.save(number, {"grid at": number}, [("ledger/tx", b"m")])
    assert written(tmp_path) == {1: {"grid"}, 2: {"grid"}, 3: {"grid"}} and resume_point(tmp_path, federates) is None
    der.save(1, {"der at": 1}, [])
    der.save(2, {"der at": 2}, [])
    assert written(tmp_path) == {1: {"grid"}, 2: {"grid", "der"}, 3: {"grid"}}
    grid.save(4, {"grid at": 4}, [])
    assert written(tmp_path) == {2: {"grid", "der"}, 3: {"grid"}, 4: {"grid"}}
    assert resume_point(tmp_path, federates) == 2
    resumed = Keeper(tmp_path, "grid", times, SECRET, federates, resume=2)
    assert resumed.resumed_at_s == 200.0
    assert resumed.restore() == {"grid at": 2} and resumed.held == [("ledger/tx", b"m")]
    with pytest.raises(CheckpointError, match="missing; checkpoint 1 is not complete"):
        Keeper(tmp_path, "grid", times, SECRET, federates, resume=1).restore()
    with pytest.raises(CheckpointError, match="no checkpoint 5"):
        Keeper(tmp_path, "grid", times, SECRET, federates, resume=5)


def _transfers(chain: Chain, wallet, count: int) -> list[bytes]:
    return [wallet.transact(wallet.address, b"", gas=21_000, value_wei=1) for _ in range(count)]


def test_a_kept_chain_and_its_export_reopen_at_the_checkpoint_and_mine_the_same_blocks(tmp_path):
    """Pickled after block 2, the chain mines blocks 3 and 4; reopened, it is back at block 2, its export cut
    there, and mining the same transactions again gives the same blocks and the same export bytes."""
    account = derive_account(SECRET, "user/0")
    chain = Chain([account.address], genesis_timestamp=GENESIS_TIMESTAMP)
    chain.keep(tmp_path / "chaindb")
    export = ChainExport(chain, tmp_path / "chain", forget=True)
    wallet = chain.wallet(account)
    for block in (1, 2):
        chain.mine(_transfers(chain, wallet, 2), GENESIS_TIMESTAMP + block)
        export.append()
    saved = sealed((chain, export, wallet))
    later = [_transfers(chain, wallet, 3), _transfers(chain, wallet, 1)]
    for block, txs in zip((3, 4), later):
        chain.mine(txs, GENESIS_TIMESTAMP + block)
        export.append()
    hashes = [chain.block_hash(n) for n in (3, 4)]
    export.close()
    first = {name: (tmp_path / "chain" / f"{name}.jsonl").read_bytes() for name in ("blocks", "receipts", "events")}
    chain.close()

    chain, export, wallet = unseal(SECRET, "der checkpoint 3", saved)
    assert chain.block_number == 2 and wallet.nonce == 4
    assert len((tmp_path / "chain" / "blocks.jsonl").read_text().splitlines()) == 3
    for block, txs in zip((3, 4), later):
        chain.mine(txs, GENESIS_TIMESTAMP + block)
        export.append()
    assert [chain.block_hash(n) for n in (3, 4)] == hashes and chain.balance(account.address) > 0
    export.close()
    chain.close()
    assert {name: (tmp_path / "chain" / f"{name}.jsonl").read_bytes() for name in first} == first


def test_only_a_kept_chain_can_be_checkpointed():
    chain = Chain([derive_account(SECRET, "user/0").address], genesis_timestamp=GENESIS_TIMESTAMP)
    with pytest.raises(TypeError, match="only a kept chain"):
        sealed(chain)
