"""Install, check and remove the prerequisites of tests (git repos, files, venvs, images) on a system.

>>> from cloudai_nb.api.install import install
>>> report = install("scenario.toml", "system.toml", tests_dir="tests/")   # doctest: +SKIP
>>> report.ok                                                              # doctest: +SKIP
True

Runs do this by themselves before they submit; these functions are for doing it ahead of time
(``cloudai-nb install``, ``%cloudai_install``) and for cleaning up.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from pathlib import Path

from cloudai_nb.api.runs import PathLike, resolve_scenario, resolve_system
from cloudai_nb.core.installables import Installable, unique
from cloudai_nb.core.models import TestDefinition, TestScenario
from cloudai_nb.core.system import System
from cloudai_nb.engine.install_step import scenario_installables
from cloudai_nb.systems import installers
from cloudai_nb.systems.installers import InstallReport

__all__ = ["InstallReport", "install", "installables", "installed", "uninstall"]

Target = TestScenario | TestDefinition | PathLike | Iterable[TestDefinition | Installable]


def installables(
    target: Target,
    *,
    tests_dir: PathLike | None = None,
    tests: Mapping[str, TestDefinition] | None = None,
) -> list[Installable]:
    """What ``target`` needs: a scenario, a test, a TOML file (scenario or test), a folder of test
    TOMLs, or a list of tests and installables."""
    if isinstance(target, str | Path) and Path(target).is_dir():
        from cloudai_nb.core import config

        return unique(i for test in config.load_tests(target).values() for i in test.installables())
    if isinstance(target, TestScenario | TestDefinition | str | Path):
        return scenario_installables(resolve_scenario(target, tests=tests, tests_dir=tests_dir))
    items: list[Installable] = []
    for entry in target:
        items += entry.installables() if isinstance(entry, TestDefinition) else [entry]
    return unique(items)


def install(
    scenario_or_tests: Target,
    system: System | PathLike | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    dry_run: bool = False,
    tests_dir: PathLike | None = None,
    tests: Mapping[str, TestDefinition] | None = None,
) -> InstallReport:
    """Install what is missing into the system's ``install_path``; a report, one line per item.

    Nothing already installed is touched. ``dry_run`` lists the commands instead of running them.
    Failures are in the report (``report.ok``, ``report.raise_for_failures()``), never half-installed.
    """
    chosen = resolve_system(system)
    items = installables(scenario_or_tests, tests_dir=tests_dir, tests=tests)
    return installers.install(chosen, items, progress=progress, dry_run=dry_run)


def uninstall(
    scenario_or_tests: Target,
    system: System | PathLike | None = None,
    *,
    progress: Callable[[str], None] | None = None,
    tests_dir: PathLike | None = None,
    tests: Mapping[str, TestDefinition] | None = None,
) -> InstallReport:
    """Remove what ``scenario_or_tests`` installed, and nothing else."""
    chosen = resolve_system(system)
    items = installables(scenario_or_tests, tests_dir=tests_dir, tests=tests)
    return installers.uninstall(chosen, items, progress=progress)


def installed(
    scenario_or_tests: Target,
    system: System | PathLike | None = None,
    *,
    tests_dir: PathLike | None = None,
    tests: Mapping[str, TestDefinition] | None = None,
) -> InstallReport:
    """Which prerequisites are installed, changing nothing."""
    chosen = resolve_system(system)
    return installers.installed(chosen, installables(scenario_or_tests, tests_dir=tests_dir, tests=tests))
