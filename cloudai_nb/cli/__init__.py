"""The ``cloudai-nb`` command: CloudAI's subcommands and flags over the same core as the notebook."""

from __future__ import annotations

from cloudai_nb.cli.main import main

__all__ = ["main"]
