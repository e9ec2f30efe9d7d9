#!/bin/bash
#SBATCH --job-name=cloudai_nb.nap.0
#SBATCH --output=/runs/demo_2026-01-01_00-00-00/nap/0/stdout.txt
#SBATCH --error=/runs/demo_2026-01-01_00-00-00/nap/0/stderr.txt
#SBATCH --partition=batch
#SBATCH --account=bench
#SBATCH --nodelist=node-003,node-002
#SBATCH --exclude=node-001
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
#SBATCH --mem=0

source /runs/demo_2026-01-01_00-00-00/nap/0/env_vars.sh

srun --export=ALL --mpi=pmix --cpu-bind=none sleep 5
rc=$?

exit "$rc"

# ---- env_vars.sh ----
# environment of this job: the system's global_env_vars, then the test's extra_env_vars
export NCCL_IB_TIMEOUT=20
export CLOUDAI_NB_OUTPUT_DIR=/runs/demo_2026-01-01_00-00-00/nap/0
export CLOUDAI_NB_TEST_ID=nap
export CLOUDAI_NB_ITERATION=0
