# Sourced by the GPU scripts: cd to the repository root, pick $PY, and make mtbench importable there.
# Python: $PYTHON, else python3. Missing packages come from .whl/ (benchmarks/gpu_wheels.sh) when it
# is there, and mtbench itself is installed from this tree when it cannot be imported; both into
# /tmp/mtbench-site.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PY=${PYTHON:-python3}
SITE=/tmp/mtbench-site
if [ -d .whl ] && ! "$PY" -c "import metaworld, stable_baselines3, rliable, fpdf" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$SITE" .whl/*.whl
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
if ! "$PY" -c "import mtbench, mtbench_agents" 2>/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target "$SITE" .
    export PYTHONPATH="$SITE${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONUNBUFFERED=1
# The GPU image has no EGL library for MuJoCo's headless renderer (its import fails there, seen
# 2026-12-04), and nothing these scripts run renders.
export MUJOCO_GL=${MUJOCO_GL:-disable}
