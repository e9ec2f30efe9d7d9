"""Runs each job as a local process group and learns of its end the moment it happens."""

from __future__ import annotations

import asyncio
import shlex
from collections.abc import Callable, Sequence

from cloudai_nb.core.errors import SubmissionError
from cloudai_nb.core.job import Job, now
from cloudai_nb.core.models import JobState
from cloudai_nb.core.system import StandaloneSystem
from cloudai_nb.systems.base import Backend, Update, command_builder, inherited_environment, job_environment
from cloudai_nb.systems.exec import SIGKILL, SIGTERM, ExitStatus, LocalExecutor

EXIT_FILE = ".exit_code"
COMMAND_FILE = "command.sh"


def raise_open_file_limit(wanted: int = 65536) -> None:
    """Lift the soft limit on open files towards the hard one (1024 by default is too few)."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))


def exit_code_of(status: ExitStatus) -> int:
    """Shell convention: a signal N reads as 128 + N."""
    return status.code if status.code is not None else 128 + (status.signal or 0)


class StandaloneBackend(Backend):
    """Local processes: ``job_id`` is the pid; kill sends SIGTERM to the group, then SIGKILL."""

    def __init__(
        self, system: StandaloneSystem, executor: LocalExecutor | None = None, grace: float = 5.0
    ) -> None:
        super().__init__(system)
        raise_open_file_limit()  # one process watch (a descriptor) per live job
        self.executor = executor or LocalExecutor()
        self.grace = grace
        self._argv: dict[str, list[str]] = {}
        self._ours: set[str] = set()  # jobs this process started (and so may waitpid)
        self._intent: dict[str, tuple[JobState, str]] = {}  # why we are ending a job
        self._stop_watch: dict[str, Callable[[], None]] = {}
        self._timers: dict[str, asyncio.TimerHandle] = {}

    def argv(self, job: Job) -> list[str]:
        test = job.test_run.test
        build = command_builder(self.system, test)
        return list(build(test, job, self.system))

    def prepare(self, job: Job) -> None:
        argv = self.argv(job)
        self._argv[job.uid] = argv
        env = job_environment(self.system, job.test_run.test, job)
        lines = ["#!/bin/bash", "# what cloudai-nb runs for this job (stdout/stderr go to the files beside)"]
        lines += [f"export {k}={shlex.quote(v)}" for k, v in env.items()]
        lines.append(shlex.join(argv))
        (job.output_path / COMMAND_FILE).write_text("\n".join(lines) + "\n")

    async def submit(self, job: Job) -> Update:
        argv = self._argv.pop(job.uid, None) or self.argv(job)
        env = {**inherited_environment(), **job_environment(self.system, job.test_run.test, job)}
        out = job.output_path
        try:
            spawned = self.executor.spawn(
                argv,
                cwd=out,
                env=env,
                stdout=out / "stdout.txt",
                stderr=out / "stderr.txt",
                exit_file=out / EXIT_FILE,
            )
        except OSError as exc:
            raise SubmissionError(f"{job.key}: cannot start {argv[0]!r}: {exc.strerror or exc}") from None
        job.job_id = str(spawned.pid)
        job.handle = {"pid": spawned.pid, "start_ticks": spawned.start_ticks}
        self._ours.add(job.uid)
        self._watch(job)
        started = now()
        return Update(job, JobState.RUNNING, started=started, nodes="localhost")

    def _watch(self, job: Job) -> None:
        pid = int(job.handle["pid"])
        self._stop_watch[job.uid] = self.executor.watch(pid, self.notify)
        limit = job.test_run.time_limit_seconds
        if limit is not None:
            elapsed = job.elapsed_s or 0.0
            loop = asyncio.get_running_loop()
            self._timers[job.uid] = loop.call_later(max(0.0, limit - elapsed), self._time_out, job)

    def _time_out(self, job: Job) -> None:
        if not job.is_done:
            self._end(job, JobState.TIMEOUT, f"time limit {job.test_run.time_limit} reached")

    def attach(self, job: Job) -> None:
        if "pid" in job.handle:
            self._watch(job)

    async def poll(self, jobs: Sequence[Job]) -> list[Update]:
        updates = []
        for job in jobs:
            update = self._check(job)
            if update is not None:
                updates.append(update)
        return updates

    def _check(self, job: Job) -> Update | None:
        pid = int(job.handle.get("pid", 0))
        if not pid:
            return None
        if job.uid in self._ours:
            status = self.executor.reap(pid)
            if status is None:
                return None
            code: int | None = exit_code_of(status)
        elif self.executor.is_alive(pid, int(job.handle.get("start_ticks", 0))):
            return None
        else:
            code = None  # not our child: only the exit code file, which _finished reads, can tell
        return self._finished(job, code)

    def _recorded_exit(self, job: Job) -> int | None:
        try:
            return int((job.output_path / EXIT_FILE).read_text().strip())
        except (OSError, ValueError):
            return None

    def _finished(self, job: Job, code: int | None) -> Update:
        pid = int(job.handle["pid"])
        # the job's leader is gone: whatever it left behind in its group goes too (no orphans)
        self.executor.signal_group(pid, SIGKILL)
        self._forget(job.uid)
        intent = self._intent.pop(job.uid, None)
        recorded = self._recorded_exit(job)
        if recorded is not None:
            code = recorded  # the command's own exit code, even when the wrapper was signalled
        ended = now()
        if intent is not None:
            state, reason = intent
            return Update(job, state, exit_code=code, reason=reason, ended=ended)
        if code == 0:
            return Update(job, JobState.COMPLETED, exit_code=0, ended=ended)
        if code is None:
            reason = "the process ended while nobody watched and left no exit code"
        elif code == 127:
            reason = "exit code 127: command not found (see stderr.txt)"
        elif code > 128:
            reason = f"killed by signal {code - 128}"
        else:
            reason = f"exit code {code}"
        return Update(job, JobState.FAILED, exit_code=code, reason=reason, ended=ended)

    async def cancel(self, jobs: Sequence[Job], *, force: bool = False) -> None:
        for job in jobs:
            self._end(job, JobState.CANCELLED, "cancelled", force=force)

    def _end(self, job: Job, state: JobState, reason: str, *, force: bool = False) -> None:
        pid = int(job.handle.get("pid", 0))
        if not pid:
            return
        if force:
            self._intent.setdefault(job.uid, (state, reason))
            self.executor.signal_group(pid, SIGKILL)
            return
        if job.uid in self._intent:
            return
        self._intent[job.uid] = (state, reason)
        self.executor.signal_group(pid, SIGTERM)
        loop = asyncio.get_running_loop()
        loop.call_later(self.grace, self._kill_hard, job.uid, pid)

    def _kill_hard(self, key: str, pid: int) -> None:
        if key in self._intent:  # still not reaped after the grace period
            self.executor.signal_group(pid, SIGKILL)

    def _forget(self, key: str) -> None:
        stop = self._stop_watch.pop(key, None)
        if stop:
            stop()
        timer = self._timers.pop(key, None)
        if timer:
            timer.cancel()
        self._ours.discard(key)

    def close(self) -> None:
        for key in list(self._stop_watch):
            self._forget(key)
        super().close()
