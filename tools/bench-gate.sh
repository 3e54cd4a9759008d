#!/usr/bin/env bash
# The regression gates of `popgo bench`, demonstrated on three release builds: the
# normal one, `slow-hot-path` (one extra pass over every packet's bytes: about +60%
# instructions, half the throughput) and `slow-hot-path-3pct` (about +3% instructions).
#   1. save a baseline with the normal build (wall clock and instructions per packet);
#   2. the slowed build against it on wall clock: exit 3 (regression);
#   3. the normal build again ("reverted") on instructions: exit 0;
#   4. RUNS gated runs of the unchanged build on instructions: all exit 0;
#   5. the 3% build on instructions: exit 3;
#   6. RUNS interleaved --compare runs of the unchanged build against itself: all exit 0;
#   7. RUNS --compare runs of the slowed build against the normal one: all exit 3.
# Exit codes of popgo bench: 0 pass, 3 regression, 1 runtime failure, 2 usage.
# Environment: OUT (work dir), PCT (allowed Mpps drop for the --baseline wall gate, %),
# REPEAT (repetitions, and pairs for --compare), DURATION (s per repetition), CORES
# (pin list), RUNS (5). Exits non-zero if any step does not behave as described.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PCT=${PCT:-15}
REPEAT=${REPEAT:-5}
DURATION=${DURATION:-1}
CORES=${CORES:-}
RUNS=${RUNS:-5}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"
command -v valgrind >/dev/null || { echo "bench-gate: valgrind is missing (bash tools/setup.sh installs it)" >&2; exit 2; }

cat >"$OUT/profile.toml" <<'TOML'
# 64-byte frames over 1000 labels (uniform), 10% IPv6: a small-packet forwarding load.
name = "gate"
packets = 200000
size = 64
ipv6_share = 0.1
[labels]
count = 1000
dist = "uniform"
TOML

echo "== building the normal, the slowed (slow-hot-path) and the 3% (slow-hot-path-3pct) release binaries"
cargo build --release --quiet --bin popgo
cp "$CARGO_TARGET_DIR/release/popgo" "$OUT/popgo"
cargo build --release --quiet --bin popgo --features slow-hot-path
cp "$CARGO_TARGET_DIR/release/popgo" "$OUT/popgo-slow"
cargo build --release --quiet --bin popgo --features slow-hot-path-3pct
cp "$CARGO_TARGET_DIR/release/popgo" "$OUT/popgo-3pct"
cargo build --release --quiet --bin popgo # leave the normal build in place

bench=(bench --profile "$OUT/profile.toml" --repeat "$REPEAT" --duration "$DURATION")
[ -n "$CORES" ] && bench+=(--cores "$CORES")
wall=(--baseline "$OUT/baseline.json" --max-regression "$PCT" --metric wall)
instr=(--baseline "$OUT/baseline.json" --metric instructions)

# run NAME WANT_EXIT BINARY ARGS...: runs, prints the summary and the verdicts, checks the exit code.
fail=0
run() {
    local name=$1 want=$2 bin=$3
    shift 3
    local rc=0
    "$bin" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" || rc=$?
    echo "-- $name: exit $rc (want $want)"
    grep -E '^ +Mpps|^instructions/packet|^  (REGRESSION|unchanged|improvement)|EXTRA PASS' "$OUT/$name.txt" | sed 's/^/   /'
    if [ "$rc" != "$want" ]; then
        echo "   UNEXPECTED exit $rc; stderr:"
        sed 's/^/   /' "$OUT/$name.err"
        fail=1
    fi
}

echo "== 1. baseline (normal build; wall clock and instructions)"
run baseline 0 "$OUT/popgo" "${bench[@]}" --metric both --save-baseline "$OUT/baseline.json"
echo "== 2. slowed build against the baseline, wall clock: must fail (exit 3)"
run slowed 3 "$OUT/popgo-slow" "${bench[@]}" "${wall[@]}"
echo "== 3. reverted (normal build) against the baseline, instructions: must pass"
run reverted 0 "$OUT/popgo" "${bench[@]}" "${instr[@]}"
echo "== 4. $RUNS gated runs of the unchanged build, instructions: all must pass"
for i in $(seq "$RUNS"); do
    run "unchanged-instr-$i" 0 "$OUT/popgo" "${bench[@]}" "${instr[@]}"
done
echo "== 5. the 3% build against the baseline, instructions: must fail (exit 3)"
run slowed-3pct 3 "$OUT/popgo-3pct" "${bench[@]}" "${instr[@]}"
echo "== 6. $RUNS interleaved comparisons of the unchanged build with itself: all must pass"
for i in $(seq "$RUNS"); do
    run "unchanged-compare-$i" 0 "$OUT/popgo" "${bench[@]}" --compare "$OUT/popgo"
done
echo "== 7. $RUNS interleaved comparisons of the slowed build with the normal one: all must fail (exit 3)"
for i in $(seq "$RUNS"); do
    run "slowed-compare-$i" 3 "$OUT/popgo-slow" "${bench[@]}" --compare "$OUT/popgo"
done
echo "outputs in $OUT"
if [ "$fail" = 0 ]; then echo "bench-gate: the gates behaved as described"; else echo "bench-gate: FAILED"; fi
exit "$fail"
