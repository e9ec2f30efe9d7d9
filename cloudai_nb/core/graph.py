"""The dependency graph of a scenario's test runs: checks and ordering."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from cloudai_nb.core.errors import ConfigError, did_you_mean

if TYPE_CHECKING:
    from cloudai_nb.core.models import TestRun

# Edges that make a run wait for another; a cycle of these can never start.
WAITING_TYPES = ("start_post_init", "start_post_comp")


def check_dependencies(test_runs: Sequence[TestRun]) -> None:
    """Raise `ConfigError` for duplicate ids, unknown or self dependencies, and waiting cycles."""
    seen: dict[str, int] = {}
    for i, run in enumerate(test_runs):
        if run.id in seen:
            raise ConfigError(
                f"duplicate test id {run.id!r} (also Tests[{seen[run.id]}])", field=f"Tests[{i}].id"
            )
        seen[run.id] = i
    for i, run in enumerate(test_runs):
        for j, dep in enumerate(run.dependencies):
            field = f"Tests[{i}].dependencies[{j}].id"
            if dep.id == run.id:
                raise ConfigError(f"test {run.id!r} depends on itself", field=field)
            if dep.id not in seen:
                raise ConfigError(
                    f"unknown dependency id {dep.id!r}{did_you_mean(dep.id, seen)}; "
                    f"test ids in this scenario: {', '.join(seen)}",
                    field=field,
                )
    cycle = find_cycle(test_runs)
    if cycle:
        raise ConfigError(
            "dependency cycle: " + " -> ".join(cycle) + " (these tests would wait for each other forever)",
            field=f"Tests[{seen[cycle[0]]}].dependencies",
        )


def find_cycle(test_runs: Sequence[TestRun]) -> list[str] | None:
    """The first cycle of waiting edges as ``[a, b, ..., a]``, or ``None``."""
    edges = {run.id: [d.id for d in run.dependencies if d.type in WAITING_TYPES] for run in test_runs}
    color: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        color[node] = 1
        path.append(node)
        for nxt in edges.get(node, ()):
            if color.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in color:
                found = visit(nxt)
                if found:
                    return found
        path.pop()
        color[node] = 2
        return None

    for run in test_runs:
        if run.id not in color:
            found = visit(run.id)
            if found:
                return found
    return None


def run_order(test_runs: Sequence[TestRun]) -> list[str]:
    """Test run ids with each after the runs it waits for (``start_post_*``), else in scenario order."""
    order: list[str] = []
    pending = list(test_runs)
    while pending:
        ready = next(
            (
                run
                for run in pending
                if all(d.id in order for d in run.dependencies if d.type in WAITING_TYPES)
            ),
            None,
        )
        if ready is None:
            raise ConfigError("dependency cycle: " + ", ".join(run.id for run in pending))
        order.append(ready.id)
        pending.remove(ready)
    return order
