"""Results as DataFrames: one run, several runs side by side, comparisons and the best sweep step."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudai_nb.core.errors import CloudAINbError, did_you_mean
from cloudai_nb.core.models import JobState

if TYPE_CHECKING:
    import pandas as pd

    from cloudai_nb.api.run import Run

CONTEXT = ["test_id", "iteration", "step"]
TAIL = ["metric", "value", "unit", "workload", "state", "job_id"]


def results_frame(run: Run) -> pd.DataFrame:
    """Tidy results of one run (see `Run.results`)."""
    import pandas as pd

    scenario_run = run.scenario_run
    rows: list[dict[str, Any]] = []
    jobs = run.jobs
    params = sorted({name for job in jobs for name in job.params})
    keys: dict[str, None] = {}  # the parsers' own key columns, in order of appearance
    for job in jobs:
        # a cancelled job measured only part of what it was asked to; a skipped one nothing
        ended_early = (JobState.SKIPPED, JobState.DRY_RUN, JobState.CANCELLED)
        if not job.is_done or job.state in ended_early or job._test_run is None:
            continue
        test = job.test_run.test
        parser = scenario_run.parser_for(job)
        if parser is None:
            continue
        context: dict[str, Any] = {"test_id": job.test_id, "iteration": job.iteration, "step": job.step}
        context.update({name: job.params.get(name) for name in params})
        tail = {"workload": test.test_template_name, "state": job.state.value, "job_id": job.job_id}
        for row in parser.parse(test, job.output_path, job):
            for key in row:
                if key not in ("metric", "value", "unit"):
                    keys.setdefault(key)
            rows.append({**context, **row, **tail})
    columns = [*CONTEXT, *params, *keys, *TAIL]
    frame = pd.DataFrame.from_records(rows, columns=columns)
    frame["step"] = frame["step"].astype("Int64")
    frame["value"] = pd.to_numeric(frame["value"], errors="coerce")
    return frame


def widen(frame: pd.DataFrame) -> pd.DataFrame:
    """One row per job and key (e.g. message size), one column per metric."""
    index = [c for c in frame.columns if c not in ("metric", "value", "unit", "state")]
    if frame.empty:
        return frame.drop(columns=["metric", "value", "unit"])
    wide = frame.pivot_table(
        index=index, columns="metric", values="value", aggfunc="first", dropna=False, observed=True
    )
    wide = wide.dropna(how="all").reset_index()
    wide.columns.name = None
    for column in ("size_b", "count"):  # whole numbers, even where a row (an average) has none
        if column in wide.columns:
            wide[column] = wide[column].astype("Int64")
    return wide


def _as_run(item: Any) -> Run:
    from cloudai_nb.api.run import Run
    from cloudai_nb.api.runs import load_run

    if isinstance(item, Run):
        return item
    if isinstance(item, str | Path):
        return load_run(item, attach=False)
    raise CloudAINbError(f"expected a Run or a run directory, got {type(item).__name__}")


def results(runs: Iterable[Any]) -> pd.DataFrame:
    """The results of several runs (Run objects or run directories), with a ``run`` column."""
    import pandas as pd

    frames = []
    for item in runs:
        run = _as_run(item)
        frame = run.results()
        frame.insert(0, "run", run.path.name)
        frames.append(frame)
    if not frames:
        raise CloudAINbError("no runs given")
    return pd.concat(frames, ignore_index=True)


def compare(baseline: Any, candidate: Any, metric: str | None = None) -> pd.DataFrame:
    """Per-parameter table of the mean of ``metric`` in both runs and their ratio (candidate / baseline).

    Rows match on the test id, sweep parameters and the parsers' keys (e.g. message size);
    iterations are averaged.
    """
    base, cand = _as_run(baseline).results(), _as_run(candidate).results()
    if metric is not None:
        known = sorted(set(base["metric"]) | set(cand["metric"]))
        if metric not in known:
            raise CloudAINbError(
                f"no metric {metric!r}{did_you_mean(metric, known)}; the runs have: {', '.join(known)}"
            )
        base, cand = base[base["metric"] == metric], cand[cand["metric"] == metric]
    ignore = {"iteration", "step", "value", "state", "job_id", "workload"}
    keys = [c for c in base.columns if c not in ignore and c in cand.columns and base[c].notna().any()]
    left = base.groupby(keys, dropna=False, observed=True)["value"].mean().rename("baseline")
    right = cand.groupby(keys, dropna=False, observed=True)["value"].mean().rename("candidate")
    table = left.to_frame().join(right, how="inner").reset_index()
    table["ratio"] = table["candidate"] / table["baseline"]
    return table


@dataclass(frozen=True)
class Best:
    """The best step of a sweep: where it is, its value, and its test definition as TOML."""

    test_id: str
    step: int | None
    params: dict[str, Any]
    metric: str
    value: float
    toml: str

    def _repr_markdown_(self) -> str:
        return f"**{self.test_id}** step {self.step} {self.params}: {self.metric} = {self.value:g}\n\n```toml\n{self.toml}```"


def best(run: Run, metric: str, *, maximize: bool = True) -> Best:
    import tomli_w

    frame = run.results()
    chosen = frame[frame["metric"] == metric]
    if chosen.empty:
        known = sorted(set(frame["metric"]))
        raise CloudAINbError(
            f"no values of {metric!r}{did_you_mean(metric, known)}; the run has: {', '.join(known) or 'none'}"
        )
    means = chosen.groupby(["test_id", "step"], dropna=False)["value"].mean()
    key = means.idxmax() if maximize else means.idxmin()
    test_id, step = key
    step_value = None if step is None or step != step else int(step)
    job = next(j for j in run.jobs if j.test_id == test_id and j.step == step_value)
    return Best(
        test_id,
        step_value,
        dict(job.params),
        metric,
        float(means[key]),
        tomli_w.dumps(job.test_run.test.toml_dict()),
    )
