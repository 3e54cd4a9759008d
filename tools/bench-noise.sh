#!/usr/bin/env bash
# Measures the run-to-run noise of each `popgo bench` gate metric on this machine, with
# the unchanged release build, N times each (default 10):
#   - instructions per packet (--metric instructions): the figure of each run;
#   - wall clock against a saved baseline (--baseline): each run's median Mpps and its
#     change against the baseline's median;
#   - interleaved --compare of the build against itself: each run's change and its
#     95% interval.
# Prints min-max per metric (the figures docs/bench.md quotes). Environment: OUT (work
# dir), N (runs), REPEAT (repetitions and --compare pairs, 5), DURATION (s, 1), CORES.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
N=${N:-10}
REPEAT=${REPEAT:-5}
DURATION=${DURATION:-1}
CORES=${CORES:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"
cargo build --release --quiet --bin popgo
cp "$CARGO_TARGET_DIR/release/popgo" "$OUT/popgo"
bench=("$OUT/popgo" bench --profile examples/gate.toml --duration "$DURATION" --json)
[ -n "$CORES" ] && bench+=(--cores "$CORES")

field() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))" "$@"; }

echo "== instructions per packet, $N runs"
for i in $(seq "$N"); do
    "${bench[@]}" --repeat 1 --metric instructions >"$OUT/instr-$i.json"
    field "$OUT/instr-$i.json" "d['instructions']['per_packet']" | tee -a "$OUT/instr.txt"
done
echo "== wall clock against a baseline, $N runs (median Mpps, change %)"
"${bench[@]}" --repeat "$REPEAT" --save-baseline "$OUT/base.json" >/dev/null
for i in $(seq "$N"); do
    rc=0
    "${bench[@]}" --repeat "$REPEAT" --baseline "$OUT/base.json" >"$OUT/wall-$i.json" 2>"$OUT/wall-$i.err" || rc=$?
    field "$OUT/wall-$i.json" "'%.3f %+.2f exit $rc' % (d['summary']['mpps']['median'], d['verdict']['change_pct'])" |
        tee -a "$OUT/wall.txt"
done
echo "== --compare with itself, $N runs (change %, 95% interval, exit)"
for i in $(seq "$N"); do
    rc=0
    "${bench[@]}" --repeat "$REPEAT" --compare "$OUT/popgo" >"$OUT/compare-$i.json" 2>"$OUT/compare-$i.err" || rc=$?
    field "$OUT/compare-$i.json" \
        "'%+.2f [%+.2f, %+.2f] exit $rc' % tuple(d['compare']['verdict'][k] for k in ('change_pct','ci_low_pct','ci_high_pct'))" |
        tee -a "$OUT/compare.txt"
done
python3 - "$OUT" <<'PY'
import sys
out = sys.argv[1]
def col(name, i=0):
    return [float(l.split()[i]) for l in open(f"{out}/{name}.txt") if l.strip()]
ins = col("instr")
lo, hi = min(ins), max(ins)
print(f"instructions/packet: {lo:.4f} .. {hi:.4f} ({(hi - lo) / lo * 100:.5f}% of the minimum) over {len(ins)} runs")
m = col("wall"); c = col("wall", 1)
print(f"wall-clock median Mpps: {min(m):.3f} .. {max(m):.3f}; change vs baseline {min(c):+.2f}% .. {max(c):+.2f}% over {len(m)} runs")
x = col("compare"); ci = [l.split() for l in open(f"{out}/compare.txt") if l.strip()]
lows = [float(r[1].strip('[,')) for r in ci]; highs = [float(r[2].strip(']')) for r in ci]
print(f"--compare change: {min(x):+.2f}% .. {max(x):+.2f}%; interval bounds {min(lows):+.2f}% .. {max(highs):+.2f}% over {len(x)} runs")
PY
echo "outputs in $OUT"
