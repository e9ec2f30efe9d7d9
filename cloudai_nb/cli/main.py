"""Argument parsing and dispatch. Heavy imports happen inside the subcommands, so ``--help`` is fast."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence

from cloudai_nb import __version__

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
    verify.set_defaults(handler="cloudai_nb.cli.configs:verify_configs")

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
