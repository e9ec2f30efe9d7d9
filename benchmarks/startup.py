"""Import and command start-up cost, each against a bare interpreter started the same way."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from benchmarks.figures import Figure


def _typical(commands: list[list[str]], repeat: int) -> list[float]:
    """Per command, the median of its faster half of ``repeat`` runs (start-up times only vary
    upwards). The commands take turns, so a burst of load on this shared machine hits all alike."""
    times: list[list[float]] = [[] for _ in commands]
    for _ in range(repeat):
        for i, argv in enumerate(commands):
            started = time.perf_counter()
            subprocess.run(argv, check=True, capture_output=True)
            times[i].append(time.perf_counter() - started)
    return [statistics.median(sorted(t)[: len(t) // 2 + 1]) for t in times]


def measure(quick: bool) -> list[Figure]:
    repeat = 9 if quick else 21
    bare, imported, cli = _typical(
        [
            [sys.executable, "-c", "pass"],
            [sys.executable, "-c", "import cloudai_nb"],
            [sys.executable, "-m", "cloudai_nb", "--help"],
        ],
        repeat,
    )
    return [
        Figure(
            "import cloudai_nb",
            (imported - bare) * 1000,
            "ms",
            150,
            f"over a bare interpreter ({bare * 1000:.0f} ms)",
        ),
        Figure("cloudai-nb --help", (cli - bare) * 1000, "ms", None, "over a bare interpreter"),
    ]
