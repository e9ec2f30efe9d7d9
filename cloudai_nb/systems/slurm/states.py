"""Slurm's job states and what the commands print about them, parsed into data (pure functions)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from cloudai_nb.core.models import JobState

# Every state squeue, scontrol or sacct may print (long form), and what it means here.
SLURM_STATES: dict[str, JobState] = {
    "PENDING": JobState.PENDING,
    "CONFIGURING": JobState.PENDING,
    "REQUEUED": JobState.PENDING,
    "REQUEUE_HOLD": JobState.PENDING,
    "REQUEUE_FED": JobState.PENDING,
    "RESV_DEL_HOLD": JobState.PENDING,
    "RUNNING": JobState.RUNNING,
    "COMPLETING": JobState.RUNNING,
    "RESIZING": JobState.RUNNING,
    "SIGNALING": JobState.RUNNING,
    "STAGE_OUT": JobState.RUNNING,
    "SUSPENDED": JobState.RUNNING,
    "STOPPED": JobState.RUNNING,
    "COMPLETED": JobState.COMPLETED,
    "CANCELLED": JobState.CANCELLED,
    "REVOKED": JobState.CANCELLED,
    "FAILED": JobState.FAILED,
    "SPECIAL_EXIT": JobState.FAILED,
    "TIMEOUT": JobState.TIMEOUT,
    "NODE_FAIL": JobState.NODE_FAIL,
    "PREEMPTED": JobState.PREEMPTED,
    "BOOT_FAIL": JobState.BOOT_FAIL,
    "DEADLINE": JobState.DEADLINE,
    "OUT_OF_MEMORY": JobState.OUT_OF_MEMORY,
}


def map_state(text: str) -> JobState:
    """``CANCELLED by 0`` -> CANCELLED; anything unknown -> UNKNOWN (still watched, never final)."""
    word = text.strip().split(" ")[0].rstrip("+")
    return SLURM_STATES.get(word, JobState.UNKNOWN)


@dataclass
class SlurmInfo:
    """What one Slurm command said about one job."""

    job_id: str
    state: JobState
    raw_state: str = ""
    reason: str | None = None
    nodes: str | None = None
    exit_code: int | None = None
    signal: int | None = None
    start: datetime | None = None
    end: datetime | None = None


def _time(text: str | None) -> datetime | None:
    if not text or text in ("Unknown", "None", "N/A", "(null)"):
        return None
    try:
        return datetime.fromisoformat(text).astimezone()
    except ValueError:
        return None


def _exit(text: str | None) -> tuple[int | None, int | None]:
    """``3:0`` -> (3, 0): Slurm's exit code and the signal that ended the job."""
    if not text or ":" not in text:
        return None, None
    code, _, sig = text.partition(":")
    try:
        return int(code), int(sig)
    except ValueError:
        return None, None


SQUEUE_FORMAT = "%i|%T|%r|%N|%S|%e"


def squeue_argv(job_ids: list[str]) -> list[str]:
    """One call for every job: ``-t all`` or finished jobs silently vanish from the answer."""
    return ["squeue", "-h", "-t", "all", "-j", ",".join(job_ids), "-o", SQUEUE_FORMAT]


def parse_squeue(text: str) -> dict[str, SlurmInfo]:
    found: dict[str, SlurmInfo] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 4 or not parts[0]:
            continue
        job_id, state, reason, nodes = parts[:4]
        start, end = (parts[4], parts[5]) if len(parts) >= 6 else (None, None)
        found[job_id] = SlurmInfo(
            job_id,
            map_state(state),
            raw_state=state,
            reason=None if reason in ("None", "") else reason,
            nodes=nodes or None,
            start=_time(start),
            end=_time(end),
        )
    return found


def parse_scontrol(text: str) -> dict[str, SlurmInfo]:
    """``scontrol -o show job``: one line of ``Key=Value`` pairs per job."""
    found: dict[str, SlurmInfo] = {}
    for line in text.splitlines():
        fields: dict[str, str] = {}
        for token in line.split():
            key, sep, value = token.partition("=")
            if sep:
                fields[key] = value
        job_id = fields.get("JobId")
        if not job_id:
            continue
        code, sig = _exit(fields.get("ExitCode"))
        nodes = fields.get("NodeList")
        found[job_id] = SlurmInfo(
            job_id,
            map_state(fields.get("JobState", "")),
            raw_state=fields.get("JobState", ""),
            reason=None if fields.get("Reason") in (None, "None") else fields.get("Reason"),
            nodes=None if nodes in (None, "(null)") else nodes,
            exit_code=code,
            signal=sig,
            start=_time(fields.get("StartTime")),
            end=_time(fields.get("EndTime")),
        )
    return found


SACCT_FIELDS = "JobID,State,ExitCode,Start,End,NodeList"


def sacct_argv(job_ids: list[str]) -> list[str]:
    return ["sacct", "-X", "-P", "-n", "-j", ",".join(job_ids), "-o", SACCT_FIELDS]


def parse_sacct(text: str) -> dict[str, SlurmInfo]:
    found: dict[str, SlurmInfo] = {}
    for line in text.splitlines():
        parts = line.strip().split("|")
        if len(parts) < 6 or not parts[0]:
            continue
        job_id, state, exit_code, start, end, nodes = parts[:6]
        code, sig = _exit(exit_code)
        found[job_id.split(".")[0]] = SlurmInfo(
            job_id.split(".")[0],
            map_state(state),
            raw_state=state,
            nodes=None if nodes in ("", "None assigned") else nodes,
            exit_code=code,
            signal=sig,
            start=_time(start),
            end=_time(end),
        )
    return found


UNREACHABLE_MARKERS = (
    "Unable to contact slurm controller",
    "Socket timed out",
    "Connection refused",
    "Zero Bytes were transmitted or received",
)


def controller_unreachable(stderr: str) -> bool:
    return any(marker in stderr for marker in UNREACHABLE_MARKERS)
