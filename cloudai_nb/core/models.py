"""The pydantic models every layer speaks: tests, test runs, scenarios, dependencies, job states.

System configuration models live in `cloudai_nb.core.system`; workloads subclass `TestDefinition`
(and `CmdArgs`) in `cloudai_nb.workloads`.
"""

from __future__ import annotations

import enum
import re
from typing import TYPE_CHECKING, Any, ClassVar, Literal, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SerializeAsAny,
    ValidationError,
    ValidatorFunctionWrapHandler,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cloudai_nb.core.duration import parse_time_limit
from cloudai_nb.core.errors import unknown_key
from cloudai_nb.core.nodelist import NodeListError, expand

if TYPE_CHECKING:
    from cloudai_nb.core.installables import GitRepo, Installable

EnvValue = str | int | float | bool


class StrictModel(BaseModel):
    """Base of every config model: unknown keys are errors that suggest the closest valid key."""

    model_config = ConfigDict(extra="forbid", validate_default=True)

    @model_validator(mode="before")
    @classmethod
    def _reject_unknown_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            known = set(cls.model_fields)
            known.update(f.alias for f in cls.model_fields.values() if f.alias)
            for key in data:
                if key not in known:
                    raise PydanticCustomError(
                        "unknown_key", "{message}", {"key": key, "message": unknown_key(str(key), known)}
                    )
        return data


class JobState(enum.StrEnum):
    """Slurm's job state names, plus the states a job has before or instead of reaching Slurm."""

    PENDING = "PENDING"
    RUNNING = "RUNNING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"
    TIMEOUT = "TIMEOUT"
    NODE_FAIL = "NODE_FAIL"
    OUT_OF_MEMORY = "OUT_OF_MEMORY"
    PREEMPTED = "PREEMPTED"
    BOOT_FAIL = "BOOT_FAIL"
    DEADLINE = "DEADLINE"
    UNKNOWN = "UNKNOWN"
    WAITING = "WAITING"  # dependencies not met yet; not submitted
    SKIPPED = "SKIPPED"  # never started because the scenario stopped
    DRY_RUN = "DRY_RUN"  # files written, nothing submitted

    @property
    def is_done(self) -> bool:
        return self in _DONE

    @property
    def is_live(self) -> bool:
        """Submitted and not finished: the scheduler has to be asked about it."""
        return self in (JobState.PENDING, JobState.RUNNING)

    @property
    def is_failure(self) -> bool:
        """Ended badly by itself (FAILED, TIMEOUT, NODE_FAIL...); CANCELLED and SKIPPED say why elsewhere."""
        return self.is_done and self not in (
            JobState.COMPLETED,
            JobState.DRY_RUN,
            JobState.CANCELLED,
            JobState.SKIPPED,
        )

    def __str__(self) -> str:
        return self.value


_DONE = frozenset(JobState) - {JobState.PENDING, JobState.RUNNING, JobState.WAITING, JobState.UNKNOWN}


DependencyType = Literal["start_post_init", "start_post_comp", "end_post_comp"]
# what a job can wait for when a scheduler holds it back: another job started, ended, or succeeded
Waits = Literal["started", "ended", "succeeded"]


class Dependency(StrictModel):
    """``[[Tests.dependencies]]``: this run reacts to the run with ``id``.

    - ``start_post_init``: start once that run is RUNNING;
    - ``start_post_comp``: start once that run finished its last iteration;
    - ``end_post_comp``: cancel this run when that one finishes.
    """

    type: DependencyType
    id: str


class CmdArgs(StrictModel):
    """Base of every workload's typed command-line arguments.

    ``config_path_fields`` names fields holding paths to other files: the loader resolves them
    against the folder of the TOML file that names them.
    """

    config_path_fields: ClassVar[tuple[str, ...]] = ()


class _EmptySweep(ValueError):
    def __init__(self, path: str) -> None:
        super().__init__(path)
        self.path = path


