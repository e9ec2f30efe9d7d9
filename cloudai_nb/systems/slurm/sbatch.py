"""The sbatch script of a job, as a pure function of plain data (golden-file tested).

Every value that reaches the script goes through `shlex.quote` (shell lines) or `_directive`
(``#SBATCH`` lines, which sbatch parses itself): a test id or argument such as ``"; rm -rf ~``
ends up as inert text.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from cloudai_nb.core.errors import SubmissionError

SCRIPT_FILE = "cloudai_sbatch_script.sh"
ENV_FILE = "env_vars.sh"


@dataclass(frozen=True)
class SrunStep:
    """One ``srun`` line: the payload argv and how to run it."""

    argv: tuple[str, ...]
    image: str | None = None
    mounts: tuple[str, ...] = ()
    output_dir: Path | None = None  # per-step folder (single-sbatch mode)


@dataclass(frozen=True)
class SbatchSpec:
    job_name: str
    output_dir: Path
    steps: tuple[SrunStep, ...]
    partition: str | None = None
    account: str | None = None
    num_nodes: int | None = None
    nodelist: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()
    ntasks_per_node: int | None = None
    gpus_per_node: int | None = None
    time_limit: str | None = None
    distribution: str | None = None
    extra_sbatch_args: tuple[str, ...] = ()
    mpi: str | None = "pmix"
    extra_srun_args: tuple[str, ...] = ()
    container_mount_home: bool = False
    pre_steps: tuple[SrunStep, ...] = ()
    post_steps: tuple[SrunStep, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)


def _directive(option: str, value: object) -> str:
    """``#SBATCH --option=value``; sbatch reads these lines itself, so quote with its own rules."""
    text = str(value)
    if any(ch in text for ch in '"\n\r\x00'):
        raise SubmissionError(f"#SBATCH {option}: value {text!r} contains a quote or a line break")
    if text == "" or any(ch.isspace() or ch in "'\\$`;&|<>()" for ch in text):
        text = f'"{text}"'
    return f"#SBATCH {option}={text}"


def env_file(env: Mapping[str, str]) -> str:
    """``env_vars.sh``: one quoted ``export`` per variable, sourced by the script."""
    lines = ["# environment of this job: the system's global_env_vars, then the test's extra_env_vars"]
    for name, value in env.items():
        if not name.isidentifier():
            raise SubmissionError(f"environment variable name {name!r} is not valid in a shell")
        lines.append(f"export {name}={shlex.quote(value)}")
    return "\n".join(lines) + "\n"


def srun_line(spec: SbatchSpec, step: SrunStep) -> str:
    argv: list[str] = ["srun", "--export=ALL"]
    if spec.mpi and spec.mpi != "none":
        argv.append(f"--mpi={spec.mpi}")
    if step.image:
        argv.append(f"--container-image={step.image}")
        mounts = list(step.mounts)
        if mounts:
            argv.append("--container-mounts=" + ",".join(mounts))
        if not spec.container_mount_home:
            argv.append("--no-container-mount-home")
    if step.output_dir is not None:
        argv += [f"--output={step.output_dir / 'stdout.txt'}", f"--error={step.output_dir / 'stderr.txt'}"]
    argv += list(spec.extra_srun_args)
    argv += list(step.argv)
    return shlex.join(argv)


def sbatch_script(spec: SbatchSpec) -> str:
    out = spec.output_dir
    lines = [
        "#!/bin/bash",
        _directive("--job-name", spec.job_name),
        _directive("--output", out / "stdout.txt"),
        _directive("--error", out / "stderr.txt"),
    ]
    if spec.partition:
        lines.append(_directive("--partition", spec.partition))
    if spec.account:
        lines.append(_directive("--account", spec.account))
    if spec.nodelist:
        lines.append(_directive("--nodelist", ",".join(spec.nodelist)))
    if spec.num_nodes is not None:
        lines.append(_directive("--nodes", spec.num_nodes))
    if spec.exclude:
        lines.append(_directive("--exclude", ",".join(spec.exclude)))
    if spec.ntasks_per_node is not None:
        lines.append(_directive("--ntasks-per-node", spec.ntasks_per_node))
    if spec.gpus_per_node:
        lines.append(_directive("--gpus-per-node", spec.gpus_per_node))
    if spec.distribution:
        lines.append(_directive("--distribution", spec.distribution))
    if spec.time_limit:
        lines.append(_directive("--time", spec.time_limit))
    for extra in spec.extra_sbatch_args:
        if any(ch in extra for ch in "\n\r\x00"):
            raise SubmissionError(f"extra_sbatch_args: {extra!r} contains a line break")
        lines.append(f"#SBATCH {extra}")
    lines += [
        "",
        f"source {shlex.quote(str(out / ENV_FILE))}",
        "",
    ]
    for step in spec.pre_steps:
        lines += ["# pre_test", srun_line(spec, step), 'rc=$?; if [ "$rc" -ne 0 ]; then exit "$rc"; fi', ""]
    lines.append(srun_line(spec, spec.steps[0]) if len(spec.steps) == 1 else "")
    if len(spec.steps) > 1:  # several test runs in one allocation, one after another
        lines.pop()
        lines.append("rc=0")
        for step in spec.steps:
            lines += [srun_line(spec, step) + " || rc=$?"]
    else:
        lines.append("rc=$?")
    for step in spec.post_steps:
        lines += ["", "# post_test", srun_line(spec, step)]
    lines += ["", 'exit "$rc"', ""]
    return "\n".join(lines)


def sbatch_argv(script: Path, dependency: str | None = None) -> list[str]:
    argv = ["sbatch", "--parsable"]
    if dependency:
        argv.append(f"--dependency={dependency}")
    return [*argv, str(script)]


def parse_sbatch(stdout: str) -> str:
    """``--parsable`` prints ``JOBID`` or ``JOBID;CLUSTER``."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";")[0].strip()
    if not job_id.isdigit():
        raise SubmissionError(f"sbatch printed no job id: {stdout.strip()!r}")
    return job_id
