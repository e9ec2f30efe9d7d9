"""System backends (standalone, Slurm): the only layer that starts processes."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cloudai_nb.core.system import System
    from cloudai_nb.systems.base import Backend


def backend_for(system: System) -> Backend:
    """A new backend for ``system``, chosen by the system's type (subclass-aware)."""
    from cloudai_nb.core.registry import backends

    factory = backends.get(type(system))
    backend: Backend = factory(system)
    return backend


def register_builtins() -> None:
    """Register the backends that ship with cloudai_nb."""
    from cloudai_nb.core.registry import backends
    from cloudai_nb.core.system import SlurmSystem, StandaloneSystem
    from cloudai_nb.systems import installers
    from cloudai_nb.systems.slurm.backend import SlurmBackend
    from cloudai_nb.systems.standalone.backend import StandaloneBackend

    backends.register(StandaloneSystem, StandaloneBackend)
    backends.register(SlurmSystem, SlurmBackend)
    installers.register()
