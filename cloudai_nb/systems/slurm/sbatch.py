"""The sbatch script of a job, as a pure function of plain data (golden-file tested).

Every value that reaches the script goes through `shlex.quote` (shell lines) or `_directive`
(``#SBATCH`` lines, which sbatch parses itself): a test id or argument such as ``"; rm -rf ~``
ends up as inert text.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping, Sequence
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
    output_dir: Path | None = None  # the step's own stdout.txt / stderr.txt (hooks, single sbatch)
    # single-sbatch mode: a step may use part of the allocation, and has its own environment
    num_nodes: int | None = None
    nodelist: tuple[str, ...] = ()
    name: str | None = None  # srun --job-name: finds the step in ``squeue -s`` to cancel it alone
    env_file: Path | None = None


@dataclass(frozen=True)
class SbatchSpec:
    """One sbatch script: its allocation, its srun steps, and the hooks around them.

    With ``grouped`` (CloudAI's single-sbatch mode), the steps are several test runs run one after
    another in one allocation; each records when it started and how it ended in
    ``<output_dir>/single_sbatch/`` (see `STEP_FUNCTION`), which is how each gets its own state.
    """

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
    grouped: bool = False
    stop_on_failure: bool = True  # grouped: the first failed step ends the script (job_status_check)
    stdout_name: str = "stdout.txt"
    stderr_name: str = "stderr.txt"


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
    return shlex.join(srun_argv(spec, step))


def srun_argv(spec: SbatchSpec, step: SrunStep) -> list[str]:
    argv: list[str] = ["srun", "--export=ALL"]
    if spec.mpi and spec.mpi != "none":
        argv.append(f"--mpi={spec.mpi}")
    if step.name:
        argv.append(f"--job-name={step.name}")
    if step.nodelist:
        argv.append("--nodelist=" + ",".join(step.nodelist))
    elif step.num_nodes is not None:
        argv.append(f"--nodes={step.num_nodes}")
    nodes = len(step.nodelist) or step.num_nodes
    if nodes and spec.ntasks_per_node:  # else srun inherits the whole allocation's task count
        argv.append(f"--ntasks={nodes * spec.ntasks_per_node}")
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
    return argv


PRE_TEST_FAILED = "pre_test.failed"
STEP_DIR = "single_sbatch"  # in each grouped step's folder: started, exit_code or cancelled

STEP_FUNCTION = f"""\
# step DIR ENV_FILE CMD...: one test run of this allocation, in its own environment. DIR/{STEP_DIR}/
# tells cloudai_nb when it started and how it ended. A step cancelled before it started is skipped:
# whoever makes that folder first (this script, or cloudai_nb cancelling the step) decides.
step() {{
  local dir=$1/{STEP_DIR} env=$2
  shift 2
  mkdir "$dir" 2>/dev/null || return 0
  date +%Y-%m-%dT%H:%M:%S.%6N%:z > "$dir/started"
  (source "$env" && exec "$@")
  local code=$?
  echo "$code" > "$dir/exit_code"
  if [ "$code" -ne 0 ]; then rc=$code; fi
  return "$code"
}}
"""


def _pre_test_lines(spec: SbatchSpec, step: SrunStep) -> list[str]:
    """A pre_test hook step; when it fails, the test does not run and the job says why."""
    label = step.name or f"pre_test {step.argv[0]}"
    message = shlex.quote(f"{label} failed; the test did not run")
    marker = shlex.quote(str(spec.output_dir / PRE_TEST_FAILED))
    return [
        f"# pre_test: {label}",
        srun_line(spec, step),
        "hook_rc=$?",
        'if [ "$hook_rc" -ne 0 ]; then',
        f'  echo {message} "(exit code $hook_rc)" | tee {marker} >&2',
        '  exit "$hook_rc"',
        "fi",
        "",
    ]


def _directives(spec: SbatchSpec) -> list[str]:
    out = spec.output_dir
    lines = [
        _directive("--job-name", spec.job_name),
        _directive("--output", out / spec.stdout_name),
        _directive("--error", out / spec.stderr_name),
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
    if spec.grouped:  # a requeued allocation would skip the steps it had started: fail instead
        lines.append("#SBATCH --no-requeue")
    for extra in spec.extra_sbatch_args:
        if any(ch in extra for ch in "\n\r\x00"):
            raise SubmissionError(f"extra_sbatch_args: {extra!r} contains a line break")
        lines.append(f"#SBATCH {extra}")
    return lines


def sbatch_script(spec: SbatchSpec) -> str:
    """The whole script: directives, environment, pre_test hooks, the test(s), post_test hooks."""
    if not spec.steps:
        raise SubmissionError(f"{spec.job_name}: nothing to run")
    if len(spec.steps) > 1 and not spec.grouped:
        raise SubmissionError(f"{spec.job_name}: several steps need single-sbatch mode (grouped)")
    lines = [
        "#!/bin/bash",
        *_directives(spec),
        "",
        f"source {shlex.quote(str(spec.output_dir / ENV_FILE))}",
        "",
    ]
    for step in spec.pre_steps:
        lines += _pre_test_lines(spec, step)
    if spec.grouped:
        lines += [STEP_FUNCTION, "rc=0"]
        if spec.stop_on_failure:
            lines.append(
                "# job_status_check: after a failed step the others do not start (post_test still runs)"
            )
        for step in spec.steps:
            if step.output_dir is None or step.env_file is None:
                raise SubmissionError(f"{spec.job_name}: a grouped step needs its own folder and environment")
            call = shlex.join(["step", str(step.output_dir), str(step.env_file), *srun_argv(spec, step)])
            lines.append(('[ "$rc" -ne 0 ] || ' if spec.stop_on_failure else "") + call)
    else:
        lines += [srun_line(spec, spec.steps[0]), "rc=$?"]
    for step in spec.post_steps:
        lines += ["", f"# post_test: {step.name or step.argv[0]}", srun_line(spec, step)]
    lines += ["", 'exit "$rc"', ""]
    return "\n".join(lines)


# how sbatch --dependency spells what a job waits for
DEPENDENCY_TYPES = {"started": "after", "ended": "afterany", "succeeded": "afterok"}


def dependency_option(after: Sequence[tuple[str, str]]) -> str | None:
    """``[("ended", "12"), ("ended", "13"), ("started", "10")]`` -> ``afterany:12:13,after:10``
    (every condition must hold)."""
    by_type: dict[str, list[str]] = {}
    for waits, job_id in after:
        by_type.setdefault(DEPENDENCY_TYPES[waits], []).append(job_id)
    return ",".join(f"{kind}:{':'.join(ids)}" for kind, ids in by_type.items()) or None


def sbatch_argv(script: Path, dependency: str | None = None) -> list[str]:
    argv = ["sbatch", "--parsable"]
    if dependency:
        # a job whose dependency can never be met (afterok on a failed job) ends instead of waiting
        argv += [f"--dependency={dependency}", "--kill-on-invalid-dep=yes"]
    return [*argv, str(script)]


def parse_sbatch(stdout: str) -> str:
    """``--parsable`` prints ``JOBID`` or ``JOBID;CLUSTER``."""
    text = stdout.strip().splitlines()[-1] if stdout.strip() else ""
    job_id = text.split(";")[0].strip()
    if not job_id.isdigit():
        raise SubmissionError(f"sbatch printed no job id: {stdout.strip()!r}")
    return job_id
