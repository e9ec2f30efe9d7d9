"""The extension in a real kernel: cells return at once, the view updates while the kernel is idle,
a restart loses nothing, and the widget's Cancel button ends the jobs."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from cloudai_nb.engine.ledger import Ledger
from tests.integration.slurm_helpers import slurm_cluster  # noqa: F401 (a fixture)
from tests.notebook.kernel_client import Kernel

pytestmark = pytest.mark.kernel

SCENARIO = """
name = "k"
[[Tests]]
id = "long"
test_template_name = "Sleep"
cmd_args = {seconds = 20}
[[Tests]]
id = "after"
test_template_name = "Sleep"
cmd_args = {seconds = 0.2}
  [[Tests.dependencies]]
  type = "start_post_comp"
  id = "long"
"""


@pytest.fixture
def kernel(tmp_path):
    k = Kernel(str(tmp_path))
    k.ok("%load_ext cloudai_nb")
    yield k
    k.execute("cloudai_session.runs and [r.cancel() for r in cloudai_session.runs if not r.done]")
    k.shutdown()


def comm_updates(messages):
    return [
        m for m in messages if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == "update"
    ]


def wait_for_state(path, key, state, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        jobs = Ledger.read(path).jobs
        if key in jobs and jobs[key].state.value == state:
            return
        time.sleep(0.1)
    raise AssertionError(f"{key} never {state}: {Ledger.read(path).jobs.get(key)}")


@pytest.mark.slow
def test_cells_return_at_once_and_the_view_updates_while_idle(kernel, tmp_path):
    (tmp_path / "k.toml").write_text(SCENARIO)
    started = kernel.ok("%cloudai_run k.toml -o r")
    assert started.seconds < 2
    bundle = started.data[0]
    assert "application/vnd.jupyter.widget-view+json" in bundle and "text/html" in bundle
    trivial = [kernel.ok("1 + 1").seconds for _ in range(5)]
    assert max(trivial) < 0.5, trivial
    path = kernel.ok("print(r.path)").stdout.strip()
    kernel.ok("r.jobs[0].state.value")
    # the job's end reaches the widget with no cell running
    updates = comm_updates(kernel.collect_idle(25))
    assert updates, "no widget update arrived while the kernel was idle"
    states = json.dumps([u["content"]["data"]["state"] for u in updates])
    assert "COMPLETED" in states
    assert kernel.ok("await r; print(r.state)").stdout.strip() == "COMPLETED"
    assert Ledger.read(Path(path)).summary["state"] == "COMPLETED"


SLURM_SYSTEM = """
name = "slurm-kernel"
scheduler = "slurm"
default_partition = "debug"
mpi = "none"
monitor_interval = 0.2
[[partitions]]
name = "debug"
"""

SYSTEMS = [
    pytest.param("standalone", id="standalone"),
    pytest.param("slurm", id="slurm", marks=pytest.mark.slurm),
]


def use_system(request, kernel, tmp_path, which):
    if which == "slurm":
        request.getfixturevalue("slurm_cluster")
        (tmp_path / "slurm.toml").write_text(SLURM_SYSTEM)
        kernel.ok("%cloudai_system slurm.toml")


@pytest.mark.slow
@pytest.mark.parametrize("which", SYSTEMS)
def test_restart_mid_run_and_reattach(request, kernel, tmp_path, which):
    use_system(request, kernel, tmp_path, which)
    (tmp_path / "k.toml").write_text(SCENARIO.replace("seconds = 20", "seconds = 6"))
    kernel.ok("%cloudai_run k.toml -o r")
    path = kernel.ok("print(r.path)").stdout.strip()
    wait_for_state(Path(path), "long/0", "RUNNING")
    kernel.restart()
    kernel.ok("%load_ext cloudai_nb")
    listed = kernel.ok("runs = %cloudai_list runs\nprint(list(runs['run']))")
    assert Path(path).name in listed.stdout
    shown = kernel.ok(f"r2 = %cloudai_status {path}\nr2[['test_id', 'state']]")
    assert shown.data
    kernel.ok(f"import cloudai_nb.api as api\nrun = api.load_run({path!r})\nrun")
    kernel.ok("await run")
    states = kernel.ok("print({j.key: j.state.value for j in run.jobs})").stdout
    assert "'long/0': 'COMPLETED'" in states and "'after/0': 'COMPLETED'" in states


@pytest.mark.parametrize("which", SYSTEMS)
def test_cancel_button_ends_the_jobs(request, kernel, tmp_path, which):
    use_system(request, kernel, tmp_path, which)
    (tmp_path / "k.toml").write_text(SCENARIO)
    kernel.ok("%cloudai_run k.toml -o r")
    path = kernel.ok("print(r.path)").stdout.strip()
    wait_for_state(Path(path), "long/0", "RUNNING")
    kernel.ok("from cloudai_nb.notebook.view import view_of\nview_of(r).cancel_button.click()")
    kernel.ok("await r")
    states = kernel.ok("print(r.state, {j.key: j.state.value for j in r.jobs})").stdout
    assert states.startswith("CANCELLED")
    assert "'long/0': 'CANCELLED'" in states and "'after/0': 'SKIPPED'" in states
