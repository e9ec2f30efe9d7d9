"""`Run`: the handle a user holds on a scenario run, live or finished, in a notebook or a script."""

from __future__ import annotations

import asyncio
import concurrent.futures
import time
from collections.abc import Generator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudai_nb.api.driver import engine
from cloudai_nb.core.errors import CloudAINbError, JobFailedError
from cloudai_nb.core.job import Job, count_states
from cloudai_nb.engine.ledger import Ledger
from cloudai_nb.engine.scenario_run import ScenarioRun

if TYPE_CHECKING:
    import pandas as pd

    from cloudai_nb.api.analysis import Best

OBSERVE_INTERVAL_S = 0.2
WAIT_STEP_S = 0.1

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
        self._future: concurrent.futures.Future[Any] | None = None
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
    def is_observed(self) -> bool:
        """Driven by another process: news comes from re-reading the ledger."""
        return self._observer

    @property
    def done(self) -> bool:
        self._refresh()
        return self._run.is_finished

    def __repr__(self) -> str:
        summary = ", ".join(f"{n} {s}" for s, n in sorted(self.counts().items()))
        return f"<Run {self.path.name}: {self.state} ({summary})>"

    # -- driving ---------------------------------------------------------------------------------

    def _start(self) -> Run:
        """Drive the run on the engine thread (see `cloudai_nb.api.driver`)."""
        self._future = engine.submit(self._run.drive())
        return self

    def _refresh(self) -> None:
        if self._observer and not self._run.is_finished:
            fresh = ScenarioRun.from_directory(self.path)
            self._run = fresh

    def wait(self, timeout: float | None = None, *, check: bool = False) -> Run:
        """Block until the run ends. ``await run`` waits without blocking a notebook's kernel.

        ``check=True`` raises `JobFailedError` when the run did not complete.
        """
        if self._future is not None:
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                # short waits: a lock wait without a timeout would not see Ctrl-C in the main thread
                step = (
                    WAIT_STEP_S
                    if deadline is None
                    else min(WAIT_STEP_S, max(0.0, deadline - time.monotonic()))
                )
                try:
                    self._future.result(step)
                    break
                except concurrent.futures.TimeoutError:
                    if deadline is not None and time.monotonic() >= deadline:
                        raise TimeoutError(
                            f"run {self.path.name} still {self.state} after {timeout} s"
                        ) from None
                except concurrent.futures.CancelledError:
                    break
                except Exception as exc:  # the run's own failure; Ctrl-C goes to the caller
                    self._error = exc
                    break
        else:
            deadline = None if timeout is None else time.monotonic() + timeout
            while not self.done:  # observed: someone else drives it; re-read the ledger
                if deadline is not None and time.monotonic() > deadline:
                    raise TimeoutError(f"run {self.path.name} still {self.state} after {timeout} s")
                time.sleep(OBSERVE_INTERVAL_S)
        self._reraise()
        if check:
            self.check()
        return self

    def __await__(self) -> Generator[Any, None, Run]:
        return self._wait_async().__await__()

    async def _wait_async(self) -> Run:
        if self._future is not None:
            try:
                await asyncio.wrap_future(self._future)
            except Exception as exc:
                self._error = exc
        else:
            while not self.done:
                await asyncio.sleep(OBSERVE_INTERVAL_S)
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

    def results(self, *, wide: bool = False) -> pd.DataFrame:
        """Measured values of the finished jobs, from each workload's parser.

        Tidy by default: one row per value (test_id, iteration, step, each sweep parameter, the
        parser's own keys such as ``size_b``, metric, value, unit, job_id). ``wide=True`` puts one
        metric per column instead.
        """
        from cloudai_nb.api.analysis import results_frame, widen

        frame = results_frame(self)
        return widen(frame) if wide else frame

    def best(self, metric: str, *, maximize: bool = True) -> Best:
        """The sweep step with the best mean ``metric`` (over iterations), and its test as TOML."""
        from cloudai_nb.api.analysis import best

        return best(self, metric, maximize=maximize)

    def plot(self, metric: str | None = None) -> Any:
        """A matplotlib figure with a sensible default per workload (returned, not only shown)."""
        from cloudai_nb.api.plots import plot_run

        return plot_run(self, metric)

    def counts(self) -> dict[str, int]:
        """How many jobs are in each state."""
        return count_states(self.jobs)

    def _repr_html_(self) -> str:
        """A static table: what shows where widgets cannot (nbconvert, VS Code without widgets)."""
        return render_html(self)

    def summary(self) -> dict[str, Any]:
        return Ledger.read(self.path).summary or {"state": self.state}


STATE_COLOURS = {
    "NEW": "#757575",
    "COMPLETED": "#2e7d32",
    "RUNNING": "#1565c0",
    "PENDING": "#6d4c41",
    "WAITING": "#757575",
    "DRY_RUN": "#00838f",
    "CANCELLED": "#ef6c00",
    "SKIPPED": "#9e9e9e",
}
MAX_ROWS = 100


def state_colour(state: str) -> str:
    return STATE_COLOURS.get(state, "#c62828")  # every failure kind in red


def render_html(run: Run, max_rows: int = MAX_ROWS) -> str:
    """The run as an HTML summary line and job table (escaped; no scripts, no styles to leak)."""
    from html import escape

    state = run.state
    jobs = run.jobs  # read once: an observed run re-reads its ledger on every look
    counts = ", ".join(f"{n} {escape(s)}" for s, n in sorted(count_states(jobs).items()))
    head = (
        f"<p><b>{escape(run.name)}</b> <code>{escape(str(run.path))}</code>: "
        f'<span style="color:{state_colour(state)}">{escape(state)}</span> ({counts})</p>'
    )
    return head + render_table(jobs, max_rows)


def render_table(jobs: list[Job], max_rows: int = MAX_ROWS) -> str:
    """One row per job (the first ``max_rows``), states in colour."""
    from html import escape

    cells = ["test", "iteration", "step", "state", "job id", "nodes", "elapsed", "reason"]
    rows = ["<tr>" + "".join(f"<th>{c}</th>" for c in cells) + "</tr>"]
    for job in jobs[:max_rows]:
        elapsed = f"{job.elapsed_s:.1f} s" if job.elapsed_s is not None else ""
        values = [
            escape(job.test_id),
            str(job.iteration),
            "" if job.step is None else str(job.step),
            f'<span style="color:{state_colour(job.state.value)}">{job.state.value}</span>',
            escape(job.job_id or ""),
            escape(job.nodes or ""),
            elapsed,
            escape(job.reason or ""),
        ]
        rows.append("<tr>" + "".join(f"<td>{v}</td>" for v in values) + "</tr>")
    more = (
        f"<p>... and {len(jobs) - max_rows} more jobs (run.status() has them all)</p>"
        if len(jobs) > max_rows
        else ""
    )
    return "<table>" + "".join(rows) + "</table>" + more
