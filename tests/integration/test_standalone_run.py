"""Real scenarios on the standalone system: real processes, real timing, real ledgers."""

from __future__ import annotations

import itertools
import time
from pathlib import Path

import pandas as pd
import pytest
from integration_helpers import (
    SCENARIOS,
    TESTS_DIR,
    pgrep,
    standalone,
    summary,
    ts,
    write_scenario,
)

from cloudai_nb import api

ARCH_COLUMNS = [
    "test_id",
    "iteration",
    "step",
    "job_id",
    "state",
    "exit_code",
    "nodes",
    "submitted",
    "started",
    "ended",
    "elapsed_s",
    "output_path",
]


def by_key(run: api.Run) -> dict:
    return {job.key: job for job in run.jobs}


def start(tmp_path: Path, text: str, **kwargs) -> api.Run:
    path = write_scenario(tmp_path, text)
    return api.run(path, standalone(tmp_path), output_path=tmp_path / "out", **kwargs)


# -- the shipped sleep scenario ------------------------------------------------------------------


@pytest.mark.slow
def test_sleep_scenario_timing_and_dependencies(tmp_path):
    t0 = time.monotonic()
    run = api.run(SCENARIOS / "sleep.toml", tests_dir=TESTS_DIR, output_path=tmp_path)
    run.wait(timeout=60)
    measured = time.monotonic() - t0
    assert run.state == "COMPLETED", run.status()[["test_id", "state", "reason"]]

    info = summary(run.path)
    assert info is not None and info["state"] == "COMPLETED"
    makespan = (ts(info["ended"]) - ts(info["started"])).total_seconds()
    assert abs(makespan - 15.0) < 0.5, makespan
    assert abs(measured - 15.0) < 1.0, measured

    jobs = by_key(run)
    t1, t2, t3, t4 = (jobs[f"Tests.{n}/0"] for n in (1, 2, 3, 4))
    assert [t1.state.value, t2.state.value, t3.state.value] == ["COMPLETED"] * 3
    assert t4.state.value == "CANCELLED"
    assert (t4.reason or "").startswith("cancelled by dependency"), t4.reason
    assert t3.started >= t1.ended
    assert abs((t2.started - t1.started).total_seconds()) <= 0.3
    # the end_post_comp cancel comes when Tests.1 ends, not when sleep_20 would have
    assert abs((t4.ended - t1.ended).total_seconds()) < 1.0


# -- iterations ----------------------------------------------------------------------------------


ITERATIONS = """
name = "iters"

[[Tests]]
id = "loop"
test_template_name = "BashCmd"
iterations = 3
  [Tests.cmd_args]
  cmd = "echo iteration=$CLOUDAI_NB_ITERATION; sleep 0.1"

[[Tests]]
id = "after"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "echo after"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "loop"
"""


def test_iterations_run_one_after_another(tmp_path):
    run = start(tmp_path, ITERATIONS).wait(timeout=30)
    assert run.state == "COMPLETED"
    jobs = by_key(run)
    for n in range(3):
        folder = run.path / "loop" / str(n)
        for name in ("stdout.txt", "stderr.txt", "test-run.toml"):
            assert (folder / name).is_file(), folder / name
        assert (folder / "stdout.txt").read_text().strip() == f"iteration={n}"
        assert jobs[f"loop/{n}"].iteration == n
    for n in (1, 2):
        assert jobs[f"loop/{n}"].started >= jobs[f"loop/{n - 1}"].ended
    assert jobs["after/0"].started >= jobs["loop/2"].ended
    assert (run.path / "after" / "0" / "stdout.txt").read_text().strip() == "after"


# -- sweep with a dependency ---------------------------------------------------------------------


SWEEP = """
name = "sweep"

[[Tests]]
id = "nap"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = [0.1, 0.2]

[[Tests]]
id = "then"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "echo then"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "nap"
"""


def test_sweep_then_dependent(tmp_path):
    run = start(tmp_path, SWEEP).wait(timeout=30)
    assert run.state == "COMPLETED"
    for step in (0, 1):
        folder = run.path / "nap" / "0" / str(step)
        assert (folder / "stdout.txt").is_file()
        assert (folder / "test-run.toml").is_file()
    jobs = by_key(run)
    assert jobs["then/0"].started >= jobs["nap/0/0"].ended
    assert jobs["then/0"].started >= jobs["nap/0/1"].ended
    assert jobs["nap/0/1"].started >= jobs["nap/0/0"].ended
    frame = run.status()
    assert "seconds" in frame.columns
    naps = frame[frame.test_id == "nap"].sort_values("step")
    assert list(naps["seconds"]) == [0.1, 0.2]
    assert list(naps["step"]) == [0, 1]


