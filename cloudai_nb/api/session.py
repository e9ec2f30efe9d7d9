"""`Session`: what a notebook (or any long-lived caller) has defined so far, by name.

The magics are thin: each parses its line and calls one method here. A session holds the chosen
system, the tests and scenarios defined in cells, and the runs started from it.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cloudai_nb.api.run import Run
from cloudai_nb.api.runs import default_system, load_run, run
from cloudai_nb.core import config, registry
from cloudai_nb.core.errors import CloudAINbError, ConfigError, RunNotFoundError, did_you_mean
from cloudai_nb.core.job import Job
from cloudai_nb.core.models import TestDefinition, TestRun, TestScenario
from cloudai_nb.core.system import System
from cloudai_nb.engine.ledger import RUN_FILE

if TYPE_CHECKING:
    import pandas as pd

_PLACEHOLDER = re.compile(r"(?<!\$)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def expand_placeholders(text: str, namespace: Mapping[str, Any], label: str = "<cell>") -> str:
    """Replace ``{name}`` with the value of the variable ``name``.

    Inside a TOML string an unknown ``{name}`` stays as it is (``awk '{print}'``, and ``${HOME}``
    is never touched); outside a string it can only be a placeholder, so it must be defined.
    """
    lines = text.split("\n")
    for number, line in enumerate(lines, start=1):

        def replace(match: re.Match[str], line: str = line, number: int = number) -> str:
            name = match[1]
            if name in namespace:
                return str(namespace[name])
            before = line[: match.start()]
            if before.count('"') % 2 == 0 and before.count("'") % 2 == 0:
                raise ConfigError(f"undefined variable {name!r} in {match[0]}", file=label, line=number)
            return match[0]

        lines[number - 1] = _PLACEHOLDER.sub(replace, line)
    return "\n".join(lines)


class Session:
    def __init__(self) -> None:
        self.system: System = default_system()
        self.systems: dict[str, System] = {self.system.name: self.system}
        self.tests: dict[str, TestDefinition] = {}
        self.scenarios: dict[str, TestScenario] = {}
        self.runs: list[Run] = []

    # -- systems ---------------------------------------------------------------------------------

    def use_system(self, name_or_path: str) -> System:
        """Choose the session's system: a known name, or a system TOML file."""
        if name_or_path in self.systems:
            self.system = self.systems[name_or_path]
        elif name_or_path.endswith(".toml") or Path(name_or_path).is_file():
            self.system = config.load_system(name_or_path)
            self.systems[self.system.name] = self.system
        else:
            names = sorted(self.systems)
            raise ConfigError(
                f"unknown system {name_or_path!r}{did_you_mean(name_or_path, names)}; "
                f"known: {', '.join(names)} (or give a system TOML file)"
            )
        return self.system

    # -- tests and scenarios ---------------------------------------------------------------------

    def add_test(self, text: str, label: str = "<cell>", name: str | None = None) -> TestDefinition:
        data = config.parse_toml(text, label)
        if name:
            data["name"] = name
        source = config.Source(label, text)
        if config.classify_or_none(data) != "test":
            raise ConfigError(
                "expected a test (a TOML with test_template_name, without [[Tests]])", file=label
            )
        test = config.test_from_dict(data, source)
        self.tests[test.name] = test
        return test

    def add_tests_dir(self, folder: str | Path) -> dict[str, TestDefinition]:
        found = config.load_tests(folder)
        if not found:
            raise ConfigError("no test TOML files found", file=str(folder))
        self.tests.update(found)
        return found

    def add_scenario(self, text: str, name: str | None = None, label: str = "<cell>") -> TestScenario:
        data = config.parse_toml(text, label)
        if name:
            data["name"] = name
        scenario = config.scenario_from_dict(data, self.tests, config.Source(label, text))
        self.scenarios[scenario.name] = scenario
        return scenario

    def from_cell(self, text: str, label: str = "<cell>") -> TestScenario:
        """A cell of ``%%cloudai_run``: a scenario, or a single test run as a one-test scenario."""
        data = config.parse_toml(text, label)
        kind = config.classify_or_none(data)
        source = config.Source(label, text)
        if kind == "test":
            test = config.test_from_dict(data, source)
            return TestScenario(name=test.name, test_runs=[TestRun(id=test.name, test=test)])
        if kind == "scenario":
            return config.scenario_from_dict(data, self.tests, source)
        raise ConfigError(
            "the cell is neither a test (test_template_name) nor a scenario ([[Tests]])", file=label
        )

    def resolve(self, target: str) -> TestScenario:
        """A scenario or test of this session by name, or a scenario/test TOML file."""
        if target in self.scenarios:
            return self.scenarios[target]
        if target in self.tests:
            test = self.tests[target]
            return TestScenario(name=test.name, test_runs=[TestRun(id=test.name, test=test)])
        if target.endswith(".toml") or Path(target).is_file():
            from cloudai_nb.api.runs import resolve_scenario

            return resolve_scenario(target, tests=self.tests)
        names = sorted({*self.scenarios, *self.tests})
        raise ConfigError(
            f"unknown scenario or test {target!r}{did_you_mean(target, names)}; "
            f"defined: {', '.join(names) or 'none yet (%%cloudai_test, %%cloudai_scenario)'} (or give a TOML file)"
        )

    # -- runs ------------------------------------------------------------------------------------

    def run(
        self,
        scenario: TestScenario,
        *,
        system: str | None = None,
        num_nodes: int | None = None,
        time_limit: str | None = None,
        iterations: int | None = None,
        dry_run: bool = False,
        hook_dir: str | Path | None = None,
        single_sbatch: bool = False,
        sbatch_dependencies: bool = False,
    ) -> Run:
        """Start ``scenario`` (with the given overrides for every test run) on the session's system."""
        chosen = self.use_system(system) if system else self.system
        overrides: dict[str, Any] = {}
        if num_nodes is not None:
            overrides["num_nodes"] = num_nodes
        if time_limit is not None:
            overrides["time_limit"] = time_limit
        if iterations is not None:
            overrides["iterations"] = iterations
        if overrides:
            data = config.scenario_to_dict(scenario)
            for entry in data["Tests"]:
                entry.update(overrides)
            scenario = config.scenario_from_dict(data).model_copy(update={"hooks": scenario.hooks})
        started = run(
            scenario,
            chosen,
            dry_run=dry_run,
            hook_dir=hook_dir,
            single_sbatch=single_sbatch,
            sbatch_dependencies=sbatch_dependencies,
        )
        self.runs.append(started)
        return started

    def find_run(self, ref: str | None = None) -> Run:
        """The latest run, or one named by its folder name, its path, or its index in `runs`."""
        if not ref:
            if self.runs:
                return self.runs[-1]
            raise RunNotFoundError("no run yet in this session (give a run directory)")
        for known in reversed(self.runs):
            if ref in (known.path.name, str(known.path)):
                return known
        if ref.lstrip("-").isdigit() and self.runs:
            try:
                return self.runs[int(ref)]
            except IndexError:
                pass
        for candidate in (Path(ref), self.system.output_path / ref):
            if (candidate / RUN_FILE).exists():
                loaded = load_run(candidate)
                self.runs.append(loaded)
                return loaded
        raise RunNotFoundError(
            f"no run {ref!r} in this session or under {self.system.output_path} (see %cloudai_list runs)"
        )

    def find_job(self, ref: str) -> Job:
        """``RUN/TEST_ID/ITERATION[/STEP]``, or ``TEST_ID[/ITERATION[/STEP]]`` of the newest run that has it."""
        parts = ref.strip("/").split("/")
        candidates: list[tuple[Run, str]] = [(known, "/".join(parts)) for known in reversed(self.runs)]
        if len(parts) > 1:
            with contextlib.suppress(RunNotFoundError):
                candidates.insert(0, (self.find_run(parts[0]), "/".join(parts[1:])))
        for found, key in candidates:
            jobs = found.jobs
            by_key = {job.key: job for job in jobs}
            if key in by_key:
                return by_key[key]
            matching = [job for job in jobs if job.test_id == key]
            if len(matching) == 1:
                return matching[0]
        keys = [job.key for job in self.runs[-1].jobs] if self.runs else []
        raise CloudAINbError(
            f"no job {ref!r}{did_you_mean(ref, keys)}; jobs of the latest run: {', '.join(keys[:12]) or 'none'}"
        )

    # -- listings --------------------------------------------------------------------------------

    def listing(self, what: str) -> pd.DataFrame:
        import pandas as pd

        from cloudai_nb.api.runs import runs as list_runs

        if what == "runs":
            return list_runs(self.system.output_path)
        rows: list[dict[str, Any]]
        if what == "workloads":
            rows = [
                {
                    "workload": name,
                    "description": (cls.__doc__ or "").strip().split("\n")[0],
                    "model": f"{cls.__module__}.{cls.__qualname__}",
                }
                for name, cls in sorted(registry.workloads.items())
            ]
        elif what == "systems":
            rows = [
                {
                    "system": name,
                    "scheduler": s.scheduler,
                    "output_path": str(s.output_path),
                    "current": s is self.system,
                }
                for name, s in sorted(self.systems.items())
            ]
        elif what == "tests":
            rows = [
                {
                    "test": name,
                    "workload": t.test_template_name,
                    "description": t.description,
                    "sweep": bool(t.sweep),
                }
                for name, t in sorted(self.tests.items())
            ]
        elif what == "scenarios":
            rows = [
                {"scenario": name, "tests": len(s.test_runs), "job_status_check": s.job_status_check}
                for name, s in sorted(self.scenarios.items())
            ]
        else:
            raise CloudAINbError(f"cannot list {what!r}; one of: workloads, systems, tests, scenarios, runs")
        columns = {
            "workloads": ["workload", "description", "model"],
            "systems": ["system", "scheduler", "output_path", "current"],
            "tests": ["test", "workload", "description", "sweep"],
            "scenarios": ["scenario", "tests", "job_status_check"],
        }[what]
        return pd.DataFrame(rows, columns=columns)
