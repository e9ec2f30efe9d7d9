"""The dependency rules as a pure state machine: set job states by hand, look at the decisions."""

from __future__ import annotations

from pathlib import Path

import pytest

from cloudai_nb.core import config
from cloudai_nb.core.models import JobState
from cloudai_nb.engine.plan import Plan
from cloudai_nb.engine.scenario_run import plan_jobs


def make(text: str) -> tuple[Plan, dict[str, list]]:
    scenario = config.scenario_from_dict(config.parse_toml(text))
    jobs = plan_jobs(scenario, Path("/nonexistent"))
    plan = Plan(scenario, jobs)
    return plan, plan.jobs_of


def set_state(plan: Plan, job, state: JobState, *, started: bool = True) -> None:
    from cloudai_nb.core.job import now

    job.state = state
    if started and state is not JobState.WAITING and job.started is None:
        job.started = now()
    plan.confirm(job)


def submitted(plan: Plan) -> list[str]:
    return [job.key for job in plan.decide().submit]


SLEEP = """
name = "s"
[[Tests]]
id = "a"
test_template_name = "Sleep"
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


def test_independent_runs_start_together_and_dependents_wait():
    plan, _ = make(SLEEP)
    assert submitted(plan) == ["a/0", "end/0"]
    assert submitted(plan) == []  # asked once only


def test_start_post_init_waits_for_running_not_pending():
    plan, jobs = make(SLEEP)
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.PENDING, started=False)
    assert submitted(plan) == []
    set_state(plan, jobs["a"][0], JobState.RUNNING)
    assert submitted(plan) == ["init/0"]


def test_start_post_comp_and_end_post_comp_react_to_completion():
    plan, jobs = make(SLEEP)
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.RUNNING)
    set_state(plan, jobs["end"][0], JobState.RUNNING)
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.COMPLETED)
    actions = plan.decide()
    assert [j.key for j in actions.submit] == ["comp/0"]
    assert [(j.key, r) for j, r in actions.cancel] == [
        ("end/0", "cancelled by dependency: end_post_comp, a finished")
    ]


def test_iterations_and_sweep_steps_run_in_order_and_dependents_wait_for_the_last():
    plan, jobs = make(
        """
        name = "s"
        [[Tests]]
        id = "sw"
        test_template_name = "Sleep"
        iterations = 2
        cmd_args = {seconds = [1, 2]}
        [[Tests]]
        id = "after"
        test_template_name = "Sleep"
          [[Tests.dependencies]]
          type = "start_post_comp"
          id = "sw"
        """
    )
    order = [j.key for j in jobs["sw"]]
    assert order == ["sw/0/0", "sw/0/1", "sw/1/0", "sw/1/1"]
    for key in order:
        assert submitted(plan) == [key]
        job = next(j for j in jobs["sw"] if j.key == key)
        set_state(plan, job, JobState.RUNNING)
        assert submitted(plan) == []
        set_state(plan, job, JobState.COMPLETED)
    assert submitted(plan) == ["after/0"]


def test_job_status_check_stops_everything_at_the_first_failure():
    plan, jobs = make(SLEEP)
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.RUNNING)
    set_state(plan, jobs["end"][0], JobState.RUNNING)
    plan.decide()  # init/0 submitted
    set_state(plan, jobs["init"][0], JobState.RUNNING)
    set_state(plan, jobs["a"][0], JobState.FAILED)
    actions = plan.decide()
    assert actions.submit == []
    assert sorted(j.key for j, _ in actions.cancel) == ["end/0", "init/0"]
    assert [j.key for j, _ in actions.skip] == ["comp/0"]
    assert all(reason == "scenario stopped: a/0 FAILED" for _, reason in actions.cancel + actions.skip)


def test_without_job_status_check_a_failure_is_recorded_and_the_scenario_goes_on():
    plan, jobs = make(SLEEP.replace('name = "s"', 'name = "s"\njob_status_check = false'))
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.RUNNING)
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.FAILED)
    actions = plan.decide()
    assert [j.key for j in actions.submit] == ["comp/0"]
    assert plan.stop_reason is None


def test_cancel_skips_everything_not_started():
    plan, jobs = make(SLEEP)
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.RUNNING)
    plan.stop("cancelled by user")
    # end/0 is being submitted: it is cancelled once the submission is confirmed, not skipped
    assert {j.key for j, _ in plan.decide().cancel} == {"a/0"}
    set_state(plan, jobs["end"][0], JobState.RUNNING)
    actions = plan.decide()
    assert {j.key for j, _ in actions.cancel} == {"end/0"}
    assert {j.key for j, _ in actions.skip} == set()  # skipped by the first decision already
    assert plan.decide().submit == []


def test_start_post_init_on_a_run_that_never_ran_is_skipped():
    plan, jobs = make(SLEEP.replace('name = "s"', 'name = "s"\njob_status_check = false'))
    plan.decide()
    set_state(plan, jobs["a"][0], JobState.FAILED, started=False)  # e.g. refused by the scheduler
    actions = plan.decide()
    assert [(j.key, r) for j, r in actions.skip] == [
        ("init/0", "scenario stopped: a ended without running (start_post_init)")
    ]


@pytest.mark.parametrize("state", [JobState.CANCELLED, JobState.TIMEOUT])
def test_unexpected_endings_count_as_failures(state):
    plan, jobs = make(SLEEP)
    plan.decide()
    set_state(plan, jobs["a"][0], state)
    plan.decide()
    assert plan.stop_reason == f"scenario stopped: a/0 {state.value}"


@pytest.mark.parametrize(("job_status_check", "ended"), [(True, "succeeded"), (False, "ended")])
def test_what_each_job_waits_for_when_slurm_holds_it_back(job_status_check, ended):
    text = SLEEP.replace('id = "a"\ntest_template_name', 'id = "a"\niterations = 2\ntest_template_name', 1)
    plan, jobs_of = make(f"job_status_check = {str(job_status_check).lower()}\n" + text)
    first, second = jobs_of["a"]

    def waits(test_id: str, index: int = 0) -> list[tuple[str, str]]:
        return [(kind, other.key) for kind, other in plan.waits_for(plan.jobs_of[test_id][index])]

    assert waits("a") == []
    assert waits("a", 1) == [(ended, first.key)]  # iterations run one after another
    assert waits("init") == [("started", first.key)]  # the run's first job has started
    assert waits("comp") == [(ended, second.key)]  # the run's last job has ended
    assert waits("end") == []  # end_post_comp cancels; the plan applies it, Slurm does not