# -- job_status_check ----------------------------------------------------------------------------


def status_check_scenario(check: bool, seconds: float) -> str:
    return f"""
name = "check"
job_status_check = {"true" if check else "false"}

[[Tests]]
id = "long"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = {seconds}

[[Tests]]
id = "bad"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "exit 3"

[[Tests]]
id = "dependent"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "echo dependent"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "long"
"""


def test_job_status_check_true_stops_everything(tmp_path, reaper):
    reaper.append("sleep 20.417")
    t0 = time.monotonic()
    run = start(tmp_path, status_check_scenario(True, 20.417)).wait(timeout=30)
    elapsed = time.monotonic() - t0
    assert elapsed < 3.0, elapsed
    jobs = by_key(run)
    assert jobs["bad/0"].state.value == "FAILED"
    assert jobs["bad/0"].exit_code == 3
    assert jobs["long/0"].state.value == "CANCELLED"
    assert jobs["dependent/0"].state.value == "SKIPPED"
    assert run.state == "FAILED"
    info = summary(run.path)
    assert info["state"] == "FAILED"
    assert "bad/0" in info["failed"]
    assert "long/0" not in info["failed"]  # cancelled because the scenario stopped: not a failure itself
    assert pgrep("sleep 20.417") == []


def test_job_status_check_false_goes_on(tmp_path):
    run = start(tmp_path, status_check_scenario(False, 0.4)).wait(timeout=30)
    jobs = by_key(run)
    assert jobs["bad/0"].state.value == "FAILED"
    assert jobs["bad/0"].exit_code == 3
    assert jobs["long/0"].state.value == "COMPLETED"
    assert jobs["dependent/0"].state.value == "COMPLETED"
    assert jobs["dependent/0"].started >= jobs["long/0"].ended
    assert run.state == "FAILED"
    assert summary(run.path)["state"] == "FAILED"


# -- end_post_comp -------------------------------------------------------------------------------


END_POST_COMP = """
name = "ender"

[[Tests]]
id = "short"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = 0.3

[[Tests]]
id = "background"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = 20.593
  [[Tests.dependencies]]
  type = "end_post_comp"
  id = "short"
"""


def test_end_post_comp_cancel_is_not_a_failure(tmp_path, reaper):
    reaper.append("sleep 20.593")
    t0 = time.monotonic()
    run = start(tmp_path, END_POST_COMP).wait(timeout=30)
    assert time.monotonic() - t0 < 3.0
    jobs = by_key(run)
    assert jobs["short/0"].state.value == "COMPLETED"
    assert jobs["background/0"].state.value == "CANCELLED"
    assert jobs["background/0"].reason.startswith("cancelled by dependency")
    assert run.state == "COMPLETED"
    assert summary(run.path)["failed"] == []
    assert pgrep("sleep 20.593") == []


# -- dry run -------------------------------------------------------------------------------------


def test_dry_run_writes_everything_and_spawns_nothing(tmp_path):
    t0 = time.monotonic()
    run = api.run(SCENARIOS / "sleep.toml", tests_dir=TESTS_DIR, output_path=tmp_path, dry_run=True)
    run.wait(timeout=10)
    assert time.monotonic() - t0 < 1.0
    assert run.state == "DRY_RUN"
    states = {job.key: job.state.value for job in run.jobs}
    assert states == {f"Tests.{n}/0": "DRY_RUN" for n in (1, 2, 3, 4)}, run.status()[
        ["test_id", "state", "reason"]
    ]
    for job in run.jobs:
        assert job.job_id is None
        assert (job.output_path / "test-run.toml").is_file(), job.output_path
        assert (job.output_path / "command.sh").is_file(), job.output_path
        assert not (job.output_path / "stdout.txt").exists()  # nothing ran
    assert summary(run.path)["state"] == "DRY_RUN"


# -- status() ------------------------------------------------------------------------------------


