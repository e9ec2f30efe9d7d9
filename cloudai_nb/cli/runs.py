"""``run``, ``dry-run``, ``status`` and ``cancel``."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudai_nb.api import Run, load_run, resolve_scenario, resolve_system
from cloudai_nb.core.errors import RunNotFoundError
from cloudai_nb.core.job import Job
from cloudai_nb.engine.ledger import RUN_FILE, Ledger
from cloudai_nb.engine.scenario_run import ScenarioRun, request_cancel

if TYPE_CHECKING:
    import pandas as pd

TABLE_COLUMNS = ["test_id", "iteration", "step", "job_id", "state", "exit_code", "elapsed_s", "reason"]


def _progress(job: Job) -> None:
    stamp = time.strftime("%H:%M:%S")
    detail = []
    if job.job_id and job.state.value in ("PENDING", "RUNNING"):
        detail.append(f"job {job.job_id}")
    if job.exit_code is not None:
        detail.append(f"exit {job.exit_code}")
    if job.is_done and job.elapsed_s is not None:
        detail.append(f"{job.elapsed_s:.1f} s")
    if job.reason:
        detail.append(job.reason)
    print(f"{stamp}  {job.key:<24} {job.state.value:<10} {'  '.join(detail)}".rstrip(), flush=True)


def _message(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)


def _health(problem: str | None) -> None:
    stamp = time.strftime("%H:%M:%S")
    if problem:
        print(f"{stamp}  {problem}; jobs are kept, retrying", flush=True)
    else:
        print(f"{stamp}  the scheduler answers again", flush=True)


def print_table(run: Run) -> None:
    import pandas as pd

    frame = run.status()
    params = [
        c
        for c in frame.columns
        if c not in TABLE_COLUMNS and c not in ("nodes", "submitted", "started", "ended", "output_path")
    ]
    shown = frame[TABLE_COLUMNS[:3] + params + TABLE_COLUMNS[3:]].copy()
    shown["elapsed_s"] = pd.to_numeric(shown["elapsed_s"], errors="coerce").round(2)
    _print_blanked(shown, "display.max_colwidth", 60)


def _print_blanked(frame: pd.DataFrame, *options: Any) -> None:
    """Print a table with missing values as blanks (not NaN or <NA>), 200 columns wide."""
    import pandas as pd

    shown = frame.astype(object).where(frame.notna(), "")
    with pd.option_context("display.width", 200, "display.max_columns", 30, *options):
        print(shown.to_string(index=False, na_rep=""))


def print_results(run: Run) -> None:
    """The measured values, one row per job and a column per metric (nothing for a dry run)."""
    frame = run.results(wide=True)
    if frame.empty:
        return
    print()
    _print_blanked(
        frame.drop(columns=[c for c in ("workload", "job_id") if c in frame.columns]), "display.precision", 3
    )


def run(args: argparse.Namespace) -> int:
    system = resolve_system(args.system_config)
    scenario = resolve_scenario(args.test_scenario, tests_dir=args.tests_dir, hook_dir=args.hook_dir)
    output = Path(args.output_dir) if args.output_dir else None
    scenario_run = ScenarioRun.start(
        scenario,
        system,
        dry_run=args.dry_run,
        output_path=output,
        single_sbatch=args.single_sbatch,
        sbatch_dependencies=args.sbatch_dependencies,
    )
    if not args.quiet:
        print(
            f"{'dry run' if args.dry_run else 'run'} of {scenario.name!r} on {system.name!r}: {scenario_run.run_dir}"
        )
        scenario_run.listeners.append(_progress)
        scenario_run.health_listeners.append(_health)
        scenario_run.message_listeners.append(_message)
    interrupted = 0

    async def drive() -> None:
        nonlocal interrupted
        loop = asyncio.get_running_loop()

        def on_signal(signum: int) -> None:
            nonlocal interrupted
            interrupted += 1
            name = signal.Signals(signum).name
            if interrupted == 1:
                print(f"\n{name}: cancelling the run (again to kill its jobs at once)", file=sys.stderr)
                scenario_run.cancel(f"cancelled by {name}")
            elif interrupted == 2:
                print(f"{name}: killing the live jobs now (again to leave at once)", file=sys.stderr)
                scenario_run.cancel(f"cancelled by {name}", force=True)
            else:
                where = scenario_run.run_dir
                print(
                    f"{name}: leaving now; live jobs stay as they are (cloudai-nb cancel {where})",
                    file=sys.stderr,
                )
                raise KeyboardInterrupt

        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, on_signal, signum)
        await scenario_run.drive()

    asyncio.run(drive())
    result = Run(scenario_run)
    print()
    print_table(result)
    print_results(result)
    print(f"\n{scenario.name}: {scenario_run.state} in {scenario_run.run_dir}")
    if interrupted:
        return 130
    return 0 if scenario_run.state in ("COMPLETED", "DRY_RUN") else 1


def _run_dir(path: str) -> Path:
    given = Path(path)
    if (given / RUN_FILE).exists() or not given.is_dir():
        return given
    newest = sorted(given.glob(f"*/{RUN_FILE}"), key=lambda p: p.stat().st_mtime)
    if not newest:
        raise RunNotFoundError(f"{given}: not a run directory, and holds none")
    return newest[-1].parent


def status(args: argparse.Namespace) -> int:
    run_dir = _run_dir(args.run_dir)
    result = load_run(run_dir, attach=False)
    if args.json:
        frame = result.status()
        records = json.loads(frame.to_json(orient="records", date_format="iso"))
        print(json.dumps(records, indent=2))
        return 0
    print_table(result)
    state = result.state
    if not result.done and not Ledger.driven_by_someone(run_dir):
        state = "DETACHED (no process drives it; load_run() in a notebook or script takes it over)"
    print(f"\n{result.name}: {state} in {run_dir}")
    return 0


def results(args: argparse.Namespace) -> int:
    import pandas as pd

    run = load_run(_run_dir(args.run_dir), attach=False)
    frame = run.results(wide=args.wide)
    if args.csv:
        print(frame.to_csv(index=False), end="")
    elif frame.empty:
        print(f"{run.name}: no results (yet) in {run.path}")
    else:
        with pd.option_context("display.width", 200, "display.max_columns", 40, "display.max_rows", 500):
            print(frame.to_string(index=False, na_rep=""))
    return 0


def cancel(args: argparse.Namespace) -> int:
    run_dir = _run_dir(args.run_dir)
    result = load_run(run_dir, attach=False)
    if result.done:
        print(f"{result.name}: already {result.state} in {run_dir}")
        return 0
    if Ledger.driven_by_someone(run_dir):
        request_cancel(run_dir)  # the driving process sees the request within a poll interval
    else:
        result = load_run(run_dir, attach=True)
        result.cancel()
    result.wait(timeout=60)
    print_table(result)
    print(f"\n{result.name}: {result.state} in {run_dir}")
    return 0
