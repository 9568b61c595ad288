"""SimBench nets and yearly profiles kept on disk: the cached read equals a fresh build, and a changed key builds anew."""

from datetime import datetime

import numpy as np
import pandas as pd
import pytest
import simbench

from gridledger.grids import feeder_profiles as fp
from gridledger.grids import feeders
from gridledger.grids.disk_cache import CACHE_ENV, cache_root, cached_arrays, cached_object
from gridledger.grids.feeders import load_feeder

CODE = "1-LV-rural1--0-sw"


@pytest.fixture(scope="module")
def fresh():
    return fp.absolute_year(CODE)


def _never_built():
    raise AssertionError("the entry exists, so it must be read, not built")


def test_cached_year_equals_a_fresh_build_and_is_read_not_rebuilt(tmp_path, fresh):
    entry = fp.year_entry(CODE, fp.SIMBENCH_VERSION, tmp_path)
    stored = cached_arrays(entry, lambda: fp.absolute_year(CODE))
    again = cached_arrays(entry, _never_built)
    assert set(stored) == set(again) == set(fresh)
    for name, values in fresh.items():
        np.testing.assert_array_equal(stored[name], values, err_msg=name)
        np.testing.assert_array_equal(again[name], values, err_msg=name)
        assert again[name].dtype == values.dtype and not again[name].flags.writeable
    assert fresh["load_p_mw"].shape[1] == len(fresh["load_index"]) > 0


def test_a_changed_key_builds_a_new_entry(tmp_path, fresh):
    entry = fp.year_entry(CODE, fp.SIMBENCH_VERSION, tmp_path)
    cached_arrays(entry, lambda: fresh)
    other_release = fp.year_entry(CODE, fp.SIMBENCH_VERSION + ".post1", tmp_path)
    other_code = fp.year_entry("1-LV-semiurb4--0-sw", fp.SIMBENCH_VERSION, tmp_path)
    assert len({entry, other_release, other_code}) == 3
    builds = []
    stored = cached_arrays(other_release, lambda: builds.append(1) or {"load_p_mw": fresh["load_p_mw"][:2]})
    assert builds == [1]
    assert set(stored) == {"load_p_mw"} and stored["load_p_mw"].shape == (2, len(fresh["load_index"]))
    assert entry.is_dir() and other_release.is_dir() and not other_code.exists()


def test_feeder_profiles_fill_the_cache_named_by_the_environment(tmp_path, monkeypatch, fresh):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    assert cache_root() == tmp_path
    fp._absolute_year.cache_clear()
    try:
        profiles = fp.feeder_profiles(load_feeder(CODE), datetime(2027, 7, 14, 13, 10), [0.0, 900.0])
    finally:
        fp._absolute_year.cache_clear()
    assert fp.year_entry(CODE, fp.SIMBENCH_VERSION, tmp_path).is_dir()
    np.testing.assert_array_equal(profiles.load_p_mw, fresh["load_p_mw"][profiles.profile_step])


def test_the_default_root_is_under_the_home_cache(monkeypatch):
    monkeypatch.delenv(CACHE_ENV, raising=False)
    assert cache_root().parts[-2:] == (".cache", "gridledger")


def test_cached_object_is_built_once_then_read(tmp_path):
    entry = tmp_path / "a" / "value.pickle"
    builds = []
    first = cached_object(entry, lambda: builds.append(1) or {"p_mw": [1.5, 2.0]})
    again = cached_object(entry, _never_built)
    assert builds == [1] and first == again == {"p_mw": [1.5, 2.0]}
    assert again is not first
    assert [path.name for path in entry.parent.iterdir()] == ["value.pickle"]


@pytest.mark.parametrize("target, mode", [("entry", 0o666), ("entry", 0o620), ("directory", 0o777)])
def test_a_pickle_others_could_have_written_is_not_loaded(tmp_path, target, mode):
    """A pickle runs code on load: an entry another user could have replaced is refused, not read."""
    entry = tmp_path / "a" / "value.pickle"
    cached_object(entry, lambda: {"p_mw": 1.0})
    assert entry.stat().st_mode & 0o777 == 0o600
    (entry if target == "entry" else entry.parent).chmod(mode)
    with pytest.raises(PermissionError, match=f"refusing to load the cached object {entry}"):
        cached_object(entry, _never_built)


def test_a_failed_pickle_leaves_no_entry(tmp_path):
    entry = tmp_path / "value.pickle"
    with pytest.raises(AttributeError):
        cached_object(entry, lambda: lambda: None)
    assert list(tmp_path.iterdir()) == []


def test_a_simbench_net_read_from_the_cache_equals_the_published_one(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    feeders._simbench_net.cache_clear()
    try:
        built = load_feeder(CODE)
        entry = feeders.simbench_net_entry(CODE, tmp_path)
        assert entry.is_file() and "simbench-" in entry.parent.name and "pandapower-" in entry.parent.name
        feeders._simbench_net.cache_clear()
        monkeypatch.setattr(simbench, "get_simbench_net", _never_built)
        cached = load_feeder(CODE)
    finally:
        feeders._simbench_net.cache_clear()
    assert cached.name == built.name == CODE
    for table in ("bus", "line", "trafo", "load", "sgen", "ext_grid"):
        pd.testing.assert_frame_equal(cached[table], built[table], obj=table)
    pd.testing.assert_frame_equal(cached.profiles["load"], built.profiles["load"])
