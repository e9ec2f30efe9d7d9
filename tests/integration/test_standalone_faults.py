"""Faults on the standalone system: outside kills, missing commands, bad folders, signals, takeovers.

Every test ends with a clear state in the ledger and no process left behind: each command carries a
unique marker (``sleep 41.37``) that ``pgrep -f`` looks for.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from integration_helpers import (
    cli,
    cli_popen,
    find_run_dir,
    ledger_jobs,
    pgrep,
    standalone,
    summary,
    ts,
    wait_until,
    write_scenario,
)

from cloudai_nb import api
from cloudai_nb.core.errors import CloudAINbError, SubmissionError


def by_key(run: api.Run) -> dict:
    return {job.key: job for job in run.jobs}


def single_sleep(seconds: str, name: str = "single", extra: str = "") -> str:
    return f"""
name = "{name}"

[[Tests]]
id = "victim"
test_template_name = "Sleep"
{extra}
  [Tests.cmd_args]
  seconds = {seconds}
"""


def start(tmp_path: Path, text: str) -> api.Run:
    return api.run(write_scenario(tmp_path, text), standalone(tmp_path), output_path=tmp_path / "out")


def finish(proc: subprocess.Popen) -> None:
    """Never leave a child (or its pipes) behind, whatever the test found."""
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


def running(run_dir: Path, *keys: str) -> bool:
    jobs = ledger_jobs(run_dir)
    return all(jobs.get(key, {}).get("state") == "RUNNING" for key in keys)


# -- killed from outside -------------------------------------------------------------------------


def test_payload_killed_with_sigkill(tmp_path, reaper):
    marker = "sleep 7.123"
    reaper.append(marker)
    run = start(tmp_path, single_sleep("7.123"))
    payload = wait_until(lambda: pgrep(f"^{marker}$"), 5)
    assert len(payload) == 1
    os.kill(payload[0], signal.SIGKILL)
    run.wait(timeout=10)
    job = by_key(run)["victim/0"]
    assert job.state.value == "FAILED"
    assert job.exit_code == 137
    assert "signal 9" in (job.reason or ""), job.reason
    assert ledger_jobs(run.path)["victim/0"]["state"] == "FAILED"
    assert summary(run.path)["state"] == "FAILED"
    assert pgrep(marker) == []


def test_whole_process_group_killed_with_sigkill(tmp_path, reaper):
    marker = "sleep 7.124"
    reaper.append(marker)
    run = start(tmp_path, single_sleep("7.124"))
    wait_until(lambda: pgrep(f"^{marker}$"), 5)
    job = by_key(run)["victim/0"]
    os.killpg(int(job.job_id), signal.SIGKILL)
    run.wait(timeout=10)
    job = by_key(run)["victim/0"]
    assert job.state.value == "FAILED"
    assert job.exit_code == 137
    assert "signal 9" in (job.reason or ""), job.reason
    assert pgrep(marker) == []


def test_wrapper_killed_with_sigkill_leaves_no_orphan(tmp_path, reaper):
    marker = "sleep 31.7; true"
    reaper.append("sleep 31.7")
    text = """
name = "wrapper"

[[Tests]]
id = "victim"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "sleep 31.7; true"
"""
    t0 = time.monotonic()
    run = start(tmp_path, text)
    wait_until(lambda: pgrep("^sleep 31.7$"), 5)
    job_id = int(wait_until(lambda: by_key(run)["victim/0"].job_id, 5))
    os.kill(job_id, signal.SIGKILL)  # the wrapper (the job's pid), not its children
    run.wait(timeout=10)
    assert time.monotonic() - t0 < 5
    job = by_key(run)["victim/0"]
    assert job.state.value == "FAILED"
    assert job.exit_code == 137
    assert "signal 9" in (job.reason or "")
    wait_until(lambda: pgrep("sleep 31.7") == [], 2)
    assert pgrep(marker) == []


# -- command not found ---------------------------------------------------------------------------


def test_command_not_found(tmp_path):
    text = """
name = "missing"

