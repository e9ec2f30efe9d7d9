"""CloudAI's single-sbatch mode and pre_test/post_test hooks, without a cluster.

The scripts are golden files; the grouped script is also run by bash with an ``srun`` stand-in
that runs its payload, so the step bookkeeping the poller reads is what real bash writes.
(tests/integration/test_slurm.py runs the same on the real cluster.)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import pytest

from cloudai_nb import api
from cloudai_nb.core import config
from cloudai_nb.core.errors import ConfigError, SubmissionError
from cloudai_nb.core.models import JobState
from cloudai_nb.core.system import SlurmSystem
from cloudai_nb.engine.plan import start_order
from cloudai_nb.engine.scenario_run import ScenarioRun, plan_jobs
from cloudai_nb.systems.slurm import nodes
from cloudai_nb.systems.slurm.backend import SlurmBackend
from cloudai_nb.systems.slurm.sbatch import ENV_FILE, SCRIPT_FILE, STEP_DIR, env_file, sbatch_script
from cloudai_nb.systems.slurm.states import SlurmInfo
from tests.unit.test_sbatch import RUN_DIR, SYSTEM, check_golden

CONF = Path(__file__).parents[2] / "cloudai_nb" / "conf"
HOOKS = config.load_hooks(CONF / "hook")

THREE_RUNS = """
name = "trio"
job_status_check = false
pre_test = "nodes_ready"
post_test = "nodes_ready"

[[Tests]]
id = "first"
test_template_name = "BashCmd"
num_nodes = 2
time_limit = "10"
[Tests.cmd_args]
cmd = "exit 0"

[[Tests]]
id = "third"
test_template_name = "BashCmd"
time_limit = "5"
[Tests.cmd_args]
cmd = "echo third"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "second"

[[Tests]]
id = "second"
test_template_name = "BashCmd"
time_limit = "1:00"
nodes = ["batch:g1:1"]
[Tests.cmd_args]
cmd = "exit 3"
"""


def system() -> SlurmSystem:
    loaded = config.system_from_dict(SYSTEM)
    assert isinstance(loaded, SlurmSystem)
    return loaded


def grouped(text: str, run_dir: Path = RUN_DIR, **changes: object):
    data = config.parse_toml(text)
    data.update(changes)
    scenario = config.attach_hooks(config.scenario_from_dict(data), HOOKS)
    jobs = start_order(scenario, plan_jobs(scenario, run_dir))
    requests = {
        job.uid: nodes.resolve(system(), job.num_nodes, job.test_run.nodes, job.test_run.exclude_nodes)
        for job in jobs
    }
    return scenario, jobs, requests


def test_single_sbatch_script_is_golden():
    _, jobs, requests = grouped(THREE_RUNS)
    assert [job.key for job in jobs] == ["first/0", "second/0", "third/0"]  # third waits for second
    spec = SlurmBackend(system()).group_spec(jobs, RUN_DIR, requests, stop_on_failure=False)
    assert spec.time_limit == "00:16:00"  # the time limits add up: 10 + 1 + 5 minutes
    assert spec.nodelist == ("node-001",) and spec.num_nodes == 2  # one listed node, two at most
    check_golden("sbatch_single.sh", sbatch_script(spec) + "\n# ---- env_vars.sh ----\n" + env_file(spec.env))


def test_hooks_go_around_the_test_in_its_own_script():
    data = config.parse_toml(THREE_RUNS)
    scenario = config.attach_hooks(config.scenario_from_dict(data), HOOKS)
    job = plan_jobs(scenario, RUN_DIR)[0]
    spec = SlurmBackend(system()).spec(job, nodes.NodeRequest(2))
    check_golden("sbatch_hooks.sh", sbatch_script(spec))


def test_time_limits_must_be_all_or_nothing():
    _, jobs, requests = grouped(THREE_RUNS.replace('time_limit = "5"\n', ""))
    with pytest.raises(SubmissionError, match=r"adds up the time limits .* but third/0 has none"):
        SlurmBackend(system()).group_spec(jobs, RUN_DIR, requests, stop_on_failure=True)


def test_one_allocation_cannot_span_partitions():
    _, jobs, requests = grouped(THREE_RUNS)
    requests[jobs[0].uid] = nodes.NodeRequest(2, partition="other")
    with pytest.raises(SubmissionError, match="cannot span partitions"):
        SlurmBackend(system()).group_spec(jobs, RUN_DIR, requests, stop_on_failure=True)


def fake_srun(bin_dir: Path) -> dict[str, str]:
    """An ``srun`` that drops its options and runs the payload: the script's own logic runs for real."""
    bin_dir.mkdir()
    srun = bin_dir / "srun"
    srun.write_text('#!/bin/bash\nwhile [[ $1 == --* ]]; do shift; done\nexec "$@"\n')
    srun.chmod(0o755)
    return {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}


