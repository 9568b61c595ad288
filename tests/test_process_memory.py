"""A federate's peak memory is its own, not the launcher's it was spawned from."""

import math
import subprocess
import sys

from gridledger.process import peak_rss_mib, rss_mib

PARENT_MIB = 300
REPORT = "from gridledger.process import peak_rss_mib; print(peak_rss_mib())"


def test_a_spawned_process_does_not_report_its_parents_memory():
    held = bytearray(PARENT_MIB * 2**20)
    held[::4096] = b"\1" * len(held[::4096])
    assert peak_rss_mib() >= PARENT_MIB
    child = subprocess.run([sys.executable, "-c", REPORT], capture_output=True, text=True, check=True)
    assert 1.0 < float(child.stdout) < PARENT_MIB / 2


def test_peak_is_read_from_vmhwm_in_kib(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 9999999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n")
    assert peak_rss_mib(status) == 200.0


def test_the_resident_set_now_is_read_from_vmrss_in_kib_and_nan_without_the_file(tmp_path):
    status = tmp_path / "status"
    status.write_text("Name:\tpython\nVmPeak:\t 9999999 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n")
    assert rss_mib(status) == 100.0
    assert math.isnan(rss_mib(tmp_path / "missing"))
    assert 0 < rss_mib() <= peak_rss_mib()
