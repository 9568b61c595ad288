"""`gridledger sweep`: 2 grid fees x 3 PV shares of a 30-minute study on a LocalCluster of 2 workers."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml
from distributed import Client, LocalCluster

from gridledger import sweep
from gridledger.cli import EXIT_BAD_INPUT, main
from gridledger.study import StudyError, load_study
from tests.e2e_helpers import gridledger

MICRO = {"name": "micro", "start": "2024-06-21T11:00:00", "duration_s": 1800, "seed": 7,
         "prosumers": {"count": 8, "pv": {"share": 0.5}, "battery": {"share": 0.25}}}
FEES = (0.01, 0.03)
SHARES = (0.2, 0.8)


@pytest.fixture(scope="module")
def study_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("study") / "micro.yaml"
    path.write_text(yaml.safe_dump(MICRO))
    return path


@pytest.fixture(scope="module")
def swept(study_file, tmp_path_factory):
    runs = tmp_path_factory.mktemp("runs")
    proc = gridledger("sweep", str(study_file), "--param", "market.grid_fee_per_kwh=0.01,0.03",
                      "--param", "prosumers.pv.share=0.2,0.8", "--workers", "2", "--runs", str(runs))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (directory,) = (runs / "micro-sweep").iterdir()
    with xr.open_dataset(directory / sweep.DATASET_FILE) as ds:
        yield directory, ds.load(), json.loads((directory / sweep.SWEEP_FILE).read_text()), proc.stdout


@pytest.mark.e2e
def test_sweep_ran_every_scenario_on_two_workers(swept):
    _, _, summary, stdout = swept
    assert "4 scenarios on a local Dask cluster of 2 workers" in stdout
    assert [s["id"] for s in summary["scenarios"]] == [f"s{i:03d}" for i in range(4)]
    assert all(s["exit_code"] == 0 for s in summary["scenarios"])


@pytest.mark.e2e
def test_combined_dataset_has_scenario_dimension_with_swept_coordinates(swept):
    _, ds, _, _ = swept
    assert ds.sizes["scenario"] == 4 and ds.vm_pu.dims == ("scenario", "time", "bus")
    assert list(ds.scenario.values) == [f"s{i:03d}" for i in range(4)]
    assert list(ds["market.grid_fee_per_kwh"].values) == [f for f in FEES for _ in SHARES]
    assert list(ds["prosumers.pv.share"].values) == [s for _ in FEES for s in SHARES]
    assert ds.attrs["swept"] == "market.grid_fee_per_kwh,prosumers.pv.share"


@pytest.mark.e2e
def test_each_scenario_in_the_dataset_is_its_own_run(swept):
    _, ds, summary, _ = swept
    ports = set()
    for scenario in summary["scenarios"]:
        run_dir = scenario["run_dir"]
        study = load_study(f"{run_dir}/study.yaml")
        assert study.market.grid_fee_per_kwh == scenario["values"]["market.grid_fee_per_kwh"]
        assert study.prosumers.pv.share == scenario["values"]["prosumers.pv.share"]
        ports.add(study.helics.port)
        with xr.open_dataset(f"{run_dir}/results.nc") as run:
            one = ds.sel(scenario=scenario["id"])
            np.testing.assert_array_equal(one.vm_pu.values, run.vm_pu.values)
            np.testing.assert_array_equal(one.fee_token.values, run.fee_token.values)
    assert len(ports) == 4, "every scenario needs a broker port of its own"


@pytest.mark.e2e
def test_swept_values_reach_the_federates(swept):
    """The fee scales what buyers pay for the same trades; a larger PV share equips more prosumers."""
    _, ds, _, _ = swept
    fee = ds.fee_token.sum(("interval", "prosumer"))
    traded = ds.cleared_volume_wh.sum("interval")
    n = len(SHARES)
    for i in range(n):
        assert int(traded[i]) == int(traded[i + n]) > 0
        assert float(fee[i + n]) == pytest.approx(3 * float(fee[i]), rel=1e-9)
    with_pv = (ds.pv_p_mw.max("time") > 0).sum("prosumer").values
    assert with_pv[0] < with_pv[1]


@pytest.mark.e2e
def test_sweep_writes_a_comparison_report_of_all_scenarios(swept):
    directory, _, _, _ = swept
    text = (directory / "compare.html").read_text()
    assert text.count("<tr data-scenario=") == 4
    assert text.count('<img alt="') >= 5


@pytest.mark.parametrize("param, message", [
    ("market.grid_fee=0.1", "--param market.grid_fee: unknown field 'market.grid_fee'; allowed here: mechanism"),
    ("colour=red", "unknown field 'colour'; allowed here: name, start"),
    ("prosumers.pv.share=0.5,1.5", "prosumers.pv.share = 1.5: Input should be less than or equal to 1"),
    ("market.grid_fee_per_kwh=", "--param market.grid_fee_per_kwh: no values given"),
    ("market", "expected PATH=VALUE"),
    ("grid.limits=1", "grid.limits is a group of fields; sweep one of: grid.limits.vm_min_pu"),
    ("seed.x=1", "seed is a single field"),
    ("helics.port=5000,5002", "cannot be swept"),
    ("prosumers.count=8,99", "with prosumers.count=99: prosumers:"),
])
def test_bad_parameter_exits_2_before_anything_runs(param, message, study_file, tmp_path, capsys):
    assert main(["sweep", str(study_file), "--param", param, "--runs", str(tmp_path)]) == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def test_empty_sweep_exits_2(study_file, tmp_path, capsys):
    assert main(["sweep", str(study_file), "--runs", str(tmp_path)]) == EXIT_BAD_INPUT
    assert "empty sweep" in capsys.readouterr().err


def test_repeated_parameter_exits_2(study_file, tmp_path, capsys):
    args = ["sweep", str(study_file), "--param", "seed=1", "--param", "seed=2", "--runs", str(tmp_path)]
    assert main(args) == EXIT_BAD_INPUT
    assert "--param seed given more than once" in capsys.readouterr().err


def test_plan_is_the_cartesian_product_in_parameter_order(study_file):
    params = [sweep.parse_param("market.grid_fee_per_kwh=0.01,0.02"), sweep.parse_param("grid.feeder=case33bw")]
    scenarios = sweep.plan(study_file, params)
    assert [s.values for s in scenarios] == [
        {"market.grid_fee_per_kwh": 0.01, "grid.feeder": "case33bw"},
        {"market.grid_fee_per_kwh": 0.02, "grid.feeder": "case33bw"},
    ]
    assert scenarios[1].study.market.grid_fee_per_kwh == 0.02 and scenarios[1].study.seed == 7


def test_values_are_read_as_yaml_scalars():
    assert sweep.parse_param("seed=1,2").values == (1, 2)
    assert sweep.parse_param("prosumers.buses=null").values == (None,)
    assert sweep.parse_param("helics.core_type=zmq, tcp").values == ("zmq", "tcp")


def test_bad_value_error_names_the_scenario(study_file):
    with pytest.raises(StudyError, match=r"(?s)with seed=-1.*seed = -1"):
        sweep.plan(study_file, [sweep.parse_param("seed=-1")])


def test_existing_scheduler_is_used_instead_of_a_new_cluster():
    with LocalCluster(n_workers=1, processes=False, dashboard_address=None) as cluster, \
            sweep.dask_client(cluster.scheduler_address, workers=4) as client:
        assert client.scheduler.address == cluster.scheduler_address
        assert len(client.scheduler_info()["workers"]) == 1


@pytest.fixture(scope="module")
def external_cluster(tmp_path_factory):
    """A real `dask scheduler` and two `dask worker` processes, as on a cluster; its scheduler address."""
    directory = tmp_path_factory.mktemp("cluster")
    address_file = directory / "scheduler.json"
    dask = str(Path(sys.executable).parent / "dask")
    scheduler = subprocess.Popen([dask, "scheduler", "--scheduler-file", str(address_file), "--port", "0",
                                  "--no-dashboard"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    workers = [subprocess.Popen([dask, "worker", "--scheduler-file", str(address_file), "--nthreads", "1",
                                 "--no-dashboard", "--local-directory", str(directory / f"w{i}")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT) for i in range(2)]
    try:
        with Client(scheduler_file=str(address_file), timeout=60) as client:
            client.wait_for_workers(2, timeout=120)
            yield client.scheduler.address
    finally:
        for proc in (*workers, scheduler):
            proc.terminate()
        for proc in (*workers, scheduler):
            proc.wait(timeout=60)


@pytest.mark.e2e
@pytest.mark.slow
def test_sweep_on_an_external_scheduler_equals_the_local_cluster_sweep(external_cluster, study_file, swept, tmp_path):
    proc = gridledger("sweep", str(study_file), "--param", "market.grid_fee_per_kwh=0.01",
                      "--param", "prosumers.pv.share=0.2,0.8", "--scheduler", external_cluster, "--runs", str(tmp_path))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert f"2 scenarios on the Dask cluster at {external_cluster}" in proc.stdout
    (directory,) = (tmp_path / "micro-sweep").iterdir()
    summary = json.loads((directory / sweep.SWEEP_FILE).read_text())
    assert {Path(s["run_dir"]).parent.parent.parent for s in summary["scenarios"]} == {directory}
    _, local, _, _ = swept
    with xr.open_dataset(directory / sweep.DATASET_FILE) as remote:
        xr.testing.assert_equal(remote.load(), local.sel(scenario=["s000", "s001"]))


def test_scenarios_of_different_sizes_are_padded_with_nan(study_file, tmp_path):
    """A sweep over prosumers.count stacks runs with different prosumer dims; integers must not wrap NaN."""
    study = load_study(study_file)
    scenarios, ended = [], {}
    for index, count in enumerate((2, 3)):
        run_dir = tmp_path / f"run{count}"
        run_dir.mkdir()
        names = [f"p{i:02d}" for i in range(1, count + 1)]
        xr.Dataset({"position_wh": (("interval", "prosumer"), np.arange(2 * count).reshape(2, count))},
                   coords={"prosumer": names, "interval": [0, 1]}).to_netcdf(run_dir / "results.nc", engine="h5netcdf")
        scenarios.append(sweep.Scenario(f"s{index:03d}", {"prosumers.count": count}, study))
        ended[f"s{index:03d}"] = {"exit_code": 0, "run_dir": str(run_dir)}
    combined = sweep.combine(scenarios, ended)
    combined.to_netcdf(tmp_path / "sweep.nc", engine="h5netcdf")
    with xr.open_dataset(tmp_path / "sweep.nc") as back:
        assert back.sizes["prosumer"] == 3 and list(back["prosumers.count"].values) == [2, 3]
        assert np.isnan(back.position_wh.sel(scenario="s000", prosumer="p03")).all()
        assert back.position_wh.sel(scenario="s001", prosumer="p03").values.tolist() == [2, 5]


def test_sweep_without_dask_says_which_extra_to_install(monkeypatch):
    """Dask is the ``sweep`` extra: without it the sweep refuses before it starts anything, saying what to install."""
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(StudyError, match=r"pip install 'gridledger\[sweep\]'"):
        with sweep.dask_client(None, 1):
            pass
