#!/usr/bin/env bash
# The prepared GPU check (issue 17): the CUDA tests, then benchmarks/gpu_check.py, everything
# written under $OUT (default runs/gpu_check). About 8 minutes on one H100-class GPU.
#
#   benchmarks/gpu_wheels.sh          # here, once: the wheels a bare GPU machine lacks, into .whl/
#   benchmarks/gpu_check.sh           # there (with .whl carried): tests, measurements, summary
#   benchmarks/gpu_check.sh --tiny    # anywhere, CPU only, toy sizes (CI runs this)
#
# Python: $PYTHON, else python3. Missing packages come from .whl/ when it is there, and mtbench
# itself is installed from this tree when it cannot be imported; both into /tmp/mtbench-site.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
OUT=${OUT:-runs/gpu_check}
mkdir -p "$OUT"
SITE=/tmp/mtbench-site
if [ -d .whl ] && ! "$PY" -c "import metaworld, stable_baselines3" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import mtbench, mtbench_agents" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" .
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
status=0
"$PY" -m pytest -q -p no:cacheprovider -m cuda tests/test_cuda.py 2>&1 | tee "$OUT/tests.log" || status=1
"$PY" benchmarks/gpu_check.py --out "$OUT" "$@" 2>&1 | tee "$OUT/measurements.log" || status=1
echo "CUDA tests: $(tail -1 "$OUT/tests.log")"
exit $status
