"""DataFrames at scale: status() of 10,000 jobs and results() of 1,000 NCCL jobs (30+ sizes each)."""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

from benchmarks.figures import Figure
from cloudai_nb.api.run import Run
from cloudai_nb.core.job import now
from cloudai_nb.core.models import JobState, TestRun, TestScenario
from cloudai_nb.core.system import StandaloneSystem
from cloudai_nb.engine.scenario_run import ScenarioRun, plan_jobs
from cloudai_nb.workloads.nccl import NcclTestDefinition
from cloudai_nb.workloads.sleep import SleepTestDefinition

NCCL_LOG = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "nccl" / "allreduce_8xh100.log"


def finished_run(test, jobs: int, root: Path, log: Path | None = None) -> Run:
    """A run of ``jobs`` finished iterations, built in memory (and on disk for the logs)."""
    scenario = TestScenario(name="bench", test_runs=[TestRun(id="t", test=test, iterations=jobs)])
    system = StandaloneSystem(name="bench", output_path=root)
    planned = plan_jobs(scenario, root)
    stamp = now()
    for job in planned:
        job.state, job.exit_code, job.started, job.ended, job.job_id = (
            JobState.COMPLETED,
            0,
            stamp,
            stamp,
            "1",
        )
        if log is not None:
            job.output_path.mkdir(parents=True)
            shutil.copyfile(log, job.output_path / "stdout.txt")
    return Run(ScenarioRun(scenario, system, root, planned))


def _best_of(repeat: int, action) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return best


def measure(quick: bool) -> list[Figure]:
    n_status, n_results = (1000, 100) if quick else (10_000, 1000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        many = finished_run(SleepTestDefinition(name="nap"), n_status, root / "status")
        status_s = _best_of(3, many.status)
        nccl = finished_run(NcclTestDefinition(name="nccl"), n_results, root / "nccl", NCCL_LOG)
        frame = nccl.results()
        results_s = _best_of(2, nccl.results)
    return [
        Figure(f"status() of {n_status} jobs", status_s, "s", 0.5 if not quick else None),
        Figure(
            f"results() of {n_results} NCCL jobs",
            results_s,
            "s",
            2.0 if not quick else None,
            f"{len(frame)} rows",
        ),
    ]
