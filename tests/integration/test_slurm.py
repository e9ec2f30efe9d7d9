"""The Slurm backend against a real Slurm cluster (scripts/slurm-cluster): CI runs these twice,
without and with accounting (slurmdbd), so both ways of reading final states are exercised."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from cloudai_nb import api
from cloudai_nb.core import config
from cloudai_nb.core.models import JobState
from cloudai_nb.core.system import SlurmSystem
from cloudai_nb.engine.scenario_run import ScenarioRun
from tests.integration.slurm_helpers import ROOT, has_accounting, slurm_cluster  # noqa: F401

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

CONF = ROOT / "cloudai_nb" / "conf"


def slurm_system(tmp_path: Path, **overrides) -> SlurmSystem:
    data = {
        "name": "slurm-test",
        "scheduler": "slurm",
        "install_path": str(tmp_path / "install"),
        "output_path": str(tmp_path / "results"),
        "default_partition": "debug",
        "mpi": "none",
        "ntasks_per_node": 1,
        "monitor_interval": 0.2,
        "partitions": [{"name": "debug", "groups": [{"name": "all", "nodes": ["c[1-2]"]}]}],
        **overrides,
    }
    system = config.system_from_dict(data)
    assert isinstance(system, SlurmSystem)
    return system


def scenario(text: str):
    return config.scenario_from_dict(config.parse_toml(text))


def squeue_ids() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


@pytest.mark.slow
def test_shipped_sleep_scenario_on_two_nodes(tmp_path):
    system = config.load_system(CONF / "systems" / "slurm_local.toml").model_copy(
        update={"output_path": tmp_path}
    )
    run = api.run(CONF / "scenarios" / "sleep.toml", system, tests_dir=CONF / "tests")
    run.wait(timeout=90)
    jobs = {job.test_id: job for job in run.jobs}
    assert run.state == "COMPLETED", run.status().to_string()
    assert jobs["Tests.4"].state is JobState.CANCELLED
    assert jobs["Tests.4"].reason.startswith("cancelled by dependency")
    assert jobs["Tests.3"].started >= jobs["Tests.1"].ended
    for test_id in ("Tests.1", "Tests.2", "Tests.3"):
        job = jobs[test_id]
        assert job.exit_code == 0
        assert (job.output_path / "cloudai_sbatch_script.sh").exists()
        assert (job.output_path / "slurm-job.toml").exists()
        assert job.nodes in ("c1", "c2")


def test_two_node_job_runs_on_both_nodes(tmp_path):
    run = api.run(
        scenario(
            """
            name = "twonodes"
            [[Tests]]
            id = "where"
            test_template_name = "BashCmd"
            num_nodes = 2
            cmd_args = {cmd = "echo node=$SLURMD_NODENAME"}
            """
        ),
        slurm_system(tmp_path),
    ).wait(timeout=60)
    job = run.jobs[0]
    assert run.state == "COMPLETED", job.reason
    lines = sorted((job.output_path / "stdout.txt").read_text().split())
    assert lines == ["node=c1", "node=c2"]
    assert job.nodes == "c[1-2]"


def test_group_nodes_are_picked_live_and_recorded(tmp_path):
    run = api.run(
        scenario(
            """
            name = "group"
            [[Tests]]
            id = "g"
            test_template_name = "BashCmd"
            nodes = ["debug:all:2"]
            cmd_args = {cmd = "echo $SLURMD_NODENAME"}
            """
        ),
        slurm_system(tmp_path),
    ).wait(timeout=60)
    job = run.jobs[0]
    assert run.state == "COMPLETED", job.reason
    record = (job.output_path / "test-run.toml").read_text()
    assert 'resolved_nodes = [\n    "c1",\n    "c2",\n]' in record
    assert "#SBATCH --nodelist=c1,c2" in (job.output_path / "cloudai_sbatch_script.sh").read_text()


def test_non_zero_exit_is_failed_with_its_code(tmp_path):
    run = api.run(
        scenario(
            """
            name = "fails"
            [[Tests]]
            id = "three"
            test_template_name = "BashCmd"
            cmd_args = {cmd = "echo about to fail; exit 3"}
            """
        ),
        slurm_system(tmp_path),
    ).wait(timeout=60)
    job = run.jobs[0]
    assert run.state == "FAILED"
    assert (job.state, job.exit_code) == (JobState.FAILED, 3)
    assert "about to fail" in (job.output_path / "stdout.txt").read_text()
    meta = (job.output_path / "slurm-job.toml").read_text()
    assert 'state = "FAILED"' in meta and "exit_code = 3" in meta


@pytest.mark.slow
def test_time_limit_is_a_timeout(tmp_path):
    run = api.run(
        scenario(
            """
            name = "timeout"
            [[Tests]]
            id = "long"
            test_template_name = "Sleep"
            time_limit = "1"
            cmd_args = {seconds = 300}
            """
        ),
        slurm_system(tmp_path),
    ).wait(timeout=150)
    assert run.jobs[0].state is JobState.TIMEOUT
    assert run.state == "FAILED"


def test_cancel_from_outside_with_scancel(tmp_path):
    run = api.run(
        scenario(
            """
            name = "scancelled"
            [[Tests]]
            id = "victim"
            test_template_name = "Sleep"
            cmd_args = {seconds = 120}
            [[Tests]]
            id = "after"
            test_template_name = "Sleep"
            cmd_args = {seconds = 1}
              [[Tests.dependencies]]
              type = "start_post_comp"
              id = "victim"
            """
        ),
        slurm_system(tmp_path),
    )
    deadline = time.monotonic() + 30
    while run.jobs[0].state is not JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    subprocess.run(["scancel", str(run.jobs[0].job_id)], check=True)
    run.wait(timeout=30)
    assert run.jobs[0].state is JobState.CANCELLED
    assert run.jobs[1].state is JobState.SKIPPED  # job_status_check: an unexpected cancel stops the rest
    assert run.state == "FAILED"


def test_unknown_partition_is_refused_before_sbatch(tmp_path):
    before = squeue_ids()
    run = api.run(
        scenario('name = "nopart"\n[[Tests]]\nid = "x"\ntest_template_name = "Sleep"\n'),
        slurm_system(tmp_path, default_partition="nosuch", partitions=[]),
    ).wait(timeout=30)
    job = run.jobs[0]
    assert job.state is JobState.FAILED
    assert job.reason == "not submitted: unknown partition 'nosuch'; the cluster has: debug"
    assert squeue_ids() == before


def test_sbatch_rejection_is_a_clear_error_and_nothing_is_left(tmp_path):
    before = squeue_ids()
    run = api.run(
        scenario('name = "refused"\n[[Tests]]\nid = "x"\ntest_template_name = "Sleep"\n'),
        slurm_system(tmp_path, extra_sbatch_args=["--mem=999999"]),
    ).wait(timeout=30)
    job = run.jobs[0]
    assert job.state is JobState.FAILED
    assert job.reason.startswith("not submitted: sbatch refused x/0: sbatch: error:")
    assert "(ran: sbatch --parsable" in job.reason
    assert squeue_ids() == before


def test_more_nodes_than_exist_is_refused_naming_them(tmp_path):
    run = api.run(
        scenario('name = "big"\n[[Tests]]\nid = "x"\ntest_template_name = "Sleep"\nnum_nodes = 5\n'),
        slurm_system(tmp_path),
    ).wait(timeout=30)
    assert (
        run.jobs[0].reason == "not submitted: num_nodes = 5, but the partition has 2 usable node(s): c1, c2"
    )


def write_shims(bin_dir: Path, log: Path) -> dict[str, str]:
    """Slurm commands wrapped to log each call, placed first on PATH."""
    bin_dir.mkdir()
    for tool in ("squeue", "sbatch", "scontrol", "sacct", "scancel", "sinfo"):
        real = subprocess.run(
            ["bash", "-c", f"command -v {tool}"], capture_output=True, text=True
        ).stdout.strip()
        shim = bin_dir / tool
        shim.write_text(f'#!/bin/bash\necho "{tool} $*" >> "{log}"\nexec {real} "$@"\n')
        shim.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def test_fifty_live_jobs_cost_one_squeue_per_tick(tmp_path, monkeypatch):
    log = tmp_path / "calls.log"
    env = write_shims(tmp_path / "bin", log)
    monkeypatch.setenv("PATH", env["PATH"])
    text = 'name = "fifty"\n' + "".join(
        f'[[Tests]]\nid = "t{i}"\ntest_template_name = "Sleep"\ncmd_args = {{seconds = 3}}\n'
        for i in range(50)
    )
    scenario_run = ScenarioRun.start(scenario(text), slurm_system(tmp_path))
    assert asyncio.run(scenario_run.drive()) == "COMPLETED"
    calls = [line.split() for line in log.read_text().splitlines()]
    tools = [call[0] for call in calls]
    ticks = scenario_run.poller.ticks
    assert tools.count("sbatch") == 50
    assert tools.count("squeue") == ticks  # one squeue per tick...
    asked = [len(call[call.index("-j") + 1].split(",")) for call in calls if call[0] == "squeue"]
    assert max(asked) == 50  # ...that asks about every live job at once
    # final states: at most one scontrol or sacct call per tick that saw jobs end
    assert tools.count("scontrol") + tools.count("sacct") <= ticks + 1


@pytest.mark.slow
def test_controller_down_for_ten_seconds(tmp_path):
    """slurmctld stops while jobs run: the run says so, keeps its jobs, and finishes once it is back."""
    from tests.integration.slurm_helpers import start_controller, stop_controller

    run = api.run(
        scenario(
            """
            name = "ctld"
            [[Tests]]
            id = "a"
            test_template_name = "Sleep"
            cmd_args = {seconds = 6}
            [[Tests]]
            id = "b"
            test_template_name = "Sleep"
            cmd_args = {seconds = 1}
              [[Tests.dependencies]]
              type = "start_post_comp"
              id = "a"
            """
        ),
        slurm_system(tmp_path),
    )
    deadline = time.monotonic() + 30
    while run.jobs[0].state is not JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.1)
    stop_controller()
    try:
        time.sleep(10)
        assert run.state == "RUNNING"
        assert run.jobs[1].state is JobState.WAITING
    finally:
        start_controller()
    run.wait(timeout=90)
    assert run.state == "COMPLETED", run.status().to_string()
    events = [json.loads(line) for line in (run.path / "jobs.jsonl").read_text().splitlines()]
    assert any(e.get("event") == "scheduler_unreachable" for e in events)


def test_accounting_mode_matches_what_the_cluster_has():
    """Documents which mode this session ran in (CI runs the suite in both)."""
    print("accounting:", has_accounting())
    _ = signal  # keep the import for the controller helpers
