"""System configuration models (CloudAI's System TOML), one per scheduler."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationInfo, field_validator

from cloudai_nb.core.errors import did_you_mean
from cloudai_nb.core.models import EnvValue, StrictModel
from cloudai_nb.core.nodelist import NodeListError, expand


class System(StrictModel):
    """What every backend needs: where to install, where to write results, what to export."""

    name: str = Field(min_length=1)
    scheduler: str
    install_path: Path = Field(default=Path("install"), description="Installed prerequisites go here.")
    output_path: Path = Field(default=Path("results"), description="Run directories are created here.")
    global_env_vars: dict[str, EnvValue] = Field(default_factory=dict)
    monitor_interval: float = Field(default=1.0, gt=0, description="Seconds between two scheduler polls.")
    hf_home_path: Path | None = None
    reports: dict[str, Any] | None = Field(default=None, description="Accepted for CloudAI compatibility.")


class StandaloneSystem(System):
    """The local machine: each job is a process group."""

    scheduler: Literal["standalone"] = "standalone"


class SlurmGroup(StrictModel):
    name: str = Field(min_length=1)
    nodes: list[str] = Field(default_factory=list, description="Node lists such as node-[001-016].")

    @field_validator("nodes")
    @classmethod
    def _node_lists(cls, value: list[str]) -> list[str]:
        for spec in value:
            try:
                expand(spec)
            except NodeListError as exc:
                raise ValueError(str(exc)) from None
        return value


class SlurmPartition(StrictModel):
    name: str = Field(min_length=1)
    groups: list[SlurmGroup] = Field(default_factory=list)


class SlurmSystem(System):
    """A Slurm cluster driven through its command-line tools."""

    scheduler: Literal["slurm"] = "slurm"
    partitions: list[SlurmPartition] = Field(default_factory=list)
    default_partition: str
    account: str | None = None
    distribution: str | None = None
    gpus_per_node: int | None = Field(default=None, ge=0)
    ntasks_per_node: int | None = Field(default=None, ge=1)
    mpi: str = "pmix"
    extra_sbatch_args: list[str] = Field(default_factory=list, description="Extra #SBATCH arguments.")
    extra_srun_args: str | None = Field(default=None, description="Appended to every srun line.")
    cache_docker_images_locally: bool = False
    container_mount_home: bool = False
    default_container_mounts: list[str] = Field(default_factory=list)
    monitor_interval: float = Field(default=1.0, gt=0)
    data_repository: dict[str, Any] | None = None

    @field_validator("default_partition")
    @classmethod
    def _default_partition_exists(cls, value: str, info: ValidationInfo) -> str:
        names = [p.name for p in info.data.get("partitions", [])]
        if names and value not in names:
            raise ValueError(
                f"default_partition {value!r}{did_you_mean(value, names)} is not among the partitions: "
                + ", ".join(names)
            )
        return value

    def partition(self, name: str | None = None) -> SlurmPartition | None:
        wanted = name or self.default_partition
        return next((p for p in self.partitions if p.name == wanted), None)


def register_builtins() -> None:
    from cloudai_nb.core.registry import systems

    systems.register("standalone", StandaloneSystem)
    systems.register("slurm", SlurmSystem)
