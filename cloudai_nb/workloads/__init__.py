"""Workloads: `TestDefinition` subclasses with typed ``cmd_args``, their command builders and parsers."""

from __future__ import annotations


def register_builtins() -> None:
    """Register the workloads that ship with cloudai_nb (called once by the registry)."""
    from cloudai_nb.core.registry import workloads
    from cloudai_nb.workloads.bash_cmd import BashCmdTestDefinition
    from cloudai_nb.workloads.fio import FioTestDefinition
    from cloudai_nb.workloads.nccl import NcclTestDefinition
    from cloudai_nb.workloads.sleep import SleepTestDefinition

    for definition in (SleepTestDefinition, BashCmdTestDefinition, NcclTestDefinition, FioTestDefinition):
        workloads.register(definition.model_fields["test_template_name"].default, definition)

    from cloudai_nb.workloads import results, slurm, standalone

    standalone.register()
    slurm.register()
    results.register()
