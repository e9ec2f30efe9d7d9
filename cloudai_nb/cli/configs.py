"""``verify-configs`` and ``list``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from cloudai_nb.core import config, registry
from cloudai_nb.core.errors import ConfigError
from cloudai_nb.core.models import TestDefinition


def verify_configs(args: argparse.Namespace) -> int:
    """Sort every TOML into system / test / scenario, validate it, print one line per problem."""
    files = config.toml_files(args.paths)
    if not files:
        raise ConfigError("no .toml files found", file=", ".join(args.paths))
    tests: dict[str, TestDefinition] = {}
    broken_tests = 0
    if args.tests_dir:
        # a broken test here is reported like any other file; the rest are still checked
        for file in config.toml_files([args.tests_dir]):
            if file in files:
                continue
            try:
                data, source = config.read_toml(file)
                if config.classify_or_none(data) == "test":
                    test = config.test_from_dict(data, source)
                    tests.setdefault(test.name, test)
            except ConfigError as exc:
                broken_tests += 1
                for problem in exc.problems or [exc]:
                    print(f"invalid  {problem if problem.file else problem.located(file)}")
    hooks = config.load_hooks(args.hook_dir) if args.hook_dir else None
    invalid = 0
    parsed: dict[Path, tuple[dict[str, Any], config.Source] | ConfigError] = {}
    for file in files:
        try:
            parsed[file] = config.read_toml(file)
        except ConfigError as exc:
            parsed[file] = exc
    # tests first, so that scenarios can refer to tests given on the same command line
    for entry in parsed.values():
        if isinstance(entry, tuple) and config.classify_or_none(entry[0]) == "test":
            try:
                test = config.test_from_dict(*entry)
                tests.setdefault(test.name, test)
            except ConfigError:
                pass
    for file, entry in parsed.items():
        kind = "?"
        try:
            if isinstance(entry, ConfigError):
                raise entry
            data, source = entry
            kind = config.classify(data)
            if kind == "system":
                config.system_from_dict(data, source)
            elif kind == "test":
                config.test_from_dict(data, source)
            else:
                scenario = config.scenario_from_dict(data, tests, source)
                if hooks is not None:
                    config.attach_hooks(scenario, hooks, source)
        except ConfigError as exc:
            invalid += 1
            for problem in exc.problems or [exc]:
                print(f"invalid  {problem if problem.file else problem.located(file)}")
            continue
        print(f"ok       {file} ({kind})")
    valid = len(files) - invalid
    line = f"{len(files)} file{'s' if len(files) != 1 else ''}: {valid} valid, {invalid} invalid"
    if broken_tests:
        line += f" (and {broken_tests} invalid in --tests-dir)"
    print(line)
    return 1 if invalid or broken_tests else 0


def _summary(obj: Any) -> str:
    doc = (getattr(obj, "__doc__", None) or "").strip().splitlines()
    return doc[0] if doc else ""


def list_registry(args: argparse.Namespace) -> int:
    chosen: dict[str, registry.Registry[Any, Any]] = {
        "workloads": registry.workloads,
        "systems": registry.systems,
        "installers": registry.installers,
    }
    reg = chosen[args.what]
    rows = [
        (registry.key_name(key), f"{value.__module__}.{value.__qualname__}", _summary(value))
        for key, value in reg.items()
    ]
    width = max((len(r[0]) for r in rows), default=0)
    for name, where, summary in sorted(rows):
        print(f"{name:<{width}}  {summary}  [{where}]" if summary else f"{name:<{width}}  [{where}]")
    if not rows:
        print(f"no {reg.kind}s registered")
    for problem in registry.plugin_errors:
        print(f"warning: {problem}", file=sys.stderr)
    return 0