[[Tests]]
id = "nocmd"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "definitely-not-a-command-xyz"
"""
    run = start(tmp_path, text).wait(timeout=10)
    job = by_key(run)["nocmd/0"]
    assert job.state.value == "FAILED"
    assert job.exit_code == 127
    assert "command not found" in (job.reason or "")
    stderr = (job.output_path / "stderr.txt").read_text()
    assert "definitely-not-a-command-xyz" in stderr
    assert "not found" in stderr
    assert run.state == "FAILED"


# -- output folder that cannot be made -----------------------------------------------------------


def test_output_path_under_a_regular_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder\n")
    target = blocker / "results"
    scenario = write_scenario(tmp_path, single_sleep("5.917", "blocked"))
    with pytest.raises(SubmissionError) as caught:
        api.run(scenario, standalone(tmp_path), output_path=target)
    assert str(blocker) in str(caught.value)
    assert isinstance(caught.value, CloudAINbError)
    assert "\n" not in str(caught.value)
    time.sleep(0.2)
    assert pgrep("sleep 5.917") == []


def test_cli_output_dir_under_a_regular_file(tmp_path):
    blocker = tmp_path / "blocker"
    blocker.write_text("x\n")
    scenario = write_scenario(tmp_path, single_sleep("5.918", "blocked"))
    done = cli("run", "--test-scenario", scenario, "--output-dir", blocker / "out", cwd=tmp_path)
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert str(blocker) in done.stderr
    assert pgrep("sleep 5.918") == []


# -- signals to the CLI --------------------------------------------------------------------------


def three_runs(base: str, name: str) -> str:
    return f"""
name = "{name}"

[[Tests]]
id = "first"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = {base}1

[[Tests]]
id = "beside"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = {base}2
  [[Tests.dependencies]]
  type = "start_post_init"
  id = "first"

[[Tests]]
id = "later"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = {base}3
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "first"
"""


@pytest.mark.parametrize(("sig", "base"), [(signal.SIGINT, "41.3"), (signal.SIGTERM, "42.3")])
def test_cli_interrupted(tmp_path, reaper, sig, base):
    reaper.append(f"sleep {base}")
    scenario = write_scenario(tmp_path, three_runs(base, f"interrupt_{sig.name.lower()}"))
    proc = cli_popen("run", "--test-scenario", scenario, "--output-dir", tmp_path / "out", cwd=tmp_path)
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, "first/0", "beside/0"), 15)
        t0 = time.monotonic()
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - t0 < 5
    finally:
        finish(proc)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    jobs = ledger_jobs(run_dir)
    assert jobs["first/0"]["state"] == "CANCELLED"
    assert jobs["beside/0"]["state"] == "CANCELLED"
    assert jobs["later/0"]["state"] == "SKIPPED"
    info = summary(run_dir)
    assert info is not None and info["state"] == "CANCELLED"
    assert pgrep(f"sleep {base}") == []


# -- a second process looks at a live run --------------------------------------------------------


def test_cli_status_of_live_run_does_not_take_it_over(tmp_path, reaper):
    reaper.append("sleep 2.513")
    scenario = write_scenario(tmp_path, single_sleep("2.513", "watched"))
    proc = cli_popen("run", "--test-scenario", scenario, "--output-dir", tmp_path / "out", cwd=tmp_path)
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, "victim/0"), 10)
        shown = cli("status", run_dir, cwd=tmp_path, timeout=30)
        assert shown.returncode == 0, shown.stderr
        assert "RUNNING" in shown.stdout
        assert "victim" in shown.stdout
        as_json = cli("status", "--json", run_dir, cwd=tmp_path, timeout=30)
        assert as_json.returncode == 0, as_json.stderr
        rows = json.loads(as_json.stdout)
        assert isinstance(rows, list) and len(rows) == 1
        assert rows[0]["state"] == "RUNNING"
        assert rows[0]["test_id"] == "victim"
        assert summary(run_dir) is None  # still live: nobody finished it behind the driver's back
        out, err = proc.communicate(timeout=20)
    finally:
        finish(proc)
    assert proc.returncode == 0, (out, err)
    info = summary(run_dir)
    assert info["state"] == "COMPLETED"
    assert ledger_jobs(run_dir)["victim/0"]["state"] == "COMPLETED"
    header = json.loads((run_dir / "run.json").read_text())
    assert header["pid"] == proc.pid


def test_cli_cancel_of_live_run(tmp_path, reaper):
    reaper.append("sleep 43.3")
    scenario = write_scenario(tmp_path, three_runs("43.3", "cancelled"))
    proc = cli_popen("run", "--test-scenario", scenario, "--output-dir", tmp_path / "out", cwd=tmp_path)
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, "first/0", "beside/0"), 15)
        t0 = time.monotonic()
        done = cli("cancel", run_dir, cwd=tmp_path, timeout=60)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - t0 < 10
        assert "CANCELLED" in done.stdout
        _out, err = proc.communicate(timeout=15)
    finally:
        finish(proc)
    assert proc.returncode != 0  # the run did not complete
    assert "Traceback" not in err
    info = summary(run_dir)
    assert info["state"] == "CANCELLED"
    jobs = ledger_jobs(run_dir)
    assert jobs["first/0"]["state"] == "CANCELLED"
    assert jobs["beside/0"]["state"] == "CANCELLED"
    assert jobs["later/0"]["state"] == "SKIPPED"
    assert pgrep("sleep 43.3") == []


# -- the driving process dies --------------------------------------------------------------------


TAKEOVER = """
name = "takeover"

