"""Results from real runs: fio for real, sweeps as grids, comparisons, plots, summary.json."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import cloudai_nb
from cloudai_nb.core import config
from cloudai_nb.core.system import StandaloneSystem
from tests.conftest import require


def system(tmp_path: Path) -> StandaloneSystem:
    return StandaloneSystem(name="local", output_path=tmp_path / "results", install_path=tmp_path / "install")


def scenario(text: str):
    return config.scenario_from_dict(config.parse_toml(text))


FIO_SWEEP = """
name = "fio"
[[Tests]]
id = "randread"
test_template_name = "Fio"
  [Tests.cmd_args.args]
  name = "rr"
  rw = "randread"
  bs = ["4k", "64k"]
  size = "16M"
  ioengine = "psync"
  runtime = 1
  time_based = true
  filename = "fio.data"
"""


@pytest.fixture
def fio_run(tmp_path):
    require(shutil.which("fio") is not None, "fio is not installed (apt-get install fio)")
    return cloudai_nb.run(scenario(FIO_SWEEP), system(tmp_path)).wait(timeout=60)


def test_fio_runs_for_real_and_its_json_becomes_rows(fio_run):
    assert fio_run.state == "COMPLETED", fio_run.status()[["test_id", "state", "reason"]].to_string()
    frame = fio_run.results()
    assert set(frame["args.bs"]) == {"4k", "64k"}
    assert {"bandwidth", "iops", "lat_mean", "clat_p50", "clat_p99"} <= set(frame["metric"])
    bandwidth = frame[frame["metric"] == "bandwidth"]
    assert (bandwidth["value"] > 0).all()
    assert set(bandwidth["unit"]) == {"MiB/s"}
    assert set(frame["direction"]) == {"read"}
    grid = frame[frame["metric"] == "iops"].pivot_table(index="args.bs", values="value")
    assert list(grid.index) == ["4k", "64k"]
    wide = fio_run.results(wide=True)
    assert {"bandwidth", "iops"} <= set(wide.columns)
    assert len(wide) == 2


def test_best_step_and_its_toml(fio_run):
    best = fio_run.best("bandwidth", maximize=True)
    assert best.params["args.bs"] in ("4k", "64k")
    assert 'bs = "' + best.params["args.bs"] + '"' in best.toml
    assert config.test_from_dict(__import__("tomllib").loads(best.toml)).sweep == {}


def test_compare_two_runs_and_plot(fio_run, tmp_path):
    again = cloudai_nb.run(scenario(FIO_SWEEP), system(tmp_path)).wait(timeout=60)
    table = cloudai_nb.compare(fio_run, again, metric="bandwidth")
    assert list(table["args.bs"]) == ["4k", "64k"]
    assert (table["ratio"] > 0).all()
    both = cloudai_nb.results([fio_run, again.path])
    assert set(both["run"]) == {fio_run.path.name, again.path.name}
    figure = fio_run.plot()
    assert figure.axes[0].get_ylabel() == "bandwidth (MiB/s)"


def test_broken_fio_output_fails_the_job(tmp_path):
    run = cloudai_nb.run(
        scenario(
            'name = "f"\n[[Tests]]\nid = "x"\ntest_template_name = "Fio"\ncmd_args = {fio_binary = "true"}\n'
        ),
        system(tmp_path),
    ).wait(timeout=30)
    job = run.jobs[0]
    assert job.exit_code == 0
    assert job.state.value == "FAILED"
    assert job.reason == "no fio JSON report in stdout (did fio run with --output-format=json?)"


def test_summary_json_has_jobs_and_headline_metrics(tmp_path):
    run = cloudai_nb.run(
        scenario(
            'name = "s"\n[[Tests]]\nid = "b"\ntest_template_name = "BashCmd"\ncmd_args = {cmd = "echo speed=2"}\n'
        ),
        system(tmp_path),
    ).wait(timeout=30)
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["system"] == {"name": "local", "scheduler": "standalone"}
    (entry,) = summary["job_list"]
    assert entry["state"] == "COMPLETED" and entry["exit_code"] == 0
    assert entry["metrics"]["duration"] > 0


def test_cli_results_csv(tmp_path):
    run = cloudai_nb.run(
        scenario(
            'name = "c"\n[[Tests]]\nid = "b"\ntest_template_name = "BashCmd"\ncmd_args = {cmd = "echo x=1.5 ms"}\n'
        ),
        system(tmp_path),
    ).wait(timeout=30)
    out = subprocess.run(
        [sys.executable, "-m", "cloudai_nb", "results", str(run.path), "--csv"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert out.splitlines()[0].startswith("test_id,iteration,step,metric,value,unit")
    assert "x,1.5,ms" in out


FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "nccl"


def fake_nccl_binary(tmp_path: Path, fixture: str) -> dict[str, str]:
    """An all_reduce_perf on PATH that prints a recorded log: the real standalone path, no GPU."""
    import os

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    script = bin_dir / "all_reduce_perf"
    script.write_text(f'#!/bin/bash\necho "# args: $*"\ncat {FIXTURES / fixture}\n')
    script.chmod(0o755)
    return {"PATH": f"{bin_dir}:{os.environ['PATH']}"}


NCCL = """
name = "nccl"
[[Tests]]
id = "ar"
test_template_name = "NcclTest"
cmd_args = {subtest_name = "all_reduce_perf", minbytes = "8", maxbytes = "8G"}
"""


def test_nccl_on_a_workstation_from_path_parsed_per_size(tmp_path):
    fixture = "allreduce_8xh100.log"
    local = system(tmp_path).model_copy(update={"global_env_vars": fake_nccl_binary(tmp_path, fixture)})
    run = cloudai_nb.run(scenario(NCCL), local).wait(timeout=30)
    assert run.state == "COMPLETED", run.jobs[0].reason
    stdout = (run.jobs[0].output_path / "stdout.txt").read_text()
    assert stdout.startswith("# args: -t 1 -g 1 -b 8 -e 8G -f 2 -o sum -d float")
    wide = run.results(wide=True)
    per_size = wide.dropna(subset=["size_b"])
    assert len(per_size) >= 30
    assert per_size["busbw_oop"].max() > 0
    assert run.results().query("metric == 'avg_busbw'")["unit"].iloc[0] == "GB/s"
    figure = run.plot()
    assert figure.axes[0].get_xscale() == "log"
    summary = json.loads((run.path / "summary.json").read_text())
    assert summary["job_list"][0]["metrics"]["avg_busbw"] > 0


def test_a_crashed_nccl_log_fails_the_job_with_the_reason(tmp_path):
    fixture = "crashed_after_header.log"
    local = system(tmp_path).model_copy(update={"global_env_vars": fake_nccl_binary(tmp_path, fixture)})
    run = cloudai_nb.run(scenario(NCCL), local).wait(timeout=30)
    job = run.jobs[0]
    assert (job.state.value, job.exit_code) == ("FAILED", 0)
    assert job.reason and ("crashed" in job.reason or "did not finish" in job.reason)
