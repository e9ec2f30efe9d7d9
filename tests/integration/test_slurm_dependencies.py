"""Dependencies delegated to ``sbatch --dependency`` on the real cluster: every job is submitted at
once and Slurm starts each on time, with or without a process watching."""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest

from cloudai_nb import api
from cloudai_nb.core import config
from cloudai_nb.core.models import JobState
from tests.integration.slurm_helpers import slurm_cluster  # noqa: F401
from tests.integration.test_slurm import CONF, squeue_ids
from tests.integration.test_slurm_single_sbatch import CLI, after, bash

pytestmark = [pytest.mark.slurm, pytest.mark.usefixtures("slurm_cluster")]


@pytest.mark.slow
def test_shipped_sleep_scenario_with_slurm_holding_the_jobs(tmp_path):
    system = config.load_system(CONF / "systems" / "slurm_local.toml").model_copy(
        update={"output_path": tmp_path}
    )
    run = api.run(
        CONF / "scenarios" / "sleep.toml", system, tests_dir=CONF / "tests", sbatch_dependencies=True
    )
    run.wait(timeout=90)
    jobs = {job.test_id: job for job in run.jobs}
    assert run.state == "COMPLETED", run.status().to_string()
    # all four were in Slurm's hands before the first one ended
    assert max(job.submitted for job in run.jobs) < jobs["Tests.1"].ended
    assert jobs["Tests.3"].started >= jobs["Tests.1"].ended  # start_post_comp: afterok here
    assert jobs["Tests.2"].started < jobs["Tests.1"].ended  # start_post_init: after
    assert jobs["Tests.4"].state is JobState.CANCELLED  # end_post_comp: still the run's to apply
    assert jobs["Tests.4"].reason.startswith("cancelled by dependency")
    # job_status_check: a dependent waits for success, so a failure would end it even unwatched
    assert "--dependency=afterok:" in (jobs["Tests.3"].output_path / "slurm-job.toml").read_text()


def test_the_scenario_goes_on_after_its_driver_is_killed(tmp_path):
    """The driver dies once everything is submitted: Slurm runs b after a, and cancels g because f
    failed (job_status_check: afterok); a new process then collects the states."""
    system_file = tmp_path / "system.toml"
    system_file.write_text((CONF / "systems" / "slurm_local.toml").read_text())
    scenario_file = tmp_path / "scenario.toml"
    scenario_file.write_text(
        'name = "orphan"\n'
        + bash("a", "sleep 3")
        + bash("b", "echo b", after("a"))
        + bash("f", "sleep 2; exit 3")
        + bash("g", "echo g", after("f"))
    )
    files = ["--system-config", str(system_file), "--test-scenario", str(scenario_file)]
    driver = subprocess.Popen(
        [CLI, "run", "--sbatch-dependencies", *files],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert driver.stdout is not None
    submitted = 0
    for line in driver.stdout:  # one PENDING line per submitted job
        submitted += " PENDING " in line
        if submitted == 4:
            break
    os.kill(driver.pid, signal.SIGKILL)
    driver.wait()
    driver.stdout.close()
    run_dir = next((tmp_path / "results").glob("orphan_*"))
    deadline = time.monotonic() + 30
    b_out = run_dir / "b" / "0" / "stdout.txt"
    while not (b_out.exists() and b_out.read_text() == "b\n"):
        assert time.monotonic() < deadline, "b never ran without its driver"
        time.sleep(0.2)
    run = api.load_run(run_dir)  # taken over: the new process reads how each ended
    run.wait(timeout=30)
    states = {job.test_id: job.state for job in run.jobs}
    assert states == {
        "a": JobState.COMPLETED,
        "b": JobState.COMPLETED,
        "f": JobState.FAILED,
        "g": JobState.CANCELLED,
    }
    g = next(job for job in run.jobs if job.test_id == "g")
    assert g.exit_code is None and g.started is None
    assert g.reason is not None and g.reason.startswith(("cancelled before it started", "scenario stopped"))
    assert not (run_dir / "g" / "0" / "stdout.txt").exists()
    assert run.state == "FAILED"
    assert not {str(job.job_id) for job in run.jobs} & squeue_ids()
