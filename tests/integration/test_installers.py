"""Real installs on this machine: git (a local bare repo), files, venvs (offline), and runs using them."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from cloudai_nb.api import install as api
from cloudai_nb.core.installables import File, GitRepo, PythonEnvironment
from cloudai_nb.core.models import JobState, TestRun, TestScenario
from cloudai_nb.core.system import StandaloneSystem
from cloudai_nb.engine.scenario_run import ScenarioRun
from cloudai_nb.systems import installers
from cloudai_nb.workloads.bash_cmd import BashCmdTestDefinition

pytestmark = pytest.mark.slow


def git(*args: str, cwd: Path | None = None) -> str:
    env_args = ["-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"]
    done = subprocess.run(["git", *env_args, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def bare_repo(tmp_path):
    """A bare repository with two commits; returns (url, first commit, second commit)."""
    bare = tmp_path / "src" / "bench.git"
    git("init", "--quiet", "--bare", str(bare))
    work = tmp_path / "src" / "work"
    git("clone", "--quiet", str(bare), str(work))
    (work / "VERSION").write_text("one\n")
    git("add", "VERSION", cwd=work)
    git("commit", "--quiet", "-m", "one", cwd=work)
    first = git("rev-parse", "HEAD", cwd=work)
    (work / "VERSION").write_text("two\n")
    git("commit", "--quiet", "-am", "two", cwd=work)
    second = git("rev-parse", "HEAD", cwd=work)
    git("push", "--quiet", "origin", "HEAD:main", cwd=work)
    return str(bare), first, second


@pytest.fixture
def system(tmp_path):
    return StandaloneSystem(name="local", install_path=tmp_path / "install", output_path=tmp_path / "results")


# Shared with the in-tree build backend of `make_project`, which runs in another interpreter.
WHEEL_WRITER = textwrap.dedent(
    """
    import base64, hashlib, zipfile
    from pathlib import Path

    def make_wheel(folder, name="tinypkg", value=42):
        \"\"\"A pure-Python wheel written by hand: pip installs it with no build step, no network.\"\"\"
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        dist = f"{name}-0.1.dist-info"
        files = {
            f"{name}/__init__.py": f"VALUE = {value}\\n",
            f"{dist}/METADATA": f"Metadata-Version: 2.1\\nName: {name}\\nVersion: 0.1\\n",
            f"{dist}/WHEEL": "Wheel-Version: 1.0\\nGenerator: test\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n",
        }
        record = []
        for path, text in files.items():
            digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(text.encode())}")
        record.append(f"{dist}/RECORD,,")
        wheel = folder / f"{name}-0.1-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            for path, text in files.items():
                archive.writestr(path, text)
            archive.writestr(f"{dist}/RECORD", "\\n".join(record) + "\\n")
        return wheel
    """
)
_namespace: dict[str, Any] = {}
exec(WHEEL_WRITER, _namespace)  # our own constant source
make_wheel: Callable[..., Path] = _namespace["make_wheel"]


def make_project(folder: Path) -> Path:
    """A project with an in-tree PEP 517 backend that writes its wheel by hand (no setuptools, no wheel)."""
    (folder / "backend").mkdir(parents=True)
    (folder / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "handmade"\nbackend-path = ["backend"]\n'
    )
    (folder / "backend" / "handmade.py").write_text(
        WHEEL_WRITER
        + "\n\ndef build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        + "    return make_wheel(wheel_directory, 'projpkg', 7).name\n"
    )
    return folder


def run_in(venv: Path, code: str) -> str:
    done = subprocess.run(
        [str(venv / "bin" / "python"), "-c", code], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


# -- git -----------------------------------------------------------------------------------------


def test_git_repo_at_a_commit(system, bare_repo, tmp_path):
    url, first, _ = bare_repo
    repo = GitRepo(url=url, commit=first)
    report = installers.install(system, [repo])
    assert report.ok, report
    path = tmp_path / "install" / f"bench__{first}"
    assert report.results[0].status == "installed" and report.results[0].path == path
    assert (path / "VERSION").read_text() == "one\n"
    assert git("rev-parse", "HEAD", cwd=path) == first
    again = installers.install(system, [repo])
    assert [r.status for r in again.results] == ["already installed"]


def test_git_repo_short_commit_and_branch(system, bare_repo):
    url, _, second = bare_repo
    report = installers.install(
        system, [GitRepo(url=url, commit=second[:8]), GitRepo(url=url, commit="main")]
    )
    assert report.ok, report
    assert all((r.path / "VERSION").read_text() == "two\n" for r in report.results)


def test_wrong_commit_is_a_clear_error_and_leaves_nothing(system, bare_repo, tmp_path):
    url, _, _ = bare_repo
    report = installers.install(system, [GitRepo(url=url, commit="deadbeefdeadbeef")])
    assert not report.ok
    message = report.results[0].line()
    assert f"git repo {url} at deadbeefdeadbeef: failed" in message
    assert "commit 'deadbeefdeadbeef' not found" in message
    assert list((tmp_path / "install").iterdir()) == []  # the clone was made, then removed


def test_unreachable_repo_names_it_with_gits_stderr(system, tmp_path):
    report = installers.install(system, [GitRepo(url=str(tmp_path / "nope.git"), commit="abc")])
    assert "git clone" in report.results[0].message and "nope.git" in report.results[0].message
    assert list((tmp_path / "install").iterdir()) == []


# -- files -----------------------------------------------------------------------------------------


def test_file_install_twice_and_uninstall_exactly(system, tmp_path):
    src = tmp_path / "data.bin"
    src.write_bytes(b"payload")
    item = File(src=src)
    (tmp_path / "install").mkdir()
    keep = tmp_path / "install" / "someone-elses.txt"
    keep.write_text("keep me")
    assert installers.install(system, [item]).results[0].status == "installed"
    assert (tmp_path / "install" / "data.bin").read_bytes() == b"payload"
    assert installers.install(system, [item]).results[0].status == "already installed"
    src.write_bytes(b"changed")
    assert installers.install(system, [item]).results[0].status == "installed"
    assert (tmp_path / "install" / "data.bin").read_bytes() == b"changed"
    assert installers.uninstall(system, [item]).results[0].status == "uninstalled"
    assert sorted(p.name for p in (tmp_path / "install").iterdir()) == ["someone-elses.txt"]
    assert installers.uninstall(system, [item]).results[0].status == "not installed"


def test_missing_file_source(system, tmp_path):
    result = installers.install(system, [File(src=tmp_path / "absent")]).results[0]
    assert result.status == "failed" and "does not exist" in result.message


# -- venvs (offline) -------------------------------------------------------------------------------


def test_venv_from_a_local_wheel_offline(system, tmp_path):
    wheel = make_wheel(tmp_path / "wheels")
    env = PythonEnvironment(requirements=(str(wheel),), pip_args=("--no-index",))
    report = installers.install(system, [env])
    assert report.ok, report
    venv = tmp_path / "install" / env.key
    assert run_in(venv, "import tinypkg; print(tinypkg.VALUE)") == "42"
    assert installers.install(system, [env]).results[0].status == "already installed"
    assert installers.uninstall(system, [env]).results[0].status == "uninstalled"
    assert not venv.exists()


def test_venv_from_a_project_path_offline(system, tmp_path):
    project = make_project(tmp_path / "proj")
    env = PythonEnvironment(project_path=project, pip_args=("--no-index", "--no-build-isolation"))
    report = installers.install(system, [env])
    assert report.ok, report
    assert run_in(tmp_path / "install" / env.key, "import projpkg; print(projpkg.VALUE)") == "7"


def test_failed_pip_leaves_no_venv(system, tmp_path):
    env = PythonEnvironment(requirements=("surely-not-a-package-xyz",), pip_args=("--no-index",))
    result = installers.install(system, [env]).results[0]
    assert result.status == "failed"
    assert "pip install failed" in result.message and "surely-not-a-package-xyz" in result.message
    assert list((tmp_path / "install").iterdir()) == []


# -- many at once, through the API -----------------------------------------------------------------


def test_independent_items_install_together_and_uninstall_exactly(system, bare_repo, tmp_path):
    url, first, second = bare_repo
    src = tmp_path / "f.txt"
    src.write_text("x")
    test = BashCmdTestDefinition(
        name="b",
        cmd_args={"cmd": "true"},
        git_repos=[GitRepo(url=url, commit=first), GitRepo(url=url, commit=second)],
    )
    lines: list[str] = []
    report = api.install([test, File(src=src)], system, progress=lines.append)
    assert report.ok, report
    assert len(lines) == 3
    assert sorted(p.name for p in (tmp_path / "install").iterdir()) == sorted(
        [f"bench__{first}", f"bench__{second}", "f.txt"]
    )
    assert {r.status for r in api.installed([test], system).results} == {"already installed"}
    removed = api.uninstall([test], system)
    assert [r.status for r in removed.results] == ["uninstalled", "uninstalled"]
    assert [p.name for p in (tmp_path / "install").iterdir()] == ["f.txt"]


# -- runs install first; jobs see their repos ------------------------------------------------------


def scenario_with(test: BashCmdTestDefinition) -> TestScenario:
    return TestScenario(name="inst", test_runs=[TestRun(id="t", test=test)])


def test_a_run_installs_then_the_job_sees_the_repo(system, bare_repo, tmp_path):
    url, first, _ = bare_repo
    test = BashCmdTestDefinition(
        name="b",
        cmd_args={"cmd": 'cat "$CLOUDAI_NB_GIT_BENCH/VERSION"'},
        git_repos=[GitRepo(url=url, commit=first)],
    )
    run = ScenarioRun.start(scenario_with(test), system)
    assert asyncio.run(run.drive()) == "COMPLETED"
    assert (run.jobs[0].output_path / "stdout.txt").read_text() == "one\n"
    assert '"install"' in (run.run_dir / "jobs.jsonl").read_text()


def test_a_failed_install_fails_the_run_with_the_reason(system, tmp_path):
    test = BashCmdTestDefinition(
        name="b", cmd_args={"cmd": "true"}, git_repos=[GitRepo(url=str(tmp_path / "nope.git"), commit="abc")]
    )
    run = ScenarioRun.start(scenario_with(test), system)
    assert asyncio.run(run.drive()) == "FAILED"
    job = run.jobs[0]
    assert job.state is JobState.FAILED and job.job_id is None
    assert job.reason is not None and job.reason.startswith("prerequisites not installed: git repo")


def test_a_dry_run_installs_nothing(system, bare_repo, tmp_path):
    url, first, _ = bare_repo
    test = BashCmdTestDefinition(
        name="b", cmd_args={"cmd": "true"}, git_repos=[GitRepo(url=url, commit=first)]
    )
    run = ScenarioRun.start(scenario_with(test), system, dry_run=True)
    assert asyncio.run(run.drive()) == "DRY_RUN"
    assert not (tmp_path / "install").exists()


# -- the CLI ---------------------------------------------------------------------------------------


def test_cli_install_dry_run_install_uninstall(bare_repo, tmp_path, capsys):
    from cloudai_nb.cli.main import main

    url, first, _ = bare_repo
    (tmp_path / "system.toml").write_text(
        f'name = "local"\nscheduler = "standalone"\ninstall_path = "{tmp_path / "install"}"\n'
        f'output_path = "{tmp_path / "results"}"\n'
    )
    (tmp_path / "test.toml").write_text(
        f'name = "b"\ntest_template_name = "BashCmd"\n[cmd_args]\ncmd = "true"\n'
        f'[[git_repos]]\nurl = "{url}"\ncommit = "{first}"\n'
    )
    flags = ["--system-config", str(tmp_path / "system.toml"), "--test-scenario", str(tmp_path / "test.toml")]
    assert main(["install", "--dry-run", *flags]) == 0
    assert "would install" in capsys.readouterr().out
    assert main(["install", *flags]) == 0
    assert f"git repo {url} at {first}: installed" in capsys.readouterr().out
    assert main(["install", "-q", *flags]) == 0
    assert "already installed" in capsys.readouterr().out
    assert main(["uninstall", *flags]) == 0
    assert list((tmp_path / "install").iterdir()) == []
    assert main(["install", "--system-config", str(tmp_path / "system.toml")]) == 1
    assert "--test-scenario" in capsys.readouterr().err


def test_python_used_for_venvs_is_this_one():
    assert installers.venv_argv(Path("/x"))[0] == sys.executable
