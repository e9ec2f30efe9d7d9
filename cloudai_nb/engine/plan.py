"""The dependency logic of a scenario as a pure state machine: job states in, actions out.

`Plan.decide()` looks only at the jobs' current states; the engine applies what it returns
(submit, cancel, skip) and asks again after every change. No clocks, no I/O: every rule can be
tested by setting states by hand.

Rules (CloudAI's meanings):
- a test run's jobs (iterations x sweep steps) run one after another, in order;
- ``start_post_init``: the run starts once the other run has a job RUNNING (or has finished);
- ``start_post_comp``: the run starts once the other run finished its last job;
- ``end_post_comp``: when the other run finishes, this run's live jobs are cancelled and the rest
  skipped; that is expected, not a failure;
- ``job_status_check``: the first failed job stops the scenario (live jobs cancelled, the rest
  skipped); without it, failures are recorded and the scenario goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from cloudai_nb.core.errors import ConfigError
from cloudai_nb.core.graph import run_order
from cloudai_nb.core.job import DEPENDENCY_CANCEL, STOPPED, Job
from cloudai_nb.core.models import JobState, TestScenario, Waits
from cloudai_nb.core.system import System


def is_expected_cancel(job: Job) -> bool:
    return job.state is JobState.CANCELLED and (job.reason or "").startswith(DEPENDENCY_CANCEL)


def is_failed(job: Job) -> bool:
    """A job that counts against the scenario: failed, or cancelled for no scenario reason."""
    if job.state.is_failure:
        return True
    reason = job.reason or ""
    return job.state is JobState.CANCELLED and not reason.startswith((DEPENDENCY_CANCEL, STOPPED))


@dataclass
class Actions:
    submit: list[Job] = field(default_factory=list)
    cancel: list[tuple[Job, str]] = field(default_factory=list)
    skip: list[tuple[Job, str]] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.submit or self.cancel or self.skip)


def check_mode(
    scenario: TestScenario, system: System, *, single_sbatch: bool, sbatch_dependencies: bool
) -> None:
    """Refuse a way of running the scenario that this system or scenario cannot do. Both modes are
    Slurm's; single sbatch (CloudAI's) runs the test runs one after another in one allocation."""
    if single_sbatch and sbatch_dependencies:
        raise ConfigError("choose single-sbatch mode or sbatch dependencies, not both")
    if system.scheduler != "slurm":
        if single_sbatch:
            raise ConfigError(
                f"single-sbatch mode needs a Slurm system; {system.name!r} is {system.scheduler}"
            )
        if sbatch_dependencies:
            raise ConfigError(
                f"sbatch dependencies need a Slurm system; {system.name!r} is {system.scheduler}"
            )
    if not single_sbatch:
        return
    for i, run in enumerate(scenario.test_runs):
        for j, dep in enumerate(run.dependencies):
            if dep.type == "end_post_comp":
                raise ConfigError(
                    f"{run.id}: end_post_comp needs two jobs running side by side, but single-sbatch "
                    "mode runs test runs one after another (drop --single-sbatch or this dependency)",
                    field=f"Tests[{i}].dependencies[{j}].type",
                )


def start_order(scenario: TestScenario, jobs: list[Job]) -> list[Job]:
    """The jobs with each test run after those it waits for: the order one allocation runs them
    in, and the order in which jobs that name what they wait for can be submitted."""
    rank = {test_id: i for i, test_id in enumerate(run_order(scenario.test_runs))}
    return sorted(jobs, key=lambda job: rank[job.test_id])  # stable: a run's own jobs keep their order


class Plan:
    """Decides what to do next for one scenario's jobs (grouped per test run, in run order)."""

    def __init__(self, scenario: TestScenario, jobs: list[Job]) -> None:
        self.scenario = scenario
        self.jobs_of: dict[str, list[Job]] = {run.id: [] for run in scenario.test_runs}
        for job in jobs:
            self.jobs_of[job.test_id].append(job)
        self.stop_reason: str | None = None
        self._requested: set[str] = set()  # submitted or cancelled, not yet confirmed by the engine

    # -- queries ---------------------------------------------------------------------------------

    def finished(self, test_id: str) -> bool:
        return all(job.is_done for job in self.jobs_of[test_id])

    def has_run(self, test_id: str) -> bool:
        """Some job of the run reached RUNNING (or ran and finished)."""
        return any(
            job.state in (JobState.RUNNING, JobState.DRY_RUN) or job.started is not None
            for job in self.jobs_of[test_id]
        )

    @property
    def all_done(self) -> bool:
        return all(self.finished(test_id) for test_id in self.jobs_of)

    def first_failure(self) -> Job | None:
        return next((job for jobs in self.jobs_of.values() for job in jobs if is_failed(job)), None)

    # -- transitions -----------------------------------------------------------------------------

    def stop(self, reason: str) -> None:
        """Stop the scenario: nothing more starts; `decide` cancels what runs and skips the rest."""
        if self.stop_reason is None:
            self.stop_reason = reason

    def waits_for(self, job: Job) -> list[tuple[Waits, Job]]:
        """What ``job`` waits for, for a scheduler that holds jobs back itself (sbatch --dependency):
        the job before it in its run, or the jobs its run's dependencies name. With
        ``job_status_check`` a job waits for success, so a failure ends what depends on it even
        when nobody is watching (the plan stops the rest when it sees the failure)."""
        jobs = self.jobs_of[job.test_id]
        index = [j.key for j in jobs].index(job.key)
        if index > 0:
            return [(self._ended(job.test_id), jobs[index - 1])]
        waits: list[tuple[Waits, Job]] = []
        for dep in self.scenario.get(job.test_id).dependencies:
            if dep.type == "start_post_comp":
                waits.append((self._ended(dep.id), self.jobs_of[dep.id][-1]))
            elif dep.type == "start_post_init":
                waits.append(("started", self.jobs_of[dep.id][0]))
        return waits  # end_post_comp is the plan's to apply: it cancels, it does not hold back

    def _ended(self, test_id: str) -> Waits:
        """How to wait for a job of ``test_id`` to end: for success with ``job_status_check``,
        unless an end_post_comp may cancel that run (an expected cancel, not a failure)."""
        ends_early = any(d.type == "end_post_comp" for d in self.scenario.get(test_id).dependencies)
        return "succeeded" if self.scenario.job_status_check and not ends_early else "ended"

    def claim(self, jobs: list[Job]) -> None:
        """The engine submits ``jobs`` itself, all at once (single-sbatch mode)."""
        self._requested.update(job.key for job in jobs)

    def confirm(self, job: Job) -> None:
        """The engine has applied the action requested for ``job`` (its state now says so)."""
        self._requested.discard(job.key)

    def decide(self) -> Actions:
        actions = Actions()
        if self.stop_reason is None and self.scenario.job_status_check:
            failed = self.first_failure()
            if failed is not None:
                self.stop(f"{STOPPED}: {failed.key} {failed.state.value}")
        if self.stop_reason is not None:
            for jobs in self.jobs_of.values():
                self._end(jobs, self.stop_reason, actions)
            return actions
        for run in self.scenario.test_runs:
            jobs = self.jobs_of[run.id]
            if all(job.is_done for job in jobs):
                continue
            ender = next(
                (d.id for d in run.dependencies if d.type == "end_post_comp" and self.finished(d.id)), None
            )
            if ender is not None:
                self._end(jobs, f"{DEPENDENCY_CANCEL}: end_post_comp, {ender} finished", actions)
                continue
            nxt = next(job for job in jobs if not job.is_done)
            if nxt.state is not JobState.WAITING or nxt.key in self._requested:
                continue  # live, or already asked for
            if nxt is jobs[0]:
                verdict = self._may_start(run.id)
                if verdict is False:
                    continue
                if isinstance(verdict, str):
                    self._end(jobs, verdict, actions)
                    continue
            self._requested.add(nxt.key)
            actions.submit.append(nxt)
        return actions

    def _may_start(self, test_id: str) -> bool | str:
        """True to start, False to wait, or the reason the run can never start."""
        run = self.scenario.get(test_id)
        for dep in run.dependencies:
            if dep.type == "start_post_comp" and not self.finished(dep.id):
                return False
            if dep.type == "start_post_init" and not self.has_run(dep.id):
                if self.finished(dep.id):
                    return f"{STOPPED}: {dep.id} ended without running (start_post_init)"
                return False
        return True

    def _end(self, jobs: list[Job], reason: str, actions: Actions) -> None:
        for job in jobs:
            if job.is_done or job.key in self._requested:
                continue
            self._requested.add(job.key)
            if job.state is JobState.WAITING:
                actions.skip.append((job, reason))
            else:
                actions.cancel.append((job, reason))
