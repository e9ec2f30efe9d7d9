"""System backends (standalone, Slurm): the only layer that starts processes."""

from __future__ import annotations


def register_builtins() -> None:
    """Register the backends, command builders and installers that ship with cloudai_nb."""
