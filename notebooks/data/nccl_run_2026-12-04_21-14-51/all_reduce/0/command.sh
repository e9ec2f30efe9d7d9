#!/bin/bash
# what cloudai-nb runs for this job (stdout/stderr go to the files beside)
export CLOUDAI_NB_OUTPUT_DIR=/tmp/nbgen/nccl_work/results/nccl_run_2026-12-04_21-14-51/all_reduce/0
export CLOUDAI_NB_TEST_ID=all_reduce
export CLOUDAI_NB_ITERATION=0
all_reduce_perf -t 1 -g 8 -b 8 -e 8G -f 2 -o sum -d float -r 0 -n 20 -w 5 -m 1 -a 1 -p 0 -c 1 -z 0 -G 0