def test_status_frame_columns_and_rows(tmp_path):
    run = start(tmp_path, SWEEP).wait(timeout=30)
    frame = run.status()
    columns = list(frame.columns)
    missing = [c for c in ARCH_COLUMNS if c not in columns]
    assert not missing, missing
    assert [c for c in columns if c in ARCH_COLUMNS] == ARCH_COLUMNS  # in the documented order
    assert len(frame) == len(run.jobs) == 3
    assert set(frame["state"]) == {"COMPLETED"}
    assert (frame["elapsed_s"] > 0).all()
    assert all(Path(p).is_dir() for p in frame["output_path"])
    assert pd.api.types.is_datetime64_any_dtype(frame["started"])


def test_load_run_of_finished_run_matches_live_status(tmp_path):
    run = start(tmp_path, ITERATIONS).wait(timeout=30)
    loaded = api.load_run(run.path)
    assert loaded.done
    assert loaded.state == run.state == "COMPLETED"
    pd.testing.assert_frame_equal(loaded.status(), run.status())


def test_load_run_of_failed_run_matches_live_status(tmp_path):
    run = start(tmp_path, status_check_scenario(True, 0.3)).wait(timeout=30)
    loaded = api.load_run(run.path)
    assert loaded.state == run.state == "FAILED"
    pd.testing.assert_frame_equal(loaded.status(), run.status())


def test_runs_lists_every_run(tmp_path):
    first = start(tmp_path, SWEEP).wait(timeout=30)
    second = start(tmp_path, status_check_scenario(True, 0.2)).wait(timeout=30)
    frame = api.runs(tmp_path / "out")
    assert len(frame) == 2
    rows = {row.path: row for row in frame.itertuples()}
    assert rows[str(first.path)].state == "COMPLETED"
    assert rows[str(first.path)].scenario == "sweep"
    assert rows[str(first.path)].jobs == 3
    assert rows[str(second.path)].state == "FAILED"
    assert frame.iloc[0].path == str(second.path)  # newest first


def test_same_system_object_runs_twice_in_one_process(tmp_path):
    """Two runs one after another with the same system (each on its own helper-thread loop)."""
    system = standalone(tmp_path)
    path = write_scenario(tmp_path, SWEEP)
    for _ in range(3):
        run = api.run(path, system, output_path=tmp_path / "out").wait(timeout=30)
        assert run.state == "COMPLETED"


def open_fds() -> list[str]:
    fds = []
    for entry in Path("/proc/self/fd").iterdir():
        try:
            fds.append(str(entry.readlink()))
        except OSError:
            continue
    return fds


def test_finished_runs_leave_no_open_files(tmp_path):
    """A long-lived process (a kernel) runs many scenarios: each finished run closes its ledger."""
    system = standalone(tmp_path)
    path = write_scenario(tmp_path, SWEEP)
    api.run(path, system, output_path=tmp_path / "out").wait(timeout=30)  # warm up (imports, caches)
    before = open_fds()
    for _ in range(5):
        run = api.run(path, system, output_path=tmp_path / "out").wait(timeout=30)
        assert run.state == "COMPLETED"
    leaked = [fd for fd in open_fds() if str(tmp_path) in fd]
    assert leaked == [], leaked
    assert len(open_fds()) <= len(before)


def test_two_runs_in_the_same_second_get_distinct_folders(tmp_path):
    first = start(tmp_path, SWEEP)
    second = start(tmp_path, SWEEP)
    first.wait(timeout=30)
    second.wait(timeout=30)
    assert first.path != second.path
    assert first.state == second.state == "COMPLETED"
    assert len(api.runs(tmp_path / "out")) == 2


SWEEP_ITERATIONS = """
name = "grid"

[[Tests]]
id = "grid"
test_template_name = "BashCmd"
iterations = 2
  [Tests.cmd_args]
  cmd = ["echo a", "echo b"]
"""


def test_sweep_with_iterations_folders_and_rows(tmp_path):
    run = start(tmp_path, SWEEP_ITERATIONS).wait(timeout=30)
    assert run.state == "COMPLETED"
    frame = run.status()
    assert len(frame) == 4
    assert sorted(zip(frame["iteration"], frame["step"], strict=True)) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    for iteration in (0, 1):
        for step, word in ((0, "a"), (1, "b")):
            folder = run.path / "grid" / str(iteration) / str(step)
            assert (folder / "stdout.txt").read_text().strip() == word
    ordered = sorted(run.jobs, key=lambda j: j.started)
    for previous, job in itertools.pairwise(ordered):
        assert job.started >= previous.ended
