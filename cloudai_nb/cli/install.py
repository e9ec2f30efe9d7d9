"""``install`` and ``uninstall``: the prerequisites of a scenario (or a folder of tests) on a system."""

from __future__ import annotations

import argparse
import time

from cloudai_nb.api import install as api


def _progress(line: str) -> None:
    print(f"{time.strftime('%H:%M:%S')}  {line}", flush=True)


def _target(args: argparse.Namespace) -> str:
    target: str | None = args.test_scenario or args.tests_dir
    if target is None:
        from cloudai_nb.core.errors import ConfigError

        raise ConfigError("give --test-scenario TOML or --tests-dir DIR: what to install")
    return target


def install(args: argparse.Namespace) -> int:
    progress = None if args.quiet else _progress
    tests_dir = args.tests_dir if args.test_scenario else None
    report = api.install(
        _target(args), args.system_config, progress=progress, dry_run=args.dry_run, tests_dir=tests_dir
    )
    print(report)
    return 0 if report.ok else 1


def uninstall(args: argparse.Namespace) -> int:
    progress = None if args.quiet else _progress
    tests_dir = args.tests_dir if args.test_scenario else None
    report = api.uninstall(_target(args), args.system_config, progress=progress, tests_dir=tests_dir)
    print(report)
    return 0 if report.ok else 1
