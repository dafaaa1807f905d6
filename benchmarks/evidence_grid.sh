#!/usr/bin/env bash
# Issue 26's evidence grid on this 2-core machine, in the background over several sessions:
# mt_sac, mt_mh_sac and soft_module on fixed:mt10, seeds 0-2, the paper preset at 20,000 steps per
# task (evaluation every 2000 with one episode per task: fixed goals are deterministic).
#
#   benchmarks/evidence_grid.sh            # start or resume (from the repository root)
#   benchmarks/evidence_grid.sh --collect  # copy finished runs' plain files into $KEPT, to commit
#
# The report, once all nine are done (from the repository root):
#   mtbench routing /work/evidence/runs-paper/fixed_mt10/soft_module/seed_*
#   benchmarks/evidence_grid.sh --collect
#   mtbench report reports/mt10-fixed-20k/runs --out reports/mt10-fixed-20k/report
#
# Start: a worktree of the commit the grid began at ($ROOT/wt, frozen: every run trains the same code)
# with its own venv, the finished runs committed under $KEPT copied into $ROOT/runs-paper (the grid
# skips them: a machine lost between sessions loses only unfinished runs), then two lanes (one core
# each, nice 10, one torch thread) that take the runs in order; unfinished runs resume from their
# checkpoints. Logs: $ROOT/lane0.log, $ROOT/lane1.log.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=${ROOT:-/work/evidence}
KEPT=reports/mt10-fixed-20k/runs
COMMIT=${COMMIT:-b052ca0}  # the grid's code since 2026-12-04 (its first committed runs name it)
RUNS=$ROOT/runs-paper/fixed_mt10
# Runs that fit one session (mt_sac, mt_mh_sac: 1.5-1.8 h on one core) come first, soft_module's
# (3.5-5 h) last: the machine has been lost between sessions three times, and only finished runs
# survive that.
JOBS="mt_sac:0 mt_mh_sac:0 mt_sac:1 mt_mh_sac:1 mt_sac:2 mt_mh_sac:2 soft_module:0 soft_module:1 soft_module:2"

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

if pgrep -f "mtbench run .*--out $ROOT/runs-paper" > /dev/null; then
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
        OMP_NUM_THREADS=1 MKL_NUM_THREADS=1 taskset -c "$1" nice -n 10 "$ROOT/venv/bin/mtbench" run \
            --agents "${job%:*}" --seeds "${job#*:}" --suite fixed:mt10 --preset paper --steps-per-task 20000 \
            --eval-every 2000 --eval-episodes 1 --device cpu --workers 1 --out "$ROOT/runs-paper" --no-report \
            && echo "$(date -u +%FT%T) lane $1 end $job" || echo "$(date -u +%FT%T) lane $1 failed $job"
    done
}
for core in 0 1; do
    (setsid nohup bash -c "$(declare -f lane); ROOT=$ROOT; lane $core" >> "$ROOT/lane$core.log" 2>&1 &)
done
echo "grid started in the background: $ROOT/lane0.log, $ROOT/lane1.log; runs in $RUNS"
