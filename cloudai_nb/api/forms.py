"""What a job form needs, without widgets: field specs from the models, text to values, validation
errors per field, the preview text and the TOML a form stands for.

The notebook's widget form (`cloudai_nb.notebook.job_form`) is a thin skin over `FormModel`; anything a
form can do is tested here on plain strings.
"""

from __future__ import annotations

import enum
import tempfile
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ValidationError
from pydantic.fields import FieldInfo

from cloudai_nb.core import config, registry
from cloudai_nb.core.errors import CloudAINbError, ConfigError
from cloudai_nb.core.models import TestDefinition, TestRun, TestScenario
from cloudai_nb.core.system import System
from cloudai_nb.engine.scenario_run import plan_jobs

Kind = Literal["int", "float", "bool", "choice", "str", "path", "table"]


@dataclass(frozen=True)
class FieldSpec:
    """One input of a form: what it holds and how to show it."""

    name: str
    kind: Kind
    default: Any
    description: str = ""
    optional: bool = False
    choices: tuple[Any, ...] = ()
    minimum: float | None = None
    maximum: float | None = None
    sweepable: bool = True

    @property
    def help(self) -> str:
        bits = [self.description.rstrip(".")] if self.description else []
        if self.minimum is not None or self.maximum is not None:
            low = "" if self.minimum is None else f"{self.minimum:g} <= "
            high = "" if self.maximum is None else f" <= {self.maximum:g}"
            bits.append(f"{low}value{high}")
        if self.sweepable and (self.kind in ("int", "float", "choice") or self.name in SWEEPABLE_STR_FIELDS):
            bits.append("several values, comma-separated, make a sweep")
        return "; ".join(bits)


def _unwrap_optional(annotation: Any) -> tuple[Any, bool]:
    args = typing.get_args(annotation)
    origin = typing.get_origin(annotation)
    if (origin is typing.Union or origin is types.UnionType) and type(None) in args:
        rest = [a for a in args if a is not type(None)]
        return (rest[0] if len(rest) == 1 else annotation), True
    return annotation, False


def _bounds(info: FieldInfo) -> tuple[float | None, float | None]:
    low = high = None
    for meta in info.metadata:
        for attr, is_low in (("ge", True), ("gt", True), ("le", False), ("lt", False)):
            value = getattr(meta, attr, None)
            if value is not None:
                if is_low:
                    low = float(value)
                else:
                    high = float(value)
    return low, high


def field_spec(name: str, info: FieldInfo) -> FieldSpec:
    """The type-to-input table: one rule per kind of annotation."""
    annotation, optional = _unwrap_optional(info.annotation)
    default = None if info.is_required() else info.get_default(call_default_factory=True)
    low, high = _bounds(info)
    description = info.description or ""
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return FieldSpec(name, "choice", default, description, optional, typing.get_args(annotation))
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return FieldSpec(name, "choice", default, description, optional, tuple(m.value for m in annotation))
    if annotation is bool:
        return FieldSpec(name, "bool", default, description, optional, sweepable=False)
    if annotation is int:
        return FieldSpec(name, "int", default, description, optional, minimum=low, maximum=high)
    if annotation is float:
        return FieldSpec(name, "float", default, description, optional, minimum=low, maximum=high)
    if annotation is Path:
        return FieldSpec(name, "path", default, description, optional, sweepable=False)
    if origin is dict or origin is list:
        return FieldSpec(name, "table", default, description, optional, sweepable=False)
    return FieldSpec(name, "str", default, description, optional)


def field_specs(model: type[BaseModel]) -> list[FieldSpec]:
    return [field_spec(name, info) for name, info in model.model_fields.items()]


def cmd_args_model(workload: type[TestDefinition]) -> type[BaseModel]:
    model = workload.model_fields["cmd_args"].annotation
    assert isinstance(model, type) and issubclass(model, BaseModel)
    return model


