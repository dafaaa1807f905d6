#!/usr/bin/env bash
# The evidence grids on this 2-core machine, in the background over several sessions.
#
#   benchmarks/evidence_grid.sh [GRID]            # start or resume GRID (from the repository root)
#   benchmarks/evidence_grid.sh [GRID] --collect  # copy finished runs' plain files into $KEPT, to commit
#
# GRID (default mt10-power):
#   mt10-fixed-20k  issue 26: mt_sac, mt_mh_sac, soft_module on fixed:mt10, seeds 0-2, the paper preset
#                   (its loop before 2026-12-06) at 20,000 steps per task, 1 evaluation episode per
#                   task every 2000 (fixed goals are deterministic). Finished.
#   mt10-power      issue 43 (design: reports/mt10-power/README.md): the same agents on mt10 (50 goals
#                   per task), seeds 0-4, the paper preset with the authors' loop, 10 evaluation
#                   episodes per task every 2000 steps, final checkpoints kept: a ladder, 20,000 steps
#                   per task now (STEPS=50000 continues every finished run to 50,000).
#
# The report, once a grid's runs are done (from the repository root; soft modules' routing first):
#   mtbench routing $RUNS/soft_module/seed_*     (runs of code that predates routing.npz only)
#   benchmarks/evidence_grid.sh GRID --collect
#   mtbench report $KEPT --out reports/mt10-fixed-20k/report   (mt10-power: reports/mt10-power/report-20k)
#
# Start: a worktree of the commit the grid began at ($ROOT/wt, frozen: every run trains the same code)
# with its own venv, the finished runs committed under $KEPT copied into $ROOT/runs (the grid skips
# them: a machine lost between sessions loses only unfinished runs), then two lanes (one core each,
# nice 10, one torch thread) that take the runs in order; unfinished runs resume from their
# checkpoints. Logs: $ROOT/lane0.log, $ROOT/lane1.log.
set -euo pipefail
cd "$(dirname "$0")/.."
GRID=mt10-power
case "${1:-}" in mt10-fixed-20k | mt10-power) GRID=$1; shift ;; esac
if [ "$GRID" = mt10-fixed-20k ]; then
    KEPT=reports/mt10-fixed-20k/runs
    ROOT=${ROOT:-/work/evidence}
    COMMIT=${COMMIT:-b052ca0}  # the grid's code since 2026-12-04 (its first committed runs name it)
    RUNS=$ROOT/runs-paper/fixed_mt10
    OUT=$ROOT/runs-paper
    ARGS="--suite fixed:mt10 --preset paper --steps-per-task 20000 --eval-every 2000 --eval-episodes 1"
    # runs that fit one session first, soft_module's (3.5-5 h) last: only finished runs survive a lost machine
    JOBS="mt_sac:0 mt_mh_sac:0 mt_sac:1 mt_mh_sac:1 mt_sac:2 mt_mh_sac:2 soft_module:0 soft_module:1 soft_module:2"
else
    STEPS=${STEPS:-20000}
    KEPT=reports/mt10-power/runs-$((STEPS / 1000))k  # one folder per rung of the ladder
    ROOT=${ROOT:-/work/power}
    COMMIT=${COMMIT:-$(git rev-parse --short HEAD)}  # frozen once $ROOT/wt exists
    RUNS=$ROOT/runs/mt10
    OUT=$ROOT/runs
    ARGS="--suite mt10 --preset paper --steps-per-task $STEPS --eval-every 2000 --eval-episodes 10"
    ARGS="$ARGS --keep-final-checkpoint"
    # every agent to 3 runs first, then to 5; soft_module (about 2 h on one core) after the others
    JOBS=""
    for seed in 0 1 2 3 4; do JOBS="$JOBS mt_sac:$seed mt_mh_sac:$seed soft_module:$seed"; done
fi

if [ "${1:-}" = "--collect" ]; then
    for done in "$RUNS"/*/seed_*/DONE; do
        [ -e "$done" ] || continue
        run=$(dirname "$done"); dest=$KEPT/$(basename "$(dirname "$run")")/$(basename "$run")
        mkdir -p "$dest"
        cp "$run"/config.json "$run"/provenance.json "$run"/eval.jsonl "$run"/DONE "$dest"/
        # the soft modules' routing arrays, written by `mtbench routing RUN_DIR` (the grid's frozen
        # code predates runs writing them), so that the report reads the committed files only
        if [ -e "$run"/routing.npz ]; then cp "$run"/routing.npz "$dest"/; fi
        echo "kept $dest"
    done
    exit 0
fi

if pgrep -f "mtbench run .*--out $OUT" > /dev/null; then
    echo "the grid is running already: $ROOT/lane0.log, $ROOT/lane1.log"; exit 0
fi
mkdir -p "$ROOT" "$RUNS"
[ -d "$ROOT/wt" ] || git worktree add --detach "$ROOT/wt" "$COMMIT"
if [ ! -x "$ROOT/venv/bin/mtbench" ]; then
    python3 -m venv "$ROOT/venv"
    "$ROOT/venv/bin/pip" install -q torch==2.13.0
    "$ROOT/venv/bin/pip" install -q -e "$ROOT/wt"
fi
if [ -d "$KEPT" ]; then
    for run in "$KEPT"/*/seed_*; do
        dest=$RUNS/$(basename "$(dirname "$run")")/$(basename "$run")
        [ -e "$dest/DONE" ] || { mkdir -p "$dest" && cp "$run"/* "$dest"/; }
    done
fi
printf '%s\n' $JOBS > "$ROOT/queue.txt"
lane() {
    # its own session (setsid) is its own autogroup, which the kernel shares the CPU with as with
    # any other session whatever the processes' nice values: nice the group too, so that
    # foreground work goes first
    echo 10 > /proc/self/autogroup 2> /dev/null || true
    while true; do
        job=$(flock "$ROOT/queue.lock" sh -c 'j=$(head -1 "$1"); [ -n "$j" ] && sed -i 1d "$1"; echo "$j"' _ "$ROOT/queue.txt")
        [ -z "$job" ] && break
        echo "$(date -u +%FT%T) lane $1 start $job"
        # shellcheck disable=SC2086  # ARGS is a list of options
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c "$1" nice -n 10 "$ROOT/venv/bin/mtbench" run \
            --agents "${job%:*}" --seeds "${job#*:}" $ARGS --device cpu --workers 1 --out "$OUT" --no-report \
            && echo "$(date -u +%FT%T) lane $1 end $job" || echo "$(date -u +%FT%T) lane $1 failed $job"
    done
}
for core in 0 1; do
    (setsid nohup bash -c "$(declare -f lane); ROOT=$ROOT; ARGS='$ARGS'; OUT=$OUT; lane $core" >> "$ROOT/lane$core.log" 2>&1 &)
done
echo "grid started in the background: $ROOT/lane0.log, $ROOT/lane1.log; runs in $RUNS"
