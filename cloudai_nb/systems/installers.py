"""Put a test's prerequisites on a system: git checkouts, files, venvs, container images.

Each item lands in ``<install_path>/<item.key>``. Installing is idempotent (an installed item is left
alone) and atomic: an item is built in a hidden temporary folder next to its final place and renamed
into it, so a failure or a crash never leaves a half-installed item under its real name. A venv is
the exception (its scripts hard-code their own path, so it cannot be moved): it is built in place,
counts as installed only once its completion marker is written, and is removed on failure.

Commands are built by pure functions (``git_clone_argv``, ``enroot_import_argv``...) and run through
`LocalExecutor.run_sync`; tests and dry-runs read the same builders.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import uuid
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from cloudai_nb.core.errors import SubmissionError
from cloudai_nb.core.installables import (
    DockerImage,
    File,
    GitRepo,
    Installable,
    PythonEnvironment,
    container_mounts,
    unique,
)
from cloudai_nb.core.models import TestDefinition
from cloudai_nb.core.system import SlurmSystem, StandaloneSystem, System
from cloudai_nb.systems.exec import TIMED_OUT, Completed, LocalExecutor
from cloudai_nb.systems.slurm.states import controller_unreachable

log = logging.getLogger(__name__)

Status = Literal[
    "installed",  # installed now
    "already installed",
    "not needed",  # nothing to do on this system (an image pulled at run time)
    "would install",  # dry run
    "uninstalled",
    "not installed",  # uninstall of something absent
    "failed",
]
Progress = Callable[[str], None]

VENV_MARKER = ".cloudai_nb_venv.json"
INSTALL_TIMEOUT_S = 3600.0
CHECK_TIMEOUT_S = 10.0
SLURM_COMMANDS = ("sbatch", "squeue", "scancel", "sinfo")
MAX_WORKERS = 4


class InstallError(SubmissionError):
    """An item could not be installed; the message names it and says what the command printed."""


class SyncRunner(Protocol):
    def run_sync(self, argv: Sequence[str], *, timeout: float | None = None) -> Completed: ...


@dataclass(frozen=True)
class ItemResult:
    """What happened to one item."""

    item: Installable
    status: Status
    path: Path
    message: str = ""
    commands: tuple[tuple[str, ...], ...] = ()

    @property
    def ok(self) -> bool:
        return self.status != "failed"

    def line(self) -> str:
        text = f"{self.item.describe()}: {self.status}"
        if self.status in ("installed", "already installed", "would install", "uninstalled"):
            text += f" ({self.path})"
        return f"{text}: {self.message}" if self.message else text


@dataclass
class InstallReport:
    """The outcome of `install` / `uninstall` / `installed`: one `ItemResult` per item."""

    system: str
    action: str
    results: list[ItemResult] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # the system's own missing prerequisites

    @property
    def ok(self) -> bool:
        return not self.problems and all(r.ok for r in self.results)

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok]

    def error_message(self) -> str:
        """Every problem and failure, one per line."""
        return "\n".join([*self.problems, *(r.line() for r in self.failures)])

    def raise_for_failures(self) -> InstallReport:
        if not self.ok:
            raise InstallError(f"{self.action} on {self.system!r} failed:\n{self.error_message()}")
        return self

    def __str__(self) -> str:
        lines = [f"{self.action} on {self.system!r}: {len(self.results)} item(s)"]
        lines += [f"  problem: {p}" for p in self.problems]
        lines += [f"  {r.line()}" for r in self.results]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        from html import escape

        rows = "".join(
            f"<tr><td>{escape(r.item.describe())}</td><td>{escape(r.status)}</td>"
            f"<td><code>{escape(str(r.path))}</code></td><td>{escape(r.message)}</td></tr>"
            for r in self.results
        )
        problems = "".join(f"<li>{escape(p)}</li>" for p in self.problems)
        return (
            f"<b>{escape(self.action)} on {escape(self.system)}</b>"
            + (f"<ul>{problems}</ul>" if problems else "")
            + "<table><tr><th>item</th><th>status</th><th>path</th><th>message</th></tr>"
            + rows
            + "</table>"
        )


# -- pure command builders -------------------------------------------------------------------------


def git_clone_argv(repo: GitRepo, dest: Path) -> list[str]:
    return ["git", "clone", "--quiet", "--", repo.url, str(dest)]


def git_checkout_argv(repo: GitRepo, dest: Path) -> list[str]:
    return ["git", "-C", str(dest), "checkout", "--quiet", "--detach", repo.commit]


def git_fetch_argv(repo: GitRepo, dest: Path) -> list[str]:
    """Fetch one commit that no branch of the clone reaches (servers that allow it)."""
    return ["git", "-C", str(dest), "fetch", "--quiet", "origin", repo.commit]


def git_submodules_argv(dest: Path) -> list[str]:
    return ["git", "-C", str(dest), "submodule", "update", "--init", "--recursive", "--quiet"]


def venv_argv(dest: Path, python: str = sys.executable) -> list[str]:
    return [python, "-m", "venv", str(dest)]


def pip_install_argv(env: PythonEnvironment, python: Path) -> list[str] | None:
    """``pip install`` of the venv's requirements and project; None when there is nothing to install."""
    targets = [*env.requirements, *([str(Path(env.project_path).absolute())] if env.project_path else [])]
    if not targets:
        return None
    return [
        str(python),
        "-m",
        "pip",
        "install",
        "--disable-pip-version-check",
        "--no-input",
        *env.pip_args,
        *targets,
    ]


