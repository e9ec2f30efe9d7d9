"""The job form without a browser: set values, click, look at the TestRun, errors and runs."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import Field

from cloudai_nb.api.forms import FormModel, parse_text
from cloudai_nb.api.session import Session
from cloudai_nb.core import registry
from cloudai_nb.core.models import CmdArgs, JobState, TestDefinition
from cloudai_nb.notebook.job_form import JobForm, form


@pytest.fixture
def session(in_tmp):
    return Session()


@pytest.mark.parametrize("workload", sorted(str(k) for k in registry.workloads))
def test_every_registered_workload_gets_a_valid_form(session, workload):
    built = JobForm(session, workload)
    needs_input = {"BashCmd": "cmd"}
    if workload in needs_input:
        assert built.submit_button.disabled  # a required field is empty
        built.set(needs_input[workload], "echo hi")
    assert built.validate(), built.model.result().errors
    assert set(built.inputs) >= {spec.name for spec in built.model.specs}
    assert built.model.result().test_run.test.test_template_name == workload


def test_values_become_the_test_run_and_sweeps_count_steps(session):
    built = JobForm(session, "NcclTest")
    built.set("minbytes", "1M, 4M, 16M")
    built.set("iters", "50")
    built.inputs["num_nodes"].value = "1, 2"
    result = built.model.result()
    assert result.ok
    run = result.test_run
    assert run.test.cmd_args.iters == 50
    assert run.test.sweep == {"minbytes": ["1M", "4M", "16M"]}
    assert run.num_nodes == [1, 2]
    assert "6 jobs" in built.steps.value


def shown(box) -> str:
    import html

    return html.unescape(box.value)


def test_errors_show_next_to_their_field_and_block_submit(session):
    built = JobForm(session, "NcclTest")
    built.set("iters", "lots")
    assert "'lots' is not a whole number" in shown(built.errors["iters"])
    assert built.submit_button.disabled
    built.set("iters", "0")
    assert "greater than or equal to 1" in shown(built.errors["iters"])
    built.set("op", "summ")
    assert "'sum'" in shown(built.errors["op"])
    built.set("iters", "5")
    built.set("op", "max")
    assert not built.submit_button.disabled
    assert all(box.value == "" for box in built.errors.values())


def test_preview_is_the_dry_run_command_and_toml_round_trips(session):
    built = JobForm(session, "Sleep")
    built.set("seconds", "0.2")
    built.preview_button.click()
    assert "sleep 0.2" in built.output.value
    built.toml_button.click()
    text = built.show_toml()
    assert text.startswith("%%cloudai_test\n")
    again = session.add_test(text.split("\n", 1)[1])
    assert again.cmd_args.seconds == 0.2


def test_submit_starts_a_run_and_shows_its_live_view(session):
    built = JobForm(session, "Sleep")
    built.set("seconds", "0.1")
    built.submit_button.click()
    assert len(built.runs) == 1
    run = built.runs[0].wait(timeout=30)
    assert run.state == "COMPLETED"
    assert built.run_area.children  # the live view is under the form


def test_prefilled_from_a_test_and_from_a_finished_run(session):
    test = session.add_test(
        'name = "n"\ntest_template_name = "NcclTest"\n[cmd_args]\niters = 77\nminbytes = ["1K", "2K"]\n'
    )
    built = form(session, test=test)
    assert built.inputs["iters"].value == "77"
    assert built.inputs["minbytes"].value == "1K, 2K"
    first = session.run(session.resolve("n"), dry_run=True).wait(timeout=30)
    again = form(session, run=first)
    assert again.inputs["iters"].value == "77"
    assert again.name_input.value == "n"


class GreetArgs(CmdArgs):
    greeting: Literal["hello", "hi"] = Field(default="hello", description="What to say.")
    times: int = Field(default=1, ge=1, le=10, description="How many times.")
    loud: bool = False


class GreetTest(TestDefinition):
    test_template_name: Literal["Greet"] = "Greet"
    cmd_args: GreetArgs = Field(default_factory=GreetArgs)


def test_a_workload_registered_in_a_cell_gets_a_form_for_free(session, monkeypatch):
    monkeypatch.setattr(registry.workloads, "_items", dict(registry.workloads._items))
    registry.workloads.register("Greet", GreetTest)
    built = JobForm(session, "Greet")
    assert set(built.inputs) >= {"greeting", "times", "loud"}
    assert "1 <= value <= 10" in built.inputs["times"].tooltip
    built.set("times", "11")
    assert "less than or equal to 10" in shown(built.errors["times"])
    built.set("times", "2, 3")
    built.inputs["loud"].value = True
    run = built.model.result().test_run
    assert run.test.sweep == {"times": [2, 3]} and run.test.cmd_args.loud is True


def test_text_parsing_table():
    model = FormModel("Fio")
    args = next(s for s in model.specs if s.name == "args")
    assert parse_text(args, "bs = 4k, 64k\nruntime = 5\ntime_based = true") == {
        "bs": ["4k", "64k"],
        "runtime": 5,
        "time_based": True,
    }
    with pytest.raises(ValueError, match="KEY = VALUE"):
        parse_text(args, "just words")


def test_cloudai_form_magic_and_top_level_function(in_tmp):
    from IPython.core.interactiveshell import InteractiveShell

    import cloudai_nb

    shell = InteractiveShell.instance()
    try:
        shell.extension_manager.load_extension("cloudai_nb")
        built = shell.run_line_magic("cloudai_form", "Fio")
        assert isinstance(built, JobForm) and built.workload_picker.value == "Fio"
        assert isinstance(cloudai_nb.form("Sleep"), JobForm)
        bundle, _ = shell.display_formatter.format(built)
        assert "application/vnd.jupyter.widget-view+json" in bundle
        assert built.workload_picker.options == tuple(sorted(str(k) for k in registry.workloads))
        built.workload_picker.value = "Sleep"
        assert "seconds" in built.inputs
        done = built.submit()
        assert done is not None and done.wait(timeout=30).jobs[0].state is JobState.COMPLETED
    finally:
        InteractiveShell.clear_instance()


def test_set_accepts_python_values_for_run_fields(session):
    built = JobForm(session, "Sleep")
    built.set("iterations", 2)
    built.set("num_nodes", [1, 2])
    built.set("extra_env_vars", {"A": "1"})
    run = built.model.result().test_run
    assert (run.iterations, run.num_nodes, run.test.extra_env_vars) == (2, [1, 2], {"A": 1})
