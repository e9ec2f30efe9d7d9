"""Fio: the flexible I/O tester, run with ``--output-format=json``."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from cloudai_nb.core.models import CmdArgs, TestDefinition

FioValue = str | int | float | bool
_DEFAULT_ARGS: dict[str, FioValue] = {"name": "cloudai", "rw": "randread", "bs": "4k", "size": "64M"}


class FioCmdArgs(CmdArgs):
    config_path_fields = ("job_file",)

    fio_binary: str = Field(default="fio", description="The fio executable (a name on PATH or a path).")
    job_file: str | None = Field(default=None, description="A fio job file; options in args are added to it.")
    args: dict[str, FioValue] = Field(
        default_factory=lambda: dict(_DEFAULT_ARGS),
        description="fio options as a table (bs = '4k' becomes --bs=4k; true becomes a bare flag).",
    )
    passthrough_args: list[str] = Field(
        default_factory=list, description="Arguments passed to fio as they are."
    )
    docker_image_url: str | None = Field(default=None, description="Container image with fio (Slurm).")
    num_tasks: int | None = Field(default=None, ge=1, description="fio processes in all (Slurm).")
    num_tasks_per_node: int | None = Field(default=1, ge=1, description="fio processes per node (Slurm).")

    @model_validator(mode="after")
    def _something_to_run(self) -> FioCmdArgs:
        if not (self.job_file or self.args or self.passthrough_args):
            raise ValueError("give at least one of job_file, args or passthrough_args")
        return self


class FioTestDefinition(TestDefinition):
    """fio, the flexible I/O tester: bandwidth, IOPS and latency percentiles."""

    test_template_name: Literal["Fio"] = "Fio"
    cmd_args: FioCmdArgs = Field(default_factory=FioCmdArgs)