def enroot_import_argv(image: DockerImage, dest: Path) -> list[str]:
    return ["enroot", "import", "-o", str(dest), image.docker_uri]


def missing_commands(names: Iterable[str], path: str | None = None) -> list[str]:
    """The commands among ``names`` that are not on ``path`` (default: $PATH)."""
    return [name for name in names if shutil.which(name, path=path) is None]


# -- installers ------------------------------------------------------------------------------------


def _tail(done: Completed) -> str:
    text = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return " | ".join(text[-5:]) if text else "(no output)"


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


class StandaloneInstaller:
    """Installs into ``system.install_path`` on this machine."""

    def __init__(self, system: System, runner: SyncRunner | None = None) -> None:
        self.system = system
        self.runner: SyncRunner = runner or LocalExecutor()
        self.install_path = Path(system.install_path).absolute()

    # -- checks ----------------------------------------------------------------------------------

    def check_prerequisites(self, items: Sequence[Installable] = (), path: str | None = None) -> list[str]:
        """What the system lacks to install ``items``: one message per missing piece."""
        problems = []
        if any(isinstance(i, GitRepo) for i in items) and missing_commands(["git"], path):
            problems.append("git not found on PATH (needed to install git repos)")
        parent = self.install_path
        while not parent.exists() and parent != parent.parent:
            parent = parent.parent
        if not os.access(parent, os.W_OK):
            problems.append(f"install_path {self.install_path} is not writable")
        return problems

    def is_installed(self, item: Installable) -> bool:
        path = item.installed_path(self.install_path)
        if isinstance(item, GitRepo):
            return (path / ".git").exists()
        if isinstance(item, PythonEnvironment):
            return (path / VENV_MARKER).is_file()
        if isinstance(item, File):
            return path.exists() and _same_content(Path(item.src), path)
        if isinstance(item, DockerImage):
            return not self._caches(item) or path.is_file()
        return path.exists()

    def _caches(self, image: DockerImage) -> bool:
        """Whether this system keeps a local copy of ``image`` (a standalone system runs no containers)."""
        return False

    # -- commands (pure: what install would run) -------------------------------------------------

    def commands(self, item: Installable) -> list[list[str]]:
        dest = item.installed_path(self.install_path)
        if isinstance(item, GitRepo):
            argv = [git_clone_argv(item, dest), git_checkout_argv(item, dest)]
            return argv + ([git_submodules_argv(dest)] if item.init_submodules else [])
        if isinstance(item, PythonEnvironment):
            pip = pip_install_argv(item, item.python(self.install_path))
            return [venv_argv(dest), *([pip] if pip else [])]
        if isinstance(item, DockerImage) and self._caches(item):
            return [enroot_import_argv(item, dest)]
        return []

    # -- one item --------------------------------------------------------------------------------

    def install_one(self, item: Installable) -> ItemResult:
        dest = item.installed_path(self.install_path)
        if self.is_installed(item):
            status: Status = (
                "not needed"
                if isinstance(item, DockerImage) and not self._caches(item)
                else "already installed"
            )
            return ItemResult(item, status, dest)
        try:
            self.install_path.mkdir(parents=True, exist_ok=True)
            if isinstance(item, PythonEnvironment):
                self._install_venv(item, dest)
            else:
                self._atomic(item, dest)
        except InstallError as exc:
            return ItemResult(item, "failed", dest, str(exc))
        except OSError as exc:
            return ItemResult(item, "failed", dest, f"{exc.strerror or exc} ({exc.filename or dest})")
        return ItemResult(item, "installed", dest)

    def uninstall_one(self, item: Installable) -> ItemResult:
        dest = item.installed_path(self.install_path)
        if not (dest.exists() or dest.is_symlink()):
            return ItemResult(item, "not installed", dest)
        try:
            if dest.is_dir() and not dest.is_symlink():
                shutil.rmtree(dest)
            else:
                dest.unlink()
        except OSError as exc:
            return ItemResult(item, "failed", dest, f"cannot remove: {exc.strerror or exc}")
        return ItemResult(item, "uninstalled", dest)

    def _run(self, item: Installable, argv: list[str], what: str = "") -> Completed:
        done = self.runner.run_sync(argv, timeout=INSTALL_TIMEOUT_S)
        if done.returncode != 0:
            why = "timed out" if done.returncode == TIMED_OUT else f"exit {done.returncode}"
            raise InstallError(f"{what or ' '.join(argv[:3])} failed ({why}): {_tail(done)}")
        return done

    def _atomic(self, item: Installable, dest: Path) -> None:
        """Build the item in a hidden temporary sibling of ``dest``, then rename it into place."""
        tmp = dest.with_name(f".{dest.name}.tmp-{uuid.uuid4().hex[:8]}")
        try:
            self._build(item, tmp)
            try:
                tmp.replace(dest)
            except OSError:
                if not self.is_installed(item):  # not a concurrent installer that won the race
                    raise
        finally:
            if tmp.exists() or tmp.is_symlink():
                _remove(tmp)

    def _build(self, item: Installable, tmp: Path) -> None:
        if isinstance(item, GitRepo):
            self._run(item, git_clone_argv(item, tmp), f"git clone {item.url}")
            checkout = self.runner.run_sync(git_checkout_argv(item, tmp), timeout=INSTALL_TIMEOUT_S)
            if checkout.returncode != 0:
                fetched = self.runner.run_sync(git_fetch_argv(item, tmp), timeout=INSTALL_TIMEOUT_S)
                if fetched.returncode == 0:
                    checkout = self.runner.run_sync(git_checkout_argv(item, tmp), timeout=INSTALL_TIMEOUT_S)
            if checkout.returncode != 0:
                raise InstallError(f"commit {item.commit!r} not found in {item.url}: {_tail(checkout)}")
            if item.init_submodules:
                self._run(item, git_submodules_argv(tmp), "git submodule update")
        elif isinstance(item, File):
            src = Path(item.src)
            if not src.exists():
                raise InstallError(f"source {src} does not exist")
            if src.is_dir():
                shutil.copytree(src, tmp, symlinks=True)
            else:
                shutil.copy2(src, tmp)
        elif isinstance(item, DockerImage):
            self._run(item, enroot_import_argv(item, tmp), f"enroot import {item.docker_uri}")
        else:
            raise InstallError(f"{type(item).__name__} cannot be installed on {type(self.system).__name__}")

    def _install_venv(self, env: PythonEnvironment, dest: Path) -> None:
        if dest.exists():
            _remove(dest)  # left by an install that crashed: it never got its marker
        try:
            self._run(env, venv_argv(dest), "python -m venv")
            pip = pip_install_argv(env, env.python(self.install_path))
            if pip is not None:
                self._run(env, pip, "pip install")
            spec = env.model_dump(mode="json")
            (dest / VENV_MARKER).write_text(json.dumps(spec, indent=2) + "\n")
        except BaseException:
            _remove(dest)
            raise

    # -- many items ------------------------------------------------------------------------------

    def install(self, items: Iterable[Installable], progress: Progress | None = None) -> list[ItemResult]:
        """Install every item not installed yet, independent items at the same time."""
        return _each(self.install_one, unique(items), progress)

    def uninstall(self, items: Iterable[Installable], progress: Progress | None = None) -> list[ItemResult]:
        return _each(self.uninstall_one, unique(items), progress)


