"""Engine overhead on the standalone system against the ideal makespan of the same jobs."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path

from benchmarks.figures import Figure
from cloudai_nb.core.models import Dependency, TestRun, TestScenario
from cloudai_nb.core.system import StandaloneSystem
from cloudai_nb.engine.scenario_run import ScenarioRun
from cloudai_nb.workloads.sleep import SleepCmdArgs, SleepTestDefinition

JOB_SECONDS = 0.1


def _makespan(scenario: TestScenario, root: Path) -> float:
    system = StandaloneSystem(name="bench", output_path=root, monitor_interval=1.0)
    run = ScenarioRun.start(scenario, system)
    started = time.perf_counter()
    state = asyncio.run(run.drive())
    elapsed = time.perf_counter() - started
    if state != "COMPLETED":
        raise RuntimeError(f"benchmark scenario {scenario.name} ended {state}")
    return elapsed


def chain(n: int) -> TestScenario:
    nap = SleepTestDefinition(name="nap", cmd_args=SleepCmdArgs(seconds=JOB_SECONDS))
    runs = [TestRun(id="t0", test=nap)]
    for i in range(1, n):
        runs.append(
            TestRun(id=f"t{i}", test=nap, dependencies=[Dependency(type="start_post_comp", id=f"t{i - 1}")])
        )
    return TestScenario(name=f"chain{n}", test_runs=runs)


def fan_out(n: int) -> TestScenario:
    nap = SleepTestDefinition(name="nap", cmd_args=SleepCmdArgs(seconds=JOB_SECONDS))
    return TestScenario(name=f"fan{n}", test_runs=[TestRun(id=f"t{i}", test=nap) for i in range(n)])


def measure(quick: bool) -> list[Figure]:
    n_chain, n_fan = (10, 40) if quick else (50, 200)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        chain_s = _makespan(chain(n_chain), root)
        fan_s = _makespan(fan_out(n_fan), root)
    ideal_chain = n_chain * JOB_SECONDS
    return [
        Figure(
            f"engine: chain of {n_chain} x sleep {JOB_SECONDS}",
            (chain_s - ideal_chain) / n_chain * 1000,
            "ms/edge",
            20,
            f"makespan {chain_s:.2f} s, ideal {ideal_chain:.1f} s",
        ),
        Figure(
            f"engine: fan-out of {n_fan} x sleep {JOB_SECONDS}",
            (fan_s - JOB_SECONDS) / n_fan * 1000,
            "ms/job",
            None,
            f"makespan {fan_s:.2f} s, ideal {JOB_SECONDS:.1f} s",
        ),
    ]