def _is_list_type(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin in (list, tuple, set, frozenset):
        return True
    return any(_is_list_type(a) for a in get_args(annotation) if a is not type(None))


def _split_sweep(
    args_cls: type[BaseModel], raw: dict[str, Any], prefix: str = ""
) -> tuple[dict[str, Any], dict[str, list[Any]]]:
    """Separate sweep dimensions (lists where the field takes one value) from fixed values.

    The fixed dict carries each dimension's first value, so it validates as one concrete step.
    Open tables (``dict`` fields such as Fio's ``args``) may sweep any of their values.
    """
    fixed: dict[str, Any] = {}
    sweep: dict[str, list[Any]] = {}
    fields = args_cls.model_fields
    for key, value in raw.items():
        field = fields.get(key)
        annotation = field.annotation if field else None
        if isinstance(value, dict) and isinstance(annotation, type) and issubclass(annotation, BaseModel):
            sub_fixed, sub_sweep = _split_sweep(annotation, value, f"{prefix}{key}.")
            fixed[key] = sub_fixed
            sweep.update(sub_sweep)
        elif isinstance(value, dict) and get_origin(annotation) is dict:
            sub = {}
            for k, v in value.items():
                if isinstance(v, list):
                    if not v:
                        raise _EmptySweep(f"{prefix}{key}.{k}")
                    sweep[f"{prefix}{key}.{k}"] = v
                    sub[k] = v[0]
                else:
                    sub[k] = v
            fixed[key] = sub
        elif isinstance(value, list) and field is not None and not _is_list_type(annotation):
            if not value:
                raise _EmptySweep(f"{prefix}{key}")
            sweep[f"{prefix}{key}"] = value
            fixed[key] = value[0]
        else:
            fixed[key] = value
    return fixed, sweep


def with_path(data: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    """A copy of nested ``data`` with the dotted ``path`` set to ``value``."""
    head, _, rest = path.partition(".")
    out = dict(data)
    out[head] = with_path(dict(out.get(head) or {}), rest, value) if rest else value
    return out


def get_path(data: Any, path: str) -> Any:
    for part in path.split("."):
        data = data[part] if isinstance(data, dict) else getattr(data, part)
    return data


class TestDefinition(StrictModel):
    """One test (CloudAI's Test TOML): a workload with its arguments.

    Each workload subclasses this with its own ``cmd_args`` model and registers it under its
    ``test_template_name``. A list given for a single-valued ``cmd_args`` field is a sweep: see
    `sweep`.
    """

    __test__ = False  # not a pytest class

    name: str = Field(min_length=1, description="Name other files refer to (a scenario's test_name).")
    description: str = ""
    test_template_name: str
    cmd_args: CmdArgs = Field(default_factory=CmdArgs)
    extra_env_vars: dict[str, EnvValue] = Field(default_factory=dict)
    extra_cmd_args: dict[str, str] = Field(default_factory=dict)
    extra_container_mounts: list[str] = Field(default_factory=list)
    git_repos: list[GitRepo] = Field(default_factory=list, description="Repositories the test needs.")
    # CloudAI's design-space exploration keys: sweeps here always run every combination (a grid).
    agent: Literal["grid_search"] = Field(default="grid_search", description="How sweeps are explored.")
    agent_steps: int = Field(default=1, ge=1)
    agent_metrics: list[str] = Field(default_factory=lambda: ["default"])

    _sweep: dict[str, list[Any]] = PrivateAttr(default_factory=dict)

    @model_validator(mode="wrap")
    @classmethod
    def _take_sweep(cls, data: Any, handler: ValidatorFunctionWrapHandler) -> Any:
        if not isinstance(data, dict):
            return handler(data)
        raw = data.get("cmd_args")
        env = data.get("extra_env_vars")
        args_cls = cls.model_fields["cmd_args"].annotation
        assert isinstance(args_cls, type) and issubclass(args_cls, BaseModel)
        fixed: dict[str, Any] = {}
        sweep: dict[str, list[Any]] = {}
        if isinstance(raw, dict):
            try:
                fixed, sweep = _split_sweep(args_cls, raw)
            except _EmptySweep as exc:
                raise PydanticCustomError(
                    "sweep", "a sweep needs at least one value", {"at": f"cmd_args.{exc.path}"}
                ) from None
            data = {**data, "cmd_args": fixed}
        env_sweep: dict[str, list[Any]] = {}
        if isinstance(env, dict):
            for name, value in env.items():
                if isinstance(value, list):
                    if not value:
                        raise PydanticCustomError(
                            "sweep", f"extra_env_vars.{name}: a sweep needs at least one value"
                        )
                    env_sweep[f"extra_env_vars.{name}"] = value
            if env_sweep:
                data = {
                    **data,
                    "extra_env_vars": {k: v[0] if isinstance(v, list) else v for k, v in env.items()},
                }
        instance = handler(data)
        checked: dict[str, list[Any]] = {}
        for path, values in env_sweep.items():
            for i, value in enumerate(values):
                if not isinstance(value, str | int | float | bool):
                    raise PydanticCustomError(
                        "sweep_value", "expected a string or number", {"at": f"{path}[{i}]"}
                    )
            checked[path] = list(values)
        for path, values in sweep.items():
            checked[path] = []
            for i, value in enumerate(values):
                try:
                    step = args_cls.model_validate(with_path(fixed, path, value))
                except ValidationError as exc:
                    first = exc.errors()[0]
                    raise PydanticCustomError(
                        "sweep_value", "{msg}", {"at": f"cmd_args.{path}[{i}]", "msg": first["msg"]}
                    ) from None
                checked[path].append(get_path(step, path))
        # cmd_args dimensions first, then environment variables: the order steps are numbered in
        instance._sweep = dict(
            sorted(checked.items(), key=lambda item: item[0].startswith("extra_env_vars."))
        )
        return instance

    def __repr_args__(self) -> Any:
        yield from super().__repr_args__()
        if self._sweep:
            yield "sweep", self._sweep

    @property
    def sweep(self) -> dict[str, list[Any]]:
        """Sweep dimensions: dotted ``cmd_args`` path -> the values to try (empty: no sweep)."""
        return self._sweep

    def cmd_args_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """``cmd_args`` as plain data with sweep dimensions back as lists (what the TOML said).

        ``compact`` leaves out values equal to their defaults.
        """
        data = self.cmd_args.model_dump(mode="json", exclude_none=True, exclude_defaults=compact)
        for path, values in self._sweep.items():
            if not path.startswith("extra_env_vars."):
                data = with_path(data, path, list(values))
        return data

    def toml_dict(self, *, compact: bool = False) -> dict[str, Any]:
        """This definition as CloudAI's Test TOML data (sweeps as lists).

        ``compact`` also leaves out the ``cmd_args`` equal to their defaults (for people to read).
        """
        data = self.model_dump(mode="json", exclude_none=True, exclude_defaults=True, exclude={"cmd_args"})
        data["name"] = self.name
        data["test_template_name"] = self.test_template_name
        args = self.cmd_args_dict(compact=compact)
        if args:
            data["cmd_args"] = args
        for path, values in self._sweep.items():
            if path.startswith("extra_env_vars."):
                data = with_path(data, path, list(values))
        return data

    def installables(self) -> list[Installable]:
        """What must be installed on the system before this test runs: its git repos, and its
        container image when ``cmd_args`` has a non-empty ``docker_image_url``."""
        from cloudai_nb.core.installables import DockerImage

        items: list[Installable] = list(self.git_repos)
        url = getattr(self.cmd_args, "docker_image_url", None)
        if isinstance(url, str) and url:
            items.append(DockerImage(url=url))
        return items

    def with_params(self, params: dict[str, Any]) -> TestDefinition:
        """One concrete step of a sweep.

        ``params`` maps sweep paths (as in `sweep`: ``cmd_args`` paths such as ``args.bs``, or
        ``extra_env_vars.NAME``) to one value each.
        """
        data = self.model_dump(mode="python", exclude={"cmd_args"})
        data["cmd_args"] = self.cmd_args.model_dump(mode="python")
        for path, value in params.items():
            data = with_path(data, path if path.startswith("extra_env_vars.") else f"cmd_args.{path}", value)
        step = type(self).model_validate(data)
        step._sweep = {}
        return step


_SAFE_ID = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+=@-]*$")
_GROUP_SPEC = re.compile(r"^(?P<partition>[^:\s]+):(?P<group>[^:\s]+):(?P<count>\d+|max_avail)$")


def check_safe_id(value: str) -> str:
    """Test ids become directory names: letters, digits and ``_ . - + = @``, not starting with a dot."""
    if not value or not _SAFE_ID.match(value) or value in (".", ".."):
        raise ValueError(
            f"test id {value!r} is not safe as a directory name "
            "(use letters, digits and _ . - + = @; no slashes, spaces or leading dot)"
        )
    return value


class TestRun(StrictModel):
    """A `TestDefinition` placed on a system within a scenario."""

    __test__ = False

    id: str = Field(description="Unique within the scenario; names the run's output folder.")
    test: SerializeAsAny[TestDefinition]
    num_nodes: int | list[int] = Field(
        default=1, description="Nodes per job; a list sweeps over node counts."
    )
    nodes: list[str] = Field(
        default_factory=list, description="Node lists (n[1-4]) or PARTITION:GROUP:N specs."
    )
    exclude_nodes: list[str] = Field(default_factory=list)
    time_limit: str | None = Field(default=None, description="Slurm time limit, e.g. 30 or 1:00:00.")
    iterations: int = Field(default=1, ge=1, description="Times to run, one after another.")
    dependencies: list[Dependency] = Field(default_factory=list)
    # Kept for CloudAI compatibility and reports; they do not change how the run is executed.
    weight: int = 0
    sol: float | None = None
    ideal_perf: float = 1.0

    _id_check = field_validator("id")(classmethod(lambda cls, v: check_safe_id(v)))

    @field_validator("num_nodes")
    @classmethod
    def _positive_nodes(cls, value: int | list[int]) -> int | list[int]:
        counts = value if isinstance(value, list) else [value]
        if not counts:
            raise ValueError("a num_nodes sweep needs at least one value")
        for count in counts:
            if count < 1:
                raise ValueError(f"num_nodes must be at least 1, got {count}")
        return value

    @field_validator("nodes", "exclude_nodes")
    @classmethod
    def _node_specs(cls, value: list[str]) -> list[str]:
        for spec in value:
            if _GROUP_SPEC.match(spec):
                continue
            try:
                expand(spec)
            except NodeListError as exc:
                raise ValueError(f"{exc} (or use PARTITION:GROUP:N / PARTITION:GROUP:max_avail)") from None
        return value

    @field_validator("time_limit")
    @classmethod
    def _time_limit(cls, value: str | None) -> str | None:
        if value is not None:
            parse_time_limit(value)
        return value

    @property
    def time_limit_seconds(self) -> int | None:
        return None if self.time_limit is None else parse_time_limit(self.time_limit)


class TestScenario(StrictModel):
    """A named set of test runs with their dependencies (CloudAI's Test Scenario TOML)."""

    __test__ = False

    name: str = Field(min_length=1)
    job_status_check: bool = Field(default=True, description="Stop the scenario at the first failed job.")
    pre_test: str | None = Field(default=None, description="A hook scenario run before each test (Slurm).")
    post_test: str | None = Field(default=None, description="A hook scenario run after each test (Slurm).")
    test_runs: list[TestRun] = Field(min_length=1)
    sol_path: str | None = None
    reports: Any = Field(default=None, description="Accepted for CloudAI compatibility.")
    hooks: dict[str, TestScenario] = Field(
        default_factory=dict,
        exclude=True,
        repr=False,
        description="The scenarios pre_test and post_test name, by name (loaded from a hook folder).",
    )

    @model_validator(mode="after")
    def _check_graph(self) -> TestScenario:
        from cloudai_nb.core.graph import check_dependencies

        check_dependencies(self.test_runs)
        return self

    def hook(self, kind: str) -> TestScenario | None:
        """The scenario ``pre_test`` or ``post_test`` names, once loaded (see `config.attach_hooks`)."""
        name = getattr(self, kind)
        return None if name is None else self.hooks.get(name)

    def get(self, test_id: str) -> TestRun:
        for run in self.test_runs:
            if run.id == test_id:
                return run
        raise KeyError(test_id)


# `installables` subclasses StrictModel, so it comes after this module; importing it resolves
# TestDefinition's ``git_repos`` annotation (see the end of that module).
from cloudai_nb.core import installables as _installables  # noqa: E402, F401
