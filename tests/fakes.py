"""A scheduler that lives in memory: it hands out job ids and reports the states a test sets."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

from cloudai_nb.core.job import Job
from cloudai_nb.core.models import JobState, Waits
from cloudai_nb.core.system import System
from cloudai_nb.systems.base import Backend, Update


class FakeScheduler(Backend):
    """Jobs go PENDING on submit and change state only when the test says so (`set`)."""

    min_interval = 0.0

    def __init__(self, system: System) -> None:
        super().__init__(system)
        self._ids = itertools.count(1000)
        self.jobs: dict[str, Job] = {}  # by key
        self.states: dict[str, JobState] = {}
        self.codes: dict[str, int] = {}
        self._reported: dict[str, JobState] = {}
        self.polls: list[int] = []  # how many jobs each poll asked about
        self.cancelled: list[str] = []
        self.refuse: set[str] = set()
        self.after: dict[str, list[tuple[str, str]]] = {}  # what each job was held back by

    def prepare(self, job: Job) -> None:
        (job.output_path / "prepared").write_text(job.key)

    async def submit(self, job: Job) -> Update:
        from cloudai_nb.core.errors import SubmissionError

        if job.key in self.refuse:
            raise SubmissionError(f"sbatch: error: refused {job.key}")
        job.job_id = str(next(self._ids))
        job.handle = {"fake": job.job_id}
        self.jobs[job.key] = job
        self.states[job.key] = self._reported[job.key] = JobState.PENDING
        return Update(job, JobState.PENDING)

    async def submit_after(self, job: Job, after: Sequence[tuple[Waits, Job]]) -> Update:
        self.after[job.key] = [(waits, other.key) for waits, other in after]
        return await self.submit(job)

    def set(self, key: str, state: JobState, exit_code: int = 0) -> None:
        self.states[key] = state
        self.codes[key] = exit_code
        self.notify()

    async def poll(self, jobs: Sequence[Job]) -> list[Update]:
        self.polls.append(len(jobs))
        updates = []
        for job in jobs:
            state = self.states[job.key]
            if self._reported.get(job.key) is not state:
                self._reported[job.key] = state
                code = self.codes.get(job.key) if state.is_done else None
                updates.append(Update(job, state, exit_code=code))
        return updates

    async def cancel(self, jobs: Sequence[Job]) -> None:
        for job in jobs:
            self.cancelled.append(job.key)
            self.set(job.key, JobState.CANCELLED, 15)
