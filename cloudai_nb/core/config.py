"""Load CloudAI's three TOML schemas (system, test, scenario) into the core models.

Every problem becomes a `ConfigError` naming the file, the line where it can be found, the field
path (``Tests[2].cmd_args.iters``) and, for closed sets, the valid choices.

>>> system = load_system("conf/systems/standalone.toml")          # doctest: +SKIP
>>> tests = load_tests("conf/tests")                              # doctest: +SKIP
>>> scenario = load_scenario("conf/scenarios/sleep.toml", tests)  # doctest: +SKIP
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError

from cloudai_nb.core import registry
from cloudai_nb.core.errors import ConfigError, did_you_mean, one_of, unknown_key
from cloudai_nb.core.models import CmdArgs, TestDefinition, TestRun, TestScenario
from cloudai_nb.core.system import System
from cloudai_nb.core.tomlpos import find_line

_TOML_POSITION = re.compile(r"\(at line (?P<line>\d+), column (?P<column>\d+)\)$")

ConfigKind = Literal["system", "test", "scenario"]

# Keys of a [[Tests]] entry that place the test; everything else overrides the test definition.
_RUN_KEYS = frozenset(TestRun.model_fields) - {"test"} | {"test_name"}
_OVERRIDE_KEYS = frozenset(TestDefinition.model_fields)


@dataclass(frozen=True)
class Source:
    """Where a config came from: its path (or a label such as ``<cell>``) and its text."""

    path: str
    text: str

    @property
    def folder(self) -> Path:
        return Path(self.path).parent if not self.path.startswith("<") else Path.cwd()


def read_toml(path: str | Path) -> tuple[dict[str, Any], Source]:
    """Read and parse one TOML file; any problem is a `ConfigError` with line and column."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror or exc}", file=file) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(f"not UTF-8 text (byte {exc.start})", file=file, line=line) from None
    return parse_toml(text, str(file)), Source(str(file), text)


def parse_toml(text: str, label: str = "<string>") -> dict[str, Any]:
    if not text.strip():
        raise ConfigError("empty file: expected a system, test or scenario", file=label)
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message, line, column = str(exc), None, None
        match = _TOML_POSITION.search(message)
        if match:
            line, column = int(match["line"]), int(match["column"])
            message = _explain_syntax(message[: match.start()].rstrip(), text.splitlines()[line - 1 : line])
        elif message.endswith("(at end of document)"):
            line = text.count("\n") + (0 if text.endswith("\n") else 1)
            message = message.removesuffix("(at end of document)").rstrip() + " at end of file"
        raise ConfigError(f"TOML syntax error: {message}", file=label, line=line, column=column) from None


def _explain_syntax(message: str, lines: list[str]) -> str:
    """tomllib's terse messages, with the cause spelled out for the common cases."""
    text = lines[0] if lines else ""
    if message == "Cannot overwrite a value" and "=" in text:
        return f"duplicate key {text.split('=', 1)[0].strip()!r} (a key may be set only once per table)"
    if message.startswith("Illegal character '\\n'") and text.count('"') % 2 == 1:
        return 'unterminated string (a "..." string must end on the same line)'
    if message == "Invalid value":
        return 'invalid value (text needs quotes: key = "text")'
    return message


def classify(data: Mapping[str, Any]) -> ConfigKind:
    """Tell a system, test or scenario apart by its keys, as CloudAI does."""
    if "scheduler" in data:
        return "system"
    if "Tests" in data:
        return "scenario"
    if "test_template_name" in data:
        return "test"
    hint = ""
    for key in data:
        hint = hint or did_you_mean(str(key), ("scheduler", "Tests", "test_template_name"))
    raise ConfigError(
        "cannot tell what this file configures: a system has a 'scheduler' key, "
        "a test a 'test_template_name', a scenario [[Tests]]" + hint
    )


def classify_or_none(data: Mapping[str, Any]) -> ConfigKind | None:
    try:
        return classify(data)
    except ConfigError:
        return None


