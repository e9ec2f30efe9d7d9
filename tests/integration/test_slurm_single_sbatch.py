"""CloudAI's single-sbatch mode and pre_test/post_test hooks on the real cluster (scripts/slurm-cluster).

CI runs these with and without accounting, like test_slurm.py.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from cloudai_nb import api
from cloudai_nb.api import Run
from cloudai_nb.core.models import JobState
from tests.integration.slurm_helpers import ROOT, slurm_cluster  # noqa: F401
from tests.integration.test_slurm import scenario, slurm_system, squeue_ids

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]

CLI = str(Path(sys.executable).parent / "cloudai-nb")  # the console script of this environment

HOOK_DIR = ROOT / "cloudai_nb" / "conf" / "hook"


def bash(test_id: str, cmd: str, *extra: str) -> str:
    """A ``[[Tests]]`` entry running ``cmd``; ``extra`` lines (keys, then dependency tables) follow."""
    lines = [
        f'[[Tests]]\nid = "{test_id}"\ntest_template_name = "BashCmd"',
        f"cmd_args = {{cmd = {cmd!r}}}",
        *extra,
    ]
    return "\n".join(lines) + "\n"


def after(test_id: str) -> str:
    return f'  [[Tests.dependencies]]\n  type = "start_post_comp"\n  id = "{test_id}"'


def wait_for(run: Run, key: str, state: JobState, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    job = next(job for job in run.jobs if job.key == key)
    while job.state is not state:
        assert time.monotonic() < deadline, f"{key} is {job.state.value}, not {state.value}"
        time.sleep(0.1)


def test_one_allocation_runs_every_test_run_in_order_with_hooks(tmp_path):
    text = (
        'name = "single"\njob_status_check = false\npre_test = "nodes_ready"\npost_test = "nodes_ready"\n'
        + bash("wide", "echo node=$SLURMD_NODENAME", "num_nodes = 2")
        + bash("last", "echo last", after("failing"))
        + bash("failing", "sleep 1; exit 3")
    )
    run = api.run(scenario(text), slurm_system(tmp_path), hook_dir=HOOK_DIR, single_sbatch=True)
    run.wait(timeout=60)
    jobs = {job.test_id: job for job in run.jobs}
    assert len({job.job_id for job in run.jobs}) == 1  # one Slurm job for all of them
    assert [(j.state, j.exit_code) for j in (jobs["wide"], jobs["failing"], jobs["last"])] == [
        (JobState.COMPLETED, 0),
        (JobState.FAILED, 3),
        (JobState.COMPLETED, 0),
    ]
    assert run.state == "FAILED"
    wide = (jobs["wide"].output_path / "stdout.txt").read_text().split()
    assert sorted(wide) == ["node=c1", "node=c2"]  # its own srun on both nodes, its own output
    assert jobs["failing"].started >= jobs["wide"].ended  # one after another, dependencies first
    assert jobs["last"].started >= jobs["failing"].ended
    for kind in ("pre_test", "post_test"):
        hook_out = (run.path / kind / "node_check" / "stdout.txt").read_text()
        assert hook_out.count(" ready\n") == 2, hook_out  # once per node of the allocation
    assert (run.path / "common.out").exists()
    assert 'state = "FAILED"' in (run.path / "slurm-job.toml").read_text()  # the allocation's own record
    assert 'single_sbatch_step = "last/0"' in (jobs["last"].output_path / "slurm-job.toml").read_text()
    assert str(jobs["wide"].job_id) not in squeue_ids()


def test_cancel_one_step_then_the_whole_allocation(tmp_path):
    text = (
        'name = "partial"\njob_status_check = false\n'
        + bash("long", "sleep 60")
        + bash("next", "sleep 60")
        + bash("never", "echo never")
    )
    run = api.run(scenario(text), slurm_system(tmp_path), single_sbatch=True)
    wait_for(run, "long/0", JobState.RUNNING)
    long, _, never = run.jobs
    never.kill()  # not started: skipped, the rest goes on
    wait_for(run, "never/0", JobState.CANCELLED)
    long.kill()  # running: only its srun step is cancelled
    wait_for(run, "long/0", JobState.CANCELLED)
    wait_for(run, "next/0", JobState.RUNNING)
    assert str(long.job_id) in squeue_ids()  # the allocation lives on
    run.cancel()
    run.wait(timeout=30)
    assert [job.state for job in run.jobs] == [JobState.CANCELLED] * 3
    assert never.reason == long.reason == "cancelled by user"
    assert not (never.output_path / "stdout.txt").exists()
    assert run.state == "CANCELLED"
    assert str(long.job_id) not in squeue_ids()


FAILING_HOOK = """
name = "broken_hook"
[[Tests]]
id = "check"
test_template_name = "BashCmd"
cmd_args = {cmd = "exit 4"}
"""


@pytest.mark.parametrize("single_sbatch", [False, True])
def test_a_failing_pre_test_keeps_the_test_from_running(tmp_path, single_sbatch):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "broken_hook.toml").write_text(FAILING_HOOK)
    text = 'name = "hooked"\npre_test = "broken_hook"\n' + bash("t", "echo ran > ran.txt")
    run = api.run(scenario(text), slurm_system(tmp_path), hook_dir=hooks, single_sbatch=single_sbatch)
    run.wait(timeout=60)
    job = run.jobs[0]
    assert job.reason == "pre_test.check failed; the test did not run (exit code 4)"
    assert job.state is (JobState.CANCELLED if single_sbatch else JobState.FAILED)
    assert run.state == "FAILED"
    assert not list(tmp_path.rglob("ran.txt"))


def test_a_killed_driver_is_taken_over_and_the_allocation_finishes(tmp_path):
    system_file = tmp_path / "system.toml"
    system_file.write_text((ROOT / "cloudai_nb" / "conf" / "systems" / "slurm_local.toml").read_text())
    scenario_file = tmp_path / "scenario.toml"
    scenario_file.write_text('name = "orphan"\n' + bash("a", "sleep 4") + bash("b", "echo b", after("a")))
    files = ["--system-config", str(system_file), "--test-scenario", str(scenario_file)]
    driver = subprocess.Popen(
        [CLI, "run", "--single-sbatch", "-q", *files],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    run_dir = None
    while time.monotonic() < deadline:
        found = list((tmp_path / "results").glob("orphan_*/jobs.jsonl"))
        if found and '"RUNNING"' in found[0].read_text():
            run_dir = found[0].parent
            break
        time.sleep(0.1)
    assert run_dir is not None, "the run never reached RUNNING"
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    run = api.load_run(run_dir)
    run.wait(timeout=60)
    assert [job.state for job in run.jobs] == [JobState.COMPLETED, JobState.COMPLETED]
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["state"] == "COMPLETED"
    assert Path(run_dir / "b" / "0" / "stdout.txt").read_text() == "b\n"
