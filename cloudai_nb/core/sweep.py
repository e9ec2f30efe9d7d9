"""Sweeps (CloudAI's DSE): a test run with list values becomes one step per combination."""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from cloudai_nb.core.models import TestDefinition, TestRun

NUM_NODES = "num_nodes"


@dataclass(frozen=True)
class Step:
    """One concrete job's worth of a test run: fixed arguments and node count."""

    index: int
    test: TestDefinition
    num_nodes: int
    params: dict[str, Any] = field(default_factory=dict)


def dimensions(run: TestRun) -> dict[str, list[Any]]:
    """Sweep dimensions of ``run`` in a stable order: cmd_args paths, env vars, then ``num_nodes``."""
    dims = dict(run.test.sweep)
    if isinstance(run.num_nodes, list):
        dims[NUM_NODES] = list(run.num_nodes)
    return dims


def is_sweep(run: TestRun) -> bool:
    return bool(dimensions(run))


def expand(run: TestRun) -> list[Step]:
    """Every combination of the sweep dimensions, the last dimension varying fastest.

    A run without list values has exactly one step with no parameters.
    """
    dims = dimensions(run)
    if not dims:
        assert isinstance(run.num_nodes, int)
        return [Step(0, run.test, run.num_nodes)]
    names = list(dims)
    steps = []
    for index, values in enumerate(itertools.product(*(dims[n] for n in names))):
        params = dict(zip(names, values, strict=True))
        nodes = params.get(NUM_NODES, run.num_nodes)
        test_params = {k: v for k, v in params.items() if k != NUM_NODES}
        steps.append(Step(index, run.test.with_params(test_params), int(nodes), params))
    return steps


def count(run: TestRun) -> int:
    """Number of steps, without building them."""
    total = 1
    for values in dimensions(run).values():
        total *= len(values)
    return total
