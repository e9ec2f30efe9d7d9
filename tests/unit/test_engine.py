"""ScenarioRun with a scheduler in memory: the engine's reactions, step by step, without processes."""

from __future__ import annotations

import asyncio
import json

import pytest

from cloudai_nb.core import config
from cloudai_nb.core.models import JobState
from cloudai_nb.core.system import StandaloneSystem
from cloudai_nb.engine.ledger import Ledger
from cloudai_nb.engine.scenario_run import ScenarioRun
from tests.fakes import FakeScheduler

SCENARIO = """
name = "deps"
[[Tests]]
id = "a"
test_template_name = "Sleep"
iterations = 2
[[Tests]]
id = "init"
test_template_name = "Sleep"
  [[Tests.dependencies]]
  type = "start_post_init"
  id = "a"
[[Tests]]
id = "comp"
test_template_name = "Sleep"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "a"
[[Tests]]
id = "end"
test_template_name = "Sleep"
  [[Tests.dependencies]]
  type = "end_post_comp"
  id = "a"
"""


async def settle() -> None:
    """Let the engine and its poller react to what the test changed."""
    for _ in range(20):
        await asyncio.sleep(0)


@pytest.fixture
def setup(tmp_path):
    system = StandaloneSystem(name="mem", output_path=tmp_path, monitor_interval=60)
    fakes: list[FakeScheduler] = []

    def factory() -> FakeScheduler:
        fakes.append(FakeScheduler(system))
        return fakes[0]

    def start(text: str = SCENARIO, **kwargs) -> ScenarioRun:
        scenario = config.scenario_from_dict(config.parse_toml(text))
        return ScenarioRun.start(scenario, system, backend_factory=factory, **kwargs)

    start.factory = factory  # type: ignore[attr-defined]
    return start, fakes


def states(run: ScenarioRun) -> dict[str, str]:
    return {job.key: job.state.value for job in run.jobs}


async def test_dependency_semantics_event_by_event(setup):
    start, fakes = setup
    run = start()
    task = asyncio.create_task(run.drive())
    await settle()
    fake = fakes[0]
    assert states(run) == {
        "a/0": "PENDING",
        "a/1": "WAITING",
        "init/0": "WAITING",
        "comp/0": "WAITING",
        "end/0": "PENDING",
    }

    fake.set("a/0", JobState.RUNNING)
    fake.set("end/0", JobState.RUNNING)
    await settle()
    assert states(run)["init/0"] == "PENDING"  # start_post_init: a is RUNNING

    fake.set("a/0", JobState.COMPLETED)
    await settle()
    assert states(run)["a/1"] == "PENDING"  # next iteration
    assert states(run)["comp/0"] == "WAITING"  # waits for the LAST iteration

    fake.set("a/1", JobState.RUNNING)
    fake.set("init/0", JobState.RUNNING)
    await settle()
    fake.set("a/1", JobState.COMPLETED)
    await settle()
    assert states(run)["comp/0"] == "PENDING"
    assert run.by_key["end/0"].state is JobState.CANCELLED
    assert run.by_key["end/0"].reason == "cancelled by dependency: end_post_comp, a finished"

    fake.set("init/0", JobState.COMPLETED)
    fake.set("comp/0", JobState.RUNNING)
    await settle()
    fake.set("comp/0", JobState.COMPLETED)
    assert await asyncio.wait_for(task, 5) == "COMPLETED"
    # one scheduler call per tick, never one per job
    assert len(fake.polls) <= 12
    assert max(fake.polls) <= 4


async def test_failure_with_job_status_check_cancels_and_skips(setup):
    start, fakes = setup
    run = start()
    task = asyncio.create_task(run.drive())
    await settle()
    fakes[0].set("a/0", JobState.RUNNING)
    await settle()
    fakes[0].set("a/0", JobState.FAILED, 3)
    assert await asyncio.wait_for(task, 5) == "FAILED"
    assert states(run) == {
        "a/0": "FAILED",
        "a/1": "SKIPPED",
        "init/0": "CANCELLED",
        "comp/0": "SKIPPED",
        "end/0": "CANCELLED",
    }
    assert run.by_key["a/0"].exit_code == 3
    assert run.by_key["end/0"].reason == "scenario stopped: a/0 FAILED"
    summary = json.loads((run.run_dir / "summary.json").read_text())
    assert summary["state"] == "FAILED"
    assert summary["failed"] == ["a/0"]


