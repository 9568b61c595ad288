"""`gridledger grids list` shows the feeder catalog with its real sizes."""

import pandapower.networks as pn

from gridledger.cli import EXIT_OK, main


def test_grids_list_shows_catalog_with_counts(capsys):
    assert main(["grids", "list"]) == EXIT_OK
    out = capsys.readouterr().out
    for name in ("case33bw", "cigre-mv", "cigre-lv", "ieee-eu-lv", "1-LV-rural1--0-sw"):
        assert name in out
    net = pn.case33bw()
    row = next(line for line in out.splitlines() if line.strip("│ ").startswith("case33bw"))
    cells = [cell.strip() for cell in row.strip("│").split("│")]
    assert cells[:7] == ["case33bw", "balanced", "shipped", str(len(net.bus)), str(len(net.line)),
                         str(len(net.load)), "0"]
    assert "ieee-eu-lv: IEEE PES European LV test feeder" in out