class SlurmInstaller(StandaloneInstaller):
    """Installs on the node this runs on, into the (shared) install path; checks the Slurm tools."""

    def __init__(self, system: System, runner: SyncRunner | None = None) -> None:
        super().__init__(system, runner)

    def _caches(self, image: DockerImage) -> bool:
        return (
            isinstance(self.system, SlurmSystem)
            and self.system.cache_docker_images_locally
            and not image.is_local_file
        )

    def check_prerequisites(self, items: Sequence[Installable] = (), path: str | None = None) -> list[str]:
        problems = [
            f"{name} not found on PATH (a Slurm client command)"
            for name in missing_commands(SLURM_COMMANDS, path)
        ]
        sinfo = shutil.which("sinfo", path=path)
        if sinfo is not None:
            done = self.runner.run_sync([sinfo, "-h", "-o", "%P"], timeout=CHECK_TIMEOUT_S)
            if done.returncode == TIMED_OUT or (done.returncode != 0 and controller_unreachable(done.stderr)):
                problems.append(f"Slurm controller unreachable (sinfo: {_tail(done)})")
            elif done.returncode != 0:
                problems.append(f"sinfo failed (exit {done.returncode}): {_tail(done)}")
        if any(isinstance(i, DockerImage) and self._caches(i) for i in items) and missing_commands(
            ["enroot"], path
        ):
            problems.append(
                "enroot not found on PATH (needed to cache docker images: cache_docker_images_locally = true)"
            )
        return problems + super().check_prerequisites(items, path)


