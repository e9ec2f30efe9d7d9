"""A measured figure, its target, and the table they print as."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: float | None = None  # the value must stay at or below this
    note: str = ""

    @property
    def holds(self) -> str:
        if self.target is None:
            return ""
        return "yes" if self.value <= self.target else "NO"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "unit", "target", "holds", "note")]
    for f in figures:
        target = "" if f.target is None else f"<= {f.target:g}"
        rows.append(
            (
                f.name,
                f"{f.value:.3g}" if f.value < 1000 else f"{f.value:.0f}",
                f.unit,
                target,
                f.holds,
                f.note,
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