def format_value(spec: FieldSpec, value: Any) -> str:
    """A value as the text a form shows (lists as comma-separated sweeps)."""
    if value is None:
        return ""
    if isinstance(value, list) and spec.kind != "table":
        return ", ".join(format_value(spec, v) for v in value)
    if spec.kind == "table":
        if isinstance(value, dict):
            return "\n".join(f"{k} = {v}" for k, v in value.items())
        return "\n".join(str(v) for v in value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _scalar(spec: FieldSpec, text: str) -> Any:
    if spec.kind == "int":
        return int(text)
    if spec.kind == "float":
        return float(text)
    if spec.kind == "choice":
        for choice in spec.choices:
            if str(choice) == text:
                return choice
        return text  # validation names the valid choices
    return text


def parse_text(spec: FieldSpec, text: str) -> Any:
    """Form text to a value: empty -> default (None for optional); ``a, b`` -> a sweep ``[a, b]``.

    Numbers and choices sweep on commas; free text only in fields that hold sizes or modes
    (``minbytes = 1M, 4M``), so a command line may contain commas.
    """
    stripped = text.strip()
    if spec.kind == "table":
        return _parse_table(spec, stripped)
    if not stripped:
        return None if spec.optional else spec.default
    sweeps = spec.sweepable and (spec.kind in ("int", "float", "choice") or spec.name in SWEEPABLE_STR_FIELDS)
    parts = [p.strip() for p in stripped.split(",") if p.strip()] if sweeps else [stripped]
    try:
        values = [_scalar(spec, p) for p in parts]
    except ValueError:
        kind = "a whole number" if spec.kind == "int" else "a number"
        raise ValueError(f"{stripped!r} is not {kind}") from None
    return values[0] if len(values) == 1 else values


# Free-text fields where a comma means "several values" (sizes such as 1M, 4M, 16M).
SWEEPABLE_STR_FIELDS = frozenset({"minbytes", "maxbytes", "stepbytes", "bs", "rw"})


def _parse_table(spec: FieldSpec, text: str) -> Any:
    if spec.default is not None and isinstance(spec.default, list):
        return [line.strip() for line in text.splitlines() if line.strip()]
    table: dict[str, Any] = {}
    for line in text.splitlines():
        if not line.strip():
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"{line.strip()!r}: write one KEY = VALUE per line")
        items = [v.strip() for v in value.split(",")]
        parsed = [_guess(v) for v in items]
        table[key.strip()] = parsed[0] if len(parsed) == 1 else parsed
    return table


def _guess(text: str) -> Any:
    """A table value typed the way TOML would read it: numbers, true/false, else text."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            continue
    return text.strip('"')


RUN_FIELDS = ("num_nodes", "time_limit", "iterations", "extra_env_vars")


@dataclass
class FormResult:
    """What the form's values amount to: a test run, or the errors per field."""

    test_run: TestRun | None = None
    errors: dict[str, str] = field(default_factory=dict)
    steps: int = 1

    @property
    def ok(self) -> bool:
        return self.test_run is not None and not self.errors