def field_path(loc: Iterable[str | int]) -> str:
    """``("Tests", 2, "cmd_args", "iters")`` -> ``Tests[2].cmd_args.iters``."""
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _problems(
    exc: ValidationError, source: Source | None, prefix: tuple[str | int, ...] = ()
) -> list[ConfigError]:
    found: dict[tuple[str | int, ...], list[str]] = {}
    for error in exc.errors(include_url=False):
        loc = tuple(part for part in error["loc"] if not _is_tag(part))
        ctx = error.get("ctx") or {}
        if error["type"] == "unknown_key":
            loc = (*loc, ctx["key"])
        if "at" in ctx:  # sweep errors locate themselves below the model that raised them
            loc = (*loc, *_parse_field(ctx["at"]))
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if error["type"] in ("literal_error", "enum") and "input" in error:
            message += f", got {error['input']!r}"
        elif error["type"] == "missing":
            message = "required field is missing"
        found.setdefault((*prefix, *loc), []).append(message)
    problems = []
    for full, messages in found.items():
        line = find_line(source.text, full) if source else None
        problems.append(
            ConfigError(
                _merge_messages(messages),
                file=source.path if source else None,
                line=line,
                field=field_path(full) or None,
            )
        )
    return problems


def _merge_messages(messages: list[str]) -> str:
    """One message for one field: a value that fits no member of a union lists what would fit."""
    kinds = [
        m.removeprefix("Input should be a valid ")
        for m in messages
        if m.startswith("Input should be a valid ")
    ]
    if len(kinds) == len(messages) > 1:
        names = [k.split(",")[0] for k in kinds]
        article = "an" if names[0][0] in "aeiou" else "a"
        return f"expected {article} " + ", ".join(names[:-1]) + " or " + names[-1]
    return messages[0]


def _is_tag(part: str | int) -> bool:
    # pydantic adds the member type to a union's location ("function-wrap[...]", "int", "list[int]")
    return isinstance(part, str) and (part.endswith("]") or part in ("int", "str", "float", "bool"))


def _raise(problems: list[ConfigError]) -> None:
    if problems:
        first = problems[0]
        raise ConfigError(
            first.message,
            file=first.file,
            line=first.line,
            column=first.column,
            field=first.field,
            problems=problems,
        )


def validate(
    model: type[BaseModel], data: Any, source: Source | None = None, prefix: tuple[str | int, ...] = ()
) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        _raise(_problems(exc, source, prefix))
    raise AssertionError("unreachable")


# --- systems -----------------------------------------------------------------------------------


def system_from_dict(data: Mapping[str, Any], source: Source | None = None) -> System:
    """Validate system data; ``install_path`` and ``output_path`` resolve against the cwd (as CloudAI)."""
    scheduler = data.get("scheduler")
    if not isinstance(scheduler, str) or scheduler not in registry.systems:
        names = [str(k) for k in registry.systems]
        hint = did_you_mean(str(scheduler), names) if isinstance(scheduler, str) else ""
        line = find_line(source.text, ("scheduler",)) if source else None
        raise ConfigError(
            f"unknown scheduler {scheduler!r}{hint}; {one_of(names)}",
            file=source.path if source else None,
            line=line,
            field="scheduler",
        )
    system: System = validate(registry.systems.get(scheduler), dict(data), source)
    cwd = Path.cwd()
    return system.model_copy(
        update={"install_path": cwd / system.install_path, "output_path": cwd / system.output_path}
    )


def load_system(path: str | Path) -> System:
    data, source = read_toml(path)
    _expect(data, "system", source)
    return system_from_dict(data, source)


# --- tests -------------------------------------------------------------------------------------


def _workload(name: Any, source: Source | None, loc: tuple[str | int, ...]) -> type[TestDefinition]:
    names = [str(k) for k in registry.workloads]
    if not isinstance(name, str) or name not in registry.workloads:
        hint = did_you_mean(name, names) if isinstance(name, str) else ""
        raise ConfigError(
            f"unknown test_template_name {name!r}{hint}; registered workloads: {', '.join(sorted(names))}",
            file=source.path if source else None,
            line=find_line(source.text, loc) if source else None,
            field=field_path(loc),
        )
    workload: type[TestDefinition] = registry.workloads.get(name)
    return workload


def _resolve_paths(workload: type[TestDefinition], data: dict[str, Any], folder: Path) -> dict[str, Any]:
    args_cls = workload.model_fields["cmd_args"].annotation
    args = data.get("cmd_args")
    if not (isinstance(args, dict) and isinstance(args_cls, type) and issubclass(args_cls, CmdArgs)):
        return data
    resolved = dict(args)
    for name in args_cls.config_path_fields:
        value = resolved.get(name)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            resolved[name] = str(folder / value)
    return {**data, "cmd_args": resolved}


def test_from_dict(
    data: Mapping[str, Any], source: Source | None = None, prefix: tuple[str | int, ...] = ()
) -> TestDefinition:
    """Validate one test definition, choosing its model by ``test_template_name``."""
    workload = _workload(data.get("test_template_name"), source, (*prefix, "test_template_name"))
    folder = source.folder if source else Path.cwd()
    test: TestDefinition = validate(workload, _resolve_paths(workload, dict(data), folder), source, prefix)
    return test


