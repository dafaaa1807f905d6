#!/usr/bin/env bash
# What a kill -9 costs: an MT10 quick-preset mt_sac run uninterrupted, then the same run killed
# (the command and its worker, kill -9 of the process group) 20 s after its mid-run evaluation
# and started again with the same command. Prints the wall times, the age of the newest
# checkpoint at the kill, and whether the evaluation records match. Run from the repository root
# in an activated environment: bash benchmarks/resume_cost.sh [OUT]
set -euo pipefail
OUT=${1:-runs/resume_cost}
rm -rf "$OUT"
CMD=(mtbench run --agents mt_sac --suite mt10 --preset quick --seeds 0 --no-report --checkpoint-every 60
     --workers 1 --device cpu)
RUN=$OUT/killed/mt10/mt_sac/seed_0
now() { date +%s.%N; }

t0=$(now); "${CMD[@]}" --out "$OUT/uninterrupted" > /dev/null; t1=$(now)
echo "uninterrupted: $(echo "$t1 - $t0" | bc) s"

t0=$(now)
setsid "${CMD[@]}" --out "$OUT/killed" > /dev/null 2>&1 &
pid=$!
until [ "$(cat "$RUN/eval.jsonl" 2>/dev/null | wc -l)" -ge 2 ]; do sleep 0.5; done
sleep 20
tk=$(now)
kill -9 -- -"$pid"
wait "$pid" 2>/dev/null || true
newest=$(ls -d "$RUN"/checkpoints/step_* | tail -1)
echo "killed at $(echo "$tk - $t0" | bc) s; newest checkpoint $(basename "$newest") written" \
     "$(echo "$tk - $(stat -c %Y "$newest")" | bc) s before; $(du -sh "$RUN/checkpoints" | cut -f1) of checkpoints"
"${CMD[@]}" --out "$OUT/killed" > /dev/null; t2=$(now)
echo "killed run + same command again: $(echo "$t2 - $t0" | bc) s (the second command alone: $(echo "$t2 - $tk" | bc) s)"
python - "$OUT" <<'PY'
import json
import sys
from pathlib import Path

def records(name):
    path = Path(sys.argv[1]) / name / "mt10/mt_sac/seed_0/eval.jsonl"
    return [{k: v for k, v in json.loads(line).items() if k != "wall_seconds"} for line in path.read_text().splitlines()]

same = records("uninterrupted") == records("killed")
print("evaluation records identical (wall seconds aside):", same, [r["env_steps_per_task"] for r in records("killed")])
PY
