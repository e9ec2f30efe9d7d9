"""What a test needs on a system before it runs: git repositories, files, Python environments, images.

Each installable is a small frozen model with a stable ``key``: the name of the folder (or file) it
occupies under the system's ``install_path``. The key is derived from what the item *is* (a repo
and its commit, the hash of a venv's spec, an image's url), so two tests that ask for the same thing
share one installation and a changed spec gets a new one. Pure: installing is
`cloudai_nb.systems.installers`' business.

>>> repo = GitRepo(url="https://github.com/NVIDIA/nccl-tests.git", commit="v2.13.9")
>>> repo.key
'nccl-tests__v2.13.9'
>>> repo.env_name
'CLOUDAI_NB_GIT_NCCL_TESTS'
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from pathlib import Path
from typing import ClassVar

from pydantic import ConfigDict, Field, field_validator

from cloudai_nb.core import models as _models
from cloudai_nb.core.models import StrictModel

_UNSAFE = re.compile(r"[^A-Za-z0-9_.+=@-]+")


def _safe_name(text: str) -> str:
    """``text`` as one folder name: runs of other characters become ``_``, no leading dot."""
    name = _UNSAFE.sub("_", text).strip("_")
    return name.lstrip(".") or "_"


def _env_suffix(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_").upper() or "_"


class Installable(StrictModel):
    """Base of everything an installer knows how to put on a system."""

    model_config = ConfigDict(frozen=True)

    kind: ClassVar[str] = "installable"

    @property
    def key(self) -> str:
        """The folder (or file) name of this item under ``install_path``; stable across processes."""
        raise NotImplementedError

    def installed_path(self, install_path: Path) -> Path:
        """Where this item lives once installed (absolute)."""
        return Path(install_path).absolute() / self.key

    def describe(self) -> str:
        """A short human label, used in progress lines and error messages."""
        return f"{self.kind} {self.key}"


class GitRepo(Installable):
    """A git repository checked out at one commit (CloudAI's ``[[git_repos]]``).

    ``commit`` may be a full or short hash, a tag or a branch name. Jobs find the checkout through
    ``CLOUDAI_NB_GIT_<NAME>``; Slurm containers also see it at ``mount_as`` (default
    ``/git/<name>``).
    """

    kind: ClassVar[str] = "git repo"

    url: str = Field(min_length=1, description="Anything git clone accepts: https, ssh, a local path.")
    commit: str = Field(min_length=1, description="Hash, tag or branch to check out.")
    init_submodules: bool = Field(default=False, description="Also check out the submodules, recursively.")
    mount_as: str | None = Field(default=None, description="Path inside Slurm containers.")

    @field_validator("commit")
    @classmethod
    def _plain_commit(cls, value: str) -> str:
        if value.startswith("-") or any(ch.isspace() for ch in value):
            raise ValueError(f"commit {value!r} is not a commit, tag or branch name")
        return value

    @field_validator("url")
    @classmethod
    def _plain_url(cls, value: str) -> str:
        if value.startswith("-"):
            raise ValueError(f"url {value!r} must not start with '-'")
        return value

    @property
    def repo_name(self) -> str:
        tail = self.url.rstrip("/").rsplit("/", 1)[-1].rsplit(":", 1)[-1]
        tail = tail.removesuffix(".git")
        return _safe_name(tail)

    @property
    def key(self) -> str:
        return f"{self.repo_name}__{_safe_name(self.commit)}"

    @property
    def env_name(self) -> str:
        return f"CLOUDAI_NB_GIT_{_env_suffix(self.repo_name)}"

    @property
    def container_path(self) -> str:
        return self.mount_as or f"/git/{self.repo_name}"

    def describe(self) -> str:
        return f"git repo {self.url} at {self.commit}"


class File(Installable):
    """A file (or folder) copied into ``install_path`` under its own name."""

    kind: ClassVar[str] = "file"

    src: Path = Field(description="The file or folder to copy.")

    @property
    def key(self) -> str:
        return _safe_name(Path(self.src).name)

    def describe(self) -> str:
        return f"file {self.src}"


class PythonEnvironment(Installable):
    """A virtual environment with a requirements list and/or a project installed into it.

    Named ``venv-<hash of the spec>`` unless ``name`` is given, so a changed spec is a new venv.
    ``pip_args`` go to ``pip install`` as they are (``["--no-index", "--find-links", "wheels/"]``).
    Jobs find it through ``CLOUDAI_NB_VENV_<NAME>``.
    """

    kind: ClassVar[str] = "python environment"

    requirements: tuple[str, ...] = Field(default=(), description="Requirement specifiers or wheel paths.")
    project_path: Path | None = Field(default=None, description="A project folder to pip install.")
    pip_args: tuple[str, ...] = Field(default=(), description="Extra arguments for pip install.")
    name: str | None = Field(default=None, description="Folder name (default: venv-<spec hash>).")

    @field_validator("name")
    @classmethod
    def _safe(cls, value: str | None) -> str | None:
        if value is not None and _safe_name(value) != value:
            raise ValueError(f"venv name {value!r} is not safe as a folder name")
        return value

    def spec_hash(self) -> str:
        spec = {
            "requirements": list(self.requirements),
            "project_path": str(Path(self.project_path).absolute()) if self.project_path else None,
            "pip_args": list(self.pip_args),
        }
        return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:12]

    @property
    def key(self) -> str:
        return self.name or f"venv-{self.spec_hash()}"

    @property
    def env_name(self) -> str:
        return f"CLOUDAI_NB_VENV_{_env_suffix(self.key)}"

    def python(self, install_path: Path) -> Path:
        return self.installed_path(install_path) / "bin" / "python"


class DockerImage(Installable):
    """A container image. On Slurm with ``cache_docker_images_locally`` it becomes an enroot
    squashfs file in ``install_path``; otherwise the container runtime pulls it at run time."""

    kind: ClassVar[str] = "docker image"

    url: str = Field(min_length=1, description="nvcr.io/nvidia/pytorch:24.02-py3, docker://..., a .sqsh path")

    @property
    def is_local_file(self) -> bool:
        return self.url.startswith(("/", "./")) or self.url.endswith(".sqsh")

    @property
    def docker_uri(self) -> str:
        """The url as enroot import wants it: ``docker://...``."""
        return self.url if "://" in self.url else f"docker://{self.url}"

    @property
    def key(self) -> str:
        bare = self.url.split("://", 1)[-1]
        return _safe_name(bare.replace("/", "_").replace(":", "_").replace("#", "_")) + ".sqsh"

    def describe(self) -> str:
        return f"docker image {self.url}"


def unique(items: Iterable[Installable]) -> list[Installable]:
    """``items`` without repeats (same type and key), in their first order."""
    seen: set[tuple[type, str]] = set()
    out = []
    for item in items:
        mark = (type(item), item.key)
        if mark not in seen:
            seen.add(mark)
            out.append(item)
    return out


def job_env(install_path: Path, items: Iterable[Installable]) -> dict[str, str]:
    """Environment variables that tell a job where its git repos and venvs are."""
    env: dict[str, str] = {}
    for item in items:
        if isinstance(item, GitRepo | PythonEnvironment):
            env[item.env_name] = str(item.installed_path(install_path))
    return env


def container_mounts(install_path: Path, items: Iterable[Installable]) -> list[str]:
    """``host:container`` mounts for the git repos among ``items`` (Slurm containers)."""
    return [
        f"{item.installed_path(install_path)}:{item.container_path}"
        for item in items
        if isinstance(item, GitRepo)
    ]


# `models` cannot import this module before its own classes exist (StrictModel is defined there), so
# TestDefinition's ``git_repos: list[GitRepo]`` is resolved here, whichever module is imported first.
_models.TestDefinition.model_rebuild(_types_namespace={"GitRepo": GitRepo})