test_from_dict.__test__ = False  # type: ignore[attr-defined]


def load_test(path: str | Path) -> TestDefinition:
    data, source = read_toml(path)
    _expect(data, "test", source)
    return test_from_dict(data, source)


def toml_files(paths: Iterable[str | Path]) -> list[Path]:
    """The ``.toml`` files named, and those found recursively in the folders named, sorted."""
    found: list[Path] = []
    for entry in paths:
        path = Path(entry)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*.toml") if p.is_file()))
        elif path.exists():
            found.append(path)
        else:
            raise ConfigError("no such file or folder", file=path)
    return found


def load_tests(folder: str | Path) -> dict[str, TestDefinition]:
    """Every test TOML under ``folder`` by name; a duplicate name is an error naming both files."""
    tests: dict[str, TestDefinition] = {}
    origin: dict[str, Path] = {}
    for file in toml_files([folder]):
        data, source = read_toml(file)
        if "test_template_name" not in data or "Tests" in data:
            continue
        test = test_from_dict(data, source)
        if test.name in tests:
            raise ConfigError(
                f"test name {test.name!r} is also defined in {origin[test.name]}", file=file, field="name"
            )
        tests[test.name] = test
        origin[test.name] = file
    return tests


# --- scenarios ---------------------------------------------------------------------------------


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _test_run_data(
    index: int, entry: Any, tests: Mapping[str, TestDefinition], source: Source | None
) -> dict[str, Any]:
    loc: tuple[str | int, ...] = ("Tests", index)

    def error(message: str, *where: str | int) -> ConfigError:
        full = (*loc, *where)
        line = find_line(source.text, full) if source else None
        return ConfigError(message, file=source.path if source else None, line=line, field=field_path(full))

    if not isinstance(entry, dict):
        raise error("each [[Tests]] entry must be a table")
    valid = _RUN_KEYS | _OVERRIDE_KEYS
    for key in entry:
        if key not in valid:
            raise error(unknown_key(key, valid), key)
    if "id" not in entry:
        raise error("required field is missing", "id")
    run = {k: v for k, v in entry.items() if k in _RUN_KEYS and k != "test_name"}
    overrides = {k: v for k, v in entry.items() if k in _OVERRIDE_KEYS}
    test_name = entry.get("test_name")
    if test_name is not None:
        if "test_template_name" in entry:
            raise error(
                "give either test_name or an inline test_template_name, not both", "test_template_name"
            )
        if test_name not in tests:
            known = (
                ", ".join(sorted(tests)) or "none (load tests: --tests-dir, tests_dir=, %cloudai_test --dir)"
            )
            raise error(
                f"unknown test_name {test_name!r}{did_you_mean(str(test_name), tests)}; tests found: {known}",
                "test_name",
            )
        base = tests[test_name]
        data = _deep_merge(base.toml_dict(), overrides)
        test = test_from_dict(data, source, loc)
    else:
        if "test_template_name" not in entry:
            raise error(
                "a test needs test_name (a test from --tests-dir) or an inline test_template_name",
                "test_name",
            )
        test = test_from_dict({"name": entry["id"], **overrides}, source, loc)
    run["test"] = test
    if run.get("num_nodes") is None:
        run.pop("num_nodes", None)
    return run


def scenario_from_dict(
    data: Mapping[str, Any], tests: Mapping[str, TestDefinition] | None = None, source: Source | None = None
) -> TestScenario:
    """Validate scenario data; ``[[Tests]]`` entries name a test of ``tests`` or define one inline."""
    tests = tests or {}
    file = source.path if source else None

    def line_of(*loc: str | int) -> int | None:
        return find_line(source.text, loc) if source else None

    valid = set(TestScenario.model_fields) - {"test_runs", "hooks"} | {"Tests"}
    for key in data:
        if key not in valid:
            raise ConfigError(
                unknown_key(key, valid),
                file=file,
                line=line_of(key),
                field=key,
            )
    entries = data.get("Tests")
    if entries is not None and not isinstance(entries, list):
        raise ConfigError(
            f"must be an array of tables ([[Tests]]), got a {_toml_type(entries)}",
            file=file,
            line=line_of("Tests"),
            field="Tests",
        )
    if not entries:
        raise ConfigError(
            "a scenario needs at least one [[Tests]] entry", file=file, line=line_of("Tests"), field="Tests"
        )
    problems: list[ConfigError] = []
    runs: list[dict[str, Any]] = []
    for index, entry in enumerate(entries):
        try:
            runs.append(_test_run_data(index, entry, tests, source))
        except ConfigError as exc:
            problems.extend(exc.problems or [exc])
    _raise(problems)
    body = {k: v for k, v in data.items() if k != "Tests"}
    body["test_runs"] = runs
    try:
        scenario: TestScenario = TestScenario.model_validate(body)
    except ValidationError as exc:
        _raise([_rename_runs(p, source) for p in _problems(exc, None)])
        raise
    except ConfigError as exc:  # from the dependency checks
        raise _rename_runs(exc, source) from None
    return scenario


