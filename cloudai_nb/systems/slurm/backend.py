"""Drives a Slurm cluster through its command-line tools: one sbatch per job, one squeue per tick."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from cloudai_nb.core.errors import SchedulerError, SubmissionError, did_you_mean
from cloudai_nb.core.job import Job
from cloudai_nb.core.models import JobState
from cloudai_nb.core.nodelist import NodeListError, expand
from cloudai_nb.core.system import SlurmSystem
from cloudai_nb.systems.base import Backend, Update, command_builder, job_environment
from cloudai_nb.systems.exec import TIMED_OUT, Completed, LocalExecutor
from cloudai_nb.systems.installers import installed_image_and_mounts
from cloudai_nb.systems.slurm import nodes as node_rules
from cloudai_nb.systems.slurm.sbatch import (
    ENV_FILE,
    SCRIPT_FILE,
    SbatchSpec,
    SrunStep,
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
        self._sinfo_lock = asyncio.Lock()  # the script written by prepare()

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

    def spec(self, job: Job, request: node_rules.NodeRequest) -> SbatchSpec:
        test = job.test_run.test
        command = command_builder(self.system, test)(test, job, self.system)
        run = job.test_run
        extra_srun = tuple(self.slurm.extra_srun_args.split()) if self.slurm.extra_srun_args else ()
        return SbatchSpec(
            job_name=f"cloudai_nb.{job.key.replace('/', '.')}",
            output_dir=job.output_path,
            steps=(SrunStep(tuple(command.argv), *installed_image_and_mounts(self.slurm, test, command)),),
            partition=request.partition or self.slurm.default_partition,
            account=self.slurm.account,
            num_nodes=None if request.nodelist else request.num_nodes,
            nodelist=request.nodelist,
            exclude=request.exclude,
            ntasks_per_node=self.slurm.ntasks_per_node,
            gpus_per_node=self.slurm.gpus_per_node,
            time_limit=run.time_limit,
            distribution=self.slurm.distribution,
            extra_sbatch_args=tuple(self.slurm.extra_sbatch_args),
            mpi=self.slurm.mpi,
            extra_srun_args=extra_srun,
            container_mount_home=self.slurm.container_mount_home,
            env=job_environment(self.system, test, job),
        )

    def _write(self, job: Job, request: node_rules.NodeRequest) -> None:
        spec = self.spec(job, request)
        (job.output_path / ENV_FILE).write_text(env_file(spec.env))
        (job.output_path / SCRIPT_FILE).write_text(sbatch_script(spec))

    def prepare(self, job: Job) -> None:
        run = job.test_run
        request = node_rules.resolve(self.slurm, job.num_nodes, run.nodes, run.exclude_nodes, live=None)
        self._write(job, request)
        self._prepared[job.uid] = request

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

    async def submit(self, job: Job) -> Update:
        run = job.test_run
        partition = self.slurm.default_partition
        for spec in run.nodes:
            match = node_rules.GROUP_SPEC.match(spec)
            if match:
                partition = match["partition"]
        live = await self._live_nodes(partition, fresh=node_rules.needs_live_state(run.nodes))
        request = node_rules.resolve(self.slurm, job.num_nodes, run.nodes, run.exclude_nodes, live=live)
        if self._prepared.pop(job.uid, None) != request:  # live state chose other nodes than the config
            self._write(job, request)
        argv = sbatch_argv(job.output_path / SCRIPT_FILE)
        try:
            done = await self._run(argv, timeout=SUBMIT_TIMEOUT_S)
        except SchedulerError as exc:
            raise SubmissionError(f"{job.key}: {exc}") from None
        if done.returncode != 0:
            raise SubmissionError(
                f"sbatch refused {job.key}: {done.stderr.strip() or done.stdout.strip()} (ran: {' '.join(argv)})"
            )
        job.job_id = parse_sbatch(done.stdout)
        job.handle = {"slurm_job_id": job.job_id}
        if request.nodelist:
            job.handle["nodelist"] = list(request.nodelist)
        self._submitted_at[job.uid] = time.monotonic()
        self._submit_line[job.uid] = " ".join(argv)
        self._last[job.uid] = JobState.PENDING
        return Update(job, JobState.PENDING)

    # -- polling ---------------------------------------------------------------------------------

    async def poll(self, jobs: Sequence[Job]) -> list[Update]:
        ids = [job.job_id for job in jobs if job.job_id]
        if not ids:
            return []
        done = await self._run(squeue_argv(ids))
        if done.returncode != 0 and "Invalid job id" not in done.stderr:
            raise SchedulerError(f"squeue failed: {done.stderr.strip()}")
        seen = parse_squeue(done.stdout) if done.returncode == 0 else {}
        updates: list[Update] = []
        finishing: list[Job] = []
        for job in jobs:
            info = seen.get(str(job.job_id))
            if info is None:
                fresh = time.monotonic() - self._submitted_at.get(job.uid, 0.0) < FRESH_WINDOW_S
                if not fresh:
                    finishing.append(job)  # the controller forgot it: ask how it ended
                continue
            if info.state.is_done:
                finishing.append(job)
                continue
            if self._last.get(job.uid) is not info.state:
                self._last[job.uid] = info.state
                updates.append(
                    Update(
                        job,
                        info.state,
                        reason=info.reason if info.state is JobState.PENDING else None,
                        started=info.start if info.state is JobState.RUNNING else None,
                        nodes=info.nodes,
                    )
                )
        if finishing:
            updates += await self._final_states(finishing, seen)
        return updates

    async def _has_accounting(self) -> bool:
        if self._accounting is None:
            done = await self._run(["sacct", "-n", "-X", "-j", "1", "-o", "JobID"])
            self._accounting = done.returncode == 0
        return self._accounting

    async def _final_states(self, jobs: list[Job], seen: dict[str, SlurmInfo]) -> list[Update]:
        ids = [str(job.job_id) for job in jobs]
        final: dict[str, SlurmInfo] = {}
        info: SlurmInfo | None
        if await self._has_accounting():
            done = await self._run(sacct_argv(ids))
            if done.returncode == 0:
                final = parse_sacct(done.stdout)
        # sacct lags slurmctld: a record may still say RUNNING, or list only the first node
        for job in jobs:
            info = final.get(str(job.job_id))
            if info is not None and info.state.is_done and _node_count(info.nodes) < job.num_nodes:
                del final[str(job.job_id)]
        if not all(i in final and final[i].state.is_done for i in ids):
            done = await self._run(["scontrol", "-o", "show", "job"])
            if done.returncode == 0:
                for job_id, shown in parse_scontrol(done.stdout).items():
                    if (
                        job_id in ids
                        and shown.state.is_done
                        and not (job_id in final and final[job_id].state.is_done)
                    ):
                        final[job_id] = shown
        updates = []
        for job in jobs:
            info = final.get(str(job.job_id))
            if info is None or not info.state.is_done:
                known = seen.get(str(job.job_id))
                if known is None:
                    continue  # not known anywhere yet (accounting lag): ask again next tick
                info = known  # finished per squeue; its exit code is not known (yet)
            updates.append(self._final_update(job, info))
        return updates

    def _final_update(self, job: Job, info: SlurmInfo) -> Update:
        code = info.exit_code
        if code is not None and info.signal:
            code = 128 + info.signal
        reason = None
        if info.state is JobState.FAILED and code is not None:
            reason = f"exit code {code}" if not info.signal else f"killed by signal {info.signal}"
        elif info.state not in (JobState.COMPLETED, JobState.FAILED):
            reason = info.raw_state.lower().replace("_", " ") if info.raw_state else None
        self._last.pop(job.uid, None)
        self._submitted_at.pop(job.uid, None)
        update = Update(
            job,
            info.state,
            exit_code=code,
            reason=reason,
            started=info.start,
            ended=info.end,
            nodes=info.nodes,
        )
        self._write_job_file(job, info, code)
        return update

    def _write_job_file(self, job: Job, info: SlurmInfo, code: int | None) -> None:
        import tomli_w

        data: dict[str, Any] = {
            "job_id": job.job_id,
            "state": info.state.value,
            "slurm_state": info.raw_state,
        }
        if code is not None:
            data["exit_code"] = code
        for name, value in (("start", info.start), ("end", info.end)):
            if isinstance(value, datetime):
                data[name] = value.isoformat()
        if info.start and info.end:
            data["elapsed_s"] = (info.end - info.start).total_seconds()
        if info.nodes:
            data["nodes"] = info.nodes
        data["submit_line"] = self._submit_line.pop(job.uid, "")
        try:
            (job.output_path / JOB_FILE).write_text(tomli_w.dumps(data))
        except OSError as exc:
            log.warning("cannot write %s: %s", job.output_path / JOB_FILE, exc)

    # -- cancelling ------------------------------------------------------------------------------

    async def cancel(self, jobs: Sequence[Job], *, force: bool = False) -> None:
        ids = [str(job.job_id) for job in jobs if job.job_id]
        if not ids:
            return
        done = await self._run(["scancel", *(["--signal=KILL", "--full"] if force else []), *ids])
        if done.returncode != 0:
            log.warning("scancel %s: %s", " ".join(ids), done.stderr.strip())
        # the final state is read back by the next poll, not assumed
        if self.wake is not None:
            asyncio.get_running_loop().call_later(0.3, self.notify)
