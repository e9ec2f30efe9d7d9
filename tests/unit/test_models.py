from __future__ import annotations

import pytest

from cloudai_nb.core import config, sweep
from cloudai_nb.core.duration import format_time_limit, parse_time_limit
from cloudai_nb.core.errors import ConfigError
from cloudai_nb.core.models import JobState
from cloudai_nb.core.tomlpos import find_line


def scenario(text: str, tests=None):
    return config.scenario_from_dict(config.parse_toml(text), tests)


def test_job_state_classes():
    assert JobState.COMPLETED.is_done and not JobState.COMPLETED.is_failure
    assert JobState.TIMEOUT.is_failure
    assert JobState.RUNNING.is_live and not JobState.WAITING.is_live
    assert not JobState.CANCELLED.is_failure
    assert str(JobState.NODE_FAIL) == "NODE_FAIL"


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30", 1800), ("1:30", 90), ("1:30:00", 5400), ("2-0", 172800), ("1-2:3", 93780), ("0-0:0:7", 7)],
)
def test_time_limits(text, seconds):
    assert parse_time_limit(text) == seconds


def test_time_limit_errors_and_format():
    with pytest.raises(ValueError, match="not a Slurm time"):
        parse_time_limit("1h")
    assert format_time_limit(93780) == "1-02:03:00"
    assert format_time_limit(59) == "00:00:59"


def test_named_test_with_deep_merged_overrides():
    tests = {
        "nccl": config.test_from_dict(
            {"name": "nccl", "test_template_name": "NcclTest", "cmd_args": {"iters": 7, "minbytes": "1K"}}
        )
    }
    s = scenario(
        """
        name = "s"
        [[Tests]]
        id = "a"
        test_name = "nccl"
        [Tests.cmd_args]
        minbytes = "1M"
        """,
        tests,
    )
    args = s.test_runs[0].test.cmd_args
    assert (args.iters, args.minbytes) == (7, "1M")
    assert tests["nccl"].cmd_args.minbytes == "1K"  # the named test is not changed


def test_sweep_expansion_order_and_validation():
    s = scenario(
        """
        name = "s"
        [[Tests]]
        id = "a"
        test_template_name = "NcclTest"
        num_nodes = [1, 2]
        cmd_args = {minbytes = ["1M", "4M", "16M"], iters = 3}
        """
    )
    run = s.test_runs[0]
    assert sweep.count(run) == 6
    steps = sweep.expand(run)
    assert [(st.params["minbytes"], st.num_nodes) for st in steps[:3]] == [("1M", 1), ("1M", 2), ("4M", 1)]
    assert all(st.test.sweep == {} for st in steps)
    assert steps[5].test.cmd_args.minbytes == "16M"
    assert steps[5].test.cmd_args.iters == 3


def test_list_typed_fields_are_not_sweeps():
    test = config.test_from_dict(
        {"name": "f", "test_template_name": "Fio", "cmd_args": {"passthrough_args": ["--a", "--b"]}}
    )
    assert test.sweep == {}
    assert test.cmd_args.passthrough_args == ["--a", "--b"]


def test_bad_sweep_value_names_its_index():
    with pytest.raises(
        ConfigError, match=r"cmd_args.seconds\[1\]: Input should be greater than or equal to 0"
    ):
        config.test_from_dict({"name": "s", "test_template_name": "Sleep", "cmd_args": {"seconds": [1, -2]}})


def test_toml_dict_round_trips():
    test = config.test_from_dict(
        {
            "name": "n",
            "test_template_name": "NcclTest",
            "cmd_args": {"minbytes": ["1M", "2M"]},
            "extra_env_vars": {"X": ["a", "b"]},
        }
    )
    again = config.test_from_dict(test.toml_dict())
    assert again == test
    assert again.sweep == test.sweep == {"minbytes": ["1M", "2M"], "extra_env_vars.X": ["a", "b"]}


def test_paths_resolve_against_the_right_folder(tmp_path, monkeypatch):
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "fio.toml").write_text(
        'name = "f"\ntest_template_name = "Fio"\n[cmd_args]\njob_file = "jobs/a.fio"\n'
    )
    (conf / "sys.toml").write_text('name = "s"\nscheduler = "standalone"\noutput_path = "out"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert config.load_test(conf / "fio.toml").cmd_args.job_file == str(conf / "jobs/a.fio")
    assert config.load_system(conf / "sys.toml").output_path == elsewhere / "out"


def test_key_lines_follow_arrays_of_tables():
    text = """name = "x"
[[Tests]]
id = "a"
[[Tests]]
id = "b"
  [Tests.cmd_args]
  iters = 3
  [[Tests.dependencies]]
  id = "a"
  [[Tests.dependencies]]
  id = "c"
"""
    assert find_line(text, ("Tests", 1, "id")) == 5
    assert find_line(text, ("Tests", 1, "cmd_args", "iters")) == 7
    assert find_line(text, ("Tests", 1, "dependencies", 1, "id")) == 11
    assert find_line(text, ("Tests", 1, "cmd_args", "missing")) == 6


def test_python_api_models_without_toml():
    from cloudai_nb.core.models import Dependency, TestRun, TestScenario
    from cloudai_nb.workloads.sleep import SleepCmdArgs, SleepTestDefinition

    nap = SleepTestDefinition(name="nap", cmd_args=SleepCmdArgs(seconds=0.5))
    s = TestScenario(
        name="py",
        test_runs=[
            TestRun(id="a", test=nap),
            TestRun(id="b", test=nap, dependencies=[Dependency(type="start_post_comp", id="a")]),
        ],
    )
    assert s.get("b").dependencies[0].id == "a"
    with pytest.raises(ConfigError, match="unknown dependency id 'x'"):
        TestScenario(
            name="py",
            test_runs=[TestRun(id="a", test=nap, dependencies=[Dependency(type="start_post_comp", id="x")])],
        )
