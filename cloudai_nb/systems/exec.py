"""The one place that starts processes. Everything else builds argv lists and calls an `Executor`.

`LocalExecutor` runs them for real; backends take the executor as a parameter. Nothing here ever
passes a shell string built from user input: argv lists only, ``shell=False`` always.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import signal
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

# Runs the job's argv ("$@"), then records its exit code in the file named by $0. The exit code
# file lets a new process (after a kernel restart) learn how a job it did not start has ended.
_RECORD_EXIT = '"$@"; rc=$?; printf "%s\\n" "$rc" > "$0.tmp" && mv -f "$0.tmp" "$0"; exit "$rc"'


TIMED_OUT = 124  # the return code of a command stopped by its timeout, as timeout(1) has it


@dataclass(frozen=True)
class Completed:
    """A finished short command (``squeue``, ``sbatch``...)."""

    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


@dataclass(frozen=True)
class Spawned:
    """A started long-running job: enough to find it again (pid plus its start time)."""

    pid: int
    start_ticks: int


@dataclass
class ExitStatus:
    """How a process ended: an exit code, or the signal that killed it."""

    code: int | None = None
    signal: int | None = None

    @classmethod
    def from_wait(cls, status: int) -> ExitStatus:
        if os.WIFSIGNALED(status):
            return cls(signal=os.WTERMSIG(status))
        return cls(code=os.WEXITSTATUS(status))


class Executor(Protocol):
    async def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed: ...

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout: Path,
        stderr: Path,
        exit_file: Path,
    ) -> Spawned: ...

    def reap(self, pid: int) -> ExitStatus | None: ...

    def is_alive(self, pid: int, start_ticks: int) -> bool: ...

    def signal_group(self, pid: int, sig: int) -> None: ...

    def watch(self, pid: int, callback: Callable[[], None]) -> Callable[[], None]: ...


def process_start_ticks(pid: int) -> int | None:
    """The start time of ``pid`` (clock ticks since boot), which tells a reused pid apart; None if gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) may contain spaces and parentheses: split after its closing paren
    fields = stat[stat.rindex(")") + 2 :].split()
    if fields[0] == "Z":  # a zombie has ended; only its parent's wait is left to do
        return None
    return int(fields[19])


class LocalExecutor:
    """Runs commands on this machine."""

    async def run(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed:
        # A worker thread per short command: cheaper than asyncio's subprocesses, whose child
        # watcher starts a thread per process anyway (measured: sbatch bursts 2x faster).
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, functools.partial(self.run_sync, argv, timeout=timeout))

    def run_sync(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed:
        """`run` for callers without an event loop (installers, one-off checks)."""
        try:
            done = subprocess.run(  # noqa: S603 - argv list, no shell
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                check=False,
                stdin=subprocess.DEVNULL,
            )
        except FileNotFoundError:
            return Completed(tuple(argv), 127, "", f"{argv[0]}: command not found")
        except subprocess.TimeoutExpired:
            return Completed(tuple(argv), TIMED_OUT, "", f"{argv[0]}: timed out after {timeout} s")
        return Completed(tuple(argv), done.returncode, done.stdout, done.stderr)

    def spawn(
        self,
        argv: Sequence[str],
        *,
        cwd: Path,
        env: Mapping[str, str],
        stdout: Path,
        stderr: Path,
        exit_file: Path,
    ) -> Spawned:
        with stdout.open("wb") as out, stderr.open("wb") as err:
            proc = subprocess.Popen(  # noqa: S603 - constant script, user argv passed as "$@"
                ["bash", "-c", _RECORD_EXIT, str(exit_file), *argv],
                cwd=cwd,
                env=dict(env),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its own process group: kill() reaches every child
            )
        # Popen keeps no reference we need: the pid is reaped with os.waitpid by `reap`.
        proc.returncode = 0  # stop Popen.__del__ from warning about a "still running" child
        ticks = process_start_ticks(proc.pid)
        return Spawned(proc.pid, ticks if ticks is not None else 0)

    def reap(self, pid: int) -> ExitStatus | None:
        try:
            waited, status = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return None
        return ExitStatus.from_wait(status) if waited else None

    def is_alive(self, pid: int, start_ticks: int) -> bool:
        return process_start_ticks(pid) == start_ticks

    def signal_group(self, pid: int, sig: int) -> None:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, sig)

    def watch(self, pid: int, callback: Callable[[], None]) -> Callable[[], None]:
        """Call ``callback`` on the running loop when ``pid`` exits; returns a function that stops watching."""
        loop = asyncio.get_running_loop()
        try:
            fd = os.pidfd_open(pid)
        except (ProcessLookupError, OSError):
            loop.call_soon(callback)
            return lambda: None

        stopped = False

        def fire() -> None:
            stop()
            callback()

        def stop() -> None:
            # Idempotent: a second close could hit a descriptor number another thread reuses.
            nonlocal stopped
            if stopped:
                return
            stopped = True
            with contextlib.suppress(Exception):
                loop.remove_reader(fd)
            os.close(fd)

        loop.add_reader(fd, fire)
        return stop


SIGTERM = signal.SIGTERM
SIGKILL = signal.SIGKILL
