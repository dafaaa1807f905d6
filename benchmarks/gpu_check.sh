#!/usr/bin/env bash
# The prepared GPU check (issue 17): the CUDA tests, benchmarks/gpu_check.py, then (on a GPU) the
# dry run of the paper's MT10 grid on it, everything written under $OUT (default runs/gpu_check).
# About 12 minutes on an H200 (2026-12-04: tests 3.5).
#
#   benchmarks/gpu_wheels.sh          # here, once: the wheels a bare GPU machine lacks, into .whl/
#   benchmarks/gpu_check.sh           # there (with .whl carried): tests, measurements, summary
#   benchmarks/gpu_check.sh --tiny    # anywhere, CPU only, toy sizes (CI runs this)
#
# Python and packages: benchmarks/gpu_env.sh.
set -euo pipefail
source "$(dirname "$0")/gpu_env.sh"
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
status=0
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/tests.log" || status=1
"$PY" benchmarks/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/measurements.log" || status=1
if "$PY" -c "import sys, torch; sys.exit(not torch.cuda.is_available())"; then
    # the paper's MT10 grid as the GPU would run it: how its runs share the GPU, and the precision
    # that precision=auto measures for each agent (the preset itself pins fp32)
    "$PY" -m mtbench run --agents mt_sac,mt_mh_sac,soft_module --suite mt10 --seeds 0-2 --device cuda \
        --set precision=auto --dry-run --out "$OUT/dry" 2>&1 | tee "$OUT/dry_run.log" || status=1
fi
echo "CUDA tests: $(tail -1 "$OUT/tests.log")"
exit $status
