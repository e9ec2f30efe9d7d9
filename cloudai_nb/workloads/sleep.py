"""Sleep: waits a number of seconds. The smallest workload; scenarios use it to test orchestration."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cloudai_nb.core.models import CmdArgs, TestDefinition


class SleepCmdArgs(CmdArgs):
    seconds: float = Field(default=5, ge=0, description="How long to sleep, in seconds (fractions allowed).")
    docker_image_url: str | None = Field(default=None, description="Container image (Slurm only).")


class SleepTestDefinition(TestDefinition):
    """Sleep for a number of seconds (orchestration checks)."""

    test_template_name: Literal["Sleep"] = "Sleep"
    cmd_args: SleepCmdArgs = Field(default_factory=SleepCmdArgs)
