"""Installables as pure models: keys, paths, env vars, and the installer command builders."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from pydantic import ValidationError

from cloudai_nb.core.installables import (
    DockerImage,
    File,
    GitRepo,
    PythonEnvironment,
    container_mounts,
    job_env,
    unique,
)
from cloudai_nb.core.models import TestRun, TestScenario
from cloudai_nb.core.registry import installers as installer_registry
from cloudai_nb.core.system import SlurmSystem, StandaloneSystem
from cloudai_nb.systems import installers
from cloudai_nb.systems.exec import Completed
from cloudai_nb.workloads.nccl import NcclTestDefinition
from cloudai_nb.workloads.sleep import SleepTestDefinition

GOLDEN = Path(__file__).parent.parent / "golden"


def check_golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if os.environ.get("CLOUDAI_NB_UPDATE_GOLDEN"):
        path.write_text(text)
    assert text == path.read_text(), f"{name} changed; set CLOUDAI_NB_UPDATE_GOLDEN=1 to accept"


def slurm(tmp: Path, **extra: object) -> SlurmSystem:
    return SlurmSystem(
        name="cluster",
        default_partition="main",
        install_path=tmp / "install",
        output_path=tmp / "out",
        **extra,
    )


def test_git_repo_key_env_and_mount():
    repo = GitRepo(url="https://github.com/NVIDIA/nccl-tests.git", commit="v2.13.9")
    assert repo.key == "nccl-tests__v2.13.9"
    assert repo.env_name == "CLOUDAI_NB_GIT_NCCL_TESTS"
    assert repo.container_path == "/git/nccl-tests"
    assert GitRepo(url="git@github.com:org/r.git", commit="abc", mount_as="/r").container_path == "/r"
    assert GitRepo(url="/srv/git/bench/", commit="abc").key == "bench__abc"


@pytest.mark.parametrize("bad", [{"commit": "--upload-pack=x"}, {"commit": "a b"}, {"url": "-oops"}])
def test_git_repo_rejects_option_like_values(bad):
    with pytest.raises(ValidationError):
        GitRepo(**{"url": "https://x/r.git", "commit": "abc", **bad})


def test_unknown_key_suggests():
    with pytest.raises(ValidationError, match="did you mean 'commit'"):
        GitRepo.model_validate({"url": "u", "comit": "x"})


def test_venv_name_is_a_hash_of_its_spec():
    a = PythonEnvironment(requirements=("numpy==1.26",))
    assert a.key == PythonEnvironment(requirements=("numpy==1.26",)).key
    assert a.key.startswith("venv-") and len(a.key) == len("venv-") + 12
    assert a.key != PythonEnvironment(requirements=("numpy==2.0",)).key
    assert PythonEnvironment(name="tools").key == "tools"
    with pytest.raises(ValidationError):
        PythonEnvironment(name="../escape")


def test_docker_image_file_name_from_url():
    image = DockerImage(url="nvcr.io/nvidia/pytorch:24.02-py3")
    assert image.key == "nvcr.io_nvidia_pytorch_24.02-py3.sqsh"
    assert image.docker_uri == "docker://nvcr.io/nvidia/pytorch:24.02-py3"
    assert DockerImage(url="docker://nvcr.io/x:1").key == "nvcr.io_x_1.sqsh"


def test_installed_path_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert File(src=Path("/etc/hosts")).installed_path(Path("install")) == tmp_path / "install" / "hosts"


def test_unique_env_and_mounts(tmp_path):
    repo = GitRepo(url="/srv/r.git", commit="abc")
    venv = PythonEnvironment(name="tools")
    items = unique([repo, venv, GitRepo(url="/srv/r.git", commit="abc"), DockerImage(url="a/b:1")])
    assert len(items) == 3
    assert job_env(tmp_path, items) == {
        "CLOUDAI_NB_GIT_R": str(tmp_path / "r__abc"),
        "CLOUDAI_NB_VENV_TOOLS": str(tmp_path / "tools"),
    }
    assert container_mounts(tmp_path, items) == [f"{tmp_path / 'r__abc'}:/git/r"]


def test_test_definition_installables_and_toml_round_trip():
    test = SleepTestDefinition.model_validate(
        {
            "name": "s",
            "git_repos": [{"url": "/srv/r.git", "commit": "abc", "init_submodules": True}],
            "cmd_args": {"docker_image_url": "nvcr.io/x:1", "seconds": [1, 2]},
        }
    )
    assert [type(i).__name__ for i in test.installables()] == ["GitRepo", "DockerImage"]
    data = test.toml_dict()
    assert data["git_repos"] == [{"url": "/srv/r.git", "commit": "abc", "init_submodules": True}]
    assert SleepTestDefinition.model_validate(data).git_repos == test.git_repos
    assert test.with_params({"seconds": 2}).git_repos == test.git_repos
    assert SleepTestDefinition(name="plain").installables() == []


def test_scenario_installables_cover_every_sweep_step():
    from cloudai_nb.engine.install_step import scenario_installables

    test = NcclTestDefinition.model_validate(
        {"name": "n", "cmd_args": {"docker_image_url": ["img/a:1", "img/b:1"]}}
    )
    scenario = TestScenario(name="x", test_runs=[TestRun(id="a", test=test), TestRun(id="b", test=test)])
    assert [i.key for i in scenario_installables(scenario)] == ["img_a_1.sqsh", "img_b_1.sqsh"]


def test_installers_are_registered_for_every_kind():
    for kind in (GitRepo, File, PythonEnvironment, DockerImage):
        assert installer_registry.get((StandaloneSystem, kind)) is installers.StandaloneInstaller
        assert installer_registry.get((SlurmSystem, kind)) is installers.SlurmInstaller


# -- command builders and golden text ------------------------------------------------------------


def test_git_commands(tmp_path):
    repo = GitRepo(url="https://x/bench.git", commit="0a1b2c", init_submodules=True)
    inst = installers.StandaloneInstaller(StandaloneSystem(name="l", install_path=tmp_path))
    dest = str(tmp_path / "bench__0a1b2c")
    assert inst.commands(repo) == [
        ["git", "clone", "--quiet", "--", "https://x/bench.git", dest],
        ["git", "-C", dest, "checkout", "--quiet", "--detach", "0a1b2c"],
        ["git", "-C", dest, "submodule", "update", "--init", "--recursive", "--quiet"],
    ]


def test_pip_command(tmp_path):
    env = PythonEnvironment(requirements=("a==1",), project_path=tmp_path / "proj", pip_args=("--no-index",))
    argv = installers.pip_install_argv(env, tmp_path / "v" / "bin" / "python")
    assert argv is not None
    assert argv[1:4] == ["-m", "pip", "install"]
    assert argv[-3:] == ["--no-index", "a==1", str(tmp_path / "proj")]
    assert installers.pip_install_argv(PythonEnvironment(name="empty"), tmp_path) is None


class FakeSlurm:
    """sinfo answers as the test says; nothing else is expected to run."""

    def __init__(self, rc: int = 0, stderr: str = "") -> None:
        self.rc, self.stderr, self.calls = rc, stderr, []

    def run_sync(self, argv, *, timeout=None):
        self.calls.append(list(argv))
        return Completed(tuple(argv), self.rc, "main\n" if self.rc == 0 else "", self.stderr)


def test_enroot_golden_and_dry_run(tmp_path):
    system = slurm(tmp_path, cache_docker_images_locally=True)
    images = [
        DockerImage(url="nvcr.io/nvidia/pytorch:24.02-py3"),
        DockerImage(url="docker://ghcr.io/o/fio:3"),
    ]
    report = installers.install(system, images, dry_run=True, runner=FakeSlurm())
    assert [r.status for r in report.results] == ["would install", "would install"]
    text = "".join(
        " ".join(argv).replace(str(tmp_path), "<tmp>") + "\n" for r in report.results for argv in r.commands
    )
    check_golden("installer_enroot_import.txt", text)
    assert not (tmp_path / "install").exists()


def test_docker_image_without_cache_needs_nothing(tmp_path):
    image = DockerImage(url="nvcr.io/x:1")
    report = installers.install(slurm(tmp_path), [image], runner=FakeSlurm())
    assert report.results[0].status == "not needed"
    dry = installers.install(slurm(tmp_path), [image], dry_run=True, runner=FakeSlurm())
    assert dry.results[0].status == "not needed" and dry.results[0].commands == ()
    assert installers.container_image(slurm(tmp_path), "nvcr.io/x:1") == "nvcr.io/x:1"


def test_cached_image_is_used_once_present(tmp_path):
    system = slurm(tmp_path, cache_docker_images_locally=True)
    assert installers.container_image(system, "nvcr.io/x:1") == "nvcr.io/x:1"
    (tmp_path / "install").mkdir()
    (tmp_path / "install" / "nvcr.io_x_1.sqsh").write_bytes(b"sqsh")
    assert installers.container_image(system, "nvcr.io/x:1") == str(tmp_path / "install" / "nvcr.io_x_1.sqsh")


def test_failed_enroot_names_the_image_and_stderr(tmp_path):
    system = slurm(tmp_path, cache_docker_images_locally=True)

    class Refuses(FakeSlurm):
        def run_sync(self, argv, *, timeout=None):
            if argv[0] == "enroot":
                return Completed(tuple(argv), 1, "", "[ERROR] URL https://nvcr.io returned 401")
            return super().run_sync(argv, timeout=timeout)

    inst = installers.SlurmInstaller(system, Refuses())
    result = inst.install_one(DockerImage(url="nvcr.io/x:1"))
    assert result.status == "failed"
    assert "docker image nvcr.io/x:1" in result.line() and "returned 401" in result.message
    assert list((tmp_path / "install").iterdir()) == []


# -- Slurm prerequisites with fake PATH folders --------------------------------------------------


def fake_path(tmp_path: Path, names: list[str]) -> str:
    folder = tmp_path / "bin"
    folder.mkdir(exist_ok=True)
    for name in names:
        tool = folder / name
        tool.write_text("#!/bin/sh\nexit 0\n")
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    return str(folder)


def test_slurm_prerequisites_one_message_per_missing_command(tmp_path):
    path = fake_path(tmp_path, ["sbatch", "sinfo"])
    runner = FakeSlurm()
    problems = installers.check_prerequisites(slurm(tmp_path), path=path, runner=runner)
    assert problems == [
        "squeue not found on PATH (a Slurm client command)",
        "scancel not found on PATH (a Slurm client command)",
    ]
    assert runner.calls == [[str(Path(path) / "sinfo"), "-h", "-o", "%P"]]


def test_slurm_prerequisites_all_present(tmp_path):
    path = fake_path(tmp_path, ["sbatch", "squeue", "scancel", "sinfo"])
    assert installers.check_prerequisites(slurm(tmp_path), path=path, runner=FakeSlurm()) == []


def test_slurm_controller_unreachable(tmp_path):
    path = fake_path(tmp_path, ["sbatch", "squeue", "scancel", "sinfo"])
    runner = FakeSlurm(1, "sinfo: error: Unable to contact slurm controller (connect failure)")
    problems = installers.check_prerequisites(slurm(tmp_path), path=path, runner=runner)
    assert len(problems) == 1 and problems[0].startswith("Slurm controller unreachable")


def test_enroot_and_git_needed_only_when_used(tmp_path):
    path = fake_path(tmp_path, ["sbatch", "squeue", "scancel", "sinfo"])
    system = slurm(tmp_path, cache_docker_images_locally=True)
    items = [DockerImage(url="a/b:1"), GitRepo(url="/r.git", commit="abc")]
    problems = installers.check_prerequisites(system, items, path=path, runner=FakeSlurm())
    assert [p.split(" ")[0] for p in problems] == ["enroot", "git"]


def test_missing_prerequisites_stop_the_install(tmp_path):
    report = installers.install(
        slurm(tmp_path),
        [GitRepo(url="/r.git", commit="abc")],
        runner=FakeSlurm(1, "slurm_load_partitions: Unable to contact slurm controller"),
    )
    assert not report.ok and report.results == []
    with pytest.raises(installers.InstallError, match="unreachable"):
        report.raise_for_failures()


def test_slurm_script_gets_repo_mounts_and_env(tmp_path):
    from cloudai_nb.core.job import Job
    from cloudai_nb.systems.slurm import nodes
    from cloudai_nb.systems.slurm.backend import SlurmBackend

    system = slurm(tmp_path, cache_docker_images_locally=True)
    test = NcclTestDefinition.model_validate(
        {
            "name": "n",
            "git_repos": [{"url": "/srv/bench.git", "commit": "abc"}],
            "cmd_args": {"docker_image_url": "nvcr.io/x:1"},
        }
    )
    run = TestRun(id="n", test=test)
    job = Job(key="n/0", test_id="n", iteration=0, output_path=tmp_path / "out" / "n" / "0").attach(run)
    request = nodes.resolve(system, 1, [], [], live=None)
    spec = SlurmBackend(system).spec(job, request)
    repo_path = tmp_path / "install" / "bench__abc"
    assert f"{repo_path}:/git/bench" in spec.steps[0].mounts
    assert spec.env["CLOUDAI_NB_GIT_BENCH"] == str(repo_path)
    assert spec.steps[0].image == "nvcr.io/x:1"  # not cached yet
