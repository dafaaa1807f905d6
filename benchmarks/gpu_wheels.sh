#!/usr/bin/env bash
# The wheels that the GPU machine's image lacks (it has torch, numpy, typer, rich, pytest, ...,
# Python 3.12, and no network), downloaded here into .whl/ (ignored by git) for benchmarks/gpu_check.sh.
# About 48 MB (the report's rliable, arch and fpdf2 included): name .whl in the device call's carry.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
for spec in stable-baselines3==2.9.2 gymnasium==1.4.0 farama-notifications==0.0.6 metaworld==3.1.1 \
    mujoco==3.3.0 glfw==2.11.0 pyopengl==3.1.10 arch==7.2.0 fpdf2==2.8.9 defusedxml==0.7.1; do
    "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
        -d .whl "$spec"
done
# rliable 1.2.0 is published as a source distribution only: built here into a pure-Python wheel
"$PY" -m pip wheel -q --no-deps --no-build-isolation -w .whl rliable==1.2.0
du -sh .whl
