"""The kept chain's store answers as a dict would, through its key cache, its evictions and a reopening."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gridledger.contracts import disk_store
from gridledger.contracts.disk_store import DiskStore, StoreLocked

KEYS = st.sampled_from([b"a", b"b", b"c", b"d", b"e", b"f"])
BLOCKS = st.lists(st.dictionaries(KEYS, st.none() | st.binary(min_size=1, max_size=8), max_size=6), max_size=12)


@settings(max_examples=60, deadline=None)
@given(blocks=BLOCKS, reads=st.lists(KEYS, max_size=20))
def test_the_store_answers_as_a_dict_through_its_cache_and_after_reopening(blocks, reads):
    """Each block of changes (None deletes) written in turn, with reads between; a key cache of three keys makes
    every read or write evict."""
    reference: dict[bytes, bytes] = {}
    saved = disk_store.READ_CACHE_KEYS
    disk_store.READ_CACHE_KEYS = 3
    try:
        with tempfile.TemporaryDirectory() as directory:
            store = DiskStore(Path(directory), create=True)
            for k, changes in enumerate(blocks):
                store.write(changes)
                reference = {key: value for key, value in {**reference, **changes}.items() if value is not None}
                for key in reads[k % 3::3]:
                    assert store.get(key) == reference.get(key)
            store.close()
            reopened = DiskStore(Path(directory), read_only=True)
            assert {key: reopened.get(key) for key in {*reference, *reads}} == {
                key: reference.get(key) for key in {*reference, *reads}}
            reopened.close()
    finally:
        disk_store.READ_CACHE_KEYS = saved


def test_a_writer_holds_the_store_alone_and_readers_share_a_finished_one(tmp_path):
    writer = DiskStore(tmp_path, create=True)
    writer.write({b"k": b"v"})
    with pytest.raises(StoreLocked):
        DiskStore(tmp_path, read_only=True)
    writer.close()
    first, second = DiskStore(tmp_path, read_only=True), DiskStore(tmp_path, read_only=True)
    assert first.get(b"k") == second.get(b"k") == b"v"
    first.close()
    second.close()
    with pytest.raises(FileNotFoundError, match="no kept chain here"):
        DiskStore(tmp_path / "elsewhere")
