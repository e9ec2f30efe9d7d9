"""Start runs, find them again, and turn user input (paths, names, models) into models."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudai_nb.api.run import Run
from cloudai_nb.core import config
from cloudai_nb.core.errors import ConfigError, RunNotFoundError
from cloudai_nb.core.models import TestDefinition, TestRun, TestScenario
from cloudai_nb.core.system import StandaloneSystem, System
from cloudai_nb.engine.ledger import RUN_FILE, SUMMARY_FILE, Ledger
from cloudai_nb.engine.scenario_run import ScenarioRun

if TYPE_CHECKING:
    import pandas as pd

PathLike = str | Path


def default_system(output_path: PathLike = "results") -> StandaloneSystem:
    """The built-in system: this machine, results under ``./results``."""
    cwd = Path.cwd()
    return StandaloneSystem(name="standalone", install_path=cwd / "install", output_path=cwd / output_path)


def resolve_system(system: System | PathLike | None) -> System:
    if system is None:
        return default_system()
    if isinstance(system, System):
        return system
    return config.load_system(system)


def resolve_scenario(
    scenario: TestScenario | TestDefinition | PathLike,
    *,
    tests: Mapping[str, TestDefinition] | None = None,
    tests_dir: PathLike | None = None,
    hook_dir: PathLike | None = None,
) -> TestScenario:
    """A scenario from a model, a single test definition, or a TOML file (a scenario or a test).

    A scenario's ``pre_test``/``post_test`` hooks are loaded from ``hook_dir`` (CloudAI's layout:
    hook scenarios there, their tests in ``hook_dir/test``; default ``./conf/hook``).
    """
    if isinstance(scenario, TestScenario):
        return with_hooks(scenario, hook_dir)
    if isinstance(scenario, TestDefinition):
        return TestScenario(name=scenario.name, test_runs=[TestRun(id=scenario.name, test=scenario)])
    known = dict(tests or {})
    if tests_dir is not None:
        known.update(config.load_tests(tests_dir))
    data, source = config.read_toml(scenario)
    kind = config.classify_or_none(data)
    if kind == "test":
        test = config.test_from_dict(data, source)
        return TestScenario(name=test.name, test_runs=[TestRun(id=test.name, test=test)])
    if kind != "scenario":
        raise ConfigError(
            f"expected a scenario or a test, but this looks like a {kind or 'mystery'}", file=source.path
        )
    return with_hooks(config.scenario_from_dict(data, known, source), hook_dir, source)


def with_hooks(
    scenario: TestScenario, hook_dir: PathLike | None, source: config.Source | None = None
) -> TestScenario:
    """``scenario`` with the hook scenarios its ``pre_test``/``post_test`` name, from ``hook_dir``
    (else CloudAI's default ``./conf/hook`` if there is one; a run says what is still missing)."""
    kinds = [kind for kind in config.HOOK_KINDS if getattr(scenario, kind) is not None]
    if not kinds:
        return scenario
    if hook_dir is None:
        if all(scenario.hook(kind) for kind in kinds) or not config.DEFAULT_HOOK_DIR.is_dir():
            return scenario
        hook_dir = config.DEFAULT_HOOK_DIR
    return config.attach_hooks(scenario, config.load_hooks(hook_dir), source)


def run(
    scenario: TestScenario | TestDefinition | PathLike,
    system: System | PathLike | None = None,
    *,
    dry_run: bool = False,
    output_path: PathLike | None = None,
    tests_dir: PathLike | None = None,
    tests: Mapping[str, TestDefinition] | None = None,
    hook_dir: PathLike | None = None,
    single_sbatch: bool = False,
    sbatch_dependencies: bool = False,
) -> Run:
    """Start a scenario and return its `Run` at once (the jobs go on in the background).

    The run is driven by the process's engine thread, so the kernel stays free. ``dry_run=True``
    writes every file a real run would and submits nothing. ``single_sbatch=True`` (Slurm; CloudAI's
    ``--single-sbatch``) runs every test run in one allocation, one after another, each with its own
    srun, output folder and state. ``sbatch_dependencies=True`` (Slurm) submits every job at once,
    each held back by ``sbatch --dependency`` until what it waits for is done, so the scenario goes on
    even if this process dies (``end_post_comp`` is still applied by the run while it is watched).
    """
    chosen = resolve_system(system)
    model = resolve_scenario(scenario, tests=tests, tests_dir=tests_dir, hook_dir=hook_dir)
    scenario_run = ScenarioRun.start(
        model,
        chosen,
        dry_run=dry_run,
        output_path=Path(output_path) if output_path else None,
        single_sbatch=single_sbatch,
        sbatch_dependencies=sbatch_dependencies,
    )
    return Run(scenario_run)._start()


def load_run(path: PathLike, *, attach: bool = True) -> Run:
    """A run rebuilt from its directory alone.

    A finished run is just read. A live run driven by another process is observed (its ledger
    re-read on each look). A live run nobody drives any more (its kernel restarted) is taken over
    when ``attach`` is true: its live jobs are watched again and its waiting jobs go on.
    """
    run_dir = Path(path)
    scenario_run = ScenarioRun.from_directory(run_dir)
    if scenario_run.is_finished:
        return Run(scenario_run)
    if Ledger.driven_by_someone(run_dir) or not attach:
        return Run(scenario_run, observer=True)
    return Run(scenario_run)._start()


def _listed_state(run_dir: Path, summary: dict[str, Any]) -> str:
    """A finished run's state; else whether a process drives it (RUNNING) or none does (DETACHED)."""
    if "state" in summary:
        return str(summary["state"])
    if not summary and (run_dir / SUMMARY_FILE).exists():
        return "UNKNOWN"  # a summary that cannot be read
    return "RUNNING" if Ledger.driven_by_someone(run_dir) else "DETACHED"


def runs(output_path: PathLike = "results") -> pd.DataFrame:
    """Every run directory under ``output_path``, newest first, with its state and counts."""
    import pandas as pd

    rows: list[dict[str, Any]] = []
    root = Path(output_path)
    for run_file in sorted(root.glob(f"*/{RUN_FILE}")):
        run_dir = run_file.parent
        try:
            state = Ledger.read(run_dir)
        except RunNotFoundError:
            continue
        summary = state.summary or {}
        rows.append(
            {
                "run": run_dir.name,
                "scenario": state.header.get("scenario", {}).get("name"),
                "state": _listed_state(run_dir, summary),
                "jobs": len(state.jobs),
                "started": state.header.get("started"),
                "elapsed_s": summary.get("elapsed_s"),
                "path": str(run_dir),
            }
        )
    frame = pd.DataFrame(rows, columns=["run", "scenario", "state", "jobs", "started", "elapsed_s", "path"])
    return frame.sort_values("started", ascending=False, ignore_index=True)
