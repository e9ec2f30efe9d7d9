"""cloudai_nb: CloudAI benchmark scenarios from Jupyter and the shell.

``import cloudai_nb`` is kept cheap: the public API is imported on first use.
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
