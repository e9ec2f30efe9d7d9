"""The ``%cloudai_*`` magics: parse the line, call the session, return (and so show) an object.

Every error the user can cause becomes a one-line `UsageError` (no traceback); nothing is submitted
when the input is wrong.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import argument, magic_arguments, parse_argstring

from cloudai_nb.api.session import Session, expand_placeholders
from cloudai_nb.core.errors import CloudAINbError

F = TypeVar("F", bound=Callable[..., Any])


def user_errors(function: F) -> F:
    """Translate our errors into one-line UsageErrors, once, at the boundary."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except CloudAINbError as exc:
            raise UsageError(str(exc)) from None
        except (FileNotFoundError, TimeoutError) as exc:
            raise UsageError(str(exc)) from None

    return wrapper  # type: ignore[return-value]


@magics_class
class CloudAIMagics(Magics):
    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.session = Session()

    @property
    def user_ns(self) -> dict[str, Any]:
        assert self.shell is not None
        namespace: dict[str, Any] = self.shell.user_ns
        return namespace

    def _expand(self, cell: str) -> str:
        return expand_placeholders(cell, self.user_ns)

    # -- %cloudai_system ---------------------------------------------------------------------------

    @magic_arguments()
    @argument("system", nargs="?", help="a system name known to the session, or a system TOML file")
    @line_magic
    @user_errors
    def cloudai_system(self, line: str) -> Any:
        """Show the session's system, or choose one (the default: this machine, ./results)."""
        args = parse_argstring(self.cloudai_system, line)
        if args.system:
            self.session.use_system(args.system)
        return self.session.system

    # -- %%cloudai_test --------------------------------------------------------------------------

    @magic_arguments()
    @argument("name", nargs="?", help="the test's name (else the TOML's name)")
    @argument("--dir", metavar="DIR", help="load every test TOML in a folder instead of the cell")
    @line_cell_magic
    @user_errors
    def cloudai_test(self, line: str, cell: str | None = None) -> Any:
        """Register the cell's TOML (CloudAI's test schema) as a test of this session.

        The cell may use Python variables as ``{name}``. Scenarios and ``%cloudai_run NAME`` refer
        to the test by its name.
        """
        args = parse_argstring(self.cloudai_test, line)
        if args.dir:
            return sorted(self.session.add_tests_dir(args.dir))
        if not cell or not cell.strip():
            raise UsageError("%%cloudai_test needs a cell with a test's TOML (or %cloudai_test --dir DIR)")
        return self.session.add_test(self._expand(cell), name=args.name)

    # -- %%cloudai_scenario ----------------------------------------------------------------------

    @magic_arguments()
    @argument("name", nargs="?", help="the scenario's name (else its TOML's name)")
    @cell_magic
    @user_errors
    def cloudai_scenario(self, line: str, cell: str) -> Any:
        """Register the cell's TOML (CloudAI's scenario schema) as a scenario of this session."""
        args = parse_argstring(self.cloudai_scenario, line)
        return self.session.add_scenario(self._expand(cell), args.name)

    # -- %cloudai_run ----------------------------------------------------------------------------

    @magic_arguments()
    @argument("target", nargs="?", help="a scenario or test of the session, or a TOML file")
    @argument("-s", "--system", help="system name or TOML (default: the session's)")
    @argument("-N", "--nodes", type=int, dest="num_nodes", help="num_nodes for every test run")
    @argument("--time-limit", help="time limit for every test run (Slurm format, e.g. 30 or 1:00:00)")
    @argument("--iterations", type=int, help="iterations for every test run")
    @argument("--dry-run", action="store_true", help="write every file, submit nothing")
    @argument(
        "--single-sbatch",
        action="store_true",
        help="Slurm: every test run in one allocation, one after another",
    )
    @argument(
        "--sbatch-dependencies",
        action="store_true",
        help="Slurm: submit every job at once, held back by sbatch --dependency",
    )
    @argument("--hook-dir", metavar="DIR", help="folder of pre_test/post_test hook scenarios")
    @argument("--wait", action="store_true", help="block until the run ends")
    @argument("-o", "--out", metavar="VAR", help="also store the Run in this variable")
    @line_cell_magic
    @user_errors
    def cloudai_run(self, line: str, cell: str | None = None) -> Any:
        """Start a scenario (or a single test) and return its Run at once; the jobs go on in the background.

        As a cell magic (``%%cloudai_run``), the cell is a scenario or a single test in TOML, and may
        use Python variables as ``{name}``. The Run shows a live view; ``await run`` waits for it
        without blocking the kernel.
        """
        args = parse_argstring(self.cloudai_run, line)
        if cell is not None and cell.strip():
            scenario = self.session.from_cell(self._expand(cell))
        elif args.target:
            scenario = self.session.resolve(args.target)
        else:
            raise UsageError(
                "%cloudai_run needs a scenario or test name, a TOML file, or a cell (%%cloudai_run)"
            )
        if args.iterations is not None and args.iterations < 1:
            raise UsageError("--iterations must be at least 1")
        if args.num_nodes is not None and args.num_nodes < 1:
            raise UsageError("-N/--nodes must be at least 1")
        run = self.session.run(
            scenario,
            system=args.system,
            num_nodes=args.num_nodes,
            time_limit=args.time_limit,
            iterations=args.iterations,
            dry_run=args.dry_run,
            hook_dir=args.hook_dir,
            single_sbatch=args.single_sbatch,
            sbatch_dependencies=args.sbatch_dependencies,
        )
        if args.out:
            self.user_ns[args.out] = run
        if args.wait:
            run.wait()
        return run

    # -- %cloudai_form --------------------------------------------------------------------------

    @magic_arguments()
    @argument("workload", nargs="?", help="a workload (default: Sleep), or a test of this session")
    @argument(
        "--from-run", metavar="RUN", help="pre-fill from a run (its first test): run it again with changes"
    )
    @line_magic
    @user_errors
    def cloudai_form(self, line: str) -> Any:
        """A form to configure and submit a job without writing TOML (Preview, Submit, Copy as TOML)."""
        from cloudai_nb.notebook.job_form import form

        args = parse_argstring(self.cloudai_form, line)
        if args.from_run:
            return form(self.session, run=self.session.find_run(args.from_run))
        if args.workload and args.workload in self.session.tests:
            return form(self.session, test=self.session.tests[args.workload])
        return form(self.session, args.workload)

    # -- %cloudai_status / results / cancel / logs ----------------------------------------------

    @magic_arguments()
    @argument("run", nargs="?", help="run folder name or path (default: the latest run)")
    @argument("--all", action="store_true", help="every run under the system's output folder")
    @line_magic
    @user_errors
    def cloudai_status(self, line: str) -> Any:
        """The status DataFrame of a run (one row per job), or of every run with --all."""
        args = parse_argstring(self.cloudai_status, line)
        if args.all:
            return self.session.listing("runs")
        return self.session.find_run(args.run).status()

    @magic_arguments()
    @argument("run", nargs="?", help="run folder name or path (default: the latest run)")
    @line_magic
    @user_errors
    def cloudai_results(self, line: str) -> Any:
        """The results DataFrame of a run: one row per measured value, with its unit."""
        args = parse_argstring(self.cloudai_results, line)
        return self.session.find_run(args.run).results()

    @magic_arguments()
    @argument("target", nargs="?", help="a run (default: the latest) or a job (RUN/TEST_ID/ITERATION)")
    @line_magic
    @user_errors
    def cloudai_cancel(self, line: str) -> Any:
        """Cancel a run (every live job; nothing more starts) or a single job."""
        args = parse_argstring(self.cloudai_cancel, line)
        target = args.target
        if target and "/" in target and not target.startswith("/"):
            job = self.session.find_job(target)
            job.kill()
            return job
        return self.session.find_run(target).cancel()

    @magic_arguments()
    @argument("job", help="a job: TEST_ID[/ITERATION[/STEP]] of the latest run, or RUN/TEST_ID/...")
    @argument("--stderr", action="store_true", help="show stderr.txt instead of stdout.txt")
    @argument("--tail", type=int, default=40, metavar="N", help="last N lines (default 40)")
    @argument("--follow", action="store_true", help="keep showing new lines until the job ends")
    @line_magic
    @user_errors
    def cloudai_logs(self, line: str) -> Any:
        """Print the end of a job's stdout (or stderr); --follow keeps it updating without blocking."""
        from cloudai_nb.notebook.logs import follow_log, show_log

        args = parse_argstring(self.cloudai_logs, line)
        job = self.session.find_job(args.job)
        path = job.output_path / ("stderr.txt" if args.stderr else "stdout.txt")
        if args.follow:
            return follow_log(job, path, args.tail)
        return show_log(path, args.tail)

    @magic_arguments()
    @argument(
        "what",
        nargs="?",
        default="runs",
        choices=["workloads", "systems", "tests", "scenarios", "runs"],
        help="what to list (default: runs)",
    )
    @line_magic
    @user_errors
    def cloudai_list(self, line: str) -> Any:
        """List workloads, systems, tests, scenarios or runs as a DataFrame."""
        args = parse_argstring(self.cloudai_list, line)
        return self.session.listing(args.what)

    # -- %cloudai_install ------------------------------------------------------------------------

    @magic_arguments()
    @argument("target", nargs="?", help="a scenario or test of the session, or a TOML file")
    @argument("-s", "--system", help="system name or TOML (default: the session's)")
    @argument("--uninstall", action="store_true", help="remove what the target installed instead")
    @argument("--status", action="store_true", help="show what is installed, change nothing")
    @argument("--dry-run", action="store_true", help="show the commands, run nothing")
    @line_magic
    @user_errors
    def cloudai_install(self, line: str) -> Any:
        """Install what a scenario or test needs (git repos, files, venvs, images) on the system.

        Runs install by themselves before they submit; this does it ahead of time. Without a
        target, every test of the session.
        """
        from cloudai_nb.api import install as api

        args = parse_argstring(self.cloudai_install, line)
        system = self.session.use_system(args.system) if args.system else self.session.system
        target: Any = self.session.resolve(args.target) if args.target else list(self.session.tests.values())
        if args.uninstall:
            return api.uninstall(target, system, progress=print)
        if args.status:
            return api.installed(target, system)
        return api.install(target, system, progress=None if args.dry_run else print, dry_run=args.dry_run)
