"""`Run`: the handle a user holds on a scenario run, live or finished, in a notebook or a script."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudai_nb.core.errors import CloudAINbError, JobFailedError
from cloudai_nb.core.job import Job
from cloudai_nb.engine.ledger import Ledger
from cloudai_nb.engine.scenario_run import ScenarioRun

if TYPE_CHECKING:
    import pandas as pd

STATUS_COLUMNS = [
    "test_id",
    "iteration",
    "step",
    "job_id",
    "state",
    "reason",
    "exit_code",
    "nodes",
    "submitted",
    "started",
    "ended",
    "elapsed_s",
    "output_path",
]


class Run:
    """A scenario run: its jobs, their states, and the means to wait for or stop it.

    >>> run = cloudai_nb.run("conf/scenarios/sleep.toml")   # doctest: +SKIP
    >>> run.wait().status()                                 # doctest: +SKIP
    """

    def __init__(self, scenario_run: ScenarioRun, *, observer: bool = False) -> None:
        self._run = scenario_run
        self._observer = observer  # someone else drives it: read the ledger for news
        self._task: asyncio.Task[Any] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    # -- what it is ------------------------------------------------------------------------------

    @property
    def path(self) -> Path:
        return self._run.run_dir

    @property
    def name(self) -> str:
        return self._run.scenario.name

    @property
    def scenario_run(self) -> ScenarioRun:
        return self._run

    @property
    def jobs(self) -> list[Job]:
        self._refresh()
        return self._run.jobs

    @property
    def state(self) -> str:
        """NEW, RUNNING, COMPLETED, FAILED, CANCELLED or DRY_RUN."""
        self._refresh()
        return self._run.state

    @property
    def done(self) -> bool:
        self._refresh()
        return self._run.is_finished

    def __repr__(self) -> str:
        counts: dict[str, int] = {}
        for job in self.jobs:
            counts[job.state.value] = counts.get(job.state.value, 0) + 1
        summary = ", ".join(f"{n} {s}" for s, n in sorted(counts.items()))
        return f"<Run {self.path.name}: {self.state} ({summary})>"

    # -- driving ---------------------------------------------------------------------------------

    def _start(self) -> Run:
        """Drive the run: as a task on the running loop (a notebook), else on a helper thread."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        if loop is not None:
            self._task = loop.create_task(self._run.drive(), name=f"cloudai_nb run {self.path.name}")
            self._task.add_done_callback(self._remember_error)
        else:
            self._thread = threading.Thread(target=self._drive_in_thread, name=f"cloudai_nb {self.path.name}")
            self._thread.start()
        return self

    def _drive_in_thread(self) -> None:
        try:
            asyncio.run(self._run.drive())
        except BaseException as exc:
            self._error = exc

    def _remember_error(self, task: asyncio.Task[Any]) -> None:
        if not task.cancelled() and task.exception() is not None:
            self._error = task.exception()

    def _refresh(self) -> None:
        if self._observer and not self._run.is_finished:
            fresh = ScenarioRun.from_directory(self.path)
            self._run = fresh

    def wait(self, timeout: float | None = None, *, check: bool = False) -> Run:
        """Block until the run ends (in a script or the CLI). In a notebook, use ``await run``.

        ``check=True`` raises `JobFailedError` when the run did not complete.
        """
        if self._task is not None and not self._task.done():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            if running is self._task.get_loop():
                raise CloudAINbError(
                    "run.wait() would block the event loop that drives the run: use `await run`"
                )
        if self._observer:
            import time

            deadline = None if timeout is None else time.monotonic() + timeout
            while not self.done:
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {self.path.name} still {self.state} after {timeout} s")
                time.sleep(0.2)
        elif not self._run.wait_finished(timeout):
            raise TimeoutError(f"run {self.path.name} still {self.state} after {timeout} s")
        if self._thread is not None:
            self._thread.join()
        self._reraise()
        if check:
            self.check()
        return self

    def __await__(self) -> Generator[Any, None, Run]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> Run:
        if self._task is not None:
            await asyncio.shield(self._task)
        else:
            while not self.done:
                await asyncio.sleep(0.1)
        self._reraise()
        return self

    def _reraise(self) -> None:
        if self._error is not None and not isinstance(
            self._error, asyncio.CancelledError | KeyboardInterrupt
        ):
            raise self._error

    def check(self) -> None:
        """Raise `JobFailedError` naming the failed jobs unless the run completed."""
        state = self.state
        if state in ("COMPLETED", "DRY_RUN"):
            return
        failed = [
            f"{j.key} {j.state.value}" + (f" ({j.reason})" if j.reason else "")
            for j in self.jobs
            if j.state.is_failure
        ]
        detail = "; ".join(failed[:5]) + (f" and {len(failed) - 5} more" if len(failed) > 5 else "")
        raise JobFailedError(f"run {self.path.name} {state}" + (f": {detail}" if detail else ""))

    def cancel(self) -> Run:
        """Cancel every live job; nothing more is submitted."""
        if self._observer:
            raise CloudAINbError(
                f"{self.path} is driven by another process; cancel it there (or `cloudai-nb cancel`)"
            )
        self._run.cancel()
        return self

    # -- data ------------------------------------------------------------------------------------

    def status(self) -> pd.DataFrame:
        """One row per job: test_id, iteration, step, sweep parameters, job_id, state, times, ..."""
        import pandas as pd

        jobs = self.jobs
        params = sorted({name for job in jobs for name in job.params})
        rows = []
        for job in jobs:
            row: dict[str, Any] = {
                "test_id": job.test_id,
                "iteration": job.iteration,
                "step": job.step,
                "job_id": job.job_id,
                "state": job.state.value,
                "reason": job.reason,
                "exit_code": job.exit_code,
                "nodes": job.nodes,
                "submitted": job.submitted,
                "started": job.started,
                "ended": job.ended,
                "elapsed_s": job.elapsed_s,
                "output_path": str(job.output_path),
            }
            for name in params:
                row[name] = job.params.get(name)
            rows.append(row)
        columns = STATUS_COLUMNS[:3] + params + STATUS_COLUMNS[3:]
        frame = pd.DataFrame.from_records(rows, columns=columns)
        frame["step"] = frame["step"].astype("Int64")
        frame["exit_code"] = frame["exit_code"].astype("Int64")
        for name in ("submitted", "started", "ended"):
            frame[name] = pd.to_datetime(frame[name], utc=True)
        return frame

    def summary(self) -> dict[str, Any]:
        return Ledger.read(self.path).summary or {"state": self.state}
