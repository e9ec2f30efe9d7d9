"""A corpus of malformed (tests/configs/bad) and valid (tests/configs/good) CloudAI TOML files.

Each bad file has exactly one problem. ``EXPECTED`` lists what a good message for it must say: the
location as ``file.toml:LINE`` (``:LINE:COLUMN`` for syntax errors), the field path, the
did-you-mean and the valid choices. Entries that are compiled regular expressions are searched
for; plain strings must appear verbatim. ``FORBIDDEN`` lists text a good message must not contain.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from cloudai_nb.cli import main

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = ROOT / "tests" / "configs"
BAD = CONFIGS / "bad"
GOOD = CONFIGS / "good"
GOOD_TESTS = GOOD / "tests"
CONF = ROOT / "cloudai_nb" / "conf"

Expectation = str | re.Pattern[str]

EXPECTED: dict[str, list[Expectation]] = {
    # --- TOML syntax: line and column -----------------------------------------------------------
    "syntax_missing_value.toml": [re.compile(r"syntax_missing_value\.toml:2:\d+: "), "TOML syntax error"],
    "syntax_unclosed_string.toml": [
        re.compile(r"syntax_unclosed_string\.toml:1:\d+: "),
        "TOML syntax error",
        re.compile(r"TOML syntax error: .*string"),  # says the string is not closed
    ],
    "syntax_unclosed_table_header.toml": [
        re.compile(r"syntax_unclosed_table_header\.toml:4:\d+: "),
        re.compile(r"TOML syntax error: .*table"),
    ],
    "syntax_duplicate_key.toml": [
        re.compile(r"syntax_duplicate_key\.toml:3:\d+: "),
        "TOML syntax error",
        "'name'",  # names the key defined twice
    ],
    "syntax_unclosed_array.toml": ["syntax_unclosed_array.toml:5", re.compile(r"TOML syntax error: .*array")],
    "syntax_bare_word_value.toml": [re.compile(r"syntax_bare_word_value\.toml:2:\d+: "), "TOML syntax error"],
    # --- wrong types ----------------------------------------------------------------------------
    "system_wrong_type_monitor_interval.toml": [
        "system_wrong_type_monitor_interval.toml:3: monitor_interval: ",
        "valid number",
    ],
    "test_wrong_type_seconds.toml": ["test_wrong_type_seconds.toml:5: cmd_args.seconds: ", "valid number"],
    "scenario_wrong_type_iterations.toml": [
        "scenario_wrong_type_iterations.toml:6: Tests[0].iterations: ",
        "valid integer",
    ],
    "test_nccl_invalid_subtest_name.toml": [
        "test_nccl_invalid_subtest_name.toml:5: cmd_args.subtest_name: ",
        "'all_reduce_perf'",
        "'all_reduce_perf_mpi'",
        "got 'all_reduce'",
    ],
    "scenario_env_var_wrong_type.toml": ["scenario_env_var_wrong_type.toml:8: Tests[0].extra_env_vars.BAD: "],
    "scenario_tests_not_array.toml": ["scenario_tests_not_array.toml:2: Tests: ", "string"],
    # --- unknown keys at every level --------------------------------------------------------------
    "system_unknown_top_level_key.toml": [
        "system_unknown_top_level_key.toml:3: outptu_path: ",
        "unknown key 'outptu_path'",
        "(did you mean 'output_path'?)",
        "valid keys: ",
    ],
    "system_slurm_unknown_partition_key.toml": [
        "system_slurm_unknown_partition_key.toml:7: partitions[0].grups: ",
        "(did you mean 'groups'?)",
        "valid keys: groups, name",
    ],
    "system_slurm_unknown_group_key.toml": [
        "system_slurm_unknown_group_key.toml:10: partitions[0].groups[0].node: ",
        "(did you mean 'nodes'?)",
        "valid keys: name, nodes",
    ],
    "test_unknown_top_level_key.toml": [
        "test_unknown_top_level_key.toml:2: descripton: ",
        "(did you mean 'description'?)",
    ],
    "test_nccl_unknown_cmd_arg.toml": [
        "test_nccl_unknown_cmd_arg.toml:6: cmd_args.warmup_itres: ",
        "(did you mean 'warmup_iters'?)",
        "warmup_iters",
    ],
    "scenario_unknown_top_level_key.toml": [
        "scenario_unknown_top_level_key.toml:2: job_status_chek: ",
        "(did you mean 'job_status_check'?)",
        re.compile(r"valid keys: .*\bTests\b"),  # the TOML spelling, not the model's test_runs
    ],
    "scenario_unknown_key_in_tests_entry.toml": [
        "scenario_unknown_key_in_tests_entry.toml:10: Tests[1].num_node: ",
        "(did you mean 'num_nodes'?)",
    ],
    "scenario_unknown_key_in_dependency.toml": [
        "scenario_unknown_key_in_dependency.toml:12: Tests[1].dependencies[0].idd: ",
        "(did you mean 'id'?)",
        "valid keys: id, type",
    ],
    "scenario_unknown_cmd_arg_override.toml": [
        "scenario_unknown_cmd_arg_override.toml:8: Tests[0].cmd_args.warmup_itres: ",
        "(did you mean 'warmup_iters'?)",
    ],
    # --- dependencies and ids -------------------------------------------------------------------
    "scenario_bad_dependency_type.toml": [
        "scenario_bad_dependency_type.toml:11: Tests[1].dependencies[0].type: ",
        "'start_post_init'",
        "'start_post_comp'",
        "'end_post_comp'",
        "'after_ok'",
    ],
    "scenario_unknown_dependency_id.toml": [
        "scenario_unknown_dependency_id.toml:12: Tests[1].dependencies[0].id: ",
        "'alpah'",
        "(did you mean 'alpha'?)",
        "alpha, beta",
    ],
    "scenario_self_dependency.toml": [
        "scenario_self_dependency.toml:8: Tests[0].dependencies[0].id: ",
        "depends on itself",
    ],
    "scenario_duplicate_test_id.toml": [
        "scenario_duplicate_test_id.toml:8: Tests[1].id: ",
        "duplicate test id 'a'",
        "Tests[0]",
    ],
    "scenario_dependency_cycle.toml": [
        "scenario_dependency_cycle.toml:6: Tests[0].dependencies",
        "a -> b -> a",
    ],
    "scenario_unsafe_id_dotdot.toml": [
        "scenario_unsafe_id_dotdot.toml:4: Tests[0].id: ",
        "'../x'",
        "not safe",
    ],
    "scenario_unsafe_id_absolute.toml": [
        "scenario_unsafe_id_absolute.toml:4: Tests[0].id: ",
        "'/abs'",
        "not safe",
    ],
    "scenario_unsafe_id_empty.toml": ["scenario_unsafe_id_empty.toml:4: Tests[0].id: ", "''", "not safe"],
    "scenario_missing_test_id.toml": [
        "scenario_missing_test_id.toml:3: Tests[0].id: ",
        "required field is missing",
    ],
    # --- node lists -----------------------------------------------------------------------------
    "system_slurm_group_descending_range.toml": [
        "system_slurm_group_descending_range.toml:10: partitions[0].groups[0].nodes",
        "'n[8-3]'",
        re.compile(r"nodes: .*descending"),
    ],
    "system_slurm_group_unbalanced_brackets.toml": [
        "system_slurm_group_unbalanced_brackets.toml:10: partitions[0].groups[0].nodes",
        "'n[1-4'",
        "unclosed '['",
    ],
    "scenario_nodes_descending_range.toml": [
        "scenario_nodes_descending_range.toml:6: Tests[0].nodes",
        "'n[9-2]'",
        re.compile(r"nodes: .*descending"),
    ],
    "scenario_nodes_unbalanced_brackets.toml": [
        "scenario_nodes_unbalanced_brackets.toml:6: Tests[0].nodes",
        "'n1-4]'",
        "unmatched ']'",
    ],
    "system_slurm_default_partition_missing.toml": [
        "system_slurm_default_partition_missing.toml:3: default_partition: ",
        "'bacth'",
        "(did you mean 'batch'?)",
    ],
    # --- closed sets: names, schedulers, formats ------------------------------------------------
    "test_unknown_test_template_name.toml": [
        "test_unknown_test_template_name.toml:2: test_template_name: ",
        "'Slep'",
        "(did you mean 'Sleep'?)",
        "BashCmd, Fio, NcclTest, Sleep",
    ],
    "scenario_unknown_test_name.toml": [
        "scenario_unknown_test_name.toml:5: Tests[0].test_name: ",
        "'good_sleep_30'",
        "(did you mean 'good_sleep_3'?)",
        "good_nccl, good_sleep_3",
    ],
    "system_unknown_scheduler.toml": [
        "system_unknown_scheduler.toml:2: scheduler: ",
        "'slrum'",
        "(did you mean 'slurm'?)",
        "slurm, standalone",
    ],
    "scenario_bad_time_limit.toml": [
        "scenario_bad_time_limit.toml:6: Tests[0].time_limit: ",
        "'1h'",
        "H:M:S",
    ],
    "scenario_num_nodes_zero.toml": [
        "scenario_num_nodes_zero.toml:6: Tests[0].num_nodes: ",
        "at least 1",
        "got 0",
    ],
    "scenario_empty_tests_array.toml": [
        "scenario_empty_tests_array.toml:2: Tests: ",
        "at least one [[Tests]] entry",
    ],
    # --- whole-file problems --------------------------------------------------------------------
    "empty_file.toml": ["empty_file.toml: ", "empty file"],
    "whitespace_only_file.toml": ["whitespace_only_file.toml: ", "empty file"],
    "not_utf8_file.toml": ["not_utf8_file.toml:1", "UTF-8"],
    "unknown_config_kind.toml": [
        "unknown_config_kind.toml: ",
        "'scheduler'",
        "'test_template_name'",
        "[[Tests]]",
    ],
    # --- sweeps ---------------------------------------------------------------------------------
    "scenario_sweep_invalid_value.toml": [
        "scenario_sweep_invalid_value.toml:7: Tests[0].cmd_args.seconds[1]: ",
        "greater than or equal to 0",
    ],
    "scenario_sweep_empty_list.toml": [
        "scenario_sweep_empty_list.toml:7: Tests[0].cmd_args.seconds: ",
        "at least one value",
    ],
    "test_fio_sweep_empty_args_value.toml": [
        "test_fio_sweep_empty_args_value.toml:7: cmd_args.args.bs: ",
        "at least one value",
    ],
}

# Text a good message must not contain.
FORBIDDEN: dict[str, list[str]] = {
    "scenario_unknown_top_level_key.toml": ["test_runs"],  # internal name; the TOML says [[Tests]]
    "scenario_tests_not_array.toml": ["needs at least one"],  # there is a Tests key, of the wrong type
}

# Unknown-key cases: the file and the key whose line the message must point at.
UNKNOWN_KEYS: dict[str, str] = {
    "system_unknown_top_level_key.toml": "outptu_path",
    "system_slurm_unknown_partition_key.toml": "grups",
    "system_slurm_unknown_group_key.toml": "node",
    "test_unknown_top_level_key.toml": "descripton",
    "test_nccl_unknown_cmd_arg.toml": "warmup_itres",
    "scenario_unknown_top_level_key.toml": "job_status_chek",
    "scenario_unknown_key_in_tests_entry.toml": "num_node",
    "scenario_unknown_key_in_dependency.toml": "idd",
    "scenario_unknown_cmd_arg_override.toml": "warmup_itres",
}


def _verify(capsys: pytest.CaptureFixture[str], *paths: Path) -> tuple[int, str]:
    rc = main(["verify-configs", *(str(p) for p in paths), "--tests-dir", str(GOOD_TESTS)])
    captured = capsys.readouterr()
    return rc, captured.out + captured.err


def _bad_files() -> list[Path]:
    return sorted(p for p in BAD.iterdir() if p.is_file())


def test_corpus_is_large_enough() -> None:
    assert len(_bad_files()) >= 30


def test_every_bad_file_has_expectations() -> None:
    names = {p.name for p in _bad_files()}
    assert names == set(EXPECTED), f"missing: {names - set(EXPECTED)}, stale: {set(EXPECTED) - names}"


def test_not_utf8_file_holds_invalid_bytes() -> None:
    raw = (BAD / "not_utf8_file.toml").read_bytes()
    assert raw == b"\xff\xfe"
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_message(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    rc, output = _verify(capsys, BAD / name)
    assert rc != 0, output
    assert "Traceback" not in output
    for expected in EXPECTED[name]:
        if isinstance(expected, re.Pattern):
            assert expected.search(output), f"no match for /{expected.pattern}/ in:\n{output}"
        else:
            assert expected in output, f"{expected!r} not in:\n{output}"
    for unwanted in FORBIDDEN.get(name, []):
        assert unwanted not in output, f"{unwanted!r} should not be in:\n{output}"
    assert "1 file: 0 valid, 1 invalid" in output


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_reports_its_one_problem_once(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    """Each corpus file has exactly one problem, so exactly one ``invalid`` line (no repeats)."""
    _, output = _verify(capsys, BAD / name)
    lines = [line for line in output.splitlines() if line.startswith("invalid ")]
    assert len(lines) == 1, output


@pytest.mark.parametrize("name", sorted(UNKNOWN_KEYS))
def test_unknown_key_line_points_at_the_key(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    _, output = _verify(capsys, BAD / name)
    match = re.search(re.escape(name) + r":(\d+)", output)
    assert match, output
    line = int(match[1])
    text = (BAD / name).read_text(encoding="utf-8").splitlines()
    key = UNKNOWN_KEYS[name]
    assert re.match(rf"\s*{re.escape(key)}\s*=", text[line - 1]), f"line {line} is {text[line - 1]!r}"


def test_whole_bad_folder_counts_every_file_invalid(capsys: pytest.CaptureFixture[str]) -> None:
    rc, output = _verify(capsys, BAD)
    assert rc == 1
    assert "Traceback" not in output
    count = len(_bad_files())
    summaries = re.findall(r"^(\d+) files?: (\d+) valid, (\d+) invalid$", output, flags=re.MULTILINE)
    assert summaries == [(str(count), "0", str(count))], output
    assert not [line for line in output.splitlines() if line.startswith("ok ")]


def test_good_files_and_shipped_conf_verify(capsys: pytest.CaptureFixture[str]) -> None:
    rc, output = _verify(capsys, GOOD, CONF)
    assert rc == 0, output
    assert "invalid " not in output
    files = sorted(GOOD.rglob("*.toml")) + sorted(CONF.rglob("*.toml"))
    assert f"{len(files)} files: {len(files)} valid, 0 invalid" in output


def test_good_corpus_covers_each_kind(capsys: pytest.CaptureFixture[str]) -> None:
    _, output = _verify(capsys, GOOD)
    for kind in ("(system)", "(test)", "(scenario)"):
        assert kind in output, output


def test_deep_merged_override_keeps_the_named_tests_other_args() -> None:
    from cloudai_nb.core.config import load_scenario, load_tests

    scenario = load_scenario(GOOD / "scenarios" / "deep_merge_overrides.toml", load_tests(GOOD_TESTS))
    args = scenario.test_runs[0].test.cmd_args
    assert (args.iters, args.maxbytes) == (50, "64M")  # overridden
    assert (args.minbytes, args.warmup_iters) == ("1M", 2)  # from good_nccl


def test_module_cli_exit_code_and_no_traceback() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "cloudai_nb",
            "verify-configs",
            str(BAD / "scenario_unknown_dependency_id.toml"),
            "--tests-dir",
            str(GOOD_TESTS),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "Tests[1].dependencies[0].id" in result.stdout


def test_a_broken_test_in_tests_dir_is_reported_and_the_rest_still_checked(tmp_path, capsys):
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "ok.toml").write_text('name = "ok"\ntest_template_name = "Sleep"\n')
    (tests / "bad.toml").write_text('name = "bad"\ntest_template_name = "Slep"\n')
    scenario = tmp_path / "s.toml"
    scenario.write_text('name = "s"\n[[Tests]]\nid = "a"\ntest_name = "ok"\n')
    rc = main(["verify-configs", str(scenario), "--tests-dir", str(tests)])
    out = capsys.readouterr().out
    assert rc == 1
    assert "bad.toml:2: test_template_name: unknown test_template_name 'Slep'" in out
    assert f"ok       {scenario} (scenario)" in out
    assert out.rstrip().endswith("1 file: 1 valid, 0 invalid (and 1 invalid in --tests-dir)")
