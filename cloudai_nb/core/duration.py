"""Slurm time limits (``--time``) parsed to seconds and formatted back."""

from __future__ import annotations

import re

_FORMATS = (
    # days-hours[:minutes[:seconds]]
    re.compile(r"^(?P<d>\d+)-(?P<h>\d+)(?::(?P<m>\d+)(?::(?P<s>\d+))?)?$"),
    # hours:minutes:seconds
    re.compile(r"^(?P<h>\d+):(?P<m>\d+):(?P<s>\d+)$"),
    # minutes:seconds
    re.compile(r"^(?P<m>\d+):(?P<s>\d+)$"),
    # minutes
    re.compile(r"^(?P<m>\d+)$"),
)

TIME_LIMIT_FORMS = "M, M:S, H:M:S, D-H, D-H:M or D-H:M:S"


def parse_time_limit(text: str) -> int:
    """Seconds in a Slurm time limit such as ``"30"`` (minutes), ``"1:30:00"`` or ``"2-00:00:00"``.

    >>> parse_time_limit("1:30:00")
    5400
    """
    value = text.strip()
    for pattern in _FORMATS:
        match = pattern.match(value)
        if match:
            parts = {k: int(v) for k, v in match.groupdict().items() if v is not None}
            return ((parts.get("d", 0) * 24 + parts.get("h", 0)) * 60 + parts.get("m", 0)) * 60 + parts.get(
                "s", 0
            )
    raise ValueError(f"time limit {text!r} is not a Slurm time ({TIME_LIMIT_FORMS})")


def format_time_limit(seconds: int) -> str:
    """``D-HH:MM:SS`` (or ``HH:MM:SS`` under a day), the form Slurm prints."""
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock
