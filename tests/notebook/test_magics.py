"""Every magic in a real InteractiveShell: arguments, one-line UsageErrors, returned objects."""

from __future__ import annotations

import pandas as pd
import pytest
from IPython.core.error import UsageError
from IPython.core.interactiveshell import InteractiveShell

from cloudai_nb.api.run import Run
from cloudai_nb.core import registry
from cloudai_nb.core.models import JobState

NAP = 'name = "nap"\ntest_template_name = "Sleep"\ncmd_args = {seconds = 0.1}\n'


@pytest.fixture
def shell(in_tmp):
    ip = InteractiveShell.instance()
    ip.extension_manager.load_extension("cloudai_nb")
    yield ip
    ip.extension_manager.unload_extension("cloudai_nb")
    InteractiveShell.clear_instance()


def line(ip, name, text=""):
    return ip.run_line_magic(name, text)


def test_builtins_load_without_plugin_errors(shell):
    assert registry.plugin_errors == []


def test_default_system_is_this_machine_under_results(shell, in_tmp):
    system = line(shell, "cloudai_system")
    assert system.scheduler == "standalone"
    assert system.output_path == in_tmp / "results"


def test_system_from_toml_and_unknown_name(shell, in_tmp):
    (in_tmp / "s.toml").write_text('name = "other"\nscheduler = "standalone"\noutput_path = "elsewhere"\n')
    assert line(shell, "cloudai_system", str(in_tmp / "s.toml")).name == "other"
    assert line(shell, "cloudai_system", "standalone").name == "standalone"
    with pytest.raises(UsageError, match=r"unknown system 'standalon' \(did you mean 'standalone'\?\)"):
        line(shell, "cloudai_system", "standalon")


def test_test_cell_then_run_by_name_with_overrides(shell):
    test = shell.run_cell_magic("cloudai_test", "", NAP)
    assert test.name == "nap"
    run = line(shell, "cloudai_run", "nap --iterations 2 -o r")
    assert isinstance(run, Run)
    assert shell.user_ns["r"] is run
    run.wait(timeout=30)
    frame = line(shell, "cloudai_status")
    assert list(frame["iteration"]) == [0, 1]
    assert set(frame["state"]) == {"COMPLETED"}


def test_run_cell_with_python_variables_and_results(shell):
    shell.user_ns["word"] = "hello"
    run = shell.run_cell_magic(
        "cloudai_run",
        "--wait",
        'name = "b"\ntest_template_name = "BashCmd"\ncmd_args = {cmd = "echo {word}; echo speed=3.5 GB/s"}\n',
    )
    assert run.state == "COMPLETED"
    job = run.jobs[0]
    assert (job.output_path / "stdout.txt").read_text().startswith("hello\n")
    results = line(shell, "cloudai_results")
    speed = results[results["metric"] == "speed"].iloc[0]
    assert (speed["value"], speed["unit"]) == (3.5, "GB/s")


def test_scenario_cell_and_dry_run(shell):
    shell.run_cell_magic("cloudai_test", "", NAP)
    scenario = shell.run_cell_magic(
        "cloudai_scenario",
        "twice",
        '[[Tests]]\nid = "a"\ntest_name = "nap"\n[[Tests]]\nid = "b"\ntest_name = "nap"\n'
        '  [[Tests.dependencies]]\n  type = "start_post_comp"\n  id = "a"\n',
    )
    assert scenario.name == "twice"
    run = line(shell, "cloudai_run", "twice --dry-run --wait")
    assert {job.state for job in run.jobs} == {JobState.DRY_RUN}
    assert (run.jobs[1].output_path / "command.sh").exists()


@pytest.mark.parametrize(
    ("magic", "text", "message"),
    [
        ("cloudai_run", "", "%cloudai_run needs a scenario or test name"),
        ("cloudai_run", "nope", "unknown scenario or test 'nope'"),
        ("cloudai_run", "nap --bogus", "unrecognized arguments: --bogus"),
        ("cloudai_run", "nap -N 0", "-N/--nodes must be at least 1"),
        ("cloudai_run", "nap --time-limit 1h", "time limit '1h' is not a Slurm time"),
        ("cloudai_status", "nosuchrun", "no run 'nosuchrun'"),
        ("cloudai_logs", "nap/7", "no job 'nap/7'"),
        ("cloudai_list", "things", "argument what: invalid choice: 'things'"),
        ("cloudai_test", "--dir /nonexistent", "no such file or folder"),
    ],
)
def test_bad_input_is_one_line_usage_error_and_submits_nothing(shell, in_tmp, magic, text, message):
    shell.run_cell_magic("cloudai_test", "", NAP)
    with pytest.raises(UsageError) as err:
        line(shell, magic, text)
    assert message in str(err.value)
    assert "\n" not in str(err.value)
    assert not (in_tmp / "results").exists() or not any((in_tmp / "results").iterdir())


def test_bad_toml_cell_names_line_and_suggests(shell):
    with pytest.raises(UsageError) as err:
        shell.run_cell_magic(
            "cloudai_test", "", 'name = "x"\ntest_template_name = "NcclTest"\n[cmd_args]\nwarmup_itres = 3\n'
        )
    assert str(err.value).startswith("<cell>:4: cmd_args.warmup_itres: unknown key 'warmup_itres'")
    assert "did you mean 'warmup_iters'" in str(err.value)


def test_run_cell_error_leaves_no_traceback(shell):
    result = shell.run_cell("%cloudai_run nope")
    assert isinstance(result.error_in_exec, UsageError)


def test_cancel_a_run_and_a_job(shell):
    shell.run_cell_magic(
        "cloudai_test", "", 'name = "long"\ntest_template_name = "Sleep"\ncmd_args = {seconds = 30}\n'
    )
    run = line(shell, "cloudai_run", "long")
    job = run.jobs[0]
    import time

    deadline = time.monotonic() + 10
    while job.state is not JobState.RUNNING and time.monotonic() < deadline:
        time.sleep(0.05)
    line(shell, "cloudai_cancel", "long/0")
    run.wait(timeout=15)
    assert job.state is JobState.CANCELLED
    again = line(shell, "cloudai_run", "long")
    line(shell, "cloudai_cancel")
    again.wait(timeout=15)
    assert again.state == "CANCELLED"


def test_logs_and_listings(shell):
    run = shell.run_cell_magic(
        "cloudai_run",
        "--wait",
        'name = "e"\ntest_template_name = "BashCmd"\ncmd_args = {cmd = "seq 1 100"}\n',
    )
    shown = line(shell, "cloudai_logs", "e --tail 3")
    assert shown.data == "98\n99\n100"
    for what in ("workloads", "systems", "tests", "scenarios", "runs"):
        assert isinstance(line(shell, "cloudai_list", what), pd.DataFrame)
    assert run.path.name in set(line(shell, "cloudai_list", "runs")["run"])
    assert "Sleep" in set(line(shell, "cloudai_list", "workloads")["workload"])


def test_run_displays_as_widget_with_static_fallback(shell):
    run = shell.run_cell_magic("cloudai_run", "--wait", NAP)
    bundle, _ = shell.display_formatter.format(run)
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert "<table>" in bundle["text/html"]
    assert bundle["text/plain"].startswith("<Run nap_")


def test_unload_removes_the_magics_and_reload_works(shell):
    shell.extension_manager.unload_extension("cloudai_nb")
    assert "cloudai_run" not in shell.magics_manager.magics["line"]
    shell.extension_manager.load_extension("cloudai_nb")
    assert "cloudai_run" in shell.magics_manager.magics["line"]
    assert "cloudai_test" in shell.magics_manager.magics["cell"]


def test_placeholders_outside_strings_must_be_defined(shell):
    with pytest.raises(UsageError, match=r"^<cell>:3: undefined variable 'nosuchvar' in \{nosuchvar\}$"):
        shell.run_cell_magic(
            "cloudai_test",
            "",
            'name = "n"\ntest_template_name = "Sleep"\ncmd_args = {seconds = {nosuchvar}}\n',
        )
    # inside strings, braces that are not variables (awk, ${HOME}) stay as they are
    test = shell.run_cell_magic(
        "cloudai_test",
        "",
        'name = "a"\ntest_template_name = "BashCmd"\ncmd_args = {cmd = "awk \'{print}\' ${HOME}"}\n',
    )
    assert test.cmd_args.cmd == "awk '{print}' ${HOME}"


def test_test_cell_takes_a_name(shell):
    assert shell.run_cell_magic("cloudai_test", "nap2", NAP).name == "nap2"
    assert "nap2" in set(line(shell, "cloudai_list", "tests")["test"])


def test_empty_listing_keeps_its_columns(shell):
    assert list(line(shell, "cloudai_list", "scenarios").columns) == ["scenario", "tests", "job_status_check"]
