"""Helpers for the real-process integration tests: scenarios in tmp_path, ledger reading, pgrep."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from cloudai_nb.core.system import StandaloneSystem

REPO = Path(__file__).resolve().parents[2]
CONF = REPO / "cloudai_nb" / "conf"
SCENARIOS = CONF / "scenarios"
TESTS_DIR = CONF / "tests"


def standalone(tmp_path: Path, interval: float = 0.2) -> StandaloneSystem:
    return StandaloneSystem(
        name="standalone",
        install_path=tmp_path / "install",
        output_path=tmp_path / "results",
        monitor_interval=interval,
    )


def write_scenario(tmp_path: Path, text: str, name: str = "scenario.toml") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def wait_until(predicate: Callable[[], Any], timeout: float = 10.0, interval: float = 0.05) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(interval)


def ledger_jobs(run_dir: Path) -> dict[str, dict[str, Any]]:
    """The last record of each job in jobs.jsonl (whole lines only)."""
    jobs: dict[str, dict[str, Any]] = {}
    path = run_dir / "jobs.jsonl"
    if not path.exists():
        return jobs
    for line in path.read_text().splitlines(keepends=True):
        if not line.endswith("\n"):
            break
        record = json.loads(line)
        if "job" in record:
            jobs[record["job"]["key"]] = record["job"]
    return jobs


def summary(run_dir: Path) -> dict[str, Any] | None:
    path = run_dir / "summary.json"
    if not path.exists():
        return None
    return json.loads(path.read_text())


def ts(value: str | datetime | None) -> datetime:
    assert value is not None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value)


def find_run_dir(output: Path, timeout: float = 15.0) -> Path:
    def found() -> Path | None:
        runs = sorted(output.glob("*/run.json"))
        return runs[-1].parent if runs else None

    result: Path = wait_until(found, timeout)
    return result


def pgrep(pattern: str) -> list[int]:
    """Pids of live (non-zombie) processes whose full command line matches ``pattern``."""
    done = subprocess.run(["pgrep", "-f", pattern], capture_output=True, text=True, check=False)
    pids = []
    for word in done.stdout.split():
        pid = int(word)
        if pid == os.getpid():
            continue
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            continue
        if stat[stat.rindex(")") + 2 :].split()[0] == "Z":
            continue
        pids.append(pid)
    return pids


def cli(*args: str | Path, cwd: Path, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cloudai_nb", *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def cli_popen(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "cloudai_nb", *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
