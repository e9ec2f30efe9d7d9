"""Argument parsing and dispatch. Heavy imports happen inside the subcommands, so ``--help`` is fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cloudai_nb._version import __version__

Handler = Callable[[argparse.Namespace], int]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cloudai-nb",
        description="Run CloudAI benchmark scenarios on Slurm or the local machine. "
        "CloudAI's TOML files and flags work unchanged.",
    )
    parser.add_argument("--version", action="version", version=f"cloudai-nb {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages to stderr")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    verify = commands.add_parser(
        "verify-configs",
        help="validate system, test and scenario TOML files",
        description="Validate TOML files (folders are searched recursively); exit 1 if any is invalid.",
    )
    verify.add_argument("paths", nargs="+", metavar="PATH", help="TOML files or folders")
    verify.add_argument("--tests-dir", metavar="DIR", help="folder of test TOMLs that scenarios refer to")
    verify.add_argument(
        "--hook-dir", metavar="DIR", help="folder of hook scenarios that pre_test/post_test name"
    )
    verify.set_defaults(handler="cloudai_nb.cli.configs:verify_configs")

    for name, help_text in (
        ("run", "run a test scenario and wait for it, printing each job state change"),
        ("dry-run", "write every file a run would (commands, test-run.toml) and submit nothing"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--system-config", metavar="TOML", help="system TOML (default: this machine, ./results)"
        )
        sub.add_argument("--tests-dir", metavar="DIR", help="folder of test TOMLs the scenario refers to")
        sub.add_argument(
            "--test-scenario", metavar="TOML", required=True, help="scenario TOML (or a single test)"
        )
        sub.add_argument(
            "--output-dir", metavar="DIR", help="where run directories go (default: the system's)"
        )
        sub.add_argument(
            "--hook-dir",
            metavar="DIR",
            help="folder of pre_test/post_test hook scenarios, their tests in DIR/test (default: conf/hook)",
        )
        sub.add_argument(
            "--single-sbatch",
            action="store_true",
            help="Slurm: run every test run in one allocation, one after another (CloudAI's mode)",
        )
        sub.add_argument(
            "--sbatch-dependencies",
            action="store_true",
            help="Slurm: submit every job at once, held back by sbatch --dependency, "
            "so the scenario goes on if this process dies",
        )
        sub.add_argument("-q", "--quiet", action="store_true", help="print only the final table")
        sub.set_defaults(handler="cloudai_nb.cli.runs:run", dry_run=name == "dry-run")

    for name, help_text in (
        ("install", "install what the tests need (git repos, files, venvs, images); reuse what is there"),
        ("uninstall", "remove what the tests installed, and nothing else"),
    ):
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.add_argument(
            "--system-config", metavar="TOML", help="system TOML (default: this machine, ./install)"
        )
        sub.add_argument(
            "--tests-dir", metavar="DIR", help="folder of test TOMLs (all, or those the scenario uses)"
        )
        sub.add_argument("--test-scenario", metavar="TOML", help="scenario TOML (or a single test)")
        if name == "install":
            sub.add_argument("--dry-run", action="store_true", help="print the commands, run nothing")
        sub.add_argument("-q", "--quiet", action="store_true", help="print only the final report")
        sub.set_defaults(handler=f"cloudai_nb.cli.install:{name}")

    status = commands.add_parser("status", help="show the jobs of a run directory (live or finished)")
    status.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run directory (or an output dir: its newest run)"
    )
    status.add_argument("--json", action="store_true", help="print the jobs as a JSON list")
    status.set_defaults(handler="cloudai_nb.cli.runs:status")

    results = commands.add_parser("results", help="print the measured values of a run (tidy table)")
    results.add_argument(
        "run_dir", metavar="RUN_DIR", help="a run directory (or an output dir: its newest run)"
    )
    results.add_argument("--csv", action="store_true", help="print CSV instead of a table")
    results.add_argument("--wide", action="store_true", help="one column per metric")
    results.set_defaults(handler="cloudai_nb.cli.runs:results")

    cancel = commands.add_parser("cancel", help="cancel a run: its live jobs are killed, nothing more starts")
    cancel.add_argument("run_dir", metavar="RUN_DIR")
    cancel.set_defaults(handler="cloudai_nb.cli.runs:cancel")

    kernel = commands.add_parser(
        "kernel",
        help="install the 'Python 3 (CloudAI)' Jupyter kernel (it loads the magics at start)",
        description="The Jupyter kernelspec whose kernels load cloudai_nb at start: no %%load_ext needed.",
    )
    kernel_actions = kernel.add_subparsers(dest="kernel_action", metavar="ACTION", required=True)
    kernel_install = kernel_actions.add_parser(
        "install",
        help="install the kernelspec (the same places as `python -m ipykernel install`)",
        description="Install the kernelspec, its kernels running this Python. Default: system-wide.",
    )
    where = kernel_install.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user only")
    where.add_argument(
        "--sys-prefix", action="store_true", help="into this Python's environment (sys.prefix)"
    )
    where.add_argument("--prefix", metavar="DIR", help="under DIR/share/jupyter/kernels")
    kernel_install.add_argument("--name", default="cloudai", help="kernelspec name (default: cloudai)")
    kernel_install.add_argument(
        "--display-name", metavar="TEXT", help="name shown in Jupyter (default: Python 3 (CloudAI))"
    )
    kernel_install.set_defaults(handler="cloudai_nb.cli.kernel:install")
    kernel_uninstall = kernel_actions.add_parser("uninstall", help="remove an installed kernelspec")
    kernel_uninstall.add_argument("--name", default="cloudai", help="kernelspec name (default: cloudai)")
    kernel_uninstall.set_defaults(handler="cloudai_nb.cli.kernel:uninstall")

    listing = commands.add_parser("list", help="list what the registry holds (plugins included)")
    listing.add_argument("what", choices=["workloads", "systems", "installers"], help="what to list")
    listing.set_defaults(handler="cloudai_nb.cli.configs:list_registry")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``cloudai-nb``; returns the exit code (errors print one line, no traceback)."""
    args = _parser().parse_args(argv)
    if args.verbose:
        import logging

        logging.basicConfig(level=logging.DEBUG, format="%(levelname)s %(name)s: %(message)s")
    module_name, _, function_name = args.handler.partition(":")
    import importlib

    from cloudai_nb.core.errors import CloudAINbError

    try:
        handler: Handler = getattr(importlib.import_module(module_name), function_name)
        return handler(args)
    except CloudAINbError as exc:
        print(f"cloudai-nb: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("cloudai-nb: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
