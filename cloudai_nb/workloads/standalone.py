"""Command lines of the built-in workloads on the standalone system: pure functions, argv out."""

from __future__ import annotations

from typing import Any

from cloudai_nb.core.job import Job
from cloudai_nb.core.system import StandaloneSystem, System
from cloudai_nb.workloads.bash_cmd import BashCmdTestDefinition
from cloudai_nb.workloads.fio import FioTestDefinition
from cloudai_nb.workloads.nccl import NcclTestDefinition
from cloudai_nb.workloads.sleep import SleepTestDefinition


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def extra_args(extra: dict[str, str], *, joined: bool = True) -> list[str]:
    """CloudAI's ``extra_cmd_args``: ``{"--x": "1"}`` -> ``--x=1`` (or ``--x 1`` when not joined)."""
    argv: list[str] = []
    for key, value in extra.items():
        if value == "":
            argv.append(key)
        elif joined:
            argv.append(f"{key}={value}")
        else:
            argv += [key, value]
    return argv


def sleep_argv(test: SleepTestDefinition, job: Job, system: System) -> list[str]:
    return ["sleep", _number(test.cmd_args.seconds)]


def bash_argv(test: BashCmdTestDefinition, job: Job, system: System) -> list[str]:
    # The command line is the workload itself: bash runs it as one argument, nothing is spliced in.
    return ["bash", "-c", test.cmd_args.cmd, *extra_args(test.extra_cmd_args)]


NCCL_FLAGS = {
    "nthreads": "-t",
    "ngpus": "-g",
    "minbytes": "-b",
    "maxbytes": "-e",
    "stepbytes": "-i",
    "stepfactor": "-f",
    "op": "-o",
    "datatype": "-d",
    "root": "-r",
    "iters": "-n",
    "warmup_iters": "-w",
    "agg_iters": "-m",
    "average": "-a",
    "parallel_init": "-p",
    "check": "-c",
    "blocking": "-z",
    "cudagraph": "-G",
}


def nccl_argv(test: NcclTestDefinition, job: Job, system: Any) -> list[str]:
    """nccl-tests on a workstation: the binary named by ``subtest_name`` (``_mpi`` dropped) from PATH."""
    args = test.cmd_args
    argv = [args.subtest_name.removesuffix("_mpi")]
    values = args.model_dump()
    if args.stepbytes is not None:
        values["stepfactor"] = None
    for name, flag in NCCL_FLAGS.items():
        value = values.get(name)
        if value is not None:
            argv += [flag, str(value)]
    return argv + extra_args(test.extra_cmd_args, joined=False)


def fio_argv(test: FioTestDefinition, job: Job, system: Any) -> list[str]:
    args = test.cmd_args
    argv = [args.fio_binary, "--output-format=json"]
    if args.job_file:
        argv.append(args.job_file)
    for name, value in args.args.items():
        option = f"--{name}"  # fio's own option names, as its documentation spells them
        if value is True:
            argv.append(option)
        elif value is False:
            continue
        else:
            argv.append(f"{option}={value}")
    return argv + list(args.passthrough_args) + extra_args(test.extra_cmd_args)


def register() -> None:
    from cloudai_nb.core.registry import command_builders

    command_builders.register((StandaloneSystem, SleepTestDefinition), sleep_argv)
    command_builders.register((StandaloneSystem, BashCmdTestDefinition), bash_argv)
    command_builders.register((StandaloneSystem, NcclTestDefinition), nccl_argv)
    command_builders.register((StandaloneSystem, FioTestDefinition), fio_argv)
