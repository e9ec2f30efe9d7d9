"""Job logs in a notebook: a tail printed once, or a widget that follows the file."""

from __future__ import annotations

import asyncio
from html import escape
from pathlib import Path
from typing import Any

import ipywidgets as widgets

from cloudai_nb.core.job import Job
from cloudai_nb.notebook.view import tail

FOLLOW_S = 0.5


def show_log(path: Path, lines: int) -> Any:
    """The file's last lines as plain text output (no quotes, no repr)."""
    from IPython.display import Pretty

    if not path.exists():
        return Pretty(f"({path} does not exist yet)")
    return Pretty(tail(path, lines) or f"({path.name} is empty)")


def follow_log(job: Job, path: Path, lines: int) -> Any:
    """An HTML widget showing the file's last lines, refreshed on the kernel's loop until the job ends."""
    box = widgets.HTML()
    loop = asyncio.get_running_loop() if _has_loop() else None

    def refresh() -> None:
        box.value = (
            f"<b>{escape(job.key)}</b> {escape(job.state.value)}<pre>{escape(tail(path, lines))}</pre>"
        )
        if loop is not None and not job.is_done:
            loop.call_later(FOLLOW_S, refresh)

    refresh()
    return box


def _has_loop() -> bool:
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return False
    return True
