#!/bin/bash
#SBATCH --job-name=cloudai_nb.first.0
#SBATCH --output=/runs/demo_2026-01-01_00-00-00/first/0/stdout.txt
#SBATCH --error=/runs/demo_2026-01-01_00-00-00/first/0/stderr.txt
#SBATCH --partition=batch
#SBATCH --account=bench
#SBATCH --nodes=2
#SBATCH --ntasks-per-node=8
#SBATCH --gpus-per-node=8
#SBATCH --time=10
#SBATCH --exclusive
#SBATCH --mem=0

source /runs/demo_2026-01-01_00-00-00/first/0/env_vars.sh

# pre_test: pre_test.node_check
srun --export=ALL --mpi=pmix --job-name=pre_test.node_check --output=/runs/demo_2026-01-01_00-00-00/first/0/pre_test/node_check/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/first/0/pre_test/node_check/stderr.txt --cpu-bind=none bash -c 'test -w "$CLOUDAI_NB_OUTPUT_DIR" && echo node=$(hostname) ready'
hook_rc=$?
if [ "$hook_rc" -ne 0 ]; then
  echo 'pre_test.node_check failed; the test did not run' "(exit code $hook_rc)" | tee /runs/demo_2026-01-01_00-00-00/first/0/pre_test.failed >&2
  exit "$hook_rc"
fi

srun --export=ALL --mpi=pmix --cpu-bind=none bash -c 'exit 0'
rc=$?

# post_test: post_test.node_check
srun --export=ALL --mpi=pmix --job-name=post_test.node_check --output=/runs/demo_2026-01-01_00-00-00/first/0/post_test/node_check/stdout.txt --error=/runs/demo_2026-01-01_00-00-00/first/0/post_test/node_check/stderr.txt --cpu-bind=none bash -c 'test -w "$CLOUDAI_NB_OUTPUT_DIR" && echo node=$(hostname) ready'

exit "$rc"
