#!/usr/bin/env bash
# The prepared GPU check (issue 17): the CUDA tests, then benchmarks/gpu_check.py, everything
# written under $OUT (default runs/gpu_check). About 12 minutes on an H200 (2026-12-04: tests 3.5).
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
echo "CUDA tests: $(tail -1 "$OUT/tests.log")"
exit $status
