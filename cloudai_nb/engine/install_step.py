"""Before a run submits anything: install what its tests need (git repos, venvs, images) on the system.

The installers block (git, pip, enroot), so they run in a worker thread and the loop stays free.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TYPE_CHECKING

from cloudai_nb.core import sweep
from cloudai_nb.core.errors import SubmissionError
from cloudai_nb.core.installables import Installable, unique
from cloudai_nb.core.models import JobState, TestScenario
from cloudai_nb.core.system import System
from cloudai_nb.systems import installers
from cloudai_nb.systems.base import Update

if TYPE_CHECKING:
    from cloudai_nb.engine.scenario_run import ScenarioRun

Progress = Callable[[str], None]


def scenario_installables(scenario: TestScenario) -> list[Installable]:
    """Everything the scenario's tests need, each sweep step included, without repeats."""
    items: list[Installable] = []
    for run in scenario.test_runs:
        for step in sweep.expand(run):
            items += step.test.installables()
    for hook in scenario.hooks.values():
        items += scenario_installables(hook)
    return unique(items)


async def ensure_installed(
    scenario: TestScenario, system: System, progress: Progress | None = None
) -> installers.InstallReport | None:
    """Install what is missing (None when the scenario needs nothing); raises `SubmissionError`
    naming every item that failed and every missing system prerequisite."""
    items = scenario_installables(scenario)
    if not items:
        return None
    report = await asyncio.to_thread(installers.install, system, items, progress=progress)
    if not report.ok:
        raise SubmissionError(
            "prerequisites not installed: " + "; ".join(report.error_message().splitlines())
        )
    return report


async def install_before_run(run: ScenarioRun) -> None:
    """`ensure_installed` for a run: progress goes to the log and the ledger; a failure ends every
    waiting job FAILED with the reason, so the run ends FAILED and says why."""

    def progress(line: str) -> None:  # called on the installer's worker thread
        run.note(line, event="install")

    try:
        await ensure_installed(run.scenario, run.system, progress)
    except SubmissionError as exc:
        for job in run.jobs:
            if job.state is JobState.WAITING:
                run.apply(Update(job, JobState.FAILED, reason=str(exc)))
