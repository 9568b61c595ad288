"""What a run shows of its progress: percentage, simulated clock, elapsed and remaining wall time
(`gridledger.progress_view`)."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gridledger.progress_view import ProgressView, clock, remaining_s, wall


def test_the_clock_counts_days_from_one_on_long_studies():
    assert clock(3 * 3600 + 15 * 60) == "03:15"
    assert clock(3 * 3600 + 15 * 60, days=True) == "day 1 03:15"
    assert clock(109 * 86400 + 7 * 3600 + 15 * 60, days=True) == "day 110 07:15"
    assert clock(-5) == "00:00"


def test_wall_time_and_what_is_left_at_the_pace_so_far():
    assert wall(3723.4) == "1:02:03" and wall(0) == "0:00:00"
    assert remaining_s(120.0, 0.25) == pytest.approx(360.0)
    assert remaining_s(120.0, 1.0) == 0.0 and remaining_s(5.0, 0.0) is None


def test_off_a_terminal_a_line_per_tenth_gives_the_share_done_the_clocks_and_the_time_left():
    out = io.StringIO()
    view = ProgressView(4 * 86400, ["der", "grid"], Console(file=out, width=60))
    view({"der": {"time_s": 86400 * 0.35, "state": "computing"}})                # not every federate yet: silent
    assert out.getvalue() == ""
    view({"der": {"time_s": 86400 * 1.3, "state": "computing"}, "grid": {"time_s": 86400 * 1.25, "state": "waiting"}})
    view({"der": {"time_s": 86400 * 1.4, "state": "computing"}, "grid": {"time_s": 86400 * 1.3, "state": "waiting"}})
    lines = out.getvalue().splitlines()
    assert len(lines) == 1                                                       # one line per tenth, unwrapped
    assert lines[0].startswith("progress: 31 % (der day 2 07:12, grid day 2 06:00), elapsed 0:00:0")
    assert "left" in lines[0]
    view({"der": {"time_s": 4 * 86400, "state": "done"}, "grid": {"time_s": 4 * 86400, "state": "done"}})
    last = out.getvalue().splitlines()[-1]
    assert last.startswith("progress: 100 % (der day 5 00:00, grid day 5 00:00)") and "left" not in last