[[Tests]]
id = "first"
test_template_name = "Sleep"
  [Tests.cmd_args]
  seconds = 2.731

[[Tests]]
id = "next"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "echo next; sleep 0.2731"
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "first"
"""

DRIVER = """
import sys
from pathlib import Path
from cloudai_nb import api
from cloudai_nb.core.system import StandaloneSystem

tmp = Path(sys.argv[1])
system = StandaloneSystem(name="standalone", install_path=tmp / "install", output_path=tmp / "out",
                          monitor_interval=0.2)
api.run(tmp / "scenario.toml", system, output_path=tmp / "out").wait()
"""


def test_driver_killed_then_load_run_takes_over(tmp_path, reaper):
    reaper.append("sleep 2.731")
    reaper.append("sleep 0.2731")
    write_scenario(tmp_path, TAKEOVER)
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path)], cwd=tmp_path)
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, "first/0"), 10)
        driver.kill()
        driver.wait(timeout=5)
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    assert driver.returncode == -signal.SIGKILL
    jobs = ledger_jobs(run_dir)
    assert jobs["first/0"]["state"] == "RUNNING"
    assert jobs["next/0"]["state"] == "WAITING"
    assert summary(run_dir) is None
    assert pgrep("^sleep 2.731$")  # the job outlives its driver

    run = api.load_run(run_dir)
    run.wait(timeout=20)
    assert run.state == "COMPLETED", run.status()[["test_id", "state", "reason"]]
    jobs = by_key(run)
    first, nxt = jobs["first/0"], jobs["next/0"]
    assert first.state.value == "COMPLETED"
    assert first.exit_code == 0
    assert nxt.state.value == "COMPLETED"
    assert nxt.started >= first.ended
    assert (run_dir / "next" / "0" / "stdout.txt").read_text().strip() == "next"
    recorded = ledger_jobs(run_dir)
    assert recorded["first/0"]["state"] == "COMPLETED"
    assert recorded["next/0"]["state"] == "COMPLETED"
    assert ts(recorded["next/0"]["started"]) >= ts(recorded["first/0"]["ended"])
    assert summary(run_dir)["state"] == "COMPLETED"
    assert pgrep("sleep 2.731") == []


# -- time limits ---------------------------------------------------------------------------------


def test_time_limit_ends_job_as_timeout(tmp_path, reaper):
    reaper.append("sleep 9.271")
    t0 = time.monotonic()
    run = start(tmp_path, single_sleep("9.271", "limited", extra='time_limit = "0:02"'))
    run.wait(timeout=15)
    elapsed = time.monotonic() - t0
    assert elapsed < 2.5 + 0.5, elapsed
    job = by_key(run)["victim/0"]
    assert job.state.value == "TIMEOUT", (job.state, job.reason)
    assert 1.9 <= job.elapsed_s <= 2.5, job.elapsed_s
    assert ledger_jobs(run.path)["victim/0"]["state"] == "TIMEOUT"
    assert run.state == "FAILED"
    assert pgrep("sleep 9.271") == []


# -- more ways for the driver to go away ---------------------------------------------------------


def test_cli_two_quick_sigints_stop_at_once(tmp_path, reaper):
    """Ctrl-C twice in a row ("again to stop at once"): exit 130, jobs ended, nothing left behind."""
    reaper.append("sleep 44.3")
    scenario = write_scenario(tmp_path, three_runs("44.3", "twice"))
    proc = cli_popen("run", "--test-scenario", scenario, "--output-dir", tmp_path / "out", cwd=tmp_path)
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, "first/0", "beside/0"), 15)
        t0 = time.monotonic()
        proc.send_signal(signal.SIGINT)
        # the second Ctrl-C comes while the first one's cancellation is under way
        wait_until(lambda: '"event":"stop"' in (run_dir / "jobs.jsonl").read_text(), 5, interval=0.001)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
        assert time.monotonic() - t0 < 3
    finally:
        finish(proc)
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err
    wait_until(lambda: pgrep("sleep 44.3") == [], 3)
    jobs = ledger_jobs(run_dir)
    assert jobs["first/0"]["state"] == "CANCELLED"
    assert jobs["beside/0"]["state"] == "CANCELLED"
    assert jobs["later/0"]["state"] == "SKIPPED"
    assert summary(run_dir)["state"] == "CANCELLED"


SCRIPT_DRIVER = """
import sys
from pathlib import Path
from cloudai_nb import api
from cloudai_nb.core.system import StandaloneSystem

