"""Import and command start-up cost, each against a bare interpreter started the same way."""

from __future__ import annotations

import statistics
import subprocess
import sys
import time

from benchmarks.figures import Figure


def _best(argv: list[str], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        subprocess.run(argv, check=True, capture_output=True)
        times.append(time.perf_counter() - started)
    return min(times) if len(times) < 5 else statistics.median(sorted(times)[: len(times) // 2 + 1])


def measure(quick: bool) -> list[Figure]:
    repeat = 3 if quick else 11
    bare = _best([sys.executable, "-c", "pass"], repeat)
    imported = _best([sys.executable, "-c", "import cloudai_nb"], repeat)
    cli = _best([sys.executable, "-m", "cloudai_nb", "--help"], repeat)
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
