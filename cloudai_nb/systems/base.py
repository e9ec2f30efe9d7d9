"""What the engine needs from a system backend."""

from __future__ import annotations

import asyncio
import os
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudai_nb.core import installables, registry
from cloudai_nb.core.errors import SubmissionError
from cloudai_nb.core.job import Job
from cloudai_nb.core.models import JobState, TestDefinition, Waits
from cloudai_nb.core.system import System


@dataclass
class Update:
    """News about one job from its scheduler; ``None`` fields are unchanged."""

    job: Job
    state: JobState
    exit_code: int | None = None
    reason: str | None = None
    started: datetime | None = None
    ended: datetime | None = None
    nodes: str | None = None


class Backend(ABC):
    """Submits, watches and cancels the jobs of one `System`.

    ``poll`` must ask the scheduler about all the given jobs in one call (never one per job): the
    engine's poller calls it once per tick with every live job. A backend that learns about changes
    by itself (process exit) sets ``wake`` so the poller ticks at once instead of at its interval.
    """

    #: the shortest pause between two polls that is kind to the scheduler
    min_interval: float = 0.05

    def __init__(self, system: System) -> None:
        self.system = system
        self.wake: asyncio.Event | None = None
        self.closed = False

    def notify(self) -> None:
        if self.wake is not None:
            self.wake.set()

    @abstractmethod
    def prepare(self, job: Job) -> None:
        """Write the job's files (scripts, commands) into ``job.output_path``; submit nothing."""

    @abstractmethod
    async def submit(self, job: Job) -> Update:
        """Start the job; set ``job.job_id`` and ``job.handle``. Raises `SubmissionError`."""

    @abstractmethod
    async def poll(self, jobs: Sequence[Job]) -> list[Update]:
        """The state of every job in ``jobs`` that changed, in one scheduler call."""

    @abstractmethod
    async def cancel(self, jobs: Sequence[Job], *, force: bool = False) -> None:
        """Ask for the jobs to end (``force``: at once, no grace period); the final state arrives
        through `poll`."""

    async def submit_after(self, job: Job, after: Sequence[tuple[Waits, Job]]) -> Update:
        """`submit`, with the scheduler holding ``job`` back until each ``(waits, other)`` is met:
        ``other`` has ``started``, has ``ended``, or has ``succeeded``."""
        raise SubmissionError(f"{self.system.scheduler} systems do not order jobs themselves")

    def prepare_group(self, jobs: Sequence[Job], run_dir: Path, *, stop_on_failure: bool) -> None:
        """Single-sbatch mode: write one script that runs ``jobs`` in order in one allocation."""
        raise SubmissionError(f"{self.system.scheduler} systems do not run jobs in one allocation")

    async def submit_group(
        self, jobs: Sequence[Job], run_dir: Path, *, stop_on_failure: bool
    ) -> list[Update]:
        """Single-sbatch mode: submit the script of `prepare_group`; every job gets its job id."""
        raise SubmissionError(f"{self.system.scheduler} systems do not run jobs in one allocation")

    def attach(self, job: Job) -> None:  # noqa: B027 - optional hook
        """Resume watching a live job recorded by another process (after a kernel restart)."""

    def close(self) -> None:
        """Release what the backend holds (watchers, timers)."""
        self.closed = True


def job_environment(system: System, test: TestDefinition, job: Job) -> dict[str, str]:
    """Environment of a job: the system's, then the test's, then where the job is."""
    env = system_environment(system)
    env.update({k: _env_text(v) for k, v in test.extra_env_vars.items()})
    env.update(installables.job_env(system.install_path, test.installables()))  # CLOUDAI_NB_GIT_<NAME>...
    env.update(
        {
            "CLOUDAI_NB_OUTPUT_DIR": str(job.output_path),
            "CLOUDAI_NB_TEST_ID": job.test_id,
            "CLOUDAI_NB_ITERATION": str(job.iteration),
        }
    )
    if job.step is not None:
        env["CLOUDAI_NB_STEP"] = str(job.step)
    return env


def system_environment(system: System) -> dict[str, str]:
    """The system's ``global_env_vars`` as text."""
    return {k: _env_text(v) for k, v in system.global_env_vars.items()}


def _env_text(value: Any) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    return str(value)


def command_builder(system: System, test: TestDefinition) -> Any:
    """The registered command builder for this system and workload (subclass-aware)."""
    return registry.command_builders.get((type(system), type(test)))


def inherited_environment() -> dict[str, str]:
    return dict(os.environ)
