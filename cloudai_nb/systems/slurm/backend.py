"""Drives a Slurm cluster through its command-line tools: one sbatch per job, one squeue per tick."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudai_nb.core.duration import format_time_limit
from cloudai_nb.core.errors import SchedulerError, SubmissionError, did_you_mean
from cloudai_nb.core.job import STOPPED, Job
from cloudai_nb.core.models import JobState, TestScenario, Waits
from cloudai_nb.core.nodelist import NodeListError, expand
from cloudai_nb.core.system import SlurmSystem
from cloudai_nb.systems.base import (
    Backend,
    Update,
    command_builder,
    job_environment,
    system_environment,
)
from cloudai_nb.systems.exec import TIMED_OUT, Completed, LocalExecutor
from cloudai_nb.systems.installers import installed_image_and_mounts
from cloudai_nb.systems.slurm import nodes as node_rules
from cloudai_nb.systems.slurm.sbatch import (
    ENV_FILE,
    PRE_TEST_FAILED,
    SCRIPT_FILE,
    STEP_DIR,
    SbatchSpec,
    SrunStep,
    dependency_option,
    env_file,
    parse_sbatch,
    sbatch_argv,
    sbatch_script,
)
from cloudai_nb.systems.slurm.states import (
    SlurmInfo,
    controller_unreachable,
    parse_sacct,
    parse_scontrol,
    parse_squeue,
    sacct_argv,
    squeue_argv,
)

log = logging.getLogger(__name__)

JOB_FILE = "slurm-job.toml"
GROUP_STDOUT, GROUP_STDERR = "common.out", "common.err"  # a single sbatch's own output (CloudAI's names)
# A job sbatch just accepted may not show in squeue for a moment; until then it is PENDING.
FRESH_WINDOW_S = 10.0
SINFO_TTL_S = 5.0
QUERY_TIMEOUT_S = 5.0
SUBMIT_TIMEOUT_S = 60.0


def _node_count(nodes: str | None) -> int:
    if not nodes:
        return 0
    try:
        return len(expand(nodes))
    except NodeListError:
        return 0


class SlurmBackend(Backend):
    """``job_id`` is the Slurm job id. Final exit codes come from sacct when accounting is on, else
    from ``scontrol -o show job`` (one call for all jobs)."""

    min_interval = 0.2  # never ask the controller more often than this

    def __init__(self, system: SlurmSystem, executor: LocalExecutor | None = None) -> None:
        super().__init__(system)
        self.slurm: SlurmSystem = system
        self.executor = executor or LocalExecutor()
        self.calls: dict[str, int] = {}  # Slurm commands run, by name (benchmarks read it)
        self._accounting: bool | None = None
        self._last: dict[str, JobState] = {}
        self._submitted_at: dict[str, float] = {}
        self._submit_line: dict[str, str] = {}
        self._sinfo: tuple[float, dict[str, dict[str, str]]] | None = None
        self._prepared: dict[str, node_rules.NodeRequest] = {}
        self._sinfo_lock = asyncio.Lock()
        self._groups: dict[str, set[str]] = {}  # single-sbatch allocation -> its live jobs (uids)
        self._step_cancels: dict[str, Job] = {}  # running steps to cancel, until their srun is found

    async def _run(self, argv: list[str], timeout: float = QUERY_TIMEOUT_S) -> Completed:
        self.calls[argv[0]] = self.calls.get(argv[0], 0) + 1
        done = await self.executor.run(argv, timeout=timeout)
        if done.returncode == TIMED_OUT:
            # the clients retry a lost controller for MessageTimeout; a poll must not hang that long
            raise SchedulerError(f"Slurm controller unreachable ({argv[0]} got no answer in {timeout:g} s)")
        if done.returncode != 0 and controller_unreachable(done.stderr):
            raise SchedulerError(f"Slurm controller unreachable ({argv[0]}: {done.stderr.strip()})")
        return done

    # -- scripts ---------------------------------------------------------------------------------

    def _srun_step(self, job: Job, **where: Any) -> SrunStep:
        """The srun step of ``job``'s test: its command, image and mounts from the registry."""
        test = job.test_run.test
        command = command_builder(self.system, test)(test, job, self.system)
        return SrunStep(tuple(command.argv), *installed_image_and_mounts(self.slurm, test, command), **where)

    def _hook_steps(self, hooks: dict[str, TestScenario], kind: str, base: Path) -> tuple[SrunStep, ...]:
        """One srun per test run of the ``pre_test``/``post_test`` hook, output in ``base/kind/<id>``."""
        hook = hooks.get(kind)
        if hook is None:
            return ()
        steps = []
        for run in hook.test_runs:
            folder = base / kind / run.id
            hook_job = Job(key=f"{kind}/{run.id}", test_id=run.id, iteration=0, output_path=folder)
            steps.append(self._srun_step(hook_job.attach(run), output_dir=folder, name=f"{kind}.{run.id}"))
        return tuple(steps)

    def _allocation(self) -> dict[str, Any]:
        """What every script on this system asks for, whatever it runs."""
        return {
            "account": self.slurm.account,
            "ntasks_per_node": self.slurm.ntasks_per_node,
            "gpus_per_node": self.slurm.gpus_per_node,
            "distribution": self.slurm.distribution,
            "extra_sbatch_args": tuple(self.slurm.extra_sbatch_args),
            "mpi": self.slurm.mpi,
            "extra_srun_args": tuple(self.slurm.extra_srun_args.split())
            if self.slurm.extra_srun_args
            else (),
            "container_mount_home": self.slurm.container_mount_home,
        }

    def spec(self, job: Job, request: node_rules.NodeRequest) -> SbatchSpec:
        return SbatchSpec(
            job_name=f"cloudai_nb.{job.key.replace('/', '.')}",
            output_dir=job.output_path,
            steps=(self._srun_step(job),),
            partition=request.partition or self.slurm.default_partition,
            num_nodes=None if request.nodelist else request.num_nodes,
            nodelist=request.nodelist,
            exclude=request.exclude,
            time_limit=job.test_run.time_limit,
            pre_steps=self._hook_steps(job.hooks, "pre_test", job.output_path),
            post_steps=self._hook_steps(job.hooks, "post_test", job.output_path),
            env=job_environment(self.system, job.test_run.test, job),
            **self._allocation(),
        )

    def group_spec(
        self,
        jobs: Sequence[Job],
        run_dir: Path,
        requests: dict[str, node_rules.NodeRequest],
        *,
        stop_on_failure: bool,
    ) -> SbatchSpec:
        """CloudAI's single-sbatch mode: one allocation as large as the largest job, as long as all
        of them together; each job one srun on its own nodes, in its own folder and environment."""
        partitions = sorted({r.partition or self.slurm.default_partition for r in requests.values()})
        if len(partitions) > 1:
            raise SubmissionError(f"single-sbatch mode: one allocation cannot span partitions {partitions}")
        nodelist: list[str] = []
        exclude: list[str] = []
        for request in requests.values():
            nodelist += [n for n in request.nodelist if n not in nodelist]
            exclude += [n for n in request.exclude if n not in exclude]
        most = max(request.num_nodes for request in requests.values())
        limits = {job.key: job.test_run.time_limit_seconds for job in jobs}
        missing = [key for key, limit in limits.items() if limit is None]
        if missing and len(missing) < len(limits):
            raise SubmissionError(
                "single-sbatch mode adds up the time limits of the test runs, but "
                f"{', '.join(missing)} {'has' if len(missing) == 1 else 'have'} none "
                "(give every test run a time_limit, or none of them)"
            )
        steps = []
        for job in jobs:
            request = requests[job.uid]
            steps.append(
                self._srun_step(
                    job,
                    output_dir=job.output_path,
                    num_nodes=None if request.nodelist else request.num_nodes,
                    nodelist=request.nodelist,
                    name=job.key,
                    env_file=job.output_path / ENV_FILE,
                )
            )
        hooks = jobs[0].hooks
        return SbatchSpec(
            job_name=f"cloudai_nb.{run_dir.name}",
            output_dir=run_dir,
            steps=tuple(steps),
            partition=partitions[0],
            num_nodes=most if most > len(nodelist) else None,
            nodelist=tuple(nodelist),
            exclude=tuple(exclude),
            time_limit=None if missing else format_time_limit(sum(v for v in limits.values() if v)),
            pre_steps=self._hook_steps(hooks, "pre_test", run_dir),
            post_steps=self._hook_steps(hooks, "post_test", run_dir),
            env={**system_environment(self.system), "CLOUDAI_NB_OUTPUT_DIR": str(run_dir)},
            grouped=True,
            stop_on_failure=stop_on_failure,
            stdout_name=GROUP_STDOUT,
            stderr_name=GROUP_STDERR,
            **self._allocation(),
        )

    def _write_script(self, spec: SbatchSpec) -> None:
        for step in (*spec.pre_steps, *spec.post_steps):
            if step.output_dir is not None:
                step.output_dir.mkdir(parents=True, exist_ok=True)
        (spec.output_dir / ENV_FILE).write_text(env_file(spec.env))
        (spec.output_dir / SCRIPT_FILE).write_text(sbatch_script(spec))

    def _request(self, job: Job, live: dict[str, str] | None = None) -> node_rules.NodeRequest:
        """The nodes ``job`` asks for: as configured, or checked against (and picked from) ``live``."""
        run = job.test_run
        return node_rules.resolve(self.slurm, job.num_nodes, run.nodes, run.exclude_nodes, live=live)

    def prepare(self, job: Job) -> None:
        request = self._request(job)
        self._write_script(self.spec(job, request))
        self._prepared[job.uid] = request

    def _write_group(
        self,
        jobs: Sequence[Job],
        run_dir: Path,
        requests: dict[str, node_rules.NodeRequest],
        stop_on_failure: bool,
    ) -> None:
        spec = self.group_spec(jobs, run_dir, requests, stop_on_failure=stop_on_failure)
        for job in jobs:
            (job.output_path / ENV_FILE).write_text(
                env_file(job_environment(self.system, job.test_run.test, job))
            )
        self._write_script(spec)

    def prepare_group(self, jobs: Sequence[Job], run_dir: Path, *, stop_on_failure: bool) -> None:
        self._write_group(jobs, run_dir, {job.uid: self._request(job) for job in jobs}, stop_on_failure)

    async def _live_nodes(self, partition: str, *, fresh: bool) -> dict[str, str]:
        """Nodes of ``partition`` and their states, from one ``sinfo`` call.

        Checking a node count only needs to know which nodes exist, so a recent answer is reused
        (a burst of submissions costs one sinfo); picking idle nodes for a group asks afresh.
        """
        async with self._sinfo_lock:  # concurrent submissions share one answer
            now = time.monotonic()
            if fresh or self._sinfo is None or now - self._sinfo[0] > SINFO_TTL_S:
                done = await self._run(["sinfo", "-h", "-N", "-o", "%N|%T|%R"])
                if done.returncode != 0:
                    raise SubmissionError(f"sinfo failed: {done.stderr.strip()}")
                self._sinfo = (now, node_rules.parse_sinfo_partitions(done.stdout))
        by_partition = self._sinfo[1]
        if partition not in by_partition:
            names = sorted(by_partition)
            raise SubmissionError(
                f"unknown partition {partition!r}{did_you_mean(partition, names)}; "
                f"the cluster has: {', '.join(names) or 'none'}"
            )
        return by_partition[partition]

    async def _live_request(self, job: Job) -> node_rules.NodeRequest:
        """`_request` against the partition's live state (one sinfo, shared by a burst of jobs)."""
        partition = self.slurm.default_partition
        for spec in job.test_run.nodes:
            match = node_rules.GROUP_SPEC.match(spec)
            if match:
                partition = match["partition"]
        fresh = node_rules.needs_live_state(job.test_run.nodes)
        return self._request(job, await self._live_nodes(partition, fresh=fresh))

    async def _sbatch(self, script: Path, what: str, dependency: str | None = None) -> tuple[str, str]:
        """Submit ``script``: the job id and the command line, or `SubmissionError` saying why not."""
        argv = sbatch_argv(script, dependency)
        try:
            done = await self._run(argv, timeout=SUBMIT_TIMEOUT_S)
        except SchedulerError as exc:
            raise SubmissionError(f"{what}: {exc}") from None
        if done.returncode != 0:
            raise SubmissionError(
                f"sbatch refused {what}: {done.stderr.strip() or done.stdout.strip()} (ran: {' '.join(argv)})"
            )
        return parse_sbatch(done.stdout), " ".join(argv)

    def _submitted(self, job: Job, job_id: str, line: str, request: node_rules.NodeRequest) -> None:
        job.job_id = job_id
        job.handle["slurm_job_id"] = job_id
        if request.nodelist:
            job.handle["nodelist"] = list(request.nodelist)
        self._submitted_at[job.uid] = time.monotonic()
        self._submit_line[job.uid] = line
        self._last[job.uid] = JobState.PENDING

    async def submit(self, job: Job) -> Update:
        return await self.submit_after(job, ())

    async def submit_after(self, job: Job, after: Sequence[tuple[Waits, Job]]) -> Update:
        request = await self._live_request(job)
        if self._prepared.pop(job.uid, None) != request:  # live state chose other nodes than the config
            self._write_script(self.spec(job, request))
        dependency = dependency_option([(waits, str(other.job_id)) for waits, other in after])
        job_id, line = await self._sbatch(job.output_path / SCRIPT_FILE, job.key, dependency)
        job.handle = {}
        self._submitted(job, job_id, line, request)
        return Update(job, JobState.PENDING)

    async def submit_group(
        self, jobs: Sequence[Job], run_dir: Path, *, stop_on_failure: bool
    ) -> list[Update]:
        requests = {job.uid: await self._live_request(job) for job in jobs}
        self._write_group(jobs, run_dir, requests, stop_on_failure)
        job_id, line = await self._sbatch(run_dir / SCRIPT_FILE, f"the single sbatch of {run_dir.name}")
        allocation = max(request.num_nodes for request in requests.values())
        for job in jobs:
            job.handle = {
                "single_sbatch": True,
                "allocation_dir": str(run_dir),
                "allocation_nodes": allocation,
                "stop_on_failure": stop_on_failure,
            }
            self._submitted(job, job_id, line, requests[job.uid])
        self._groups[job_id] = {job.uid for job in jobs}
        return [Update(job, JobState.PENDING) for job in jobs]

    def attach(self, job: Job) -> None:
        if job.handle.get("single_sbatch") and job.job_id:
            self._groups.setdefault(str(job.job_id), set()).add(job.uid)

    # -- polling ---------------------------------------------------------------------------------

    async def poll(self, jobs: Sequence[Job]) -> list[Update]:
        if self._step_cancels:  # a step asked to stop before its srun showed in squeue: ask again
            await self._cancel_steps(list(self._step_cancels.values()))
        by_id: dict[str, list[Job]] = {}
        for job in jobs:
            if job.job_id:
                by_id.setdefault(str(job.job_id), []).append(job)
        if not by_id:
            return []
        done = await self._run(squeue_argv(list(by_id)))
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            raise SchedulerError(f"squeue failed: {done.stderr.strip()}")
        seen = parse_squeue(done.stdout) if done.returncode == 0 else {}
        ending: dict[str, int] = {}  # Slurm job id -> nodes it had (to spot sacct's partial records)
        for job_id, members in by_id.items():
            info = seen.get(job_id)
            if info is None:
                fresh = time.monotonic() - self._submitted_at.get(members[0].uid, 0.0) < FRESH_WINDOW_S
                if fresh:
                    continue
            elif not info.state.is_done:
                continue
            # finished, or forgotten by the controller: ask how it ended
            ending[job_id] = max(int(job.handle.get("allocation_nodes", job.num_nodes)) for job in members)
        final = await self._final_infos(ending, seen) if ending else {}
        updates: list[Update] = []
        for job in jobs:
            job_id = str(job.job_id)
            grouped = bool(job.handle.get("single_sbatch"))
            if job_id in ending:
                info = final.get(job_id)
                if info is None:
                    continue  # not known anywhere yet (accounting lag): ask again next tick
                update = (
                    self._step_update(job, info, ended=True) if grouped else self._final_update(job, info)
                )
            else:
                info = seen.get(job_id)
                if info is None:
                    continue
                update = (
                    self._step_update(job, info, ended=False) if grouped else self._live_update(job, info)
                )
            if update is not None:
                updates.append(update)
        for job_id in ending:
            grouped_job = next((job for job in by_id[job_id] if job.handle.get("single_sbatch")), None)
            if grouped_job is not None and job_id in final:
                self._write_job_file(
                    Path(grouped_job.handle["allocation_dir"]),
                    job_id,
                    final[job_id],
                    self._code(final[job_id]),
                )
        return updates

    def _live_update(self, job: Job, info: SlurmInfo) -> Update | None:
        if self._last.get(job.uid) is info.state:
            return None
        self._last[job.uid] = info.state
        return Update(
            job,
            info.state,
            reason=info.reason if info.state is JobState.PENDING else None,
            started=info.start if info.state is JobState.RUNNING else None,
            nodes=info.nodes,
        )

    async def _has_accounting(self) -> bool:
        if self._accounting is None:
            done = await self._run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"])
            self._accounting = done.returncode == 0
        return self._accounting

    async def _final_infos(self, ending: dict[str, int], seen: dict[str, SlurmInfo]) -> dict[str, SlurmInfo]:
        """How each of the ``ending`` Slurm jobs ended: one sacct (or one scontrol) for all of them.

        A job missing from the answer is not known anywhere yet (accounting lag); a job squeue
        saw finish but whose exit code is not known (yet) gets what squeue said.
        """
        ids = list(ending)
        final: dict[str, SlurmInfo] = {}
        if await self._has_accounting():
            done = await self._run(sacct_argv(ids))
            if done.returncode == 0:
                final = parse_sacct(done.stdout)
        # sacct lags slurmctld: a record may still say RUNNING, or list only the first node
        for job_id, nodes in ending.items():
            info = final.get(job_id)
            if info is not None and info.state.is_done and _node_count(info.nodes) < nodes:
                del final[job_id]
        if not all(i in final and final[i].state.is_done for i in ids):
            done = await self._run(["scontrol", "-o", "show", "job"])
            if done.returncode == 0:
                for job_id, shown in parse_scontrol(done.stdout).items():
                    if (
                        job_id in ending
                        and shown.state.is_done
                        and not (job_id in final and final[job_id].state.is_done)
                    ):
                        final[job_id] = shown
        found: dict[str, SlurmInfo] = {}
        for job_id in ids:
            info = final.get(job_id)
            if info is None or not info.state.is_done:
                info = seen.get(job_id)
            if info is not None:
                found[job_id] = info
        return found

    @staticmethod
    def _code(info: SlurmInfo) -> int | None:
        if info.exit_code is not None and info.signal:
            return 128 + info.signal
        return info.exit_code

    def _final_update(self, job: Job, info: SlurmInfo) -> Update:
        code = self._code(info)
        reason = None
        if info.state is JobState.FAILED and code is not None:
            reason = f"exit code {code}" if not info.signal else f"killed by signal {info.signal}"
            hook_failed = _read(job.output_path / PRE_TEST_FAILED)
            if hook_failed:
                reason = hook_failed.strip()
        elif info.state not in (JobState.COMPLETED, JobState.FAILED):
            reason = info.raw_state.lower().replace("_", " ") if info.raw_state else None
        started = info.start
        if info.state is JobState.CANCELLED and not info.nodes:  # never ran: no exit code, no run time
            code, started = None, None
            reason = "cancelled before it started" + (
                f" (it was waiting: {info.reason})" if info.reason else ""
            )
            if info.reason == "DependencyNeverSatisfied":  # afterok on a job that failed
                reason = f"{STOPPED}: what it waited for failed (Slurm cancelled it, sbatch --dependency)"
        self._forget(job)
        update = Update(
            job,
            info.state,
            exit_code=code,
            reason=reason,
            started=started,
            ended=info.end,
            nodes=info.nodes,
        )
        self._write_job_file(job.output_path, str(job.job_id), info, code, self._submit_line.pop(job.uid, ""))
        return update

    def _forget(self, job: Job) -> None:
        self._last.pop(job.uid, None)
        self._step_cancels.pop(job.uid, None)
        self._submitted_at.pop(job.uid, None)
        members = self._groups.get(str(job.job_id))
        if members is not None:
            members.discard(job.uid)
            if not members:
                del self._groups[str(job.job_id)]

    def _step_update(self, job: Job, info: SlurmInfo, *, ended: bool) -> Update | None:
        """The state of one test run of a single-sbatch allocation, from what the script recorded
        in its folder (`STEP_FUNCTION`) and the allocation's own state."""
        folder = job.output_path / STEP_DIR
        started = _read_time(folder / "started")
        code_text = (_read(folder / "exit_code") or "").strip()
        update: Update | None = None
        # the last step is reported when the allocation ends: its post_test hook may still run, and
        # the run must not end before its Slurm job does
        last = self._groups.get(str(job.job_id)) == {job.uid}
        if code_text.lstrip("-").isdigit() and (ended or not last):
            code = int(code_text)
            update = Update(
                job,
                JobState.COMPLETED if code == 0 else JobState.FAILED,
                exit_code=code,
                reason=None if code == 0 else f"exit code {code}",
                started=started,
                ended=_mtime(folder / "exit_code"),
                nodes=info.nodes,
            )
        elif (folder / "cancelled").exists():
            update = Update(job, JobState.CANCELLED, reason="cancelled before it started", ended=info.end)
        elif ended and started is not None and info.state is JobState.COMPLETED:
            # the script exited 0, so every step it ran did: its exit_code file is not visible yet
            update = Update(
                job, JobState.COMPLETED, exit_code=0, started=started, ended=info.end, nodes=info.nodes
            )
        elif ended:
            raw = info.raw_state.lower().replace("_", " ") or "unknown"
            if started is not None:
                state = info.state
                reason = f"the allocation ended ({raw}) while it ran"
            else:
                state = JobState.CANCELLED
                why = _read(Path(job.handle.get("allocation_dir", job.output_path)) / PRE_TEST_FAILED)
                reason = why.strip() if why else f"never started: the allocation ended ({raw})"
                if not why and info.state is JobState.FAILED and job.handle.get("stop_on_failure"):
                    reason = f"{STOPPED}: an earlier test run of the allocation failed"
            update = Update(job, state, reason=reason, started=started, ended=info.end, nodes=info.nodes)
        if update is not None:
            self._forget(job)
            record = SlurmInfo(
                str(job.job_id),
                update.state,
                info.raw_state,
                nodes=info.nodes,
                start=started,
                end=update.ended,
            )
            self._write_job_file(
                job.output_path,
                str(job.job_id),
                record,
                update.exit_code,
                self._submit_line.pop(job.uid, ""),
                step=job.key,
            )
            return update
        state = (
            JobState.RUNNING if info.state is JobState.RUNNING and started is not None else JobState.PENDING
        )
        if self._last.get(job.uid) is state:
            return None
        self._last[job.uid] = state
        if state is JobState.RUNNING:
            return Update(job, state, started=started, nodes=info.nodes)
        waiting = info.reason if info.state is JobState.PENDING else "waiting for its turn in the allocation"
        return Update(job, state, reason=waiting)

    def _write_job_file(
        self,
        folder: Path,
        job_id: str,
        info: SlurmInfo,
        code: int | None,
        submit_line: str = "",
        *,
        step: str | None = None,
    ) -> None:
        import tomli_w

        data: dict[str, Any] = {"job_id": job_id, "state": info.state.value}
        if step is None:
            data["slurm_state"] = info.raw_state
        else:  # one srun of a single-sbatch allocation
            data["single_sbatch_step"] = step
            data["allocation_state"] = info.raw_state
        if code is not None:
            data["exit_code"] = code
        for name, value in (("start", info.start), ("end", info.end)):
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        if info.start and info.end:
            data["elapsed_s"] = (info.end - info.start).total_seconds()
        if info.nodes:
            data["nodes"] = info.nodes
        if submit_line:
            data["submit_line"] = submit_line
        try:
            (folder / JOB_FILE).write_text(tomli_w.dumps(data))
        except OSError as exc:
            log.warning("cannot write %s: %s", folder / JOB_FILE, exc)

    # -- cancelling ----------------------------------------------------------------------------

    async def cancel(self, jobs: Sequence[Job], *, force: bool = False) -> None:
        ids: list[str] = []
        steps: list[Job] = []  # part of a single-sbatch allocation: the rest goes on
        asked = {job.uid for job in jobs}
        for job in jobs:
            if not job.job_id:
                continue
            job_id = str(job.job_id)
            live = self._groups.get(job_id)
            if job.handle.get("single_sbatch") and live and not live <= asked:
                steps.append(job)
            elif job_id not in ids:
                ids.append(job_id)
        if ids:
            done = await self._run(["scancel", *(["--signal=KILL", "--full"] if force else []), *ids])
            if done.returncode != 0:
                log.warning("scancel %s: %s", " ".join(ids), done.stderr.strip())
        if steps:
            await self._cancel_steps(steps)
        # the final state is read back by the next poll, not assumed
        if self.wake is not None:
            asyncio.get_running_loop().call_later(0.3, self.notify)

    async def _cancel_steps(self, jobs: list[Job]) -> None:
        """Cancel test runs of a single-sbatch allocation: one that has not started is skipped
        (the script checks the same folder, see `STEP_FUNCTION`); a running one loses its srun step."""
        running = []
        for job in jobs:
            folder = job.output_path / STEP_DIR
            try:
                folder.mkdir()
            except FileExistsError:
                if (folder / "exit_code").exists():
                    self._step_cancels.pop(job.uid, None)
                else:
                    running.append(job)
                continue
            (folder / "cancelled").write_text("cancelled before it started\n")
        self._step_cancels.update((job.uid, job) for job in running)
        if not running:
            return
        ids = sorted({str(job.job_id) for job in running})
        done = await self._run(["squeue", "-h", "-s", "-j", ",".join(ids), "-o", "%i|%j"])
        step_ids: dict[tuple[str, str], str] = {}
        for line in done.stdout.splitlines():
            step_id, _, name = line.strip().partition("|")
            step_ids[(step_id.split(".")[0], name)] = step_id
        targets = []
        for job in running:
            found = step_ids.get((str(job.job_id), job.key))
            if found is None:
                log.info("%s: its srun step is not in squeue yet; cancelling it at the next poll", job.key)
                continue
            targets.append(found)
            self._step_cancels.pop(job.uid, None)
        if targets:
            done = await self._run(["scancel", *targets])
            if done.returncode != 0:
                log.warning("scancel %s: %s", " ".join(targets), done.stderr.strip())


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _read_time(path: Path) -> datetime | None:
    text = (_read(path) or "").strip()
    try:
        return datetime.fromisoformat(text) if text else None
    except ValueError:
        return None


def _mtime(path: Path) -> datetime | None:
    try:
        return datetime.fromtimestamp(path.stat().st_mtime).astimezone()
    except OSError:
        return None