def run_script(tmp_path: Path, *, stop_on_failure: bool, cancel: str | None = None):
    run_dir = tmp_path / "run"
    text = THREE_RUNS.replace('cmd = "echo third"', 'cmd = "printf %s \\"$CLOUDAI_NB_TEST_ID\\" > who"')
    _, jobs, _ = grouped(text, run_dir)
    backend = SlurmBackend(system())
    for job in jobs:
        job.output_path.mkdir(parents=True)
    backend.prepare_group(jobs, run_dir, stop_on_failure=stop_on_failure)
    if cancel:  # cancel a step before the script reaches it (no Slurm call: it has not started)
        asyncio.run(backend._cancel_steps([job for job in jobs if job.test_id == cancel]))
    done = subprocess.run(
        ["bash", str(run_dir / SCRIPT_FILE)],
        env=fake_srun(tmp_path / "bin"),
        cwd=jobs[2].output_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    return done, jobs, backend


def step_files(job) -> list[str]:
    folder = job.output_path / STEP_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def test_grouped_script_records_each_step_and_goes_on_after_a_failure(tmp_path):
    done, (first, second, third), backend = run_script(tmp_path, stop_on_failure=False)
    assert done.returncode == 3, done.stderr
    assert (first.output_path / STEP_DIR / "exit_code").read_text() == "0\n"
    assert (second.output_path / STEP_DIR / "exit_code").read_text() == "3\n"
    assert (third.output_path / "who").read_text() == "third"  # its own environment
    assert (tmp_path / "run" / ENV_FILE).exists() and (third.output_path / ENV_FILE).exists()
    # what the poller makes of those files once the allocation ended
    ended = SlurmInfo("7", JobState.FAILED, "FAILED", nodes="node-[001-002]", exit_code=3)
    updates = [backend._step_update(job, ended, ended=True) for job in (first, second, third)]
    assert [(u.state, u.exit_code) for u in updates if u] == [
        (JobState.COMPLETED, 0),
        (JobState.FAILED, 3),
        (JobState.COMPLETED, 0),
    ]
    assert updates[0] and updates[0].started and updates[0].ended and updates[0].started <= updates[0].ended


def test_grouped_script_stops_at_the_first_failure_with_job_status_check(tmp_path):
    done, (first, second, third), backend = run_script(tmp_path, stop_on_failure=True)
    assert done.returncode == 3
    assert step_files(first) == step_files(second) == ["exit_code", "started"]
    assert step_files(third) == []
    assert done.stdout.count(" ready\n") == 2  # pre_test and post_test still ran
    ended = SlurmInfo("7", JobState.FAILED, "FAILED")
    update = backend._step_update(third, ended, ended=True)
    assert update and update.state is JobState.CANCELLED
    assert update.reason == "never started: the allocation ended (failed)"
    third.handle["stop_on_failure"] = True  # as submit_group records it: the script stopped on purpose
    update = backend._step_update(third, ended, ended=True)
    assert update and update.reason == "scenario stopped: an earlier test run of the allocation failed"


def test_a_step_cancelled_before_it_started_is_skipped(tmp_path):
    done, (first, second, third), backend = run_script(tmp_path, stop_on_failure=True, cancel="second")
    assert done.returncode == 0, done.stderr  # second (exit 3) never ran
    assert step_files(second) == ["cancelled"]  # what the cancel left; the script skipped the step
    assert step_files(first) == step_files(third) == ["exit_code", "started"]
    update = backend._step_update(second, SlurmInfo("7", JobState.RUNNING, "RUNNING"), ended=False)
    assert update and update.state is JobState.CANCELLED and update.reason == "cancelled before it started"


def test_live_step_states_come_from_the_files_and_change_once(tmp_path):
    _, jobs, _ = grouped(THREE_RUNS, tmp_path)
    job = jobs[0]
    job.output_path.mkdir(parents=True)
    job.handle = {"single_sbatch": True}
    backend = SlurmBackend(system())
    running = SlurmInfo("7", JobState.RUNNING, "RUNNING", nodes="node-[001-002]")
    update = backend._step_update(job, running, ended=False)
    assert update and update.state is JobState.PENDING
    assert update.reason == "waiting for its turn in the allocation"
    assert backend._step_update(job, running, ended=False) is None  # no news, no update
    (job.output_path / STEP_DIR).mkdir()
    (job.output_path / STEP_DIR / "started").write_text("2026-01-01T00:00:00+00:00\n")
    update = backend._step_update(job, running, ended=False)
    assert update and update.state is JobState.RUNNING and update.started is not None
    (job.output_path / STEP_DIR / "exit_code").write_text("")  # being written: not yet an answer
    assert backend._step_update(job, running, ended=False) is None
    # done, but the allocation's last live step: it ends with the allocation (post_test may still run)
    (job.output_path / STEP_DIR / "exit_code").write_text("0\n")
    backend._groups["7"] = {job.uid}
    job.job_id = "7"
    assert backend._step_update(job, running, ended=False) is None
    backend._groups["7"] = {job.uid, "another step"}
    update = backend._step_update(job, running, ended=False)
    assert update and update.state is JobState.COMPLETED and update.exit_code == 0
    (job.output_path / STEP_DIR / "exit_code").unlink()
    # the allocation timed out while this step ran
    update = backend._step_update(job, SlurmInfo("7", JobState.TIMEOUT, "TIMEOUT"), ended=True)
    assert update and update.state is JobState.TIMEOUT
    assert update.reason == "the allocation ended (timeout) while it ran"
    assert "single_sbatch_step" in (job.output_path / "slurm-job.toml").read_text()


def test_single_sbatch_is_refused_where_it_cannot_work(tmp_path):
    standalone = api.default_system().model_copy(update={"output_path": tmp_path})
    scenario = config.scenario_from_dict(config.parse_toml(THREE_RUNS.replace("pre_test", "#")))
    with pytest.raises(ConfigError, match="single-sbatch mode needs a Slurm system; 'standalone' is"):
        ScenarioRun.start(scenario.model_copy(update={"post_test": None}), standalone, single_sbatch=True)
    sleep = config.scenario_from_dict(
        config.parse_toml((CONF / "scenarios" / "sleep.toml").read_text()), config.load_tests(CONF / "tests")
    )
    with pytest.raises(ConfigError) as err:
        ScenarioRun.start(sleep, system().model_copy(update={"output_path": tmp_path}), single_sbatch=True)
    assert err.value.field == "Tests[3].dependencies[0].type"
    assert "Tests.4: end_post_comp needs two jobs running side by side" in str(err.value)
    assert list(tmp_path.iterdir()) == []  # refused before anything was written


def test_unknown_hook_names_the_line_and_the_hooks_found(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(THREE_RUNS.replace('pre_test = "nodes_ready"', 'pre_test = "nodes_redy"'))
    with pytest.raises(ConfigError) as err:
        api.resolve_scenario(path, hook_dir=CONF / "hook")
    message = str(err.value)
    assert f"{path}:4: pre_test: unknown pre_test 'nodes_redy' (did you mean 'nodes_ready'?)" in message
    assert "hooks found: nodes_ready" in message


def test_a_hook_without_its_folder_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./conf/hook here
    path = tmp_path / "s.toml"
    path.write_text(THREE_RUNS)
    with pytest.raises(ConfigError) as err:
        api.run(path, system().model_copy(update={"output_path": tmp_path / "out"}), dry_run=True)
    assert str(err.value) == (
        "pre_test: pre_test 'nodes_ready' is a hook scenario: give its folder with --hook-dir DIR "
        "(hook_dir=); CloudAI's default conf/hook has no such hook here"
    )
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_dry_run_keeps_hooks_and_mode_in_the_ledger(tmp_path):
    slurm = system().model_copy(update={"output_path": tmp_path})
    path = tmp_path / "s.toml"
    path.write_text(THREE_RUNS)
    run = api.run(path, slurm, dry_run=True, hook_dir=CONF / "hook", single_sbatch=True)
    run.wait(timeout=30)
    assert run.state == "DRY_RUN"
    assert (run.path / SCRIPT_FILE).exists() and (run.path / "pre_test" / "node_check").is_dir()
    assert not (run.path / "first" / "0" / SCRIPT_FILE).exists()  # one script for the whole run
    again = ScenarioRun.from_directory(run.path)
    assert again.single_sbatch
    hook = again.scenario.hook("pre_test")
    assert hook is not None and [r.id for r in hook.test_runs] == ["node_check"]


def test_sbatch_dependencies_need_slurm_and_exclude_single_sbatch(tmp_path):
    scenario = config.scenario_from_dict(
        config.parse_toml((CONF / "scenarios" / "quick.toml").read_text()), config.load_tests(CONF / "tests")
    )
    standalone = api.default_system().model_copy(update={"output_path": tmp_path})
    with pytest.raises(ConfigError, match="sbatch dependencies need a Slurm system; 'standalone' is"):
        ScenarioRun.start(scenario, standalone, sbatch_dependencies=True)
    slurm = system().model_copy(update={"output_path": tmp_path})
    with pytest.raises(ConfigError, match="choose single-sbatch mode or sbatch dependencies, not both"):
        ScenarioRun.start(scenario, slurm, single_sbatch=True, sbatch_dependencies=True)
    assert list(tmp_path.iterdir()) == []
