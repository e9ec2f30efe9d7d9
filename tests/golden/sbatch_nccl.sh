#!/bin/bash
#SBATCH --job-name=cloudai_nb.nccl.0
#SBATCH --output=/runs/demo_2026-01-01_00-00-00/nccl/0/stdout.txt
#SBATCH --error=/runs/demo_2026-01-01_00-00-00/nccl/0/stderr.txt
#SBATCH --partition=batch
#SBATCH --account=bench
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --time=00:20:00
#SBATCH --exclusive
#SBATCH --mem=0

source /runs/demo_2026-01-01_00-00-00/nccl/0/env_vars.sh

srun --export=ALL --mpi=pmix --container-image=nvcr.io/nvidia/pytorch:24.02-py3 --container-mounts=/runs/demo_2026-01-01_00-00-00/nccl/0:/cloudai_run_results --no-container-mount-home --cpu-bind=none all_reduce_perf_mpi --nthreads 1 --ngpus 1 --minbytes 1M --maxbytes 1G --stepfactor 2 --op sum --datatype float --root 0 --iters 20 --warmup_iters 5 --agg_iters 1 --average 1 --parallel_init 0 --check 1 --blocking 0 --cudagraph 0
rc=$?

exit "$rc"

# ---- env_vars.sh ----
# environment of this job: the system's global_env_vars, then the test's extra_env_vars
export NCCL_IB_TIMEOUT=20
export NCCL_DEBUG=INFO
export CLOUDAI_NB_OUTPUT_DIR=/runs/demo_2026-01-01_00-00-00/nccl/0
export CLOUDAI_NB_TEST_ID=nccl
export CLOUDAI_NB_ITERATION=0
