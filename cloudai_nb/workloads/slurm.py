"""What each built-in workload runs under ``srun`` on a Slurm system: pure functions of the test."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from cloudai_nb.core.job import Job
from cloudai_nb.core.system import SlurmSystem
from cloudai_nb.workloads.bash_cmd import BashCmdTestDefinition
from cloudai_nb.workloads.fio import FioTestDefinition
from cloudai_nb.workloads.nccl import NcclTestDefinition
from cloudai_nb.workloads.sleep import SleepTestDefinition
from cloudai_nb.workloads.standalone import bash_argv, extra_args, fio_argv, sleep_argv


@dataclass(frozen=True)
class SlurmCommand:
    """The payload of one ``srun`` line, and the container it runs in (if any)."""

    argv: list[str]
    image: str | None = None
    mounts: list[str] = field(default_factory=list)


def sleep_command(test: SleepTestDefinition, job: Job, system: SlurmSystem) -> SlurmCommand:
    return SlurmCommand(sleep_argv(test, job, system), test.cmd_args.docker_image_url)


def bash_command(test: BashCmdTestDefinition, job: Job, system: SlurmSystem) -> SlurmCommand:
    return SlurmCommand(bash_argv(test, job, system))


# CloudAI's long option names, as its NCCL test template passes them
NCCL_LONG_OPTIONS = (
    "nthreads",
    "ngpus",
    "minbytes",
    "maxbytes",
    "stepbytes",
    "stepfactor",
    "op",
    "datatype",
    "root",
    "iters",
    "warmup_iters",
    "agg_iters",
    "average",
    "parallel_init",
    "check",
    "blocking",
    "cudagraph",
)


def nccl_command(test: NcclTestDefinition, job: Job, system: SlurmSystem) -> SlurmCommand:
    args = test.cmd_args
    values: dict[str, Any] = args.model_dump()
    if args.stepbytes is not None:
        values["stepfactor"] = None
    argv: list[str] = [args.subtest_name]
    for name in NCCL_LONG_OPTIONS:
        if values.get(name) is not None:
            argv += [f"--{name}", str(values[name])]
    argv += extra_args(test.extra_cmd_args, joined=False)
    return SlurmCommand(
        argv, args.docker_image_url, [f"{job.output_path}:/cloudai_run_results", *test.extra_container_mounts]
    )


def fio_command(test: FioTestDefinition, job: Job, system: SlurmSystem) -> SlurmCommand:
    mounts = [f"{job.output_path}:/cloudai_run_results", *test.extra_container_mounts]
    return SlurmCommand(
        fio_argv(test, job, system),
        test.cmd_args.docker_image_url,
        mounts if test.cmd_args.docker_image_url else [],
    )


def register() -> None:
    from cloudai_nb.core.registry import command_builders

    command_builders.register((SlurmSystem, SleepTestDefinition), sleep_command)
    command_builders.register((SlurmSystem, BashCmdTestDefinition), bash_command)
    command_builders.register((SlurmSystem, NcclTestDefinition), nccl_command)
    command_builders.register((SlurmSystem, FioTestDefinition), fio_command)
