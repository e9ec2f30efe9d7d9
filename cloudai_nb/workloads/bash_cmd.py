"""BashCmd: any command line, run by bash. Metrics may be printed as ``key=value`` lines."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cloudai_nb.core.models import CmdArgs, TestDefinition


class BashCmdArgs(CmdArgs):
    cmd: str = Field(min_length=1, description="The command line, run with bash -c.")


class BashCmdTestDefinition(TestDefinition):
    """Any command line, run by bash; key=value lines in stdout are metrics."""

    test_template_name: Literal["BashCmd"] = "BashCmd"
    cmd_args: BashCmdArgs