HOOK_KINDS = ("pre_test", "post_test")
DEFAULT_HOOK_DIR = Path("conf/hook")  # CloudAI's default --hook-dir


def load_hooks(folder: str | Path) -> dict[str, TestScenario]:
    """CloudAI's hook folder: hook scenarios in ``folder``, the tests they use in ``folder/test``."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ConfigError("no such folder (the hook folder holds pre_test/post_test scenarios)", file=folder)
    tests = load_tests(folder / "test") if (folder / "test").is_dir() else {}
    hooks: dict[str, TestScenario] = {}
    for file in sorted(folder.glob("*.toml")):
        data, source = read_toml(file)
        if classify_or_none(data) == "scenario":
            hook = scenario_from_dict(data, tests, source)
            hooks[hook.name] = hook
    return hooks


def attach_hooks(
    scenario: TestScenario, hooks: Mapping[str, TestScenario], source: Source | None = None
) -> TestScenario:
    """The scenario with the hooks its ``pre_test``/``post_test`` name; an unknown name is an error."""
    chosen: dict[str, TestScenario] = {}
    for kind in HOOK_KINDS:
        name = getattr(scenario, kind)
        if name is None:
            continue
        if name not in hooks:
            found = ", ".join(sorted(hooks)) or "none"
            raise ConfigError(
                f"unknown {kind} {name!r}{did_you_mean(name, hooks)}; hooks found: {found} "
                "(the hook folder: --hook-dir DIR, hook_dir=)",
                file=source.path if source else None,
                line=find_line(source.text, (kind,)) if source else None,
                field=kind,
            )
        chosen[name] = hooks[name]
    return scenario.model_copy(update={"hooks": chosen})


def _toml_type(value: Any) -> str:
    names = {str: "string", bool: "boolean", int: "integer", float: "float", dict: "table", list: "array"}
    return names.get(type(value), type(value).__name__)


def _rename_runs(problem: ConfigError, source: Source | None) -> ConfigError:
    """Report ``test_runs[i].test.x`` as the TOML spells it: ``Tests[i].x``."""
    field = (problem.field or "").replace("test_runs[", "Tests[").replace("].test.", "].")
    line = None
    if source and field:
        line = find_line(source.text, _parse_field(field))
    return ConfigError(problem.message, file=source.path if source else None, line=line, field=field or None)


def _parse_field(field: str) -> tuple[str | int, ...]:
    parts: list[str | int] = []
    for chunk in field.replace("]", "").split("."):
        name, *indexes = chunk.split("[")
        if name:
            parts.append(name)
        parts.extend(int(i) for i in indexes if i.isdigit())
    return tuple(parts)


def load_scenario(path: str | Path, tests: Mapping[str, TestDefinition] | None = None) -> TestScenario:
    data, source = read_toml(path)
    _expect(data, "scenario", source)
    return scenario_from_dict(data, tests, source)


def _expect(data: Mapping[str, Any], kind: ConfigKind, source: Source) -> None:
    try:
        found = classify(data)
    except ConfigError as exc:
        raise exc.located(source.path) from None
    if found != kind:
        raise ConfigError(f"expected a {kind} config, but this looks like a {found}", file=source.path)


def scenario_to_dict(scenario: TestScenario) -> dict[str, Any]:
    """A scenario as CloudAI scenario TOML data with every test inline (the inverse of loading)."""
    data: dict[str, Any] = {"name": scenario.name, "job_status_check": scenario.job_status_check}
    for key in ("pre_test", "post_test", "sol_path"):
        value = getattr(scenario, key)
        if value is not None:
            data[key] = value
    tests = []
    for run in scenario.test_runs:
        entry = run.model_dump(mode="json", exclude={"test"}, exclude_defaults=True, exclude_none=True)
        entry["id"] = run.id
        entry.update(run.test.toml_dict())
        tests.append(entry)
    data["Tests"] = tests
    return data


def system_to_dict(system: System) -> dict[str, Any]:
    """A system as CloudAI system TOML data."""
    data: dict[str, Any] = system.model_dump(mode="json", exclude_none=True)
    return data
