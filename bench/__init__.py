"""gridledger benchmarks (`make bench`, i.e. ``python -m bench`` from the repository root).

Every figure is printed next to a baseline measured in the same run, as a
ratio, because the machines are shared and noisy; absolute numbers are
printed too. One module per benchmark:

* `bench.study`: wall time and summed peak memory of the reference study,
  split by the federates' own timing records;
* `bench.ledger`: transactions per second of `Chain.mine` vs web3.py with
  eth-tester on the same signed market orders;
* `bench.powerflow`: milliseconds per step of `PowerFlow.step` vs a default
  `pandapower.runpp` on the same feeder and injections.

``python -m bench`` prints a table and writes a machine-readable copy to
``runs/bench/<timestamp>.json``.
"""


def verdict(ok: bool) -> str:
    """How a bench row reads against its aim."""
    return "meets aim" if ok else "MISSES aim"
