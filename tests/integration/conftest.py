"""Fixtures of the integration tests (helpers live in integration_helpers.py)."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest
from integration_helpers import pgrep


@pytest.fixture
def reaper() -> Iterator[list[str]]:
    """Markers (pgrep -f patterns) of processes a test starts; whatever still matches is killed after."""
    markers: list[str] = []
    yield markers
    for marker in markers:
        for pid in pgrep(marker):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
