#!/usr/bin/env bash
# Issue 26's evidence grid on the GPU machine (after benchmarks/gpu_check.sh): every run at once,
# sharing the GPU, for a fixed 8 minutes of training (--minutes M to change it); the report, the
# rates and the runs' plain files into $OUT (default runs/gpu_evidence). Arguments go to
# benchmarks/gpu_evidence.py (--tiny: CPU, toy size; tests/test_bench.py runs it so).
#
#   benchmarks/gpu_wheels.sh            # here, once: the wheels a bare GPU machine lacks, into .whl/
#   benchmarks/gpu_evidence.sh          # there, with .whl carried
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
OUT=${OUT:-runs/gpu_evidence}
mkdir -p "$OUT"
"$PY" benchmarks/gpu_evidence.py --out "$OUT" "$@" 2>&1 | tee "$OUT/evidence.log"
