"""``python -m benchmarks [--quick]``: every performance figure side by side."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time

from benchmarks import dataframes, engine, load, slurm, startup
from benchmarks.figures import Figure, table


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run in seconds")
    args = parser.parse_args()
    figures: list[Figure] = []
    for module in (startup, load, engine, slurm, dataframes):
        figures += module.measure(args.quick)
    cores = os.cpu_count()
    print(
        f"cloudai_nb benchmarks, {time.strftime('%Y-%m-%d')}, {cores} cores, Python {platform.python_version()}"
        f"{' (quick)' if args.quick else ''}\n"
    )
    print(table(figures))
    missed = [f.name for f in figures if f.holds == "NO"]
    if missed:
        print(f"\nmissed: {'; '.join(missed)}")
    # a quick run is a smoke test on small sizes: its figures are too noisy to judge targets by
    return 1 if missed and not args.quick else 0


if __name__ == "__main__":
    sys.exit(main())
