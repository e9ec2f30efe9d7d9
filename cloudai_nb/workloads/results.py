"""Result parsers: pure functions from a finished job's output folder to measured values.

A parser returns rows ``{"metric": ..., "value": ..., "unit": ...}``; `cloudai_nb.api` adds the
job's test id, iteration, step and sweep parameters. ``check`` (optional) says why a job whose
command exited 0 still failed, or None.

BashCmd's convention: a stdout line ``name=value`` or ``name=value unit`` with a numeric value is a
metric (``bandwidth=12.5 GB/s``, ``answer=42``); other lines are ignored.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cloudai_nb.core.job import Job
from cloudai_nb.core.models import TestDefinition
from cloudai_nb.core.system import System
from cloudai_nb.workloads import fio_parser, nccl_parser
from cloudai_nb.workloads.bash_cmd import BashCmdTestDefinition
from cloudai_nb.workloads.fio import FioTestDefinition
from cloudai_nb.workloads.nccl import NcclTestDefinition
from cloudai_nb.workloads.sleep import SleepTestDefinition

Row = dict[str, Any]

_METRIC = re.compile(r"^\s*([A-Za-z_][\w.\-]*)\s*=\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*)?$")


def read_text(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def key_value_metrics(text: str) -> list[Row]:
    """``name=value [unit]`` lines with a numeric value, in order (the last of a name wins)."""
    found: dict[str, Row] = {}
    for line in text.splitlines():
        match = _METRIC.match(line)
        if match:
            name, value, unit = match.groups()
            found[name] = {"metric": name, "value": float(value), "unit": (unit or "").strip()}
    return list(found.values())


def _duration(job: Job) -> list[Row]:
    return [{"metric": "duration", "value": job.elapsed_s, "unit": "s"}] if job.elapsed_s is not None else []


@dataclass(frozen=True)
class SleepResults:
    headline = ("duration",)

    def parse(self, test: TestDefinition, folder: Path, job: Job) -> list[Row]:
        assert isinstance(test, SleepTestDefinition)
        return [{"metric": "requested", "value": float(test.cmd_args.seconds), "unit": "s"}, *_duration(job)]


@dataclass(frozen=True)
class BashCmdResults:
    headline = ("duration",)

    def parse(self, test: TestDefinition, folder: Path, job: Job) -> list[Row]:
        rows: list[Row] = []
        if job.exit_code is not None:
            rows.append({"metric": "exit_code", "value": float(job.exit_code), "unit": ""})
        return rows + _duration(job) + key_value_metrics(read_text(folder / "stdout.txt"))


@dataclass(frozen=True)
class FioResults:
    """Bandwidth (MiB/s), IOPS and latency percentiles (us) per fio job and direction."""

    headline = ("bandwidth", "iops")

    def parse(self, test: TestDefinition, folder: Path, job: Job) -> list[Row]:
        rows, _ = fio_parser.parse(read_text(folder / "stdout.txt"))
        return rows

    def check(self, folder: Path) -> str | None:
        return fio_parser.parse(read_text(folder / "stdout.txt"))[1]


@dataclass(frozen=True)
class NcclResults:
    """One row per message size and measure, plus the average bus bandwidth."""

    headline = ("avg_busbw",)

    def parse(self, test: TestDefinition, folder: Path, job: Job) -> list[Row]:
        return nccl_parser.to_rows(nccl_parser.parse(read_text(folder / "stdout.txt")))

    def check(self, folder: Path) -> str | None:
        return nccl_parser.parse(read_text(folder / "stdout.txt")).failure_reason()


def register() -> None:
    from cloudai_nb.core.registry import result_parsers

    result_parsers.register((System, SleepTestDefinition), SleepResults())
    result_parsers.register((System, BashCmdTestDefinition), BashCmdResults())
    result_parsers.register((System, FioTestDefinition), FioResults())
    result_parsers.register((System, NcclTestDefinition), NcclResults())
