#!/usr/bin/env bash
# The regression gate of `popgo bench`, demonstrated:
#   1. save a baseline with the normal release build;
#   2. build a deliberately slowed binary (cargo feature `slow-hot-path`: one extra pass
#      over every packet's bytes per burst, inside the timed loop) and watch
#      `popgo bench --baseline` fail (exit 1);
#   3. go back to the normal build ("revert") and watch it pass (exit 0);
#   4. five more gated runs of the unchanged build: all pass.
# Environment: OUT (work dir), PCT (allowed regression, %), REPEAT, DURATION (s per
# repetition), CORES (pin list). Exits non-zero if any step does not behave as described.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-$(mktemp -d)}
PCT=${PCT:-15}
REPEAT=${REPEAT:-5}
DURATION=${DURATION:-1}
CORES=${CORES:-}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$PWD/target}
mkdir -p "$OUT"

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

echo "== building the normal and the slowed (slow-hot-path) release binaries"
cargo build --release --quiet --bin popgo
cp "$CARGO_TARGET_DIR/release/popgo" "$OUT/popgo"
cargo build --release --quiet --bin popgo --features slow-hot-path
cp "$CARGO_TARGET_DIR/release/popgo" "$OUT/popgo-slow"
cargo build --release --quiet --bin popgo # leave the normal build in place

bench=(bench --profile "$OUT/profile.toml" --repeat "$REPEAT" --duration "$DURATION")
[ -n "$CORES" ] && bench+=(--cores "$CORES")
gate=(--baseline "$OUT/baseline.json" --max-regression "$PCT")

# run NAME WANT_EXIT BINARY ARGS...: runs, prints the summary and the verdict, checks the exit code.
fail=0
run() {
    local name=$1 want=$2 bin=$3
    shift 3
    local rc=0
    "$bin" "$@" >"$OUT/$name.txt" 2>"$OUT/$name.err" || rc=$?
    echo "-- $name: exit $rc (want $want)"
    grep -E '^ +Mpps|^  (REGRESSION|unchanged|improvement)|EXTRA PASS' "$OUT/$name.txt" | sed 's/^/   /'
    if [ "$rc" != "$want" ]; then
        echo "   UNEXPECTED exit $rc; stderr:"
        sed 's/^/   /' "$OUT/$name.err"
        fail=1
    fi
}

echo "== 1. baseline (normal build)"
run baseline 0 "$OUT/popgo" "${bench[@]}" --save-baseline "$OUT/baseline.json"
echo "== 2. slowed build against the baseline: must fail"
run slowed 1 "$OUT/popgo-slow" "${bench[@]}" "${gate[@]}"
echo "== 3. reverted (normal build) against the baseline: must pass"
run reverted 0 "$OUT/popgo" "${bench[@]}" "${gate[@]}"
echo "== 4. five consecutive gated runs of the unchanged build: all must pass"
for i in 1 2 3 4 5; do
    run "unchanged-$i" 0 "$OUT/popgo" "${bench[@]}" "${gate[@]}"
done
echo "outputs in $OUT"
if [ "$fail" = 0 ]; then echo "bench-gate: the gate behaved as described"; else echo "bench-gate: FAILED"; fi
exit "$fail"
