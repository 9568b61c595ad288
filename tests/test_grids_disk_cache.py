"""SimBench yearly profiles kept on disk: the cached read equals a fresh build, and a changed key builds anew."""

from datetime import datetime

import numpy as np
import pytest

from gridledger.grids import feeder_profiles as fp
from gridledger.grids.disk_cache import CACHE_ENV, cache_root, cached_arrays
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
