"""`python -m cloudai_nb` as a user runs it: real processes, exit codes, printed output."""

from __future__ import annotations

import json

from integration_helpers import SCENARIOS, TESTS_DIR, cli, find_run_dir, ledger_jobs, summary, write_scenario

QUICK = ("--test-scenario", SCENARIOS / "quick.toml", "--tests-dir", TESTS_DIR)

STATUS_COLUMNS = [
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


def test_run_quick_scenario(tmp_path):
    done = cli("run", *QUICK, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    out = done.stdout
    assert "test_id" in out and "state" in out  # the table's header
    table = out[out.index("test_id") :]
    assert table.count("COMPLETED") >= 3
    assert "hello" in table and "nap" in table
    assert "quick: COMPLETED" in out
    run_dir = find_run_dir(tmp_path / "out")
    assert summary(run_dir)["state"] == "COMPLETED"
    assert set(ledger_jobs(run_dir)) == {"hello/0", "nap/0/0", "nap/0/1"}


def test_run_default_output_dir_is_results_in_cwd(tmp_path):
    done = cli("run", "-q", *QUICK, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = find_run_dir(tmp_path / "results")
    assert summary(run_dir)["state"] == "COMPLETED"


def test_dry_run_quick_scenario(tmp_path):
    done = cli("dry-run", *QUICK, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    run_dir = find_run_dir(tmp_path / "out")
    jobs = ledger_jobs(run_dir)
    assert {job["state"] for job in jobs.values()} == {"DRY_RUN"}
    assert summary(run_dir)["state"] == "DRY_RUN"
    for key in jobs:
        folder = run_dir / key
        assert (folder / "command.sh").is_file()
        assert (folder / "test-run.toml").is_file()
        assert not (folder / "stdout.txt").exists()


def test_status_json(tmp_path):
    assert cli("run", "-q", *QUICK, "--output-dir", tmp_path / "out", cwd=tmp_path).returncode == 0
    run_dir = find_run_dir(tmp_path / "out")
    for target in (run_dir, tmp_path / "out"):  # a run directory, or an output dir (its newest run)
        done = cli("status", "--json", target, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)
        assert isinstance(rows, list)
        assert len(rows) == 3
        for row in rows:
            missing = [c for c in STATUS_COLUMNS if c not in row]
            assert not missing, missing
            assert row["state"] == "COMPLETED"
        assert {row["test_id"] for row in rows} == {"hello", "nap"}


def test_status_table(tmp_path):
    assert cli("run", "-q", *QUICK, "--output-dir", tmp_path / "out", cwd=tmp_path).returncode == 0
    done = cli("status", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "COMPLETED" in done.stdout
    assert "quick: COMPLETED" in done.stdout


def test_bad_scenario_path(tmp_path):
    done = cli(
        "run", "--test-scenario", tmp_path / "nope.toml", "--output-dir", tmp_path / "out", cwd=tmp_path
    )
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert "nope.toml" in lines[0]
    assert not (tmp_path / "out").exists()


def test_status_of_missing_run(tmp_path):
    done = cli("status", tmp_path / "nothing-here", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_failing_scenario_exits_1(tmp_path):
    scenario = write_scenario(
        tmp_path,
        """
name = "failing"

[[Tests]]
id = "bad"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "exit 3"
""",
    )
    done = cli("run", "--test-scenario", scenario, "--output-dir", tmp_path / "out", cwd=tmp_path)
    assert done.returncode == 1, (done.stdout, done.stderr)
    assert "Traceback" not in done.stderr
    assert "FAILED" in done.stdout
    run_dir = find_run_dir(tmp_path / "out")
    assert ledger_jobs(run_dir)["bad/0"]["exit_code"] == 3
    assert summary(run_dir)["state"] == "FAILED"


def test_status_of_dry_run(tmp_path):
    """`status` of a run whose jobs never started (no elapsed time anywhere) prints its table."""
    assert cli("dry-run", "-q", *QUICK, "--output-dir", tmp_path / "out", cwd=tmp_path).returncode in (0, 1)
    run_dir = find_run_dir(tmp_path / "out")
    done = cli("status", run_dir, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    assert "DRY_RUN" in done.stdout
