"""Default plots of a run's results (matplotlib, imported only here)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cloudai_nb.core.errors import CloudAINbError

if TYPE_CHECKING:
    from cloudai_nb.api.run import Run

DEFAULT_METRIC = {"NcclTest": "busbw_oop", "Fio": "bandwidth", "Sleep": "duration", "BashCmd": "duration"}


def plot_run(run: Run, metric: str | None = None) -> Any:
    """NCCL: bus bandwidth against message size (log x), one line per test and parameter set;
    Fio: bandwidth per fio job; a sweep: the metric against its parameter; else a bar per test."""
    import matplotlib.pyplot as plt

    frame = run.results()
    if frame.empty:
        raise CloudAINbError(f"run {run.path.name} has no results to plot yet")
    workload = str(frame["workload"].iloc[0])
    metric = metric or DEFAULT_METRIC.get(workload) or str(frame["metric"].iloc[0])
    data = frame[frame["metric"] == metric]
    if data.empty:
        raise CloudAINbError(
            f"no values of {metric!r}; the run has: {', '.join(sorted(set(frame['metric'])))}"
        )
    unit = str(data["unit"].iloc[0])
    params = [
        c
        for c in data.columns
        if c not in ("test_id", "iteration", "step", "metric", "value", "unit", "workload", "state", "job_id")
        and data[c].notna().any()
    ]
    figure, axes = plt.subplots(figsize=(7, 4))
    if "size_b" in data.columns and data["size_b"].notna().any():
        series = [c for c in params if c not in ("size_b", "count", "dtype", "redop", "collective", "root")]
        for label, group in data.groupby(["test_id", *series], dropna=False):
            mean = group.groupby("size_b")["value"].mean()
            axes.plot(mean.index, mean.values, marker="o", label=" ".join(str(v) for v in _tuple(label)))
        axes.set_xscale("log", base=2)
        axes.set_xlabel("message size (B)")
    elif params:
        x = params[0]
        for label, group in data.groupby(["test_id"], dropna=False):
            mean = group.groupby(x)["value"].mean()
            axes.plot([str(v) for v in mean.index], mean.values, marker="o", label=str(_tuple(label)[0]))
        axes.set_xlabel(x)
    else:
        mean = data.groupby("test_id")["value"].mean()
        axes.bar(list(mean.index), mean.values)
        axes.set_xlabel("test")
    axes.set_ylabel(f"{metric} ({unit})" if unit else metric)
    axes.set_title(f"{run.name}: {metric}")
    if axes.get_legend_handles_labels()[0]:
        axes.legend()
    figure.tight_layout()
    plt.close(figure)  # returned, not left open in pyplot's state
    return figure


def _tuple(value: Any) -> tuple[Any, ...]:
    return value if isinstance(value, tuple) else (value,)