def _same_content(src: Path, dest: Path) -> bool:
    import filecmp

    if src.is_dir() or dest.is_dir():
        return src.is_dir() and dest.is_dir()
    try:
        return filecmp.cmp(src, dest, shallow=False)
    except OSError:
        return False


def _each(
    action: Callable[[Installable], ItemResult], items: list[Installable], progress: Progress | None
) -> list[ItemResult]:
    def one(item: Installable) -> ItemResult:
        result = action(item)
        if progress is not None:
            progress(result.line())
        return result

    if len(items) <= 1:
        return [one(item) for item in items]
    with ThreadPoolExecutor(max_workers=min(MAX_WORKERS, len(items)), thread_name_prefix="install") as pool:
        return list(pool.map(one, items))


# -- the whole job: many items, several installer kinds ---------------------------------------------


def installer_for(system: System, item: Installable, runner: SyncRunner | None = None) -> StandaloneInstaller:
    """The registered installer of ``item`` on ``system`` (subclass-aware)."""
    from cloudai_nb.core.registry import installers

    factory = installers.get((type(system), type(item)))
    installer: StandaloneInstaller = factory(system, runner)
    return installer


def _grouped(
    system: System, items: Iterable[Installable], runner: SyncRunner | None
) -> list[tuple[StandaloneInstaller, list[Installable]]]:
    groups: dict[type, tuple[StandaloneInstaller, list[Installable]]] = {}
    for item in unique(items):
        installer = installer_for(system, item, runner)
        groups.setdefault(type(installer), (installer, []))[1].append(item)
    return list(groups.values())


