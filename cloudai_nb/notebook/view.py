"""The live view of a run: an ipywidgets box that updates in place as jobs change.

The engine runs on its own thread; every widget change is made on the kernel's event loop (the
loop that was running when the view was made), as ipykernel 7 expects, and at most every
``REFRESH_S`` however many jobs change at once.
"""

from __future__ import annotations

import asyncio
import weakref
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from cloudai_nb.api.run import Run, render_table, state_colour
from cloudai_nb.core.job import Job

REFRESH_S = 0.2
OBSERVE_S = 1.0  # a run driven by another process is re-read from its ledger this often
LOG_TAIL_LINES = 40


class RunView:
    """Progress bar, job table, Cancel button and a log tail of a chosen job."""

    def __init__(self, run: Run) -> None:
        self.run = run
        try:
            self.loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            self.loop = None
        self.refreshes = 0
        self._pending = False
        jobs = run.jobs
        self.title = widgets.HTML()
        self.progress = widgets.IntProgress(min=0, max=max(1, len(jobs)), description="0 / 0")
        self.table = widgets.HTML()
        self.cancel_button = widgets.Button(description="Cancel run", button_style="danger", icon="stop")
        self.cancel_button.on_click(self._cancel_clicked)
        self.job_picker = widgets.Dropdown(options=[job.key for job in jobs], description="log of")
        self.stderr_toggle = widgets.ToggleButton(description="stderr", value=False)
        self.log = widgets.HTML()
        self.job_picker.observe(self._show_log, names="value")
        self.stderr_toggle.observe(self._show_log, names="value")
        self.message = ""  # run-wide news such as install progress
        self.widget = widgets.VBox(
            [
                self.title,
                widgets.HBox([self.progress, self.cancel_button]),
                self.table,
                widgets.HBox([self.job_picker, self.stderr_toggle]),
                self.log,
            ]
        )
        self.refresh()
        if not run.done:
            run.scenario_run.listeners.append(self._job_changed)
            run.scenario_run.message_listeners.append(self._message)
            if run.is_observed and self.loop is not None:
                self.loop.call_later(OBSERVE_S, self._observe)

    # -- updates ---------------------------------------------------------------------------------

    def _job_changed(self, job: Job) -> None:
        """Called on the engine thread: hand the update to the kernel's loop, coalesced."""
        if self.loop is None or self.loop.is_closed():
            return
        self.loop.call_soon_threadsafe(self._schedule)

    def _message(self, line: str) -> None:
        """Run-wide news (installing prerequisites), from any thread: shown in the title."""
        self.message = line
        if self.loop is not None and not self.loop.is_closed():
            self.loop.call_soon_threadsafe(self._schedule)

    def _schedule(self) -> None:
        if self._pending or self.loop is None:
            return
        self._pending = True
        self.loop.call_later(REFRESH_S, self.refresh)

    def _observe(self) -> None:
        self.refresh()
        if not self.run.done and self.loop is not None:
            self.loop.call_later(OBSERVE_S, self._observe)

    def refresh(self) -> None:
        """Redraw from the run's current state (cheap: one pass over the jobs)."""
        self._pending = False
        self.refreshes += 1
        run = self.run
        jobs = run.jobs
        done = sum(1 for job in jobs if job.is_done)
        failed = sum(1 for job in jobs if job.state.is_failure)
        self.progress.max = max(1, len(jobs))
        self.progress.value = done
        self.progress.description = f"{done} / {len(jobs)}"
        self.progress.bar_style = "danger" if failed else ("success" if run.done else "info")
        problem = run.scenario_run.scheduler_problem
        warning = f' <span style="color:#c62828">{escape(problem)}</span>' if problem else ""
        if self.message and not run.done:
            warning += f" <i>{escape(self.message)}</i>"
        self.title.value = (
            f"<b>{run.name}</b> <code>{run.path.name}</code>: "
            f'<span style="color:{state_colour(run.state)}">{run.state}</span>'
            + (f", {failed} failed" if failed else "")
            + warning
        )
        self.table.value = render_table(jobs)
        self.cancel_button.disabled = run.done
        if self.job_picker.value:
            self._show_log()

    def _show_log(self, _: Any = None) -> None:

        key = self.job_picker.value
        job = next((j for j in self.run.jobs if j.key == key), None)
        if job is None:
            self.log.value = ""
            return
        name = "stderr.txt" if self.stderr_toggle.value else "stdout.txt"
        text = tail(job.output_path / name, LOG_TAIL_LINES)
        self.log.value = f"<pre>{escape(text) or '(empty)'}</pre>"

    def _cancel_clicked(self, _: Any) -> None:
        self.run.cancel()
        self.cancel_button.disabled = True
        self.cancel_button.description = "Cancelling..."


def tail(path: Path, lines: int) -> str:
    """The last ``lines`` lines of a text file (reads at most its last 64 KiB)."""
    try:
        with path.open("rb") as handle:
            handle.seek(0, 2)
            size = handle.tell()
            handle.seek(max(0, size - 64 * 1024))
            data = handle.read().decode(errors="replace")
    except OSError:
        return ""
    return "\n".join(data.splitlines()[-lines:])


_views: weakref.WeakKeyDictionary[Run, RunView] = weakref.WeakKeyDictionary()


def view_of(run: Run) -> RunView:
    """One live view per run (shown again, it is the same widget)."""
    found = _views.get(run)
    if found is None:
        found = _views[run] = RunView(run)
    return found


def run_mimebundle(run: Run, include: Any = None, exclude: Any = None) -> dict[str, Any]:
    """The live widget where widgets render, and the static table everywhere else."""
    bundle: dict[str, Any] = dict(view_of(run).widget._repr_mimebundle_() or {})
    bundle["text/html"] = run._repr_html_()
    bundle["text/plain"] = repr(run)
    return bundle
