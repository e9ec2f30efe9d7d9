"""`Job`: one submitted unit of a scenario (one iteration of one sweep step of one test run)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr

from cloudai_nb.core.models import JobState, TestRun, TestScenario

# Reasons that mark a cancel the scenario meant (not a failure): see `engine.plan.is_failed`.
DEPENDENCY_CANCEL = "cancelled by dependency"
STOPPED = "scenario stopped"


def now() -> datetime:
    """The time stamps of jobs and ledgers: aware, UTC."""
    return datetime.now(UTC)


def count_states(jobs: list[Job]) -> dict[str, int]:
    """How many of ``jobs`` are in each state."""
    counts: dict[str, int] = {}
    for job in jobs:
        counts[job.state.value] = counts.get(job.state.value, 0) + 1
    return counts


class Job(BaseModel):
    """The state of one job, as the ledger records it.

    ``key`` (``<test_id>/<iteration>[/<step>]``) names it within its run; ``job_id`` is what the
    scheduler calls it (a Slurm job id, a local pid). ``handle`` holds what a backend needs to find
    the job again after a restart (pid and process start time, for instance).
    """

    model_config = ConfigDict(extra="forbid")

    key: str
    test_id: str
    iteration: int
    step: int | None = None
    params: dict[str, Any] = Field(default_factory=dict)
    num_nodes: int = 1
    output_path: Path
    state: JobState = JobState.WAITING
    reason: str | None = None
    job_id: str | None = None
    exit_code: int | None = None
    nodes: str | None = None
    submitted: datetime | None = None
    started: datetime | None = None
    ended: datetime | None = None
    handle: dict[str, Any] = Field(default_factory=dict)

    _test_run: TestRun | None = PrivateAttr(default=None)
    _canceller: Callable[[Job], None] | None = PrivateAttr(default=None)
    # the scenario's pre_test / post_test hook scenarios, by kind (run around the job on Slurm)
    _hooks: dict[str, TestScenario] = PrivateAttr(default_factory=dict)

    @property
    def test_run(self) -> TestRun:
        """The concrete `TestRun` of this job (a sweep step's own arguments and node count)."""
        if self._test_run is None:
            raise RuntimeError(f"job {self.key} has no test run attached")
        return self._test_run

    def attach(self, test_run: TestRun, canceller: Callable[[Job], None] | None = None) -> Job:
        self._test_run = test_run
        self._canceller = canceller
        return self

    @property
    def hooks(self) -> dict[str, TestScenario]:
        """``{"pre_test": scenario, "post_test": scenario}``: what runs before and after this job."""
        return self._hooks

    @property
    def uid(self) -> str:
        """Unique among all runs: the job's own output folder."""
        return str(self.output_path)

    @property
    def is_running(self) -> bool:
        return self.state is JobState.RUNNING

    @property
    def is_done(self) -> bool:
        return self.state.is_done

    @property
    def elapsed_s(self) -> float | None:
        if self.started is None:
            return None
        end = self.ended or datetime.now(self.started.tzinfo)
        return (end - self.started).total_seconds()

    def kill(self) -> None:
        """Cancel this job through the run that owns it (a no-op once it is done)."""
        if self.is_done:
            return
        if self._canceller is None:
            raise RuntimeError(f"job {self.key} is not attached to a live run")
        self._canceller(self)

    def record(self) -> dict[str, Any]:
        """This job as one JSON-ready ledger record."""
        return self.model_dump(mode="json")
