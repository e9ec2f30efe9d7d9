"""NcclTest: NVIDIA's nccl-tests binaries (all_reduce_perf and friends)."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field, model_validator

from cloudai_nb.core.models import CmdArgs, TestDefinition

SubtestName = Literal[
    "all_reduce_perf",
    "all_gather_perf",
    "alltoall_perf",
    "broadcast_perf",
    "gather_perf",
    "hypercube_perf",
    "reduce_perf",
    "reduce_scatter_perf",
    "scatter_perf",
    "sendrecv_perf",
    "all_reduce_perf_mpi",
    "all_gather_perf_mpi",
    "alltoall_perf_mpi",
    "broadcast_perf_mpi",
    "gather_perf_mpi",
    "hypercube_perf_mpi",
    "reduce_perf_mpi",
    "reduce_scatter_perf_mpi",
    "scatter_perf_mpi",
    "sendrecv_perf_mpi",
    "bisection_perf",
    "bisection_perf_mpi",
]


# the binaries as a workstation has them on PATH (the _mpi builds are for Slurm)
SUBTESTS = tuple(name for name in get_args(SubtestName) if not name.endswith("_mpi"))


class NcclCmdArgs(CmdArgs):
    """nccl-tests options, named as CloudAI names them (each maps to the binary's ``--name``)."""

    docker_image_url: str | None = Field(default=None, description="Container image with nccl-tests (Slurm).")
    subtest_name: SubtestName = Field(default="all_reduce_perf_mpi", description="Which collective to test.")
    nthreads: int = Field(default=1, ge=1, description="Threads per process (-t).")
    ngpus: int = Field(default=1, ge=1, description="GPUs per thread (-g).")
    minbytes: str = Field(default="32M", description="Smallest message size (-b), e.g. 8, 1K, 32M.")
    maxbytes: str = Field(default="32M", description="Largest message size (-e).")
    stepbytes: str | None = Field(default=None, description="Fixed increment between sizes (-i).")
    stepfactor: int | None = Field(default=2, ge=2, description="Multiplication factor between sizes (-f).")
    op: Literal["sum", "prod", "min", "max", "avg", "all"] = Field(
        default="sum", description="Reduction (-o)."
    )
    datatype: Literal[
        "int8", "uint8", "int32", "uint32", "int64", "uint64", "half", "float", "double", "bfloat16", "all"
    ] = Field(default="float", description="Data type (-d).")
    root: int = Field(default=0, ge=0, description="Root rank (-r).")
    iters: int = Field(default=20, ge=1, description="Timed iterations (-n).")
    warmup_iters: int = Field(default=5, ge=0, description="Warm-up iterations (-w).")
    agg_iters: int = Field(default=1, ge=1, description="Operations aggregated per iteration (-m).")
    average: Literal[0, 1, 2, 3] = Field(
        default=1, description="Report average (1), min (2) or max (3) (-a)."
    )
    parallel_init: Literal[0, 1] = Field(default=0, description="Initialize NCCL in parallel threads (-p).")
    check: Literal[0, 1] = Field(default=1, description="Check results for correctness (-c).")
    blocking: Literal[0, 1] = Field(default=0, description="Blocking collectives (-z).")
    cudagraph: int = Field(
        default=0, ge=0, description="Capture iterations as a CUDA graph, then replay N times (-G)."
    )

    @model_validator(mode="after")
    def _one_step_kind(self) -> NcclCmdArgs:
        if self.stepbytes is not None and self.stepfactor not in (None, 2):
            raise ValueError("give either stepbytes or stepfactor, not both")
        return self


class NcclTestDefinition(TestDefinition):
    """NVIDIA nccl-tests (all_reduce_perf and friends): bus bandwidth per message size."""

    test_template_name: Literal["NcclTest"] = "NcclTest"
    cmd_args: NcclCmdArgs = Field(default_factory=NcclCmdArgs)
