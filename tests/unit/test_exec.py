from __future__ import annotations

import asyncio
import os
import subprocess
import sys

from cloudai_nb.systems.exec import LocalExecutor


async def test_stopping_a_watch_twice_never_closes_someone_elses_descriptor(tmp_path):
    """The watch of an exited process was closed twice: the second close hit a reused fd number."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    ended = asyncio.Event()
    stop = LocalExecutor().watch(child.pid, ended.set)
    await asyncio.wait_for(ended.wait(), 10)  # fired: the watch closed its descriptor
    child.wait()
    with (tmp_path / "other").open("w") as other:  # likely reuses the freed descriptor number
        stop()
        os.fstat(other.fileno())  # still open
        other.write("intact")
    assert (tmp_path / "other").read_text() == "intact"


async def test_run_reports_a_missing_command_and_a_timeout():
    executor = LocalExecutor()
    missing = await executor.run(["definitely-not-a-command-xyz"])
    assert (missing.returncode, missing.stderr) == (127, "definitely-not-a-command-xyz: command not found")
    slow = await executor.run(["sleep", "5"], timeout=0.1)
    assert slow.returncode == 124