def check_prerequisites(
    system: System,
    items: Sequence[Installable] = (),
    *,
    path: str | None = None,
    runner: SyncRunner | None = None,
) -> list[str]:
    """What ``system`` lacks (Slurm tools, a reachable controller, git, enroot): one line each."""
    from cloudai_nb.core.registry import installers

    factory = installers.get((type(system), GitRepo))
    installer: StandaloneInstaller = factory(system, runner)
    return installer.check_prerequisites(items, path)


def install(
    system: System,
    items: Iterable[Installable],
    *,
    progress: Progress | None = None,
    dry_run: bool = False,
    runner: SyncRunner | None = None,
) -> InstallReport:
    """Install what is missing; ``dry_run`` lists the commands instead of running them."""
    items = unique(items)
    report = InstallReport(system.name, "dry-run install" if dry_run else "install")
    report.problems = check_prerequisites(system, items, runner=runner)
    if report.problems and not dry_run:
        return report
    for installer, group in _grouped(system, items, runner):
        if dry_run:
            for item in group:
                dest = item.installed_path(installer.install_path)
                if isinstance(item, DockerImage) and not installer._caches(item):
                    report.results.append(ItemResult(item, "not needed", dest))
                elif installer.is_installed(item):
                    report.results.append(ItemResult(item, "already installed", dest))
                else:
                    argv = tuple(tuple(a) for a in installer.commands(item))
                    status: Status = "would install" if argv or isinstance(item, File) else "not needed"
                    report.results.append(ItemResult(item, status, dest, commands=argv))
        else:
            report.results += installer.install(group, progress)
    return report


def uninstall(
    system: System,
    items: Iterable[Installable],
    *,
    progress: Progress | None = None,
    runner: SyncRunner | None = None,
) -> InstallReport:
    """Remove exactly the items' installed paths; nothing else under ``install_path``."""
    report = InstallReport(system.name, "uninstall")
    for installer, group in _grouped(system, items, runner):
        report.results += installer.uninstall(group, progress)
    return report


def installed(
    system: System, items: Iterable[Installable], *, runner: SyncRunner | None = None
) -> InstallReport:
    """Which items are installed, without changing anything."""
    report = InstallReport(system.name, "status")
    for installer, group in _grouped(system, items, runner):
        for item in group:
            dest = item.installed_path(installer.install_path)
            ok = installer.is_installed(item)
            report.results.append(ItemResult(item, "already installed" if ok else "not installed", dest))
    return report


# -- what jobs see ---------------------------------------------------------------------------------


def container_image(system: SlurmSystem, url: str | None) -> str | None:
    """The image a Slurm job runs: the cached squashfs when the system caches images and it exists."""
    if not url or not system.cache_docker_images_locally:
        return url
    image = DockerImage(url=url)
    if image.is_local_file:
        return url
    cached = image.installed_path(system.install_path)
    return str(cached) if cached.is_file() else url


def register() -> None:
    """Register the built-in installers for every installable kind on both systems."""
    from cloudai_nb.core.registry import installers

    for kind in (GitRepo, File, PythonEnvironment, DockerImage):
        installers.register((StandaloneSystem, kind), StandaloneInstaller)
        installers.register((SlurmSystem, kind), SlurmInstaller)


def installed_image_and_mounts(
    system: SlurmSystem, test: TestDefinition, command: Any
) -> tuple[str | None, tuple[str, ...]]:
    """A Slurm step's image (the cached squashfs if there is one) and mounts (plus the test's git
    repos, when it runs in a container)."""
    image = container_image(system, command.image)
    mounts = tuple(command.mounts)
    if image:
        mounts += tuple(container_mounts(system.install_path, test.git_repos))
    return image, mounts
