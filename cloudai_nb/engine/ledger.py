"""The run directory's ledger: ``run.json``, an append-only ``jobs.jsonl`` and ``summary.json``.

Everything needed to rebuild a run lives on disk: the scenario and system as data, and one JSON
line per job state change (the last line of a job wins). A line is written with a single
``write`` on an ``O_APPEND`` descriptor, so concurrent readers see whole lines; a torn last line
(power loss) is ignored on read. ``run.lock`` is held (``flock``) by the process that drives the
run: a reader that can take the lock knows nobody drives it any more and may take over.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudai_nb.core.errors import RunNotFoundError
from cloudai_nb.core.job import Job, now

RUN_FILE = "run.json"
JOBS_FILE = "jobs.jsonl"
SUMMARY_FILE = "summary.json"
LOCK_FILE = "run.lock"
FORMAT = 1


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` so that readers see the old file or the new one, never half of it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)


@dataclass
class LedgerState:
    """What a run directory says: the run header, the latest record of every job, events, summary."""

    header: dict[str, Any]
    jobs: dict[str, Job]
    events: list[dict[str, Any]]
    summary: dict[str, Any] | None


class Ledger:
    def __init__(self, run_dir: Path) -> None:
        self.run_dir = run_dir
        self._fd: int | None = None
        self._lock_fd: int | None = None

    # -- writing ---------------------------------------------------------------------------------

    def start(self, header: dict[str, Any]) -> None:
        """Create ``run.json`` (once) and open the job log for appending."""
        path = self.run_dir / RUN_FILE
        if not path.exists():
            write_json_atomic(path, {"format": FORMAT, **header})
        if self._fd is not None:
            return
        self._fd = os.open(self.run_dir / JOBS_FILE, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def acquire(self) -> bool:
        """Take the driver's lock; False if another live process holds it."""
        fd = os.open(self.run_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
        self._lock_fd = fd
        return True

    @property
    def is_open(self) -> bool:
        return self._fd is not None

    def append_job(self, job: Job) -> None:
        self._append({"t": now().isoformat(), "job": job.record()})

    def append_event(self, event: str, **fields: Any) -> None:
        self._append({"t": now().isoformat(), "event": event, **fields})

    def _append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            raise RuntimeError("ledger not started")
        os.write(self._fd, (json.dumps(record, default=str, separators=(",", ":")) + "\n").encode())

    def finish(self, summary: dict[str, Any]) -> None:
        write_json_atomic(self.run_dir / SUMMARY_FILE, summary)

    def close(self) -> None:
        if self._lock_fd is not None and (self.run_dir / SUMMARY_FILE).exists():
            (self.run_dir / LOCK_FILE).unlink(missing_ok=True)  # finished: nobody needs to drive it
        for fd in (self._fd, self._lock_fd):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self._fd = self._lock_fd = None

    # -- reading ---------------------------------------------------------------------------------

    @staticmethod
    def read(run_dir: Path) -> LedgerState:
        run_file = run_dir / RUN_FILE
        try:
            header = json.loads(run_file.read_text())
        except FileNotFoundError:
            raise RunNotFoundError(f"{run_dir}: not a run directory (no {RUN_FILE})") from None
        except (OSError, json.JSONDecodeError) as exc:
            raise RunNotFoundError(f"{run_file}: unreadable ({exc})") from None
        jobs: dict[str, Job] = {}
        events: list[dict[str, Any]] = []
        with contextlib.suppress(FileNotFoundError), (run_dir / JOBS_FILE).open() as lines:
            for line in lines:
                if not line.endswith("\n"):
                    break  # a torn last line: the write never completed
                record = json.loads(line)
                if "job" in record:
                    job = Job.model_validate(record["job"])
                    jobs[job.key] = job
                else:
                    events.append(record)
        summary = None
        with contextlib.suppress(FileNotFoundError, json.JSONDecodeError):
            summary = json.loads((run_dir / SUMMARY_FILE).read_text())
        return LedgerState(header, jobs, events, summary)

    @staticmethod
    def driven_by_someone(run_dir: Path) -> bool:
        """Whether a live process holds the run's lock (drives it right now)."""
        try:
            fd = os.open(run_dir / LOCK_FILE, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        else:
            fcntl.flock(fd, fcntl.LOCK_UN)
            return False
        finally:
            os.close(fd)