class FormModel:
    """The state of a job form: a workload, its ``cmd_args`` texts and the test run's fields."""

    def __init__(self, workload: str, *, name: str | None = None) -> None:
        self.workload_name = workload
        self.workload: type[TestDefinition] = registry.workloads.get(workload)
        self.specs = field_specs(cmd_args_model(self.workload))
        self.texts: dict[str, str] = {spec.name: format_value(spec, spec.default) for spec in self.specs}
        self.name = name or workload.lower()
        self.run_texts = {"num_nodes": "1", "time_limit": "", "iterations": "1", "extra_env_vars": ""}

    @classmethod
    def from_test(cls, test: TestDefinition, test_run: TestRun | None = None) -> FormModel:
        """A form pre-filled from a test definition (and its test run's settings)."""
        form = cls(test.test_template_name, name=test.name)
        args = test.cmd_args_dict()
        for spec in form.specs:
            if spec.name in args:
                form.texts[spec.name] = format_value(spec, args[spec.name])
        if test_run is not None:
            nodes = test_run.num_nodes
            form.run_texts["num_nodes"] = (
                ", ".join(map(str, nodes)) if isinstance(nodes, list) else str(nodes)
            )
            form.run_texts["time_limit"] = test_run.time_limit or ""
            form.run_texts["iterations"] = str(test_run.iterations)
        env = {k: v for k, v in test.extra_env_vars.items()}
        form.run_texts["extra_env_vars"] = "\n".join(f"{k} = {v}" for k, v in env.items())
        return form

    def result(self) -> FormResult:
        """Validate every field; errors come back per field name, in words."""
        errors: dict[str, str] = {}
        args: dict[str, Any] = {}
        for spec in self.specs:
            try:
                value = parse_text(spec, self.texts.get(spec.name, ""))
            except ValueError as exc:
                errors[spec.name] = str(exc)
                continue
            if value is not None or spec.optional:
                args[spec.name] = value
        run_values: dict[str, Any] = {}
        try:
            nodes = [int(p) for p in self.run_texts["num_nodes"].replace(" ", "").split(",") if p]
            run_values["num_nodes"] = nodes[0] if len(nodes) == 1 else (nodes or 1)
        except ValueError:
            errors["num_nodes"] = f"{self.run_texts['num_nodes']!r} is not a whole number (or a list of them)"
        try:
            run_values["iterations"] = int(self.run_texts["iterations"] or "1")
        except ValueError:
            errors["iterations"] = f"{self.run_texts['iterations']!r} is not a whole number"
        if self.run_texts["time_limit"].strip():
            run_values["time_limit"] = self.run_texts["time_limit"].strip()
        try:
            env = _parse_table(FieldSpec("extra_env_vars", "table", {}), self.run_texts["extra_env_vars"])
        except ValueError as exc:
            errors["extra_env_vars"] = str(exc)
            env = {}
        if errors:
            return FormResult(errors=errors)
        data = {
            "name": self.name,
            "test_template_name": self.workload_name,
            "cmd_args": args,
            "extra_env_vars": env,
        }
        try:
            test = config.test_from_dict(data)
        except ConfigError as exc:
            return FormResult(errors=_by_field(exc, "cmd_args."))
        try:
            test_run = TestRun(id=self.name, test=test, **run_values)
        except ValidationError as exc:
            return FormResult(errors={str(e["loc"][0]): _words(e["msg"]) for e in exc.errors()})
        from cloudai_nb.core import sweep

        return FormResult(test_run, steps=sweep.count(test_run) * test_run.iterations)

    def scenario(self) -> TestScenario:
        result = self.result()
        if result.test_run is None:
            raise CloudAINbError(
                "the form has errors: " + "; ".join(f"{k}: {v}" for k, v in result.errors.items())
            )
        return TestScenario(name=self.name, test_runs=[result.test_run])

    def toml(self) -> str:
        """The cell that makes the same job: ``%%cloudai_test`` text, plus the run's own settings."""
        import tomli_w

        scenario = self.scenario()
        run = scenario.test_runs[0]
        if run.num_nodes == 1 and run.iterations == 1 and run.time_limit is None:
            return "%%cloudai_test\n" + tomli_w.dumps(run.test.toml_dict(compact=True))
        return "%%cloudai_scenario\n" + tomli_w.dumps(config.scenario_to_dict(scenario))

    def preview(self, system: System) -> str:
        """Exactly what would run: the files a dry run writes for the first job (command or sbatch)."""
        from cloudai_nb.systems import backend_for

        scenario = self.scenario()
        backend = backend_for(system)
        with tempfile.TemporaryDirectory() as tmp:
            job = plan_jobs(scenario, Path(tmp) / f"{scenario.name}_preview")[0]
            job.output_path.mkdir(parents=True)
            backend.prepare(job)
            shown = []
            for name in ("cloudai_sbatch_script.sh", "env_vars.sh", "command.sh"):
                path = job.output_path / name
                if path.exists():
                    shown.append(f"# {name}\n" + path.read_text().replace(tmp, "<output>"))
        return "\n".join(shown)


def _words(message: str) -> str:
    return message.removeprefix("Value error, ")


def _by_field(exc: ConfigError, prefix: str) -> dict[str, str]:
    errors: dict[str, str] = {}
    for problem in exc.problems or [exc]:
        name = (problem.field or "form").removeprefix(prefix).split(".")[0].split("[")[0]
        errors.setdefault(name, problem.message)
    return errors


def steps_label(result: FormResult) -> str:
    """How many jobs Submit will start (sweep steps times iterations)."""
    return f"{result.steps} job{'s' if result.steps != 1 else ''}"
