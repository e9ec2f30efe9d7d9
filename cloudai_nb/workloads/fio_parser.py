"""fio's ``--output-format=json`` report, parsed into rows per fio job and direction (pure)."""

from __future__ import annotations

import json
from typing import Any

Row = dict[str, Any]

PERCENTILES = {"50.000000": "p50", "90.000000": "p90", "99.000000": "p99", "99.900000": "p99.9"}


def extract_json(text: str) -> dict[str, Any] | None:
    """The JSON document in fio's stdout (fio may print notes before it); None if there is none."""
    start = text.find("{")
    while start != -1:
        try:
            data, _ = json.JSONDecoder().raw_decode(text[start:])
        except json.JSONDecodeError:
            start = text.find("{", start + 1)
            continue
        return data if isinstance(data, dict) and "jobs" in data else None
    return None


def parse(text: str) -> tuple[list[Row], str | None]:
    """Rows of measured values, and the reason the output is unusable (None when it is fine)."""
    data = extract_json(text)
    if data is None:
        return [], "no fio JSON report in stdout (did fio run with --output-format=json?)"
    rows: list[Row] = []
    for job in data.get("jobs", []):
        name = str(job.get("jobname", ""))
        if job.get("error"):
            return rows, f"fio job {name!r} failed with error {job['error']}"
        for direction in ("read", "write", "trim"):
            stats = job.get(direction) or {}
            if not stats.get("io_bytes"):
                continue
            base = {"fio_job": name, "direction": direction}
            rows.append({**base, "metric": "bandwidth", "value": stats.get("bw", 0) / 1024, "unit": "MiB/s"})
            rows.append({**base, "metric": "iops", "value": float(stats.get("iops", 0.0)), "unit": "IO/s"})
            lat = stats.get("lat_ns") or {}
            if "mean" in lat:
                rows.append({**base, "metric": "lat_mean", "value": lat["mean"] / 1000, "unit": "us"})
            percentiles = (stats.get("clat_ns") or {}).get("percentile") or {}
            for key, label in PERCENTILES.items():
                if key in percentiles:
                    rows.append(
                        {**base, "metric": f"clat_{label}", "value": percentiles[key] / 1000, "unit": "us"}
                    )
    if not rows:
        return rows, "fio reported no I/O"
    return rows, None
