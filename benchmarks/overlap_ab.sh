#!/usr/bin/env bash
# overlap_collection without and with, end to end (issue 44): mtbench's side of benchmarks/peer_mwa.py
# (mt_sac, MT10, batch 128 per task, fp32, oneDNN, compiled update), a fresh process per measurement,
# 2 rounds of each setting: sync and async envs; 3 x 400 networks on 2 torch threads and on 1; 2 x 64.
# Run from the repository root with mtbench's venv active; pause anything else on the machine first.
#
#   benchmarks/overlap_ab.sh
set -euo pipefail
cd "$(dirname "$0")/.."
date -u; grep -m1 "model name" /proc/cpuinfo; git log --oneline -1
COMMON=(--set=cpu_matmul=onednn --set=compile_update=true)
one() {  # label, an environment assignment, then the side's options
    local label=$1 assignment=$2; shift 2
    for overlap in false true; do
        result=$(env "$assignment" GOMP_SPINCOUNT=300000 python benchmarks/peer_mwa.py side "${COMMON[@]}" "$@" \
            --set=overlap_collection=$overlap 2> /dev/null | tail -1)
        rate=$(python -c "import json, sys; print(f\"{json.loads(sys.argv[1])['env_steps_per_s']:.1f}\")" "$result")
        echo "$label, overlap_collection=$overlap: $rate env steps/s"
    done
}
for strategy in sync async; do
    for _ in 1 2; do one "$strategy envs, 3 x 400, 2 threads" "OMP_NUM_THREADS=2" --vector-strategy=$strategy; done
    for _ in 1 2; do one "$strategy envs, 3 x 400, 1 thread" "OMP_NUM_THREADS=1" --vector-strategy=$strategy; done
    for _ in 1 2; do
        one "$strategy envs, 2 x 64, 2 threads" "OMP_NUM_THREADS=2" --vector-strategy=$strategy "--set=agent.hidden_sizes=[64,64]"
    done
done
