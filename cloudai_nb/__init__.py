"""cloudai_nb: CloudAI benchmark scenarios from Jupyter and the shell.

>>> import cloudai_nb
>>> run = cloudai_nb.run("scenario.toml", "system.toml", tests_dir="tests/")   # doctest: +SKIP
>>> run.wait().status()                                                       # doctest: +SKIP

In a notebook: ``%load_ext cloudai_nb``. ``import cloudai_nb`` is kept cheap: the API (pydantic,
pandas) is imported on first use.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudai_nb._version import __version__

if TYPE_CHECKING:
    from cloudai_nb.api import Run, compare, load_run, results, run, runs
    from cloudai_nb.notebook import form

__all__ = [
    "Run",
    "__version__",
    "compare",
    "form",
    "load_ipython_extension",
    "load_run",
    "results",
    "run",
    "runs",
    "unload_ipython_extension",
]

_LAZY = {"Run", "compare", "load_run", "results", "run", "runs"}


def __getattr__(name: str) -> Any:
    if name == "form":
        from cloudai_nb.notebook import form

        return form
    if name in _LAZY:
        import cloudai_nb.api

        return getattr(cloudai_nb.api, name)
    raise AttributeError(f"module 'cloudai_nb' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext cloudai_nb``: the ``%cloudai_*`` magics and the live view of runs."""
    from cloudai_nb.notebook import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython: Any) -> None:
    from cloudai_nb.notebook import unload_ipython_extension as unload

    unload(ipython)
