"""The public Python API, used by the notebook magics and the CLI alike.

>>> import cloudai_nb.api as api
>>> run = api.run("my_scenario.toml", "my_system.toml", tests_dir="tests/")   # doctest: +SKIP
>>> run.wait().status()                                                      # doctest: +SKIP
"""

from __future__ import annotations

from cloudai_nb.api.analysis import Best, compare, results
from cloudai_nb.api.run import Run
from cloudai_nb.api.runs import default_system, load_run, resolve_scenario, resolve_system, run, runs

__all__ = [
    "Best",
    "Run",
    "compare",
    "default_system",
    "load_run",
    "resolve_scenario",
    "resolve_system",
    "results",
    "run",
    "runs",
]
