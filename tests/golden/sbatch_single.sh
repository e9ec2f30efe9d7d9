#!/bin/bash
#SBATCH --job-name=cloudai_nb.demo_2026-01-01_00-00-00
#SBATCH --output=/runs/demo_2026-01-01_00-00-00/common.out
#SBATCH --error=/runs/demo_2026-01-01_00-00-00/common.err
#SBATCH --partition=batch
#SBATCH --account=bench
#SBATCH --nodelist=node-001
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --time=00:16:00
#SBATCH --no-requeue
#SBATCH --exclusive
#SBATCH --mem=0

source /runs/demo_2026-01-01_00-00-00/env_vars.sh

# pre_test: pre_test.node_check
srun --export=ALL --mpi=pmix --job-name=pre_test.node_check --output=/runs/demo_2026-01-01_00-00-00/pre_test/node_check/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/pre_test/node_check/stderr.txt --cpu-bind=none bash -c 'test -w "$CLOUDAI_NB_OUTPUT_DIR" && echo node=$(hostname) ready'
hook_rc=$?
if [ "$hook_rc" -ne 0 ]; then
  echo 'pre_test.node_check failed; the test did not run' "(exit code $hook_rc)" | tee /runs/demo_2026-01-01_00-00-00/pre_test.failed >&2
  exit "$hook_rc"
fi

# step DIR ENV_FILE CMD...: one test run of this allocation, in its own environment. DIR/single_sbatch/
# tells cloudai_nb when it started and how it ended. A step cancelled before it started is skipped:
# whoever makes that folder first (this script, or cloudai_nb cancelling the step) decides.
step() {
  local dir=$1/single_sbatch env=$2
  shift 2
  mkdir "$dir" 2>/dev/null || return 0
  date +%Y-%m-%dT%H:%M:%S.%6N%:z > "$dir/started"
  (source "$env" && exec "$@")
  local code=$?
  echo "$code" > "$dir/exit_code"
  if [ "$code" -ne 0 ]; then rc=$code; fi
  return "$code"
}

rc=0
step /runs/demo_2026-01-01_00-00-00/first/0 /runs/demo_2026-01-01_00-00-00/first/0/env_vars.sh srun --export=ALL --mpi=pmix --job-name=first/0 --nodes=2 --ntasks=16 --output=/runs/demo_2026-01-01_00-00-00/first/0/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/first/0/stderr.txt --cpu-bind=none bash -c 'exit 0'
step /runs/demo_2026-01-01_00-00-00/second/0 /runs/demo_2026-01-01_00-00-00/second/0/env_vars.sh srun --export=ALL --mpi=pmix --job-name=second/0 --nodelist=node-001 --ntasks=8 --output=/runs/demo_2026-01-01_00-00-00/second/0/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/second/0/stderr.txt --cpu-bind=none bash -c 'exit 3'
step /runs/demo_2026-01-01_00-00-00/third/0 /runs/demo_2026-01-01_00-00-00/third/0/env_vars.sh srun --export=ALL --mpi=pmix --job-name=third/0 --nodes=1 --ntasks=8 --output=/runs/demo_2026-01-01_00-00-00/third/0/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/third/0/stderr.txt --cpu-bind=none bash -c 'echo third'

# post_test: post_test.node_check
srun --export=ALL --mpi=pmix --job-name=post_test.node_check --output=/runs/demo_2026-01-01_00-00-00/post_test/node_check/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/post_test/node_check/stderr.txt --cpu-bind=none bash -c 'test -w "$CLOUDAI_NB_OUTPUT_DIR" && echo node=$(hostname) ready'

exit "$rc"

# ---- env_vars.sh ----
# environment of this job: the system's global_env_vars, then the test's extra_env_vars
export NCCL_IB_TIMEOUT=20
export CLOUDAI_NB_OUTPUT_DIR=/runs/demo_2026-01-01_00-00-00
