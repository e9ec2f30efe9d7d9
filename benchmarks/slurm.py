"""Slurm figures on the local cluster (scripts/slurm-cluster up): submission against a bare sbatch
loop, scheduler calls per polling tick, and how soon a finished job reaches the ledger."""

from __future__ import annotations

import asyncio
import json
import shutil
import statistics
import subprocess
import tempfile
import time
from datetime import datetime
from pathlib import Path

from benchmarks.figures import Figure
from cloudai_nb.core import config
from cloudai_nb.core.models import Dependency, TestRun, TestScenario
from cloudai_nb.engine.scenario_run import ScenarioRun
from cloudai_nb.workloads.bash_cmd import BashCmdArgs, BashCmdTestDefinition
from cloudai_nb.workloads.sleep import SleepCmdArgs, SleepTestDefinition


def system(root: Path, interval: float = 0.5):
    return config.system_from_dict(
        {
            "name": "bench-slurm",
            "scheduler": "slurm",
            "output_path": str(root),
            "default_partition": "debug",
            "mpi": "none",
            "monitor_interval": interval,
            "partitions": [{"name": "debug"}],
        }
    )


def scancel_all() -> None:
    subprocess.run(["scancel", "--user", "root"], check=False, capture_output=True)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True).stdout
        if not out.strip():
            return
        time.sleep(0.2)


def bare_sbatch_loop(n: int, root: Path) -> float:
    started = time.perf_counter()
    for i in range(n):
        subprocess.run(
            ["sbatch", "--parsable", "-o", str(root / f"bare{i}.out"), "--wrap", "sleep 60"],
            check=True,
            capture_output=True,
        )
    return time.perf_counter() - started


def engine_submission(
    n: int, root: Path, *, chain: bool = False, **mode: bool
) -> tuple[float, dict[str, int], int]:
    """Seconds until all n jobs have a Slurm job id; ``chain``: each test run after the one before."""
    nap = SleepTestDefinition(name="nap", cmd_args=SleepCmdArgs(seconds=60))
    runs = [
        TestRun(
            id=f"t{i}",
            test=nap,
            dependencies=[Dependency(type="start_post_comp", id=f"t{i - 1}")] if chain and i else [],
        )
        for i in range(n)
    ]
    run = ScenarioRun.start(TestScenario(name="submit", test_runs=runs), system(root), **mode)

    async def until_submitted() -> float:
        task = asyncio.create_task(run.drive())
        started = time.perf_counter()
        while any(job.job_id is None for job in run.jobs):
            await asyncio.sleep(0.01)
        elapsed = time.perf_counter() - started
        run.cancel()
        await task
        return elapsed

    elapsed = asyncio.run(until_submitted())
    assert run.poller is not None
    return elapsed, dict(run.poller.backend.calls), run.poller.ticks  # type: ignore[attr-defined]


def calls_per_tick(n: int, root: Path) -> float:
    """Drive n live jobs for a few ticks; squeue calls divided by ticks."""
    nap = SleepTestDefinition(name="nap", cmd_args=SleepCmdArgs(seconds=60))
    scenario = TestScenario(name="tick", test_runs=[TestRun(id=f"t{i}", test=nap) for i in range(n)])
    run = ScenarioRun.start(scenario, system(root, interval=0.2))

    async def observe() -> tuple[int, int]:
        task = asyncio.create_task(run.drive())
        while any(job.job_id is None for job in run.jobs):
            await asyncio.sleep(0.05)
        assert run.poller is not None
        backend = run.poller.backend
        ticks0, squeue0 = run.poller.ticks, backend.calls.get("squeue", 0)  # type: ignore[attr-defined]
        await asyncio.sleep(3)
        ticks, squeue = run.poller.ticks - ticks0, backend.calls.get("squeue", 0) - squeue0  # type: ignore[attr-defined]
        run.cancel()
        await task
        return ticks, squeue

    ticks, squeue = asyncio.run(observe())
    return squeue / max(ticks, 1)


def finish_to_ledger(root: Path, jobs: int) -> list[float]:
    """Seconds from a job's last act (it stamps the time) to its COMPLETED line in the ledger."""
    marker = "date +%s.%N > $CLOUDAI_NB_OUTPUT_DIR/finished"
    test = BashCmdTestDefinition(name="stamp", cmd_args=BashCmdArgs(cmd=f"sleep 1; {marker}"))
    scenario = TestScenario(name="latency", test_runs=[TestRun(id=f"t{i}", test=test) for i in range(jobs)])
    run = ScenarioRun.start(scenario, system(root))
    asyncio.run(run.drive())
    delays = []
    for line in (run.run_dir / "jobs.jsonl").read_text().splitlines():
        record = json.loads(line)
        job = record.get("job")
        if job and job["state"] == "COMPLETED":
            finished = float((Path(job["output_path"]) / "finished").read_text())
            delays.append(datetime.fromisoformat(record["t"]).timestamp() - finished)
    return delays


def measure(quick: bool) -> list[Figure]:
    if shutil.which("sbatch") is None:
        return [Figure("slurm: not measured (no cluster: bash scripts/slurm-cluster up)", 0, "")]
    n = 40 if quick else 200
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        scancel_all()
        bare = bare_sbatch_loop(n, root)
        scancel_all()
        ours, calls, _ = engine_submission(n, root)
        scancel_all()
        figures.append(
            Figure(
                f"slurm: submitting {n} jobs, against a bare sbatch loop",
                ours / bare,
                "x",
                1.5,
                f"{ours:.2f} s vs {bare:.2f} s; {calls.get('sinfo', 0)} sinfo calls",
            )
        )
        free, _, _ = engine_submission(n, root, sbatch_dependencies=True)
        scancel_all()
        figures.append(
            Figure(
                f"slurm: submitting {n} independent jobs with --sbatch-dependencies, against a bare sbatch loop",
                free / bare,
                "x",
                1.5,
                f"{free:.2f} s vs {bare:.2f} s",
            )
        )
        held, calls, _ = engine_submission(n, root, chain=True, sbatch_dependencies=True)
        scancel_all()
        figures.append(
            Figure(
                f"slurm: submitting a chain of {n} jobs held by sbatch --dependency, against a bare sbatch loop",
                held / bare,
                "x",
                2.0,  # one at a time by nature, where plain submissions keep 4 in flight
                f"{held:.2f} s vs {bare:.2f} s (one at a time: each names the job id before it)",
            )
        )
        single, calls, _ = engine_submission(n, root, single_sbatch=True)
        scancel_all()
        figures.append(
            Figure(
                f"slurm: submitting {n} test runs as one sbatch (--single-sbatch), against a bare sbatch loop",
                single / bare,
                "x",
                None,
                f"{single:.2f} s, {calls.get('sbatch', 0)} sbatch call",
            )
        )
        for live in (50,) if quick else (50, 500):
            ratio = calls_per_tick(live, root)
            scancel_all()
            figures.append(Figure(f"slurm: squeue calls per tick, {live} live jobs", ratio, "calls", 1.0))
        delays = finish_to_ledger(root, 4 if quick else 8)
        figures.append(
            Figure(
                "slurm: job end to its state in the ledger",
                statistics.median(delays),
                "s",
                None,
                f"max {max(delays):.2f} s over {len(delays)} jobs (monitor_interval 0.5 s)",
            )
        )
    return figures
