"""`ScenarioRun`: drives every job of one scenario on an asyncio loop, recording each change.

Nothing waits on a timer: submissions happen in reaction to job state changes (the `Plan` decides),
and state changes arrive from the system's `Poller`, which backends wake as soon as they know.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import threading
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from cloudai_nb.core import config, registry, sweep
from cloudai_nb.core.errors import CloudAINbError, ConfigError, RunNotFoundError, SubmissionError
from cloudai_nb.core.job import Job, count_states, now
from cloudai_nb.core.models import JobState, TestScenario, Waits
from cloudai_nb.core.system import System
from cloudai_nb.engine import install_step
from cloudai_nb.engine.ledger import Ledger, LedgerState
from cloudai_nb.engine.plan import Plan, check_mode, is_failed, start_order
from cloudai_nb.engine.poller import Poller, poller_for
from cloudai_nb.systems import backend_for
from cloudai_nb.systems.base import Backend, Update

log = logging.getLogger(__name__)

RunState = Literal["NEW", "RUNNING", "COMPLETED", "FAILED", "CANCELLED", "DRY_RUN"]
Listener = Callable[[Job], None]
TEST_RUN_FILE = "test-run.toml"
CANCEL_FILE = "cancel.request"
SUBMIT_CONCURRENCY = 4
CANCEL_CHECK_INTERVAL = 0.5


def request_cancel(run_dir: Path, reason: str = "cancelled by cloudai-nb cancel") -> None:
    """Ask the process driving ``run_dir`` to cancel it (it looks for this file while it runs)."""
    (run_dir / CANCEL_FILE).write_text(reason + "\n")


def plan_jobs(scenario: TestScenario, run_dir: Path) -> list[Job]:
    """Every job of the scenario, WAITING: iterations x sweep steps per test run, in run order."""
    jobs = []
    hooks = {kind: hook for kind in config.HOOK_KINDS if (hook := scenario.hook(kind)) is not None}
    for run in scenario.test_runs:
        steps = sweep.expand(run)
        is_sweep = sweep.is_sweep(run)
        for iteration in range(run.iterations):
            for step in steps:
                key = f"{run.id}/{iteration}" + (f"/{step.index}" if is_sweep else "")
                job = Job(
                    key=key,
                    test_id=run.id,
                    iteration=iteration,
                    step=step.index if is_sweep else None,
                    params=step.params,
                    num_nodes=step.num_nodes,
                    output_path=run_dir.joinpath(*key.split("/")),
                )
                job.attach(run.model_copy(update={"test": step.test, "num_nodes": step.num_nodes}))
                job._hooks = hooks
                jobs.append(job)
    return jobs


def new_run_dir(output_path: Path, scenario_name: str, started: datetime | None = None) -> Path:
    """``<output_path>/<scenario>_<YYYY-mm-dd_HH-MM-SS>/``, made now; a suffix keeps it unique."""
    stamp = (started or datetime.now()).strftime("%Y-%m-%d_%H-%M-%S")
    base = output_path / f"{scenario_name}_{stamp}"
    try:
        output_path.mkdir(parents=True, exist_ok=True)
        for n in range(1, 1000):
            candidate = base if n == 1 else base.with_name(f"{base.name}_{n}")
            try:
                candidate.mkdir()
                return candidate
            except FileExistsError:
                continue
    except OSError as exc:
        raise SubmissionError(
            f"cannot create the run directory under {output_path}: {exc.strerror or exc}"
        ) from None
    raise SubmissionError(f"too many runs named {base.name} in {output_path}")


class ScenarioRun:
    """One run of a scenario on a system, with its run directory and ledger.

    Create with `start` (a new run) or `from_directory` (rebuild one from its ledger); then
    ``await drive()`` on the loop that should own it.
    """

    def __init__(
        self,
        scenario: TestScenario,
        system: System,
        run_dir: Path,
        jobs: list[Job],
        *,
        dry_run: bool = False,
        backend_factory: Callable[[], Backend] | None = None,
        started: datetime | None = None,
        single_sbatch: bool = False,
        sbatch_dependencies: bool = False,
    ) -> None:
        self.scenario = scenario
        self.system = system
        self.run_dir = run_dir
        self.jobs = jobs
        self.by_key = {job.key: job for job in jobs}
        self.dry_run = dry_run
        self.single_sbatch = single_sbatch  # every job in one Slurm allocation (CloudAI's --single-sbatch)
        # every job submitted at once, Slurm holding each back until what it waits for is done
        self.sbatch_dependencies = sbatch_dependencies
        self.plan = Plan(scenario, jobs)
        self.state: RunState = "NEW"
        self.started = started or now()
        self.ended: datetime | None = None
        self.ledger = Ledger(run_dir)
        self.listeners: list[Listener] = []  # called with each job whose state changed
        self.health_listeners: list[Callable[[str | None], None]] = []  # scheduler (un)reachable
        # news about the run as a whole (installing prerequisites); may come from a worker thread
        self.message_listeners: list[Callable[[str], None]] = []
        self.loop: asyncio.AbstractEventLoop | None = None
        self.poller: Poller | None = None
        self._backend_factory = backend_factory or (lambda: backend_for(system))
        self._cancel_reasons: dict[str, str] = {}
        self.scheduler_problem: str | None = None
        self._changed: asyncio.Event | None = None
        self._finished = threading.Event()
        for job in jobs:
            if job._test_run is not None:
                job.attach(job.test_run, self.cancel_job)

    # -- construction ----------------------------------------------------------------------------

    @classmethod
    def start(
        cls,
        scenario: TestScenario,
        system: System,
        *,
        dry_run: bool = False,
        output_path: Path | None = None,
        backend_factory: Callable[[], Backend] | None = None,
        single_sbatch: bool = False,
        sbatch_dependencies: bool = False,
    ) -> ScenarioRun:
        """Make the run directory and write ``run.json``; the jobs start with `drive`.

        Bad combinations (a hook that is not loaded, single-sbatch mode where it cannot work) are
        refused here, before anything is written or submitted.
        """
        for kind in config.HOOK_KINDS:
            name = getattr(scenario, kind)
            if name is not None and scenario.hook(kind) is None:
                raise ConfigError(
                    f"{kind} {name!r} is a hook scenario: give its folder with --hook-dir DIR (hook_dir=); "
                    f"CloudAI's default {config.DEFAULT_HOOK_DIR} has no such hook here",
                    field=kind,
                )
        check_mode(scenario, system, single_sbatch=single_sbatch, sbatch_dependencies=sbatch_dependencies)
        started = datetime.now().astimezone()
        run_dir = new_run_dir(output_path or system.output_path, scenario.name, started)
        run = cls(
            scenario,
            system,
            run_dir,
            plan_jobs(scenario, run_dir),
            dry_run=dry_run,
            backend_factory=backend_factory,
            started=started,
            single_sbatch=single_sbatch,
            sbatch_dependencies=sbatch_dependencies,
        )
        run.ledger.start(run.header())
        for job in run.jobs:
            run.ledger.append_job(job)
        return run

    @classmethod
    def from_directory(
        cls, run_dir: Path, *, backend_factory: Callable[[], Backend] | None = None
    ) -> ScenarioRun:
        """Rebuild a run from its ledger alone: the same jobs with their last recorded states."""
        state = Ledger.read(run_dir)
        header = state.header
        try:
            scenario = config.scenario_from_dict(header["scenario"])
            system = config.system_from_dict(header["system"])
            hooks = {name: config.scenario_from_dict(data) for name, data in header.get("hooks", {}).items()}
            scenario = scenario.model_copy(update={"hooks": hooks})
        except (KeyError, CloudAINbError) as exc:
            raise RunNotFoundError(f"{run_dir}: run.json does not describe a run ({exc})") from None
        jobs = plan_jobs(scenario, run_dir)
        for job in jobs:
            recorded = state.jobs.get(job.key)
            if recorded is not None:
                for name in Job.model_fields:
                    if name != "output_path":  # the folder may have moved; the plan knows where it is now
                        setattr(job, name, getattr(recorded, name))
        run = cls(
            scenario,
            system,
            run_dir,
            jobs,
            dry_run=bool(header.get("dry_run")),
            backend_factory=backend_factory,
            started=datetime.fromisoformat(header["started"]),
            single_sbatch=bool(header.get("single_sbatch")),
            sbatch_dependencies=bool(header.get("sbatch_dependencies")),
        )
        run._restore(state)
        return run

    def _restore(self, state: LedgerState) -> None:
        for event in state.events:
            if event.get("event") == "stop":
                self.plan.stop(event.get("reason", "stopped"))
        if state.summary is not None:
            self.state = state.summary.get("state", "COMPLETED")
            ended = state.summary.get("ended")
            self.ended = datetime.fromisoformat(ended) if ended else None
            self._finished.set()
        else:
            self.state = "RUNNING"

    def header(self) -> dict[str, Any]:
        return {
            "scenario": config.scenario_to_dict(self.scenario),
            "hooks": {name: config.scenario_to_dict(hook) for name, hook in self.scenario.hooks.items()},
            "system": config.system_to_dict(self.system),
            "started": self.started.isoformat(),
            "dry_run": self.dry_run,
            "single_sbatch": self.single_sbatch,
            "sbatch_dependencies": self.sbatch_dependencies,
            "host": socket.gethostname(),
            "pid": os.getpid(),
        }

    # -- driving ---------------------------------------------------------------------------------

    @property
    def is_finished(self) -> bool:
        return self._finished.is_set()

    async def drive(self) -> RunState:
        """Run the scenario to its end on the running loop; returns the final state."""
        if self.is_finished:
            return self.state
        self.loop = asyncio.get_running_loop()
        self._changed = asyncio.Event()
        if not self.ledger.acquire():
            raise CloudAINbError(f"{self.run_dir} is already driven by another process")
        self.ledger.start(self.header())
        system_key = self.system.model_dump_json()
        self.poller = poller_for(self._backend_factory, system_key, self.system.monitor_interval)
        self.state = "RUNNING"
        self.poller.health_listeners.append(self._scheduler_health)
        try:
            for job in self.jobs:  # jobs left running by a previous driver
                if job.state.is_live and job.handle:
                    self.poller.backend.attach(job)
                    self.poller.track(job, self.apply)
            watcher = self.loop.create_task(self._watch_cancel_requests())
            if self.scenario.hooks and self.system.scheduler != "slurm":
                self.note(f"pre_test/post_test hooks run on Slurm only; not on {self.system.name!r}")
            try:
                if not self.dry_run:  # git repos, venvs, images first; a failure fails the waiting jobs
                    await install_step.install_before_run(self)
                while True:
                    await self._advance()
                    if self.plan.all_done:
                        break
                    await self._changed.wait()
                    self._changed.clear()
            finally:
                watcher.cancel()
        finally:
            self.poller.health_listeners.remove(self._scheduler_health)
            for job in self.jobs:
                self.poller.untrack(job)
            # Cancelled from outside (the kernel restarting, a second Ctrl-C): live jobs are left
            # alone and the ledger stays open-ended, so the next process can take the run over.
            self._finish()
        return self.state

    def note(self, message: str, event: str = "note") -> None:
        """News about the run as a whole: to the log, the ledger and the message listeners."""
        log.info("%s", message)
        if self.ledger.is_open:
            self.ledger.append_event(event, message=message)
        for listener in list(self.message_listeners):
            listener(message)

    def _scheduler_health(self, problem: str | None) -> None:
        """Record when the scheduler stops answering, and when it is back; the jobs are kept."""
        self.scheduler_problem = problem
        if self.ledger.is_open:
            if problem:
                self.ledger.append_event("scheduler_unreachable", reason=problem)
            else:
                self.ledger.append_event("scheduler_back")
        for listener in list(self.health_listeners):
            listener(problem)

    async def _watch_cancel_requests(self) -> None:
        request = self.run_dir / CANCEL_FILE
        while True:
            await asyncio.sleep(CANCEL_CHECK_INTERVAL)
            if request.exists():
                reason = request.read_text().strip() or "cancelled"
                request.unlink(missing_ok=True)
                self._request_stop(reason)

    async def _advance(self) -> None:
        assert self.poller is not None
        while True:
            actions = self.plan.decide()
            if not actions:
                return
            for job, reason in actions.skip:
                self._set(job, JobState.SKIPPED, reason=reason)
                self.plan.confirm(job)
            cancel = []
            for job, reason in actions.cancel:
                self._cancel_reasons[job.uid] = reason
                if job.state is JobState.WAITING or not job.handle:
                    self._set(job, JobState.CANCELLED, reason=reason, ended=now())
                    self.plan.confirm(job)
                else:
                    cancel.append(job)
            if cancel:
                await self.poller.backend.cancel(cancel)
            if actions.submit and (self.single_sbatch or self.sbatch_dependencies):
                # every job that has not started, at once: the script or Slurm orders them
                waiting = start_order(
                    self.scenario, [job for job in self.jobs if job.state is JobState.WAITING]
                )
                self.plan.claim(waiting)
                if self.single_sbatch:
                    await self._submit_group(waiting)
                else:
                    await self._submit_held(waiting)
            elif len(actions.submit) == 1:
                await self._submit(actions.submit[0])
            elif actions.submit:
                # independent jobs: a few submissions in flight at once (sbatch waits on the controller)
                limit = asyncio.Semaphore(SUBMIT_CONCURRENCY)

                async def submit(job: Job, limit: asyncio.Semaphore = limit) -> None:
                    async with limit:
                        await self._submit(job)

                await asyncio.gather(*(submit(job) for job in actions.submit))

    async def _submit_held(self, jobs: list[Job]) -> None:
        """Submit ``jobs`` (in start order) each naming the jobs it waits for, so Slurm starts them
        on time even if this process dies. A job is sent once what it waits for has a job id (the
        next job of every test run at once, a few in flight); one whose predecessor could not be
        submitted is not."""
        limit = asyncio.Semaphore(SUBMIT_CONCURRENCY)

        async def submit(job: Job, after: list[tuple[Waits, Job]]) -> None:
            async with limit:
                await self._submit(job, after)

        waits = {job.key: self.plan.waits_for(job) for job in jobs}
        pending = list(jobs)
        while pending:
            unsent = {job.key for job in pending}
            ready = [job for job in pending if all(o.key not in unsent for _, o in waits[job.key])]
            sent = {job.key for job in ready}
            pending = [job for job in pending if job.key not in sent]
            batch = []
            for job in ready:
                after = []
                for kind, other in waits[job.key]:
                    if other.job_id is None and not self.dry_run:  # it failed to submit, or was skipped
                        self._set(
                            job, JobState.SKIPPED, reason=f"not submitted: {other.key} was not", ended=now()
                        )
                        self.plan.confirm(job)
                        break
                    if other.job_id and not other.is_done:
                        after.append((kind, other))
                else:
                    batch.append(submit(job, after))
            await asyncio.gather(*batch)

    async def _submit(self, job: Job, after: list[tuple[Waits, Job]] | None = None) -> None:
        assert self.poller is not None
        backend = self.poller.backend

        async def submit() -> list[Update]:
            return [await (backend.submit(job) if after is None else backend.submit_after(job, after))]

        await self._send([job], job.output_path, lambda: backend.prepare(job), submit)

    async def _submit_group(self, jobs: list[Job]) -> None:
        """Single-sbatch mode: all ``jobs`` in one sbatch script, submitted once."""
        assert self.poller is not None
        backend = self.poller.backend
        stop = self.scenario.job_status_check
        await self._send(
            jobs,
            self.run_dir,
            lambda: backend.prepare_group(jobs, self.run_dir, stop_on_failure=stop),
            lambda: backend.submit_group(jobs, self.run_dir, stop_on_failure=stop),
        )

    async def _send(
        self,
        jobs: list[Job],
        where: Path,
        prepare: Callable[[], None],
        submit: Callable[[], Awaitable[list[Update]]],
    ) -> None:
        """Write the jobs' files (``prepare``: the backend's), then submit them, or stop there in a
        dry run. A failure at either point fails every one of ``jobs``, saying why."""
        assert self.poller is not None
        try:
            for job in jobs:
                job.output_path.mkdir(parents=True, exist_ok=True)
                self._write_test_run(job)
            prepare()
        except OSError as exc:
            for job in jobs:
                self._fail_submission(job, f"cannot write {where}: {exc.strerror or exc}")
            return
        except CloudAINbError as exc:
            for job in jobs:
                self._fail_submission(job, str(exc))
            return
        stamp = now()
        if self.dry_run:
            for job in jobs:
                self._set(job, JobState.DRY_RUN, submitted=stamp, ended=stamp)
                self.plan.confirm(job)
            return
        for job in jobs:
            job.submitted = stamp
        try:
            updates = await submit()
        except SubmissionError as exc:
            for job in jobs:
                self._fail_submission(job, str(exc))
            return
        for job in jobs:
            if job.handle.get("nodelist"):
                self._write_test_run(job)  # the nodes picked from live state belong in the record
            self.poller.track(job, self.apply)
            self.plan.confirm(job)
        for update in updates:
            self.apply(update)

    def _fail_submission(self, job: Job, reason: str) -> None:
        self._set(job, JobState.FAILED, reason=f"not submitted: {reason}", ended=now())
        self.plan.confirm(job)

    def _write_test_run(self, job: Job) -> None:
        import tomli_w

        run = job.test_run
        data: dict[str, Any] = {
            "id": run.id,
            "iteration": job.iteration,
            "num_nodes": job.num_nodes,
        }
        if job.step is not None:
            data["step"] = job.step
            data["params"] = job.params
        for key in ("nodes", "exclude_nodes", "time_limit"):
            value = getattr(run, key)
            if value:
                data[key] = value
        if job.handle.get("nodelist"):
            data["resolved_nodes"] = list(job.handle["nodelist"])
        data["test"] = run.test.toml_dict()
        (job.output_path / TEST_RUN_FILE).write_text(tomli_w.dumps(data))

    def apply(self, update: Update) -> None:
        """Record news from the scheduler about one of this run's jobs."""
        job = update.job
        state = update.state
        reason = update.reason
        asked = self._cancel_reasons.get(job.uid)
        if asked is not None and state.is_done and state is not JobState.COMPLETED:
            state, reason = JobState.CANCELLED, asked
        if state is JobState.COMPLETED:
            problem = self._check_output(job)
            if problem:
                state, reason = JobState.FAILED, problem
        fields: dict[str, Any] = {"reason": reason}
        for name in ("exit_code", "started", "ended", "nodes"):
            value = getattr(update, name)
            if value is not None:
                fields[name] = value
        if state.is_done and job.ended is None and "ended" not in fields:
            fields["ended"] = now()
        if state is JobState.RUNNING and job.started is None and "started" not in fields:
            fields["started"] = now()
        self._set(job, state, **fields)
        if state.is_done:
            self.plan.confirm(job)

    def parser_for(self, job: Job) -> Any:
        """The result parser of this job's workload on this system, or None."""
        return registry.result_parsers.find((type(self.system), type(job.test_run.test)))

    def _check_output(self, job: Job) -> str | None:
        """The workload's own success check on the job's output, if it has one."""
        parser = self.parser_for(job)
        check = getattr(parser, "check", None)
        if check is None:
            return None
        try:
            problem: str | None = check(job.output_path)
        except Exception as exc:
            return f"output check failed: {type(exc).__name__}: {exc}"
        return problem

    def _set(self, job: Job, state: JobState, **fields: Any) -> None:
        job.state = state
        for name, value in fields.items():
            setattr(job, name, value)
        self.ledger.append_job(job)
        for listener in list(self.listeners):
            try:
                listener(job)
            except Exception:
                log.exception("a run listener failed")
        if self._changed is not None:
            self._changed.set()

    # -- stopping --------------------------------------------------------------------------------

    def cancel(self, reason: str = "cancelled by user", *, force: bool = False) -> None:
        """Stop the run: live jobs are cancelled, nothing more starts. Safe from any thread.

        ``force`` kills live jobs at once instead of giving them a grace period to exit.
        """
        if self.is_finished:
            return
        if self.loop is None or self.loop.is_closed():
            self._request_stop(reason, force)
        else:
            self._on_loop(self._request_stop, reason, force)

    def _on_loop(self, function: Callable[..., None], *args: Any) -> None:
        """Call ``function`` on the loop that drives the run: now if this is it, else soon."""
        assert self.loop is not None
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self.loop:
            function(*args)
        else:
            self.loop.call_soon_threadsafe(function, *args)

    def _request_stop(self, reason: str, force: bool = False) -> None:
        if self.plan.stop_reason is None:
            self.plan.stop(reason)
            if self.ledger.is_open:
                self.ledger.append_event("stop", reason=reason)
        if force and self.poller is not None and self.loop is not None:
            live = [job for job in self.jobs if job.state.is_live and job.handle]
            if live:
                self.loop.create_task(self.poller.backend.cancel(live, force=True))
        if self._changed is not None:
            self._changed.set()

    def cancel_job(self, job: Job) -> None:
        """Cancel one job (``Job.kill()``); the scenario goes on as its rules say."""
        if job.is_done:
            return

        def request() -> None:
            self._cancel_reasons[job.uid] = "cancelled by user"
            if job.state is JobState.WAITING:
                self._set(job, JobState.CANCELLED, reason="cancelled by user", ended=now())
                self.plan.confirm(job)
            elif self.poller is not None:
                assert self.loop is not None
                self.loop.create_task(self.poller.backend.cancel([job]))

        if self.loop is None:
            raise CloudAINbError(f"job {job.key}: its run is not being driven by this process")
        self._on_loop(request)

    def outcome(self) -> RunState:
        if self.dry_run:
            return "DRY_RUN"
        stop = self.plan.stop_reason or ""
        if stop and not stop.startswith("scenario stopped"):
            return "CANCELLED"
        if any(is_failed(job) for job in self.jobs):
            return "FAILED"
        return "COMPLETED"

    def _finish(self) -> None:
        if self.plan.all_done:
            self.state = self.outcome()
            self.ended = now()
            counts = count_states(self.jobs)
            self.ledger.finish(
                {
                    "scenario": self.scenario.name,
                    "state": self.state,
                    "started": self.started.isoformat(),
                    "ended": self.ended.isoformat(),
                    "elapsed_s": round((self.ended - self.started).total_seconds(), 3),
                    "jobs": len(self.jobs),
                    "states": counts,
                    "failed": [job.key for job in self.jobs if is_failed(job)],
                    "stop_reason": self.plan.stop_reason,
                    "system": {"name": self.system.name, "scheduler": self.system.scheduler},
                    "job_list": [self._job_summary(job) for job in self.jobs],
                }
            )
            self._finished.set()
        self.ledger.close()

    def _job_summary(self, job: Job) -> dict[str, Any]:
        """One job in summary.json: where and how it ran, and its headline metrics."""
        entry: dict[str, Any] = {
            "key": job.key,
            "test_id": job.test_id,
            "iteration": job.iteration,
            "step": job.step,
            "params": job.params,
            "state": job.state.value,
            "reason": job.reason,
            "exit_code": job.exit_code,
            "job_id": job.job_id,
            "nodes": job.nodes,
            "started": job.started.isoformat() if job.started else None,
            "ended": job.ended.isoformat() if job.ended else None,
            "elapsed_s": job.elapsed_s,
        }
        if job.state is JobState.COMPLETED and job._test_run is not None:
            parser = self.parser_for(job)
            wanted = getattr(parser, "headline", ())
            if parser is not None and wanted:
                try:
                    rows = parser.parse(job.test_run.test, job.output_path, job)
                except Exception as exc:  # a parser bug must not lose the summary
                    log.warning("headline metrics of %s: %s", job.key, exc)
                    rows = []
                metrics: dict[str, float] = {}
                for row in rows:
                    if (
                        row.get("metric") in wanted
                        and row["metric"] not in metrics
                        and row.get("value") is not None
                    ):
                        metrics[row["metric"]] = row["value"]
                entry["metrics"] = metrics
        return entry
