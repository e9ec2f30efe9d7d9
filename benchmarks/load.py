"""Load cost of the extension, and a kernel's responsiveness and memory while it tracks many jobs."""

from __future__ import annotations

import statistics
import tempfile
import time

from benchmarks.figures import Figure

SETUP = """
import time
t = time.perf_counter()
get_ipython().run_line_magic("load_ext", "cloudai_nb")
print("LOAD", time.perf_counter() - t)
"""

TRACK = """
from cloudai_nb.core.models import TestRun, TestScenario
from cloudai_nb.core.system import StandaloneSystem
from cloudai_nb.workloads.sleep import SleepTestDefinition, SleepCmdArgs
import cloudai_nb
nap = SleepTestDefinition(name="nap", cmd_args=SleepCmdArgs(seconds={seconds}))
scenario = TestScenario(name="many", test_runs=[TestRun(id=f"t{{i}}", test=nap) for i in range({jobs})])
run = cloudai_nb.run(scenario, StandaloneSystem(name="bench", output_path="results", monitor_interval=1.0))
run
"""

RSS = """
import resource
print("RSS", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)
"""


def measure(quick: bool) -> list[Figure]:
    from tests.notebook.kernel_client import Kernel

    jobs_tracked, jobs_memory = (50, 100) if quick else (200, 1000)
    figures: list[Figure] = []
    with tempfile.TemporaryDirectory() as tmp:
        kernel = Kernel(tmp)
        try:
            load = float(kernel.ok(SETUP).stdout.split()[-1])
            figures.append(Figure("%load_ext cloudai_nb (IPython already up)", load * 1000, "ms", 500))
            baseline = [kernel.ok("1 + 1").seconds for _ in range(10)]
            kernel.ok(TRACK.format(seconds=20, jobs=jobs_tracked), timeout=120)
            time.sleep(1.0)  # let the submissions start
            busy = [kernel.ok("1 + 1").seconds for _ in range(20)]
            figures.append(
                Figure(
                    f"trivial cell while tracking {jobs_tracked} jobs",
                    statistics.median(busy) * 1000,
                    "ms",
                    50,
                    f"max {max(busy) * 1000:.0f} ms; idle kernel {statistics.median(baseline) * 1000:.1f} ms",
                )
            )
            kernel.ok("run.cancel(); await run", timeout=120)
        finally:
            kernel.shutdown()
        kernel = Kernel(tmp)
        try:
            kernel.ok(SETUP)
            before = float(kernel.ok(RSS).stdout.split()[-1])
            kernel.ok(TRACK.format(seconds=30, jobs=jobs_memory), timeout=300)
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                live = kernel.ok("print(sum(1 for j in run.jobs if j.state.value == 'RUNNING'))").stdout
                if int(live.strip() or 0) >= jobs_memory:
                    break
                time.sleep(0.5)
            peak = float(kernel.ok(RSS).stdout.split()[-1])
            kernel.ok("run.cancel(); await run", timeout=300)
        finally:
            kernel.shutdown()
    figures.append(
        Figure(
            f"peak RSS of a kernel tracking {jobs_memory} jobs",
            peak,
            "MB",
            200,
            f"{before:.0f} MB before the run",
        )
    )
    return figures