async def test_refused_submission_is_a_failed_job_with_the_reason(setup):
    start, fakes = setup
    run = start(SCENARIO.replace('name = "deps"', 'name = "deps"\njob_status_check = false'))
    task = asyncio.create_task(run.drive())
    await settle()
    fake = fakes[0]
    fake.refuse.add("comp/0")
    for key in ("a/0", "end/0"):
        fake.set(key, JobState.RUNNING)
    await settle()
    fake.set("init/0", JobState.COMPLETED)
    fake.set("a/0", JobState.COMPLETED)
    await settle()
    fake.set("a/1", JobState.COMPLETED)
    assert await asyncio.wait_for(task, 5) == "FAILED"
    comp = run.by_key["comp/0"]
    assert comp.state is JobState.FAILED
    assert comp.reason == "not submitted: sbatch: error: refused comp/0"


async def test_cancel_stops_everything_and_the_ledger_says_so(setup):
    start, fakes = setup
    run = start()
    task = asyncio.create_task(run.drive())
    await settle()
    fakes[0].set("a/0", JobState.RUNNING)
    await settle()
    run.cancel()
    assert await asyncio.wait_for(task, 5) == "CANCELLED"
    assert set(fakes[0].cancelled) == {"a/0", "init/0", "end/0"}
    assert states(run) == {
        "a/0": "CANCELLED",
        "a/1": "SKIPPED",
        "init/0": "CANCELLED",
        "comp/0": "SKIPPED",
        "end/0": "CANCELLED",
    }
    ledger = Ledger.read(run.run_dir)
    assert [e["event"] for e in ledger.events] == ["stop"]
    assert {k: j.state.value for k, j in ledger.jobs.items()} == states(run)


async def test_a_run_is_rebuilt_from_its_directory_and_taken_over(setup):
    start, fakes = setup
    run = start()
    task = asyncio.create_task(run.drive())
    await settle()
    fakes[0].set("a/0", JobState.RUNNING)
    fakes[0].set("end/0", JobState.RUNNING)
    await settle()
    # the driving process goes away (its kernel restarts): its jobs keep running
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert fakes[0].cancelled == []

    rebuilt = ScenarioRun.from_directory(run.run_dir, backend_factory=start.factory)
    assert rebuilt.scenario == run.scenario
    assert states(rebuilt) == states(run)
    assert rebuilt.by_key["a/0"].job_id == run.by_key["a/0"].job_id
    assert not rebuilt.is_finished

    task = asyncio.create_task(rebuilt.drive())
    await settle()
    fakes[0].set("a/0", JobState.COMPLETED)
    await settle()
    assert rebuilt.by_key["a/1"].state is JobState.PENDING
    for key in ("a/1", "init/0"):
        fakes[0].set(key, JobState.COMPLETED)
    await settle()
    fakes[0].set("comp/0", JobState.COMPLETED)
    assert await asyncio.wait_for(task, 5) == "COMPLETED"
    assert rebuilt.by_key["end/0"].state is JobState.CANCELLED


async def test_dry_run_writes_files_and_submits_nothing(setup):
    start, fakes = setup
    run = start(dry_run=True)
    assert await asyncio.wait_for(run.drive(), 5) == "DRY_RUN"
    assert {job.state for job in run.jobs} == {JobState.DRY_RUN}
    for job in run.jobs:
        assert (job.output_path / "prepared").exists()
        assert (job.output_path / "test-run.toml").exists()
    assert fakes[0].jobs == {}


async def test_sbatch_dependencies_submit_all_at_once_each_held_by_what_it_waits_for(tmp_path):
    system = config.system_from_dict(
        {
            "name": "mem",
            "scheduler": "slurm",
            "default_partition": "p",
            "output_path": str(tmp_path),
            "monitor_interval": 60,
        }
    )
    fake = FakeScheduler(system)
    fake.refuse = {"x/0"}
    text = (
        SCENARIO
        + """
[[Tests]]
id = "x"
test_template_name = "Sleep"
[[Tests]]
id = "y"
test_template_name = "Sleep"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "x"
[[Tests]]
id = "after_end"
test_template_name = "Sleep"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "end"
"""
    )
    scenario = config.scenario_from_dict(config.parse_toml(text))
    run = ScenarioRun.start(scenario, system, backend_factory=lambda: fake, sbatch_dependencies=True)
    task = asyncio.create_task(run.drive())
    await settle()
    assert fake.after == {
        "a/0": [],
        "a/1": [("succeeded", "a/0")],  # job_status_check: a failure ends what waits for it
        "init/0": [("started", "a/0")],
        "comp/0": [("succeeded", "a/1")],
        "end/0": [],
        "x/0": [],  # tried, and refused
        "after_end/0": [("ended", "end/0")],  # end may be cancelled on purpose: not a failure
    }
    assert run.by_key["x/0"].reason == "not submitted: sbatch: error: refused x/0"
    assert run.by_key["y/0"].state is JobState.SKIPPED  # never sent unheld
    assert run.by_key["y/0"].reason == "not submitted: x/0 was not"
    run.cancel()
    for key in fake.jobs:
        fake.set(key, JobState.CANCELLED)
    assert await asyncio.wait_for(task, 5) == "FAILED"  # x/0 failed to submit