tmp = Path(sys.argv[1])
system = StandaloneSystem(name="standalone", install_path=tmp / "install", output_path=tmp / "out",
                          monitor_interval=0.2)
run = api.run(tmp / "scenario.toml", system, output_path=tmp / "out")
print("started", flush=True)
try:
    run.wait()
except KeyboardInterrupt:
    run.cancel()
    run.wait(timeout=10)
    sys.exit(130)
"""


def test_script_driver_ctrl_c_cancels_and_exits(tmp_path, reaper):
    """Ctrl-C in a script blocked in run.wait(): it can cancel the run and exit, leaving nothing."""
    reaper.append("sleep 45.3")
    write_scenario(tmp_path, three_runs("45.3", "script"))
    (tmp_path / "driver.py").write_text(textwrap.dedent(SCRIPT_DRIVER))
    driver = subprocess.Popen(
        [sys.executable, str(tmp_path / "driver.py"), str(tmp_path)],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, "first/0", "beside/0"), 15)
        driver.send_signal(signal.SIGINT)
        out, err = driver.communicate(timeout=10)
    finally:
        finish(driver)
    assert driver.returncode == 130, (out, err)
    jobs = ledger_jobs(run_dir)
    assert jobs["first/0"]["state"] == "CANCELLED"
    assert jobs["beside/0"]["state"] == "CANCELLED"
    assert jobs["later/0"]["state"] == "SKIPPED"
    assert summary(run_dir)["state"] == "CANCELLED"
    assert pgrep("sleep 45.3") == []


def kill_driver_when_running(tmp_path: Path, *keys: str) -> Path:
    (tmp_path / "driver.py").write_text(textwrap.dedent(DRIVER))
    driver = subprocess.Popen([sys.executable, str(tmp_path / "driver.py"), str(tmp_path)], cwd=tmp_path)
    try:
        run_dir = find_run_dir(tmp_path / "out")
        wait_until(lambda: running(run_dir, *keys), 10)
    finally:
        driver.kill()
        driver.wait(timeout=5)
    return run_dir


def test_cli_status_and_cancel_of_detached_run(tmp_path, reaper):
    reaper.append("sleep 46.3")
    write_scenario(tmp_path, three_runs("46.3", "detached"))
    # both started before the driver dies (beside starts once first runs; killed sooner, it never would)
    run_dir = kill_driver_when_running(tmp_path, "first/0", "beside/0")
    shown = cli("status", run_dir, cwd=tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert "DETACHED" in shown.stdout
    assert summary(run_dir) is None  # status only looks
    assert pgrep("^sleep 46.31$")

    done = cli("cancel", run_dir, cwd=tmp_path, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    info = summary(run_dir)
    assert info is not None and info["state"] == "CANCELLED"
    jobs = ledger_jobs(run_dir)
    assert jobs["first/0"]["state"] == "CANCELLED"
    assert jobs["beside/0"]["state"] == "CANCELLED"
    assert jobs["later/0"]["state"] == "SKIPPED"
    wait_until(lambda: pgrep("sleep 46.3") == [], 3)


def test_job_that_ended_while_nobody_watched(tmp_path, reaper):
    reaper.append("sleep 0.4711")
    text = """
name = "unwatched"

[[Tests]]
id = "first"
test_template_name = "BashCmd"
  [Tests.cmd_args]
  cmd = "sleep 0.4711; exit 4"
"""
    write_scenario(tmp_path, text)
    run_dir = kill_driver_when_running(tmp_path, "first/0")
    wait_until(lambda: (run_dir / "first" / "0" / ".exit_code").exists(), 5)
    wait_until(lambda: pgrep("sleep 0.4711") == [], 5)
    run = api.load_run(run_dir).wait(timeout=10)
    job = by_key(run)["first/0"]
    assert job.state.value == "FAILED"
    assert job.exit_code == 4
    assert run.state == "FAILED"
    assert summary(run_dir)["state"] == "FAILED"
